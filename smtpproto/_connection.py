"""The sans-I/O connection: one object per SMTP/LMTP session, either role.

``receive_data()`` buffers bytes, ``next_event()`` turns them into events,
``send(event)`` turns events into bytes.  Nothing here reads a clock, touches a
socket or starts a thread.  The session state lives in ``_state``'s tables;
this module feeds them (a client when a reply arrives, a server when it sends
one) and enforces framing, limits and the security invariants of
SECURITY-CASES.md.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field
from typing import Sequence, Union

from ._config import Config
from ._errors import LocalProtocolError, RemoteProtocolError, TLSRequiredError
from ._events import (
    Auth,
    AuthResponse,
    Bdat,
    Command,
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
    Vrfy,
    Xclient,
    Xforward,
    ProxyConnected,
)
from ._extensions import Capabilities, check_mail_params, check_rcpt_params
from ._readers import CommandProblem, DataReader, decode_sasl, parse_command
from ._receivebuffer import ReceiveBuffer
from ._events import split_enhanced
from ._replies import format_reply, parse_reply_line
from ._state import ALLOWED, GROUP_ENDERS, TRANSITIONS, Greeting, State, next_state
from ._syntax import AddressLimits, SyntaxProblem, check_domain_or_literal, check_mailbox
from ._writers import DataWriter, format_auth_response, format_command
from .proxy import ProxyHeader, ProxyProtocolError, parse_proxy_header

__all__ = ["Role", "Connection", "NEED_DATA", "PAUSED", "Deadline", "RawBytes"]


class Role(enum.Enum):
    """Which end of the session we are."""

    CLIENT = "CLIENT"
    SERVER = "SERVER"


class _Sentinel(enum.Enum):
    NEED_DATA = "NEED_DATA"
    PAUSED = "PAUSED"

    def __repr__(self) -> str:
        return self.value


#: ``next_event()`` needs more bytes from the peer.
NEED_DATA = _Sentinel.NEED_DATA
#: ``next_event()`` waits for us: a server owes a reply (or its greeting), or a
#: STARTTLS hand-over is in progress.
PAUSED = _Sentinel.PAUSED

NextEvent = Union[Event, _Sentinel]


@dataclass(frozen=True)
class Deadline:
    """The RFC 5321 §4.5.3.2 timeout that applies to what we wait for now.

    The core never reads a clock; an adapter starts the timer when it begins
    waiting and, in content phases, extends it by ``bytes / min_rate`` seconds
    (Postfix ``smtpd_min_data_rate``) up to ``seconds``.
    """

    name: str
    seconds: float
    min_rate: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RawBytes(Event):
    """Bytes a client wrote with :meth:`Connection.send_raw_unchecked`.

    It is the :attr:`Reply.command` of every reply paired with those bytes, so
    a fuzzer can tell the replies to its raw sends from the others.
    """

    data: bytes = field(repr=False)

    def __repr__(self) -> str:
        shown = self.data if len(self.data) <= 40 else self.data[:37] + b"..."
        return f"RawBytes({shown!r}, {len(self.data)} octets)"


# Commands that count as "junk" (Postfix smtpd_junk_command_limit).
_JUNK = (Noop, Rset, Vrfy, Expn, Help)

#: What a session without (or before) an EHLO reply has; Capabilities is
#: immutable, so every connection shares this one.
_NO_EXTENSIONS = Capabilities()

#: Argument-less command lines, upper-cased without CRLF, and their events
#: (the server's command lane; verbs are case-insensitive, RFC 5321 §2.4).
_BARE_VERBS: dict[bytes, type[Command]] = {b"DATA": Data, b"RSET": Rset, b"QUIT": Quit, b"NOOP": Noop}

# Replies the server core suggests (texts as Postfix words them).
_BAD_SEQUENCE = {
    Mail: "Error: send HELO/EHLO first",
    Rcpt: "Error: need MAIL command",
    Data: "Error: need RCPT command",
    Bdat: "Error: need RCPT command",
    StartTLS: "Error: send EHLO first",
    Auth: "Error: send EHLO first",
}


def _reply(code: int, enhanced: str | None, text: str) -> Reply:
    return Reply(code=code, lines=(text,), enhanced_status=enhanced)


def _sync_error() -> RemoteProtocolError:
    return RemoteProtocolError(
        "client sent commands before our reply (RFC 2920 §3.1 synchronization)",
        _reply(554, "5.5.0", "Error: SMTP protocol synchronization"),
    )



# EHLO replies parsed, by their lines after the first: a server parses the one
# it sends on every connection, a client the same server's again and again.
# Capabilities are immutable, so one parse serves all; the table is bounded.
_CAPABILITIES_SEEN: dict[tuple[str, ...], Capabilities] = {}
_CAPABILITIES_SEEN_MAX = 256


def _capabilities(texts: Sequence[str]) -> Capabilities:
    key = tuple(texts[1:])
    caps = _CAPABILITIES_SEEN.get(key)
    if caps is None:
        caps = Capabilities.parse(key)
        if len(_CAPABILITIES_SEEN) >= _CAPABILITIES_SEEN_MAX:
            _CAPABILITIES_SEEN.clear()
        _CAPABILITIES_SEEN[key] = caps
    return caps


# Reply lines already parsed (client): the raw line with its CRLF ->
# (code, last, text, the line's enhanced status split as a one-line reply).
_ParsedLine = tuple[int, bool, str, tuple[Union[str, None], tuple[str, ...]]]
_REPLY_LINES: dict[bytes, _ParsedLine] = {}
_REPLY_LINES_MAX = 256
_REPLY_LINE_CACHED = 128  # longer lines (rare, often unique) are not kept


_new = object.__new__
_set = object.__setattr__


def _parsed_reply(code: int, lines: tuple[str, ...], enhanced: str | None, command: Event | None,
                  recipient: Rcpt | None = None) -> Reply:
    """A Reply from what the core parsed and checked, without Reply's own
    checks again (as ``_events._trusted``, with the fields set one by one: the
    client gets several replies per message).  Every field of Reply is set here;
    tests/test_transcripts.py holds it to ``Reply``'s constructor."""
    reply = _new(Reply)
    _set(reply, "code", code)
    _set(reply, "lines", lines)
    _set(reply, "enhanced_status", enhanced)
    _set(reply, "command", command)
    _set(reply, "recipient", recipient)
    return reply


_KeptReplies = dict[tuple[int, tuple[str, ...], Union[str, None], int], Reply]
_KEPT_REPLIES_MAX = 64


def _kept_reply(kept: _KeptReplies, code: int, lines: tuple[str, ...], enhanced: str | None,
                command: Event) -> Reply:
    """_parsed_reply, made once per line and command object on a connection:
    a client sends the same MAIL, RCPT, DATA and end-of-data events again and
    again and gets the same replies to them, and a Reply is immutable.  (Only
    for transaction commands: an AUTH response is never kept.)"""
    # Keyed by the command's id: the kept Reply holds its command, so no other
    # object can have that id while the entry lives.
    key = (code, lines, enhanced, id(command))
    reply = kept.get(key)
    if reply is not None:
        return reply
    reply = _parsed_reply(code, lines, enhanced, command)
    if len(kept) >= _KEPT_REPLIES_MAX:
        kept.clear()
    kept[key] = reply
    return reply


_PATHS_OK_MAX = 1024
_CLIENT_LINES_MAX = 256


