"""``EventStream``: the typed events of one ``GET /registry/v2/jobs/events`` response."""

from __future__ import annotations

import threading
from collections.abc import Generator, Iterator
from types import TracebackType
from typing import Optional

import requests

from ._exceptions import StreamInterrupted
from ._models import CloseEvent, Event, parse_event
from ._sse import DEFAULT_MAX_EVENT_SIZE, SSEDecoder
from ._stream import cancel_response, iter_chunks


class EventStream(Iterator[Event]):
    """An open event stream: iterate it for events; it ends after ``close``.

    Returned by :meth:`JobsClient.events`. Events are decoded as they arrive. Use it in a
    ``with`` block or call :meth:`close`; leaving a ``for`` loop early, or an exception in
    its body, also releases the connection once the stream is dropped. :meth:`cancel` may be
    called from any thread to stop a read that is waiting for the server.
    """

    def __init__(
        self, response: requests.Response, *, max_event_size: int = DEFAULT_MAX_EVENT_SIZE
    ) -> None:
        self._response = response
        self._decoder = SSEDecoder(max_event_size=max_event_size)
        self._cancelled = threading.Event()
        self._closed = False
        # The generator must not refer back to self: then dropping the stream (say, when the
        # caller's loop raises) frees it at once, and its finally closes the connection.
        self._events = _generate(response, self._decoder, self._cancelled)

    @property
    def response(self) -> requests.Response:
        """The underlying streaming ``requests.Response``."""
        return self._response

    @property
    def last_event_id(self) -> Optional[str]:
        """The last ``id:`` the server sent (the job service sends none today)."""
        return self._decoder.last_event_id

    @property
    def retry(self) -> Optional[int]:
        """The reconnection delay the server asked for with ``retry:``, in milliseconds."""
        return self._decoder.retry

    def __iter__(self) -> EventStream:
        return self

    def __next__(self) -> Event:
        return next(self._events)

    def cancel(self) -> None:
        """Stop the stream from any thread: a waiting read returns and iteration ends."""
        self._cancelled.set()
        cancel_response(self._response)

    def close(self) -> None:
        """Release the connection. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self._events.close()
        except ValueError:
            # "generator already executing": another thread is reading; unblock it instead.
            self.cancel()
        self._response.close()

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


def _generate(
    response: requests.Response, decoder: SSEDecoder, cancelled: threading.Event
) -> Generator[Event, None, None]:
    try:
        for sse in decoder.iter_events(iter_chunks(response)):
            event = parse_event(sse.event, sse.data, sse.id)
            yield event
            if isinstance(event, CloseEvent):
                return
        if cancelled.is_set():
            return
        dropped = ""
        if decoder.truncated:
            dropped = f"; {decoder.dropped} bytes of an unterminated event were dropped"
        raise StreamInterrupted(f"the event stream ended before its close event{dropped}")
    except StreamInterrupted:
        if cancelled.is_set():
            return
        raise
    finally:
        response.close()
