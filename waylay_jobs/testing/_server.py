"""``FakeRegistry``: the public face of the fake (server lifecycle, jobs, tokens, logs)."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Optional

from ._control import FaultsArg, JobControl
from ._faults import FaultBook, as_faults
from ._handler import Context, Server
from ._jobs import JobStore
from ._records import JobKey, RecordedRequest
from ._scripts import Scheduler, Step
from ._tokens import TokenAuthority


class FakeRegistry(JobControl):
    """A local Waylay Function Registry (jobs API + token endpoint) on ``127.0.0.1``.

    See the package docstring of :mod:`waylay_jobs.testing` for the full guide.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        speed: float = 1.0,
        keepalive_interval: float = 15.0,
        api_key: Optional[str] = None,
        api_secret: Optional[str] = None,
        tokens: Iterable[str] = (),
        token_ttl: float = 3600.0,
        faults: FaultsArg = None,
        default_limit: int = 10,
        max_limit: int = 100,
        created_by: str = "users/4f7e2c1a-8b3d-4e6f-9a0b-1c2d3e4f5a6b",
    ) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be > 0 (real seconds per nominal second), got {speed!r}")
        if keepalive_interval <= 0:
            raise ValueError(f"keepalive_interval must be > 0 seconds, got {keepalive_interval!r}")
        self._port = port
        self._speed = speed
        self._lock = threading.Condition()
        self._requests: list[RecordedRequest] = []
        self._errors: list[BaseException] = []
        self._pending: dict[JobKey, tuple[str, list[Step]]] = {}
        self._store = JobStore(created_by)
        self._store.set_on_subscribe(self._on_subscribe)
        self._tokens = TokenAuthority(api_key, api_secret, tokens, token_ttl)
        self._scheduler = Scheduler(self._store.apply, speed)
        self._context = Context(
            store=self._store,
            tokens=self._tokens,
            faults=as_faults(faults),
            book=FaultBook(),
            keepalive=keepalive_interval,
            default_limit=default_limit,
            max_limit=max_limit,
            record=self._record,
            report_error=self._report_error,
        )
        self._server: Optional[Server] = None
        self._serve_thread: Optional[threading.Thread] = None
        self._state = "new"

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> FakeRegistry:
        """Bind 127.0.0.1 (ephemeral port unless ``port`` was given) and serve in daemon threads."""
        with self._lock:
            if self._state != "new":
                raise RuntimeError(f"FakeRegistry can be started once; it is {self._state}")
            self._server = Server(self._port, self._context)
            self._state = "running"
        self._store.base_url = self.url
        self._scheduler.start()
        self._serve_thread = threading.Thread(
            target=self._server.serve, name="fake-registry-server", daemon=True
        )
        self._serve_thread.start()
        self._start_all("on-start")
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving: end every stream and connection and join every thread (idempotent)."""
        with self._lock:
            if self._state != "running":
                self._state = "stopped"
                return
            self._state = "stopped"
        self._store.stop()
        self._scheduler.stop()
        server = self._server
        assert server is not None
        server.wake_and_stop()
        if self._serve_thread is not None:
            self._serve_thread.join(timeout)
        stragglers = server.close_all(timeout)
        server.server_close()
        if stragglers:
            raise RuntimeError(
                f"{len(stragglers)} connection threads did not end within {timeout} s"
            )

    def __enter__(self) -> FakeRegistry:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``: the gateway URL to give a client."""
        if self._server is None:
            raise RuntimeError(
                "FakeRegistry is not started; call start() or use it in a with block"
            )
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self.url.rsplit(":", 1)[1])

    # -- tokens, logs, synchronisation ---------------------------------------------------------

    def issue_token(self, ttl: Optional[float] = None) -> str:
        """A valid bearer token (``ttl`` seconds, default ``token_ttl``), without HTTP."""
        return self._tokens.issue(ttl)

    def revoke_tokens(self) -> None:
        """Invalidate every issued token, so the next request gets 401."""
        self._tokens.revoke_all()

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the requests received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        """Forget the recorded requests."""
        with self._lock:
            self._requests.clear()

    def wait_for_requests(
        self, count: int, *, path: Optional[str] = None, timeout: float = 5.0
    ) -> list[RecordedRequest]:
        """Block until ``count`` requests (to ``path``, if given) arrived; returns them."""

        def matching() -> list[RecordedRequest]:
            return [r for r in self._requests if path is None or r.path == path]

        with self._lock:
            if not self._lock.wait_for(lambda: len(matching()) >= count, timeout):
                raise TimeoutError(
                    f"expected {count} requests to {path or 'any path'} within "
                    f"{timeout} s, got {len(matching())}"
                )
            return matching()

    def wait_for_subscribers(self, count: int, timeout: float = 5.0) -> None:
        """Block until ``count`` event streams (since the start) got their ``ack``."""
        self._store.wait_for_subscriptions(count, timeout)

    def wait_for_open_streams(self, count: int, timeout: float = 5.0) -> None:
        """Block until exactly ``count`` event streams are open (e.g. 0: the client hung up
        and the server noticed)."""
        self._store.wait_for_open(count, timeout)

    @property
    def subscriptions(self) -> int:
        """Event streams that got their ``ack`` since the start."""
        return self._store.subscription_count

    @property
    def open_streams(self) -> int:
        """Event streams open right now."""
        return self._store.active_subscriptions

    @property
    def errors(self) -> list[BaseException]:
        """Unexpected exceptions raised while serving (client disconnects excluded)."""
        with self._lock:
            return list(self._errors)

    # -- internals ----------------------------------------------------------------------------

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)
            self._lock.notify_all()

    def _report_error(self, error: BaseException) -> None:
        with self._lock:
            self._errors.append(error)
