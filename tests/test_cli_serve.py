"""``python -m smtpproto serve`` as a subprocess on a free loopback port."""

from __future__ import annotations

import os
import queue
import re
import signal
import smtplib
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
CERT, KEY = DATA / "server-cert.pem", DATA / "server-key.pem"
WAIT = 15.0
try:
    import trio  # noqa: F401

    _NO_TRIO = ""
except ImportError:
    _NO_TRIO = 'trio is not installed (pip install "smtpproto[trio]")'
BACKENDS = ["asyncio", pytest.param("trio", marks=pytest.mark.skipif(bool(_NO_TRIO), reason=_NO_TRIO or "-")),
            "threads"]


class Serve:
    def __init__(self, *args: str) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
                   PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "smtpproto", "serve", "--port", "0", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=str(ROOT))
        self.lines: queue.Queue[str] = queue.Queue()
        self.out: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        first = self.lines.get(timeout=WAIT)
        m = re.fullmatch(r"listening on 127\.0\.0\.1:(\d+)( \(.*\))?", first)
        assert m, first
        self.port = int(m.group(1))
        self.first = first

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.out.append(line)
            self.lines.put(line)

    def wait_for(self, text: str) -> None:
        while True:
            if text in self.lines.get(timeout=WAIT):
                return

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, str, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(WAIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(WAIT)
            raise
        self._reader.join(WAIT)
        assert self.proc.stderr is not None
        return code, "\n".join(self.out), self.proc.stderr.read().decode()


@pytest.fixture
def serve_factory() -> Iterator[list[Serve]]:
    started: list[Serve] = []
    yield started
    for s in started:
        if s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait(WAIT)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "smtpproto", *args], capture_output=True, text=True,
                          timeout=WAIT, env=env, cwd=str(ROOT))


@pytest.mark.parametrize("backend", BACKENDS)
def test_serve_prints_messages_and_stops_on_sigterm(backend: str, serve_factory: list[Serve]) -> None:
    s = Serve("--backend", backend)
    serve_factory.append(s)
    with smtplib.SMTP("127.0.0.1", s.port, timeout=WAIT) as client:
        client.ehlo()
        for ext in ("size", "pipelining", "8bitmime", "smtputf8", "chunking", "binarymime",
                    "enhancedstatuscodes", "dsn"):
            assert client.has_extn(ext), ext
        assert not client.has_extn("starttls") and not client.has_extn("auth")
        client.sendmail("a@x.example", ["b@y.example"], b"Subject: cli\r\n\r\nhello from the test\r\n")
    s.wait_for("END MESSAGE")
    code, out, err = s.stop()
    assert code == 0, err
    assert "hello from the test" in out and "MAIL FROM: <a@x.example>" in out
    assert out.rstrip().endswith("stopped")
    assert "Traceback" not in err


@pytest.mark.parametrize("backend", BACKENDS)
def test_serve_sigint_is_clean(backend: str, serve_factory: list[Serve]) -> None:
    s = Serve("--backend", backend)
    serve_factory.append(s)
    code, out, err = s.stop(signal.SIGINT)
    assert code == 0 and "Traceback" not in err


@pytest.mark.parametrize("backend", BACKENDS)
def test_serve_sigint_with_an_open_transaction(backend: str, serve_factory: list[Serve]) -> None:
    """Ctrl-C while a client is in a transaction: the client is told 421
    4.3.2 and disconnected, and the server stops at once, cleanly."""
    s = Serve("--backend", backend)
    serve_factory.append(s)
    client = smtplib.SMTP("127.0.0.1", s.port, timeout=WAIT)
    try:
        assert client.ehlo()[0] == 250
        assert client.mail("a@x.example")[0] == 250  # the transaction is open
        s.proc.send_signal(signal.SIGINT)
        started = time.monotonic()
        code, text = client.getreply()
        assert (code, text.split()[0]) == (421, b"4.3.2"), (code, text)
        with pytest.raises(smtplib.SMTPServerDisconnected):
            client.getreply()  # and then the connection is closed
        status = s.proc.wait(5.0)  # no second signal: a hang fails here
        assert time.monotonic() - started < 5.0
    finally:
        client.close()
    code, out, err = s.stop()
    assert status == code == 0, err
    assert out.rstrip().endswith("stopped")
    assert "Traceback" not in err, err


