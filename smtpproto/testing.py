"""Hypothesis strategies for testing SMTP software with smtpproto.

Importing this module imports `hypothesis <https://hypothesis.readthedocs.io>`_
(``pip install hypothesis``); ``import smtpproto`` never does.

Two families:

* **valid** values, which every conforming peer must accept: domains,
  addresses (ASCII and SMTPUTF8), ESMTP parameters, every command event,
  replies, message bodies that stress dot-stuffing and line endings, whole
  client sessions (:func:`transcripts`) and MIME messages made by the codec's
  builder (:func:`mime_messages`, :func:`built_messages`);
* **hostile** inputs (:class:`Hostile`), the byte sequences of
  SECURITY-CASES.md (fake end-of-data sequences, content pipelined behind
  ``DATA``, bytes behind ``STARTTLS``, bare CR/LF in commands, over-long lines)
  and their :func:`mutations`, each with the normal commands that must precede
  it, so they can be fed to a sans-I/O connection or written to a socket; and
  malformed MIME messages (:func:`hostile_mime`).

:func:`replay` plays a transcript against a live server over a socket through
the core client :class:`~smtpproto.Connection`.
"""

from __future__ import annotations

import functools
import socket
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Callable, Sequence

try:
    from hypothesis import strategies as st
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("smtpproto.testing needs hypothesis: pip install hypothesis") from exc

from ._config import Config
from ._connection import NEED_DATA, Connection, Role
from ._errors import LocalProtocolError, RemoteProtocolError
from ._events import (
    Auth,
    AuthResponse,
    Bdat,
    Command,
    ConnectionClosed,
    Data,
    Ehlo,
    EndOfMessage,
    Expn,
    Helo,
    Help,
    Lhlo,
    Mail,
    MessageData,
    Noop,
    Quit,
    Rcpt,
    Reply,
    Rset,
    StartTLS,
    Vrfy,
    Xclient,
    Xforward,
)

if TYPE_CHECKING:
    from .message import Attachment as _Attachment
    from .message import Limits as _Limits
    from .message import Message as _Message

__all__ = [
    "DATA_PREFIX",
    "EHLO_PREFIX",
    "EOD_VARIANTS",
    "Hostile",
    "HostileResult",
    "InvariantError",
    "ReplayResult",
    "Transaction",
    "Transcript",
    "BuiltMessage",
    "address_literals",
    "addresses",
    "auth_responses",
    "bare_newline_commands",
    "built_messages",
    "chunkings",
    "commands",
    "domains",
    "end_of_data_variants",
    "enhanced_status_codes",
    "esmtp_params",
    "fuzz_client",
    "fuzz_message",
    "fuzz_message_roundtrip",
    "fuzz_server",
    "expected_content",
    "hostile_inputs",
    "hostile_mime",
    "local_parts",
    "long_command_lines",
    "message_bodies",
    "mime_messages",
    "mutated",
    "mutations",
    "pipelining_after_data",
    "replay",
    "replay_hostile",
    "replies",
    "smuggling_inputs",
    "starttls_injections",
    "transcripts",
]

# ---------------------------------------------------------------- names

_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LDH = _LETTERS + "0123456789"
# A few letters outside ASCII, from several scripts (RFC 6531 U-labels).
_UNICODE = "éüñøßçåλжяשع日本語中文한국"
_ATEXT = _LDH + "!#$%&'*+/=?^_`{|}~-"


@st.composite
def _label(draw: st.DrawFn, utf8: bool) -> str:
    alphabet = _LDH + _UNICODE if utf8 else _LDH
    ends = st.text(alphabet, min_size=1, max_size=1)
    first = draw(ends)
    middle = draw(st.text(alphabet + "-", max_size=10))
    if middle:
        return first + middle + draw(ends)
    return first


def domains(*, utf8: bool = False) -> st.SearchStrategy[str]:
    """RFC 5321 ``Domain`` names of one to four labels (with non-ASCII
    U-labels when ``utf8``, RFC 6531 §3.3), well under 255 octets."""

    @st.composite
    def build(draw: st.DrawFn) -> str:
        labels = draw(st.lists(_label(utf8), min_size=1, max_size=4))
        name = ".".join(labels)
        if utf8 and name.isascii():
            name = draw(st.sampled_from(_UNICODE)) + name
        return name

    return build()


def address_literals() -> st.SearchStrategy[str]:
    """RFC 5321 §4.1.3 address literals: ``[192.0.2.7]`` and ``[IPv6:2001:db8::7]``."""
    v4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: "[%d.%d.%d.%d]" % t)
    v6 = st.integers(0, 0xFFFF).map(lambda n: f"[IPv6:2001:db8::{n:x}]")
    return st.one_of(v4, v6)


def local_parts(*, utf8: bool = False) -> st.SearchStrategy[str]:
    """Local parts: dot-atoms (RFC 5321 §4.1.2 ``Dot-string``) or quoted strings,
    at most 64 octets."""
    alphabet = _ATEXT + _UNICODE if utf8 else _ATEXT
    atom = st.text(alphabet, min_size=1, max_size=12)
    dot_string = st.lists(atom, min_size=1, max_size=4).map(".".join)
    qtext = st.text(_LDH + " !#@<>.,:;[]", min_size=0, max_size=20)
    quoted = qtext.map(lambda t: '"' + t + '"')
    escaped = st.text('"\\ ' + _LDH, min_size=1, max_size=8).map(
        lambda t: '"' + "".join("\\" + c if c in '"\\' else c for c in t) + '"')
    strategy = st.one_of(dot_string, dot_string, quoted, escaped)
    return strategy.filter(lambda s: len(s.encode("utf-8")) <= 64)


def addresses(*, utf8: bool = False) -> st.SearchStrategy[str]:
    """Mailboxes ``local@domain`` (or ``local@[literal]``) within the RFC 5321
    §4.5.3.1 limits.  With ``utf8`` at least one part is non-ASCII, so the
    address needs SMTPUTF8."""

    @st.composite
    def build(draw: st.DrawFn) -> str:
        local = draw(local_parts(utf8=utf8))
        domain = draw(st.one_of(domains(utf8=utf8), address_literals()) if not utf8 else domains(utf8=True))
        return f"{local}@{domain}"

    return build().filter(lambda a: len(a.encode("utf-8")) <= 254)


def esmtp_params(*, max_size: int = 4) -> st.SearchStrategy[dict[str, str | None]]:
    """Syntactically valid ESMTP parameters (RFC 5321 §4.1.2 ``esmtp-param``):
    keyword to value (``%d33-60 / %d62-126``) or None.  These are *syntax*
    only: a server refuses keywords it did not advertise."""
    keyword = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9-]{0,10}", fullmatch=True)
    value = st.one_of(st.none(), st.text([chr(c) for c in range(33, 127) if c != 61], min_size=1, max_size=20))

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, str | None]:
        pairs = draw(st.lists(st.tuples(keyword, value), max_size=max_size, unique_by=lambda p: p[0].upper()))
        return dict(pairs)

    return build()


# ---------------------------------------------------------------- commands


def _hello_domain() -> st.SearchStrategy[str]:
    return st.one_of(domains(), address_literals())


def _argument() -> st.SearchStrategy[str]:
    return st.text([chr(c) for c in range(32, 127)], min_size=1, max_size=40).filter(lambda s: s.strip() == s and s)


def _xclient_attributes(command: str) -> st.SearchStrategy[dict[str, str]]:
    common = {
        "NAME": st.sampled_from(["mail.example.org", "[UNAVAILABLE]", "[TEMPUNAVAIL]"]),
        "ADDR": st.sampled_from(["192.0.2.7", "IPV6:2001:db8::1"]),
        "PORT": st.integers(1, 65535).map(str),
        "HELO": domains(),
        "PROTO": st.sampled_from(["SMTP", "ESMTP"]),
    }
    if command == "XFORWARD":
        common["SOURCE"] = st.sampled_from(["LOCAL", "REMOTE"])
    return st.fixed_dictionaries({}, optional=common).filter(bool)


