"""Prompt reads from a streaming ``requests`` response, and cancelling them from another thread.

Iterating a ``requests`` response (``iter_content``, ``iter_lines``, or sseclient-py's own
recipe) holds a small event back until a buffer fills or the connection closes when the body
is close-delimited (no chunking, no length): in ``notes/streaming-and-waiting.md`` §3 the event
arrived only at close. ``read1`` returns whatever has arrived, after at most one ``recv``, for
both framings. urllib3 < 2.2 has no ``read1``; there the per-chunk reader is prompt for chunked
bodies, and http.client's own ``read1`` for close-delimited ones.

``raw`` bypasses requests' exception mapping, so urllib3/socket errors are mapped here.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
from collections.abc import Iterator
from typing import Any, Callable, Optional

import requests
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import ReadTimeoutError

from ._exceptions import StreamError
from ._http.core import stream_broken, stream_idle

#: Bytes asked for per read; a read returns as soon as anything has arrived.
CHUNK_SIZE = 65536

# socket.timeout is TimeoutError from Python 3.10; on 3.9 it is a separate OSError subclass.
_TIMEOUTS = (ReadTimeoutError, socket.timeout, TimeoutError)
_BROKEN = (Urllib3Error, http.client.HTTPException, OSError)


def iter_chunks(response: requests.Response, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Yield the body's bytes as soon as they arrive, in reads of at most ``chunk_size``.

    Ends at the end of the body.

    Raises:
        IdleTimeout: a read waited longer than the response's read timeout.
        StreamInterrupted: the connection broke (reset, incomplete chunked body, shut down).
        StreamError: a compressed body that this urllib3 cannot decode promptly.
    """
    read = _reader(response, chunk_size)
    while True:
        try:
            chunk = read()
        except _TIMEOUTS as exc:
            raise stream_idle() from exc
        except _BROKEN as exc:
            raise stream_broken(exc) from exc
        if not chunk:
            return
        yield chunk


def _reader(response: requests.Response, chunk_size: int) -> Callable[[], bytes]:
    raw: Any = response.raw
    if hasattr(raw, "read1"):  # urllib3 >= 2.2
        return lambda: raw.read1(chunk_size, decode_content=True)
    if raw.chunked and raw.supports_chunked_reads():
        # urllib3's chunk reader returns each HTTP chunk (or chunk_size of it) as it comes.
        chunks = raw.read_chunked(chunk_size, decode_content=True)
        return lambda: next(chunks, b"")
    # Close-delimited: http.client's read1 through urllib3's private ``_fp`` (there is no
    # public route before urllib3 2.2). It skips urllib3's decoding, so refuse compression
    # rather than hand compressed bytes to the parser.
    encoding = (response.headers.get("Content-Encoding") or "identity").strip().lower()
    if encoding != "identity":
        raise StreamError(
            f"expected an uncompressed event stream, got Content-Encoding: {encoding} "
            f"(decoding it promptly needs urllib3 >= 2.2)"
        )
    fp = raw._fp
    return lambda: fp.read1(chunk_size)


def cancel_response(response: requests.Response) -> None:
    """Unblock a read of ``response`` that another thread is waiting in.

    Idempotent, and a no-op once the response is closed. ``response.close()`` does not wake a
    blocked ``recv`` (measured); shutting the socket down does. urllib3 >= 2.3 has
    ``HTTPResponse.shutdown()``. Before that the socket is reached through private attributes,
    as docker-py's ``CancellableStream`` does: ``raw._fp`` (``http.client.HTTPResponse``)
    ``.fp`` (the ``BufferedReader`` of ``socket.makefile``) ``.raw`` (``SocketIO``) ``._sock``,
    else ``raw._connection.sock``. The caller must not close the response concurrently.
    """
    raw: Any = response.raw
    if hasattr(raw, "shutdown"):
        if raw.closed or getattr(raw, "_connection", True) is None:
            return  # closed, or its connection is back in the pool (and may be reused)
        # ValueError/RuntimeError: closed or released by the reading thread (at the end of
        # the body) between the check and the call; OSError: already shut down. Either way
        # there is nothing left to unblock.
        with contextlib.suppress(ValueError, RuntimeError, OSError):
            raw.shutdown()
        return
    sock = _socket_of(raw)
    if sock is not None:
        with contextlib.suppress(OSError):  # already shut down or closed
            sock.shutdown(socket.SHUT_RDWR)


def _socket_of(raw: Any) -> Optional[socket.socket]:
    fp = getattr(getattr(raw, "_fp", None), "fp", None)
    sock = getattr(getattr(fp, "raw", None), "_sock", None)
    if not isinstance(sock, socket.socket):
        sock = getattr(getattr(raw, "_connection", None), "sock", None)
    return sock if isinstance(sock, socket.socket) else None
