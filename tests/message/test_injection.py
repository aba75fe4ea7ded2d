"""Header/body injection cases from SECURITY-CASES.md, codec (write) side.

Each test is named by its case id: H-01, H-02, H-03, H-04, H-09, H-10.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smtpproto.message._builder import Attachment, build_bytes
from smtpproto.message._encode import (
    HeaderError,
    format_header,
    format_params_header,
    verify_header_bytes,
    verify_header_section,
)
from smtpproto.message._parser import parse
from smtpproto.message._rfc2047 import decode_words
from smtpproto.message._transfer_encode import encode_body

# The CPython verification regex from the H-01 fix: a line break inside a header field
# that is not CRLF + WSP.
UNSOUND = re.compile(rb"\r\n[^ \t]|\r[^ \n\t]|\n[^ \t]")


def field_names(raw: bytes) -> list[str]:
    return [h.lname for h in parse(raw).headers]


def header_section(raw: bytes) -> bytes:
    return raw[: raw.index(b"\r\n\r\n") + 4]


def corpus_dir() -> Path | None:
    env = os.environ.get("SMTPPROTO_CORPUS")
    if env:
        return Path(env)
    candidate = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
    return candidate if candidate.is_dir() else None


# --------------------------------------------------------------------------- H-01


def test_h01_parsed_encoded_newline_is_not_written_raw() -> None:
    raw = (
        b"Subject: Here's an =?UTF-8?Q?embedded_newline=0A?=\r\n"
        b"To: a@example.com\r\n\r\nbody\r\n"
    )
    msg = parse(raw)
    subject = msg["Subject"]
    if "\n" in subject or "\r" in subject:
        # The decoded value holds a line break: writing it back must be refused ...
        with pytest.raises(ValueError):
            msg["Subject"] = subject
        with pytest.raises(HeaderError):
            format_header("Subject", subject)
    else:  # ... or it was never decoded to one; either way nothing is injected.
        msg["Subject"] = subject
    out = msg.to_bytes()
    assert field_names(out) == ["subject", "to"]


@pytest.mark.parametrize(
    "value",
    [
        "A subject=?UTF-8?Q?=0A?=Bcc: injected@example.com",
        "=?UTF-8?Q?=0D=0ABcc:_injected@example.com?=",
        "x =?utf-8?b?DQpCY2M6IGluamVjdGVkQGV4YW1wbGUuY29t?= y",
        "=?UTF-8?Q?a?= =?UTF-8?Q?=0A?=",
    ],
)
def test_h01_encoded_word_lookalikes_round_trip_literally(value: str) -> None:
    raw = format_header("Subject", value)
    assert not UNSOUND.search(raw[:-2])
    msg = parse(raw + b"To: a@example.com\r\n\r\nbody\r\n")
    assert [h.lname for h in msg.headers] == ["subject", "to"]
    assert msg["Subject"] == value
    # Re-setting the decoded value gives the same, safe bytes again.
    msg["Subject"] = msg["Subject"]
    assert field_names(msg.to_bytes()) == ["subject", "to"]
    assert parse(msg.to_bytes())["Subject"] == value


def test_h01_display_name_lookalike() -> None:
    raw = format_header("To", [("=?UTF-8?Q?=0A?=Bcc: x@evil.example", "a@example.com")])
    msg = parse(raw + b"\r\n")
    assert [h.lname for h in msg.headers] == ["to"]
    (addr,) = msg.addresses("To")
    assert getattr(addr, "addr_spec") == "a@example.com"
    assert getattr(addr, "display_name") == "=?UTF-8?Q?=0A?=Bcc: x@evil.example"


def _corpus_files() -> list[Path]:
    root = corpus_dir()
    if root is None:
        return []
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".eml", ".raw"))


@pytest.mark.skipif(corpus_dir() is None, reason="corpus not found (set SMTPPROTO_CORPUS)")
def test_h01_reset_every_corpus_header() -> None:
    """Parse each corpus message, set every field to its own decoded value, serialize:
    either the write is refused (HeaderError) or the output has exactly the same fields."""
    files = [p for p in _corpus_files() if b":" in p.read_bytes()[:200]]
    assert files
    checked = 0
    for path in files:
        data = path.read_bytes()
        msg = parse(data)
        original = [h.lname for h in msg.headers]
        edited: set[str] = set()
        for name in dict.fromkeys(h.name for h in msg.headers):
            if not re.fullmatch(r"[\x21-\x39\x3b-\x7e]+", name):
                continue
            value = msg.get(name)
            if value is None:
                continue
            try:
                msg[name] = value
            except (HeaderError, ValueError):
                continue
            edited.add(name.lower())
            checked += 1
        # Setting a field replaces its first occurrence and drops later ones, so the
        # re-parsed field names must be exactly the original ones minus those duplicates:
        # one extra field would be an injection.
        seen: set[str] = set()
        expected = []
        for lname in original:
            if lname in edited and lname in seen:
                continue
            seen.add(lname)
            expected.append(lname)
        assert [h.lname for h in parse(msg.to_bytes()).headers] == expected, path
    assert checked > 500


# --------------------------------------------------------------------------- H-02


@pytest.mark.parametrize("value", ["A subject\n", "A subject\r", "A subject\r\n", "\nBcc: x@y"])
def test_h02_trailing_or_embedded_newline_raises(value: str) -> None:
    with pytest.raises(HeaderError):
        format_header("Subject", value)
    with pytest.raises(HeaderError):
        build_bytes(subject=value, text="body")
    msg = parse(b"Subject: ok\r\n\r\nbody")
    with pytest.raises(ValueError):
        msg["Subject"] = value
    with pytest.raises(ValueError):
        msg.add_header("X-Other", value)
    assert msg.to_bytes() == b"Subject: ok\r\n\r\nbody"


# --------------------------------------------------------------------------- H-03


def test_h03_every_writer_verifies() -> None:
    # Each header writer in the codec ends in verify_header_bytes, so each of them
    # refuses what the verifier refuses, whatever the entry point.
    for bad in ("a\nb", "a\rb", "a\x00b"):
        for call in (
            lambda: format_header("X-A", bad),
            lambda: format_header("To", bad),
            lambda: format_header("Message-ID", bad),
            lambda: format_params_header("Content-Type", "text/plain", {"name": bad}),
            lambda: format_params_header("Content-Type", bad, {}),
            lambda: build_bytes(headers=[("X-A", bad)]),
            lambda: build_bytes(attachments=[Attachment(b"x", headers=[("X-A", bad)])]),
        ):
            with pytest.raises(HeaderError):
                call()
    for raw in (b"X: a\nBcc: b\r\n", b"X: a\r\nBcc: b\r\n", b"X: a\rb\r\n"):
        with pytest.raises(HeaderError):
            verify_header_bytes(raw)


@settings(max_examples=150, deadline=None)
@given(
    st.text(max_size=200),
    st.lists(st.tuples(st.text(max_size=30), st.text(max_size=60)), max_size=4),
    st.booleans(),
)
def test_h03_writers_never_emit_unsound_headers(
    subject: str, headers: list[tuple[str, str]], utf8: bool
) -> None:
    try:
        raw = build_bytes(subject=subject, headers=headers, text="x", smtputf8=utf8)
    except (HeaderError, ValueError):
        return
    section = header_section(raw)
    verify_header_section(section)
    fields = re.split(rb"\r\n(?![ \t])", section[:-4])
    for f in fields:
        assert not UNSOUND.search(f)


# --------------------------------------------------------------------------- H-04


@pytest.mark.parametrize("name", ["X-A: b\r\nBcc", "X Bad", "", "X:A", "X\x00"])
def test_h04_bad_field_names(name: str) -> None:
    with pytest.raises(HeaderError):
        format_header(name, "v")
    with pytest.raises(HeaderError):
        build_bytes(headers=[(name, "v")])
    msg = parse(b"Subject: ok\r\n\r\n")
    with pytest.raises(ValueError):
        msg[name] = "v"
    with pytest.raises(ValueError):
        msg.add_header(name, "v")


# --------------------------------------------------------------------------- H-09


def test_h09_long_header_value_and_body_line() -> None:
    raw = build_bytes(subject="x" * 5000, text="y" * 5000, headers=[("X-Long", "z" * 5000)])
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    msg = parse(raw)
    assert msg["Subject"] == "x" * 5000
    assert msg["X-Long"] == "z" * 5000
    assert msg.text() == "y" * 5000
    # 8bit forced on an over-long line: refused, never written.
    with pytest.raises(ValueError):
        encode_body(b"y" * 5000, "8bit")
    with pytest.raises(HeaderError):
        format_header("Message-ID", "<" + "m" * 5000 + "@example.com>")


# --------------------------------------------------------------------------- H-10


@pytest.mark.parametrize(
    "body", ["hi\n.\r\nMAIL FROM:<x@x>\r\n", "hi\r\n.\r\nQUIT\r\n", "a\r.\rb", "x\n.\n"]
)
def test_h10_body_line_endings_normalized(body: str) -> None:
    for kwargs in ({"text": body}, {"html": body}, {"text": body, "html": body}):
        raw = build_bytes(**kwargs, seed=0)  # type: ignore[arg-type]
        # CR and LF only ever as CRLF: no bare LF/CR that a relay could pair with a "."
        # into an end of data.
        assert raw.count(b"\r") == raw.count(b"\n") == raw.count(b"\r\n")


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300), st.binary(max_size=300), st.booleans())
def test_h10_built_messages_only_have_crlf(text: str, data: bytes, b8: bool) -> None:
    raw = build_bytes(text=text, attachments=[Attachment(data)], allow_8bit=b8, seed=0)
    assert raw.count(b"\r") == raw.count(b"\n") == raw.count(b"\r\n")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
