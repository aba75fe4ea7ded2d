"""ReceiveBuffer against a plain ``bytes`` model: any sequence of appends and
reads gives the same bytes, whichever representation (a chunk as received with
an offset, or the array) holds them at the time."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from smtpproto._receivebuffer import ReceiveBuffer

_chunks = st.binary(max_size=12).map(lambda b: b.replace(b"x", b"\n"))
_ops = st.lists(
    st.one_of(
        st.tuples(st.just("append"), _chunks),
        st.tuples(st.just("take"), st.integers(0, 14)),
        st.tuples(st.just("discard"), st.integers(0, 14)),
        st.tuples(st.just("peek"), st.integers(0, 14)),
        st.tuples(st.just("find"), st.sampled_from([b"\n", b"\r\n", b"\r\n.\r\n"])),
        st.tuples(st.just("take_line"), st.none()),
        st.tuples(st.just("endswith"), st.sampled_from([b"\n", b"\r\n", b"a\n", b""])),
        st.tuples(st.just("sole"), st.none()),
        st.tuples(st.just("clear"), st.none()),
    ),
    max_size=40,
)


@settings(max_examples=400)
@given(_ops)
def test_matches_a_bytes_model(ops: list[tuple[str, object]]) -> None:
    buf = ReceiveBuffer()
    model = b""
    whole_chunk = False  # the model's idea of "the live bytes are the rest of one chunk"
    for op, arg in ops:
        if op == "append":
            assert isinstance(arg, bytes)
            if arg:
                whole_chunk = not model
            buf.append(arg)
            model += arg
        elif op in ("take", "discard"):
            assert isinstance(arg, int)
            n = min(arg, len(model))
            if op == "take":
                assert buf.take(n) == model[:n]
            else:
                buf.discard(n)
            model = model[n:]
        elif op == "peek":
            assert isinstance(arg, int)
            assert buf.peek(arg) == model[:arg]
        elif op == "find":
            assert isinstance(arg, bytes)
            i = model.find(arg)
            assert buf.find(arg) == (-1 if i < 0 else i + len(arg))
        elif op == "take_line":
            i = model.find(b"\n")
            if i < 0:
                assert buf.take_line() is None
            else:
                assert buf.take_line() == model[: i + 1]
                model = model[i + 1:]
        elif op == "endswith":
            assert isinstance(arg, bytes)
            assert buf.endswith(arg) == model.endswith(arg)
        elif op == "sole":
            got = buf.sole()
            assert got is None or got == model
            if not whole_chunk or not model:
                assert got is None or not model
        elif op == "clear":
            buf.clear()
            model = b""
        if not model:
            whole_chunk = False
        assert len(buf) == len(model) and bool(buf) == bool(model)


def test_pipelined_lines_are_sliced_where_they_arrived() -> None:
    buf = ReceiveBuffer()
    chunk = b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n"
    buf.append(chunk)
    assert buf.take_line() == b"250 2.1.0 Ok\r\n"
    assert buf.sole() == b"250 2.1.5 Ok\r\n354 go\r\n"  # still the one chunk, not copied into the array
    assert buf.take_line() == b"250 2.1.5 Ok\r\n"
    last = buf.take_line()
    assert last == b"354 go\r\n" and not buf and buf.take_line() is None
    buf.append(chunk)
    assert buf.take(len(chunk)) is chunk  # a whole chunk is handed on as it came


def test_a_long_line_fed_a_byte_at_a_time_is_searched_once() -> None:
    buf = ReceiveBuffer()
    for _ in range(20_000):
        buf.append(b"a")
        assert buf.take_line() is None
    assert buf._searched >= 19_999  # the array is not searched from its start again
    buf.append(b"\n")
    assert buf.take_line() == b"a" * 20_000 + b"\n"


def test_a_failed_search_for_one_terminator_does_not_hide_another() -> None:
    # Where no CRLF was found an LF still may be: the searched mark is per terminator.
    buf = ReceiveBuffer()
    buf.append(b"a\n")
    assert buf.find(b"\r\n") == -1
    assert buf.find(b"\n") == 2
    assert buf.take_line() == b"a\n"
