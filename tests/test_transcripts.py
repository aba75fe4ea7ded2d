"""Transcript tests: exact bytes in -> exact events out, and events in -> exact
bytes out, for every command and reply, in both roles.

Most tests are written as a transcript of steps and played by :func:`play`,
which runs a client and a server :class:`Connection` side by side:

* ``C(event, wire)``: the client application sends ``event``; the client
  connection must produce exactly ``wire``; the server connection receives
  those bytes and must hand its application ``seen`` (default: ``event``).
* ``S(reply, wire)``: the server application sends ``reply``; the server
  connection must produce exactly ``wire`` and must be owing a reply to the
  expected event; the client connection receives the bytes and must hand its
  application exactly ``reply``, paired with the command it answers.

Things a well-behaved client connection will never send (lower-case verbs,
source routes, junk) are fed to a server connection as raw bytes.  The RFC
scenarios (RFC 5321 Appendix D, RFC 2920 section 3.2, RFC 3030 section 4,
RFC 2033 section 4.2) use the hostnames and texts of the RFCs.
"""

from __future__ import annotations

import base64
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Sequence

import pytest

from smtpproto import (
    NEED_DATA,
    PAUSED,
    Auth,
    AuthResponse,
    Bdat,
    Command,
    Config,
    Connection,
    ConnectionClosed,
    Data,
    Ehlo,
    EndOfMessage,
    Event,
    Expn,
    Helo,
    Help,
    InvalidCommand,
    Lhlo,
    LocalProtocolError,
    Mail,
    MessageData,
    Noop,
    Quit,
    Rcpt,
    RemoteProtocolError,
    Reply,
    Role,
    Rset,
    StartTLS,
    State,
    UnknownCommand,
    Vrfy,
)

from pair import events, splits, strip

# ---------------------------------------------------------------- the player

_AUTO: Any = object()
ANY: Any = object()


class Refused:
    """Matches an :class:`InvalidCommand` (or :class:`UnknownCommand`) by the
    verb and the suggested reply code (the ``reason`` wording is free)."""

    def __init__(self, command: str | None, code: int, enhanced: str | None = _AUTO, *, unknown: bool = False) -> None:
        self.command = command
        self.code = code
        self.enhanced = enhanced
        self.unknown = unknown

    def __eq__(self, other: object) -> bool:
        if self.unknown:
            if not isinstance(other, UnknownCommand):
                return False
            verb: str | None = other.verb
        else:
            if not isinstance(other, InvalidCommand):
                return False
            verb = other.command
        if verb != self.command or other.reply.code != self.code:
            return False
        return self.enhanced is _AUTO or other.reply.enhanced_status == self.enhanced

    def __repr__(self) -> str:
        kind = "UnknownCommand" if self.unknown else "InvalidCommand"
        return f"<{kind} {self.command} {self.code}>"


@dataclass
class C:
    """The client sends ``event`` (``wire`` on the wire); the server sees ``seen``."""

    event: Event
    wire: bytes
    seen: Sequence[Any] | None = None
    #: How many replies this step awaits (default: 1 for a command, a DATA end
    #: and an AUTH response; 0 for content and for the end of a BDAT LAST chunk).
    replies: int | None = None
    #: What the server owes a reply to (default: the event seen, or EndOfMessage).
    owed: Any = _AUTO


@dataclass
class S:
    """The server sends ``reply`` (``wire`` on the wire); the client receives it."""

    reply: Reply
    wire: bytes
    #: The sentinel/event the client produces after the reply (default:
    #: NEED_DATA; PAUSED after a 220 to STARTTLS; ConnectionClosed after 221/421).
    then: Any = _AUTO
    #: LMTP: the recipient the client pairs this end-of-data reply with.
    recipient: Any = _AUTO
    #: The command the client pairs the reply with (default: worked out from
    #: the C steps; ANY: not checked).
    command: Any = _AUTO


@dataclass
class Played:
    client: Connection
    server: Connection
    server_events: list[Any] = field(default_factory=list)
    client_events: list[Any] = field(default_factory=list)


def _awaits(step: C) -> list[tuple[Any, Any]]:
    """(command the client pairs the reply with, event the server owes) pairs."""
    ev = step.event
    seen = list(step.seen) if step.seen is not None else [ev]
    if isinstance(ev, MessageData):
        return []
    if isinstance(ev, EndOfMessage):
        if step.wire == b"":  # the end of a BDAT LAST chunk: already awaited
            return []
        n = 1 if step.replies is None else step.replies
        owed = EndOfMessage() if step.owed is _AUTO else step.owed
        return [(EndOfMessage(), owed)] * n
    n = 1 if step.replies is None else step.replies
    if isinstance(ev, Bdat) and ev.last:
        owed = EndOfMessage()
    else:
        owed = seen[0]
    if step.owed is not _AUTO:
        owed = step.owed
    command = ev if isinstance(ev, (Command, AuthResponse)) else None
    return [(command, owed)] * n


def play(
    steps: Sequence[C | S],
    *,
    client_config: Config | None = None,
    server_config: Config | None = None,
    tls_active: bool = False,
) -> Played:
    client = Connection(Role.CLIENT, client_config, tls_active=tls_active)
    server = Connection(Role.SERVER, server_config, tls_active=tls_active)
    played = Played(client, server)
    to_see: list[Any] = []  # events the server application has still to see
    awaiting: deque[tuple[Any, Any]] = deque()
    for i, step in enumerate(steps):
        where = f"step {i}: {step!r}"
        if isinstance(step, C):
            out = client.send(step.event)
            assert out == step.wire, where
            if out:
                server.receive_data(out)
            to_see.extend(step.seen if step.seen is not None else [step.event])
            awaiting.extend(_awaits(step))
            continue
        # The server application drains its events; it must end up owing a reply.
        got = events(server)
        assert got[-1] is PAUSED, where
        got = strip(got[:-1])
        expected = strip(to_see)
        assert got == expected[: len(got)], where
        to_see = expected[len(got):]
        played.server_events.extend(got)
        if awaiting:
            command, owed = awaiting.popleft()
            assert server.reply_owed == owed, where
        else:  # the greeting, or an unsolicited 421
            command = None
            assert server.reply_owed is None, where
        out = server.send(step.reply)
        assert out == step.wire, where
        got_c = events(client, out)
        then = step.then
        if then is _AUTO:
            if step.reply.code in (221, 421) or (isinstance(command, Quit) and step.reply.code < 300):
                then = ConnectionClosed()
            elif isinstance(command, StartTLS) and step.reply.code == 220:
                then = PAUSED
            else:
                then = NEED_DATA
        assert got_c == [step.reply, then], where
        reply = got_c[0]
        if step.command is not ANY:
            assert reply.command == (command if step.command is _AUTO else step.command), where
        if step.recipient is not _AUTO:
            assert reply.recipient == step.recipient, where
        played.client_events.append(reply)
    # Whatever the client sent last must have reached the server application.
    # (As far as it can: a server owing a reply hands over nothing more.)
    if to_see:
        got = strip([e for e in events(server) if e is not PAUSED])
        expected = strip(to_see)
        assert got == expected[: len(got)]
        if len(got) < len(expected):
            assert server.reply_owed is not None
        played.server_events.extend(got)
    return played


def lines(*texts: str) -> bytes:
    """CRLF-terminated wire lines."""
    return b"".join(t.encode("utf-8") + b"\r\n" for t in texts)


def R(code: int, *texts: str, enhanced: str | None = None) -> Reply:
    return Reply(code=code, lines=texts or ("",), enhanced_status=enhanced)


def greeted_server(config: Config | None = None, ehlo: Sequence[str] | None = ("mx.example.org",)) -> Connection:
    """A server past its greeting (and past EHLO with the given reply lines)."""
    server = Connection(Role.SERVER, config)
    server.send(R(220, "mx.example.org ESMTP"))
    if ehlo is not None:
        hello = b"LHLO client.example.com\r\n" if config is not None and config.lmtp else b"EHLO client.example.com\r\n"
        assert events(server, hello)[-1] is PAUSED
        server.send(Reply(code=250, lines=tuple(ehlo)))
    return server


def serve(server: Connection, data: bytes) -> list[Any]:
    """Feed ``data`` whole, and check the same events come out byte by byte."""
    return strip(events(server, data))


# ================================================================ RFC 5321 Appendix D

D_EHLO = [
    C(Ehlo(domain="bar.com"), b"EHLO bar.com\r\n"),
    S(R(250, "foo.com greets bar.com", "8BITMIME", "SIZE", "DSN", "HELP"),
      lines("250-foo.com greets bar.com", "250-8BITMIME", "250-SIZE", "250-DSN", "250 HELP")),
]
GREETING_FOO = S(R(220, "foo.com Simple Mail Transfer Service Ready"),
                 b"220 foo.com Simple Mail Transfer Service Ready\r\n")
BYE_FOO = [
    C(Quit(), b"QUIT\r\n"),
    S(R(221, "foo.com Service closing transmission channel"),
      b"221 foo.com Service closing transmission channel\r\n"),
]
BLAH = b"Blah blah blah...\r\n..etc. etc. etc.\r\n"  # as the client application wrote it
BLAH_WIRE = b"Blah blah blah...\r\n...etc. etc. etc.\r\n"  # dot-stuffed, as in the RFC


def test_rfc5321_d1_typical_transaction() -> None:
    p = play([
        GREETING_FOO, *D_EHLO,
        C(Mail(reverse_path="Smith@bar.com"), b"MAIL FROM:<Smith@bar.com>\r\n"),
        S(R(250, "OK"), b"250 OK\r\n"),
        C(Rcpt(forward_path="Jones@foo.com"), b"RCPT TO:<Jones@foo.com>\r\n"),
        S(R(250, "OK"), b"250 OK\r\n"),
        C(Rcpt(forward_path="Green@foo.com"), b"RCPT TO:<Green@foo.com>\r\n"),
        S(R(550, "No such user here"), b"550 No such user here\r\n"),
        C(Rcpt(forward_path="Brown@foo.com"), b"RCPT TO:<Brown@foo.com>\r\n"),
        S(R(250, "OK"), b"250 OK\r\n"),
        C(Data(), b"DATA\r\n"),
        S(R(354, "Start mail input; end with <CRLF>.<CRLF>"), b"354 Start mail input; end with <CRLF>.<CRLF>\r\n"),
        C(MessageData(data=BLAH), BLAH_WIRE),
        C(EndOfMessage(), b".\r\n"),
        S(R(250, "OK"), b"250 OK\r\n"),
        *BYE_FOO,
    ])
    assert p.client.state is State.CLOSED and p.server.state is State.CLOSED
    assert MessageData(data=BLAH) in p.server_events
    # The server learnt what it advertised from the EHLO reply it sent.
    assert set(p.server.extensions) == {"8BITMIME", "SIZE", "DSN", "HELP"}
    assert set(p.client.extensions) == {"8BITMIME", "SIZE", "DSN", "HELP"}


def test_rfc5321_d1_recipients_accepted_are_tracked() -> None:
    p = play([
        GREETING_FOO, *D_EHLO,
        C(Mail(reverse_path="Smith@bar.com"), b"MAIL FROM:<Smith@bar.com>\r\n"),
        S(R(250, "OK"), b"250 OK\r\n"),
        C(Rcpt(forward_path="Jones@foo.com"), b"RCPT TO:<Jones@foo.com>\r\n"),
        S(R(250, "OK"), b"250 OK\r\n"),
        C(Rcpt(forward_path="Green@foo.com"), b"RCPT TO:<Green@foo.com>\r\n"),
        S(R(550, "No such user here"), b"550 No such user here\r\n"),
        C(Rcpt(forward_path="Brown@foo.com"), b"RCPT TO:<Brown@foo.com>\r\n"),
        S(R(250, "OK"), b"250 OK\r\n"),
    ])
    accepted = (Rcpt(forward_path="Jones@foo.com"), Rcpt(forward_path="Brown@foo.com"))
    assert p.client.recipients == accepted
    assert p.server.recipients == accepted
    assert p.client.state is State.RCPT and p.server.state is State.RCPT


def test_rfc5321_d2_aborted_transaction() -> None:
    p = play([
        GREETING_FOO, *D_EHLO,
        C(Mail(reverse_path="Smith@bar.com"), b"MAIL FROM:<Smith@bar.com>\r\n"),
        S(R(250, "OK"), b"250 OK\r\n"),
        C(Rcpt(forward_path="Jones@foo.com"), b"RCPT TO:<Jones@foo.com>\r\n"),
        S(R(250, "OK"), b"250 OK\r\n"),
        C(Rcpt(forward_path="Green@foo.com"), b"RCPT TO:<Green@foo.com>\r\n"),
        S(R(550, "No such user here"), b"550 No such user here\r\n"),
        C(Rset(), b"RSET\r\n"),
        S(R(250, "OK"), b"250 OK\r\n"),
    ])
    assert p.client.state is State.READY and p.server.state is State.READY
    assert p.client.recipients == () and p.server.recipients == ()
    p2 = play([
        GREETING_FOO, *D_EHLO,
        C(Mail(reverse_path="Smith@bar.com"), b"MAIL FROM:<Smith@bar.com>\r\n"),
        S(R(250, "OK"), b"250 OK\r\n"),
        C(Rset(), b"RSET\r\n"),
        S(R(250, "OK"), b"250 OK\r\n"),
        *BYE_FOO,
    ])
    assert p2.client.state is State.CLOSED


D3_STEP1_CONTENT = (
    b"Date: Thu, 21 May 1998 05:33:29 -0700\r\n"
    b"From: John Q. Public <JQP@bar.com>\r\n"
    b"Subject: The Next Meeting of the Board\r\n"
    b"To: Jones@xyz.com\r\n"
    b"\r\n"
    b"Bill:\r\n"
    b"The next meeting of the board of directors will be\r\n"
    b"on Tuesday.\r\n"
    b"John.\r\n"
)
D3_STEP2_CONTENT = (
    b"Received: from bar.com by foo.com ; Thu, 21 May 1998\r\n"
    b"    05:33:29 -0700\r\n"
    b"Date: Thu, 21 May 1998 05:33:22 -0700\r\n"
    b"From: John Q. Public <JQP@bar.com>\r\n"
    b"Subject:  The Next Meeting of the Board\r\n"
    b"To: Jones@xyz.com\r\n"
    b"\r\n"
    b"Bill:\r\n"
    b"The next meeting of the board of directors will be\r\n"
    b"on Tuesday.\r\n"
    b"                        John.\r\n"
)