class Connection:
    """One SMTP (or LMTP) session, client or server.

    :param our_role: :attr:`Role.CLIENT` or :attr:`Role.SERVER`.
    :param config: limits and policies; ``Config()`` when omitted.
    :param tls_active: the transport is already encrypted (implicit TLS, RFC
        8314), so STARTTLS is not offered and TLS-only rules are satisfied.
    :param allow_raw_unchecked: enable :meth:`send_raw_unchecked` (for fuzzers
        and test tools; off by default, and nothing else turns it on).
    """

    def __init__(self, our_role: Role, config: Config | None = None, *, tls_active: bool = False,
                 allow_raw_unchecked: bool = False) -> None:
        if not isinstance(our_role, Role):
            raise TypeError("our_role must be Role.CLIENT or Role.SERVER")
        self.our_role = our_role
        self.config = config if config is not None else Config()
        derived = _DERIVED.get(id(self.config))
        if derived is None or derived[0] is not self.config:
            derived = _derive(self.config)
        _, self._limits, self._server_deadlines, self._client_deadlines, self._lane_limit = derived
        self._state = State.GREETING
        self._buf = ReceiveBuffer()
        self._peer_closed = False
        self._tls_active = tls_active
        self._extensions = _NO_EXTENSIONS
        self._esmtp = False  # the session began with EHLO/LHLO (not HELO)
        self._pipelining = False  # _esmtp and _extensions.pipelining, asked at every pipelined command
        self._authenticated = False
        # Commands awaiting a reply.  Client: sent, not yet answered (pipelining
        # makes this a queue).  Server: received and not yet answered (at most one
        # command, or one entry per LMTP recipient after the end of data).
        # Each entry pairs the event with the command type whose table row its
        # reply follows (a refused BDAT LAST follows EndOfMessage's, a refused
        # line nobody's: None).
        self._pending: deque[tuple[Event | Greeting, type | None]] = deque()
        self._pending.append((_GREETING_EVENT, Greeting))
        # (Client) what the pipelining checks need to know about the pending
        # commands, kept as they are queued and answered so that each new
        # command costs O(1), not a walk of the queue: the state they lead to
        # if all succeed, how many group enders and MAILs are among them, and
        # the latest MAIL.  Recomputed from the queue when _ahead_ok is False
        # (a reply other than the assumed one, the LMTP fan-out, raw mode).
        self._ahead_ok = False
        self._ahead = State.GREETING
        self._enders = 0
        self._mails = 0
        self._last_mail: Mail | None = None
        # Transaction.
        self._recipients: list[Rcpt] = []
        self._pending_rcpts = 0  # client: RCPTs sent but not answered
        self._smtputf8 = False  # MAIL carried SMTPUTF8
        self._binarymime = False  # MAIL carried BODY=BINARYMIME
        self._bdat_total = 0
        self._bdat_failed = False
        # Content in flight.
        self._data_writer: DataWriter | None = None
        self._data_reader: DataReader | None = None
        self._bdat_remaining = 0
        self._bdat_current: Bdat | None = None
        self._bdat_refusal: CommandProblem | None = None  # server: chunk drained, then refused
        self._eom_due = False  # server: EndOfMessage to emit next
        self._client_content = False  # client: 354 received, EndOfMessage not yet sent
        self._client_eom_due = False  # client: BDAT LAST data sent, EndOfMessage due
        # Replies being assembled (client).
        self._reply_lines: list[tuple[int, str]] = []
        self._reply_size = 0
        # Server bookkeeping.
        self._greeted = False
        self._pregreet = False
        self._errors = 0
        self._junk = 0
        self._unknown = 0
        self._close_reason: RemoteProtocolError | None = None
        # An error found while producing an event: the event goes out first and
        # the error is raised by the next next_event(), so the events do not
        # depend on how TCP split the bytes (F-02).
        self._deferred: RemoteProtocolError | None = None
        # Client: bytes arrived while no command awaited a reply (T-11).
        self._stray = False
        # Client, LMTP: the BDAT LAST whose per-recipient replies are expected.
        self._lmtp_bdat: Bdat | None = None
        self._discarding = 0  # octets of an over-long command line dropped so far
        self._error_reply_allowed = False
        self._pregreet_enforce = False
        self._proxy: ProxyHeader | None = None
        self._proxy_pending = our_role is Role.SERVER and self.config.proxy_protocol != "off"
        self._allow_raw = allow_raw_unchecked is True
        # Client: paths and MAIL parameters that passed the checks (a sender sends
        # from, and to, the same few addresses again and again).
        self._paths_ok: dict[tuple[str, bool], None] = {}
        self._mail_params_ok: tuple[Capabilities, tuple[tuple[str, str | None], ...]] | None = None
        # Client: MAIL/RCPT lines made, by the event's id (see _client_line).
        self._client_lines: dict[int, tuple[Event, tuple[tuple[str, str | None], ...], bytes]] = {}
        self._kept_replies: _KeptReplies = {}  # (client) see _kept_reply

    # ------------------------------------------------------------ properties

    @property
    def state(self) -> State:
        """The session state as confirmed by the replies so far."""
        return self._state

    def _projected(self) -> State:
        state = self._state
        for cmd, ctype in self._pending:
            state = _assume_success(state, cmd, ctype)
        return state

    @property
    def our_state(self) -> State:
        """The state our own side has driven the session to: for a client, the
        state its pipelined commands will reach if they all succeed; for a
        server, the state after the replies it has sent."""
        return self._projected() if self.our_role is Role.CLIENT else self._state

    @property
    def their_state(self) -> State:
        """The state the peer has driven the session to: for a client, the state
        after the replies received; for a server, the state the client's pending
        command will reach if it is accepted."""
        return self._state if self.our_role is Role.CLIENT else self._projected()

    @property
    def extensions(self) -> Capabilities:
        """What the last EHLO/LHLO reply advertised (empty after HELO, before
        EHLO, and after STARTTLS until the new EHLO reply: RFC 3207 §4.2)."""
        return self._extensions

    @property
    def pending(self) -> tuple[Event, ...]:
        """Commands awaiting a reply, oldest first (the greeting is not listed)."""
        return tuple(c for c, _ in self._pending if isinstance(c, Event))

    @property
    def reply_owed(self) -> Event | None:
        """(Server) the event our next reply answers, or None."""
        if self.our_role is not _SERVER or not self._greeted:
            return None
        # Once the greeting is out, a server's queue holds only events.
        return self._pending[0][0] if self._pending else None  # type: ignore[return-value]

    @property
    def proxy(self) -> ProxyHeader | None:
        """(Server) the PROXY protocol header that opened the connection."""
        return self._proxy

    @property
    def tls_active(self) -> bool:
        return self._tls_active

    @property
    def authenticated(self) -> bool:
        """An AUTH exchange succeeded (235) in this session."""
        return self._authenticated

    @property
    def recipients(self) -> tuple[Rcpt, ...]:
        """Recipients accepted in the current transaction."""
        return tuple(self._recipients)

    @property
    def pipelining(self) -> bool:
        """PIPELINING was advertised in this session's EHLO/LHLO reply."""
        return self._pipelining

    @property
    def more_input_buffered(self) -> bool:
        """(Server) bytes of further pipelined input are already here, so an
        adapter may hold replies back and flush them all when it would block."""
        return bool(self._buf)

    @property
    def delay_advised(self) -> bool:
        """(Server) the soft error limit was reached: an adapter should slow its
        replies down (Postfix sleeps 1 s, smtpd_error_sleep_time)."""
        return self._errors >= self.config.soft_error_limit

    @property
    def error_count(self) -> int:
        """(Server) error replies (4xx/5xx) sent so far, plus junk overshoot."""
        return self._errors

    @property
    def trailing_data(self) -> tuple[bytes, bool]:
        """Bytes received but not processed, and whether the peer closed."""
        return self._buf.peek(len(self._buf)), self._peer_closed

    def deadline(self) -> Deadline | None:
        """The timeout for what we are waiting for now; None when we wait for
        nothing from the peer (a server that owes a reply, a client with nothing
        pending)."""
        if self._state in (_CLOSED, _ERROR, _TLS):
            return None
        if self.our_role is _SERVER:
            if self._pending or not self._greeted:  # a reply is owed, or the greeting
                return None
            if self._data_reader is not None or self._bdat_current is not None:
                return self._server_deadlines[1]
            return self._server_deadlines[0]
        deadlines = self._client_deadlines
        if self._client_content:
            return deadlines["data block"]
        if not self._pending:
            return None
        return deadlines.get(self._pending[0][1]) or deadlines["command"]

    # ------------------------------------------------------------ input

    def receive_data(self, data: bytes) -> None:
        """Buffer bytes from the peer; ``b""`` means the peer closed."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError("receive_data takes bytes")
        if not data:
            self._peer_closed = True
            return
        if self._peer_closed:
            raise RuntimeError("received data after the peer closed")
        if self.our_role is _SERVER:
            if not self._greeted:
                # Bytes before our greeting: a PROXY header if we expect one,
                # otherwise an early talker (P-01).
                self._pregreet = not self._proxy_pending
            elif self._state is _TLS:
                # T-01/T-02: plaintext after STARTTLS, before the hand-over.
                self._fail(RemoteProtocolError(
                    "cleartext data received during the STARTTLS hand-over",
                    _reply(554, "5.5.0", "Error: SMTP protocol synchronization")))
            else:
                # Greeted: the queue holds only events (reply_owed, inlined).
                owed = self._pending[0][0] if self._pending else None
                if isinstance(owed, StartTLS) and self._deferred is None:
                    # T-01, whatever the sync setting: plaintext behind STARTTLS.
                    self._deferred = RemoteProtocolError(
                        "data after STARTTLS before its reply (command injection)",
                        _reply(554, "5.5.0", "Error: SMTP protocol synchronization"))
                elif owed is not None and (type(owed) in GROUP_ENDERS or not self.pipelining) \
                        and self.config.enforce_pipelining_sync and not isinstance(owed, (EndOfMessage, Bdat)):
                    if self._deferred is None:
                        self._deferred = _sync_error()
        elif self._state is _TLS:
            self._fail(RemoteProtocolError("data received after the 220 reply to STARTTLS (T-06)"))
        elif not self._pending:
            # Nothing awaits a reply: whatever this is, it is not an answer (T-11).
            self._stray = True
        if self._state is not _ERROR:
            self._buf.append(data if type(data) is bytes else bytes(data))

    def _fail(self, exc: RemoteProtocolError) -> None:
        self._state = _ERROR
        self._close_reason = exc
        self._error_reply_allowed = exc.reply is not None and self.our_role is _SERVER

    def next_event(self) -> NextEvent:
        """The next event from the peer, ``NEED_DATA`` or ``PAUSED``.

        Raises :class:`RemoteProtocolError` when the peer broke the protocol; the
        connection is then in ``ERROR`` (a server may still send the error's
        reply once).
        """
        if self._state is _ERROR:
            if self._close_reason is not None:
                exc, self._close_reason = self._close_reason, None
                raise exc
            raise RemoteProtocolError("connection is in the ERROR state")
        try:
            if self._deferred is not None:
                exc, self._deferred = self._deferred, None
                raise exc
            if self.our_role is _SERVER:
                return self._next_server_event()
            return self._next_client_event()
        except RemoteProtocolError as exc:
            self._fail(exc)
            self._close_reason = None
            raise

    # ------------------------------------------------------------ client in

    def _next_client_event(self) -> NextEvent:
        state = self._state
        if state is _TLS:
            return PAUSED
        if state is _CLOSED:
            return ConnectionClosed()
        buf = self._buf
        cfg = self.config
        while True:
            raw = buf.take_line()
            if raw is None:
                if len(buf) > cfg.max_reply_line:
                    raise RemoteProtocolError("reply line too long (R-10)")
                if self._peer_closed:
                    if buf or self._reply_lines:
                        raise RemoteProtocolError("connection closed in the middle of a reply (F-01)")
                    self._state = State.CLOSED
                    return ConnectionClosed()
                return NEED_DATA
            end = len(raw)
            if end > cfg.max_reply_line:
                raise RemoteProtocolError("reply line too long (R-10)")
            parsed = _REPLY_LINES.get(raw)
            if parsed is None:
                parsed = self._parse_reply_line(raw)
            code, last, text, single = parsed
            lines = self._reply_lines
            if last and not lines:
                # A one-line reply (most are): its enhanced status split came with
                # the line; the reply is that line alone (_reply_size is 0).
                if end > cfg.max_reply_size:
                    raise RemoteProtocolError("reply too large (R-10)")
                return self._client_got_reply(code, single[1], single[0])
            if lines and code != lines[0][0]:
                raise RemoteProtocolError("reply code changed within a multi-line reply (R-11)")
            self._reply_size += end
            if self._reply_size > cfg.max_reply_size:
                raise RemoteProtocolError("reply too large (R-10)")
            lines.append((code, text))
            if last:
                break
        code = self._reply_lines[0][0]
        enhanced, texts = split_enhanced(code, [t for _, t in self._reply_lines])
        self._reply_lines = []
        self._reply_size = 0
        return self._client_got_reply(code, texts, enhanced)

    def _parse_reply_line(self, raw: bytes) -> _ParsedLine:
        """Parse one reply line with its line ending (R-11); a short line ending
        in CRLF is remembered, as servers send the same few lines again and again."""
        if raw.endswith(b"\r\n"):
            line = raw[:-2]
        elif self.config.bare_newline == "normalize":
            line = raw[:-1]
        else:
            raise RemoteProtocolError("reply line ends with a bare LF (R-11)")
        parsed = parse_reply_line(line)
        if parsed is None:
            raise RemoteProtocolError(f"malformed reply line {line[:40]!r} (R-11)")
        out = (parsed.code, parsed.last, parsed.text, split_enhanced(parsed.code, (parsed.text,)))
        if len(raw) <= _REPLY_LINE_CACHED and raw.endswith(b"\r\n"):
            if len(_REPLY_LINES) >= _REPLY_LINES_MAX:
                _REPLY_LINES.clear()
            _REPLY_LINES[raw] = out
        return out

    def _client_got_reply(self, code: int, texts: tuple[str, ...], enhanced: str | None) -> Reply:
        if self._stray:
            self._stray = False
            if code != 421:
                raise RemoteProtocolError("reply received while no command awaited one (T-11)")
            self._state = State.CLOSED
            return Reply(code=code, lines=texts, enhanced_status=enhanced)
        pending = self._pending
        if not pending:
            if code == 421:  # RFC 5321 §3.8: the server may close at any time.
                self._state = State.CLOSED
                return Reply(code=code, lines=texts, enhanced_status=enhanced)
            raise RemoteProtocolError("reply received with no command awaiting one (T-11)")
        cmd, ctype = pending.popleft()
        kind = type(cmd)
        if self._ahead_ok and ctype is not None:  # (a raw reply changes nothing)
            # A reply of the class assumed moves the state where the summary
            # assumed it would: the state the rest leads to is unchanged.
            if code // 100 != _SUCCESS_CLASS.get(ctype, 2) or ctype is EndOfMessage and self.config.lmtp:
                self._ahead_ok = False
            elif kind in GROUP_ENDERS:
                self._enders -= 1
            elif isinstance(cmd, Mail):
                self._mails -= 1
                if not self._mails:
                    self._last_mail = None
        if (kind is Rcpt or kind is Mail or kind is Data) and kind is ctype and code != 421 and (
                code < 300 or code >= 400 or code == 354 and kind is Data):
            # The replies to every transaction's commands: what _apply does
            # with them, inline (none of the rules below -- 3xx, STARTTLS, the
            # LMTP fan-out, raw mode -- is about them).
            before = self._state
            self._state = TRANSITIONS.get((before, kind, code // 100), before)
            if kind is Rcpt:
                assert isinstance(cmd, Rcpt)
                self._pending_rcpts -= 1
                if code < 400:
                    self._recipients.append(cmd)
            elif kind is Mail:
                assert isinstance(cmd, Mail)
                if code < 400:
                    self._reset_transaction()
                    params = cmd.params
                    self._smtputf8 = "SMTPUTF8" in params
                    self._binarymime = (params.get("BODY") or "").upper() == "BINARYMIME"
            else:
                assert isinstance(cmd, Data)
                if code == 354:
                    self._client_content = True
                    self._data_writer = DataWriter(normalize=self.config.client_bare_newline == "normalize")
            return _kept_reply(self._kept_replies, code, texts, enhanced, cmd)
        if kind is EndOfMessage and ctype is kind and (code < 300 or code >= 400) and not pending \
                and not self.config.lmtp:
            # The final reply of a transaction with nothing pipelined behind it.
            assert isinstance(cmd, Event)
            self._apply(kind, cmd, code, texts)
            return _kept_reply(self._kept_replies, code, texts, enhanced, cmd)
        if type(cmd) is RawBytes:
            # Raw mode: paired and reported, never checked against or applied to
            # the session state (see send_raw_unchecked).
            return _parsed_reply(code, texts, enhanced, cmd)
        assert ctype is not None
        command = cmd if isinstance(cmd, (Command, EndOfMessage, AuthResponse)) else None
        recipient = None
        if ctype is EndOfMessage and self.config.lmtp:
            if isinstance(cmd, Bdat) and cmd is not self._lmtp_bdat:
                # RFC 2033 §4.2 with RFC 3030: BDAT LAST gets one reply per accepted
                # recipient.  How many were accepted is only known now, when every
                # pipelined RCPT has been answered.
                self._lmtp_bdat = cmd
                self._ahead_ok = False
                for _ in range(len(self._recipients) - 1):
                    pending.appendleft((cmd, EndOfMessage))
            if self._recipients:
                # RFC 2033 §4.2: one reply per accepted recipient, in RCPT order.
                left = sum(1 for _, t in pending if t is EndOfMessage)
                recipient = self._recipients[len(self._recipients) - left - 1]
        cls = code // 100
        if cls == 3 and not (ctype is Data and code == 354 or ctype in (Auth, AuthResponse) and code == 334):
            raise RemoteProtocolError(f"unexpected {code} reply to {ctype.__name__}")
        if ctype is StartTLS and cls == 2 and self._buf:
            # T-06: nothing may follow the 220 in cleartext.  The reply is
            # reported, the error comes next; the injected bytes are never parsed.
            self._deferred = RemoteProtocolError("data after the 220 reply to STARTTLS (response injection, T-06)")
        if ctype is EndOfMessage and self.config.lmtp and pending and pending[0][1] is EndOfMessage:
            # LMTP: the session moves with the last recipient's reply.  Only the
            # queue head says whether one is still to come: an end of data
            # further back belongs to a transaction pipelined behind this one.
            pass
        else:
            self._apply(ctype, cmd, code, list(texts))
        # The code, lines and status were parsed and checked here (parse_reply_line
        # refuses what Reply's own checks would): no second validation.
        if kind is EndOfMessage and recipient is None and command is not None:
            return _kept_reply(self._kept_replies, code, texts, enhanced, command)
        return _parsed_reply(code, texts, enhanced, command, recipient)

    # ------------------------------------------------------------ transitions

    def _apply(self, ctype: type | None, cmd: object, code: int, texts: Sequence[str]) -> None:
        """Apply ``code`` answering ``cmd`` (both roles); ``ctype`` names the
        table row (None: a line that was no command at all)."""
        before = self._state
        positive = code < 400
        if isinstance(cmd, Rcpt) and self.our_role is _CLIENT:
            self._pending_rcpts -= 1
        if ctype is None:
            if code == 421:
                self._state = _CLOSED
            return
        self._state = next_state(before, ctype, code)
        if not positive:
            if ctype is Bdat:
                self._bdat_failed = True  # RFC 3030 §3: the client must RSET
            if ctype is EndOfMessage:
                self._reset_transaction()
            return
        if ctype in (Ehlo, Helo, Lhlo):
            self._esmtp = ctype is not Helo
            self._extensions = _capabilities(texts) if self._esmtp else _NO_EXTENSIONS
            self._pipelining = self._esmtp and self._extensions.pipelining
            self._reset_transaction()
        elif ctype is Mail:
            assert isinstance(cmd, Mail)
            self._reset_transaction()
            self._smtputf8 = "SMTPUTF8" in cmd.params
            self._binarymime = (cmd.params.get("BODY") or "").upper() == "BINARYMIME"
        elif ctype is Rcpt:
            assert isinstance(cmd, Rcpt)
            self._recipients.append(cmd)
        elif ctype is Rset:
            self._reset_transaction()
        elif ctype is Data and code == 354:
            if self.our_role is _CLIENT:
                self._client_content = True
                self._data_writer = DataWriter(normalize=self.config.client_bare_newline == "normalize")
            else:
                cfg = self.config
                self._data_reader = DataReader(
                    normalize=cfg.bare_newline == "normalize", max_line=cfg.max_data_line,
                    max_size=self._size_limit())
        elif ctype is StartTLS:
            self._extensions = _NO_EXTENSIONS
            self._pipelining = False
        elif ctype is Xclient:
            # Postfix: the session starts over as if the proxied client had
            # connected; the EHLO (and what it advertised) must be redone.
            self._esmtp = False
            self._extensions = _NO_EXTENSIONS
            self._pipelining = False
            self._authenticated = False
            self._reset_transaction()
        elif ctype in (Auth, AuthResponse) and code == 235:
            self._authenticated = True
        elif ctype is EndOfMessage:
            self._junk = 0  # Postfix resets the junk count after a delivery
            self._reset_transaction()

    def _reset_transaction(self) -> None:
        self._recipients = []
        # The LMTP fan-out is marked by the BDAT event itself; the next message
        # may send that very object again (an application's constant).
        self._lmtp_bdat = None
        self._smtputf8 = False
        self._binarymime = False
        self._bdat_total = 0
        self._bdat_failed = False

    def _size_limit(self) -> int:
        advertised = self._extensions.size if self._esmtp else None
        limit = self.config.max_message_size
        return min(advertised, limit) if advertised else limit

    # ------------------------------------------------------------ server in

    def _next_server_event(self) -> NextEvent:
        if self._state is _CLOSED:
            return ConnectionClosed()
        if self._proxy_pending:
            return self._read_proxy()
        if not self._greeted or self._state is _TLS:
            return PAUSED
        if self._pregreet:
            self._pregreet = False
            if self.config.pregreet == "drop":
                raise RemoteProtocolError(
                    "client talked before the greeting (P-01)",
                    _reply(521, "5.5.1", "Protocol error"))
            if self.config.pregreet == "enforce":
                self._pregreet_enforce = True
        if self._eom_due:
            self._eom_due = False
            return self._end_of_content()
        if self._bdat_current is not None:
            return self._read_bdat()
        if self._pending:  # a reply is owed (greeted: the queue holds only events)
            return PAUSED
        if self._errors >= self.config.hard_error_limit:
            raise RemoteProtocolError("too many errors (R-07)", _reply(421, "4.7.0", "Error: too many errors"))
        if self._data_reader is not None:
            return self._read_data()
        if not self._buf and not self._peer_closed:
            return NEED_DATA  # what _read_line would conclude (asked after every reply)
        lane = self._command_lane()
        if lane is not None:
            return lane
        # Buffer no more than the longest line this one may become: an AUTH
        # line with its initial response (RFC 4954 §4) or a MAIL/RCPT line with
        # parameters.  The verb is in the first five octets, which every limit
        # exceeds, so the choice never depends on the chunking; each verb's own
        # limit is applied once the line is parsed.
        limit = self.config.max_mail_rcpt_line
        if self._state is _AUTH or self._buf.peek(5).upper() == b"AUTH ":
            limit = max(limit, self.config.max_auth_line)
        line = self._read_line(limit)
        if line is None:
            if self._peer_closed:
                return self._peer_gone()
            return NEED_DATA
        event = self._line_event(line)
        if isinstance(event, StartTLS) and self._buf:
            # T-01 / T-02, whatever the sync setting: the injected bytes are
            # never parsed; the event is reported and the error follows.
            self._deferred = RemoteProtocolError(
                "data after STARTTLS in the same read (command injection)",
                _reply(554, "5.5.0", "Error: SMTP protocol synchronization"))
        elif self._buf and self.config.enforce_pipelining_sync and self._bdat_current is None \
                and not isinstance(event, (AuthResponse, _Sentinel)):
            # S-12 / P-02: more input already here although this command ends a
            # group, or the client pipelines without PIPELINING.
            if type(event) in GROUP_ENDERS or not self.pipelining:
                self._deferred = _sync_error()
        return event

    def _command_lane(self) -> Command | None:
        """The common case, without the general line reader: the buffer holds
        exactly one short, clean command line (what a client that does not
        pipeline sends, in one read).  The events, checks and state changes are
        the general path's; anything out of the ordinary -- a refusal, AUTH,
        BDAT, a second line, a CR or non-ASCII octet -- returns None before
        anything changed, and the general path takes it, so every error has
        one code path."""
        line = self._buf.sole()
        if line is None or len(line) > self._lane_limit or self._discarding or self._state is _AUTH:
            return None
        end = len(line) - 2
        if line.find(b"\n") != end + 1 or line.find(b"\r") != end or not line.isascii():
            return None
        cmd: Command | CommandProblem
        cls = _BARE_VERBS.get(line[:end].upper()) if end == 4 else None
        if cls is not None:
            cmd = cls()
        else:
            cmd = parse_command(line[:end].decode("ascii"), utf8=False, lmtp=self.config.lmtp, limits=self._limits)
            if isinstance(cmd, (CommandProblem, Bdat, Auth)):
                return None
        if self._check_command(cmd, end + 2) is not None:
            return None
        self._buf.clear()
        return self._accepted(cmd)

    def _accepted(self, cmd: Command) -> Command:
        """``cmd`` passed every check: it awaits its reply (junk is counted)."""
        if isinstance(cmd, _JUNK):
            self._junk += 1
            if self._junk > self.config.junk_command_limit:
                self._errors += 1  # Postfix: junk past the limit counts as an error
        self._pending.append((cmd, type(cmd)))
        return cmd

    def _peer_gone(self) -> ConnectionClosed:
        """The client closed: whatever transaction was open is discarded (F-01)."""
        self._reset_transaction()
        self._state = _CLOSED
        return ConnectionClosed()

    def _read_proxy(self) -> NextEvent:
        mode = self.config.proxy_protocol
        try:
            header = parse_proxy_header(self._buf.peek(len(self._buf)),
                                        allow_v1=mode in ("v1", "any"), allow_v2=mode in ("v2", "any"))
        except ProxyProtocolError as exc:
            # Not SMTP's business to answer: whoever sent this is no proxy of ours.
            raise RemoteProtocolError(f"bad PROXY protocol header: {exc}") from None
        if header is None:
            if self._peer_closed:
                self._state = _CLOSED
                return ConnectionClosed()
            return NEED_DATA
        self._buf.discard(header.consumed)
        self._proxy_pending = False
        self._proxy = header
        self._pregreet = bool(self._buf)
        return ProxyConnected(header=header)

    def _read_line(self, limit: int) -> bytes | InvalidCommand | UnknownCommand | None:
        """One line without its terminator, an InvalidCommand for an over-long or
        bare-LF line, or None when more bytes are needed.

        Lines end at CRLF only (RFC 5321 §2.3.8); with ``bare_newline="reject"``
        a bare LF does not end a line, so nothing after it on the same line
        can run as a command (S-15).  An over-long line is never buffered past
        ``limit`` (R-02): it is dropped as it comes and answered once it ends;
        past ``max_discard`` octets the client is given up on.  Both decisions
        depend only on the line, never on how it was split.
        """
        buf = self._buf
        normalize = self.config.bare_newline == "normalize"
        end = buf.find(b"\n" if normalize else b"\r\n")
        if end < 0:
            if self._discarding or len(buf) > limit:
                # Keep a trailing CR: it may be half of the CRLF that ends the line.
                keep = 1 if not normalize and buf.endswith(b"\r") else 0
                self._discarding += len(buf) - keep
                buf.discard(len(buf) - keep)
                self._check_discard_budget()
            return None
        if self._discarding or end > limit:
            self._discarding += end
            buf.discard(end)
            self._check_discard_budget()
            self._discarding = 0
            return self._problem(CommandProblem(None, "command line too long", 500, "5.5.2",
                                                "Error: line too long"), b"", None)
        raw = buf.take(end)
        line = raw[:-2] if raw.endswith(b"\r\n") else raw[:-1]
        if b"\n" in line:
            # S-15: Postfix "bare <LF> received"; nothing on this line is executed.
            return self._problem(CommandProblem(None, "bare LF in command line", 500, "5.5.2",
                                                "Error: bare <LF> received"), raw, None)
        return line

    def _check_discard_budget(self) -> None:
        if self._discarding > self.config.max_discard:
            raise RemoteProtocolError("endless command line (R-02)",
                                      _reply(500, "5.5.2", "Error: line too long"))

    def _problem(self, problem: CommandProblem, raw: bytes, ctype: type | None) -> InvalidCommand | UnknownCommand:
        reply = _reply(problem.code, problem.enhanced, problem.text)
        event: InvalidCommand | UnknownCommand
        if problem.unknown:
            event = UnknownCommand(verb=problem.verb or "", line=raw, reply=reply)
        else:
            event = InvalidCommand(command=problem.verb, reason=problem.reason, reply=reply, line=raw)
        self._pending.append((event, ctype))
        return event

    def _line_event(self, line: bytes | InvalidCommand | UnknownCommand) -> Event | _Sentinel:
        if isinstance(line, (InvalidCommand, UnknownCommand)):
            return line
        if self._state is _AUTH:
            return self._auth_line(line)
        if b"\r" in line and self.config.bare_newline == "reject":
            verb = line.split(b" ", 1)[0].upper()
            if verb not in (b"MAIL", b"RCPT"):
                # Strict policy; in MAIL/RCPT the address grammar refuses it
                # with the more telling 501 5.1.x (S-16).
                return self._problem(CommandProblem(None, "bare CR in command line", 500, "5.5.2",
                                                    "Error: bare <CR> received"), line, None)
        try:
            text: str | None = line.decode("ascii")
        except UnicodeDecodeError:
            text = None
        if text is None:
            verb = line.split(b" ", 1)[0].upper()
            utf8_ok = self._esmtp and self._extensions.smtputf8
            vname = verb.decode("ascii", "replace")
            ctype = _VERB_TYPES.get(vname)
            if verb == b"MAIL" and utf8_ok and b" SMTPUTF8" in line.upper() or verb == b"RCPT" and self._smtputf8 \
                    or verb in (b"VRFY", b"EXPN") and utf8_ok:  # RFC 6531 §3.7.4.2
                try:
                    text = line.decode("utf-8")
                except UnicodeDecodeError:
                    return self._problem(CommandProblem(vname, "invalid UTF-8", 501, "5.5.2",
                                                        "Error: invalid UTF-8"), line, ctype)
            elif verb in (b"MAIL", b"RCPT"):
                # C-06: UTF-8 addresses only with SMTPUTF8 (RFC 6531 §3.4).
                return self._problem(CommandProblem(vname, "non-ASCII address without SMTPUTF8", 553, "5.6.7",
                                                    "Error: SMTPUTF8 is required for UTF-8 addresses"), line, ctype)
            else:
                return self._problem(CommandProblem(None, "non-ASCII command line", 500, "5.5.2",
                                                    "Error: non-ASCII command"), line, None)
        parsed = parse_command(text, utf8=not text.isascii(), lmtp=self.config.lmtp, limits=self._limits)
        if isinstance(parsed, CommandProblem):
            if parsed.unknown:
                self._unknown += 1
                if self._unknown > self.config.unknown_command_limit:
                    raise RemoteProtocolError("too many unknown commands (R-07)",
                                              _reply(421, "4.7.0", "Error: too many unrecognized commands"))
            return self._problem(parsed, line, _VERB_TYPES.get(parsed.verb or ""))
        problem = self._check_command(parsed, len(line) + 2)
        if isinstance(parsed, Bdat):
            # S-13: a chunk's octets are consumed whatever happens to it; a
            # refused chunk is drained first and answered after.
            self._bdat_current = parsed
            self._bdat_remaining = parsed.size
            if problem is not None:
                self._bdat_refusal = problem
            else:
                self._bdat_total += parsed.size
                self._bdat_refusal = None
                return parsed
            return self._read_bdat()
        if problem is not None:
            return self._problem(problem, line, type(parsed))
        return self._accepted(parsed)

    def _auth_line(self, line: bytes) -> Event:
        if line == b"*":
            event = AuthResponse(cancelled=True)
        else:
            data = decode_sasl(line.decode("ascii", "replace")) if line and line != b"=" else (b"" if not line else None)
            if data is None:
                # RFC 4954 §4: an undecodable response fails the exchange with 501.
                return self._problem(CommandProblem("AUTH", "response is not base64", 501, "5.5.2",
                                                    "Error: cannot decode response"), line, AuthResponse)
            event = AuthResponse(data=data)
        self._pending.append((event, AuthResponse))
        return event

    def _check_command(self, cmd: Command, line_len: int) -> CommandProblem | None:
        """Sequence, extension and policy checks (server)."""
        cfg = self.config
        verb = cmd.verb
        # The parser makes exactly these classes (events are final), so the
        # type is compared, not isinstance'd, at every command.
        kind = type(cmd)
        limit = cfg.max_mail_rcpt_line if kind is Mail or kind is Rcpt else cfg.max_command_line
        if kind is Auth:
            limit = cfg.max_auth_line
        if line_len > limit:
            return CommandProblem(verb, "command line too long", 500, "5.5.2", "Error: line too long")
        if self._pregreet_enforce and kind is not Quit:
            return CommandProblem(verb, "client talked before the greeting", 550, "5.5.1", "Protocol error")
        if (kind is Ehlo or kind is Helo or kind is Lhlo) and cfg.lmtp != (kind is Lhlo):
            return CommandProblem(verb, "wrong hello", 500, "5.5.2", "Error: command not recognized")
        state = self._state
        if kind not in ALLOWED[state]:
            return self._sequence_problem(cmd, state)
        ext = self._extensions if self._esmtp else _NO_EXTENSIONS
        if kind is StartTLS:
            if self._tls_active:
                return CommandProblem(verb, "TLS already active", 554, "5.5.1", "Error: TLS already active")
            if not ext.starttls:
                return CommandProblem(verb, "STARTTLS not advertised", 502, "5.5.1", "Error: command not implemented")
        elif kind is Auth:
            assert isinstance(cmd, Auth)
            if not self._tls_active and (cfg.require_tls or not cfg.allow_auth_without_tls):
                # T-04: said before "not advertised", which is what it causes.
                return CommandProblem(verb, "AUTH without TLS", 538, "5.7.11",
                                      "Encryption required for requested authentication mechanism")
            if not ext.auth:
                return CommandProblem(verb, "AUTH not advertised", 503, "5.5.1", "Error: authentication not enabled")
            if self._authenticated:
                return CommandProblem(verb, "already authenticated", 503, "5.5.1", "Error: already authenticated")
            if cmd.mechanism not in ext.auth_mechanisms:
                return CommandProblem(verb, "mechanism not advertised", 504, "5.5.4",
                                      "Unrecognized authentication type")
        elif kind is Mail:
            assert isinstance(cmd, Mail)
            if cfg.require_tls and not self._tls_active:
                return CommandProblem(verb, "MAIL before STARTTLS", 530, "5.7.0",
                                      "Must issue a STARTTLS command first")
            if not cmd.reverse_path.isascii() and "SMTPUTF8" not in cmd.params:
                return CommandProblem(verb, "non-ASCII sender without SMTPUTF8", 553, "5.6.7",
                                      "Error: SMTPUTF8 is required for UTF-8 addresses")
            problem = check_mail_params(cmd.params, ext, max_size=self._size_limit())
            if problem is not None:
                return CommandProblem(verb, problem.text, problem.code, problem.enhanced, problem.text)
        elif kind is Rcpt:
            assert isinstance(cmd, Rcpt)
            if len(self._recipients) >= cfg.max_recipients:
                # RFC 5321 §4.5.3.1.10: 452, not 5xx; the transaction goes on.
                return CommandProblem(verb, "too many recipients", 452, "4.5.3", "Error: too many recipients")
            problem = check_rcpt_params(cmd.params, ext, smtputf8=self._smtputf8)
            if problem is not None:
                return CommandProblem(verb, problem.text, problem.code, problem.enhanced, problem.text)
        elif kind is Xclient or kind is Xforward:
            assert isinstance(cmd, (Xclient, Xforward))
            advertised = ext.xclient if isinstance(cmd, Xclient) else ext.xforward
            if advertised is None:
                return CommandProblem(verb, f"{verb} not advertised", 502, "5.5.1", "Error: command not implemented")
            unknown = sorted(set(cmd.attributes) - set(advertised))
            if unknown:
                return CommandProblem(verb, "attribute not advertised", 501, "5.5.4",
                                      f"Bad {verb} attribute name: {unknown[0]}")
        elif kind is Data:
            if self._binarymime:
                # RFC 3030 §3: BINARYMIME content must go by BDAT.
                return CommandProblem(verb, "DATA with BODY=BINARYMIME", 503, "5.5.1",
                                      "Error: BINARYMIME requires BDAT")
        elif kind is Bdat:
            assert isinstance(cmd, Bdat)
            if not ext.chunking:
                return CommandProblem(verb, "BDAT without CHUNKING", 502, "5.5.1", "Error: command not implemented")
            if self._bdat_failed:
                return CommandProblem(verb, "BDAT after a failed chunk", 503, "5.5.1",
                                      "Error: transaction aborted, send RSET")
            if self._bdat_total + cmd.size > self._size_limit():
                return CommandProblem(verb, "message too big", 552, "5.3.4", "Error: message file too big")
        return None

    def _sequence_problem(self, cmd: Command, state: State) -> CommandProblem:
        verb = cmd.verb
        if state is _NO_SERVICE:
            return CommandProblem(verb, "no service (554 greeting)", 503, "5.5.1", "Error: no SMTP service here")
        if state is _HELLO:
            return CommandProblem(verb, "bad sequence", 503, "5.5.1", "Error: send HELO/EHLO first")
        if isinstance(cmd, Mail):
            return CommandProblem(verb, "bad sequence", 503, "5.5.1", "Error: nested MAIL command")
        if isinstance(cmd, Data) and state is _MAIL and self.pipelining:
            # RFC 2920 §3.1: every RCPT failed, so DATA gets 554.
            return CommandProblem(verb, "no valid recipients", 554, "5.5.1", "Error: no valid recipients")
        if isinstance(cmd, (Auth, StartTLS)) and state in (_MAIL, _RCPT, _BDAT):
            return CommandProblem(verb, "bad sequence", 503, "5.5.1", "Error: MAIL transaction in progress")
        if isinstance(cmd, Data) and state is _BDAT:
            return CommandProblem(verb, "DATA after BDAT", 503, "5.5.1", "Error: DATA not allowed after BDAT")
        text = _BAD_SEQUENCE.get(type(cmd), "Error: bad sequence of commands")
        return CommandProblem(verb, "bad sequence", 503, "5.5.1", text)

    def _read_data(self) -> NextEvent:
        reader = self._data_reader
        assert reader is not None
        while True:
            out = reader.step(self._buf.peek(len(self._buf))) if self._buf else None
            if out is None:
                if self._peer_closed:
                    # F-01: no message event for a partial message.
                    self._data_reader = None
                    return self._peer_gone()
                return NEED_DATA
            self._buf.discard(out.consumed)
            if out.end:
                if out.data:
                    self._eom_due = True
                    return MessageData(data=out.data)
                return self._end_of_content()
            if out.data:
                return MessageData(data=out.data)

    def _end_of_content(self) -> Event:
        reader, self._data_reader = self._data_reader, None
        copies = len(self._recipients) if self.config.lmtp else 1
        if reader is not None and reader.violation is not None:
            rejected = MessageRejected(reason=reader.violation, reply=_violation_reply(reader.violation))
            for _ in range(copies):
                self._pending.append((rejected, EndOfMessage))
            return rejected
        eom = EndOfMessage()
        for _ in range(copies):
            self._pending.append((eom, EndOfMessage))
        return eom

    def _read_bdat(self) -> NextEvent:
        current = self._bdat_current
        assert current is not None
        if not self._buf and self._bdat_remaining:
            if self._peer_closed:
                self._bdat_current = None
                return self._peer_gone()
            return NEED_DATA
        n = min(self._bdat_remaining, len(self._buf))
        chunk = self._buf.take(n)
        self._bdat_remaining -= n
        if self._bdat_remaining:
            if self._bdat_refusal is not None:
                return NEED_DATA  # drained, nothing handed on
            return MessageData(data=chunk)
        self._bdat_current = None
        refusal, self._bdat_refusal = self._bdat_refusal, None
        if refusal is not None:
            # The table row is the one the client's side follows for this BDAT.
            event = self._problem(refusal, b"", EndOfMessage if current.last else Bdat)
            if current.last and self.config.lmtp:
                # LMTP: even a refused BDAT LAST is answered once per recipient.
                for _ in range(len(self._recipients) - 1):
                    self._pending.append((event, EndOfMessage))
            return event
        if not current.last:
            self._pending.append((current, Bdat))
            if chunk:
                return MessageData(data=chunk)
            return self._next_server_event()
        if chunk:
            self._eom_due = True
            return MessageData(data=chunk)
        return self._end_of_content()

    # ------------------------------------------------------------ output

    def send(self, event: Event) -> bytes:
        """The bytes that carry ``event`` to the peer.

        Raises :class:`LocalProtocolError` (nothing to write, state unchanged)
        when the event is not valid now.
        """
        if self.our_role is _SERVER:
            return self._server_send(event)
        return self._client_send(event)

    def send_raw_unchecked(self, data: bytes, *, expect_replies: int = 0) -> bytes:
        """``data`` as it is, for the wire: no syntax, sequence or limit check.

        For fuzzers and test tools that must put malformed bytes or
        out-of-sequence commands in front of a peer.  Only available when the
        connection was created with ``allow_raw_unchecked=True``; otherwise it
        raises :class:`LocalProtocolError`.

        A raw send never changes the session: :attr:`state`,
        :attr:`our_state`, :attr:`extensions`, the transaction and any content
        in progress stay as the checked events left them, and later
        :meth:`send` calls are checked against that state only.

        Client: ``expect_replies`` is how many replies the peer owes for these
        bytes.  They are queued behind the commands already pending, so replies
        stay paired in order (pipelining checks see them as pending); each
        arrives as a :class:`Reply` whose ``command`` is a :class:`RawBytes`,
        with any code, and drives no transition (a 354 starts no content, a
        220 no TLS hand-over, a 421 closes nothing: the end of the stream
        does).  A reply beyond what is expected is refused as unsolicited
        (T-11), as always.  Server: ``expect_replies`` must be 0; the bytes
        answer nothing, so :attr:`reply_owed` is unchanged.

        To make the state machine believe something other than what goes on the
        wire, call :meth:`send` too and do not write its bytes.
        """
        if not self._allow_raw:
            raise LocalProtocolError(
                "raw mode is off: create the Connection with allow_raw_unchecked=True to use send_raw_unchecked")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError("send_raw_unchecked takes bytes")
        if isinstance(expect_replies, bool) or not isinstance(expect_replies, int) or expect_replies < 0:
            raise ValueError(f"expect_replies must be an int >= 0, not {expect_replies!r}")
        out = bytes(data)
        if not expect_replies:
            return out
        if self.our_role is Role.SERVER:
            raise LocalProtocolError("a server expects no replies (expect_replies must be 0)")
        if self._state in (State.CLOSED, State.ERROR):
            raise LocalProtocolError(f"no replies can be read in state {self._state.name}")
        if not self._pending and (self._buf or self._reply_lines):
            self._stray = True  # they arrived before these bytes were sent (T-11)
        marker = RawBytes(data=out)
        for _ in range(expect_replies):
            self._client_queue(marker, None)
        return out

    def send_failed(self) -> None:
        """Tell the connection that writing failed: it moves to ``ERROR``."""
        self._state = State.ERROR
        self._error_reply_allowed = False

    def tls_established(self) -> None:
        """The adapter finished the TLS handshake after STARTTLS: the session
        starts over (RFC 3207 §4.2) and needs a new EHLO."""
        if self._state is not State.TLS:
            raise LocalProtocolError("tls_established() without a STARTTLS hand-over in progress")
        self._tls_active = True
        self._state = State.HELLO
        self._ahead_ok = False
        self._esmtp = False
        self._extensions = _NO_EXTENSIONS
        self._pipelining = False
        self._authenticated = False
        self._reset_transaction()

    # ------------------------------------------------------------ client out

    def _client_send(self, event: Event) -> bytes:
        state = self._state
        if state is _CLOSED or state is _ERROR:
            raise LocalProtocolError(f"cannot send in state {state.name}")
        kind = type(event)
        if kind is MessageData and self._client_content:
            assert isinstance(event, MessageData) and self._data_writer is not None
            return self._data_writer.write(event.data)
        if kind is Mail or kind is Rcpt or kind is Data:
            # Every transaction's commands: the same checks as below, fewer tests
            # of the type (the general path costs ~5 us more per message).
            assert isinstance(event, (Mail, Rcpt, Data))
            if self._client_content or self._bdat_current is not None or self._client_eom_due:
                raise LocalProtocolError("message content is in progress; finish it first")
            self._client_check(event)
            if not self._pending and (self._buf or self._reply_lines):
                self._stray = True  # they arrived before this command existed (T-11)
            line = b"DATA\r\n" if kind is Data else self._client_line(event)
            if kind is Rcpt:
                self._pending_rcpts += 1
            self._client_queue(event, kind)
            return line
        if isinstance(event, MessageData):
            return self._client_content_data(event.data)
        if isinstance(event, EndOfMessage):
            return self._client_end()
        if self._client_content or self._bdat_current is not None or self._client_eom_due:
            raise LocalProtocolError("message content is in progress; finish it first")
        if isinstance(event, AuthResponse):
            if self._state is not State.AUTH or self._pending:
                raise LocalProtocolError("AuthResponse is only valid after a 334 challenge")
            line = format_auth_response(event).encode("ascii")
            if len(line) + 2 > self.config.max_auth_line:
                raise LocalProtocolError("AUTH response longer than the AUTH line limit")
            self._client_queue(event, AuthResponse)
            return line + b"\r\n"
        if not isinstance(event, Command):
            raise LocalProtocolError(f"a client cannot send {type(event).__name__}")
        self._client_check(event)
        if not self._pending and (self._buf or self._reply_lines):
            self._stray = True  # they arrived before this command existed (T-11)
        # Every other command (MAIL, RCPT and DATA went above).
        encoded = format_command(event).encode("utf-8")
        limit = self.config.max_command_line
        if len(encoded) + 2 > limit:
            if isinstance(event, Auth):
                # RFC 4954 §4: the AUTH command keeps SMTP's line limit; a client
                # MUST NOT use an initial response that would break it.
                raise LocalProtocolError(
                    f"AUTH line longer than {limit} octets: send Auth without initial_response "
                    "and give it as the AuthResponse to the 334 (RFC 4954 §4)")
            raise LocalProtocolError(f"{event.verb} line longer than {limit} octets")
        ctype: type = type(event)
        if isinstance(event, Bdat):
            if event.last:
                ctype = EndOfMessage
            self._bdat_remaining = event.size
            self._bdat_current = event if event.size else None
            self._client_eom_due = event.last and event.size == 0
        self._client_queue(event, ctype)
        return encoded + b"\r\n"

    def _recount(self) -> None:
        """What _client_check needs about the pending commands, from the queue."""
        state = self._state
        enders = mails = 0
        last: Mail | None = None
        for c, ctype in self._pending:
            if type(c) in GROUP_ENDERS:
                enders += 1
            if isinstance(c, Mail):
                mails += 1
                last = c
            if ctype is not None:  # a client's queue holds no server-only events
                state = _assumed(state, c, ctype)
        self._ahead, self._enders, self._mails, self._last_mail = state, enders, mails, last
        self._ahead_ok = True

    def _client_queue(self, event: Event, ctype: type | None) -> None:
        """Queue ``event`` for its reply (client), keeping the _ahead summary."""
        pending = self._pending
        if not pending:  # nothing pending: the summary starts from the state itself
            self._ahead, self._enders, self._mails, self._last_mail = self._state, 0, 0, None
            self._ahead_ok = True
        pending.append((event, ctype))
        if self._ahead_ok:
            kind = type(event)
            if kind in GROUP_ENDERS:
                self._enders += 1
            elif isinstance(event, Mail):
                self._mails += 1
                self._last_mail = event
            if ctype is not None:
                self._ahead = _assumed(self._ahead, event, ctype)

    def _client_line(self, event: Command) -> bytes:
        """The line for MAIL or RCPT, with its CRLF, within its limit, formatted
        once while the event's params stay the same: a client sends the same
        few events again and again."""
        assert isinstance(event, (Mail, Rcpt))
        params = event.params
        items = tuple(params.items()) if params else ()
        memo = self._client_lines.get(id(event))
        if memo is not None and memo[0] is event and memo[1] == items:
            return memo[2]
        encoded = format_command(event).encode("utf-8")
        limit = self.config.max_mail_rcpt_line
        if len(encoded) + 2 > limit:
            raise LocalProtocolError(f"{event.verb} line longer than {limit} octets")
        line = encoded + b"\r\n"
        if len(self._client_lines) >= _CLIENT_LINES_MAX:
            self._client_lines.clear()
        self._client_lines[id(event)] = (event, items, line)  # the event is kept: its id stays its own
        return line

    def _client_check(self, cmd: Command) -> None:
        cfg = self.config
        state = self._state
        # The MAIL of the transaction this command belongs to when it is still
        # pending (then self._smtputf8 etc. describe the one before it).
        pending_mail: Mail | None = None
        pending = self._pending
        if pending:
            if isinstance(pending[0][0], Greeting):
                raise LocalProtocolError("wait for the server's greeting")
            if not self._pipelining:
                raise LocalProtocolError("the server did not advertise PIPELINING; wait for the reply")
            if not self._ahead_ok:
                self._recount()
            if self._enders:
                ender = next(type(c) for c, _ in pending if type(c) in GROUP_ENDERS)
                raise LocalProtocolError(
                    f"{ender.__name__} ends a pipelined group (RFC 2920 §3.1); wait for its reply")
            # The group is open: this command follows the state the pending
            # ones lead to if they all succeed.
            state = self._ahead
            pending_mail = self._last_mail
        if type(cmd) not in ALLOWED[state]:
            raise LocalProtocolError(f"{cmd.verb} is not valid in state {state.name}")
        ext = self._extensions if self._esmtp else _NO_EXTENSIONS
        if isinstance(cmd, Rcpt):  # the common commands first; the classes are disjoint
            utf8 = self._smtputf8 if pending_mail is None else "SMTPUTF8" in pending_mail.params
            if cmd.forward_path.lower() != "postmaster":
                self._check_path(cmd.forward_path, utf8=utf8, what="forward path")
            if cmd.params:
                problem = check_rcpt_params(cmd.params, ext, smtputf8=utf8)
                if problem is not None:
                    raise LocalProtocolError(f"RCPT parameters refused: {problem.code} {problem.text}")
            if len(self._recipients) + self._pending_rcpts >= cfg.max_recipients:
                raise LocalProtocolError("too many recipients for one transaction")
        elif isinstance(cmd, Mail):
            if cfg.require_tls and not self._tls_active:
                raise TLSRequiredError("refusing to send MAIL before TLS (T-08, T-09)")
            utf8 = "SMTPUTF8" in cmd.params
            self._check_path(cmd.reverse_path, utf8=utf8, what="reverse path")
            items = tuple(cmd.params.items())
            if self._mail_params_ok != (ext, items):
                problem = check_mail_params(cmd.params, ext, max_size=None)
                if problem is not None:  # also C-06: SMTPUTF8 must be advertised
                    raise LocalProtocolError(f"MAIL parameters refused: {problem.code} {problem.text}")
                # Remembered for the next MAIL: the same parameters against the same
                # (immutable) capabilities give the same answer.
                self._mail_params_ok = (ext, items)
        elif isinstance(cmd, Data):
            binary = self._binarymime if pending_mail is None else (
                (pending_mail.params.get("BODY") or "").upper() == "BINARYMIME")
            if binary:
                raise LocalProtocolError("BODY=BINARYMIME content must be sent with BDAT (RFC 3030 §3)")
        elif isinstance(cmd, (Ehlo, Helo, Lhlo)):
            if cfg.lmtp != isinstance(cmd, Lhlo):
                raise LocalProtocolError("LMTP uses LHLO; SMTP uses EHLO/HELO")
            try:
                check_domain_or_literal(cmd.domain, limit=cfg.max_domain)
            except SyntaxProblem as exc:  # C-04
                raise LocalProtocolError(f"bad {cmd.verb} domain: {exc}") from None
        elif isinstance(cmd, StartTLS):
            if self._tls_active:
                raise LocalProtocolError("TLS is already active")
            if not ext.starttls:
                raise LocalProtocolError("the server did not advertise STARTTLS")
        elif isinstance(cmd, Auth):
            if not self._tls_active and (cfg.require_tls or not cfg.allow_auth_without_tls):
                raise TLSRequiredError("refusing to send AUTH over a cleartext connection (T-08)")
            if not ext.auth:
                raise LocalProtocolError("the server did not advertise AUTH")
            if cmd.mechanism not in ext.auth_mechanisms:
                raise LocalProtocolError(f"the server did not advertise AUTH {cmd.mechanism}")
            if self._authenticated:
                raise LocalProtocolError("already authenticated")
        elif isinstance(cmd, Bdat):
            if not ext.chunking:
                raise LocalProtocolError("the server did not advertise CHUNKING")
            if self._bdat_failed:
                # RFC 3030 §2: after a failed chunk the sender MUST NOT send more.
                raise LocalProtocolError("a BDAT chunk failed; send RSET, not more chunks")
        elif isinstance(cmd, (Vrfy, Expn)):
            if not cmd.argument.isascii() and not ext.smtputf8:
                raise LocalProtocolError("non-ASCII argument needs SMTPUTF8")
        elif isinstance(cmd, (Xclient, Xforward)):
            advertised = ext.xclient if isinstance(cmd, Xclient) else ext.xforward
            if advertised is None:
                raise LocalProtocolError(f"the server did not advertise {cmd.verb}")
            unknown = sorted(set(cmd.attributes) - set(advertised))
            if unknown:
                raise LocalProtocolError(f"the server did not advertise {cmd.verb} attribute {unknown[0]}")

    def _check_path(self, path: str, *, utf8: bool, what: str) -> None:
        if path == "":
            return
        key = (path, utf8)
        if key in self._paths_ok:
            return  # checked before on this connection (same limits): it passes again
        if not path.isascii() and not utf8:
            raise LocalProtocolError(f"non-ASCII {what} needs the SMTPUTF8 parameter (C-06)")
        if len(path.encode("utf-8")) + 2 > self.config.max_path:
            raise LocalProtocolError(f"{what} longer than {self.config.max_path} octets with its <> (RFC 5321 §4.5.3.1.3)")
        try:
            check_mailbox(path, utf8=utf8, limits=self._limits)
        except SyntaxProblem as exc:
            raise LocalProtocolError(f"bad {what} {path!r}: {exc}") from None
        if len(self._paths_ok) >= _PATHS_OK_MAX:
            self._paths_ok.clear()
        self._paths_ok[key] = None

    def _client_content_data(self, data: bytes) -> bytes:
        if self._client_content:
            assert self._data_writer is not None
            return self._data_writer.write(data)
        current = self._bdat_current
        if current is not None:
            if len(data) > self._bdat_remaining:
                raise LocalProtocolError(
                    f"{len(data)} octets exceed the {self._bdat_remaining} left in this BDAT chunk")
            self._bdat_remaining -= len(data)
            if self._bdat_remaining == 0:
                self._client_eom_due = current.last
                self._bdat_current = None
            return data
        raise LocalProtocolError("MessageData is only valid after a 354 reply or a BDAT command")

    def _client_end(self) -> bytes:
        if self._client_content:
            assert self._data_writer is not None
            out = self._data_writer.close()
            self._client_content = False
            self._data_writer = None
            for _ in range(len(self._recipients) if self.config.lmtp else 1):
                self._client_queue(_END_OF_MESSAGE, EndOfMessage)
            return out
        if self._client_eom_due:
            self._client_eom_due = False
            return b""
        raise LocalProtocolError("EndOfMessage is only valid at the end of DATA content or of a BDAT LAST chunk")

    # ------------------------------------------------------------ server out

    def _server_send(self, event: Event) -> bytes:
        if not isinstance(event, Reply):
            raise LocalProtocolError(f"a server only sends replies, not {type(event).__name__}")
        if self._state is _ERROR:
            if not self._error_reply_allowed:
                raise LocalProtocolError("connection is in the ERROR state")
            self._error_reply_allowed = False
            return format_reply(event)
        if self._state is _CLOSED:
            raise LocalProtocolError("connection is closed")
        if not self._greeted:
            if self._proxy_pending:
                raise LocalProtocolError("the PROXY protocol header has not been received yet")
            if event.code not in (220, 421, 554):
                raise LocalProtocolError("the greeting must be 220, 554 or 421 (RFC 5321 §3.1)")
            out = format_reply(event)
            self._greeted = True
            self._pending.popleft()
            self._state = next_state(_GREETING, Greeting, event.code)
            return out
        # reply_owed, inlined: greeted, so the queue holds only events.
        owed: Event | None = self._pending[0][0] if self._pending else None  # type: ignore[assignment]
        if owed is None:
            if event.code == 421:  # RFC 5321 §3.8: may be sent at any time
                out = format_reply(event)
                self._state = _CLOSED
                return out
            raise LocalProtocolError("no command awaits a reply")
        self._check_server_reply(owed, event)
        event = self._with_enhanced_status(owed, event)
        out = format_reply(event)
        if isinstance(owed, StartTLS) and event.code == 220 and self._buf and self._deferred is None:
            # T-01 (CVE-2011-0411): plaintext that came after STARTTLS must never
            # be read as if it had come over TLS.  Purge it (Postfix:
            # vstream_fpurge) and end the session at the next next_event().
            self._buf.discard(len(self._buf))
            self._deferred = RemoteProtocolError("cleartext data after STARTTLS (command injection, T-01)")
        _, ctype = self._pending.popleft()
        if event.code >= 400:
            self._errors += 1
        if ctype is EndOfMessage and any(t is EndOfMessage for _, t in self._pending):
            return out  # LMTP: the session moves with the last recipient's reply
        self._apply(ctype, owed, event.code, event.lines)
        return out

    def _with_enhanced_status(self, owed: Event, reply: Reply) -> Reply:
        """RFC 2034 §4: once ENHANCEDSTATUSCODES is advertised, (almost) every
        reply carries an enhanced status code; supply the generic one for the
        command when the application gave none.  Not for 3xx, nor for the
        EHLO/LHLO reply itself."""
        if reply.enhanced_status is not None or reply.code // 100 == 3:
            return reply
        if not (self._esmtp and self._extensions.enhancedstatuscodes) or isinstance(owed, (Ehlo, Helo, Lhlo)):
            return reply
        cls = reply.code // 100
        status = f"{cls}.0.0"
        if cls == 2:
            status = _ENHANCED_SUCCESS.get(type(owed), status)
        return Reply(code=reply.code, lines=reply.lines, enhanced_status=status)

    def _check_server_reply(self, owed: Event, reply: Reply) -> None:
        code = reply.code
        cls = code // 100
        if cls != 3 and type(owed) in _PLAIN_ANSWERS:
            return  # none of the rules below is about these commands
        if isinstance(owed, (InvalidCommand, UnknownCommand, MessageRejected)) and code < 400:
            raise LocalProtocolError(f"{type(owed).__name__} must be answered with 4xx or 5xx")
        if isinstance(owed, Data):
            if cls == 2 or cls == 3 and code != 354:
                raise LocalProtocolError("DATA is answered with 354 or an error")
        elif isinstance(owed, (Auth, AuthResponse)):
            if cls == 3 and code != 334:
                raise LocalProtocolError("an AUTH challenge is 334")
            if cls == 2 and code != 235:
                raise LocalProtocolError("AUTH success is 235 (RFC 4954 §6)")
            if isinstance(owed, AuthResponse) and owed.cancelled and code < 400:
                raise LocalProtocolError("a cancelled AUTH exchange is answered with 501")
        elif cls == 3:
            raise LocalProtocolError(f"{code} is not a valid reply to {type(owed).__name__}")
        if isinstance(owed, (Ehlo, Lhlo)) and cls == 2:
            caps = _capabilities(reply.lines)
            if self._tls_active and caps.starttls:
                raise LocalProtocolError("STARTTLS must not be advertised once TLS is active (RFC 3207 §4.2, T-03)")
            if caps.auth and not self._tls_active and (self.config.require_tls or not self.config.allow_auth_without_tls):
                raise LocalProtocolError("AUTH must not be advertised before TLS (T-04)")
            if caps.size and caps.size > self.config.max_message_size:
                # The limit enforced is Config.max_message_size: promising more
                # would refuse messages the client was told fit.  (Plain "SIZE",
                # no fixed limit, stays allowed, as in RFC 5321 D.4.)
                raise LocalProtocolError(
                    f"SIZE {caps.size} advertised but Config.max_message_size is {self.config.max_message_size}")
        if isinstance(owed, StartTLS) and cls == 2 and code != 220:
            raise LocalProtocolError("STARTTLS is answered with 220")
        if isinstance(owed, Xclient) and cls == 2 and code != 220:
            raise LocalProtocolError("XCLIENT success is a 220 greeting")
        if isinstance(owed, Quit) and cls == 2 and code != 221:
            raise LocalProtocolError("QUIT is answered with 221")


#: Commands whose reply is only bound by "no 3xx" (RFC 5321 §4.3.2): the
#: server's fast path in _check_server_reply.
_PLAIN_ANSWERS = frozenset({Mail, Rcpt, Rset, Noop, Helo, Vrfy, Expn, Help, EndOfMessage, Bdat, Xforward})

#: RFC 3463 codes for success, by what is answered (Postfix uses the same).
_ENHANCED_SUCCESS: dict[type, str] = {
    Mail: "2.1.0", Rcpt: "2.1.5", Auth: "2.7.0", AuthResponse: "2.7.0", Vrfy: "2.1.5",
}

_VERB_TYPES: dict[str, type] = {
    "EHLO": Ehlo, "HELO": Helo, "LHLO": Lhlo, "MAIL": Mail, "RCPT": Rcpt, "DATA": Data,
    "BDAT": Bdat, "RSET": Rset, "NOOP": Noop, "QUIT": Quit, "VRFY": Vrfy, "EXPN": Expn,
    "HELP": Help, "STARTTLS": StartTLS, "AUTH": Auth, "XCLIENT": Xclient, "XFORWARD": Xforward,
}


_SUCCESS = {Greeting: 220, Data: 354, Auth: 334, AuthResponse: 334, StartTLS: 220, Quit: 221, Xclient: 220}
_SUCCESS_CLASS = {ctype: code // 100 for ctype, code in _SUCCESS.items()}  # (2 for the others)


# (state, command type) -> _assume_success's answer, for a client's pending
# commands (the projection runs for every pipelined command).
_ASSUMED: dict[tuple[State, type], State] = {}


def _assumed(state: State, cmd: object, ctype: type) -> State:
    """_assume_success for a client's queue, remembered per (state, type)."""
    after = _ASSUMED.get((state, ctype))
    if after is None:
        after = _ASSUMED[(state, ctype)] = _assume_success(state, cmd, ctype)
    return after

