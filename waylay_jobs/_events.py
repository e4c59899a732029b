"""``EventStream``: the typed events of one ``GET /registry/v2/jobs/events`` response."""

from __future__ import annotations

import threading
from collections.abc import Generator, Iterable, Iterator
from types import TracebackType
from typing import Optional

import requests

from ._defaults import DEFAULT_MAX_EVENT_SIZE
from ._exceptions import InvalidArgument, StreamInterrupted
from ._models import CloseEvent, Event, parse_event
from ._sse import PAUSED, SSEDecoder
from ._stream import cancel_response, iter_chunks


class _Connection:
    """The response, and the lock that keeps a cancel from racing the close."""

    def __init__(self, response: requests.Response) -> None:
        self.response = response
        self.cancelled = threading.Event()
        self.closed = False
        self._lock = threading.Lock()

    def cancel(self) -> None:
        self.cancelled.set()
        with self._lock:
            if not self.closed:
                cancel_response(self.response)

    def close(self) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
        self.response.close()


class EventStream(Iterator[Event]):
    """An open event stream: iterate it for typed events; it ends right after ``close``.

    Returned by :meth:`JobsClient.events`. Each event is decoded as soon as it has arrived.
    The connection is released when the stream ends or fails, when :meth:`close` is called or
    a ``with`` block is left, and when the stream is dropped (say, after an exception in the
    caller's loop). :meth:`cancel` may be called from any thread to stop a read that is
    waiting for the server; iteration then ends without an error.

    Raises (while iterating):
        StreamInterrupted: the stream ended or broke before ``close``.
        IdleTimeout: nothing arrived within the read (idle) timeout.
        EventTooLarge: one event exceeded ``max_event_size``.
        EventDecodeError: a job event's data is not a job event; the stream is closed.
    """

    def __init__(
        self, response: requests.Response, *, max_event_size: int = DEFAULT_MAX_EVENT_SIZE
    ) -> None:
        self._connection = _Connection(response)
        self._decoder = SSEDecoder(max_event_size=max_event_size)
        # The generator must not refer back to self: then dropping the stream (say, when the
        # caller's loop raises) frees it at once, and its finally closes the connection.
        self._events = _generate(self._connection, self._decoder)
        self._closed_by_caller = False

    @property
    def response(self) -> requests.Response:
        """The underlying streaming ``requests.Response``."""
        return self._connection.response

    @property
    def last_event_id(self) -> Optional[str]:
        """The last ``id:`` the server sent (the job service sends none today)."""
        return self._decoder.last_event_id

    @property
    def retry(self) -> Optional[int]:
        """The reconnection delay the server asked for with ``retry:``, in milliseconds."""
        return self._decoder.retry

    @property
    def closed(self) -> bool:
        """Whether the connection has been released."""
        return self._connection.closed

    def __iter__(self) -> EventStream:
        # Not the generator itself: a loop over a temporary stream would drop the stream,
        # whose __del__ would then close the generator.
        return self

    def __next__(self) -> Event:
        if self._closed_by_caller:
            # Ending quietly would look like the end of the job's events.
            raise InvalidArgument(
                "expected an open event stream, got one closed with close(); "
                "open a new one with JobsClient.events()"
            )
        return next(self._events)

    def cancel(self) -> None:
        """Stop the stream from any thread: a waiting read returns and iteration ends."""
        self._connection.cancel()

    def close(self) -> None:
        """Release the connection. Idempotent; from another thread it acts as :meth:`cancel`.

        Reading the stream after it was closed raises :class:`InvalidArgument`.
        """
        try:
            self._events.close()
        except ValueError:
            # "generator already executing": another thread is in a read. Unblock it; its
            # own clean-up closes the connection (closing under it could garble the read).
            self._connection.cancel()
            return
        self._closed_by_caller = True
        self._connection.close()

    def __del__(self) -> None:
        # A stream that was never iterated still holds its connection.
        if hasattr(self, "_events"):
            self.close()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        self.close()


def _generate(connection: _Connection, decoder: SSEDecoder) -> Generator[Event, None, None]:
    cancelled = connection.cancelled
    try:
        for event in decode_stream(decoder, iter_chunks(connection.response)):
            if cancelled.is_set():
                return
            assert event is not None  # no PAUSE among these chunks
            yield event
    except StreamInterrupted:
        if cancelled.is_set():
            return  # the read was unblocked on purpose
        raise
    finally:
        connection.close()


def decode_stream(decoder: SSEDecoder, chunks: Iterable[bytes]) -> Iterator[Optional[Event]]:
    """The typed events of a stream's ``chunks``, up to and including ``close``; ``None`` where
    a :data:`~waylay_jobs._sse.PAUSE` asks for more bytes. Raises :class:`StreamInterrupted`
    when the chunks end before ``close`` (and the decoder's framing errors as they come)."""
    for item in decoder.iter_raw(chunks):
        if item is PAUSED:
            yield None
            continue
        event = parse_event(item[0], item[1], decoder.last_event_id)
        yield event
        if isinstance(event, CloseEvent):
            return
    dropped = ""
    if decoder.truncated:
        dropped = f"; {decoder.dropped} bytes of an unterminated event were dropped"
    raise StreamInterrupted(
        "expected the event stream to go on until its close event, "
        f"got the end of the stream first{dropped}"
    )
