"""Loopback servers and helpers for the client tests (imported by the
test_client_* modules; the few tests here check the helpers themselves).

* :func:`aiosmtpd_server` — aiosmtpd's threaded Controller with a handler that
  records every envelope and the exact content it received;
* :class:`CoreServer` — our own server :class:`~smtpproto.Connection` driven
  over a real socket in a thread, with the extensions and refusals a test asks
  for; it counts how many times it flushed replies (round trips);
* :class:`ScriptedServer` — a thread that runs a function against the accepted
  socket (hostile servers: injection, silence, unsolicited replies);
* :func:`run_flavor` — runs one async scenario with the blocking, asyncio or
  trio client, so every facade gets the same tests.

Every socket has a timeout, so nothing here can hang a test run.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import ssl
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator

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
    Helo,
    InvalidCommand,
    Lhlo,
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
    StartTLS,
    State,
    UnknownCommand,
)

IO_TIMEOUT = 10.0
try:
    import trio as _trio  # noqa: F401

    HAVE_TRIO = True
except ImportError:  # the trio client is an optional extra
    HAVE_TRIO = False
FLAVORS = ["blocking", "asyncio",
           pytest.param("trio", marks=pytest.mark.skipif(
               not HAVE_TRIO, reason="trio is not installed (pip install 'smtpproto[trio]')"))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------ certificates


@dataclass
class Cert:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(self.cert), str(self.key))
        return ctx

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))


def make_cert(directory: Path) -> Cert:
    """A self-signed certificate for localhost / 127.0.0.1, made with openssl."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl not found: cannot make a test certificate")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60)
    return Cert(cert, key)


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> Cert:
    return make_cert(tmp_path_factory.mktemp("tls"))


# ------------------------------------------------------------------ aiosmtpd


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    mail_options: list[str]
    smtp_utf8: bool


class RecordingHandler:
    """aiosmtpd handler: refuses the recipients in ``refuse``, records the rest."""

    def __init__(self, refuse: set[str] | None = None, data_reply: str = "250 2.0.0 Message accepted") -> None:
        self.refuse = refuse or set()
        self.data_reply = data_reply
        self.messages: list[Received] = []
        self.auth_seen: list[tuple[str, str]] = []

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]) -> str:
        if address in self.refuse:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content or envelope.content),
                                      list(envelope.mail_options), bool(envelope.smtp_utf8)))
        return self.data_reply


