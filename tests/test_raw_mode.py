"""Raw mode: ``Connection.send_raw_unchecked`` in both roles.

Transcript style: the exact bytes each side puts on the wire, what the other
side makes of them, and the state afterwards (raw sends never change it)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pair import events, strip

from smtpproto import (
    NEED_DATA,
    PAUSED,
    Connection,
    ConnectionClosed,
    Data,
    Ehlo,
    InvalidCommand,
    LocalProtocolError,
    Mail,
    MessageData,
    Noop,
    RawBytes,
    Rcpt,
    RemoteProtocolError,
    Reply,
    Role,
    State,
)

GREETING = b"220 mx.example ESMTP\r\n"
EHLO_PIPELINING = b"250-mx.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n"


def raw_client(greeting: bytes, ehlo_reply: bytes | None = None) -> Connection:
    """A raw-mode client that has read the greeting and, if given, the reply
    to its EHLO."""
    conn = Connection(Role.CLIENT, allow_raw_unchecked=True)
    conn.receive_data(greeting)
    assert isinstance(conn.next_event(), Reply)
    if ehlo_reply is not None:
        conn.send(Ehlo(domain="c.example"))
        conn.receive_data(ehlo_reply)
        assert isinstance(conn.next_event(), Reply)
    return conn


def replies_of(conn: Connection, data: bytes) -> list[Reply]:
    conn.receive_data(data)
    out: list[Reply] = []
    while True:
        ev = conn.next_event()
        if ev is NEED_DATA:
            return out
        assert isinstance(ev, Reply), ev
        out.append(ev)


# ---------------------------------------------------------------- never the default


@pytest.mark.parametrize("role", [Role.CLIENT, Role.SERVER])
def test_refused_unless_enabled(role: Role) -> None:
    conn = Connection(role)
    with pytest.raises(LocalProtocolError, match="allow_raw_unchecked=True"):
        conn.send_raw_unchecked(b"NOOP\r\n")
    with pytest.raises(LocalProtocolError):
        conn.send_raw_unchecked(b"", expect_replies=0)
    # Only a real True turns it on: a truthy string is a mistake, not consent.
    with pytest.raises(LocalProtocolError):
        Connection(role, allow_raw_unchecked="yes").send_raw_unchecked(b"x")  # type: ignore[arg-type]
    assert conn.state is State.GREETING and conn.pending == ()


def test_argument_checks() -> None:
    conn = raw_client(GREETING)
    with pytest.raises(TypeError):
        conn.send_raw_unchecked("NOOP\r\n")  # type: ignore[arg-type]
    for bad in (-1, True, 1.0):
        with pytest.raises(ValueError):
            conn.send_raw_unchecked(b"NOOP\r\n", expect_replies=bad)  # type: ignore[arg-type]
    assert conn.pending == ()
    server = Connection(Role.SERVER, allow_raw_unchecked=True)
    with pytest.raises(LocalProtocolError, match="expects no replies"):
        server.send_raw_unchecked(b"250 ok\r\n", expect_replies=1)


# ---------------------------------------------------------------- client


def test_client_out_of_sequence_command_exact_bytes_and_paired_reply() -> None:
    client = raw_client(GREETING)
    server = Connection(Role.SERVER)
    server.send(Reply(code=220, lines=("mx.example ESMTP",)))
    # MAIL before EHLO: send() refuses it, raw mode writes it as given.
    with pytest.raises(LocalProtocolError):
        client.send(Mail(reverse_path="a@x.example"))
    wire = client.send_raw_unchecked(b"MAIL FROM:<a@x.example>\r\n", expect_replies=1)
    assert wire == b"MAIL FROM:<a@x.example>\r\n"
    [raw] = client.pending
    assert isinstance(raw, RawBytes) and raw.data == wire
    assert client.state is State.HELLO and client.our_state is State.HELLO
    # Our own server sees an out-of-sequence MAIL and refuses it.
    ev = events(server, wire)[0]
    assert isinstance(ev, InvalidCommand) and ev.reply.code == 503
    answer = server.send(ev.reply)
    assert answer == b"503 5.5.1 Error: send HELO/EHLO first\r\n"
    [reply] = replies_of(client, answer)
    assert reply.code == 503 and reply.enhanced_status == "5.5.1"
    assert reply.command is raw
    assert client.state is State.HELLO and client.pending == ()
    # The checked path goes on from the state the checked events built.
    assert client.send(Ehlo(domain="c.example")) == b"EHLO c.example\r\n"


def test_client_malformed_bytes_through_our_server() -> None:
    client = raw_client(GREETING)
    server = Connection(Role.SERVER)
    server.send(Reply(code=220, lines=("mx.example",)))
    # S-15: a bare LF inside a command line; raw mode is the only way to send it.
    wire = client.send_raw_unchecked(b"EHLO c.example\nMAIL FROM:<>\r\n", expect_replies=1)
    ev = strip(events(server, wire))[0]
    assert isinstance(ev, InvalidCommand) and ev.reason == "bare LF in command line"
    [reply] = replies_of(client, server.send(ev.reply))
    assert (reply.code, reply.text) == (500, "Error: bare <LF> received")
    assert isinstance(reply.command, RawBytes)
    assert client.state is State.HELLO


def test_client_raw_sends_pipelined_between_checked_commands_stay_in_order() -> None:
    client = raw_client(GREETING, EHLO_PIPELINING)
    assert client.pipelining
    wire = [
        client.send(Mail(reverse_path="a@x.example")),
        client.send_raw_unchecked(b"RCPT TO:<no closing bracket\r\n", expect_replies=1),
        client.send(Rcpt(forward_path="b@y.example")),
        client.send_raw_unchecked(b"NOOP\r\nNOOP\r\n", expect_replies=2),
        client.send(Data()),
    ]
    assert b"".join(wire) == (b"MAIL FROM:<a@x.example>\r\nRCPT TO:<no closing bracket\r\n"
                              b"RCPT TO:<b@y.example>\r\nNOOP\r\nNOOP\r\nDATA\r\n")
    kinds = [type(c).__name__ for c in client.pending]
    assert kinds == ["Mail", "RawBytes", "Rcpt", "RawBytes", "RawBytes", "Data"]
    # Raw entries are invisible to the projection: MAIL, RCPT, DATA succeed -> DATA.
    assert client.our_state is State.DATA
    got = replies_of(client, b"250 2.1.0 Ok\r\n501 5.1.3 Bad address\r\n250 2.1.5 Ok\r\n"
                             b"250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n354 go\r\n")
    assert [r.code for r in got] == [250, 501, 250, 250, 250, 354]
    assert [type(r.command).__name__ for r in got] == ["Mail", "RawBytes", "Rcpt", "RawBytes", "RawBytes", "Data"]
    assert got[3].command is got[4].command
    assert [r.forward_path for r in client.recipients] == ["b@y.example"]
    assert client.state is State.DATA
    assert client.send(MessageData(data=b"hi\r\n")) == b"hi\r\n"


def test_client_raw_pending_counts_for_pipelining_checks() -> None:
    client = raw_client(GREETING, b"250 mx.example\r\n")  # no PIPELINING
    client.send_raw_unchecked(b"NOOP\r\n", expect_replies=1)
    with pytest.raises(LocalProtocolError, match="PIPELINING"):
        client.send(Noop())
    [reply] = replies_of(client, b"250 ok\r\n")
    assert isinstance(reply.command, RawBytes)
    assert client.send(Noop()) == b"NOOP\r\n"


@pytest.mark.parametrize("answer", [b"354 go ahead\r\n", b"220 2.0.0 Ready to start TLS\r\n",
                                    b"334 VXNlcm5hbWU6\r\n", b"421 4.3.2 bye\r\n", b"250-a\r\n250 b\r\n"])
def test_client_replies_to_raw_bytes_drive_no_transition(answer: bytes) -> None:
    client = raw_client(GREETING, EHLO_PIPELINING)
    before = (client.state, client.our_state, client.extensions, client.pipelining)
    client.send_raw_unchecked(b"WHATEVER\r\n", expect_replies=1)
    [reply] = replies_of(client, answer)
    assert reply.code == int(answer[:3]) and isinstance(reply.command, RawBytes)
    assert (client.state, client.our_state, client.extensions, client.pipelining) == before
    with pytest.raises(LocalProtocolError):
        client.send(MessageData(data=b"x"))  # no 354 was seen by the state machine
    assert client.send(Noop()) == b"NOOP\r\n"


def test_client_reply_beyond_the_expected_is_unsolicited() -> None:
    client = raw_client(GREETING, b"250 mx.example\r\n")
    client.send_raw_unchecked(b"NOOP\r\n", expect_replies=1)
    client.receive_data(b"250 ok\r\n250 surprise\r\n")
    first = client.next_event()
    assert isinstance(first, Reply) and isinstance(first.command, RawBytes)
    with pytest.raises(RemoteProtocolError, match="T-11"):
        client.next_event()
    assert client.state is State.ERROR


def test_client_raw_bytes_with_no_reply_expected_make_any_reply_unsolicited() -> None:
    client = raw_client(GREETING, b"250 mx.example\r\n")
    assert client.send_raw_unchecked(b"\r\n") == b"\r\n"
    assert client.pending == ()
    client.receive_data(b"500 what?\r\n")
    with pytest.raises(RemoteProtocolError, match="T-11"):
        client.next_event()


def test_client_reply_parser_stays_strict_for_raw_replies() -> None:
    client = raw_client(GREETING)
    client.send_raw_unchecked(b"EHLO c.example\r\n", expect_replies=1)
    client.receive_data(b"25O oops\r\n")
    with pytest.raises(RemoteProtocolError, match="malformed reply line"):
        client.next_event()


def test_client_early_talker_before_the_greeting() -> None:
    # P-01 from the client side: bytes before the 220, the reply paired after it.
    client = Connection(Role.CLIENT, allow_raw_unchecked=True)
    assert client.send_raw_unchecked(b"EHLO early.example\r\n", expect_replies=1) == b"EHLO early.example\r\n"
    got = replies_of(client, GREETING + b"250 mx.example\r\n")
    assert got[0].command is None and got[0].code == 220
    assert isinstance(got[1].command, RawBytes) and got[1].code == 250
    assert client.state is State.HELLO  # the greeting moved it; the raw EHLO did not


def test_client_no_replies_expected_once_closed_or_failed() -> None:
    client = raw_client(GREETING)
    client.receive_data(b"")
    assert isinstance(client.next_event(), ConnectionClosed)
    with pytest.raises(LocalProtocolError, match="CLOSED"):
        client.send_raw_unchecked(b"NOOP\r\n", expect_replies=1)
    assert client.send_raw_unchecked(b"NOOP\r\n") == b"NOOP\r\n"  # writing is still up to the caller


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=64), st.integers(0, 3))
def test_client_raw_send_changes_nothing_but_the_queue(data: bytes, n: int) -> None:
    client = raw_client(GREETING, EHLO_PIPELINING)
    client.send(Mail(reverse_path="a@x.example"))
    def snapshot() -> tuple[object, ...]:
        return (client.state, client.our_state, client.pending[:1], client.recipients, client.extensions)

    before = snapshot()
    assert client.send_raw_unchecked(data, expect_replies=n) == data
    assert snapshot() == before
    assert all(isinstance(c, RawBytes) and c.data == data for c in client.pending[1:])
    assert len(client.pending) == 1 + n


# ---------------------------------------------------------------- server


def test_server_malformed_reply_exact_bytes_and_state_unchanged() -> None:
    server = Connection(Role.SERVER, allow_raw_unchecked=True)
    server.send(Reply(code=220, lines=("mx.example",)))
    ev = strip(events(server, b"EHLO c.example\r\n"))[0]
    assert isinstance(ev, Ehlo)
    wire = server.send_raw_unchecked(b"25O-not a reply\r\n")
    assert wire == b"25O-not a reply\r\n"
    assert server.reply_owed == ev and server.state is State.HELLO
    assert server.next_event() is PAUSED  # it still owes the EHLO reply
    assert server.send(Reply(code=250, lines=("mx.example", "PIPELINING"))) == b"250-mx.example\r\n250 PIPELINING\r\n"
    assert server.state is State.READY and server.pipelining


def test_server_reply_before_greeting_and_after_close() -> None:
    server = Connection(Role.SERVER, allow_raw_unchecked=True)
    # Out of sequence: a 250 before the greeting; the core still wants a greeting.
    assert server.send_raw_unchecked(b"250 early\r\n") == b"250 early\r\n"
    with pytest.raises(LocalProtocolError, match="greeting"):
        server.send(Reply(code=250, lines=("x",)))
    server.send(Reply(code=220, lines=("mx.example",)))
    server.receive_data(b"")
    assert isinstance(server.next_event(), ConnectionClosed)
    assert server.send_raw_unchecked(b"421 late\r\n") == b"421 late\r\n"


@pytest.mark.parametrize(("wire", "error"), [
    (b"250-mx.example\r\n251 PIPELINING\r\n", "reply code changed"),
    (b"250 mx.example\n", "bare LF"),
    (b"250 mx.example\r\n250 extra\r\n", "T-11"),
    (b"2500 mx.example\r\n", "malformed reply line"),
])
def test_server_raw_replies_drive_our_client_into_its_checks(wire: bytes, error: str) -> None:
    # A fuzzer playing the server: the core says what the reply should be, the
    # raw bytes are what goes out; our checked client must refuse each one.
    server = Connection(Role.SERVER, allow_raw_unchecked=True)
    client = Connection(Role.CLIENT)
    client.receive_data(server.send(Reply(code=220, lines=("mx.example",))))
    assert isinstance(client.next_event(), Reply)
    events(server, client.send(Ehlo(domain="c.example")))
    server.send(Reply(code=250, lines=("mx.example",)))  # bookkeeping only, not written
    client.receive_data(server.send_raw_unchecked(wire))
    with pytest.raises(RemoteProtocolError, match=error):
        while client.next_event() is not NEED_DATA:
            pass
    assert client.state is State.ERROR and server.state is State.READY
