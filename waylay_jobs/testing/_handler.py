"""The HTTP side of the fake: a threading server that tracks its connections, and routing."""

from __future__ import annotations

import dataclasses
import errno
import http.client
import json
import logging
import selectors
import socket
import sys
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Optional, cast
from urllib.parse import parse_qs, unquote

from .._version import __version__
from . import _documents as docs
from ._faults import NO_FAULTS, FaultBook, Faults, merge
from ._jobs import JobStore, utcnow
from ._queries import EventsFilter, ListFilter, QueryError, parse_events_query, parse_list_query
from ._records import JOB_TYPES, JobKey, RecordedRequest
from ._stream import SseWriter, StreamPlayer, client_gone
from ._tokens import TokenAuthority

_log = logging.getLogger("waylay_jobs.testing")
_JOBS = "/registry/v2/jobs/"
_EVENTS = "/registry/v2/jobs/events"
_TOKENS = "/accounts/v1/tokens"
_MAX_BODY = 1 << 20
#: Seconds between the looks at a delayed request's client (has it hung up?).
_DELAY_POLL = 0.05
_DISCONNECT_ERRNOS = {
    errno.EPIPE,
    errno.ECONNRESET,
    errno.ECONNABORTED,
    errno.ENOTCONN,
    errno.EBADF,
}


@dataclasses.dataclass
class Context:
    """What the request handlers need from the registry."""

    store: JobStore
    tokens: TokenAuthority
    faults: tuple[Faults, ...]
    book: FaultBook
    keepalive: float
    default_limit: int
    max_limit: int
    record: Callable[[RecordedRequest], None]
    report_error: Callable[[BaseException], None]


def is_disconnect(error: BaseException) -> bool:
    """Whether ``error`` only means that the client (or ``stop()``) closed the connection."""
    if isinstance(error, (ConnectionError, socket.timeout)):
        return True
    return isinstance(error, OSError) and error.errno in _DISCONNECT_ERRNOS


