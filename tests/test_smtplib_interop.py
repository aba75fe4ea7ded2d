"""Interop in memory: real SMTP clients (stdlib ``smtplib``, ``aiosmtplib``)
against our server :class:`Connection` over ``socket.socketpair()``.

A small thread runs the least possible server loop (recv -> receive_data ->
next_event -> reply -> sendall); it accepts everything except the recipients
it is told to refuse, and records what arrives.  Every socket has a timeout, so
a protocol mistake fails the test in seconds instead of hanging it.
"""

from __future__ import annotations

import asyncio
import email.message
import smtplib
import socket
import threading
from dataclasses import dataclass, field
from typing import Any

import pytest

from smtpproto import (
    NEED_DATA,
    PAUSED,
    Auth,
    AuthResponse,
    Bdat,
    Config,
    Connection,
    ConnectionClosed,
    Data,
    Ehlo,
    EndOfMessage,
    Expn,
    Helo,
    Help,
    InvalidCommand,
    Mail,
    MessageData,
    MessageRejected,
    Noop,
    Quit,
    Rcpt,
    RemoteProtocolError,
    Reply,
    Role,
    Rset,
    State,
    UnknownCommand,
    Vrfy,
)

TIMEOUT = 5.0
CAPS = ("SIZE 10485760", "PIPELINING", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "HELP")


@dataclass
class Delivered:
    reverse_path: str
    mail_params: dict[str, Any]
    recipients: list[str]
    data: bytes


