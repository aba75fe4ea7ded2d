"""Our servers receiving from real mail tools: swaks, msmtp, aiosmtplib,
Postfix's smtp-source and a real Postfix relaying to us.  Each checks that the
message arrived byte-exact (apart from the trace fields a relay adds).  Marked
``interop``; each test skips (with the reason) when its tool is not installed
(``.ci/run`` installs them; ../shared/peers/README.md)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from test_server_support import (
    BACKENDS,
    CERT,
    WAIT,
    AuthRecorder,
    Recorder,
    RunningServer,
    client_tls_context,
    fast_settings,
    server_tls_context,
)

from smtpproto.adapters import Envelope, Session
from smtpproto.adapters.handlers import SinkHandler
from smtpproto.transcript import load_transcript

pytestmark = [pytest.mark.interop, pytest.mark.parametrize("backend", BACKENDS)]

MESSAGE = b"Subject: interop\r\nFrom: a@x.example\r\nTo: b@y.example\r\n\r\n.leading dot\r\nbody line\r\n"


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (apt-get install {'postfix' if tool.startswith('smtp-') else tool})")
    return path


def run(args: list[str], stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    result = subprocess.run(args, input=stdin, capture_output=True, timeout=60)
    assert result.returncode == 0, (result.stdout.decode(errors="replace")[-3000:],
                                    result.stderr.decode(errors="replace")[-2000:])
    return result


def test_swaks_plain_and_pipelined(backend: str, tmp_path: Path) -> None:
    swaks = need("swaks")
    msg = tmp_path / "m.eml"
    msg.write_bytes(MESSAGE)
    handler = Recorder()
    with RunningServer(backend, handler) as srv:
        for extra in ([], ["--pipeline"]):
            out = run([swaks, "--server", f"127.0.0.1:{srv.port}", "--from", "a@x.example", "--to",
                       "b@y.example,c@y.example", "--data", f"@{msg}", *extra]).stdout
            assert b"<-  250 2.0.0 Ok: queued as" in out
    assert len(handler.envelopes) == 2
    for env in handler.envelopes:
        assert env.rcpt_tos == ["b@y.example", "c@y.example"]
        # swaks ends the data with a CRLF of its own before the final dot.
        assert env.content == MESSAGE + b"\r\n"


def test_swaks_starttls_and_auth(backend: str, tmp_path: Path) -> None:
    swaks = need("swaks")
    msg = tmp_path / "m.eml"
    msg.write_bytes(MESSAGE)
    handler = AuthRecorder()
    with RunningServer(backend, handler, ssl_context=server_tls_context()) as srv:
        for mechanism in ("PLAIN", "LOGIN"):
            out = run([swaks, "--server", f"127.0.0.1:{srv.port}", "--from", "a@x.example", "--to", "b@y.example",
                       "--data", f"@{msg}", "--tls", "--pipeline", "--auth", mechanism, "--auth-user", "user",
                       "--auth-password", "secret"]).stdout
            assert b"235 2.7.0 Authentication successful" in out
            assert b"=== TLS started" in out
    assert len(handler.envelopes) == 2
    assert all(s.tls_active and s.auth is not None for s in handler.sessions)
    assert [s.auth.mechanism for s in handler.sessions if s.auth is not None] == ["PLAIN", "LOGIN"]
    for env in handler.envelopes:
        assert env.mail_from == "a@x.example" and env.rcpt_tos == ["b@y.example"]
        # The file's bytes (its dot line stuffed by swaks, unstuffed by us),
        # then the CRLF swaks always sends before the final dot (swaks:
        # `$n{data} .= "\r\n."`, whether or not the data ends in CRLF).
        assert env.content == MESSAGE + b"\r\n"


def test_swaks_implicit_tls(backend: str, tmp_path: Path) -> None:
    swaks = need("swaks")
    # --data with a file of ours (not --body, which makes swaks generate the
    # headers, with its own date and message id): the bytes are known.
    message = b"Subject: implicit\r\nFrom: a@x.example\r\nTo: b@y.example\r\n\r\nover implicit TLS\r\n.dot\r\n"
    msg = tmp_path / "m.eml"
    msg.write_bytes(message)
    handler = Recorder()
    with RunningServer(backend, handler, ssl_context=server_tls_context(), implicit_tls=True) as srv:
        run([swaks, "--server", f"127.0.0.1:{srv.port}", "--from", "a@x.example", "--to", "b@y.example",
             "--tlsc", "--data", f"@{msg}"])
    assert handler.delivered.wait(WAIT)
    assert handler.sessions[0].tls_active
    env = handler.envelopes[0]
    assert env.mail_from == "a@x.example" and env.rcpt_tos == ["b@y.example"]
    assert b"over implicit TLS" in (env.content or b"")
    assert env.content == message + b"\r\n"  # swaks's own CRLF before the final dot


def test_msmtp_starttls_auth_exact_bytes(backend: str) -> None:
    msmtp = need("msmtp")
    handler = AuthRecorder()
    with RunningServer(backend, handler, ssl_context=server_tls_context()) as srv:
        run([msmtp, "--host=127.0.0.1", f"--port={srv.port}", "--from=a@x.example", "--set-date-header=off", "--set-msgid-header=off", "--tls=on",
             "--tls-starttls=on", f"--tls-trust-file={CERT}", "--tls-host-override=localhost", "--auth=plain",
             "--user=user", "--passwordeval=echo secret", "b@y.example"], stdin=MESSAGE)
    assert handler.delivered.wait(WAIT)
    env = handler.envelopes[0]
    assert env.mail_from == "a@x.example" and env.rcpt_tos == ["b@y.example"]
    assert env.content == MESSAGE


def test_msmtp_plain(backend: str) -> None:
    msmtp = need("msmtp")
    handler = Recorder()
    with RunningServer(backend, handler) as srv:
        run([msmtp, "--host=127.0.0.1", f"--port={srv.port}", "--from=a@x.example", "--set-date-header=off",
             "--set-msgid-header=off", "--tls=off", "b@y.example"],
            stdin=MESSAGE)
    assert handler.delivered.wait(WAIT)
    assert handler.envelopes[0].content == MESSAGE


def test_aiosmtplib_starttls_auth_smtputf8_exact_bytes(backend: str) -> None:
    aiosmtplib = pytest.importorskip("aiosmtplib")
    # aiosmtplib sends bytes as given (it would only turn lone CR/LF into CRLF
    # and stuff dots): CRLF line ends, non-ASCII headers under SMTPUTF8.
    message = ("Subject: Grüße über TLS\r\nFrom: jörg@bücher.example\r\nTo: ñandú@example.org\r\n\r\n"
               "Über\r\n.leading dot\r\n.\r\nend\r\n").encode()
    handler = AuthRecorder()

    async def send(port: int, mechanism: str) -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=WAIT, start_tls=True,
                                 tls_context=client_tls_context())
        async with client:
            # aiosmtplib forgets the extensions at STARTTLS and says EHLO
            # again only when it needs to: ask now.
            await client.ehlo()
            assert client.supports_extension("smtputf8") and not client.supports_extension("starttls")
            login = client.auth_plain if mechanism == "PLAIN" else client.auth_login
            assert (await login("user", "secret")).code == 235
            errors, _ = await client.sendmail("jörg@bücher.example", ["ñandú@example.org"], message,
                                              mail_options=["SMTPUTF8"])
            assert errors == {}

    with RunningServer(backend, handler, ssl_context=server_tls_context()) as srv:
        for mechanism in ("PLAIN", "LOGIN"):
            asyncio.run(send(srv.port, mechanism))
    assert handler.delivered.wait(WAIT)
    assert len(handler.envelopes) == 2
    assert all(s.tls_active and s.auth is not None and s.auth.authcid == "user" for s in handler.sessions)
    assert [s.auth.mechanism for s in handler.sessions if s.auth is not None] == ["PLAIN", "LOGIN"]
    for env in handler.envelopes:
        assert env.mail_from == "jörg@bücher.example" and env.rcpt_tos == ["ñandú@example.org"]
        assert "SMTPUTF8" in env.mail_params
        assert env.content == message


class ContentSink(SinkHandler):
    """SinkHandler's count, plus each message's content and HELO name."""

    collect_content = True

    def __init__(self) -> None:
        super().__init__()
        self.got: list[tuple[str | None, Envelope]] = []
        self._got_lock = threading.Lock()

    def on_message(self, session: Session, envelope: Envelope) -> Any:
        with self._got_lock:
            self.got.append((session.helo_name, envelope))
        return super().on_message(session, envelope)


def smtp_source_payload(length: int) -> bytes:
    """What ``smtp-source -l length`` sends after the header: ``length`` bytes
    in lines of 80 (CRLF included), each line's first byte the digit of its
    1-based line number modulo 10, the rest X; then an incomplete last line
    of X; then the CRLF that ends it (smtp_fputs adds one).  From Postfix's
    src/smtpstone/smtp-source.c (main() builds it, data_done() sends it)."""
    full, rest = divmod(length, 80)
    if rest == 0:  # the loop stops before the last full line: it stays all X
        full, rest = full - 1, 80
    lines = [str((n + 1) % 10).encode() + b"X" * 77 + b"\r\n" for n in range(full)]
    return b"".join(lines) + b"X" * rest + b"\r\n"


def test_smtp_source_many_messages(backend: str) -> None:
    source = need("smtp-source")
    sessions, messages, length = 4, 200, 2048
    handler = ContentSink()
    # The Date: header is local time, formatted by Postfix's mail_date(): pin
    # the zone and the locale so its exact text is known.
    env = dict(os.environ, TZ="UTC", LC_ALL="C")
    with RunningServer(backend, handler) as srv:
        # 4 sessions in parallel, 200 messages of 2 KB.
        started = time.time()
        proc = subprocess.Popen([source, "-s", str(sessions), "-m", str(messages), "-l", str(length),
                                 "-f", "a@x.example", "-t", "b@y.example", "-M", "client.example",
                                 f"127.0.0.1:{srv.port}"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        out, err = proc.communicate(timeout=60)
        ended = time.time()
        assert proc.returncode == 0, (out.decode(errors="replace")[-3000:], err.decode(errors="replace")[-2000:])
    assert handler.received == 200

    # What smtp-source sends (src/smtpstone/smtp-source.c, data_done()):
    #   From: <-f>, To: <-t>, Date: mail_date(time of the first message, the
    #   same for every message of the process), Message-Id: <%04x.%04x.%04x@-M>
    #   of (its pid, the socket's fd, its global count of messages not yet
    #   started, a C int: ffffffff for -1), an empty line, the payload.
    payload = smtp_source_payload(length)
    assert len(payload) == length + 2
    shape = re.compile(rb"From: <a@x\.example>\r\nTo: <b@y\.example>\r\nDate: (?P<date>[^\r\n]+)\r\n"
                       rb"Message-Id: <(?P<pid>[0-9a-f]{4,8})\.(?P<fd>[0-9a-f]{4,8})\.(?P<left>[0-9a-f]{4,8})"
                       rb"@client\.example>\r\n\r\n" + re.escape(payload))
    # mail_date(): strftime "%a, %e %b %Y %H:%M:%S ", the offset, " (%Z)".
    dates = {time.strftime("%a, %e %b %Y %H:%M:%S +0000 (UTC)", time.gmtime(t)).encode()
             for t in range(int(started), int(ended) + 1)}
    # All sessions start (each taking one message) before the first DATA; the
    # count is printed after the message's own start, and goes below zero only
    # as sessions with nothing left to send end (at most sessions - 1 of them).
    lefts = {b"%04x" % (n & 0xFFFFFFFF) for n in range(-(sessions - 1), messages - sessions + 1)}
    assert len(handler.got) == messages
    seen_dates = set()
    for helo, envelope in handler.got:
        assert helo == "client.example"
        assert envelope.mail_from == "a@x.example" and envelope.rcpt_tos == ["b@y.example"]
        assert envelope.transfer == "DATA"
        content = envelope.content or b""
        m = shape.fullmatch(content)
        assert m is not None, content[:300]
        assert m["pid"] == b"%04x" % proc.pid
        assert int(m["fd"], 16) >= 3  # a descriptor after stdin, stdout, stderr
        assert m["left"] in lefts, m["left"]
        assert m["date"] in dates, (m["date"], dates)
        seen_dates.add(m["date"])
        assert envelope.size == len(content)
    assert len(seen_dates) == 1


# ---------------------------------------------------------------- Postfix relaying to us


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostfixRelay:
    """A throw-away Postfix (own config dir, loopback only) whose smtpd accepts
    mail and whose smtp client relays everything to ``[127.0.0.1]:target``."""

    def __init__(self, target: int) -> None:
        import os
        import tempfile

        self.dir = Path(tempfile.mkdtemp(prefix="smtpproto-pf-"))
        os.chmod(self.dir, 0o755)  # postfix's daemons run as user postfix
        self.port = _free_port()
        etc = self.dir / "etc"
        for sub in ("etc", "queue", "data"):
            (self.dir / sub).mkdir()
        shutil.chown(self.dir / "data", "postfix")
        shutil.copy("/etc/postfix/master.cf", etc / "master.cf")
        (etc / "main.cf").write_text(f"""compatibility_level = 3.6
