"""Envelope helpers: sender/recipients from headers (Resent-* aware) and Bcc stripping."""

from __future__ import annotations

import pytest

from smtpproto.message._parser import parse
from smtpproto.message._envelope import EnvelopeError, envelope_from_headers, strip_bcc


MSG = (
    b"From: Alice <alice@example.com>\r\n"
    b"To: bob@example.org, Carol <carol@example.net>\r\n"
    b"Bcc: secret@example.com,\r\n"
    b"  other-secret@example.com\r\n"
    b"Subject: hi\r\n"
    b"Cc: team: dave@example.org, erin@example.org;\r\n"
    b"BCC : third@example.com\r\n"
    b"\r\n"
    b"Bcc: this is body text\r\n"
)


def test_strip_bcc_keeps_every_other_byte() -> None:
    out = strip_bcc(MSG)
    assert out == (
        b"From: Alice <alice@example.com>\r\n"
        b"To: bob@example.org, Carol <carol@example.net>\r\n"
        b"Subject: hi\r\n"
        b"Cc: team: dave@example.org, erin@example.org;\r\n"
        b"\r\n"
        b"Bcc: this is body text\r\n"
    )


def test_strip_bcc_resent_and_lf_and_no_body() -> None:
    lf = b"Resent-Bcc: x@y\nResent-From: a@b\nBcc:\n\tz@y\nTo: c@d\n\nbody\n"
    assert strip_bcc(lf) == b"Resent-From: a@b\nTo: c@d\n\nbody\n"
    assert strip_bcc(b"To: a@b\r\nBcc: c@d\r\n") == b"To: a@b\r\n"
    assert strip_bcc(b"") == b""
    untouched = b"From: a@b\r\nX-Bcc: keep@me\r\nBccX: keep\r\n\r\nx"
    assert strip_bcc(untouched) == untouched


def test_strip_bcc_leaves_attached_message_alone() -> None:
    raw = (
        b"From: a@b\r\nBcc: c@d\r\nContent-Type: message/rfc822\r\n\r\n"
        b"From: inner@b\r\nBcc: inner-bcc@d\r\n\r\ninner body\r\n"
    )
    assert strip_bcc(raw) == (
        b"From: a@b\r\nContent-Type: message/rfc822\r\n\r\n"
        b"From: inner@b\r\nBcc: inner-bcc@d\r\n\r\ninner body\r\n"
    )


def test_strip_bcc_accepts_message() -> None:
    assert strip_bcc(parse(MSG)) == strip_bcc(MSG)


def test_envelope_plain() -> None:
    sender, rcpts = envelope_from_headers(MSG)
    assert sender == "alice@example.com"
    assert rcpts == [
        "bob@example.org",
        "carol@example.net",
        "dave@example.org",
        "erin@example.org",
        "secret@example.com",
        "other-secret@example.com",
        "third@example.com",
    ]


def test_envelope_sender_field_wins_and_dedupe() -> None:
    raw = (
        b"From: a@example.com, b@example.com\r\nSender: s@example.com\r\n"
        b"To: x@Example.COM, x@example.com, X@example.com\r\nCc: x@example.com\r\n\r\n"
    )
    sender, rcpts = envelope_from_headers(raw)
    assert sender == "s@example.com"
    assert rcpts == ["x@Example.COM", "X@example.com"]


def test_envelope_latest_resent_block() -> None:
    raw = (
        b"Resent-From: newest@example.com\r\n"
        b"Resent-To: r1@example.org\r\n"
        b"Resent-Cc: r2@example.org\r\n"
        b"Resent-Bcc: r3@example.org\r\n"
        b"Resent-Date: Tue, 02 Jan 2024 03:04:05 +0000\r\n"
        b"Received: from x by y; Tue, 02 Jan 2024 03:00:00 +0000\r\n"
        b"Resent-From: older@example.com\r\n"
        b"Resent-To: old@example.org\r\n"
        b"Resent-Date: Mon, 01 Jan 2024 03:04:05 +0000\r\n"
        b"From: original@example.com\r\n"
        b"To: orig-rcpt@example.com\r\n\r\nbody\r\n"
    )
    assert envelope_from_headers(raw) == (
        "newest@example.com",
        ["r1@example.org", "r2@example.org", "r3@example.org"],
    )


def test_envelope_resent_blocks_back_to_back_and_resent_sender() -> None:
    raw = (
        b"Resent-Sender: agent@example.com\r\n"
        b"Resent-From: newest@example.com\r\n"
        b"Resent-To: r1@example.org\r\n"
        b"Resent-From: older@example.com\r\n"
        b"Resent-To: old@example.org\r\n"
        b"From: original@example.com\r\nTo: o@example.com\r\n\r\n"
    )
    assert envelope_from_headers(raw) == ("agent@example.com", ["r1@example.org"])


def test_envelope_errors() -> None:
    with pytest.raises(EnvelopeError):
        envelope_from_headers(b"To: a@b.example\r\n\r\n")
    with pytest.raises(EnvelopeError):
        envelope_from_headers(b"Resent-To: a@b.example\r\nFrom: x@y.example\r\n\r\n")
    assert envelope_from_headers(b"From: a@b.example\r\n\r\n") == ("a@b.example", [])
