"""Run the server examples for a bounded time: start, send, check, stop."""

from __future__ import annotations

import os
import queue
import re
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
DATA = Path(__file__).resolve().parent / "data"
WAIT = 15.0


class Example:
    def __init__(self, name: str, *args: str) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.proc = subprocess.Popen([sys.executable, str(EXAMPLES / name), *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env, cwd=str(ROOT))
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.first = self.next_line()
        assert self.first.startswith("listening on "), self.first

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.put(raw.decode().rstrip("\n"))

    def next_line(self) -> str:
        try:
            return self.lines.get(timeout=WAIT)
        except queue.Empty:
            self.proc.kill()
            raise AssertionError(f"no output; stderr: {self.proc.communicate(timeout=WAIT)[1]!r}") from None

    @property
    def port(self) -> int:
        m = re.match(r"listening on 127\.0\.0\.1:(\d+)", self.first)
        assert m, self.first
        return int(m.group(1))

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(WAIT)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(WAIT)
        assert self.proc.stderr is not None
        err = self.proc.stderr.read().decode()
        assert code == 0, err
        assert "Traceback" not in err


def test_sink_server_sockets() -> None:
    ex = Example("sink_server_sockets.py", "--port", "0")
    try:
        with smtplib.SMTP("127.0.0.1", ex.port, timeout=WAIT) as client:
            client.sendmail("a@x.example", ["b@y.example"], b"Subject: s\r\n\r\n12345\r\n")
        assert ex.next_line() == "message from <a@x.example> to 1 recipient(s), 21 octets"
    finally:
        ex.stop()


def test_sink_server_asyncio_with_starttls() -> None:
    ex = Example("sink_server_asyncio.py", "--port", "0", "--cert", str(DATA / "server-cert.pem"),
                 "--key", str(DATA / "server-key.pem"))
    try:
        with smtplib.SMTP("127.0.0.1", ex.port, timeout=WAIT) as client:
            client.starttls(context=ssl.create_default_context(cafile=str(DATA / "server-cert.pem")))
            refused = client.sendmail("a@x.example", ["b@y.example", "nobody@y.example"], b"hi\r\n")
            assert list(refused) == ["nobody@y.example"]
        assert ex.next_line() == "message from <a@x.example> over TLS: 4 octets"
    finally:
        ex.stop()


def test_sink_server_trio() -> None:
    pytest.importorskip("trio")
    ex = Example("sink_server_trio.py", "--port", "0")
    try:
        with smtplib.SMTP("127.0.0.1", ex.port, timeout=WAIT) as client:
            client.sendmail("a@x.example", ["b@y.example"], b"hello\r\n")
        assert ex.next_line() == "message from <a@x.example>: 7 octets"
    finally:
        ex.stop()


def test_lmtp_delivery_agent_over_unix_socket() -> None:
    root = Path(tempfile.mkdtemp(prefix="smtpp-lmtp"))
    path = str(root / "lmtp.sock")
    ex = Example("lmtp_delivery_agent.py", "--socket", path, "--root", str(root / "mail"),
                 "--users", "alice,bob", "--quota", "300")
    try:
        assert ex.first == f"listening on unix:{path} (LMTP)"
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(WAIT)
            sock.connect(path)
            f = sock.makefile("rb")
            assert f.readline().startswith(b"220 ")
            sock.sendall(b"LHLO mta.test\r\n")
            while not f.readline().startswith(b"250 "):
                pass
            body = b"Subject: hi\r\n\r\n" + b"x" * 100 + b"\r\n"
            for _ in range(2):  # the second message overflows the 300-octet quota
                sock.sendall(b"MAIL FROM:<a@x.example>\r\nRCPT TO:<alice@local>\r\nRCPT TO:<carol@local>\r\n"
                             b"RCPT TO:<bob@local>\r\nDATA\r\n")
                codes = [f.readline()[:3] for _ in range(5)]
                assert codes == [b"250", b"250", b"550", b"250", b"354"]
                sock.sendall(body + b".\r\n")
                finals = [f.readline() for _ in range(2)]
                results = [line[:3] for line in finals]
            assert results == [b"452", b"452"]
            sock.sendall(b"QUIT\r\n")
            assert f.readline().startswith(b"221")
        for user in ("alice", "bob"):
            files = list((root / "mail" / user / "new").iterdir())
            assert len(files) == 1
            data = files[0].read_bytes()
            assert data.startswith(b"Received: ") and data.endswith(body) and f"<{user}@local>".encode() in data
    finally:
        ex.stop()


# --------------------------------------------------------------- relay_filter.py

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "adapters"))
from test_client_support import CoreServer  # noqa: E402

_RELAYED = (b"From: Ann <ann@x.example>\r\nTo: bob@example.org\r\nSubject: minutes\r\n"
            b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
            b"--b1\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n.a line with a dot\r\n"
            b"--b1\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=\"{name}\"\r\n\r\n"
            b"notes\r\n--b1--\r\n")