@dataclass
class Server:
    """Our server Connection behind one end of a socketpair, in a thread."""

    sock: socket.socket
    refuse: frozenset[str] = frozenset()
    caps: tuple[str, ...] = CAPS
    config: Config | None = None
    messages: list[Delivered] = field(default_factory=list)
    commands: list[Any] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    final_state: State | None = None

    def start(self) -> threading.Thread:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self._thread

    def finish(self) -> "Server":
        """Wait for the server loop to end (the client quit and closed)."""
        self._thread.join(TIMEOUT)
        assert not self._thread.is_alive(), "server thread did not finish"
        return self

    def _reply(self, ev: Any, tx: dict[str, Any]) -> Reply | None:
        if isinstance(ev, Ehlo):
            return Reply(code=250, lines=("mx.example.org Hello " + ev.domain, *self.caps))
        if isinstance(ev, Helo):
            return Reply(code=250, lines=("mx.example.org",))
        if isinstance(ev, Mail):
            tx.update(mail=ev, rcpts=[], data=[])
            return Reply(code=250, lines=("Ok",), enhanced_status="2.1.0")
        if isinstance(ev, Rcpt):
            if ev.forward_path in self.refuse:
                return Reply(code=550, lines=(f"<{ev.forward_path}>: Recipient address rejected",),
                             enhanced_status="5.1.1")
            tx["rcpts"].append(ev.forward_path)
            return Reply(code=250, lines=("Ok",), enhanced_status="2.1.5")
        if isinstance(ev, (Data,)):
            return Reply(code=354, lines=("End data with <CR><LF>.<CR><LF>",))
        if isinstance(ev, Bdat):
            return None if ev.last else Reply(code=250, lines=(f"{ev.size} octets received",))
        if isinstance(ev, MessageData):
            tx["data"].append(ev.data)
            return None
        if isinstance(ev, EndOfMessage):
            mail = tx["mail"]
            self.messages.append(Delivered(mail.reverse_path, dict(mail.params), list(tx["rcpts"]),
                                           b"".join(tx["data"])))
            return Reply(code=250, lines=("Ok: queued as 4F2C1",), enhanced_status="2.0.0")
        if isinstance(ev, Rset):
            tx.clear()
            return Reply(code=250, lines=("Ok",), enhanced_status="2.0.0")
        if isinstance(ev, Noop):
            return Reply(code=250, lines=("Ok",), enhanced_status="2.0.0")
        if isinstance(ev, Vrfy):
            return Reply(code=252, lines=(f"{ev.argument}: cannot VRFY, but will try delivery",),
                         enhanced_status="2.0.0")
        if isinstance(ev, Expn):
            return Reply(code=502, lines=("EXPN not available",), enhanced_status="5.5.1")
        if isinstance(ev, Help):
            return Reply(code=214, lines=("Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP",
                                          "End of HELP info"), enhanced_status="2.0.0")
        if isinstance(ev, Quit):
            return Reply(code=221, lines=("Bye",), enhanced_status="2.0.0")
        if isinstance(ev, Auth):
            return self._auth(ev.mechanism, ev.initial_response, tx)
        if isinstance(ev, AuthResponse):
            if ev.cancelled:
                return Reply(code=501, lines=("Authentication aborted",), enhanced_status="5.0.0")
            return self._auth(tx.pop("auth_mechanism"), ev.data, tx)
        if isinstance(ev, (InvalidCommand, UnknownCommand, MessageRejected)):
            return ev.reply
        raise AssertionError(f"unexpected event {ev!r}")

    def _auth(self, mechanism: str, data: bytes | None, tx: dict[str, Any]) -> Reply:
        """PLAIN and LOGIN for user "tim", password "tanstaaf"."""
        ok = Reply(code=235, lines=("Authentication successful",), enhanced_status="2.7.0")
        bad = Reply(code=535, lines=("Authentication credentials invalid",), enhanced_status="5.7.8")
        if mechanism == "PLAIN":
            if data is None:
                tx["auth_mechanism"] = "PLAIN"
                return Reply(code=334, lines=("",))
            return ok if data in (b"\0tim\0tanstaaf", b"tim\0tim\0tanstaaf") else bad
        # LOGIN: username (possibly as the initial response), then password.
        if data is None:
            tx["auth_mechanism"] = "LOGIN"
            return Reply(code=334, lines=("VXNlcm5hbWU6",))
        if "login_user" not in tx:
            tx["login_user"] = data
            tx["auth_mechanism"] = "LOGIN"
            return Reply(code=334, lines=("UGFzc3dvcmQ6",))
        return ok if (tx.pop("login_user"), data) == (b"tim", b"tanstaaf") else bad

    def _run(self) -> None:
        conn = Connection(Role.SERVER, self.config)
        sock = self.sock
        sock.settimeout(TIMEOUT)
        tx: dict[str, Any] = {}
        try:
            sock.sendall(conn.send(Reply(code=220, lines=("mx.example.org ESMTP smtpproto",))))
            while conn.state not in (State.CLOSED, State.ERROR):
                try:
                    ev = conn.next_event()
                except RemoteProtocolError as exc:
                    self.errors.append(exc)
                    if exc.reply is not None:
                        sock.sendall(conn.send(exc.reply))
                    break
                if ev is NEED_DATA:
                    conn.receive_data(sock.recv(65536))
                    continue
                if ev is PAUSED:
                    raise AssertionError("server paused with no reply owed")
                if isinstance(ev, ConnectionClosed):
                    break
                self.commands.append(ev)
                reply = self._reply(ev, tx)
                if reply is not None:
                    sock.sendall(conn.send(reply))
        except BaseException as exc:  # recorded; the test asserts there were none
            self.errors.append(exc)
        finally:
            self.final_state = conn.state
            sock.close()


@pytest.fixture
def pair():
    """(client socket, Server) with the server thread running; checks on exit
    that the thread ended and saw no unexpected error."""
    ours, theirs = socket.socketpair()
    ours.settimeout(TIMEOUT)
    theirs.settimeout(TIMEOUT)
    servers: list[tuple[Server, threading.Thread]] = []

    def make(**kwargs: Any) -> tuple[socket.socket, Server]:
        server = Server(ours, **kwargs)
        servers.append((server, server.start()))
        return theirs, server

    yield make
    theirs.close()
    for server, thread in servers:
        thread.join(TIMEOUT)
        assert not thread.is_alive(), "server thread did not finish"


class PairSMTP(smtplib.SMTP):
    """smtplib.SMTP talking over an already-connected socket."""

    def __init__(self, sock: socket.socket) -> None:
        self._pair_sock = sock
        super().__init__("mx.example.org", 25, local_hostname="client.example.com", timeout=TIMEOUT)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:  # type: ignore[override]
        return self._pair_sock


def message(subject: str = "Hello", body: str = "Hi there,\nthis is a test.\n") -> email.message.EmailMessage:
    msg = email.message.EmailMessage()
    msg["From"] = "alice@example.com"
    msg["To"] = "bob@example.org"
    msg["Subject"] = subject
    msg.set_content(body)
    return msg