class Server(ThreadingHTTPServer):
    """``ThreadingHTTPServer`` on 127.0.0.1 that knows its connections and threads, so
    ``close_all`` can end them promptly."""

    daemon_threads = True
    block_on_close = False
    # The default backlog of 5 refuses connections when hundreds of waits subscribe at once.
    request_queue_size = 128

    def __init__(self, port: int, context: Context) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.context = context
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._conn_threads: set[threading.Thread] = set()
        self._wake_r, self._wake_w = socket.socketpair()
        self._stop_requested = False

    def server_close(self) -> None:
        """Close the listening socket and the wake-up pair."""
        super().server_close()
        self._wake_r.close()
        self._wake_w.close()

    def serve(self) -> None:
        """Accept connections until :meth:`wake_and_stop`; unlike ``serve_forever`` it
        stops at once instead of at the next poll."""
        with selectors.DefaultSelector() as selector:
            selector.register(self.socket, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self._stop_requested:
                for key, _ in selector.select():
                    if key.fileobj is self.socket and not self._stop_requested:
                        self.handle_request()  # ready: accepts without blocking

    def wake_and_stop(self) -> None:
        """Make :meth:`serve` return promptly."""
        self._stop_requested = True
        self._wake_w.send(b"x")

    def get_request(self) -> tuple[socket.socket, Any]:
        """Accept, and disable Nagle so each event leaves at once."""
        sock, address = super().get_request()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock, address

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve each connection in a tracked daemon thread."""
        thread = threading.Thread(
            target=self._serve,
            args=(request, client_address),
            name="fake-registry-conn",
            daemon=True,
        )
        with self._lock:
            self._connections.add(request)
            self._conn_threads.add(thread)
        thread.start()

    def _serve(self, request: socket.socket, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._lock:
                self._connections.discard(request)
                self._conn_threads.discard(threading.current_thread())

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Client disconnects are normal; anything else is reported to the registry."""
        error = _current_exception()
        if error is not None and not is_disconnect(error):
            self.context.report_error(error)

    def close_all(self, timeout: float) -> list[threading.Thread]:
        """Shut down every open connection and join their threads; returns the stragglers."""
        with self._lock:
            connections, threads = list(self._connections), list(self._conn_threads)
        for sock in connections:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError as error:
                if not is_disconnect(error):  # already closed by its thread: fine
                    raise
        for thread in threads:
            thread.join(timeout)
        return [thread for thread in threads if thread.is_alive()]


def _current_exception() -> Optional[BaseException]:
    return sys.exc_info()[1]


class Handler(BaseHTTPRequestHandler):
    """Routes the four endpoints; faults, then auth, then validation, then the answer."""

    protocol_version = "HTTP/1.1"
    server_version = f"FakeWaylayRegistry/{__version__}"

    @property
    def context(self) -> Context:
        """The registry context of the server."""
        return cast(Server, self.server).context

    def log_message(self, format: str, *args: Any) -> None:
        """Route the stdlib access log to ``logging`` (debug) instead of stderr."""
        _log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        """Handle GET."""
        self._dispatch("GET")

    def do_POST(self) -> None:
        """Handle POST."""
        self._dispatch("POST")

    # -- dispatch -----------------------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        ctx = self.context
        path, _, query = self.path.partition("?")
        body = self._read_body()
        ctx.record(RecordedRequest(method, path, query, tuple(self.headers.items()), body))
        route = _route(method, path)
        if route is None:
            self._json(404, docs.error_body(404, f"Route {method}:{path} not found"))
            return
        endpoint, segments = route
        key: Optional[JobKey] = None
        parsed: Any = None
        problem: Optional[QueryError] = None
        try:
            if endpoint == "list":
                parsed = parse_list_query(query, utcnow(), ctx.default_limit, ctx.max_limit)
            elif endpoint == "events":
                parsed = parse_events_query(query)
                key = _events_key(ctx.store, parsed)
            elif endpoint == "get":
                key = _path_key(segments)
        except QueryError as error:
            problem = error
        active = ctx.book.take("registry", ctx.faults, endpoint)
        if key is not None:
            active += ctx.book.take(key, ctx.store.faults_of(key), endpoint)
        faults = merge(active)
        if faults.delay and not self._delayed(faults.delay):
            return
        if faults.status is not None:
            self._fault_status(faults)
        elif faults.content_type is not None:
            self._send(200, docs.html_page(200, "OK").encode(), faults.content_type, faults)
        elif endpoint == "token":
            self._token(query, body, faults)
        elif self._authorized(faults):
            if problem is not None:
                self._json(400, docs.error_body(400, str(problem), problem.code), faults)
            elif endpoint == "list":
                self._list(cast(ListFilter, parsed), faults)
            elif endpoint == "get":
                self._get(cast(JobKey, key), faults)
            else:
                self._events(cast(EventsFilter, parsed), faults)

    def _delayed(self, seconds: float) -> bool:
        """Hold the answer back; ``False`` when the client hung up or the registry stopped."""
        store = self.context.store
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            if store.wait_stopped(min(left, _DELAY_POLL)) or client_gone(self.connection):
                self.close_connection = True
                return False

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(min(length, _MAX_BODY)) if length > 0 else b""

    def _authorized(self, faults: Faults) -> bool:
        reason = self.context.tokens.check(self.headers.get("Authorization"))
        if reason is None:
            return True
        self._json(401, docs.error_body(401, reason), faults, [("WWW-Authenticate", "Bearer")])
        return False

    # -- answers ------------------------------------------------------------------------------

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        faults: Faults,
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in headers:
            self.send_header(name, value)
        if faults.framing == "close":
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(
        self,
        status: int,
        document: dict[str, Any],
        faults: Faults = NO_FAULTS,
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        self._send(
            status,
            docs.compact(document).encode(),
            "application/json; charset=utf-8",
            faults,
            headers,
        )

    def _fault_status(self, faults: Faults) -> None:
        status = cast(int, faults.status)
        reason = http.client.responses.get(status, "Error")
        headers = []
        if status in (429, 503) and faults.retry_after is not None:
            headers.append(("Retry-After", faults.retry_after))
        if faults.html:
            self._send(
                status, docs.html_page(status, reason).encode(), "text/html", faults, headers
            )
        else:
            self._json(status, docs.error_body(status, reason), faults, headers)

    def _token(self, query: str, body: bytes, faults: Faults) -> None:
        tokens = self.context.tokens
        if parse_qs(query).get("grant_type") != ["client_credentials"]:
            message = "querystring/grant_type must be client_credentials"
            self._json(400, docs.error_body(400, message, "INVALID_QUERY"), faults)
            return
        try:
            payload = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            payload = None
        if not isinstance(payload, dict):
            message = "body must be a JSON object {clientId, clientSecret}"
            self._json(400, docs.error_body(400, message, "INVALID_BODY"), faults)
        elif tokens.credentials_ok(payload.get("clientId"), payload.get("clientSecret")):
            self._json(200, {"token": tokens.issue()}, faults)
        else:
            self._json(401, docs.error_body(401, "Invalid client credentials"), faults)

    def _list(self, wanted: ListFilter, faults: Faults) -> None:
        jobs = self.context.store.listing(wanted)
        self._json(200, {"limit": wanted.limit, "jobs": jobs}, faults)

    def _get(self, key: JobKey, faults: Faults) -> None:
        document = self.context.store.document(key)
        if document is None:
            self._json(404, docs.error_body(404, f"Job {key[0]}/{key[1]} not found"), faults)
        else:
            self._json(200, document, faults)

    def _events(self, wanted: EventsFilter, faults: Faults) -> None:
        ctx = self.context
        sub, ack, closing = ctx.store.subscribe(wanted)
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            self.send_header("Cache-Control", "no-cache")
            if faults.framing == "close":
                self.send_header("Connection", "close")
                self.close_connection = True
            else:
                self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            player = StreamPlayer(
                ctx.store, self.connection, SseWriter(self.wfile, faults), faults, ctx.keepalive
            )
            if not player.play(sub, ack, closing, lambda: ctx.store.subscribed(sub)):
                self.close_connection = True
        finally:
            ctx.store.unsubscribe(sub)


def _route(method: str, path: str) -> Optional[tuple[str, list[str]]]:
    if method == "POST":
        return ("token", []) if path == _TOKENS else None
    if method != "GET":
        return None
    if path == _JOBS:
        return ("list", [])
    if path == _EVENTS:
        return ("events", [])
    if path.startswith(_JOBS):
        segments = path[len(_JOBS) :].split("/")
        if len(segments) == 2 and all(segments):
            return ("get", segments)
    return None


def _path_key(segments: list[str]) -> JobKey:
    job_type, job_id = (unquote(segment) for segment in segments)
    if job_type not in JOB_TYPES:
        raise QueryError(
            f"params/type must be one of {', '.join(JOB_TYPES)}; got {job_type!r}", "INVALID_PATH"
        )
    return (job_type, job_id)


def _events_key(store: JobStore, wanted: EventsFilter) -> Optional[JobKey]:
    if wanted.id is None:
        return None
    if wanted.type is not None:
        return (wanted.type, wanted.id)
    return store.find_by_id(wanted.id)
