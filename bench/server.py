"""A minimal stdlib streaming server for the benchmarks (127.0.0.1, ephemeral port).

Run as a subprocess: it prints ``PORT <n>`` on stdout and serves until its stdin closes. It is
a plain thread-per-connection socket server with pre-rendered responses, so that it is never
the bottleneck of what is measured (it runs in its own process, on the other core).

``GET /registry/v2/jobs/events?type=build&id=<kind>-<framing>-<n>[-<tag>]``, framing ``chunked``
or ``close`` (no length, no chunking: the body ends when the connection closes):

* ``tp-<f>-<n>``: ``ack``, ``n`` realistic job events, ``close``; written in 64 KiB slices
  (events straddle slices and HTTP chunks), then the response ends.
* ``lat-<f>-<k>[-w]``: ``ack``; with ``-w`` the server waits for the get of this job (which
  ``wait_for`` sends after the ``ack``); 10 ms later it marks the job ``completed``, records the
  time (``time.monotonic_ns``) and writes ``close`` in one write. It then keeps the response
  open until the client hangs up, at most ``HOLD`` seconds (a proxy or a server that ends the
  response late), so what is measured is the delivery of the ``close`` event itself.
* ``big-<f>-<n>``: ``ack``, then one event of ``n`` bytes (1 MiB writes), then ``close``.

``GET /registry/v2/jobs/<type>/<id>``: a job document, ``completed`` once ``close`` was
written for that id, else ``active``. ``GET /bench/stamp/<id>``: the recorded time, as text.
Connections are kept alive between JSON responses.
"""

from __future__ import annotations

import contextlib
import json
import socket
import socketserver
import sys
import threading
import time
from urllib.parse import parse_qs, unquote, urlsplit

import corpus

SLICE = 64 * 1024
HOLD = 1.0
PAUSE = 0.01
_SOURCE = 20_000  # distinct events; longer streams repeat them


class State:
    """What the handlers share: rendered bodies, job states and recorded times."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events = b"".join(corpus.job_events(_SOURCE))
        self.cache: dict[tuple[str, int], list[bytes]] = {}
        self.completed: set[str] = set()
        self.got: dict[str, threading.Event] = {}
        self.stamps: dict[str, int] = {}

    def got_event(self, jid: str) -> threading.Event:
        with self.lock:
            return self.got.setdefault(jid, threading.Event())

    def slices(self, framing: str, count: int) -> list[bytes]:
        """The body of a throughput stream, pre-framed, cached per (framing, count)."""
        with self.lock:
            cached = self.cache.get((framing, count))
        if cached is not None:
            return cached
        whole, part = divmod(count, _SOURCE)
        cut = self.events[: _find_offset(self.events, part)] if part else b""
        pieces = [corpus.ACK]
        for _ in range(whole):
            pieces.extend(_cut(self.events))
        pieces.extend(_cut(cut))
        pieces.append(corpus.CLOSE)
        framed = [_frame(framing, piece) for piece in pieces if piece]
        with self.lock:
            self.cache[(framing, count)] = framed
        return framed


def _find_offset(events: bytes, count: int) -> int:
    """The byte offset just after the ``count``-th event."""
    offset = 0
    for _ in range(count):
        offset = events.index(b"\r\n\r\n", offset) + 4
    return offset


def _cut(body: bytes) -> list[bytes]:
    return [body[i : i + SLICE] for i in range(0, len(body), SLICE)]


def _frame(framing: str, piece: bytes) -> bytes:
    if framing == "chunked":
        return b"%x\r\n%s\r\n" % (len(piece), piece)
    return piece


def _stream_head(framing: str) -> bytes:
    framing_header = (
        b"Transfer-Encoding: chunked\r\n" if framing == "chunked" else b"Connection: close\r\n"
    )
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
        + framing_header
        + b"\r\n"
    )


def _json(status: str, body: object) -> bytes:
    data = json.dumps(body, separators=(",", ":")).encode()
    head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
    return f"{head}Content-Length: {len(data)}\r\n\r\n".encode() + data


class Handler(socketserver.BaseRequestHandler):
    """One connection: requests in a keep-alive loop until a streamed body ends it."""

    server: Server

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buffer = b""
        try:
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = sock.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                target = head.split(b"\r\n", 1)[0].split(b" ")[1].decode()
                if not self.route(sock, target):
                    return
        except OSError:
            return  # the client hung up mid-response (e.g. after rejecting a big event)

    def route(self, sock: socket.socket, target: str) -> bool:
        """Answer one request; ``False`` when the connection must end."""
        state = self.server.state
        parts = urlsplit(target)
        path = parts.path
        if path == "/registry/v2/jobs/events":
            jid = parse_qs(parts.query)["id"][0]
            return self.stream(sock, jid)
        if path.startswith("/bench/stamp/"):
            jid = unquote(path.rsplit("/", 1)[1])
            sock.sendall(_json("200 OK", state.stamps.get(jid)))
            return True
        if path.startswith("/registry/v2/jobs/"):
            job_type, jid = (unquote(p) for p in path.split("/")[-2:])
            done = jid in state.completed
            body = corpus.job_document(job_type, jid, "completed" if done else "active")
            sock.sendall(_json("200 OK", body))
            state.got_event(jid).set()
            return True
        sock.sendall(_json("404 Not Found", {"error": f"no route {path}", "statusCode": 404}))
        return True

    def stream(self, sock: socket.socket, jid: str) -> bool:
        state = self.server.state
        kind, framing, count, *tag = jid.split("-")
        sock.sendall(_stream_head(framing))
        if kind == "tp":
            for piece in state.slices(framing, int(count)):
                sock.sendall(piece)
        elif kind == "lat":
            sock.sendall(_frame(framing, corpus.ACK))
            if tag:
                state.got_event(jid).wait(5.0)
            time.sleep(PAUSE)
            with state.lock:
                state.completed.add(jid)
            close = _frame(framing, corpus.CLOSE)
            state.stamps[jid] = time.monotonic_ns()
            sock.sendall(close)
            sock.settimeout(HOLD)
            with contextlib.suppress(socket.timeout):
                sock.recv(1)  # returns b"" once the client hangs up
            sock.settimeout(None)
        elif kind == "big":
            sock.sendall(_frame(framing, corpus.ACK))
            body = corpus.big_event(int(count))
            for i in range(0, len(body), 1 << 20):
                sock.sendall(_frame(framing, body[i : i + (1 << 20)]))
            sock.sendall(_frame(framing, corpus.CLOSE))
        if framing == "chunked":
            sock.sendall(b"0\r\n\r\n")
            return True
        return False


class Server(socketserver.ThreadingTCPServer):
    """The threading server with the shared state."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.state = State()


def main() -> None:
    """Serve until stdin closes."""
    with Server() as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        print(f"PORT {server.server_address[1]}", flush=True)
        sys.stdin.read()
        server.shutdown()
        thread.join()


if __name__ == "__main__":
    main()
