"""The server session driver: all server-side protocol decisions, no I/O.

:meth:`ServerSession.run` is a generator.  It yields *actions* and receives
their results through ``send()``:

=================  =========================================  ===========================
action             the adapter does                           it sends back
=================  =========================================  ===========================
:class:`Write`     write the bytes (all of them)              True, or False if it failed
:class:`Read`      read up to ``size`` bytes, at most         the bytes (``b""`` at EOF),
                   ``timeout`` seconds (None: no limit)       :data:`TIMEOUT` or :data:`SHUTDOWN`
:class:`UpgradeTLS`  a server-side TLS handshake on the       True / False (handshake failed),
                   transport (STARTTLS)                       or :class:`PlaintextPending`
:class:`Call`      ``getattr(handler, hook)(*args)``,         the value, or :class:`HookFailed`
                   awaited if the adapter is async            when the hook raised
:class:`Sleep`     sleep ``seconds``                          None
=================  =========================================  ===========================

When the generator returns, the adapter closes the transport.  So the three
adapters share one implementation of the session: which hook for which event,
the default replies, when replies are flushed (only when no pipelined input is
pending: RFC 2920), per-request deadlines with a minimum data rate (R-08),
STARTTLS, AUTH through :mod:`smtpproto.sasl`, LMTP reply fan-out, and when to
close.  The core (:class:`~smtpproto.Connection`) makes every protocol decision
about the bytes; this module makes the server's policy decisions and asks the
handler.
"""

from __future__ import annotations

import enum
import itertools
import logging
import os
import platform
import time
from dataclasses import dataclass, field
from typing import Callable, Generator, Union

from .._config import Config
from .._connection import NEED_DATA, PAUSED, Connection, Role
from .._errors import LocalProtocolError, RemoteProtocolError
from .._events import (
    Auth,
    AuthResponse,
    Bdat,
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
    Mail,
    MessageData,
    MessageRejected,
    Noop,
    Quit,
    Rcpt,
    Reply,
    Rset,
    StartTLS,
    UnknownCommand,
    ProxyConnected,
    Vrfy,
    Xclient,
    Xforward,
    _trusted,
)
from .._extensions import Capabilities
from .._state import State
from ..message import MessageParser
from ..sasl import (
    INVALID_CREDENTIALS,
    AuthServer,
    Failure,
    SaslBackend,
    Success,
    encode_initial_response,
    encode_response,
)
from ..transcript import (
    ServerRecordTarget,
    _redact_auth_lines,
    _server_tap,
    _SessionTap,
    redact_auth_line,
    redact_challenges,
)
from ._handler import Envelope, Handler, Session, default_hooks

__all__ = [
    "Action",
    "Call",
    "HookFailed",
    "PlaintextPending",
    "Read",
    "ReadResult",
    "SHUTDOWN",
    "ServerSession",
    "ServerSettings",
    "Sleep",
    "TIMEOUT",
    "UpgradeTLS",
    "Write",
    "busy_flow",
]

log = logging.getLogger("smtpproto.server")


# ---------------------------------------------------------------- actions


# Write, Read and Call are made for every request, so they are not frozen: a
# frozen dataclass sets each field through object.__setattr__.  The session
# makes a new one for every yield and never looks at it again.
@dataclass(slots=True)
class Write:
    """Write ``data`` to the peer."""

    data: bytes


@dataclass(slots=True)
class Read:
    """Read up to ``size`` bytes, waiting at most ``timeout`` seconds."""

    timeout: float | None
    size: int = 65536


@dataclass(frozen=True, slots=True)
class UpgradeTLS:
    """Run the server side of a TLS handshake on the transport (STARTTLS)."""


@dataclass(slots=True)
class Call:
    """Call ``hook`` on the handler with ``args``."""

    hook: str
    args: tuple[object, ...]


@dataclass(frozen=True, slots=True)
class Sleep:
    """Pause (error-reply delay after the soft error limit, R-07)."""

    seconds: float


Action = Union[Write, Read, UpgradeTLS, Call, Sleep]


class ReadResult(enum.Enum):
    #: The request deadline passed before the bytes came.
    TIMEOUT = "TIMEOUT"
    #: The server is shutting down.
    SHUTDOWN = "SHUTDOWN"


TIMEOUT = ReadResult.TIMEOUT
SHUTDOWN = ReadResult.SHUTDOWN


@dataclass(frozen=True, slots=True)
class HookFailed:
    """The result of a :class:`Call` whose hook raised."""

    error: BaseException


@dataclass(frozen=True, slots=True)
class PlaintextPending:
    """The result of :class:`UpgradeTLS` when the adapter already holds
    cleartext bytes it read after the STARTTLS command: they go to the core,
    which refuses them (SECURITY-CASES T-01, T-02)."""

    data: bytes


# ---------------------------------------------------------------- settings


