"""Realistic wire data for the benchmarks, built from the spec examples in tests/data/examples.

Job events are 500-700 bytes on the wire (``event: <name>\\r\\ndata: <json>\\r\\n\\r\\n``), with
varied job types, ids, functions, timestamps and payloads; list items and full job documents
are the spec examples with fresh ids, names and dates. Everything is deterministic (seeded).
"""

from __future__ import annotations

import copy
import json
import random
import string
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parent.parent / "tests" / "data" / "examples"
API = "https://api.waylay.io/registry/v2"
_ALNUM = string.ascii_letters + string.digits
_HEX = "0123456789abcdef"
_FUNCTIONS = (
    ("plugs", "plug", "plugs", "node-20", "1.1.0"),
    ("webscripts", "webscript", "webscripts", "python-3.11", "0.2.4"),
    ("kfserving", "model", "models", "byoml-sklearn-1.3", "1.0.0"),
)
_NAMES = (
    "temperatureCheck",
    "orderHook",
    "demandForecast",
    "alarmRelay",
    "meterSync",
    "vibrationScore",
    "co2Alert",
    "fleetTracker",
)
_JOB_TYPES = ("build", "deploy", "verify", "undeploy", "scale")
_REASONS = (
    "Function {f} did not become ready within 300s (ImagePullBackOff)",
    "Build of {f} failed: npm ERR! code ELIFECYCLE",
    "Deployment {f} was deleted while verifying",
)

ACK = b"event: ack\r\ndata: Listening for events of build job bench\r\n\r\n"
CLOSE = b"event: close\r\ndata: Job build bench completed\r\n\r\n"
KEEP_ALIVE = b"event: keep-alive\r\ndata: keep-alive\r\n\r\n"


def job_id(rng: random.Random) -> str:
    """``<uuid4>$<20 letters/digits>``, like the service's ids."""
    h = "".join(rng.choice(_HEX) for _ in range(32))
    tail = "".join(rng.choice(_ALNUM) for _ in range(20))
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}${tail}"


def _timestamp(rng: random.Random) -> str:
    return (
        f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:"
        f"{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}.{rng.randint(0, 999):03d}Z"
    )


def _function(rng: random.Random) -> tuple[dict[str, Any], str, str]:
    ftype, link_key, collection, runtime, runtime_version = rng.choice(_FUNCTIONS)
    name = rng.choice(_NAMES)
    version = f"{rng.randint(0, 3)}.{rng.randint(0, 12)}.{rng.randint(0, 20)}"
    function = {
        "functionType": ftype,
        "name": name,
        "version": version,
        "runtime": runtime,
        "runtimeVersion": runtime_version,
    }
    return function, link_key, f"{API}/{collection}/{name}/versions/{version}"


def _payload(rng: random.Random, name: str, function: dict[str, Any]) -> dict[str, Any]:
    if name == "waiting":
        return {"prev": "delayed"} if rng.random() < 0.2 else {}
    if name == "active":
        return {"prev": "waiting"}
    if name == "completed":
        digest = "".join(rng.choice(_HEX) for _ in range(64))
        result = {"digest": f"sha256:{digest}", "status": "success"}
        return {"prev": "active", "returnvalue": result}
    if name == "failed":
        reason = rng.choice(_REASONS).format(f=f"{function['functionType']}-{function['name']}")
        return {"prev": "active", "failedReason": reason}
    if name == "delayed":
        return {"delay": 1714637170112 + rng.randint(0, 10**8)}
    return {}  # waiting-children


