"""The lean paths of the client send path, for every facade: MAIL/RCPT events
reused across transactions, reply lines remembered by the core, the blocking
client's direct first write, the asyncio client's reads and writes without a
task, and the write timeout that must still hold on all of them."""

from __future__ import annotations

import os
import socket
import sys
import time
from typing import Any, Callable

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from test_client_support import (  # noqa: E402
    FLAVORS,
    IO_TIMEOUT,
    CoreServer,
    ScriptedServer,
    run_flavor,
)

from smtpproto import Connection, Role  # noqa: E402
from smtpproto._events import Mail  # noqa: E402
from smtpproto.adapters._client_flow import SMTPServerDisconnected, SMTPTimeoutError  # noqa: E402

Make = Callable[..., Any]
HOST = "127.0.0.1"
PLAIN = {"starttls": "never", "timeout": IO_TIMEOUT, "connect_timeout": IO_TIMEOUT}


def _stuffed(raw: bytes) -> bytes:
    body = raw.replace(b"\r\n.", b"\r\n..")
    return (b"." + body if body.startswith(b".") else body) + b".\r\n"


@pytest.mark.parametrize("flavor", FLAVORS)
def test_reused_events_follow_each_message(flavor: str) -> None:
    """The same sender and recipients over several transactions: each MAIL
    carries its own message's SIZE and BODY, each recipient its own params."""
    messages = [b"Subject: 1\r\n\r\nshort\r\n", b"Subject: 2\r\n\r\nlonger body\r\n",
                b"Subject: 3\r\n\r\n8bit \xc3\xa9\r\n", b"Subject: 1\r\n\r\nshort\r\n"]
    with CoreServer(extensions=["PIPELINING", "8BITMIME", "SIZE 1000000", "DSN"]) as srv:
        async def scenario(make: Make) -> list[Any]:
            async with make(HOST, srv.port, **PLAIN) as client:
                out = []
                for i, raw in enumerate(messages):
                    rcpt_params = {"NOTIFY": "NEVER"} if i == 1 else None
                    out.append(await client.send_message(raw, "a@x.example", ["b@y.example", "c@y.example"],
                                                         rcpt_params=rcpt_params))
                return out

        results = run_flavor(flavor, scenario)
    assert [r.ok for r in results] == [True] * 4
    assert [m.content for m in srv.messages] == messages
    assert [m.mail_params.get("SIZE") for m in srv.messages] == [str(len(m)) for m in messages]
    assert [m.mail_params.get("BODY") for m in srv.messages] == [None, None, "8BITMIME", None]


def test_a_changed_params_dict_is_not_reused() -> None:
    """A Mail is frozen but its params dict is not: a kept event whose dict was
    changed (through a reply's ``command``) is rebuilt, not sent as changed."""
    with CoreServer(extensions=["PIPELINING", "SIZE 1000000"]) as srv:
        async def scenario(make: Make) -> None:
            async with make(HOST, srv.port, **PLAIN) as client:
                await client.send_message(b"\r\nabc\r\n", "a@x.example", ["b@y.example"])
                kept = [e for e in client.session._events.values() if isinstance(e, Mail)]
                assert kept
                kept[0].params["SIZE"] = "999"  # type: ignore[index]
                await client.send_message(b"\r\nabc\r\n", "a@x.example", ["b@y.example"])

        run_flavor("blocking", scenario)
    assert [m.mail_params.get("SIZE") for m in srv.messages] == ["7", "7"]