def commands(*, utf8: bool = False) -> st.SearchStrategy[Command]:
    """Every command event, with valid arguments (the events' constructors
    accept them; whether a peer accepts them depends on the session)."""
    mail = st.builds(Mail, reverse_path=st.one_of(st.just(""), addresses(utf8=utf8)), params=esmtp_params())
    rcpt = st.builds(Rcpt, forward_path=st.one_of(st.just("Postmaster"), addresses(utf8=utf8)), params=esmtp_params())
    mechanism = st.from_regex(r"[A-Z0-9_-]{1,20}", fullmatch=True)
    options: list[st.SearchStrategy[Command]] = [
        st.builds(Ehlo, domain=_hello_domain()),
        st.builds(Helo, domain=_hello_domain()),
        st.builds(Lhlo, domain=_hello_domain()),
        mail,
        rcpt,
        st.builds(Data),
        st.builds(Bdat, size=st.integers(1, 10_000), last=st.booleans()) | st.just(Bdat(size=0, last=True)),
        st.builds(Rset),
        st.builds(Noop),
        st.builds(Quit),
        st.builds(Vrfy, argument=_argument()),
        st.builds(Expn, argument=_argument()),
        st.builds(Help, argument=st.one_of(st.none(), _argument())),
        st.builds(StartTLS),
        st.builds(Auth, mechanism=mechanism, initial_response=st.one_of(st.none(), st.binary(max_size=60))),
        st.builds(Xclient, attributes=_xclient_attributes("XCLIENT")),
        st.builds(Xforward, attributes=_xclient_attributes("XFORWARD")),
    ]
    return st.one_of(options)


def auth_responses() -> st.SearchStrategy[AuthResponse]:
    """Answers to a 334 challenge: decoded bytes, or the ``*`` cancellation."""
    return st.one_of(st.builds(AuthResponse, data=st.binary(max_size=200)), st.just(AuthResponse(cancelled=True)))


# ---------------------------------------------------------------- replies


def enhanced_status_codes(reply_class: int) -> st.SearchStrategy[str]:
    """RFC 3463 ``class.subject.detail`` codes for reply class 2, 4 or 5."""
    if reply_class not in (2, 4, 5):
        raise ValueError("enhanced status codes exist for classes 2, 4 and 5 only")
    return st.tuples(st.integers(0, 7), st.integers(0, 999)).map(lambda t: f"{reply_class}.{t[0]}.{t[1]}")


def replies(
    *,
    codes: Sequence[int] | None = None,
    max_lines: int = 5,
    enhanced: bool | None = None,
) -> st.SearchStrategy[Reply]:
    """Replies, single- and multi-line, with or without an enhanced status code.

    :param codes: the codes to choose from (default: any 200-599).
    :param enhanced: force (True) or forbid (False) an enhanced status code;
        None draws either (never for 3xx, which has no enhanced class).
    """
    code_strategy = st.sampled_from(list(codes)) if codes is not None else st.integers(200, 599)
    text = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FFF, blacklist_categories=("Cs", "Cc")),
                   max_size=60)

    @st.composite
    def build(draw: st.DrawFn) -> Reply:
        code = draw(code_strategy)
        lines = draw(st.lists(text, min_size=1, max_size=max_lines))
        status = None
        cls = code // 100
        if cls != 3 and enhanced is not False and (enhanced or draw(st.booleans())):
            status = draw(enhanced_status_codes(cls))
        return Reply(code=code, lines=lines, enhanced_status=status)

    return build()


# ---------------------------------------------------------------- content

# Fragments that stress the DATA encoder/decoder: dots at line starts, every
# kind of line ending, a real end-of-data in the content, 8-bit bytes.
_FRAGMENTS = [b".", b"..", b"...", b"\r\n", b"\n", b"\r", b"\r\n.\r\n", b".\r\n", b"\r\n..\r\n",
              b"\n.\n", b"\r.\r", b"From ", b" ", b"\t", b"\x00", b"\xc3\xa9", b"\xff"]


def message_bodies(*, max_fragments: int = 40) -> st.SearchStrategy[bytes]:
    """Message content as an application hands it to a client: any bytes,
    weighted towards dots at line starts, CRLF / bare LF / bare CR, and
    in-content ``CRLF.CRLF``.  No line exceeds RFC 5321's 1000 octets."""
    fragment = st.one_of(st.sampled_from(_FRAGMENTS), st.binary(min_size=1, max_size=20))
    return st.lists(fragment, max_size=max_fragments).map(b"".join)


def expected_content(body: bytes) -> bytes:
    """What a server receives when a conforming client sends ``body`` with
    DATA: every bare CR or LF made CRLF (SECURITY-CASES H-10) and a final CRLF
    added to a last line without one (RFC 5321 §4.1.1.4)."""
    out = body.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
    if out and not out.endswith(b"\r\n"):
        out += b"\r\n"
    return out


# ---------------------------------------------------------------- transcripts


@dataclass(frozen=True)
class Transaction:
    """One mail transaction of a :class:`Transcript`."""

    mail: Mail
    rcpts: tuple[Rcpt, ...]
    body: bytes


@dataclass(frozen=True)
class Transcript:
    """A whole, valid client session: EHLO, transactions, maybe NOOP/RSET in
    between, QUIT.  It uses only what a default smtpproto server advertises
    (SIZE, 8BITMIME, SMTPUTF8)."""

    hello: Ehlo
    transactions: tuple[Transaction, ...]
    noops: tuple[bool, ...]
    quit: bool = True

    def events(self) -> list[Command | MessageData | EndOfMessage]:
        """The client's events in order (content as one MessageData)."""
        out: list[Command | MessageData | EndOfMessage] = [self.hello]
        for tx, noop in zip(self.transactions, self.noops):
            if noop:
                out.append(Noop())
            out += [tx.mail, *tx.rcpts, Data(), MessageData(data=tx.body), EndOfMessage()]
        if self.quit:
            out.append(Quit())
        return out


@st.composite
def _transaction(draw: st.DrawFn) -> Transaction:
    utf8 = draw(st.booleans())
    body = draw(message_bodies())
    sender = draw(st.one_of(st.just(""), addresses(utf8=utf8)))
    rcpts = draw(st.lists(addresses(utf8=utf8), min_size=1, max_size=3, unique=True))
    params: dict[str, str | None] = {}
    if draw(st.booleans()):
        params["SIZE"] = str(len(body) + draw(st.integers(0, 1000)))
    if draw(st.booleans()):
        params["BODY"] = draw(st.sampled_from(["7BIT", "8BITMIME"]))
    if utf8 or draw(st.booleans()):
        params["SMTPUTF8"] = None
    return Transaction(Mail(reverse_path=sender, params=params), tuple(Rcpt(forward_path=r) for r in rcpts), body)


def transcripts(*, max_transactions: int = 3) -> st.SearchStrategy[Transcript]:
    """Whole valid client sessions (see :class:`Transcript`)."""

    @st.composite
    def build(draw: st.DrawFn) -> Transcript:
        txs = draw(st.lists(_transaction(), min_size=1, max_size=max_transactions))
        noops = draw(st.lists(st.booleans(), min_size=len(txs), max_size=len(txs)))
        return Transcript(Ehlo(domain=draw(_hello_domain())), tuple(txs), tuple(noops), draw(st.booleans()))

    return build()


@dataclass
class ReplayResult:
    """What :func:`replay` saw."""

    #: Every reply, in order (greeting first).
    replies: list[Reply]
    #: Transactions whose content got a 2xx final reply.
    accepted: int = 0
    #: Transactions refused at MAIL, every RCPT, DATA or the end of data.
    refused: int = 0


