"""The official async SDK's side of the benchmarks; runs only inside bench/.venv-sdk.

Usage (prints JSON):

* ``python bench/sdk_bench.py throughput BASE_URL EVENTS RUNS``: events/s of
  ``waylay_client.registry.jobs.events(...)`` driven with asyncio against the bench server,
  on both framings, and how many job events came out as the right pydantic class.
* ``python bench/sdk_bench.py decode JOBS RUNS``: per-job seconds of ``json.loads`` and of the
  SDK models' ``model_validate`` for a list response and for full job documents.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import logging
import sys
import time
from typing import Any

import corpus
from common import emit

FRAMINGS = ("chunked", "close")


def _token() -> str:
    """An unsigned JWT with the claims the SDK checks (it never verifies the signature)."""

    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    claims = {
        "tenant": "bench",
        "domain": "bench",
        "sub": "users/bench",
        "iat": int(time.time()),
        "exp": int(time.time()) + 3600,
    }
    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.c2ln"


async def _read(client: Any, jid: str) -> tuple[int, int]:
    from waylay.services.registry.models import StreamClosing

    seen = typed = 0
    stream = await client.registry.jobs.events(query={"type": "build", "id": jid})
    async for event in stream:
        if isinstance(event, StreamClosing):
            break  # the SDK does not stop on close itself (spec 6.4)
        data = getattr(event, "data", None)
        job = getattr(data, "job", None)
        if job is not None:
            seen += 1
            typed += type(event).__name__ != "StreamReady" and job.id is not None
        elif getattr(event, "event", None) not in ("ack", "keep-alive"):
            seen += 1  # an event the SDK could not type
    await stream.aclose()
    return seen, typed


async def _throughput(base: str, count: int, runs: int) -> dict[str, Any]:
    from waylay.sdk import WaylayClient

    client = WaylayClient.from_token(_token(), gateway_url=base)
    results: dict[str, Any] = {}
    for framing in FRAMINGS:
        rates = []
        typed_counts = []
        jid = f"tp-{framing}-{count}"
        await _read(client, jid)  # warm-up
        for _ in range(runs):
            start = time.perf_counter()
            seen, typed = await _read(client, jid)
            rates.append(count / (time.perf_counter() - start))
            typed_counts.append(typed)
        results[framing] = {
            "rates": rates,
            "typed": min(typed_counts),
            "events": count,
            "seen": seen,
        }
    await client.api_client.aclose()
    return results


def _decode(count: int, runs: int) -> dict[str, Any]:
    from waylay.services.registry.models import JobResponse, JobsResponse

    listing = json.dumps(corpus.jobs_list(count)).encode()
    documents = [json.dumps(d).encode() for d in corpus.job_documents(count)]
    JobsResponse.model_validate(json.loads(listing))  # warm-up: schema caches
    for body in documents[:10]:
        JobResponse.model_validate(json.loads(body))
    out: dict[str, list[float]] = {"list_loads": [], "list_sdk": [], "doc_loads": [], "doc_sdk": []}
    for _ in range(runs):
        gc.collect()  # each run starts from the same heap; the collector stays on
        start = time.perf_counter()
        data = json.loads(listing)
        loaded = time.perf_counter()
        JobsResponse.model_validate(data)
        done = time.perf_counter()
        out["list_loads"].append((loaded - start) / count)
        out["list_sdk"].append((done - loaded) / count)
        del data
        gc.collect()
        start = time.perf_counter()
        dicts = [json.loads(body) for body in documents]
        loaded = time.perf_counter()
        for item in dicts:
            JobResponse.model_validate(item)
        done = time.perf_counter()
        out["doc_loads"].append((loaded - start) / count)
        out["doc_sdk"].append((done - loaded) / count)
    return out


def main() -> None:
    """Dispatch on the mode in argv[1]."""
    logging.disable(logging.WARNING)  # the SDK logs a warning per event it cannot validate
    mode = sys.argv[1]
    if mode == "throughput":
        emit(asyncio.run(_throughput(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))))
    elif mode == "decode":
        emit(_decode(int(sys.argv[2]), int(sys.argv[3])))
    else:
        raise SystemExit(f"expected mode throughput or decode, got {mode!r}")


if __name__ == "__main__":
    main()