def test_rfc5321_d3_relayed_mail_step1_source_to_relay() -> None:
    p = play([
        GREETING_FOO, *D_EHLO,
        C(Mail(reverse_path="JQP@bar.com"), b"MAIL FROM:<JQP@bar.com>\r\n"),
        S(R(250, "OK"), b"250 OK\r\n"),
        C(Rcpt(forward_path="Jones@XYZ.COM"), b"RCPT TO:<Jones@XYZ.COM>\r\n"),
        S(R(250, "OK"), b"250 OK\r\n"),
        C(Data(), b"DATA\r\n"),
        S(R(354, "Start mail input; end with <CRLF>.<CRLF>"), b"354 Start mail input; end with <CRLF>.<CRLF>\r\n"),
        C(MessageData(data=D3_STEP1_CONTENT), D3_STEP1_CONTENT),
        C(EndOfMessage(), b".\r\n"),
        S(R(250, "OK"), b"250 OK\r\n"),
        *BYE_FOO,
    ])
    assert p.server_events[-3:] == [MessageData(data=D3_STEP1_CONTENT), EndOfMessage(), Quit()]


def test_rfc5321_d3_relayed_mail_step2_relay_to_destination() -> None:
    p = play([
        S(R(220, "xyz.com Simple Mail Transfer Service Ready"), b"220 xyz.com Simple Mail Transfer Service Ready\r\n"),
        C(Ehlo(domain="foo.com"), b"EHLO foo.com\r\n"),
        S(R(250, "xyz.com is on the air"), b"250 xyz.com is on the air\r\n"),
        C(Mail(reverse_path="JQP@bar.com"), b"MAIL FROM:<JQP@bar.com>\r\n"),
        S(R(250, "OK"), b"250 OK\r\n"),
        C(Rcpt(forward_path="Jones@XYZ.COM"), b"RCPT TO:<Jones@XYZ.COM>\r\n"),
        S(R(250, "OK"), b"250 OK\r\n"),
        C(Data(), b"DATA\r\n"),
        S(R(354, "Start mail input; end with <CRLF>.<CRLF>"), b"354 Start mail input; end with <CRLF>.<CRLF>\r\n"),
        # The relay streams the message in pieces that split lines anywhere.
        C(MessageData(data=D3_STEP2_CONTENT[:17]), D3_STEP2_CONTENT[:17]),
        C(MessageData(data=D3_STEP2_CONTENT[17:200]), D3_STEP2_CONTENT[17:200]),
        C(MessageData(data=D3_STEP2_CONTENT[200:]), D3_STEP2_CONTENT[200:]),
        C(EndOfMessage(), b".\r\n"),
        S(R(250, "OK"), b"250 OK\r\n"),
        *BYE_FOO,
    ])
    assert MessageData(data=D3_STEP2_CONTENT) in p.server_events
    # An EHLO reply with no extension lines advertises nothing.
    assert len(p.client.extensions) == 0 and len(p.server.extensions) == 0


def test_rfc5321_d4_verifying_and_sending() -> None:
    p = play([
        GREETING_FOO,
        C(Ehlo(domain="bar.com"), b"EHLO bar.com\r\n"),
        S(R(250, "foo.com greets bar.com", "8BITMIME", "SIZE", "DSN", "VRFY", "HELP"),
          lines("250-foo.com greets bar.com", "250-8BITMIME", "250-SIZE", "250-DSN", "250-VRFY", "250 HELP")),
        C(Vrfy(argument="Crispin"), b"VRFY Crispin\r\n"),
        S(R(250, "Mark Crispin <Admin.MRC@foo.com>"), b"250 Mark Crispin <Admin.MRC@foo.com>\r\n"),
        C(Mail(reverse_path="EAK@bar.com"), b"MAIL FROM:<EAK@bar.com>\r\n"),
        S(R(250, "OK"), b"250 OK\r\n"),
        C(Rcpt(forward_path="Admin.MRC@foo.com"), b"RCPT TO:<Admin.MRC@foo.com>\r\n"),
        S(R(250, "OK"), b"250 OK\r\n"),
        C(Data(), b"DATA\r\n"),
        S(R(354, "Start mail input; end with <CRLF>.<CRLF>"), b"354 Start mail input; end with <CRLF>.<CRLF>\r\n"),
        C(MessageData(data=BLAH), BLAH_WIRE),
        C(EndOfMessage(), b".\r\n"),
        S(R(250, "OK"), b"250 OK\r\n"),
        *BYE_FOO,
    ])
    assert p.server_events[:3] == [Ehlo(domain="bar.com"), Vrfy(argument="Crispin"), Mail(reverse_path="EAK@bar.com")]


# ================================================================ RFC 2920 section 3.2

INNOSOFT_GREETING = S(R(220, "innosoft.com SMTP service ready"), b"220 innosoft.com SMTP service ready\r\n")
INNOSOFT_EHLO = [
    C(Ehlo(domain="dbc.mtview.ca.us"), b"EHLO dbc.mtview.ca.us\r\n"),
    S(R(250, "innosoft.com", "PIPELINING"), b"250-innosoft.com\r\n250 PIPELINING\r\n"),
]
MROSE = Mail(reverse_path="mrose@dbc.mtview.ca.us")
NED, DAN, KVC = (Rcpt(forward_path=f"{u}@innosoft.com") for u in ("ned", "dan", "kvc"))
ENTER_MAIL = S(R(354, 'enter mail, end with line containing only "."'),
               b'354 enter mail, end with line containing only "."\r\n')
BODY_2920 = b"Subject: pipelining\r\n\r\nA message.\r\n"


def test_rfc2920_without_pipelining() -> None:
    p = play([
        INNOSOFT_GREETING,
        C(Helo(domain="dbc.mtview.ca.us"), b"HELO dbc.mtview.ca.us\r\n"),
        S(R(250, "innosoft.com"), b"250 innosoft.com\r\n"),
        C(MROSE, b"MAIL FROM:<mrose@dbc.mtview.ca.us>\r\n"),
        S(R(250, "sender <mrose@dbc.mtview.ca.us> OK"), b"250 sender <mrose@dbc.mtview.ca.us> OK\r\n"),
        C(NED, b"RCPT TO:<ned@innosoft.com>\r\n"),
        S(R(250, "recipient <ned@innosoft.com> OK"), b"250 recipient <ned@innosoft.com> OK\r\n"),
        C(DAN, b"RCPT TO:<dan@innosoft.com>\r\n"),
        S(R(250, "recipient <dan@innosoft.com> OK"), b"250 recipient <dan@innosoft.com> OK\r\n"),
        C(KVC, b"RCPT TO:<kvc@innosoft.com>\r\n"),
        S(R(250, "recipient <kvc@innosoft.com> OK"), b"250 recipient <kvc@innosoft.com> OK\r\n"),
        C(Data(), b"DATA\r\n"),
        ENTER_MAIL,
        C(MessageData(data=BODY_2920), BODY_2920),
        C(EndOfMessage(), b".\r\n"),
        S(R(250, "message sent"), b"250 message sent\r\n"),
        C(Quit(), b"QUIT\r\n"),
        S(R(221, "goodbye"), b"221 goodbye\r\n"),
    ])
    assert not p.client.pipelining and not p.server.pipelining


def test_rfc2920_without_pipelining_client_waits() -> None:
    """After HELO (no PIPELINING) the client refuses to send a second command
    before the first one's reply."""
    p = play([
        INNOSOFT_GREETING,
        C(Helo(domain="dbc.mtview.ca.us"), b"HELO dbc.mtview.ca.us\r\n"),
        S(R(250, "innosoft.com"), b"250 innosoft.com\r\n"),
        C(MROSE, b"MAIL FROM:<mrose@dbc.mtview.ca.us>\r\n"),
    ])
    with pytest.raises(LocalProtocolError):
        p.client.send(NED)
    assert p.client.pending == (MROSE,)


def test_rfc2920_pipelined() -> None:
    p = play([
        INNOSOFT_GREETING, *INNOSOFT_EHLO,
        C(MROSE, b"MAIL FROM:<mrose@dbc.mtview.ca.us>\r\n"),
        C(NED, b"RCPT TO:<ned@innosoft.com>\r\n"),
        C(DAN, b"RCPT TO:<dan@innosoft.com>\r\n"),
        C(KVC, b"RCPT TO:<kvc@innosoft.com>\r\n"),
        C(Data(), b"DATA\r\n"),
        S(R(250, "sender <mrose@dbc.mtview.ca.us> OK"), b"250 sender <mrose@dbc.mtview.ca.us> OK\r\n"),
        S(R(250, "recipient <ned@innosoft.com> OK"), b"250 recipient <ned@innosoft.com> OK\r\n"),
        S(R(250, "recipient <dan@innosoft.com> OK"), b"250 recipient <dan@innosoft.com> OK\r\n"),
        S(R(250, "recipient <kvc@innosoft.com> OK"), b"250 recipient <kvc@innosoft.com> OK\r\n"),
        ENTER_MAIL,
        C(MessageData(data=BODY_2920), BODY_2920),
        C(EndOfMessage(), b".\r\n"),
        C(Quit(), b"QUIT\r\n"),
        S(R(250, "message sent"), b"250 message sent\r\n"),
        S(R(221, "goodbye"), b"221 goodbye\r\n"),
    ])
    assert p.client.pipelining and p.server.pipelining
    assert p.client.state is State.CLOSED and p.server.state is State.CLOSED


def test_rfc2920_pipelined_server_sees_the_batch_in_one_read() -> None:
    """The four commands of the batch arrive in one segment: the server hands
    them over one at a time and says more input is buffered."""
    server = greeted_server(ehlo=("innosoft.com", "PIPELINING"))
    server.receive_data(b"MAIL FROM:<mrose@dbc.mtview.ca.us>\r\nRCPT TO:<ned@innosoft.com>\r\n"
                        b"RCPT TO:<dan@innosoft.com>\r\nRCPT TO:<kvc@innosoft.com>\r\nDATA\r\n")
    seen = []
    for reply in (R(250, "sender OK"), R(250, "ok"), R(250, "ok"), R(250, "ok"), R(354, "go ahead")):
        ev = server.next_event()
        seen.append(ev)
        assert server.next_event() is PAUSED
        assert server.more_input_buffered == (not isinstance(ev, Data))
        server.send(reply)
    assert seen == [MROSE, NED, DAN, KVC, Data()]
    assert server.state is State.DATA


def test_rfc2920_pipelined_with_errors() -> None:
    nsb = Rcpt(forward_path="nsb@thumper.bellore.com")
    galvin = Rcpt(forward_path="galvin@tis.com")
    p = play([
        INNOSOFT_GREETING, *INNOSOFT_EHLO,
        C(MROSE, b"MAIL FROM:<mrose@dbc.mtview.ca.us>\r\n"),
        C(nsb, b"RCPT TO:<nsb@thumper.bellore.com>\r\n"),
        C(galvin, b"RCPT TO:<galvin@tis.com>\r\n"),
        # Every recipient fails, so the server core refuses the DATA itself
        # (RFC 2920 section 3.1: 554) rather than let content in.
        C(Data(), b"DATA\r\n", seen=[Refused("DATA", 554)]),
        S(R(250, "sender <mrose@dbc.mtview.ca.us> OK"), b"250 sender <mrose@dbc.mtview.ca.us> OK\r\n"),
        S(R(550, "remote mail to <nsb@thumper.bellore.com> not allowed"),
          b"550 remote mail to <nsb@thumper.bellore.com> not allowed\r\n"),
        S(R(550, "remote mail to <galvin@tis.com> not allowed"), b"550 remote mail to <galvin@tis.com> not allowed\r\n"),
        S(R(554, "no valid recipients given"), b"554 no valid recipients given\r\n"),
        C(Quit(), b"QUIT\r\n"),
        S(R(221, "goodbye"), b"221 goodbye\r\n"),
    ])
    assert p.client.state is State.CLOSED


def test_rfc2920_two_transactions_pipelined_across_end_of_data() -> None:
    """The next transaction's MAIL/RCPT/DATA may follow the end of data in
    the same group (RFC 2920 section 3.1: the end of data is not a group end)."""
    srose = Mail(reverse_path="srose@dbc.mtview.ca.us")
    play([
        INNOSOFT_GREETING, *INNOSOFT_EHLO,
        C(MROSE, b"MAIL FROM:<mrose@dbc.mtview.ca.us>\r\n"),
        C(NED, b"RCPT TO:<ned@innosoft.com>\r\n"),
        C(Data(), b"DATA\r\n"),
        S(R(250, "sender <mrose@dbc.mtview.ca.us> OK"), b"250 sender <mrose@dbc.mtview.ca.us> OK\r\n"),
        S(R(250, "recipient <ned@innosoft.com> OK"), b"250 recipient <ned@innosoft.com> OK\r\n"),
        ENTER_MAIL,
        C(MessageData(data=BODY_2920), BODY_2920),
        C(EndOfMessage(), b".\r\n"),
        C(srose, b"MAIL FROM:<srose@dbc.mtview.ca.us>\r\n"),
        C(DAN, b"RCPT TO:<dan@innosoft.com>\r\n"),
        C(Data(), b"DATA\r\n"),
        S(R(250, "message sent"), b"250 message sent\r\n"),
        S(R(250, "sender <srose@dbc.mtview.ca.us> OK"), b"250 sender <srose@dbc.mtview.ca.us> OK\r\n"),
        S(R(250, "recipient <dan@innosoft.com> OK"), b"250 recipient <dan@innosoft.com> OK\r\n"),
        ENTER_MAIL,
        C(MessageData(data=BODY_2920), BODY_2920),
        C(EndOfMessage(), b".\r\n"),
        C(Quit(), b"QUIT\r\n"),
        S(R(250, "message sent"), b"250 message sent\r\n"),
        S(R(221, "goodbye"), b"221 goodbye\r\n"),
    ])


@pytest.mark.parametrize("ender", [Data(), Vrfy(argument="ned"), Expn(argument="staff"), Noop(),
                                   Ehlo(domain="dbc.mtview.ca.us"), Rset()])
def test_rfc2920_group_enders(ender: Command) -> None:
    """A group-ending command must be the last of its group; RSET is not one."""
    steps: list[C | S] = [INNOSOFT_GREETING, *INNOSOFT_EHLO,
                          C(MROSE, b"MAIL FROM:<mrose@dbc.mtview.ca.us>\r\n"),
                          C(NED, b"RCPT TO:<ned@innosoft.com>\r\n")]
    p = play(steps)
    p.client.send(ender)
    if isinstance(ender, Rset):
        assert p.client.send(Noop()) == b"NOOP\r\n"
    else:
        with pytest.raises(LocalProtocolError):
            p.client.send(Noop())
        assert p.client.pending[-1] == ender


# ================================================================ RFC 3030 section 4

CNRI_GREETING = S(R(220, "cnri.reston.va.us SMTP service ready"), b"220 cnri.reston.va.us SMTP service ready\r\n")
BODYLESS = (b"To: Susan@random.com\r\n"
            b"From: Sam@random.com\r\n"
            b"Subject: This is a bodyless test message\r\n")


