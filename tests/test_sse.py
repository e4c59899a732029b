"""The sans-IO event-stream decoder (_sse) against the WHATWG rules, however the bytes are split."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sseclient import SSEClient

from waylay_jobs import EventTooLarge, JobsError, _sse
from waylay_jobs._sse import DEFAULT_MAX_EVENT_SIZE, ServerSentEvent, SSEDecoder

EXAMPLES = Path(__file__).parent / "data" / "examples"

Row = tuple[str, str, Optional[str]]


def decode(chunks: list[bytes], max_event_size: int = DEFAULT_MAX_EVENT_SIZE) -> list[Row]:
    decoder = SSEDecoder(max_event_size=max_event_size)
    return [(e.event, e.data, e.id) for e in decoder.iter_events(chunks)]


def pieces(payload: bytes, cuts: list[int]) -> list[bytes]:
    """``payload`` cut at the given offsets."""
    bounds = [0, *sorted(cuts), len(payload)]
    return [payload[a:b] for a, b in zip(bounds, bounds[1:])]


def every_split(payload: bytes) -> Iterator[list[bytes]]:
    """The payload whole, byte by byte, and cut once at every offset."""
    yield [payload]
    yield [payload[i : i + 1] for i in range(len(payload))]
    for i in range(len(payload) + 1):
        yield pieces(payload, [i])


A = ("message", "a", None)
CONFORMANCE = [
    # Line ends: CRLF, LF and CR alone, mixed in one stream, and split between reads.
    pytest.param([b"data: a\n\n"], [A], id="lf"),
    pytest.param([b"data: a\r\n\r\n"], [A], id="crlf"),
    pytest.param([b"data: a\r\r"], [A], id="cr"),
    pytest.param([b"data: a\n\r\n"], [A], id="lf-then-crlf"),
    pytest.param([b"data: a\r\n\n"], [A], id="crlf-then-lf"),
    pytest.param([b"data: a\n\r"], [A], id="lf-then-cr"),
    pytest.param([b"data: a\r\n\r"], [A], id="crlf-then-cr"),
    pytest.param([b"data: a\r", b"\n\r\n"], [A], id="crlf-split-between-reads"),
    pytest.param([b"data: a\r\n", b"\r", b"\n"], [A], id="blank-crlf-split"),
    pytest.param([b"data: a\r", b"\r"], [A], id="cr-at-end-of-read"),
    pytest.param([b"data: a\r\rdata: b\r\r"], [A, ("message", "b", None)], id="cr-events"),
    pytest.param(
        [b"data: a\r\r\ndata: b\n\n"], [A, ("message", "b", None)], id="cr-then-crlf-is-two"
    ),
    # Blocks stitched across reads.
    pytest.param([b"data: hel", b"lo\n\n"], [("message", "hello", None)], id="event-split"),
    pytest.param([b"data: a\n", b"\n"], [A], id="blank-line-in-next-read"),
    pytest.param([b"\n\n\ndata: a\n\n\n\n"], [A], id="runs-of-blank-lines"),
    # Always UTF-8; bad bytes become U+FFFD; a character split between reads.
    pytest.param(
        ["data: caf\u00e9\n\n".encode()[:10], "data: caf\u00e9\n\n".encode()[10:]],
        [("message", "caf\u00e9", None)],
        id="utf8-split-between-reads",
    ),
    pytest.param([b"data: \xff\xfe ok\n\n"], [("message", "\ufffd\ufffd ok", None)], id="bad-utf8"),
    pytest.param([b"data: \xe2\x82\n\n"], [("message", "\ufffd", None)], id="truncated-utf8"),
    pytest.param([b"data: caf\xe9\n\n"], [("message", "caf\ufffd", None)], id="latin1-is-not-utf8"),
    # Separators that str.splitlines() would split on stay inside the data.
    pytest.param(
        ["data: a\u2028b\u2029c\u0085d\x0be\x0cf\x1cg\x1dh\x1ei\n\n".encode()],
        [("message", "a\u2028b\u2029c\u0085d\x0be\x0cf\x1cg\x1dh\x1ei", None)],
        id="unicode-separators-kept",
    ),
    # One leading byte-order mark is stripped, also when split between reads; only one.
    pytest.param([b"\xef\xbb\xbfevent: ack\ndata: hi\n\n"], [("ack", "hi", None)], id="bom"),
    pytest.param([b"\xef", b"\xbb", b"\xbfdata: a\n\n"], [A], id="bom-split"),
    pytest.param([b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\n"], [], id="second-bom-kept"),
    pytest.param([b"data: a\n\n\xef\xbb\xbfdata: b\n\n"], [A], id="bom-not-at-start-kept"),
    # Fields.
    pytest.param([b": ping\n\ndata: a\n\n"], [A], id="comment-block-ignored"),
    pytest.param([b"data: a\n: comment\n\n"], [A], id="comment-line-ignored"),
    pytest.param([b"data: a\ndata: b\n\n"], [("message", "a\nb", None)], id="multi-line-data"),
    pytest.param([b"data\n\n"], [("message", "", None)], id="data-without-colon"),
    pytest.param([b"data\ndata\n\n"], [("message", "\n", None)], id="two-empty-data-lines"),
    pytest.param([b"data:a\n\n"], [A], id="no-space"),
    pytest.param([b"data:  a\n\n"], [("message", " a", None)], id="only-one-space-stripped"),
    pytest.param([b"data: a \n\n"], [("message", "a ", None)], id="trailing-space-kept"),
    pytest.param([b"event: ack\ndata: a\n\n"], [("ack", "a", None)], id="event-type"),
    pytest.param([b"event\ndata: a\n\n"], [A], id="empty-event-type-is-message"),
    pytest.param(
        [b"event: ack\ndata: a\n\ndata: b\n\n"],
        [("ack", "a", None), ("message", "b", None)],
        id="event-type-resets",
    ),
    pytest.param([b"foo: bar\nDATA: x\ndata: a\n\n"], [A], id="unknown-fields-ignored"),
    pytest.param([b" data: x\n\n"], [], id="leading-space-is-another-field"),
    # Dispatch: no data, no event; an unterminated block at the end is dropped.
    pytest.param([b"event: progress\n\n"], [], id="no-data-not-dispatched"),
    pytest.param([b"event: close\ndata: partial"], [], id="unterminated-at-eof"),
    pytest.param([b"data: a\n\nevent: close\ndata: x\n"], [A], id="one-line-end-at-eof"),
    pytest.param([b"data: a\n\nevent: close\ndata: x\r"], [A], id="cr-at-eof"),
    # Last event id: persists, set by blocks without data too, NUL ignored, empty resets.
    pytest.param(
        [b"id: 7\ndata: a\n\n: hb\n\ndata: b\n\n"],
        [("message", "a", "7"), ("message", "b", "7")],
        id="id-persists",
    ),
    pytest.param([b"id: 5\n\ndata: a\n\n"], [("message", "a", "5")], id="id-without-data"),
    pytest.param([b"id: 1\x002\ndata: a\n\n"], [A], id="id-with-nul-ignored"),
    pytest.param(
        [b"id: 1\nid: 2\x00\ndata: a\n\n"], [("message", "a", "1")], id="only-the-nul-id-ignored"
    ),
    pytest.param(
        [b"id: 1\ndata: a\n\nid\ndata: b\n\n"],
        [("message", "a", "1"), ("message", "b", "")],
        id="empty-id-resets",
    ),
    pytest.param([b"idx: 1\ndata: a\n\n"], [A], id="id-prefix-is-another-field"),
]


@pytest.mark.parametrize(("chunks", "expected"), CONFORMANCE)
def test_conformance(chunks: list[bytes], expected: list[Row]) -> None:
    assert decode(chunks) == expected
    whole = b"".join(chunks)
    for split in every_split(whole):
        assert decode(split) == expected, split


@pytest.mark.parametrize(("chunks", "expected"), CONFORMANCE)
def test_conformance_does_not_depend_on_replacing_sseclients_stitching(
    monkeypatch: pytest.MonkeyPatch, chunks: list[bytes], expected: list[Row]
) -> None:
    # The decoder hands sseclient-py whole blocks; its own chunk stitching gives the same.
    monkeypatch.setattr(_sse, "_CLIENT", SSEClient)
    assert decode(chunks) == expected


@pytest.mark.parametrize(("chunks", "expected"), CONFORMANCE)
def test_conformance_without_the_fast_path(
    monkeypatch: pytest.MonkeyPatch, chunks: list[bytes], expected: list[Row]
) -> None:
    # Every block through sseclient-py gives the same events as the two-line fast path.
    monkeypatch.setattr(_sse, "_FAST_PATH", False)
    assert decode(chunks) == expected


FAST_PATH_SHAPES = [
    b"event: ack\ndata: hi\n\n",
    b"event: keep-alive\ndata: \n\n",
    b"event: keep-alive\ndata:\n\n",
    b"event:  spaced\ndata:  spaced\n\n",
    b"event: a:b\ndata: c:d\n\n",
    b"event: \ndata: x\n\n",
    b"event: x\ndata: a\ndata: b\n\n",
    b"event: x\ndata: a\nid: 3\n\n",
    b"event: x\ndatum: a\n\n",
    b"event: x\n\n",
    b"data: a\nevent: x\n\n",
]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(FAST_PATH_SHAPES),
            st.builds(
                lambda name, data: b"event: %s\ndata: %s\n\n" % (name, data),
                st.binary(max_size=12),
                st.binary(max_size=12),
            ),
        ),
        max_size=8,
    )
)
def test_the_fast_path_gives_what_sseclient_gives(blocks: list[bytes]) -> None:
    payload = b"".join(blocks)
    fast = decode([payload])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_sse, "_FAST_PATH", False)
        assert decode([payload]) == fast


RETRY = [
    pytest.param(b"retry: 1500\ndata: a\n\n", 1500, id="digits"),
    pytest.param(b"retry:1500\ndata: a\n\n", 1500, id="no-space"),
    pytest.param(b"retry: 1500\n\ndata: a\n\n", 1500, id="block-without-data"),
    pytest.param(b"retry: 15x\ndata: a\n\n", None, id="not-all-digits"),
    pytest.param(b"retry: -1\ndata: a\n\n", None, id="sign"),
    pytest.param(b"retry: 1.5\ndata: a\n\n", None, id="decimal"),
    pytest.param(b"retry:\ndata: a\n\n", None, id="empty"),
    pytest.param("retry: \u0661\u0662\ndata: a\n\n".encode(), None, id="non-ascii-digits"),
    pytest.param(b"retry: 10\nretry: x\ndata: a\n\n", 10, id="bad-one-after-good-ignored"),
    pytest.param(b"data: a\n\nretry: 20\n", 20, id="line-read-in-unterminated-block"),
]


@pytest.mark.parametrize(("payload", "expected"), RETRY)
def test_retry_counts_only_when_all_ascii_digits(payload: bytes, expected: Optional[int]) -> None:
    decoder = SSEDecoder()
    events = list(decoder.iter_events([payload]))
    assert [e.data for e in events] == ["a"]
    assert decoder.retry == expected


def test_retry_and_id_are_remembered_and_carried_by_later_events() -> None:
    decoder = SSEDecoder()
    events = list(
        decoder.iter_events([b"retry: 300\nid: 1\ndata: a\n\nretry: x\ndata: b\n\nid: 2\n\n"])
    )
    assert events == [
        ServerSentEvent("message", "a", "1", 300),
        ServerSentEvent("message", "b", "1", 300),
    ]
    assert (decoder.last_event_id, decoder.retry) == ("2", 300)
    # A next stream (a reconnection) starts from what the last one left.
    assert list(decoder.iter_events([b"data: c\n\n"])) == [
        ServerSentEvent("message", "c", "2", 300)
    ]


def test_an_unterminated_block_is_reported_with_its_size() -> None:
    decoder = SSEDecoder()
    events = list(decoder.iter_events([b"data: a\n\nevent: close\r\ndata: cut"]))
    assert [e.data for e in events] == ["a"]
    assert decoder.truncated
    assert decoder.dropped == len(b"event: close\ndata: cut")
    list(decoder.iter_events([b"data: a\n\n"]))
    assert not decoder.truncated
    assert decoder.dropped == 0


def test_spec_transcript() -> None:
    data = (EXAMPLES / "events_build_transcript.sse").read_bytes()
    names = ["ack", "waiting", "active", "keep-alive", "completed", "close"]
    for split in ([data], [data[i : i + 7] for i in range(0, len(data), 7)]):
        assert [e for e, _, _ in decode(split)] == names


# -- the size limit ---------------------------------------------------------------------------


class Endless:
    """Reads of one never-ending line; counts how many the decoder pulled."""

    def __init__(self, prefix: bytes, size: int) -> None:
        self.prefix = prefix
        self.size = size
        self.reads = 0

    def __iter__(self) -> Iterator[bytes]:
        yield self.prefix
        while True:
            self.reads += 1
            yield b"x" * self.size


@pytest.mark.parametrize("read_size", [1, 1000, 65536])
def test_a_never_ending_line_is_stopped_at_the_limit(read_size: int) -> None:
    limit = 64 * 1024
    source = Endless(b"data: a\n\nevent: big\ndata: ", read_size)
    decoder = SSEDecoder(max_event_size=limit)
    events = decoder.iter_events(source)
    assert next(events).data == "a"
    with pytest.raises(EventTooLarge, match=f"at most {limit} bytes"):
        next(events)
    # It stopped reading as soon as the pending block passed the limit.
    assert source.reads * read_size <= limit + read_size


def test_memory_stays_bounded_by_about_the_limit() -> None:
    limit = 2 * 1024 * 1024
    source = Endless(b"data: ", 65536)
    tracemalloc.start()
    try:
        with pytest.raises(EventTooLarge):
            list(SSEDecoder(max_event_size=limit).iter_events(source))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * limit  # the pending pieces, one join at most, one read


@pytest.mark.parametrize(
    "chunks",
    [
        pytest.param([b"data: " + b"y" * 200 + b"\n\n"], id="whole-block-in-one-read"),
        pytest.param([b"data: " + b"y" * 200, b"\n\n"], id="block-then-blank-line"),
        pytest.param([b"data: " + b"y" * 200 + b"\n", b"\n"], id="blank-line-split"),
        pytest.param([b": " + b"c" * 200 + b"\n\n"], id="comments-count-too"),
    ],
)
def test_one_block_over_the_limit_raises_however_it_arrives(chunks: list[bytes]) -> None:
    with pytest.raises(EventTooLarge, match="at most 100 bytes"):
        decode([b"data: ok\n\n", *chunks], max_event_size=100)


def test_the_limit_counts_one_event_not_the_stream() -> None:
    block = b"data: " + b"y" * 93 + b"\n\n"  # 99 bytes + the blank line
    assert len(decode([block * 1000], max_event_size=100)) == 1000
    with pytest.raises(EventTooLarge):
        decode([block.replace(b"data", b"data:")], max_event_size=100)


def test_default_limit_is_generous() -> None:
    assert DEFAULT_MAX_EVENT_SIZE == 8 * 1024 * 1024
    size = DEFAULT_MAX_EVENT_SIZE - 100
    big = b"data: " + b"z" * size + b"\n\n"
    [(_, data, _)] = decode([big[i : i + 65536] for i in range(0, len(big), 65536)])
    assert len(data) == size


# -- properties -------------------------------------------------------------------------------

LINE_END = st.sampled_from(["\n", "\r\n", "\r"])
FIELD_LINE = st.one_of(
    st.builds(
        lambda v: f"data: {v}",
        st.text(st.characters(exclude_characters="\r\n", exclude_categories=("Cs",)), max_size=12),
    ),
    st.sampled_from(["data", "event: job", "event", ": c", "id: 9", "id", "retry: 10", "retry: x"]),
)
STREAM = st.lists(
    st.tuples(st.lists(st.tuples(FIELD_LINE, LINE_END), max_size=4), LINE_END), max_size=8
)


def render(stream: list[tuple[list[tuple[str, str]], str]], bom: bool, cut_tail: bool) -> bytes:
    text = "".join("".join(f + e for f, e in lines) + end for lines, end in stream)
    if cut_tail:
        text += "event: close\ndata: cut"
    return ("\ufeff" if bom else "").encode() + text.encode()


def outcome(chunks: list[bytes], limit: int) -> tuple[list[Any], Any, str]:
    decoder = SSEDecoder(max_event_size=limit)
    events: list[ServerSentEvent] = []
    error = ""
    try:
        events.extend(decoder.iter_events(chunks))
    except EventTooLarge:
        error = "EventTooLarge"
    state = (decoder.last_event_id, decoder.retry, decoder.truncated, decoder.dropped)
    return events, state, error


@settings(max_examples=400, deadline=None)
@given(
    STREAM, st.booleans(), st.booleans(), st.sampled_from([DEFAULT_MAX_EVENT_SIZE, 12]), st.data()
)
def test_any_split_into_reads_gives_the_same_outcome(
    stream: list[tuple[list[tuple[str, str]], str]],
    bom: bool,
    cut_tail: bool,
    limit: int,
    data: st.DataObject,
) -> None:
    payload = render(stream, bom, cut_tail)
    cuts = data.draw(st.lists(st.integers(0, len(payload)), max_size=12))
    whole = outcome([payload], limit)
    assert outcome(pieces(payload, cuts), limit) == whole
    assert outcome([payload[i : i + 1] for i in range(len(payload))], limit) == whole


@settings(max_examples=400, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=10), st.integers(1, 200))
def test_arbitrary_bytes_raise_nothing_but_the_librarys_own(
    chunks: list[bytes], limit: int
) -> None:
    try:
        events = decode(chunks, max_event_size=limit)
    except JobsError:
        return
    for _event, data, _id in events:
        assert len(data.encode()) < limit
    assert decode([b"".join(chunks)], max_event_size=limit) == events


def test_a_pause_chunk_yields_paused_after_the_events_before_it_and_keeps_state() -> None:
    """A pushed reader feeds one generator: each PAUSE hands back control after the events so
    far; a block, a CRLF and a UTF-8 character split across the pause are decoded whole."""
    decoder = SSEDecoder()
    pushed: list[bytes] = [
        b"event: ack\r\ndata: {}\r\n\r\nevent: active\r",
        _sse.PAUSE,
        b"\ndata: caf\xc3",
        _sse.PAUSE,
        b"\xa9\r\n\r\n",
        _sse.PAUSE,
        b"event: cut",
    ]
    seen = list(decoder.iter_raw(pushed))

    assert seen == [("ack", "{}"), _sse.PAUSED, _sse.PAUSED, ("active", "café"), _sse.PAUSED]
    assert all(item is _sse.PAUSED for item in seen if item == ("", ""))
    assert (decoder.truncated, decoder.dropped) == (True, len(b"event: cut"))
