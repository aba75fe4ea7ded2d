"""SECURITY-CASES.md, protocol rows (S-, T-, P-, C-, R-, F-): one test per row id.

Every server/client case that feeds bytes is a :class:`Scenario` and also runs
under F-02: the row's input fed whole, one byte per ``receive_data()``, and split
at every index (seeded samples of split points for inputs over 256 octets).  The
event sequence (after :func:`pair.strip`) and the outbound bytes must be the same
for every split.

The server side is driven by a small "application" that answers every command
the way a permissive MTA would (or with the core's suggested reply for refused
commands).  Segments model TCP writes of the peer: all the octets of one segment
have arrived before the application answers anything (the worst case for
pipelining synchronization), and the row's "waiting for each reply" is modelled
by separate segments.
"""

from __future__ import annotations

import base64
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence, Union

import pytest

from pair import strip
from smtpproto import (
    NEED_DATA,
    PAUSED,
    Auth,
    PregreetPolicy,
    Bdat,
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
    LocalProtocolError,
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
    TLSRequiredError,
    UnknownCommand,
    Vrfy,
)

# --------------------------------------------------------------------------- harness

#: What the server advertises unless a scenario says otherwise.
CAPS: tuple[str, ...] = ("PIPELINING", "CHUNKING", "SIZE 10485760", "STARTTLS", "SMTPUTF8", "8BITMIME")
CAPS_NO_TLS: tuple[str, ...] = ("PIPELINING", "CHUNKING", "SIZE 10485760", "SMTPUTF8", "8BITMIME")
GREETING = Reply(code=220, lines=["mx.example ESMTP"])

#: The "…" prefix of SECURITY-CASES.md, one command per segment.
PREFIX: tuple[bytes, ...] = (
    b"EHLO c.example\r\n",
    b"MAIL FROM:<a@x.example>\r\n",
    b"RCPT TO:<b@y.example>\r\n",
    b"DATA\r\n",
)
PREFIX_EVENTS: list[object] = [
    Ehlo(domain="c.example"),
    Mail(reverse_path="a@x.example"),
    Rcpt(forward_path="b@y.example"),
    Data(),
]


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: Step: the adapter reports the TLS handshake done (``tls_established()``).
TLS_UP = _Marker("TLS_UP")
#: Step: the peer closes (``receive_data(b"")``).
EOF = _Marker("EOF")
#: Step: the server application sends its greeting (for scenarios with greet=False).
GREET = _Marker("GREET")

Step = Union[bytes, _Marker]


@dataclass(frozen=True)
class Sent:
    """Transcript entry: a reply the server application sent."""

    reply: Reply


@dataclass(frozen=True)
class Raised:
    """Transcript entry: next_event() raised RemoteProtocolError (its reply, if any)."""

    reply: Reply | None


def ok_reply(owed: Event, caps: Sequence[str]) -> Reply:
    """The permissive application's answer to ``owed``."""
    if isinstance(owed, (InvalidCommand, UnknownCommand, MessageRejected)):
        return owed.reply
    if isinstance(owed, Ehlo):
        return Reply(code=250, lines=["mx.example", *caps])
    if isinstance(owed, Helo):
        return Reply(code=250, lines=["mx.example"])
    if isinstance(owed, Mail):
        return Reply(code=250, lines=["Ok"], enhanced_status="2.1.0")
    if isinstance(owed, Rcpt):
        return Reply(code=250, lines=["Ok"], enhanced_status="2.1.5")
    if isinstance(owed, Data):
        return Reply(code=354, lines=["End data with <CR><LF>.<CR><LF>"])
    if isinstance(owed, StartTLS):
        return Reply(code=220, lines=["Ready to start TLS"], enhanced_status="2.0.0")
    if isinstance(owed, Quit):
        return Reply(code=221, lines=["Bye"], enhanced_status="2.0.0")
    if isinstance(owed, Vrfy):
        return Reply(code=252, lines=["maybe"], enhanced_status="2.0.0")
    if isinstance(owed, Help):
        return Reply(code=214, lines=["see RFC 5321"], enhanced_status="2.0.0")
    if isinstance(owed, Auth):
        return Reply(code=535, lines=["no"], enhanced_status="5.7.8")
    return Reply(code=250, lines=["Ok"], enhanced_status="2.0.0")


@dataclass
class Scenario:
    """A server (or client) byte-feeding case of one row."""

    id: str
    steps: tuple[Step, ...]
    config: Config = field(default_factory=Config)
    caps: tuple[str, ...] = CAPS
    role: Role = Role.SERVER
    greet: bool = True
    #: client scenarios: a function driving the client (see ``drive_client``).
    client_script: "Callable[[ClientDriver], None] | None" = None


@dataclass
class Run:
    transcript: list[object]
    out: bytes
    conn: Connection


@dataclass(frozen=True)
class Refused:
    """Transcript entry (client): send() raised this LocalProtocolError subclass."""

    error: str


Splitter = Callable[[bytes], Iterable[bytes]]


def whole(data: bytes) -> list[bytes]:
    return [data]


def bytewise(data: bytes) -> Iterator[bytes]:
    # lazily: a 10 MB row stops being fed once the connection is dead
    return (data[i : i + 1] for i in range(len(data)))


def split_at(i: int) -> Splitter:
    def split(data: bytes) -> list[bytes]:
        if 0 < i < len(data):
            return [data[:i], data[i:]]
        return [data]

    return split


def normalize(transcript: list[object]) -> list[object]:
    """strip() plus dropping PAUSED (how often it shows depends on chunking)."""
    return list(strip([e for e in transcript if e is not PAUSED]))  # type: ignore[misc]


def drive_server(sc: Scenario, splitter: Splitter = whole) -> Run:
    conn = Connection(Role.SERVER, sc.config)
    transcript: list[object] = []
    out = bytearray()
    dead = False

    def drain(answer: bool) -> None:
        nonlocal dead
        while not dead:
            try:
                ev = conn.next_event()
            except RemoteProtocolError as exc:
                transcript.append(Raised(exc.reply))
                if exc.reply is not None:
                    out.extend(conn.send(exc.reply))
                dead = True
                return
            if ev is NEED_DATA:
                transcript.append(ev)
                return
            if ev is PAUSED:
                owed = conn.reply_owed
                if not answer or owed is None:
                    transcript.append(ev)
                    return
                caps = sc.caps
                if conn.tls_active:
                    caps = tuple(c for c in caps if c != "STARTTLS")  # RFC 3207 §4.2
                reply = ok_reply(owed, caps)
                transcript.append(Sent(reply))
                out.extend(conn.send(reply))
                continue
            transcript.append(ev)
            if isinstance(ev, ConnectionClosed):
                dead = True
                return

    if sc.greet:
        out.extend(conn.send(GREETING))
    for step in sc.steps:
        if dead:
            break
        if step is TLS_UP:
            if conn.state is State.TLS:
                conn.tls_established()
                transcript.append(TLS_UP)
            continue
        if step is GREET:
            out.extend(conn.send(GREETING))
            drain(True)
            continue
        if step is EOF:
            conn.receive_data(b"")
            drain(True)
            continue
        assert isinstance(step, bytes)
        for chunk in splitter(step):
            if dead:
                break
            conn.receive_data(chunk)
            drain(False)
        drain(True)
    return Run(transcript, bytes(out), conn)


class ClientDriver:
    """Runs a client script: ``feed()`` server bytes, ``send()`` events."""

    def __init__(self, config: Config, splitter: Splitter) -> None:
        self.conn = Connection(Role.CLIENT, config)
        self.splitter = splitter
        self.transcript: list[object] = []
        self.out = bytearray()
        self.dead = False

    def send(self, event: Event) -> bytes:
        data = self.conn.send(event)
        self.out.extend(data)
        return data

    def feed(self, data: bytes) -> None:
        chunks = [b""] if data == b"" else self.splitter(data)
        for chunk in chunks:
            if self.dead:
                return
            self.conn.receive_data(chunk)
            while True:
                try:
                    ev = self.conn.next_event()
                except RemoteProtocolError:
                    self.transcript.append(Raised(None))
                    self.dead = True
                    return
                self.transcript.append(ev)
                if ev is NEED_DATA or ev is PAUSED or isinstance(ev, ConnectionClosed):
                    break

    def try_send(self, event: Event) -> None:
        """Send, recording a refusal (exception class name) in the transcript."""
        before = len(self.out)
        try:
            self.send(event)
        except LocalProtocolError as exc:
            assert len(self.out) == before
            self.transcript.append(Refused(type(exc).__name__))

    def replies(self) -> list[Reply]:
        return [e for e in self.transcript if isinstance(e, Reply)]


def drive_client(sc: Scenario, splitter: Splitter = whole) -> Run:
    assert sc.client_script is not None
    d = ClientDriver(sc.config, splitter)
    sc.client_script(d)
    return Run(d.transcript, bytes(d.out), d.conn)


def drive(sc: Scenario, splitter: Splitter = whole) -> Run:
    if sc.role is Role.CLIENT:
        return drive_client(sc, splitter)
    return drive_server(sc, splitter)


def events_of(run: Run) -> list[object]:
    """The normalized transcript without the application's replies."""
    return [e for e in normalize(run.transcript) if not isinstance(e, Sent)]


def sent(run: Run) -> list[Reply]:
    return [e.reply for e in run.transcript if isinstance(e, Sent)]


def messages(run: Run) -> list[object]:
    """End-of-content events: one per real end of data."""
    return [e for e in run.transcript if isinstance(e, (EndOfMessage, MessageRejected))]


def content(run: Run) -> bytes:
    return b"".join(e.data for e in run.transcript if isinstance(e, MessageData))


def after_prefix(run: Run) -> list[object]:
    evs = events_of(run)
    assert evs[: len(PREFIX_EVENTS)] == PREFIX_EVENTS, evs
    return evs[len(PREFIX_EVENTS) :]


def wire_replies(out: bytes) -> list[tuple[int, str | None]]:
    """(code, enhanced status) of every final reply line in ``out``."""
    res = []
    for line in out.split(b"\r\n"):
        m = re.match(rb"(\d{3}) (?:(\d\.\d{1,3}\.\d{1,3}) )?", line + b" ")
        if m:
            res.append((int(m.group(1)), m.group(2).decode() if m.group(2) else None))
    return res


def server_scenario(id: str, *body: Step, prefix: Sequence[Step] = PREFIX, **kw: object) -> Scenario:
    return Scenario(id=id, steps=(*prefix, *body), **kw)  # type: ignore[arg-type]


SCENARIOS: dict[str, Scenario] = {}


def scenario(sc: Scenario) -> Scenario:
    assert sc.id not in SCENARIOS, sc.id
    SCENARIOS[sc.id] = sc
    return sc