# Enum members fetched once: each State.X / Role.X is a class attribute lookup,
# slow on Python 3.11 (EnumType defines __getattr__), and the hot paths make many.
_CLOSED, _ERROR, _TLS, _AUTH, _BDAT = State.CLOSED, State.ERROR, State.TLS, State.AUTH, State.BDAT
_GREETING, _HELLO, _MAIL, _RCPT, _NO_SERVICE = State.GREETING, State.HELLO, State.MAIL, State.RCPT, State.NO_SERVICE
_CLIENT, _SERVER = Role.CLIENT, Role.SERVER


_GREETING_EVENT = Greeting()
_END_OF_MESSAGE = EndOfMessage()  # events are immutable: one serves every end of data

_Derived = tuple[Config, AddressLimits, tuple[Deadline, Deadline], dict[object, Deadline], int]
#: What a Config implies for every connection, made once per Config object (by
#: id, the object kept so that a recycled id is never taken for it).
_DERIVED: dict[int, _Derived] = {}


def _derive(cfg: Config) -> _Derived:
    derived = (
        cfg,
        AddressLimits(cfg.max_local_part, cfg.max_domain, cfg.max_path),
        # Both roles ask for their deadline before every read (a client before
        # every write too).
        (Deadline("command", cfg.timeout_server), Deadline("data", cfg.timeout_server, cfg.min_data_rate)),
        _client_deadlines(cfg),
        # The command lane takes lines every limit allows (see _command_lane).
        min(cfg.max_command_line, cfg.max_mail_rcpt_line),
    )
    if len(_DERIVED) >= 64:
        _DERIVED.clear()
    _DERIVED[id(cfg)] = derived
    return derived


