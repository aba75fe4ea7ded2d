"""A client call stopped half-way (cancelled, timed out by the caller,
KeyboardInterrupt) must leave a client that refuses to go on, not one that
reads the abandoned transaction's replies as the next one's.

Before the fix, a cancelled ``send_message`` left ``is_connected`` true; the
next ``send_message`` then took message 1's final ``250`` for message 2's
(a false success with BDAT) or failed on a stray RCPT reply (with DATA).
"""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any

import pytest

from smtpproto.adapters import SMTPServerDisconnected
from smtpproto.adapters._sockets_client import SMTPClient

from test_client_support import FLAVORS, IO_TIMEOUT, ScriptedServer, read_line, run_flavor

MESSAGE = b"From: a@x.example\r\nTo: b@y.example\r\nSubject: s\r\n\r\nbody\r\n"
DELAY = 0.6  # the final reply's delay: the callers below give up after 0.15 s


def slow_final_reply(chunking: bool, log: list[bytes]) -> Any:
    """A server that answers every final reply (end of data, BDAT LAST) late,
    with the message's number in the text."""

    def script(sock: socket.socket) -> None:
        sock.sendall(b"220 slow.example ESMTP\r\n")
        read_line(sock)
        sock.sendall(b"250-slow.example\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
                     + (b"250-CHUNKING\r\n" if chunking else b"") + b"250 ENHANCEDSTATUSCODES\r\n")
        count = 0
        while True:
            line = read_line(sock)
            log.append(line)
            verb = line[:4].upper()
            if verb == b"MAIL":
                sock.sendall(b"250 2.1.0 Ok\r\n")
            elif verb == b"RCPT":
                sock.sendall(b"250 2.1.5 Ok\r\n")
            elif verb == b"DATA":
                sock.sendall(b"354 go ahead\r\n")
                while read_line(sock) != b".\r\n":
                    pass
                count += 1
                threading.Event().wait(DELAY)
                sock.sendall(b"250 2.0.0 message %d\r\n" % count)
            elif verb == b"BDAT":
                size = int(line.split()[1])
                got = 0
                while got < size:
                    got += len(sock.recv(size - got))
                count += 1
                threading.Event().wait(DELAY)
                sock.sendall(b"250 2.0.0 message %d\r\n" % count)
            elif verb == b"QUIT":
                sock.sendall(b"221 2.0.0 Bye\r\n")
                return
            else:
                sock.sendall(b"250 2.0.0 Ok\r\n")

    return script


@pytest.mark.parametrize("chunking", [False, True], ids=["DATA", "BDAT"])
@pytest.mark.parametrize("flavor", [f for f in FLAVORS if f != "blocking"])
def test_a_cancelled_send_leaves_a_client_that_refuses_to_go_on(flavor: str, chunking: bool) -> None:
    log: list[bytes] = []

    async def scenario(make: Any) -> None:
        async with make("127.0.0.1", srv.port, starttls="never", timeout=IO_TIMEOUT) as client:
            if flavor == "trio":
                import trio

                with trio.move_on_after(0.15) as scope:
                    await client.send_message(MESSAGE)
                assert scope.cancelled_caught
            else:
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(client.send_message(MESSAGE), 0.15)
            assert not client.is_connected
            with pytest.raises(SMTPServerDisconnected):
                await client.send_message(MESSAGE)

    with ScriptedServer(slow_final_reply(chunking, log)) as srv:
        run_flavor(flavor, scenario)
    assert not srv.errors
    # One transaction reached the server; the second was never sent.
    assert [line[:4] for line in log].count(b"MAIL") == 1


class _Interrupting(socket.socket):
    """A socket whose next recv() is interrupted (as by Ctrl-C) once armed."""

    armed = False

    def recv(self, n: int, *args: Any) -> bytes:
        if self.armed:
            self.armed = False
            raise KeyboardInterrupt
        return super().recv(n, *args)


@pytest.mark.parametrize("where", ["in a read", "in the session's own code"])
def test_blocking_client_interrupted_mid_transaction_is_closed(where: str) -> None:
    log: list[bytes] = []
    with ScriptedServer(slow_final_reply(False, log)) as srv:
        sock = _Interrupting()
        sock.connect(("127.0.0.1", srv.port))
        seen: list[str] = []

        def transcript(direction: str, line: str) -> None:
            seen.append(line)
            if where == "in the session's own code" and line.startswith("354"):
                raise KeyboardInterrupt  # raised inside the flow, between two yields

        client = SMTPClient(sock=sock, starttls="never", timeout=IO_TIMEOUT,
                            transcript=transcript if where != "in a read" else None)
        with client:
            sock.armed = where == "in a read"
            with pytest.raises(KeyboardInterrupt):
                client.send_message(MESSAGE)
            assert not client.is_connected
            with pytest.raises(SMTPServerDisconnected):
                client.send_message(MESSAGE)
    assert [line[:4] for line in log].count(b"MAIL") == 1


@pytest.mark.parametrize("flavor", FLAVORS)
def test_an_error_the_flow_raises_itself_leaves_the_session_usable(flavor: str) -> None:
    log: list[bytes] = []

    async def scenario(make: Any) -> None:
        async with make("127.0.0.1", srv.port, starttls="never", timeout=IO_TIMEOUT) as client:
            with pytest.raises(ValueError):
                await client.send_message(b"Subject: no recipients\r\n\r\nx\r\n", "a@x.example", [])
            assert client.is_connected
            result = await client.send_message(MESSAGE)
            assert result.ok and result.reply.lines == ("message 1",)

    with ScriptedServer(slow_final_reply(False, log)) as srv:
        run_flavor(flavor, scenario)
    assert not srv.errors