REJECT = Config()
NORMALIZE = Config(bare_newline="normalize")


def runs(sc: Scenario) -> list[Run]:
    """The scenario fed whole and byte by byte (row tests assert on both;
    test_F02 checks every split for identity)."""
    return [drive(sc, whole), drive(sc, bytewise)]


COMMANDS = (Ehlo, Helo, Mail, Rcpt, Data, Bdat, Rset, Noop, Quit, Vrfy, Expn, Help, StartTLS, Auth)


def assert_no_command_after_data(run: Run) -> None:
    """No byte of the body is parsed as a command: between the 354 and the end
    of content there is nothing but MessageData, and after it nothing at all
    (the rows' bodies end at the real end of data)."""
    evs = after_prefix(run)
    assert not [e for e in evs if isinstance(e, COMMANDS + (InvalidCommand, UnknownCommand))], evs


def assert_strict_reject(run: Run, reasons: set[str], text: str) -> None:
    """strict policy: one MessageRejected at the real end of data with
    550 5.5.2 (Postfix wording), nothing delivered, nothing parsed as command."""
    assert_no_command_after_data(run)
    ends = messages(run)
    assert len(ends) == 1, ends
    rej = ends[0]
    assert isinstance(rej, MessageRejected), rej
    assert rej.reason in reasons
    assert rej.reply.code == 550 and rej.reply.enhanced_status == "5.5.2"
    assert text in rej.reply.text
    assert not [e for e in run.transcript if isinstance(e, EndOfMessage)]
    assert sent(run)[-1] == rej.reply
    assert run.out.endswith(b"550 5.5.2 " + rej.reply.lines[0].encode() + b"\r\n")
    assert run.conn.state is State.READY  # the session goes on after the refusal


def assert_delivered(run: Run, body: bytes) -> None:
    assert_no_command_after_data(run)
    ends = messages(run)
    assert ends == [EndOfMessage()], ends
    assert content(run) == body
    assert run.out.endswith(b"250 2.0.0 Ok\r\n")


# --------------------------------------------------------------------------- S: smuggling

S01_BODY = (
    b"Subject: a\r\n\r\nbody\n.\nMAIL FROM:<admin@victim.example>\r\nRCPT TO:<b@y.example>\r\n"
    b"DATA\r\nFrom: admin@victim.example\r\n\r\nspoof\r\n.\r\n"
)
S01 = scenario(server_scenario("S-01", S01_BODY))
S01N = scenario(server_scenario("S-01/normalize", S01_BODY, config=NORMALIZE))


def test_S01_lf_dot_lf_is_not_end_of_data() -> None:
    for run in runs(S01):
        assert_strict_reject(run, {"bare-lf"}, "bare <LF> received")
    for run in runs(S01N):
        assert_no_command_after_data(run)
        assert len(messages(run)) == 1 and isinstance(messages(run)[0], EndOfMessage)
        body = content(run)
        assert b"MAIL FROM:<admin@victim.example>\r\nRCPT TO:<b@y.example>\r\nDATA\r\n" in body
        assert body.endswith(b"spoof\r\n")
        assert b"\n" not in body.replace(b"\r\n", b"")  # never a bare LF onward


S02_BODY = b"Subject: a\r\n\r\nTesting\n.\r\nNO SMUGGLING\r\n.\r\n"
S02 = scenario(server_scenario("S-02", S02_BODY))
S02N = scenario(server_scenario("S-02/normalize", S02_BODY, config=NORMALIZE))


def test_S02_lf_dot_crlf_is_not_end_of_data() -> None:
    for run in runs(S02):
        assert_strict_reject(run, {"bare-lf"}, "bare <LF> received")
    for run in runs(S02N):
        assert_no_command_after_data(run)
        assert messages(run) == [EndOfMessage()]
        body = content(run)
        assert body.startswith(b"Subject: a\r\n\r\nTesting\r\n")
        assert body.endswith(b"\r\nNO SMUGGLING\r\n")
        assert b"\n" not in body.replace(b"\r\n", b"")


S03 = scenario(server_scenario("S-03", b"body\r\n.\nMAIL FROM:<x@x>\r\n", b"\r\n.\r\n"))


def test_S03_crlf_dot_lf_is_not_end_of_data() -> None:
    for run in runs(S03):
        assert_strict_reject(run, {"bare-lf"}, "bare <LF> received")


S04 = scenario(server_scenario("S-04", b"body\r.\rMAIL FROM:<x@x>\r\n", b"\r\n.\r\n"))


def test_S04_cr_dot_cr_is_not_end_of_data() -> None:
    for run in runs(S04):
        assert_strict_reject(run, {"bare-cr"}, "bare <CR> received")


S05 = scenario(server_scenario("S-05", b"body\r.\n", b"\r\n.\r\n"))


def test_S05_cr_dot_lf_is_not_end_of_data() -> None:
    # Both a bare CR and a bare LF; the core reports one reason (the reply is
    # 550 5.5.2 either way).
    for run in runs(S05):
        assert_strict_reject(run, {"bare-cr", "bare-lf"}, "received")


S06A = scenario(server_scenario("S-06a", b"body\n.\r", b"\r\n.\r\n"))
S06B = scenario(server_scenario("S-06b", b"body\r.\r\n", b"\r\n.\r\n"))


def test_S06_lf_dot_cr_and_cr_dot_crlf_are_not_end_of_data() -> None:
    for run in runs(S06A):
        assert_strict_reject(run, {"bare-lf", "bare-cr"}, "received")
    for run in runs(S06B):
        # b"body\r." is one line holding a bare CR, not a line end.
        assert_strict_reject(run, {"bare-cr"}, "bare <CR> received")


S07 = scenario(server_scenario("S-07", b"body\r\n.\rMAIL FROM:<x@x>\r\n", b"\r\n.\r\n"))


def test_S07_crlf_dot_cr_is_not_end_of_data() -> None:
    for run in runs(S07):
        assert_strict_reject(run, {"bare-cr"}, "bare <CR> received")


S10 = scenario(server_scenario("S-10", b"..\r\n.foo\r\n...\r\n.\r\n"))


def test_S10_dot_stuffing_is_undone() -> None:
    for run in runs(S10):
        assert_delivered(run, b".\r\nfoo\r\n..\r\n")


S11 = scenario(server_scenario("S-11", b".\r\n"))


def test_S11_dot_right_after_354_is_an_empty_message() -> None:
    for run in runs(S11):
        assert after_prefix(run) == [EndOfMessage()]  # no MessageData at all
        assert_delivered(run, b"")


S12_SEGMENT = (
    b"\r\n.\r\nMAIL FROM:<admin@victim.example>\r\nRCPT TO:<b@y.example>\r\nDATA\r\n"
    b"From: admin@victim.example\r\n\r\nspoof\r\n.\r\n"
)
S12 = scenario(server_scenario("S-12", b"Subject: a\r\n\r\nbody", S12_SEGMENT))
S12_NOPIPE = scenario(
    server_scenario("S-12/no-pipelining", b"Subject: a\r\n\r\nbody", S12_SEGMENT,
                    caps=tuple(c for c in CAPS if c != "PIPELINING"))
)


def test_S12_data_pipelined_with_its_content_is_a_sync_error() -> None:
    for run in runs(S12):
        evs = after_prefix(run)
        # The real message, once; then MAIL and RCPT (PIPELINING allows them)...
        assert evs[:4] == [MessageData(data=b"Subject: a\r\n\r\nbody\r\n"), EndOfMessage(),
                           Mail(reverse_path="admin@victim.example"), Rcpt(forward_path="b@y.example")]
        # ... but bytes after DATA arrived before our 354: 554 5.5.0 and close.
        assert evs[-1] == Raised(Reply(code=554, lines=["Error: SMTP protocol synchronization"],
                                       enhanced_status="5.5.0"))
        assert len(messages(run)) == 1
        assert not any(isinstance(s, Reply) and s.code == 354 for s in sent(run)[4:])
        assert run.out.endswith(b"554 5.5.0 Error: SMTP protocol synchronization\r\n")
        assert run.conn.state is State.ERROR
    for run in runs(S12_NOPIPE):
        evs = after_prefix(run)
        # Without PIPELINING even MAIL must not be pipelined behind the end of
        # data: the MAIL line is reported (the events do not depend on how TCP
        # split the bytes, F-02), then the synchronization error closes.
        assert evs == [MessageData(data=b"Subject: a\r\n\r\nbody\r\n"), EndOfMessage(),
                       Mail(reverse_path="admin@victim.example"),
                       Raised(Reply(code=554, lines=["Error: SMTP protocol synchronization"],
                                    enhanced_status="5.5.0"))]


S13_CHUNK = b"x\r\n.\r\nMAIL FROM:<a>\r\n"  # the row's bytes: 21 octets
S13_BDAT = b"BDAT %d LAST\r\n" % len(S13_CHUNK)
S13 = scenario(server_scenario("S-13", S13_BDAT + S13_CHUNK, b"QUIT\r\n", prefix=PREFIX[:3]))
S13_NOCHUNKING = scenario(
    server_scenario("S-13/no-chunking", S13_BDAT + S13_CHUNK, b"QUIT\r\n", prefix=PREFIX[:3],
                    caps=tuple(c for c in CAPS if c != "CHUNKING"))
)
S13_BIG = 70_000
S13_OVERSIZE = scenario(
    server_scenario("S-13/oversize", b"BDAT %d LAST\r\n" % S13_BIG + b"y" * S13_BIG, b"QUIT\r\n",
                    prefix=PREFIX[:3], config=Config(max_message_size=65536),
                    caps=("PIPELINING", "CHUNKING", "SIZE 65536"))
)

QUIT_TAIL = [Quit(), ConnectionClosed()]


def test_S13_bdat_chunk_is_opaque() -> None:
    for run in runs(S13):
        evs = after_prefix_n(run, 3)
        assert evs == [Bdat(size=len(S13_CHUNK), last=True), MessageData(data=S13_CHUNK),
                       EndOfMessage(), *QUIT_TAIL]
        assert run.out.endswith(b"250 2.0.0 Ok\r\n221 2.0.0 Bye\r\n")
    for run in runs(S13_NOCHUNKING):
        # CHUNKING not advertised: 502, and the announced octets are still not commands.
        evs = after_prefix_n(run, 3)
        assert len(evs) == 3 and evs[1:] == QUIT_TAIL, evs
        assert isinstance(evs[0], InvalidCommand)
        assert (evs[0].reply.code, evs[0].reply.enhanced_status) == (502, "5.5.1")
    for run in runs(S13_OVERSIZE):
        evs = after_prefix_n(run, 3)
        assert len(evs) == 3 and evs[1:] == QUIT_TAIL, evs
        assert isinstance(evs[0], InvalidCommand)  # drained, then refused
        assert (evs[0].reply.code, evs[0].reply.enhanced_status) == (552, "5.3.4")
        assert content(run) == b""


