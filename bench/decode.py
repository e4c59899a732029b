"""Decode cost per job: a 1000-job list response and 1000 full job documents.

Usage: ``python bench/decode.py JOBS RUNS`` (prints JSON: seconds per job, one value per run).

For each run: ``json.loads`` of the bytes, then ``decode_jobs_response`` /
``decode_job_response`` of the loaded dicts (what ``client.list``/``client.get`` do after
``json.loads``), and naive dataclasses-json models (``from_dict``, camelCase letter case).
The garbage collector stays on, as in real use.
"""

from __future__ import annotations

import gc
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Optional

import corpus
from common import emit
from dataclasses_json import LetterCase, config, dataclass_json

from waylay_jobs._models import decode_job_response, decode_jobs_response


@dataclass_json(letter_case=LetterCase.CAMEL)
@dataclass
class NaiveFunction:
    """A naive ``FunctionRef``."""

    function_type: str
    name: str
    version: str
    runtime: Optional[str] = None
    runtime_version: Optional[str] = None


@dataclass_json(letter_case=LetterCase.CAMEL)
@dataclass
class NaiveSummary:
    """A naive list item."""

    type: str
    id: str
    operation: str
    created_by: str
    created_at: str
    state: str
    function: Optional[NaiveFunction] = None
    processed_at: Optional[str] = None
    finished_at: Optional[str] = None
    attempts_made: Optional[int] = None
    links: dict[str, Any] = field(default_factory=dict, metadata=config(field_name="_links"))


@dataclass_json
@dataclass
class NaiveJobs:
    """A naive ``JobsResponse``."""

    jobs: list[NaiveSummary]
    limit: Optional[float] = None


@dataclass_json(letter_case=LetterCase.CAMEL)
@dataclass
class NaiveDetails:
    """A naive ``job.job``."""

    id: str
    name: str
    progress: Optional[float] = None
    attempts_made: Optional[int] = None
    processed_on: Optional[str] = None
    finished_on: Optional[str] = None
    failed_reason: Optional[str] = None
    parent: Optional[dict[str, Any]] = None


@dataclass_json(letter_case=LetterCase.CAMEL)
@dataclass
class NaiveStatus:
    """A naive ``JobStatus``."""

    type: str
    operation: str
    created_by: str
    created_at: str
    state: str
    request: dict[str, Any]
    job: NaiveDetails
    function: Optional[NaiveFunction] = None
    result: Optional[dict[str, Any]] = None
    processed_at: Optional[str] = None
    finished_at: Optional[str] = None
    attempts_made: Optional[int] = None


@dataclass_json
@dataclass
class NaiveJob:
    """A naive ``JobResponse``."""

    job: NaiveStatus
    links: dict[str, Any] = field(default_factory=dict, metadata=config(field_name="_links"))


def main() -> None:
    """Print ``{series: [seconds per job per run]}``."""
    count, runs = int(sys.argv[1]), int(sys.argv[2])
    listing = json.dumps(corpus.jobs_list(count)).encode()
    documents = [json.dumps(d).encode() for d in corpus.job_documents(count)]
    decode_jobs_response(json.loads(listing))  # warm-up
    NaiveJobs.from_dict(json.loads(listing))  # type: ignore[attr-defined]
    out: dict[str, list[float]] = {
        key: []
        for key in ("list_loads", "list_ours", "list_naive", "doc_loads", "doc_ours", "doc_naive")
    }
    clock = time.perf_counter
    for _ in range(runs):
        gc.collect()  # each run starts from the same heap; the collector stays on
        start = clock()
        data = json.loads(listing)
        loaded = clock()
        decode_jobs_response(data)
        decoded = clock()
        NaiveJobs.from_dict(data)  # type: ignore[attr-defined]
        naive = clock()
        out["list_loads"].append((loaded - start) / count)
        out["list_ours"].append((decoded - loaded) / count)
        out["list_naive"].append((naive - decoded) / count)
        del data
        gc.collect()
        start = clock()
        dicts = [json.loads(body) for body in documents]
        loaded = clock()
        for item in dicts:
            decode_job_response(item)
        decoded = clock()
        for item in dicts:
            NaiveJob.from_dict(item)  # type: ignore[attr-defined]
        naive = clock()
        out["doc_loads"].append((loaded - start) / count)
        out["doc_ours"].append((decoded - loaded) / count)
        out["doc_naive"].append((naive - decoded) / count)
    emit(out)


if __name__ == "__main__":
    main()