def test_reply_lines_remembered_are_replies_of_their_own() -> None:
    """The core remembers parsed reply lines: the same line again gives an
    equal reply that answers its own command, and a line with a bare LF is
    still refused when bare newlines are (the table only holds CRLF lines)."""
    from smtpproto import Config, Data, Ehlo, EndOfMessage, MessageData, Rcpt, RemoteProtocolError

    conn = Connection(Role.CLIENT)
    conn.receive_data(b"220 hi\r\n")
    conn.next_event()
    conn.send(Ehlo(domain="c.example"))
    conn.receive_data(b"250-s\r\n250 PIPELINING\r\n")
    conn.next_event()
    replies = []
    for sender in ("a@x.example", "b@x.example"):
        mail, rcpt = Mail(reverse_path=sender), Rcpt(forward_path="r@y.example")
        conn.send(mail)
        conn.send(rcpt)
        conn.send(Data())
        conn.receive_data(b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n")
        got = [conn.next_event() for _ in range(3)]
        assert [r.command for r in got] == [mail, rcpt, Data()]
        assert got[0].command is mail
        conn.send(MessageData(data=b"x\r\n"))
        conn.send(EndOfMessage())
        conn.receive_data(b"250 2.0.0 Ok: queued\r\n")
        replies.append(got + [conn.next_event()])
    assert replies[0] == replies[1]
    assert replies[0][0].enhanced_status == "2.1.0" and replies[0][0].lines == ("Ok",)

    strict = Connection(Role.CLIENT, Config(bare_newline="reject"))
    strict.receive_data(b"220 hi\n")
    with pytest.raises(RemoteProtocolError):
        strict.next_event()


def _answer_envelope(sock: socket.socket, name: bytes) -> bytes:
    """A small receive buffer, the greeting, EHLO with PIPELINING, then 250,
    250, 354 for one pipelined MAIL, RCPT, DATA; returns what came with them."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    sock.sendall(b"220 " + name + b"\r\n")
    buf = b""
    while b"\r\n" not in buf:
        buf += sock.recv(65536)
    sock.sendall(b"250-" + name + b"\r\n250 PIPELINING\r\n")
    buf = b""
    while buf.count(b"\r\n") < 3:
        buf += sock.recv(65536)
    sock.sendall(b"250 ok\r\n250 ok\r\n354 go\r\n")
    return buf


def _slow_reader(received: bytearray) -> Callable[[socket.socket], None]:
    """Answers one pipelined DATA transaction, then waits before it reads the
    content, so the client's first write cannot take it all."""

    def script(sock: socket.socket) -> None:
        buf = _answer_envelope(sock, b"slow")
        time.sleep(0.3)
        data = bytearray(buf.split(b"DATA\r\n", 1)[1])
        while not data.endswith(b"\r\n.\r\n"):
            more = sock.recv(65536)
            if not more:
                return
            data += more
            time.sleep(0.001)
        received.extend(data)
        sock.sendall(b"250 done\r\n")
        buf = b""
        while b"\r\n" not in buf:
            buf += sock.recv(65536)
        sock.sendall(b"221 bye\r\n")

    return script


@pytest.mark.parametrize("flavor", FLAVORS)
def test_content_split_over_writes_arrives_exact(flavor: str) -> None:
    raw = b"Subject: big\r\n\r\n" + b"".join(b".line %d\r\n" % i for i in range(200_000))
    received = bytearray()
    with ScriptedServer(_slow_reader(received)) as srv:
        async def scenario(make: Make) -> Any:
            async with make(HOST, srv.port, **PLAIN) as client:
                return await client.send_message(raw, "a@x.example", ["b@y.example"])

        result = run_flavor(flavor, scenario)
    assert not srv.errors
    assert result.ok and result.size == len(raw)
    assert bytes(received) == _stuffed(raw)


def _never_reads_content(sock: socket.socket) -> None:
    _answer_envelope(sock, b"stuck")
    time.sleep(4)  # and never read the content


@pytest.mark.parametrize("flavor", FLAVORS)
def test_write_timeout_still_holds(flavor: str) -> None:
    """A server that stops reading: the write gives up after the timeout, on
    every path (the blocking client's direct write included)."""
    raw = b"Subject: big\r\n\r\n" + b"x" * 76 + b"\r\n" * 1 + (b"y" * 78 + b"\r\n") * 400_000
    with ScriptedServer(_never_reads_content) as srv:
        async def scenario(make: Make) -> Any:
            async with make(HOST, srv.port, starttls="never", timeout=1.0, connect_timeout=IO_TIMEOUT) as client:
                start = time.monotonic()
                with pytest.raises((SMTPTimeoutError, SMTPServerDisconnected)) as info:
                    await client.send_message(raw, "a@x.example", ["b@y.example"])
                return info.value, time.monotonic() - start

        error, took = run_flavor(flavor, scenario)
    assert isinstance(error, SMTPTimeoutError), error
    assert took < 3.5
