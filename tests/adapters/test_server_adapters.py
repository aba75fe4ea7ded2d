"""The three server adapters over real loopback sockets, with stdlib smtplib and
raw bytes as clients.  Every test runs against threads, asyncio and trio."""

from __future__ import annotations

import smtplib
import socket
import ssl
import threading
import time
from typing import Any

import pytest
from test_server_support import (
    BACKENDS,
    WAIT,
    AuthRecorder,
    RawClient,
    Recorder,
    RunningServer,
    client_tls_context,
    fast_settings,
    hello,
    reply,
    server_tls_context,
    unix_path,
)

from smtpproto import Mail, Rcpt, Reply
from smtpproto.adapters import Envelope, Handler, Session

pytestmark = pytest.mark.parametrize("backend", BACKENDS)


def smtp(port: int) -> smtplib.SMTP:
    return smtplib.SMTP("127.0.0.1", port, timeout=WAIT)


# ---------------------------------------------------------------- basics


def test_smtplib_message_arrives_exactly(backend: str) -> None:
    handler = Recorder()
    body = b"Subject: hi\r\nFrom: a@x.example\r\n\r\n.leading dot\r\n..two\r\nend\r\n"
    with RunningServer(backend, handler) as srv, smtp(srv.port) as client:
        refused = client.sendmail("a@x.example", ["b@y.example", "c@y.example"], body)
        assert refused == {}
    assert handler.delivered.wait(WAIT)
    env = handler.envelopes[0]
    assert env.mail_from == "a@x.example"
    assert env.rcpt_tos == ["b@y.example", "c@y.example"]
    assert env.content == body
    assert env.message is not None and env.message.get("Subject") == "hi"
    assert handler.disconnected.wait(WAIT)
    assert handler.events == ["connect", "message", "disconnect"]


def test_ehlo_advertises_everything(backend: str) -> None:
    with RunningServer(backend, Recorder()) as srv, RawClient(srv.address) as c:
        lines = hello(c)
        keywords = {line[4:].split(" ")[0] for line in lines[1:]}
        assert {"SIZE", "PIPELINING", "8BITMIME", "SMTPUTF8", "CHUNKING", "BINARYMIME",
                "ENHANCEDSTATUSCODES", "DSN"} <= keywords
        assert "STARTTLS" not in keywords and "AUTH" not in keywords
        assert c.command(b"QUIT\r\n")[0] == 221
        assert c.closed()


def test_pipelined_transaction_and_smtputf8(backend: str) -> None:
    handler = Recorder()
    with RunningServer(backend, handler) as srv, RawClient(srv.address) as c:
        hello(c)
        c.send("MAIL FROM:<jörg@bücher.example> SMTPUTF8 BODY=8BITMIME\r\n"
               "RCPT TO:<ñandú@example.org>\r\nRCPT TO:<b@y.example>\r\nDATA\r\n".encode())
        codes = [c.reply()[0] for _ in range(4)]
        assert codes == [250, 250, 250, 354]
        c.send("Subject: ü\r\n\r\nGrüße\r\n.\r\n".encode())
        assert c.reply()[0] == 250
    assert handler.delivered.wait(WAIT)
    env = handler.envelopes[0]
    assert env.mail_from == "jörg@bücher.example"
    assert env.rcpt_tos == ["ñandú@example.org", "b@y.example"]
    assert env.content == "Subject: ü\r\n\r\nGrüße\r\n".encode()


def test_smtplib_smtputf8(backend: str) -> None:
    handler = Recorder()
    body = "Subject: Grüße\r\nFrom: jörg@bücher.example\r\n\r\nÜber\r\n".encode()
    with RunningServer(backend, handler) as srv, smtp(srv.port) as client:
        client.ehlo()
        assert client.has_extn("smtputf8")
        refused = client.sendmail("jörg@bücher.example", ["ñandú@example.org"], body,
                                  mail_options=["SMTPUTF8", "BODY=8BITMIME"])
        assert refused == {}
    assert handler.delivered.wait(WAIT)
    env = handler.envelopes[0]
    assert env.mail_from == "jörg@bücher.example" and env.rcpt_tos == ["ñandú@example.org"]
    assert env.mail_params == {"SMTPUTF8": None, "BODY": "8BITMIME", "SIZE": str(len(body))} or \
        env.mail_params == {"SMTPUTF8": None, "BODY": "8BITMIME"}
    assert env.content == body


