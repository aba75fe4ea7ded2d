"""The events: what one peer says to the other.

Every event is a frozen, slotted, keyword-only dataclass, validated when it is
built, and compares by value.  The same classes serve both directions: what our
client sends arrives equal at our server, and the reverse.  Validation here is
about *safety* (no CR, LF, NUL or other controls can ever reach the wire through
an argument: CPython bpo-43124, aiosmtplib GHSA-v3q9-hj7j-63hq, nodemailer
GHSA-c7w3-x93f-qmm8, GHSA-vvjj-xcjg-gr5g); the finer RFC grammar of what *we*
send is checked again by :meth:`Connection.send`.
"""

from __future__ import annotations

import re
from dataclasses import MISSING, dataclass, field, fields
from typing import TYPE_CHECKING, Any, Mapping, Sequence, TypeVar

from ._errors import LocalProtocolError
from ._syntax import SyntaxProblem, check_mailbox, check_param, has_controls

if TYPE_CHECKING:  # pragma: no cover
    from .proxy import ProxyHeader

__all__ = [
    "Event",
    "Command",
    "Reply",
    "Ehlo",
    "Helo",
    "Lhlo",
    "Mail",
    "Rcpt",
    "Data",
    "Bdat",
    "MessageData",
    "EndOfMessage",
    "Rset",
    "Noop",
    "Quit",
    "Vrfy",
    "Expn",
    "Help",
    "StartTLS",
    "Auth",
    "AuthResponse",
    "Xclient",
    "Xforward",
    "ProxyConnected",
    "UnknownCommand",
    "InvalidCommand",
    "MessageRejected",
    "ConnectionClosed",
]


class Event:
    """Base class of every event."""

    __slots__ = ()


class Command(Event):
    """Base class of the SMTP commands (what a client sends)."""

    __slots__ = ()
    #: The command verb as it appears on the wire.
    verb: str = ""


_E = TypeVar("_E", bound=Event)
_DEFAULTS: dict[type, tuple[tuple[str, Any, Any], ...]] = {}


def _trusted(cls: type[_E], **values: Any) -> _E:
    """An event built from values the core has already checked -- a command
    it parsed, a reply it parsed, one of its own constant replies -- without
    running ``__post_init__``, whose checks would only repeat the parser's
    work on every command.  Never for values from an application: those go
    through the constructor.  Fields not given take their defaults."""
    spec = _DEFAULTS.get(cls)
    if spec is None:
        spec = _DEFAULTS[cls] = tuple((f.name, f.default, f.default_factory) for f in fields(cls))  # type: ignore[arg-type]
    obj = object.__new__(cls)
    setattr_ = object.__setattr__
    for name, default, factory in spec:
        if name in values:
            setattr_(obj, name, values[name])
        elif default is not MISSING:
            setattr_(obj, name, default)
        elif factory is not MISSING:
            setattr_(obj, name, factory())
        else:
            raise TypeError(f"{cls.__name__} needs {name}")
    return obj


def _check_text(value: str, what: str, *, allow_space: bool = True, allow_tab: bool = False) -> None:
    if not isinstance(value, str):
        raise LocalProtocolError(f"{what} must be str, not {type(value).__name__}")
    if has_controls(value.replace("\t", " ") if allow_tab else value):
        raise LocalProtocolError(f"{what} contains a control character: {value!r}")
    if not allow_space and " " in value:
        raise LocalProtocolError(f"{what} contains a space: {value!r}")


def _check_hello_domain(domain: str, what: str) -> None:
    _check_text(domain, what, allow_space=False)
    if domain == "":
        raise LocalProtocolError(f"{what} must not be empty")
    if len(domain.encode("utf-8")) > 255:
        raise LocalProtocolError(f"{what} longer than 255 octets")


# ---------------------------------------------------------------- replies