def test_smtplib_send_message(pair: Any) -> None:
    sock, server = pair()
    msg = message()
    with PairSMTP(sock) as smtp:
        code, _ = smtp.ehlo()
        assert code == 250
        assert smtp.has_extn("pipelining") and smtp.has_extn("smtputf8")
        assert smtp.send_message(msg) == {}
    server.finish()
    assert not server.errors
    assert server.final_state is State.CLOSED
    (got,) = server.messages
    assert got.reverse_path == "alice@example.com"
    assert got.recipients == ["bob@example.org"]
    assert got.data == msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


def test_smtplib_sendmail_multiple_recipients(pair: Any) -> None:
    sock, server = pair()
    rcpts = ["bob@example.org", "carol@example.org", "dave@[192.0.2.7]", "Postmaster"]
    body = b"Subject: many\r\n\r\nfor everyone\r\n"
    with PairSMTP(sock) as smtp:
        assert smtp.sendmail("alice@example.com", rcpts, body) == {}
        # A second transaction on the same session.
        assert smtp.sendmail("", ["bob@example.org"], b"Subject: bounce\r\n\r\nnull sender\r\n") == {}
    server.finish()
    assert not server.errors
    first, second = server.messages
    assert first.recipients == rcpts and first.data == body
    assert second.reverse_path == "" and second.recipients == ["bob@example.org"]
    assert second.data == b"Subject: bounce\r\n\r\nnull sender\r\n"


def test_smtplib_lines_beginning_with_dots(pair: Any) -> None:
    sock, server = pair()
    body = (b"Subject: dots\r\n\r\n.\r\n..\r\n.leading dot\r\n...three\r\nmiddle . dot\r\n"
            b"\r\n.\r\nlast line without newline.")
    with PairSMTP(sock) as smtp:
        assert smtp.sendmail("alice@example.com", ["bob@example.org"], body) == {}
    server.finish()
    assert not server.errors
    (got,) = server.messages
    # smtplib adds the final CRLF; every dot comes back exactly as sent.
    assert got.data == body + b"\r\n"


def test_smtplib_bare_newlines_are_normalized_by_smtplib(pair: Any) -> None:
    sock, server = pair()
    with PairSMTP(sock) as smtp:
        assert smtp.sendmail("alice@example.com", ["bob@example.org"], "Subject: lf\n\nunix\nlines\n.\n") == {}
    server.finish()
    assert not server.errors
    assert server.messages[0].data == b"Subject: lf\r\n\r\nunix\r\nlines\r\n.\r\n"


def test_smtplib_smtputf8(pair: Any) -> None:
    sock, server = pair()
    body = "Subject: Grüße\r\nFrom: jörg@bücher.example\r\n\r\nHallo Ünsal!\r\n".encode()
    with PairSMTP(sock) as smtp:
        refused = smtp.sendmail("jörg@bücher.example", ["ünsal@example.org"], body,
                                mail_options=["SMTPUTF8", "BODY=8BITMIME"])
        assert refused == {}
    server.finish()
    assert not server.errors
    (got,) = server.messages
    assert got.reverse_path == "jörg@bücher.example"
    assert got.recipients == ["ünsal@example.org"]
    assert got.mail_params == {"SMTPUTF8": None, "BODY": "8BITMIME", "SIZE": str(len(body))}
    assert got.data == body


def test_smtplib_utf8_address_without_smtputf8_is_refused(pair: Any) -> None:
    sock, server = pair()
    with PairSMTP(sock) as smtp:
        smtp.ehlo()
        smtp.command_encoding = "utf-8"  # smtplib would refuse to encode it otherwise
        code, text = smtp.mail("jörg@bücher.example")
        assert code == 553
        assert smtp.rset()[0] == 250
    server.finish()
    assert not server.errors
    assert server.messages == []


def test_smtplib_noop_rset_verify_help(pair: Any) -> None:
    sock, server = pair()
    with PairSMTP(sock) as smtp:
        smtp.ehlo()
        assert smtp.noop() == (250, b"2.0.0 Ok")
        assert smtp.rset() == (250, b"2.0.0 Ok")
        code, text = smtp.verify("postmaster")
        assert code == 252 and b"cannot VRFY" in text
        help_text = smtp.help()
        assert help_text.startswith(b"2.0.0 Commands: EHLO")
        assert smtp.expn("staff")[0] == 502
        assert smtp.docmd("FROB")[0] == 500
    server.finish()
    assert not server.errors
    kinds = [type(e).__name__ for e in server.commands]
    assert kinds == ["Ehlo", "Noop", "Rset", "Vrfy", "Help", "Expn", "UnknownCommand", "Quit"]


