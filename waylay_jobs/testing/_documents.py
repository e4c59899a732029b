"""Wire JSON of the fake: list items, get responses, event envelopes, errors, tokens.

Everything here is a pure function of a :class:`JobRecord` (plus a base URL and a clock
value), built directly from the spec rather than from the client's models.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import random
import string
import uuid
from typing import Any, Optional
from urllib.parse import quote

from ._records import ENTITY_COLLECTIONS, ENTITY_KEYS, JobRecord

_ALNUM = string.ascii_letters + string.digits
_RUNTIMES = {
    "plugs": ("node-20", "1.1.0"),
    "webscripts": ("python-3.11", "0.2.4"),
    "kfserving": ("byoml-sklearn-1.3", "1.0.0"),
}
_FUNCTIONS = {
    "plugs": ("temperatureCheck", "1.0.2"),
    "webscripts": ("orderHook", "0.3.0"),
    "kfserving": ("demandForecast", "2.1.0"),
}
_REQUEST_OPERATIONS = (
    "create",
    "metadata-update",
    "assets-update",
    "rebuild",
    "verify",
    "publish",
    "deprecate",
    "undeploy",
    "undeprecate",
    "protect",
    "unprotect",
)


def new_job_id(rng: Optional[random.Random] = None) -> str:
    """A job id shaped like the real ones: ``<uuid4>$<20 random letters and digits>``."""
    chooser = rng or random.SystemRandom()
    return f"{uuid.uuid4()}${''.join(chooser.choice(_ALNUM) for _ in range(20))}"


def iso(when: dt.datetime) -> str:
    """``2024-05-02T09:14:03.512Z``: UTC, millisecond precision."""
    utc = when.astimezone(dt.timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def epoch_ms(when: dt.datetime) -> int:
    """Milliseconds since the epoch."""
    return int(when.timestamp() * 1000)


def default_function(function_type: str) -> dict[str, Any]:
    """A realistic ``FunctionRef`` for a function type."""
    name, version = _FUNCTIONS[function_type]
    runtime, runtime_version = _RUNTIMES[function_type]
    return {
        "functionType": function_type,
        "name": name,
        "version": version,
        "runtime": runtime,
        "runtimeVersion": runtime_version,
    }


def default_request(job_type: str, function: Optional[dict[str, Any]]) -> dict[str, Any]:
    """The per-type ``request`` (``BuildArgs``, ``DeployArgs``, ...) of a job."""
    ftype = (function or {}).get("functionType", "plugs")
    name = str((function or {}).get("name", "batch"))
    version = str((function or {}).get("version", "1.0.0"))
    runtime, runtime_version = _RUNTIMES.get(ftype, _RUNTIMES["plugs"])
    runtime = str((function or {}).get("runtime", runtime))
    runtime_version = str((function or {}).get("runtimeVersion", runtime_version))
    slug = f"{ftype}-{name.lower()}-{version.replace('.', '-')}"
    image = f"europe-docker.pkg.dev/waylay-functions/fake/{ftype}/{name.lower()}:{version}"
    revision = hashlib.sha1(f"{name}@{version}".encode(), usedforsecurity=False).hexdigest()
    runtime_fields = {
        "runtimeName": runtime,
        "runtimeVersion": runtime_version,
        "revision": revision,
    }
    service = {"namespace": "openfaas-fn", "endpoint": slug}
    if job_type == "build":
        storage = f"gs://registry-assets-fake/{ftype}/{name}/{version}"
        return {"storageLocation": storage, "imageName": image, **runtime_fields, "args": {}}
    if job_type == "deploy":
        return {**service, "imageName": image, **runtime_fields, "deploySpecOverrides": {}}
    if job_type == "verify":
        return {**service, **runtime_fields}
    if job_type == "undeploy":
        storage = f"gs://registry-assets-fake/{ftype}/{name}/{version}"
        return {
            "storageLocation": storage,
            "imageName": image,
            **service,
            **runtime_fields,
            "deleteEntity": False,
            "resetEntity": False,
            "deleteImage": False,
        }
    if job_type == "scale":
        return {**service, **runtime_fields, "replicas": 1}
    if job_type == "batch":
        return {"plugName": name, "functionType": ftype, "childType": "rebuild"}
    return {}


def default_result(job: JobRecord) -> dict[str, Any]:
    """A realistic per-type result (``BuildResult``, ``DeployResult``, ...) for ``job``."""
    request = job.request
    if job.type == "build":
        digest = hashlib.sha256(job.id.encode()).hexdigest()
        runtime = request.get("runtimeName", "node-20")
        log = [
            f"Step 1/6 : FROM {runtime}-base",
            'Step 6/6 : CMD ["fwatchdog"]',
            "Successfully pushed image",
        ]
        return {"digest": f"sha256:{digest}", "log": log, "status": "success"}
    if job.type == "deploy":
        spec = {
            "service": request.get("endpoint", "fake"),
            "image": request.get("imageName", ""),
            "namespace": request.get("namespace", "openfaas-fn"),
            "labels": {"com.waylay.scale-to-zero": "true"},
        }
        return {"deploySpec": spec}
    if job.type == "verify":
        return {"healthy": True, "replicas": 1}
    if job.type == "undeploy":
        return {"deployment": True, "assets": False, "registration": False, "image": False}
    if job.type == "scale":
        return {"replicas": request.get("replicas", 1)}
    if job.type == "batch":
        return {"jobCount": 3}
    if job.type == "notify":
        operation = job.operation if job.operation in _REQUEST_OPERATIONS else "create"
        return {"operation": operation}
    return {}


def _quoted(job_id: str) -> str:
    # `$` stays as the spec shows it; anything unsafe (space, `/`, ...) is escaped.
    return quote(job_id, safe="$")


def job_href(base: str, job_type: str, job_id: str) -> str:
    """``{base}/registry/v2/jobs/{type}/{id}``."""
    return f"{base}/registry/v2/jobs/{job_type}/{_quoted(job_id)}"


def event_href(base: str, job_type: str, job_id: str) -> str:
    """``{base}/registry/v2/jobs/events?type={type}&id={id}&children=true``."""
    return f"{base}/registry/v2/jobs/events?type={job_type}&id={_quoted(job_id)}&children=true"


def _entity_link(base: str, function: Optional[dict[str, Any]]) -> dict[str, Any]:
    if not function or function.get("functionType") not in ENTITY_KEYS:
        return {}
    ftype = function["functionType"]
    href = f"{base}/registry/v2/{ENTITY_COLLECTIONS[ftype]}/{quote(str(function['name']))}"
    if "version" in function:
        href += f"/versions/{quote(str(function['version']))}"
    return {ENTITY_KEYS[ftype]: {"href": href}}


def _status_fields(job: JobRecord) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "type": job.type,
        "operation": job.operation,
        "createdBy": job.created_by,
        "createdAt": iso(job.created_at),
    }
    if job.processed_at is not None:
        doc["processedAt"] = iso(job.processed_at)
    if job.finished_at is not None:
        doc["finishedAt"] = iso(job.finished_at)
    doc["attemptsMade"] = job.attempts_made
    doc["state"] = job.state
    return doc


def summary(job: JobRecord, base: str) -> dict[str, Any]:
    """One ``AnyJobStatusSummary`` list item."""
    doc = _status_fields(job)
    doc["id"] = job.id
    if job.function is not None:
        doc["function"] = dict(job.function)
    doc["_links"] = {
        "job": {"href": job_href(base, job.type, job.id), "jobType": job.type},
        "event": {"href": event_href(base, job.type, job.id)},
        **_entity_link(base, job.function),
    }
    return doc


def get_response(job: JobRecord, base: str) -> dict[str, Any]:
    """A ``JobResponse``: ``{"job": <AnyJobStatus>, "_links": ...}``."""
    status = _status_fields(job)
    status["request"] = job.request
    if job.result is not None and job.state == "completed":
        status["result"] = job.result
    if job.function is not None:
        status["function"] = dict(job.function)
    bull: dict[str, Any] = {
        "id": job.id,
        "name": job.type,
        "progress": job.progress,
        "attemptsMade": job.attempts_made,
    }
    if job.processed_at is not None:
        bull["processedOn"] = iso(job.processed_at)
    if job.finished_at is not None:
        bull["finishedOn"] = iso(job.finished_at)
    if job.failed_reason is not None:
        bull["failedReason"] = job.failed_reason
    if job.parent is not None:
        bull["parent"] = {"id": job.parent[1]}
    if job.delay_ms is not None:
        bull["delay"] = job.delay_ms
    status["job"] = bull
    links = {
        "event": {"href": event_href(base, job.type, job.id)},
        **_entity_link(base, job.function),
    }
    return {"job": status, "_links": links}


def event_function(job: JobRecord) -> dict[str, Any]:
    """The envelope's required ``function``; batch jobs get one built from their request."""
    if job.function is not None:
        return dict(job.function)
    ftype = job.request.get("functionType", "plugs")
    return {"functionType": ftype, "name": str(job.request.get("plugName", job.type))}