def job_event(rng: random.Random) -> bytes:
    """One realistic job event on the wire (CRLF), 500-700 bytes."""
    name = rng.choices(
        ("waiting", "active", "completed", "failed", "delayed", "waiting-children"),
        weights=(30, 30, 20, 8, 7, 5),
    )[0]
    job_type = rng.choice(_JOB_TYPES)
    jid = job_id(rng)
    function, link_key, entity_href = _function(rng)
    document = {
        "_links": {
            "job": {"href": f"{API}/jobs/{job_type}/{jid}", "jobType": job_type},
            link_key: {"href": entity_href},
        },
        "job": {"type": job_type, "id": jid},
        "data": _payload(rng, name, function),
        "timestamp": _timestamp(rng),
        "function": function,
    }
    wire = f"event: {name}\r\ndata: {json.dumps(document, separators=(',', ':'))}\r\n\r\n"
    encoded = wire.encode()
    assert 500 <= len(encoded) <= 700, (len(encoded), name)
    return encoded


def job_events(count: int, seed: int = 6) -> list[bytes]:
    """``count`` job events, each rendered for the wire."""
    rng = random.Random(seed)
    return [job_event(rng) for _ in range(count)]


def big_event(size: int) -> bytes:
    """One ``completed`` event whose data line is about ``size`` bytes (an oversized result)."""
    head = b'event: completed\r\ndata: {"job":{"type":"build","id":"big"},"data":{"returnvalue":"'
    return head + b"x" * size + b'"}}\r\n\r\n'


# -- documents ---------------------------------------------------------------------------------


def _load(name: str) -> Any:
    return json.loads((EXAMPLES / name).read_text(encoding="utf-8"))


def jobs_list(count: int, seed: int = 7) -> dict[str, Any]:
    """A ``JobsResponse`` with ``count`` summaries, varied from the two spec examples."""
    rng = random.Random(seed)
    templates = _load("jobs_list.json")["jobs"]
    jobs = []
    for i in range(count):
        item = copy.deepcopy(templates[i % len(templates)])
        jid = job_id(rng)
        function, link_key, entity_href = _function(rng)
        job_type = item["type"]
        item.update(
            id=jid,
            createdAt=_timestamp(rng),
            processedAt=_timestamp(rng),
            finishedAt=_timestamp(rng),
            attemptsMade=rng.randint(1, 3),
            state=rng.choice(("completed", "failed", "active", "waiting")),
            function=function,
        )
        item["_links"] = {
            "job": {"href": f"{API}/jobs/{job_type}/{jid}", "jobType": job_type},
            "event": {"href": f"{API}/jobs/events?type={job_type}&id={jid}&children=true"},
            link_key: {"href": entity_href},
        }
        jobs.append(item)
    return {"limit": count, "jobs": jobs}


def job_documents(count: int, seed: int = 8) -> list[dict[str, Any]]:
    """``count`` full ``JobResponse`` documents (completed builds and failed deploys)."""
    rng = random.Random(seed)
    templates = [_load("job_build_completed.json"), _load("job_deploy_failed.json")]
    documents = []
    for i in range(count):
        document = copy.deepcopy(templates[i % 2])
        jid = job_id(rng)
        function, link_key, entity_href = _function(rng)
        job = document["job"]
        job.update(
            createdAt=_timestamp(rng),
            processedAt=_timestamp(rng),
            finishedAt=_timestamp(rng),
            function=function,
        )
        job["job"].update(id=jid, processedOn=_timestamp(rng), finishedOn=_timestamp(rng))
        job["job"]["parent"] = {"id": job_id(rng)}
        document["_links"] = {
            "event": {"href": f"{API}/jobs/events?type={job['type']}&id={jid}&children=true"},
            link_key: {"href": entity_href},
        }
        documents.append(document)
    return documents


def job_document(job_type: str, jid: str, state: str) -> dict[str, Any]:
    """A ``JobResponse`` for the bench server's get endpoint (``completed`` or ``active``)."""
    document: dict[str, Any] = _load("job_build_completed.json")
    job = document["job"]
    job["type"] = job_type
    job["state"] = state
    job["job"]["id"] = jid
    job["job"].pop("parent", None)
    if state != "completed":
        job.pop("result", None)
        job.pop("finishedAt", None)
        job["job"].pop("finishedOn", None)
        job["job"]["progress"] = 50
    return document
