"""The client session driver without any I/O: a ClientSession's actions run
against our server Connection in memory.  This is what every adapter relies on,
so the decisions are tested once, exactly, here."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from smtpproto import (
    NEED_DATA,
    PAUSED,
    Auth,
    AuthResponse,
    Bdat,
    Config,
    Connection,
    ConnectionClosed,
    Data,
    Ehlo,
    EndOfMessage,
    Lhlo,
    Mail,
    MessageData,
    Quit,
    Rcpt,
    Reply,
    Role,
    StartTLS as StartTLSCmd,
    State,
)
from smtpproto import sasl
from smtpproto.adapters._client_flow import (
    ClientOptions,
    ClientSession,
    Close,
    Read,
    SMTPAuthenticationError,
    SMTPProtocolViolation,
    SMTPRecipientsRefused,
    StartTLS,
    Write,
    prepare_message,
)

OK = Reply(code=250, lines=("ok",))


@dataclass
class Memory:
    """Our server Connection in memory with a reply policy per command."""

    caps: list[str] = field(default_factory=lambda: ["PIPELINING", "8BITMIME"])
    refuse: set[str] = field(default_factory=set)
    lmtp: bool = False
    starttls: bool = False
    inject_after_starttls: bytes = b""
    auth: Any = None  # a sasl ServerMechanism factory
    refuse_sender: bool = False
    bdat_fail_at: int | None = None  # answer the n-th BDAT (1-based) with 552
    content: bytearray = field(default_factory=bytearray)
    seen: list[object] = field(default_factory=list)
    actions: list[object] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.conn = Connection(Role.SERVER, Config(lmtp=self.lmtp, allow_auth_without_tls=True))
        self.to_client = bytearray(self.conn.send(Reply(code=220, lines=("mem.test",))))
        self._mech: Any = None
        self._rcpts: list[str] = []

    def _answer(self, owed: object) -> Reply:
        if isinstance(owed, (Ehlo, Lhlo)):
            caps = list(self.caps)
            if self.starttls and not self.conn.tls_active:
                caps.append("STARTTLS")
            return Reply(code=250, lines=("mem.test", *caps))
        if isinstance(owed, Mail) and self.refuse_sender:
            return Reply(code=550, lines=("sender refused",), enhanced_status="5.7.1")
        if isinstance(owed, (Bdat, EndOfMessage)) and self.bdat_fail_at is not None:
            chunks = sum(isinstance(e, Bdat) for e in self.seen)
            if chunks == self.bdat_fail_at:
                return Reply(code=552, lines=("chunk refused",), enhanced_status="5.3.4")
        if isinstance(owed, Rcpt):
            if owed.forward_path in self.refuse:
                return Reply(code=550, lines=("no",), enhanced_status="5.1.1")
            self._rcpts.append(owed.forward_path)
            return OK
        if isinstance(owed, Data):
            return Reply(code=354, lines=("go",))
        if isinstance(owed, StartTLSCmd):
            return Reply(code=220, lines=("go ahead",))
        if isinstance(owed, Quit):
            return Reply(code=221, lines=("bye",))
        if isinstance(owed, (Auth, AuthResponse)):
            if isinstance(owed, Auth):
                self._mech = self.auth(owed.mechanism)
                step = self._mech.start(owed.initial_response)
            else:
                step = self._mech.step(owed.data)
            if isinstance(step, sasl.Challenge):
                return Reply(code=334, lines=(base64.b64encode(step.data).decode(),))
            if isinstance(step, sasl.Success):
                return Reply(code=235, lines=("welcome",), enhanced_status="2.7.0")
            return Reply(code=step.code, lines=(step.text,), enhanced_status=step.enhanced)
        if hasattr(owed, "reply"):
            return owed.reply  # type: ignore[no-any-return]
        return OK

    def feed(self, data: bytes) -> None:
        self.conn.receive_data(data)
        while True:
            ev = self.conn.next_event()
            if ev is NEED_DATA:
                return
            if ev is PAUSED:
                if self.conn.state is State.TLS:
                    return
                owed = self.conn.reply_owed
                reply = self._answer(owed)
                self.to_client += self.conn.send(reply)
                if isinstance(owed, StartTLSCmd) and reply.code == 220:
                    self.to_client += self.inject_after_starttls
                continue
            if isinstance(ev, ConnectionClosed):
                return
            self.seen.append(ev)
            if isinstance(ev, MessageData):
                self.content += ev.data

    def run(self, flow: Any) -> Any:
        """Perform the flow's actions in memory; returns the flow's result."""
        value: Any = None
        while True:
            try:
                action = flow.send(value)
            except StopIteration as stop:
                return stop.value
            self.actions.append(action)
            value = None
            if isinstance(action, Write):
                self.feed(action.data)
            elif isinstance(action, Read):
                assert self.to_client, "the client waits for a reply the server does not owe"
                value, self.to_client[:] = bytes(self.to_client), b""
            elif isinstance(action, StartTLS):
                self.conn.tls_established()  # TLS itself is the adapter's business
            elif isinstance(action, Close):
                pass


def session(**kw: Any) -> ClientSession:
    kw.setdefault("starttls", "never")
    kw.setdefault("local_hostname", "client.test")
    return ClientSession(ClientOptions(**kw))


def send(mem: Memory, s: ClientSession, raw: bytes, sender: str = "a@x.example",
         rcpts: tuple[str, ...] = ("b@y.example",)) -> Any:
    snd, rc, out = prepare_message(raw, sender, list(rcpts), chunk_size=s.options.chunk_size)
    return mem.run(s.send_mail(snd, rc, out))


def writes(mem: Memory) -> list[bytes]:
    return [a.data for a in mem.actions if isinstance(a, Write)]


def test_pipelined_group_is_one_write() -> None:
    mem = Memory()
    s = session()
    mem.run(s.handshake())
    mem.actions.clear()
    result = send(mem, s, b"Subject: x\r\n\r\n.hi\r\n", rcpts=("b@y.example", "c@y.example"))
    assert writes(mem)[0] == (b"MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\n"
                              b"RCPT TO:<c@y.example>\r\nDATA\r\n")
    assert b"".join(writes(mem)[1:]) == b"Subject: x\r\n\r\n..hi\r\n.\r\n"
    assert bytes(mem.content) == b"Subject: x\r\n\r\n.hi\r\n"
    assert result.accepted == ["b@y.example", "c@y.example"]


CFG = Config(timeout_greeting=7, timeout_mail=8, timeout_rcpt=9, timeout_data_init=10,
             timeout_data_term=11, timeout_data_block=12, timeout_other=13)


def test_timeouts_are_what_the_core_deadline_says() -> None:
    """Each Read carries conn.deadline() at the moment the client starts
    waiting; content writes carry the data-block timeout."""
    mem = Memory(caps=["8BITMIME"])
    s = session(config=CFG)
    expected: list[float] = []
    flow = s.handshake()
    value: Any = None
    while True:
        try:
            action = flow.send(value)
        except StopIteration:
            break
        value = None
        if isinstance(action, Read):
            deadline = s.conn.deadline()
            expected.append(deadline.seconds if deadline else 13)
            assert action.timeout == expected[-1]
            value, mem.to_client[:] = bytes(mem.to_client), b""
        elif isinstance(action, Write):
            mem.feed(action.data)
    assert expected
    s.options = ClientOptions(**{**s.options.__dict__, "chunk_size": 100})
    send(mem, s, b"\r\n" + b"body line\r\n" * 200)
    content_writes = [a.timeout for a in mem.actions if isinstance(a, Write)][3:]
    assert len(content_writes) > 10 and set(content_writes) == {12}


def test_read_timeouts_follow_rfc5321_per_command() -> None:
    mem = Memory(caps=["8BITMIME"])  # no PIPELINING: one command at a time
    s = session(config=CFG)
    mem.run(s.handshake())
    send(mem, s, b"\r\nbody\r\n")
    reads = [a.timeout for a in mem.actions if isinstance(a, Read)]
    assert reads == [7, 13, 8, 9, 10, 11]  # greeting, EHLO, MAIL, RCPT, DATA, end of data


def test_core_deadline_for_the_greeting() -> None:
    c = Connection(Role.CLIENT, CFG)
    assert c.deadline() is not None and c.deadline().name == "greeting"  # type: ignore[union-attr]


def test_t06_injection_after_starttls_raises_before_tls() -> None:
    mem = Memory(starttls=True, inject_after_starttls=b"250-mem.test\r\n250 AUTH PLAIN\r\n")
    s = session(starttls="required")
    with pytest.raises(SMTPProtocolViolation, match="T-06"):
        mem.run(s.handshake())
    assert not any(isinstance(a, StartTLS) for a in mem.actions)
    assert isinstance(mem.actions[-1], Close) and not s.usable


def test_starttls_hand_over_forgets_pre_tls_capabilities() -> None:
    mem = Memory(starttls=True, caps=["PIPELINING"])
    s = session(starttls="required")
    mem.run(s.handshake())
    assert s.tls_active and [type(a).__name__ for a in mem.actions].count("StartTLS") == 1
    assert "STARTTLS" not in s.extensions and s.extensions.pipelining
    ehlos = [e for e in mem.seen if isinstance(e, Ehlo)]
    assert len(ehlos) == 2


def test_scram_is_preferred_over_plain() -> None:
    stored = sasl.ScramCredentials.derive("pencil", hash_name="sha256", iterations=4096)

    class Backend(sasl.SaslBackend):
        def lookup_scram(self, authcid: str, hash_name: str) -> sasl.ScramCredentials | None:
            return stored if authcid == "user" else None

    mem = Memory(starttls=True, caps=["PIPELINING", "AUTH PLAIN SCRAM-SHA-256"],
                 auth=lambda name: sasl.server_mechanism(name, Backend()))
    s = session(starttls="required", credentials=sasl.Credentials(username="user", password="pencil"))
    mem.run(s.handshake())
    assert [a.mechanism for a in mem.seen if isinstance(a, Auth)] == ["SCRAM-SHA-256"]
    assert s.conn.authenticated

    mem2 = Memory(starttls=True, caps=["AUTH SCRAM-SHA-256"], auth=lambda name: sasl.server_mechanism(name, Backend()))
    s2 = session(starttls="required", credentials=sasl.Credentials(username="user", password="wrong"))
    with pytest.raises(SMTPAuthenticationError):
        mem2.run(s2.handshake())


def test_pipelined_total_refusal_then_rset() -> None:
    mem = Memory(refuse={"b@y.example"})
    s = session()
    mem.run(s.handshake())
    with pytest.raises(SMTPRecipientsRefused):
        send(mem, s, b"\r\nx\r\n")
    assert s.conn.state is State.MAIL
    send(mem, s, b"\r\ny\r\n", rcpts=("c@y.example",))
    assert bytes(mem.content) == b"\r\ny\r\n"


body_bytes = st.lists(st.sampled_from([b".", b"\r", b"\n", b"\r\n", b"a", b"..", b"\r\n.\r\n", b"\x80"]),
                      max_size=40).map(b"".join)


def normalized(body: bytes) -> bytes:
    import re

    out = re.sub(rb"\r\n|\r|\n", b"\r\n", body)
    return out if out.endswith(b"\r\n") or not out else out + b"\r\n"


@settings(max_examples=150)
@given(body=body_bytes, chunk=st.integers(1, 9), use_bdat=st.booleans())
def test_any_body_arrives_once_and_exactly(body: bytes, chunk: int, use_bdat: bool) -> None:
    """Hypothesis (H-10 / property 3): whatever the body, our server sees one
    message whose content is the body with CRLF line ends."""
    caps = ["PIPELINING", "8BITMIME"] + (["CHUNKING"] if use_bdat else [])
    mem = Memory(caps=caps)
    s = session(chunk_size=chunk)
    mem.run(s.handshake())
    body = b"\r\n" + body  # an empty header section: the rest is body
    result = send(mem, s, body)
    want = normalized(body)
    if use_bdat:
        want = re_bdat(body)
    assert bytes(mem.content) == want
    assert sum(isinstance(e, Mail) for e in mem.seen) == 1
    assert result.body == ("BDAT" if use_bdat else "DATA")


def re_bdat(body: bytes) -> bytes:
    import re

    return re.sub(rb"\r\n|\r|\n", b"\r\n", body)  # BDAT: CRLF repair, no final CRLF added


def test_lmtp_flow_waits_for_rcpt_replies_before_bdat_last() -> None:
    """The client never pipelines BDAT LAST behind unanswered RCPTs in LMTP:
    how many final replies come depends on those RCPT replies."""
    mem = Memory(lmtp=True, refuse={"bad@y.example"}, caps=["PIPELINING", "CHUNKING"])
    s = session(lmtp=True)
    mem.run(s.handshake())
    mem.actions.clear()
    result = send(mem, s, b"\r\nhi\r\n", rcpts=("bad@y.example", "b@y.example"))
    group, *rest = writes(mem)
    assert b"BDAT" not in group and rest[0].startswith(b"BDAT 6 LAST\r\n")
    assert result.recipients["bad@y.example"].code == 550 and result.recipients["b@y.example"].code == 250


def test_core_lmtp_pipelined_bdat_last_after_refused_rcpt() -> None:
    c = Connection(Role.CLIENT, Config(lmtp=True))
    c.receive_data(b"220 hi\r\n")
    c.next_event()
    c.send(Lhlo(domain="x.example"))
    c.receive_data(b"250-hi\r\n250-PIPELINING\r\n250 CHUNKING\r\n")
    c.next_event()
    for ev in (Mail(reverse_path="a@x.example"), Rcpt(forward_path="bad@y.example"),
               Rcpt(forward_path="b@y.example"), Bdat(size=3, last=True), MessageData(data=b"x\r\n"),
               EndOfMessage()):
        c.send(ev)
    c.receive_data(b"250 ok\r\n550 no\r\n250 ok\r\n250 2.0.0 <b@y.example> delivered\r\n")
    replies = [c.next_event() for _ in range(4)]
    assert replies[-1].recipient == Rcpt(forward_path="b@y.example")  # type: ignore[union-attr]
    # RFC 2033 §4.2: one reply per *accepted* recipient; the transaction is over.
    assert c.pending == () and c.state is State.READY


# ----------------------------------------------------------------- C-01..C-04, C-06 at the client facade level

INJECTIONS = [
    ("sender", "a@x.example\r\nRCPT TO:<hijacker@evil.example>"),
    ("sender", "a@x.example\rRCPT TO:<h@e.example>"),
    ("sender", "a@x.example\x00"),
    ("sender", "a@x.example\tEVIL"),
    ("sender", "a@x.example\x7f"),
    ("rcpt", "X-OPTION\nX-INJECTED-1"),
    ("rcpt", "b@y.example>\r\nDATA"),
    ("mail_param", "1000\r\nRCPT TO:<attacker@evil.example>"),
]


@pytest.mark.parametrize("where, value", INJECTIONS)
def test_c01_c03_injection_is_refused_before_any_byte(where: str, value: str) -> None:
    mem = Memory(caps=["PIPELINING", "8BITMIME", "SIZE 1000000", "DSN"])
    s = session()
    mem.run(s.handshake())
    mem.actions.clear()
    sender, rcpts, params = "a@x.example", ("b@y.example",), None
    if where == "sender":
        sender = value
    elif where == "rcpt":
        rcpts = (value,)
    else:
        params = {"ENVID": value}
    snd, rc, out = prepare_message(b"\r\nx\r\n", sender, list(rcpts))
    with pytest.raises(ValueError):
        mem.run(s.send_mail(snd, rc, out, mail_params=params))
    assert writes(mem) == []
    # Nothing was committed: the session goes on.
    assert s.usable
    send(mem, s, b"\r\nfine\r\n")
    assert bytes(mem.content) == b"\r\nfine\r\n"


@pytest.mark.parametrize("name", ["client.example\r\nMAIL FROM:<x@x>", "hi\nX-INJECTED", "bad name", "-x-.example"])
def test_c04_ehlo_name_injection_refused_at_construction(name: str) -> None:
    with pytest.raises(ValueError):
        session(local_hostname=name)
    from smtpproto.adapters._sockets_client import SMTPClient

    with pytest.raises(ValueError):
        SMTPClient("127.0.0.1", 25, local_hostname=name)


def test_c06_utf8_address_needs_smtputf8() -> None:
    from smtpproto.adapters._client_flow import SMTPNotSupportedError

    mem = Memory(caps=["PIPELINING", "8BITMIME"])
    s = session()
    mem.run(s.handshake())
    mem.actions.clear()
    with pytest.raises(SMTPNotSupportedError):
        send(mem, s, b"\r\nx\r\n", sender="jörg@x.example")
    assert writes(mem) == [] and s.usable


def test_too_many_recipients_is_refused_up_front() -> None:
    mem = Memory()
    s = session()
    mem.run(s.handshake())
    mem.actions.clear()
    with pytest.raises(ValueError, match="split the list"):
        send(mem, s, b"\r\nx\r\n", rcpts=tuple(f"r{i}@y.example" for i in range(1001)))
    assert writes(mem) == [] and s.usable


# ----------------------------------------------------------------- BDAT failure paths


CHUNKY = ["PIPELINING", "CHUNKING", "8BITMIME"]
BODY = b"\r\n" + b"0123456789\r\n" * 30  # 362 octets: 8 chunks of 50


@pytest.mark.parametrize("pipelining", [True, False])
def test_bdat_sender_refused(pipelining: bool) -> None:
    from smtpproto.adapters._client_flow import SMTPSenderRefused

    mem = Memory(caps=CHUNKY if pipelining else CHUNKY[1:], refuse_sender=True)
    s = session(chunk_size=50)
    mem.run(s.handshake())
    with pytest.raises(SMTPSenderRefused):
        send(mem, s, BODY)
    assert s.usable and s.conn.pending == ()
    mem.refuse_sender = False
    assert send(mem, s, b"\r\nnext\r\n").ok
    assert bytes(mem.content).endswith(b"\r\nnext\r\n")


@pytest.mark.parametrize("pipelining", [True, False])
def test_bdat_all_recipients_refused(pipelining: bool) -> None:
    mem = Memory(caps=CHUNKY if pipelining else CHUNKY[1:], refuse={"b@y.example"})
    s = session(chunk_size=50)
    mem.run(s.handshake())
    mem.actions.clear()
    with pytest.raises(SMTPRecipientsRefused):
        send(mem, s, BODY)
    # With PIPELINING only the first chunk went out before the refusal was known.
    assert b"".join(writes(mem)).count(b"BDAT ") == (1 if pipelining else 0)
    assert s.usable
    assert send(mem, s, b"\r\nnext\r\n", rcpts=("c@y.example",)).ok


@pytest.mark.parametrize("pipelining", [True, False])
@pytest.mark.parametrize("fail_at", [1, 3, 8])
def test_bdat_chunk_refused(pipelining: bool, fail_at: int) -> None:
    from smtpproto.adapters._client_flow import SMTPDataRefused

    mem = Memory(caps=CHUNKY if pipelining else CHUNKY[1:], bdat_fail_at=fail_at)
    s = session(chunk_size=50)
    mem.run(s.handshake())
    with pytest.raises(SMTPDataRefused) as info:
        send(mem, s, BODY)
    assert info.value.code == 552
    if not pipelining:
        # One chunk at a time: nothing is sent after the refused one.
        assert sum(isinstance(e, Bdat) for e in mem.seen) == fail_at
    assert s.usable and s.conn.pending == ()
    mem.bdat_fail_at = None
    mem.content.clear()
    assert send(mem, s, b"\r\nnext\r\n").ok  # after an RSET (RFC 3030 §3)
    assert bytes(mem.content).endswith(b"\r\nnext\r\n")


def test_hello_name_is_an_address_literal_never_dns() -> None:
    from smtpproto.adapters._client_flow import hello_name

    assert hello_name(("127.0.0.1", 40000)) == "[127.0.0.1]"
    assert hello_name(("::1", 40000, 0, 0)) == "[IPv6:::1]"
    assert hello_name(("fe80::1%eth0", 40000, 0, 2)) == "[IPv6:fe80::1]"
    assert hello_name("/run/lmtp.sock") == "localhost"
    for name in ("[127.0.0.1]", "[IPv6:::1]", "[IPv6:fe80::1]"):
        session(local_hostname=name)  # each passes the C-04 check


@pytest.mark.parametrize("offered, chosen", [("XOAUTH2 OAUTHBEARER PLAIN", "OAUTHBEARER"), ("XOAUTH2 PLAIN", "XOAUTH2")])
def test_token_credentials_pick_a_token_mechanism(offered: str, chosen: str) -> None:
    class Backend(sasl.SaslBackend):
        def verify_token(self, user: str | None, token: str, fields: Any) -> bool:
            return token == "tok-123"

    mem = Memory(starttls=True, caps=[f"AUTH {offered}"], auth=lambda name: sasl.server_mechanism(name, Backend()))
    s = session(starttls="required", credentials=sasl.Credentials(username="u@x.example", token="tok-123"))
    mem.run(s.handshake())
    assert [a.mechanism for a in mem.seen if isinstance(a, Auth)] == [chosen]
    assert s.conn.authenticated


@pytest.mark.parametrize("caps", [["PIPELINING"], ["PIPELINING", "CHUNKING"]])
def test_client_bare_newline_reject(caps: list[str]) -> None:
    from smtpproto import LocalProtocolError

    mem = Memory(caps=caps)
    s = session(config=Config(client_bare_newline="reject"))
    mem.run(s.handshake())
    with pytest.raises(LocalProtocolError, match="bare"):
        send(mem, s, b"\r\nline one\nline two\r\n")
    # Nothing of the bad line reached the server.
    assert b"line two" not in bytes(mem.content)
    if "CHUNKING" in caps:
        # The only chunk failed before anything was written: the session is intact.
        assert s.usable and not any(isinstance(a, Write) and b"MAIL" in a.data for a in mem.actions[-3:])
    else:
        assert not s.usable and isinstance(mem.actions[-1], Close)


def test_failing_message_source_mid_bdat_ends_the_session() -> None:
    class Broken(io.RawIOBase):
        def __init__(self) -> None:
            self.calls = 0

        def readable(self) -> bool:
            return True

        def read(self, n: int = -1) -> bytes:
            self.calls += 1
            if self.calls > 3:
                raise OSError("disk on fire")
            return b"\r\n" if self.calls == 1 else b"x" * 40 + b"\r\n"

    for caps in (["PIPELINING", "CHUNKING"], ["CHUNKING"], ["PIPELINING"]):
        mem = Memory(caps=caps)
        s = session(chunk_size=42)
        mem.run(s.handshake())
        snd, rc, out = prepare_message(Broken(), "a@x.example", ["b@y.example"], chunk_size=42)
        with pytest.raises(OSError, match="disk on fire"):
            mem.run(s.send_mail(snd, rc, out))
        assert not s.usable and isinstance(mem.actions[-1], Close), caps


def test_prepare_message_input_errors(tmp_path: Any) -> None:
    path = tmp_path / "m.eml"
    path.write_text("From: a@x.example\r\nTo: b@y.example\r\n\r\nhi\r\n")
    with open(path, encoding="ascii") as text_file, pytest.raises(TypeError, match="binary mode"):
        prepare_message(text_file)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="cannot send a str"):
        prepare_message("From: a@x.example\r\n\r\n")  # type: ignore[arg-type]
    from smtpproto.message import EnvelopeError

    with pytest.raises(EnvelopeError):
        prepare_message(b"To: b@y.example\r\n\r\nno sender\r\n")
    sender, rcpts, out = prepare_message(b"From: a@x.example\r\n\r\nnobody\r\n")
    assert (sender, rcpts) == ("a@x.example", [])
    mem = Memory()
    s = session()
    mem.run(s.handshake())
    with pytest.raises(ValueError, match="no recipients"):
        mem.run(s.send_mail(sender, rcpts, out))
    assert s.usable


def test_asyncio_protocol_pauses_reading_when_the_server_floods() -> None:
    from smtpproto.adapters._asyncio_client import _MAX_BUFFERED, _ClientProtocol

    calls: list[str] = []

    class FakeTransport:
        def pause_reading(self) -> None:
            calls.append("pause")

        def resume_reading(self) -> None:
            calls.append("resume")

        def is_closing(self) -> bool:
            return False

    proto = _ClientProtocol()
    proto.transport = FakeTransport()  # type: ignore[assignment]
    received = 0
    while received <= _MAX_BUFFERED:
        buf = proto.get_buffer(-1)
        buf[:1000] = b"z" * 1000
        proto.buffer_updated(1000)
        received += 1000
    assert calls == ["pause"] and len(proto.buffer) == received
    assert proto.take() == b"z" * received
    assert calls == ["pause", "resume"] and not proto.buffer


def test_chunking_with_pipelining_sends_a_small_message_in_one_round_trip() -> None:
    mem = Memory(caps=["PIPELINING", "CHUNKING", "8BITMIME"])
    s = session()
    mem.run(s.handshake())
    mem.actions.clear()
    before = s.round_trips
    result = send(mem, s, b"Subject: one trip\r\n\r\nbody\r\n", rcpts=("b@y.example", "c@y.example"))
    assert s.round_trips - before == 1
    [group] = writes(mem)
    assert group == (b"MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nRCPT TO:<c@y.example>\r\n"
                     b"BDAT 27 LAST\r\nSubject: one trip\r\n\r\nbody\r\n")
    assert result.ok and result.body == "BDAT"