def _default_hostname() -> str:
    name = platform.node().strip()
    return name if name and name.isascii() and " " not in name else "localhost"


@dataclass(frozen=True)
class ServerSettings:
    """How the server presents itself; protocol limits live in ``config``.

    The ``advertise_*`` flags choose the EHLO/LHLO extensions (all on by default:
    the core implements every one of them).  STARTTLS is advertised when the
    adapter has an ``ssl.SSLContext`` for it and TLS is not yet active; AUTH when
    the handler lists mechanisms and TLS is active (or
    ``config.allow_auth_without_tls``).
    """

    config: Config = field(default_factory=Config)
    hostname: str = field(default_factory=_default_hostname)
    #: Text after the host name in the 220 greeting.
    banner: str = "ESMTP smtpproto"
    advertise_size: bool = True
    advertise_pipelining: bool = True
    advertise_8bitmime: bool = True
    advertise_smtputf8: bool = True
    advertise_chunking: bool = True
    advertise_binarymime: bool = True
    advertise_dsn: bool = True
    advertise_enhancedstatuscodes: bool = True
    #: XCLIENT / XFORWARD attribute names to advertise (Postfix); empty: not
    #: offered.  The handler's ``on_xclient`` / ``on_xforward`` decide who may
    #: use them.
    advertise_xclient: tuple[str, ...] = ()
    advertise_xforward: tuple[str, ...] = ()
    #: Seconds to wait before each error reply once the soft error limit is
    #: reached (Postfix smtpd_error_sleep_time); 0 disables.
    error_delay: float = 1.0
    #: Bytes asked for per read.
    read_size: int = 65536
    #: Record every session (:mod:`smtpproto.transcript`, AUTH redacted): a
    #: directory, where each session gets a new file, or a function
    #: ``(peer) -> Recorder``.  None: no recording.
    record: ServerRecordTarget | None = None

    def __post_init__(self) -> None:
        if not self.hostname or any(c.isspace() for c in self.hostname) or not self.hostname.isprintable():
            raise ValueError(f"bad server host name {self.hostname!r}")
        if self.error_delay < 0:
            raise ValueError("error_delay must be >= 0")
        if self.read_size < 1:
            raise ValueError("read_size must be positive")
        if self.record is not None and not (isinstance(self.record, (str, os.PathLike)) or callable(self.record)):
            raise ValueError("record must be a directory or a function (peer) -> Recorder")


# ---------------------------------------------------------------- replies


def _r(code: int, enhanced: str | None, text: str) -> Reply:
    return Reply(code=code, lines=(text,), enhanced_status=enhanced)


_OK = _r(250, "2.0.0", "Ok")
_MAIL_OK = _r(250, "2.1.0", "Ok")
_RCPT_OK = _r(250, "2.1.5", "Ok")
_RCPT_REFUSED = _r(550, "5.1.1", "Recipient address rejected")
_START_DATA = Reply(code=354, lines=("End data with <CR><LF>.<CR><LF>",))
_BYE = _r(221, "2.0.0", "Bye")
_VRFY = _r(252, "2.0.0", "Cannot VRFY user, but will accept message and attempt delivery")
_EXPN = _r(502, "5.5.1", "Error: command not implemented")
_HELP = _r(214, "2.0.0", "See RFC 5321 (https://www.rfc-editor.org/rfc/rfc5321)")
_TLS_GO = _r(220, "2.0.0", "Ready to start TLS")
_INTERNAL = _r(451, "4.3.0", "Error: internal server error, try again later")


# Queue ids for "250 Ok: queued as ...": a random per-process prefix and a
# counter -- unique like uuid4's but without a getrandom() call per message.
_QUEUE_PREFIX = os.urandom(3).hex().upper()
_queue_counter = itertools.count(1)


def _queue_id() -> str:
    return f"{_QUEUE_PREFIX}{next(_queue_counter) & 0xFFFFFFFFFF:010X}"


def busy_flow(settings: ServerSettings) -> Generator[Action, object, None]:
    """A session that only says ``421 4.3.2`` and closes: for connections over
    the adapter's concurrency limit."""
    conn = Connection(Role.SERVER, settings.config)
    data = conn.send(_r(421, "4.3.2", f"{settings.hostname} Error: too many connections, try again later"))
    yield Write(data)


# ---------------------------------------------------------------- the driver

class _SettingsReplies:
    """The replies every session under one ServerSettings words the same way,
    built (and validated) once rather than per connection."""

    __slots__ = ("settings", "greeting", "bad_greeting", "helo", "ehlo")

    def __init__(self, settings: ServerSettings) -> None:
        host = settings.hostname
        self.settings = settings
        self.greeting = Reply(code=220, lines=(f"{host} {settings.banner}",))
        self.bad_greeting = _r(421, "4.3.0", f"{host} Error: bad greeting")
        self.helo = Reply(code=250, lines=(host,))
        #: EHLO replies by (STARTTLS offered, AUTH mechanisms advertised).
        self.ehlo: dict[tuple[bool, tuple[str, ...]], Reply] = {}