def _authenticator(users: dict[str, str]) -> Any:
    from aiosmtpd.smtp import AuthResult, LoginPassword

    def check(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        if isinstance(data, LoginPassword):
            user, password = data.login.decode(), data.password.decode()
            if users.get(user) == password:
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    return check


@contextlib.contextmanager
def aiosmtpd_server(handler: RecordingHandler | None = None, **kwargs: Any) -> Iterator[tuple[int, RecordingHandler]]:
    """An aiosmtpd Controller on a free loopback port (kwargs go to aiosmtpd)."""
    from aiosmtpd.controller import Controller

    handler = handler or RecordingHandler()
    users = kwargs.pop("users", None)
    if users is not None:
        kwargs["authenticator"] = _authenticator(users)
    last: Exception | None = None
    for _ in range(5):
        port = free_port()
        controller = Controller(handler, hostname="127.0.0.1", port=port, ready_timeout=10, **kwargs)
        try:
            controller.start()
        except Exception as exc:  # port raced away: try another
            last = exc
            continue
        try:
            yield port, handler
        finally:
            controller.stop()
        return
    raise RuntimeError(f"aiosmtpd did not start: {last}")


# ------------------------------------------------------------------ our core server


@dataclass
class CoreMessage:
    sender: str
    mail_params: dict[str, str | None]
    recipients: list[str]
    content: bytes
    via: str  # "DATA" or "BDAT"


@dataclass
class CoreServer:
    """Our own server Connection on a loopback socket, one thread per connection.

    ``extensions`` are the EHLO keywords to advertise; ``refuse`` recipients
    get 550; with ``lmtp`` each recipient in ``lmtp_fail`` gets 452 after the
    data.  ``flushes`` counts reply batches written after the greeting (the
    client's round trips); ``commands`` the command events seen.
    """

    extensions: list[str] = field(default_factory=lambda: ["PIPELINING", "8BITMIME", "SIZE 10485760"])
    refuse: set[str] = field(default_factory=set)
    refuse_senders: set[str] = field(default_factory=set)
    lmtp: bool = False
    lmtp_fail: set[str] = field(default_factory=set)
    cert: Cert | None = None
    implicit_tls: bool = False
    data_reply: Reply = field(default_factory=lambda: Reply(code=250, lines=("queued",), enhanced_status="2.0.0"))
    messages: list[CoreMessage] = field(default_factory=list)
    flushes: list[int] = field(default_factory=list)
    commands: list[object] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    users: dict[str, str] = field(default_factory=dict)
    unix_path: str | None = None  # listen on a UNIX socket instead of loopback TCP

    def __post_init__(self) -> None:
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._tls_socks: list[socket.socket] = []
        self.port = 0

    # -- lifecycle
    def __enter__(self) -> "CoreServer":
        if self.unix_path is not None:
            self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self._listener.bind(self.unix_path)
        else:
            self._listener = socket.socket()
            self._listener.bind(("127.0.0.1", 0))
            self.port = self._listener.getsockname()[1]
        self._listener.listen(8)
        self._listener.settimeout(0.2)
        t = threading.Thread(target=self._accept_loop, daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in list(self._threads):
            t.join(IO_TIMEOUT + 2)
        if self._listener is not None:
            self._listener.close()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            t = threading.Thread(target=self.serve, args=(sock,), daemon=True)
            t.start()
            self._threads.append(t)

    def serve_in_thread(self, sock: socket.socket) -> threading.Thread:
        t = threading.Thread(target=self.serve, args=(sock,), daemon=True)
        t.start()
        self._threads.append(t)
        return t

    # -- one session
    def serve(self, sock: socket.socket) -> None:
        sock.settimeout(IO_TIMEOUT)
        try:
            if self.implicit_tls:
                assert self.cert is not None
                sock = self.cert.server_context().wrap_socket(sock, server_side=True)
            self._session(sock)
        except BaseException as exc:  # recorded for the test to inspect
            self.errors.append(exc)
        finally:
            sock.close()
            while self._tls_socks:
                self._tls_socks.pop().close()

    def _caps(self, conn: Connection) -> list[str]:
        caps = list(self.extensions)
        if self.cert is not None and not conn.tls_active:
            caps.append("STARTTLS")
        if self.users and conn.tls_active:
            caps.append("AUTH PLAIN")
        return caps

    def _session(self, sock: socket.socket) -> None:
        # allow_auth_without_tls: so the server can play a careless (or forged) peer.
        conn = Connection(Role.SERVER, Config(lmtp=self.lmtp, allow_auth_without_tls=True),
                          tls_active=self.implicit_tls)
        sock.sendall(conn.send(Reply(code=220, lines=("core.test ESMTP smtpproto",))))
        out: list[bytes] = []
        rounds = 0
        sender, params, rcpts, content, via = "", {}, [], bytearray(), "DATA"
        lmtp_index = 0
        while True:
            try:
                ev = conn.next_event()
            except RemoteProtocolError as exc:
                if exc.reply is not None:
                    out.append(conn.send(exc.reply))
                sock.sendall(b"".join(out))
                raise
            if ev is NEED_DATA:
                if out:
                    sock.sendall(b"".join(out))
                    out = []
                    rounds += 1
                data = sock.recv(65536)
                conn.receive_data(data)
                continue
            if isinstance(ev, ConnectionClosed):
                break
            if ev is PAUSED:
                if conn.state is State.TLS:
                    sock.sendall(b"".join(out))
                    out = []
                    assert self.cert is not None
                    sock = self.cert.server_context().wrap_socket(sock, server_side=True)
                    self._tls_socks.append(sock)  # closed by serve()
                    conn.tls_established()
                    continue
                owed = conn.reply_owed
                reply = self._answer(conn, owed, rcpts, lmtp_index)
                if isinstance(owed, (EndOfMessage,)):
                    if not self.lmtp or lmtp_index == 0:
                        self.messages.append(CoreMessage(sender, dict(params), list(rcpts), bytes(content), via))
                    if self.lmtp:
                        lmtp_index += 1
                        if lmtp_index >= len(rcpts):
                            lmtp_index = 0
                out.append(conn.send(reply))
                if isinstance(owed, Quit):
                    sock.sendall(b"".join(out))
                    self.flushes.append(rounds)
                    return
                continue
            self.commands.append(ev)
            if isinstance(ev, Mail):
                sender, params, rcpts, content, via = ev.reverse_path, dict(ev.params), [], bytearray(), "DATA"
            elif isinstance(ev, Bdat):
                via = "BDAT"
            elif isinstance(ev, MessageData):
                content += ev.data
        self.flushes.append(rounds)

    def _answer(self, conn: Connection, owed: object, rcpts: list[str], lmtp_index: int) -> Reply:
        ok = Reply(code=250, lines=("ok",), enhanced_status="2.0.0")
        if isinstance(owed, (Ehlo, Lhlo)):
            return Reply(code=250, lines=("core.test", *self._caps(conn)))
        if isinstance(owed, Helo):
            return Reply(code=250, lines=("core.test",))
        if isinstance(owed, Mail) and owed.reverse_path in self.refuse_senders:
            return Reply(code=553, lines=("sender not allowed",), enhanced_status="5.7.1")
        if isinstance(owed, Rcpt):
            if owed.forward_path in self.refuse:
                return Reply(code=550, lines=("no such user",), enhanced_status="5.1.1")
            rcpts.append(owed.forward_path)
            return ok
        if isinstance(owed, Data):
            return Reply(code=354, lines=("go ahead",))
        if isinstance(owed, EndOfMessage):
            if self.lmtp:
                who = rcpts[lmtp_index]
                if who in self.lmtp_fail:
                    return Reply(code=452, lines=(f"<{who}> mailbox full",), enhanced_status="4.2.2")
                return Reply(code=250, lines=(f"<{who}> delivered",), enhanced_status="2.0.0")
            return self.data_reply
        if isinstance(owed, (InvalidCommand, UnknownCommand, MessageRejected)):
            return owed.reply
        if isinstance(owed, StartTLS):
            return Reply(code=220, lines=("ready to start TLS",), enhanced_status="2.0.0")
        if isinstance(owed, Quit):
            return Reply(code=221, lines=("bye",), enhanced_status="2.0.0")
        if isinstance(owed, Auth):
            expected = b"".join([b"\0", *(f"{u}\0{p}".encode() for u, p in self.users.items())])
            if owed.initial_response == expected:
                return Reply(code=235, lines=("authenticated",), enhanced_status="2.7.0")
            return Reply(code=535, lines=("bad credentials",), enhanced_status="5.7.8")
        if isinstance(owed, AuthResponse):
            return Reply(code=535, lines=("bad credentials",), enhanced_status="5.7.8")
        if isinstance(owed, (Mail, Rset, Noop, Bdat)):
            return ok
        return ok


# ------------------------------------------------------------------ scripted servers


class ScriptedServer:
    """Accept one connection and run ``script(sock)`` in a thread."""

    def __init__(self, script: Callable[[socket.socket], None]) -> None:
        self.script = script
        self.errors: list[BaseException] = []
        self.received = bytearray()

    def __enter__(self) -> "ScriptedServer":
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(1)
        self._listener.settimeout(IO_TIMEOUT)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            sock, _ = self._listener.accept()
        except OSError as exc:
            self.errors.append(exc)
            return
        sock.settimeout(IO_TIMEOUT)
        try:
            self.script(sock)
        except OSError:
            pass  # the client hung up: that is what many of these tests expect
        except BaseException as exc:
            self.errors.append(exc)
        finally:
            sock.close()

    def __exit__(self, *exc: object) -> None:
        self._thread.join(IO_TIMEOUT + 2)
        self._listener.close()


def read_line(sock: socket.socket, sink: bytearray | None = None) -> bytes:
    """One CRLF-terminated line from ``sock`` (byte by byte: scripts only)."""
    line = bytearray()
    while not line.endswith(b"\r\n"):
        b = sock.recv(1)
        if not b:
            raise ConnectionError("client closed")
        line += b
    if sink is not None:
        sink += line
    return bytes(line)


# ------------------------------------------------------------------ running scenarios


class BlockingShim:
    """Gives the blocking client the awaitable shape of the async ones."""

    def __init__(self, client: Any) -> None:
        self.client = client

    async def connect(self) -> Any:
        return self.client.connect()

    async def send_message(self, *args: Any, **kwargs: Any) -> Any:
        return self.client.send_message(*args, **kwargs)

    async def send_messages(self, *args: Any, **kwargs: Any) -> Any:
        return self.client.send_messages(*args, **kwargs)

    async def noop(self) -> Any:
        return self.client.noop()

    async def rset(self) -> Any:
        return self.client.rset()

    async def quit(self) -> Any:
        return self.client.quit()

    async def close(self) -> None:
        self.client.close()

    @property
    def extensions(self) -> Any:
        return self.client.extensions

    @property
    def session(self) -> Any:
        return self.client.session

    @property
    def tls_active(self) -> bool:
        return bool(self.client.tls_active)

    @property
    def is_connected(self) -> bool:
        return bool(self.client.is_connected)

    async def __aenter__(self) -> "BlockingShim":
        self.client.__enter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.client.__exit__(*exc)


def client_factory(flavor: str) -> Callable[..., Any]:
    if flavor == "blocking":
        from smtpproto.adapters._sockets_client import SMTPClient

        return lambda *a, **k: BlockingShim(SMTPClient(*a, **k))
    if flavor == "asyncio":
        from smtpproto.adapters._asyncio_client import AsyncSMTPClient

        return AsyncSMTPClient
    from smtpproto.adapters._trio_client import TrioSMTPClient

    return TrioSMTPClient


def run_flavor(flavor: str, scenario: Callable[[Callable[..., Any]], Awaitable[Any]]) -> Any:
    """Run ``scenario(make_client)`` under the event loop the flavour needs."""
    make = client_factory(flavor)
    if flavor == "trio":
        import trio

        return trio.run(scenario, make)
    return asyncio.run(scenario(make))  # type: ignore[arg-type]


# ------------------------------------------------------------------ self-tests


def test_core_server_records_a_plain_smtplib_session() -> None:
    import smtplib

    with CoreServer() as srv:
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=IO_TIMEOUT) as s:
            s.sendmail("a@x.example", ["b@y.example"], b"Subject: t\r\n\r\nhello\r\n")
    assert srv.messages and srv.messages[0].content == b"Subject: t\r\n\r\nhello\r\n"
    assert not srv.errors


def test_aiosmtpd_server_records_content() -> None:
    import smtplib

    with aiosmtpd_server() as (port, handler):
        with smtplib.SMTP("127.0.0.1", port, timeout=IO_TIMEOUT) as s:
            s.sendmail("a@x.example", ["b@y.example"], b"Subject: t\r\n\r\n.dot\r\n")
    assert handler.messages[0].content == b"Subject: t\r\n\r\n.dot\r\n"
