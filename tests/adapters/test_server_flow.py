"""The sans-I/O session driver, driven by a scripted fake adapter: exact
actions, flush policy, deadlines with a fake clock, AUTH, LMTP fan-out."""

from __future__ import annotations

import base64
from typing import Any, Generator

import pytest

from smtpproto import Config, Ehlo, Mail, Rcpt, Reply
from smtpproto.adapters import Envelope, Handler, ServerSession, ServerSettings, Session
from smtpproto.adapters._server_flow import (
    SHUTDOWN,
    TIMEOUT,
    Action,
    Call,
    HookFailed,
    PlaintextPending,
    Read,
    Sleep,
    UpgradeTLS,
    Write,
    busy_flow,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Script:
    """Runs a flow: reads come from a list (bytes, TIMEOUT, SHUTDOWN, or a
    callable taking the Read action), hooks are called on the handler."""

    def __init__(self, handler: Handler, reads: list[Any], *, clock: Clock | None = None,
                 tls: Any = True, **settings: Any) -> None:
        config = settings.pop("config", Config())
        self.settings = ServerSettings(config=config, hostname="mx.test", error_delay=settings.pop("error_delay", 0),
                                       **settings)
        self.handler = handler
        self.reads = list(reads)
        self.clock = clock or Clock()
        self.tls = tls
        self.actions: list[Action] = []
        self.writes: list[bytes] = []

    def run(self, **kwargs: Any) -> "Script":
        session = ServerSession(self.handler, self.settings, peer=("192.0.2.1", 4242), clock=self.clock, **kwargs)
        self.session = session
        flow: Generator[Action, object, None] = session.run()
        result: object = None
        while True:
            try:
                action = flow.send(result)
            except StopIteration:
                return self
            self.actions.append(action)
            if isinstance(action, Write):
                self.writes.append(action.data)
                result = True
            elif isinstance(action, Read):
                if not self.reads:
                    result = b""
                else:
                    item = self.reads.pop(0)
                    result = item(action) if callable(item) else item
            elif isinstance(action, Call):
                try:
                    result = getattr(self.handler, action.hook)(*action.args)
                except Exception as exc:
                    result = HookFailed(exc)
            elif isinstance(action, UpgradeTLS):
                result = self.tls
            elif isinstance(action, Sleep):
                self.clock.now += action.seconds
                result = None
            else:
                raise AssertionError(action)

    @property
    def output(self) -> bytes:
        return b"".join(self.writes)

    def codes(self) -> list[int]:
        return [int(line[:3]) for line in self.output.split(b"\r\n") if line[3:4] == b" "]


class Keep(Handler):
    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.calls: list[str] = []

    def on_message(self, session: Session, envelope: Envelope) -> Any:
        self.envelopes.append(envelope)
        return None

    def on_disconnect(self, session: Session) -> None:
        self.calls.append("disconnect")


TRANSACTION = b"MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nRCPT TO:<c@y.example>\r\nDATA\r\n"


def test_pipelined_replies_go_out_in_one_write() -> None:
    s = Script(Keep(), [b"EHLO c.test\r\n", TRANSACTION, b"hi\r\n.\r\nQUIT\r\n"]).run()
    # greeting; EHLO reply; four pipelined replies together; 250+221 together.
    assert [w[:3] for w in s.writes] == [b"220", b"250", b"250", b"250"]
    assert s.writes[2].count(b"\r\n") == 4 and s.writes[2].endswith(b"354 End data with <CR><LF>.<CR><LF>\r\n")
    assert s.writes[3].startswith(b"250 2.0.0 Ok: queued as ") and s.writes[3].endswith(b"221 2.0.0 Bye\r\n")
    assert s.handler.envelopes[0].content == b"hi\r\n"  # type: ignore[attr-defined]


def test_reply_waits_while_a_pipelined_command_is_partial() -> None:
    # The second command is incomplete: the first reply must still go out
    # before the adapter blocks reading the rest.
    s = Script(Keep(), [b"EHLO c.test\r\n", b"MAIL FROM:<a@x.example>\r\nRCPT TO:<b@", b"y.example>\r\n"]).run()
    writes_before_reads = []
    count = 0
    for a in s.actions:
        if isinstance(a, Write):
            count += 1
        if isinstance(a, Read):
            writes_before_reads.append(count)
    assert s.writes[2] == b"250 2.1.0 Ok\r\n"
    assert s.writes[3] == b"250 2.1.5 Ok\r\n"
    # The MAIL reply (third write) is out before the read that completes RCPT.
    assert writes_before_reads == [1, 2, 3, 4]


def test_command_deadline_is_per_request_not_per_read() -> None:
    clock = Clock()
    timeouts: list[float | None] = []

    def slow(data: bytes) -> Any:
        def read(action: Read) -> bytes:
            timeouts.append(action.timeout)
            clock.now += 100
            return data
        return read

    # 300 s per request: three reads of 100 s each use it all up.
    s = Script(Keep(), [slow(b"EH"), slow(b"LO "), slow(b"x"), lambda a: (timeouts.append(a.timeout), TIMEOUT)[1]],
               clock=clock).run()
    assert timeouts == [300.0, 200.0, 100.0, 0.0]
    assert s.output.endswith(b"421 4.4.2 mx.test Error: timeout exceeded\r\n")
    assert s.handler.calls == ["disconnect"]  # type: ignore[attr-defined]


def test_deadline_restarts_with_each_request() -> None:
    clock = Clock()
    timeouts: list[float | None] = []

    def after(seconds: float, data: bytes) -> Any:
        def read(action: Read) -> bytes:
            timeouts.append(action.timeout)
            clock.now += seconds
            return data
        return read

    Script(Keep(), [after(250, b"EHLO c.test\r\n"), after(250, b"NOOP\r\n"), after(1, b"QUIT\r\n")],
           clock=clock).run()
    assert timeouts == [300.0, 300.0, 300.0]


def test_data_deadline_extended_by_min_rate() -> None:
    clock = Clock()
    timeouts: list[float | None] = []
    config = Config(timeout_server=10.0, min_data_rate=100)

    def chunk(seconds: float, data: bytes) -> Any:
        def read(action: Read) -> bytes:
            timeouts.append(action.timeout)
            clock.now += seconds
            return data
        return read

    reads = [b"EHLO c.test\r\n", b"MAIL FROM:<a@x>\r\n", b"RCPT TO:<b@y>\r\n", b"DATA\r\n",
             chunk(5, b"x" * 98 + b"\r\n"),  # 5 s spent, 100 B bought 1 s
             chunk(5, b"x" * 198 + b"\r\n"),  # 5 s, +2 s (capped at now + 10)
             chunk(0, b".\r\n")]
    s = Script(Keep(), reads, clock=clock, config=config).run()
    data_timeouts = timeouts
    assert data_timeouts[0] == 10.0
    assert data_timeouts[1] == pytest.approx(6.0)  # 10 - 5 + 1
    assert data_timeouts[2] == pytest.approx(3.0)  # 6 - 5 + 2
    assert s.codes()[-1] == 250


def test_shutdown_while_idle() -> None:
    s = Script(Keep(), [b"EHLO c.test\r\n", SHUTDOWN]).run()
    assert s.output.endswith(b"421 4.3.2 mx.test Error: service shutting down\r\n")


def test_error_delay_after_soft_limit() -> None:
    config = Config(soft_error_limit=2, hard_error_limit=5)
    s = Script(Keep(), [b"EHLO c.test\r\n", b"RCPT TO:<a@b>\r\n", b"RCPT TO:<a@b>\r\n",
                        b"RCPT TO:<a@b>\r\n", b"QUIT\r\n"], config=config, error_delay=1.5).run()
    sleeps = [a.seconds for a in s.actions if isinstance(a, Sleep)]
    assert sleeps == [1.5]  # only the third error reply is delayed
    assert s.codes() == [220, 250, 503, 503, 503, 221]


def test_hard_error_limit_closes() -> None:
    config = Config(soft_error_limit=2, hard_error_limit=3)
    s = Script(Keep(), [b"EHLO c.test\r\n"] + [b"RCPT TO:<a@b>\r\n"] * 4, config=config).run()
    assert s.codes() == [220, 250, 503, 503, 503, 421]


def test_busy_flow() -> None:
    flow = busy_flow(ServerSettings(hostname="mx.test"))
    assert next(flow) == Write(b"421 4.3.2 mx.test Error: too many connections, try again later\r\n")
    with pytest.raises(StopIteration):
        flow.send(True)


class KeepConnect(Keep):
    def on_connect(self, session: Session) -> None:
        self.calls.append("connect")


def test_write_failure_ends_the_session() -> None:
    handler = KeepConnect()
    session = ServerSession(handler, ServerSettings(hostname="mx.test"))
    flow = session.run()
    action = next(flow)
    assert isinstance(action, Call) and action.hook == "on_connect"
    action = flow.send(None)
    assert isinstance(action, Write)
    action = flow.send(False)  # the greeting could not be written
    assert isinstance(action, Call) and action.hook == "on_disconnect"
    with pytest.raises(StopIteration):
        flow.send(None)


def test_hooks_left_as_defaults_are_not_called() -> None:
    """Handler's own hooks return None and do nothing: the driver answers as
    they would without a Call (a round trip through the adapter) -- but any
    hook the handler overrides, in its class or on the instance, is called."""
    handler = Keep()  # overrides on_message and on_disconnect only
    handler.on_rcpt = lambda session, command: None  # type: ignore[method-assign]
    s = Script(handler, [b"EHLO c.test\r\n", b"MAIL FROM:<a@b.test>\r\n", b"RCPT TO:<c@d.test>\r\n",
                         b"DATA\r\n", b"hi\r\n.\r\n", b"QUIT\r\n"]).run()
    assert [a.hook for a in s.actions if isinstance(a, Call)] == ["on_rcpt", "on_message", "on_disconnect"]
    assert len(handler.envelopes) == 1 and handler.calls == ["disconnect"]
    assert s.writes[-1].endswith(b"221 2.0.0 Bye\r\n")


# ---------------------------------------------------------------- STARTTLS


def test_starttls_resets_and_stops_advertising() -> None:
    s = Script(Keep(), [b"EHLO c.test\r\n", b"STARTTLS\r\n", b"EHLO c.test\r\n", b"QUIT\r\n"])
    s.run(starttls=True)
    out = s.output.split(b"\r\n")
    ehlos = [i for i, line in enumerate(out) if line.startswith(b"250-mx.test")]
    assert b"250-STARTTLS" in out[ehlos[0]:ehlos[1]]
    assert not any(b"STARTTLS" in line for line in out[ehlos[1]:])
    assert s.session.session.tls_active
    assert sum(isinstance(a, UpgradeTLS) for a in s.actions) == 1


def test_t01_injected_command_never_reaches_the_handshake() -> None:
    s = Script(Keep(), [b"EHLO c.test\r\n", b"STARTTLS\r\nRSET\r\n"]).run(starttls=True)
    assert not any(isinstance(a, UpgradeTLS) for a in s.actions)
    assert s.output.endswith(b"554 5.5.0 Error: SMTP protocol synchronization\r\n")
    assert b"250 2.0.0 Ok" not in s.output


def test_starttls_plaintext_pending_is_refused_by_the_core() -> None:
    s = Script(Keep(), [b"EHLO c.test\r\n", b"STARTTLS\r\n"], tls=PlaintextPending(b"RSET\r\n"))
    s.run(starttls=True)
    assert s.output.endswith(b"220 2.0.0 Ready to start TLS\r\n554 5.5.0 Error: SMTP protocol synchronization\r\n")


def test_starttls_handshake_failure_closes() -> None:
    handler = Keep()
    s = Script(handler, [b"EHLO c.test\r\n", b"STARTTLS\r\n", b"NOOP\r\n"], tls=False).run(starttls=True)
    assert s.codes()[-1] == 220
    assert handler.calls == ["disconnect"]


# ---------------------------------------------------------------- AUTH


class Auth(Keep):
    auth_mechanisms = ("PLAIN", "LOGIN", "CRAM-MD5")

    def __init__(self, verdict: Any = None) -> None:
        super().__init__()
        self.seen: list[tuple[str, str, str | None]] = []
        self.verdict = verdict

    def verify_password(self, session: Session, username: str, password: str, authzid: str | None) -> Any:
        self.seen.append((username, password, authzid))
        if self.verdict is not None:
            return self.verdict
        return password == "pw"


def b64(data: bytes) -> bytes:
    return base64.b64encode(data)


def test_auth_plain_initial_response() -> None:
    handler = Auth()
    s = Script(handler, [b"EHLO c.test\r\n", b"AUTH PLAIN " + b64(b"\0u\0pw") + b"\r\n", b"QUIT\r\n"]).run(
        tls_active=True)
    assert b"250-AUTH PLAIN LOGIN CRAM-MD5" in s.output
    assert s.codes() == [220, 250, 235, 221]
    assert handler.seen == [("u", "pw", None)]
    assert s.session.session.auth is not None and s.session.session.auth.authcid == "u"


def test_auth_login_challenges_and_failure() -> None:
    handler = Auth()
    s = Script(handler, [b"EHLO c.test\r\n", b"AUTH LOGIN\r\n", b64(b"u") + b"\r\n", b64(b"bad") + b"\r\n",
                         b"AUTH LOGIN " + b64(b"u") + b"\r\n", b64(b"pw") + b"\r\n"]).run(tls_active=True)
    out = s.output
    assert b"334 VXNlcm5hbWU6\r\n" in out and b"334 UGFzc3dvcmQ6\r\n" in out
    assert s.codes() == [220, 250, 334, 334, 535, 334, 235]


def test_auth_cancel_and_bad_base64() -> None:
    s = Script(Auth(), [b"EHLO c.test\r\n", b"AUTH LOGIN\r\n", b"*\r\n", b"AUTH LOGIN\r\n", b"!!!\r\n",
                        b"AUTH PLAIN " + b64(b"\0u\0pw") + b"\r\n"]).run(tls_active=True)
    assert s.codes() == [220, 250, 334, 501, 334, 501, 235]


def test_auth_cram_md5_uses_the_sasl_backend() -> None:
    import hashlib
    import hmac

    from smtpproto.sasl import SaslBackend

    class Backend(SaslBackend):
        def lookup_secret(self, authcid: str) -> str | None:
            return "tanstaaftanstaaf" if authcid == "tim" else None

    class Cram(Auth):
        def sasl_backend(self, session: Session) -> SaslBackend:
            return Backend()

    def answer(action: Read) -> bytes:
        # Reply to the challenge in the last write.
        challenge = base64.b64decode(s.writes[-1].split(b" ", 1)[1].strip())
        digest = hmac.new(b"tanstaaftanstaaf", challenge, hashlib.md5).hexdigest()
        return b64(b"tim " + digest.encode()) + b"\r\n"

    s = Script(Cram(), [b"EHLO c.test\r\n", b"AUTH CRAM-MD5\r\n", answer])
    s.run(tls_active=True)
    assert s.codes() == [220, 250, 334, 235]


def test_auth_not_offered_without_tls() -> None:
    s = Script(Auth(), [b"EHLO c.test\r\n", b"AUTH PLAIN " + b64(b"\0u\0pw") + b"\r\n"]).run()
    assert b"AUTH" not in s.output.split(b"\r\n")[1]
    assert s.codes()[-1] in (503, 538)


def test_auth_on_auth_hook_can_refuse() -> None:
    class Policy(Auth):
        def on_auth(self, session: Session, command: Any, result: Any) -> Reply:
            return Reply(code=535, lines=("account disabled",), enhanced_status="5.7.8")

    s = Script(Policy(), [b"EHLO c.test\r\n", b"AUTH PLAIN " + b64(b"\0u\0pw") + b"\r\n",
                          b"AUTH PLAIN " + b64(b"\0u\0pw") + b"\r\n"]).run(tls_active=True)
    assert s.codes() == [220, 250, 535, 535]
    assert s.session.session.auth is None


def test_auth_verify_hook_failure_is_temporary() -> None:
    class Down(Auth):
        def verify_password(self, *args: Any) -> bool:
            raise OSError("ldap down")

    s = Script(Down(), [b"EHLO c.test\r\n", b"AUTH PLAIN " + b64(b"\0u\0pw") + b"\r\n"]).run(tls_active=True)
    assert s.codes() == [220, 250, 454]


# ---------------------------------------------------------------- hooks and replies


def test_handler_reply_refused_by_core_becomes_451() -> None:
    class Wrong(Keep):
        def on_mail(self, session: Session, command: Mail) -> Reply:
            return Reply(code=354, lines=("nonsense",))

    s = Script(Wrong(), [b"EHLO c.test\r\n", b"MAIL FROM:<a@x>\r\n"]).run()
    assert s.codes() == [220, 250, 451]


def test_hello_hook_custom_reply() -> None:
    class No(Keep):
        def on_hello(self, session: Session, command: Ehlo) -> Reply:
            return Reply(code=550, lines=("go away",), enhanced_status="5.7.1")

    s = Script(No(), [b"EHLO c.test\r\n", b"MAIL FROM:<a@x>\r\n"]).run()
    assert s.codes() == [220, 550, 503]


def test_streaming_hooks_get_every_chunk() -> None:
    class Stream(Keep):
        collect_content = False

        def __init__(self) -> None:
            super().__init__()
            self.chunks: list[bytes] = []

        def on_data_start(self, session: Session, envelope: Envelope) -> None:
            self.calls.append("start")

        def on_data_chunk(self, session: Session, envelope: Envelope, chunk: bytes) -> None:
            self.chunks.append(chunk)

    handler = Stream()
    Script(handler, [b"EHLO c.test\r\n", TRANSACTION, b"line one\r\n", b"line two\r\n", b".\r\n"]).run()
    assert b"".join(handler.chunks) == b"line one\r\nline two\r\n"
    assert handler.envelopes[0].content is None and handler.envelopes[0].size == 20
    assert handler.calls == ["start", "disconnect"]


def test_lmtp_fan_out_default_and_short_list() -> None:
    class Short(Keep):
        def on_message(self, session: Session, envelope: Envelope) -> Any:
            return [Reply(code=250, lines=("one",), enhanced_status="2.0.0")]

    reads = [b"LHLO c.test\r\n", TRANSACTION, b"hi\r\n.\r\n", b"QUIT\r\n"]
    s = Script(Keep(), list(reads), config=Config(lmtp=True)).run()
    assert s.codes() == [220, 250, 250, 250, 250, 354, 250, 250, 221]
    s = Script(Short(), list(reads), config=Config(lmtp=True)).run()
    assert s.codes() == [220, 250, 250, 250, 250, 354, 250, 451, 221]


def test_lmtp_message_rejected_fans_out() -> None:
    reads = [b"LHLO c.test\r\n", TRANSACTION, b"bare\nlf\r\n.\r\n", b"QUIT\r\n"]
    s = Script(Keep(), reads, config=Config(lmtp=True)).run()
    assert s.codes() == [220, 250, 250, 250, 250, 354, 550, 550, 221]


def test_session_received_header() -> None:
    session = Session(peer=("192.0.2.1", 25), hostname="mx.test", helo_name="c.test", helo_verb="EHLO",
                      tls_active=True)
    env = Envelope(mail_from="a@x", rcpt_tos=["b@y"])
    from datetime import datetime, timezone

    header = session.received_header(env, when=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc))
    assert header == (b"Received: from c.test ([192.0.2.1])\r\n\tby mx.test (smtpproto) with ESMTPS\r\n"
                      b"\tfor <b@y>; Fri, 02 Jan 2026 03:04:05 +0000\r\n")
    hostile = Session(peer=None, hostname="mx.test", helo_name="a\r\nX-Evil: 1", helo_verb="HELO")
    assert b"\r\nX-Evil" not in hostile.received_header(env)