def test_bdat_chunks_over_raw_socket(backend: str) -> None:
    handler = Recorder()
    with RunningServer(backend, handler) as srv, RawClient(srv.address) as c:
        hello(c)
        assert c.command(b"MAIL FROM:<a@x.example> BODY=BINARYMIME\r\n")[0] == 250
        assert c.command(b"RCPT TO:<b@y.example>\r\n")[0] == 250
        # The chunk holds what would end DATA and a command: it is opaque (S-13).
        chunk1 = b"Subject: b\r\n\r\nx\r\n.\r\nMAIL FROM:<evil@x>\r\n"
        code, lines = c.command(b"BDAT %d\r\n" % len(chunk1) + chunk1)
        assert code == 250 and f"{len(chunk1)} octets" in lines[0]
        chunk2 = b"\x00\xffbinary\r\n"
        assert c.command(b"BDAT %d LAST\r\n" % len(chunk2) + chunk2)[0] == 250
        assert c.command(b"QUIT\r\n")[0] == 221
    assert handler.delivered.wait(WAIT)
    env = handler.envelopes[0]
    assert env.content == chunk1 + chunk2
    assert env.transfer == "BDAT"
    assert len(handler.envelopes) == 1


def test_rset_and_second_transaction(backend: str) -> None:
    handler = Recorder()
    with RunningServer(backend, handler) as srv, smtp(srv.port) as client:
        client.ehlo()
        client.mail("a@x.example")
        client.rcpt("b@y.example")
        assert client.rset()[0] == 250
        client.sendmail("c@x.example", ["d@y.example"], b"Subject: 2\r\n\r\nsecond\r\n")
        assert client.noop()[0] == 250
        assert client.verify("someone")[0] == 252
    assert handler.delivered.wait(WAIT)
    assert [e.mail_from for e in handler.envelopes] == ["c@x.example"]


def test_helo_then_mail(backend: str) -> None:
    handler = Recorder()
    with RunningServer(backend, handler) as srv, RawClient(srv.address) as c:
        lines = hello(c, b"HELO")
        assert lines == ["250 mx.test"]
        assert c.command(b"MAIL FROM:<a@x.example>\r\n")[0] == 250
        assert c.command(b"RCPT TO:<b@y.example>\r\n")[0] == 250
        assert c.command(b"DATA\r\n")[0] == 354
        assert c.command(b"hi\r\n.\r\n")[0] == 250
    assert handler.delivered.wait(WAIT)


# ---------------------------------------------------------------- handler decisions


class Picky(Recorder):
    def on_mail(self, session: Session, command: Mail) -> Reply | None:
        if command.reverse_path.endswith("@spam.example"):
            return reply(550, "5.7.1", "Sender refused")
        return None

    def on_rcpt(self, session: Session, command: Rcpt) -> bool:
        return command.forward_path.endswith("@ok.example")

    def on_message(self, session: Session, envelope: Envelope) -> Any:
        super().on_message(session, envelope)
        if b"virus" in (envelope.content or b""):
            return reply(554, "5.7.1", "Message refused")
        return reply(250, "2.0.0", "Ok: kept")


def test_handler_decisions(backend: str) -> None:
    handler = Picky()
    with RunningServer(backend, handler) as srv, smtp(srv.port) as client:
        client.ehlo()
        with pytest.raises(smtplib.SMTPSenderRefused):
            client.sendmail("x@spam.example", ["a@ok.example"], b"hi\r\n")
        refused = client.sendmail("a@x.example", ["a@ok.example", "b@bad.example"], b"fine\r\n")
        assert list(refused) == ["b@bad.example"] and refused["b@bad.example"][0] == 550
        with pytest.raises(smtplib.SMTPDataError) as info:
            client.sendmail("a@x.example", ["a@ok.example"], b"virus\r\n")
        assert info.value.smtp_code == 554


class Broken(Recorder):
    def on_rcpt(self, session: Session, command: Rcpt) -> bool:
        raise RuntimeError("database down")