def after_prefix_n(run: Run, n: int) -> list[object]:
    evs = events_of(run)
    assert evs[:n] == PREFIX_EVENTS[:n], evs
    return evs[n:]


S14_BODY = b"Subject: a\r\n\r\nhello\nworld\r\n.\r\n"
S14 = scenario(server_scenario("S-14", S14_BODY))
S14N = scenario(server_scenario("S-14/normalize", S14_BODY, config=NORMALIZE))


def test_S14_bare_lf_in_body() -> None:
    for run in runs(S14):
        assert_strict_reject(run, {"bare-lf"}, "bare <LF> received")
    for run in runs(S14N):
        assert_delivered(run, b"Subject: a\r\n\r\nhello\r\nworld\r\n")


S15 = scenario(Scenario(id="S-15", steps=(b"EHLO c.example\nMAIL FROM:<a@x.example>\r\n",)))
S15_NOSYNC = scenario(Scenario(id="S-15/no-sync", steps=(b"EHLO c.example\nMAIL FROM:<a@x.example>\r\n",),
                               config=Config(enforce_pipelining_sync=False)))
BARE_LF_CMD = Reply(code=500, lines=["Error: bare <LF> received"], enhanced_status="5.5.2")


def test_S15_bare_lf_in_command_line() -> None:
    for run in runs(S15):
        evs = events_of(run)
        assert not [e for e in evs if isinstance(e, COMMANDS)], evs
        first = evs[0]
        assert isinstance(first, InvalidCommand) and first.reply == BARE_LF_CMD, evs


def test_S15_bare_lf_in_command_line_without_sync_enforcement() -> None:
    # The same bytes with the RFC 2920 check off isolate the bare-LF rule: a
    # bare LF does not end a line, so the whole line up to the CRLF (EHLO and
    # the MAIL behind it) is one refused line: 500 5.5.2, counted once, and no
    # command from it is executed.
    for run in runs(S15_NOSYNC):
        evs = events_of(run)
        assert not [e for e in evs if isinstance(e, COMMANDS)], evs
        assert len(evs) == 1, evs
        assert isinstance(evs[0], InvalidCommand) and evs[0].reply == BARE_LF_CMD
        assert run.conn.error_count == 1
        assert run.conn.state is State.HELLO


S15_PIPELINED = scenario(server_scenario(
    "S-15/pipelined", b"RSET\nMAIL FROM:<admin@victim.example>\r\n", prefix=PREFIX[:1]))


def test_S15_nothing_after_a_bare_lf_runs_even_with_pipelining() -> None:
    # After EHLO with PIPELINING, "RSET<LF>MAIL FROM:<...>" must not run the MAIL.
    for run in runs(S15_PIPELINED):
        evs = after_prefix_n(run, 1)
        assert not [e for e in evs if isinstance(e, COMMANDS)], evs
        assert len(evs) == 1 and isinstance(evs[0], InvalidCommand) and evs[0].reply == BARE_LF_CMD, evs


S16 = scenario(server_scenario("S-16", b"MAIL FROM:<attacker\rX-Pwned: 1>\r\n", prefix=PREFIX[:1]))


def test_S16_bare_cr_in_envelope_address() -> None:
    for run in runs(S16):
        evs = after_prefix_n(run, 1)
        assert len(evs) == 1 and isinstance(evs[0], InvalidCommand), evs
        assert (evs[0].reply.code, evs[0].reply.enhanced_status) == (501, "5.1.7")
        assert run.out.endswith(b"501 5.1.7 " + evs[0].reply.lines[0].encode() + b"\r\n")
        assert run.conn.state is State.READY
    # The envelope event itself can never carry a control character.
    for bad in ("attacker\rX-Pwned: 1@x.example", "a\n@x.example", "a\x00@x.example", "a\x01b@x.example"):
        with pytest.raises(LocalProtocolError):
            Mail(reverse_path=bad)
        with pytest.raises(LocalProtocolError):
            Rcpt(forward_path=bad)


S17 = scenario(server_scenario("S-17", b"line1\rline2\r\n.\r\n"))


def test_S17_bare_cr_in_body() -> None:
    # The core's default: 550 5.5.2 after the real end of data (not 421).
    for run in runs(S17):
        assert_strict_reject(run, {"bare-cr"}, "bare <CR> received")


S15_CR = scenario(server_scenario("S-15/bare-cr", b"NOOP x\ry\r\n", prefix=PREFIX[:1]))


def test_S15_bare_cr_in_command_line() -> None:
    for run in runs(S15_CR):
        evs = after_prefix_n(run, 1)
        assert len(evs) == 1 and isinstance(evs[0], InvalidCommand), evs
        assert (evs[0].reply.code, evs[0].reply.enhanced_status) == (500, "5.5.2")
        assert "bare <CR>" in evs[0].reply.text


# --------------------------------------------------------------------------- T: STARTTLS

SYNC_554 = Raised(Reply(code=554, lines=["Error: SMTP protocol synchronization"], enhanced_status="5.5.0"))
TLS_220 = Reply(code=220, lines=["Ready to start TLS"], enhanced_status="2.0.0")

T01 = scenario(server_scenario("T-01", b"STARTTLS\r\nRSET\r\n", TLS_UP, b"EHLO c.example\r\n", prefix=PREFIX[:1]))
# The same injection when the server was quick: 220 sent before RSET arrived
# (still in cleartext, before the handshake).
T01_LATE = scenario(server_scenario("T-01/after-220", b"STARTTLS\r\n", b"RSET\r\n", TLS_UP,
                                    b"EHLO c.example\r\n", prefix=PREFIX[:1]))


def assert_no_plaintext_crosses(run: Run, tail: tuple[type, ...]) -> None:
    evs = after_prefix_n(run, 1)
    assert not [e for e in evs if isinstance(e, tail)], evs
    assert evs[-1] == SYNC_554, evs
    assert TLS_UP not in run.transcript  # no hand-over after the violation
    assert run.conn.state is State.ERROR and not run.conn.tls_active
    with pytest.raises(LocalProtocolError):
        run.conn.tls_established()
    assert run.out.endswith(b"554 5.5.0 Error: SMTP protocol synchronization\r\n")


def test_T01_starttls_command_injection() -> None:
    # Stricter of the row's two options: leftover plaintext is a violation, 554 + close.
    for run in runs(T01):
        assert_no_plaintext_crosses(run, (Rset, Ehlo))
        assert b"220 2.0.0" not in run.out.split(b"250 8BITMIME\r\n", 1)[1]
    for run in runs(T01_LATE):
        assert_no_plaintext_crosses(run, (Rset, Ehlo))
        assert after_prefix_n(run, 1)[0] == StartTLS()
        assert TLS_220 in sent(run)


T02_TAIL = b"MAIL FROM:<attacker@evil.example>\r\nRCPT TO:<attacker@evil.example>\r\nDATA\r\n"
T02 = scenario(server_scenario("T-02", b"STARTTLS\r\n" + T02_TAIL, TLS_UP, prefix=PREFIX[:1]))
T02_CLEAN = scenario(server_scenario("T-02/clean", b"STARTTLS\r\n", TLS_UP,
                                     b"MAIL FROM:<attacker@evil.example>\r\n", prefix=PREFIX[:1]))


def test_T02_starttls_injection_of_a_transaction() -> None:
    for run in runs(T02):
        assert_no_plaintext_crosses(run, (Mail, Rcpt, Data))
    # After a clean hand-over: no transaction, no EHLO -> MAIL gets 503 5.5.1.
    for run in runs(T02_CLEAN):
        evs = after_prefix_n(run, 1)
        assert evs[:2] == [StartTLS(), TLS_UP]
        assert len(evs) == 3 and isinstance(evs[2], InvalidCommand), evs
        assert (evs[2].reply.code, evs[2].reply.enhanced_status) == (503, "5.5.1")
        assert run.conn.tls_active and run.conn.state is State.HELLO
        assert run.conn.recipients == () and len(run.conn.extensions) == 0


T03 = scenario(Scenario(id="T-03", steps=(b"EHLO a\r\n", b"MAIL FROM:<a@x>\r\n", b"STARTTLS\r\n")))
T03_TLS = scenario(Scenario(id="T-03/after-tls", steps=(
    b"EHLO a\r\n", b"MAIL FROM:<a@x>\r\n", b"RSET\r\n", b"STARTTLS\r\n", TLS_UP,
    b"RCPT TO:<b@y>\r\n", b"STARTTLS\r\n", b"EHLO a\r\n", b"STARTTLS\r\n")))


def test_T03_state_reset_after_starttls() -> None:
    # STARTTLS inside a transaction is refused (Postfix: 503 5.5.1 "MAIL
    # transaction in progress"), so no sender can cross the upgrade.
    for run in runs(T03):
        evs = events_of(run)
        assert evs[:2] == [Ehlo(domain="a"), Mail(reverse_path="a@x")]
        assert len(evs) == 3 and isinstance(evs[2], InvalidCommand), evs
        assert (evs[2].reply.code, evs[2].reply.enhanced_status) == (503, "5.5.1")
        assert run.conn.state is State.MAIL
    for run in runs(T03_TLS):
        evs = events_of(run)
        assert evs[:5] == [Ehlo(domain="a"), Mail(reverse_path="a@x"), Rset(), StartTLS(), TLS_UP]
        rcpt, starttls1, ehlo, starttls2 = evs[5:]
        # No transaction and no EHLO after TLS.
        assert isinstance(rcpt, InvalidCommand) and rcpt.reply.code == 503
        assert rcpt.reply.enhanced_status == "5.5.1"
        assert isinstance(starttls1, InvalidCommand) and starttls1.reply.code in (503, 554)
        assert ehlo == Ehlo(domain="a")
        assert isinstance(starttls2, InvalidCommand)
        assert (starttls2.reply.code, starttls2.reply.enhanced_status) == (554, "5.5.1")
        assert "TLS already active" in starttls2.reply.text
        post_tls_ehlo = [r for r in sent(run) if r.code == 250 and r.lines[0] == "mx.example"][-1]
        assert "STARTTLS" not in post_tls_ehlo.lines
        assert not run.conn.extensions.starttls


