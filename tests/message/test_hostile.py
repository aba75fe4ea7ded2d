"""Hostile input: linear time (SECURITY-CASES H-08), caps instead of crashes (H-11),
the nodemailer denial-of-service regressions, and bounded memory while streaming."""

from __future__ import annotations

import base64
import gc
import time
import tracemalloc
from collections.abc import Callable

import pytest

from smtpproto.message import (
    DefectKind,
    Limits,
    Message,
    MessageParser,
    parse,
    parse_address_list,
    parse_date,
    parse_message_ids,
    parse_param_header,
    parse_received,
)
from smtpproto.message._rfc2047 import decode_words

from corpus_support import corpus_dir

# Caps raised so that the algorithms themselves are measured, not the caps.
UNCAPPED = Limits(max_header_bytes=10**9, max_parts=10**9, max_depth=10**6)


def _best_time(func: Callable[[], object], repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        gc.disable()  # the collector's own cost grows with live objects
        try:
            start = time.perf_counter()
            func()
            best = min(best, time.perf_counter() - start)
        finally:
            gc.enable()
    return best


def assert_linear(make: Callable[[int], Callable[[], object]], n: int,
                  budget: float = 1.0, grow: bool = True) -> None:
    """Doubling n at most ~2.5x the time (plus timer noise), within an absolute budget.

    n is doubled first until one run takes at least 20 ms, so that scheduler
    noise on a shared machine does not dominate the ratio; a failing ratio is
    measured again (up to three times, at the next size when ``grow``) before
    it counts, because other processes share the CPU.
    """
    t1 = _best_time(make(n))
    while grow and t1 < 0.02 and n < 2_000_000:
        n *= 2
        t1 = _best_time(make(n))
    ratios = []
    for _attempt in range(3):
        t2 = _best_time(make(2 * n))
        assert t2 < budget, f"{t2:.3f}s for n={2 * n} exceeds the {budget}s budget"
        if t2 <= 2.5 * t1 + 0.01:
            return
        ratios.append(f"n={n}: {t1:.4f}s, 2n: {t2:.4f}s")
        if grow:
            n, t1 = 2 * n, t2
        else:
            t1 = _best_time(make(n))
    raise AssertionError("superlinear: " + "; ".join(ratios))


def _full(data: bytes, limits: Limits | None = None) -> Callable[[], object]:
    def run() -> object:
        msg = parse(data, limits=limits)
        for part in msg.walk():
            for h in part.headers:
                h.value  # noqa: B018
            part.addresses("To")
            part.date()
            part.message_ids("References")
            part.received()
            part.filename
        return msg.check()
    return run


# ---------------------------------------------------------------- H-08 through parse()

H08_CASES: dict[str, Callable[[int], bytes]] = {
    "semicolons": lambda n: b"To: " + b";" * n + b"\r\n\r\n",
    "open-comments": lambda n: b"To: a@b (" + b"(" * n + b"\r\n\r\n",
    "encoded-word-starts": lambda n: b"Subject: " + b"=?x?q?" * n + b"?=\r\n\r\n",
    "address-list": lambda n: b"To: " + b", ".join([b"a@b"] * n) + b"\r\n\r\n",
    "angles": lambda n: b"To: " + b"<" * n + b"\r\n\r\n",
    "quoted-pairs": lambda n: b"To: \"" + b"\\\"" * n + b"\r\n\r\n",
    "params": lambda n: b"Content-Type: text/plain" + b"; a=b" * n + b"\r\n\r\n",
    "param-comments": lambda n: b"Content-Type: text/plain (" + b"(" * n + b"\r\n\r\n",
    "rfc2231-sections": lambda n: b"Content-Type: text/plain" + b"".join(
        b"; name*%d*=%%41" % i for i in range(n)) + b"\r\n\r\n",
    "date-comments": lambda n: b"Date: " + b"(" * n + b"1 Jan 2000 00:00 +0000\r\n\r\n",
    "received-comments": lambda n: b"Received: from " + b"(a " * n + b"; x\r\n\r\n",
    "dash-lines": lambda n: b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + b"--a\r\n" * n,
    "header-lines": lambda n: b"X: y\r\n" * n + b"\r\n",
    "folds": lambda n: b"Subject: a" + b"\r\n b" * n + b"\r\n\r\n",
}


@pytest.mark.parametrize("name", sorted(H08_CASES))
def test_h08_linear_through_parse_uncapped(name: str) -> None:
    make = H08_CASES[name]
    assert_linear(lambda n: _full(make(n), UNCAPPED), 8000, budget=2.0)


@pytest.mark.parametrize("name", sorted(H08_CASES))
def test_h08_default_limits_fast(name: str) -> None:
    # At the sizes of SECURITY-CASES H-08, with the default caps.
    data = H08_CASES[name](200_000)
    assert _best_time(_full(data), repeat=1) < 1.0


def test_h08_exact_inputs_from_security_cases() -> None:
    cases = [
        b"To: " + b";" * 200_000 + b"\r\n",
        b"To: a@b (" + b"(" * 100_000 + b"\r\n",
        b"Subject: " + b"=?x?q?" * 50_000 + b"?=\r\n",
        b"To: " + b", ".join([b"a@b"] * 50_000) + b"\r\n",
    ]
    for data in cases:
        assert _best_time(_full(data), repeat=1) < 1.0
        assert _best_time(_full(data, UNCAPPED), repeat=1) < 2.0


@pytest.mark.parametrize("func,make", [
    (parse_address_list, lambda n: ";" * n),
    (parse_address_list, lambda n: "a@b (" + "(" * n),
    (parse_address_list, lambda n: ", ".join(["a@b"] * n)),
    (parse_address_list, lambda n: "\"" + "\\\"" * n),
    (parse_address_list, lambda n: "<" * n + ">" * n),
    (decode_words, lambda n: "=?x?q?" * n + "?="),
    (decode_words, lambda n: "=?utf-8?q?a?= " * n),
    (parse_date, lambda n: "(" * n + ")" * n),
    (parse_message_ids, lambda n: "<" * n),
    (parse_received, lambda n: "from " + "(" * n),
    (parse_param_header, lambda n: "a/b" + ";" * n),
    (parse_param_header, lambda n: "a/b; x=\"" + "\\" * n),
], ids=lambda v: getattr(v, "__name__", "input"))
def test_h08_header_parsers_linear(func: Callable[[str], object], make: Callable[[int], str]
                                   ) -> None:
    assert_linear(lambda n: (lambda: func(make(n))), 50_000, budget=2.0)


# ---------------------------------------------------------------- H-11 caps

def _nested(n: int) -> bytes:
    parts = [b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
             for i in range(n)]
    return b"".join(parts) + b"Content-Type: text/plain\r\n\r\nleaf\r\n"


def test_h11_deep_nesting_is_capped() -> None:
    data = _nested(10_000)
    start = time.perf_counter()
    msg = parse(data)
    assert time.perf_counter() - start < 2.0
    assert msg.to_bytes() == data
    depth = 0
    node: Message = msg
    while node.parts:
        node = node.parts[0]
        depth += 1
    assert depth <= Limits().max_depth
    assert DefectKind.DEPTH_LIMIT in {d.kind for d in msg.defects}
    msg.check()  # decoding the truncated tree must not recurse either


def test_h11_depth_cap_configurable() -> None:
    msg = parse(_nested(10), limits=Limits(max_depth=3))
    assert DefectKind.DEPTH_LIMIT in {d.kind for d in msg.defects}
    assert len(list(msg.walk())) <= 5


def test_h11_many_siblings_capped() -> None:
    data = (b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
            + b"--b\r\n\r\nx\r\n" * 100_000 + b"--b--\r\n")
    start = time.perf_counter()
    msg = parse(data)
    assert time.perf_counter() - start < 2.0
    assert len(list(msg.walk())) <= Limits().max_parts
    assert DefectKind.PART_LIMIT in {d.kind for d in msg.defects}
    assert msg.to_bytes() == data


def test_h11_header_section_cap() -> None:
    data = b"Subject: x\r\n" + b"X-Pad: " + b"a" * 70 + b"\r\n" * 1 + (
        b"X-Pad: " + b"a" * 70 + b"\r\n") * 3000 + b"\r\nbody"
    assert len(data) > 200 * 1024
    msg = parse(data)
    assert DefectKind.HEADER_SECTION_TOO_LARGE in {d.kind for d in msg.defects}
    assert sum(len(h.raw) for h in msg.headers) <= Limits().max_header_bytes
    assert msg["Subject"] == "x"
    assert msg.to_bytes() == data
    # A smaller configured cap applies too.
    small = parse(b"A: 1\r\nB: 2\r\nC: 3\r\n\r\n", limits=Limits(max_header_bytes=10))
    assert [h.name for h in small.headers] == ["A"]


def _encoded_nest(levels: int) -> bytes:
    inner = b"Subject: core\r\n\r\nhello\r\n"
    for _ in range(levels):
        inner = (b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                 + base64.encodebytes(inner))
    return inner


def test_h11_encoded_nesting_cap() -> None:
    ok = parse(_encoded_nest(4))
    assert DefectKind.ENCODED_NESTING_LIMIT not in {d.kind for d in ok.defects}
    assert [p.get("subject") for p in ok.walk()][-1] == "core"
    deep = parse(_encoded_nest(8))
    assert DefectKind.ENCODED_NESTING_LIMIT in {d.kind for d in deep.defects}
    assert len(list(deep.walk())) <= 6
    assert deep.to_bytes() == _encoded_nest(8)


def test_h11_nested_bomb_linear() -> None:
    assert_linear(lambda n: _full(_nested(n)), 2000, budget=2.0)
    sib = lambda n: (b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"  # noqa: E731
                     + b"--b\r\n\r\nx\r\n" * n)
    assert_linear(lambda n: _full(sib(n)), 20_000, budget=2.0)


# ---------------------------------------------------------------- nodemailer DoS files

ROOT = corpus_dir()


@pytest.mark.skipif(ROOT is None, reason="shared corpus not found")
@pytest.mark.parametrize("name", ["outofmemory.eml", "htmllargecallstack.eml", "large_text.eml"])
def test_nodemailer_dos_regressions(name: str) -> None:
    assert ROOT is not None
    data = (ROOT / "nodemailer" / name).read_bytes()
    assert _best_time(_full(data), repeat=1) < 2.0
    # Doubling the body (the repeated hostile content) at most ~2.5x the time.
    sep = data.find(b"\r\n\r\n")
    sep = data.find(b"\n\n") if sep < 0 else sep
    head, body = data[:sep], data[sep:]
    assert_linear(lambda n: _full(head + body * n), 1, budget=4.0, grow=False)


# ---------------------------------------------------------------- streaming memory

def test_streamed_100mb_with_body_sink_stays_small() -> None:
    chunk = (b"A" * 76 + b"\r\n") * 800
    head = (b"From: a@b\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\npre\r\n--XX\r\n"
            b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n")
    tail = b"\r\n--XX\r\nContent-Type: text/plain\r\n\r\nhello\r\n--XX--\r\n"
    n = 100 * 1024 * 1024 // len(chunk)
    received: dict[str, int] = {}
    ended: list[str] = []

    def sink(part: Message, data: bytes) -> None:
        received[part.content_type] = received.get(part.content_type, 0) + len(data)
        if not data:
            ended.append(part.content_type)

    tracemalloc.start()
    try:
        parser = MessageParser(body_sink=sink)
        parser.feed(head)
        for _ in range(n):
            parser.feed(chunk)
        parser.feed(tail)
        msg = parser.close()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 10 * 1024 * 1024
    assert received == {"application/octet-stream": n * len(chunk), "text/plain": 5}
    assert ended == ["application/octet-stream", "text/plain"]
    assert [p.content_type for p in msg.walk()] == [
        "multipart/mixed", "application/octet-stream", "text/plain"]
    assert not msg.parts[0].body_retained
    assert msg.parts[0].raw_body == b""


def test_stream_without_newlines_is_bounded_too() -> None:
    # One enormous line inside a multipart: buffering must not wait for "\n".
    head = b"Content-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\n\r\n"
    total = [0]

    def sink(part: Message, data: bytes) -> None:
        total[0] += len(data)

    tracemalloc.start()
    try:
        parser = MessageParser(body_sink=sink)
        parser.feed(head)
        for _ in range(300):
            parser.feed(b"x" * 65536)
        parser.feed(b"\r\n--XX--\r\n")
        parser.close()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total[0] == 300 * 65536
    assert peak < 4 * 1024 * 1024


def _feed_in(data: bytes, step: int, sink: bool) -> Callable[[], object]:
    def run() -> object:
        parser = MessageParser(body_sink=(lambda part, chunk: None) if sink else None)
        for pos in range(0, len(data), step):
            parser.feed(data[pos:pos + step])
        return parser.close()
    return run


@pytest.mark.parametrize("sink", [False, True])
def test_tiny_chunks_do_not_rescan(sink: bool) -> None:
    # A long header line and a long almost-boundary line, fed 16 bytes at a
    # time: every byte must be looked at a bounded number of times.
    def make(n: int) -> Callable[[], object]:
        data = (b"Subject: " + b"s" * n + b"\r\nContent-Type: multipart/mixed; boundary=b\r\n"
                b"\r\n--b\r\n\r\n" + b"--" + b"x" * min(n, 2000) + b"\r\n" + b"y" * n
                + b"\r\n--b--\r\n")
        return _feed_in(data, 16, sink)
    assert_linear(make, 20_000, budget=3.0)


def test_deep_tree_views_and_edits_do_not_recurse() -> None:
    # With the depth cap raised far beyond the recursion limit, every view and
    # an edit deep inside still work (iterative walk / to_bytes).
    data = _nested(3000)
    msg = parse(data, limits=Limits(max_depth=10_000, max_parts=10_000))
    leaf = list(msg.walk())[-1]
    assert leaf.raw_body == b"leaf\r\n"
    leaf["X-Deep"] = "1"
    out = msg.to_bytes()
    assert out == data.replace(b"Content-Type: text/plain\r\n\r\nleaf",
                               b"Content-Type: text/plain\r\nX-Deep: 1\r\n\r\nleaf")
    assert msg.text_body is not None and msg.attachments is not None
    assert len(msg.defects) > 0