def test_rfc3030_4_1_simple_chunking() -> None:
    assert len(BODYLESS) == 86
    p = play([
        CNRI_GREETING,
        C(Ehlo(domain="ymir.claremont.edu"), b"EHLO ymir.claremont.edu\r\n"),
        S(R(250, "cnri.reston.va.us says hello", "CHUNKING"), b"250-cnri.reston.va.us says hello\r\n250 CHUNKING\r\n"),
        C(Mail(reverse_path="Sam@Random.com"), b"MAIL FROM:<Sam@Random.com>\r\n"),
        S(R(250, "<Sam@Random.com> Sender ok"), b"250 <Sam@Random.com> Sender ok\r\n"),
        C(Rcpt(forward_path="Susan@Random.com"), b"RCPT TO:<Susan@Random.com>\r\n"),
        S(R(250, "<Susan@random.com> Recipient ok"), b"250 <Susan@random.com> Recipient ok\r\n"),
        C(Bdat(size=86, last=True), b"BDAT 86 LAST\r\n"),
        C(MessageData(data=BODYLESS), BODYLESS),
        C(EndOfMessage(), b"", seen=[EndOfMessage()]),
        S(R(250, "Message OK, 86 octets received"), b"250 Message OK, 86 octets received\r\n"),
        C(Quit(), b"QUIT\r\n"),
        S(R(221, "Goodbye"), b"221 Goodbye\r\n"),
    ])
    assert p.server_events[-4:] == [Bdat(size=86, last=True), MessageData(data=BODYLESS), EndOfMessage(), Quit()]


# 100000 octets of "canonical MIME message data", deliberately full of what
# DATA would have to escape: BDAT content is never unstuffed or rewritten.
CHUNK1 = (b"\r\n.\r\n\x00\xff.\n\r" * 10000)[:100000]
CHUNK2 = (b"..\r\n.\r" + bytes(range(256)) + b"\r\n.\r\n")[:324].ljust(324, b".")


def test_rfc3030_4_2_pipelining_binarymime() -> None:
    assert len(CHUNK1) == 100000 and len(CHUNK2) == 324
    p = play([
        CNRI_GREETING,
        C(Ehlo(domain="ymir.claremont.edu"), b"EHLO ymir.claremont.edu\r\n"),
        S(R(250, "cnri.reston.va.us says hello", "PIPELINING", "BINARYMIME", "CHUNKING"),
          lines("250-cnri.reston.va.us says hello", "250-PIPELINING", "250-BINARYMIME", "250 CHUNKING")),
        C(Mail(reverse_path="ned@ymir.claremont.edu", params={"BODY": "BINARYMIME"}),
          b"MAIL FROM:<ned@ymir.claremont.edu> BODY=BINARYMIME\r\n"),
        C(Rcpt(forward_path="gvaudre@cnri.reston.va.us"), b"RCPT TO:<gvaudre@cnri.reston.va.us>\r\n"),
        C(Rcpt(forward_path="jstewart@cnri.reston.va.us"), b"RCPT TO:<jstewart@cnri.reston.va.us>\r\n"),
        S(R(250, "<ned@ymir.claremont.edu>... Sender and BINARYMIME ok"),
          b"250 <ned@ymir.claremont.edu>... Sender and BINARYMIME ok\r\n"),
        S(R(250, "<gvaudre@cnri.reston.va.us>... Recipient ok"), b"250 <gvaudre@cnri.reston.va.us>... Recipient ok\r\n"),
        S(R(250, "<jstewart@cnri.reston.va.us>... Recipient ok"),
          b"250 <jstewart@cnri.reston.va.us>... Recipient ok\r\n"),
        C(Bdat(size=100000), b"BDAT 100000\r\n"),
        C(MessageData(data=CHUNK1), CHUNK1),
        C(Bdat(size=324), b"BDAT 324\r\n"),
        C(MessageData(data=CHUNK2), CHUNK2),
        C(Bdat(size=0, last=True), b"BDAT 0 LAST\r\n", seen=[Bdat(size=0, last=True), EndOfMessage()]),
        C(EndOfMessage(), b"", seen=[]),
        S(R(250, "100000 octets received"), b"250 100000 octets received\r\n"),
        S(R(250, "324 octets received"), b"250 324 octets received\r\n"),
        S(R(250, "Message OK, 100324 octets received"), b"250 Message OK, 100324 octets received\r\n"),
        C(Quit(), b"QUIT\r\n"),
        S(R(221, "Goodbye"), b"221 Goodbye\r\n"),
    ])
    assert MessageData(data=CHUNK1) in p.server_events and MessageData(data=CHUNK2) in p.server_events


def test_bdat_chunk_may_be_sent_in_pieces() -> None:
    body = b"Subject: x\r\n\r\n.\r\n"
    p = play([
        CNRI_GREETING,
        C(Ehlo(domain="ymir.claremont.edu"), b"EHLO ymir.claremont.edu\r\n"),
        S(R(250, "cnri.reston.va.us", "CHUNKING"), b"250-cnri.reston.va.us\r\n250 CHUNKING\r\n"),
        C(Mail(reverse_path="Sam@Random.com"), b"MAIL FROM:<Sam@Random.com>\r\n"),
        S(R(250, "ok"), b"250 ok\r\n"),
        C(Rcpt(forward_path="Susan@Random.com"), b"RCPT TO:<Susan@Random.com>\r\n"),
        S(R(250, "ok"), b"250 ok\r\n"),
        C(Bdat(size=len(body), last=True), b"BDAT %d LAST\r\n" % len(body)),
        C(MessageData(data=body[:5]), body[:5]),
        C(MessageData(data=body[5:]), body[5:]),
        C(EndOfMessage(), b"", seen=[EndOfMessage()]),
        S(R(250, "ok"), b"250 ok\r\n"),
    ])
    assert MessageData(data=body) in p.server_events  # '.\r\n' inside BDAT is data


def test_bdat_client_refuses_more_data_than_announced() -> None:
    p = play([
        CNRI_GREETING,
        C(Ehlo(domain="ymir.claremont.edu"), b"EHLO ymir.claremont.edu\r\n"),
        S(R(250, "cnri.reston.va.us", "CHUNKING"), b"250-cnri.reston.va.us\r\n250 CHUNKING\r\n"),
        C(Mail(reverse_path="Sam@Random.com"), b"MAIL FROM:<Sam@Random.com>\r\n"),
        S(R(250, "ok"), b"250 ok\r\n"),
        C(Rcpt(forward_path="Susan@Random.com"), b"RCPT TO:<Susan@Random.com>\r\n"),
        S(R(250, "ok"), b"250 ok\r\n"),
        C(Bdat(size=3), b"BDAT 3\r\n"),
    ])
    with pytest.raises(LocalProtocolError):
        p.client.send(MessageData(data=b"abcd"))
    with pytest.raises(LocalProtocolError):
        p.client.send(EndOfMessage())  # not a LAST chunk
    assert p.client.send(MessageData(data=b"abc")) == b"abc"


def test_bdat_without_chunking_is_refused_by_both_sides() -> None:
    p = play([
        CNRI_GREETING,
        C(Ehlo(domain="ymir.claremont.edu"), b"EHLO ymir.claremont.edu\r\n"),
        S(R(250, "cnri.reston.va.us"), b"250 cnri.reston.va.us\r\n"),
        C(Mail(reverse_path="Sam@Random.com"), b"MAIL FROM:<Sam@Random.com>\r\n"),
        S(R(250, "ok"), b"250 ok\r\n"),
        C(Rcpt(forward_path="Susan@Random.com"), b"RCPT TO:<Susan@Random.com>\r\n"),
        S(R(250, "ok"), b"250 ok\r\n"),
    ])
    with pytest.raises(LocalProtocolError):
        p.client.send(Bdat(size=3, last=True))
    # The chunk's octets are consumed even though the command is refused.
    got = serve(p.server, b"BDAT 3 LAST\r\nabc")
    assert got == [Refused("BDAT", 502), PAUSED]
    p.server.send(got[0].reply)
    assert serve(p.server, b"NOOP\r\n") == [Noop(), PAUSED]


# ================================================================ RFC 2034 section 6 (enhanced status codes)

def test_rfc2034_enhanced_status_codes_example() -> None:
    ned = Mail(reverse_path="ned@ymir.claremont.edu")
    p = play([
        S(R(220, "dbc.mtview.ca.us SMTP service ready"), b"220 dbc.mtview.ca.us SMTP service ready\r\n"),
        C(Ehlo(domain="ymir.claremont.edu"), b"EHLO ymir.claremont.edu\r\n"),
        S(R(250, "dbc.mtview.ca.us says hello", "ENHANCEDSTATUSCODES"),
          b"250-dbc.mtview.ca.us says hello\r\n250 ENHANCEDSTATUSCODES\r\n"),
        C(ned, b"MAIL FROM:<ned@ymir.claremont.edu>\r\n"),
        S(R(250, "Originator <ned@ymir.claremont.edu> ok", enhanced="2.1.0"),
          b"250 2.1.0 Originator <ned@ymir.claremont.edu> ok\r\n"),
        C(Rcpt(forward_path="mrose@dbc.mtview.ca.us"), b"RCPT TO:<mrose@dbc.mtview.ca.us>\r\n"),
        S(R(250, "Recipient <mrose@dbc.mtview.ca.us> ok", enhanced="2.1.5"),
          b"250 2.1.5 Recipient <mrose@dbc.mtview.ca.us> ok\r\n"),
        C(Rcpt(forward_path="nosuchuser@dbc.mtview.ca.us"), b"RCPT TO:<nosuchuser@dbc.mtview.ca.us>\r\n"),
        S(R(550, 'Mailbox "nosuchuser" does not exist', enhanced="5.1.1"),
          b'550 5.1.1 Mailbox "nosuchuser" does not exist\r\n'),
        C(Rcpt(forward_path="remoteuser@isi.edu"), b"RCPT TO:<remoteuser@isi.edu>\r\n"),
        S(R(551, "Forwarding to remote hosts disabled", "Select another host to act as your forwarder",
            enhanced="5.7.1"),
          b"551-5.7.1 Forwarding to remote hosts disabled\r\n551 5.7.1 Select another host to act as your forwarder\r\n"),
        C(Data(), b"DATA\r\n"),
        S(R(354, "Send message, ending in CRLF.CRLF."), b"354 Send message, ending in CRLF.CRLF.\r\n"),
        C(MessageData(data=b"Subject: codes\r\n\r\nhi\r\n"), b"Subject: codes\r\n\r\nhi\r\n"),
        C(EndOfMessage(), b".\r\n"),
        S(R(250, "Message accepted", enhanced="2.6.0"), b"250 2.6.0 Message accepted\r\n"),
        C(Quit(), b"QUIT\r\n"),
        S(R(221, "Goodbye", enhanced="2.0.0"), b"221 2.0.0 Goodbye\r\n"),
    ])
    assert [r.enhanced_status for r in p.client_events] == [
        None, None, "2.1.0", "2.1.5", "5.1.1", "5.7.1", None, "2.6.0", "2.0.0"]


# ================================================================ greeting

@pytest.mark.parametrize("code,text", [(220, "mx.example.org ESMTP ready"), (220, ""),
                                       (554, "mx.example.org no SMTP service here"),
                                       (421, "mx.example.org Service not available")])
def test_greeting(code: int, text: str) -> None:
    wire = (b"%d %s\r\n" % (code, text.encode())) if text else b"%d\r\n" % code
    p = play([S(R(code, text), wire)])
    expected = {220: State.HELLO, 554: State.NO_SERVICE, 421: State.CLOSED}[code]
    assert p.client.state is expected and p.server.state is expected


def test_multiline_greeting() -> None:
    p = play([S(R(220, "mx.example.org ESMTP", "no UCE"), b"220-mx.example.org ESMTP\r\n220 no UCE\r\n")])
    assert p.client_events == [R(220, "mx.example.org ESMTP", "no UCE")]


def test_greeting_554_then_only_quit_is_answered() -> None:
    p = play([
        S(R(554, "mx.example.org no SMTP service here"), b"554 mx.example.org no SMTP service here\r\n"),
        C(Quit(), b"QUIT\r\n"),
        S(R(221, "mx.example.org closing"), b"221 mx.example.org closing\r\n"),
    ])
    assert p.client.state is State.CLOSED and p.server.state is State.CLOSED


@pytest.mark.parametrize("command", [Ehlo(domain="client.example.com"), Helo(domain="client.example.com"),
                                     Mail(reverse_path="a@b.example"), Noop(), Rset(), Help()])
def test_greeting_554_client_sends_nothing_but_quit(command: Command) -> None:
    p = play([S(R(554, "no service"), b"554 no service\r\n")])
    with pytest.raises(LocalProtocolError):
        p.client.send(command)
    assert p.client.state is State.NO_SERVICE and p.client.pending == ()


@pytest.mark.parametrize("line,verb", [(b"EHLO client.example.com", "EHLO"), (b"HELO client.example.com", "HELO"),
                                       (b"MAIL FROM:<a@b.example>", "MAIL"), (b"NOOP", "NOOP"),
                                       (b"RSET", "RSET"), (b"VRFY postmaster", "VRFY")])
def test_greeting_554_server_refuses_everything_but_quit(line: bytes, verb: str) -> None:
    server = Connection(Role.SERVER)
    assert server.send(R(554, "no service")) == b"554 no service\r\n"
    for chunks in splits(line + b"\r\n"):
        s = Connection(Role.SERVER)
        s.send(R(554, "no service"))
        got = strip(events(s, chunks))
        assert got == [Refused(verb, 503, "5.5.1"), PAUSED]
        assert s.send(got[0].reply) == b"503 5.5.1 Error: no SMTP service here\r\n"
        assert s.state is State.NO_SERVICE
        assert serve(s, b"QUIT\r\n") == [Quit(), PAUSED]
        assert s.send(R(221, "bye")) == b"221 bye\r\n"
        assert s.state is State.CLOSED


def test_greeting_must_be_220_554_or_421() -> None:
    server = Connection(Role.SERVER)
    for code in (250, 354, 500, 450):
        with pytest.raises(LocalProtocolError):
            server.send(R(code, "nope"))
    assert server.state is State.GREETING
    assert server.send(R(220, "ok")) == b"220 ok\r\n"


def test_client_waits_for_greeting() -> None:
    client = Connection(Role.CLIENT)
    with pytest.raises(LocalProtocolError):
        client.send(Ehlo(domain="client.example.com"))
    assert client.pending == ()
    assert events(client, b"220 hi\r\n") == [R(220, "hi"), NEED_DATA]
    assert client.send(Ehlo(domain="client.example.com")) == b"EHLO client.example.com\r\n"


def test_greeting_421_closes() -> None:
    p = play([S(R(421, "mx.example.org Service not available, closing transmission channel", enhanced="4.3.2"),
                b"421 4.3.2 mx.example.org Service not available, closing transmission channel\r\n")])
    assert p.client.state is State.CLOSED
    with pytest.raises(LocalProtocolError):
        p.client.send(Quit())


# ================================================================ EHLO / HELO

GREET = S(R(220, "mx.example.org ESMTP"), b"220 mx.example.org ESMTP\r\n")