def replay(
    sock: socket.socket,
    transcript: Transcript,
    *,
    config: Config | None = None,
    on_reply: Callable[[Reply], None] | None = None,
) -> ReplayResult:
    """Play ``transcript`` to a server over a connected socket, one command at
    a time, through a client :class:`~smtpproto.Connection` (which checks every
    reply).  Refused transactions are skipped (with RSET when needed).  Uses
    the socket's own timeout; raises ``RemoteProtocolError`` when the server
    breaks the protocol and ``ConnectionError`` when it goes away."""
    conn = Connection(Role.CLIENT, config)
    result = ReplayResult([])

    def next_reply() -> Reply:
        while True:
            ev = conn.next_event()
            if isinstance(ev, Reply):
                result.replies.append(ev)
                if on_reply is not None:
                    on_reply(ev)
                return ev
            if isinstance(ev, ConnectionClosed):
                raise ConnectionError("the server closed the connection")
            if ev is NEED_DATA:
                conn.receive_data(sock.recv(65536))
                continue
            raise RemoteProtocolError(f"unexpected {ev!r}")

    def send(event: Command | MessageData | EndOfMessage) -> None:
        sock.sendall(conn.send(event))

    def ask(event: Command | EndOfMessage) -> Reply:
        send(event)
        return next_reply()

    if next_reply().code != 220:
        raise ConnectionError("the server refused service")
    if ask(transcript.hello).code != 250:
        raise ConnectionError("the server refused EHLO")
    for tx, noop in zip(transcript.transactions, transcript.noops):
        if noop:
            ask(Noop())
        if ask(tx.mail).code != 250:
            result.refused += 1
            continue
        accepted = [r for r in tx.rcpts if ask(r).code // 100 == 2]
        if not accepted or ask(Data()).code != 354:
            ask(Rset())
            result.refused += 1
            continue
        send(MessageData(data=tx.body))
        if ask(EndOfMessage()).code // 100 == 2:
            result.accepted += 1
        else:
            result.refused += 1
    if transcript.quit:
        ask(Quit())
    return result


# ---------------------------------------------------------------- hostile


#: The fake end-of-data sequences of SECURITY-CASES S-01..S-07: none of them
#: ends DATA; only ``CRLF.CRLF`` does.
EOD_VARIANTS: tuple[bytes, ...] = (
    b"\n.\n",      # S-01
    b"\n.\r\n",    # S-02
    b"\r\n.\n",    # S-03
    b"\r.\r",      # S-04
    b"\r.\n",      # S-05
    b"\n.\r",      # S-06 (a)
    b"\r.\r\n",    # S-06 (b)
    b"\r\n.\r",    # S-07
)

#: The normal commands before a hostile input, one per segment, each waiting
#: for its reply: up to DATA's 354, or up to the EHLO reply, or none.
DATA_PREFIX: tuple[bytes, ...] = (
    b"EHLO c.example\r\n", b"MAIL FROM:<a@x.example>\r\n", b"RCPT TO:<b@y.example>\r\n", b"DATA\r\n")
EHLO_PREFIX: tuple[bytes, ...] = (b"EHLO c.example\r\n",)


@dataclass(frozen=True)
class Hostile:
    """A hostile input: after ``prefix`` (normal commands, each answered before
    the next is sent) the peer writes ``segments``, each one arriving whole
    before the server answers anything.

    ``case`` names the SECURITY-CASES row; ``phase`` says where it lands:
    ``"data"`` (after 354), ``"command"`` (after the EHLO reply) or
    ``"greeting"`` (right after the 220).
    """

    case: str
    phase: str
    prefix: tuple[bytes, ...]
    segments: tuple[bytes, ...]

    @property
    def data(self) -> bytes:
        """The hostile bytes, all segments joined."""
        return b"".join(self.segments)


def end_of_data_variants() -> st.SearchStrategy[bytes]:
    """The fake end-of-data sequences of S-01..S-07."""
    return st.sampled_from(EOD_VARIANTS)


def chunkings(data: bytes, *, max_chunks: int = 4) -> st.SearchStrategy[tuple[bytes, ...]]:
    """``data`` split into 1..``max_chunks`` non-empty pieces (SECURITY-CASES F-02)."""
    if not data:
        return st.just((b"",))
    cuts = st.lists(st.integers(1, max(1, len(data) - 1)), max_size=max_chunks - 1, unique=True)

    def split(points: list[int]) -> tuple[bytes, ...]:
        pieces, last = [], 0
        for p in sorted(set(points)):
            if 0 < p < len(data):
                pieces.append(data[last:p])
                last = p
        pieces.append(data[last:])
        return tuple(pieces)

    return cuts.map(split)


_SMUGGLED = [
    b"MAIL FROM:<admin@victim.example>\r\nRCPT TO:<b@y.example>\r\nDATA\r\nFrom: admin@victim.example\r\n\r\nspoof\r\n",
    b"NO SMUGGLING\r\n",
    b"MAIL FROM:<x@x>\r\n",
    b"QUIT\r\n",
    b"",
]
_BEFORE = [b"Subject: a\r\n\r\nbody", b"body", b"Testing", b"x\r\n", b""]


def _real_end(data: bytes) -> bytes:
    return data + (b".\r\n" if data == b"" or data.endswith(b"\r\n") else b"\r\n.\r\n")


def smuggling_inputs() -> st.SearchStrategy[Hostile]:
    """S-01..S-07: content with a fake end-of-data and smuggled commands
    behind it, then the real ``CRLF.CRLF`` (phase ``"data"``), in 1..4
    segments.  A safe server ends DATA only at that last sequence: in strict
    mode it refuses the message (550 5.5.2), in no mode does it run a command
    from the content or see a second message."""

    @st.composite
    def build(draw: st.DrawFn) -> Hostile:
        index = draw(st.integers(0, len(EOD_VARIANTS) - 1))
        case = ["S-01", "S-02", "S-03", "S-04", "S-05", "S-06", "S-06", "S-07"][index]
        data = draw(st.sampled_from(_BEFORE)) + EOD_VARIANTS[index] + draw(st.sampled_from(_SMUGGLED))
        return Hostile(case, "data", DATA_PREFIX, draw(chunkings(_real_end(data))))

    return build()


def pipelining_after_data() -> st.SearchStrategy[Hostile]:
    """S-12: a correct end of data followed, in the same segment, by a whole
    second transaction whose content arrives before the 354 for it."""

    @st.composite
    def build(draw: st.DrawFn) -> Hostile:
        body = draw(st.sampled_from(_BEFORE))
        sender = draw(addresses())
        second = (b"MAIL FROM:<" + sender.encode() + b">\r\nRCPT TO:<b@y.example>\r\nDATA\r\n"
                  + b"From: admin@victim.example\r\n\r\nspoof\r\n.\r\n")
        return Hostile("S-12", "data", DATA_PREFIX, (_real_end(body) + second,))

    return build()


def starttls_injections() -> st.SearchStrategy[Hostile]:
    """T-01/T-02: ``STARTTLS`` and more commands in one segment (phase
    ``"command"``).  A safe server runs none of the trailing bytes."""
    tail = st.one_of(
        st.sampled_from([b"RSET\r\n", b"MAIL FROM:<attacker@evil.example>\r\nRCPT TO:<attacker@evil.example>\r\nDATA\r\n",
                         b"EHLO c.example\r\n", b"\x16\x03\x01"]),
        st.binary(min_size=1, max_size=40),
    )
    return tail.map(lambda t: Hostile("T-01", "command", EHLO_PREFIX, (b"STARTTLS\r\n" + t,)))


_COMMAND_LINES = [b"EHLO c.example", b"MAIL FROM:<a@x.example>", b"RCPT TO:<b@y.example>", b"NOOP", b"RSET",
                  b"HELP", b"VRFY postmaster", b"DATA"]


def bare_newline_commands() -> st.SearchStrategy[Hostile]:
    """S-15 (and bare CR): one command line with a bare LF or CR inside it,
    ended by CRLF, after the EHLO reply.  A safe server refuses it with a 5xx
    (500 5.5.2 for a bare LF) and runs nothing from before the bare newline."""

    @st.composite
    def build(draw: st.DrawFn) -> Hostile:
        head = draw(st.sampled_from(_COMMAND_LINES))
        cut = draw(st.integers(1, len(head)))
        newline = draw(st.sampled_from([b"\n", b"\r"]))
        tail = draw(st.sampled_from([b"", b"MAIL FROM:<admin@victim.example>", b"X-Injected: 1"]))
        line = head[:cut] + newline + head[cut:] + tail + b"\r\n"
        return Hostile("S-15", "command", EHLO_PREFIX, (line,))

    return build()


def long_command_lines() -> st.SearchStrategy[Hostile]:
    """R-01/R-02: a command line over the 512-octet limit (up to 20 000
    octets), then ``NOOP``; a safe server refuses the long line as one command
    (500 5.5.2) and answers the NOOP."""
    length = st.integers(513, 20_000)
    return length.map(lambda n: Hostile("R-01", "command", EHLO_PREFIX,
                                        (b"NOOP " + b"A" * (n - 7) + b"\r\n", b"NOOP\r\n")))


def hostile_inputs() -> st.SearchStrategy[Hostile]:
    """Any of the hostile strategies above."""
    return st.one_of(smuggling_inputs(), pipelining_after_data(), starttls_injections(),
                     bare_newline_commands(), long_command_lines())


_INTERESTING = [b"\r", b"\n", b"\r\n", b".", b"\r\n.\r\n", b"\x00", b"\xff", b" ", b":", b"<", b">"]


def mutations(data: bytes, *, max_edits: int = 4) -> st.SearchStrategy[bytes]:
    """``data`` with up to ``max_edits`` edits: an interesting token (CR, LF,
    CRLF, dot, CRLF.CRLF, NUL, 0xff, ...) inserted, a byte deleted or replaced."""
    edit = st.tuples(st.sampled_from(["insert", "delete", "replace"]), st.integers(0, max(0, len(data))),
                     st.sampled_from(_INTERESTING))

    def apply(edits: list[tuple[str, int, bytes]]) -> bytes:
        out = bytearray(data)
        for kind, pos, token in edits:
            pos = min(pos, len(out))
            if kind == "insert":
                out[pos:pos] = token
            elif out:
                pos = min(pos, len(out) - 1)
                out[pos:pos + 1] = b"" if kind == "delete" else token
        return bytes(out)

    return st.lists(edit, min_size=1, max_size=max_edits).map(apply)


@dataclass
class HostileResult:
    """What :func:`replay_hostile` saw after the prefix."""

    #: ``(code, first line of text)`` of every complete reply, in order.
    replies: list[tuple[int, str]]
    #: The server closed the connection.
    closed: bool


def replay_hostile(sock: socket.socket, hostile: Hostile, *, timeout: float = 5.0,
                   settle: float = 0.3) -> HostileResult:
    """Write ``hostile`` to a server over a connected socket: wait for the
    greeting, send each prefix line and wait for its (positive) reply, then
    write the segments and collect every reply that comes within ``timeout``,
    stopping after ``settle`` seconds of silence.  The replies after the
    prefix are counted, not paired: a server that reads content as commands
    answers more than once (see ``docs/fuzzing.md``).  Raises
    ``ConnectionError`` if the prefix is refused."""
    import time

    from ._probe import _Abort, _Session

    s = _Session(sock, timeout, time.monotonic() + timeout)
    try:
        s.greeting()
    except _Abort as exc:
        raise ConnectionError(str(exc)) from None
    mark = s.mark()
    for n, line in enumerate(hostile.prefix, 1):
        s.raw(line)
        seen = s.collect(mark, n, 0.0)
        if len(seen) < n or seen[-1].code >= 400:
            raise ConnectionError(f"prefix line {line!r} was not accepted: {seen[-1:] or 'no reply'}")
    mark = len(s.wire)
    for i, seg in enumerate(hostile.segments):
        if i:
            time.sleep(0.05)
        s.raw(seg)
    seen = s.collect(mark, 1, settle)
    return HostileResult([(r.code, r.text) for r in seen], s.closed)


# ---------------------------------------------------------------- MIME messages


@dataclass(frozen=True)
class BuiltMessage:
    """A message made by the codec's builder from generated values (see
    :func:`built_messages`).  ``data`` holds its bytes; the other fields hold
    what went in, so they are what a parser must give back: the subject (less
    leading and trailing SP and HTAB, RFC 5322's WSP; U+00A0 and other Unicode
    spaces are text), the text and HTML with every line
    ending made CRLF, each attachment's bytes and filename."""

    data: bytes
    subject: str | None
    text: str | None
    html: str | None
    attachments: tuple[_Attachment, ...]
    inline: tuple[_Attachment, ...]
    smtputf8: bool
    #: The generated messages inside the ``message/rfc822`` attachments, in
    #: the order of those attachments.
    nested: tuple[BuiltMessage, ...] = ()

    def message(self) -> _Message:
        """``data`` parsed with :func:`smtpproto.message.parse`."""
        from .message import parse

        return parse(self.data)


# Pieces of body text that stress encoders and parsers: every line ending,
# dots and "From " at line starts, QP's "=", things that look like encoded
# words or boundaries, trailing white space, NUL and form feed, characters
# from one to four UTF-8 octets, and one line too long for 7bit/8bit.
_TEXT_PIECES = ["\r\n", "\n", "\r", "\r\n.\r\n", ".", "..", "From ", " ", "\t", " \r\n", "=", "=\r\n",
                "=?utf-8?q?x?=", "--=_", "--", "é", "€", "日本語", "\U0001f600", "\x00", "\x0c",
                "L" * 1000]
# Header text pieces: RFC 2047 look-alikes, quotes and specials, tabs, long words.
_HEADER_PIECES = ["=?utf-8?q?a?=", "=?", "?=", '"', "\\", ",", ";", ":", "<x@y>", "(", ")", "\t",
                  "  ", "é", "日本", "\U0001f600", "W" * 90]
_MAILBOXES = ["a@x.example", "first.last+tag@sub.y.example", '"quoted local"@x.example', '"a\\"b"@x.example',
              "o'brien@x.example", "p@[192.0.2.7]", "q@[IPv6:2001:db8::1]", "UPPER@X.EXAMPLE"]
_UTF8_MAILBOXES = ["jösé@x.example", "用户@例子.example", "a@bücher.example"]
_PART_TYPES = ["application/octet-stream", "application/pdf", "application/x-vnd.fuzz+json", "image/png",
               "image/jpeg", "audio/ogg", "video/mp4", "text/plain", "text/csv", "text/html", "font/woff2"]


def _header_text(min_size: int = 0) -> st.SearchStrategy[str]:
    chars = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=min_size, max_size=8)
    return st.lists(st.one_of(st.sampled_from(_HEADER_PIECES), chars), min_size=1, max_size=4).map("".join)


