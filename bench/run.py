"""Run every benchmark and print one markdown report (also written to bench/results.md).

Usage, from the repository root, with the project venv::

    .venv/bin/python bench/run.py            # about 6 minutes on 2 cores
    .venv/bin/python bench/run.py --quick    # fewer runs and samples, for a smoke test
    .venv/bin/python bench/run.py --only many  # only wait_all vs wait_for threads (~2 minutes)
    .venv/bin/python bench/run.py --docs README.md docs/performance.md  # also refresh them

The trigger row (``trigger_scale.py``: Airflow's ``WaylayJobTrigger``, many in one event loop)
needs Airflow 3 and httpx: it runs with this interpreter when it has them, else with the
``.venv-airflow3`` that ``.ci/airflow.sh`` creates, and is skipped (said so) without either.

The official async SDK runs only in its own venv, bench/.venv-sdk; it is created on first use
(``python -m venv`` + ``pip install waylay-sdk-registry waylay-sdk-registry-types
waylay-sdk-core 'pydantic<2.12'``). Everything runs against local servers on 127.0.0.1: the
stdlib bench server (server.py, its own process) and, for the scale test, the FakeRegistry.
Every figure is the median over repeated runs with [min-max], and every ratio is taken within
one run (the figure and its baseline measured back to back) before the median is taken.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import BENCH, ROOT, bench_server, percentile, summary

from waylay_jobs._http.blocking import POOL_MAXSIZE

SDK_VENV = BENCH / ".venv-sdk"
SDK_PYTHON = SDK_VENV / "bin" / "python"
SDK_PACKAGES = (
    "waylay-sdk-registry",
    "waylay-sdk-registry-types",
    "waylay-sdk-core",
    "pydantic<2.12",
)
OURS_ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
AIRFLOW_PYTHON = ROOT / ".venv-airflow3" / "bin" / "python"  # Airflow 3.3 of .ci/airflow.sh
SDK_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}

IMPORT_REQUESTS = (
    "import time; t0 = time.perf_counter(); import requests; t1 = time.perf_counter(); "
    "import waylay_jobs; t2 = time.perf_counter(); "
    "waylay_jobs.JobsClient('http://127.0.0.1:9').close(); t3 = time.perf_counter(); "
    "print(t1 - t0, t2 - t1, t3 - t0)"
)
IMPORT_SDK = (
    "import time; t0 = time.perf_counter(); from waylay.sdk import WaylayClient; "
    "import waylay.services.registry; t1 = time.perf_counter(); "
    "WaylayClient.from_token('a.b.c', gateway_url='http://127.0.0.1:9').registry.jobs; "
    "import waylay.services.registry.models; t2 = time.perf_counter(); print(t1 - t0, t2 - t0)"
)


def check_interpreter() -> None:
    """Fail early, with the fix, when this Python lacks what the bench scripts import."""
    probe = "import requests, sseclient, dataclasses_json, waylay_jobs"
    proc = subprocess.run([sys.executable, "-c", probe], env=OURS_ENV, capture_output=True)
    if proc.returncode != 0:
        raise SystemExit(
            f"expected a Python with requests, sseclient-py, dataclasses-json and waylay_jobs "
            f"(the project venv: .venv/bin/python bench/run.py), got {sys.executable}:\n"
            + proc.stderr.decode(errors="replace").strip().splitlines()[-1]
        )


def ensure_sdk_venv() -> bool:
    """Create bench/.venv-sdk with the official SDK when it is missing; False if impossible."""
    if SDK_PYTHON.exists():
        return True
    print(f"creating {SDK_VENV} with {', '.join(SDK_PACKAGES)} ...", file=sys.stderr)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(SDK_VENV)], check=True)
        subprocess.run([str(SDK_PYTHON), "-m", "pip", "install", "-q", *SDK_PACKAGES], check=True)
    except subprocess.CalledProcessError as exc:
        print(
            f"could not set up the official SDK ({exc}); its columns are skipped", file=sys.stderr
        )
        return False
    return True


def airflow_python() -> str | None:
    """An interpreter with Airflow 3 and httpx for the trigger row, or None."""
    probe = "import airflow.sdk, httpx, psutil"
    for candidate in (sys.executable, str(AIRFLOW_PYTHON)):
        if not Path(candidate).exists():
            continue
        proc = subprocess.run([candidate, "-c", probe], env=OURS_ENV, capture_output=True)
        if proc.returncode == 0:
            return candidate
    return None


def run_json(argv: list[str], *, sdk: bool = False) -> Any:
    """Run a bench script in a fresh process and parse the JSON it prints last."""
    proc = subprocess.run(
        argv,
        cwd=BENCH,
        env=SDK_ENV if sdk else OURS_ENV,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[1:3])} failed ({proc.returncode}):\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def log(message: str) -> None:
    """Progress on stderr, so stdout stays the report."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- measurements ------------------------------------------------------------------------------


