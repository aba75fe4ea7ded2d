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


# ---------------------------------------------------------------- the one-piece DATA path
#
# ClientSession.send_mail takes a shorter way (_send_simple) for the common
# case: PIPELINING, DATA, SMTP, the content in one piece, no transcript or
# recording.  A transcript callback sends the same message the general way, so
# each case below runs both ways, sans-I/O, against the same scripted server and
# must give the same bytes on the wire, the same outcome and the same session.

from smtpproto._config import Config  # noqa: E402
from smtpproto._errors import LocalProtocolError  # noqa: E402
from smtpproto.adapters import _client_flow as flow_mod  # noqa: E402
from smtpproto.adapters._client_flow import (  # noqa: E402
    ClientOptions,
    ClientSession,
    Close,
    Read,
    Write,
    _header_end,
    _HEADER_END,
    prepare_message,
)

_EHLO = b"250-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SIZE 100000\r\n250 ENHANCEDSTATUSCODES\r\n"


class _Script:
    """A server scripted per command, answering what a write holds."""

    def __init__(self, mail: bytes = b"250 2.1.0 Ok", rcpt: dict[str, bytes] | None = None,
                 data: bytes = b"354 go ahead", final: bytes = b"250 2.0.0 Ok: queued", split: bool = False) -> None:
        self.mail, self.rcpt, self.data, self.final = mail, rcpt or {}, data, final
        self.split = split  # answer one byte per read
        self.in_data = False
        self.content = bytearray()
        self.out = bytearray(b"220 sink ESMTP\r\n")

    def wrote(self, data: bytes) -> None:
        for line in data.split(b"\r\n")[:-1] if not self.in_data else [data]:
            if self.in_data:
                self.content += line
                if self.content.endswith(b"\r\n.\r\n") or self.content == b".\r\n":
                    self.in_data = False
                    self.out += self.final + b"\r\n"
                continue
            verb = line[:4].upper()
            if verb == b"EHLO":
                self.out += _EHLO
            elif verb == b"MAIL":
                self.out += self.mail + b"\r\n"
            elif verb == b"RCPT":
                address = line.split(b"<", 1)[1].split(b">", 1)[0].decode()
                self.out += self.rcpt.get(address, b"250 2.1.5 Ok") + b"\r\n"
            elif verb == b"DATA":
                self.out += self.data + b"\r\n"
                self.in_data = self.data.startswith(b"354")
            elif verb == b"RSET":
                self.out += b"250 2.0.0 Ok\r\n"
            else:
                self.out += b"502 5.5.2 what\r\n"

    def read(self) -> bytes:
        n = 1 if self.split else len(self.out)
        data = bytes(self.out[:n])
        del self.out[:n]
        return data


def _drive(gen: Any, server: _Script, log: list[object]) -> Any:
    value: bytes | None = None
    while True:
        try:
            action = gen.send(value)
        except StopIteration as stop:
            return stop.value
        value = None
        if isinstance(action, Write):
            log.append(("W", action.data, action.timeout))
            server.wrote(action.data)
        elif isinstance(action, Read):
            value = server.read()
            log.append(("R", value, action.fresh))
        elif isinstance(action, Close):
            log.append("close")


def _send_both_ways(messages: list[bytes], recipients: list[str], config: Config | None = None,
                    **script: Any) -> list[list[object]]:
    """Each message sent the short way and the general way: what each run saw."""
    runs = []
    for general in (False, True):
        lines: list[tuple[str, str]] = []
        options = ClientOptions(starttls="never", local_hostname="client.example", chunking=False,
                                config=config or Config(),
                                transcript=(lambda d, t: lines.append((d, t))) if general else None)
        session = ClientSession(options)
        server = _Script(**script)
        log: list[object] = []
        _drive(session.handshake(), server, log)
        for raw in messages:
            sender, rcpts, out = prepare_message(raw, "a@x.example", recipients)
            assert (out.whole is not None) == (0 < len(raw))
            try:
                log.append(("result", _drive(session.send_mail(sender, rcpts, out), server, log)))
            except Exception as exc:
                details = {k: v for k, v in vars(exc).items() if k != "__cause__"}
                log.append(("error", type(exc), str(exc), details))
            log.append(("state", session.usable, session.conn.state, session.round_trips, bytes(server.content)))
            server.content.clear()
        runs.append(log)
    return runs


_MSG = b"Subject: hi\r\n\r\n.leading dot\r\nbody\r\n..two\r\n"

CASES = {
    "accepted": dict(),
    "one recipient refused": dict(rcpt={"c@y.example": b"550 5.1.1 no such user"}),
    "every recipient refused": dict(rcpt={"b@y.example": b"550 5.1.1 no", "c@y.example": b"450 4.2.0 later"}),
    "sender refused": dict(mail=b"553 5.7.1 not you"),
    "sender refused, DATA accepted anyway": dict(mail=b"553 5.7.1 not you", data=b"354 go"),
    "DATA refused": dict(data=b"554 5.5.1 no valid recipients"),
    "content refused": dict(final=b"554 5.7.1 spam"),
    "content deferred": dict(final=b"451 4.3.0 try later"),
    "421 to MAIL": dict(mail=b"421 4.3.2 shutting down"),
    "421 at the end": dict(final=b"421 4.3.2 shutting down"),
    "malformed reply": dict(rcpt={"b@y.example": b"25O bad"}),
    "replies byte by byte": dict(split=True),
}


@pytest.mark.parametrize("case", list(CASES))
def test_one_piece_path_matches_the_general_one(case: str) -> None:
    messages = [_MSG, b"Subject: 2\r\n\r\nbare\nnewline\r\n", _MSG]
    short, general = _send_both_ways(messages, ["b@y.example", "c@y.example", "b@y.example"], **CASES[case])
    assert short == general


