"""Prompt reads from a streaming ``requests`` response, and cancelling them from another thread.

Iterating a ``requests`` response (``iter_content``, ``iter_lines``, or sseclient-py's own
recipe) holds a small event back until a whole buffer fills or the connection closes when the
body is close-delimited (no chunking, no length): measured in
``notes/streaming-and-waiting.md`` §3, the event arrived only at close. ``read1`` returns
whatever has arrived, after at most one ``recv``, for both framings.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from typing import Any, Callable, Optional

import requests
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import ReadTimeoutError

from ._exceptions import IdleTimeout, StreamError, StreamInterrupted

#: Bytes asked for per read; a read returns as soon as anything has arrived.
CHUNK_SIZE = 65536


def iter_chunks(response: requests.Response, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Yield the body's bytes as they arrive; ends at EOF.

    Raises:
        IdleTimeout: a read waited longer than the response's read timeout.
        StreamInterrupted: the connection broke (reset, incomplete chunked body, shut down).
    """
    read = _reader(response, chunk_size)
    while True:
        try:
            chunk = read()
        except (ReadTimeoutError, socket.timeout) as exc:
            raise IdleTimeout(
                "expected more of the event stream, got nothing within the idle timeout"
            ) from exc
        except (Urllib3Error, OSError, ValueError, AttributeError) as exc:
            # ValueError/AttributeError: http.client after the socket was shut down under it.
            raise StreamInterrupted(
                f"the event stream broke while reading: {type(exc).__name__}: {exc}"
            ) from exc
        if not chunk:
            return
        yield chunk


def _reader(response: requests.Response, chunk_size: int) -> Callable[[], bytes]:
    raw: Any = response.raw
    if hasattr(raw, "read1"):  # urllib3 >= 2.2
        return lambda: raw.read1(chunk_size, decode_content=True)
    # urllib3 1.26: no read1. Chunked bodies: urllib3's own chunk reader returns per chunk.
    if getattr(raw, "chunked", False) and raw.supports_chunked_reads():
        chunks = raw.read_chunked(chunk_size, decode_content=True)
        return lambda: next(chunks, b"")
    # Close-delimited: http.client's read1 (private route; urllib3 1.26 has no public one).
    # It bypasses urllib3's decoding, so refuse a compressed body rather than garble it.
    encoding = response.headers.get("Content-Encoding", "identity").lower()
    if encoding not in ("", "identity"):
        raise StreamError(
            f"expected an uncompressed event stream, got Content-Encoding: {encoding}"
        )
    fp = raw._fp
    return lambda: fp.read1(chunk_size)


def cancel_response(response: requests.Response) -> None:
    """Unblock a read of ``response`` that another thread is waiting in. Idempotent.

    ``response.close()`` alone does not wake a blocked ``recv`` (measured); shutting the socket
    down does. urllib3 >= 2.3 has ``shutdown()``; on older versions the socket is reached
    through the private ``_fp`` chain (``http.client.HTTPResponse.fp`` -> ``SocketIO``).
    """
    raw: Any = response.raw
    shutdown = getattr(raw, "shutdown", None)
    if shutdown is not None:
        shutdown()
        return
    sock = _socket_of(raw)
    if sock is not None:
        # Already closed or shut down: then there is nothing left to unblock.
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _socket_of(raw: Any) -> Optional[socket.socket]:
    fp = getattr(getattr(raw, "_fp", None), "fp", None)
    sock = getattr(getattr(fp, "raw", None), "_sock", None)
    return sock if isinstance(sock, socket.socket) else None

