"""The event-stream decoder against the WHATWG rules, whatever way the bytes are split."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from waylay_jobs import EventTooLarge, JobsError
from waylay_jobs._sse import ServerSentEvent, SSEDecoder


def decode(*chunks: bytes, max_event_size: int = 1 << 20) -> list[tuple[str, str, object]]:
    decoder = SSEDecoder(max_event_size=max_event_size)
    return [(e.event, e.data, e.id) for e in decoder.iter_events(iter(chunks))]


CASES = [
    pytest.param([b"data: a\n\n"], [("message", "a", None)], id="lf"),
    pytest.param([b"data: a\r\n\r\n"], [("message", "a", None)], id="crlf"),
    pytest.param([b"data: a\r\r"], [("message", "a", None)], id="cr-only"),
    pytest.param([b"data: a\n\r\n"], [("message", "a", None)], id="lf-then-crlf"),
    pytest.param([b"data: a\r\n\n"], [("message", "a", None)], id="crlf-then-lf"),
    pytest.param([b"data: a\n\r"], [("message", "a", None)], id="lf-then-cr"),
    pytest.param([b"data: a\r", b"\n\r\n"], [("message", "a", None)], id="crlf-split-in-reads"),
    pytest.param([b"data: a\r\n", b"\r", b"\n"], [("message", "a", None)], id="blank-crlf-split"),
    pytest.param([b"data: hel", b"lo\n\n"], [("message", "hello", None)], id="event-split"),
    pytest.param(
        ["data: caf\u00e9\n\n".encode()[:9], "data: caf\u00e9\n\n".encode()[9:]],
        [("message", "caf\u00e9", None)],
        id="utf8-char-split",
    ),
    pytest.param([b"data: \xff\xfe ok\n\n"], [("message", "\ufffd\ufffd ok", None)], id="bad-utf8"),
    pytest.param([b"\xef\xbb\xbfevent: ack\ndata: hi\n\n"], [("ack", "hi", None)], id="bom"),
    pytest.param(
        [b"\xef\xbb", b"\xbfevent: ack\ndata: hi\n\n"], [("ack", "hi", None)], id="bom-split"
    ),
    # Only the first BOM is stripped; a second one makes "\ufeffdata" an unknown field.
    pytest.param([b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\n"], [], id="only-one-bom"),
    pytest.param([b": ping\n\ndata: a\n\n"], [("message", "a", None)], id="comment"),
    pytest.param([b"data: a\ndata: b\n\n"], [("message", "a\nb", None)], id="multi-line-data"),
    # "data" alone appends an empty line: the buffer is "\n", so an empty event is dispatched.
    pytest.param([b"data\n\n"], [("message", "", None)], id="data-no-colon-empty"),
    pytest.param([b"data\ndata\n\n"], [("message", "\n", None)], id="two-empty-data-lines"),
    pytest.param([b"data:a\n\n"], [("message", "a", None)], id="no-space"),
    pytest.param([b"data:  a\n\n"], [("message", " a", None)], id="one-space-stripped"),
    pytest.param([b"event: progress\n\n"], [], id="no-data-not-dispatched"),
    pytest.param([b"event: close\ndata: partial"], [], id="unterminated-at-eof"),
    pytest.param(
        [b"data: a\n\nevent: close\ndata: x\n"], [("message", "a", None)], id="half-ended"
    ),
    pytest.param(
        [b"id: 7\ndata: a\n\n: hb\n\ndata: b\n\n"],
        [("message", "a", "7"), ("message", "b", "7")],
        id="id-persists",
    ),
    pytest.param([b"id: 1\x002\ndata: a\n\n"], [("message", "a", None)], id="id-with-nul-ignored"),
    pytest.param(
        [b"event: ack\ndata: a\n\ndata: b\n\n"],
        [("ack", "a", None), ("message", "b", None)],
        id="event-resets",
    ),
    pytest.param([b"foo: bar\ndata: a\n\n"], [("message", "a", None)], id="unknown-field"),
    pytest.param(
        ["data: a\u2028b\u0085c\n\n".encode()],
        [("message", "a\u2028b\u0085c", None)],
        id="unicode-seps",
    ),
]


@pytest.mark.parametrize(("chunks", "expected"), CASES)
def test_conformance(chunks: list[bytes], expected: list[tuple[str, str, object]]) -> None:
    assert decode(*chunks) == expected


def test_retry_is_remembered_only_when_all_digits() -> None:
    decoder = SSEDecoder()
    events = list(decoder.iter_events(iter([b"retry: 1500\ndata: a\n\nretry: 1x\ndata: b\n\n"])))
    assert [e.retry for e in events] == [1500, 1500]
    assert decoder.retry == 1500


def test_truncated_block_is_reported() -> None:
    decoder = SSEDecoder()
    assert list(decoder.iter_events(iter([b"data: a\n\nevent: close\ndata: cut"]))) == [
        ServerSentEvent("message", "a")
    ]
    assert decoder.truncated
    assert decoder.dropped > 0


def test_event_too_large_is_raised_before_the_block_ends() -> None:
    def endless() -> object:
        yield b"data: "
        for _ in range(1000):
            yield b"x" * 1024
        raise AssertionError("read past the limit")

    decoder = SSEDecoder(max_event_size=64 * 1024)
    with pytest.raises(EventTooLarge, match="at most 65536 bytes"):
        list(decoder.iter_events(endless()))  # type: ignore[arg-type]


def test_limit_counts_one_event_not_the_stream() -> None:
    many = b"data: " + b"y" * 100 + b"\n\n"
    assert len(decode(many * 1000, max_event_size=200)) == 1000


TRANSCRIPT_EVENTS = ["ack", "waiting", "active", "keep-alive", "completed", "close"]


def test_spec_transcript() -> None:
    from pathlib import Path

    data = (Path(__file__).parent / "data/examples/events_build_transcript.sse").read_bytes()
    assert [e for e, _, _ in decode(data)] == TRANSCRIPT_EVENTS


STREAMS = st.lists(
    st.tuples(
        st.sampled_from(["", "event: job\n", "id: 9\n", ": c\n", "retry: 10\n"]),
        st.lists(
            st.text(
                alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"),
                max_size=20,
            ),
            max_size=3,
        ),
        st.sampled_from(["\n", "\r\n", "\r"]),
    ),
    max_size=8,
)


def _render(stream: list[tuple[str, list[str], str]]) -> bytes:
    out = []
    for prefix, lines, end in stream:
        block = prefix + "".join(f"data: {line}\n" for line in lines)
        out.append(block.replace("\n", end) + end)
    return "".join(out).encode()


@settings(max_examples=300, deadline=None)
@given(STREAMS, st.data())
def test_any_split_into_reads_gives_the_same_events(
    stream: list[tuple[str, list[str], str]], data: st.DataObject
) -> None:
    payload = _render(stream)
    cuts = sorted(data.draw(st.sets(st.integers(0, len(payload)), max_size=12)))
    pieces = [payload[a:b] for a, b in zip([0, *cuts], [*cuts, len(payload)])]
    assert decode(*pieces) == decode(payload)
    assert decode(*pieces) == decode(*[bytes([b]) for b in payload])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=10))
def test_arbitrary_bytes_raise_nothing_but_our_errors(chunks: list[bytes]) -> None:
    try:
        events = decode(*chunks, max_event_size=128)
    except JobsError:
        return
    for _event, data, _id in events:
        assert len(data.encode()) <= 128
