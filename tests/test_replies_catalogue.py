"""Tests for smtpproto.replies (the catalogue of standard server replies)."""

from __future__ import annotations

import pytest

from smtpproto import replies
from smtpproto._enhanced import matches_reply_code
from smtpproto.replies import ReplySpec


def all_specs() -> list[ReplySpec]:
    specs = [getattr(replies, n) for n in replies.__all__ if isinstance(getattr(replies, n), ReplySpec)]
    specs += [
        replies.greeting("mx.example.com"),
        replies.greeting_refused("mx.example.com"),
        replies.ehlo_ok("mx.example.com", ["PIPELINING", "SIZE 10240000"]),
        replies.helo_ok("mx.example.com"),
        replies.queued("4Xyz12"),
        replies.queued(),
        replies.recipient_rejected("bob@example.com"),
        replies.sender_rejected("eve@example.com"),
        replies.relay_denied("x@elsewhere.example"),
        replies.timeout("mx.example.com"),
        replies.too_many_errors("mx.example.com"),
        replies.shutting_down("mx.example.com"),
        replies.unsupported_parameter("X-FOO"),
        replies.syntax("MAIL FROM:<address>"),
        replies.lmtp_delivered("bob@example.com"),
    ]
    return specs


def test_catalogue_is_consistent() -> None:
    specs = all_specs()
    assert len(specs) > 60
    for spec in specs:
        assert 200 <= spec.code <= 599
        if spec.enhanced is not None:
            assert matches_reply_code(spec.code, spec.enhanced), spec
        wire = spec.to_bytes()
        assert wire.endswith(b"\r\n")
        assert b"\n" not in wire.replace(b"\r\n", b"")
        for line in wire.split(b"\r\n")[:-1]:
            assert line[:3] == str(spec.code).encode()
            assert len(line) + 2 <= 512


@pytest.mark.parametrize(
    "spec,wire",
    [
        (replies.CLOSING, b"221 2.0.0 Bye\r\n"),
        (replies.SENDER_OK, b"250 2.1.0 Ok\r\n"),
        (replies.RECIPIENT_OK, b"250 2.1.5 Ok\r\n"),
        (replies.queued("4Xyz12"), b"250 2.0.0 Ok: queued as 4Xyz12\r\n"),
        (replies.START_MAIL_INPUT, b"354 End data with <CR><LF>.<CR><LF>\r\n"),
        (replies.greeting("mx.example.com"), b"220 mx.example.com ESMTP\r\n"),
        (replies.timeout("mx.example.com"), b"421 4.4.2 mx.example.com Error: timeout exceeded\r\n"),
        (replies.too_many_errors("mx"), b"421 4.7.0 mx Error: too many errors\r\n"),
        (replies.TOO_MANY_RECIPIENTS, b"452 4.5.3 Error: too many recipients\r\n"),
        (replies.NEED_RCPT, b"503 5.5.1 Error: need RCPT command\r\n"),
        (replies.MUST_ISSUE_STARTTLS, b"530 5.7.0 Must issue a STARTTLS command first\r\n"),
        (replies.AUTH_ENCRYPTION_REQUIRED, b"538 5.7.11 Encryption required for requested authentication mechanism\r\n"),
        (replies.SIZE_EXCEEDED, b"552 5.3.4 Message size exceeds fixed maximum message size\r\n"),
        (replies.SYNC_ERROR, b"554 5.5.0 Error: SMTP protocol synchronization\r\n"),
        (replies.unsupported_parameter("X-FOO"), b"555 5.5.4 Unsupported option: X-FOO\r\n"),
        (replies.STARTTLS_READY, b"220 2.0.0 Ready to start TLS\r\n"),
        (replies.AUTH_SUCCESSFUL, b"235 2.7.0 Authentication successful\r\n"),
    ],
)
def test_exact_wire_forms(spec: ReplySpec, wire: bytes) -> None:
    assert spec.to_bytes() == wire


def test_multiline_ehlo() -> None:
    spec = replies.ehlo_ok("mx.example.com", ("PIPELINING", "8BITMIME"))
    assert spec.to_bytes() == b"250-mx.example.com\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
    assert spec.lines == ["mx.example.com", "PIPELINING", "8BITMIME"]
    assert str(spec) == "250-mx.example.com\n250-PIPELINING\n250 8BITMIME"


def test_multiline_with_enhanced() -> None:
    spec = ReplySpec(550, "5.7.1", "first\nsecond")
    assert spec.lines == ["5.7.1 first", "5.7.1 second"]
    assert spec.text_lines == ["first", "second"]
    assert spec.to_bytes() == b"550-5.7.1 first\r\n550 5.7.1 second\r\n"


def test_with_text_and_without_enhanced() -> None:
    assert replies.OK.with_text("Fine") == ReplySpec(250, "2.0.0", "Fine")
    assert replies.OK.without_enhanced().to_bytes() == b"250 Ok\r\n"


@pytest.mark.parametrize(
    "args",
    [
        (199, None, "x"),
        (600, None, "x"),
        (250, "5.0.0", "x"),
        (250, "2.0", "x"),
        (250, None, "a\r\nMAIL FROM:<x@y>"),
        (250, None, "a\rb"),
        (250, None, "a\x00b"),
    ],
)
def test_reply_spec_validation(args: tuple[int, str | None, str]) -> None:
    with pytest.raises(ValueError):
        ReplySpec(*args)


@pytest.mark.parametrize(
    "call",
    [
        lambda: replies.greeting("bad host\r\n"),
        lambda: replies.greeting("mx", "ESMTP\r\n250 injected"),
        lambda: replies.timeout(""),
        lambda: replies.queued("has space"),
        lambda: replies.recipient_rejected("a\r\nb"),
        lambda: replies.unsupported_parameter("BAD KEY"),
        lambda: replies.ehlo_ok("mx", ["SIZE\r\n"]),
    ],
)
def test_builders_refuse_injection(call: object) -> None:
    with pytest.raises(ValueError):
        call()  # type: ignore[operator]


def test_utf8_text_allowed() -> None:
    assert ReplySpec(550, "5.1.1", "Empfänger unbekannt").to_bytes() == "550 5.1.1 Empfänger unbekannt\r\n".encode()