def test_T03_post_tls_ehlo_reply_must_not_offer_starttls() -> None:
    conn = Connection(Role.SERVER)
    conn.send(GREETING)
    for line in (b"EHLO a\r\n", b"STARTTLS\r\n"):
        conn.receive_data(line)
        owed = conn.next_event()
        conn.send(ok_reply(owed, CAPS))  # type: ignore[arg-type]
    assert conn.state is State.TLS and conn.next_event() is PAUSED
    conn.tls_established()
    conn.receive_data(b"EHLO a\r\n")
    assert conn.next_event() == Ehlo(domain="a")
    with pytest.raises(LocalProtocolError):
        conn.send(Reply(code=250, lines=["mx.example", "STARTTLS"]))
    assert conn.send(Reply(code=250, lines=["mx.example", "PIPELINING"])) == b"250-mx.example\r\n250 PIPELINING\r\n"


T04_CONFIG = Config(require_tls=True)
T04 = scenario(Scenario(id="T-04", config=T04_CONFIG, steps=(
    b"EHLO a\r\n", b"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n", b"MAIL FROM:<a@x.example>\r\n")))


def _t04_replies() -> list[InvalidCommand]:
    out: list[InvalidCommand] = []
    for run in runs(T04):
        evs = events_of(run)
        assert evs[0] == Ehlo(domain="a")
        assert len(evs) == 3 and all(isinstance(e, InvalidCommand) for e in evs[1:]), evs
        assert not [e for e in evs if isinstance(e, (Auth, Mail))]
        out.extend(e for e in evs[1:] if isinstance(e, InvalidCommand))
    return out


def test_T04_mail_requires_tls_and_no_auth_offered_in_cleartext() -> None:
    for mail in _t04_replies()[1::2]:
        assert (mail.reply.code, mail.reply.enhanced_status) == (530, "5.7.0")
        assert mail.reply.text == "Must issue a STARTTLS command first"
    # The plaintext EHLO reply must not advertise AUTH when TLS is required.
    conn = Connection(Role.SERVER, T04_CONFIG)
    conn.send(GREETING)
    conn.receive_data(b"EHLO a\r\n")
    assert conn.next_event() == Ehlo(domain="a")
    with pytest.raises(LocalProtocolError):
        conn.send(Reply(code=250, lines=["mx.example", "STARTTLS", "AUTH PLAIN"]))
    conn.send(Reply(code=250, lines=["mx.example", "STARTTLS"]))
    assert conn.state is State.READY


def test_T04_auth_before_tls_gets_encryption_required() -> None:
    for auth in _t04_replies()[0::2]:
        assert (auth.reply.code, auth.reply.enhanced_status) in ((538, "5.7.11"), (530, "5.7.0"))


T05 = scenario(server_scenario("T-05", b"STARTTLS now\r\n", b"NOOP\r\n", prefix=PREFIX[:1]))


def test_T05_starttls_with_argument() -> None:
    for run in runs(T05):
        evs = after_prefix_n(run, 1)
        assert len(evs) == 2 and isinstance(evs[0], InvalidCommand) and evs[1] == Noop(), evs
        assert evs[0].reply == Reply(code=501, lines=["Syntax: STARTTLS"], enhanced_status="5.5.4")
        assert b"501 5.5.4 Syntax: STARTTLS\r\n250 2.0.0 Ok\r\n" in run.out
        assert run.conn.state is State.READY and not run.conn.tls_active
        assert run.conn.extensions.starttls


# --------------------------------------------------------------------------- T: client side

def client_scenario(id: str, script: Callable[[ClientDriver], None], config: Config | None = None) -> Scenario:
    return scenario(Scenario(id=id, steps=(), role=Role.CLIENT, config=config or Config(),
                             client_script=script))


def greet_and_ehlo(d: ClientDriver, ehlo_reply: bytes) -> None:
    d.feed(b"220 mx.example ESMTP\r\n")
    d.send(Ehlo(domain="c.example"))
    d.feed(ehlo_reply)


def replies_of(run: Run) -> list[Reply]:
    return [e for e in run.transcript if isinstance(e, Reply)]


T06_INJECTION = b"220 Ready to start TLS\r\n250-example.org\r\n250 AUTH LOGIN\r\n"


def _t06(d: ClientDriver) -> None:
    greet_and_ehlo(d, b"250-mx.example\r\n250-PIPELINING\r\n250 STARTTLS\r\n")
    d.send(StartTLS())
    d.feed(T06_INJECTION)


def _t06_clean(d: ClientDriver) -> None:
    greet_and_ehlo(d, b"250-mx.example\r\n250-PIPELINING\r\n250 STARTTLS\r\n")
    d.send(StartTLS())
    d.feed(b"220 2.0.0 Ready to start TLS\r\n")
    assert d.conn.state is State.TLS and d.conn.next_event() is PAUSED
    d.conn.tls_established()
    d.transcript.append(TLS_UP)
    d.try_send(Auth(mechanism="LOGIN"))  # nothing known about the server yet
    d.send(Ehlo(domain="c.example"))
    d.feed(b"250-mx.example\r\n250 AUTH SCRAM-SHA-256\r\n")
    d.try_send(Auth(mechanism="LOGIN"))


T06 = client_scenario("T-06", _t06)
T06_CLEAN = client_scenario("T-06/clean", _t06_clean)


def test_T06_client_starttls_response_injection() -> None:
    for run in runs(T06):
        assert run.transcript[-1] == Raised(None)
        assert not [r for r in replies_of(run) if r.code == 250 and "AUTH LOGIN" in r.lines]
        assert run.conn.state is State.ERROR
        assert not run.conn.extensions.auth
        with pytest.raises(LocalProtocolError):
            run.conn.tls_established()
        assert run.out == b"EHLO c.example\r\nSTARTTLS\r\n"
    for run in runs(T06_CLEAN):
        # Capabilities after TLS come only from the post-TLS EHLO reply.
        assert run.conn.tls_active and run.conn.extensions.auth_mechanisms == ("SCRAM-SHA-256",)
        assert [e for e in run.transcript if isinstance(e, Refused)] == [
            Refused("LocalProtocolError"), Refused("LocalProtocolError")]
        assert run.out == b"EHLO c.example\r\nSTARTTLS\r\nEHLO c.example\r\n"


def _t08(d: ClientDriver) -> None:
    greet_and_ehlo(d, b"250-mx.example\r\n250 AUTH PLAIN LOGIN\r\n")
    d.try_send(StartTLS())
    d.try_send(Auth(mechanism="PLAIN", initial_response=b"\x00alice\x00secret"))
    d.try_send(Mail(reverse_path="a@x.example"))


def _t08_d1(d: ClientDriver) -> None:
    greet_and_ehlo(d, b"502 5.5.1 unimplemented\r\n")
    d.send(Helo(domain="c.example"))
    d.feed(b"250 mx.example\r\n")
    d.try_send(Auth(mechanism="PLAIN", initial_response=b"\x00alice\x00secret"))
    d.try_send(Mail(reverse_path="a@x.example"))


T08 = client_scenario("T-08", _t08, Config(require_tls=True))
T08_D1 = client_scenario("T-08/D_1", _t08_d1, Config(require_tls=True))
T08_OPPORTUNISTIC = client_scenario("T-08/opportunistic", _t08)


def test_T08_client_capability_stripping() -> None:
    for run in runs(T08):
        assert [e for e in run.transcript if isinstance(e, Refused)] == [
            Refused("LocalProtocolError"), Refused("TLSRequiredError"), Refused("TLSRequiredError")]
        assert run.out == b"EHLO c.example\r\n"
    for run in runs(T08_D1):
        assert [e for e in run.transcript if isinstance(e, Refused)] == [
            Refused("TLSRequiredError"), Refused("TLSRequiredError")]
        assert run.out == b"EHLO c.example\r\nHELO c.example\r\n"
    for run in runs(T08_OPPORTUNISTIC):
        # Opportunistic (the default): MAIL may go out in cleartext, AUTH never.
        assert [e for e in run.transcript if isinstance(e, Refused)] == [
            Refused("LocalProtocolError"), Refused("TLSRequiredError")]
        assert run.out == b"EHLO c.example\r\nMAIL FROM:<a@x.example>\r\n"
        assert b"AUTH" not in run.out


def _t09(refusal: bytes) -> Callable[[ClientDriver], None]:
    def script(d: ClientDriver) -> None:
        greet_and_ehlo(d, b"250-mx.example\r\n250-AUTH PLAIN LOGIN\r\n250 STARTTLS\r\n")
        d.send(StartTLS())
        d.feed(refusal)
        d.try_send(Auth(mechanism="PLAIN", initial_response=b"\x00alice\x00secret"))
        d.try_send(Mail(reverse_path="a@x.example"))

    return script


T09_454 = client_scenario("T-09/454", _t09(b"454 TLS not available due to temporary reason\r\n"),
                          Config(require_tls=True))
T09_502 = client_scenario("T-09/502", _t09(b"502 Command not implemented\r\n"), Config(require_tls=True))


def test_T09_client_starttls_refused() -> None:
    for sc, code in ((T09_454, 454), (T09_502, 502)):
        for run in runs(sc):
            assert replies_of(run)[-1].code == code
            assert [e for e in run.transcript if isinstance(e, Refused)] == [
                Refused("TLSRequiredError"), Refused("TLSRequiredError")]
            assert run.out == b"EHLO c.example\r\nSTARTTLS\r\n"
            assert not run.conn.tls_active


def _t10(d: ClientDriver) -> None:
    greet_and_ehlo(d, b"250-mx\r\n250-AUTH PLAIN\r\n250 STARTTLS\r\n")
    d.send(StartTLS())
    d.feed(b"220 go ahead\r\n")
    d.conn.tls_established()
    d.transcript.append(TLS_UP)
    d.try_send(Auth(mechanism="PLAIN", initial_response=b"\x00u\x00p"))  # stale knowledge
    d.send(Ehlo(domain="c.example"))
    d.feed(b"250-mx\r\n250-AUTH SCRAM-SHA-256\r\n250 STARTTLS\r\n")
    d.try_send(Auth(mechanism="PLAIN", initial_response=b"\x00u\x00p"))
    d.try_send(StartTLS())
    d.send(Auth(mechanism="SCRAM-SHA-256", initial_response=b"n,,n=u,r=abc"))


T10 = client_scenario("T-10", _t10)


def test_T10_client_discards_pre_tls_capabilities() -> None:
    for run in runs(T10):
        assert [e for e in run.transcript if isinstance(e, Refused)] == [
            Refused("LocalProtocolError"), Refused("LocalProtocolError"), Refused("LocalProtocolError")]
        assert run.conn.extensions.auth_mechanisms == ("SCRAM-SHA-256",)
        assert run.out.endswith(b"STARTTLS\r\nEHLO c.example\r\nAUTH SCRAM-SHA-256 "
                               + base64.b64encode(b"n,,n=u,r=abc") + b"\r\n")
        assert run.out.count(b"AUTH") == 1