_ENHANCED = re.compile(r"[245]\.(?:0|[1-9][0-9]{0,2})\.(?:0|[1-9][0-9]{0,2})")


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply(Event):
    """A server reply (RFC 5321 §4.2): a three-digit code and one or more lines.

    ``enhanced_status`` (RFC 2034 / RFC 3463, ``"2.1.0"``) is written in front of
    every line's text and stripped from the lines when received.  The greeting is
    a Reply too.  On the client side :attr:`command` is the event this reply
    answers (a command, :class:`EndOfMessage` or :class:`AuthResponse`; ``None``
    for the greeting) and, for LMTP end-of-data replies,
    :attr:`recipient` the recipient it reports on; neither takes part in equality.
    """

    code: int
    lines: Sequence[str] = ("",)
    enhanced_status: str | None = None
    command: Event | None = field(default=None, compare=False, repr=False)
    recipient: "Rcpt | None" = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        # Servers send the same few replies and clients receive them again and
        # again: a reply equal to one already validated takes its checked,
        # normalised form from a small table instead of being checked anew.
        key = None
        if type(self.code) is int and type(self.lines) in (tuple, list):
            try:
                key = (self.code, tuple(self.lines), self.enhanced_status)
                seen = _REPLIES_SEEN.get(key)
            except TypeError:  # an unhashable line: _validate says what is wrong
                key = seen = None
            if seen is not None:
                object.__setattr__(self, "enhanced_status", seen[0])
                object.__setattr__(self, "lines", seen[1])
                return
        self._validate()
        if key is not None:
            if len(_REPLIES_SEEN) >= _REPLIES_SEEN_MAX:
                _REPLIES_SEEN.clear()
            _REPLIES_SEEN[key] = (self.enhanced_status, tuple(self.lines))

    def _validate(self) -> None:
        if isinstance(self.code, bool) or not isinstance(self.code, int) or not 200 <= self.code <= 599:
            raise LocalProtocolError(f"reply code must be an int from 200 to 599, not {self.code!r}")
        lines = (self.lines,) if isinstance(self.lines, str) else tuple(self.lines)
        if not lines:
            lines = ("",)
        for line in lines:
            # RFC 5321 §4.2: textstring = 1*(%d09 / %d32-126): HT is allowed.
            _check_text(line, "reply text", allow_tab=True)
        if self.enhanced_status is None:
            # Text that starts like an enhanced status code is one, as the
            # receiving side will read it: normalise now so that what is sent
            # arrives equal (RFC 2034 §4).
            status, lines = split_enhanced(self.code, lines)
            object.__setattr__(self, "enhanced_status", status)
        object.__setattr__(self, "lines", lines)
        if self.enhanced_status is not None:
            if _ENHANCED.fullmatch(self.enhanced_status) is None:
                raise LocalProtocolError(f"bad enhanced status code {self.enhanced_status!r}")
            if self.enhanced_status[0] != str(self.code)[0]:
                raise LocalProtocolError(
                    f"enhanced status {self.enhanced_status} does not match reply class {self.code}"
                )

    @property
    def text(self) -> str:
        """All lines joined with newlines."""
        return "\n".join(self.lines)

    @property
    def is_positive(self) -> bool:
        """2xx or 3xx."""
        return self.code < 400

    @property
    def is_transient(self) -> bool:
        """4xx: try again later."""
        return 400 <= self.code < 500

    @property
    def is_permanent(self) -> bool:
        """5xx."""
        return self.code >= 500


# (code, lines as given, enhanced_status as given) -> (enhanced_status, lines)
# of replies that passed validation; emptied when full.
_REPLIES_SEEN: dict[tuple[int, tuple[str, ...], str | None], tuple[str | None, tuple[str, ...]]] = {}
_REPLIES_SEEN_MAX = 512