queue_directory = {self.dir}/queue
data_directory = {self.dir}/data
meta_directory = /etc/postfix
maillog_file_prefixes = {self.dir}
maillog_file = {self.dir}/maillog
myhostname = relay.localhost
mydomain = localhost
myorigin = $myhostname
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
relayhost = [127.0.0.1]:{target}
default_transport = smtp
relay_transport = smtp
alias_maps =
alias_database =
smtputf8_enable = yes
smtp_tls_security_level = may
smtp_tls_loglevel = 1
message_size_limit = 0
""")
        self.postconf("-MX", "smtp/inet")
        self.postconf("-M", f"127.0.0.1:{self.port}/inet=127.0.0.1:{self.port} inet n - n - - smtpd")
        self.postconf("-F", "*/*/chroot=n")
        self.postfix("check")
        self.postfix("start")
        import socket
        import time

        deadline = time.monotonic() + WAIT
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"postfix did not start: {self.log()}") from None
                time.sleep(0.1)

    def postconf(self, *args: str) -> None:
        run(["postconf", "-c", str(self.dir / "etc"), *args])

    def postfix(self, *args: str) -> None:
        run(["postfix", "-c", str(self.dir / "etc"), *args])

    def log(self) -> str:
        path = self.dir / "maillog"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        subprocess.run(["postfix", "-c", str(self.dir / "etc"), "stop"], capture_output=True, timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)


def test_postfix_relays_to_us_with_starttls_smtputf8(backend: str, tmp_path: Path) -> None:
    import smtplib

    need("postfix")
    if shutil.which("postconf") is None:
        pytest.skip("postconf is not installed (apt-get install postfix)")
    handler = Recorder()
    # The original has its own Date and Message-ID (and From, To), so Postfix's
    # cleanup adds none of its own: the only change on the way is the
    # Received field its smtpd puts on top.  Non-ASCII in headers and body
    # (SMTPUTF8), a dot-stuffed line.
    body = ("Date: Mon, 01 Jan 2024 12:00:00 +0000\r\nMessage-ID: <relay-test@x.example>\r\n"
            "Subject: relayed ✓\r\nFrom: jörg@x.example\r\nTo: b@y.example\r\n\r\n"
            "Grüße über Postfix\r\n.dot\r\nend\r\n").encode()
    # Record each session (smtpproto.transcript): one record per read, which
    # shows whether Postfix's client pipelined.
    record = tmp_path / "sessions"
    settings = dataclasses.replace(fast_settings(), record=str(record))
    with RunningServer(backend, handler, ssl_context=server_tls_context(), settings=settings) as srv:
        relay = PostfixRelay(srv.port)
        try:
            with smtplib.SMTP("127.0.0.1", relay.port, timeout=WAIT) as client:
                client.ehlo()
                client.sendmail("jörg@x.example", ["b@y.example"], body, mail_options=["SMTPUTF8"])
            if not handler.delivered.wait(40):
                pytest.fail(f"Postfix did not relay to us; its log:\n{relay.log()}")
            deadline = time.monotonic() + WAIT
            while "status=sent" not in relay.log() and time.monotonic() < deadline:
                time.sleep(0.1)  # Postfix logs the delivery once our 250 has arrived
            log = relay.log()
            assert handler.disconnected.wait(WAIT)  # the transcript is complete
        finally:
            relay.stop()
    env = handler.envelopes[0]
    assert env.mail_from == "jörg@x.example" and env.rcpt_tos == ["b@y.example"]
    assert env.mail_params.get("SMTPUTF8", "") is None
    # Postfix's SMTP client never sends BDAT: CHUNKING is implemented in its
    # SMTP server only (Postfix 3.4 changelog, 20180805: "SMTP server support
    # for CHUNKING (BDAT)"; the smtp(8) binary holds no "BDAT" string, smtpd(8)
    # does), so it sends DATA although we announce CHUNKING (seen here with
    # 3.7).  Our server's BDAT path is covered instead by the raw-socket test
    # (test_server_adapters.py::test_bdat_chunks_over_raw_socket), the flow
    # tests (test_server_flow.py) and our own client sending BDAT
    # (test_client_matrix.py::test_bdat_when_chunking_offered).
    assert env.transfer == "DATA"
    session = handler.sessions[0]
    assert session.tls_active, "Postfix's client took STARTTLS"
    assert len(handler.sessions) == 1

    # Byte-exact: Postfix's trace field(s), then everything we sent unchanged.
    content = env.content or b""
    assert content.endswith(body), content
    added = content[:-len(body)]
    assert added.endswith(b"\r\n")
    fields = re.split(rb"\r\n(?![ \t])", added[:-2])  # header fields, folded lines kept
    assert [f.split(b":", 1)[0] for f in fields] == [b"Received"], added
    received = re.sub(rb"\r\n[ \t]+", b" ", fields[0]).decode()  # unfolded
    m = re.fullmatch(r"Received: from \S+ \(localhost \[127\.0\.0\.1\]\) by relay\.localhost \(Postfix\)"
                     r" with UTF8SMTP id (?P<qid>[0-9A-Za-z]+) for <b@y\.example>; .+", received)
    assert m is not None, received
    # The queue id in the field is the one Postfix logged delivering to us.
    assert re.search(rf"{m['qid']}: to=<b@y\.example>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:{srv.port}, .*status=sent",
                     log), log

    # Pipelining (RFC 2920): after STARTTLS, MAIL, RCPT and DATA came in one
    # read, i.e. Postfix sent RCPT and DATA before our replies to MAIL and RCPT.
    [path] = list(record.iterdir())
    records = load_transcript(path).records
    tls_at = next(i for i, r in enumerate(records) if r.event == "starttls")
    batches = [r.data for r in records[tls_at:] if r.direction == "C" and b"MAIL FROM:" in r.data]
    assert len(batches) == 1, batches
    lines = batches[0].split(b"\r\n")
    assert len(lines) == 4 and lines[3] == b"", lines
    assert lines[0].startswith("MAIL FROM:<jörg@x.example>".encode()) and b" SMTPUTF8" in lines[0]
    assert lines[1].startswith(b"RCPT TO:<b@y.example>")
    assert lines[2] == b"DATA"
    assert "status=sent" in log