def _t11(d: ClientDriver) -> None:
    greet_and_ehlo(d, b"250-mx.example\r\n250 PIPELINING\r\n")
    d.feed(b"250 2.1.0 Ok\r\n")
    d.try_send(Mail(reverse_path="a@x.example"))
    d.feed(b"550 5.7.1 no\r\n")


T11 = client_scenario("T-11", _t11)


def test_T11_client_unsolicited_reply() -> None:
    for run in runs(T11):
        assert run.transcript[-2:] == [Raised(None), Refused("LocalProtocolError")]
        assert not [r for r in replies_of(run) if r.enhanced_status in ("2.1.0", "5.7.1")]
        assert run.out == b"EHLO c.example\r\n"
        assert run.conn.state is State.ERROR


def test_T11_client_unsolicited_reply_buffered_before_next_command() -> None:
    conn = Connection(Role.CLIENT)
    conn.receive_data(b"220 mx.example ESMTP\r\n")
    assert isinstance(conn.next_event(), Reply) and conn.next_event() is NEED_DATA
    conn.send(Ehlo(domain="c.example"))
    conn.receive_data(b"250-mx.example\r\n250 PIPELINING\r\n")
    assert isinstance(conn.next_event(), Reply) and conn.next_event() is NEED_DATA
    # The stray reply arrives (an adapter's reader buffers it) while nothing is pending.
    conn.receive_data(b"250 2.1.0 Ok\r\n")
    try:
        conn.send(Mail(reverse_path="a@x.example"))
    except LocalProtocolError:
        return  # refusing to send is fine too
    conn.receive_data(b"550 5.7.1 no\r\n")
    with pytest.raises(RemoteProtocolError):
        ev = conn.next_event()
        assert not (isinstance(ev, Reply) and ev.code == 250), f"stray reply paired with MAIL: {ev!r}"


# --------------------------------------------------------------------------- P: pregreet, pipelining

P01_EARLY = b"EHLO bot.example\r\n"
P01_DROP = scenario(Scenario(id="P-01/drop", greet=False, steps=(P01_EARLY, GREET, b"MAIL FROM:<a@x.example>\r\n")))
P01_ENFORCE = scenario(Scenario(id="P-01/enforce", greet=False, config=Config(pregreet="enforce"),
                                steps=(P01_EARLY, GREET, b"EHLO bot.example\r\n", b"QUIT\r\n")))
P01_IGNORE = scenario(Scenario(id="P-01/ignore", greet=False, config=Config(pregreet="ignore"),
                               steps=(P01_EARLY, GREET, b"MAIL FROM:<a@x.example>\r\n")))


def test_P01_pregreet_early_talker() -> None:
    assert Config().pregreet == "drop"
    for run in runs(P01_DROP):
        evs = events_of(run)
        # Nothing was processed before the greeting; then 521 and close.
        assert len(evs) == 1 and isinstance(evs[0], Raised), evs
        assert evs[0].reply is not None and evs[0].reply.code == 521
        assert (evs[0].reply.enhanced_status or "5")[0] == "5"
        assert run.out.startswith(b"220 mx.example ESMTP\r\n521 ")
        assert run.conn.state is State.ERROR
    for run in runs(P01_ENFORCE):
        evs = events_of(run)
        assert len(evs) == 4 and evs[2:] == [Quit(), ConnectionClosed()], evs
        for refused in evs[:2]:  # the early EHLO and the later one: 550
            assert isinstance(refused, InvalidCommand)
            assert (refused.reply.code, refused.reply.enhanced_status) == (550, "5.5.1")
        assert run.out.endswith(b"221 2.0.0 Bye\r\n")
    for run in runs(P01_IGNORE):
        evs = events_of(run)
        assert evs == [Ehlo(domain="bot.example"), Mail(reverse_path="a@x.example")]


def test_P01_early_bytes_wait_for_the_greeting() -> None:
    policies: tuple[PregreetPolicy, ...] = ("drop", "enforce", "ignore")
    for policy in policies:
        conn = Connection(Role.SERVER, Config(pregreet=policy))
        conn.receive_data(P01_EARLY)
        assert [conn.next_event() for _ in range(3)] == [PAUSED] * 3
        assert conn.trailing_data == (P01_EARLY, False)
        assert conn.reply_owed is None and conn.deadline() is None


P02_SEGMENT = b"EHLO c.example\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n"
P02 = scenario(Scenario(id="P-02", steps=(P02_SEGMENT,)))
P02_OFF = scenario(Scenario(id="P-02/sync-off", steps=(P02_SEGMENT,), config=Config(enforce_pipelining_sync=False)))
# Every group-ending command (RFC 2920 §3.1) followed by more input in the same
# read, with PIPELINING negotiated.
P02_ENDERS = {
    name: scenario(server_scenario(f"P-02/{name}", line + b"NOOP\r\n", prefix=PREFIX[:1]))
    for name, line in (("EHLO", b"EHLO c.example\r\n"), ("HELO", b"HELO c.example\r\n"),
                       ("NOOP", b"NOOP\r\n"), ("VRFY", b"VRFY a\r\n"), ("EXPN", b"EXPN a\r\n"),
                       ("QUIT", b"QUIT\r\n"), ("HELP", b"HELP\r\n"))
}
P02_GROUP_OK = scenario(server_scenario("P-02/group-ok", b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nRSET\r\n",
                                        prefix=PREFIX[:1]))