def split_enhanced(code: int, texts: Sequence[str]) -> tuple[str | None, tuple[str, ...]]:
    """Take the RFC 2034 enhanced status code off reply lines if the first line
    starts with one whose class matches the reply code; strip it from every line
    that repeats it."""
    first = texts[0] if texts else ""
    status = first.partition(" ")[0]
    if _ENHANCED.fullmatch(status) is None or status[0] != str(code)[0]:
        return None, tuple(texts)
    out = []
    for text in texts:
        if text == status:
            out.append("")
        elif text.startswith(status + " "):
            out.append(text[len(status) + 1:])
        else:
            out.append(text)
    return status, tuple(out)


# ---------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True, kw_only=True)
class Ehlo(Command):
    """``EHLO domain`` (RFC 5321 §4.1.1.1)."""

    verb = "EHLO"
    domain: str

    def __post_init__(self) -> None:
        _check_hello_domain(self.domain, "EHLO domain")


@dataclass(frozen=True, slots=True, kw_only=True)
class Helo(Command):
    """``HELO domain`` (RFC 5321 §4.1.1.1)."""

    verb = "HELO"
    domain: str

    def __post_init__(self) -> None:
        _check_hello_domain(self.domain, "HELO domain")


@dataclass(frozen=True, slots=True, kw_only=True)
class Lhlo(Command):
    """``LHLO domain`` (RFC 2033 §4.1), LMTP's EHLO."""

    verb = "LHLO"
    domain: str

    def __post_init__(self) -> None:
        _check_hello_domain(self.domain, "LHLO domain")


def _freeze_params(event: object, params: Mapping[str, str | None]) -> None:
    if not isinstance(params, Mapping):
        raise LocalProtocolError("params must be a mapping of keyword to value or None")
    frozen: dict[str, str | None] = {}
    for key, value in params.items():
        if not isinstance(key, str) or (value is not None and not isinstance(value, str)):
            raise LocalProtocolError("params must map str to str or None")
        try:
            check_param(key, value)
        except SyntaxProblem as exc:
            raise LocalProtocolError(str(exc)) from None
        upper = key.upper()
        if upper in frozen:
            raise LocalProtocolError(f"parameter {upper} given twice")
        frozen[upper] = value
    object.__setattr__(event, "params", frozen)


