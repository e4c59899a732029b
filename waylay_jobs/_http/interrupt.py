"""Breaking off a blocking request from another thread: how a wait's ``cancel`` reaches a
``get`` or a token exchange in flight.

A thread blocked in a socket read cannot be told to stop, but the socket can be shut down under
it: the read then returns at once, urllib3 sees a dropped connection and discards it (nothing
is left open or pooled). While an :class:`Interrupter` is current (:func:`interruptible`), every
connection a request of the library's own session goes out on is registered with it (see
:class:`InterruptibleAdapter`), and :meth:`Interrupter.interrupt` shuts those sockets down. A
session the user passed in has no such adapter: its requests end at their (deadline-capped)
timeouts instead.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any, Optional

from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from .._policy import Deadline

#: The interrupter of the wait whose requests this thread is sending, if any.
current_interrupter: ContextVar[Optional[Interrupter]] = ContextVar(
    "waylay_jobs_interrupter", default=None
)

#: Seconds between looks at an interrupter while waiting for a lock another thread holds.
LOCK_CHECK_EVERY = 0.02


class Interrupter:
    """The in-flight requests of one wait, and the means to cut them from another thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connections: list[Any] = []
        self._set = threading.Event()

    @property
    def interrupted(self) -> bool:
        """Whether :meth:`interrupt` was called."""
        return self._set.is_set()

    def interrupt(self) -> None:
        """Cut every registered connection now, and every one registered from now on."""
        with self._lock:
            self._set.set()
            connections, self._connections = self._connections, []
        for connection in connections:
            _shut_down(connection)

    def register(self, connection: Any) -> None:
        """A request is about to go out on ``connection`` (cut at once when interrupted)."""
        with self._lock:
            if not self._set.is_set():
                self._connections.append(connection)
                return
        _shut_down(connection)

    def release(self) -> None:
        """The requests in flight are over: forget their connections (now pooled or closed)."""
        with self._lock:
            self._connections.clear()


@contextlib.contextmanager
def interruptible(interrupter: Optional[Interrupter]) -> Iterator[None]:
    """Make the requests sent inside the block interruptible by ``interrupter``."""
    if interrupter is None:
        yield
        return
    token = current_interrupter.set(interrupter)
    try:
        yield
    finally:
        current_interrupter.reset(token)
        interrupter.release()


def acquire(lock: threading.Lock, deadline: Optional[Deadline]) -> bool:
    """Take ``lock``, waiting no longer than the deadline leaves nor past an interrupt of the
    current interrupter; whether it was taken."""
    interrupter = current_interrupter.get()
    while True:
        if interrupter is not None and interrupter.interrupted:
            return False
        left = None if deadline is None else deadline.remaining()
        if left is not None and left <= 0:
            return lock.acquire(blocking=False)
        if interrupter is not None:
            left = LOCK_CHECK_EVERY if left is None else min(left, LOCK_CHECK_EVERY)
        if lock.acquire(timeout=-1 if left is None else left):
            return True


def _shut_down(connection: Any) -> None:
    sock = getattr(connection, "sock", None)
    if isinstance(sock, socket.socket):
        # The plain socket's shutdown, under TLS too: the reading thread owns the TLS state.
        # An OSError means it is closed already: nothing to cut.
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _register(connection: Any) -> None:
    interrupter = current_interrupter.get()
    if interrupter is not None:
        interrupter.register(connection)


class _PoolQueue(queue.LifoQueue[Any]):
    """urllib3's queue of idle connections, without a lock that a Ctrl-C can leave taken.

    ``queue.LifoQueue`` takes its mutex through ``threading.Condition.__enter__``, a Python
    method: a ``KeyboardInterrupt`` that lands after the lock is acquired and before that
    method returns leaves the mutex held for good. The next ``get`` or ``put`` then waits
    for ever: urllib3's own clean-up of the interrupted request (``_put_conn`` in the
    ``finally`` of ``urlopen``), or the thread reading an event stream when the cancelled
    stream hands its connection back, which ``BlockingWait`` then joins. The pools never
    block on this queue (``pool_block`` is off), so its non-blocking ``get`` and ``put`` take
    the mutex itself in a ``with``: a C lock is entered and its block set up without a
    point where an interrupt can fall between them.
    """

    def get(self, block: bool = True, timeout: Optional[float] = None) -> Any:
        if block:
            return super().get(block, timeout)
        with self.mutex:
            if not self._qsize():
                raise queue.Empty
            item = self._get()
            self.not_full.notify()
            return item

    def put(self, item: Any, block: bool = True, timeout: Optional[float] = None) -> None:
        if block:
            super().put(item, block, timeout)
            return
        with self.mutex:
            if 0 < self.maxsize <= self._qsize():
                raise queue.Full
            self._put(item)
            self.unfinished_tasks += 1
            self.not_empty.notify()


class _Registering:
    """Mixed into urllib3's pools: each connection a request goes out on is registered, and
    the idle connections wait in a :class:`_PoolQueue`."""

    QueueCls = _PoolQueue

    def _make_request(self, conn: Any, *args: Any, **kwargs: Any) -> Any:
        _register(conn)
        return super()._make_request(conn, *args, **kwargs)  # type: ignore[misc]


class _HTTPPool(_Registering, HTTPConnectionPool):
    pass


class _HTTPSPool(_Registering, HTTPSConnectionPool):
    pass


_POOLS = {"http": _HTTPPool, "https": _HTTPSPool}


class InterruptibleAdapter(HTTPAdapter):
    """requests' adapter, whose connections register with the current :class:`Interrupter`."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = _POOLS
        return manager