def test_hook_exception_is_a_451(backend: str) -> None:
    with RunningServer(backend, Broken()) as srv, RawClient(srv.address) as c:
        hello(c)
        assert c.command(b"MAIL FROM:<a@x.example>\r\n")[0] == 250
        code, lines = c.command(b"RCPT TO:<b@y.example>\r\n")
        assert code == 451 and "4.3.0" in lines[0]
        assert c.command(b"QUIT\r\n")[0] == 221


class AsyncHooks(Recorder):
    async def on_rcpt(self, session: Session, command: Rcpt) -> bool:  # type: ignore[override]
        return command.forward_path != "no@y.example"


def test_async_hooks(backend: str) -> None:
    with RunningServer(backend, AsyncHooks()) as srv, RawClient(srv.address) as c:
        hello(c)
        assert c.command(b"MAIL FROM:<a@x.example>\r\n")[0] == 250
        code, _ = c.command(b"RCPT TO:<no@y.example>\r\n")
        # Coroutines are awaited by asyncio and trio; the threads adapter
        # cannot, and answers 451 rather than guessing.
        assert code == (451 if backend == "threads" else 550)
        assert c.command(b"RCPT TO:<ok@y.example>\r\n")[0] == (451 if backend == "threads" else 250)


# ---------------------------------------------------------------- TLS and AUTH


def test_starttls_then_auth_plain_and_login(backend: str) -> None:
    handler = AuthRecorder()
    sent: dict[str, bytes] = {}
    with RunningServer(backend, handler, ssl_context=server_tls_context()) as srv:
        for mechanism in ("PLAIN", "LOGIN"):
            # CRLF line ends, a line that starts with a dot (smtplib stuffs it,
            # the server unstuffs it) and one that is only a dot.
            body = (b"Subject: tls " + mechanism.encode() + b"\r\nFrom: a@x.example\r\n\r\n"
                    b"secret stuff\r\n.leading dot\r\n.\r\n..two dots\r\nend\r\n")
            sent[mechanism] = body
            with smtp(srv.port) as client:
                client.ehlo()
                assert client.has_extn("starttls")
                assert not client.has_extn("auth")  # never before TLS (T-04)
                client.starttls(context=client_tls_context())
                client.ehlo()
                assert not client.has_extn("starttls")  # T-03
                assert mechanism in client.esmtp_features["auth"].split()
                client.user, client.password = "user", "secret"
                code, _ = client.auth(mechanism, getattr(client, f"auth_{mechanism.lower()}"))
                assert code == 235
                if mechanism == "LOGIN":
                    # Given a str, smtplib encodes it as ASCII and turns lone LF
                    # into CRLF (smtplib.SMTP.sendmail's documented rule; bytes
                    # go unchanged): the CRLF form must arrive.
                    lf_text = body.decode("ascii").replace("\r\n", "\n")
                    refused = client.sendmail("a@x.example", ["b@y.example"], lf_text)
                else:
                    refused = client.sendmail("a@x.example", ["b@y.example"], body)
                assert refused == {}
    assert handler.delivered.wait(WAIT)
    assert len(handler.envelopes) == 2
    assert all(s.tls_active and s.auth is not None and s.auth.authcid == "user" for s in handler.sessions)
    # One session per mechanism, in order; each message arrived byte-exact.
    assert [s.auth.mechanism for s in handler.sessions if s.auth is not None] == ["PLAIN", "LOGIN"]
    for env, mechanism in zip(handler.envelopes, ("PLAIN", "LOGIN")):
        assert env.mail_from == "a@x.example" and env.rcpt_tos == ["b@y.example"]
        assert env.content == sent[mechanism]


def test_auth_wrong_password(backend: str) -> None:
    with RunningServer(backend, AuthRecorder(), ssl_context=server_tls_context()) as srv, smtp(srv.port) as client:
        client.starttls(context=client_tls_context())
        client.ehlo()
        with pytest.raises(smtplib.SMTPAuthenticationError) as info:
            client.login("user", "wrong")
        assert info.value.smtp_code == 535
        client.login("user", "secret")


def test_implicit_tls(backend: str) -> None:
    handler = AuthRecorder()
    with RunningServer(backend, handler, ssl_context=server_tls_context(), implicit_tls=True) as srv:
        with smtplib.SMTP_SSL("127.0.0.1", srv.port, timeout=WAIT, context=client_tls_context()) as client:
            client.ehlo()
            assert not client.has_extn("starttls")
            client.login("user", "secret")
            client.sendmail("a@x.example", ["b@y.example"], b"over TLS\r\n")
    assert handler.delivered.wait(WAIT)
    assert handler.sessions[0].tls_active


