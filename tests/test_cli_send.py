"""``python -m smtpproto send`` against loopback servers (aiosmtpd and our own
server Connection)."""

from __future__ import annotations

import contextlib
import io
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "adapters"))

from test_client_support import CoreServer, RecordingHandler, aiosmtpd_server, tls_cert, Cert  # noqa: E402,F401

from smtpproto.adapters._cli_send import main_send  # noqa: E402
from smtpproto.message import parse  # noqa: E402


ROOT = Path(__file__).resolve().parents[1]
CERT, KEY = ROOT / "tests" / "data" / "server-cert.pem", ROOT / "tests" / "data" / "server-key.pem"
WAIT = 15.0


class Serve:
    """``python -m smtpproto serve`` in a subprocess on a free loopback port."""

    port: int
    out: str = ""
    err: str = ""


@contextlib.contextmanager
def serve(*args: str) -> Iterator[Serve]:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "smtpproto", "serve", "--port", "0", "--backend", "threads",
                             *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=str(ROOT))
    assert proc.stdout is not None
    try:
        ready, _, _ = select.select([proc.stdout], [], [], WAIT)
        first = proc.stdout.readline().decode() if ready else ""
        assert first.startswith("listening on 127.0.0.1:"), (first, proc.poll())
        server = Serve()
        server.port = int(first.split()[2].rsplit(":", 1)[1])
        yield server
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=WAIT)
        server.out, server.err = first + out.decode(), err.decode()
        assert proc.returncode == 0, server.err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=WAIT)


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main_send(argv, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_builds_and_sends_with_attachment(tmp_path: Path) -> None:
    att = tmp_path / "report.bin"
    att.write_bytes(bytes(range(256)) * 4)
    body = tmp_path / "body.txt"
    body.write_text("Grüße,\n.a line with a dot\n", encoding="utf-8")
    with aiosmtpd_server() as (port, handler):
        code, out, err = run(["--server", f"127.0.0.1:{port}", "--from", "a@x.example", "--to", "b@y.example",
                              "--to", "c@y.example", "--subject", "Report", "--body-file", str(body),
                              "--attach", str(att)])
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "ok      b@y.example  250 2.0.0 Message accepted",
        "ok      c@y.example  250 2.0.0 Message accepted",
    ]
    [got] = handler.messages
    assert got.mail_from == "a@x.example" and got.rcpt_tos == ["b@y.example", "c@y.example"]
    msg = parse(got.content)
    assert msg.get("Subject") == "Report" and msg.get("Message-ID") and msg.get("Date")
    [attachment] = msg.attachments
    assert attachment.filename == "report.bin"
    assert attachment.decoded_body() == bytes(range(256)) * 4
    [text] = msg.text_body
    assert text.text().replace("\r\n", "\n") == "Grüße,\n.a line with a dot\n"


def test_message_file_envelope_from_headers_and_bcc(tmp_path: Path) -> None:
    eml = tmp_path / "m.eml"
    eml.write_bytes(b"From: a@x.example\r\nTo: b@y.example\r\nBcc: hidden@y.example\r\nSubject: f\r\n\r\nfile body\r\n")
    with CoreServer() as srv:
        code, out, err = run(["--server", f"127.0.0.1:{srv.port}", "--message-file", str(eml)])
    assert code == 0, err
    [got] = srv.messages
    assert got.recipients == ["b@y.example", "hidden@y.example"]
    assert got.content == b"From: a@x.example\r\nTo: b@y.example\r\nSubject: f\r\n\r\nfile body\r\n"
    assert "hidden@y.example" in out


def test_partial_failure_exits_1_and_lists_each_recipient() -> None:
    with aiosmtpd_server(RecordingHandler(refuse={"bad@y.example"})) as (port, handler):
        code, out, err = run(["--server", f"127.0.0.1:{port}", "--from", "a@x.example",
                              "--to", "good@y.example", "--to", "bad@y.example", "--body", "hi"])
    assert code == 1
    assert "ok      good@y.example" in out and "REFUSED bad@y.example   550 5.1.1" in out
    assert err.strip().endswith("1 of 2 recipients refused") and err.count("\n") == 1


def test_total_failure_exits_1() -> None:
    with aiosmtpd_server(RecordingHandler(refuse={"bad@y.example"})) as (port, _):
        code, out, err = run(["--server", f"127.0.0.1:{port}", "--from", "a@x.example", "--to", "bad@y.example"])
    assert code == 1 and "REFUSED bad@y.example" in out and "every recipient was refused" in err


