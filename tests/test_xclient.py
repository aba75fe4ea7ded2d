"""Tests for smtpproto._xclient (Postfix XCLIENT / XFORWARD attributes)."""

from __future__ import annotations

import pytest

from smtpproto._xclient import (
    NOT_AUTHORIZED,
    TEMPUNAVAIL,
    UNAVAILABLE,
    XclientError,
    XclientProblem,
    format_address,
    format_xclient,
    format_xforward,
    parse_address,
    parse_xclient,
    parse_xforward,
    validate_attribute,
)


def test_parse_xclient_full() -> None:
    attrs = parse_xclient(
        "NAME=spike.porcupine.org ADDR=168.100.189.2 PORT=52432 PROTO=esmtp HELO=spike.porcupine.org "
        "LOGIN=wietse DESTADDR=IPV6:2001:DB8::25 DESTPORT=25 REVERSE_NAME=[UNAVAILABLE]"
    )
    assert attrs == {
        "NAME": "spike.porcupine.org",
        "ADDR": "168.100.189.2",
        "PORT": "52432",
        "PROTO": "ESMTP",
        "HELO": "spike.porcupine.org",
        "LOGIN": "wietse",
        "DESTADDR": "IPV6:2001:db8::25",
        "DESTPORT": "25",
        "REVERSE_NAME": UNAVAILABLE,
    }


def test_parse_xclient_xtext_and_case() -> None:
    attrs = parse_xclient("helo=a+20b+2Bc login=user+40example.com name=[TEMPUNAVAIL]")
    assert attrs == {"HELO": "a b+c", "LOGIN": "user@example.com", "NAME": TEMPUNAVAIL}
    assert parse_xclient("  ADDR=1.2.3.4   PORT=0 ") == {"ADDR": "1.2.3.4", "PORT": "0"}


def test_parse_xforward() -> None:
    attrs = parse_xforward("NAME=mail.example ADDR=192.0.2.1 PORT=25 PROTO=LMTP HELO=x IDENT=4Xyz SOURCE=remote")
    assert attrs["SOURCE"] == "REMOTE" and attrs["IDENT"] == "4Xyz" and attrs["PROTO"] == "LMTP"


@pytest.mark.parametrize(
    "argument",
    [
        "",
        "NAME",
        "FOO=bar",
        "IDENT=x",  # XFORWARD-only attribute
        "NAME=a NAME=b",
        "NAME=bad_host!",
        "ADDR=1.2.3",
        "ADDR=::1",  # IPv6 needs the IPV6: prefix
        "ADDR=IPV6:1.2.3.4",
        "PORT=65536",
        "PORT=080",
        "PROTO=HTTP",
        "ADDR=[TEMPUNAVAIL]",
        "HELO=a+0Db",  # CR hidden in xtext
        "HELO=a+2",  # bad xtext
        "HELO=" + "a" * 256,
        "LOGIN=a=b",
    ],
)
def test_parse_xclient_errors(argument: str) -> None:
    with pytest.raises(XclientError) as info:
        parse_xclient(argument)
    assert (info.value.problem.code, info.value.problem.enhanced) == (501, "5.5.4")


@pytest.mark.parametrize("argument", ["LOGIN=x", "SOURCE=SOMEWHERE", "IDENT=" + "a" * 65, "NAME=[TEMPUNAVAIL] PROTO=a/b"])
def test_parse_xforward_errors(argument: str) -> None:
    with pytest.raises(XclientError):
        parse_xforward(argument)


def test_accepted_names() -> None:
    assert parse_xclient("ADDR=1.2.3.4", accepted=["addr", "NAME"]) == {"ADDR": "1.2.3.4"}
    with pytest.raises(XclientError):
        parse_xclient("LOGIN=x", accepted=["ADDR"])


def test_format_xclient() -> None:
    lines = format_xclient({"name": "mx.example", "addr": "2001:db8::1", "helo": "a b", "login": UNAVAILABLE})
    assert lines == ["NAME=mx.example ADDR=IPV6:2001:db8::1 HELO=a+20b LOGIN=[UNAVAILABLE]"]
    assert parse_xclient(lines[0]) == {"NAME": "mx.example", "ADDR": "IPV6:2001:db8::1", "HELO": "a b", "LOGIN": UNAVAILABLE}
    assert format_xforward({"SOURCE": "local", "IDENT": "ABC"}) == ["SOURCE=LOCAL IDENT=ABC"]


def test_format_splits_long_commands() -> None:
    attrs = {"HELO": "h" * 200, "LOGIN": "l" * 200, "NAME": "n" * 200}
    lines = format_xclient(attrs, max_length=512)
    assert len(lines) == 2
    for line in lines:
        assert len("XCLIENT " + line + "\r\n") <= 512
    merged: dict[str, str] = {}
    for line in lines:
        merged.update(parse_xclient(line))
    assert merged == attrs
    with pytest.raises(ValueError):
        format_xclient({"HELO": "h" * 255}, max_length=100)
    with pytest.raises(ValueError):
        format_xclient({})


def test_format_refuses_bad_values_and_unadvertised() -> None:
    for attrs in ({"HELO": "a\r\nMAIL FROM:<x@y>"}, {"ADDR": "not an ip"}, {"BOGUS": "x"}, {"PORT": "99999"}):
        with pytest.raises(XclientError):
            format_xclient(attrs)
    with pytest.raises(XclientError):
        format_xclient({"LOGIN": "x"}, advertised=("NAME", "ADDR"))
    assert format_xclient({"ADDR": "10.0.0.1"}, advertised=("name", "addr")) == ["ADDR=10.0.0.1"]


def test_addresses() -> None:
    assert str(parse_address("192.0.2.1")) == "192.0.2.1"
    assert str(parse_address("ipv6:2001:db8::1")) == "2001:db8::1"
    assert format_address("2001:0db8:0000::1") == "IPV6:2001:db8::1"
    assert format_address("192.0.2.1") == "192.0.2.1"
    with pytest.raises(ValueError):
        parse_address("2001:db8::1")


def test_validate_attribute_and_problem() -> None:
    assert validate_attribute("XCLIENT", "proto", "smtp") == "SMTP"
    assert NOT_AUTHORIZED == XclientProblem(550, "5.7.0", "Error: insufficient authorization")
    with pytest.raises(XclientError):
        validate_attribute("XCLIENT", "HELO", "")
