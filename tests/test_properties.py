"""Hypothesis properties of the core.

1. Any split of a valid transcript gives the same events (server and client).
2. Arbitrary bytes fed to a server give only events or RemoteProtocolError, and
   the receive buffer stays within the largest line limit plus one chunk.
3. Arbitrary message bytes sent by our client arrive at our server as exactly
   one message: byte-identical for BDAT, identical after line-ending
   normalization for DATA.
4. Every (state, event) pair either transitions or raises LocalProtocolError,
   which leaves the connection unchanged.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from smtpproto import (
    NEED_DATA,
    PAUSED,
    Auth,
    AuthResponse,
    Bdat,
    Command,
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
    Lhlo,
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
    UnknownCommand,
    Vrfy,
)

from pair import events, strip

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def R(code: int, *texts: str, enhanced: str | None = None) -> Reply:
    return Reply(code=code, lines=texts or ("",), enhanced_status=enhanced)


# ====================================================================== server policy

def policy(ev: Any) -> Reply | None:
    """A server application that accepts everything but recipients whose local
    part starts with "no", and answers refused lines with their suggested reply."""
    if isinstance(ev, (InvalidCommand, UnknownCommand, MessageRejected)):
        return ev.reply
    if isinstance(ev, (Ehlo, Lhlo)):
        return R(250, "mx.example.org", "PIPELINING", "CHUNKING", "8BITMIME", "SMTPUTF8", "SIZE 10000000",
                 "ENHANCEDSTATUSCODES")
    if isinstance(ev, Helo):
        return R(250, "mx.example.org")
    if isinstance(ev, Rcpt):
        if ev.forward_path.startswith("no"):
            return R(550, "No such user", enhanced="5.1.1")
        return R(250, "Ok", enhanced="2.1.5")
    if isinstance(ev, Data):
        return R(354, "End data with <CR><LF>.<CR><LF>")
    if isinstance(ev, Quit):
        return R(221, "Bye", enhanced="2.0.0")
    if isinstance(ev, StartTLS):
        return R(454, "TLS not available", enhanced="4.7.0")
    if type(ev).__name__ == "Xclient":  # Postfix: success is a new greeting
        return R(220, "mx.example.org ESMTP")
    if isinstance(ev, Auth):
        return R(334, "")
    if isinstance(ev, AuthResponse):
        if ev.cancelled:
            return R(501, "Authentication aborted", enhanced="5.7.0")
        return R(235, "Authentication successful", enhanced="2.7.0")
    if isinstance(ev, MessageData):
        return None
    return R(250, "Ok", enhanced="2.0.0")


# ====================================================================== 1. splits

@dataclass
class Flight:
    """Events the client sends without waiting, then the server answers them all."""

    sends: list[Event]


class Session(list):  # type: ignore[type-arg]
    """Flights, and whether the session is LMTP."""

    lmtp = False


SENDERS = ["alice@example.com", "", "bob@[192.0.2.1]", "carol@[IPv6:2001:db8::7]", "dave@sub.example.org"]
RECIPIENTS = ["rcpt1@example.org", "Postmaster", "rcpt2@[192.0.2.9]", "nobody@example.org", "nope@example.net"]


def _content() -> st.SearchStrategy[bytes]:
    piece = st.sampled_from([b"\r\n", b".", b"..", b"\r\n.\r\n", b"\r\n.", b"Subject: x\r\n", b"a", b" ", b"\r",
                             b"\n", b"\x00", b"\xff", b"line of text"])
    return st.lists(piece, max_size=25).map(b"".join)


@st.composite
def sessions(draw: st.DrawFn) -> Session:
    lmtp = draw(st.booleans())
    pipelining = lmtp or draw(st.booleans())
    flights = Session([Flight([Lhlo(domain="client.example.com") if lmtp else Ehlo(domain="client.example.com")])])
    flights.lmtp = lmtp
    for _ in range(draw(st.integers(0, 3))):
        for extra in draw(st.lists(st.sampled_from([Noop(), Vrfy(argument="alice"), Help(), Rset(),
                                                    Expn(argument="staff"), Help(argument="MAIL")]), max_size=2)):
            flights.append(Flight([extra]))
        mail = Mail(reverse_path=draw(st.sampled_from(SENDERS)))
        rcpts = [Rcpt(forward_path=r) for r in draw(st.lists(st.sampled_from(RECIPIENTS), min_size=1, max_size=3))]
        accepted = any(not r.forward_path.startswith("no") for r in rcpts)
        method = draw(st.sampled_from(["data", "bdat"])) if accepted else "rset"
        envelope: list[Event] = [mail, *rcpts]
        if method == "data":
            envelope.append(Data())
        elif method == "rset":
            envelope.append(Rset())
        if pipelining:
            flights.append(Flight(envelope))
        else:
            flights.extend(Flight([e]) for e in envelope)
        content = draw(_content())
        if method == "data":
            cuts = sorted(draw(st.lists(st.integers(0, len(content)), max_size=3)))
            pieces = [content[a:b] for a, b in zip([0, *cuts], [*cuts, len(content)])]
            flights.append(Flight([*(MessageData(data=p) for p in pieces if p), EndOfMessage()]))
        elif method == "bdat":
            cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(content) - 1)), max_size=3))))
            cuts = [c for c in cuts if 0 < c < len(content)]
            chunks = [content[a:b] for a, b in zip([0, *cuts], [*cuts, len(content)])]
            zero_last = draw(st.booleans()) or not content
            sends: list[Event] = []
            for i, chunk in enumerate(chunks):
                if not chunk:
                    continue
                last = i == len(chunks) - 1 and not zero_last
                sends += [Bdat(size=len(chunk), last=last), MessageData(data=chunk)]
            if zero_last or not sends:
                sends.append(Bdat(size=0, last=True))
            sends.append(EndOfMessage())
            if pipelining:
                flights.append(Flight(sends))
            else:  # one chunk per flight
                i = 0
                while i < len(sends):
                    j = i + 1
                    while j < len(sends) and not isinstance(sends[j], Bdat):
                        j += 1
                    flights.append(Flight(sends[i:j]))
                    i = j
    flights.append(Flight([Quit()]))
    return flights


Chunker = Callable[[bytes], list[bytes]]


def whole(data: bytes) -> list[bytes]:
    return [data] if data else []


def random_chunker(rng: random.Random) -> Chunker:
    def chunk(data: bytes) -> list[bytes]:
        if not data:
            return []
        mode = rng.random()
        if mode < 0.2:
            return [data[i:i + 1] for i in range(len(data))]
        cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(0, 6)))) if len(data) > 1 else []
        return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])]
    return chunk


@dataclass
class Run:
    server_events: list[Any] = field(default_factory=list)
    client_events: list[tuple[Reply, Any]] = field(default_factory=list)
    c2s: bytes = b""
    s2c: bytes = b""


def drain(conn: Connection) -> list[Any]:
    out = []
    while True:
        ev = conn.next_event()
        out.append(ev)
        if ev is NEED_DATA or ev is PAUSED or isinstance(ev, ConnectionClosed):
            return out


def run_session(flights: Sequence[Flight], to_server: Chunker, to_client: Chunker) -> Run:
    config = Config(lmtp=getattr(flights, "lmtp", False))
    client, server = Connection(Role.CLIENT, config), Connection(Role.SERVER, config)
    run = Run()
    greeting = server.send(R(220, "mx.example.org ESMTP"))
    run.s2c += greeting
    for piece in to_client(greeting):
        client.receive_data(piece)
        run.client_events += [(e, None) for e in drain(client) if isinstance(e, Reply)]
    for flight in flights:
        out = b"".join(client.send(ev) for ev in flight.sends)
        run.c2s += out
        replies = b""
        for piece in to_server(out):
            server.receive_data(piece)
            while True:
                got = drain(server)
                run.server_events += [e for e in got if e is not NEED_DATA and e is not PAUSED]
                if got[-1] is not PAUSED:
                    break
                reply = policy(server.reply_owed)
                assert reply is not None
                replies += server.send(reply)
        run.s2c += replies
        for piece in to_client(replies):
            client.receive_data(piece)
            for e in drain(client):
                if isinstance(e, Reply):
                    run.client_events.append((e, e.command))
    assert client.state is State.CLOSED and server.state is State.CLOSED
    run.server_events = strip(run.server_events)
    return run


@SETTINGS
@given(sessions(), st.randoms(use_true_random=False))
def test_any_split_of_a_valid_transcript_gives_the_same_events(flights: Session, rng: random.Random) -> None:
    baseline = run_session(flights, whole, whole)
    split = run_session(flights, random_chunker(rng), random_chunker(rng))
    assert split.c2s == baseline.c2s and split.s2c == baseline.s2c
    assert split.server_events == baseline.server_events
    assert split.client_events == baseline.client_events
    # And the server application saw what the client application sent.
    sent = [ev for f in flights for ev in f.sends if not isinstance(ev, (MessageData, EndOfMessage))]
    seen = [ev for ev in baseline.server_events if isinstance(ev, Command)]
    assert seen == sent


@SETTINGS
@given(sessions())
def test_transcript_fed_byte_by_byte(flights: Session) -> None:
    baseline = run_session(flights, whole, whole)
    one = run_session(flights, lambda d: [d[i:i + 1] for i in range(len(d))],
                      lambda d: [d[i:i + 1] for i in range(len(d))])
    assert one.server_events == baseline.server_events
    assert one.client_events == baseline.client_events


# ====================================================================== round trips

_atext = st.sampled_from(list("abcxyzABC0189!#$%&'*+/=?^_`{|}~-"))
_atom = st.lists(_atext, min_size=1, max_size=8).map("".join)
_dot_string = st.lists(_atom, min_size=1, max_size=3).map(".".join)
_qchar = st.one_of(st.sampled_from(list(" !#$%&'()*+,-./:;<=>?@[]^_`{|}~azAZ09")),
                   st.sampled_from(['\\"', "\\\\", "\\a"]))
_quoted = st.lists(_qchar, max_size=8).map(lambda cs: '"' + "".join(cs) + '"')
_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,6}[a-z0-9])?", fullmatch=True)
_domain = st.lists(_label, min_size=1, max_size=3).map(".".join)
_literal = st.one_of(
    st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: "[%d.%d.%d.%d]" % t),
    st.ip_addresses(v=6).map(lambda a: f"[IPv6:{a}]"),
    # dcontent = %d33-90 / %d94-126, '"' and '>' included
    st.tuples(_label, st.text(st.sampled_from(list("!\"#$%&'()*+,-./0123456789:;<=>?@AZ^_`az{|}~")), min_size=1,
                              max_size=10)).map(lambda t: f"[x{t[0]}:{t[1]}]"),
)
mailboxes = st.tuples(st.one_of(_dot_string, _quoted), st.one_of(_domain, _literal)).map(lambda t: f"{t[0]}@{t[1]}")
_param_value = st.from_regex(r"[!-<>-~]{1,12}", fullmatch=True)
text_args = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=40)


def _client_server() -> tuple[Connection, Connection]:
    client, server = Connection(Role.CLIENT), Connection(Role.SERVER)
    client.receive_data(server.send(R(220, "hi")))
    client.next_event()
    server.receive_data(client.send(Ehlo(domain="c.example")))
    server.next_event()
    client.receive_data(server.send(R(250, "mx", "8BITMIME", "DSN", "SIZE 10000000", "SMTPUTF8", "PIPELINING")))
    client.next_event()
    return client, server


def _mail(path: str, **params: str) -> Mail | None:
    try:
        return Mail(reverse_path=path, params=params)
    except LocalProtocolError:  # e.g. a local part over 64 octets
        return None


commands = st.one_of(
    st.builds(_mail, mailboxes),
    st.builds(lambda m, size, body: _mail(m, SIZE=str(size), BODY=body),
              mailboxes, st.integers(0, 10000000), st.sampled_from(["7BIT", "8BITMIME"])),
    st.builds(lambda m, envid: _mail(m, RET="HDRS", ENVID=envid), mailboxes, _param_value),
    st.builds(lambda a: Vrfy(argument=a), text_args),
    st.builds(lambda a: Expn(argument=a), text_args),
    st.builds(lambda a: Help(argument=a), st.one_of(st.none(), text_args)),
    st.builds(lambda d: Ehlo(domain=d), st.one_of(_domain, _literal)),
    st.builds(lambda d: Helo(domain=d), st.one_of(_domain, _literal)),
    st.just(Noop()), st.just(Rset()), st.just(Quit()),
)


@SETTINGS
@given(commands)
def test_what_our_client_sends_arrives_equal(cmd: Command | None) -> None:
    assume(cmd is not None)
    assert cmd is not None
    client, server = _client_server()
    try:
        wire = client.send(cmd)
    except LocalProtocolError:
        assume(False)
        return
    got = strip(events(server, wire))
    assert got == [cmd, PAUSED], wire


@SETTINGS
@given(mailboxes, mailboxes)
def test_envelope_addresses_arrive_equal(sender: str, rcpt: str) -> None:
    client, server = _client_server()
    try:
        mail, to = Mail(reverse_path=sender), Rcpt(forward_path=rcpt)
        wire = client.send(mail) + client.send(to)
    except LocalProtocolError:
        assume(False)
        return
    assert strip(events(server, wire))[0] == mail
    server.send(R(250, "ok"))
    assert strip(events(server)) == [to, PAUSED]


_reply_text = st.one_of(
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30),
    # Texts that begin like an enhanced status code (RFC 3463) must survive too.
    st.tuples(st.sampled_from("245"), st.integers(0, 999), st.integers(0, 999), st.sampled_from(["", " ", " x y"]))
    .map(lambda t: f"{t[0]}.{t[1]}.{t[2]}{t[3]}"),
)


@SETTINGS
@given(st.sampled_from([211, 214, 250, 251, 252, 421, 450, 451, 452, 500, 501, 502, 503, 550, 551, 552, 553, 554]),
       st.lists(_reply_text, min_size=1, max_size=4), st.booleans(), st.integers(0, 7), st.integers(0, 7))
def test_what_our_server_sends_arrives_equal(code: int, texts: list[str], enhanced: bool, sub: int, det: int) -> None:
    status = f"{code // 100}.{sub}.{det}" if enhanced else None
    reply = Reply(code=code, lines=texts, enhanced_status=status)
    client, server = _client_server()
    server.receive_data(client.send(Noop()))
    assert server.next_event() == Noop()
    out = server.send(reply)
    got = strip(events(client, out))
    assert got[0] == reply
    assert got[0].enhanced_status == reply.enhanced_status
    if status is not None:
        assert reply.enhanced_status == status


# ====================================================================== 2. junk

PROP_CONFIG = Config(max_mail_rcpt_line=600, max_auth_line=700, max_discard=3000, unknown_command_limit=50,
                     hard_error_limit=50, soft_error_limit=40)
LIMIT = max(PROP_CONFIG.max_command_line, PROP_CONFIG.max_mail_rcpt_line, PROP_CONFIG.max_auth_line)

_tokens = st.sampled_from([
    b"\r\n", b"\n", b"\r", b".", b"\r\n.\r\n", b" ", b"\x00", b"\xff\xfe", b"MAIL FROM:<a@b.example>\r\n",
    b"RCPT TO:<c@d.example>\r\n", b"DATA\r\n", b"BDAT 5\r\n", b"BDAT 3 LAST\r\n", b"BDAT 0 LAST\r\n", b"RSET\r\n",
    b"NOOP\r\n", b"EHLO x.example\r\n", b"HELO x\r\n", b"QUIT\r\n", b"STARTTLS\r\n", b"AUTH PLAIN =\r\n", b"*\r\n",
    b"VRFY a\r\n", b"MAIL FROM:<", b"x" * 300, b"y" * 700, b"250 ok\r\n", "MAIL FROM:<jö@b.example> SMTPUTF8\r\n".encode(),
])
junk_chunks = st.lists(st.one_of(st.binary(max_size=64), st.lists(_tokens, max_size=8).map(b"".join)),
                       min_size=1, max_size=20)


def greeted(config: Config = PROP_CONFIG) -> Connection:
    server = Connection(Role.SERVER, config)
    server.send(R(220, "mx.example.org ESMTP"))
    return server


def after_ehlo() -> Connection:
    server = greeted()
    assert drain_with_policy(server, b"EHLO client.example.com\r\n") is None
    assert server.state is State.READY
    return server


def in_data() -> Connection:
    server = after_ehlo()
    assert drain_with_policy(server, b"MAIL FROM:<a@b.example>\r\n") is None
    assert drain_with_policy(server, b"RCPT TO:<c@d.example>\r\n") is None
    assert drain_with_policy(server, b"DATA\r\n") is None
    assert server.state is State.DATA
    return server


def drain_with_policy(server: Connection, chunk: bytes) -> RemoteProtocolError | None:
    """Feed ``chunk``, hand every event to the policy; only events, sentinels or
    RemoteProtocolError may come out."""
    server.receive_data(chunk)
    while True:
        try:
            ev = server.next_event()
        except RemoteProtocolError as exc:
            assert server.state is State.ERROR
            return exc
        if ev is NEED_DATA or isinstance(ev, ConnectionClosed):
            return None
        if ev is PAUSED:
            owed = server.reply_owed
            if owed is None:  # STARTTLS hand-over or not greeted: nothing to do here
                return None
            reply = policy(owed)
            assert reply is not None
            server.send(reply)  # a LocalProtocolError here would be a core bug
            continue
        assert isinstance(ev, Event), ev


def _check_junk(server: Connection, chunks: list[bytes]) -> None:
    for chunk in chunks:
        if server.state in (State.CLOSED, State.ERROR) or not chunk:
            break
        exc = drain_with_policy(server, chunk)
        if exc is not None:
            assert isinstance(exc, RemoteProtocolError)
            assert exc.reply is not None and 400 <= exc.reply.code <= 599
            # It keeps saying so, and the suggested reply may be sent once.
            with pytest.raises(RemoteProtocolError):
                server.next_event()
            break
        assert len(server._buf) <= LIMIT + len(chunk), (len(server._buf), len(chunk))


@SETTINGS
@given(junk_chunks)
def test_junk_after_greeting(chunks: list[bytes]) -> None:
    _check_junk(greeted(), chunks)


@SETTINGS
@given(junk_chunks)
def test_junk_after_ehlo(chunks: list[bytes]) -> None:
    _check_junk(after_ehlo(), chunks)


@SETTINGS
@given(junk_chunks)
def test_junk_in_data(chunks: list[bytes]) -> None:
    _check_junk(in_data(), chunks)


@SETTINGS
@given(junk_chunks, st.sampled_from(["reject", "normalize"]))
def test_junk_with_either_newline_policy(chunks: list[bytes], newline: str) -> None:
    _check_junk(greeted(PROP_CONFIG.replace(bare_newline=newline)), chunks)


@SETTINGS
@given(st.integers(1, 4096), st.integers(2, 40))
def test_endless_line_never_grows_the_buffer(chunk_size: int, count: int) -> None:
    server = after_ehlo()
    for _ in range(count):
        exc = drain_with_policy(server, b"A" * chunk_size)
        if exc is not None:
            assert exc.reply is not None and exc.reply.code == 500
            return
        assert len(server._buf) <= LIMIT + chunk_size
    assert count * chunk_size <= PROP_CONFIG.max_discard + LIMIT + chunk_size


_reply_tokens = st.sampled_from([
    b"250 ok\r\n", b"250-", b"250 ", b"354 go\r\n", b"421 bye\r\n", b"220 hi\r\n", b"\r\n", b"\n", b"\r",
    b"2", b"25", b"-", b" ", b"x" * 500, b"\x00", b"\xff", b"334 \r\n", b"550 5.1.1 no\r\n", b"250-2.0.0 a\r\n",
])
reply_junk = st.lists(st.one_of(st.binary(max_size=64), st.lists(_reply_tokens, max_size=8).map(b"".join)),
                      min_size=1, max_size=15)
CLIENT_CONFIG = Config(max_reply_line=1024, max_reply_size=4096)


@SETTINGS
@given(reply_junk, st.sampled_from(["greeting", "ehlo", "pipelined"]))
def test_junk_to_a_client(chunks: list[bytes], where: str) -> None:
    """Arbitrary bytes to a client give only replies or RemoteProtocolError, and
    its buffer stays within a reply line (or a whole reply) plus one chunk."""
    client = Connection(Role.CLIENT, CLIENT_CONFIG)
    if where != "greeting":
        client.receive_data(b"220 hi\r\n")
        assert isinstance(client.next_event(), Reply)
        client.send(Ehlo(domain="c.example"))
    if where == "pipelined":
        client.receive_data(b"250-mx\r\n250 PIPELINING\r\n")
        assert isinstance(client.next_event(), Reply)
        for cmd in (Mail(reverse_path="a@b.example"), Rcpt(forward_path="c@d.example"), Data()):
            client.send(cmd)
    bound = max(CLIENT_CONFIG.max_reply_line, CLIENT_CONFIG.max_reply_size)
    for chunk in chunks:
        if client.state in (State.CLOSED, State.ERROR):
            break
        client.receive_data(chunk)
        try:
            while True:
                ev = client.next_event()
                if ev is NEED_DATA or ev is PAUSED or isinstance(ev, ConnectionClosed):
                    break
                assert isinstance(ev, Reply), ev
        except RemoteProtocolError:
            assert client.state is State.ERROR
            with pytest.raises(RemoteProtocolError):
                client.next_event()
            break
        assert len(client._buf) <= bound + len(chunk)


# ====================================================================== 3. content

def normalized(data: bytes) -> bytes:
    out = re.sub(rb"\r\n|\r|\n", b"\r\n", data)
    if out and not out.endswith(b"\r\n"):
        out += b"\r\n"
    return out


CONTENT_CONFIG = Config(max_data_line=None)
message_bytes = st.one_of(
    st.binary(max_size=300),
    st.lists(st.sampled_from([b"\r\n", b"\n", b"\r", b".", b"..", b"\r\n.\r\n", b"\n.\n", b"\r.\r", b"\r\n.",
                              b".\r\n", b"x", b"\x00", b"\xff", b"From: a\r\n"]), max_size=40).map(b"".join),
)


def transaction_pair(caps: tuple[str, ...] = ("PIPELINING", "CHUNKING")) -> tuple[Connection, Connection]:
    client, server = Connection(Role.CLIENT, CONTENT_CONFIG), Connection(Role.SERVER, CONTENT_CONFIG)
    client.receive_data(server.send(R(220, "mx.example.org")))
    assert isinstance(client.next_event(), Reply)
    for cmd, reply in ((Ehlo(domain="client.example.com"), R(250, "mx.example.org", *caps)),
                       (Mail(reverse_path="a@b.example"), R(250, "ok")),
                       (Rcpt(forward_path="c@d.example"), R(250, "ok"))):
        server.receive_data(client.send(cmd))
        assert server.next_event() == cmd
        client.receive_data(server.send(reply))
        assert client.next_event() == reply
    return client, server


def cut(data: bytes, rng: random.Random, most: int = 8) -> list[bytes]:
    if len(data) < 2:
        return [data]
    points = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(0, most))))
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)])]


def receive_message(server: Connection, wire: bytes, rng: random.Random) -> tuple[bytes, list[Any]]:
    got: list[Any] = []
    for piece in cut(wire, rng, 12):
        server.receive_data(piece)
        while True:
            ev = server.next_event()
            if ev is NEED_DATA:
                break
            if ev is PAUSED:
                owed = server.reply_owed
                got.append(("reply", type(owed).__name__))
                server.send(R(250, "ok"))
                continue
            got.append(ev)
    data = b"".join(e.data for e in got if isinstance(e, MessageData))
    return data, got


@SETTINGS
@given(message_bytes, st.randoms(use_true_random=False))
def test_data_content_arrives_identical_after_normalization(msg: bytes, rng: random.Random) -> None:
    client, server = transaction_pair()
    server.receive_data(client.send(Data()))
    assert server.next_event() == Data()
    client.receive_data(server.send(R(354, "go")))
    assert client.next_event() == R(354, "go")
    wire = b"".join(client.send(MessageData(data=p)) for p in cut(msg, rng)) + client.send(EndOfMessage())
    assert wire.endswith(b"\r\n.\r\n") or wire == b".\r\n"
    data, got = receive_message(server, wire, rng)
    assert data == normalized(msg)
    assert [e for e in got if not isinstance(e, MessageData)] == [EndOfMessage(), ("reply", "EndOfMessage")]
    assert server.state is State.READY


@SETTINGS
@given(message_bytes, st.randoms(use_true_random=False), st.booleans())
def test_bdat_content_arrives_byte_identical(msg: bytes, rng: random.Random, zero_last: bool) -> None:
    client, server = transaction_pair()
    chunks = [c for c in cut(msg, rng, 4) if c]
    wire = b""
    for i, chunk in enumerate(chunks):
        last = i == len(chunks) - 1 and not zero_last
        wire += client.send(Bdat(size=len(chunk), last=last))
        wire += b"".join(client.send(MessageData(data=p)) for p in cut(chunk, rng, 3))
    if zero_last or not chunks:
        wire += client.send(Bdat(size=0, last=True))
    wire += client.send(EndOfMessage())
    data, got = receive_message(server, wire, rng)
    assert data == msg
    assert sum(isinstance(e, EndOfMessage) for e in got) == 1
    assert not any(isinstance(e, (MessageRejected, InvalidCommand)) for e in got)
    assert got[-1] == ("reply", "EndOfMessage")
    assert server.state is State.READY


@pytest.mark.slow
@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=3000), st.randoms(use_true_random=False))
def test_data_content_large_random(msg: bytes, rng: random.Random) -> None:
    test_data_content_arrives_identical_after_normalization.hypothesis.inner_test(msg, rng)  # type: ignore[attr-defined]


# ====================================================================== 4. (state, event)

def _client_at(state: State) -> Connection:
    client = Connection(Role.CLIENT, tls_active=state is State.AUTH)
    if state is State.GREETING:
        return client
    if state is State.ERROR:
        client.receive_data(b"garbage\r\n")
        with pytest.raises(RemoteProtocolError):
            client.next_event()
        return client
    greeting = {State.NO_SERVICE: b"554 no\r\n", State.CLOSED: b"421 bye\r\n"}.get(state, b"220 hi\r\n")
    client.receive_data(greeting)
    client.next_event()
    if state in (State.HELLO, State.NO_SERVICE, State.CLOSED):
        return client
    caps = b"250-mx\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 STARTTLS\r\n"
    if state is State.AUTH:
        caps = b"250-mx\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 AUTH PLAIN\r\n"
    script: list[tuple[Event, bytes]] = [(Ehlo(domain="c.example"), caps)]
    if state is State.TLS:
        script.append((StartTLS(), b"220 go\r\n"))
    if state is State.AUTH:
        script.append((Auth(mechanism="PLAIN"), b"334 \r\n"))
    if state in (State.MAIL, State.RCPT, State.DATA, State.BDAT):
        script.append((Mail(reverse_path="a@b.example"), b"250 ok\r\n"))
    if state in (State.RCPT, State.DATA, State.BDAT):
        script.append((Rcpt(forward_path="c@d.example"), b"250 ok\r\n"))
    if state is State.DATA:
        script.append((Data(), b"354 go\r\n"))
    for ev, reply in script:
        client.send(ev)
        client.receive_data(reply)
        assert isinstance(client.next_event(), Reply)
    if state is State.BDAT:
        client.send(Bdat(size=1))
        client.send(MessageData(data=b"x"))
        client.receive_data(b"250 ok\r\n")
        assert isinstance(client.next_event(), Reply)
    assert client.state is state, (client.state, state)
    return client


def _server_at(state: State) -> Connection:
    server = Connection(Role.SERVER, tls_active=state is State.AUTH)
    if state is State.GREETING:
        return server
    if state is State.ERROR:
        server.receive_data(b"EHLO too.early\r\n")  # pregreet: dropped
        server.send(R(220, "hi"))
        with pytest.raises(RemoteProtocolError):
            server.next_event()
        return server
    server.send({State.NO_SERVICE: R(554, "no"), State.CLOSED: R(421, "bye")}.get(state, R(220, "hi")))
    if state in (State.HELLO, State.NO_SERVICE, State.CLOSED):
        return server
    caps: tuple[str, ...] = ("mx", "PIPELINING", "CHUNKING", "STARTTLS")
    if state is State.AUTH:
        caps = ("mx", "PIPELINING", "CHUNKING", "AUTH PLAIN")
    script: list[tuple[bytes, Reply]] = [(b"EHLO c.example\r\n", R(250, *caps))]
    if state is State.TLS:
        script.append((b"STARTTLS\r\n", R(220, "go")))
    if state is State.AUTH:
        script.append((b"AUTH PLAIN\r\n", R(334, "")))
    if state in (State.MAIL, State.RCPT, State.DATA, State.BDAT):
        script.append((b"MAIL FROM:<a@b.example>\r\n", R(250, "ok")))
    if state in (State.RCPT, State.DATA, State.BDAT):
        script.append((b"RCPT TO:<c@d.example>\r\n", R(250, "ok")))
    if state is State.DATA:
        script.append((b"DATA\r\n", R(354, "go")))
    if state is State.BDAT:
        script.append((b"BDAT 1\r\nx", R(250, "ok")))
    for line, reply in script:
        got = strip(events(server, line))
        assert got[-1] is PAUSED and not isinstance(got[0], (InvalidCommand, UnknownCommand)), got
        server.send(reply)
    assert server.state is state, (server.state, state)
    return server


CLIENT_EVENTS: list[Event] = [
    Ehlo(domain="c.example"), Helo(domain="c.example"), Lhlo(domain="c.example"), Mail(reverse_path="a@b.example"),
    Mail(reverse_path=""), Rcpt(forward_path="c@d.example"), Rcpt(forward_path="Postmaster"), Data(),
    Bdat(size=3), Bdat(size=3, last=True), Bdat(size=0, last=True), Rset(), Noop(), Quit(),
    Vrfy(argument="alice"), Expn(argument="staff"), Help(), Help(argument="MAIL"), StartTLS(),
    Auth(mechanism="PLAIN"), Auth(mechanism="PLAIN", initial_response=b"\0a\0b"), AuthResponse(data=b"x"),
    AuthResponse(cancelled=True), MessageData(data=b"abc"), MessageData(data=b""), EndOfMessage(),
    R(250, "a client cannot send this"), ConnectionClosed(),
]
# Postfix XCLIENT / XFORWARD, when the core has them.
from smtpproto import _events as _ev  # noqa: E402

if hasattr(_ev, "Xclient"):
    CLIENT_EVENTS[-2:-2] = [_ev.Xclient(attributes={"ADDR": "192.0.2.1"}),
                            _ev.Xforward(attributes={"HELO": "relay.example"})]
SERVER_EVENTS: list[Event] = [
    R(code, "text") for code in (211, 214, 220, 221, 235, 250, 251, 252, 334, 354, 421, 450, 451, 452, 454, 500,
                                 501, 502, 503, 504, 530, 535, 550, 552, 553, 554)
] + [R(250, "mx", "PIPELINING"), R(250, "mx", "STARTTLS"), R(250, "mx", "AUTH PLAIN"),
     Noop(), MessageData(data=b"x"), EndOfMessage(), ConnectionClosed()]


def _snapshot(conn: Connection) -> tuple[Any, ...]:
    return (conn.state, conn.our_state, conn.their_state, conn.pending, conn.reply_owed, conn.recipients,
            tuple(conn.extensions.items()), conn.tls_active, conn.authenticated, conn.trailing_data)


def _try(conn: Connection, ev: Event) -> bytes | None:
    before = _snapshot(conn)
    try:
        out = conn.send(ev)
    except LocalProtocolError:
        assert _snapshot(conn) == before, f"a refused {ev!r} changed the connection"
        return None
    assert isinstance(out, bytes)
    return out


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("ev", CLIENT_EVENTS, ids=repr)
def test_client_state_event_matrix(state: State, ev: Event) -> None:
    conn = _client_at(state)
    out = _try(conn, ev)
    if out is None:
        return
    # Accepted: the event was valid here, and the connection can say what it did.
    if isinstance(ev, Command):
        assert conn.pending[-1] == ev and out.endswith(b"\r\n")
    if state in (State.GREETING, State.CLOSED, State.ERROR, State.TLS):
        pytest.fail(f"{ev!r} accepted in {state}")


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("ev", SERVER_EVENTS, ids=repr)
def test_server_state_event_matrix(state: State, ev: Event) -> None:
    conn = _server_at(state)
    out = _try(conn, ev)
    if out is None:
        return
    assert isinstance(ev, Reply)
    assert out.startswith(str(ev.code).encode()) and out.endswith(b"\r\n")
    if state in (State.CLOSED,):
        pytest.fail(f"{ev!r} accepted in {state}")


PROGRESS: dict[State, list[Event]] = {
    State.HELLO: [Ehlo(domain="c.example")],
    State.NO_SERVICE: [Quit()],
    State.READY: [Mail(reverse_path="a@b.example"), Auth(mechanism="PLAIN")],
    State.MAIL: [Rcpt(forward_path="c@d.example"), Rcpt(forward_path="nobody@d.example")],
    State.RCPT: [Data(), Bdat(size=3), Bdat(size=3, last=True), Bdat(size=0, last=True),
                 Rcpt(forward_path="e@d.example")],
    State.DATA: [MessageData(data=b"abc"), MessageData(data=b".\r\n"), EndOfMessage()],
    State.BDAT: [MessageData(data=b"abc"), Bdat(size=3), Bdat(size=0, last=True), EndOfMessage()],
    State.AUTH: [AuthResponse(data=b"\0a\0b"), AuthResponse(cancelled=True)],
}


@SETTINGS
@given(st.data(), st.booleans())
def test_random_walk_peers_never_disagree(data: st.DataObject, lmtp: bool) -> None:
    """Random client events and random server replies: every refused send leaves
    its connection untouched, and whenever nothing is in flight both peers are in
    the same state (SMTP and LMTP)."""
    config = Config(lmtp=lmtp)
    # Without TLS the server offers STARTTLS (and no AUTH) and the walk may go
    # through the hand-over; with TLS it offers AUTH.
    tls = data.draw(st.booleans())
    client = Connection(Role.CLIENT, config, tls_active=tls)
    server = Connection(Role.SERVER, config, tls_active=tls)
    xcaps = ("XCLIENT ADDR NAME HELO", "XFORWARD HELO ADDR") if hasattr(_ev, "Xclient") else ()
    caps = R(250, "mx", "PIPELINING", "CHUNKING", "SIZE 100000", "AUTH PLAIN" if tls else "STARTTLS", *xcaps)
    first = data.draw(st.sampled_from([R(220, "hi")] * 8 + [R(554, "no"), R(421, "bye")]))
    client.receive_data(server.send(first))
    client.next_event()
    for _ in range(data.draw(st.integers(1, 40))):
        if client.state in (State.CLOSED, State.ERROR):
            break
        if client.state is State.TLS:
            assert server.state is State.TLS
            client.tls_established()
            server.tls_established()
            caps = R(250, "mx", "PIPELINING", "CHUNKING", "SIZE 100000", "AUTH PLAIN", *xcaps)
        # Mostly the command that moves the session on, sometimes anything.
        progress = PROGRESS.get(client.our_state, [])
        if client.our_state is State.READY and "STARTTLS" in caps.lines:
            progress = [*progress, StartTLS()]
        if lmtp and client.our_state is State.HELLO:
            progress = [Lhlo(domain="c.example")]
        if progress and data.draw(st.integers(0, 9)) < 6:
            ev = data.draw(st.sampled_from(progress))
        else:
            ev = data.draw(st.sampled_from(CLIENT_EVENTS[:-2]))
        out = _try(client, ev)
        if out is None:
            continue
        server.receive_data(out) if out else None
        while True:
            try:
                sev = server.next_event()
            except RemoteProtocolError as exc:  # our client obeyed its own rules
                pytest.fail(f"our server refused what our client sent: {exc}")
            if sev is NEED_DATA or isinstance(sev, ConnectionClosed):
                break
            if sev is PAUSED:
                owed = server.reply_owed
                if owed is None:
                    break
                if isinstance(owed, (Ehlo, Lhlo)):
                    choices = [caps, R(550, "no")]
                else:
                    choices = [r for r in SERVER_EVENTS if isinstance(r, Reply) and r.code != 421]
                reply = data.draw(st.sampled_from(choices))
                if data.draw(st.integers(0, 9)) < 6:
                    reply = caps if isinstance(owed, (Ehlo, Lhlo)) else policy(owed)  # type: ignore[assignment]
                wire = _try(server, reply)  # type: ignore[arg-type]
                if wire is None:
                    reply = policy(owed)
                    wire = _try(server, reply)  # type: ignore[arg-type]
                    assert wire is not None, f"policy reply {reply!r} to {owed!r} refused"
                client.receive_data(wire)
                while True:
                    cev = client.next_event()
                    if cev is NEED_DATA or cev is PAUSED or isinstance(cev, ConnectionClosed):
                        break
                    assert isinstance(cev, Reply)
        if not client.pending and server.reply_owed is None and client.state is not State.ERROR:
            assert client.state is server.state, (client.state, server.state)
            assert client.recipients == server.recipients