def test_ehlo_multiline_with_extensions() -> None:
    p = play([
        GREET,
        C(Ehlo(domain="client.example.com"), b"EHLO client.example.com\r\n"),
        S(R(250, "mx.example.org Hello client.example.com", "SIZE 10240000", "PIPELINING", "8BITMIME",
            "ENHANCEDSTATUSCODES", "SMTPUTF8", "CHUNKING", "DSN", "HELP"),
          lines("250-mx.example.org Hello client.example.com", "250-SIZE 10240000", "250-PIPELINING",
                "250-8BITMIME", "250-ENHANCEDSTATUSCODES", "250-SMTPUTF8", "250-CHUNKING", "250-DSN", "250 HELP")),
    ])
    for conn in (p.client, p.server):
        assert conn.state is State.READY
        assert conn.extensions.size == 10240000
        assert conn.extensions.pipelining and conn.extensions.smtputf8
        assert "CHUNKING" in conn.extensions and "DSN" in conn.extensions


def test_helo_gives_no_extensions() -> None:
    p = play([
        GREET,
        C(Helo(domain="client.example.com"), b"HELO client.example.com\r\n"),
        S(R(250, "mx.example.org"), b"250 mx.example.org\r\n"),
    ])
    assert p.client.state is State.READY and p.server.state is State.READY
    assert len(p.client.extensions) == 0 and len(p.server.extensions) == 0
    assert not p.client.pipelining


@pytest.mark.parametrize("code", [500, 502])
def test_client_falls_back_to_helo(code: int) -> None:
    text = "Syntax error, command unrecognized" if code == 500 else "Command not implemented"
    p = play([
        GREET,
        C(Ehlo(domain="client.example.com"), b"EHLO client.example.com\r\n"),
        S(R(code, text), b"%d %s\r\n" % (code, text.encode())),
        C(Helo(domain="client.example.com"), b"HELO client.example.com\r\n"),
        S(R(250, "mx.example.org"), b"250 mx.example.org\r\n"),
        C(Mail(reverse_path="a@client.example.com"), b"MAIL FROM:<a@client.example.com>\r\n"),
        S(R(250, "ok"), b"250 ok\r\n"),
    ])
    assert p.client.state is State.MAIL and p.server.state is State.MAIL
    assert len(p.client.extensions) == 0


def test_ehlo_refused_keeps_hello_state() -> None:
    p = play([
        GREET,
        C(Ehlo(domain="client.example.com"), b"EHLO client.example.com\r\n"),
        S(R(550, "go away"), b"550 go away\r\n"),
    ])
    assert p.client.state is State.HELLO and p.server.state is State.HELLO
    with pytest.raises(LocalProtocolError):
        p.client.send(Mail(reverse_path="a@b.example"))


@pytest.mark.parametrize("domain", ["[192.0.2.1]", "[IPv6:2001:db8::1]", "[x-tag:some-thing]", "client.example.com"])
def test_ehlo_domain_or_address_literal(domain: str) -> None:
    wire = f"EHLO {domain}\r\n".encode()
    p = play([GREET, C(Ehlo(domain=domain), wire), S(R(250, "mx.example.org"), b"250 mx.example.org\r\n")])
    assert p.server_events == [Ehlo(domain=domain)]


@pytest.mark.parametrize("domain", ["-bad.example", "exa mple.com", "[300.1.1.1]", "[IPv6:xyz]", "a..b"])
def test_client_refuses_bad_ehlo_domain(domain: str) -> None:
    client = Connection(Role.CLIENT)
    events(client, b"220 hi\r\n")
    with pytest.raises(LocalProtocolError):
        client.send(Ehlo(domain=domain))
    assert client.pending == ()


def test_second_ehlo_resets_transaction() -> None:
    p = play([
        GREET,
        C(Ehlo(domain="client.example.com"), b"EHLO client.example.com\r\n"),
        S(R(250, "mx.example.org", "SIZE 1000000"), b"250-mx.example.org\r\n250 SIZE 1000000\r\n"),
        C(Mail(reverse_path="a@b.example"), b"MAIL FROM:<a@b.example>\r\n"),
        S(R(250, "ok"), b"250 ok\r\n"),
        C(Ehlo(domain="client.example.com"), b"EHLO client.example.com\r\n"),
        S(R(250, "mx.example.org", "8BITMIME"), b"250-mx.example.org\r\n250 8BITMIME\r\n"),
    ])
    for conn in (p.client, p.server):
        assert conn.state is State.READY
        assert set(conn.extensions) == {"8BITMIME"}


@pytest.mark.parametrize("line", [b"ehlo client.example.com", b"EhLo client.example.com"])
def test_server_verbs_are_case_insensitive(line: bytes) -> None:
    server = greeted_server(ehlo=None)
    assert serve(server, line + b"\r\n") == [Ehlo(domain="client.example.com"), PAUSED]


@pytest.mark.parametrize("line,verb", [(b"EHLO", "EHLO"), (b"HELO", "HELO"), (b"EHLO a b", "EHLO")])
def test_server_hello_syntax_errors(line: bytes, verb: str) -> None:
    server = greeted_server(ehlo=None)
    got = serve(server, line + b"\r\n")
    assert got == [Refused(verb, 501), PAUSED]
    server.send(got[0].reply)
    assert server.state is State.HELLO


# ================================================================ MAIL / RCPT

def ready(caps: Sequence[str] = (), *, config: Config | None = None) -> list[C | S]:
    return [
        GREET,
        C(Ehlo(domain="client.example.com"), b"EHLO client.example.com\r\n"),
        S(R(250, "mx.example.org", *caps),
          lines(*(["250-mx.example.org"] + [f"250-{c}" for c in caps[:-1]] + [f"250 {caps[-1]}"]))
          if caps else b"250 mx.example.org\r\n"),
    ]


def test_mail_null_reverse_path() -> None:
    p = play([*ready(), C(Mail(reverse_path=""), b"MAIL FROM:<>\r\n"), S(R(250, "ok"), b"250 ok\r\n")])
    assert p.server_events[-1] == Mail(reverse_path="")
    assert p.client.state is State.MAIL and p.server.state is State.MAIL


@pytest.mark.parametrize("path", ["Postmaster", "postmaster", "POSTMASTER"])
def test_rcpt_postmaster(path: str) -> None:
    p = play([
        *ready(),
        C(Mail(reverse_path=""), b"MAIL FROM:<>\r\n"), S(R(250, "ok"), b"250 ok\r\n"),
        C(Rcpt(forward_path=path), f"RCPT TO:<{path}>\r\n".encode()), S(R(250, "ok"), b"250 ok\r\n"),
    ])
    assert p.server_events[-1] == Rcpt(forward_path=path)
    assert p.server.recipients == (Rcpt(forward_path=path),)


def test_rcpt_null_path_is_refused() -> None:
    with pytest.raises(LocalProtocolError):
        Rcpt(forward_path="")
    server = greeted_server()
    events(server, b"MAIL FROM:<>\r\n")
    server.send(R(250, "ok"))
    assert serve(server, b"RCPT TO:<>\r\n") == [Refused("RCPT", 501, "5.1.3"), PAUSED]


@pytest.mark.parametrize("address", [
    "user@[192.0.2.1]", "user@[010.0.0.1]", "user@[IPv6:2001:db8::1]", "user@[IPv6:::1]",
    "user@[IPv6:2001:db8::192.0.2.1]", "user@[x-tag:some-content]", '"john doe"@example.com',
    '"quoted\\"q"@example.com', "a.b-c+d@sub.example.com",
])
def test_mail_and_rcpt_address_forms(address: str) -> None:
    wire_path = f"<{address}>".encode()
    p = play([
        *ready(),
        C(Mail(reverse_path=address), b"MAIL FROM:" + wire_path + b"\r\n"), S(R(250, "ok"), b"250 ok\r\n"),
        C(Rcpt(forward_path=address), b"RCPT TO:" + wire_path + b"\r\n"), S(R(250, "ok"), b"250 ok\r\n"),
    ])
    assert p.server_events[-2:] == [Mail(reverse_path=address), Rcpt(forward_path=address)]


@pytest.mark.parametrize("address", ["user@[256.0.0.1]", "user@[1.2.3]", "user@[IPv6:2001:db8::g]",
                                     "user@[IPv6:1:2:3:4:5:6:7:8:9]", "user@[:nothing]", "user@-x.example",
                                     "no-at-sign", "two@@example.com", "a b@example.com"])
def test_bad_addresses_refused_both_ways(address: str) -> None:
    with pytest.raises(LocalProtocolError):
        Mail(reverse_path=address)
    server = greeted_server()
    got = serve(server, f"MAIL FROM:<{address}>\r\n".encode())
    assert got == [Refused("MAIL", 501, "5.1.7"), PAUSED]
    server.send(got[0].reply)
    assert server.state is State.READY


@pytest.mark.parametrize("line,path", [
    (b"MAIL FROM:<@a.example,@b.example:joe@three.example>", "joe@three.example"),
    (b"MAIL FROM:<@a.example:joe@three.example>", "joe@three.example"),
    (b"MAIL FROM:<@[192.0.2.1],@b.example:joe@three.example>", "joe@three.example"),
])
def test_source_route_in_mail_is_accepted_and_dropped(line: bytes, path: str) -> None:
    server = greeted_server()
    assert serve(server, line + b"\r\n") == [Mail(reverse_path=path), PAUSED]


def test_source_route_in_rcpt_is_accepted_and_dropped() -> None:
    server = greeted_server()
    events(server, b"MAIL FROM:<>\r\n")
    server.send(R(250, "ok"))
    for chunks in splits(b"RCPT TO:<@hosta.int,@jkl.org:userc@d.bar.org>\r\n"):
        s = greeted_server()
        events(s, b"MAIL FROM:<>\r\n")
        s.send(R(250, "ok"))
        assert strip(events(s, chunks)) == [Rcpt(forward_path="userc@d.bar.org"), PAUSED]


@pytest.mark.parametrize("line", [b"MAIL FROM:<@bad domain:joe@three.example>", b"MAIL FROM:<@:joe@x.example>",
                                  b"MAIL FROM:<@a.example;joe@x.example>"])
def test_bad_source_route_refused(line: bytes) -> None:
    server = greeted_server()
    assert serve(server, line + b"\r\n") == [Refused("MAIL", 501), PAUSED]


def test_client_does_not_send_source_routes() -> None:
    with pytest.raises(LocalProtocolError):
        Mail(reverse_path="@a.example:joe@three.example")


@pytest.mark.parametrize("line,event", [
    (b"mail from:<a@b.example>", Mail(reverse_path="a@b.example")),
    (b"MAIL FROM: <a@b.example>", Mail(reverse_path="a@b.example")),  # tolerated, as Postfix does
    (b"Mail From:<>", Mail(reverse_path="")),
])
def test_server_mail_tolerances(line: bytes, event: Mail) -> None:
    assert serve(greeted_server(), line + b"\r\n") == [event, PAUSED]


@pytest.mark.parametrize("line", [b"MAIL FROM:a@b.example", b"MAIL TO:<a@b.example>", b"MAIL <a@b.example>",
                                  b"MAIL FROM:<a@b.example", b"MAIL FROM:<a@b.example>x"])
def test_server_mail_syntax_errors(line: bytes) -> None:
    got = serve(greeted_server(), line + b"\r\n")
    assert got == [Refused("MAIL", 501), PAUSED]


MAIL_PARAM_CAPS = ("SIZE 1000000", "8BITMIME", "DSN", "SMTPUTF8", "PIPELINING")


@pytest.mark.parametrize("params,wire", [
    ({"SIZE": "1000"}, b" SIZE=1000"),
    ({"BODY": "8BITMIME"}, b" BODY=8BITMIME"),
    ({"SIZE": "1000", "BODY": "8BITMIME", "RET": "HDRS", "ENVID": "QQ314159"},
     b" SIZE=1000 BODY=8BITMIME RET=HDRS ENVID=QQ314159"),
])
def test_mail_params(params: dict[str, str], wire: bytes) -> None:
    p = play([*ready(MAIL_PARAM_CAPS),
              C(Mail(reverse_path="a@b.example", params=params), b"MAIL FROM:<a@b.example>" + wire + b"\r\n"),
              S(R(250, "ok"), b"250 ok\r\n")])
    assert p.server_events[-1] == Mail(reverse_path="a@b.example", params=params)
    assert dict(p.server_events[-1].params) == params


@pytest.mark.parametrize("params,wire", [
    ({"NOTIFY": "SUCCESS,FAILURE"}, b" NOTIFY=SUCCESS,FAILURE"),
    ({"NOTIFY": "NEVER", "ORCPT": "rfc822;Bob@example.com"}, b" NOTIFY=NEVER ORCPT=rfc822;Bob@example.com"),
])
def test_rcpt_params(params: dict[str, str], wire: bytes) -> None:
    p = play([*ready(MAIL_PARAM_CAPS),
              C(Mail(reverse_path="a@b.example"), b"MAIL FROM:<a@b.example>\r\n"),
              C(Rcpt(forward_path="bob@example.com", params=params), b"RCPT TO:<bob@example.com>" + wire + b"\r\n"),
              S(R(250, "ok"), b"250 ok\r\n"), S(R(250, "ok"), b"250 ok\r\n")])
    assert p.server_events[-1] == Rcpt(forward_path="bob@example.com", params=params)


def test_param_keyword_without_value() -> None:
    p = play([*ready(MAIL_PARAM_CAPS),
              C(Mail(reverse_path="jörg@bücher.example", params={"SMTPUTF8": None}),
                "MAIL FROM:<jörg@bücher.example> SMTPUTF8\r\n".encode()),
              S(R(250, "ok"), b"250 ok\r\n"),
              C(Rcpt(forward_path="ünsal@example.com"), "RCPT TO:<ünsal@example.com>\r\n".encode()),
              S(R(250, "ok"), b"250 ok\r\n")])
    assert p.server_events[-2] == Mail(reverse_path="jörg@bücher.example", params={"SMTPUTF8": None})
    assert p.server_events[-1] == Rcpt(forward_path="ünsal@example.com")


def test_params_not_advertised_are_refused_both_ways() -> None:
    p = play(ready())
    with pytest.raises(LocalProtocolError):
        p.client.send(Mail(reverse_path="a@b.example", params={"SIZE": "1000"}))
    got = serve(p.server, b"MAIL FROM:<a@b.example> SIZE=1000\r\n")
    assert len(got) == 2 and isinstance(got[0], InvalidCommand) and got[0].reply.code in (501, 555)


@pytest.mark.parametrize("line", [b"MAIL FROM:<a@b.example> SIZE=1000  BODY=8BITMIME",
                                  b"MAIL FROM:<a@b.example> SIZE=",
                                  b"MAIL FROM:<a@b.example> =1000"])
def test_param_syntax_errors(line: bytes) -> None:
    server = greeted_server(ehlo=("mx.example.org", *MAIL_PARAM_CAPS))
    assert serve(server, line + b"\r\n") == [Refused("MAIL", 501), PAUSED]