def test_P02_pipelining_after_ehlo_is_a_sync_error() -> None:
    for run in runs(P02):
        evs = events_of(run)
        assert not [e for e in evs if isinstance(e, (Mail, Rcpt))], evs
        assert evs[-1] == SYNC_554
        assert run.out == b"220 mx.example ESMTP\r\n554 5.5.0 Error: SMTP protocol synchronization\r\n"
        assert run.conn.state is State.ERROR
    # Configurable: with the check off the group is processed in order.
    for run in runs(P02_OFF):
        assert events_of(run) == [Ehlo(domain="c.example"), Mail(reverse_path="a@x"), Rcpt(forward_path="b@y")]
        assert run.out.endswith(b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n")


@pytest.mark.parametrize("name", ["EHLO", "HELO", "NOOP", "VRFY", "EXPN", "QUIT"])
def test_P02_every_group_ender_must_be_last(name: str) -> None:
    for run in runs(P02_ENDERS[name]):
        evs = after_prefix_n(run, 1)
        assert Noop() not in evs[:-1] or name == "NOOP"
        assert evs[-1] == SYNC_554, evs
        assert run.out.endswith(b"554 5.5.0 Error: SMTP protocol synchronization\r\n")


def test_P02_help_is_not_a_group_ender_but_pipelining_goes_on() -> None:
    # RFC 2920 §3.1 does not list HELP; with PIPELINING a NOOP may follow it.
    for run in runs(P02_ENDERS["HELP"]):
        assert after_prefix_n(run, 1) == [Help(), Noop()]
    for run in runs(P02_GROUP_OK):
        assert after_prefix_n(run, 1) == [Mail(reverse_path="a@x"), Rcpt(forward_path="b@y"), Rset()]


# --------------------------------------------------------------------------- C: client command injection

def client_after_ehlo(ehlo_reply: bytes = b"250-mx.example\r\n250-PIPELINING\r\n250-SIZE 1000000\r\n"
                      b"250-DSN\r\n250 8BITMIME\r\n", config: Config | None = None) -> Connection:
    conn = Connection(Role.CLIENT, config)
    conn.receive_data(b"220 mx.example ESMTP\r\n")
    assert isinstance(conn.next_event(), Reply)
    conn.send(Ehlo(domain="c.example"))
    conn.receive_data(ehlo_reply)
    assert isinstance(conn.next_event(), Reply) and conn.next_event() is NEED_DATA
    return conn


def assert_refused(conn: Connection, make: Callable[[], Event]) -> None:
    """Building or sending the event raises ValueError (LocalProtocolError);
    nothing is written and the connection is still usable."""
    state = conn.state
    with pytest.raises(ValueError):
        conn.send(make())
    assert conn.state is state and conn.pending == ()
    assert conn.send(Noop()) == b"NOOP\r\n"
    conn.receive_data(b"250 2.0.0 Ok\r\n")
    assert conn.next_event() == Reply(code=250, lines=["Ok"], enhanced_status="2.0.0")


C01_CASES: dict[str, Callable[[], Event]] = {
    "helo": lambda: Helo(domain="helo\nX-INJECTED"),
    "mail-option": lambda: Mail(reverse_path="hi@me.com", params={"X-OPTION\nX-INJECTED-1": None}),
    "local-hostname": lambda: Ehlo(domain="hi\nX-INJECTED"),
    "vrfy": lambda: Vrfy(argument="a\nX-INJECTED"),
    "expn": lambda: Expn(argument="a\r\nX-INJECTED"),
    "help": lambda: Help(argument="a\nX-INJECTED"),
    "rcpt": lambda: Rcpt(forward_path="b@y.example\nX-INJECTED"),
}


@pytest.mark.parametrize("case", sorted(C01_CASES))
def test_C01_client_newline_injection(case: str) -> None:
    assert issubclass(LocalProtocolError, ValueError)
    assert_refused(client_after_ehlo(), C01_CASES[case])


C02_CONTROLS = [chr(c) for c in range(0x20)] + ["\x7f"]


def test_C02_client_control_characters_in_arguments() -> None:
    conn = client_after_ehlo()
    assert_refused(conn, lambda: Mail(reverse_path="test@example.com\r\nRCPT TO:<hijacker@example.com>"))
    for tail in ("\rRCPT TO:<h@e.com", "\nRCPT TO:<h@e.com", "\x00", "\tEVIL", "\x7f"):
        assert_refused(conn, lambda: Mail(reverse_path="a@b.com" + tail))
    for ch in C02_CONTROLS:
        for make in (
            lambda: Mail(reverse_path=f"a{ch}b@x.example"),
            lambda: Rcpt(forward_path=f"a@x{ch}.example"),
            lambda: Vrfy(argument=f"a{ch}b"),
            lambda: Expn(argument=f"a{ch}b"),
            lambda: Help(argument=f"a{ch}b"),
            lambda: Ehlo(domain=f"c{ch}.example"),
            lambda: Mail(reverse_path="a@x.example", params={"ENVID": f"a{ch}b"}),
            lambda: Mail(reverse_path="a@x.example", params={f"X{ch}": None}),
        ):
            assert_refused(conn, make)


def test_C03_client_esmtp_parameter_injection() -> None:
    conn = client_after_ehlo()
    assert_refused(conn, lambda: Mail(reverse_path="a@x.example",
                                      params={"SIZE": "1000\r\nRCPT TO:<attacker@evil.example>"}))
    for bad in ("1e9", "-1", "1 000", "9" * 21, "0x10", ""):
        assert_refused(conn, lambda: Mail(reverse_path="a@x.example", params={"SIZE": bad}))
    # DSN values must be xtext (RFC 3461 §4): "+" only as "+HH", no "=" / SP.
    for bad in ("a+zz", "a=b", "a b"):
        assert_refused(conn, lambda: Mail(reverse_path="a@x.example", params={"ENVID": bad}))
        assert_refused(conn, lambda: Rcpt(forward_path="b@y.example", params={"ORCPT": f"rfc822;{bad}@y"}))
    assert conn.send(Mail(reverse_path="a@x.example", params={"SIZE": "1000", "ENVID": "a+2Bb"})) == \
        b"MAIL FROM:<a@x.example> SIZE=1000 ENVID=a+2Bb\r\n"


def test_C04_client_ehlo_argument_injection() -> None:
    conn = Connection(Role.CLIENT)
    conn.receive_data(b"220 mx.example ESMTP\r\n")
    assert isinstance(conn.next_event(), Reply)
    for bad in ("client.example\r\nMAIL FROM:<x@x>", "client example", "bad_domain!", "a..b",
                "-a.example", "[300.1.1.1]", "[IPv6:zz::1]", "x" * 256):
        with pytest.raises(ValueError):
            conn.send(Ehlo(domain=bad))
        with pytest.raises(ValueError):
            conn.send(Helo(domain=bad))
        assert conn.pending == () and conn.state is State.HELLO
    assert conn.send(Ehlo(domain="[192.0.2.1]")) == b"EHLO [192.0.2.1]\r\n"


C06_NOUTF8 = tuple(c for c in CAPS if c != "SMTPUTF8")
C06 = scenario(server_scenario("C-06", b"MAIL FROM:<j\xc3\xb6rg@x.example>\r\n", prefix=PREFIX[:1], caps=C06_NOUTF8))
C06_NOPARAM = scenario(server_scenario("C-06/no-param", b"MAIL FROM:<j\xc3\xb6rg@x.example>\r\n",
                                       b"RCPT TO:<j\xc3\xb6rg@y.example>\r\n", prefix=PREFIX[:1]))
C06_OK = scenario(server_scenario("C-06/smtputf8", b"MAIL FROM:<j\xc3\xb6rg@x.example> SMTPUTF8\r\n",
                                  b"RCPT TO:<\xc3\xa5sa@y.example>\r\n", prefix=PREFIX[:1]))


def test_C06_utf8_without_smtputf8() -> None:
    for sc in (C06, C06_NOPARAM):
        for run in runs(sc):
            evs = after_prefix_n(run, 1)
            assert not [e for e in evs if isinstance(e, (Mail, Rcpt))], evs
            assert isinstance(evs[0], InvalidCommand)
            assert (evs[0].reply.code, evs[0].reply.enhanced_status) == (553, "5.6.7")
    for run in runs(C06_OK):
        assert after_prefix_n(run, 1) == [Mail(reverse_path="jörg@x.example", params={"SMTPUTF8": None}),
                                          Rcpt(forward_path="åsa@y.example")]
    # Client: refuse unless SMTPUTF8 was advertised *and* requested.
    plain = client_after_ehlo(b"250-mx.example\r\n250 8BITMIME\r\n")
    assert_refused(plain, lambda: Mail(reverse_path="jörg@x.example"))
    assert_refused(plain, lambda: Mail(reverse_path="jörg@x.example", params={"SMTPUTF8": None}))
    assert_refused(plain, lambda: Vrfy(argument="jörg"))
    utf8 = client_after_ehlo(b"250-mx.example\r\n250 SMTPUTF8\r\n")
    assert_refused(utf8, lambda: Mail(reverse_path="jörg@x.example"))
    assert utf8.send(Mail(reverse_path="jörg@x.example", params={"SMTPUTF8": None})) == \
        "MAIL FROM:<jörg@x.example> SMTPUTF8\r\n".encode()


# --------------------------------------------------------------------------- R: resource limits

LINE_TOO_LONG = Reply(code=500, lines=["Error: line too long"], enhanced_status="5.5.2")

R01 = scenario(server_scenario("R-01", b"NOOP " + b"A" * 600 + b"\r\n", b"NOOP\r\n", prefix=PREFIX[:1]))
R01_HUGE = scenario(server_scenario("R-01/over-hard-cap", b"NOOP " + b"A" * 5000 + b"\r\n", b"NOOP\r\n",
                                    prefix=PREFIX[:1]))
R01_MAIL = scenario(server_scenario("R-01/mail-allowance", b"MAIL FROM:<a@x.example> X-LONG=" + b"v" * 600 + b"\r\n",
                                    b"NOOP\r\n", prefix=PREFIX[:1]))


def test_R01_command_line_limit() -> None:
    for sc in (R01, R01_HUGE):
        for run in runs(sc):
            evs = after_prefix_n(run, 1)
            assert len(evs) == 2 and isinstance(evs[0], InvalidCommand) and evs[1] == Noop(), evs
            assert evs[0].reply == LINE_TOO_LONG
            assert run.out.endswith(b"500 5.5.2 Error: line too long\r\n250 2.0.0 Ok\r\n")
            assert run.conn.error_count == 1  # the whole long line is one error
    # MAIL gets room for parameters: refused for the unknown option, not for length.
    for run in runs(R01_MAIL):
        evs = after_prefix_n(run, 1)
        assert isinstance(evs[0], InvalidCommand) and evs[0].reply.code == 555 and evs[1] == Noop()


def test_R01_receive_buffer_stays_bounded_on_long_lines() -> None:
    conn = Connection(Role.SERVER)
    conn.send(GREETING)
    line = b"NOOP " + b"A" * 20_000 + b"\r\n"
    peak = 0
    for i in range(0, len(line), 100):
        conn.receive_data(line[i : i + 100])
        ev = conn.next_event()
        peak = max(peak, len(conn.trailing_data[0]))
        if ev is not NEED_DATA:
            break
    assert isinstance(ev, InvalidCommand) and ev.reply == LINE_TOO_LONG
    assert peak <= Config().max_mail_rcpt_line + 100


R02_INPUT = b"A" * 10_000_000
R02 = scenario(Scenario(id="R-02", steps=(R02_INPUT,)))


def test_R02_endless_line_in_64k_chunks() -> None:
    conn = Connection(Role.SERVER)
    conn.send(GREETING)
    chunk = 64 * 1024
    fed = 0
    with pytest.raises(RemoteProtocolError) as info:
        while fed < len(R02_INPUT):
            conn.receive_data(R02_INPUT[fed : fed + chunk])
            fed += chunk
            assert conn.next_event() is NEED_DATA
            assert len(conn.trailing_data[0]) <= Config().max_mail_rcpt_line + chunk
    # After the discard budget (64 KiB), not after 10 MB.
    assert fed <= Config().max_discard + 2 * chunk
    assert info.value.reply == LINE_TOO_LONG
    assert conn.send(info.value.reply) == b"500 5.5.2 Error: line too long\r\n"
    assert conn.state is State.ERROR
    conn.receive_data(b"A" * chunk)  # nothing more is buffered
    assert len(conn.trailing_data[0]) <= Config().max_mail_rcpt_line + chunk


def test_R02_endless_line_in_one_read() -> None:
    conn = Connection(Role.SERVER)
    conn.send(GREETING)
    conn.receive_data(b"A" * (1 << 20))
    with pytest.raises(RemoteProtocolError):
        ev = conn.next_event()
        assert ev is not NEED_DATA, "1 MiB without LF (budget 64 KiB) answered with NEED_DATA"


R03 = scenario(server_scenario("R-03", b"A" * 2000 + b"\r\n.\r\n"))
R03_EDGE = scenario(server_scenario("R-03/998", b"A" * 998 + b"\r\n.\r\n"))
R03_EDGE2 = scenario(server_scenario("R-03/999", b"A" * 999 + b"\r\n.\r\n"))


def test_R03_text_line_limit_in_data() -> None:
    for sc in (R03, R03_EDGE2):
        for run in runs(sc):
            assert_no_command_after_data(run)
            ends = messages(run)
            assert len(ends) == 1 and isinstance(ends[0], MessageRejected), ends
            assert ends[0].reason == "line"
            assert (ends[0].reply.code, ends[0].reply.enhanced_status) == (500, "5.5.2")
            assert run.out.endswith(b"500 5.5.2 " + ends[0].reply.lines[0].encode() + b"\r\n")
            assert run.conn.state is State.READY
    for run in runs(R03_EDGE):  # 998 + CRLF = 1000 octets: the RFC limit, accepted
        assert_delivered(run, b"A" * 998 + b"\r\n")


R04_CAPS = ("PIPELINING", "SIZE 65536")
R04_CONFIG = Config(max_message_size=65536)


def _body(n: int) -> bytes:
    """Content of exactly n octets (CRLF lines of 100 octets, then a short one)."""
    lines, rest = divmod(n, 100)
    assert rest >= 3
    return (b"x" * 98 + b"\r\n") * lines + b"x" * (rest - 2) + b"\r\n"


R04A = scenario(server_scenario("R-04a", b"MAIL FROM:<a@x> SIZE=99999999999\r\n", prefix=PREFIX[:1]))
R04B = scenario(server_scenario("R-04b", b"MAIL FROM:<a@x> SIZE=1e9\r\n", prefix=PREFIX[:1]))
R04C = scenario(server_scenario("R-04c", b"MAIL FROM:<a@x> SIZE=" + b"9" * 5000 + b"\r\n", prefix=PREFIX[:1]))
R04C_LONG = scenario(server_scenario("R-04c/long-lines", b"MAIL FROM:<a@x> SIZE=" + b"9" * 5000 + b"\r\n",
                                     prefix=PREFIX[:1], config=Config(max_mail_rcpt_line=8192)))
R04D = scenario(server_scenario("R-04d", _body(65537) + b".\r\n", config=R04_CONFIG, caps=R04_CAPS))
R04D_OK = scenario(server_scenario("R-04d/at-limit", _body(65536) + b".\r\n", config=R04_CONFIG, caps=R04_CAPS))


def _single_refusal(sc: Scenario) -> tuple[int, str | None]:
    codes = set()
    for run in runs(sc):
        evs = after_prefix_n(run, 1)
        assert len(evs) == 1 and isinstance(evs[0], InvalidCommand), evs
        codes.add((evs[0].reply.code, evs[0].reply.enhanced_status))
    assert len(codes) == 1
    return codes.pop()


def test_R04_message_size() -> None:
    assert _single_refusal(R04A) == (552, "5.3.4")
    assert _single_refusal(R04B) == (501, "5.5.4")
    # (c) With the default limits the 5000-digit line is over the MAIL line cap
    # and refused as too long before any parsing; with room for it the
    # SIZE grammar (1*20DIGIT) refuses it.
    assert _single_refusal(R04C) == (500, "5.5.2")
    assert _single_refusal(R04C_LONG) == (501, "5.5.4")
    for run in runs(R04D):
        assert_no_command_after_data(run)
        ends = messages(run)
        assert len(ends) == 1 and isinstance(ends[0], MessageRejected) and ends[0].reason == "size"
        assert (ends[0].reply.code, ends[0].reply.enhanced_status) == (552, "5.3.4")
        assert len(content(run)) <= 65536  # storing stops at the limit
        assert run.out.endswith(b"552 5.3.4 " + ends[0].reply.lines[0].encode() + b"\r\n")
    for run in runs(R04D_OK):
        assert_delivered(run, _body(65536))


R05_RCPTS = tuple(b"RCPT TO:<r%d@y.example>\r\n" % n for n in range(1, 1002))
R05 = scenario(server_scenario("R-05", *R05_RCPTS, b"DATA\r\n", prefix=PREFIX[:2]))


def test_R05_recipient_limit() -> None:
    for run in runs(R05):
        evs = after_prefix_n(run, 2)
        assert evs[:1000] == [Rcpt(forward_path=f"r{n}@y.example") for n in range(1, 1001)]
        extra = evs[1000]
        assert isinstance(extra, InvalidCommand)
        assert (extra.reply.code, extra.reply.enhanced_status) == (452, "4.5.3")
        assert evs[1001:] == [Data()]  # the transaction stays usable
        assert len(run.conn.recipients) == 1000
        assert run.conn.error_count == 1  # overshoot counts as an error
        assert run.out.endswith(b"452 4.5.3 Error: too many recipients\r\n354 End data with <CR><LF>.<CR><LF>\r\n")
    with pytest.raises(ValueError):
        Config(max_recipients=99)


def _domain(n: int) -> str:
    labels, left = [], n
    while left > 0:
        size = min(63, left)
        if 0 < left - size < 2:  # keep room for ".x"
            size -= 2
        labels.append("d" * size)
        left -= size + 1
    out = ".".join(labels)
    assert len(out) == n, (len(out), n)
    return out


def _mail_run(path: str, verb: bytes = b"MAIL FROM:") -> list[object]:
    steps: tuple[Step, ...] = (PREFIX[0], verb + b"<" + path.encode() + b">\r\n")
    if verb.startswith(b"RCPT"):
        steps = (PREFIX[0], PREFIX[1], steps[1])
    return events_of(drive(Scenario(id="R-06", steps=steps)))[-1:]


@pytest.mark.parametrize("path", [
    "a" * 65 + "@x.example",                      # local part 65
    "a@" + _domain(256),                          # domain 256
    "a" * 64 + "@" + _domain(192),                # mailbox 257 octets
])
def test_R06_path_limits(path: str) -> None:
    for verb in (b"MAIL FROM:", b"RCPT TO:"):
        (ev,) = _mail_run(path, verb)
        assert isinstance(ev, InvalidCommand), ev
        assert (ev.reply.code, ev.reply.enhanced_status) in ((501, "5.1.7"), (553, "5.1.3"), (501, "5.1.3"))


@pytest.mark.parametrize("path", ["a" * 64 + "@x.example", "a@" + _domain(252), "a" * 64 + "@" + _domain(189)])
def test_R06_path_limits_at_the_boundary_are_accepted(path: str) -> None:
    # local part 64; mailboxes of 254 octets: with "<" and ">" the path is 256.
    (ev,) = _mail_run(path)
    assert ev == Mail(reverse_path=path)


def test_R06_domain_limit_in_ehlo() -> None:
    ok = events_of(drive(Scenario(id="R-06", steps=(b"EHLO " + _domain(255).encode() + b"\r\n",))))
    assert ok == [Ehlo(domain=_domain(255))]
    (bad,) = events_of(drive(Scenario(id="R-06", steps=(b"EHLO " + _domain(256).encode() + b"\r\n",))))
    assert isinstance(bad, InvalidCommand) and bad.reply.code == 501


def test_R06_path_of_257_octets_with_brackets() -> None:
    (ev,) = _mail_run("a" * 64 + "@" + _domain(190))
    assert isinstance(ev, InvalidCommand), ev


R07_FOO = scenario(server_scenario("R-07/unknown", *[b"FOO\r\n"] * 21, prefix=PREFIX[:1]))
R07_ERRORS = scenario(server_scenario("R-07/hard", *[b"FOO\r\n"] * 21, prefix=PREFIX[:1],
                                      config=Config(unknown_command_limit=100)))
R07_NOOP = scenario(server_scenario("R-07/junk-101", *[b"NOOP\r\n"] * 101, prefix=PREFIX[:1]))
R07_NOOP_CLOSE = scenario(server_scenario("R-07/junk-121", *[b"NOOP\r\n"] * 121, prefix=PREFIX[:1]))
R07_RSET = scenario(server_scenario("R-07/rset", *[b"RSET\r\n"] * 21, prefix=PREFIX[:1]))
R07_RESET = scenario(server_scenario("R-07/junk-reset", *[b"NOOP\r\n"] * 100, *PREFIX[1:], b"hi\r\n.\r\n",
                                     *[b"NOOP\r\n"] * 100, prefix=PREFIX[:1]))
TOO_MANY = Reply(code=421, lines=["Error: too many errors"], enhanced_status="4.7.0")


def test_R07_error_and_junk_budgets() -> None:
    cfg = Config()
    assert (cfg.hard_error_limit, cfg.soft_error_limit, cfg.junk_command_limit, cfg.unknown_command_limit) == \
        (20, 10, 100, 5)
    for run in runs(R07_FOO):  # 5 unknown verbs tolerated, the 6th: 421 and close
        evs = after_prefix_n(run, 1)
        assert len(evs) == 6 and all(isinstance(e, UnknownCommand) for e in evs[:5]), evs
        assert all(isinstance(e, UnknownCommand) and e.reply == Reply(
            code=500, lines=["Error: command not recognized"], enhanced_status="5.5.2") for e in evs[:5])
        assert isinstance(evs[5], Raised) and evs[5].reply is not None
        assert (evs[5].reply.code, evs[5].reply.enhanced_status) == (421, "4.7.0")
        assert run.conn.state is State.ERROR
    for run in runs(R07_ERRORS):  # hard limit: 20 errors, then 421 4.7.0 and close
        evs = after_prefix_n(run, 1)
        assert len(evs) == 21 and all(isinstance(e, UnknownCommand) for e in evs[:20]), evs
        assert evs[20] == Raised(TOO_MANY)
        assert run.out.endswith(b"421 4.7.0 Error: too many errors\r\n")
    for run in runs(R07_NOOP):  # junk past the limit counts as an error (Postfix)
        assert after_prefix_n(run, 1) == [Noop()] * 101
        assert run.conn.error_count == 1 and run.conn.state is State.READY
    for run in runs(R07_NOOP_CLOSE):
        evs = after_prefix_n(run, 1)
        assert evs == [Noop()] * 120 + [Raised(TOO_MANY)]
    for run in runs(R07_RSET):
        assert after_prefix_n(run, 1) == [Rset()] * 21 and run.conn.error_count == 0
    for run in runs(R07_RESET):  # a delivered message resets the junk count
        assert messages(run) == [EndOfMessage()]
        assert run.conn.error_count == 0 and run.conn.state is State.READY


def test_R07_soft_limit_advises_delay() -> None:
    conn = Connection(Role.SERVER)
    conn.send(GREETING)
    conn.receive_data(b"EHLO c.example\r\n")
    conn.send(ok_reply(conn.next_event(), CAPS))  # type: ignore[arg-type]
    for n in range(1, 21):
        assert not conn.delay_advised if n <= 10 else conn.delay_advised
        conn.receive_data(b"MAIL FROM:<bad\x01@x>\r\n")
        ev = conn.next_event()
        assert isinstance(ev, InvalidCommand)
        conn.send(ev.reply)
        assert conn.error_count == n
        assert conn.delay_advised is (n >= 10)
    conn.receive_data(b"NOOP\r\n")
    with pytest.raises(RemoteProtocolError) as info:
        conn.next_event()
    assert info.value.reply == TOO_MANY


def test_R08_deadlines_for_slow_loris() -> None:
    cfg = Config()
    conn = Connection(Role.SERVER)
    assert conn.deadline() is None  # our greeting is due, nothing to wait for
    conn.send(GREETING)
    command = conn.deadline()
    assert command is not None and (command.name, command.seconds, command.min_rate) == ("command", 300.0, None)
    assert cfg.timeout_server == 300.0 and cfg.min_data_rate == 500
    # One byte at a time does not change (or restart) the per-request deadline.
    for b in b"EHLO c.example":
        conn.receive_data(bytes([b]))
        assert conn.next_event() is NEED_DATA
        assert conn.deadline() == command
    conn.receive_data(b"\r\n")
    ehlo = conn.next_event()
    assert conn.deadline() is None  # we owe the reply
    conn.send(ok_reply(ehlo, CAPS))  # type: ignore[arg-type]
    for line in PREFIX[1:]:
        conn.receive_data(line)
        conn.send(ok_reply(conn.next_event(), CAPS))  # type: ignore[arg-type]
    data = conn.deadline()
    assert data is not None and (data.name, data.seconds, data.min_rate) == ("data", 300.0, 500)
    conn.receive_data(b"x")
    assert conn.next_event() == MessageData(data=b"x") and conn.deadline() == data
    # On timeout the adapter sends 421 4.4.2 at any time (RFC 5321 §3.8) and closes.
    assert conn.send(Reply(code=421, lines=["Error: timeout exceeded"], enhanced_status="4.4.2")) == \
        b"421 4.4.2 Error: timeout exceeded\r\n"
    assert conn.state is State.CLOSED and conn.deadline() is None
    custom = Connection(Role.SERVER, Config(timeout_server=10.0, min_data_rate=1000))
    custom.send(GREETING)
    assert custom.deadline() == type(command)("command", 10.0, None)


def test_R08_client_deadlines_follow_rfc5321() -> None:
    c = Connection(Role.CLIENT)
    assert (c.deadline().name, c.deadline().seconds) == ("greeting", 300.0)  # type: ignore[union-attr]
    c.receive_data(b"220 mx\r\n")
    c.next_event()
    assert c.deadline() is None
    seen = []
    for cmd, answer in ((Ehlo(domain="c.example"), b"250 mx\r\n"), (Mail(reverse_path="a@x.example"), b"250 ok\r\n"),
                        (Rcpt(forward_path="b@y.example"), b"250 ok\r\n"), (Data(), b"354 go\r\n")):
        c.send(cmd)
        d = c.deadline()
        assert d is not None
        seen.append((d.name, d.seconds))
        c.receive_data(answer)
        assert isinstance(c.next_event(), Reply)
    d = c.deadline()
    assert d is not None
    seen.append((d.name, d.seconds))
    c.send(MessageData(data=b"hi\r\n"))
    c.send(EndOfMessage())
    d = c.deadline()
    assert d is not None
    seen.append((d.name, d.seconds))
    assert seen == [("command", 300.0), ("MAIL", 300.0), ("RCPT", 300.0), ("DATA initiation", 120.0),
                    ("data block", 180.0), ("DATA termination", 600.0)]


def _r10(data: bytes, *, after_ehlo: bool) -> Callable[[ClientDriver], None]:
    def script(d: ClientDriver) -> None:
        if after_ehlo:
            d.feed(b"220 mx.example ESMTP\r\n")
            d.send(Ehlo(domain="c.example"))
        d.feed(data)

    return script


R10_GREETING = client_scenario("R-10/long-line", _r10(b"220 " + b"x" * 100_000 + b"\r\n", after_ehlo=False))
R10_MANY = client_scenario("R-10/many-lines", _r10(b"250-x\r\n" * 100_000 + b"250 ok\r\n", after_ehlo=True))
R10_NOLF = client_scenario("R-10/no-lf", _r10(b"2" * (1 << 20), after_ehlo=False))
R10_EDGE = client_scenario("R-10/8192", _r10(b"220 " + b"x" * 8186 + b"\r\n", after_ehlo=False))
R10_EDGE2 = client_scenario("R-10/8193", _r10(b"220 " + b"x" * 8187 + b"\r\n", after_ehlo=False))


def test_R10_client_reply_size_limits() -> None:
    for sc in (R10_GREETING, R10_MANY, R10_NOLF, R10_EDGE2):
        for run in runs(sc):
            assert run.transcript[-1] == Raised(None), sc.id
            assert not [r for r in replies_of(run) if r.code == 250], sc.id
            assert run.conn.state is State.ERROR
    for run in runs(R10_EDGE):  # 8192 octets with CRLF: accepted
        assert replies_of(run) == [Reply(code=220, lines=["x" * 8186])]


def test_R10_client_buffer_is_bounded() -> None:
    conn = Connection(Role.CLIENT)
    fed = 0
    with pytest.raises(RemoteProtocolError):
        while True:
            conn.receive_data(b"x" * 4096)
            fed += 4096
            assert conn.next_event() is NEED_DATA
    assert fed <= Config().max_reply_line + 4096
    conn.receive_data(b"x" * 4096)
    assert len(conn.trailing_data[0]) <= fed


R11_INPUTS = {"short-code": b"25 ok\r\n", "long-code": b"2500 ok\r\n", "letters": b"abc ok\r\n",
              "code-change": b"250-a\r\n550 b\r\n", "bare-lf": b"250\n"}
R11 = {name: client_scenario(f"R-11/{name}", _r10(data, after_ehlo=True)) for name, data in R11_INPUTS.items()}


@pytest.mark.parametrize("name", sorted(R11_INPUTS))
def test_R11_client_malformed_replies(name: str) -> None:
    for run in runs(R11[name]):
        assert replies_of(run) == [Reply(code=220, lines=["mx.example ESMTP"])]
        assert run.transcript[-1] == Raised(None)
        assert run.conn.state is State.ERROR


# --------------------------------------------------------------------------- F: failures

F01_SERVER = scenario(server_scenario("F-01/server", b"partial body\r\n", EOF))
F01_SERVER_BDAT = scenario(server_scenario("F-01/server-bdat", b"BDAT 100 LAST\r\n" + b"z" * 10, EOF,
                                           prefix=PREFIX[:3]))
F01_SERVER_CMD = scenario(server_scenario("F-01/server-command", b"MAIL FROM:<a@x.exa", EOF, prefix=PREFIX[:1]))


def _f01_client(d: ClientDriver) -> None:
    d.feed(b"220 mx.example ESMTP\r\n")
    d.send(Ehlo(domain="c.example"))
    d.feed(b"499 incomplete response\\")
    d.feed(b"")


F01_CLIENT = client_scenario("F-01/client", _f01_client)


def test_F01_eof_mid_transaction() -> None:
    for run in runs(F01_SERVER):
        assert after_prefix(run) == [MessageData(data=b"partial body\r\n"), ConnectionClosed()]
        assert messages(run) == []  # no message event for a partial message
        assert run.conn.state is State.CLOSED
    for run in runs(F01_SERVER_CMD):
        assert after_prefix_n(run, 1) == [ConnectionClosed()]
    for run in runs(F01_SERVER_BDAT):
        assert after_prefix_n(run, 3) == [Bdat(size=100, last=True), MessageData(data=b"z" * 10), ConnectionClosed()]
        assert messages(run) == []
    for run in runs(F01_CLIENT):
        assert replies_of(run) == [Reply(code=220, lines=["mx.example ESMTP"])]
        assert run.transcript[-1] == Raised(None)


def test_F01_eof_discards_the_transaction() -> None:
    for run in runs(F01_SERVER):
        assert run.transcript[-1] == ConnectionClosed()
        assert run.conn.recipients == ()


# --------------------------------------------------------------------------- coverage of the catalogue

CATALOGUE = Path(__file__).resolve().parents[1] / ".." / "shared" / "SECURITY-CASES.md"
PROTOCOL_CLASSES = ("S", "T", "P", "C", "R", "F")


def catalogue_ids(text: str) -> list[str]:
    return re.findall(r"^\|\s*([STPCRF]-\d{2})\s*\|", text, flags=re.MULTILINE)


def test_every_protocol_row_has_a_test() -> None:
    if not CATALOGUE.is_file():
        pytest.skip(f"{CATALOGUE} not present")
    ids = catalogue_ids(CATALOGUE.read_text(encoding="utf-8"))
    assert len(ids) >= 40 and "S-01" in ids and "F-02" in ids, ids
    names = [n for n in globals() if n.startswith("test_")]
    missing = [i for i in ids if not any(n.startswith(f"test_{i.replace('-', '')}_") for n in names)]
    assert missing == [], f"rows of SECURITY-CASES.md without a test: {missing}"
    # Every scenario id belongs to a catalogue row.
    assert {sid[:4] for sid in SCENARIOS} <= set(ids)


# --------------------------------------------------------------------------- T: extra hand-over variants

T01_NOSYNC = scenario(server_scenario("T-01/no-sync", b"STARTTLS\r\nRSET\r\n", TLS_UP, b"EHLO c.example\r\n",
                                      prefix=PREFIX[:1], config=Config(enforce_pipelining_sync=False)))
T01_NOSYNC_LATE = scenario(server_scenario("T-01/no-sync-after-220", b"STARTTLS\r\n", b"RSET\r\n", TLS_UP,
                                           b"EHLO c.example\r\n", prefix=PREFIX[:1],
                                           config=Config(enforce_pipelining_sync=False)))


def test_T01_starttls_injection_without_sync_enforcement() -> None:
    for run in runs(T01_NOSYNC):
        assert_no_plaintext_crosses(run, (Rset, Ehlo))


def test_T01_starttls_injection_after_220_without_sync_enforcement() -> None:
    for run in runs(T01_NOSYNC_LATE):
        assert_no_plaintext_crosses(run, (Rset, Ehlo))


def _t06_late(d: ClientDriver) -> None:
    greet_and_ehlo(d, b"250-mx.example\r\n250-PIPELINING\r\n250 STARTTLS\r\n")
    d.send(StartTLS())
    d.feed(b"220 Ready to start TLS\r\n")
    d.feed(b"250-example.org\r\n250 AUTH LOGIN\r\n")


T06_LATE = client_scenario("T-06/after-220", _t06_late)


def test_T06_client_injection_after_the_220_read() -> None:
    for run in runs(T06_LATE):
        assert replies_of(run)[-1] == Reply(code=220, lines=["Ready to start TLS"])
        assert run.transcript[-1] == Raised(None)
        assert run.conn.state is State.ERROR and not run.conn.extensions.auth
        with pytest.raises(LocalProtocolError):
            run.conn.tls_established()


# === new sections go above the F-02 section ===

# --------------------------------------------------------------------------- F-02
# (keep this section last: the parametrization below lists every scenario above)

def _segment_lengths(sc: Scenario) -> list[int]:
    lengths: list[int] = []

    def record(data: bytes) -> Iterable[bytes]:
        lengths.append(len(data))
        return [data]

    drive(sc, record)
    return lengths


def f02_splitters(sc: Scenario) -> list[tuple[str, Splitter]]:
    """Whole, byte by byte, and every split index (applied to every segment) for
    inputs up to 256 octets; a seeded sample of indices for longer ones."""
    longest = max(_segment_lengths(sc), default=0)
    out: list[tuple[str, Splitter]] = [("bytewise", bytewise)]
    if longest <= 256:
        indices = list(range(1, longest))
    else:
        rng = random.Random(f"F-02 {sc.id}")
        indices = sorted({*range(1, 9), *rng.sample(range(9, longest), 40), longest - 2, longest - 1})
    out.extend((f"split@{i}", split_at(i)) for i in indices)
    return out


def check_f02(sc: Scenario) -> None:
    ref = drive(sc, whole)
    ref_events = normalize(ref.transcript)
    for name, splitter in f02_splitters(sc):
        run = drive(sc, splitter)
        assert normalize(run.transcript) == ref_events, f"{sc.id}: events differ, whole vs {name}"
        assert run.out == ref.out, f"{sc.id}: outbound bytes differ, whole vs {name}"


#: Scenarios whose F-02 run fails because of a core bug (none at present; keep
#: the mechanism so a regression can be recorded with its reason).
F02_BUGS: dict[str, str] = {}


def _f02_params() -> list[object]:
    params: list[object] = []
    for sid in SCENARIOS:
        marks = []
        if sid in F02_BUGS:
            marks.append(pytest.mark.xfail(strict=True, reason=F02_BUGS[sid]))
        params.append(pytest.param(sid, marks=marks, id=sid))
    return params


@pytest.mark.parametrize("sid", _f02_params())
def test_F02_chunking_invariance(sid: str) -> None:
    check_f02(SCENARIOS[sid])