def measure(opts: argparse.Namespace, sdk: bool) -> dict[str, Any]:
    """Every measurement; the raw results."""
    py = sys.executable
    out: dict[str, Any] = {}
    # A pip install compiles the package's bytecode, as it did for requests and the SDK; a
    # checkout run with PYTHONDONTWRITEBYTECODE=1 would instead compile every module of ours
    # in every fresh process (26 ms of each cold start here). compileall writes the caches
    # whatever that variable says.
    subprocess.run([py, "-m", "compileall", "-q", str(ROOT / "waylay_jobs")], check=True)
    if opts.only == "many":
        return {"many": measure_many(opts)}
    with bench_server() as base:
        # First, while the server is idle (after the memory runs it may still be closing
        # the big streams).
        log(f"cold start: {opts.coldstarts} fresh processes each, plain and waylay_jobs")
        out["coldstart"] = measure_coldstart(base, opts.coldstarts)
        log(f"throughput: {opts.events} events x {opts.runs} runs x 2 framings x 3 consumers")
        out["throughput"] = run_json([py, "throughput.py", base, str(opts.events), str(opts.runs)])
        if sdk:
            log(f"throughput, official SDK: {opts.sdk_events} events x {opts.sdk_runs} runs")
            out["sdk_throughput"] = run_json(
                [
                    str(SDK_PYTHON),
                    "sdk_bench.py",
                    "throughput",
                    base,
                    str(opts.sdk_events),
                    str(opts.sdk_runs),
                ],
                sdk=True,
            )
        log(f"close latency: {opts.samples} samples x {opts.lat_runs} runs")
        out["latency"] = run_json([py, "latency.py", base, str(opts.samples), str(opts.lat_runs)])
        log(f"memory: {opts.mem_events} events, fresh processes x {opts.mem_runs} runs")
        out["memory"] = [
            run_json([py, "memory.py", base, consumer, framing, str(opts.mem_events)])
            for _ in range(opts.mem_runs)
            for framing in ("chunked", "close")
            for consumer in ("raw", "waylay_jobs")
        ]
        out["big"] = [
            run_json([py, "memory.py", base, "big", framing, str(opts.big_size)])
            for framing in ("chunked", "close")
        ]
    log(f"decode: {opts.jobs} jobs x {opts.decode_runs} runs")
    out["decode"] = run_json([py, "decode.py", str(opts.jobs), str(opts.decode_runs)])
    if sdk:
        out["sdk_decode"] = run_json(
            [str(SDK_PYTHON), "sdk_bench.py", "decode", str(opts.jobs), str(opts.decode_runs)],
            sdk=True,
        )
    log(f"import time: {opts.imports} fresh processes each")
    out["imports"] = measure_imports(opts.imports, sdk)
    log(f"deadline overrun: the fault matrix x {opts.deadline_runs} runs")
    out["deadline"] = run_json([py, "deadline.py", str(opts.deadline_runs)])
    log(f"scale: {opts.waiters} concurrent wait_for x {opts.scale_runs} runs")
    out["scale"] = run_json(
        [py, "scale.py", str(opts.waiters), str(opts.spread), str(opts.scale_runs)]
    )
    out["many"] = measure_many(opts)
    af_py = airflow_python()
    if af_py is None:
        log("triggers: skipped (no interpreter with Airflow 3 and httpx; run .ci/airflow.sh)")
    else:
        log(f"triggers: {opts.triggers} in one event loop x {opts.trigger_runs} runs ({af_py})")
        # One fresh process per run: a second run in the same process would reuse the memory
        # the first one freed, and its RSS per trigger would mean nothing. Each seed runs the
        # triggers (one shared stream) and the baseline (a stream per trigger, as before).
        runs = [
            run_json(
                [
                    af_py,
                    "trigger_scale.py",
                    str(opts.triggers),
                    str(opts.trigger_spread),
                    "1",
                    str(seed),
                    *mode,
                ]
            )["runs"][0]
            for seed in range(opts.trigger_runs)
            for mode in ([], ["per-trigger"])
        ]
        out["triggers"] = {"runs": runs}
    return out


def measure_many(opts: argparse.Namespace) -> list[dict[str, Any]]:
    """``wait_all`` and the ``wait_for`` threads back to back, each in a fresh process, per run."""
    log(
        f"many: {opts.many_jobs} jobs ending over {opts.many_spread:g} s, wait_all vs "
        f"{opts.many_jobs} wait_for threads, x {opts.many_runs} runs"
    )
    runs = []
    for seed in range(opts.many_runs):
        args = [str(opts.many_jobs), str(opts.many_spread), str(seed)]
        runs.append(
            {
                mode: run_json([sys.executable, "many.py", mode, *args])
                for mode in ("wait_all", "threads")
            }
        )
    return runs