def test_rcpt_refused_then_accepted() -> None:
    p = play([
        *ready(),
        C(Mail(reverse_path="a@b.example"), b"MAIL FROM:<a@b.example>\r\n"), S(R(250, "ok"), b"250 ok\r\n"),
        C(Rcpt(forward_path="x@y.example"), b"RCPT TO:<x@y.example>\r\n"),
        S(R(550, "No such user", enhanced="5.1.1"), b"550 5.1.1 No such user\r\n"),
    ])
    assert p.client.state is State.MAIL and p.server.state is State.MAIL
    with pytest.raises(LocalProtocolError):
        p.client.send(Data())  # no recipient accepted
    with pytest.raises(LocalProtocolError):
        p.client.send(Mail(reverse_path="a@b.example"))  # nested MAIL


# ================================================================ DATA

def transaction(caps: Sequence[str] = ()) -> list[C | S]:
    return [
        *ready(caps),
        C(Mail(reverse_path="a@b.example"), b"MAIL FROM:<a@b.example>\r\n"), S(R(250, "ok"), b"250 ok\r\n"),
        C(Rcpt(forward_path="c@d.example"), b"RCPT TO:<c@d.example>\r\n"), S(R(250, "ok"), b"250 ok\r\n"),
        C(Data(), b"DATA\r\n"), S(R(354, "End data with <CR><LF>.<CR><LF>"), b"354 End data with <CR><LF>.<CR><LF>\r\n"),
    ]


@pytest.mark.parametrize("content,wire,seen", [
    (b"", b"", b""),
    (b"hello\r\n", b"hello\r\n", b"hello\r\n"),
    (b"no final newline", b"no final newline\r\n", b"no final newline\r\n"),
    (b".\r\n", b"..\r\n", b".\r\n"),
    (b"..\r\n", b"...\r\n", b"..\r\n"),
    (b".hidden\r\n.\r\nvisible\r\n", b"..hidden\r\n..\r\nvisible\r\n", b".hidden\r\n.\r\nvisible\r\n"),
    (b"a\r\n.b\r\n..c\r\n", b"a\r\n..b\r\n...c\r\n", b"a\r\n.b\r\n..c\r\n"),
    (b"bare\nlf\rcr\r\n", b"bare\r\nlf\r\ncr\r\n", b"bare\r\nlf\r\ncr\r\n"),  # the client normalizes
    (b"x\n.\n", b"x\r\n..\r\n", b"x\r\n.\r\n"),
])
def test_data_dot_stuffing_and_line_endings(content: bytes, wire: bytes, seen: bytes) -> None:
    p = play(transaction())
    sent = p.client.send(MessageData(data=content)) if content else b""
    sent += p.client.send(EndOfMessage())
    assert sent == wire + b".\r\n"
    expected = ([MessageData(data=seen)] if seen else []) + [EndOfMessage(), PAUSED]
    assert strip(events(p.server, sent)) == expected
    # And the same whatever the chunking of the wire.
    for chunks in splits(sent):
        q = play(transaction())
        assert strip(events(q.server, chunks)) == expected


def test_data_end_reply_ends_transaction() -> None:
    p = play([*transaction(), C(MessageData(data=b"x\r\n"), b"x\r\n"), C(EndOfMessage(), b".\r\n"),
              S(R(250, "Ok: queued as 4F2C1", enhanced="2.0.0"), b"250 2.0.0 Ok: queued as 4F2C1\r\n")])
    for conn in (p.client, p.server):
        assert conn.state is State.READY and conn.recipients == ()


@pytest.mark.parametrize("code", [451, 552, 554])
def test_data_end_refused_also_ends_transaction(code: int) -> None:
    p = play([*transaction(), C(MessageData(data=b"x\r\n"), b"x\r\n"), C(EndOfMessage(), b".\r\n"),
              S(R(code, "nope"), b"%d nope\r\n" % code)])
    assert p.client.state is State.READY and p.server.state is State.READY


def test_data_refused_with_5xx_keeps_transaction() -> None:
    p = play([*ready(),
              C(Mail(reverse_path="a@b.example"), b"MAIL FROM:<a@b.example>\r\n"), S(R(250, "ok"), b"250 ok\r\n"),
              C(Rcpt(forward_path="c@d.example"), b"RCPT TO:<c@d.example>\r\n"), S(R(250, "ok"), b"250 ok\r\n"),
              C(Data(), b"DATA\r\n"), S(R(451, "try later"), b"451 try later\r\n")])
    assert p.client.state is State.RCPT and p.server.state is State.RCPT
    with pytest.raises(LocalProtocolError):
        p.client.send(MessageData(data=b"x"))


def test_data_must_be_answered_with_354_or_error() -> None:
    p = play([*ready(),
              C(Mail(reverse_path="a@b.example"), b"MAIL FROM:<a@b.example>\r\n"), S(R(250, "ok"), b"250 ok\r\n"),
              C(Rcpt(forward_path="c@d.example"), b"RCPT TO:<c@d.example>\r\n"), S(R(250, "ok"), b"250 ok\r\n"),
              C(Data(), b"DATA\r\n")])
    assert p.server_events[-1] == Data() and p.server.reply_owed == Data()
    for bad in (R(250, "ok"), R(334, "x"), R(220, "x")):
        with pytest.raises(LocalProtocolError):
            p.server.send(bad)
    assert p.server.send(R(354, "go")) == b"354 go\r\n"


def test_data_content_streams_in_chunks() -> None:
    p = play(transaction())
    out = b"".join(p.client.send(MessageData(data=piece)) for piece in (b"Sub", b"ject: x\r", b"\n\r\n.", b"dot\r\nend"))
    out += p.client.send(EndOfMessage())
    assert out == b"Subject: x\r\n\r\n..dot\r\nend\r\n.\r\n"
    assert strip(events(p.server, out)) == [MessageData(data=b"Subject: x\r\n\r\n.dot\r\nend\r\n"), EndOfMessage(), PAUSED]


def test_server_rejects_bare_lf_in_data_after_real_end() -> None:
    server = greeted_server()
    for line, reply in ((b"MAIL FROM:<a@b.example>\r\n", R(250, "ok")), (b"RCPT TO:<c@d.example>\r\n", R(250, "ok")),
                        (b"DATA\r\n", R(354, "go"))):
        events(server, line)
        server.send(reply)
    got = [e for e in strip(events(server, b"a\nb\r\n.\n.\r\n\r\n.\r\n")) if not isinstance(e, MessageData)]
    assert len(got) == 2 and got[-1] is PAUSED
    rejected = got[0]
    assert type(rejected).__name__ == "MessageRejected" and rejected.reply.code == 550
    assert server.send(rejected.reply) == b"550 5.5.2 Error: bare <LF> received\r\n"
    assert server.state is State.READY


# ================================================================ RSET / NOOP / QUIT / VRFY / EXPN / HELP

@pytest.mark.parametrize("command,wire,reply,reply_wire", [
    (Rset(), b"RSET\r\n", R(250, "Ok", enhanced="2.0.0"), b"250 2.0.0 Ok\r\n"),
    (Noop(), b"NOOP\r\n", R(250, "OK"), b"250 OK\r\n"),
    (Vrfy(argument="Crispin"), b"VRFY Crispin\r\n", R(252, "Cannot VRFY user, but will accept message and attempt delivery"),
     b"252 Cannot VRFY user, but will accept message and attempt delivery\r\n"),
    (Vrfy(argument="<Admin.MRC@foo.com>"), b"VRFY <Admin.MRC@foo.com>\r\n", R(550, "not here"), b"550 not here\r\n"),
    (Expn(argument="Example-People"), b"EXPN Example-People\r\n",
     R(250, "Jon Postel <Postel@isi.edu>", "Fred Fonebone <Fonebone@physics.foo-u.edu>", "Sam Q. Smith <SQSmith@specific.generic.com>"),
     lines("250-Jon Postel <Postel@isi.edu>", "250-Fred Fonebone <Fonebone@physics.foo-u.edu>",
           "250 Sam Q. Smith <SQSmith@specific.generic.com>")),
    (Expn(argument="Executive-Washroom-List"), b"EXPN Executive-Washroom-List\r\n",
     R(550, "Access Denied to You."), b"550 Access Denied to You.\r\n"),
    (Help(), b"HELP\r\n", R(214, "See https://www.ietf.org/rfc/rfc5321.txt"),
     b"214 See https://www.ietf.org/rfc/rfc5321.txt\r\n"),
    (Help(argument="MAIL"), b"HELP MAIL\r\n", R(214, "MAIL FROM:<address> [params]", "End of HELP info"),
     b"214-MAIL FROM:<address> [params]\r\n214 End of HELP info\r\n"),
    (Help(argument=""), b"HELP\r\n", R(502, "HELP not implemented"), b"502 HELP not implemented\r\n"),
])
@pytest.mark.parametrize("where", ["HELLO", "READY", "MAIL", "RCPT"])
def test_anytime_commands(command: Command, wire: bytes, reply: Reply, reply_wire: bytes, where: str) -> None:
    steps: list[C | S] = [GREET]
    if where != "HELLO":
        steps += [C(Ehlo(domain="client.example.com"), b"EHLO client.example.com\r\n"),
                  S(R(250, "mx.example.org"), b"250 mx.example.org\r\n")]
    if where in ("MAIL", "RCPT"):
        steps += [C(Mail(reverse_path="a@b.example"), b"MAIL FROM:<a@b.example>\r\n"), S(R(250, "ok"), b"250 ok\r\n")]
    if where == "RCPT":
        steps += [C(Rcpt(forward_path="c@d.example"), b"RCPT TO:<c@d.example>\r\n"), S(R(250, "ok"), b"250 ok\r\n")]
    seen = Help() if isinstance(command, Help) and not command.argument else command
    p = play([*steps, C(command, wire, seen=[seen]), S(reply, reply_wire)])
    expected = State[where]
    if isinstance(command, Rset) and where != "HELLO":
        expected = State.READY
    assert p.client.state is expected and p.server.state is expected


def test_noop_argument_is_ignored_by_server() -> None:
    assert serve(greeted_server(), b"NOOP keep me busy\r\n") == [Noop(), PAUSED]


@pytest.mark.parametrize("line,verb", [(b"VRFY", "VRFY"), (b"EXPN", "EXPN"), (b"RSET now", "RSET"),
                                       (b"DATA please", "DATA"), (b"QUIT now", "QUIT")])
def test_argument_syntax_errors(line: bytes, verb: str) -> None:
    got = serve(greeted_server(), line + b"\r\n")
    assert got == [Refused(verb, 501), PAUSED]


def test_quit_from_every_session_state() -> None:
    base = transaction()[:-2]  # up to RCPT accepted
    for cut in (1, 3, 5, 7):
        p = play([*base[:cut], C(Quit(), b"QUIT\r\n"),
                  S(R(221, "Bye", enhanced="2.0.0"), b"221 2.0.0 Bye\r\n")])
        assert p.client.state is State.CLOSED and p.server.state is State.CLOSED
        assert p.client_events[-1] == R(221, "Bye", enhanced="2.0.0")


def test_quit_must_be_answered_with_221() -> None:
    p = play([*ready(), C(Quit(), b"QUIT\r\n")])
    assert p.server_events[-1] == Quit() and p.server.reply_owed == Quit()
    with pytest.raises(LocalProtocolError):
        p.server.send(R(250, "ok"))
    assert p.server.send(R(221, "bye")) == b"221 bye\r\n"


def test_client_refuses_nothing_after_close() -> None:
    p = play([*ready(), C(Quit(), b"QUIT\r\n"), S(R(221, "bye"), b"221 bye\r\n")])
    for command in (Noop(), Quit(), Ehlo(domain="a.example")):
        with pytest.raises(LocalProtocolError):
            p.client.send(command)
    with pytest.raises(LocalProtocolError):
        p.server.send(R(250, "ok"))


# ================================================================ replies

@pytest.mark.parametrize("reply,wire", [
    (R(250, "OK"), b"250 OK\r\n"),
    (R(250, ""), b"250\r\n"),
    (R(250, "first", "second", "third"), b"250-first\r\n250-second\r\n250 third\r\n"),
    (R(250, "first", "", "last"), b"250-first\r\n250-\r\n250 last\r\n"),
    (R(250, "Ok", enhanced="2.1.0"), b"250 2.1.0 Ok\r\n"),
    (R(250, "", enhanced="2.0.0"), b"250 2.0.0\r\n"),
    (R(250, "one", "two", enhanced="2.0.0"), b"250-2.0.0 one\r\n250 2.0.0 two\r\n"),
    (R(550, "User unknown", enhanced="5.1.1"), b"550 5.1.1 User unknown\r\n"),
    (R(452, "Too many recipients", enhanced="4.5.3"), b"452 4.5.3 Too many recipients\r\n"),
    (R(250, "Ünïcode ok"), "250 Ünïcode ok\r\n".encode()),
])
def test_reply_format_and_parse(reply: Reply, wire: bytes) -> None:
    p = play([*ready(), C(Noop(), b"NOOP\r\n"), S(reply, wire)])
    assert p.client_events[-1] == reply
    assert p.client_events[-1].enhanced_status == reply.enhanced_status


@pytest.mark.parametrize("wire,expected", [
    (b"250 2.1.0 Ok\r\n", R(250, "Ok", enhanced="2.1.0")),
    (b"250 5.1.0 mismatched class is text\r\n", R(250, "5.1.0 mismatched class is text")),
    (b"250-2.0.0 one\r\n250 2.0.0 two\r\n", R(250, "one", "two", enhanced="2.0.0")),
    (b"250-2.0.0 one\r\n250 two\r\n", R(250, "one", "two", enhanced="2.0.0")),
    (b"250-mx.example.org\r\n250-SIZE 100\r\n250 HELP\r\n", R(250, "mx.example.org", "SIZE 100", "HELP")),
    (b"250\r\n", R(250, "")),
    (b"250 \r\n", R(250, "")),
    (b"214-a\r\n214-b\r\n214-c\r\n214 d\r\n", R(214, "a", "b", "c", "d")),
])
def test_client_parses_replies(wire: bytes, expected: Reply) -> None:
    for chunks in splits(wire):
        p = play([*ready(), C(Noop(), b"NOOP\r\n")])
        got = strip(events(p.client, chunks))
        assert got == [expected]
        assert got[0].command == Noop() and got[0].enhanced_status == expected.enhanced_status


@pytest.mark.parametrize("wire", [b"25 short\r\n", b"2500 long\r\n", b"abc text\r\n", b"250-a\r\n251 b\r\n",
                                  b"600 out of range\r\n", b"250_bad separator\r\n"])
def test_client_rejects_malformed_replies(wire: bytes) -> None:
    p = play([*ready(), C(Noop(), b"NOOP\r\n")])
    p.client.receive_data(wire)
    with pytest.raises(RemoteProtocolError):
        while p.client.next_event() is not NEED_DATA:
            pass
    assert p.client.state is State.ERROR