@dataclass(frozen=True)
class _MimeValues:
    text: st.SearchStrategy[str | None]
    html: st.SearchStrategy[str | None]
    subject: st.SearchStrategy[str | None]
    attachments: st.SearchStrategy[list[_Attachment]]
    inline: st.SearchStrategy[list[_Attachment]]
    people: st.SearchStrategy[list[tuple[str, str]]]
    date: st.SearchStrategy[datetime | None]
    headers: st.SearchStrategy[list[tuple[str, str]]]


@functools.lru_cache(maxsize=None)
def _mime_values(utf8: bool) -> _MimeValues:
    # Built once per flavour: making these strategies afresh for every
    # example costs more than drawing from them.
    from datetime import timedelta, timezone

    from .message import Attachment

    text_chars = st.text(st.characters(blacklist_categories=["Cs"]), max_size=8)
    body = st.lists(st.one_of(st.sampled_from(_TEXT_PIECES), text_chars), max_size=12).map("".join)
    filename = st.one_of(
        st.none(), _header_text(1).filter(lambda s: s.strip() != ""),
        st.sampled_from(["report.pdf", "photo.JPG", "../../etc/passwd", 'a;b".txt', "résumé.docx",
                         "日本語のファイル名.txt", "x" * 200 + ".bin"]))
    data = st.one_of(st.binary(max_size=200), body.map(lambda t: t.encode("utf-8")),
                     st.sampled_from([b"", b"\r\n.\r\n", b"--=_\r\n", b"\xff" * 80, bytes(range(256))]))

    def attachment(inline: bool) -> st.SearchStrategy[_Attachment]:
        cid = st.from_regex(r"[A-Za-z0-9._-]{1,12}@[a-z]{1,6}\.example", fullmatch=True)
        return st.builds(
            Attachment, data=data, filename=filename, content_type=st.one_of(st.none(), st.sampled_from(_PART_TYPES)),
            content_id=cid if inline else st.none(), inline=st.just(True) if inline else st.booleans(),
            params=st.sampled_from([{}, {"charset": "utf-8"}, {"x-note": 'é ;"q"'}]),
            headers=st.sampled_from([(), (("Content-Description", "a part é"),)]))

    # A fixed set of mailboxes: addresses() is thorough but slow, and here the
    # display names are what stresses the header writer and parsers.
    mailbox = st.sampled_from(_MAILBOXES + (_UTF8_MAILBOXES if utf8 else []))
    person = st.tuples(st.one_of(st.just(""), _header_text()), mailbox)
    zone = st.integers(-720, 840).map(lambda m: timezone(timedelta(minutes=m)))
    return _MimeValues(
        text=st.one_of(st.none(), body),
        html=st.one_of(st.none(), body.map(lambda t: f"<p>{t}</p>")),
        subject=st.one_of(st.none(), _header_text()),
        attachments=st.lists(attachment(False), max_size=2),
        inline=st.lists(attachment(True), max_size=2),
        people=st.lists(person, min_size=1, max_size=3),
        date=st.one_of(st.none(), st.builds(lambda d, z: d.replace(tzinfo=z),
                                            st.datetimes(datetime(1970, 1, 2), datetime(2100, 1, 1)), zone)),
        headers=st.lists(st.tuples(st.sampled_from(["X-Fuzz", "Comments", "Keywords"]), _header_text()),
                         max_size=2),
    )