def event_envelope(
    job: JobRecord, base: str, data: dict[str, Any], when: dt.datetime
) -> dict[str, Any]:
    """A ``JobEventResponse``: the ``data:`` of one of the six job events."""
    function = event_function(job)
    links = {
        "job": {"href": job_href(base, job.type, job.id), "jobType": job.type},
        **_entity_link(base, function),
    }
    return {
        "_links": links,
        "job": {"type": job.type, "id": job.id},
        "data": data,
        "timestamp": iso(when),
        "function": function,
    }


def error_body(status: int, message: str, code: Optional[str] = None) -> dict[str, Any]:
    """``{"error", "statusCode"}`` (404 style), plus ``code`` (400/403 style) when given."""
    body: dict[str, Any] = {"error": message}
    if code is not None:
        body["code"] = code
    body["statusCode"] = status
    return body


def html_page(status: int, reason: str) -> str:
    """An nginx-like HTML error page, as a gateway in front of the registry sends."""
    title = f"{status} {reason}"
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    )


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def make_jwt(claims: dict[str, Any], rng: Optional[random.Random] = None) -> str:
    """A real-looking JWT ``header.payload.signature``; the signature is random bytes."""
    chooser = rng or random.SystemRandom()
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    signature = _b64url(bytes(chooser.getrandbits(8) for _ in range(32)))
    return f"{header}.{payload}.{signature}"


def compact(document: Any) -> str:
    """Compact one-line JSON, as the registry writes it."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)