def test_implicit_tls_handshake_at_once(backend: str) -> None:
    """A client's ClientHello sent the moment it connects is never lost.
    Python 3.10's asyncio transport ignored a pause made in connection_made,
    so the hello could reach the TLS protocol before it was ready, and about
    half of these handshakes hung until the client gave up."""
    with RunningServer(backend, AuthRecorder(), ssl_context=server_tls_context(), implicit_tls=True) as srv:
        for _ in range(12):
            with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as raw:
                with client_tls_context().wrap_socket(raw, server_hostname="localhost") as tls:
                    assert tls.recv(1024).startswith(b"220 ")
                    tls.sendall(b"QUIT\r\n")
                    assert tls.recv(1024).startswith(b"221 ")


def test_require_tls(backend: str) -> None:
    settings = fast_settings(require_tls=True)
    with RunningServer(backend, AuthRecorder(), ssl_context=server_tls_context(), settings=settings) as srv:
        with RawClient(srv.address) as c:
            lines = hello(c)
            assert not any("AUTH" in line for line in lines)
            code, lines = c.command(b"MAIL FROM:<a@x.example>\r\n")
            assert code == 530 and "5.7.0" in lines[0]
            code, _ = c.command(b"AUTH PLAIN AHVzZXIAc2VjcmV0\r\n")
            assert code in (503, 530, 538)
            assert c.command(b"STARTTLS\r\n")[0] == 220
            c.starttls(client_tls_context())
            hello_lines = c.command(b"EHLO client.test\r\n")[1]
            assert any("AUTH" in line for line in hello_lines)
            assert c.command(b"MAIL FROM:<a@x.example>\r\n")[0] == 250


def test_t03_state_reset_after_starttls(backend: str) -> None:
    with RunningServer(backend, Recorder(), ssl_context=server_tls_context()) as srv, RawClient(srv.address) as c:
        hello(c)
        assert c.command(b"MAIL FROM:<a@x.example>\r\n")[0] == 250
        assert c.command(b"RSET\r\n")[0] == 250
        assert c.command(b"STARTTLS\r\n")[0] == 220
        c.starttls(client_tls_context())
        assert c.command(b"RCPT TO:<b@y.example>\r\n")[0] == 503
        assert c.command(b"MAIL FROM:<a@x.example>\r\n")[0] == 503  # T-02: no EHLO yet
        c.command(b"EHLO client.test\r\n")
        assert c.command(b"STARTTLS\r\n")[0] in (503, 554)


# ---------------------------------------------------------------- SECURITY-CASES replays


def test_s02_smuggling_payload_not_end_of_data(backend: str) -> None:
    handler = Recorder()
    with RunningServer(backend, handler) as srv, RawClient(srv.address) as c:
        hello(c)
        c.command(b"MAIL FROM:<a@x.example>\r\n")
        c.command(b"RCPT TO:<b@y.example>\r\n")
        assert c.command(b"DATA\r\n")[0] == 354
        c.send(b"Subject: a\r\n\r\nTesting\n.\r\nNO SMUGGLING\r\n.\r\n")
        code, lines = c.reply()
        # strict (default): the bare LF refuses the message after the real end.
        assert code == 550 and "5.5.2" in lines[0]
        assert c.command(b"NOOP\r\n")[0] == 250  # nothing was parsed as a command
        assert c.command(b"QUIT\r\n")[0] == 221
    assert handler.disconnected.wait(WAIT)
    assert handler.envelopes == []
    assert any(e.startswith("aborted:") for e in handler.events)


def test_s02_normalize_policy_delivers_one_message(backend: str) -> None:
    handler = Recorder()
    with RunningServer(backend, handler, settings=fast_settings(bare_newline="normalize")) as srv:
        with RawClient(srv.address) as c:
            hello(c)
            c.command(b"MAIL FROM:<a@x.example>\r\n")
            c.command(b"RCPT TO:<b@y.example>\r\n")
            c.command(b"DATA\r\n")
            assert c.command(b"Subject: a\r\n\r\nTesting\n.\r\nNO SMUGGLING\r\n.\r\n")[0] == 250
    assert handler.delivered.wait(WAIT)
    assert len(handler.envelopes) == 1
    assert b"NO SMUGGLING" in (handler.envelopes[0].content or b"")