def _relayed(name: str) -> bytes:
    return _RELAYED.replace(b"{name}", name.encode())


def _relay(upstream_port: int) -> Example:
    return Example("relay_filter.py", "--port", "0", "--upstream", f"127.0.0.1:{upstream_port}",
                   "--domain", "example.org", "--upstream-starttls", "never", "--timeout", "10")


def test_relay_filter_forwards_the_content_exactly() -> None:
    with CoreServer() as upstream:
        ex = _relay(upstream.port)
        try:
            assert ex.first == f"listening on 127.0.0.1:{ex.port}, relaying to 127.0.0.1:{upstream.port}"
            with smtplib.SMTP("127.0.0.1", ex.port, timeout=WAIT) as client:
                # Mixed recipients: the foreign domain is refused at RCPT (no open relay).
                refused = client.sendmail("ann@x.example", ["bob@example.org", "eve@elsewhere.example"],
                                          _relayed("notes.txt"))
                assert refused == {"eve@elsewhere.example": (550, b"5.7.1 <eve@elsewhere.example>: relaying denied")}
                # A bounce (null reverse path) is relayed with its null path.
                client.sendmail("", ["postmaster@EXAMPLE.org"], _relayed("notes.txt"))
        finally:
            ex.stop()
    first, bounce = upstream.messages
    assert (first.sender, first.recipients) == ("ann@x.example", ["bob@example.org"])
    assert (bounce.sender, bounce.recipients) == ("", ["postmaster@EXAMPLE.org"])
    for got in (first, bounce):
        head, sep, rest = got.content.partition(b"X-Filter: passed\r\n")
        assert sep and rest == _relayed("notes.txt"), got.content[:200]  # byte-exact, dot line included
        assert head.startswith(b"Received: from ") and head.count(b"\r\n") == 3


def test_relay_filter_refuses_blocked_attachments_and_sends_nothing() -> None:
    with CoreServer() as upstream:
        ex = _relay(upstream.port)
        try:
            with smtplib.SMTP("127.0.0.1", ex.port, timeout=WAIT) as client:
                with pytest.raises(smtplib.SMTPDataError) as err:
                    client.sendmail("ann@x.example", ["bob@example.org"], _relayed("Invoice.PDF.exe"))
                assert err.value.smtp_code == 550
                assert err.value.smtp_error.startswith(b"5.7.1 attachments of this type")
                client.sendmail("ann@x.example", ["bob@example.org"], _relayed("invoice.pdf"))  # still usable
        finally:
            ex.stop()
    assert [m.content.endswith(_relayed("invoice.pdf")) for m in upstream.messages] == [True]


def test_relay_filter_answers_for_the_upstream_server() -> None:
    with CoreServer(refuse={"gone@example.org"}, refuse_senders={"spam@x.example"}) as upstream:
        ex = _relay(upstream.port)
        try:
            with smtplib.SMTP("127.0.0.1", ex.port, timeout=WAIT) as client:
                # Every recipient refused upstream: that refusal, as the final reply.
                with pytest.raises(smtplib.SMTPDataError) as err:
                    client.sendmail("ann@x.example", ["gone@example.org"], _relayed("a.txt"))
                assert (err.value.smtp_code, err.value.smtp_error) == (550, b"5.1.1 upstream: no such user")
                # Only some refused: one final reply cannot say so, and no queue keeps the rest: 451.
                with pytest.raises(smtplib.SMTPDataError) as err:
                    client.sendmail("ann@x.example", ["gone@example.org", "bob@example.org"], _relayed("a.txt"))
                assert (err.value.smtp_code, err.value.smtp_error[:5]) == (451, b"4.4.1")
                # The sender refused upstream: that refusal.
                with pytest.raises(smtplib.SMTPDataError) as err:
                    client.sendmail("spam@x.example", ["bob@example.org"], _relayed("a.txt"))
                assert (err.value.smtp_code, err.value.smtp_error[:16]) == (553, b"5.7.1 upstream: ")
        finally:
            ex.stop()
    assert [m.recipients for m in upstream.messages] == [["bob@example.org"]]


def test_relay_filter_with_the_upstream_down_says_try_later() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    ex = _relay(dead)
    try:
        with smtplib.SMTP("127.0.0.1", ex.port, timeout=WAIT) as client:
            with pytest.raises(smtplib.SMTPDataError) as err:
                client.sendmail("ann@x.example", ["bob@example.org"], _relayed("a.txt"))
            assert err.value.smtp_code == 451
            assert err.value.smtp_error.startswith(b"4.4.1 upstream 127.0.0.1:") and b"SMTPConnectError" in err.value.smtp_error
    finally:
        ex.stop()