def test_serve_maildir_with_starttls_and_auth(tmp_path: Path, serve_factory: list[Serve]) -> None:
    box = tmp_path / "md"
    s = Serve("--maildir", str(box), "--tls-cert", str(CERT), "--tls-key", str(KEY),
              "--auth-user", "u", "--auth-password", "p", "--max-message-size", "100000")
    serve_factory.append(s)
    assert "STARTTLS" in s.first
    ctx = ssl.create_default_context(cafile=str(CERT))
    body = b"Subject: md\r\n\r\nexact\r\n"
    with smtplib.SMTP("127.0.0.1", s.port, timeout=WAIT) as client:
        client.ehlo()
        assert client.has_extn("starttls") and not client.has_extn("auth")
        assert client.esmtp_features["size"] == "100000"
        client.starttls(context=ctx)
        client.ehlo()
        assert "PLAIN" in client.esmtp_features["auth"]
        client.login("u", "p")
        client.sendmail("a@x.example", ["b@y.example"], body)
        with pytest.raises(smtplib.SMTPSenderRefused):
            client.sendmail("a@x.example", ["b@y.example"], b"x" * 100_001)
    code, out, err = s.stop()
    assert code == 0, err
    files = list((box / "new").iterdir())
    assert len(files) == 1 and files[0].read_bytes().endswith(b"\r\n" + body)


def test_serve_implicit_tls_require_tls_mbox(tmp_path: Path, serve_factory: list[Serve]) -> None:
    mbox = tmp_path / "box"
    s = Serve("--mbox", str(mbox), "--tls-cert", str(CERT), "--tls-key", str(KEY), "--implicit-tls",
              "--require-tls", "--backend", "threads")
    serve_factory.append(s)
    ctx = ssl.create_default_context(cafile=str(CERT))
    with smtplib.SMTP_SSL("127.0.0.1", s.port, timeout=WAIT, context=ctx) as client:
        client.sendmail("a@x.example", ["b@y.example"], b"Subject: tls\r\n\r\nsecure\r\n")
    code, _, err = s.stop()
    assert code == 0, err
    assert b"Subject: tls\r\n\r\nsecure\r\n" in mbox.read_bytes()


def test_serve_lmtp(serve_factory: list[Serve]) -> None:
    s = Serve("--lmtp")
    serve_factory.append(s)
    assert "LMTP" in s.first
    # (smtplib.LMTP reads only one reply after DATA, so raw lines here.)
    import socket

    with socket.create_connection(("127.0.0.1", s.port), timeout=WAIT) as sock:
        f = sock.makefile("rb")
        assert f.readline().startswith(b"220 ")
        sock.sendall(b"LHLO c.test\r\n")
        while not f.readline().startswith(b"250 "):
            pass
        sock.sendall(b"MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nRCPT TO:<c@y.example>\r\nDATA\r\n")
        assert [f.readline()[:3] for _ in range(4)] == [b"250", b"250", b"250", b"354"]
        sock.sendall(b"Subject: l\r\n\r\nx\r\n.\r\nQUIT\r\n")
        assert [f.readline()[:3] for _ in range(3)] == [b"250", b"250", b"221"]
    s.wait_for("END MESSAGE")
    assert s.stop()[0] == 0