def test_client_rejects_unsolicited_reply() -> None:
    p = play(ready())
    p.client.receive_data(b"250 surprise\r\n")
    with pytest.raises(RemoteProtocolError):
        p.client.next_event()


def test_client_rejects_3xx_where_not_expected() -> None:
    p = play([*ready(), C(Noop(), b"NOOP\r\n")])
    p.client.receive_data(b"354 go ahead\r\n")
    with pytest.raises(RemoteProtocolError):
        p.client.next_event()


@pytest.mark.parametrize("bad", [
    dict(code=99), dict(code=600), dict(code=250, enhanced_status="5.0.0"), dict(code=250, enhanced_status="2.0"),
    dict(code=250, lines=("a\r\nb",)), dict(code=250, lines=("nul\x00",)), dict(code=True),
])
def test_bad_reply_events_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(LocalProtocolError):
        Reply(**bad)


def test_server_only_sends_replies_when_owed() -> None:
    server = greeted_server()
    with pytest.raises(LocalProtocolError):
        server.send(R(250, "nobody asked"))
    with pytest.raises(LocalProtocolError):
        server.send(Noop())  # type: ignore[arg-type]
    assert server.state is State.READY


# ================================================================ 421 at any time

@pytest.mark.parametrize("upto", ["greeted", "ready", "mail", "rcpt", "data"])
def test_421_unsolicited_at_any_time(upto: str) -> None:
    steps: list[C | S] = {
        "greeted": [GREET],
        "ready": ready(),
        "mail": [*ready(), C(Mail(reverse_path="a@b.example"), b"MAIL FROM:<a@b.example>\r\n"), S(R(250, "ok"), b"250 ok\r\n")],
        "rcpt": transaction()[:-2],
        "data": [*transaction(), C(MessageData(data=b"partial\r\n"), b"partial\r\n")],
    }[upto]
    p = play(steps)
    if upto == "data":
        assert p.server_events[-1] == MessageData(data=b"partial\r\n")
        assert p.server.reply_owed is None and p.server.state is State.DATA
    out = p.server.send(R(421, "mx.example.org Service shutting down", enhanced="4.3.0"))
    assert out == b"421 4.3.0 mx.example.org Service shutting down\r\n"
    assert p.server.state is State.CLOSED
    got = events(p.client, out)
    assert got[0] == R(421, "mx.example.org Service shutting down", enhanced="4.3.0")
    assert p.client.state is State.CLOSED


@pytest.mark.parametrize("command,wire", [
    (Ehlo(domain="client.example.com"), b"EHLO client.example.com\r\n"),
    (Mail(reverse_path="a@b.example"), b"MAIL FROM:<a@b.example>\r\n"),
    (Noop(), b"NOOP\r\n"),
])
def test_421_in_answer_to_a_command(command: Command, wire: bytes) -> None:
    steps = [GREET] if isinstance(command, Ehlo) else ready()
    p = play([*steps, C(command, wire), S(R(421, "closing"), b"421 closing\r\n")])
    assert p.client.state is State.CLOSED and p.server.state is State.CLOSED


def test_421_to_end_of_data() -> None:
    p = play([*transaction(), C(MessageData(data=b"x\r\n"), b"x\r\n"), C(EndOfMessage(), b".\r\n"),
              S(R(421, "out of disk"), b"421 out of disk\r\n")])
    assert p.client.state is State.CLOSED and p.server.state is State.CLOSED


# ================================================================ 503 bad sequence

@pytest.mark.parametrize("line,verb,state", [
    (b"MAIL FROM:<a@b.example>", "MAIL", "HELLO"),
    (b"RCPT TO:<a@b.example>", "RCPT", "HELLO"),
    (b"DATA", "DATA", "HELLO"),
    (b"RCPT TO:<a@b.example>", "RCPT", "READY"),
    (b"DATA", "DATA", "READY"),
    (b"DATA", "DATA", "MAIL"),
    (b"MAIL FROM:<a@b.example>", "MAIL", "MAIL"),
    (b"MAIL FROM:<a@b.example>", "MAIL", "RCPT"),
])
def test_server_bad_sequence_is_503(line: bytes, verb: str, state: str) -> None:
    server = Connection(Role.SERVER)
    server.send(R(220, "hi"))
    setup = {"HELLO": [], "READY": [b"EHLO c.example\r\n"],
             "MAIL": [b"EHLO c.example\r\n", b"MAIL FROM:<x@y.example>\r\n"],
             "RCPT": [b"EHLO c.example\r\n", b"MAIL FROM:<x@y.example>\r\n", b"RCPT TO:<z@y.example>\r\n"]}[state]
    for cmd in setup:
        events(server, cmd)
        server.send(R(250, "ok"))
    assert server.state is State[state]
    got = serve(server, line + b"\r\n")
    assert got == [Refused(verb, 503, "5.5.1"), PAUSED]
    out = server.send(got[0].reply)
    assert out.startswith(b"503 5.5.1 ")
    assert server.state is State[state]


@pytest.mark.parametrize("command", [Mail(reverse_path="a@b.example"), Rcpt(forward_path="a@b.example"), Data(),
                                     Bdat(size=1, last=True), StartTLS(), AuthResponse(data=b"x")])
def test_client_bad_sequence_is_local_error(command: Event) -> None:
    client = Connection(Role.CLIENT)
    events(client, b"220 hi\r\n")
    with pytest.raises(LocalProtocolError):
        client.send(command)
    assert client.state is State.HELLO and client.pending == ()


def test_client_503_reply_keeps_state() -> None:
    """A server may answer 503 to a command the client thought valid."""
    p = play([*ready(), C(Mail(reverse_path="a@b.example"), b"MAIL FROM:<a@b.example>\r\n"),
              S(R(503, "Bad sequence of commands", enhanced="5.5.1"), b"503 5.5.1 Bad sequence of commands\r\n")])
    assert p.client.state is State.READY and p.server.state is State.READY


def test_unknown_command() -> None:
    server = greeted_server()
    got = serve(server, b"TURN\r\n")
    assert got == [Refused("TURN", 500, "5.5.2", unknown=True), PAUSED]
    assert server.send(got[0].reply) == b"500 5.5.2 Error: command not recognized\r\n"
    assert server.state is State.READY
    with pytest.raises(LocalProtocolError):
        server.send(R(250, "no"))  # nothing owed any more


def test_refused_command_must_get_an_error_reply() -> None:
    server = greeted_server()
    got = serve(server, b"RCPT TO:<a@b.example>\r\n")
    with pytest.raises(LocalProtocolError):
        server.send(R(250, "ok"))
    assert server.send(R(550, "no")) == b"550 no\r\n"
    assert got[0] == Refused("RCPT", 503)


# ================================================================ STARTTLS

def test_starttls_hand_over() -> None:
    caps = ("STARTTLS", "PIPELINING", "SIZE 1000")
    p = play([*ready(caps), C(StartTLS(), b"STARTTLS\r\n"),
              S(R(220, "Ready to start TLS", enhanced="2.0.0"), b"220 2.0.0 Ready to start TLS\r\n")])
    for conn in (p.client, p.server):
        assert conn.state is State.TLS
        assert conn.next_event() is PAUSED
    with pytest.raises(LocalProtocolError):
        p.client.send(Ehlo(domain="client.example.com"))
    p.client.tls_established()
    p.server.tls_established()
    for conn in (p.client, p.server):
        assert conn.state is State.HELLO and conn.tls_active
        assert len(conn.extensions) == 0
    # A new EHLO is needed; the reply after TLS must not offer STARTTLS again.
    assert p.client.send(Ehlo(domain="client.example.com")) == b"EHLO client.example.com\r\n"
    assert serve(p.server, b"EHLO client.example.com\r\n") == [Ehlo(domain="client.example.com"), PAUSED]
    with pytest.raises(LocalProtocolError):
        p.server.send(R(250, "mx.example.org", "STARTTLS"))
    out = p.server.send(R(250, "mx.example.org", "SIZE 1000"))
    assert out == b"250-mx.example.org\r\n250 SIZE 1000\r\n"
    assert events(p.client, out) == [R(250, "mx.example.org", "SIZE 1000"), NEED_DATA]
    assert p.client.state is State.READY and set(p.client.extensions) == {"SIZE"}
    with pytest.raises(LocalProtocolError):
        p.client.send(StartTLS())


def test_starttls_refused() -> None:
    p = play([*ready(("STARTTLS",)), C(StartTLS(), b"STARTTLS\r\n"),
              S(R(454, "TLS not available due to temporary reason", enhanced="4.7.0"),
                b"454 4.7.0 TLS not available due to temporary reason\r\n")])
    assert p.client.state is State.READY and p.server.state is State.READY
    with pytest.raises(LocalProtocolError):
        p.client.tls_established()


def test_starttls_not_advertised() -> None:
    p = play(ready())
    with pytest.raises(LocalProtocolError):
        p.client.send(StartTLS())
    assert serve(p.server, b"STARTTLS\r\n") == [Refused("STARTTLS", 502), PAUSED]


def test_starttls_with_argument_is_a_syntax_error() -> None:
    server = greeted_server(ehlo=("mx.example.org", "STARTTLS"))
    assert serve(server, b"STARTTLS now\r\n") == [Refused("STARTTLS", 501), PAUSED]


def test_starttls_answer_must_be_220() -> None:
    server = greeted_server(ehlo=("mx.example.org", "STARTTLS"))
    serve(server, b"STARTTLS\r\n")
    with pytest.raises(LocalProtocolError):
        server.send(R(250, "ok"))
    assert server.send(R(220, "go")) == b"220 go\r\n"


def test_tls_established_without_starttls_is_local_error() -> None:
    for conn in (Connection(Role.CLIENT), greeted_server()):
        with pytest.raises(LocalProtocolError):
            conn.tls_established()


def test_server_plaintext_after_starttls_is_an_error() -> None:
    server = greeted_server(ehlo=("mx.example.org", "STARTTLS"))
    server.receive_data(b"STARTTLS\r\nMAIL FROM:<evil@example.com>\r\n")
    seen = []
    with pytest.raises(RemoteProtocolError) as info:
        for _ in range(5):
            seen.append(server.next_event())
    assert info.value.reply is not None and info.value.reply.code == 554
    assert not any(isinstance(e, Mail) for e in seen)  # the injected command is never parsed
    assert server.state is State.ERROR


# ================================================================ AUTH framing

AUTH_CAPS = ("AUTH PLAIN LOGIN CRAM-MD5",)


def auth_ready() -> list[C | S]:
    return [GREET,
            C(Ehlo(domain="client.example.com"), b"EHLO client.example.com\r\n"),
            S(R(250, "mx.example.org", *AUTH_CAPS), b"250-mx.example.org\r\n250 AUTH PLAIN LOGIN CRAM-MD5\r\n")]


def b64(data: bytes) -> bytes:
    return base64.b64encode(data)


def test_auth_plain_with_initial_response() -> None:
    cred = b"\x00tim\x00tanstaaftanstaaf"
    p = play([*auth_ready(),
              C(Auth(mechanism="PLAIN", initial_response=cred), b"AUTH PLAIN " + b64(cred) + b"\r\n"),
              S(R(235, "Authentication successful", enhanced="2.7.0"), b"235 2.7.0 Authentication successful\r\n")],
             tls_active=True)
    assert p.server_events[-1] == Auth(mechanism="PLAIN", initial_response=cred)
    assert p.client.authenticated and p.server.authenticated
    assert p.client.state is State.READY and p.server.state is State.READY
    with pytest.raises(LocalProtocolError):
        p.client.send(Auth(mechanism="PLAIN", initial_response=cred))


def test_auth_empty_initial_response_is_equals_sign() -> None:
    p = play([*auth_ready(),
              C(Auth(mechanism="PLAIN", initial_response=b""), b"AUTH PLAIN =\r\n"),
              S(R(334, ""), b"334 \r\n"),  # RFC 4954: "334" SP [base64]
              C(AuthResponse(data=b"\x00tim\x00secret"), b64(b"\x00tim\x00secret") + b"\r\n"),
              S(R(235, "ok", enhanced="2.7.0"), b"235 2.7.0 ok\r\n")], tls_active=True)
    assert p.server_events[1] == Auth(mechanism="PLAIN", initial_response=b"")


def test_auth_login_334_continuations() -> None:
    p = play([*auth_ready(),
              C(Auth(mechanism="LOGIN"), b"AUTH LOGIN\r\n"),
              S(R(334, "VXNlcm5hbWU6"), b"334 VXNlcm5hbWU6\r\n"),
              C(AuthResponse(data=b"tim"), b"dGlt\r\n"),
              S(R(334, "UGFzc3dvcmQ6"), b"334 UGFzc3dvcmQ6\r\n"),
              C(AuthResponse(data=b"tanstaaftanstaaf"), b"dGFuc3RhYWZ0YW5zdGFhZg==\r\n"),
              S(R(235, "Authentication successful", enhanced="2.7.0"), b"235 2.7.0 Authentication successful\r\n")],
             tls_active=True)
    assert p.server_events[1:] == [Auth(mechanism="LOGIN"), AuthResponse(data=b"tim"),
                                   AuthResponse(data=b"tanstaaftanstaaf")]
    assert p.client.authenticated


def test_auth_empty_response_is_an_empty_line() -> None:
    p = play([*auth_ready(),
              C(Auth(mechanism="LOGIN"), b"AUTH LOGIN\r\n"),
              S(R(334, "VXNlcm5hbWU6"), b"334 VXNlcm5hbWU6\r\n"),
              C(AuthResponse(data=b""), b"\r\n"),
              S(R(535, "Authentication credentials invalid", enhanced="5.7.8"),
                b"535 5.7.8 Authentication credentials invalid\r\n")], tls_active=True)
    assert p.server_events[-1] == AuthResponse(data=b"")
    assert not p.client.authenticated and p.client.state is State.READY


def test_auth_cancel_is_answered_501() -> None:
    p = play([*auth_ready(),
              C(Auth(mechanism="CRAM-MD5"), b"AUTH CRAM-MD5\r\n"),
              S(R(334, "PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+"),
                b"334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+\r\n"),
              C(AuthResponse(cancelled=True), b"*\r\n")], tls_active=True)
    assert p.server_events[-1] == AuthResponse(cancelled=True)
    with pytest.raises(LocalProtocolError):
        p.server.send(R(235, "ok"))
    out = p.server.send(R(501, "Authentication aborted", enhanced="5.0.0"))
    assert out == b"501 5.0.0 Authentication aborted\r\n"
    assert events(p.client, out) == [R(501, "Authentication aborted", enhanced="5.0.0"), NEED_DATA]
    assert p.client.state is State.READY and p.server.state is State.READY


@pytest.mark.parametrize("line", [b"%%%not-base64", b"dGlt=x", b"dGl", b"AUTH LOGIN"])
def test_auth_invalid_base64_response_is_501(line: bytes) -> None:
    p = play([*auth_ready(), C(Auth(mechanism="LOGIN"), b"AUTH LOGIN\r\n"),
              S(R(334, "VXNlcm5hbWU6"), b"334 VXNlcm5hbWU6\r\n")], tls_active=True)
    got = serve(p.server, line + b"\r\n")
    assert got == [Refused("AUTH", 501), PAUSED]
    assert p.server.send(got[0].reply) == b"501 5.5.2 Error: cannot decode response\r\n"
    assert p.server.state is State.READY