@pytest.mark.parametrize("bad", ["", "two words", "tab\there"])
def test_settings_validate_hostname(bad: str) -> None:
    with pytest.raises(ValueError):
        ServerSettings(hostname=bad)


def test_rcpt_params_and_mail_params_kept() -> None:
    handler = Keep()
    Script(handler, [b"EHLO c.test\r\n",
                     b"MAIL FROM:<a@x.example> RET=HDRS ENVID=abc\r\nRCPT TO:<b@y.example> NOTIFY=NEVER\r\nDATA\r\n",
                     b"x\r\n.\r\n"]).run()
    env = handler.envelopes[0]
    assert env.mail_params == {"RET": "HDRS", "ENVID": "abc"}
    assert env.rcpt_params == [{"NOTIFY": "NEVER"}]


def test_rcpt_refusal_by_bool() -> None:
    class No(Keep):
        def on_rcpt(self, session: Session, command: Rcpt) -> bool:
            return False

    s = Script(No(), [b"EHLO c.test\r\n", b"MAIL FROM:<a@x>\r\n", b"RCPT TO:<b@y>\r\n"]).run()
    assert s.output.endswith(b"550 5.1.1 Recipient address rejected\r\n")


def test_lmtp_refused_bdat_last_gets_one_reply_per_recipient() -> None:
    reads = [b"LHLO c.test\r\n", b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nRCPT TO:<c@y>\r\nBDAT 70000 LAST\r\n",
             b"x" * 70000, b"QUIT\r\n"]
    s = Script(Keep(), reads, config=Config(lmtp=True, max_message_size=65536)).run()
    assert s.codes()[-3:] == [552, 552, 221]