def report_many(
    runs: list[dict[str, Any]], opts: argparse.Namespace
) -> tuple[list[str], list[str]]:
    """The target rows and the details section of the many-jobs measurement."""
    targets: list[str] = []

    def target(measure: str, ours: str, baseline: str, figure: str, goal: str, ok: bool) -> None:
        targets.append(f"| {measure} | {ours} | {baseline} | {figure} | {goal} | {verdict(ok)} |")

    def col(mode: str, pick: Any) -> list[float]:
        return [float(pick(run[mode])) for run in runs]

    def requests(r: dict[str, Any]) -> int:
        return int(sum(r["requests"].values()))

    def p99(r: dict[str, Any]) -> float:
        return percentile(r["latencies"], 0.99) if r["latencies"] else float("inf")

    def ratio(pick: Any) -> list[float]:
        return [float(pick(run["wait_all"])) / float(pick(run["threads"])) for run in runs]

    n = opts.many_jobs
    all_right = all(
        r[m]["right"] == r[m]["jobs"] and not r[m]["errors"] and not r[m]["server_errors"]
        for r in runs
        for m in ("wait_all", "threads")
    )
    streams = col("wait_all", lambda r: r["requests"]["events"])
    target(
        f"many: {n:,} jobs, `wait_all` event-stream connections",
        fmt(streams),
        f"{fmt(col('threads', lambda r: r['requests']['events']))} (`wait_for` threads)",
        fmt(streams),
        "<= 2, all right",
        max(streams) <= 2 and all_right,
    )
    ours_p99 = col("wait_all", p99)
    target(
        f"many: {n:,} jobs, job end -> reported, p99",
        f"{fmt(ours_p99, 1000, 1)} ms",
        f"{fmt(col('threads', p99), 1000, 1)} ms",
        f"{fmt(ours_p99, 1000, 1)} ms",
        "<= 50 ms",
        summary(ours_p99)["median"] <= 0.050,
    )
    rss = col("wait_all", lambda r: r["rss_growth_mb"])
    target(
        f"many: {n:,} jobs, peak RSS growth",
        f"{fmt(rss, digits=1)} MB",
        f"{fmt(col('threads', lambda r: r['rss_growth_mb']), digits=1)} MB",
        f"{fmt(rss, digits=1)} MB",
        "< 20 MB",
        max(rss) < 20,
    )
    for label, pick in (
        ("connections opened", lambda r: r["connections"]),
        ("requests sent", requests),
        ("CPU seconds", lambda r: r["cpu_s"]),
    ):
        ratios = ratio(pick)
        target(
            f"many: {n:,} jobs, {label}",
            fmt(col("wait_all", pick), digits=2 if label == "CPU seconds" else 0),
            fmt(col("threads", pick), digits=2 if label == "CPU seconds" else 0),
            f"{fmt(ratios, digits=3)} of the threads",
            "<= 0.5 of the threads",
            summary(ratios)["median"] <= 0.5,
        )

    details = [
        f"### Many jobs ({n:,} manual jobs of five types, about 1 in 5 failing, ending at random "
        f"within {opts.many_spread:g} s; FakeRegistry in its own process; each mode in a fresh "
        f"process; median [min-max] of {len(runs)} runs)",
        "",
        "`wait_all`: one `client.as_completed(jobs)` (the `wait_all` machine, each job handed "
        "over as it ends). Threads: one thread per job calling `client.wait_for(job)` on one "
        "shared client. Latency: from the server's `transition()` to the job's report.",
        "",
        "| figure | `wait_all` | `wait_for` threads | `wait_all` / threads |",
        "|---|---|---|---|",
    ]
    rows: list[tuple[str, Any, int, float]] = [
        ("right outcome", lambda r: r["right"], 0, 1),
        ("connections opened", lambda r: r["connections"], 0, 1),
        ("event-stream subscriptions", lambda r: r["requests"]["events"], 0, 1),
        ("`list` requests", lambda r: r["requests"]["list"], 0, 1),
        ("`get` requests", lambda r: r["requests"]["get"], 0, 1),
        ("requests, all", requests, 0, 1),
        ("peak threads (besides the main one)", lambda r: r["peak_threads"], 0, 1),
        ("peak RSS growth, MB", lambda r: r["rss_growth_mb"], 1, 1),
        ("CPU seconds", lambda r: r["cpu_s"], 2, 1),
        ("wall seconds", lambda r: r["wall_s"], 1, 1),
        ("end -> report p50, ms", lambda r: percentile(r["latencies"], 0.5), 1, 1000),
        ("end -> report p99, ms", p99, 1, 1000),
        ("end -> report max, ms", lambda r: max(r["latencies"]), 1, 1000),
    ]
    for label, pick, digits, scale in rows:
        ours, theirs = col("wait_all", pick), col("threads", pick)
        ratio_text = "-"  # no ratio to a baseline of zero
        if all(theirs):
            ratio_text = fmt([a / b for a, b in zip(ours, theirs)], digits=3)
        details.append(
            f"| {label} | {fmt(ours, scale, digits)} | {fmt(theirs, scale, digits)} "
            f"| {ratio_text} |"
        )
    details.append("")
    return targets, details


def measure_coldstart(base: str, count: int) -> dict[str, list[dict[str, float]]]:
    """``coldstart.py`` in fresh interpreters, plain and ours alternating, after one warm-up
    each (the bench server renders its bodies, the bytecode caches are written)."""
    result: dict[str, list[dict[str, float]]] = {"plain": [], "ours": []}
    for i in range(count + 1):
        for mode in ("plain", "ours"):
            figures = run_json([sys.executable, "coldstart.py", mode, base])
            if i:
                result[mode].append(figures)
    return result


