"""Writing the event stream: SSE framing, keep-alives, ``close``, and the stream faults."""

from __future__ import annotations

import io
import socket
import time
from typing import Callable, Optional

from ._documents import compact
from ._faults import Faults
from ._jobs import JobEvent, JobStore, Subscription, close_text

_POLL = 0.05  # how often a waiting stream checks whether the client hung up
_BOM = "\ufeff".encode()


class SseWriter:
    """Writes one event per write and flush, in chunked or close-delimited framing."""

    def __init__(self, wfile: io.BufferedIOBase, faults: Faults) -> None:
        self._wfile = wfile
        self._chunked = faults.framing == "chunked"
        self._le = faults.line_ending
        self._prefix = _BOM if faults.bom else b""

    @property
    def line_ending(self) -> str:
        """The line ending this writer uses."""
        return self._le

    def event(self, name: str, data: str) -> None:
        """Write one complete event."""
        le = self._le
        self.raw(f"event: {name}{le}data: {data}{le}{le}")

    def raw(self, text: str) -> None:
        """Write text as one piece (one chunk)."""
        payload, self._prefix = self._prefix + text.encode("utf-8"), b""
        if self._chunked:
            payload = b"%x\r\n%s\r\n" % (len(payload), payload)
        self._wfile.write(payload)
        self._wfile.flush()

    def end(self) -> None:
        """End the body cleanly (the terminating chunk; nothing for close framing)."""
        if self._chunked:
            self._wfile.write(b"0\r\n\r\n")
            self._wfile.flush()


def client_gone(sock: socket.socket) -> bool:
    """Whether the client closed its side (EOF or reset) while we wait to write."""
    previous = sock.gettimeout()
    sock.settimeout(0)  # a non-blocking peek: portable, and no select() fd limit
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except ConnectionError:
        return True
    finally:
        sock.settimeout(previous)


class StreamPlayer:
    """Plays one subscription to the client, applying the stream faults.

    :meth:`play` returns ``True`` when the body was ended cleanly (the connection may be
    reused) and ``False`` when the connection must be closed.
    """

    def __init__(
        self,
        store: JobStore,
        sock: socket.socket,
        writer: SseWriter,
        faults: Faults,
        keepalive: float,
    ) -> None:
        self._store = store
        self._sock = sock
        self._writer = writer
        self._faults = faults
        self._keepalive = keepalive
        self._job_events = 0
        self._malformed_done = False
        self._oversized_done = False

    def play(
        self, sub: Subscription, ack: str, closing: Optional[str], on_ack: Callable[[], None]
    ) -> bool:
        """Write ``ack``, then events until ``close``, a fault, the client leaving, or stop."""
        faults, writer = self._faults, self._writer
        writer.event("ack", ack)
        on_ack()
        if faults.unknown_event:
            target = {"type": sub.filter.type or "build", "id": sub.filter.id or "_unknown_"}
            writer.event("progress", compact({"job": target, "progress": 50}))
        if closing is not None:
            writer.event("close", closing)
            writer.end()
            return True
        last_write = time.monotonic()
        while True:
            if faults.drop_after is not None and self._job_events >= faults.drop_after:
                return False
            if faults.stall_after is not None and self._job_events >= faults.stall_after:
                self._stall()
                return False
            idle = time.monotonic() - last_write
            event = self._store.next_event(sub, max(0.0, min(_POLL, self._keepalive - idle)))
            if self._store.stopping:
                return False
            if event is None:
                if client_gone(self._sock):
                    return False
                if time.monotonic() - last_write >= self._keepalive:
                    writer.event("keep-alive", "keep-alive")
                    last_write = time.monotonic()
                continue
            if not self._write_job_event(sub, event):
                return True  # the truncated final event was followed by a clean end of body
            last_write = time.monotonic()
            if sub.closes_on(event):
                writer.event("close", close_text(event.job, event.name))
                writer.end()
                return True

    def _write_job_event(self, sub: Subscription, event: JobEvent) -> bool:
        """Write a job event; ``False`` if it was cut short (truncated terminal event)."""
        faults, le = self._faults, self._writer.line_ending
        payload = dict(event.payload)
        if faults.oversized and not self._oversized_done:
            self._oversized_done = True
            payload["padding"] = "x" * max(0, faults.oversized - len(compact(payload)))
        data = compact(payload)
        if faults.malformed_json and not self._malformed_done:
            self._malformed_done = True
            data = data[: len(data) // 2]
        if faults.truncate_terminal and sub.closes_on(event):
            self._writer.raw(f"event: {event.name}{le}data: {data[: len(data) // 2]}")
            self._writer.end()
            return False
        self._writer.event(event.name, data)
        self._job_events += 1
        return True

    def _stall(self) -> None:
        drip = self._faults.drip
        if drip:
            self._writer.raw("data: ")  # an event begun, and never ended
        while not self._store.wait_stopped(drip or _POLL) and not client_gone(self._sock):
            if drip:
                self._writer.raw("x")