def _client_deadlines(cfg: Config) -> dict[object, Deadline]:
    """A client's deadlines (RFC 5321 §4.5.3.2) by the command type whose reply
    it waits for, plus the data block's and the one for any other command."""
    termination = Deadline("DATA termination", cfg.timeout_data_term)
    return {
        Greeting: Deadline("greeting", cfg.timeout_greeting),
        Mail: Deadline("MAIL", cfg.timeout_mail),
        Rcpt: Deadline("RCPT", cfg.timeout_rcpt),
        Data: Deadline("DATA initiation", cfg.timeout_data_init),
        EndOfMessage: termination,
        Bdat: termination,
        "data block": Deadline("data block", cfg.timeout_data_block),
        "command": Deadline("command", cfg.timeout_other),
    }


def _assume_success(state: State, cmd: object, ctype: type | None) -> State:
    """The state after ``cmd`` if its reply is the positive one (projection for
    pipelining checks and :attr:`Connection.their_state`)."""
    if ctype is None or isinstance(cmd, (InvalidCommand, UnknownCommand, MessageRejected)):
        return state
    return next_state(state, ctype, _SUCCESS.get(ctype, 250))


def _violation_reply(violation: str) -> Reply:
    if violation == "bare-lf":
        return _reply(550, "5.5.2", "Error: bare <LF> received")
    if violation == "bare-cr":
        return _reply(550, "5.5.2", "Error: bare <CR> received")
    if violation == "line":
        return _reply(500, "5.5.2", "Error: line too long (RFC 5321 section 4.5.3.1.6)")
    return _reply(552, "5.3.4", "Error: message file too big")
