"""Our servers receiving from real mail tools: swaks, msmtp, Postfix's
smtp-source.  Marked ``interop``; each test skips (with the reason) when its
tool is not installed (``.ci/run`` installs them; ../shared/peers/README.md)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from test_server_support import (
    BACKENDS,
    CERT,
    WAIT,
    AuthRecorder,
    Recorder,
    RunningServer,
    server_tls_context,
)

from smtpproto.adapters.handlers import SinkHandler

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


def test_swaks_implicit_tls(backend: str, tmp_path: Path) -> None:
    swaks = need("swaks")
    handler = Recorder()
    with RunningServer(backend, handler, ssl_context=server_tls_context(), implicit_tls=True) as srv:
        run([swaks, "--server", f"127.0.0.1:{srv.port}", "--from", "a@x.example", "--to", "b@y.example",
             "--tlsc", "--body", "over implicit TLS"])
    assert handler.delivered.wait(WAIT)
    assert b"over implicit TLS" in (handler.envelopes[0].content or b"")


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


def test_smtp_source_many_messages(backend: str) -> None:
    source = need("smtp-source")
    handler = SinkHandler()
    with RunningServer(backend, handler) as srv:
        # 4 sessions in parallel, 200 messages of 2 KB.
        run([source, "-s", "4", "-m", "200", "-l", "2048", "-f", "a@x.example", "-t", "b@y.example",
             f"127.0.0.1:{srv.port}"])
    assert handler.received == 200


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


def test_postfix_relays_to_us_with_starttls_smtputf8(backend: str) -> None:
    import smtplib

    need("postfix")
    if shutil.which("postconf") is None:
        pytest.skip("postconf is not installed (apt-get install postfix)")
    handler = Recorder()
    body = "Subject: relayed ✓\r\nFrom: jörg@x.example\r\n\r\nGrüße über Postfix\r\n.dot\r\n".encode()
    with RunningServer(backend, handler, ssl_context=server_tls_context()) as srv:
        relay = PostfixRelay(srv.port)
        try:
            with smtplib.SMTP("127.0.0.1", relay.port, timeout=WAIT) as client:
                client.ehlo()
                client.sendmail("jörg@x.example", ["b@y.example"], body, mail_options=["SMTPUTF8"])
            if not handler.delivered.wait(40):
                pytest.fail(f"Postfix did not relay to us; its log:\n{relay.log()}")
            import time

            deadline = time.monotonic() + WAIT
            while "status=sent" not in relay.log() and time.monotonic() < deadline:
                time.sleep(0.1)  # Postfix logs the delivery once our 250 has arrived
            log = relay.log()
        finally:
            relay.stop()
    env = handler.envelopes[0]
    assert env.mail_from == "jörg@x.example" and env.rcpt_tos == ["b@y.example"]
    assert env.mail_params.get("SMTPUTF8", "") is None
    # Postfix 3.7's SMTP client sends DATA even to a CHUNKING server (measured
    # here; BDAT is implemented in its server only), so DATA is what we get.
    assert env.transfer == "DATA"
    session = handler.sessions[0]
    assert session.tls_active, "Postfix's client took STARTTLS"
    content = env.content or b""
    # Postfix adds its own Received: field (and may add Message-ID/Date);
    # everything we sent follows unchanged.
    assert content.startswith(b"Received: ")
    assert content.endswith(b"\r\n\r\n" + body.split(b"\r\n\r\n", 1)[1])
    assert "Subject: relayed ✓".encode() in content
    assert "status=sent" in log