def test_smtplib_helo_only(pair: Any) -> None:
    sock, server = pair()
    with PairSMTP(sock) as smtp:
        assert smtp.helo()[0] == 250
        assert smtp.sendmail("alice@example.com", ["bob@example.org"], b"Subject: helo\r\n\r\nx\r\n") == {}
    server.finish()
    assert not server.errors
    assert server.messages[0].data == b"Subject: helo\r\n\r\nx\r\n"


def test_smtplib_rejected_recipient_partial_failure(pair: Any) -> None:
    sock, server = pair(refuse=frozenset({"mallory@example.org"}))
    with PairSMTP(sock) as smtp:
        refused = smtp.sendmail("alice@example.com", ["bob@example.org", "mallory@example.org"],
                                b"Subject: partial\r\n\r\nsome get it\r\n")
    assert refused == {"mallory@example.org": (550, b"5.1.1 <mallory@example.org>: Recipient address rejected")}
    server.finish()
    assert not server.errors
    (got,) = server.messages
    assert got.recipients == ["bob@example.org"]


def test_smtplib_all_recipients_refused(pair: Any) -> None:
    sock, server = pair(refuse=frozenset({"mallory@example.org", "eve@example.org"}))
    with PairSMTP(sock) as smtp:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
            smtp.sendmail("alice@example.com", ["mallory@example.org", "eve@example.org"], b"x\r\n")
        assert set(info.value.recipients) == {"mallory@example.org", "eve@example.org"}
        # The session goes on after smtplib's RSET.
        assert smtp.sendmail("alice@example.com", ["bob@example.org"], b"Subject: next\r\n\r\nok\r\n") == {}
    server.finish()
    assert not server.errors
    assert [m.recipients for m in server.messages] == [["bob@example.org"]]


def test_smtplib_sender_refused_for_unadvertised_parameter(pair: Any) -> None:
    sock, server = pair(caps=("PIPELINING",))
    with PairSMTP(sock) as smtp:
        smtp.ehlo()
        code, _ = smtp.mail("alice@example.com", ["SIZE=100"])
        assert code >= 500
        assert smtp.mail("alice@example.com")[0] == 250
        assert smtp.rset()[0] == 250
    server.finish()
    assert not server.errors


def test_smtplib_size_over_limit(pair: Any) -> None:
    sock, server = pair(caps=("SIZE 70000",))
    with PairSMTP(sock) as smtp:
        smtp.ehlo()
        with pytest.raises(smtplib.SMTPSenderRefused) as info:
            # smtplib declares SIZE=80002 itself, since SIZE is advertised.
            smtp.sendmail("alice@example.com", ["bob@example.org"], b"x" * 80000 + b"\r\n")
        assert info.value.smtp_code == 552
        assert smtp.noop()[0] == 250
    server.finish()
    assert not server.errors


AUTH_CONFIG = Config(allow_auth_without_tls=True)  # the socketpair stands in for a TLS channel


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_smtplib_login(pair: Any, mechanism: str) -> None:
    sock, server = pair(caps=("PIPELINING", f"AUTH {mechanism}"), config=AUTH_CONFIG)
    with PairSMTP(sock) as smtp:
        smtp.ehlo()
        assert smtp.login("tim", "tanstaaf") == (235, b"2.7.0 Authentication successful")
        assert smtp.sendmail("tim@example.com", ["bob@example.org"], b"Subject: authed\r\n\r\nhi\r\n") == {}
    server.finish()
    assert not server.errors
    assert [type(e).__name__ for e in server.commands if isinstance(e, (Auth, AuthResponse))] == (
        ["Auth"] if mechanism == "PLAIN" else ["Auth", "AuthResponse"])
    assert server.messages[0].recipients == ["bob@example.org"]


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_smtplib_login_refused(pair: Any, mechanism: str) -> None:
    sock, server = pair(caps=("PIPELINING", f"AUTH {mechanism}"), config=AUTH_CONFIG)
    with PairSMTP(sock) as smtp:
        smtp.ehlo()
        with pytest.raises(smtplib.SMTPAuthenticationError) as info:
            smtp.login("tim", "wrong")
        assert info.value.smtp_code == 535
        assert smtp.noop()[0] == 250  # the session goes on
    server.finish()
    assert not server.errors


