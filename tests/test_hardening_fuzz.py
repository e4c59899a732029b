"""Fuzzing the typed event pipeline (bytes -> SSEDecoder -> parse_event -> EventStream).

Whatever bytes arrive, however they are split into reads, the pipeline raises nothing but
the library's own exceptions, never yields an event larger than the limit, never ends
quietly before ``close``, and holds memory bounded by the event size limit rather than by
the length of the stream. ``test_sse_conformance.py`` checks the decoder's WHATWG rules;
this file checks the whole typed pipeline against hostile input.
"""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from waylay_jobs import (
    CloseEvent,
    EventStream,
    EventTooLarge,
    JobsError,
    StreamInterrupted,
)
from waylay_jobs._models import JOB_EVENT_NAMES, parse_event
from waylay_jobs._sse import SSEDecoder

DATA = Path(__file__).parent / "data" / "examples"
LIMIT = 64 * 1024


def _example_events() -> list[tuple[str, Any]]:
    decoded = SSEDecoder().iter_events([(DATA / "events_build_transcript.sse").read_bytes()])
    return [(e.event, json.loads(e.data)) for e in decoded if e.event in JOB_EVENT_NAMES]


EXAMPLES = _example_events()
NAMES = sorted(JOB_EVENT_NAMES | {"ack", "close", "keep-alive", "progress"})


def _split(payload: bytes, cuts: Iterable[int]) -> list[bytes]:
    points = sorted(set(cuts))
    return [payload[a:b] for a, b in zip([0, *points], [*points, len(payload)])]


def _typed(chunks: Iterable[bytes], limit: int) -> list[Any]:
    decoder = SSEDecoder(max_event_size=limit)
    return [parse_event(sse.event, sse.data, sse.id) for sse in decoder.iter_events(chunks)]


# -- arbitrary bytes ---------------------------------------------------------------------------

VALUES = st.one_of(
    st.sampled_from(
        [b"", b" ", b"{", b"}", b'"', b"[", b"]", b",", b":", b"null", b'{"job":', b'"type":',
         b"\x00", b"\xff", b"\xe2\x82", b"\xf0\x9f\x98\x80", b"\xef\xbb\xbf"]
    ),
    st.sampled_from(NAMES).map(str.encode),
    st.binary(max_size=16),
    st.integers(0, 200).map(lambda n: b"x" * n),
)  # fmt: skip
FIELDS = st.sampled_from([b"data", b"event", b"id", b"retry", b"", b"\xef\xbb\xbfdata", b"x"])
LINES = st.one_of(
    st.tuples(FIELDS, st.sampled_from([b":", b": ", b""]), st.lists(VALUES, max_size=4)).map(
        lambda parts: parts[0] + parts[1] + b"".join(parts[2])
    ),
    st.binary(max_size=24),
)
ENDINGS = st.sampled_from([b"\n", b"\r", b"\r\n", b"\n\n", b"\r\n\r\n", b"\r\r"])
STREAMS = st.lists(st.tuples(LINES, ENDINGS).map(b"".join), max_size=20).map(b"".join)
SMALL_LIMIT = 64


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    report_multiple_bugs=False,
)
@given(STREAMS, st.data())
def test_arbitrary_bytes_in_arbitrary_reads(payload: bytes, data: st.DataObject) -> None:
    cuts = data.draw(st.lists(st.integers(0, len(payload)), max_size=10))
    decoder = SSEDecoder(max_event_size=SMALL_LIMIT)
    try:
        for sse in decoder.iter_events(_split(payload, cuts)):
            # The text of an event is no longer than its bytes on the wire.
            assert len(sse.data) <= SMALL_LIMIT, sse
            parse_event(sse.event, sse.data, sse.id)
    except JobsError:
        pass


# -- job events, mutated, through EventStream --------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
LINE_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=40
)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            yield from _paths(value, (*prefix, index))