def _check_path(value: str, what: str, *, allow_null: bool, allow_postmaster: bool) -> None:
    _check_text(value, what)
    if value == "":
        if not allow_null:
            raise LocalProtocolError(f"{what} must not be empty")
        return
    if allow_postmaster and value.lower() == "postmaster":
        return
    try:
        # Only the hard limits here; utf8 is checked against the session at send.
        check_mailbox(value, utf8=True)
    except SyntaxProblem as exc:
        raise LocalProtocolError(f"bad {what} {value!r}: {exc}") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class Mail(Command):
    """``MAIL FROM:<reverse_path> [params]`` (RFC 5321 §4.1.1.2).

    ``reverse_path`` is the mailbox without angle brackets; ``""`` is the null
    path ``<>``.  ``params`` maps upper-cased ESMTP keywords to their value, or to
    None for a keyword without one.
    """

    verb = "MAIL"
    reverse_path: str
    params: Mapping[str, str | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_path(self.reverse_path, "reverse path", allow_null=True, allow_postmaster=False)
        _freeze_params(self, self.params)


@dataclass(frozen=True, slots=True, kw_only=True)
class Rcpt(Command):
    """``RCPT TO:<forward_path> [params]`` (RFC 5321 §4.1.1.3).

    ``forward_path`` is the mailbox without brackets, or ``"Postmaster"``.
    """

    verb = "RCPT"
    forward_path: str
    params: Mapping[str, str | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_path(self.forward_path, "forward path", allow_null=False, allow_postmaster=True)
        _freeze_params(self, self.params)


@dataclass(frozen=True, slots=True, kw_only=True)
class Data(Command):
    """``DATA`` (RFC 5321 §4.1.1.4); content follows a 354 reply."""

    verb = "DATA"


@dataclass(frozen=True, slots=True, kw_only=True)
class Bdat(Command):
    """``BDAT size [LAST]`` (RFC 3030 §2): ``size`` octets of content follow at
    once, as :class:`MessageData`, with no dot-stuffing."""

    verb = "BDAT"
    size: int
    last: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 0:
            raise LocalProtocolError(f"BDAT size must be a non-negative int, not {self.size!r}")
        if self.size == 0 and not self.last:
            # RFC 3030 §2: a zero-length chunk is only meaningful as the LAST one.
            raise LocalProtocolError("BDAT 0 is only allowed with LAST")


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageData(Event):
    """A piece of message content.

    Sent by a client: the raw message bytes (the connection adds dot-stuffing and
    fixes line endings for DATA; BDAT content goes out as is).  Received by a
    server: the content with dot-stuffing removed and CRLF line endings.
    """

    data: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.data, (bytes, bytearray, memoryview)):
            raise LocalProtocolError("MessageData.data must be bytes")
        if not isinstance(self.data, bytes):
            object.__setattr__(self, "data", bytes(self.data))


@dataclass(frozen=True, slots=True, kw_only=True)
class EndOfMessage(Event):
    """The end of the message content (``CRLF.CRLF`` for DATA, the end of the
    ``LAST`` chunk for BDAT)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Rset(Command):
    """``RSET`` (RFC 5321 §4.1.1.5)."""

    verb = "RSET"


@dataclass(frozen=True, slots=True, kw_only=True)
class Noop(Command):
    """``NOOP`` (RFC 5321 §4.1.1.9); a received argument is ignored."""

    verb = "NOOP"


@dataclass(frozen=True, slots=True, kw_only=True)
class Quit(Command):
    """``QUIT`` (RFC 5321 §4.1.1.10)."""

    verb = "QUIT"


@dataclass(frozen=True, slots=True, kw_only=True)
class Vrfy(Command):
    """``VRFY string`` (RFC 5321 §4.1.1.6)."""

    verb = "VRFY"
    argument: str

    def __post_init__(self) -> None:
        _check_text(self.argument, "VRFY argument")
        if self.argument == "":
            raise LocalProtocolError("VRFY needs an argument")


@dataclass(frozen=True, slots=True, kw_only=True)
class Expn(Command):
    """``EXPN string`` (RFC 5321 §4.1.1.7)."""

    verb = "EXPN"
    argument: str

    def __post_init__(self) -> None:
        _check_text(self.argument, "EXPN argument")
        if self.argument == "":
            raise LocalProtocolError("EXPN needs an argument")


@dataclass(frozen=True, slots=True, kw_only=True)
class Help(Command):
    """``HELP [string]`` (RFC 5321 §4.1.1.8)."""

    verb = "HELP"
    argument: str | None = None

    def __post_init__(self) -> None:
        if self.argument is not None:
            _check_text(self.argument, "HELP argument")
            if self.argument == "":
                object.__setattr__(self, "argument", None)


@dataclass(frozen=True, slots=True, kw_only=True)
class StartTLS(Command):
    """``STARTTLS`` (RFC 3207)."""

    verb = "STARTTLS"


_MECHANISM = re.compile(r"[A-Z0-9_-]{1,20}")


def _redacted(data: bytes | None) -> str:
    # Not even the length: that of a password is a clue worth having.
    return "None" if data is None else "<redacted>"


@dataclass(frozen=True, slots=True, kw_only=True)
class Auth(Command):
    """``AUTH mechanism [initial-response]`` (RFC 4954 §4).

    ``initial_response`` holds the *decoded* bytes (``b""`` is sent as ``=``);
    None sends no initial response.  Never shown by ``repr()``.
    """

    verb = "AUTH"
    mechanism: str
    initial_response: bytes | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.mechanism, str):
            raise LocalProtocolError("AUTH mechanism must be str")
        upper = self.mechanism.upper()
        if _MECHANISM.fullmatch(upper) is None:
            raise LocalProtocolError(f"bad SASL mechanism name {self.mechanism!r} (RFC 4422 §3.1)")
        object.__setattr__(self, "mechanism", upper)
        if self.initial_response is not None and not isinstance(self.initial_response, bytes):
            raise LocalProtocolError("AUTH initial_response must be bytes or None")

    def __repr__(self) -> str:
        return f"Auth(mechanism={self.mechanism!r}, initial_response={_redacted(self.initial_response)})"


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthResponse(Event):
    """A client's answer to a 334 challenge (RFC 4954 §4): decoded bytes, or
    ``cancelled=True`` for the ``*`` line.  Never shown by ``repr()``."""

    data: bytes = b""
    cancelled: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.data, bytes):
            raise LocalProtocolError("AuthResponse.data must be bytes")
        if self.cancelled and self.data:
            raise LocalProtocolError("a cancelled AuthResponse carries no data")

    def __repr__(self) -> str:
        if self.cancelled:
            return "AuthResponse(cancelled=True)"
        return f"AuthResponse(data={_redacted(self.data)})"


def _check_attributes(event: object, command: str, attributes: Mapping[str, str]) -> None:
    from ._xclient import XclientError, validate_attribute

    if not isinstance(attributes, Mapping) or not attributes:
        raise LocalProtocolError(f"{command} needs a non-empty mapping of attributes")
    out: dict[str, str] = {}
    for name, value in attributes.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise LocalProtocolError(f"{command} attributes map str to str")
        try:
            out[name.upper()] = validate_attribute(command, name, value)  # type: ignore[arg-type]
        except XclientError as exc:
            raise LocalProtocolError(str(exc)) from None
    object.__setattr__(event, "attributes", out)


@dataclass(frozen=True, slots=True, kw_only=True)
class Xclient(Command):
    """``XCLIENT attr=value ...`` (Postfix XCLIENT_README): a trusted proxy tells
    the server about the real client.  Success is a 220 that restarts the
    session, so EHLO is due again."""

    verb = "XCLIENT"
    attributes: Mapping[str, str]

    def __post_init__(self) -> None:
        _check_attributes(self, "XCLIENT", self.attributes)


@dataclass(frozen=True, slots=True, kw_only=True)
class Xforward(Command):
    """``XFORWARD attr=value ...`` (Postfix XFORWARD_README): a content filter
    passes on the original client's details for the next transaction."""

    verb = "XFORWARD"
    attributes: Mapping[str, str]

    def __post_init__(self) -> None:
        _check_attributes(self, "XFORWARD", self.attributes)


# ---------------------------------------------------------------- server-only


@dataclass(frozen=True, slots=True, kw_only=True)
class ProxyConnected(Event):
    """(Server, with ``Config(proxy_protocol=...)``) the HAProxy PROXY header
    that opened the connection: the real client's addresses.  It comes before
    the greeting is due."""

    header: "ProxyHeader"


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownCommand(Event):
    """(Server) a command verb we do not know.  :attr:`reply` is the suggested
    answer (500 5.5.2); send it or another 4xx/5xx reply."""

    verb: str
    line: bytes = field(repr=False)
    reply: Reply


@dataclass(frozen=True, slots=True, kw_only=True)
class InvalidCommand(Event):
    """(Server) a command we cannot accept: bad syntax, bad sequence, line too
    long, bare newline, parameter not advertised, limit reached...

    ``command`` is the verb when one could be read; ``reason`` says why in words;
    ``reply`` is the suggested 4xx/5xx answer.  The session state does not change.
    """

    command: str | None
    reason: str
    reply: Reply
    line: bytes = field(default=b"", repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageRejected(Event):
    """(Server) the message content broke a rule (bare CR/LF, line too long,
    size over the limit) and must not be delivered.  It replaces
    :class:`EndOfMessage`: discard the content received so far and send
    :attr:`reply` (or another 4xx/5xx)."""

    reason: str
    reply: Reply


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionClosed(Event):
    """The session is over: the peer closed the connection
    (``receive_data(b"")``), or a 221/421 reply ended it (after which nothing
    more can be sent or received; close the transport)."""