def test_smtplib_login_without_initial_response(pair: Any) -> None:
    sock, server = pair(caps=("AUTH PLAIN",), config=AUTH_CONFIG)
    with PairSMTP(sock) as smtp:
        smtp.ehlo()
        smtp.user, smtp.password = "tim", "tanstaaf"
        code, _ = smtp.auth("PLAIN", smtp.auth_plain, initial_response_ok=False)
        assert code == 235
    server.finish()
    assert not server.errors
    assert [type(e).__name__ for e in server.commands][:3] == ["Ehlo", "Auth", "AuthResponse"]


# ---------------------------------------------------------------- aiosmtplib

aiosmtplib = pytest.importorskip("aiosmtplib")


async def _aiosend(sock: socket.socket, msg: email.message.EmailMessage, **kwargs: Any) -> Any:
    smtp = aiosmtplib.SMTP(sock=sock, local_hostname="client.example.com", timeout=TIMEOUT,
                           start_tls=False, use_tls=False)
    async with smtp:
        result = await smtp.send_message(msg, **kwargs)
        noop = await smtp.noop()
    return result, noop


def test_aiosmtplib_send_message(pair: Any) -> None:
    sock, server = pair()
    msg = message(subject="async", body="from aiosmtplib\n.dot line\n")
    errors, noop = asyncio.run(asyncio.wait_for(_aiosend(sock, msg), TIMEOUT * 2))
    assert errors[0] == {}
    assert noop.code == 250
    server.finish()
    assert not server.errors
    (got,) = server.messages
    assert got.recipients == ["bob@example.org"]
    assert got.data.endswith(b"from aiosmtplib\r\n.dot line\r\n")
    assert b"Subject: async\r\n" in got.data


def test_aiosmtplib_multiple_recipients_one_refused(pair: Any) -> None:
    sock, server = pair(refuse=frozenset({"mallory@example.org"}))
    msg = message(subject="partial")
    errors, _ = asyncio.run(asyncio.wait_for(
        _aiosend(sock, msg, recipients=["bob@example.org", "mallory@example.org", "carol@example.org"]),
        TIMEOUT * 2))
    assert set(errors[0]) == {"mallory@example.org"}
    assert errors[0]["mallory@example.org"].code == 550
    server.finish()
    assert not server.errors
    (got,) = server.messages
    assert got.recipients == ["bob@example.org", "carol@example.org"]


def test_aiosmtplib_login(pair: Any) -> None:
    sock, server = pair(caps=("PIPELINING", "AUTH LOGIN PLAIN"), config=AUTH_CONFIG)

    async def go() -> Any:
        smtp = aiosmtplib.SMTP(sock=sock, local_hostname="client.example.com", timeout=TIMEOUT,
                               start_tls=False, use_tls=False)
        async with smtp:
            login = await smtp.login("tim", "tanstaaf")
            sent = await smtp.send_message(message(subject="authed"))
        return login, sent

    login, sent = asyncio.run(asyncio.wait_for(go(), TIMEOUT * 2))
    assert login.code == 235 and sent[0] == {}
    server.finish()
    assert not server.errors
    assert any(isinstance(e, Auth) for e in server.commands)


def test_aiosmtplib_smtputf8(pair: Any) -> None:
    sock, server = pair()
    msg = email.message.EmailMessage()
    msg["From"] = "jörg@bücher.example"
    msg["To"] = "ünsal@example.org"
    msg["Subject"] = "Grüße"
    msg.set_content("Hallo!\n")
    errors, _ = asyncio.run(asyncio.wait_for(_aiosend(sock, msg), TIMEOUT * 2))
    assert errors[0] == {}
    server.finish()
    assert not server.errors
    (got,) = server.messages
    assert got.reverse_path == "jörg@bücher.example" and got.recipients == ["ünsal@example.org"]
    assert "SMTPUTF8" in got.mail_params