def replies_until_closed(c: RawClient) -> list[str]:
    lines = []
    while True:
        line = c.line()
        if line is None:
            return lines
        lines.append(line)


def test_t01_starttls_injection_closes(backend: str) -> None:
    handler = Recorder()
    with RunningServer(backend, handler, ssl_context=server_tls_context()) as srv, RawClient(srv.address) as c:
        hello(c)
        c.send(b"STARTTLS\r\nRSET\r\n")  # one segment
        lines = replies_until_closed(c)
        # The core may answer STARTTLS before it reports the injected bytes;
        # either way TLS never starts, RSET is never answered, and we close.
        assert lines[-1].startswith("554 5.5.0"), lines
        assert lines[:-1] in ([], ["220 2.0.0 Ready to start TLS"]), lines
    assert handler.disconnected.wait(WAIT)
    assert not handler.sessions[0].tls_active


def test_t01_split_injection_never_runs_as_tls(backend: str) -> None:
    # The command and the injected line in two writes: whether the server
    # sees the tail before or during the hand-over, it must never answer it.
    with RunningServer(backend, Recorder(), ssl_context=server_tls_context()) as srv, RawClient(srv.address) as c:
        hello(c)
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.send(b"STARTTLS\r\n")
        c.send(b"RSET\r\n")
        code, _ = c.reply()
        assert code in (220, 554)
        if code == 220:
            # The handshake now meets cleartext garbage, or the server refuses.
            with pytest.raises((ssl.SSLError, OSError, ConnectionError)):
                c.starttls(client_tls_context())
                c.command(b"NOOP\r\n")
        else:
            assert c.closed()


def test_r01_long_command_line(backend: str) -> None:
    with RunningServer(backend, Recorder()) as srv, RawClient(srv.address) as c:
        hello(c)
        code, lines = c.command(b"NOOP " + b"A" * 600 + b"\r\n")
        assert code == 500 and "5.5.2" in lines[0]
        assert c.command(b"NOOP\r\n")[0] == 250


def test_f01_eof_mid_data_delivers_nothing(backend: str) -> None:
    handler = Recorder()
    with RunningServer(backend, handler) as srv:
        with RawClient(srv.address) as c:
            hello(c)
            c.command(b"MAIL FROM:<a@x.example>\r\n")
            c.command(b"RCPT TO:<b@y.example>\r\n")
            assert c.command(b"DATA\r\n")[0] == 354
            c.send(b"Subject: x\r\n\r\npartial body\r\n")
        assert handler.disconnected.wait(WAIT)
    assert handler.envelopes == []
    assert handler.events[-2:] == ["aborted:connection closed", "disconnect"]


def test_p02_pipelining_sync_violation(backend: str) -> None:
    with RunningServer(backend, Recorder()) as srv, RawClient(srv.address) as c:
        assert c.reply()[0] == 220
        c.send(b"EHLO c.example\r\nMAIL FROM:<a@x.example>\r\n")
        lines = replies_until_closed(c)
        # EHLO may be answered first; MAIL never is.
        assert lines[-1].startswith("554 5.5.0"), lines
        assert not any(line.startswith("250 2.1.0") for line in lines)


# ---------------------------------------------------------------- deadlines, limits, shutdown


def test_r08_slow_loris_command(backend: str) -> None:
    handler = Recorder()
    with RunningServer(backend, handler, settings=fast_settings(timeout_server=0.6)) as srv:
        with RawClient(srv.address) as c:
            assert c.reply()[0] == 220
            t0 = time.monotonic()
            got = None
            for byte in b"EHLO client.example":
                try:
                    c.send(bytes([byte]))
                except OSError:
                    break
                time.sleep(0.1)
                c.sock.settimeout(0.001)
                try:
                    chunk = c.sock.recv(4096)
                except (socket.timeout, BlockingIOError):
                    continue
                except OSError:
                    break
                c.buf += chunk
                if b"\r\n" in c.buf:
                    break
            c.sock.settimeout(WAIT)
            got = c.line()
            elapsed = time.monotonic() - t0
            assert got is not None and got.startswith("421 4.4.2"), got
            assert 0.5 <= elapsed < 3.0
            assert c.closed()


