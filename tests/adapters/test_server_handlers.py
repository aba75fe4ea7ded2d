"""Ready-made handlers (sink, print, Maildir, mbox, relay) and aiosmtplib as a
client, over loopback against each server adapter."""

from __future__ import annotations

import asyncio
import io
import mailbox
import smtplib
from pathlib import Path
from typing import Any

import pytest
from test_server_support import (
    BACKENDS,
    WAIT,
    RawClient,
    Recorder,
    RunningServer,
    client_tls_context,
    fast_settings,
    hello,
    server_tls_context,
)

from smtpproto.adapters.handlers import MaildirHandler, MboxHandler, PrintHandler, RelayHandler, SinkHandler

MESSAGE = (b"From: Alice <a@x.example>\r\nTo: b@y.example\r\nSubject: stored\r\n\r\n"
           b"From the start\r\n>From quoted\r\n.dot\r\nend\r\n")


def send(port: int, body: bytes = MESSAGE, rcpts: list[str] | None = None) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=WAIT) as client:
        client.sendmail("a@x.example", rcpts or ["b@y.example"], body)


@pytest.mark.parametrize("backend", BACKENDS)
def test_sink_counts(backend: str) -> None:
    handler = SinkHandler()
    with RunningServer(backend, handler) as srv:
        send(srv.port)
        send(srv.port)
    assert handler.received == 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_print_handler(backend: str) -> None:
    out = io.StringIO()
    with RunningServer(backend, PrintHandler(out)) as srv:
        send(srv.port)
    text = out.getvalue()
    assert "MAIL FROM: <a@x.example>" in text and "RCPT TO: <b@y.example>" in text
    assert "Subject: stored\n\nFrom the start\n>From quoted\n.dot\nend\n" in text
    assert text.strip().endswith("END MESSAGE ----------")


@pytest.mark.parametrize("backend", BACKENDS)
def test_maildir_stores_bytes_exactly(backend: str, tmp_path: Path) -> None:
    box = tmp_path / "Maildir"
    with RunningServer(backend, MaildirHandler(box)) as srv:
        send(srv.port)
        with RawClient(srv.address) as c:  # an aborted transaction leaves nothing in tmp/
            hello(c)
            c.command(b"MAIL FROM:<a@x.example>\r\n")
            c.command(b"RCPT TO:<b@y.example>\r\n")
            c.command(b"DATA\r\n")
            c.send(b"Subject: half\r\n\r\nnever finished\r\n")
    files = list((box / "new").iterdir())
    assert len(files) == 1
    data = files[0].read_bytes()
    assert data.startswith(b"Received: from ")
    header_end = data.index(b"\r\nFrom: Alice")
    assert data[header_end + 2:] == MESSAGE
    assert list((box / "tmp").iterdir()) == []
    # The stdlib reads it as a Maildir message.
    msgs = list(mailbox.Maildir(str(box), create=False))
    assert msgs[0]["Subject"] == "stored"


@pytest.mark.parametrize("backend", BACKENDS)
def test_mbox_stores_and_quotes(backend: str, tmp_path: Path) -> None:
    path = tmp_path / "mail.mbox"
    with RunningServer(backend, MboxHandler(path)) as srv:
        send(srv.port)
        send(srv.port, b"Subject: second\r\n\r\nbody\r\n")
    data = path.read_bytes()
    assert data.count(b"\nFrom a@x.example ") == 1 and data.startswith(b"From a@x.example ")
    assert b"\r\n>From the start\r\n>>From quoted\r\n.dot\r\n" in data
    box = mailbox.mbox(str(path), create=False)
    subjects = [m["Subject"] for m in box]
    assert subjects == ["stored", "second"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_relay_forwards_exact_bytes(backend: str) -> None:
    downstream = Recorder()
    with RunningServer("threads", downstream) as down:
        relay = RelayHandler("127.0.0.1", down.port, starttls="never", timeout=WAIT)
        with RunningServer(backend, relay) as up:
            send(up.port, rcpts=["b@y.example", "c@y.example"])
    assert downstream.delivered.wait(WAIT)
    env = downstream.envelopes[0]
    assert env.mail_from == "a@x.example" and env.rcpt_tos == ["b@y.example", "c@y.example"]
    content = env.content or b""
    assert content.startswith(b"Received: from ") and content.endswith(MESSAGE)


class RefuseSome(Recorder):
    def on_rcpt(self, session: Any, command: Any) -> bool:
        return command.forward_path != "gone@y.example"


def test_relay_partial_refusal_asks_for_retry() -> None:
    with RunningServer("threads", RefuseSome()) as down:
        relay = RelayHandler("127.0.0.1", down.port, starttls="never", timeout=WAIT)
        with RunningServer("threads", relay) as up:
            with pytest.raises(smtplib.SMTPDataError) as info:
                send(up.port, rcpts=["b@y.example", "gone@y.example"])
            assert info.value.smtp_code == 451


def test_relay_unreachable_upstream_is_temporary() -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead_port = s.getsockname()[1]
    s.close()
    relay = RelayHandler("127.0.0.1", dead_port, starttls="never", timeout=2.0, connect_timeout=2.0)
    with RunningServer("threads", relay) as up:
        with pytest.raises(smtplib.SMTPDataError) as info:
            send(up.port)
        assert info.value.smtp_code == 451


@pytest.mark.parametrize("backend", BACKENDS)
def test_aiosmtplib_client(backend: str) -> None:
    aiosmtplib = pytest.importorskip("aiosmtplib")
    handler = Recorder()

    async def run(port: int) -> None:
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=WAIT, start_tls=False) as client:
            errors, _ = await client.sendmail("a@x.example", ["b@y.example"], MESSAGE)
            assert errors == {}

    with RunningServer(backend, handler) as srv:
        asyncio.run(run(srv.port))
    assert handler.delivered.wait(WAIT)
    assert handler.envelopes[0].content == MESSAGE


@pytest.mark.parametrize("backend", BACKENDS)
def test_aiosmtplib_starttls_and_auth(backend: str) -> None:
    aiosmtplib = pytest.importorskip("aiosmtplib")
    from test_server_support import AuthRecorder

    handler = AuthRecorder()

    async def run(port: int) -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=WAIT, start_tls=True,
                                 tls_context=client_tls_context(), username="user", password="secret")
        async with client:
            errors, _ = await client.sendmail("a@x.example", ["b@y.example"], MESSAGE)
            assert errors == {}

    with RunningServer(backend, handler, ssl_context=server_tls_context(), settings=fast_settings()) as srv:
        asyncio.run(run(srv.port))
    assert handler.delivered.wait(WAIT)
    assert handler.sessions[0].tls_active and handler.sessions[0].auth is not None
    assert handler.envelopes[0].content == MESSAGE  # byte-exact