# ---------------------------------------------------------------- PROXY, XCLIENT, XFORWARD


class Peers(Keep):
    def __init__(self) -> None:
        super().__init__()
        self.peers: list[object] = []

    def on_connect(self, session: Session) -> None:
        self.peers.append(session.peer)


def test_proxy_v1_header_sets_the_peer_before_on_connect() -> None:
    handler = Peers()
    s = Script(handler, [b"PROXY TCP4 198.51.100.7 192.0.2.1 40000 25\r\n", b"EHLO c.test\r\n", b"QUIT\r\n"],
               config=Config(proxy_protocol="v1")).run()
    assert handler.peers == [("198.51.100.7", 40000)]
    assert s.codes() == [220, 250, 221]
    assert s.session.session.proxy is not None and s.session.session.proxy.version == 1


def test_proxy_garbage_closes_without_a_word() -> None:
    handler = Peers()
    s = Script(handler, [b"EHLO c.test\r\n"], config=Config(proxy_protocol="v1")).run()
    assert s.output == b"" and handler.peers == [] and handler.calls == ["disconnect"]


def test_proxy_header_wait_is_bounded() -> None:
    timeouts: list[float | None] = []

    def read(action: Read) -> Any:
        timeouts.append(action.timeout)
        return TIMEOUT

    s = Script(Peers(), [read], config=Config(proxy_protocol="any", timeout_server=7.0)).run()
    assert timeouts == [7.0] and s.output == b""