@pytest.mark.parametrize("args, message", [
    (["--tls-cert", "x.pem"], "--tls-cert and --tls-key go together"),
    (["--implicit-tls"], "--implicit-tls needs --tls-cert"),
    (["--require-tls"], "--require-tls needs --tls-cert"),
    (["--auth-user", "u"], "--auth-user and --auth-password go together"),
    (["--auth-user", "u", "--auth-password", "p"], "AUTH is only offered over TLS"),
    (["--max-message-size", "10"], "--max-message-size must be at least 64 KiB"),
    (["--max-message-size", "-5"], "error: --max-message-size must be positive, not -5"),
    (["--max-message-size", "0"], "error: --max-message-size must be positive, not 0"),
    (["--hostname", "a b"], "error: --hostname: bad server host name 'a b'"),
    (["--hostname", ""], "error: --hostname: bad server host name ''"),
    (["--max-connections", "0"], "error: --max-connections must be at least 1, not 0"),
    (["--port", "70000"], "--port must be between 0 and 65535"),
    (["--backend", "curio"], "invalid choice: 'curio'"),
    (["--maildir", "a", "--mbox", "b"], "not allowed with argument"),
    (["--port", "x"], "invalid int value"),
    (["--tls-cert", "/nonexistent.pem", "--tls-key", "/nonexistent.pem"], "cannot load the TLS certificate"),
])
def test_serve_bad_flags_one_line_error(args: list[str], message: str) -> None:
    result = run_cli("serve", *args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert not re.search(r"\b(Config|ServerSettings)\.|\b[a-z]+_[a-z_]+\b", lines[0])  # flags, not fields
    assert result.stdout == ""


def test_serve_port_in_use_is_one_line() -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = run_cli("serve", "--port", str(port), "--backend", "threads")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"cannot listen on 127.0.0.1:{port}" in lines[0]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", ["no such directory", "a regular file", "a live server's socket"])
def test_serve_unix_socket_failure_names_the_path(backend: str, case: str, tmp_path: Path) -> None:
    import socket

    live = None
    if case == "no such directory":
        path, reason = tmp_path / "missing" / "s.sock", "No such file or directory"
    elif case == "a regular file":
        path, reason = tmp_path / "data.txt", "exists and is not a socket; not removed"
        path.write_bytes(b"precious")
    else:
        path, reason = tmp_path / "live.sock", "a server is listening on this UNIX socket"
        live = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        live.bind(str(path))
        live.listen(1)
    try:
        result = run_cli("serve", "--port", "0", "--unix-socket", str(path), "--backend", backend)
    finally:
        if live is not None:
            live.close()
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == f"python -m smtpproto serve: error: cannot listen on unix:{path}: {reason}\n"
    if case == "a regular file":
        assert path.read_bytes() == b"precious"


def test_top_level_usage_and_unknown_command() -> None:
    result = run_cli()
    assert result.returncode == 2 and "serve" in result.stdout and "demo" in result.stdout
    result = run_cli("frobnicate")
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0
    assert "unknown command 'frobnicate'" in result.stderr
    assert run_cli("--help").returncode == 0


def test_send_is_dispatched() -> None:
    result = run_cli("send", "--help")
    # Either the client's send command answers --help, or a clear one-line
    # error says it is missing from this build.
    if result.returncode == 0:
        assert "--server" in result.stdout
    else:
        assert result.stderr.strip() == ("python -m smtpproto send: error: not available in this build "
                                         "(smtpproto.adapters._cli_send is missing)")


def test_serve_verbose_transcript_redacts_auth(serve_factory: list[Serve]) -> None:
    s = Serve("--verbose", "--tls-cert", str(CERT), "--tls-key", str(KEY), "--auth-user", "u",
              "--auth-password", "s3cret-pw", "--backend", "threads")
    serve_factory.append(s)
    with smtplib.SMTP("127.0.0.1", s.port, timeout=WAIT) as client:
        client.starttls(context=ssl.create_default_context(cafile=str(CERT)))
        client.ehlo()
        client.login("u", "s3cret-pw")
        client.sendmail("a@x.example", ["b@y.example"], b"Subject: v\r\n\r\nhi\r\n")
    s.wait_for("END MESSAGE")
    code, _, err = s.stop()
    assert code == 0
    assert "C: Auth(mechanism='PLAIN', initial_response=<redacted" in err
    assert "S: 235 Authentication successful" in err
    assert "C: Mail(reverse_path='a@x.example'" in err
    assert "s3cret-pw" not in err and "czNjcmV0LXB3" not in err  # nor its base64
