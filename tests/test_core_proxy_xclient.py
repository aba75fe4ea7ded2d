"""The core's PROXY protocol and XCLIENT/XFORWARD handling (issue 3)."""

from __future__ import annotations

import pytest
from pair import Pair, events, splits, strip

from smtpproto import (
    NEED_DATA,
    PAUSED,
    Config,
    Connection,
    ConnectionClosed,
    Ehlo,
    InvalidCommand,
    LocalProtocolError,
    ProxyConnected,
    RemoteProtocolError,
    Reply,
    Role,
    State,
    Xclient,
    Xforward,
)
from smtpproto.proxy import format_v1, format_v2


def proxy_server(mode: str = "any") -> Connection:
    return Connection(Role.SERVER, Config(proxy_protocol=mode))  # type: ignore[arg-type]


V1 = format_v1("192.0.2.1", "192.0.2.2", 40000, 25)


@pytest.mark.parametrize("chunks", list(splits(V1)))
def test_proxy_v1_header_any_split(chunks: list[bytes]) -> None:
    conn = proxy_server()
    evs = strip(events(conn, chunks))
    assert len(evs) == 2 and evs[1] is PAUSED
    assert isinstance(evs[0], ProxyConnected)
    assert evs[0].header.source_address == "192.0.2.1"
    assert evs[0].header.source_port == 40000
    assert conn.proxy == evs[0].header
    # The greeting is due only now.
    assert conn.send(Reply(code=220, lines=["mx"])) == b"220 mx\r\n"


def test_proxy_v2_header_then_smtp() -> None:
    conn = proxy_server("v2")
    header = format_v2("PROXY", "2001:db8::1", "2001:db8::2", 50000, 25)
    evs = events(conn, header)
    assert isinstance(evs[0], ProxyConnected)
    assert evs[0].header.version == 2
    conn.send(Reply(code=220, lines=["mx"]))
    assert events(conn, b"EHLO c.example\r\n") == [Ehlo(domain="c.example"), PAUSED]


def test_greeting_before_proxy_header_is_refused() -> None:
    conn = proxy_server()
    with pytest.raises(LocalProtocolError):
        conn.send(Reply(code=220, lines=["mx"]))


@pytest.mark.parametrize("data", [b"EHLO c.example\r\n", b"GET / HTTP/1.0\r\n", b"\x00\x01\x02"])
def test_missing_or_garbage_header_closes(data: bytes) -> None:
    conn = proxy_server()
    conn.receive_data(data)
    with pytest.raises(RemoteProtocolError) as info:
        conn.next_event()
    assert info.value.reply is None  # nothing is said to a non-proxy
    assert conn.state is State.ERROR


def test_wrong_version_refused() -> None:
    conn = proxy_server("v2")
    conn.receive_data(V1)
    with pytest.raises(RemoteProtocolError):
        conn.next_event()


def test_bytes_after_header_before_greeting_are_pregreet() -> None:
    conn = proxy_server()
    evs = events(conn, V1 + b"EHLO early.example\r\n")
    assert isinstance(evs[0], ProxyConnected)
    conn.send(Reply(code=220, lines=["mx"]))
    with pytest.raises(RemoteProtocolError) as info:
        conn.next_event()
    assert info.value.reply is not None and info.value.reply.code == 521


def test_eof_during_header() -> None:
    conn = proxy_server()
    conn.receive_data(V1[:10])
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b"")
    assert conn.next_event() == ConnectionClosed()


def greeted(caps: list[str]) -> Pair:
    p = Pair()
    p.server_send(Reply(code=220, lines=["mx"]))
    p.client_events()
    p.client_send(Ehlo(domain="c.example"))
    p.server_events()
    p.server_send(Reply(code=250, lines=["mx", *caps]))
    p.client_events()
    return p


def test_xclient_restarts_session_both_roles() -> None:
    p = greeted(["XCLIENT NAME ADDR PROTO HELO LOGIN", "PIPELINING"])
    wire = p.client_send(Xclient(attributes={"ADDR": "192.0.2.7", "NAME": "mail.example.org"}))
    assert wire == b"XCLIENT ADDR=192.0.2.7 NAME=mail.example.org\r\n"
    assert p.server_events() == [Xclient(attributes={"ADDR": "192.0.2.7", "NAME": "mail.example.org"}), PAUSED]
    p.server_send(Reply(code=220, lines=["mx ESMTP"]))
    (reply, _) = p.client_events()
    assert isinstance(reply, Reply) and reply.code == 220
    assert p.client.state is State.HELLO and p.server.state is State.HELLO
    assert not p.client.extensions  # learnt again from the next EHLO


def test_xclient_needs_220() -> None:
    p = greeted(["XCLIENT NAME ADDR"])
    p.client_send(Xclient(attributes={"NAME": "[UNAVAILABLE]"}))
    p.server_events()
    with pytest.raises(LocalProtocolError):
        p.server.send(Reply(code=250, lines=["ok"]))
    p.server_send(Reply(code=550, lines=["Error: insufficient authorization"], enhanced_status="5.7.0"))
    assert p.client.state is State.READY or isinstance(p.client_events()[0], Reply)
    assert p.server.state is State.READY


def test_xclient_value_xtext_encoded() -> None:
    p = greeted(["XCLIENT NAME ADDR HELO LOGIN"])
    wire = p.client_send(Xclient(attributes={"HELO": "a+b=c"}))
    assert wire == b"XCLIENT HELO=a+2Bb+3Dc\r\n"
    (event, _) = p.server_events()
    assert event == Xclient(attributes={"HELO": "a+b=c"})


