"""A scripted HTTP/1.1 server on 127.0.0.1 for event-stream tests.

Each test writes the raw bytes itself: the status line and headers, chunked or close-delimited
framing, and pauses that wait on ``threading.Event``s the test controls. Then a test can say
"this event reached the client while the server was still waiting", which a reader that holds
events back cannot pass (its read blocks until the idle timeout instead)::

    with ScriptedServer() as server:
        go = threading.Event()

        def script(conn: Connection) -> None:
            conn.send_head(framing="close")
            conn.send(b"data: a\\n\\n")
            conn.wait(go)
            conn.end()

        run = server.serve(script)
        ...  # read the event, check run.done is not set, then go.set()
        run.join()
"""

from __future__ import annotations

import os
import socket
import struct
import threading
from collections.abc import Sequence
from types import TracebackType
from typing import Callable, Optional

#: Upper bound for any wait in a script, so a broken test fails instead of hanging.
SCRIPT_TIMEOUT = 20.0

EVENT_STREAM = (("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache"))


class Connection:
    """The server side of one connection; a script drives it from the server's thread."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.framing = "chunked"
        self.request = b""

    def read_request(self) -> bytes:
        """Read the request head (the tests only send GETs)."""
        data = b""
        while b"\r\n\r\n" not in data:
            more = self.sock.recv(65536)
            if not more:
                break
            data += more
        self.request = data
        return data

    def send_head(
        self,
        *,
        framing: str = "chunked",
        status: str = "200 OK",
        headers: Sequence[tuple[str, str]] = EVENT_STREAM,
    ) -> None:
        """Send the status line and headers; ``framing`` is ``chunked`` or ``close``."""
        if framing not in ("chunked", "close"):
            raise ValueError(f"expected framing 'chunked' or 'close', got {framing!r}")
        self.framing = framing
        lines = [f"HTTP/1.1 {status}", *(f"{name}: {value}" for name, value in headers)]
        lines.append("Transfer-Encoding: chunked" if framing == "chunked" else "Connection: close")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def send(self, data: bytes) -> None:
        """Send body bytes: one HTTP chunk when chunked, else the bytes as they are."""
        if self.framing == "chunked":
            data = b"%x\r\n%s\r\n" % (len(data), data)
        self.sock.sendall(data)

    def send_raw(self, data: bytes) -> None:
        """Send bytes with no framing at all (to break the framing on purpose)."""
        self.sock.sendall(data)

    def end(self) -> None:
        """End the body (the last chunk when chunked) and close our side."""
        if self.framing == "chunked":
            self.sock.sendall(b"0\r\n\r\n")
        self.sock.shutdown(socket.SHUT_WR)

    def reset(self) -> None:
        """Abort the connection with a TCP reset."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def wait(self, event: threading.Event) -> None:
        """Block until the test sets ``event``."""
        if not event.wait(SCRIPT_TIMEOUT):
            raise TimeoutError("the test never released the server script")

    def wait_for_disconnect(self) -> bool:
        """Block until the client closes its end; False if it did not within the timeout."""
        self.sock.settimeout(SCRIPT_TIMEOUT)
        try:
            while self.sock.recv(65536):
                pass
        except ConnectionResetError:
            return True  # a close with unread data arrives as a reset
        except socket.timeout:
            return False
        return True


class Run:
    """One scripted connection: its outcome, as seen from the test."""

    def __init__(self) -> None:
        self.connected = threading.Event()  # the request head has been read
        self.done = threading.Event()  # the script returned (or raised) and the socket closed
        self.error: Optional[BaseException] = None
        self.request = b""

    def join(self) -> None:
        """Wait for the script to finish; re-raise what it raised."""
        if not self.done.wait(SCRIPT_TIMEOUT):
            raise TimeoutError("the server script did not finish")
        if self.error is not None:
            raise self.error


class ScriptedServer:
    """Listens on an ephemeral port of 127.0.0.1; each :meth:`serve` takes one connection."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(SCRIPT_TIMEOUT)
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/events"
        self._threads: list[threading.Thread] = []

    def serve(self, script: Callable[[Connection], None]) -> Run:
        """Accept the next connection in a thread, read its request, run ``script`` on it."""
        run = Run()
        thread = threading.Thread(target=self._handle, args=(script, run), name="sse-script")
        thread.start()
        self._threads.append(thread)
        return run

    def _handle(self, script: Callable[[Connection], None], run: Run) -> None:
        try:
            sock, _ = self._listener.accept()
        except OSError as exc:  # timed out, or the server was closed first
            run.error = exc
            run.done.set()
            return
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = Connection(sock)
            run.request = conn.read_request()
            run.connected.set()
            script(conn)
        except Exception as exc:  # noqa: BLE001 - handed to the test by Run.join
            run.error = exc
        finally:
            sock.close()
            run.done.set()

    def close(self) -> None:
        """Stop listening and wait for the script threads."""
        self._listener.close()
        for thread in self._threads:
            thread.join(SCRIPT_TIMEOUT)

    def __enter__(self) -> ScriptedServer:
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        self.close()


def open_fds() -> set[str]:
    """This process's open file descriptors (Linux)."""
    return set(os.listdir("/proc/self/fd"))
