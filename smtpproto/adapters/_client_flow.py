"""The client session driver: every client-side decision, no I/O.

The blocking, asyncio and trio clients share this module.  A session is a
:class:`ClientSession` wrapping a client :class:`~smtpproto.Connection`; each
operation (``handshake``, ``send_mail``, ``noop``, ``rset``, ``quit``) is a
generator that *yields actions* and receives their results:

* :class:`Write` — write these bytes (result: ``None``);
* :class:`Read` — read some bytes, ``b""`` at end of file (result: the bytes);
* :class:`StartTLS` — do the TLS handshake on the current transport (result:
  ``None``);
* :class:`Close` — close the transport (result: ``None``).

An adapter runs a generator with :func:`drive`-style code of its own (a loop of
``gen.send(result)``) and, when the I/O itself fails, throws the matching
:class:`SMTPClientError` (``SMTPServerDisconnected``, ``SMTPTimeoutError``,
``SMTPTLSError``) into the generator, which marks the session broken, asks for
:class:`Close` and re-raises.  So what to send, when to wait, when to start TLS,
which mechanism, which body type, when to pipeline and what an error means are
all decided here, once.

The module also prepares what is sent (:func:`prepare_message`): envelope from
the header fields (Resent-* aware) when not given, Bcc stripped, and a body
description (size, 8bit, binary, UTF-8 headers) that picks SMTPUTF8, 8BITMIME
or BINARYMIME per message.
"""

from __future__ import annotations

import email.message
import inspect
import re
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import IO, Literal, TypeVar, Union

from .. import sasl
from .._config import Config
from .._connection import NEED_DATA, PAUSED, Connection, NextEvent, Role
from .._errors import LocalProtocolError, RemoteProtocolError, TLSRequiredError
from .._events import (
    Auth,
    AuthResponse,
    Bdat,
    Command,
    ConnectionClosed,
    Data,
    Ehlo,
    EndOfMessage,
    Helo,
    Lhlo,
    Mail,
    MessageData,
    Noop,
    Quit,
    Rcpt,
    Reply,
    Rset,
    StartTLS as StartTLSCommand,
)
from .._extensions import Capabilities
from .._state import State
from .._syntax import SyntaxProblem, check_domain_or_literal
from ..message import Message, envelope_from_headers, strip_bcc
from ..transcript import REDACTED, RecordTarget, _client_tap, _SessionTap, redact_auth_line, redact_challenges

__all__ = [
    "Write",
    "Read",
    "StartTLS",
    "Close",
    "Action",
    "Flow",
    "StartTLSMode",
    "Transcript",
    "ClientOptions",
    "ClientSession",
    "OutgoingMessage",
    "MessageInput",
    "BatchItem",
    "SendOutcome",
    "prepare_message",
    "RecipientStatus",
    "SendResult",
    "SMTPClientError",
    "SMTPServerDisconnected",
    "SMTPTimeoutError",
    "SMTPConnectError",
    "SMTPProtocolViolation",
    "SMTPTLSError",
    "SMTPTLSRequiredError",
    "SMTPNotSupportedError",
    "SMTPMessageTooLarge",
    "SMTPResponseError",
    "SMTPHeloError",
    "SMTPAuthenticationError",
    "SMTPSenderRefused",
    "SMTPRecipientsRefused",
    "SMTPDataRefused",
    "DEFAULT_CHUNK_SIZE",
]

#: Body bytes handed to the connection (and, with CHUNKING, one BDAT chunk) at a time.
DEFAULT_CHUNK_SIZE = 256 * 1024
#: With PIPELINING, how many BDAT chunks may await their reply before we read.
_MAX_BDAT_IN_FLIGHT = 32
#: The largest header section read from a streamed message before giving up.
_MAX_STREAM_HEADER = 1024 * 1024
# Events without fields, made once: the fast paths send them for every message
# (events are immutable; the core keeps no state in them).
_DATA = Data()
_EOM = EndOfMessage()
#: How many MAIL/RCPT events a session keeps for reuse (see ClientSession._event).
_EVENTS_KEPT = 256
# States as constants: State.X is a class attribute lookup each time.
_ENDED = frozenset({State.CLOSED, State.ERROR})
_IN_TRANSACTION = frozenset({State.MAIL, State.RCPT, State.BDAT})


# ---------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True)
class Write:
    """Write ``data``; ``timeout`` is the most the whole write may take."""

    data: bytes = field(repr=False)
    timeout: float | None = None

    def __repr__(self) -> str:
        return f"Write(<{len(self.data)} bytes>, timeout={self.timeout})"


@dataclass(frozen=True, slots=True)
class Read:
    """Read what is available (at least one byte, or ``b""`` at end of file).

    ``timeout`` is the RFC 5321 §4.5.3.2 limit for the reply we wait for; it
    counts from the first ``Read`` with ``fresh=True`` and goes on across the
    following reads of the same reply (``fresh=False``), so a server that drips
    a reply byte by byte cannot stretch it.
    """

    timeout: float | None
    fresh: bool = True


@dataclass(frozen=True, slots=True)
class StartTLS:
    """Start TLS on the transport now (the server said 220 to STARTTLS)."""


@dataclass(frozen=True, slots=True)
class Close:
    """Close the transport."""


Action = Union[Write, Read, StartTLS, Close]
T = TypeVar("T")
_PathEvent = TypeVar("_PathEvent", Mail, Rcpt)
#: A client operation: yields actions, receives their results, returns T.
Flow = Generator[Action, Union[bytes, None], T]

StartTLSMode = Literal["required", "opportunistic", "never"]
#: ``transcript(direction, line)``: direction ``"C"`` for what we sent, ``"S"``
#: for what the server said.  AUTH payloads are replaced by ``<redacted>``
#: (:func:`smtpproto.transcript.redact_auth_line`).
Transcript = Callable[[str, str], None]


# ---------------------------------------------------------------- errors


class SMTPClientError(Exception):
    """Base class of every error the clients raise."""


class SMTPServerDisconnected(SMTPClientError, ConnectionError):
    """The connection is gone: the server closed it, said 421, or a read or write
    failed.  :attr:`reply` is the 421 reply when there was one."""

    def __init__(self, message: str, reply: Reply | None = None) -> None:
        super().__init__(message)
        self.reply = reply


class SMTPTimeoutError(SMTPClientError, TimeoutError):
    """The server did not answer (or accept our data) within the RFC 5321
    §4.5.3.2 timeout that applies (see :meth:`Connection.deadline`)."""


class SMTPConnectError(SMTPClientError):
    """The connection could not be made, or the greeting was not 220."""

    def __init__(self, message: str, reply: Reply | None = None) -> None:
        super().__init__(message)
        self.reply = reply


class SMTPProtocolViolation(SMTPClientError):
    """The server broke the protocol (malformed or unsolicited reply, bytes after
    the 220 to STARTTLS, ...).  The cause is the core's RemoteProtocolError."""


class SMTPTLSError(SMTPClientError):
    """TLS could not be set up: handshake or certificate failure, or STARTTLS refused."""


class SMTPTLSRequiredError(SMTPTLSError):
    """TLS is required but the server does not offer it (STARTTLS stripping,
    SECURITY-CASES T-08), or credentials would go out in cleartext."""


class SMTPNotSupportedError(SMTPClientError):
    """The message or the request needs an extension the server does not offer
    (SMTPUTF8, 8BITMIME, BINARYMIME, AUTH...)."""


class SMTPResponseError(SMTPClientError):
    """The server refused something; :attr:`reply` says how."""

    def __init__(self, message: str, reply: Reply) -> None:
        super().__init__(f"{message}: {_reply_summary(reply)}")
        self.reply = reply

    @property
    def code(self) -> int:
        return self.reply.code


class _UnsendableContent(SMTPNotSupportedError):
    """A streamed message turned out, while it was being sent, to need what the
    MAIL command did not declare (see :func:`_checked_chunks`)."""


class SMTPMessageTooLarge(SMTPClientError):
    """The message is larger than the SIZE the server advertised (RFC 1870)."""


class SMTPHeloError(SMTPResponseError):
    """EHLO/HELO/LHLO was refused."""


class SMTPAuthenticationError(SMTPClientError):
    """Authentication failed (:attr:`reply` is the server's answer, if any)."""

    def __init__(self, message: str, reply: Reply | None = None) -> None:
        super().__init__(message if reply is None else f"{message}: {_reply_summary(reply)}")
        self.reply = reply


