"""DKIM canonicalization (RFC 6376 §3.4) against flanker/dkim expected outputs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from smtpproto.message._dkim import canonicalize_body, canonicalize_header, canonicalize_headers


def corpus_dir() -> Path | None:
    env = os.environ.get("SMTPPROTO_CORPUS")
    if env:
        return Path(env)
    candidate = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
    return candidate if candidate.is_dir() else None


CORPUS = corpus_dir()
DKIM_DIR = CORPUS / "flanker" / "dkim" if CORPUS else None
CASES = (
    sorted(p.name.split(".")[1] for p in DKIM_DIR.glob("email.*"))
    if DKIM_DIR is not None and DKIM_DIR.is_dir()
    else []
)


def split_message(data: bytes) -> tuple[bytes, bytes]:
    """Header section (without the empty line) and body, as RFC 6376 §5.4/§3.7 use them."""
    if data.startswith(b"\r\n"):
        return b"", data[2:]
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return data, b""
    return data[: end + 2], data[end + 4 :]


@pytest.mark.skipif(not CASES, reason="corpus flanker/dkim not found (set SMTPPROTO_CORPUS)")
@pytest.mark.parametrize("case", CASES or ["none"])
@pytest.mark.parametrize("method", ["simple", "relaxed"])
def test_flanker_dkim_vectors(case: str, method: str) -> None:
    assert DKIM_DIR is not None
    # The fixtures are stored with LF line ends; on the wire they are CRLF (the README's
    # run_tests feeds them through a converter). Bare CRs inside lines stay data.
    raw = (DKIM_DIR / f"email.{case}").read_bytes().replace(b"\n", b"\r\n")
    expected = (DKIM_DIR / f"{method}.expected.{case}").read_bytes()
    headers, body = split_message(raw)
    got = canonicalize_headers(headers, method) + b"\r\n" + canonicalize_body(body, method)  # type: ignore[arg-type]
    assert got == expected


def test_corpus_has_all_cases() -> None:
    if not CASES:
        pytest.skip("corpus flanker/dkim not found (set SMTPPROTO_CORPUS)")
    assert len(CASES) == 21


def test_rfc6376_section_3_4_5_example() -> None:
    # RFC 6376 §3.4.5 worked example.
    headers = b"A: X\r\nB : Y\t\r\n\tZ  \r\n"
    body = b" C \r\nD \t E\r\n\r\n\r\n"
    assert canonicalize_headers(headers, "relaxed") == b"a:X\r\nb:Y Z\r\n"
    assert canonicalize_body(body, "relaxed") == b" C\r\nD E\r\n"
    assert canonicalize_headers(headers, "simple") == headers
    assert canonicalize_body(body, "simple") == b" C \r\nD \t E\r\n"


def test_header_pairs_and_fields() -> None:
    assert canonicalize_header((b"Subject", b"  Hello   World \t"), "relaxed") == (
        b"subject:Hello World\r\n"
    )
    assert canonicalize_header(("Subject", " x"), "simple") == b"Subject: x\r\n"
    assert canonicalize_headers([b"From: a@b\r\n", b"To:  c@d"], "relaxed") == (
        b"from:a@b\r\nto:c@d\r\n"
    )
    with pytest.raises(ValueError):
        canonicalize_header(b"no colon", "relaxed")


def test_body_length_and_empty() -> None:
    assert canonicalize_body(b"", "simple") == b"\r\n"
    assert canonicalize_body(b"", "relaxed") == b""
    assert canonicalize_body(b"\r\n\r\n", "relaxed") == b""
    assert canonicalize_body(b"abc\r\ndef\r\n", "simple", length=5) == b"abc\r\n"
    with pytest.raises(ValueError):
        canonicalize_body(b"x", "simple", length=-1)


def test_unknown_method() -> None:
    with pytest.raises(ValueError):
        canonicalize_body(b"x", "nofws")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        canonicalize_headers(b"A: b\r\n", "nowsp")  # type: ignore[arg-type]


def test_parsed_header_fields() -> None:
    from smtpproto.message._parser import parse

    raw = b"From: a@b\r\nSubject:  Hello\r\n\t World \r\nTo: c@d\r\n\r\nBody  \r\n\r\n"
    msg = parse(raw)
    section = raw[: raw.index(b"\r\n\r\n") + 2]
    for method in ("simple", "relaxed"):
        fields = [h.raw for h in msg.headers]
        assert canonicalize_headers(fields, method) == canonicalize_headers(section, method)  # type: ignore[arg-type]
    assert canonicalize_headers([h.raw for h in msg.headers if h.lname == "subject"], "relaxed") == (
        b"subject:Hello World\r\n"
    )
    assert canonicalize_body(msg.raw_body, "relaxed") == b"Body\r\n"