# By id(settings), the settings object kept so that a recycled id is never
# taken for it; bounded, emptied when full.
_SETTINGS_REPLIES: dict[int, _SettingsReplies] = {}


def _settings_replies(settings: ServerSettings) -> _SettingsReplies:
    known = _SETTINGS_REPLIES.get(id(settings))
    if known is None or known.settings is not settings:
        if len(_SETTINGS_REPLIES) >= 64:
            _SETTINGS_REPLIES.clear()
        known = _SETTINGS_REPLIES[id(settings)] = _SettingsReplies(settings)
    return known


def _who(peer: object) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"[{peer[0]}]:{peer[1]}"
    return str(peer or "local")


class _PasswordCapture(SaslBackend):
    """Lets PLAIN/LOGIN finish their framing, keeping the password for the
    handler's (possibly async) :meth:`Handler.verify_password`; other
    mechanisms use the handler's synchronous backend."""

    def __init__(self, inner: SaslBackend | None) -> None:
        self.inner = inner if inner is not None else SaslBackend()
        self.captured: tuple[str, str, str | None] | None = None

    def verify_password(self, authcid: str, password: str, authzid: str | None) -> bool | Failure:
        self.captured = (authcid, password, authzid)
        return True

    def lookup_secret(self, authcid: str) -> str | None:
        return self.inner.lookup_secret(authcid)

    def lookup_scram(self, authcid: str, hash_name: str):  # type: ignore[no-untyped-def]
        return self.inner.lookup_scram(authcid, hash_name)

    def authorize(self, authcid: str, authzid: str | None) -> bool:
        return self.inner.authorize(authcid, authzid)

    def verify_token(self, user, token, fields):  # type: ignore[no-untyped-def]
        return self.inner.verify_token(user, token, fields)

    def verify_external(self, identity: str, authzid: str | None) -> bool | Failure:
        return self.inner.verify_external(identity, authzid)

    def allow_anonymous(self, trace: str) -> bool:
        return self.inner.allow_anonymous(trace)


_Gen = Generator[Action, object, object]