def test_auth_invalid_base64_initial_response_is_501() -> None:
    server2 = Connection(Role.SERVER, tls_active=True)
    server2.send(R(220, "hi"))
    events(server2, b"EHLO client.example.com\r\n")
    server2.send(R(250, "mx.example.org", *AUTH_CAPS))
    got = serve(server2, b"AUTH PLAIN ###\r\n")
    assert got == [Refused("AUTH", 501), PAUSED]
    assert server2.send(got[0].reply).startswith(b"501 ")
    assert server2.state is State.READY


def test_auth_lines_are_never_parsed_as_commands() -> None:
    p = play([*auth_ready(), C(Auth(mechanism="LOGIN"), b"AUTH LOGIN\r\n"),
              S(R(334, "VXNlcm5hbWU6"), b"334 VXNlcm5hbWU6\r\n")], tls_active=True)
    got = serve(p.server, b"QUIT\r\n")  # "QUIT" is not base64 of anything useful...
    assert got[-1] is PAUSED and not isinstance(got[0], Quit)


def test_auth_not_advertised_or_mechanism_unknown() -> None:
    client = Connection(Role.CLIENT, tls_active=True)
    events(client, b"220 hi\r\n")
    client.send(Ehlo(domain="client.example.com"))
    events(client, b"250-mx\r\n250 AUTH PLAIN\r\n")
    with pytest.raises(LocalProtocolError):
        client.send(Auth(mechanism="LOGIN"))
    assert client.send(Auth(mechanism="plain")) == b"AUTH PLAIN\r\n"


def test_auth_refused_over_cleartext_by_default() -> None:
    client = Connection(Role.CLIENT)
    events(client, b"220 hi\r\n")
    client.send(Ehlo(domain="client.example.com"))
    events(client, b"250-mx\r\n250 AUTH PLAIN\r\n")
    with pytest.raises(LocalProtocolError):
        client.send(Auth(mechanism="PLAIN", initial_response=b"\x00a\x00b"))


# ================================================================ LMTP (RFC 2033 section 4.2)

LMTP = Config(lmtp=True)


def lmtp_session() -> list[C | S]:
    return [
        S(R(220, "foo.edu LMTP server ready"), b"220 foo.edu LMTP server ready\r\n"),
        C(Lhlo(domain="foo.edu"), b"LHLO foo.edu\r\n"),
        S(R(250, "foo.edu", "PIPELINING", "SIZE"), b"250-foo.edu\r\n250-PIPELINING\r\n250 SIZE\r\n"),
    ]


PAT, JONES, GREEN = Rcpt(forward_path="pat@foo.edu"), Rcpt(forward_path="jones@foo.edu"), Rcpt(forward_path="green@foo.edu")


def test_rfc2033_lmtp_per_recipient_replies() -> None:
    p = play([
        *lmtp_session(),
        C(Mail(reverse_path="chris@bar.com"), b"MAIL FROM:<chris@bar.com>\r\n"),
        S(R(250, "OK"), b"250 OK\r\n"),
        C(PAT, b"RCPT TO:<pat@foo.edu>\r\n"),
        S(R(250, "OK"), b"250 OK\r\n"),
        C(JONES, b"RCPT TO:<jones@foo.edu>\r\n"),
        S(R(550, "No such user here"), b"550 No such user here\r\n"),
        C(GREEN, b"RCPT TO:<green@foo.edu>\r\n"),
        S(R(250, "OK"), b"250 OK\r\n"),
        C(Data(), b"DATA\r\n"),
        S(R(354, "Start mail input; end with <CRLF>.<CRLF>"), b"354 Start mail input; end with <CRLF>.<CRLF>\r\n"),
        C(MessageData(data=BLAH), BLAH_WIRE),
        C(EndOfMessage(), b".\r\n", replies=2),
        S(R(250, "OK"), b"250 OK\r\n", recipient=PAT),
        S(R(452, "<green@foo.edu> is temporarily over quota"), b"452 <green@foo.edu> is temporarily over quota\r\n",
          recipient=GREEN),
        C(Quit(), b"QUIT\r\n"),
        S(R(221, "foo.edu closing connection"), b"221 foo.edu closing connection\r\n"),
    ], client_config=LMTP, server_config=LMTP)
    assert p.client.state is State.CLOSED and p.server.state is State.CLOSED


def test_lmtp_pipelined_and_session_moves_with_last_reply() -> None:
    p = play([
        *lmtp_session(),
        C(Mail(reverse_path="chris@bar.com"), b"MAIL FROM:<chris@bar.com>\r\n"),
        C(PAT, b"RCPT TO:<pat@foo.edu>\r\n"),
        C(GREEN, b"RCPT TO:<green@foo.edu>\r\n"),
        C(Data(), b"DATA\r\n"),
        S(R(250, "OK"), b"250 OK\r\n"),
        S(R(250, "OK"), b"250 OK\r\n"),
        S(R(250, "OK"), b"250 OK\r\n"),
        S(R(354, "go"), b"354 go\r\n"),
        C(MessageData(data=b"hi\r\n"), b"hi\r\n"),
        C(EndOfMessage(), b".\r\n", replies=2),
        S(R(250, "pat delivered", enhanced="2.1.5"), b"250 2.1.5 pat delivered\r\n", recipient=PAT),
    ], client_config=LMTP, server_config=LMTP)
    # One reply still owed: the transaction is not over yet on either side.
    assert p.server.reply_owed == EndOfMessage()
    assert p.client.state is State.DATA and p.server.state is State.DATA
    out = p.server.send(R(250, "green delivered"))
    assert events(p.client, out) == [R(250, "green delivered"), NEED_DATA]
    assert p.client.state is State.READY and p.server.state is State.READY


def lmtp_chunking_to_pat() -> list[C | S]:
    """An LMTP session offering CHUNKING, up to a transaction with pat accepted."""
    return [
        S(R(220, "foo.edu LMTP server ready"), b"220 foo.edu LMTP server ready\r\n"),
        C(Lhlo(domain="foo.edu"), b"LHLO foo.edu\r\n"),
        S(R(250, "foo.edu", "CHUNKING"), b"250-foo.edu\r\n250 CHUNKING\r\n"),
        C(Mail(reverse_path="chris@bar.com"), b"MAIL FROM:<chris@bar.com>\r\n"), S(R(250, "OK"), b"250 OK\r\n"),
        C(PAT, b"RCPT TO:<pat@foo.edu>\r\n"), S(R(250, "OK"), b"250 OK\r\n"),
    ]


def test_lmtp_bdat_last_gets_one_reply_per_recipient() -> None:
    p = play([
        *lmtp_chunking_to_pat(),
        C(GREEN, b"RCPT TO:<green@foo.edu>\r\n"), S(R(250, "OK"), b"250 OK\r\n"),
        C(Bdat(size=4, last=True), b"BDAT 4 LAST\r\n", replies=2),
        C(MessageData(data=b"hi\r\n"), b"hi\r\n", seen=[MessageData(data=b"hi\r\n"), EndOfMessage()]),
        C(EndOfMessage(), b"", seen=[]),
        S(R(250, "pat OK"), b"250 pat OK\r\n", recipient=PAT),
        S(R(550, "green full"), b"550 green full\r\n", recipient=GREEN, command=ANY),
    ], client_config=LMTP, server_config=LMTP)
    assert p.client.state is State.READY and p.server.state is State.READY


def test_lmtp_bdat_last_event_reused_for_the_next_message() -> None:
    """The LMTP fan-out of BDAT LAST's replies is keyed to the event; an
    application that sends one constant ``Bdat(size=0, last=True)`` for every
    message still gets one reply per recipient the second time (found by
    test_random_walk_peers_never_disagree)."""
    last = Bdat(size=0, last=True)
    p = play([
        *lmtp_chunking_to_pat(),
        C(last, b"BDAT 0 LAST\r\n", seen=[last, EndOfMessage()]),
        C(EndOfMessage(), b"", seen=[]),
        S(R(250, "pat OK"), b"250 pat OK\r\n", recipient=PAT, command=ANY),
        C(Mail(reverse_path="chris@bar.com"), b"MAIL FROM:<chris@bar.com>\r\n"), S(R(250, "OK"), b"250 OK\r\n"),
        C(PAT, b"RCPT TO:<pat@foo.edu>\r\n"), S(R(250, "OK"), b"250 OK\r\n"),
        C(GREEN, b"RCPT TO:<green@foo.edu>\r\n"), S(R(250, "OK"), b"250 OK\r\n"),
        C(last, b"BDAT 0 LAST\r\n", replies=2, seen=[last, EndOfMessage()]),
        C(EndOfMessage(), b"", seen=[]),
        S(R(250, "pat OK"), b"250 pat OK\r\n", recipient=PAT, command=ANY),
        S(R(250, "green OK"), b"250 green OK\r\n", recipient=GREEN, command=ANY),
    ], client_config=LMTP, server_config=LMTP)
    assert p.client.state is State.READY and p.server.state is State.READY


def test_end_of_data_reply_applied_with_a_bdat_last_pipelined_behind() -> None:
    """SMTP client: after the content of one message, the next transaction (MAIL,
    RCPT, BDAT LAST) may be pipelined before the 250 for the first arrives.  That
    250 must still end the first transaction; the BDAT LAST further back in the
    queue is no LMTP fan-out (it was taken for one, and the state stayed DATA)."""
    client = Connection(Role.CLIENT)
    events(client, b"220 mx ESMTP\r\n")
    client.send(Ehlo(domain="client.example"))
    events(client, b"250-mx\r\n250-PIPELINING\r\n250 CHUNKING\r\n")
    client.send(Mail(reverse_path="a@b.example"))
    client.send(Rcpt(forward_path="c@d.example"))
    client.send(Data())
    events(client, b"250 ok\r\n250 ok\r\n354 go\r\n")
    client.send(MessageData(data=b"Subject: one\r\n\r\nhi\r\n"))
    client.send(EndOfMessage())
    client.send(Mail(reverse_path="a@b.example"))
    second = Rcpt(forward_path="e@f.example")
    client.send(second)
    client.send(Bdat(size=4, last=True))
    client.send(MessageData(data=b"hi\r\n"))
    client.send(EndOfMessage())
    states = []
    for reply in (b"250 queued 1\r\n", b"250 ok\r\n", b"250 ok\r\n"):
        got = events(client, reply)
        assert isinstance(got[0], Reply) and got[0].code == 250
        states.append(client.state)
    assert states == [State.READY, State.MAIL, State.RCPT]
    assert client.recipients == (second,)
    got = events(client, b"250 queued 2\r\n")
    assert isinstance(got[0], Reply) and client.state is State.READY and client.recipients == ()


def test_lmtp_uses_lhlo_only() -> None:
    client = Connection(Role.CLIENT, LMTP)
    events(client, b"220 hi\r\n")
    for hello in (Ehlo(domain="foo.edu"), Helo(domain="foo.edu")):
        with pytest.raises(LocalProtocolError):
            client.send(hello)
    smtp_client = Connection(Role.CLIENT)
    events(smtp_client, b"220 hi\r\n")
    with pytest.raises(LocalProtocolError):
        smtp_client.send(Lhlo(domain="foo.edu"))
    server = Connection(Role.SERVER, LMTP)
    server.send(R(220, "hi"))
    got = serve(server, b"EHLO foo.edu\r\n")
    assert len(got) == 2 and isinstance(got[0], (InvalidCommand, UnknownCommand)) and got[0].reply.code == 500
    smtp_server = greeted_server(ehlo=None)
    got = serve(smtp_server, b"LHLO foo.edu\r\n")
    assert len(got) == 2 and isinstance(got[0], (InvalidCommand, UnknownCommand)) and got[0].reply.code == 500


def test_lmtp_pipelined_bdat_last_with_a_refused_recipient() -> None:
    server_config = client_config = Config(lmtp=True)
    p = play([
        S(R(220, "foo.edu LMTP server ready"), b"220 foo.edu LMTP server ready\r\n"),
        C(Lhlo(domain="foo.edu"), b"LHLO foo.edu\r\n"),
        S(R(250, "foo.edu", "PIPELINING", "CHUNKING"), b"250-foo.edu\r\n250-PIPELINING\r\n250 CHUNKING\r\n"),
        C(Mail(reverse_path="chris@bar.com"), b"MAIL FROM:<chris@bar.com>\r\n"),
        C(PAT, b"RCPT TO:<pat@foo.edu>\r\n"),
        C(JONES, b"RCPT TO:<jones@foo.edu>\r\n"),
        C(Bdat(size=4, last=True), b"BDAT 4 LAST\r\n"),
        C(MessageData(data=b"hi\r\n"), b"hi\r\n", seen=[MessageData(data=b"hi\r\n"), EndOfMessage()]),
        C(EndOfMessage(), b"", seen=[]),
        S(R(250, "OK"), b"250 OK\r\n"),
        S(R(250, "OK"), b"250 OK\r\n"),
        S(R(550, "No such user here"), b"550 No such user here\r\n"),
        # Only pat was accepted, so exactly one reply follows the content
        # (RFC 2033 section 4.2: one per *accepted* recipient).
        S(R(250, "pat delivered"), b"250 pat delivered\r\n", recipient=PAT),
    ], client_config=client_config, server_config=server_config)
    assert p.server.state is State.READY
    assert p.client.pending == ()
    assert p.client.state is State.READY


def test_client_sends_no_bdat_after_a_failed_chunk() -> None:
    p = play([
        CNRI_GREETING,
        C(Ehlo(domain="ymir.claremont.edu"), b"EHLO ymir.claremont.edu\r\n"),
        S(R(250, "cnri.reston.va.us", "CHUNKING"), b"250-cnri.reston.va.us\r\n250 CHUNKING\r\n"),
        C(Mail(reverse_path="Sam@Random.com"), b"MAIL FROM:<Sam@Random.com>\r\n"), S(R(250, "ok"), b"250 ok\r\n"),
        C(Rcpt(forward_path="Susan@Random.com"), b"RCPT TO:<Susan@Random.com>\r\n"), S(R(250, "ok"), b"250 ok\r\n"),
        C(Bdat(size=2), b"BDAT 2\r\n"),
        C(MessageData(data=b"ab"), b"ab"),
        S(R(552, "Message too big", enhanced="5.3.4"), b"552 5.3.4 Message too big\r\n"),
    ])
    # Our server would refuse any further chunk with 503 ...
    with pytest.raises(LocalProtocolError):
        p.client.send(Bdat(size=2, last=True))
    # ... and RSET is the way out.
    assert p.client.send(Rset()) == b"RSET\r\n"


