"""A local fake Waylay Function Registry: a real HTTP server on 127.0.0.1 for tests and demos.

It serves the three jobs endpoints and the token endpoint of the spec, plays scripted job
lifecycles on a scaled clock, and injects faults on demand. It is standard library only
and builds its wire JSON itself, so it checks the client rather than mirroring it.

Start and stop::

    from waylay_jobs.testing import FakeRegistry, Faults

    with FakeRegistry(speed=0.01) as reg:   # or reg = FakeRegistry().start(); ...; reg.stop()
        job_id = reg.add_job("build", "success")
        client = JobsClient(gateway_url=reg.url, token="anything")

``FakeRegistry(*, port=0, speed=1.0, keepalive_interval=15.0, api_key=None, api_secret=None,
tokens=(), token_ttl=3600.0, faults=None, default_limit=10, max_limit=100, created_by=...)``

* ``speed``: real seconds per nominal second. Script steps are nominally ``step`` seconds
  (default 1), so with the default step ``speed`` is the real seconds per job step, as in
  ``waylay-jobs demo --speed`` and ``python -m waylay_jobs.testing --speed``: ``speed=0.01``
  plays them 100x faster; ``speed=1`` is watchable.
* ``keepalive_interval``: real seconds of silence after which a stream gets a ``keep-alive``.
* Auth: with ``api_key``/``api_secret`` or ``tokens``, every jobs endpoint requires
  ``Authorization: Bearer <token>``; a token is valid if listed in ``tokens``, or issued by
  ``POST /accounts/v1/tokens?grant_type=client_credentials`` with JSON
  ``{"clientId": api_key, "clientSecret": api_secret}`` (or :meth:`FakeRegistry.issue_token`)
  and not expired (``token_ttl`` seconds; the JWT carries ``exp``) nor revoked. Else 401
  ``{"error", "statusCode"}``. Without credentials nothing is checked and any credentials
  get a token.
* ``stop()`` ends every stream and connection and joins every thread; a registry starts once.

Endpoints: ``GET /registry/v2/jobs/`` (filters ``type``, ``state``, ``functionType``: repeated
keys or comma-joined; ``createdBefore``/``createdAfter`` in all ``TimestampSpec`` forms;
``limit`` int or float text, echoed as applied, capped at ``max_limit``; newest first),
``GET /registry/v2/jobs/{type}/{id}`` (percent-decoded; 404 ``{"error":"Job build/x not
found","statusCode":404}``), ``GET /registry/v2/jobs/events`` (``type``, ``id``, ``children``),
``POST /accounts/v1/tokens``. Bad query or path values: 400 ``{"error","code","statusCode"}``.
Order of checks: route (404), faults, auth (401), validation (400).

Event streams: ``ack`` first; ``keep-alive`` after ``keepalive_interval`` of silence; one
event per write, CRLF, ``data: `` + one line of compact JSON. With ``id``: the job's events
(and its descendants' with ``children=true``), then ``close`` right after the job's final
``completed``/``failed``, then the body ends. Already finished: ``ack`` then ``close`` at
once. Unknown ``id``: ``ack`` and keep-alives (the job may still be added). No ``id``: all
events (of ``type``, if given), never closed.

Jobs (``type`` is the job type; ids look like ``<uuid4>$<20 letters/digits>``)::

    reg.add_job(type="build", script="success", *, id=None, function_type="plugs",
                function=None, operation="create", request=None, result=None, reason=None,
                step=1.0, retries=1, start=True, created_at=None, parent=None,
                faults=None) -> str
    reg.add_job_with_children(type="verify", children=("build", "deploy"), *, id=None,
                function_type="plugs", function=None, operation="create", failing=None,
                reason=None, step=1.0, start=True, faults=None) -> str   # the parent id
    reg.start_job(type, id)                    # start a script added with start=False
    reg.transition(job_type, job_id, state, *, progress=None, failed_reason=None,
                   result=None, final=True, delay_ms=None)              # manual mode
    reg.set_progress(job_type, job_id, progress)
    reg.get_job_state(job_type, job_id) -> str; reg.get_job(...) -> dict; reg.children(...)

``start``: ``True`` (now, or when the registry starts), ``False`` (wait for ``start_job``),
or ``"subscribe"`` (when the first stream that carries its events got its ``ack``: one
filtered on this job, or the tenant's stream of every type or of this one).

Scripts and their events (one step = ``step`` nominal seconds; ``[...]`` = same instant):

* ``success``: waiting, active, (progress 25/50/75, no events), completed (per-type result).
* ``fail``: waiting, active, (progress 40), failed (``reason``) -> close.
* ``retry``: waiting, active, [failed (not final), delayed], waiting, active, completed;
  repeated ``retries`` times; ``attemptsMade`` counts finished attempts (2 at the end).
* ``finished`` / ``finished-failed``: already completed/failed when added; no events.
* ``manual``: ``waiting`` and nothing more until ``transition()``.
* ``add_job_with_children``: parent P with ``children=(build, deploy)``: build's parent is
  deploy, deploy's parent is P. Events: P waiting-children, deploy waiting-children, build
  waiting, build active, [build completed, deploy waiting], deploy active, [deploy completed,
  P waiting], P active, P completed. With ``failing="build"``: [build failed, deploy failed,
  P failed]. A ``children=true`` stream on P gets them all; ``close`` follows P's final event.

``transition`` applies the state change and queues its event on every matching stream
before it returns (events for ``prioritized``/``unknown`` do not exist; only the state
changes). ``completed`` sets progress 100, ``finishedOn`` and a default result; ``failed``
and ``completed`` increment ``attemptsMade``; ``delayed`` sends ``{"delay": now_ms + delay_ms}``.

Faults (:class:`Faults`, frozen): pass ``faults=`` to the registry (every request of the
endpoint) or to ``add_job`` (requests about that job). ``times=K`` fails the first K
matching requests, then the endpoint works. See :class:`Faults` for every field: status
codes with ``Retry-After``, HTML pages, wrong content type, close-delimited framing, LF/CR
line ends, BOM, drop/stall after N events, truncated final event, malformed JSON, unknown
event, oversized event.

Observing: ``reg.requests`` (:class:`RecordedRequest`: method, path, raw query, headers,
body), ``reg.wait_for_requests(n, path=..., timeout=...)``, ``reg.wait_for_subscribers(n,
timeout)`` (streams that got their ``ack``; raises ``TimeoutError``),
``reg.wait_for_open_streams(n, timeout)`` (e.g. 0: the client hung up and the server noticed),
``reg.subscriptions``, ``reg.open_streams``, ``reg.errors`` (unexpected server exceptions;
should stay empty), ``reg.issue_token(ttl=None)``, ``reg.revoke_tokens()``.

Demo: ``python -m waylay_jobs.testing [--port N] [--speed SECONDS] [--every SECONDS]`` serves
until Ctrl-C, keeps adding jobs to watch, and prints the lines to paste into another shell
(``export WAYLAY_GATEWAY_URL=http://127.0.0.1:PORT`` and ``export WAYLAY_TOKEN=...``; the
registry checks no token) so that ``waylay-jobs`` and the examples use it.

Pytest: the ``fake_registry`` fixture (``speed=0.01``) and the ``make_fake_registry``
factory live in :mod:`waylay_jobs.testing.pytest_plugin`.
"""

from __future__ import annotations

from ._documents import new_job_id
from ._faults import Faults
from ._records import JOB_TYPES, STATES, RecordedRequest
from ._scripts import SCRIPTS
from ._server import FakeRegistry

__all__ = [
    "JOB_TYPES",
    "SCRIPTS",
    "STATES",
    "FakeRegistry",
    "Faults",
    "RecordedRequest",
    "new_job_id",
]