def _replace(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    copy = json.loads(json.dumps(doc))
    node = copy
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return copy


@st.composite
def _job_event(draw: st.DrawFn) -> tuple[str, str]:
    name, doc = draw(st.sampled_from(EXAMPLES))
    name = draw(st.sampled_from(sorted(JOB_EVENT_NAMES)))
    for _ in range(draw(st.integers(0, 3))):
        path = draw(st.sampled_from(list(_paths(doc))))
        doc = _replace(doc, path, draw(JSON))
    return name, json.dumps(doc, separators=(",", ":"))


EVENTS = st.lists(st.one_of(_job_event(), st.tuples(st.sampled_from(NAMES), LINE_TEXT)), max_size=6)


class _Raw:
    """The part of a urllib3 response that ``iter_chunks`` reads: ``read1`` per read."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = iter([chunk for chunk in chunks if chunk])  # b"" would mean EOF
        self.closed = False

    def read1(self, amount: int, decode_content: bool = True) -> bytes:
        return next(self._chunks, b"")

    def shutdown(self) -> None:
        self.closed = True

    def close(self) -> None:
        self.closed = True


def _response(chunks: list[bytes]) -> requests.Response:
    response = requests.Response()
    response.status_code = 200
    response.headers["Content-Type"] = "text/event-stream"
    response.raw = _Raw(chunks)
    return response


def _render(events: list[tuple[str, str]], line_ending: str, close: bool) -> bytes:
    blocks = [f"event: {name}\ndata: {data}\n\n" for name, data in events]
    if close:
        blocks.append("event: close\ndata: bye\n\n")
    return "".join(blocks).replace("\n", line_ending).encode()


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    report_multiple_bugs=False,
)
@given(
    EVENTS,
    st.sampled_from(["\n", "\r\n", "\r"]),
    st.booleans(),
    st.booleans(),
    st.data(),
)
def test_job_events_through_the_event_stream(
    events: list[tuple[str, str]],
    line_ending: str,
    close: bool,
    bom: bool,
    data: st.DataObject,
) -> None:
    payload = (b"\xef\xbb\xbf" if bom else b"") + _render(events, line_ending, close)
    end = data.draw(st.integers(0, len(payload)))  # the connection may end anywhere
    chunks = _split(payload[:end], data.draw(st.lists(st.integers(0, end), max_size=10)))
    response = _response(chunks)
    seen: list[Any] = []
    stream = EventStream(response, max_event_size=LIMIT)
    try:
        for event in stream:
            seen.append(event)
    except JobsError as exc:
        error: JobsError | None = exc
    else:
        error = None
    names = [name for name, _ in events] + (["close"] if close else [])
    assert [e.event for e in seen] == names[: len(seen)]
    if error is None:
        # Ending quietly is only allowed right after close: never miss the end of a job.
        assert seen
        assert isinstance(seen[-1], CloseEvent)
    if end < len(payload) and not (seen and isinstance(seen[-1], CloseEvent)):
        assert isinstance(error, JobsError)
    if isinstance(error, StreamInterrupted):
        assert end < len(payload) or not close
    assert response.raw.closed


# -- memory ------------------------------------------------------------------------------------


def _reads(payload: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(payload), size):
        yield payload[start : start + size]


TWO_MB = 2 * 1024 * 1024
ONE_HUGE_EVENT = b"event: completed\ndata: " + b"x" * TWO_MB + b"\n\n"
MANY_EVENTS = (b"event: ack\ndata: " + b"y" * (LIMIT // 2) + b"\n\n") * (TWO_MB // (LIMIT // 2))


@pytest.mark.parametrize("read_size", [4096, 65536])
@pytest.mark.parametrize(
    ("payload", "outcome"),
    [
        pytest.param(ONE_HUGE_EVENT, EventTooLarge, id="one-2MB-event"),
        pytest.param(MANY_EVENTS, None, id="2MB-of-32KB-events"),
    ],
)
def test_memory_is_bounded_by_the_event_limit(
    payload: bytes, outcome: type[Exception] | None, read_size: int
) -> None:
    count = 0

    def decode() -> None:
        nonlocal count
        decoder = SSEDecoder(max_event_size=LIMIT)
        for sse in decoder.iter_events(_reads(payload, read_size)):
            parse_event(sse.event, sse.data, sse.id)  # dropped at once, as a caller would
            count += 1

    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        if outcome is None:
            decode()
        else:
            with pytest.raises(outcome):
                decode()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    if outcome is None:
        assert count == TWO_MB // (LIMIT // 2)
    # A decoder that kept the stream (or the whole oversized event) would hold 2 MB here.
    assert peak < 6 * (LIMIT + read_size), peak


# -- the limit is in bytes, and holds within one read -----------------------------------------


@pytest.mark.parametrize("read_size", [1, 4096, 1 << 20])
def test_the_limit_counts_bytes_not_characters(read_size: int) -> None:
    # 20 000 four-byte characters: 80 000 bytes, over a 64 KiB limit.
    payload = ("data: " + "\U0001f600" * 20_000 + "\n\n").encode()
    with pytest.raises(EventTooLarge, match=f"at most {LIMIT} bytes"):
        _typed(_reads(payload, read_size), LIMIT)


@pytest.mark.parametrize("after", [b"", b"data: small\n\n"])
def test_an_oversized_event_within_one_read_is_refused(after: bytes) -> None:
    payload = b"data: " + b"x" * 5000 + b"\n\n" + after
    with pytest.raises(EventTooLarge, match="at most 1000 bytes"):
        _typed([payload], 1000)
