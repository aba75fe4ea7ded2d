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
