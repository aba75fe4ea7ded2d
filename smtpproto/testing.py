"""Hypothesis strategies for testing SMTP software with smtpproto.

Importing this module imports `hypothesis <https://hypothesis.readthedocs.io>`_
(``pip install hypothesis``); ``import smtpproto`` never does.

Two families:

* **valid** values, which every conforming peer must accept: domains,
  addresses (ASCII and SMTPUTF8), ESMTP parameters, every command event,
  replies, message bodies that stress dot-stuffing and line endings, and whole
  client sessions (:func:`transcripts`);
* **hostile** inputs (:class:`Hostile`), the byte sequences of
  SECURITY-CASES.md (fake end-of-data sequences, content pipelined behind
  ``DATA``, bytes behind ``STARTTLS``, bare CR/LF in commands, over-long lines)
  and their :func:`mutations`, each with the normal commands that must precede
  it, so they can be fed to a sans-I/O connection or written to a socket.

:func:`replay` plays a transcript against a live server over a socket through
the core client :class:`~smtpproto.Connection`.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
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
    "address_literals",
    "addresses",
    "auth_responses",
    "bare_newline_commands",
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
    "local_parts",
    "long_command_lines",
    "message_bodies",
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


# ---------------------------------------------------------------- fuzz targets


if TYPE_CHECKING:
    from .message import Message as _Message


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
    is a fixed point.  Raises :class:`InvariantError` otherwise."""
    from .message import parse

    msg = parse(data)
    again = parse(msg.to_bytes())
    if _message_shape(again) != _message_shape(msg):
        raise InvariantError("reparse gives another part tree")
    subject = "fuzz \u00e9 " + str(len(data))
    edited = parse(data)
    edited["X-Fuzz"] = "1"
    edited["Subject"] = subject
    out = edited.to_bytes()
    back = parse(out)
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