def measure_imports(count: int, sdk: bool) -> dict[str, list[float]]:
    """Import times in fresh interpreters, all from cached bytecode.

    The .pyc files go to a temporary PYTHONPYCACHEPREFIX (written by one warm-up run each),
    so PYTHONDONTWRITEBYTECODE or a read-only checkout cannot make one side compile its
    sources on every run while the other loads bytecode.
    """
    keys = ("requests", "waylay_jobs", "ours_ready", "sdk", "sdk_ready")
    result: dict[str, list[float]] = {key: [] for key in keys}
    with tempfile.TemporaryDirectory() as cache:
        ours_env = {**OURS_ENV, "PYTHONPYCACHEPREFIX": cache}
        sdk_env = {**SDK_ENV, "PYTHONPYCACHEPREFIX": cache}
        for env in (ours_env, sdk_env):
            env.pop("PYTHONDONTWRITEBYTECODE", None)
        for i in range(count + 1):
            out = _run_text([sys.executable, "-c", IMPORT_REQUESTS], ROOT, ours_env)
            if i:
                requests_s, added_s, ready_s = map(float, out.split())
                result["requests"].append(requests_s)
                result["waylay_jobs"].append(added_s)
                result["ours_ready"].append(ready_s)
            if sdk:
                out = _run_text([str(SDK_PYTHON), "-c", IMPORT_SDK], BENCH, sdk_env)
                if i:
                    client_s, ready_s = map(float, out.split())
                    result["sdk"].append(client_s)
                    result["sdk_ready"].append(ready_s)
    return result


def _run_text(argv: list[str], cwd: Path, env: dict[str, str]) -> str:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=True).stdout


# -- report ------------------------------------------------------------------------------------


def fmt(values: list[float], scale: float = 1.0, digits: int = 0, unit: str = "") -> str:
    """``median [min-max]`` of scaled values."""
    s = summary([v * scale for v in values])
    return f"{s['median']:,.{digits}f} [{s['min']:,.{digits}f}-{s['max']:,.{digits}f}]{unit}"


def verdict(ok: bool) -> str:
    """PASS or MISS."""
    return "PASS" if ok else "**MISS**"