def test_server_refuses_bdat_after_a_failed_chunk() -> None:
    server = greeted_server(ehlo=("mx.example.org", "CHUNKING"))
    for line in (b"MAIL FROM:<a@b.example>\r\n", b"RCPT TO:<c@d.example>\r\n"):
        events(server, line)
        server.send(R(250, "ok"))
    assert serve(server, b"BDAT 2\r\nab") == [Bdat(size=2), MessageData(data=b"ab"), PAUSED]
    server.send(R(552, "too big", enhanced="5.3.4"))
    got = serve(server, b"BDAT 3 LAST\r\nxyz")
    assert got == [Refused("BDAT", 503), PAUSED]  # drained, then refused
    server.send(got[0].reply)
    assert serve(server, b"RSET\r\n") == [Rset(), PAUSED]
    server.send(R(250, "ok"))
    assert server.state is State.READY


# ================================================================ limits seen in transcripts

def _in_data(server: Connection) -> None:
    for line, reply in ((b"MAIL FROM:<a@b.example>\r\n", R(250, "ok")), (b"RCPT TO:<c@d.example>\r\n", R(250, "ok")),
                        (b"DATA\r\n", R(354, "go"))):
        assert strip(events(server, line))[-1] is PAUSED
        server.send(reply)
    assert server.state is State.DATA


def test_data_line_of_1000_octets_is_accepted() -> None:
    server = greeted_server()
    _in_data(server)
    line = b"x" * 998 + b"\r\n"
    assert strip(events(server, line + b".\r\n")) == [MessageData(data=line), EndOfMessage(), PAUSED]


def test_data_line_over_1000_octets_is_rejected_at_the_end() -> None:
    server = greeted_server()
    _in_data(server)
    got = [e for e in strip(events(server, b"x" * 999 + b"\r\n.\r\n")) if not isinstance(e, MessageData)]
    assert len(got) == 2 and type(got[0]).__name__ == "MessageRejected" and got[0].reply.code == 500
    assert server.send(got[0].reply).startswith(b"500 5.5.2 ")
    assert server.state is State.READY


def test_data_line_limit_does_not_count_the_stuffed_dot() -> None:
    p = play(transaction())
    content = b"." + b"x" * 997 + b"\r\n"  # 1000 octets with its CRLF
    wire = p.client.send(MessageData(data=content)) + p.client.send(EndOfMessage())
    assert wire == b"." + content + b".\r\n"
    assert strip(events(p.server, wire)) == [MessageData(data=content), EndOfMessage(), PAUSED]


@pytest.mark.parametrize("command,wire", [(Vrfy(argument="jörg"), "VRFY jörg\r\n".encode()),
                                          (Expn(argument="bücher-liste"), "EXPN bücher-liste\r\n".encode())])
def test_utf8_vrfy_and_expn_after_smtputf8(command: Command, wire: bytes) -> None:
    play([*ready(("SMTPUTF8", "8BITMIME")), C(command, wire), S(R(252, "will try"), b"252 will try\r\n")])


def test_utf8_vrfy_needs_smtputf8() -> None:
    p = play(ready())
    with pytest.raises(LocalProtocolError):
        p.client.send(Vrfy(argument="jörg"))


def test_size_declared_over_the_advertised_limit() -> None:
    p = play(ready(("SIZE 100000",)))
    with pytest.raises(LocalProtocolError):
        p.client.send(Mail(reverse_path="a@b.example", params={"SIZE": "nope"}))
    got = serve(p.server, b"MAIL FROM:<a@b.example> SIZE=200000\r\n")
    assert len(got) == 2 and isinstance(got[0], InvalidCommand) and got[0].reply.code == 552
    p.server.send(got[0].reply)
    assert serve(p.server, b"MAIL FROM:<a@b.example> SIZE=100000\r\n") == [
        Mail(reverse_path="a@b.example", params={"SIZE": "100000"}), PAUSED]


def test_message_over_the_advertised_size_is_rejected() -> None:
    server = greeted_server(ehlo=("mx.example.org", "SIZE 65536"))
    _in_data(server)
    got = [e for e in strip(events(server, (b"x" * 98 + b"\r\n") * 700 + b".\r\n")) if not isinstance(e, MessageData)]
    assert len(got) == 2 and type(got[0]).__name__ == "MessageRejected" and got[0].reply.code == 552
    assert server.send(got[0].reply) == b"552 5.3.4 Error: message file too big\r\n"


def test_too_many_recipients_is_452_and_the_transaction_goes_on() -> None:
    config = Config(max_recipients=100)
    server = greeted_server(config)
    serve(server, b"MAIL FROM:<a@b.example>\r\n")
    server.send(R(250, "ok"))
    for i in range(100):
        assert serve(server, b"RCPT TO:<u%d@example.org>\r\n" % i) == [Rcpt(forward_path=f"u{i}@example.org"), PAUSED]
        server.send(R(250, "ok"))
    got = serve(server, b"RCPT TO:<one-too-many@example.org>\r\n")
    assert got == [Refused("RCPT", 452, "4.5.3"), PAUSED]
    server.send(got[0].reply)
    assert server.state is State.RCPT and len(server.recipients) == 100
    assert serve(server, b"DATA\r\n") == [Data(), PAUSED]


def test_client_refuses_recipients_over_its_limit() -> None:
    config = Config(max_recipients=100)
    steps = [*ready(("PIPELINING",)), C(Mail(reverse_path="a@b.example"), b"MAIL FROM:<a@b.example>\r\n")]
    p = play(steps, client_config=config, server_config=config)
    for i in range(100):
        p.client.send(Rcpt(forward_path=f"u{i}@example.org"))
    with pytest.raises(LocalProtocolError):
        p.client.send(Rcpt(forward_path="one-too-many@example.org"))


def test_error_budget_ends_in_421() -> None:
    config = Config(hard_error_limit=3, soft_error_limit=2, unknown_command_limit=100)
    server = greeted_server(config)
    for i in range(3):
        got = serve(server, b"RCPT TO:<a@b.example>\r\n")
        assert got == [Refused("RCPT", 503), PAUSED]
        server.send(got[0].reply)
        assert server.delay_advised == (i >= 1)
    server.receive_data(b"NOOP\r\n")
    with pytest.raises(RemoteProtocolError) as info:
        server.next_event()
    assert info.value.reply is not None and info.value.reply.code == 421
    assert server.send(info.value.reply) == b"421 4.7.0 Error: too many errors\r\n"
    with pytest.raises(LocalProtocolError):
        server.send(info.value.reply)  # only once


# ================================================================ more framing details

def test_param_keywords_are_case_insensitive() -> None:
    p = play([*ready(MAIL_PARAM_CAPS),
              C(Mail(reverse_path="a@b.example", params={"size": "1000", "Body": "8BITMIME"}),
                b"MAIL FROM:<a@b.example> SIZE=1000 BODY=8BITMIME\r\n"),
              S(R(250, "ok"), b"250 ok\r\n")])
    assert dict(p.server_events[-1].params) == {"SIZE": "1000", "BODY": "8BITMIME"}
    server = greeted_server(ehlo=("mx.example.org", *MAIL_PARAM_CAPS))
    assert serve(server, b"MAIL FROM:<a@b.example> size=1000 body=8BITMIME\r\n") == [
        Mail(reverse_path="a@b.example", params={"SIZE": "1000", "BODY": "8BITMIME"}), PAUSED]


BIG_SASL = bytes(range(256)) * 30  # 7680 octets -> 10240 base64 characters, as XOAUTH2/GSSAPI tokens can be


def test_auth_response_line_up_to_12288_octets() -> None:
    """RFC 4954 section 4: AUTH lines may be 12288 octets, far past 512."""
    assert 512 < len(b64(BIG_SASL)) + 2 <= 12288
    p = play([*auth_ready(), C(Auth(mechanism="PLAIN"), b"AUTH PLAIN\r\n"),
              S(R(334, ""), b"334 \r\n"),
              C(AuthResponse(data=BIG_SASL), b64(BIG_SASL) + b"\r\n"),
              S(R(535, "no", enhanced="5.7.8"), b"535 5.7.8 no\r\n")], tls_active=True)
    assert p.server_events[-1] == AuthResponse(data=BIG_SASL)


def test_client_refuses_auth_lines_over_12288_octets() -> None:
    p = play(auth_ready(), tls_active=True)
    with pytest.raises(LocalProtocolError):
        p.client.send(Auth(mechanism="PLAIN", initial_response=b"x" * 9300))  # 12400 base64 characters
    assert p.client.pending == ()


def test_auth_initial_response_line_up_to_12288_octets() -> None:
    """Our server accepts an AUTH command line up to 12288 octets (clients such
    as XOAUTH2 senders use long initial responses) ..."""
    wire = b"AUTH PLAIN " + b64(BIG_SASL) + b"\r\n"
    assert 2048 < len(wire) <= 12288
    p = play([*auth_ready(), C(Auth(mechanism="PLAIN"), b"AUTH PLAIN\r\n"),
              S(R(334, ""), b"334 \r\n")], tls_active=True)
    server = Connection(Role.SERVER, Config(), tls_active=True)
    server.send(Reply(code=220, lines=["mx"]))
    events(server, b"EHLO c.example\r\n")
    server.send(Reply(code=250, lines=["mx", "AUTH PLAIN"]))
    assert events(server, wire) == [Auth(mechanism="PLAIN", initial_response=BIG_SASL), PAUSED]
    assert p.client.state is State.AUTH


def test_client_keeps_auth_command_within_the_line_limit() -> None:
    """... but our client, per RFC 4954 §4, never sends an AUTH command longer
    than the SMTP command line limit: the long response goes after the 334."""
    p = play([*auth_ready()], tls_active=True)
    with pytest.raises(LocalProtocolError, match="RFC 4954"):
        p.client.send(Auth(mechanism="PLAIN", initial_response=BIG_SASL))
    assert p.client.pending == ()


def test_client_data_after_starttls_220_is_an_error() -> None:
    """T-06: bytes after the 220 to STARTTLS are never parsed as replies."""
    p = play([*ready(("STARTTLS",)), C(StartTLS(), b"STARTTLS\r\n")])
    p.client.receive_data(b"220 go ahead\r\n250 injected\r\n")
    seen = []
    with pytest.raises(RemoteProtocolError):
        for _ in range(4):
            seen.append(p.client.next_event())
    assert R(250, "injected") not in seen
    assert p.client.state is State.ERROR
    with pytest.raises(LocalProtocolError):
        p.client.tls_established()


def test_client_reply_split_across_reads() -> None:
    p = play([*ready(), C(Noop(), b"NOOP\r\n")])
    assert events(p.client, b"250-first\r") == [NEED_DATA]
    assert events(p.client, b"\n250") == [NEED_DATA]
    assert events(p.client, b" last\r\n") == [R(250, "first", "last"), NEED_DATA]


def test_server_command_split_across_reads() -> None:
    server = greeted_server()
    assert events(server, b"MAIL FR") == [NEED_DATA]
    assert events(server, b"OM:<a@b.example>\r") == [NEED_DATA]
    assert events(server, b"\n") == [Mail(reverse_path="a@b.example"), PAUSED]


def test_pipelined_replies_pair_with_their_commands() -> None:
    p = play([*ready(("PIPELINING",))])
    sent = [Mail(reverse_path="a@b.example"), Rcpt(forward_path="c@d.example"), Rcpt(forward_path="e@f.example"),
            Data()]
    wire = b"".join(p.client.send(c) for c in sent)
    assert p.client.pending == tuple(sent)
    assert p.client.our_state is State.DATA and p.client.state is State.READY
    got = events(p.client, b"250 ok\r\n550 no\r\n250 ok\r\n354 go\r\n")
    assert [r.command for r in got[:-1]] == sent
    assert p.client.state is State.DATA and p.client.recipients == (Rcpt(forward_path="e@f.example"),)
    assert strip(events(p.server, wire))[0] == sent[0]


def test_rset_may_be_pipelined_and_clears_the_transaction() -> None:
    p = play([
        *ready(("PIPELINING",)),
        C(Mail(reverse_path="a@b.example"), b"MAIL FROM:<a@b.example>\r\n"),
        C(Rcpt(forward_path="c@d.example"), b"RCPT TO:<c@d.example>\r\n"),
        C(Rset(), b"RSET\r\n"),
        C(Mail(reverse_path=""), b"MAIL FROM:<>\r\n"),
        S(R(250, "ok"), b"250 ok\r\n"),
        S(R(250, "ok"), b"250 ok\r\n"),
        S(R(250, "reset"), b"250 reset\r\n"),
        S(R(250, "ok"), b"250 ok\r\n"),
    ])
    for conn in (p.client, p.server):
        assert conn.state is State.MAIL and conn.recipients == ()


@pytest.mark.parametrize("address", ['a@[x-tag:a"b]', "a@[x-tag:a>b]"])
def test_general_literal_with_quote_or_angle(address: str) -> None:
    wire = f"MAIL FROM:<{address}>\r\n".encode()
    play([*ready(), C(Mail(reverse_path=address), wire), S(R(250, "ok"), b"250 ok\r\n")])


def test_reply_text_that_looks_like_an_enhanced_code() -> None:
    play([*ready(), C(Noop(), b"NOOP\r\n"), S(R(250, "2.1.0 Ok"), b"250 2.1.0 Ok\r\n")])


def test_our_state_and_their_state() -> None:
    p = play([*ready(("PIPELINING",))])
    p.client.send(Mail(reverse_path="a@b.example"))
    wire = p.client.send(Rcpt(forward_path="c@d.example"))
    # The client: its own commands will take the session to RCPT; the replies so far say READY.
    assert (p.client.our_state, p.client.their_state) == (State.RCPT, State.READY)
    p.server.receive_data(b"MAIL FROM:<a@b.example>\r\n" + wire)
    assert p.server.next_event() == Mail(reverse_path="a@b.example")
    # The server: its replies say READY; the client's pending MAIL would make it MAIL.
    assert (p.server.our_state, p.server.their_state) == (State.READY, State.MAIL)
    assert p.server.more_input_buffered
    p.server.send(R(250, "ok"))
    assert p.server.next_event() == Rcpt(forward_path="c@d.example")
    assert not p.server.more_input_buffered
    assert (p.server.our_state, p.server.their_state) == (State.MAIL, State.RCPT)


def test_parsed_reply_builds_what_the_constructor_builds() -> None:
    """The core makes the replies it parsed field by field, skipping Reply's
    checks; a field added to Reply and not set there shows up here."""
    from dataclasses import fields

    from smtpproto._connection import _parsed_reply

    rcpt = Rcpt(forward_path="c@d.example")
    made = _parsed_reply(250, ("2.1.5 Ok", "more"), "2.1.5", rcpt, rcpt)
    expected = Reply(code=250, lines=("2.1.5 Ok", "more"), enhanced_status="2.1.5", command=rcpt, recipient=rcpt)
    assert made == expected
    assert [getattr(made, f.name) for f in fields(Reply)] == [getattr(expected, f.name) for f in fields(Reply)]