def test_r08_slow_data_rate(backend: str) -> None:
    settings = fast_settings(timeout_server=0.8, min_data_rate=1000)
    with RunningServer(backend, Recorder(), settings=settings) as srv, RawClient(srv.address) as c:
        hello(c)
        c.command(b"MAIL FROM:<a@x.example>\r\n")
        c.command(b"RCPT TO:<b@y.example>\r\n")
        assert c.command(b"DATA\r\n")[0] == 354
        t0 = time.monotonic()
        # 10 bytes every 0.1 s = 100 B/s, far below 1000 B/s: dropped near 0.8 s.
        for _ in range(40):
            try:
                c.send(b"xxxxxxxx\r\n")
            except OSError:
                break
            time.sleep(0.1)
            c.sock.setblocking(False)
            try:
                c.buf += c.sock.recv(4096)
            except BlockingIOError:
                pass
            except OSError:
                break
            finally:
                c.sock.setblocking(True)
            if b"421" in c.buf:
                break
        elapsed = time.monotonic() - t0
        assert b"421 4.4.2" in c.buf
        assert 0.7 <= elapsed < 3.0


def test_fast_data_is_not_cut_by_the_deadline(backend: str) -> None:
    # 2.5 s of steady, fast enough data against a 1 s deadline: the rate
    # extension keeps the transfer alive.
    settings = fast_settings(timeout_server=1.0, min_data_rate=1000)
    handler = Recorder()
    with RunningServer(backend, handler, settings=settings) as srv, RawClient(srv.address) as c:
        hello(c)
        c.command(b"MAIL FROM:<a@x.example>\r\n")
        c.command(b"RCPT TO:<b@y.example>\r\n")
        assert c.command(b"DATA\r\n")[0] == 354
        line = b"y" * 98 + b"\r\n"
        for _ in range(25):
            c.send(line * 20)  # 2000 bytes per 0.1 s
            time.sleep(0.1)
        assert c.command(b".\r\n")[0] == 250
    assert handler.delivered.wait(WAIT)
    assert handler.envelopes[0].size == 25 * 20 * 100


def test_max_connections(backend: str) -> None:
    with RunningServer(backend, Recorder(), max_connections=1) as srv:
        with RawClient(srv.address) as first:
            hello(first)
            with RawClient(srv.address) as second:
                code, lines = second.reply()
                assert code == 421 and "4.3.2" in lines[0]
                assert second.closed()
            assert first.command(b"NOOP\r\n")[0] == 250
        # The slot is free again once the first session ends.
        deadline = time.monotonic() + WAIT
        while srv.server.active_sessions and time.monotonic() < deadline:
            time.sleep(0.02)
        with RawClient(srv.address) as third:
            assert third.reply()[0] == 220


def test_graceful_shutdown_idle_session(backend: str) -> None:
    handler = Recorder()
    srv = RunningServer(backend, handler).__enter__()
    try:
        c = RawClient(srv.address)
        hello(c)
        took = srv.stop(grace=3.0)
        code, lines = c.reply()
        assert code == 421 and "4.3.2" in lines[0]
        assert c.closed()
        assert took < 2.9  # well before the 3 s grace: idle sessions go at once
        c.close()
        assert handler.disconnected.wait(WAIT)
        with pytest.raises(OSError):
            RawClient(srv.address, timeout=1.0).reply()
    finally:
        srv.stop()