class SMTPSenderRefused(SMTPResponseError):
    """MAIL FROM was refused; nothing was sent."""

    def __init__(self, sender: str, reply: Reply) -> None:
        super().__init__(f"sender <{sender}> refused", reply)
        self.sender = sender


class SMTPRecipientsRefused(SMTPClientError):
    """Every recipient was refused; :attr:`recipients` maps each one to its status."""

    def __init__(self, recipients: Mapping[str, "RecipientStatus"]) -> None:
        self.recipients = dict(recipients)
        detail = "; ".join(f"<{a}> {s.summary}" for a, s in self.recipients.items())
        super().__init__(f"all recipients refused: {detail}")


class SMTPDataRefused(SMTPResponseError):
    """The message content was refused (DATA/BDAT or its final reply).  With
    LMTP :attr:`recipients` holds every recipient's final status."""

    def __init__(self, reply: Reply, recipients: Mapping[str, "RecipientStatus"] | None = None) -> None:
        super().__init__("message refused", reply)
        self.recipients = dict(recipients or {})


def _reply_summary(reply: Reply) -> str:
    enh = f" {reply.enhanced_status}" if reply.enhanced_status else ""
    return f"{reply.code}{enh} {' '.join(reply.lines)}".rstrip()


# ---------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class RecipientStatus:
    """What happened to one recipient: the RCPT reply when it was refused, else
    the final reply for the message (per recipient with LMTP)."""

    address: str
    code: int
    text: str
    enhanced_status: str | None = None

    @classmethod
    def from_reply(cls, address: str, reply: Reply) -> "RecipientStatus":
        return cls(address, reply.code, " ".join(reply.lines), reply.enhanced_status)

    @property
    def ok(self) -> bool:
        return self.code < 400

    @property
    def summary(self) -> str:
        enh = f" {self.enhanced_status}" if self.enhanced_status else ""
        return f"{self.code}{enh} {self.text}".rstrip()


@dataclass(frozen=True, slots=True)
class SendResult:
    """The outcome of a transaction with at least one recipient accepted.

    ``recipients`` maps every envelope recipient (in order) to its status;
    ``reply`` is the final reply (for LMTP, the last recipient's).  ``size`` is
    the number of content octets sent (before dot-stuffing); ``body`` says how
    it went: ``"DATA"`` or ``"BDAT"``; ``mail_params`` what MAIL carried.
    """

    sender: str
    recipients: Mapping[str, RecipientStatus]
    reply: Reply
    size: int
    body: str
    mail_params: Mapping[str, str | None]

    @property
    def accepted(self) -> list[str]:
        return [a for a, s in self.recipients.items() if s.ok]

    @property
    def refused(self) -> dict[str, RecipientStatus]:
        return {a: s for a, s in self.recipients.items() if not s.ok}

    @property
    def ok(self) -> bool:
        """Every recipient got the message."""
        return not self.refused


# ---------------------------------------------------------------- messages


#: What ``send_message`` accepts.
MessageInput = Union[Message, email.message.Message, bytes, bytearray, memoryview, IO[bytes]]
#: One item of ``send_messages``: a message (its envelope from its header
#: fields), or ``(message, sender, recipients)`` (None: from the header fields).
BatchItem = Union[MessageInput, "tuple[MessageInput, str | None, Sequence[str] | str | None]"]
#: What ``send_messages`` reports per message: the result, or the error that
#: sending it alone would have raised.
SendOutcome = Union[SendResult, Exception]

_BARE_EOL = re.compile(rb"\r\n|\r|\n")
_HEADER_END = re.compile(rb"\r?\n\r?\n")
# A Bcc or Resent-Bcc field (strip_bcc is skipped when there is none).
_BCC_FIELD = re.compile(rb"(?im)^(?:resent-)?bcc[ \t]*:")


@dataclass
class OutgoingMessage:
    """Message content ready to send: Bcc stripped, chunks in order.

    ``size`` is None when unknown (a non-seekable stream); ``eight_bit`` None
    when unknown; ``binary`` means NUL octets (needs BINARYMIME);
    ``utf8_headers`` means raw UTF-8 in the header section (needs SMTPUTF8,
    RFC 6532).
    """

    chunks: Iterable[bytes]
    size: int | None
    eight_bit: bool | None
    binary: bool
    utf8_headers: bool
    #: The whole content when it is one chunk (``chunks`` yields just this).
    whole: bytes | None = None


def _header_end(data: bytes) -> int | None:
    """Where the header section ends (after its blank line), or None if the
    blank line is not in ``data``; an empty first line is an empty header."""
    for blank in (b"\r\n", b"\n"):
        if data.startswith(blank):
            return len(blank)
    # _HEADER_END.search(data).end(), by two finds (a regex scan costs more):
    # the first LF followed by LF or CRLF.
    # CRLF first: in the usual message it ends the header section early, and
    # the LF LF search need not go past it.
    crlf = data.find(b"\n\r\n")
    lf = data.find(b"\n\n", 0, crlf + 2 if crlf >= 0 else len(data))
    if lf >= 0:
        return lf + 2
    return None if crlf < 0 else crlf + 3


def _describe(data: bytes) -> tuple[bool, bool, bool]:
    """(eight_bit, binary, utf8_headers) for whole message bytes."""
    if data.isascii():
        return False, b"\x00" in data, False
    end = _header_end(data)
    head = data if end is None else data[:end]
    return True, b"\x00" in data, not head.isascii()


def _slices(data: bytes, size: int) -> Iterator[bytes]:
    if 0 < len(data) <= size:
        yield data  # one chunk: no copy
        return
    view = memoryview(data)
    for i in range(0, len(data), size):
        yield bytes(view[i : i + size])


def _email_bytes(msg: email.message.Message) -> bytes:
    from ..message._stdlib import from_email_message

    return from_email_message(msg).to_bytes()


def _read_header_section(stream: IO[bytes], chunk_size: int) -> tuple[bytes, bytes]:
    """Read a stream until the end of its header section: (header incl. the
    blank line, what was read past it)."""
    buf = b""
    while True:
        end = _header_end(buf)
        if end is not None:
            return buf[:end], buf[end:]
        if len(buf) > _MAX_STREAM_HEADER:
            raise ValueError("the message's header section is larger than 1 MiB")
        more = stream.read(chunk_size)
        if not more:
            return buf, b""
        if not isinstance(more, bytes):
            raise TypeError("the message file must be opened in binary mode")
        buf += more


def _stream_chunks(first: bytes, stream: IO[bytes], chunk_size: int) -> Iterator[bytes]:
    if first:
        yield first
    while True:
        more = stream.read(chunk_size)
        if not more:
            return
        yield more


def _checked_chunks(chunks: Iterable[bytes], body: str | None) -> Iterator[bytes]:
    """The chunks of a message whose content class was unknown when MAIL was
    sent (a non-seekable stream), checked against the BODY it declared as they
    go.  Raising stops the transfer before the offending chunk is written; the
    session then closes without an end of data, so nothing partial is delivered."""
    body = (body or "").upper()
    seven_bit = body in ("", "7BIT")  # RFC 6152: no BODY parameter means 7BIT
    for chunk in chunks:
        if body != "BINARYMIME" and b"\x00" in chunk:
            raise _UnsendableContent(
                "the streamed message holds NUL octets, which need BINARYMIME with CHUNKING "
                "(the server does not offer them); nothing was delivered")
        if seven_bit and not chunk.isascii():
            raise _UnsendableContent(
                "the streamed message holds 8bit octets but went as 7BIT (the server does not offer "
                "8BITMIME, or BODY=7BIT was given); nothing was delivered")
        yield chunk


