"""Sans-IO Server-Sent Events decoding: byte chunks in, events out.

sseclient-py parses the fields of each event block (``event``, ``data``, comments, which
blocks are dispatched). This module frames the blocks it is given and covers its gaps
against the WHATWG event-stream rules:

* line ends: CRLF and lone CR become LF (sseclient misses mixed ends such as LF then CRLF);
  a CR at the very end of a read is acted on at once, and an LF starting the next read is
  swallowed;
* UTF-8 always, whatever the charset header says; undecodable bytes become U+FFFD (sseclient
  decodes strictly and would raise), and a character split across reads is decoded whole;
* one leading byte-order mark is stripped, even when split across reads (sseclient would
  lose the first field);
* sseclient only ever sees whole blocks, so an unterminated block at the end of the stream
  is never dispatched (sseclient would dispatch it, which would make a cut connection look
  like a real ``close``);
* ``id`` and ``retry`` are read here: the last event id persists across events and is also
  set by blocks without data, an id containing NUL is ignored, and ``retry`` counts only when
  it is all ASCII digits (sseclient keeps neither across events);
* a size limit for one event, checked as the bytes pass, so memory stays bounded.

Why sseclient's own chunk stitching (``SSEClient._read``) is replaced by ours: it is where the
line-end and end-of-stream gaps live, and it grows the pending block with ``bytes +=`` per
line, which is quadratic (a 320 KB block of 2-byte lines takes 2.8 s). Our blocks are whole,
so the stock ``_read`` would give the same events, only slower (tests check both).

Why the block ``event: NAME`` + ``data: DATA`` skips sseclient: it is the shape of every event
the registry sends, and sseclient's per-line loop costs 2.9 µs of such a block against 1.0 µs
here (``bench/profile_events.py``), a third of the typed event path. Every other block goes
to sseclient; tests check that both routes give the same events.

A limit left in sseclient: ``events()`` appends each ``data`` line with ``str +=``, quadratic in
the number of data lines of one event (a 1 MiB event of empty data lines takes 0.5 s, 2 MiB
2 s); ``max_event_size`` bounds it.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Optional

from sseclient import SSEClient

from ._defaults import DEFAULT_MAX_EVENT_SIZE
from ._exceptions import EventTooLarge

_BOM = "\ufeff"
_FIELD_STARTS = (b"id", b"retry")
# Regular expressions: faster here than bytes.replace/split with two-byte patterns.
_CR_LF = re.compile(b"\r\n?")
_BLANK_LINE = re.compile(b"\n\n")


@dataclass(frozen=True)
class ServerSentEvent:
    """One dispatched event: its type (``message`` when none), data, last event id, retry."""

    event: str
    data: str
    id: Optional[str] = None
    retry: Optional[int] = None


class _BlockClient(SSEClient):
    """sseclient-py fed whole blocks (each ending in a blank line) instead of raw chunks."""

    def __init__(self, blocks: Iterator[bytes]) -> None:
        super().__init__(blocks)
        self._blocks = blocks

    def _read(self) -> Iterator[bytes]:
        # Overrides sseclient's chunk stitching (see the module docstring).
        return self._blocks


#: The sseclient-py class the decoder uses (tests swap in the stock ``SSEClient``).
_CLIENT: type[SSEClient] = _BlockClient
#: Whether the common two-line block skips sseclient-py (tests compare with and without).
_FAST_PATH = True


class _Pause(bytes):
    """The type of :data:`PAUSE` (a distinct object: ``b""`` itself is shared)."""


#: A chunk meaning "no more bytes for now", for a reader that is pushed bytes (an asyncio
#: driver) rather than pulling them: :meth:`SSEDecoder.iter_raw` answers it with
#: :data:`PAUSED` once every event of the bytes before it has been yielded, so one
#: long-lived generator can be resumed whenever more bytes arrive.
PAUSE: bytes = _Pause()
#: What :meth:`SSEDecoder.iter_raw` yields for :data:`PAUSE` (compare with ``is``).
PAUSED: tuple[str, str] = ("", "")


class SSEDecoder:
    """Decode event streams; remembers the last event id and the server's ``retry``.

    One decoder reads one stream at a time, and may read several in turn (say, across
    reconnections): the last event id and ``retry`` carry over, as an ``EventSource`` keeps
    them.

    Attributes:
        max_event_size: the largest block accepted, in bytes (after line-end normalisation).
        last_event_id: the last event id seen (``None`` until the server sends one).
        retry: the reconnection time the server asked for, in milliseconds, or ``None``.
        truncated: the last stream ended inside an event, which was dropped.
        dropped: how many bytes that unterminated event had.
    """

    def __init__(self, *, max_event_size: int = DEFAULT_MAX_EVENT_SIZE) -> None:
        self.max_event_size = max_event_size
        self.last_event_id: Optional[str] = None
        self.retry: Optional[int] = None
        self.truncated = False
        self.dropped = 0

    def iter_events(self, chunks: Iterable[bytes]) -> Iterator[ServerSentEvent]:
        """Yield each event as soon as the blank line that ends it has been read.

        Raises:
            EventTooLarge: one block grew beyond ``max_event_size``.
        """
        for name, data in self.iter_raw(chunks):
            yield ServerSentEvent(name, data, self.last_event_id, self.retry)

    def iter_raw(self, chunks: Iterable[bytes]) -> Iterator[tuple[str, str]]:
        """Like :meth:`iter_events`, but ``(event, data)`` pairs only (a little faster).

        ``last_event_id`` and ``retry`` are the right id and reconnection time while the pair
        is being handled.
        """
        self.truncated = False
        self.dropped = 0
        for block in self._blocks(chunks):
            if block is PAUSE:
                yield PAUSED
                continue
            if _FAST_PATH and block[:7] == b"event: ":
                # ``event: NAME`` then ``data: DATA``: the shape of nearly every event a
                # registry sends, parsed here in a third of sseclient-py's time (see
                # bench/profile_events.py); tests check that both give the same events.
                end = block.find(b"\n")
                if (
                    end > 7
                    and block[end + 1 : end + 7] == b"data: "
                    and (block.find(b"\n", end + 1) < 0)
                ):
                    yield block[7:end].decode(), block[end + 7 :].decode()
                    continue
            dispatched = False
            for raw in _CLIENT(iter((block + b"\n\n",))).events():
                dispatched = True
                if raw.id is not None or raw.retry is not None:
                    self._fields(block, ids=True)
                yield raw.event, raw.data
            if not dispatched:
                self._fields(block, ids=True)

    def _blocks(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        """Whole blocks (LF line ends, valid UTF-8, without the blank line that ends them), each
        as soon as it is complete."""
        limit = self.max_event_size
        decode = codecs.getincrementaldecoder("utf-8")(errors="replace").decode
        started = False  # past the place of a byte-order mark
        swallow_lf = False  # the last read ended in CR: an LF next is part of that line end
        prev_lf = True  # the stream so far ends with LF (or is empty): a leading LF is blank
        pending: list[bytes] = []  # the unterminated block, in pieces (no quadratic joins)
        size = 0  # its length
        # No final flush of the decoder: what it holds back at the end (an incomplete character)
        # could only belong to an unterminated block, which is dropped anyway.
        for chunk in chunks:
            if chunk is PAUSE:
                yield chunk
                continue
            text = decode(chunk)
            if not text:
                continue
            if not started:
                started = True
                if text[0] == _BOM:
                    text = text[1:]
            data = text.encode("utf-8")
            if swallow_lf and data[:1] == b"\n":
                data = data[1:]
            swallow_lf = False
            if b"\r" in data:
                swallow_lf = data[-1:] == b"\r"
                data = _CR_LF.sub(b"\n", data)
            blocks: list[bytes] = []
            if prev_lf and data[:1] == b"\n":  # blank lines right after a line end
                data = data.lstrip(b"\n")
                if pending:  # it ends with the LF of its last line: the separator's first
                    blocks.append(b"".join(pending)[:-1])
                    pending = []
                    size = 0
            if data:
                prev_lf = data[-1:] == b"\n"
                pieces = _BLANK_LINE.split(data)
                tail = pieces.pop()
                if pieces:
                    if tail[:1] == b"\n":  # the last of an odd run of LFs: a blank line
                        tail = tail[1:]
                    if pending:
                        pending.append(pieces[0])
                        pieces[0] = b"".join(pending)
                        pending = []
                    blocks += pieces
                    size = 0
                if tail:
                    pending.append(tail)
                    size += len(tail)
            for block in blocks:
                if block[:1] == b"\n":  # a blank line left over from an odd run of LFs
                    block = block[1:]
                if not block:
                    continue
                if len(block) >= limit:  # the block and the LF that ends its last line
                    raise _too_large(limit, len(block) + 1)
                yield block
            if size > limit:
                raise _too_large(limit, size)
        if pending:
            self.truncated = True
            self.dropped = size
            # "retry" takes effect as its line is read, even in an event that is never ended.
            lines = b"".join(pending)
            self._fields(lines[: lines.rfind(b"\n") + 1], ids=False)

    def _fields(self, block: bytes, *, ids: bool) -> None:
        """Apply the ``id`` and ``retry`` fields of a block, in order (WHATWG rules)."""
        for line in block.split(b"\n"):
            if not line.startswith(_FIELD_STARTS):
                continue
            name, _, value = line.partition(b":")
            if value[:1] == b" ":
                value = value[1:]
            if name == b"id" and ids:
                if b"\0" not in value:
                    self.last_event_id = value.decode("utf-8")
            elif name == b"retry" and value.isdigit():  # bytes.isdigit: ASCII digits only
                self.retry = int(value)


def _too_large(limit: int, size: int) -> EventTooLarge:
    return EventTooLarge(
        f"expected events of at most {limit} bytes, got one of at least {size} bytes"
    )
