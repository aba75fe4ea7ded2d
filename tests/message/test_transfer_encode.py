"""Quoted-printable / base64 writers and the transfer-encoding choice (RFC 2045 §6)."""

from __future__ import annotations

import base64
import binascii

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smtpproto.message._transfer_encode import (
    choose_encoding,
    encode_base64,
    encode_body,
    encode_quoted_printable,
    is_line_safe,
    normalize_newlines,
)


def qp_lines(encoded: bytes) -> list[bytes]:
    return encoded.split(b"\r\n")


def check_qp_shape(encoded: bytes) -> None:
    assert encoded.isascii()
    for line in qp_lines(encoded):
        assert len(line) <= 76
        assert b"\r" not in line and b"\n" not in line
        # RFC 2045 §6.7 (3): no literal white space at the end of an encoded line.
        assert not line.endswith((b" ", b"\t"))
        assert line != b"."


def test_qp_basic() -> None:
    assert encode_quoted_printable(b"") == b""
    assert encode_quoted_printable(b"hello") == b"hello"
    assert encode_quoted_printable(b"a=b") == b"a=3Db"
    assert encode_quoted_printable(b"caf\xc3\xa9\r\n") == b"caf=C3=A9\r\n"
    assert encode_quoted_printable(b"end \r\nx\t") == b"end=20\r\nx=09"
    assert encode_quoted_printable(b"a\nb\rc") == b"a=0Ab=0Dc"
    assert encode_quoted_printable(b".\r\n") == b"=2E\r\n"


def test_qp_soft_breaks_never_split_escapes() -> None:
    for prefix in range(0, 5):
        data = b"x" * prefix + b"\xff" * 100
        encoded = encode_quoted_printable(data)
        check_qp_shape(encoded)
        assert binascii.a2b_qp(encoded) == data
        for line in qp_lines(encoded)[:-1]:
            assert line.endswith(b"=")
            assert not line[:-1].endswith(b"=") and line[-3:-2] != b"="


def test_qp_long_line_has_76_char_lines() -> None:
    encoded = encode_quoted_printable(b"a" * 1000)
    lines = qp_lines(encoded)
    assert [len(line) for line in lines[:-1]] == [76] * (len(lines) - 1)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=2000))
def test_qp_round_trip_binary(data: bytes) -> None:
    encoded = encode_quoted_printable(data)
    check_qp_shape(encoded)
    assert binascii.a2b_qp(encoded) == data


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([b"a", b" ", b"\t", b"\r\n", b".", b"=", b"\xe9", b"\r", b"\n"]), max_size=300))
def test_qp_round_trip_texty(pieces: list[bytes]) -> None:
    data = b"".join(pieces)
    encoded = encode_quoted_printable(data)
    check_qp_shape(encoded)
    assert binascii.a2b_qp(encoded) == data


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000))
def test_base64_round_trip(data: bytes) -> None:
    encoded = encode_base64(data)
    lines = encoded.split(b"\r\n")
    assert lines[-1] == b""
    assert all(len(line) <= 76 for line in lines)
    assert all(len(line) == 76 for line in lines[:-2])
    assert base64.b64decode(encoded.replace(b"\r\n", b"")) == data


def test_base64_empty() -> None:
    assert encode_base64(b"") == b""


def test_normalize_newlines_h10() -> None:
    assert normalize_newlines(b"hi\n.\r\nMAIL FROM:<x@x>\r\n") == b"hi\r\n.\r\nMAIL FROM:<x@x>\r\n"
    assert normalize_newlines(b"a\rb\n\rc\r\n") == b"a\r\nb\r\n\r\nc\r\n"
    assert normalize_newlines(b"\r\r\n\n") == b"\r\n\r\n\r\n"


@pytest.mark.parametrize(
    "data, safe",
    [
        (b"", True),
        (b"abc\r\ndef", True),
        (b"abc\ndef", False),
        (b"abc\rdef", False),
        (b"a\x00b", False),
        (b"a" * 998, True),
        (b"a" * 999, False),
        (b"x\r\n" + b"a" * 998 + b"\r\n", True),
        (b"x\r\n" + b"a" * 999 + b"\r\n", False),
        (b"x\r\n" + b"a" * 999, False),
    ],
)
def test_is_line_safe(data: bytes, safe: bool) -> None:
    assert is_line_safe(data) is safe


def test_choose_encoding() -> None:
    assert choose_encoding(b"plain text\r\n") == "7bit"
    german = "Viele Grüße aus Köln, bis bald!\r\n".encode()
    assert choose_encoding(german) == "quoted-printable"
    assert choose_encoding(german, allow_8bit=True) == "8bit"
    # Short and dense: base64 is smaller (14 vs 17 octets).
    assert choose_encoding("Grüße\r\n".encode()) == "base64"
    assert choose_encoding("Привет мир\r\n".encode() * 5) == "base64"
    assert choose_encoding("Привет мир\r\n".encode() * 5, allow_8bit=True) == "8bit"
    # H-09: a 5000-octet line is never 7bit/8bit.
    assert choose_encoding(b"a" * 5000) == "quoted-printable"
    assert choose_encoding(b"a" * 5000, allow_8bit=True) == "quoted-printable"
    assert choose_encoding(b"a" * 5000, allow_binary=True) == "binary"
    assert choose_encoding(bytes(range(256)) * 4) == "base64"
    assert choose_encoding(b"a\nb") == "quoted-printable"
    assert choose_encoding(b"a\x00b", allow_8bit=True) == "quoted-printable"


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=1500), st.booleans(), st.booleans())
def test_choice_is_always_exact_and_short_lined(data: bytes, b8: bool, binary: bool) -> None:
    enc = choose_encoding(data, allow_8bit=b8, allow_binary=binary)
    body = encode_body(data, enc)
    if enc in ("7bit", "8bit"):
        assert body == data
        assert all(len(line) <= 998 for line in body.split(b"\r\n"))
    elif enc == "binary":
        assert binary and body == data
    elif enc == "quoted-printable":
        assert binascii.a2b_qp(body) == data
    else:
        assert base64.b64decode(body.replace(b"\r\n", b"")) == data
    if enc == "7bit":
        assert data.isascii()
    if enc == "8bit":
        assert b8 or binary


def test_encode_body_refuses_unsafe_7bit_8bit() -> None:
    with pytest.raises(ValueError):
        encode_body(b"a" * 1000, "7bit")
    with pytest.raises(ValueError):
        encode_body("é".encode(), "7bit")
    with pytest.raises(ValueError):
        encode_body(b"a\nb", "8bit")
    with pytest.raises(ValueError):
        encode_body(b"x", "uuencode")
    assert encode_body("é".encode(), "8bit") == "é".encode()
    assert encode_body(b"a\nb", "BINARY") == b"a\nb"