class SlowMessage(Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.started = threading.Event()

    def on_message(self, session: Session, envelope: Envelope) -> Any:
        self.started.set()
        time.sleep(0.5)
        return super().on_message(session, envelope)


def test_graceful_shutdown_lets_busy_session_finish(backend: str) -> None:
    handler = SlowMessage()
    srv = RunningServer(backend, handler).__enter__()
    try:
        c = RawClient(srv.address)
        hello(c)
        c.command(b"MAIL FROM:<a@x.example>\r\n")
        c.command(b"RCPT TO:<b@y.example>\r\n")
        c.command(b"DATA\r\n")
        c.send(b"hello\r\n.\r\n")
        assert handler.started.wait(WAIT)
        stopper = threading.Thread(target=srv.stop, args=(3.0,))
        stopper.start()
        assert c.reply()[0] == 250  # the message in hand is finished and answered
        stopper.join(WAIT)
        assert not stopper.is_alive()
        c.close()
    finally:
        srv.stop()
    assert len(handler.envelopes) == 1


# ---------------------------------------------------------------- LMTP


class PerRecipient(Recorder):
    def on_message(self, session: Session, envelope: Envelope) -> Any:
        super().on_message(session, envelope)
        return [reply(250, "2.1.5", f"delivered to {r}") if r.startswith("ok") else
                reply(452, "4.2.2", f"mailbox full: {r}") for r in envelope.rcpt_tos]


def test_lmtp_over_unix_socket(backend: str, tmp_path: Any) -> None:
    path = unix_path(tmp_path)
    handler = PerRecipient()
    with RunningServer(backend, handler, unix_path=path, settings=fast_settings(lmtp=True)) as srv:
        assert srv.address == path
        with RawClient(path, unix=True) as c:
            assert c.reply()[0] == 220
            assert c.command(b"EHLO x.test\r\n")[0] == 500  # LMTP speaks LHLO
            assert c.command(b"LHLO client.test\r\n")[0] == 250
            c.send(b"MAIL FROM:<a@x.example>\r\nRCPT TO:<ok1@y.example>\r\n"
                   b"RCPT TO:<full@y.example>\r\nRCPT TO:<ok2@y.example>\r\nDATA\r\n")
            assert [c.reply()[0] for _ in range(5)] == [250, 250, 250, 250, 354]
            c.send(b"Subject: lmtp\r\n\r\nhi\r\n.\r\n")
            finals = [c.reply() for _ in range(3)]
            assert [code for code, _ in finals] == [250, 452, 250]
            assert "ok1@y.example" in finals[0][1][0] and "ok2@y.example" in finals[2][1][0]
            assert c.command(b"QUIT\r\n")[0] == 221
    assert handler.delivered.wait(WAIT)


def test_proxy_protocol_v1(backend: str) -> None:
    handler = Recorder()
    with RunningServer(backend, handler, settings=fast_settings(proxy_protocol="v1")) as srv:
        with RawClient(srv.address) as c:
            c.send(b"PROXY TCP4 198.51.100.7 192.0.2.1 40000 25\r\n")
            hello(c)
            assert c.command(b"QUIT\r\n")[0] == 221
        with RawClient(srv.address) as c:
            c.send(b"EHLO not-a-proxy.test\r\n")
            assert c.closed() and c.buf == b""  # no header: closed without a word
    assert handler.sessions[0].peer == ("198.51.100.7", 40000)
    assert len(handler.sessions) == 1


class Refusing(Handler):
    def on_connect(self, session: Session) -> Reply:
        return reply(554, "5.3.2", "mx.test no service for you")


def test_554_greeting(backend: str) -> None:
    with RunningServer(backend, Refusing()) as srv, RawClient(srv.address) as c:
        code, _ = c.reply()
        assert code == 554
        assert c.command(b"EHLO x.test\r\n")[0] == 503
        assert c.command(b"QUIT\r\n")[0] == 221
        assert c.closed()


class Stuck(Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.started = threading.Event()

    async def on_message(self, session: Session, envelope: Envelope) -> Any:  # type: ignore[override]
        self.started.set()
        import sniffio

        if sniffio.current_async_library() == "trio":
            import trio

            await trio.sleep(30)
        else:
            import asyncio

            await asyncio.sleep(30)


def test_shutdown_grace_cuts_stuck_hook_and_still_says_goodbye(backend: str) -> None:
    if backend == "threads":
        pytest.skip("a blocking hook in a thread cannot be interrupted; its socket is cut instead")
    pytest.importorskip("sniffio")
    handler = Stuck()
    srv = RunningServer(backend, handler).__enter__()
    try:
        c = RawClient(srv.address)
        hello(c)
        c.command(b"MAIL FROM:<a@x.example>\r\n")
        c.command(b"RCPT TO:<b@y.example>\r\n")
        c.command(b"DATA\r\n")
        c.send(b"hello\r\n.\r\n")
        assert handler.started.wait(WAIT)
        took = srv.stop(grace=0.3)
        assert took < 5.0
        assert c.closed()
        c.close()
        assert handler.disconnected.wait(WAIT)  # on_disconnect ran although the task was cancelled
    finally:
        srv.stop()