def report(raw: dict[str, Any], opts: argparse.Namespace, sdk: bool) -> str:
    """The markdown report: targets first, then the details of each measurement."""
    if opts.only == "many":
        many_targets, many_details = report_many(raw["many"], opts)
        return "\n".join(_head(opts) + many_targets + [""] + many_details) + "\n"
    targets: list[str] = []
    details: list[str] = []

    def target(measure: str, ours: str, baseline: str, figure: str, goal: str, ok: bool) -> None:
        targets.append(f"| {measure} | {ours} | {baseline} | {figure} | {goal} | {verdict(ok)} |")

    # throughput
    tp = raw["throughput"]
    details += [
        f"### Event throughput ({opts.events:,} job events of 500-700 bytes; events/s; "
        f"median [min-max] of {opts.runs} runs)",
        "",
        "| consumer | chunked | close-delimited | ratio to raw, chunked | ratio to raw, close |",
        "|---|---|---|---|---|",
    ]
    labels = {
        "raw": "raw lower bound (`raw.read1` + split + `json.loads`)",
        "sseclient": "sseclient-py README recipe (`SSEClient(resp)`) + `json.loads`",
        "waylay_jobs": "**waylay_jobs** `client.events()` (typed events)",
    }
    for name, label in labels.items():
        cells = [fmt(tp[f][name]) for f in ("chunked", "close")]
        for f in ("chunked", "close"):
            cells.append(fmt([a / b for a, b in zip(tp[f][name], tp[f]["raw"])], digits=2))
        details.append(f"| {label} | {' | '.join(cells)} |")
    for f in ("chunked", "close"):
        ours_r = [a / b for a, b in zip(tp[f]["waylay_jobs"], tp[f]["raw"])]
        target(
            f"event throughput, {f}",
            fmt(tp[f]["waylay_jobs"], unit=" ev/s"),
            fmt(tp[f]["raw"], unit=" ev/s"),
            f"{fmt(ours_r, digits=2)} of raw",
            ">= 0.6",
            summary(ours_r)["median"] >= 0.6,
        )
    if sdk:
        st = raw["sdk_throughput"]
        cells = [fmt(st[f]["rates"]) for f in ("chunked", "close")]
        ours = {f: summary(tp[f]["waylay_jobs"])["median"] for f in ("chunked", "close")}
        cells += [
            f"waylay_jobs is {ours[f] / summary(st[f]['rates'])['median']:,.0f}x faster"
            for f in ("chunked", "close")
        ]
        details.append(
            f"| official async SDK `registry.jobs.events()` ({opts.sdk_events:,} events, "
            f"{opts.sdk_runs} runs; typed right: {st['chunked']['typed']:,} chunked, "
            f"{st['close']['typed']:,} close) | {' | '.join(cells)} |"
        )
    details.append("")

    # latency
    lat = raw["latency"]
    hold = lat["hold"]
    lat_labels = {
        "raw": "raw lower bound (`raw.read1`), close event read",
        "sseclient": "sseclient-py README recipe, close event read",
        "events": "**waylay_jobs** `client.events()`, `CloseEvent` yielded",
        "wait_for": "**waylay_jobs** `client.wait_for()` returned (incl. its final get)",
    }
    details += [
        f"### Close latency (server writes `close` -> consumer has it; ms; p50 and p99 of "
        f"{opts.samples} samples per run, median [min-max] of {opts.lat_runs} runs)",
        "",
        "| consumer | chunked p50 | chunked p99 | close-delimited p50 | close-delimited p99 |",
        "|---|---|---|---|---|",
    ]
    for name, label in lat_labels.items():
        cells = []
        for f in ("chunked", "close"):
            runs = lat["results"][f][name]
            if min(min(r) for r in runs) >= 0.9 * hold:
                cells += [f">= {hold:g} s (held until close)"] * 2
                continue
            cells.append(fmt([percentile(r, 0.5) for r in runs], 1000, 2))
            cells.append(fmt([percentile(r, 0.99) for r in runs], 1000, 2))
        details.append(f"| {label} | {' | '.join(cells)} |")
    details.append("")
    for f in ("chunked", "close"):
        p50 = [percentile(r, 0.5) for r in lat["results"][f]["wait_for"]]
        p99 = [percentile(r, 0.99) for r in lat["results"][f]["wait_for"]]
        raw_p50 = [percentile(r, 0.5) for r in lat["results"][f]["raw"]]
        target(
            f"close latency, {f}: `wait_for` returned",
            f"p50 {fmt(p50, 1000, 2)} ms, p99 {fmt(p99, 1000, 2)} ms",
            f"raw reader has `close`: p50 {fmt(raw_p50, 1000, 2)} ms",
            f"p50 {fmt(p50, 1000, 2)} ms",
            "<= 5 ms p50",
            summary(p50)["median"] <= 0.005,
        )

    # decode
    dec = raw["decode"]
    details += [
        f"### Decode cost per job (µs; {opts.jobs:,} jobs; median [min-max] of "
        f"{opts.decode_runs} runs; GC on)",
        "",
        "| document | `json.loads` | waylay_jobs decode (after loads) | (loads + decode) / loads "
        "| naive dataclasses-json `from_dict` | official SDK pydantic `model_validate` "
        "(its loads) |",
        "|---|---|---|---|---|---|",
    ]
    for key, label, model, goal in (
        ("list", "list item (1000-job `JobsResponse`)", "JobsResponse", 3),
        ("doc", "full job document (`JobResponse`)", "JobResponse", 2),
    ):
        loads, ours = dec[f"{key}_loads"], dec[f"{key}_ours"]
        ratio = [(a + b) / a for a, b in zip(loads, ours)]
        sdk_cell = "n/a"
        if sdk:
            sd = raw["sdk_decode"]
            sdk_cell = (
                f"{fmt(sd[f'{key}_sdk'], 1e6, 1)} ({fmt(sd[f'{key}_loads'], 1e6, 1)}) `{model}`"
            )
        details.append(
            f"| {label} | {fmt(loads, 1e6, 1)} | {fmt(ours, 1e6, 1)} | {fmt(ratio, digits=2)} | "
            f"{fmt(dec[f'{key}_naive'], 1e6, 1)} | {sdk_cell} |"
        )
        target(
            f"decode, {label}",
            f"{fmt(ours, 1e6, 1)} µs + loads",
            f"`json.loads` {fmt(loads, 1e6, 1)} µs",
            f"{fmt(ratio, digits=2)}x loads",
            f"<= {goal}x",
            summary(ratio)["median"] <= goal,
        )
    details.append("")

    # imports
    imp = raw["imports"]
    details += [
        f"### Import time (ms, fresh interpreter, from cached bytecode, median [min-max] of "
        f"{opts.imports})",
        "",
        "| import | ms |",
        "|---|---|",
        f"| `import requests` | {fmt(imp['requests'], 1000, 1)} |",
        f"| `import waylay_jobs`, after requests (added) | {fmt(imp['waylay_jobs'], 1000, 1)} |",
        "| ready to call: `import requests, waylay_jobs` + `JobsClient(url)` | "
        f"{fmt(imp['ours_ready'], 1000, 1)} |",
    ]
    if sdk:
        details += [
            "| official SDK, the import lines only: `from waylay.sdk import WaylayClient; "
            f"import waylay.services.registry` | {fmt(imp['sdk'], 1000, 1)} |",
            "| official SDK, ready to call: those imports + `WaylayClient.from_token(...)` + "
            "`.registry.jobs` (building the client loads the plugin and its models) | "
            f"{fmt(imp['sdk_ready'], 1000, 1)} |",
        ]
        ready = summary(imp["ours_ready"])["median"]
        ready_ratio = ready / summary(imp["sdk_ready"])["median"]
        bare = ready / summary(imp["sdk"])["median"]
        target(
            "import, ready to call: requests + waylay_jobs + client vs the SDK's client + "
            "registry plugin",
            f"{ready * 1000:.1f} ms",
            f"SDK {fmt(imp['sdk_ready'], 1000, 1)} ms",
            f"{ready_ratio:.2f} of the SDK ({bare:.2f} of its bare import lines)",
            "<= 0.2",
            ready_ratio <= 0.2,
        )
    details.append("")

    # cold start
    cold = raw["coldstart"]
    details += [
        f"### Cold start (ms from the start of a fresh process; median [min-max] of "
        f"{opts.coldstarts} runs, plain and waylay_jobs alternating; `bench/coldstart.py`)",
        "",
        "| milestone | plain `requests` + `json` | waylay_jobs | added (per run pair) |",
        "|---|---|---|---|",
    ]
    for key, label in (
        ("job", "first job in hand: imports, client or session, `GET` of a job, decoded"),
        ("event", "then the first job event: a streaming `GET` of the events, decoded"),
    ):
        plain = [run[key] for run in cold["plain"]]
        ours = [run[key] for run in cold["ours"]]
        added = [a - b for a, b in zip(ours, plain)]
        details.append(
            f"| {label} | {fmt(plain, 1000, 1)} | {fmt(ours, 1000, 1)} | {fmt(added, 1000, 1)} |"
        )
        target(
            f"cold start to the first {'decoded job' if key == 'job' else 'job event'}",
            f"{fmt(ours, 1000, 1)} ms",
            f"plain requests + json {fmt(plain, 1000, 1)} ms",
            f"+{fmt(added, 1000, 1)} ms",
            "<= +40 ms",
            summary(added)["median"] <= 0.040,
        )
    details.append("")

    # memory
    mem = raw["memory"]
    details += [
        f"### Memory (peak RSS growth while streaming {opts.mem_events:,} events, MB; fresh "
        f"process each; median [min-max] of {opts.mem_runs})",
        "",
        "| consumer | chunked | close-delimited |",
        "|---|---|---|",
    ]
    growth: dict[tuple[str, str], list[float]] = {}
    for item in mem:
        growth.setdefault((item["consumer"], item["framing"]), []).append(item["growth_mb"])
    for consumer, label in (("raw", "raw lower bound"), ("waylay_jobs", "**waylay_jobs**")):
        cells = [fmt(growth[(consumer, f)], digits=2) for f in ("chunked", "close")]
        details.append(f"| {label} | {' | '.join(cells)} |")
    worst = max(summary(growth[("waylay_jobs", f)])["median"] for f in ("chunked", "close"))
    target(
        f"RSS growth over {opts.mem_events:,} events",
        f"{worst:.2f} MB (worse framing)",
        f"raw {max(summary(growth[('raw', f)])['median'] for f in ('chunked', 'close')):.2f} MB",
        f"{worst:.2f} MB",
        "< 10 MB",
        worst < 10,
    )
    big = raw["big"]
    limit = big[0].get("limit", 0)
    bound_mb = 2 * limit / 2**20 + 8
    details += [
        "",
        f"Oversized event: one {opts.big_size / 2**20:.0f} MB event, default "
        f"`max_event_size` = {limit / 2**20:.0f} MB.",
        "",
        "| framing | raised | peak RSS growth (MB) |",
        "|---|---|---|",
    ]
    for item in big:
        details.append(f"| {item['framing']} | {item.get('raised')} | {item['growth_mb']:.1f} |")
    big_ok = all(i.get("raised") == "EventTooLarge" and i["growth_mb"] <= bound_mb for i in big)
    target(
        f"oversized event ({opts.big_size / 2**20:.0f} MB) rejected",
        ", ".join(f"{i.get('raised')} at +{i['growth_mb']:.1f} MB" for i in big),
        f"limit {limit / 2**20:.0f} MB",
        f"max +{max(i['growth_mb'] for i in big):.1f} MB",
        f"raised, growth <= 2x limit + 8 MB ({bound_mb:.0f} MB)",
        big_ok,
    )
    details.append("")

    # scale
    sc = raw["scale"]
    runs = sc["runs"]
    details += [
        f"### Scale ({opts.waiters} concurrent `wait_for` threads on one shared client; "
        f"FakeRegistry in its own process, manual jobs ending at random times within "
        f"{opts.spread:g} s)",
        "",
        "ms from the `transition()` call to: the terminal event reaching `on_event` "
        "(server + stream), and `wait_for` returning (after its confirming get).",
        "",
        "| run | right outcome | failed among them | hung | errors | event p50 | event p99 "
        "| return p50 | return p99 | return max |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(runs):
        d = r["delays"] or [float("nan")]
        e = r["delivered"] or [float("nan")]
        figures = [percentile(e, 0.5), percentile(e, 0.99)]
        figures += [percentile(d, 0.5), percentile(d, 0.99), max(d)]
        details.append(
            f"| {i + 1} | {r['right']}/{r['waiters']} | {r['failed_expected']} | {r['hung']} | "
            f"{len(r['errors']) + r['server_errors']} | "
            + " | ".join(f"{c * 1000:.1f}" for c in figures)
            + " |"
        )
    details.append(
        f'\nurllib3 "Connection pool is full, discarding connection" warnings logged: '
        f"{sc['pool_full_warnings']} (the client's session pools up to {POOL_MAXSIZE} "
        "connections per host; connections beyond that are closed after use, with a warning)."
    )
    all_right = all(
        r["right"] == r["waiters"] and not r["hung"] and not r["errors"] and not r["server_errors"]
        for r in runs
    )
    p50s = [percentile(r["delays"], 0.5) for r in runs if r["delays"]]
    p99s = [percentile(r["delays"], 0.99) for r in runs if r["delays"]]
    target(
        f"scale: {opts.waiters} concurrent `wait_for`, one client",
        f"{sum(r['right'] for r in runs)}/{sum(r['waiters'] for r in runs)} right, "
        f"{sum(r['hung'] for r in runs)} hung",
        "-",
        f"end -> return p50 {fmt(p50s, 1000, 1)} ms, p99 {fmt(p99s, 1000, 1)} ms",
        "all right, none hung",
        all_right,
    )

    report_deadline(raw["deadline"], target, details)
    many_targets, many_details = report_many(raw["many"], opts)
    targets += many_targets
    details += many_details
    if "triggers" in raw:
        trigger_report(raw["triggers"]["runs"], opts, target, details)

    return "\n".join(_head(opts) + targets + [""] + details) + "\n"


def _head(opts: argparse.Namespace) -> list[str]:
    return [
        "## Benchmark results",
        "",
        f"`{opts.command}` on {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d %H:%M')}. Local servers on 127.0.0.1.",
        "",
        "| target | waylay_jobs | baseline | figure (median [min-max]) | target | result |",
        "|---|---|---|---|---|---|",
    ]


def report_deadline(dl: dict[str, Any], target: Any, details: list[str]) -> None:
    """The deadline overrun rows: every scenario within ``timeout`` + 0.25 s, nothing open."""
    timeout = dl["timeout"]
    waits = list(dict.fromkeys(sc["wait"] for sc in dl["scenarios"]))
    details += [
        f"### Deadline overrun (`timeout={timeout:g}` on jobs that never end, one fault each, "
        "default retries; seconds past the timeout, median [min-max]; `wait_all` waits for "
        "two jobs; `async`: the asyncio driver)",
        "",
        "| fault | raised | " + " | ".join(f"`{w}`" for w in waits) + " | sockets left open |",
        "|---|---|" + "---|" * len(waits) + "---|",
    ]
    worst, worst_name, all_ok = float("-inf"), "", True
    names = list(dict.fromkeys(sc["name"] for sc in dl["scenarios"]))
    for name in names:
        cells, errors, left_open = [], set(), 0
        for sc in (sc for sc in dl["scenarios"] if sc["name"] == name):
            overruns = [e - timeout for e in sc["elapsed"]]
            right = all(err == sc["expected"] for err in sc["errors"])
            all_ok &= right and sc["left_open"] == 0 and max(overruns) <= 0.25
            if max(overruns) > worst:
                worst, worst_name = max(overruns), f"{name}, {sc['wait']}"
            errors |= set(sc["errors"]) if right else {f"{e} (WRONG)" for e in sc["errors"]}
            left_open = max(left_open, sc["left_open"])
            cells.append(fmt(overruns, 1, 3))
        details.append(
            f"| {name} | {', '.join(sorted(errors))} | {' | '.join(cells)} | {left_open} |"
        )
    details.append("")
    target(
        f"deadline overrun: {len(names)} faults x {len(waits)} waits, `timeout={timeout:g}`",
        f"largest +{worst:.3f} s ({worst_name})",
        f"the timeout, {timeout:g} s",
        f"max elapsed - timeout {worst:+.3f} s",
        "<= 0.25 s, right exception, no socket open",
        all_ok,
    )
    ref = dl["refused_no_timeout"]
    ref_ok = all(e == "TransportError" for e in ref["errors"]) and ref["left_open"] == 0
    ref_ok &= max(ref["elapsed"]) <= 10.0
    target(
        "refused connection, `timeout=None`",
        ", ".join(sorted(set(ref["errors"]))),
        "-",
        f"error after {fmt(ref['elapsed'], 1, 2)} s",
        "TransportError within 10 s",
        ref_ok,
    )


def trigger_report(
    runs: list[dict[str, Any]], opts: argparse.Namespace, target: Any, details: list[str]
) -> None:
    """The trigger row and its details: many WaylayJobTriggers in one loop over one shared
    stream, beside the baseline of a stream per trigger (the previous release's trigger) and
    the requests and CPU of one round of reschedule-sensor pokes for the same jobs."""
    details += [
        "",
        f"### Triggers ({opts.triggers} `WaylayJobTrigger`s in one asyncio loop, as in a "
        f"triggerer; FakeRegistry in its own process; manual jobs ending at random times within "
        f"{opts.trigger_spread:g} s once every trigger follows its job)",
        "",
        "ms from the `transition()` call to the trigger's `TriggerEvent` (after its confirming "
        "get). `shared`: the triggers as shipped, one event stream for the loop; `per-trigger`: "
        "the baseline, each trigger over a stream and an httpx client of its own (the previous "
        "release). Beside it, "
        "one round of reschedule-sensor pokes for the same jobs: one poke per job, each a new "
        "client, one `get`, closed, as `WaylayJobSensor.poke` does.",
        "",
        "| run | mode | right outcome | hung | errors | event streams | requests (whole wait) "
        "| p50 | p99 | max | threads (before -> max) | peak RSS MB | KB per trigger "
        "| CPU s (whole wait) | one poke round: requests, CPU s, wall s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(runs):
        d = r["delays"] or [float("nan")]
        pk = r["poke_round"]
        details.append(
            f"| {i // 2 + 1} | {r['mode']} | {r['right']}/{r['triggers']} | {r['hung']} | "
            f"{len(r['errors']) + r['server_errors']} | {r['streams']} | {r['server_requests']} "
            f"| {percentile(d, 0.5) * 1000:.1f} | {percentile(d, 0.99) * 1000:.1f} | "
            f"{max(d) * 1000:.1f} | {r['threads_before']} -> {r['threads_max']} | "
            f"{r['rss_peak_mb']:.0f} | {r['kb_per_trigger']:.0f} | {r['cpu_s']:.2f} | "
            f"{pk['requests']}, {pk['cpu_s']:.2f}, {pk['wall_s']:.2f} |"
        )
    details.append(
        "\nA reschedule-mode sensor repeats its poke round every `poke_interval` for as long as "
        "the job runs (and each poke also costs a task start on a worker, not counted here), "
        "and notices the end up to `poke_interval` late; a trigger's cost is fixed per wait."
    )
    shared = [r for r in runs if r["mode"] == "shared"]
    own = [r for r in runs if r["mode"] == "per-trigger"]
    ok = all(
        r["right"] == r["triggers"]
        and not r["hung"]
        and not r["errors"]
        and not r["server_errors"]
        and r["delays"]
        and max(r["delays"]) < 1.0
        and r["threads_max"] - r["threads_before"] <= 4
        for r in runs
    ) and all(r["streams"] <= 2 for r in shared)

    def figures(rs: list[dict[str, Any]]) -> str:
        return (
            f"{fmt([r['streams'] for r in rs], digits=0)} streams, "
            f"{fmt([r['server_requests'] for r in rs], digits=0)} requests; end -> TriggerEvent "
            f"p50 {fmt([percentile(r['delays'], 0.5) for r in rs], 1000, 1)} ms, "
            f"p99 {fmt([percentile(r['delays'], 0.99) for r in rs], 1000, 1)} ms; "
            f"{fmt([r['cpu_s'] for r in rs], digits=2)} CPU s"
        )

    target(
        f"triggers: {opts.triggers} `WaylayJobTrigger`s in one loop",
        figures(shared) + f"; threads {max(r['threads_max'] for r in shared)}",
        "a stream per trigger (previous release): " + figures(own),
        f"max {max(max(r['delays'] or [0.0]) for r in shared) * 1000:.0f} ms; "
        f"{own[0]['poke_round']['requests']} reschedule pokes: "
        f"{fmt([r['poke_round']['cpu_s'] for r in runs], digits=2)} CPU s",
        "<= 2 streams, all right, each end < 1 s, threads flat",
        ok,
    )


def update_docs(path: Path, text: str) -> None:
    """Put the report into ``path`` between its markers: the summary (the run's header line and
    the targets table) between ``<!-- bench:summary -->`` and ``<!-- /bench:summary -->``,
    the whole report between ``<!-- bench:details -->`` and ``<!-- /bench:details -->``."""
    body = text.replace("## Benchmark results\n", "", 1).replace("\n### ", "\n#### ").strip()
    summary_text = body.split("\n####", 1)[0].strip()
    current = path.read_text(encoding="utf-8")
    updated = current
    for name, content in (("summary", summary_text), ("details", body)):
        start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
        if start in updated and end in updated:
            head, rest = updated.split(start, 1)
            updated = f"{head}{start}\n{content}\n{end}{rest.split(end, 1)[1]}"
    if updated == current and "<!-- bench:" not in current:
        raise SystemExit(f"expected <!-- bench:summary --> or <!-- bench:details --> in {path}")
    path.write_text(updated, encoding="utf-8")
    log(f"updated {path}")


def main() -> None:
    """Parse options, measure, print and save the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs and samples")
    parser.add_argument("--no-sdk", action="store_true", help="skip the official SDK")
    parser.add_argument(
        "--only", choices=["many"], help="run one measurement only (not written to results.md)"
    )
    parser.add_argument("--out", type=Path, default=BENCH / "results.md")
    parser.add_argument("--json", type=Path, help="also save the raw measurements here")
    parser.add_argument(
        "--docs",
        type=Path,
        nargs="*",
        default=[],
        help="also put the results between the bench markers of these files "
        "(README.md docs/performance.md)",
    )
    opts = parser.parse_args()
    quick = opts.quick
    opts.events = 20_000
    opts.runs = 2 if quick else 5
    opts.sdk_events = 2_000
    opts.sdk_runs = 1 if quick else 3
    opts.samples = 30 if quick else 100
    opts.lat_runs = 1 if quick else 3
    opts.jobs = 1000
    opts.decode_runs = 3 if quick else 9
    opts.imports = 3 if quick else 10
    opts.coldstarts = 5 if quick else 15
    opts.mem_events = 200_000
    opts.mem_runs = 1 if quick else 3
    opts.big_size = 50 * 2**20
    opts.waiters = 200
    opts.spread = 3.0
    opts.scale_runs = 1 if quick else 3
    opts.deadline_runs = 1 if quick else 3
    opts.many_jobs = 1000
    opts.many_spread = 10.0
    opts.many_runs = 1 if quick else 3
    opts.triggers = 500
    opts.trigger_spread = 10.0
    opts.trigger_runs = 1 if quick else 3
    opts.command = "python bench/run.py" + (" --quick" if quick else "")
    opts.command += f" --only {opts.only}" if opts.only else ""
    check_interpreter()
    sdk = not opts.no_sdk and not opts.only and ensure_sdk_venv()
    started = time.monotonic()
    results = measure(opts, sdk)
    text = report(results, opts, sdk)
    text += f"\nTotal bench time: {time.monotonic() - started:.0f} s.\n"
    print(text)
    if opts.json is not None:
        opts.json.write_text(json.dumps(results), encoding="utf-8")
    if opts.only:
        return  # a partial report must not replace the full one
    opts.out.write_text(text, encoding="utf-8")
    for path in opts.docs:
        update_docs(path, text)
    log(f"written {opts.out}")


if __name__ == "__main__":
    main()