@st.composite
def _built(draw: st.DrawFn, smtputf8: bool | None, binary: bool, depth: int) -> BuiltMessage:
    from hypothesis import reject

    from .message import Attachment, BuildError, HeaderError, build_bytes

    utf8 = draw(st.booleans()) if smtputf8 is None else smtputf8
    v = _mime_values(utf8)
    subject, text, html = draw(v.subject), draw(v.text), draw(v.html)
    attachments, inline = draw(v.attachments), draw(v.inline)
    nested: list[BuiltMessage] = []
    if depth > 0 and draw(st.integers(0, 2)) == 0:
        # message/rfc822 content must be 7bit unless 8bit is allowed (RFC 2046
        # §5.2.1): an SMTPUTF8 inner message only inside an SMTPUTF8 one.
        inner = draw(_built(draw(st.booleans()) if utf8 else False, False, depth - 1))
        nested.append(inner)
        attachments.append(Attachment(inner.data, filename=draw(st.sampled_from([None, "fwd.eml"])),
                                      content_type="message/rfc822"))
    people, when = draw(v.people), draw(v.date)
    try:
        data = build_bytes(
            from_=people[:1], to=people[1:], subject=subject, text=text, html=html,
            attachments=attachments, inline=inline, headers=draw(v.headers), date=when,
            message_id=draw(st.sampled_from([None, "<fuzz.1@x.example>"])), smtputf8=utf8,
            allow_binary=binary and draw(st.booleans()),
            # A drawn seed keeps the boundaries (and so every example) reproducible.
            seed=draw(st.integers(0, 2**32)))
    except (BuildError, HeaderError):
        reject()
    return BuiltMessage(data, subject, text, html, tuple(attachments), tuple(inline), utf8, tuple(nested))


def built_messages(*, smtputf8: bool | None = None, binary: bool = False,
                   max_nesting: int = 2) -> st.SearchStrategy[BuiltMessage]:
    """Valid MIME messages from :func:`smtpproto.message.build_bytes`, with
    what went into them (:class:`BuiltMessage`): text and/or HTML (a
    ``multipart/alternative`` when both), attachments of arbitrary bytes and
    types, inline parts with Content-IDs (a ``multipart/related``), non-ASCII
    subjects, display names and filenames (RFC 2047 / RFC 2231, or raw UTF-8
    with ``smtputf8``), and up to ``max_nesting`` levels of attached
    ``message/rfc822`` messages.  ``smtputf8=None`` draws both kinds;
    ``binary=True`` lets parts use ``Content-Transfer-Encoding: binary``
    (bare CR and LF, long lines: for BDAT with BINARYMIME only)."""
    return _built(smtputf8, binary, max_nesting)


def mime_messages(*, smtputf8: bool | None = None, binary: bool = False,
                  max_nesting: int = 2) -> st.SearchStrategy[bytes]:
    """The bytes of :func:`built_messages`: well-formed messages every MIME
    parser should read the same way (CRLF, no line over 998 octets; 8bit
    content and raw UTF-8 headers only with ``smtputf8``; binary parts only
    with ``binary``).  ``mime_messages().map(smtpproto.message.parse)`` gives
    ``Message`` objects."""
    return built_messages(smtputf8=smtputf8, binary=binary, max_nesting=max_nesting).map(lambda b: b.data)


# ---- hostile MIME


def _multipart(boundary: bytes, parts: Sequence[bytes], *, subtype: bytes = b"mixed", preamble: bytes = b"",
               epilogue: bytes = b"", close: bool = True, headers: bytes = b"") -> bytes:
    body = preamble + b"".join(b"--" + boundary + b"\r\n" + p + b"\r\n" for p in parts)
    if close:
        body += b"--" + boundary + b"--\r\n" + epilogue
    return (headers + b"Content-Type: multipart/" + subtype + b'; boundary="' + boundary + b'"\r\n\r\n' + body)


def _leaf(body: bytes, ctype: bytes = b"text/plain", cte: bytes | None = None, extra: bytes = b"") -> bytes:
    head = b"Content-Type: " + ctype + b"\r\n" + extra
    if cte is not None:
        head += b"Content-Transfer-Encoding: " + cte + b"\r\n"
    return head + b"\r\n" + body


_BOUNDARIES = [b"b", b"=_x", b"simple boundary", b"--", b"'()+_,-./:=?", b"B" * 70, b"b b"]


@st.composite
def _boundary_in_content(draw: st.DrawFn) -> bytes:
    # Lines that are, or nearly are, a delimiter of this or the enclosing
    # multipart: a parser must end a part only at "--" boundary [LWSP] CRLF.
    b = draw(st.sampled_from(_BOUNDARIES))
    traps = [b"--" + b + b"x", b"--" + b + b"--x", b"--" + b + b" \t", b" --" + b, b"x--" + b,
             b"--" + b[:-1], b"--" + b + b"--", b"--" + b, b"Content-Type: text/html"]
    def body() -> bytes:
        return b"\r\n".join(draw(st.lists(st.one_of(st.sampled_from(traps), st.just(b"text")), max_size=5)))
    parts = [_leaf(body()) for _ in range(draw(st.integers(1, 3)))]
    if draw(st.booleans()):
        # The inner boundary extends the outer one: "--bb" starts with "--b".
        inner = b + draw(st.sampled_from([b"b", b"-", b"--", b" x"]))
        parts.append(_multipart(inner, [_leaf(body()), _leaf(b"--" + b + b"\r\nnot a part")]))
    return b"Subject: boundary traps\r\nMIME-Version: 1.0\r\n" + _multipart(
        b, parts, preamble=body() + b"\r\n", epilogue=body())