class TrustedProxy(Keep):
    def on_xclient(self, session: Session, command: Any) -> None:
        return None

    def on_xforward(self, session: Session, command: Any) -> None:
        return None


def test_xclient_not_offered_by_default() -> None:
    s = Script(Keep(), [b"EHLO c.test\r\n", b"XCLIENT ADDR=198.51.100.7\r\n"]).run()
    before_last_reply = s.output.rsplit(b"\r\n", 2)[0]
    assert b"XCLIENT" not in before_last_reply and s.codes()[-1] >= 500


def test_xclient_refused_unless_the_handler_trusts_the_proxy() -> None:
    s = Script(Keep(), [b"EHLO c.test\r\n", b"XCLIENT ADDR=198.51.100.7\r\n"],
               advertise_xclient=("NAME", "ADDR", "PORT", "HELO")).run()
    assert b"250 XCLIENT NAME ADDR PORT HELO\r\n" in s.output
    assert s.output.endswith(b"550 5.7.0 Error: insufficient authorization\r\n")


def test_xclient_accepted_restarts_the_session() -> None:
    reads = [b"EHLO proxy.test\r\n", b"XCLIENT ADDR=198.51.100.7 PORT=4000 NAME=[UNAVAILABLE]\r\n",
             b"MAIL FROM:<a@x>\r\n", b"EHLO real.test\r\n", b"QUIT\r\n"]
    s = Script(TrustedProxy(), reads, advertise_xclient=("NAME", "ADDR", "PORT")).run()
    assert s.codes() == [220, 250, 220, 503, 250, 221]
    session = s.session.session
    assert session.peer == ("198.51.100.7", 4000)
    assert session.xclient == {"ADDR": "198.51.100.7", "PORT": "4000", "NAME": "[UNAVAILABLE]"}
    assert session.helo_name == "real.test"