def test_xclient_not_advertised() -> None:
    p = greeted(["PIPELINING"])
    with pytest.raises(LocalProtocolError):
        p.client.send(Xclient(attributes={"NAME": "x.example"}))
    p.to_server(b"XCLIENT NAME=x.example\r\n")
    (event, _) = p.server_events()
    assert isinstance(event, InvalidCommand) and event.reply.code == 502


def test_xclient_attribute_not_advertised() -> None:
    p = greeted(["XCLIENT NAME"])
    with pytest.raises(LocalProtocolError):
        p.client.send(Xclient(attributes={"ADDR": "192.0.2.1"}))
    p.to_server(b"XCLIENT ADDR=192.0.2.1\r\n")
    (event, _) = p.server_events()
    assert isinstance(event, InvalidCommand) and event.reply.code == 501


@pytest.mark.parametrize("line", [b"XCLIENT\r\n", b"XCLIENT ADDR=not-an-ip\r\n", b"XCLIENT FOO=1\r\n",
                                  b"XCLIENT NAME=a NAME=b\r\n"])
def test_xclient_syntax_errors(line: bytes) -> None:
    p = greeted(["XCLIENT NAME ADDR"])
    p.to_server(line)
    (event, _) = p.server_events()
    assert isinstance(event, InvalidCommand)
    assert event.reply.code == 501 and event.reply.enhanced_status == "5.5.4"


def test_xforward_keeps_state() -> None:
    p = greeted(["XFORWARD NAME ADDR PROTO HELO SOURCE", "PIPELINING"])
    wire = p.client_send(Xforward(attributes={"ADDR": "IPV6:2001:db8::1", "SOURCE": "remote"}))
    assert wire == b"XFORWARD ADDR=IPV6:2001:db8::1 SOURCE=REMOTE\r\n"
    (event, _) = p.server_events()
    assert isinstance(event, Xforward) and event.attributes["ADDR"] == "IPV6:2001:db8::1"
    p.server_send(Reply(code=250, lines=["Ok"], enhanced_status="2.0.0"))
    p.client_events()
    assert p.client.state is State.READY and p.server.state is State.READY


def test_xclient_event_validation() -> None:
    with pytest.raises(LocalProtocolError):
        Xclient(attributes={})
    with pytest.raises(LocalProtocolError):
        Xclient(attributes={"NAME": "a\r\nMAIL FROM:<x@y>"})
    with pytest.raises(LocalProtocolError):
        Xforward(attributes={"BOGUS": "1"})


def test_enhanced_status_codes_added_once_advertised() -> None:
    """RFC 2034 §4 (issue 3): with ENHANCEDSTATUSCODES advertised, replies the
    application sends without a code get the generic one for the command."""
    from smtpproto import Data, EndOfMessage, Mail, MessageData, Quit, Rcpt

    p = greeted(["ENHANCEDSTATUSCODES", "PIPELINING"])
    p.client_send(Mail(reverse_path="a@x.example"))
    p.server_events()
    assert p.server_send(Reply(code=250, lines=["Ok"])) == b"250 2.1.0 Ok\r\n"
    p.client_send(Rcpt(forward_path="b@y.example"))
    p.server_events()
    assert p.server_send(Reply(code=250, lines=["Ok"])) == b"250 2.1.5 Ok\r\n"
    p.client_send(Rcpt(forward_path="c@y.example"))
    p.server_events()
    assert p.server_send(Reply(code=550, lines=["no such user"])) == b"550 5.0.0 no such user\r\n"
    p.client_send(Data())
    p.server_events()
    assert p.server_send(Reply(code=354, lines=["go"])) == b"354 go\r\n"  # never on 3xx
    early = [e for e in p.client_events() if isinstance(e, Reply)]
    p.client_send(MessageData(data=b"x\r\n"))
    p.client_send(EndOfMessage())
    p.server_events()
    assert p.server_send(Reply(code=250, lines=["queued"])) == b"250 2.0.0 queued\r\n"
    # An explicit code is kept as given.
    p.client_send(Quit())
    p.server_events()
    assert p.server_send(Reply(code=221, lines=["Bye"], enhanced_status="2.0.0")) == b"221 2.0.0 Bye\r\n"
    replies = early + [e for e in p.client_events() if isinstance(e, Reply)]
    assert [r.enhanced_status for r in replies] == ["2.1.0", "2.1.5", "5.0.0", None, "2.0.0", "2.0.0"]


def test_no_enhanced_status_without_the_keyword() -> None:
    from smtpproto import Mail

    p = greeted(["PIPELINING"])
    p.client_send(Mail(reverse_path="a@x.example"))
    p.server_events()
    assert p.server_send(Reply(code=250, lines=["Ok"])) == b"250 Ok\r\n"


def test_reply_text_may_hold_a_tab() -> None:
    """RFC 5321 §4.2 textstring = 1*(%d09 / %d32-126): a received reply with a
    tab is a Reply (found by the fuzz target fuzz_client), and one we send may
    hold one; other controls stay refused."""
    from smtpproto import LocalProtocolError, NEED_DATA

    client = Connection(Role.CLIENT)
    client.receive_data(b"220 mx\tESMTP\r\n")
    assert client.next_event() == Reply(code=220, lines=["mx\tESMTP"])
    assert client.next_event() is NEED_DATA
    assert Connection(Role.SERVER).send(Reply(code=220, lines=["a\tb"])) == b"220 a\tb\r\n"
    with pytest.raises(LocalProtocolError):
        Reply(code=250, lines=["a\x0bb"])
