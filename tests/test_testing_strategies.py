"""smtpproto.testing: every strategy is run through the core.

Valid values must be accepted (and arrive equal on the other side); hostile
inputs must be refused the way SECURITY-CASES.md documents; nothing may raise
anything but ``RemoteProtocolError``.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
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
    UnknownCommand,
    Vrfy,
    Xclient,
    Xforward,
)
from smtpproto.message import DefectKind, Limits, Message, normalize_newlines, parse
from smtpproto._writers import format_command
from smtpproto import testing as T

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

CAPS = ("PIPELINING", "SIZE 10485760", "8BITMIME", "SMTPUTF8", "CHUNKING", "STARTTLS",
        "XCLIENT NAME ADDR PORT HELO PROTO", "XFORWARD NAME ADDR PORT HELO PROTO SOURCE")


# --------------------------------------------------------------------------- a permissive server


def answer(owed: Event, caps: tuple[str, ...] = CAPS) -> Reply:
    """What an accept-everything application says to ``owed``."""
    if isinstance(owed, (InvalidCommand, UnknownCommand, MessageRejected)):
        return owed.reply
    if isinstance(owed, (Ehlo, Lhlo)):
        return Reply(code=250, lines=["mx.example", *caps])
    if isinstance(owed, Data):
        return Reply(code=354, lines=["go ahead"])
    if isinstance(owed, StartTLS):
        return Reply(code=220, lines=["Ready to start TLS"], enhanced_status="2.0.0")
    if isinstance(owed, Quit):
        return Reply(code=221, lines=["Bye"], enhanced_status="2.0.0")
    if isinstance(owed, Auth):
        return Reply(code=535, lines=["no"], enhanced_status="5.7.8")
    if isinstance(owed, Xclient):
        return Reply(code=220, lines=["mx.example ESMTP"])
    if isinstance(owed, Help):
        return Reply(code=214, lines=["help"])
    if isinstance(owed, Vrfy):
        return Reply(code=252, lines=["maybe"])
    return Reply(code=250, lines=["Ok"])


@dataclass
class Served:
    """Events (per phase) the server core produced, and the error that ended it."""

    prefix: list[Event] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    error: RemoteProtocolError | None = None
    conn: Connection | None = None

    @property
    def ends(self) -> list[Event]:
        return [e for e in self.events if isinstance(e, (EndOfMessage, MessageRejected))]

    @property
    def commands(self) -> list[Event]:
        return [e for e in self.events if isinstance(e, Command)]

    def content(self) -> bytes:
        return b"".join(e.data for e in self.events if isinstance(e, MessageData))


def serve(prefix: tuple[bytes, ...], segments: tuple[bytes, ...], config: Config | None = None,
          caps: tuple[str, ...] = CAPS) -> Served:
    """Feed ``prefix`` (answered line by line) then each segment whole before
    answering; only ``RemoteProtocolError`` may come out of the core."""
    # CAPS offers AUTH in cleartext, which a server only does when told to.
    conn = Connection(Role.SERVER, (config or Config()).replace(allow_auth_without_tls=True))
    conn.send(Reply(code=220, lines=["mx.example ESMTP"]))
    out = Served(conn=conn)

    def drain(log: list[Event]) -> bool:
        while True:
            try:
                ev = conn.next_event()
            except RemoteProtocolError as exc:
                out.error = exc
                return False
            if ev is NEED_DATA:
                return True
            if ev is PAUSED:
                owed = conn.reply_owed
                if owed is None:
                    return True
                conn.send(answer(owed, caps))
                continue
            assert isinstance(ev, Event)
            log.append(ev)
            if isinstance(ev, ConnectionClosed):
                return False

    for line in prefix:
        conn.receive_data(line)
        assert drain(out.prefix), out.error
    for seg in segments:
        conn.receive_data(seg)
        if not drain(out.events):
            break
    return out


# --------------------------------------------------------------------------- valid values


def client_after_ehlo(caps: tuple[str, ...] = CAPS[:4]) -> tuple[Connection, Connection]:
    client, server = Connection(Role.CLIENT), Connection(Role.SERVER)
    client.receive_data(server.send(Reply(code=220, lines=["mx.example"])))
    assert isinstance(client.next_event(), Reply)
    server.receive_data(client.send(Ehlo(domain="c.example")))
    assert isinstance(server.next_event(), Ehlo)
    client.receive_data(server.send(Reply(code=250, lines=["mx.example", *caps])))
    assert isinstance(client.next_event(), Reply)
    return client, server


def one_event(conn: Connection) -> Event:
    ev = conn.next_event()
    assert isinstance(ev, Event), ev
    return ev


@FAST
@given(T.domains(), T.domains(utf8=True), T.address_literals())
def test_domains_arrive_equal_in_ehlo(ascii_name: str, utf8_name: str, literal: str) -> None:
    assert ascii_name.isascii() and not utf8_name.isascii()
    for name in (ascii_name, literal):
        served = serve((), ((f"EHLO {name}\r\n").encode(),))
        assert served.events == [Ehlo(domain=name)], served.error


@FAST
@given(st.booleans(), st.data())
def test_addresses_arrive_equal_in_mail_and_rcpt(utf8: bool, data: st.DataObject) -> None:
    sender = data.draw(T.addresses(utf8=utf8))
    recipient = data.draw(T.addresses(utf8=utf8))
    assert sender.isascii() != utf8 or recipient.isascii() != utf8
    client, server = client_after_ehlo()
    params: dict[str, str | None] = {"SMTPUTF8": None} if utf8 else {}
    mail = Mail(reverse_path=sender, params=params)
    server.receive_data(client.send(mail))
    assert one_event(server) == mail
    client.receive_data(server.send(Reply(code=250, lines=["ok"])))
    one_event(client)
    rcpt = Rcpt(forward_path=recipient)
    server.receive_data(client.send(rcpt))
    assert one_event(server) == rcpt


@FAST
@given(T.esmtp_params())
def test_esmtp_params_are_parsed_or_refused_as_unadvertised(params: dict[str, str | None]) -> None:
    mail = Mail(reverse_path="a@x.example", params=params)
    line = (format_command(mail) + "\r\n").encode()
    served = serve((b"EHLO c.example\r\n",), (line,))
    assert served.error is None
    (ev,) = served.events
    if isinstance(ev, InvalidCommand):
        # RFC 5321 §4.1.1.11 / §3.3: unknown or malformed parameters get 555 or 501.
        assert ev.reply.code in (501, 552, 555), ev
    else:
        assert ev == mail


#: The normal commands that put a server where each command is acceptable.
SETUP: dict[type, tuple[bytes, ...]] = {
    Ehlo: (), Helo: (), Quit: (), Noop: (), Rset: (), Vrfy: (), Expn: (), Help: (),
    Mail: (b"EHLO c.example\r\n",),
    StartTLS: (b"EHLO c.example\r\n",),
    Auth: (b"EHLO c.example\r\n",),
    Xclient: (b"EHLO c.example\r\n",),
    Xforward: (b"EHLO c.example\r\n",),
    Rcpt: (b"EHLO c.example\r\n", b"MAIL FROM:<a@x.example>\r\n"),
    Data: (b"EHLO c.example\r\n", b"MAIL FROM:<a@x.example>\r\n", b"RCPT TO:<b@y.example>\r\n"),
    Bdat: (b"EHLO c.example\r\n", b"MAIL FROM:<a@x.example>\r\n", b"RCPT TO:<b@y.example>\r\n"),
}


@FAST
@given(T.commands())
def test_every_command_arrives_equal(cmd: Command) -> None:
    if isinstance(cmd, Lhlo):
        served = serve((), ((format_command(cmd) + "\r\n").encode(),), Config(lmtp=True))
        assert served.events == [cmd]
        return
    if isinstance(cmd, (Mail, Rcpt)) and cmd.params:
        cmd = type(cmd)(**{**{f: getattr(cmd, f) for f in cmd.__dataclass_fields__}, "params": {}})
    config = Config(allow_auth_without_tls=True)
    line = (format_command(cmd) + "\r\n").encode()
    caps = CAPS + (f"AUTH {cmd.mechanism}",) if isinstance(cmd, Auth) else CAPS
    served = serve(SETUP[type(cmd)], (line,), config, caps)
    assert served.error is None, served.error
    assert served.events[:1] == [cmd], served.events


@FAST
@given(T.replies(codes=[250, 251, 252, 450, 451, 452, 500, 501, 502, 503, 504, 550, 551, 552, 553, 554]))
def test_replies_arrive_equal(reply: Reply) -> None:
    client, server = client_after_ehlo()
    server.receive_data(client.send(Noop()))
    assert one_event(server) == Noop()
    client.receive_data(server.send(reply))
    got = one_event(client)
    assert got == reply
    assert got.enhanced_status == reply.enhanced_status


@FAST
@given(T.replies(codes=[220]))
def test_greetings_arrive_equal(reply: Reply) -> None:
    client, server = Connection(Role.CLIENT), Connection(Role.SERVER)
    client.receive_data(server.send(reply))
    assert one_event(client) == reply


@FAST
@given(T.message_bodies(), st.data())
def test_message_bodies_arrive_unstuffed_with_crlf(body: bytes, data: st.DataObject) -> None:
    client, server = client_after_ehlo()
    for cmd in (Mail(reverse_path="a@x.example", params={"BODY": "8BITMIME"}), Rcpt(forward_path="b@y.example"),
                Data()):
        server.receive_data(client.send(cmd))
        owed = one_event(server)
        client.receive_data(server.send(answer(owed)))
        one_event(client)
    wire = b""
    for piece in data.draw(T.chunkings(body)):
        wire += client.send(MessageData(data=piece))
    wire += client.send(EndOfMessage())
    events: list[Event] = []
    for chunk in data.draw(T.chunkings(wire)):
        assert chunk
        server.receive_data(chunk)
        while (ev := server.next_event()) not in (NEED_DATA, PAUSED):
            assert isinstance(ev, Event)
            events.append(ev)
    assert [type(e) for e in events if not isinstance(e, MessageData)] == [EndOfMessage]
    assert b"".join(e.data for e in events if isinstance(e, MessageData)) == T.expected_content(body)


@FAST
@given(T.transcripts())
def test_transcripts_are_accepted_in_memory(transcript: T.Transcript) -> None:
    client, server = Connection(Role.CLIENT), Connection(Role.SERVER)
    client.receive_data(server.send(Reply(code=220, lines=["mx.example"])))
    assert isinstance(client.next_event(), Reply)
    delivered: list[bytes] = []
    content = b""
    for ev in transcript.events():
        wire = client.send(ev)
        if wire:  # empty content sends nothing (and b"" would mean EOF)
            server.receive_data(wire)
        while (got := server.next_event()) is not NEED_DATA:
            if got is PAUSED:
                owed = server.reply_owed
                assert owed is not None
                client.receive_data(server.send(answer(owed)))
                reply = client.next_event()
                assert isinstance(reply, Reply) and reply.code < 400, (owed, reply)
                continue
            if isinstance(got, MessageData):
                content += got.data
            elif isinstance(got, EndOfMessage):
                delivered.append(content)
                content = b""
            elif isinstance(got, ConnectionClosed):
                break
    assert delivered == [T.expected_content(tx.body) for tx in transcript.transactions]


def test_replay_against_the_threads_server() -> None:
    from smtpproto.adapters import Envelope, Handler, Session
    from smtpproto.adapters.sockets import SMTPServer

    class Keep(Handler):
        def __init__(self) -> None:
            self.got: list[bytes] = []

        def on_message(self, session: Session, envelope: Envelope) -> None:
            self.got.append(envelope.content)

    handler = Keep()
    with SMTPServer(handler, host="127.0.0.1", port=0) as server:
        host, port = server.address  # type: ignore[misc]

        @settings(max_examples=15, deadline=None)
        @given(T.transcripts())
        def check(transcript: T.Transcript) -> None:
            handler.got.clear()
            with socket.create_connection((host, port), timeout=5) as sock:
                result = T.replay(sock, transcript)
            assert result.accepted == len(transcript.transactions) and result.refused == 0
            assert handler.got == [T.expected_content(tx.body) for tx in transcript.transactions]

        check()


@FAST
@given(T.auth_responses())
def test_auth_responses_arrive_equal(response: AuthResponse) -> None:
    config = Config(allow_auth_without_tls=True)
    client, server = Connection(Role.CLIENT, config), Connection(Role.SERVER, config)
    client.receive_data(server.send(Reply(code=220, lines=["mx.example"])))
    one_event(client)
    for cmd, reply in ((Ehlo(domain="c.example"), Reply(code=250, lines=["mx.example", "AUTH X-TEST"])),
                       (Auth(mechanism="X-TEST"), Reply(code=334, lines=[""]))):
        server.receive_data(client.send(cmd))
        assert one_event(server) == cmd
        client.receive_data(server.send(reply))
        assert one_event(client) == reply
    server.receive_data(client.send(response))
    assert one_event(server) == response


# --------------------------------------------------------------------------- hostile inputs


@given(T.end_of_data_variants())
def test_end_of_data_variants_are_the_catalogue_ones(variant: bytes) -> None:
    assert variant in T.EOD_VARIANTS and variant != b"\r\n.\r\n"
    assert variant.strip(b"\r\n") == b"."
    assert variant.replace(b"\r\n", b"") .count(b"\r") + variant.replace(b"\r\n", b"").count(b"\n") > 0


@FAST
@given(T.smuggling_inputs(), st.sampled_from(["reject", "normalize"]))
def test_smuggling_inputs_end_data_only_at_the_real_end(h: T.Hostile, policy: str) -> None:
    served = serve(h.prefix, h.segments, Config(bare_newline=policy))  # type: ignore[arg-type]
    assert served.error is None
    assert served.commands == [], "content was read as commands"
    assert len(served.ends) == 1 and served.events[-1] is served.ends[0]
    if policy == "reject":
        (end,) = served.ends
        assert isinstance(end, MessageRejected)
        assert (end.reply.code, end.reply.enhanced_status) == (550, "5.5.2")
    else:
        # One message holding every byte that was sent (line ends and dots
        # aside: they are normalized and unstuffed).
        assert isinstance(served.ends[0], EndOfMessage)
        sent = h.data[: -3 if h.data.endswith(b"\r\n.\r\n") else len(h.data)]
        assert served.content().translate(None, b"\r\n.") == sent.translate(None, b"\r\n.")


@FAST
@given(T.pipelining_after_data())
def test_pipelined_content_before_354_is_a_sync_error(h: T.Hostile) -> None:
    served = serve(h.prefix, h.segments)
    assert [type(e) for e in served.events if not isinstance(e, MessageData)] == [EndOfMessage, Mail, Rcpt, Data]
    assert served.error is not None and served.error.reply is not None
    assert (served.error.reply.code, served.error.reply.enhanced_status) == (554, "5.5.0")


@FAST
@given(T.starttls_injections())
def test_bytes_behind_starttls_are_never_commands(h: T.Hostile) -> None:
    served = serve(h.prefix, h.segments)
    assert served.events == [StartTLS()]
    assert served.error is not None and served.error.reply is not None
    assert served.error.reply.code == 554


@FAST
@given(T.bare_newline_commands())
def test_bare_newline_in_a_command_is_refused(h: T.Hostile) -> None:
    served = serve(h.prefix, h.segments)
    if not served.events:
        assert served.error is not None and served.error.reply is not None
        assert served.error.reply.code >= 500
        return
    first = served.events[0]
    assert isinstance(first, (InvalidCommand, UnknownCommand)), served.events
    assert first.reply.code >= 500
    if b"\n" in h.data[:-2]:
        assert (first.reply.code, first.reply.enhanced_status) == (500, "5.5.2")


def test_nothing_after_a_bare_lf_in_the_same_line_runs() -> None:
    # SECURITY-CASES S-15: "no command from that line is executed" - the line
    # ends at CRLF; with PIPELINING negotiated the tail is not refused by sync.
    served = serve((b"EHLO c.example\r\n",), (b"RSET\nMAIL FROM:<admin@victim.example>\r\n",))
    assert served.commands == []


@settings(max_examples=20, deadline=None)
@given(T.long_command_lines())
def test_long_command_lines_are_refused_whole(h: T.Hostile) -> None:
    served = serve(h.prefix, h.segments)
    assert served.error is None
    assert [type(e) for e in served.events] == [InvalidCommand, Noop]
    first = served.events[0]
    assert isinstance(first, InvalidCommand) and first.reply.code == 500


@settings(max_examples=150, deadline=None)
@given(T.mutated(T.hostile_inputs()), st.sampled_from(["reject", "normalize"]))
def test_mutated_hostile_inputs_raise_only_documented_errors(h: T.Hostile, policy: str) -> None:
    served = serve(h.prefix, h.segments, Config(bare_newline=policy))  # type: ignore[arg-type]
    assert served.conn is not None
    if served.error is not None:
        assert served.conn.state.name in ("ERROR", "CLOSED")
    real_ends = (b"\r\n" + h.data).count(b"\r\n.\r\n") if h.phase == "data" else h.data.count(b"\r\n.\r\n")
    bdat = any(isinstance(e, Bdat) for e in served.events)
    if not bdat:
        assert len(served.ends) <= real_ends, (served.events, h)
    buffered, _ = served.conn.trailing_data
    assert len(buffered) <= len(h.data)


@FAST
@given(st.binary(max_size=80), st.data())
def test_mutations_and_chunkings_keep_their_promises(data: bytes, d: st.DataObject) -> None:
    pieces = d.draw(T.chunkings(data))
    assert b"".join(pieces) == data and all(pieces) == bool(data)
    mutated = d.draw(T.mutations(data))
    assert isinstance(mutated, bytes)


def test_importing_smtpproto_does_not_import_hypothesis() -> None:
    code = "import sys, smtpproto, smtpproto.adapters; assert 'hypothesis' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)


def test_the_fuzzing_doc_example_runs_against_our_server() -> None:
    # docs/fuzzing.md "Fuzz your own server in ten lines": run its block with
    # ADDRESS pointed at our threads server, then call every test it defines.
    import re
    from pathlib import Path

    from smtpproto.adapters import Handler
    from smtpproto.adapters.sockets import SMTPServer

    page = (Path(__file__).resolve().parent.parent / "docs" / "fuzzing.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```", page, re.DOTALL | re.MULTILINE)
    assert len(blocks) == 1
    code = blocks[0]
    body_lines = [line for line in code.splitlines() if line.strip()]
    assert len(body_lines) <= 16  # "ten lines" of test, plus imports and the address
    assert 'ADDRESS = ("127.0.0.1", 8025)' in code
    with SMTPServer(Handler(), host="127.0.0.1", port=0) as server:
        host, port = server.address  # type: ignore[misc]
        namespace: dict[str, object] = {}
        # A pseudo file name: tools that look up the source (hypothesis, on 3.12+
        # via tokenize) must not read the Markdown page as Python.
        exec(compile(code.replace("8025", str(port)), "<docs/fuzzing.md example>", "exec"), namespace)
        tests = [f for name, f in namespace.items() if name.startswith("test_") and callable(f)]
        assert len(tests) == 2
        for test in tests:
            test()


# --------------------------------------------------------------------------- MIME messages


def _leaves(msg: Message) -> list[Message]:
    """Non-multipart parts in order; a message/rfc822 part is one leaf."""
    out, stack = [], [msg]
    while stack:
        node = stack.pop()
        if node.is_multipart:
            stack.extend(reversed(node.parts))
        else:
            out.append(node)
    return out


def assert_parses_back(built: T.BuiltMessage, msg: Message) -> None:
    """``msg`` holds what ``built`` was made from (see BuiltMessage)."""
    assert msg.get("subject") == (None if built.subject is None else built.subject.strip(" \t"))  # RFC 5322 WSP only: U+00A0 is text
    expected: list[tuple[str, bytes, str | None]] = []
    if built.text is not None:
        expected.append(("text/plain", normalize_newlines(built.text.encode("utf-8")), None))
    if built.html is not None:
        expected.append(("text/html", normalize_newlines(built.html.encode("utf-8")), None))
    if not expected and not built.attachments and not built.inline:
        expected.append(("text/plain", b"", None))  # the builder's empty body
    expected += [(a.resolved_type(), a.data, a.filename) for a in built.inline + built.attachments]
    leaves = _leaves(msg)
    assert [(p.content_type, p.decoded_body(), p.filename) for p in leaves] == expected
    bodies = [t for t in (built.text, built.html) if t is not None]
    for part, text in zip(leaves, bodies):
        assert part.text() == normalize_newlines(text.encode("utf-8")).decode("utf-8")
    nested = [p for p in leaves if p.content_type == "message/rfc822"]
    assert len(nested) == len(built.nested)
    for part, inner in zip(nested, built.nested):
        (enclosed,) = part.parts
        assert_parses_back(inner, enclosed)


@FAST
@given(T.built_messages())
def test_built_messages_parse_back_to_what_was_built(built: T.BuiltMessage) -> None:
    msg = built.message()
    assert msg.to_bytes() == built.data
    assert_parses_back(built, msg)


@FAST
@given(T.built_messages(), st.sampled_from(["reject", "normalize"]))
def test_mime_messages_cross_smtp_unchanged(built: T.BuiltMessage, policy: str) -> None:
    # Wire-safe: CRLF only, no line over 998 octets, 8-bit only for SMTPUTF8;
    # so DATA delivers them byte for byte under either bare-newline policy.
    data = built.data
    assert data.count(b"\r") == data.count(b"\n") == data.count(b"\r\n")
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    assert data.isascii() or built.smtputf8
    client, server = Connection(Role.CLIENT), Connection(Role.SERVER, Config(bare_newline=policy))  # type: ignore[arg-type]
    client.receive_data(server.send(Reply(code=220, lines=["mx.example"])))
    one_event(client)
    params: dict[str, str | None] = {"BODY": "8BITMIME", **({"SMTPUTF8": None} if built.smtputf8 else {})}
    for cmd in (Ehlo(domain="c.example"), Mail(reverse_path="a@x.example", params=params),
                Rcpt(forward_path="b@y.example"), Data()):
        server.receive_data(client.send(cmd))
        client.receive_data(server.send(answer(one_event(server), CAPS[:4])))
        one_event(client)
    server.receive_data(client.send(MessageData(data=data)) + client.send(EndOfMessage()))
    events = []
    while (ev := server.next_event()) not in (NEED_DATA, PAUSED):
        events.append(ev)
    assert isinstance(events[-1], EndOfMessage)
    assert b"".join(e.data for e in events if isinstance(e, MessageData)) == T.expected_content(data)


@FAST
@given(T.built_messages(binary=True, max_nesting=0))
def test_binary_built_messages_parse_back_too(built: T.BuiltMessage) -> None:
    assert_parses_back(built, built.message())


def _defect_kinds(data: bytes) -> set[DefectKind]:
    msg = parse(data)
    for part in msg.walk():
        part.decoded_body()
        part.filename
        part.get("subject")
    return {d.kind for d in msg.check()}


@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")  # the repr of a 100 kB example
@pytest.mark.parametrize(("family", "kind"), [
    ("_boundary_in_content", None),
    ("_overlong_lines", DefectKind.HEADER_SECTION_TOO_LARGE),
    ("_broken_boundaries", DefectKind.MISSING_BOUNDARY_PARAMETER),
    ("_broken_boundaries", DefectKind.CLOSE_BOUNDARY_MISSING),
    ("_broken_boundaries", DefectKind.START_BOUNDARY_NOT_FOUND),
    ("_bad_transfer_encoding", DefectKind.INVALID_BASE64),
    ("_bad_transfer_encoding", DefectKind.INVALID_QUOTED_PRINTABLE),
    ("_bad_transfer_encoding", DefectKind.COMPOSITE_TRANSFER_ENCODING),
    ("_deep_nesting", DefectKind.DEPTH_LIMIT),
    ("_deep_nesting", DefectKind.PART_LIMIT),
    ("_deep_nesting", DefectKind.ENCODED_NESTING_LIMIT),
    ("_split_encoded_words", DefectKind.INVALID_ENCODED_WORD),
    ("_rfc2231_disorder", DefectKind.INVALID_PARAMETER),
    ("_header_injection", DefectKind.MISSING_HEADER_BODY_SEPARATOR),
    ("_header_injection", DefectKind.DUPLICATE_HEADER),
])
def test_hostile_mime_families_reach_their_defects(family: str, kind: DefectKind | None) -> None:
    # Each family of hostile_mime() really produces what it is named for:
    # the parser's defect for it (or, for boundary traps, a part whose body
    # holds a line starting with its own delimiter, which must not split it).
    from hypothesis import find

    limits = Limits()
    strategy = getattr(T, family)(limits) if family in ("_overlong_lines", "_deep_nesting") else getattr(T, family)()
    quick = settings(max_examples=300, database=None)
    if kind is None:
        find(strategy, lambda d: any(b"\n--" + p.params.get("boundary", "").encode() + b"x" in d
                                     for p in parse(d).walk() if p.is_multipart), settings=quick)
    else:
        find(strategy, lambda d: kind in _defect_kinds(d), settings=quick)


@FAST
@given(T.hostile_mime())
def test_hostile_mime_is_read_without_exceptions(data: bytes) -> None:
    msg = parse(data)
    assert msg.to_bytes() == data
    assert DefectKind.INTERNAL_ERROR not in _defect_kinds(data)


def test_a_parameter_that_looks_like_an_encoded_word_comes_back() -> None:
    # Found by test_built_messages_parse_back_to_what_was_built: the writer put
    # filename="=?utf-8?q?a?=" in a plain quoted string, which parsers
    # (this one, and mail clients) decode as RFC 2047, giving back "a".
    from smtpproto.message import Attachment, build, encode_param, parse_param_header

    for utf8 in (False, True):
        for name in ("=?utf-8?q?a?=", "x=?y", "=?utf-8?q?a?=\u00e9"):
            msg = build(attachments=[Attachment(b"x", filename=name)], smtputf8=utf8, seed=1)
            assert msg.parts[0].filename == name
    assert parse_param_header("a/b; " + encode_param("name", "=?utf-8?b?YQ==?=")).params == {"name": "=?utf-8?b?YQ==?="}