class ServerSession:
    """One server session.  Create it per connection and drive :meth:`run`.

    :param handler: the application's :class:`~smtpproto.adapters.Handler`.
    :param settings: :class:`ServerSettings`.
    :param peer: the peer address, for the handler and trace headers.
    :param tls_active: the transport is already encrypted (implicit TLS).
    :param starttls: the adapter can run :class:`UpgradeTLS` (it has an
        ``ssl.SSLContext``), so STARTTLS is offered while TLS is not active.
    :param clock: a monotonic clock in seconds (for deadlines).
    """

    def __init__(
        self,
        handler: Handler,
        settings: ServerSettings,
        *,
        peer: object = None,
        tls_active: bool = False,
        starttls: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.handler = handler
        self.settings = settings
        self.config = settings.config
        self._replies = _settings_replies(settings)
        self.conn = Connection(Role.SERVER, settings.config, tls_active=tls_active)
        self.session = Session(peer=peer, hostname=settings.hostname, tls_active=tls_active,
                               lmtp=settings.config.lmtp)
        self._starttls = starttls
        self._clock = clock
        self._out: list[bytes] = []
        self._deadline: float | None = None
        self._deadline_cap = 0.0
        self._min_rate: int | None = None
        self._write_failed = False
        # Content in flight.
        self._in_content = False
        self._chunks: list[bytes] | None = None
        self._parser: MessageParser | None = None
        self._size = 0
        self._content_error: BaseException | None = None
        # Hooks left as Handler's defaults (which return None) are not called:
        # each call is a round trip through the adapter (a task when async).
        self._defaults = default_hooks(handler)
        self._stream_chunks = "on_data_chunk" not in self._defaults
        self._notify_start = "on_data_start" not in self._defaults
        # AUTH.
        self._auth: AuthServer | None = None
        self._capture: _PasswordCapture | None = None
        self._auth_command: Auth | None = None
        #: :meth:`run` reached its end.
        self.finished = False
        # Transcript at DEBUG level (commands as event reprs, which redact AUTH
        # data; 334 challenge text is not logged either).
        self._trace = log.isEnabledFor(logging.DEBUG)
        self._disconnect_called = False
        self._tap: _SessionTap | None = None
        if settings.record is not None:
            try:
                self._tap = _server_tap(settings.record, peer=peer, implicit_tls=tls_active,
                                        in_auth=lambda: self.conn.state is State.AUTH)
            except OSError as exc:  # the session itself can go on
                log.error("cannot record the session with %s: %s", _who(peer), exc)

    # ------------------------------------------------------------ plumbing

    def _call(self, hook: str, *args: object) -> _Gen:
        if hook in self._defaults:
            return None  # what Handler's own method returns
        result = yield Call(hook, args)
        if isinstance(result, HookFailed):
            log.error("handler hook %s failed", hook, exc_info=result.error)
        return result

    def _flush(self) -> Generator[Action, object, bool]:
        if self._write_failed:
            return False
        if not self._out:
            return True
        data = b"".join(self._out)
        self._out.clear()
        if self._tap is not None:
            self._tap.wrote(redact_challenges(data))
        ok = yield Write(data)
        if ok is not True:
            self._write_failed = True
            self.conn.send_failed()
            return False
        return True

    def _reply(self, reply: Reply, fallback: Reply | None = _INTERNAL) -> Generator[Action, object, Reply | None]:
        """Queue ``reply`` (after the error delay when advised).  A reply the
        core refuses (a handler's mistake) is replaced by ``fallback``."""
        if reply.code >= 400 and self.settings.error_delay and self.conn.delay_advised:
            yield Sleep(self.settings.error_delay)
        try:
            self._out.append(self.conn.send(reply))
        except LocalProtocolError as exc:
            if fallback is None:
                raise
            log.error("reply %s refused by the core (%s); sending %s instead", reply.code, exc, fallback.code)
            self._out.append(self.conn.send(fallback))
            reply = fallback
        if self._trace:
            text = "<challenge>" if reply.code == 334 else " | ".join(reply.lines)
            log.debug("%s S: %d %s", _who(self.session.peer), reply.code, text)
        self._deadline = None  # the next request starts now
        return reply

    def _read(self) -> Generator[Action, object, object]:
        now = self._clock()
        if self._deadline is None:
            d = self.conn.deadline()
            if d is not None:
                self._deadline = now + d.seconds
                self._deadline_cap = d.seconds
                self._min_rate = d.min_rate
            else:  # e.g. a PROXY header before the greeting: never wait forever
                self._deadline = now + self.config.timeout_server
                self._deadline_cap = self.config.timeout_server
                self._min_rate = None
        timeout = None if self._deadline is None else max(0.0, self._deadline - now)
        result = yield Read(timeout, self.settings.read_size)
        if self._tap is not None and isinstance(result, (bytes, bytearray)):
            self._tap.read(bytes(result))
        if isinstance(result, (bytes, bytearray)) and result and self._deadline is not None and self._min_rate:
            # Postfix smtpd_min_data_rate: each octet buys time, up to the cap.
            now = self._clock()
            self._deadline = min(self._deadline + len(result) / self._min_rate, now + self._deadline_cap)
        return result

    def _drop(self, code: int, enhanced: str, text: str) -> Generator[Action, object, None]:
        """Say ``code`` (421 at any time, RFC 5321 §3.8) and end the session."""
        try:
            self._out.append(self.conn.send(_r(code, enhanced, f"{self.settings.hostname} {text}")))
        except LocalProtocolError:
            pass
        yield from self._flush()

    # ------------------------------------------------------------ the loop

    def run(self) -> Generator[Action, object, None]:
        """Drive the session to its end (see the module docstring)."""
        try:
            yield from self._run()
        finally:
            # Also when the adapter abandons the session (cancelled at shutdown).
            if self._tap is not None:
                self._tap.finish()
        if self._in_content:
            yield from self._abort_content("connection closed")
        self._disconnect_called = True
        if log.isEnabledFor(logging.INFO):  # _who() formats, even for a record nobody wants
            log.info("disconnect from %s (%d message(s))", _who(self.session.peer), self.session.messages)
        yield from self._call("on_disconnect", self.session)
        self.finished = True

    def _record_parsed(self, ev: Event, auth_due: bool) -> None:
        """Tell the recorder what the core made of the client's octets, so an
        AUTH line is redacted where it stands."""
        assert self._tap is not None
        redact: Callable[[bytes], bytes] | None = None
        if isinstance(ev, (Auth, AuthResponse)):
            redact = redact_auth_line
        elif isinstance(ev, (InvalidCommand, UnknownCommand)):
            # A refused AUTH line or SASL response may still hold a secret.
            def redact(raw: bytes) -> bytes:
                return _redact_auth_lines(raw, auth_due)
        self._tap.parsed(len(self.conn.trailing_data[0]), redact)

    def cleanup_calls(self) -> list[Call]:
        """The hook calls still owed when an adapter abandons :meth:`run`
        before its end (a task cancelled at shutdown): the adapter performs
        them, shielded, so handlers can release what they hold."""
        calls: list[Call] = []
        if self.finished or self._disconnect_called:
            return calls
        env = self.session.envelope
        if self._in_content and env is not None:
            calls.append(Call("on_message_aborted", (self.session, env, "session cancelled")))
        self._in_content = False
        calls.append(Call("on_disconnect", (self.session,)))
        self._disconnect_called = True
        return calls

    def _proxy_header(self) -> Generator[Action, object, bool]:
        """With ``Config(proxy_protocol=...)``: read the PROXY header before the
        greeting; False when the connection is over."""
        conn = self.conn
        while True:
            try:
                ev = conn.next_event()
            except RemoteProtocolError as exc:
                log.info("closing connection from %s: %s", self.session.peer, exc)
                return False
            if isinstance(ev, ProxyConnected):
                if self._tap is not None:
                    self._record_parsed(ev, False)
                header = ev.header
                self.session.proxy = header
                if header.command == "PROXY" and header.source_address is not None:
                    self.session.peer = (header.source_address, header.source_port)
                return True
            if ev is NEED_DATA:
                data = yield from self._read()
                if not isinstance(data, (bytes, bytearray)):
                    return False  # timeout or shutdown: nobody to say 421 to yet
                conn.receive_data(bytes(data))
                continue
            return False  # ConnectionClosed

    def _run(self) -> Generator[Action, object, None]:
        conn = self.conn
        if log.isEnabledFor(logging.INFO):
            log.info("connection from %s", _who(self.session.peer))
        if self.config.proxy_protocol != "off":
            if not (yield from self._proxy_header()):
                return
        greeting = yield from self._call("on_connect", self.session)
        if isinstance(greeting, Reply):
            reply: Reply = greeting
        elif isinstance(greeting, HookFailed):
            reply = _r(421, "4.3.0", f"{self.settings.hostname} Error: service temporarily unavailable")
        else:
            reply = self._replies.greeting
        yield from self._reply(reply, self._replies.bad_greeting)
        dispatch = self._dispatch
        tap = self._tap
        while True:
            auth_due = tap is not None and conn.state is State.AUTH
            try:
                ev = conn.next_event()
            except RemoteProtocolError as exc:
                log.info("closing session with %s: %s", self.session.peer, exc)
                if exc.reply is not None:
                    try:
                        self._out.append(conn.send(exc.reply))
                    except LocalProtocolError:
                        pass
                break
            if tap is not None and isinstance(ev, Event):
                self._record_parsed(ev, auth_due)
            if ev is NEED_DATA:
                if not (yield from self._flush()):
                    return
                data = yield from self._read()
                if data is TIMEOUT:
                    yield from self._drop(421, "4.4.2", "Error: timeout exceeded")
                    return
                if data is SHUTDOWN:
                    yield from self._drop(421, "4.3.2", "Error: service shutting down")
                    return
                assert isinstance(data, (bytes, bytearray))
                conn.receive_data(bytes(data))
                continue
            if ev is PAUSED:
                if conn.state is State.TLS:
                    if (yield from self._upgrade()) is False:
                        return
                    continue
                owed = conn.reply_owed
                if isinstance(owed, Bdat):
                    yield from self._reply(_r(250, "2.0.0", f"Ok: {owed.size} octets received"))
                    continue
                if isinstance(owed, (InvalidCommand, UnknownCommand, MessageRejected)):
                    yield from self._reply(owed.reply, None)
                    continue
                # Nothing else can pause us: every command is answered at once.
                raise RuntimeError(f"session paused unexpectedly (state {conn.state}, owed {owed!r})")
            if isinstance(ev, ConnectionClosed):
                break
            assert isinstance(ev, Event)
            if self._trace and not isinstance(ev, MessageData):
                log.debug("%s C: %r", _who(self.session.peer), ev)
            step = dispatch.get(type(ev))
            if step is None:
                raise RuntimeError(f"no handling for {type(ev).__name__}")
            if (yield from step(self, ev)) is False:
                return
        yield from self._flush()

    # ------------------------------------------------------------ commands

    def _capabilities(self, mechanisms: tuple[str, ...], starttls: bool) -> Capabilities:
        s = self.settings
        cfg = self.config
        chunking = s.advertise_chunking
        extra: list[tuple[str, str]] = []
        if s.advertise_xclient:
            extra.append(("XCLIENT", " ".join(s.advertise_xclient)))
        if s.advertise_xforward:
            extra.append(("XFORWARD", " ".join(s.advertise_xforward)))
        return Capabilities.build(
            size=cfg.max_message_size if s.advertise_size else None,
            pipelining=s.advertise_pipelining,
            starttls=starttls,
            auth=mechanisms,
            enhancedstatuscodes=s.advertise_enhancedstatuscodes,
            eightbitmime=s.advertise_8bitmime,
            dsn=s.advertise_dsn,
            smtputf8=s.advertise_smtputf8,
            chunking=chunking,
            binarymime=chunking and s.advertise_binarymime,
            extra=extra,
        )

    def _ehlo_reply(self) -> Reply:
        """The EHLO reply.  It depends only on the settings, on whether STARTTLS
        is offered and on the AUTH mechanisms, so it is built once per
        combination, not for every connection."""
        mechanisms: tuple[str, ...] = ()
        auth = self._auth_server()
        cfg = self.config
        if auth is not None and (self.conn.tls_active or (cfg.allow_auth_without_tls and not cfg.require_tls)):
            mechanisms = auth.advertised()
        starttls = self._starttls and not self.conn.tls_active
        known = self._replies.ehlo
        reply = known.get((starttls, mechanisms))
        if reply is None:
            lines = tuple(self._capabilities(mechanisms, starttls).to_lines())
            reply = Reply(code=250, lines=(self.settings.hostname, *lines))
            if len(known) >= 64:
                known.clear()
            known[(starttls, mechanisms)] = reply
        return reply

    def _auth_server(self) -> AuthServer | None:
        if not self.handler.auth_mechanisms:
            return None
        if self._auth is None:
            self._capture = _PasswordCapture(self.handler.sasl_backend(self.session))
            self._auth = AuthServer(
                self._capture,
                tuple(self.handler.auth_mechanisms),
                tls_active=self.conn.tls_active,
                require_tls=self.config.require_tls,
                allow_plaintext=self.config.allow_auth_without_tls,
                hostname=self.settings.hostname,
            )
        return self._auth

    def _on_hello(self, ev: Ehlo | Helo | Lhlo) -> _Gen:
        res = yield from self._call("on_hello", self.session, ev)
        if isinstance(res, Reply):
            reply = res
        elif isinstance(res, HookFailed):
            reply = _INTERNAL
        elif isinstance(ev, Helo):
            reply = self._replies.helo
        else:
            reply = self._ehlo_reply()
        sent = yield from self._reply(reply)
        if sent is not None and sent.code == 250:
            if self._in_content:  # EHLO is an implicit RSET (RFC 5321 §4.1.4)
                yield from self._abort_content("EHLO reset the transaction")
            self.session.helo_name = ev.domain
            self.session.helo_verb = ev.verb
            self.session.envelope = None
        return None

    def _on_mail(self, ev: Mail) -> _Gen:
        res = yield from self._call("on_mail", self.session, ev)
        reply = res if isinstance(res, Reply) else (_INTERNAL if isinstance(res, HookFailed) else _MAIL_OK)
        sent = yield from self._reply(reply)
        if sent is not None and sent.code < 400:
            self.session.envelope = Envelope(mail_from=ev.reverse_path, mail_params=dict(ev.params))
        return None

    def _on_rcpt(self, ev: Rcpt) -> _Gen:
        res = yield from self._call("on_rcpt", self.session, ev)
        if isinstance(res, Reply):
            reply = res
        elif isinstance(res, HookFailed):
            reply = _INTERNAL
        elif res is False:
            reply = _RCPT_REFUSED
        else:
            reply = _RCPT_OK
        sent = yield from self._reply(reply)
        env = self.session.envelope
        if sent is not None and sent.code < 400 and env is not None:
            env.rcpt_tos.append(ev.forward_path)
            env.rcpt_params.append(dict(ev.params))
        return None

    def _on_data(self, ev: Data) -> _Gen:
        sent = yield from self._reply(_START_DATA)
        if sent is not None and sent.code == 354:
            yield from self._begin_content("DATA")
        return None

    def _on_bdat(self, ev: Bdat) -> _Gen:
        self._deadline = None  # the command line is done; the chunk is a new request
        if not self._in_content:
            yield from self._begin_content("BDAT")
        return None

    def _begin_content(self, transfer: str) -> _Gen:
        env = self.session.envelope
        if env is None:  # the handler answered MAIL itself with a 2xx we did not see
            env = self.session.envelope = Envelope(mail_from="")
        env.transfer = transfer
        self._in_content = True
        self._size = 0
        self._content_error = None
        self._chunks = [] if self.handler.collect_content else None
        self._parser = MessageParser() if self.handler.parse_message else None
        if self._notify_start:
            res = yield from self._call("on_data_start", self.session, env)
            if isinstance(res, HookFailed):
                self._content_error = res.error
        return None

    def _on_message_data(self, ev: MessageData) -> _Gen:
        if not self._in_content:
            return None
        chunk = ev.data
        self._size += len(chunk)
        if self._chunks is not None:
            self._chunks.append(chunk)
        if self._parser is not None:
            try:
                self._parser.feed(chunk)
            except Exception as exc:  # the codec must not take the session down
                log.error("message parser failed", exc_info=exc)
                self._parser = None
        if self._stream_chunks and self._content_error is None:
            env = self.session.envelope
            res = yield from self._call("on_data_chunk", self.session, env, chunk)
            if isinstance(res, HookFailed):
                self._content_error = res.error
        return None

    def _finish_content(self) -> Envelope:
        env = self.session.envelope
        assert env is not None
        env.size = self._size
        if self._chunks is not None:
            env.content = b"".join(self._chunks)
        if self._parser is not None:
            try:
                env.message = self._parser.close()
            except Exception as exc:
                log.error("message parser failed", exc_info=exc)
        self._chunks = None
        self._parser = None
        self._in_content = False
        return env

    def _abort_content(self, reason: str) -> _Gen:
        env = self.session.envelope
        self._chunks = None
        self._parser = None
        self._in_content = False
        if env is not None:
            yield from self._call("on_message_aborted", self.session, env, reason)
        return None

    def _on_end(self, ev: EndOfMessage) -> _Gen:
        lmtp = self.config.lmtp
        count = len(self.conn.recipients) if lmtp else 1
        if not self._in_content:  # defensive: content began without us
            yield from self._begin_content("DATA")
        env = self._finish_content()
        replies: list[Reply]
        if self._content_error is not None:
            replies = [_INTERNAL] * count
        else:
            res = yield from self._call("on_message", self.session, env)
            if isinstance(res, HookFailed):
                replies = [_INTERNAL] * count
            elif res is None:
                # Our own text (a queue id in hex): built without re-validation.
                replies = [_trusted(Reply, code=250, lines=(f"Ok: queued as {_queue_id()}",),
                                    enhanced_status="2.0.0")] * count
            elif isinstance(res, Reply):
                replies = [res] * count
            elif isinstance(res, (list, tuple)) and all(isinstance(r, Reply) for r in res):
                replies = list(res)[:count]
                if len(replies) < count:
                    log.error("on_message gave %d replies for %d recipients", len(replies), count)
                    replies += [_INTERNAL] * (count - len(replies))
            else:
                log.error("on_message returned %r, not a Reply or replies", res)
                replies = [_INTERNAL] * count
        accepted = False
        for reply in replies:
            sent = yield from self._reply(reply)
            accepted = accepted or (sent is not None and sent.code < 400)
        if accepted:
            self.session.messages += 1
        self.session.envelope = None
        self.session.xforward = {}  # XFORWARD describes one transaction
        return None

    def _on_rejected(self, ev: MessageRejected) -> _Gen:
        count = len(self.conn.recipients) if self.config.lmtp else 1
        yield from self._abort_content(ev.reason)
        for _ in range(count):
            yield from self._reply(ev.reply, None)
        self.session.envelope = None
        return None

    def _on_invalid(self, ev: InvalidCommand | UnknownCommand) -> _Gen:
        yield from self._reply(ev.reply, None)
        if isinstance(ev, InvalidCommand) and ev.command == "BDAT" and self._in_content:
            # A refused chunk ends the transaction (LAST) or leaves only RSET.
            yield from self._abort_content(ev.reason)
            if self.conn.state is State.READY:
                self.session.envelope = None
        auth = self._auth
        if auth is not None and auth.in_progress and self.conn.state is not State.AUTH:
            auth.reset()  # the core ended the exchange (undecodable response)
            self.session.auth = None
        return None

    def _on_rset(self, ev: Rset) -> _Gen:
        if self._in_content:
            yield from self._abort_content("RSET")
        yield from self._reply(_OK)
        self.session.envelope = None
        self.session.xforward = {}
        return None

    def _on_simple(self, ev: Event) -> _Gen:
        if isinstance(ev, Noop):
            reply = _OK
        elif isinstance(ev, Quit):
            reply = _BYE
        elif isinstance(ev, Vrfy):
            reply = _VRFY
        elif isinstance(ev, Expn):
            reply = _EXPN
        else:
            reply = _HELP
        yield from self._reply(reply)
        return None

    def _on_starttls(self, ev: StartTLS) -> _Gen:
        # The 220 moves the core to TLS; the main loop then sees PAUSED and
        # hands over (after any error the core still has to report, T-01).
        yield from self._reply(_TLS_GO)
        return None

    def _upgrade(self) -> _Gen:
        """The core paused for the STARTTLS hand-over: run the handshake."""
        if not (yield from self._flush()):
            return False
        result = yield UpgradeTLS()
        if isinstance(result, PlaintextPending):
            # The core refuses cleartext received during the hand-over.
            if self._tap is not None:
                self._tap.read(result.data)
            self.conn.receive_data(result.data)
            return None
        if result is not True:
            log.info("TLS handshake with %s failed", self.session.peer)
            return False
        if self._tap is not None:
            self._tap.starttls()
        self.conn.tls_established()
        s = self.session
        s.tls_active = True
        s.helo_name = s.helo_verb = None
        s.auth = None
        s.envelope = None
        if self._auth is not None:
            self._auth.tls_active = True
            self._auth.reset()
        self._deadline = None
        return None

    def _on_xclient(self, ev: Xclient) -> _Gen:
        res = yield from self._call("on_xclient", self.session, ev)
        if isinstance(res, Reply):
            reply = res
        elif isinstance(res, HookFailed):
            reply = _INTERNAL
        else:
            reply = self._replies.greeting
        sent = yield from self._reply(reply)
        if sent is not None and sent.code == 220:
            s = self.session
            attrs = dict(ev.attributes)
            s.xclient.update(attrs)
            addr, port = attrs.get("ADDR"), attrs.get("PORT")
            if addr and not addr.startswith("["):
                host = addr[5:] if addr[:5].upper() == "IPV6:" else addr
                s.peer = (host, int(port) if port and port.isdigit() else None)
            if self._in_content:
                yield from self._abort_content("XCLIENT restarted the session")
            s.helo_name = s.helo_verb = None
            s.auth = None
            s.envelope = None
            if self._auth is not None:
                self._auth.reset()
        return None

    def _on_xforward(self, ev: Xforward) -> _Gen:
        res = yield from self._call("on_xforward", self.session, ev)
        if isinstance(res, Reply):
            reply = res
        elif isinstance(res, HookFailed):
            reply = _INTERNAL
        else:
            reply = _OK
        sent = yield from self._reply(reply)
        if sent is not None and sent.code < 400:
            self.session.xforward.update(ev.attributes)
        return None

    def _on_auth(self, ev: Auth) -> _Gen:
        auth = self._auth_server()
        if auth is None:  # the core refuses AUTH that was not advertised
            yield from self._reply(_r(503, "5.5.1", "Error: authentication not enabled"))
            return None
        self._auth_command = ev
        assert self._capture is not None
        self._capture.captured = None
        step = auth.start(ev.mechanism, encode_initial_response(ev.initial_response))
        yield from self._auth_step(step.code, step.enhanced, step.text, step.success)
        return None

    def _on_auth_response(self, ev: AuthResponse) -> _Gen:
        auth = self._auth
        if auth is None or not auth.in_progress:
            yield from self._reply(_r(501, "5.7.0", "Authentication aborted"))
            return None
        step = auth.respond("*" if ev.cancelled else encode_response(ev.data))
        yield from self._auth_step(step.code, step.enhanced, step.text, step.success)
        return None

    def _auth_step(self, code: int, enhanced: str | None, text: str, success: Success | None) -> _Gen:
        auth = self._auth
        assert auth is not None and self._capture is not None
        if code == 334:
            yield from self._reply(Reply(code=334, lines=(text,)), _r(454, "4.7.0", "Temporary authentication failure"))
            return None
        if success is not None:
            captured, self._capture.captured = self._capture.captured, None
            verdict: object = True
            if captured is not None:
                user, password, authzid = captured
                verdict = yield from self._call("verify_password", self.session, user, password, authzid)
            if verdict is not True:
                auth.reset()
                f = INVALID_CREDENTIALS if not isinstance(verdict, HookFailed) else None
                reply = _r(f.code, f.enhanced, f.text) if f else _r(454, "4.7.0", "Temporary authentication failure")
                yield from self._reply(reply)
                return None
            command = self._auth_command
            assert command is not None
            res = yield from self._call("on_auth", self.session, command, success)
            if isinstance(res, Reply) and res.code >= 400:
                auth.reset()
                yield from self._reply(res)
                return None
            if isinstance(res, HookFailed):
                auth.reset()
                yield from self._reply(_r(454, "4.7.0", "Temporary authentication failure"))
                return None
            sent = yield from self._reply(_r(code, enhanced, text))
            if sent is not None and sent.code == 235:
                self.session.auth = success
            else:
                auth.reset()
            return None
        yield from self._reply(_r(code, enhanced, text))
        return None

    _dispatch: dict[type, Callable[["ServerSession", Event], _Gen]] = {
        Ehlo: _on_hello,  # type: ignore[dict-item]
        Helo: _on_hello,  # type: ignore[dict-item]
        Lhlo: _on_hello,  # type: ignore[dict-item]
        Mail: _on_mail,  # type: ignore[dict-item]
        Rcpt: _on_rcpt,  # type: ignore[dict-item]
        Data: _on_data,  # type: ignore[dict-item]
        Bdat: _on_bdat,  # type: ignore[dict-item]
        MessageData: _on_message_data,  # type: ignore[dict-item]
        EndOfMessage: _on_end,  # type: ignore[dict-item]
        MessageRejected: _on_rejected,  # type: ignore[dict-item]
        InvalidCommand: _on_invalid,  # type: ignore[dict-item]
        UnknownCommand: _on_invalid,  # type: ignore[dict-item]
        Rset: _on_rset,  # type: ignore[dict-item]
        Noop: _on_simple,
        Quit: _on_simple,
        Vrfy: _on_simple,
        Expn: _on_simple,
        Help: _on_simple,
        StartTLS: _on_starttls,  # type: ignore[dict-item]
        Auth: _on_auth,  # type: ignore[dict-item]
        AuthResponse: _on_auth_response,  # type: ignore[dict-item]
        Xclient: _on_xclient,  # type: ignore[dict-item]
        Xforward: _on_xforward,  # type: ignore[dict-item]
    }

