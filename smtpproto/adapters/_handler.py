"""The server handler interface shared by the sockets, asyncio and trio adapters.

One shape serves all three: every hook may be a plain method *or* an
``async def``.  The asyncio and trio adapters await whatever is awaitable; the
blocking sockets adapter calls the hooks directly and treats an awaitable result
as a programming error (the hook fails and the client gets a 451).  Each hook's
return type is therefore written ``X | Awaitable[X]`` so that both kinds of
override type-check under ``mypy --strict``.

A hook that returns ``None`` lets the session driver send its default reply; a
:class:`~smtpproto.Reply` is sent as it is (the core checks that it is a valid
answer).  A hook that raises is logged and answered with ``451 4.3.0``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Awaitable, Mapping, Sequence, Union

from .._events import Auth, Ehlo, Helo, Lhlo, Mail, Rcpt, Reply, Xclient, Xforward
from ..message import Message
from ..proxy import ProxyHeader
from ..sasl import SaslBackend, Success

__all__ = [
    "Envelope",
    "Handler",
    "MessageResult",
    "RcptResult",
    "Session",
]

#: What RCPT may answer: None/True accept with 250, False refuses with 550 5.1.1,
#: a Reply is sent as is.
RcptResult = Union[Reply, bool, None]
#: What the end of a message may answer: None accepts (250 2.0.0), one Reply
#: answers for every recipient, a sequence gives one Reply per accepted recipient
#: (LMTP, RFC 2033 §4.2; in SMTP only the first is used).
MessageResult = Union[Reply, Sequence[Reply], None]


@dataclass
class Envelope:
    """One mail transaction: what MAIL and RCPT said, and the content.

    ``content`` holds the message bytes exactly as received (dot-stuffing
    removed, CRLF line ends) when the handler's :attr:`Handler.collect_content`
    is true; ``message`` holds it parsed when :attr:`Handler.parse_message` is
    true.  ``size`` counts the content octets either way.
    """

    mail_from: str
    mail_params: Mapping[str, str | None] = field(default_factory=dict)
    rcpt_tos: list[str] = field(default_factory=list)
    rcpt_params: list[Mapping[str, str | None]] = field(default_factory=list)
    content: bytes | None = None
    message: Message | None = None
    size: int = 0
    #: "DATA" or "BDAT": how the content arrived.
    transfer: str = "DATA"


@dataclass
class Session:
    """What the server knows about one client connection.

    The driver keeps it current; handlers read it and may keep their own state
    in :attr:`extra`.
    """

    #: The peer's address as the transport reports it ((host, port), a path
    #: for a UNIX socket, or None).
    peer: object
    #: Our host name, used in the greeting, EHLO and trace headers.
    hostname: str
    #: The transport is encrypted (implicit TLS, or after STARTTLS).
    tls_active: bool = False
    #: The EHLO/HELO/LHLO argument of the current session (reset by STARTTLS).
    helo_name: str | None = None
    #: The hello verb used ("EHLO", "HELO" or "LHLO").
    helo_verb: str | None = None
    #: The SASL outcome after a successful AUTH.
    auth: Success | None = None
    #: LMTP mode.
    lmtp: bool = False
    #: The current transaction (None between transactions).
    envelope: Envelope | None = None
    #: Messages accepted so far in this session.
    messages: int = 0
    #: The PROXY protocol header that opened the connection
    #: (``Config(proxy_protocol=...)``); ``peer`` then holds its source address.
    proxy: ProxyHeader | None = None
    #: XCLIENT attributes accepted in this session (``peer`` follows ADDR/PORT).
    xclient: dict[str, str] = field(default_factory=dict)
    #: XFORWARD attributes for the current transaction.
    xforward: dict[str, str] = field(default_factory=dict)
    #: Free space for the handler.
    extra: dict[str, object] = field(default_factory=dict)
    #: When the connection was accepted (UTC).
    connected_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    @property
    def authenticated(self) -> bool:
        return self.auth is not None

    def received_header(self, envelope: Envelope, *, when: datetime | None = None) -> bytes:
        """A ``Received:`` trace field (RFC 5321 §4.4) for ``envelope``, ready to
        be written in front of the content.  Values from the client are reduced
        to printable ASCII so that nothing the peer sent can break the header."""
        stamp = (when or datetime.now(timezone.utc)).strftime("%a, %d %b %Y %H:%M:%S +0000")
        peer = self.peer
        if isinstance(peer, tuple) and peer:
            peer_text = f"[{peer[0]}]"
        elif peer:
            peer_text = str(peer)
        else:
            peer_text = "local"
        helo = _clean(self.helo_name or "unknown")
        proto = "LMTP" if self.lmtp else ("ESMTP" if self.helo_verb in ("EHLO", "LHLO") else "SMTP")
        if self.tls_active:
            proto += "S"
        if self.auth is not None:
            proto += "A"
        with_clause = "UTF8" + proto if "SMTPUTF8" in envelope.mail_params else proto
        first = f"Received: from {helo} ({_clean(peer_text)})"
        second = f"\tby {_clean(self.hostname)} (smtpproto) with {with_clause}"
        lines = [first, second]
        if len(envelope.rcpt_tos) == 1:
            lines.append(f"\tfor <{_clean(envelope.rcpt_tos[0])}>; {stamp}")
        else:
            lines[-1] += ";"
            lines.append(f"\t{stamp}")
        return ("\r\n".join(lines) + "\r\n").encode("ascii")


def _clean(text: str) -> str:
    return "".join(ch if " " < ch < "\x7f" and ch not in "()<>;" else "?" for ch in text)[:200]


class Handler:
    """Base class of server handlers: override what you need.

    Every method below may be overridden by a plain method or by an ``async
    def`` (asyncio and trio adapters only).  Defaults accept everything and
    discard messages, so ``Handler()`` is a sink.

    Class attributes configure what the driver collects for :meth:`on_message`:

    * :attr:`collect_content` — keep the content bytes (default True);
    * :attr:`parse_message` — parse it into :class:`~smtpproto.message.Message`
      while it streams in (default False: parsing costs time);
    * :attr:`auth_mechanisms` — SASL mechanisms to offer (default none: no
      AUTH).  PLAIN and LOGIN passwords go to :meth:`verify_password`; other
      mechanisms (CRAM-MD5, SCRAM-*, XOAUTH2, ...) look secrets up through the
      synchronous :class:`~smtpproto.sasl.SaslBackend` from :meth:`sasl_backend`.
    """

    collect_content: bool = True
    parse_message: bool = False
    auth_mechanisms: Sequence[str] = ()

    # --- connection ---------------------------------------------------------

    def on_connect(self, session: Session) -> Reply | None | Awaitable[Reply | None]:
        """A client connected.  None sends the default 220 greeting; a 554
        Reply refuses service (RFC 5321 §3.1), a 421 closes at once."""
        return None

    def on_disconnect(self, session: Session) -> None | Awaitable[None]:
        """The connection is gone (always called once, last)."""
        return None

    # --- hello ----------------------------------------------------------------

    def on_hello(self, session: Session, command: Ehlo | Helo | Lhlo) -> Reply | None | Awaitable[Reply | None]:
        """EHLO/HELO/LHLO.  None answers 250 with the advertised capabilities."""
        return None

    # --- AUTH -----------------------------------------------------------------

    def verify_password(
        self, session: Session, username: str, password: str, authzid: str | None
    ) -> bool | Awaitable[bool]:
        """PLAIN / LOGIN: are these credentials valid?  (Default: no.)"""
        return False

    def sasl_backend(self, session: Session) -> SaslBackend | None:
        """The backend for mechanisms other than PLAIN and LOGIN (called once
        per session, synchronously).  None refuses them all."""
        return None

    def on_auth(self, session: Session, command: Auth, result: Success) -> Reply | None | Awaitable[Reply | None]:
        """Credentials were accepted; a 4xx/5xx Reply overrules that (policy,
        e.g. an account that may not send).  None answers 235."""
        return None

    # --- XCLIENT / XFORWARD (only when advertised: ServerSettings.advertise_x*) --

    def on_xclient(self, session: Session, command: Xclient) -> Reply | None | Awaitable[Reply | None]:
        """XCLIENT from a proxy (Postfix XCLIENT_README).  The default refuses
        (550 5.7.0): only a proxy you trust may say who the client is.  Return
        None to accept: the session restarts with a 220 greeting."""
        return Reply(code=550, lines=("Error: insufficient authorization",), enhanced_status="5.7.0")

    def on_xforward(self, session: Session, command: Xforward) -> Reply | None | Awaitable[Reply | None]:
        """XFORWARD from a content filter.  The default refuses (550 5.7.0);
        None accepts (250) and keeps the attributes in ``session.xforward``."""
        return Reply(code=550, lines=("Error: insufficient authorization",), enhanced_status="5.7.0")

    # --- transaction ----------------------------------------------------------

    def on_mail(self, session: Session, command: Mail) -> Reply | None | Awaitable[Reply | None]:
        """MAIL FROM.  None accepts with 250 2.1.0."""
        return None

    def on_rcpt(self, session: Session, command: Rcpt) -> RcptResult | Awaitable[RcptResult]:
        """RCPT TO: True/None accept (250 2.1.5), False refuses (550 5.1.1),
        or a Reply."""
        return None

    def on_data_start(self, session: Session, envelope: Envelope) -> None | Awaitable[None]:
        """The content begins (after 354, or with the first BDAT chunk)."""
        return None

    def on_data_chunk(self, session: Session, envelope: Envelope, chunk: bytes) -> None | Awaitable[None]:
        """A piece of the content, as received (only called when overridden)."""
        return None

    def on_message(self, session: Session, envelope: Envelope) -> MessageResult | Awaitable[MessageResult]:
        """The content is complete.  None accepts (250 2.0.0); a Reply answers
        for all recipients; in LMTP a sequence gives one Reply per recipient in
        ``envelope.rcpt_tos`` order."""
        return None

    def on_message_aborted(self, session: Session, envelope: Envelope, reason: str) -> None | Awaitable[None]:
        """The transaction ended without a complete message (content refused by
        the core, RSET during BDAT, disconnect mid-data...)."""
        return None


# Hooks the driver calls only when the handler overrides them (per-chunk calls
# cost time on the hot path).
def overrides(handler: Handler, name: str) -> bool:
    """True when ``handler`` overrides the hook ``name`` of :class:`Handler`
    (in its class or as an attribute of the instance)."""
    if name in getattr(handler, "__dict__", ()):
        return True
    mine = getattr(type(handler), name, None)
    return mine is not None and mine is not getattr(Handler, name)


#: Hooks whose default (:class:`Handler`'s own method) returns None and does
#: nothing else: the driver need not call them unless they are overridden.
SKIPPABLE_HOOKS = frozenset({
    "on_connect", "on_disconnect", "on_hello", "on_auth", "on_mail", "on_rcpt",
    "on_data_start", "on_data_chunk", "on_message", "on_message_aborted",
})


def default_hooks(handler: Handler) -> frozenset[str]:
    """The :data:`SKIPPABLE_HOOKS` that ``handler`` leaves as they are (what
    :func:`overrides` says, asked for every new session, so a hook patched
    in later is seen)."""
    cls = type(handler)
    own = getattr(handler, "__dict__", None) or {}
    defaults = []
    for name, base in _BASE_HOOKS.items():
        if name not in own:
            mine = getattr(cls, name, None)
            if mine is None or mine is base:
                defaults.append(name)
    return frozenset(defaults)


_BASE_HOOKS = {name: getattr(Handler, name) for name in sorted(SKIPPABLE_HOOKS)}
