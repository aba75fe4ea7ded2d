"""Property tests for the read path (hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from smtpproto.message import (
    Address,
    DefectKind,
    Group,
    MessageParser,
    encode_param,
    encode_words,
    parse,
    parse_address_list,
    parse_param_header,
)
from smtpproto.message._message import ENCODED_MESSAGE, LEAF
from smtpproto.message._rfc2047 import decode_words

# ---------------------------------------------------------------- round trips of bytes


@given(st.binary(max_size=2000))
def test_any_bytes_round_trip(data: bytes) -> None:
    msg = parse(data)
    assert msg.to_bytes() == data
    assert DefectKind.INTERNAL_ERROR not in {d.kind for d in msg.check()}


NEWLINE = st.sampled_from([b"\r\n", b"\n", b"\r", b""])
BOUNDARY = st.sampled_from([b"b", b"bb", b"b1", b"=_x", b"a b", b"--"])
LINE = st.one_of(
    st.sampled_from([b"Subject: hi", b"From: a@b.c", b"To: \"x\" <y@z>", b" folded",
                     b"Content-Transfer-Encoding: base64", b"Content-Transfer-Encoding: "
                     b"quoted-printable", b"Content-Type: text/plain; charset=utf-8",
                     b"Content-Type: message/rfc822", b"Content-Disposition: attachment; "
                     b"filename*=utf-8''%C3%A9", b"", b"aGVsbG8=", b"=E9=", b"From x",
                     b"=?utf-8?q?a?=", b"\xff\xfe", b"Content-Type: multipart/digest; "
                     b"boundary=b"]),
    BOUNDARY.map(lambda b: b"Content-Type: multipart/mixed; boundary=\"" + b + b"\""),
    BOUNDARY.map(lambda b: b"--" + b),
    BOUNDARY.map(lambda b: b"--" + b + b"--"),
    st.binary(max_size=30),
)


@st.composite
def near_mime(draw: st.DrawFn) -> bytes:
    lines = draw(st.lists(st.tuples(LINE, NEWLINE), max_size=40))
    return b"".join(line + nl for line, nl in lines)


@given(near_mime())
@settings(max_examples=300)
def test_near_mime_round_trip_and_views(data: bytes) -> None:
    msg = parse(data)
    assert msg.to_bytes() == data
    for part in msg.walk():
        part.content_type
        part.filename
        part.text()
        for h in part.headers:
            h.value  # noqa: B018
        part.addresses("From")
    assert DefectKind.INTERNAL_ERROR not in {d.kind for d in msg.check()}
    msg.text_body
    msg.attachments


@given(near_mime(), st.lists(st.integers(min_value=1, max_value=50), min_size=1, max_size=20))
@settings(max_examples=200)
def test_streaming_equals_one_shot(data: bytes, sizes: list[int]) -> None:
    parser = MessageParser()
    pos, i = 0, 0
    while pos < len(data):
        step = sizes[i % len(sizes)]
        parser.feed(data[pos:pos + step])
        pos += step
        i += 1
    streamed = parser.close()
    one = parse(data)
    assert streamed.to_bytes() == data
    assert [(p.content_type, p.raw_body) for p in streamed.walk()] == \
        [(p.content_type, p.raw_body) for p in one.walk()]
    assert [(d.kind, d.offset) for d in streamed.defects] == \
        [(d.kind, d.offset) for d in one.defects]


@given(near_mime(), st.integers(min_value=1, max_value=64))
@settings(max_examples=200)
def test_body_sink_sees_every_leaf_body(data: bytes, step: int) -> None:
    chunks: dict[int, bytearray] = {}

    def sink(part: object, chunk: bytes) -> None:
        chunks.setdefault(id(part), bytearray()).extend(chunk)

    parser = MessageParser(body_sink=sink)
    for pos in range(0, len(data), step):
        parser.feed(data[pos:pos + step])
    parser.close()
    one = parse(data)
    # Leaf bodies as a one-shot parse sees them; with a sink, encoded
    # message/rfc822 parts are not decoded, so they are leaves themselves, and
    # a multipart without any delimiter line streamed past as preamble (which
    # sinks do not receive) before it could be known to be a single body.
    expected = []
    stack = [one]
    while stack:
        node = stack.pop()
        no_parts = node.maintype == "multipart" and any(
            d.kind == DefectKind.START_BOUNDARY_NOT_FOUND for d in node._defects)
        if node._kind in (LEAF, ENCODED_MESSAGE) and not no_parts:
            if node.raw_body:
                expected.append(node.raw_body)
        else:
            stack.extend(node.parts)
    got = sorted(bytes(v) for v in chunks.values() if v)
    assert got == sorted(expected)


# ---------------------------------------------------------------- addresses

ATEXT = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~"
atom = st.text(alphabet=ATEXT, min_size=1, max_size=8)
dot_atom = st.lists(atom, min_size=1, max_size=3).map(".".join)
addr_spec = st.builds(lambda l, d: f"{l}@{d}", dot_atom, dot_atom)
phrase_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF,
                                             blacklist_characters="\\\"\x7f"),
                      min_size=1, max_size=20).map(lambda s: " ".join(s.split())).filter(bool)


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


address = st.builds(Address, st.none() | phrase_text, addr_spec)


def _fmt(a: Address) -> str:
    return f"{_quote(a.display_name)} <{a.addr_spec}>" if a.display_name else a.addr_spec


@given(st.lists(address, min_size=1, max_size=6))
def test_generated_address_lists_parse_back(addrs: list[Address]) -> None:
    text = ", ".join(_fmt(a) for a in addrs)
    assert parse_address_list(text) == addrs
    # ... also through a real folded header field.
    raw = ("To: " + ",\r\n ".join(_fmt(a) for a in addrs) + "\r\n\r\n").encode("utf-8")
    assert parse(raw).addresses("To") == addrs


@given(phrase_text, st.lists(address, max_size=4))
def test_generated_groups_parse_back(name: str, members: list[Address]) -> None:
    text = _quote(name) + ": " + ", ".join(_fmt(a) for a in members) + ";"
    assert parse_address_list(text) == [Group(name, tuple(members))]


@given(st.lists(address, min_size=1, max_size=4))
def test_addresses_round_trip_through_the_writer(addrs: list[Address]) -> None:
    from smtpproto.message._encode import format_header
    raw = format_header("To", addrs) + b"\r\n"
    assert parse(raw).addresses("To") == addrs


# ---------------------------------------------------------------- encoded words, params

text_any = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=120)


@given(text_any, st.sampled_from(["utf-8", "UTF-8", "utf-16", "gb18030"]))
def test_encode_words_round_trip(text: str, charset: str) -> None:
    encoded = encode_words(text, charset)
    assert all(len(w) <= 75 for w in encoded.split(" "))
    assert encoded.isascii() and "\r" not in encoded and "\n" not in encoded
    assert decode_words(encoded) == text


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12),
       text_any)
def test_encode_param_round_trip(name: str, value: str) -> None:
    encoded = encode_param(name, value)
    assert "\r" not in encoded and "\n" not in encoded and "\x00" not in encoded
    parsed = parse_param_header("application/x-test; " + encoded)
    assert parsed.params == {name: value}


def test_mutated_corpus_messages() -> None:
    """Seeded mutation fuzzing of real messages (this found the Unicode-digit date bug)."""
    import random

    from corpus_support import corpus_dir, message_files

    root = corpus_dir()
    if root is None:
        import pytest
        pytest.skip("shared corpus not found")
    files = [p.read_bytes() for p in message_files(root) if p.stat().st_size < 30_000]
    rnd = random.Random(20261129)
    inserts = [b"\r\n", b"\n", b"--", b"\r\n--", b"=?", b"?=", b";", b'"', b"(", b"\xb2",
               b"boundary=", b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n",
               b"Content-Transfer-Encoding: base64\r\n", b"Content-Type: message/rfc822\r\n"]
    for _ in range(400):
        data = bytearray(rnd.choice(files))
        for _ in range(rnd.randint(1, 8)):
            i = rnd.randrange(len(data) + 1)
            op = rnd.random()
            if op < 0.3 and data:
                data[min(i, len(data) - 1)] = rnd.randrange(256)
            elif op < 0.6:
                data[i:i] = rnd.choice(inserts)
            elif op < 0.8:
                del data[i:i + rnd.randint(1, 50)]
            else:
                del data[i:]
        raw = bytes(data)
        msg = parse(raw)
        assert msg.to_bytes() == raw
        assert DefectKind.INTERNAL_ERROR not in {d.kind for d in msg.check()}
        for part in msg.walk():
            part.addresses("To")
            part.date()
            part.received()
            part.message_ids("References")
            part.list_header("List-Unsubscribe")
        msg.text_body
        msg.attachments


header_value = st.one_of(
    text_any,
    st.sampled_from(["=?UTF-8?Q?a=0A?=Bcc: x@y", "=?utf-8?b?DQpCY2M6IHhAeQ==?=", "a\r\nBcc: x",
                     "=?x?q?=0D=0A=20?=", "\u2028line\u2029sep", "tab\there"]),
)


@given(st.lists(st.tuples(st.sampled_from(["Subject", "To", "From", "X-Custom", "Comments",
                                           "Content-Type", "Message-ID"]), header_value),
                min_size=1, max_size=6))
@settings(max_examples=300)
def test_rewriting_decoded_values_never_injects(fields: list[tuple[str, str]]) -> None:
    """SECURITY-CASES H-01..H-04 (and the parse -> edit -> serialize -> parse idempotence
    asked for in its fuzzing notes): whatever a decoded value contains, writing it
    back either raises HeaderError or yields exactly the same set of fields."""
    from smtpproto.message._encode import HeaderError, format_header, verify_header_bytes

    raw = b""
    for name, value in fields:
        try:
            raw += format_header(name, value)
        except HeaderError:
            continue
    data = raw + b"\r\nbody\r\n"
    msg = parse(data)
    names = [h.name for h in msg.headers]
    for h in list(msg.headers):
        try:
            msg.replace_header(h.name, h.value)
        except HeaderError:
            pass
    out = msg.to_bytes()
    again = parse(out)
    assert [h.name for h in again.headers] == names
    assert again.raw_body == b"body\r\n"
    for h in again.headers:
        verify_header_bytes(h.raw)
