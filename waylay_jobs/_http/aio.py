"""The httpx transport of the asyncio wait: ``get`` and the event stream over ``httpx.AsyncClient``.

Airflow's deferrable sensor hands its wait to a trigger, and a triggerer runs thousands of
triggers in one event loop: no thread and no blocking call may be spent per wait. This module
sends the requests of such a wait with ``await``: ``get`` and ``list`` (one attempt each: the
wait machine decides what to retry and when), the event stream through the library's SSE
framing (:class:`~waylay_jobs._sse.SSEDecoder`, pushed bytes as they arrive) and event
decoding. What to send and what an answer means is decided by :mod:`~waylay_jobs._http.core`,
as for the ``requests`` transport. The driver is ``waylay_jobs._wait.aio``.

All waits of one event loop share one ``httpx.AsyncClient`` (a few keep-alive connections,
one TLS context) and, per API key, one token; the triggers of a loop share one stream
(:mod:`waylay_jobs._wait.shared`), which is one more connection of that client. Cancelling the
task that waits closes its stream's connection at once. Needs ``httpx`` (Airflow 3 depends on it);
the rest of the library never imports this module.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import weakref
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any, Optional

import httpx

from .._config import Credentials
from .._defaults import DEFAULT_MAX_EVENT_SIZE
from .._endpoints import EVENTS_PATH, JOBS_PATH, job_path
from .._events import decode_stream
from .._exceptions import ApiError, StreamError, TransportError
from .._models import (
    CloseEvent,
    Event,
    JobResponse,
    JobsResponse,
    decode_job_response,
    decode_jobs_response,
)
from .._policy import DEFAULT_POLICY, Deadline, RetryPolicy
from .._sse import PAUSE, SSEDecoder
from .core import (
    DEFAULT_TIMEOUT,
    JSON_EXPECTED,
    JSON_HEADERS,
    STREAM_EXPECTED,
    STREAM_HEADERS,
    VALID_JSON_EXPECTED,
    Answer,
    Params,
    api_error,
    json_accepted,
    mask,
    normalize_gateway_url,
    plain_http_hint,
    request_headers,
    stream_broken,
    stream_idle,
    stream_refused,
    token_from_answer,
    token_not_in_time,
    token_request,
    token_url,
    transport_error,
)

logger = logging.getLogger("waylay_jobs")

# One client and one token cache per event loop: an AsyncClient's connections belong to the
# loop that opened them, and a triggerer runs all its triggers in one loop.
_CLIENTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Shared] = (
    weakref.WeakKeyDictionary()
)
_TOKENS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, ...], _Token]] = (
    weakref.WeakKeyDictionary()
)


@dataclass
class _Shared:
    client: httpx.AsyncClient
    closer: AsyncGenerator[None, None]


async def _close_at_loop_end(client: httpx.AsyncClient) -> AsyncGenerator[None, None]:
    # An async generator left suspended here is closed by the loop's shutdown_asyncgens(),
    # which asyncio.run() (the triggerer's loop, dag.test()'s in-line trigger) awaits before it
    # closes the loop: the pooled keep-alive connections are closed then, not left to the GC.
    try:
        yield
    finally:
        await client.aclose()


async def _shared() -> _Shared:
    """What the waits of the running event loop share: the client of their requests and
    streams (a few keep-alive connections for every wait's ``get``, one TLS context); created
    on first use, closed when the loop shuts down (``asyncio.run`` ending)."""
    loop = asyncio.get_running_loop()
    shared = _CLIENTS.get(loop)
    if shared is None or shared.client.is_closed:
        client = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=32),
            follow_redirects=True,
        )
        closer = _close_at_loop_end(client)
        await closer.__anext__()  # started: the loop now tracks it (weakly; kept in _Shared)
        shared = _CLIENTS[loop] = _Shared(client, closer)
    return shared


# -- responses to exceptions ------------------------------------------------------------------


def error_from_httpx(response: httpx.Response, *, expected: str, body: bytes) -> ApiError:
    """The exception ``error_from_response`` gives for the same answer (see
    :func:`~waylay_jobs._http.core.api_error`), for an httpx response (``response`` is left
    ``None``: the attribute holds a ``requests.Response``)."""
    return api_error(
        method=response.request.method,
        target=response.request.url.raw_path.decode("ascii", errors="replace"),
        answer=_answer(response, body),
        expected=expected,
        now=time.time(),
    )


def _answer(response: httpx.Response, body: bytes) -> Answer:
    headers = response.headers
    return Answer(
        response.status_code, headers.get("Content-Type"), body, headers.get("Retry-After")
    )


def _has_request(exc: httpx.RequestError) -> bool:
    try:
        exc.request  # noqa: B018 - httpx raises RuntimeError when the error has none
    except RuntimeError:
        return False
    return True


def _failed(what: str, exc: httpx.HTTPError, expected: str = "a response") -> TransportError:
    """A :class:`TransportError` for an httpx failure; as for ``requests``, only a read that
    timed out on an open connection counts as the server having answered."""
    failed = not isinstance(exc, (httpx.ReadTimeout, httpx.WriteTimeout, httpx.PoolTimeout))
    url = str(exc.request.url) if isinstance(exc, httpx.RequestError) and _has_request(exc) else ""
    hint = plain_http_hint(str(exc), url) if isinstance(exc, httpx.ConnectError) else ""
    return transport_error(what, exc, connect_failed=failed, hint=hint, expected=expected)


async def _read_some(response: httpx.Response, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in response.aiter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size >= limit:
                break
    except httpx.HTTPError as exc:
        chunks.append(f" [body unreadable: {type(exc).__name__}]".encode())
    return b"".join(chunks)[:limit]


# -- auth ---------------------------------------------------------------------------------------


@dataclass
class _Token:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    value: Optional[str] = None
    renew_at: float = 0.0


class _Auth:
    """The ``Authorization`` header for a request: a fixed token, or one from an API key pair
    (fetched once per event loop and key, renewed before ``exp`` and after a 401)."""

    def __init__(self, credentials: Credentials, gateway_url: str) -> None:
        self.token = credentials.token
        self.api_key = credentials.api_key
        self.api_secret = credentials.api_secret
        self.tenant_id = credentials.tenant_id
        self.token_url = token_url(gateway_url, credentials.accounts_url)

    def __repr__(self) -> str:
        if self.token:
            return "_Auth(token='***')"
        if self.api_key:
            return f"_Auth(api_key={mask(self.api_key)!r})"
        return "_Auth(none)"

    @property
    def renewable(self) -> bool:
        return self.token is None and self.api_key is not None

    def _slot(self) -> _Token:
        loop = asyncio.get_running_loop()
        key = (self.token_url, self.api_key or "", self.api_secret or "", self.tenant_id or "")
        slots = _TOKENS.setdefault(loop, {})
        slot = slots.get(key)
        if slot is None:
            slot = slots[key] = _Token()
        return slot

    async def header(
        self, client: httpx.AsyncClient, deadline: Optional[Deadline]
    ) -> Optional[str]:
        """The ``Authorization`` value (``None`` without credentials). Waiting for another
        task's token request lasts at most the time left before ``deadline``."""
        if self.token:
            return f"Bearer {self.token}"
        if not self.renewable:
            return None
        slot = self._slot()
        if not await _acquire(slot.lock, deadline):
            raise token_not_in_time(repr(self), "task")
        try:
            if slot.value is None or time.time() >= slot.renew_at:
                slot.value, slot.renew_at = await self._fetch(client, deadline)
            return f"Bearer {slot.value}"
        finally:
            slot.lock.release()

    def forget(self, authorization: Optional[str]) -> None:
        """Drop the token a request was rejected with (unless already replaced)."""
        if self.renewable:
            slot = self._slot()
            if slot.value is not None and authorization == f"Bearer {slot.value}":
                logger.info("the server rejected the token of %r; fetching a new one", self)
                slot.value = None

    async def _fetch(
        self, client: httpx.AsyncClient, deadline: Optional[Deadline]
    ) -> tuple[str, float]:
        assert self.api_key is not None
        assert self.api_secret is not None
        exchange = token_request(self.token_url, self.api_key, self.api_secret, self.tenant_id)
        try:
            response = await client.post(
                exchange.url,
                params=exchange.params,
                json=exchange.body,
                headers=request_headers(),
                timeout=_timeout(DEFAULT_TIMEOUT, deadline),
                # A 307/308 would re-send the secret to wherever it points: refuse instead.
                follow_redirects=False,
            )
        except httpx.HTTPError as exc:
            raise _failed(exchange.what, exc, "a token") from exc
        return token_from_answer(exchange, _answer(response, response.content), now=time.time())


async def _acquire(lock: asyncio.Lock, deadline: Optional[Deadline]) -> bool:
    """Take ``lock``, waiting at most the time left before ``deadline``; whether it was taken."""
    left = None if deadline is None else deadline.remaining()
    if left is None or not lock.locked():
        await lock.acquire()  # a free lock is taken at once, without a timer task
        return True
    try:
        await asyncio.wait_for(lock.acquire(), max(left, 0.0))
    except asyncio.TimeoutError:
        return False
    return True


def _timeout(pair: tuple[float, float], deadline: Optional[Deadline]) -> httpx.Timeout:
    connect, read = pair if deadline is None else deadline.cap_timeout(pair)
    return httpx.Timeout(read, connect=connect, pool=connect)


# -- the transport ------------------------------------------------------------------------------


class AsyncTransport:
    """The requests of a wait, sent through the loop's shared ``httpx.AsyncClient``.

    Args:
        credentials: the gateway and the token or key pair.
        timeout: (connect, read) seconds for a ``get`` (a stream's read timeout is the
            wait's idle timeout).
        policy: the retry policy of the waits driven over this transport (the wait machine
            retries; each request here is one attempt, plus one resend after a 401 with a
            renewed token).
        client: an ``httpx.AsyncClient`` to use instead of the loop's shared one, for requests
            and streams alike (not closed here).
    """

    def __init__(
        self,
        credentials: Credentials,
        *,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        policy: RetryPolicy = DEFAULT_POLICY,
        client: Optional[httpx.AsyncClient] = None,
    ) -> None:
        self.gateway_url = normalize_gateway_url(credentials.gateway_url)
        self.auth = _Auth(credentials, self.gateway_url)
        self.timeout = timeout
        self.policy = policy
        self._client = client

    def __repr__(self) -> str:
        return f"AsyncTransport(gateway_url={self.gateway_url!r}, auth={self.auth!r})"

    async def get_job(
        self, job_type: str, job_id: str, *, deadline: Optional[Deadline] = None
    ) -> JobResponse:
        """``GET /registry/v2/jobs/{type}/{id}``, decoded; one attempt."""
        document = await self._get_json(job_path(job_type, job_id), (), deadline)
        return decode_job_response(document)

    async def list_jobs(
        self, params: Params, *, deadline: Optional[Deadline] = None
    ) -> JobsResponse:
        """``GET /registry/v2/jobs/`` with the query ``params``, decoded as ``JobsClient.list``
        decodes it; one attempt."""
        return decode_jobs_response(await self._get_json(JOBS_PATH, params, deadline))

    async def open_events(
        self,
        params: Params,
        *,
        read_timeout: float,
        deadline: Optional[Deadline] = None,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
    ) -> AsyncEventStream:
        """``GET /registry/v2/jobs/events``: an open stream; never retried here."""
        pair = (self.timeout[0], read_timeout)
        response = await self._send(
            EVENTS_PATH, params, STREAM_HEADERS, deadline, pair, stream=True
        )
        try:
            limit = stream_refused(response.status_code, response.headers.get("Content-Type"))
            if limit is not None:
                body = await _read_some(response, limit)
                raise error_from_httpx(response, expected=STREAM_EXPECTED, body=body)
            return AsyncEventStream(response, max_event_size=max_event_size)
        except BaseException:
            await response.aclose()
            raise

    async def _get_json(self, path: str, params: Params, deadline: Optional[Deadline]) -> Any:
        response = await self._send(path, params, JSON_HEADERS, deadline)
        body = response.content
        if not json_accepted(response.status_code, response.headers.get("Content-Type")):
            raise error_from_httpx(response, expected=JSON_EXPECTED, body=body)
        try:
            return json.loads(body)
        except ValueError as exc:
            raise error_from_httpx(response, expected=VALID_JSON_EXPECTED, body=body) from exc

    async def _send(
        self,
        path: str,
        params: Params,
        headers: dict[str, str],
        deadline: Optional[Deadline],
        pair: Optional[tuple[float, float]] = None,
        *,
        stream: bool = False,
    ) -> httpx.Response:
        client = self._client or (await _shared()).client
        url = self.gateway_url + path
        for attempt in (1, 2):
            authorization = await self.auth.header(client, deadline)
            request = client.build_request(
                "GET",
                url,
                params=list(params),
                headers=request_headers(headers, authorization),
                timeout=_timeout(pair or self.timeout, deadline),
            )
            try:
                response = await client.send(request, stream=stream)
            except httpx.HTTPError as exc:
                raise _failed(f"GET {path}", exc) from exc
            if response.status_code == 401 and self.auth.renewable and attempt == 1:
                await response.aclose()
                self.auth.forget(authorization)
                continue  # one resend with a new token
            return response
        raise AssertionError("unreachable")  # pragma: no cover


class AsyncEventStream:
    """The typed events of one streaming response, each as soon as its bytes have arrived.

    :meth:`next` returns the next event, or raises :class:`StreamInterrupted` (the body ended
    before ``close``), :class:`IdleTimeout`, ``EventTooLarge`` or ``EventDecodeError``; after
    ``close`` the connection is released and :meth:`next` raises ``StopAsyncIteration``.
    """

    def __init__(
        self,
        response: httpx.Response,
        *,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
    ) -> None:
        self.response = response
        self._decoder = SSEDecoder(max_event_size=max_event_size)
        self._pending: deque[bytes] = deque()
        self._body_ended = False
        self._done = False
        self._bytes: AsyncIterator[bytes] = response.aiter_bytes()
        self._events = decode_stream(self._decoder, self._chunks())

    @property
    def retry(self) -> Optional[int]:
        """The reconnection delay the server asked for with ``retry:``, in milliseconds."""
        return self._decoder.retry

    def _chunks(self) -> Iterator[bytes]:
        while True:
            if self._pending:
                yield self._pending.popleft()
            elif self._body_ended:
                return
            else:
                yield PAUSE  # the decoder hands control back: await more bytes

    async def next(self) -> Event:
        """The next event (see the class docstring)."""
        if self._done:
            raise StopAsyncIteration
        try:
            event = next(self._events)
            while event is None:  # the decoder needs more bytes
                await self._receive()
                event = next(self._events)
        except StreamError:
            await self.aclose()
            raise
        if isinstance(event, CloseEvent):
            await self.aclose()
        return event

    async def _receive(self) -> None:
        try:
            chunk = await self._bytes.__anext__()
        except StopAsyncIteration:
            self._body_ended = True
            return
        except httpx.ReadTimeout as exc:
            raise stream_idle() from exc
        except httpx.HTTPError as exc:
            raise stream_broken(exc) from exc
        if chunk:
            self._pending.append(chunk)

    async def aclose(self) -> None:
        """Release the connection (closed, not pooled, when the body was not read to its end).
        Idempotent."""
        self._done = True
        await self.response.aclose()