@pytest.mark.parametrize("argv, words", [
    (["--from", "a@x.example", "--to", "b@y.example"], "--server"),
    (["--server", "h:99999", "--from", "a@x.example", "--to", "b@y.example"], "bad port"),
    (["--server", "::1", "--from", "a@x.example", "--to", "b@y.example"], "brackets"),
    (["--server", "h", "--to", "b@y.example"], "--from"),
    (["--server", "h", "--from", "a@x.example", "--to", "b@y.example", "--user", "u"], "go together"),
    (["--server", "h", "--from", "a@x.example", "--to", "b@y.example", "--starttls", "--tls"], "not allowed"),
    (["--server", "h", "--message-file", "/nonexistent/m.eml"], "--message-file"),
    (["--server", "h", "--from", "a@x.example", "--to", "b@y.example", "--attach", "/nonexistent/x"], "--attach"),
    (["--server", "h", "--bogus"], "unrecognized"),
])
def test_bad_flags_one_line_exit_2(argv: list[str], words: str) -> None:
    code, out, err = run(argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and words in err and err.startswith("python -m smtpproto send: error:")


def test_unreachable_server_one_line() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        code, out, err = run(["--server", f"127.0.0.1:{port}", "--from", "a@x.example", "--to", "b@y.example"])
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "cannot connect to 127.0.0.1" in err


def test_tls_failure_then_insecure_and_verbose_auth_redacted(tls_cert: Cert) -> None:
    with aiosmtpd_server(tls_context=tls_cert.server_context(), require_starttls=True,
                         users={"u": "pa55word"}) as (port, handler):
        base = ["--server", f"127.0.0.1:{port}", "--from", "a@x.example", "--to", "b@y.example",
                "--starttls", "--user", "u", "--password", "pa55word"]
        code, out, err = run(base)
        assert code == 1 and err.count("\n") == 1 and "TLS handshake failed" in err
        code, out, err = run(base + ["--insecure", "--verbose"])
    assert code == 0, err
    assert "C: AUTH PLAIN <redacted>" in err and "S: 235" in err and "pa55word" not in err
    assert "C: STARTTLS" in err and "C: <TLS established>" in err
    assert len(handler.messages) == 1


def test_cleartext_auth_refused_with_clear_error() -> None:
    with CoreServer(extensions=["PIPELINING", "AUTH PLAIN"]) as srv:
        code, out, err = run(["--server", f"127.0.0.1:{srv.port}", "--from", "a@x.example",
                              "--to", "b@y.example", "--user", "u", "--password", "p"])
    assert code == 1 and "cleartext" in err and err.count("\n") == 1


def test_lmtp() -> None:
    with CoreServer(lmtp=True, lmtp_fail={"full@y.example"}) as srv:
        code, out, err = run(["--server", f"127.0.0.1:{srv.port}", "--lmtp", "--from", "a@x.example",
                              "--to", "b@y.example", "--to", "full@y.example", "--body", "x"])
    assert code == 1
    assert "ok      b@y.example     250 2.0.0 <b@y.example> delivered" in out
    assert "REFUSED full@y.example  452 4.2.2 <full@y.example> mailbox full" in out


def test_dispatched_by_python_m_smtpproto() -> None:
    with CoreServer() as srv:
        proc = subprocess.run(
            [sys.executable, "-m", "smtpproto", "send", "--server", f"127.0.0.1:{srv.port}",
             "--from", "a@x.example", "--to", "b@y.example", "--subject", "via -m", "--body", "hello"],
            capture_output=True, text=True, timeout=60,
            cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok      b@y.example  250")
    assert b"hello" in srv.messages[0].content


def test_lmtp_over_a_unix_socket_path(tmp_path: Path) -> None:
    path = str(tmp_path / "lmtp.sock")
    with CoreServer(lmtp=True, unix_path=path) as srv:
        code, out, err = run(["--server", path, "--lmtp", "--from", "a@x.example", "--to", "u@local.example",
                              "--body", "delivered locally"])
    assert code == 0, err
    assert out.startswith("ok      u@local.example  250 2.0.0 <u@local.example> delivered")
    assert b"delivered locally" in srv.messages[0].content


def test_implicit_tls_untrusted_certificate_then_insecure() -> None:
    with serve("--implicit-tls", "--tls-cert", str(CERT), "--tls-key", str(KEY)) as srv:
        base = ["--server", f"127.0.0.1:{srv.port}", "--tls", "--from", "a@x.example", "--to", "b@y.example",
                "--subject", "implicit", "--body", "over implicit TLS", "--timeout", "10"]
        started = time.monotonic()
        code, out, err = run(base)
        assert time.monotonic() - started < 5.0
        assert code == 1 and out == "" and err.count("\n") == 1, err
        assert err.startswith("python -m smtpproto send: error: TLS handshake failed: ")
        assert "certificate verify failed" in err and "--insecure skips the check" in err
        code, out, err = run(base + ["--insecure"])
        assert code == 0, err
        assert out.startswith("ok      b@y.example  250 2.0.0")
    assert "over implicit TLS" in srv.out and "Traceback" not in srv.err


def test_implicit_tls_against_a_plaintext_server() -> None:
    """--tls to a port that greets in plaintext: one line, quickly (not
    after --timeout), no traceback."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with serve() as srv:
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "smtpproto", "send", "--server", f"127.0.0.1:{srv.port}", "--tls",
             "--from", "a@x.example", "--to", "b@y.example", "--body", "x"],
            capture_output=True, text=True, timeout=60, env=env, cwd=str(ROOT))
        elapsed = time.monotonic() - started
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith("python -m smtpproto send: error: TLS handshake failed: ")
    if "WRONG_VERSION_NUMBER" in proc.stderr:  # OpenSSL's reason; others name it differently
        assert "(the server does not speak TLS from the first byte: is this a plaintext port? try --starttls)" \
            in proc.stderr
    assert elapsed < 5.0
    assert "END MESSAGE" not in srv.out


def test_plaintext_against_an_implicit_tls_port() -> None:
    """No --tls to a port that waits for a ClientHello: no greeting comes.
    The error says so and names --tls, after --timeout, and the server saw
    no message."""
    with serve("--implicit-tls", "--tls-cert", str(CERT), "--tls-key", str(KEY)) as srv:
        started = time.monotonic()
        code, out, err = run(["--server", f"127.0.0.1:{srv.port}", "--from", "a@x.example", "--to", "b@y.example",
                              "--body", "x", "--timeout", "1"])
        elapsed = time.monotonic() - started
    assert code == 1 and out == "" and err.count("\n") == 1, err
    assert err == ("python -m smtpproto send: error: no reply from the server within 1.0 s (waiting for its "
                   "greeting); if the port expects TLS from the first byte, as 465 does, try --tls\n")
    assert 0.9 < elapsed < 5.0
    assert "END MESSAGE" not in srv.out


def test_no_tls_hint_after_a_greeting() -> None:
    """A server that greets and then falls silent is no implicit-TLS port:
    the timeout names what it waited for, without the --tls hint."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def greet_then_hang() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.sendall(b"220 quiet.example ESMTP\r\n")
            conn.recv(1024)  # the EHLO, never answered
            conn.recv(1024)  # until the client gives up

    thread = threading.Thread(target=greet_then_hang, daemon=True)
    thread.start()
    try:
        code, out, err = run(["--server", f"127.0.0.1:{port}", "--from", "a@x.example", "--to", "b@y.example",
                              "--body", "x", "--timeout", "1"])
    finally:
        thread.join(5)
        listener.close()
    assert code == 1 and out == ""
    assert err == "python -m smtpproto send: error: no reply from the server within 1.0 s\n"


def test_verbose_bdat_transcript_follows_the_wire() -> None:
    with serve() as srv:
        code, out, err = run(["--server", f"127.0.0.1:{srv.port}", "--from", "a@x.example", "--to", "b@y.example",
                              "--body", "hi", "--verbose"])
    assert code == 0, err
    lines = err.splitlines()
    bdat = next(i for i, line in enumerate(lines) if line.startswith("C: BDAT "))
    assert lines[bdat + 1].startswith("C: <message content: ")  # written with the BDAT, before any reply
    assert lines[bdat - 2:bdat] == ["C: MAIL FROM:<a@x.example> SIZE=" + lines[bdat].split()[2],
                                    "C: RCPT TO:<b@y.example>"]