@st.composite
def _overlong_lines(draw: st.DrawFn, limits: _Limits) -> bytes:
    n = draw(st.sampled_from([998, 999, 1000, 1001, limits.max_boundary_line - 1, limits.max_boundary_line,
                              limits.max_boundary_line + 1, 20_000]))
    kind = draw(st.integers(0, 4))
    if kind == 0:  # one unfoldable header line
        return b"Subject: " + b"S" * n + b"\r\n\r\nbody\r\n"
    if kind == 1:  # a header section around the size cap, folded or as one field
        size = limits.max_header_bytes + draw(st.integers(-64, 64))
        field = b"X-Big: " + b"v" * 70 + b"\r\n"
        head = field * (size // len(field)) + b"X-End: " + b"e" * (size % len(field)) + b"\r\n"
        return head + b"Subject: after the cap\r\n\r\nbody\r\n"
    if kind == 2:  # a delimiter line padded with white space past the candidate limit
        pad = b" " * (n - 3)
        return _multipart(b"b", [_leaf(b"one")], preamble=b"--b" + pad + b"\r\n")
    if kind == 3:  # a body line, encoded or not
        cte = draw(st.sampled_from([None, b"quoted-printable", b"base64", b"8bit"]))
        return b"MIME-Version: 1.0\r\n" + _leaf(b"A" * n + b"\r\nend\r\n", cte=cte)
    return b"To: " + b", ".join([b"a@x.example"] * (n // 13)) + b"\r\n\r\n"


@st.composite
def _broken_boundaries(draw: st.DrawFn) -> bytes:
    b = draw(st.sampled_from(_BOUNDARIES[:4]))
    one, two = _leaf(b"first"), _leaf(b"second", b"text/html")
    kind = draw(st.integers(0, 9))
    if kind == 0:  # no boundary parameter
        return b"Content-Type: multipart/mixed\r\n\r\n--b\r\n" + one + b"\r\n--b--\r\n"
    if kind == 1:  # empty boundary
        return b'Content-Type: multipart/mixed; boundary=""\r\n\r\n--\r\n' + one + b"\r\n----\r\n"
    if kind == 2:  # two boundary parameters
        return (b"Content-Type: multipart/mixed; boundary=a; boundary=" + b + b"\r\n\r\n--a\r\n" + one
                + b"\r\n--" + b + b"\r\n" + two + b"\r\n--a--\r\n--" + b + b"--\r\n")
    if kind == 3:  # never closed
        return _multipart(b, [one, two], close=False)
    if kind == 4:  # closed twice, with a part between the closings
        return _multipart(b, [one], epilogue=b"--" + b + b"\r\n" + two + b"\r\n--" + b + b"--\r\n")
    if kind == 5:  # only a closing delimiter
        return b'Content-Type: multipart/mixed; boundary="' + b + b'"\r\n\r\n' + one + b"\r\n--" + b + b"--\r\n"
    if kind == 6:  # an inner multipart that reuses the outer boundary
        return _multipart(b, [_multipart(b, [one, two]), one])
    if kind == 7:  # delimiters ended by a bare LF or CR
        end = draw(st.sampled_from([b"\n", b"\r"]))
        return _multipart(b, [one, two]).replace(b"--" + b + b"\r\n", b"--" + b + end)
    if kind == 8:  # a second Content-Type that disagrees with the first
        return b"Content-Type: text/plain\r\n" + _multipart(b, [one, two])
    return _multipart(b, [one, two], subtype=draw(st.sampled_from([b"digest", b"alternative", b"related",
                                                                    b"x-unknown", b""])))


_BAD_BASE64 = [b"aGVsbG8", b"aGVsbG8===", b"aGV sbG8=\r\n", b"aGVs\r\nbG8=\r\nextra", b"!!!!", b"aGVsbG8=aGVsbG8=",
               b"\xff\xfe\x00", b"=", b"a", b"aGVsbG8=\r\n--", b"QUJD" * 300]
_BAD_QP = [b"=ZZ", b"=e9", b"caf=C3=A9=", b"soft=\r\nbreak=", b"=\r", b"trailing   \r\nx", b"=0D=0A.=0D=0A",
           b"a=\nb", b"=3", b"Q" * 2000, b"\xe9 raw 8-bit"]


@st.composite
def _bad_transfer_encoding(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 4))
    if kind == 0:
        return b"MIME-Version: 1.0\r\n" + _leaf(draw(st.sampled_from(_BAD_BASE64)),
                                                 draw(st.sampled_from([b"text/plain; charset=utf-8",
                                                                       b"application/pdf"])), b"base64")
    if kind == 1:
        return b"MIME-Version: 1.0\r\n" + _leaf(draw(st.sampled_from(_BAD_QP)), b"text/plain; charset=utf-8",
                                                 b"quoted-printable")
    if kind == 2:  # unknown, misspelled or doubled encodings
        cte = draw(st.sampled_from([b"x-uuencode", b"Base64 (comment)", b"quoted-printable\r\n"
                                    b"Content-Transfer-Encoding: base64", b"7bit", b"binary", b""]))
        return _leaf(b"aGVsbG8=\r\n\xe9\r\n", cte=cte)
    if kind == 3:  # an encoded multipart (RFC 2045 §6.4 forbids it)
        inner = _multipart(b"b", [_leaf(b"x")])
        head, _, body = inner.partition(b"\r\n\r\n")
        return head + b"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + _b64(body)
    # message/rfc822 with an encoded body that is not a message
    return _leaf(draw(st.sampled_from(_BAD_BASE64 + _BAD_QP)), b"message/rfc822",
                 draw(st.sampled_from([b"base64", b"quoted-printable"])))


def _b64(data: bytes) -> bytes:
    import base64

    return base64.encodebytes(data).replace(b"\n", b"\r\n")


@st.composite
def _deep_nesting(draw: st.DrawFn, limits: _Limits) -> bytes:
    # Depths and counts at and just past the parser's limits, where an
    # off-by-one would show (and far past them, where recursion would).
    depth = draw(st.sampled_from([limits.max_depth - 1, limits.max_depth, limits.max_depth + 1,
                                  2 * limits.max_depth, 200]))
    kind = draw(st.integers(0, 3))
    if kind == 0:  # multiparts in multiparts
        out = _leaf(b"core")
        for i in range(depth):
            out = _multipart(b"b%d" % i, [out])
        return out
    if kind == 1:  # message/rfc822 in message/rfc822, or alternating with multiparts
        out = b"Subject: core\r\n\r\ncore\r\n"
        for i in range(depth):
            wrap = b"Content-Type: message/rfc822\r\n\r\n" + out
            out = _multipart(b"m%d" % i, [wrap]) if draw(st.booleans()) else wrap
        return out
    if kind == 2:  # base64-encoded messages in encoded messages
        out = b"Subject: core\r\n\r\ncore\r\n"
        for _ in range(min(depth, limits.max_encoded_nesting + draw(st.integers(-1, 2)))):
            out = _leaf(_b64(out), b"message/rfc822", b"base64")
        return out
    # many sibling parts around the part-count cap
    count = limits.max_parts + draw(st.integers(-2, 2))
    return _multipart(b"p", [b"\r\n" + str(i).encode() for i in range(count)])


# A multi-byte character split across encoded words, folds inside words,
# unterminated, mislabelled and nested words, language tags, bad base64.
_ENCODED_WORDS = [
    b"=?utf-8?q?caf=C3?=\r\n =?utf-8?q?=A9?=", b"=?utf-8?b?Y2Fm\r\n w6k=?=", b"=?utf-8?q?a\r\n b?=",
    b"=?utf-8?q?abc?=\r\n\t=?iso-8859-1?q?=E9?=", b"=?utf-8*en?q?x?=", b"=?utf-8?x?abc?=", b"=?utf-8?q?abc",
    b"=?utf-8?q?=3D=3Futf-8=3Fq=3Fx=3F=3D?=", b"=?utf-8?b?!!!?=", b"=?utf-8?b?YQ?=", b"=?utf-8?b?Y2Fm\r\n w6k?=", b"=?unknown-8?q?a?=", b"=??q?a?=",
    b"a=?utf-8?q?b?=c", b"=?utf-8?q?" + b"=E2=82=AC" * 40 + b"?=", b"=?utf-16?b?2D3eAA==?=",
    b"=?utf-8?q?x?= \r\n =?utf-8?q?y?=", b'"=?utf-8?q?quoted?=" <a@x.example>',
]


@st.composite
def _split_encoded_words(draw: st.DrawFn) -> bytes:
    word = draw(st.sampled_from(_ENCODED_WORDS))
    field = draw(st.sampled_from([b"Subject", b"From", b"To", b"Comments", b"Content-Type"]))
    if field == b"Content-Type":
        return b'Content-Type: application/pdf; name="' + word + b'"\r\n\r\nx\r\n'
    value = word if field not in (b"From", b"To") or b"<" in word else word + b" <a@x.example>"
    return field + b": " + value + b"\r\n\r\nbody\r\n"


@st.composite
def _rfc2231_disorder(draw: st.DrawFn) -> bytes:
    sections = [b"filename*0*=utf-8'en'caf%C3", b"filename*1*=%A9", b"filename*2=.txt"]
    kind = draw(st.integers(0, 5))
    if kind == 0:  # any order
        sections = draw(st.permutations(sections))
    elif kind == 1:  # a gap, a duplicate, or a missing first section
        sections = draw(st.sampled_from([[sections[0], sections[2]], sections + [sections[1]], sections[1:]]))
    elif kind == 2:  # charset in a later section, bad escapes, a plain and an extended value together
        sections = draw(st.sampled_from([[b"filename*0=a", b"filename*1*=utf-8''%C3%A9"],
                                         [b"filename*=utf-8''%ZZ%C3"], [b'filename="plain"',
                                                                        b"filename*=utf-8''ext%C3%A9"]]))
    elif kind == 3:  # section numbers a parser might trust
        sections = [b"filename*99999999999999999999=x", b"filename*01=y", b"filename*-1=z", b"filename*0=w"]
    elif kind == 4:  # very many sections
        sections = [b"filename*%d=p" % i for i in draw(st.permutations(list(range(draw(st.integers(2, 600))))))]
    else:  # an unknown charset and an empty one
        sections = [draw(st.sampled_from([b"filename*=x-unknown''%E9", b"filename*=''%E9", b"filename*='"]))]
    params = b";\r\n ".join(sections)
    return (b"Content-Type: application/octet-stream; name*1=b; name*0=a\r\n"
            b"Content-Disposition: attachment;\r\n " + params + b"\r\n\r\ndata\r\n")


_INJECTIONS = [
    b"Subject: =?utf-8?q?a=0D=0ABcc:_victim@x.example?=", b"Subject: =?utf-8?b?DQpCY2M6IHhAeS5leGFtcGxl?=",
    b"Subject: a\rBcc: victim@x.example", b"Subject: a\nBcc: victim@x.example", b"Subject: a\x00b",
    b"Subject : spaced name", b"Sub ject: bad name", b"\xc3\xa9: non-ASCII name", b"no colon at all",
    b" a continuation first", b"To: a@x.example\r\n\r\nBcc: in the body",
    b"From: \"a\r\n b\" <a@x.example>", b"Content-Type: text/plain\r\nContent-Type: multipart/mixed; boundary=b",
    b"Content-Type: multipart/mixed; (boundary=x) boundary=b", b"Content-Type: text/plain; charset=utf-8; "
    b"charset=iso-8859-1", b"Subject: \xc3\xa9 raw UTF-8 \xff",
]


@st.composite
def _header_injection(draw: st.DrawFn) -> bytes:
    lines = draw(st.lists(st.sampled_from(_INJECTIONS), min_size=1, max_size=3))
    return b"\r\n".join(lines) + draw(st.sampled_from([b"\r\n\r\n--b\r\n\r\nbody\r\n--b--\r\n", b"\r\n", b""]))


def hostile_mime(*, limits: _Limits | None = None) -> st.SearchStrategy[bytes]:
    """Malformed and hostile messages: boundaries inside content (and an inner
    boundary that extends the outer one), lines at and past 998 octets and
    the parser's boundary-line and header-size limits, missing, empty,
    duplicate and never-closed boundaries, bad base64 and quoted-printable,
    nesting at and past ``limits`` (default :class:`smtpproto.message.Limits`),
    encoded words split or broken across folds, RFC 2231 sections out of order
    or duplicated, and header injection attempts; sometimes with LF line ends
    or mutated further (:func:`mutations`).  A robust parser reads every one
    without an exception and within its limits."""
    from .message import Limits

    lim = limits or Limits()
    base = st.one_of(_boundary_in_content(), _overlong_lines(lim), _broken_boundaries(), _bad_transfer_encoding(),
                     _deep_nesting(lim), _split_encoded_words(), _rfc2231_disorder(), _header_injection())
    return st.one_of(base, base.map(lambda d: d.replace(b"\r\n", b"\n")),
                     base.flatmap(lambda d: mutations(d) if len(d) < 5000 else st.just(d)))


# ---------------------------------------------------------------- fuzz targets


class InvariantError(AssertionError):
    """A fuzz target found the core breaking one of its promises."""


def _accept_all(owed: object) -> Reply:
    from ._events import InvalidCommand, MessageRejected, UnknownCommand

    if isinstance(owed, (InvalidCommand, UnknownCommand, MessageRejected)):
        return owed.reply
    if isinstance(owed, (Ehlo, Lhlo)):
        return Reply(code=250, lines=["fuzz.example", "PIPELINING", "SIZE 1000000", "8BITMIME", "SMTPUTF8",
                                      "CHUNKING", "STARTTLS"])
    if isinstance(owed, Data):
        return Reply(code=354, lines=["go ahead"])
    if isinstance(owed, StartTLS):
        return Reply(code=220, lines=["2.0.0 Ready to start TLS"])
    if isinstance(owed, Quit):
        return Reply(code=221, lines=["2.0.0 Bye"])
    if isinstance(owed, Auth):
        return Reply(code=504, lines=["5.5.4 no"])
    return Reply(code=250, lines=["ok"])


def fuzz_server(data: bytes) -> None:
    """Fuzz target for a server :class:`~smtpproto.Connection` (atheris-style:
    one ``bytes`` argument, raises only on a bug).

    The first byte picks the chunk size and the bare-newline policy; the rest
    is fed as client input to a server that accepts everything.  Checked:
    nothing but ``RemoteProtocolError`` escapes; no more messages end than
    there are ``CRLF.CRLF`` sequences in the input (or BDAT LAST chunks);
    the receive buffer stays within the configured line limits whenever the
    core asks for more data.  Raises :class:`InvariantError` otherwise.
    """
    if not data:
        return
    head, data = data[0], data[1:]
    chunk = 1 + (head & 0x3F) * 37
    config = Config(bare_newline="normalize" if head & 0x40 else "reject",
                    enforce_pipelining_sync=not head & 0x80)
    conn = Connection(Role.SERVER, config)
    conn.send(Reply(code=220, lines=["fuzz.example ESMTP"]))
    limit = max(config.max_auth_line, config.max_mail_rcpt_line, config.max_data_line or 0) + chunk
    ends = 0
    last_chunks = 0
    from ._connection import PAUSED
    from ._events import MessageRejected
    from ._state import State

    for start in range(0, len(data), chunk):
        conn.receive_data(data[start:start + chunk])
        while True:
            try:
                ev = conn.next_event()
            except RemoteProtocolError:
                return
            if ev is NEED_DATA:
                buffered = len(conn.trailing_data[0])
                if conn.state not in (State.ERROR, State.CLOSED, State.TLS) and buffered > limit:
                    raise InvariantError(f"receive buffer holds {buffered} octets (limit {limit})")
                break
            if ev is PAUSED:
                owed = conn.reply_owed
                if owed is None:
                    return  # the STARTTLS hand-over: a real adapter would shake hands now
                try:
                    conn.send(_accept_all(owed))
                except Exception as exc:  # the core refusing our canned reply is no input bug
                    from ._errors import LocalProtocolError

                    if isinstance(exc, LocalProtocolError):
                        return
                    raise
                continue
            if isinstance(ev, (EndOfMessage, MessageRejected)):
                ends += 1
            elif isinstance(ev, Bdat) and ev.last:
                last_chunks += 1
            elif isinstance(ev, ConnectionClosed):
                return
    if ends > (b"\r\n" + data).count(b"\r\n.\r\n") + last_chunks:
        raise InvariantError(f"{ends} messages ended for fewer real end-of-data sequences")


def fuzz_client(data: bytes) -> None:
    """Fuzz target for the client's reply parser: ``data`` is the server's
    side, fed one line at a time; after each positive reply the client sends
    the next of EHLO, MAIL, RCPT, DATA.  Checked: nothing but
    ``RemoteProtocolError`` escapes; never more replies than commands sent;
    every reply but the greeting is paired with its command and has a code
    from 200 to 599.  Raises :class:`InvariantError` otherwise."""
    conn = Connection(Role.CLIENT)
    script: list[Command] = [Ehlo(domain="c.example"), Mail(reverse_path="a@x.example"),
                             Rcpt(forward_path="b@y.example"), Data()]
    sent, replies = 1, 0  # the greeting is owed from the start
    pieces = [p + b"\n" for p in data.split(b"\n")]
    pieces[-1] = pieces[-1][:-1]
    for piece in pieces:
        if not piece:
            continue
        conn.receive_data(piece)
        while True:
            try:
                ev = conn.next_event()
            except RemoteProtocolError:
                return
            if isinstance(ev, ConnectionClosed):
                return
            if not isinstance(ev, Reply):
                break  # NEED_DATA or PAUSED
            if ev.code == 421 and ev.command is None:
                return  # RFC 5321 §3.8: closing at any time is allowed
            replies += 1
            if not 200 <= ev.code <= 599:
                raise InvariantError(f"reply code {ev.code}")
            if replies > sent:
                raise InvariantError("more replies than commands sent")
            if replies > 1 and ev.command is None and ev.code != 421:
                raise InvariantError("a reply paired with no command")
            if ev.code < 400 and script:
                try:
                    conn.send(script.pop(0))
                    sent += 1
                except LocalProtocolError:
                    script.clear()


def _message_shape(msg: "_Message") -> list[tuple[str, int, str | None, str | None]]:
    """What a reparse must reproduce: per part, the content type, the number
    of children, the decoded subject and the filename."""
    return [(p.content_type, len(p.parts), p.get("subject"), p.filename) for p in msg.walk()]


def fuzz_message(data: bytes) -> None:
    """Fuzz target for the message parser (atheris-style).

    ``data`` is parsed whole and, split at a size taken from its first byte,
    through :class:`~smtpproto.message.MessageParser`.  Checked: ``parse``
    never raises; ``to_bytes()`` returns ``data`` exactly, for both; the
    streamed parse has the same part tree; every view (headers, addresses,
    dates, message ids, Received, List-*, parameters, ``decoded_body``,
    ``text``, the RFC 8621 body lists, ``check``) runs without an exception
    and returns the documented types.  Raises :class:`InvariantError`
    otherwise (any other exception is a bug too)."""
    from .message import MessageParser, parse

    msg = parse(data)
    if msg.to_bytes() != data:
        raise InvariantError("to_bytes() differs from the input")
    chunk = 1 + (data[0] if data else 0) * 13
    parser = MessageParser()
    for start in range(0, len(data), chunk):
        parser.feed(data[start:start + chunk])
    streamed = parser.close()
    if streamed.to_bytes() != data:
        raise InvariantError("streamed to_bytes() differs from the input")
    if _message_shape(streamed) != _message_shape(msg):
        raise InvariantError("streamed parse gives another part tree")
    for part in msg.walk():
        for h in part.headers:
            if not isinstance(h.value, str) or not isinstance(h.raw, bytes):
                raise InvariantError("header view of the wrong type")
        part.params
        part.disposition_params
        part.is_attachment
        if not isinstance(part.decoded_body(), bytes) or not isinstance(part.text(), str):
            raise InvariantError("body view of the wrong type")
        for name in ("From", "To", "Cc", "Reply-To"):
            part.addresses(name)
        part.date()
        part.message_ids("Message-ID")
        part.message_ids("References")
        part.received()
        part.list_header("List-Unsubscribe")
        part.list_id()
        part.preamble
        part.epilogue
    msg.text_body
    msg.html_body
    msg.attachments
    msg.check()
    if msg.to_bytes() != data:
        raise InvariantError("a view changed the bytes")


def fuzz_message_roundtrip(data: bytes) -> None:
    """Fuzz target for parse → serialize → parse (atheris-style).

    Checked: ``parse(parse(data).to_bytes())`` has the same part tree,
    subjects and filenames; after adding a header (``X-Fuzz``), replacing
    ``Subject`` and serializing, the reparse shows the new values, keeps
    every other part's bytes unchanged, and ``to_bytes()`` of that reparse
    is a fixed point.  The edit is checked with a header-size cap
    (``Limits.max_header_bytes``) above the input's size: fields added to a
    header section at the default cap land past it and read back as body, as
    documented.  Raises :class:`InvariantError` otherwise."""
    from .message import Limits, parse

    msg = parse(data)
    again = parse(msg.to_bytes())
    if _message_shape(again) != _message_shape(msg):
        raise InvariantError("reparse gives another part tree")
    subject = "fuzz \u00e9 " + str(len(data))
    lim = Limits(max_header_bytes=max(Limits().max_header_bytes, len(data) + 1024))
    msg = parse(data, limits=lim)
    edited = parse(data, limits=lim)
    edited["X-Fuzz"] = "1"
    edited["Subject"] = subject
    out = edited.to_bytes()
    back = parse(out, limits=lim)
    if back.get("x-fuzz") != "1" or back.get("subject") != subject:
        raise InvariantError("an edited header did not survive serialization")
    if back.to_bytes() != out:
        raise InvariantError("serialization of the edited message is not a fixed point")
    before = [p.to_bytes() for p in msg.walk()][1:]
    after = [p.to_bytes() for p in back.walk()][1:]
    if before != after:
        raise InvariantError("editing the top header changed a part's bytes")


def mutated(hostile: st.SearchStrategy[Hostile]) -> st.SearchStrategy[Hostile]:
    """Hostile inputs with their bytes mutated (see :func:`mutations`) and
    split again; the case id gets a ``~`` suffix.  For these only the general
    invariants hold: documented errors only, at most one message per real
    end-of-data, bounded buffers."""

    @st.composite
    def build(draw: st.DrawFn) -> Hostile:
        h = draw(hostile)
        data = draw(mutations(h.data))
        return Hostile(h.case + "~", h.phase, h.prefix, draw(chunkings(data)))

    return build()

