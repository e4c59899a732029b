"""Sans-IO Server-Sent Events decoding: byte chunks in, events out.

sseclient-py does the block splitting and field parsing; this module feeds it chunks it can
handle correctly and covers its gaps against the WHATWG event-stream rules:

* line ends: CRLF and lone CR become LF before sseclient sees them (it misses mixed ends
  such as LF then CRLF); a CR at the very end of a read is acted on at once, and an LF that
  starts the next read is swallowed;
* UTF-8 always, whatever the charset header says; undecodable bytes become U+FFFD (sseclient
  decodes strictly), and a character split across reads is decoded whole;
* one leading byte-order mark is stripped (sseclient would lose the first field);
* an unterminated block at the end of the stream is not dispatched (sseclient dispatches it,
  which would make a cut connection look like a real ``close``);
* the last event id persists across events, an id containing NUL is ignored, and ``retry``
  counts only when it is all ASCII digits;
* a size limit for one event, checked as bytes pass, so memory stays bounded.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Optional

from sseclient import SSEClient

from ._exceptions import EventTooLarge

#: The largest event accepted by default, in bytes (job events are well under 10 KiB).
DEFAULT_MAX_EVENT_SIZE = 8 * 1024 * 1024

_BOM = "\ufeff"


@dataclass(frozen=True)
class ServerSentEvent:
    """One dispatched event: its type (``message`` when none), data, last event id, retry."""

    event: str
    data: str
    id: Optional[str] = None
    retry: Optional[int] = None


class _Normaliser:
    """Chunks to UTF-8 bytes with LF line ends only; tracks the size of the pending block."""

    def __init__(self, chunks: Iterable[bytes], max_event_size: int) -> None:
        self._chunks = chunks
        self._max = max_event_size
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._started = False
        self._swallow_lf = False
        self._last = ""
        self.pending = 0  # characters since the last blank line
        self.exhausted = False

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            text = self._decoder.decode(chunk)
            if text:
                out = self._normalise(text)
                if out:
                    yield out.encode("utf-8")
        text = self._decoder.decode(b"", final=True)
        if text:
            out = self._normalise(text)
            if out:
                yield out.encode("utf-8")
        self.exhausted = True

    def _normalise(self, text: str) -> str:
        if not self._started:
            self._started = True
            if text.startswith(_BOM):
                text = text[1:]
        if self._swallow_lf:
            self._swallow_lf = False
            if text.startswith("\n"):
                text = text[1:]
        if "\r" in text:
            self._swallow_lf = text.endswith("\r")
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        if not text:
            return text
        self._account(text)
        self._last = text[-1]
        return text

    def _account(self, text: str) -> None:
        # A block ends at a blank line: LF LF, possibly straddling two reads.
        end = text.rfind("\n\n")
        if end >= 0:
            self.pending = len(text) - end - 2
        elif self._last == "\n" and text[0] == "\n":
            self.pending = len(text) - 1
        else:
            self.pending += len(text)
        if self.pending > self._max:
            raise EventTooLarge(
                f"expected events of at most {self._max} bytes, "
                f"got one of more than {self.pending} bytes still growing"
            )


class SSEDecoder:
    """Decode an event stream; remembers the last event id and the server's ``retry``.

    Attributes:
        last_event_id: the last event id seen (it persists across events).
        retry: the reconnection time the server asked for, in milliseconds.
        truncated: the stream ended inside an event, which was dropped.
    """

    def __init__(self, *, max_event_size: int = DEFAULT_MAX_EVENT_SIZE) -> None:
        self.max_event_size = max_event_size
        self.last_event_id: Optional[str] = None
        self.retry: Optional[int] = None
        self.truncated = False
        self.dropped = 0

    def iter_events(self, chunks: Iterable[bytes]) -> Iterator[ServerSentEvent]:
        """Yield each complete event as soon as its terminating blank line has been read."""
        source = _Normaliser(chunks, self.max_event_size)
        for raw in SSEClient(iter(source)).events():
            if source.exhausted:
                # Yielded only after the source ended: the unterminated last block.
                self.truncated = True
                self.dropped = source.pending
                return
            if raw.id is not None and "\x00" not in raw.id:
                self.last_event_id = raw.id
            if raw.retry is not None and raw.retry.isascii() and raw.retry.isdigit():
                self.retry = int(raw.retry)
            yield ServerSentEvent(raw.event, raw.data, self.last_event_id, self.retry)
        if source.pending:
            self.truncated = True
            self.dropped = source.pending