def test_one_piece_path_bare_newline_refused_like_the_general_one() -> None:
    config = Config(client_bare_newline="reject")
    for raw in (b"Subject: x\r\n\r\nbare\nLF\r\n", b"Subject: x\r\n\r\nends in CR\r"):
        short, general = _send_both_ways([raw, _MSG], ["b@y.example"], config=config)
        assert short == general
        assert any(e[0] == "error" and e[1] is LocalProtocolError for e in short if isinstance(e, tuple))


def test_one_piece_path_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparisons above compare two different paths: the short one is used
    without a transcript, and the general one is not."""
    def general(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the general DATA path was used")

    monkeypatch.setattr(ClientSession, "_send_data", general)
    short, slow = _send_both_ways([_MSG], ["b@y.example"])
    result = next(e[1] for e in short if isinstance(e, tuple) and e[0] == "result")
    assert result.ok and result.size == len(_MSG) and result.body == "DATA"
    assert [a for a in result.recipients] == ["b@y.example"]
    assert not any(e[0] == "error" for e in short if isinstance(e, tuple))
    assert any(e[0] == "error" and e[1] is AssertionError for e in slow if isinstance(e, tuple))


def test_one_piece_only_below_the_chunk_size() -> None:
    """Content of exactly chunk_size octets goes the general way (two writes there)."""
    raw = b"\r\n" + b"x" * 98
    assert prepare_message(raw, "a@x.example", ["b@y.example"], chunk_size=101)[2].whole == raw
    assert prepare_message(raw, "a@x.example", ["b@y.example"], chunk_size=100)[2].whole is None
    assert prepare_message(b"", "a@x.example", ["b@y.example"])[2].whole is None


def test_header_end_agrees_with_the_pattern() -> None:
    """_header_end finds the blank line with two finds; the pattern says where it is."""
    import itertools

    def by_pattern(data: bytes) -> int | None:
        for blank in (b"\r\n", b"\n"):
            if data.startswith(blank):
                return len(blank)
        m = _HEADER_END.search(data)
        return None if m is None else m.end()

    for n in range(9):
        for combo in itertools.product(b"\r\na", repeat=n):
            data = bytes(combo)
            assert _header_end(data) == by_pattern(data), data


def test_bcc_still_stripped_with_the_prefilter() -> None:
    for raw in (b"To: b@y.example\r\nBCC: c@y.example\r\n\r\nbody\r\n",
                b"To: b@y.example\r\nresent-bcc:\r\n\r\nbody\r\n",
                b"To: b@y.example\nbCc : c@y.example\n\nbody\n"):
        _, _, out = prepare_message(raw, "a@x.example", ["b@y.example"])
        assert b"cc" not in b"".join(out.chunks).lower().split(b"\n\n")[0].split(b"\r\n\r\n")[0]
    raw = b"Subject: abcc\r\n\r\nBcc: in the body stays\r\n"
    assert b"".join(prepare_message(raw, "a@x.example", ["b@y.example"])[2].chunks) == raw
    assert flow_mod._BCC_FIELD.search(raw) is not None  # the pattern alone would look at the body too


# ---------------------------------------------------------------- asyncio: replies handled in the callback


def _late_envelope(sock: socket.socket) -> None:
    """Answers the envelope after 0.5 s, then takes the content and accepts it."""
    sock.sendall(b"220 late\r\n")
    buf = b""
    while b"\r\n" not in buf:
        buf += sock.recv(65536)
    sock.sendall(b"250-late\r\n250 PIPELINING\r\n")
    buf = b""
    while buf.count(b"\r\n") < 3:
        buf += sock.recv(65536)
    time.sleep(0.5)
    try:
        sock.sendall(b"250 ok\r\n250 ok\r\n354 go\r\n")
        sock.settimeout(2)
        while b"\r\n.\r\n" not in buf:
            more = sock.recv(65536)
            if not more:
                return
            buf += more
        sock.sendall(b"250 queued\r\n")
        time.sleep(0.5)
    except OSError:
        pass


def test_asyncio_cancelled_send_leaves_no_waiting_session() -> None:
    """The asyncio client runs the session on from the callback that brings the
    replies; a send cancelled while it waits must not be run on by a reply that
    comes later (no content written for it, nothing raised in the loop).  The
    cancelled session is closed (test_client_interrupted.py): its replies are
    never read."""
    import asyncio

    from smtpproto.adapters.asyncio import AsyncSMTPClient

    loop_errors: list[dict[str, Any]] = []

    async def scenario() -> bytes:
        asyncio.get_running_loop().set_exception_handler(lambda loop, ctx: loop_errors.append(ctx))
        client = AsyncSMTPClient(HOST, srv.port, **PLAIN)
        await client.connect()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(client.send_message(b"\r\nbody\r\n", "a@x.example", ["b@y.example"]), 0.2)
        proto = client._proto
        assert proto is not None and proto.resume is None
        assert not client.is_connected
        await asyncio.sleep(0.6)  # the replies would arrive now: nobody runs the session on
        buffered = bytes(proto.buffer)
        await client.close()
        return buffered

    with ScriptedServer(_late_envelope) as srv:
        buffered = asyncio.run(scenario())
    assert buffered == b""
    assert not loop_errors


@pytest.mark.parametrize("flavor", FLAVORS)
def test_late_replies_still_answered(flavor: str) -> None:
    """The same server, waited for: the content goes out from the reply's callback."""
    with ScriptedServer(_late_envelope) as srv:
        async def scenario(make: Make) -> Any:
            async with make(HOST, srv.port, **PLAIN) as client:
                return await client.send_message(b"\r\nbody\r\n", "a@x.example", ["b@y.example"])

        result = run_flavor(flavor, scenario)
    assert result.ok and result.reply.code == 250