def test_xforward_kept_for_one_transaction() -> None:
    seen: list[dict[str, str]] = []

    class Filter(TrustedProxy):
        def on_message(self, session: Session, envelope: Envelope) -> None:
            seen.append(dict(session.xforward))

    reads = [b"EHLO filter.test\r\n", b"XFORWARD NAME=client.example ADDR=198.51.100.7\r\n",
             b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n", b"x\r\n.\r\n",
             b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n", b"y\r\n.\r\n"]
    s = Script(Filter(), reads, advertise_xforward=("NAME", "ADDR")).run()
    assert seen == [{"NAME": "client.example", "ADDR": "198.51.100.7"}, {}]
    assert s.codes()[2] == 250


# ---------------------------------------------------------------- robustness


from hypothesis import given, settings
from hypothesis import strategies as st

_LINES = [
    b"EHLO c.test\r\n", b"HELO c.test\r\n", b"LHLO c.test\r\n", b"MAIL FROM:<a@x.example>\r\n",
    b"MAIL FROM:<a@x.example> BODY=BINARYMIME\r\n", b"RCPT TO:<b@y.example>\r\n", b"DATA\r\n", b"RSET\r\n",
    b"NOOP\r\n", b"VRFY a\r\n", b"EXPN a\r\n", b"HELP\r\n", b"QUIT\r\n", b"STARTTLS\r\n", b"BDAT 3\r\nabc",
    b"BDAT 4 LAST\r\nwxyz", b"BDAT 0 LAST\r\n", b"AUTH PLAIN AHUAcHc=\r\n", b"AUTH LOGIN\r\n", b"dQ==\r\n",
    b"cHc=\r\n", b"*\r\n", b"line\r\n", b".\r\n", b"bare\nlf\r\n", b"..dot\r\n", b"XCLIENT ADDR=1.2.3.4\r\n",
    b"XFORWARD NAME=x\r\n", b"FOO\r\n", b"\r\n",
]


class Everything(Keep):
    auth_mechanisms = ("PLAIN", "LOGIN")
    parse_message = True

    def on_xclient(self, session: Session, command: Any) -> None:
        return None

    def verify_password(self, session: Session, username: str, password: str, authzid: str | None) -> bool:
        return password == "pw"


@settings(max_examples=300)
@given(
    pieces=st.lists(st.one_of(st.sampled_from(_LINES), st.binary(max_size=12)), max_size=30),
    cuts=st.lists(st.integers(min_value=1, max_value=40), max_size=30),
    lmtp=st.booleans(),
    tls=st.booleans(),
)
def test_any_input_ends_cleanly(pieces: list[bytes], cuts: list[int], lmtp: bool, tls: bool) -> None:
    data = b"".join(pieces)
    reads: list[Any] = []
    for n in cuts:
        if not data:
            break
        reads.append(data[:n])
        data = data[n:]
    if data:
        reads.append(data)
    handler = Everything()
    config = Config(lmtp=lmtp, pregreet="ignore", hard_error_limit=50, soft_error_limit=40)
    s = Script(handler, reads, config=config, advertise_xclient=("ADDR",), advertise_xforward=("NAME",))
    s.run(tls_active=tls, starttls=not tls)  # must not raise
    assert handler.calls[-1:] == ["disconnect"]
    # Every reply line is well formed, and no message is delivered without a 250 for it.
    lines = [line for line in s.output.split(b"\r\n") if line]
    assert all(len(line) >= 3 and line[:3].isdigit() and line[3:4] in (b"", b" ", b"-") for line in lines)
    finals = sum(1 for line in lines if line.startswith(b"250 2.0.0 Ok: queued as"))
    if lmtp:
        assert finals == sum(len(e.rcpt_tos) for e in handler.envelopes)
    else:
        assert finals == len(handler.envelopes)