def prepare_message(
    message: MessageInput,
    sender: str | None = None,
    recipients: Sequence[str] | str | None = None,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> tuple[str, list[str], OutgoingMessage]:
    """The envelope and the content for ``message``.

    ``message`` is a :class:`smtpproto.message.Message`, an :mod:`email`
    message, raw bytes, or a binary file object (streamed: only its header
    section is held in memory; a seekable file is scanned once first for its
    size and 8bit/NUL octets).  A missing ``sender``/``recipients`` comes from
    the header fields (the latest Resent-* block if there is one); Bcc and
    Resent-Bcc are removed from what is sent.
    """
    if isinstance(recipients, str):
        recipients = [recipients]
    if isinstance(message, email.message.Message):
        message = _email_bytes(message)
    if isinstance(message, Message):
        message = message.to_bytes()
    if isinstance(message, (bytes, bytearray, memoryview)):
        data = bytes(message)
        if sender is None or recipients is None:
            env_sender, env_rcpts = envelope_from_headers(data)
            sender = env_sender if sender is None else sender
            recipients = env_rcpts if recipients is None else recipients
        end = _header_end(data) or len(data)
        # The regex only when the header section may hold a Bcc field at all.
        if b"bcc" in data[:end].lower() and _BCC_FIELD.search(data, 0, end) is not None:
            data = strip_bcc(data)
        is_8bit, is_binary, utf8h = _describe(data)
        out = OutgoingMessage(_slices(data, chunk_size), len(data), is_8bit, is_binary, utf8h,
                              data if 0 < len(data) < chunk_size else None)
        return sender, list(recipients), out
    if not hasattr(message, "read"):
        raise TypeError(f"cannot send a {type(message).__name__}; pass a Message, an email message, bytes or a binary file")
    stream = message
    start: int | None = None
    size: int | None = None
    eight: bool | None = None
    binary = False
    try:
        if stream.seekable():
            start = stream.tell()
    except (OSError, ValueError, AttributeError):
        start = None
    if start is not None:
        # One pass to learn size and content class, then back to the start.
        size = 0
        eight = False
        while True:
            block = stream.read(chunk_size)
            if not block:
                break
            if not isinstance(block, bytes):
                raise TypeError("the message file must be opened in binary mode")
            size += len(block)
            eight = eight or not block.isascii()
            binary = binary or b"\x00" in block
        stream.seek(start)
    head, rest = _read_header_section(stream, chunk_size)
    if not isinstance(head, bytes):
        raise TypeError("the message file must be opened in binary mode")
    if sender is None or recipients is None:
        env_sender, env_rcpts = envelope_from_headers(head if head.endswith(b"\n") else head + b"\r\n")
        sender = env_sender if sender is None else sender
        recipients = env_rcpts if recipients is None else recipients
    stripped = strip_bcc(head)
    if size is not None:
        size -= len(head) - len(stripped)
    out = OutgoingMessage(
        _stream_chunks(stripped + rest, stream, chunk_size), size, eight, binary, not stripped.isascii())
    return sender, list(recipients), out


class _LineEndings:
    """CRLF repair for BDAT content (DATA content is repaired by the core):
    bare CR or LF become CRLF, a CR at the end of a chunk waits for the next."""

    def __init__(self, reject: bool) -> None:
        self._reject = reject
        self._cr = False

    def feed(self, data: bytes) -> bytes:
        if self._cr:
            data = b"\r" + data
            self._cr = False
        if data.endswith(b"\r"):
            data = data[:-1]
            self._cr = True
        crlf = data.count(b"\r\n")
        if data.count(b"\n") != crlf or data.count(b"\r") != crlf:
            if self._reject:
                raise LocalProtocolError("message content holds a bare CR or LF (client_bare_newline='reject')")
            data = _BARE_EOL.sub(b"\r\n", data)
        return data

    def close(self) -> bytes:
        if self._cr:
            self._cr = False
            if self._reject:
                raise LocalProtocolError("message content ends with a bare CR")
            return b"\r\n"
        return b""


# ---------------------------------------------------------------- the session


@dataclass(frozen=True)
class ClientOptions:
    """How a client session behaves (the facades build this from their arguments).

    * ``local_hostname`` — the EHLO/HELO/LHLO argument (a domain or address literal).
    * ``starttls`` — ``"required"``: STARTTLS must succeed before anything else
      (a server that does not offer it is an error, T-08); ``"opportunistic"``:
      use it when offered, else go on in cleartext (never AUTH in cleartext
      unless ``config.allow_auth_without_tls``); ``"never"``.
    * ``implicit_tls`` — the transport is TLS from the start (RFC 8314).
    * ``credentials`` / ``auth_mechanisms`` — AUTH with the best mechanism both
      sides support (``auth_mechanisms`` overrides the preference order).
    * ``lmtp`` — speak LMTP (LHLO, one final reply per recipient).
    * ``chunking`` — use BDAT when the server offers CHUNKING.
    * ``pipelining`` — pipeline MAIL/RCPT/DATA (and BDAT) when offered.
    * ``chunk_size`` — body bytes per write / BDAT chunk.
    * ``config`` — the core :class:`~smtpproto.Config` (limits, timeouts).
    """

    local_hostname: str = "localhost"
    starttls: StartTLSMode = "required"
    implicit_tls: bool = False
    credentials: sasl.Credentials | None = None
    auth_mechanisms: Sequence[str] | None = None
    lmtp: bool = False
    chunking: bool = True
    pipelining: bool = True
    chunk_size: int = DEFAULT_CHUNK_SIZE
    config: Config = field(default_factory=Config)
    transcript: Transcript | None = None
    #: Record the session to a transcript file (a path, written anew by each
    #: session) or a :class:`~smtpproto.transcript.Recorder`; AUTH redacted.
    record: RecordTarget | None = None

    def __post_init__(self) -> None:
        if self.starttls not in ("required", "opportunistic", "never"):
            raise ValueError(f"starttls must be 'required', 'opportunistic' or 'never', not {self.starttls!r}")
        if self.chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        # C-04: the EHLO name is a domain or an address literal, checked now.
        Ehlo(domain=self.local_hostname)
        try:
            check_domain_or_literal(self.local_hostname, limit=self.config.max_domain)
        except SyntaxProblem as exc:
            raise LocalProtocolError(f"bad local_hostname {self.local_hostname!r}: {exc}") from None


def config_with_timeout(config: Config | None, timeout: float | None, *, lmtp: bool, require_tls: bool) -> Config:
    """``config`` (or the default) with every RFC 5321 client timeout capped at
    ``timeout`` seconds, LMTP set as asked and ``require_tls`` added."""
    cfg = config if config is not None else Config()
    changes: dict[str, object] = {}
    if timeout is not None:
        for name in ("timeout_greeting", "timeout_mail", "timeout_rcpt", "timeout_data_init",
                     "timeout_data_block", "timeout_data_term", "timeout_other"):
            if getattr(cfg, name) > timeout:
                changes[name] = timeout
    if cfg.lmtp != lmtp:
        changes["lmtp"] = lmtp
    if require_tls and not cfg.require_tls:
        changes["require_tls"] = True
    return cfg.replace(**changes) if changes else cfg


def _cmd_text(event: Command | AuthResponse) -> str:
    """The transcript line for a command we sent, secrets redacted."""
    from .._writers import format_auth_response, format_command

    if isinstance(event, AuthResponse):
        return redact_auth_line(format_auth_response(event).encode("ascii")).decode("ascii")
    if isinstance(event, Auth):
        return redact_auth_line(format_command(event).encode("ascii")).decode("ascii")
    return format_command(event)


class ClientSession:
    """The client side of one SMTP/LMTP session, as generators of actions.

    Create one per transport; run :meth:`handshake` first, then any number of
    :meth:`send_mail`, :meth:`noop`, :meth:`rset`, and finally :meth:`quit`.
    """

    def __init__(self, options: ClientOptions) -> None:
        self.options = options
        cfg = options.config
        if cfg.lmtp != options.lmtp:
            cfg = cfg.replace(lmtp=options.lmtp)
        self.conn = Connection(Role.CLIENT, cfg, tls_active=options.implicit_tls)
        self._out: list[bytes] = []
        # Recording: what _out will write, AUTH redacted, kept in step with it.
        self._tap: _SessionTap | None = None
        self._rec_out: list[bytes] = []
        if options.record is not None:
            self._tap = _client_tap(options.record, implicit_tls=options.implicit_tls)
        self._broken = False
        self._quit = False
        self._need_rset = False
        # MAIL and RCPT events already built (see _event).
        self._events: dict[tuple[type, str, tuple[tuple[str, str | None], ...]], Mail | Rcpt] = {}
        self.greeting: Reply | None = None
        self.hello_reply: Reply | None = None
        #: How many times we waited on the network for a reply (the greeting
        #: included): what PIPELINING saves.
        self.round_trips = 0

    # -------------------------------------------------------------- state

    @property
    def extensions(self) -> Capabilities:
        return self.conn.extensions

    @property
    def tls_active(self) -> bool:
        return self.conn.tls_active

    @property
    def usable(self) -> bool:
        """The session can still run commands."""
        return not self._broken and not self._quit and self.conn.state not in (State.CLOSED, State.ERROR)

    # -------------------------------------------------------------- plumbing

    def _log(self, direction: str, line: str) -> None:
        if self.options.transcript is not None:
            self.options.transcript(direction, line)

    def _log_reply(self, reply: Reply) -> None:
        if self.options.transcript is None:
            return
        last = len(reply.lines) - 1
        for i, line in enumerate(reply.lines):
            text = REDACTED if reply.code == 334 else line
            enh = f"{reply.enhanced_status} " if reply.enhanced_status and reply.code != 334 else ""
            self._log("S", f"{reply.code}{'-' if i < last else ' '}{enh}{text}".rstrip())

    def _timeout(self) -> float:
        deadline = self.conn.deadline()
        return deadline.seconds if deadline is not None else self.conn.config.timeout_other

    def _break(self) -> Flow[None]:
        """The session cannot go on: close the transport (the caller raises)."""
        self._broken = True
        self._out = []
        self._end_recording()
        yield Close()

    def _queue(self, event: Command | AuthResponse | MessageData | EndOfMessage) -> None:
        """Add an event's bytes to the next write."""
        if not self._out and isinstance(event, Command) and self.conn.more_input_buffered and not self.conn.pending:
            self._unsolicited()  # checked at the start of each group
        try:
            data = self.conn.send(event)
        except LocalProtocolError as exc:
            self._refused_locally(exc, bool(self._out))
            raise
        if self.options.transcript is not None and isinstance(event, (Command, AuthResponse)):
            self._log("C", _cmd_text(event))
        if data:
            self._out.append(data)
            if self._tap is not None:
                self._rec_out.append(redact_auth_line(data) if isinstance(event, (Auth, AuthResponse)) else data)

    def _refused_locally(self, exc: LocalProtocolError, queued: bool) -> None:
        """The core refused a command (the caller re-raises ``exc``)."""
        if queued or self.conn.pending:
            # Part of a group is already committed in the core but not on
            # the wire: the session cannot be resumed consistently.
            self._broken = True
            self._out = []
            self._rec_out = []
        if isinstance(exc, TLSRequiredError):
            raise SMTPTLSRequiredError(str(exc)) from exc

    def _record_write(self) -> None:
        if self._tap is not None:
            self._tap.wrote(b"".join(self._rec_out))
        self._rec_out = []

    def _record_reply(self, reply: Reply) -> None:
        if self._tap is not None:
            self._tap.parsed(len(self.conn.trailing_data[0]), redact_challenges if reply.code == 334 else None)

    def interrupted(self, flow: Flow[object], exc: BaseException) -> bool:
        """A facade's run of ``flow`` ended with ``exc``.  True when the session
        is now broken and the facade must close its transport.

        An exception the flow raised itself (a refusal, a bad argument) leaves
        the session as the flow decided.  Anything else — a cancellation, a
        ``KeyboardInterrupt``, an error of the transport that is not an
        :class:`SMTPClientError` — stopped the exchange half-way: commands may
        be on the wire whose replies nobody will read, so the next call would
        take them for its own (a stale 250 reported as success).  Such a
        session can only be closed.
        """
        suspended = inspect.getgeneratorstate(flow) == inspect.GEN_SUSPENDED
        if not suspended and isinstance(exc, Exception):
            return False
        if suspended:
            flow.close()
        self._broken = True
        self._out = []
        self._end_recording()
        return True

    def transport_closed(self) -> None:
        """The facade closed the transport (``close()`` without QUIT, or after
        an error): the transcript, if any, is complete; a second call does
        nothing."""
        self._end_recording()

    def _end_recording(self) -> None:
        """The transport is about to close: the transcript is complete."""
        self._rec_out = []
        if self._tap is not None:
            self._tap.finish()

    def _unsolicited(self) -> None:
        """Bytes arrived while no command awaited a reply: they must not be taken
        as the reply to the command we are about to send (SECURITY-CASES T-11)."""
        try:
            ev = self.conn.next_event()
        except RemoteProtocolError as exc:
            self._broken = True
            raise SMTPProtocolViolation(f"server broke the protocol: {exc}") from exc
        if isinstance(ev, Reply):  # only a 421 is accepted unasked (RFC 5321 §3.8)
            self._record_reply(ev)
            self._log_reply(ev)
            self._broken = True
            raise SMTPServerDisconnected(f"server closing the connection: {_reply_summary(ev)}", ev)

    def _flush(self, timeout: float | None = None) -> Flow[None]:
        if not self._out:
            return
        data = self._out[0] if len(self._out) == 1 else b"".join(self._out)
        self._out = []
        self._record_write()
        yield from self._write(data, self._timeout() if timeout is None else timeout)

    def _write(self, data: bytes, timeout: float) -> Flow[None]:
        """Write ``data``; a failed write breaks the session (the caller's
        error is the adapter's, raised again)."""
        try:
            yield Write(data, timeout)
        except SMTPClientError as exc:
            self.conn.send_failed()
            yield from self._break()
            raise exc

    def _command(self, event: Command | AuthResponse) -> Flow[Reply]:
        """Send one command and wait for its reply."""
        self._queue(event)
        yield from self._flush()
        return (yield from self._reply())

    def _reply(self, first: NextEvent | RemoteProtocolError | None = None, fresh: bool = True) -> Flow[Reply]:
        """The next reply from the server (fatal on EOF, 421, protocol errors);
        ``first``: what ``next_event()`` already gave (or raised), if anything;
        ``fresh``: no read for this reply was made yet."""
        while True:
            try:
                if first is None:
                    ev = self.conn.next_event()
                elif isinstance(first, RemoteProtocolError):
                    raise first
                else:
                    ev, first = first, None
            except RemoteProtocolError as exc:
                err: SMTPClientError
                if self.conn.trailing_data[1]:
                    # EOF in the middle of a reply (F-01): a lost connection.
                    err = SMTPServerDisconnected(f"server closed the connection: {exc}")
                else:
                    err = SMTPProtocolViolation(f"server broke the protocol: {exc}")
                err.__cause__ = exc
                yield from self._break()
                raise err
            if isinstance(ev, Reply):
                if self._tap is not None:
                    self._record_reply(ev)
                if self.options.transcript is not None:
                    self._log_reply(ev)
                if ev.code == 421:
                    if ev.command is None and self.greeting is None:
                        yield from self._break()
                        raise SMTPConnectError(f"server not available: {_reply_summary(ev)}", ev)
                    if not isinstance(ev.command, Quit):
                        yield from self._break()
                        raise SMTPServerDisconnected(f"server closing the connection: {_reply_summary(ev)}", ev)
                return ev
            if ev is NEED_DATA:
                if fresh:
                    self.round_trips += 1
                try:
                    data = yield Read(self._timeout(), fresh)
                except SMTPClientError as exc:
                    yield from self._break()
                    raise exc
                fresh = False
                if self._tap is not None:
                    self._tap.read(data or b"")
                self.conn.receive_data(data or b"")
                continue
            if isinstance(ev, ConnectionClosed):
                yield from self._break()
                raise SMTPServerDisconnected("server closed the connection unexpectedly")
            if ev is PAUSED:  # pragma: no cover - the STARTTLS code never asks for a reply here
                raise RuntimeError("no reply can arrive during the STARTTLS hand-over")
            raise SMTPProtocolViolation(f"unexpected event from the server: {ev!r}")  # pragma: no cover

    def _check_usable(self) -> None:
        if self._quit:
            raise SMTPServerDisconnected("the session has ended (QUIT)")
        if self._broken or self.conn.state in _ENDED:
            raise SMTPServerDisconnected("not connected")

    # -------------------------------------------------------------- handshake

    def handshake(self) -> Flow[Reply]:
        """Greeting, EHLO (HELO fallback), STARTTLS as configured, AUTH when
        credentials were given.  Returns the last EHLO/LHLO/HELO reply."""
        try:
            greeting = yield from self._reply()
        except SMTPTimeoutError as exc:
            # Said, because a silent server is often one waiting for our TLS
            # ClientHello (an implicit-TLS port, RFC 8314 §3.3).
            raise SMTPTimeoutError(f"{exc} (waiting for its greeting)") from exc
        except SMTPServerDisconnected as exc:
            if exc.reply is not None:
                raise
            raise SMTPServerDisconnected(f"{exc} (before its greeting)") from exc
        self.greeting = greeting
        if greeting.code != 220:
            self._queue_quietly_quit()
            yield from self._flush_quietly()
            yield from self._break()
            raise SMTPConnectError(f"server refused the session: {_reply_summary(greeting)}", greeting)
        reply = yield from self._hello()
        opts = self.options
        if not self.conn.tls_active and opts.starttls != "never":
            if self.conn.extensions.starttls:
                tls_reply = yield from self._command(StartTLSCommand())
                if tls_reply.code == 220:
                    # The core reports bytes that came behind the 220 (T-06) on
                    # the next call; only PAUSED means the hand-over may start.
                    try:
                        after = self.conn.next_event()
                    except RemoteProtocolError as exc:
                        yield from self._break()
                        raise SMTPProtocolViolation(f"server broke the protocol: {exc}") from exc
                    if after is not PAUSED:
                        yield from self._break()
                        raise SMTPProtocolViolation(f"unexpected {after!r} after the 220 reply to STARTTLS")
                    try:
                        yield StartTLS()
                    except SMTPClientError as exc:
                        yield from self._break()
                        raise exc
                    self.conn.tls_established()
                    if self._tap is not None:
                        self._tap.starttls()
                    self._log("C", "<TLS established>")
                    reply = yield from self._hello()
                elif opts.starttls == "required":
                    yield from self._quit_and_break()
                    raise SMTPTLSError(f"STARTTLS refused: {_reply_summary(tls_reply)}")
            elif opts.starttls == "required":
                yield from self._quit_and_break()
                raise SMTPTLSRequiredError(
                    "TLS is required but the server does not offer STARTTLS (possible STARTTLS stripping, T-08)")
        if opts.credentials is not None:
            yield from self._authenticate(opts.credentials)
        return reply

    def _queue_quietly_quit(self) -> None:
        try:
            self._queue(Quit())
        except LocalProtocolError:
            pass

    def _flush_quietly(self) -> Flow[None]:
        if not self._out:
            return
        data, self._out = b"".join(self._out), []
        self._record_write()
        try:
            yield Write(data, self._timeout())
        except SMTPClientError:
            pass

    def _quit_and_break(self) -> Flow[None]:
        """Say QUIT (without waiting) and close: going on would be unsafe (the
        caller raises)."""
        self._queue_quietly_quit()
        yield from self._flush_quietly()
        yield from self._break()

    def _hello(self) -> Flow[Reply]:
        domain = self.options.local_hostname
        if self.options.lmtp:
            reply = yield from self._command(Lhlo(domain=domain))
        else:
            reply = yield from self._command(Ehlo(domain=domain))
            if reply.code in (500, 502):
                # RFC 5321 §3.2: an old server; fall back to HELO (no extensions).
                reply = yield from self._command(Helo(domain=domain))
        if reply.code != 250:
            yield from self._quit_and_break()
            raise SMTPHeloError("greeting command refused", reply)
        self.hello_reply = reply
        return reply

    def _authenticate(self, creds: sasl.Credentials) -> Flow[None]:
        ext = self.conn.extensions
        cfg = self.conn.config
        if not self.conn.tls_active and not cfg.allow_auth_without_tls:
            yield from self._quit_and_break()
            raise SMTPTLSRequiredError(
                "refusing to send credentials over a cleartext connection (T-08); use TLS")
        if not ext.auth:
            yield from self._quit_and_break()
            raise SMTPNotSupportedError("the server does not offer AUTH")
        name = sasl.choose_mechanism(
            ext.auth_mechanisms,
            self.options.auth_mechanisms,
            tls_active=self.conn.tls_active,
            have_password=creds.password is not None,
            have_token=creds.token is not None,
            allow_plaintext=cfg.allow_auth_without_tls,
        )
        if name is None:
            yield from self._quit_and_break()
            raise SMTPAuthenticationError(
                f"no usable SASL mechanism in common (server offers: {' '.join(ext.auth_mechanisms) or 'none'})")
        try:
            mech = sasl.client_mechanism(name, creds)
        except ValueError as exc:
            yield from self._quit_and_break()
            raise SMTPAuthenticationError(str(exc))
        reply = yield from self._command(Auth(mechanism=name, initial_response=mech.initial_response()))
        while reply.code == 334:
            challenge_text = reply.lines[0] if reply.lines else ""
            try:
                try:
                    challenge = sasl.decode_challenge(challenge_text)
                except sasl.SaslError:
                    if not mech.tolerant_challenges:
                        raise
                    challenge = challenge_text.encode("utf-8", "replace")
                answer = AuthResponse(data=mech.respond(challenge))
            except sasl.SaslError as exc:
                reply = yield from self._command(AuthResponse(cancelled=True))
                raise SMTPAuthenticationError(f"AUTH {name} aborted: {exc}", reply) from exc
            reply = yield from self._command(answer)
        if reply.code != 235:
            raise SMTPAuthenticationError(f"AUTH {name} failed", reply)
        try:
            mech.finish()
        except sasl.SaslError as exc:
            # The server could not prove it knows the secret (SCRAM): do not trust it.
            yield from self._quit_and_break()
            raise SMTPAuthenticationError(f"server authentication failed: {exc}")

    # -------------------------------------------------------------- simple commands

    def noop(self) -> Flow[Reply]:
        self._check_usable()
        return (yield from self._command(Noop()))

    def rset(self) -> Flow[Reply]:
        self._check_usable()
        reply = yield from self._command(Rset())
        if reply.code != 250:
            raise SMTPResponseError("RSET refused", reply)
        return reply

    def quit(self) -> Flow[Reply | None]:
        """QUIT, wait for 221 (an EOF instead is accepted), close."""
        if self._quit or self._broken:
            if not self._broken:
                self._end_recording()
                yield Close()
            return None
        self._quit = True
        reply: Reply | None = None
        try:
            if self.conn.state not in (State.CLOSED, State.ERROR):
                self._queue(Quit())
                yield from self._flush()
                reply = yield from self._reply()
        except SMTPClientError:
            pass  # _fatal already closed
        else:
            self._end_recording()
            yield Close()
        return reply

    def _ensure_idle(self) -> Flow[None]:
        """RSET when a previous failed transaction left the session mid-way, or
        after a refused BDAT chunk (RFC 3030 §3: the client MUST send RSET)."""
        if self._need_rset or self.conn.state in (State.MAIL, State.RCPT, State.BDAT):
            self._need_rset = False
            yield from self.rset()

    # -------------------------------------------------------------- transactions

    def mail_params(self, sender: str, recipients: Sequence[str], message: OutgoingMessage,
                    extra: Mapping[str, str | None] | None = None) -> dict[str, str | None]:
        """The MAIL FROM parameters this message needs on this session; raises
        :class:`SMTPNotSupportedError` / :class:`SMTPMessageTooLarge` when the
        server cannot take it."""
        ext = self.conn.extensions
        params: dict[str, str | None] = {k.upper(): v for k, v in extra.items()} if extra else {}
        utf8 = message.utf8_headers or not sender.isascii() or not "".join(recipients).isascii()
        if utf8:
            if not ext.smtputf8:
                raise SMTPNotSupportedError(
                    "the message needs SMTPUTF8 (non-ASCII addresses or header fields) and the server does not offer it")
            params["SMTPUTF8"] = None
        binary_ok = ext.binarymime and ext.chunking and self.options.chunking
        if message.binary:
            if not binary_ok:
                raise SMTPNotSupportedError("the message holds NUL octets and needs BINARYMIME with CHUNKING")
            params["BODY"] = "BINARYMIME"
        elif message.eight_bit is None and binary_ok and "BODY" not in params:
            # A non-seekable stream: its class is known only once it is sent.
            # BINARYMIME takes any octets as they are (RFC 3030 §3).
            params["BODY"] = "BINARYMIME"
        elif message.eight_bit or utf8 or message.eight_bit is None:
            if ext.eightbitmime:
                params.setdefault("BODY", "8BITMIME")
            elif message.eight_bit:
                raise SMTPNotSupportedError("the message has 8bit content and the server does not offer 8BITMIME")
        limit = ext.size
        if limit is not None and message.size is not None:
            if limit and message.size > limit:
                raise SMTPMessageTooLarge(
                    f"the message ({message.size} octets) is larger than the server's limit ({limit})")
            params["SIZE"] = str(message.size)
        return params

    def send_mail(
        self,
        sender: str,
        recipients: Sequence[str],
        message: OutgoingMessage,
        *,
        mail_params: Mapping[str, str | None] | None = None,
        rcpt_params: Mapping[str, str | None] | None = None,
    ) -> Flow[SendResult]:
        """One mail transaction.  Partial success returns; the message reaching
        nobody raises (sender, recipients or data refused)."""
        self._check_usable()
        self._check_recipients(recipients)
        if self._need_rset or self.conn.state in _IN_TRANSACTION:
            yield from self._ensure_idle()
        params = self.mail_params(sender, recipients, message, mail_params)
        ext = self.conn.extensions
        use_bdat = self.options.chunking and ext.chunking
        pipelining = self.options.pipelining and self.conn.pipelining
        mail = self._event(Mail, "reverse_path", sender, params)
        extra = dict(rcpt_params or {})
        rcpts = [self._event(Rcpt, "forward_path", r, extra) for r in recipients]
        opts = self.options
        if (pipelining and not use_bdat and message.whole is not None and not opts.lmtp
                and opts.transcript is None and self._tap is None):
            return (yield from self._send_simple(sender, recipients, params, mail, rcpts, message))
        tx = _Transaction(sender, list(recipients), params)
        if message.eight_bit is None:
            message = replace(message, chunks=_checked_chunks(message.chunks, params.get("BODY")))
        if use_bdat:
            yield from self._send_bdat(tx, mail, rcpts, message, pipelining)
        else:
            yield from self._send_data(tx, mail, rcpts, message, pipelining)
        return tx.result()

    def _check_recipients(self, recipients: Sequence[str]) -> None:
        if not recipients:
            raise ValueError("no recipients (none given and none in the To/Cc/Bcc fields)")
        if len(recipients) > self.conn.config.max_recipients:
            raise ValueError(f"{len(recipients)} recipients; at most {self.conn.config.max_recipients} per "
                             "transaction (Config.max_recipients): split the list")

    def _send_simple(self, sender: str, recipients: Sequence[str], params: dict[str, str | None], mail: Mail,
                     rcpts: Sequence[Rcpt], message: OutgoingMessage) -> Flow[SendResult]:
        """What _send_data does with PIPELINING, for SMTP, content in one piece
        and nothing recorded or logged, without the general code's queue:
        most messages go this way.  Anything but full success goes on in the
        general code."""
        content = message.whole
        assert content is not None
        conn = self.conn
        if conn.more_input_buffered and not conn.pending:
            self._unsolicited()
        send = conn.send
        try:
            # RFC 2920: MAIL, every RCPT and DATA in one group, one round trip.
            out = send(mail)
            for rcpt in rcpts:
                out += send(rcpt)
            out += send(_DATA)
        except LocalProtocolError as exc:
            self._refused_locally(exc, False)
            raise
        yield from self._write(out, self._timeout())
        refused = yield from self._group_replies(sender, recipients, params, rcpts, message)
        if refused is not None:
            return refused
        out, block = yield from self._whole_content(content)
        yield from self._write(out, block)
        outcome = yield from self._simple_final(sender, recipients, params, len(content))
        if isinstance(outcome, SMTPDataRefused):
            raise outcome
        return outcome

    def _whole_content(self, content: bytes) -> Flow[tuple[bytes, float]]:
        """The bytes of ``content`` and its end of data, after a 354, with the
        data block timeout for writing them (RFC 5321 §4.5.3.2.5)."""
        send = self.conn.send
        try:
            out = send(MessageData(data=content))
        except Exception:
            # Refused by the bare-newline policy: the session is mid-content.
            yield from self._break()
            raise
        block = self._timeout()
        try:
            out += send(_EOM)
        except LocalProtocolError as exc:
            self._refused_locally(exc, bool(out))
            raise
        return out, block

    def _simple_final(self, sender: str, recipients: Sequence[str], params: dict[str, str | None],
                      size: int) -> Flow[SendResult | SMTPDataRefused]:
        """The final reply to content that _send_simple or _send_grouped sent
        with DATA, as the result or the refusal."""
        try:
            ev: NextEvent | RemoteProtocolError = self.conn.next_event()
        except RemoteProtocolError as exc:
            ev = exc
        if not isinstance(ev, Reply) or ev.code == 421:
            ev = yield from self._simple_reply(ev)
        if ev.code >= 400:
            return SMTPDataRefused(ev, {a: RecipientStatus.from_reply(a, ev) for a in recipients})
        text = " ".join(ev.lines)
        statuses = {a: RecipientStatus(a, ev.code, text, ev.enhanced_status) for a in recipients}
        return SendResult(sender, statuses, ev, size, "DATA", dict(params))

    def _group_replies(self, sender: str, recipients: Sequence[str], params: dict[str, str | None],
                       rcpts: Sequence[Rcpt], message: OutgoingMessage) -> Flow[SendResult | None]:
        """The replies to MAIL, every RCPT and DATA sent as one group.  None
        when all said yes (the content may go); otherwise the general code
        finishes the transaction and its result (or refusal) comes back."""
        next_event = self.conn.next_event
        replies: list[Reply] = []
        for _ in range(len(rcpts) + 2):
            try:
                ev: NextEvent | RemoteProtocolError = next_event()
            except RemoteProtocolError as exc:
                ev = exc
            if not isinstance(ev, Reply) or ev.code == 421:
                ev = yield from self._simple_reply(ev)
            replies.append(ev)
        data_reply = replies.pop()
        if replies[0].code == 250 and data_reply.code == 354 and all(r.code < 400 for r in replies):
            return None
        tx = _Transaction(sender, list(recipients), params)
        tx.mail_reply = replies[0]
        for rcpt, reply in zip(rcpts, replies[1:]):
            tx.rcpt_replies[rcpt.forward_path] = reply
        yield from self._send_content(tx, data_reply, message)
        return tx.result()

    def _simple_reply(self, ev: NextEvent | RemoteProtocolError) -> Flow[Reply]:
        """_reply for _send_simple, given what next_event() gave: the common
        case (the reply after one read) here, anything else in _reply."""
        conn = self.conn
        fresh = True
        if ev is NEED_DATA:
            self.round_trips += 1
            try:
                data = yield Read(self._timeout(), True)
            except SMTPClientError as exc:
                yield from self._break()
                raise exc
            conn.receive_data(data or b"")
            fresh = False
            try:
                ev = conn.next_event()
            except RemoteProtocolError as exc:
                ev = exc
        if isinstance(ev, Reply) and ev.code != 421:
            return ev
        return (yield from self._reply(ev, fresh))

    def send_messages(
        self,
        items: Iterable[BatchItem],
        *,
        mail_params: Mapping[str, str | None] | None = None,
        rcpt_params: Mapping[str, str | None] | None = None,
    ) -> Flow[list[SendOutcome]]:
        """Many transactions, each message's end of data in one write with the
        next one's MAIL, RCPT and DATA (RFC 2920 §3.1: "the RSET/MAIL FROM
        sequence necessary to initiate a new message transaction can be placed
        in the same group as the final transfer of the headers and body of the
        previous message"): one round trip per message instead of two.

        Returns one outcome per item taken from ``items``, in order: the
        :class:`SendResult`, or the exception :meth:`send_mail` would have
        raised for that message alone.  When the connection is lost, the
        messages whose fate is unknown get that error and no further item is
        taken, so an iterator can be resumed on a new connection.  Messages
        that cannot be grouped this way (streamed, BDAT, LMTP, no PIPELINING,
        a transcript or a recording) are sent one after the other.
        """
        self._check_usable()
        outcomes: list[SendOutcome | None] = []
        batch = _Batch()
        opts = self.options
        grouped = (opts.pipelining and self.conn.pipelining and not (opts.chunking and self.conn.extensions.chunking)
                   and not opts.lmtp and opts.transcript is None and self._tap is None)
        extra = dict(rcpt_params or {})
        try:
            for item in items:
                index = len(outcomes)
                outcomes.append(None)
                try:
                    message, sender, recipients = item if isinstance(item, tuple) else (item, None, None)
                    sender, env_rcpts, outgoing = prepare_message(message, sender, recipients, chunk_size=opts.chunk_size)
                except (ValueError, TypeError, OSError) as exc:  # no envelope, not a message, unreadable: nothing sent
                    outcomes[index] = exc
                    continue
                try:
                    self._check_recipients(env_rcpts)
                    params = self.mail_params(sender, env_rcpts, outgoing, mail_params)
                    if self._need_rset or self.conn.state in _IN_TRANSACTION:
                        yield from self._settle(batch, outcomes)
                        yield from self._ensure_idle()
                    if grouped and outgoing.whole is not None:
                        mail = self._event(Mail, "reverse_path", sender, params)
                        rcpts = [self._event(Rcpt, "forward_path", r, extra) for r in env_rcpts]
                        outcomes[index] = yield from self._send_grouped(
                            batch, outcomes, index, sender, env_rcpts, params, mail, rcpts, outgoing)
                    else:
                        yield from self._settle(batch, outcomes)
                        outcomes[index] = yield from self.send_mail(
                            sender, env_rcpts, outgoing, mail_params=params, rcpt_params=rcpt_params)
                except (SMTPClientError, ValueError) as exc:
                    # This message's own failure; the connection's, when the
                    # session can no longer go on (then for every message
                    # still waiting for its reply).
                    outcomes[index] = exc
                    if not self.usable:
                        raise
                    continue
            yield from self._settle(batch, outcomes)
        except Exception as exc:
            # The connection failed (the session is no longer usable), or the
            # iterable raised: either way a message may be committed in the
            # core and not on the wire (content never written was not sent),
            # so the session ends.
            lost = isinstance(exc, (SMTPClientError, ValueError)) and not self.usable
            batch.tail = b""
            yield from self._break()
            if not lost:
                raise
            for i, outcome in enumerate(outcomes):
                if outcome is None:
                    outcomes[i] = exc
        return [o for o in outcomes if o is not None]

    def _send_grouped(self, batch: "_Batch", outcomes: list[SendOutcome | None], index: int, sender: str,
                      recipients: list[str], params: dict[str, str | None], mail: Mail, rcpts: Sequence[Rcpt],
                      message: OutgoingMessage) -> Flow[SendOutcome | None]:
        """One message of :meth:`send_messages`: its envelope goes out behind
        the previous message's content; its own content waits in ``batch`` for
        the next group.  Returns its outcome, or None while its final reply is
        to come."""
        content = message.whole
        assert content is not None
        conn = self.conn
        if not batch.tail and conn.more_input_buffered and not conn.pending:
            self._unsolicited()
        send = conn.send
        out = send(mail)  # refused by the core: nothing of this message committed
        try:
            for rcpt in rcpts:
                out += send(rcpt)
            out += send(_DATA)
        except LocalProtocolError as exc:
            self._refused_locally(exc, True)  # MAIL committed and not sent: broken
            raise
        timeout = batch.timeout if batch.tail else self._timeout()
        out, batch.tail = batch.tail + out, b""
        yield from self._write(out, timeout)
        yield from self._settle(batch, outcomes)  # the previous message's final reply
        refused = yield from self._group_replies(sender, recipients, params, rcpts, message)
        if refused is not None:
            return refused
        batch.tail, batch.timeout = yield from self._whole_content(content)
        batch.waiting = (index, sender, recipients, params, len(content))
        return None

    def _settle(self, batch: "_Batch", outcomes: list[SendOutcome | None]) -> Flow[None]:
        """Write what :meth:`_send_grouped` left waiting, if anything, and read
        the final reply of the message still owed one."""
        if batch.tail:
            out, batch.tail = batch.tail, b""
            yield from self._write(out, batch.timeout)
        if batch.waiting is None:
            return
        index, sender, recipients, params, size = batch.waiting
        outcomes[index] = yield from self._simple_final(sender, recipients, params, size)
        batch.waiting = None

    def _event(self, cls: type[_PathEvent], name: str, path: str, params: dict[str, str | None]) -> _PathEvent:
        """``cls(name=path, params=params)``, checked by its constructor once and
        then reused: a client sends from, and to, the same few addresses again
        and again.  (The core still checks each one against the session.)"""
        key = (cls, path, tuple(params.items()))
        kept = self._events.get(key)
        if isinstance(kept, cls) and kept.params == params:  # the event is frozen, its params dict is not
            return kept
        event = cls(**{name: path}, params=params)
        if len(self._events) >= _EVENTS_KEPT:
            self._events.clear()
        self._events[key] = event
        return event

    def _envelope_replies(self, tx: "_Transaction", rcpts: Sequence[Rcpt]) -> Flow[None]:
        tx.mail_reply = yield from self._reply()
        for rcpt in rcpts:
            reply = yield from self._reply()
            tx.rcpt_replies[rcpt.forward_path] = reply

    def _send_envelope_one_by_one(self, tx: "_Transaction", mail: Mail, rcpts: Sequence[Rcpt]) -> Flow[bool]:
        tx.mail_reply = yield from self._command(mail)
        if tx.mail_reply.code != 250:
            return False
        for rcpt in rcpts:
            tx.rcpt_replies[rcpt.forward_path] = yield from self._command(rcpt)
        return bool(tx.accepted_rcpts())

    def _send_data(self, tx: "_Transaction", mail: Mail, rcpts: Sequence[Rcpt], message: OutgoingMessage,
                   pipelining: bool) -> Flow[None]:
        if pipelining:
            # RFC 2920: MAIL, every RCPT and DATA in one group, one round trip.
            self._queue(mail)
            for rcpt in rcpts:
                self._queue(rcpt)
            self._queue(Data())
            yield from self._flush()
            tx.mail_reply = yield from self._reply()
            for rcpt in rcpts:
                tx.rcpt_replies[rcpt.forward_path] = yield from self._reply()
            data_reply = yield from self._reply()
        else:
            ok = yield from self._send_envelope_one_by_one(tx, mail, rcpts)
            if not ok:
                tx.raise_envelope_failure()
            data_reply = yield from self._command(Data())
        yield from self._send_content(tx, data_reply, message)

    def _send_content(self, tx: "_Transaction", data_reply: Reply, message: OutgoingMessage) -> Flow[None]:
        """What follows the reply to DATA: the content, or the ending of a failed envelope."""
        if data_reply.code == 354 and (tx.mail_reply is None or tx.mail_reply.code != 250 or not tx.accepted_rcpts()):
            # RFC 2920 §3.1: a server that accepted DATA anyway gets an empty message ended at once.
            self._queue(EndOfMessage())
            yield from self._flush()
            while self.conn.pending:
                yield from self._reply()
        tx.raise_envelope_failure()
        if data_reply.code != 354:
            raise SMTPDataRefused(data_reply)
        size = 0
        queued = 0
        try:
            for chunk in message.chunks:
                if not chunk:
                    continue
                size += len(chunk)
                self._queue(MessageData(data=chunk))
                queued += len(chunk)
                if queued >= self.options.chunk_size:
                    # Small pieces are gathered so the end of data goes out with
                    # the last of them, in one write (no Nagle/delayed-ACK stall).
                    yield from self._flush()
                    queued = 0
        except _UnsendableContent:
            yield from self._break()
            raise
        except SMTPClientError:
            raise
        except Exception:
            # The message source failed mid-transfer: the session cannot be resumed.
            yield from self._break()
            raise
        block = self._timeout()  # RFC 5321 §4.5.3.2.5: the data block timeout
        self._queue(EndOfMessage())
        if self.options.transcript is not None:
            self._log("C", f"<message content: {size} octets>")
            self._log("C", ".")
        yield from self._flush(block)
        tx.size, tx.body = size, "DATA"
        if self.options.lmtp:
            yield from self._final_replies(tx)
        else:
            tx.final_reply = yield from self._reply()
            tx.raise_data_failure()

    def _send_bdat(self, tx: "_Transaction", mail: Mail, rcpts: Sequence[Rcpt], message: OutgoingMessage,
                   pipelining: bool) -> Flow[None]:
        binary = message.binary or (tx.params.get("BODY") or "").upper() == "BINARYMIME"
        fixer = _LineEndings(reject=self.conn.config.client_bare_newline == "reject")
        source = iter(message.chunks)

        def chunks() -> Iterator[bytes]:
            for raw in source:
                data = raw if binary else fixer.feed(raw)
                if data:
                    yield data
            tail = b"" if binary else fixer.close()
            if tail:
                yield tail

        stream = chunks()
        pending = next(stream, None)
        in_flight: list[bool] = []  # one entry per BDAT awaiting its reply (True: LAST)
        sent_last = False
        size = 0
        failed: Reply | None = None

        def queue_chunk(data: bytes | None) -> bytes | None:
            """Queue the chunk ``data`` (None: the empty LAST chunk); return the one after."""
            nonlocal size, sent_last
            following = next(stream, None) if data is not None else None
            last = following is None
            body = data or b""
            self._queue(Bdat(size=len(body), last=last))
            if body:
                self._queue(MessageData(data=body))
                self._log("C", f"<message content: {len(body)} octets>")
                size += len(body)
            if last:
                self._queue(EndOfMessage())
            in_flight.append(last)
            sent_last = last
            return following

        def advance() -> Flow[None]:
            """Queue and write the next chunk; a failing message source (or
            content refused by the bare-newline policy) ends the session."""
            nonlocal pending
            try:
                pending = queue_chunk(pending)
            except _UnsendableContent:
                yield from self._break()
                raise
            except SMTPClientError:
                raise
            except Exception:
                yield from self._break()
                raise
            yield from self._flush()

        if pipelining and not self.options.lmtp:
            self._queue(mail)
            for rcpt in rcpts:
                self._queue(rcpt)
            yield from advance()
            yield from self._envelope_replies(tx, rcpts)
        else:
            if pipelining:  # LMTP: the recipients must be known before BDAT LAST
                self._queue(mail)
                for rcpt in rcpts:
                    self._queue(rcpt)
                yield from self._flush()
                yield from self._envelope_replies(tx, rcpts)
            else:
                yield from self._send_envelope_one_by_one(tx, mail, rcpts)
            if tx.mail_reply is None or tx.mail_reply.code != 250 or not tx.accepted_rcpts():
                tx.raise_envelope_failure()
            yield from advance()
        envelope_ok = tx.mail_reply is not None and tx.mail_reply.code == 250 and bool(tx.accepted_rcpts())
        limit = _MAX_BDAT_IN_FLIGHT if pipelining else 0
        while True:
            # Read replies for chunks already sent (never the LAST one's here):
            # all of them without PIPELINING, else once too many are in flight.
            while in_flight and not in_flight[0] and (
                    len(in_flight) > limit or not envelope_ok or failed is not None):
                in_flight.pop(0)
                reply = yield from self._reply()
                if reply.code != 250 and failed is None:
                    failed = reply
            if not envelope_ok or failed is not None or sent_last:
                break
            yield from advance()
        while in_flight and not in_flight[0]:
            in_flight.pop(0)
            reply = yield from self._reply()
            if reply.code != 250 and failed is None:
                failed = reply
        tx.size, tx.body = size, "BDAT"
        if not envelope_ok or failed is not None:
            # Read what is still owed; the RSET before the next transaction clears
            # the session (RFC 3030 §3).
            self._need_rset = True
            while self.conn.pending:
                yield from self._reply()
            tx.raise_envelope_failure()
            assert failed is not None
            raise SMTPDataRefused(failed)
        yield from self._final_replies(tx)

    def _final_replies(self, tx: "_Transaction") -> Flow[None]:
        if self.options.lmtp:
            count = len(tx.accepted_rcpts())
            for _ in range(count):
                reply = yield from self._reply()
                address = reply.recipient.forward_path if reply.recipient is not None else None
                if address is None:  # pragma: no cover - the core always pairs LMTP replies
                    raise SMTPProtocolViolation("LMTP reply without a recipient")
                tx.final[address] = reply
                tx.final_reply = reply
        else:
            tx.final_reply = yield from self._reply()
        tx.raise_data_failure()


@dataclass
class _Batch:
    """What :meth:`ClientSession.send_messages` carries from one group to the
    next: the last message's content and end of data, not yet written, and
    the message whose final reply is still owed."""

    tail: bytes = b""
    timeout: float = 0.0
    waiting: tuple[int, str, list[str], dict[str, str | None], int] | None = None


@dataclass
class _Transaction:
    sender: str
    recipients: list[str]
    params: dict[str, str | None]
    mail_reply: Reply | None = None
    rcpt_replies: dict[str, Reply] = field(default_factory=dict)
    final: dict[str, Reply] = field(default_factory=dict)  # LMTP
    final_reply: Reply | None = None
    size: int = 0
    body: str = "DATA"

    def accepted_rcpts(self) -> list[str]:
        return [a for a, r in self.rcpt_replies.items() if r.code < 400]

    def raise_envelope_failure(self) -> None:
        if self.mail_reply is None:  # pragma: no cover - read before any check
            raise RuntimeError("MAIL reply missing")
        if self.mail_reply.code != 250:
            raise SMTPSenderRefused(self.sender, self.mail_reply)
        if not self.accepted_rcpts():
            raise SMTPRecipientsRefused(
                {a: RecipientStatus.from_reply(a, r) for a, r in self.rcpt_replies.items()})

    def statuses(self) -> dict[str, RecipientStatus]:
        out: dict[str, RecipientStatus] = {}
        for address in self.recipients:
            rcpt = self.rcpt_replies.get(address)
            if rcpt is not None and rcpt.code >= 400:
                out[address] = RecipientStatus.from_reply(address, rcpt)
            elif address in self.final:
                out[address] = RecipientStatus.from_reply(address, self.final[address])
            elif self.final_reply is not None:
                out[address] = RecipientStatus.from_reply(address, self.final_reply)
        return out

    def raise_data_failure(self) -> None:
        assert self.final_reply is not None
        if self.final:
            if not any(r.code < 400 for r in self.final.values()):
                raise SMTPDataRefused(self.final_reply, self.statuses())
        elif self.final_reply.code >= 400:
            raise SMTPDataRefused(self.final_reply, self.statuses())

    def result(self) -> SendResult:
        assert self.final_reply is not None
        return SendResult(self.sender, self.statuses(), self.final_reply, self.size, self.body, dict(self.params))


# ---------------------------------------------------------------- facade helpers


def build_options(
    *,
    starttls: StartTLSMode,
    tls: bool,
    username: str | None,
    password: str | None,
    credentials: sasl.Credentials | None,
    auth_mechanisms: Sequence[str] | None,
    local_hostname: str | None,
    lmtp: bool,
    timeout: float | None,
    config: Config | None,
    transcript: Transcript | None,
    chunking: bool,
    pipelining: bool,
    chunk_size: int,
    record: RecordTarget | None = None,
) -> ClientOptions:
    """The :class:`ClientOptions` for the facades' common keyword arguments."""
    if starttls not in ("required", "opportunistic", "never"):
        raise ValueError(f"starttls must be 'required', 'opportunistic' or 'never', not {starttls!r}")
    if credentials is None and (username is not None or password is not None):
        if username is None or password is None:
            raise ValueError("give both username and password")
        credentials = sasl.Credentials(username=username, password=password)
    cfg = config_with_timeout(config, timeout, lmtp=lmtp, require_tls=tls or starttls == "required")
    return ClientOptions(
        local_hostname=local_hostname or "localhost",
        starttls="never" if tls else starttls,
        implicit_tls=tls,
        credentials=credentials,
        auth_mechanisms=auth_mechanisms,
        lmtp=lmtp,
        chunking=chunking,
        pipelining=pipelining,
        chunk_size=chunk_size,
        config=cfg,
        transcript=transcript,
        record=record,
    )


def default_port(*, tls: bool, lmtp: bool) -> int:
    """465 for implicit TLS (RFC 8314), 24 for LMTP (RFC 2033), else 25."""
    if tls:
        return 465
    return 24 if lmtp else 25


def hello_name(sockname: object) -> str:
    """An EHLO argument for a client without a configured name: the address
    literal of our end of the connection (RFC 5321 §4.1.3), never a DNS lookup."""
    if isinstance(sockname, tuple) and sockname and isinstance(sockname[0], str):
        host = sockname[0].split("%", 1)[0]
        if ":" in host:
            return f"[IPv6:{host}]"
        if host and host.replace(".", "").isdigit():
            return f"[{host}]"
    return "localhost"
