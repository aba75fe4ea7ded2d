"""The client facades (blocking, asyncio, trio) against real servers on loopback:
aiosmtpd and our own server Connection.  Every test runs once per facade."""

from __future__ import annotations

import email.message
import io
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
    RecordingHandler,
    ScriptedServer,
    aiosmtpd_server,
    read_line,
    run_flavor,
)

from smtpproto import Mail, Rset, Rcpt  # noqa: E402
from smtpproto.adapters._client_flow import (  # noqa: E402
    SMTPClientError,
    SMTPConnectError,
    SMTPDataRefused,
    SMTPMessageTooLarge,
    SMTPNotSupportedError,
    SMTPRecipientsRefused,
    SMTPSenderRefused,
)
from smtpproto.message import build, strip_bcc  # noqa: E402

Make = Callable[..., Any]
pytestmark = pytest.mark.parametrize("flavor", FLAVORS)

HOST = "127.0.0.1"
PLAIN = {"starttls": "never", "timeout": IO_TIMEOUT, "connect_timeout": IO_TIMEOUT}

TRICKY = (
    b"From: Alice <alice@x.example>\r\n"
    b"To: Bob <bob@y.example>\r\n"
    b"Cc: carol@y.example\r\n"
    b"Bcc: secret@z.example,\r\n"
    b"  other-secret@z.example\r\n"
    b"Subject: dots and ends\r\n"
    b"\r\n"
    b".leading dot\r\n"
    b"..two dots\r\n"
    b"\r\n.\r\n"
    b"a line\r\n"
    b".\r\n"
    b"last line without newline"
)


def expected_wire(raw: bytes) -> bytes:
    """What a server stores for ``raw`` sent with DATA: Bcc removed, and the
    content ends with CRLF (RFC 5321 §4.1.1.4)."""
    data = strip_bcc(raw)
    return data if data.endswith(b"\r\n") else data + b"\r\n"


# ----------------------------------------------------------------- content


def test_bytes_arrive_byte_exact_with_bcc_stripped_aiosmtpd(flavor: str) -> None:
    with aiosmtpd_server() as (port, handler):
        async def scenario(make: Make) -> Any:
            async with make(HOST, port, **PLAIN) as client:
                return await client.send_message(TRICKY)

        result = run_flavor(flavor, scenario)
    [got] = handler.messages
    assert got.content == expected_wire(TRICKY)
    assert b"secret@z.example" not in got.content and b"Bcc" not in got.content
    assert got.mail_from == "alice@x.example"
    # Bcc recipients are envelope recipients: they get the message, unseen.
    assert got.rcpt_tos == ["bob@y.example", "carol@y.example", "secret@z.example", "other-secret@z.example"]
    assert result.ok and result.accepted == got.rcpt_tos
    assert result.body == "DATA"


def test_core_server_content_exact_and_h10_no_smuggling(flavor: str) -> None:
    body = b"From: a@x.example\r\nTo: b@y.example\r\n\r\nhi\n.\r\nMAIL FROM:<x@x.example>\r\nRCPT TO:<c@y.example>\r\n"
    with CoreServer() as srv:
        async def scenario(make: Make) -> Any:
            async with make(HOST, srv.port, **PLAIN) as client:
                return await client.send_message(body)

        run_flavor(flavor, scenario)
    # One message; the bare LF became CRLF, the dot line went out stuffed.
    assert [m.content for m in srv.messages] == [body.replace(b"hi\n", b"hi\r\n")]
    assert sum(isinstance(c, Mail) for c in srv.commands) == 1
    assert not srv.errors


def test_message_and_email_message_inputs(flavor: str) -> None:
    msg = build(from_="a@x.example", to=["b@y.example"], bcc=["hidden@y.example"], subject="built", text="body\n")
    em = email.message.EmailMessage()
    em["From"] = "e@x.example"
    em["To"] = "f@y.example"
    em["Subject"] = "stdlib"
    em.set_content("from the standard library\n")
    with aiosmtpd_server() as (port, handler):
        async def scenario(make: Make) -> None:
            async with make(HOST, port, **PLAIN) as client:
                await client.send_message(msg)
                await client.send_message(em)

        run_flavor(flavor, scenario)
    first, second = handler.messages
    assert first.content == strip_bcc(msg.to_bytes())
    assert first.rcpt_tos == ["b@y.example", "hidden@y.example"]
    assert second.mail_from == "e@x.example" and second.rcpt_tos == ["f@y.example"]
    assert b"from the standard library" in second.content


def test_resent_fields_give_the_envelope(flavor: str) -> None:
    raw = (b"Resent-From: fwd@r.example\r\nResent-To: new@r.example\r\nResent-Bcc: quiet@r.example\r\n"
           b"From: a@x.example\r\nTo: b@y.example\r\n\r\nforwarded\r\n")
    with aiosmtpd_server() as (port, handler):
        async def scenario(make: Make) -> None:
            async with make(HOST, port, **PLAIN) as client:
                await client.send_message(raw)

        run_flavor(flavor, scenario)
    [got] = handler.messages
    assert got.mail_from == "fwd@r.example"
    assert got.rcpt_tos == ["new@r.example", "quiet@r.example"]
    assert b"quiet@r.example" not in got.content


def test_streamed_file_arrives_exact(flavor: str, tmp_path: Any) -> None:
    head = b"From: a@x.example\r\nTo: b@y.example\r\nBcc: c@y.example\r\nSubject: big\r\n\r\n"
    lines = b"".join(b"%06d " % i + b"x" * 70 + b"\r\n" + (b".dot\r\n" if i % 97 == 0 else b"") for i in range(40000))
    path = tmp_path / "big.eml"
    path.write_bytes(head + lines)
    with CoreServer() as srv:
        async def scenario(make: Make) -> Any:
            async with make(HOST, srv.port, chunk_size=65536, **PLAIN) as client:
                with open(path, "rb") as f:
                    return await client.send_message(f)

        result = run_flavor(flavor, scenario)
    [got] = srv.messages
    assert got.content == strip_bcc(head) + lines
    assert got.recipients == ["b@y.example", "c@y.example"]
    assert got.mail_params["SIZE"] == str(len(strip_bcc(head) + lines))
    assert result.size == len(got.content)


class _Pipe(io.RawIOBase):
    """A stream that cannot seek: its content class is unknown before it is sent."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, n: int = -1) -> bytes:
        return self._data.read(n)


def test_non_seekable_stream(flavor: str) -> None:
    raw = b"From: a@x.example\r\nTo: b@y.example\r\n\r\n" + (b"y" * 98 + b"\r\n") * 2000
    with CoreServer(extensions=["PIPELINING", "8BITMIME", "SIZE 10485760"]) as srv:
        async def scenario(make: Make) -> None:
            async with make(HOST, srv.port, chunk_size=4096, **PLAIN) as client:
                await client.send_message(_Pipe(raw))

        run_flavor(flavor, scenario)
    [got] = srv.messages
    assert got.content == raw
    assert "SIZE" not in got.mail_params and got.mail_params.get("BODY") == "8BITMIME"


_BINARY = (b"From: a@x.example\r\nTo: b@y.example\r\nContent-Transfer-Encoding: binary\r\n\r\n"
           + b"\x00\x01\xff\r\nbare\nlf\r" * 3000)


# Found out only after the first chunks have gone.
_TEXT_THEN_BINARY = b"From: a@x.example\r\nTo: b@y.example\r\n\r\n" + b"text\r\n" * 2000 + _BINARY[80:]


def test_non_seekable_binary_stream_goes_as_binarymime_untouched(flavor: str) -> None:
    # It used to go as BODY=8BITMIME, its bare CR/LF "repaired": altered content.
    with CoreServer(extensions=["PIPELINING", "CHUNKING", "BINARYMIME", "8BITMIME"]) as srv:
        async def scenario(make: Make) -> Any:
            async with make(HOST, srv.port, chunk_size=4096, **PLAIN) as client:
                return await client.send_message(_Pipe(_BINARY))

        result = run_flavor(flavor, scenario)
    [got] = srv.messages
    assert got.content == _BINARY and got.mail_params.get("BODY") == "BINARYMIME" and got.via == "BDAT"
    assert result.body == "BDAT"


@pytest.mark.parametrize(("extensions", "content", "why"), [
    (["PIPELINING", "8BITMIME"], _TEXT_THEN_BINARY, "NUL octets"),
    (["PIPELINING", "8BITMIME", "CHUNKING"], _TEXT_THEN_BINARY, "NUL octets"),
    (["PIPELINING"], b"From: a@x.example\r\nTo: b@y.example\r\n\r\n" + b"ascii\r\n" * 2000 + "é\r\n".encode(),
     "8bit octets"),
], ids=["DATA", "BDAT", "7bit"])
def test_non_seekable_stream_the_server_cannot_take_delivers_nothing(
        flavor: str, extensions: list[str], content: bytes, why: str) -> None:
    """Found out mid-transfer: a typed error, the connection closed without an
    end of data, so no partial message is delivered."""
    with CoreServer(extensions=extensions) as srv:
        async def scenario(make: Make) -> None:
            async with make(HOST, srv.port, chunk_size=1024, **PLAIN) as client:
                with pytest.raises(SMTPNotSupportedError, match=why):
                    await client.send_message(_Pipe(content))
                assert not client.is_connected

        run_flavor(flavor, scenario)
    assert srv.messages == []


def test_non_seekable_stream_declared_7bit_holds_to_it(flavor: str) -> None:
    """BODY=7BIT given by the caller is kept (not widened to BINARYMIME), and
    8bit octets found mid-transfer stop it like an undeclared 8bit body."""
    content = b"From: a@x.example\r\nTo: b@y.example\r\n\r\n" + b"ascii\r\n" * 2000 + "é\r\n".encode()
    with CoreServer(extensions=["PIPELINING", "8BITMIME", "CHUNKING", "BINARYMIME"]) as srv:
        async def scenario(make: Make) -> None:
            async with make(HOST, srv.port, chunk_size=1024, **PLAIN) as client:
                with pytest.raises(SMTPNotSupportedError, match="8bit octets but went as 7BIT"):
                    await client.send_message(_Pipe(content), mail_params={"BODY": "7BIT"})
                assert not client.is_connected

        run_flavor(flavor, scenario)
    assert srv.messages == []


# ----------------------------------------------------------------- recipients


def test_partial_failure_is_a_result(flavor: str) -> None:
    handler = RecordingHandler(refuse={"bad@y.example"})
    with aiosmtpd_server(handler) as (port, _):
        async def scenario(make: Make) -> Any:
            async with make(HOST, port, **PLAIN) as client:
                return await client.send_message(b"Subject: x\r\n\r\nbody\r\n", "a@x.example",
                                                  ["good@y.example", "bad@y.example"])

        result = run_flavor(flavor, scenario)
    assert result.accepted == ["good@y.example"]
    assert set(result.refused) == {"bad@y.example"}
    assert result.refused["bad@y.example"].code == 550
    assert result.recipients["good@y.example"].code == 250
    assert handler.messages[0].rcpt_tos == ["good@y.example"]


@pytest.mark.parametrize("pipelining", [True, False])
def test_total_refusal_raises_then_connection_is_reused(flavor: str, pipelining: bool) -> None:
    with CoreServer(refuse={"bad@y.example", "worse@y.example"}) as srv:
        async def scenario(make: Make) -> Any:
            async with make(HOST, srv.port, pipelining=pipelining, **PLAIN) as client:
                with pytest.raises(SMTPRecipientsRefused) as info:
                    await client.send_message(b"\r\nx\r\n", "a@x.example", ["bad@y.example", "worse@y.example"])
                ok = await client.send_message(b"\r\ny\r\n", "a@x.example", ["good@y.example"])
                return info.value, ok

        err, ok = run_flavor(flavor, scenario)
    assert set(err.recipients) == {"bad@y.example", "worse@y.example"}
    assert all(s.code == 550 for s in err.recipients.values())
    assert isinstance(err, SMTPClientError)
    assert ok.accepted == ["good@y.example"]
    assert [m.content for m in srv.messages] == [b"\r\ny\r\n"]
    # The session was left in MAIL: an RSET came before the second MAIL.
    kinds = [type(c) for c in srv.commands]
    assert Rset in kinds[kinds.index(Mail) : kinds.index(Mail, kinds.index(Mail) + 1)]


def test_sender_refused(flavor: str) -> None:
    with CoreServer(refuse_senders={"spam@x.example"}) as srv:
        async def scenario(make: Make) -> Any:
            async with make(HOST, srv.port, **PLAIN) as client:
                with pytest.raises(SMTPSenderRefused) as info:
                    await client.send_message(b"\r\nx\r\n", "spam@x.example", ["b@y.example"])
                return info.value

        err = run_flavor(flavor, scenario)
    assert err.code == 553 and err.sender == "spam@x.example"
    assert srv.messages == []


def test_data_refused(flavor: str) -> None:
    handler = RecordingHandler(data_reply="554 5.6.0 content rejected")
    with aiosmtpd_server(handler) as (port, _):
        async def scenario(make: Make) -> Any:
            async with make(HOST, port, **PLAIN) as client:
                with pytest.raises(SMTPDataRefused) as info:
                    await client.send_message(b"Subject: x\r\n\r\nbody\r\n", "a@x.example", ["b@y.example"])
                reply = await client.noop()  # still usable
                return info.value, reply

        err, reply = run_flavor(flavor, scenario)
    assert err.code == 554 and reply.code == 250


def test_many_messages_on_one_connection(flavor: str) -> None:
    with CoreServer() as srv:
        async def scenario(make: Make) -> Any:
            async with make(HOST, srv.port, **PLAIN) as client:
                for i in range(20):
                    await client.send_message(b"Subject: %d\r\n\r\nbody %d\r\n" % (i, i), "a@x.example", ["b@y.example"])
                return await client.quit()

        reply = run_flavor(flavor, scenario)
    assert reply.code == 221
    assert [m.content for m in srv.messages] == [b"Subject: %d\r\n\r\nbody %d\r\n" % (i, i) for i in range(20)]


# ----------------------------------------------------------------- extensions


@pytest.mark.parametrize("pipelining", [True, False])
def test_pipelining_round_trips(flavor: str, pipelining: bool) -> None:
    exts = ["PIPELINING", "8BITMIME"] if pipelining else ["8BITMIME"]
    with CoreServer(extensions=exts) as srv:
        async def scenario(make: Make) -> int:
            async with make(HOST, srv.port, **PLAIN) as client:
                before = client.session.round_trips
                await client.send_message(b"\r\nbody\r\n", "a@x.example", ["b@y.example", "c@y.example", "d@y.example"])
                return int(client.session.round_trips - before)

        trips = run_flavor(flavor, scenario)
    # EHLO, then (pipelined) MAIL+3 RCPT+DATA, then the content: 3 server flushes;
    # without PIPELINING: EHLO, MAIL, 3 x RCPT, DATA, content = 7.
    assert srv.flushes == ([3] if pipelining else [7])
    # The client waited twice for the message (the group, the end of data), or 6 times.
    assert trips == (2 if pipelining else 6)


def test_pipelining_can_be_turned_off(flavor: str) -> None:
    with CoreServer() as srv:
        async def scenario(make: Make) -> None:
            async with make(HOST, srv.port, pipelining=False, **PLAIN) as client:
                await client.send_message(b"\r\nbody\r\n", "a@x.example", ["b@y.example"])

        run_flavor(flavor, scenario)
    assert srv.flushes == [5]


@pytest.mark.parametrize("pipelining", [True, False])
def test_bdat_when_chunking_offered(flavor: str, pipelining: bool) -> None:
    exts = ["CHUNKING", "8BITMIME", "SIZE 10485760"] + (["PIPELINING"] if pipelining else [])
    raw = b"From: a@x.example\r\nTo: b@y.example\r\n\r\n" + b"".join(b"line %d\n" % i for i in range(3000)) + b".\r\nend"
    with CoreServer(extensions=exts) as srv:
        async def scenario(make: Make) -> Any:
            async with make(HOST, srv.port, chunk_size=1000, **PLAIN) as client:
                before = client.session.round_trips
                result = await client.send_message(raw)
                return result, client.session.round_trips - before

        result, trips = run_flavor(flavor, scenario)
    [got] = srv.messages
    assert got.via == "BDAT" and result.body == "BDAT"
    # BDAT content is not dot-stuffed; bare LFs were made CRLF on the way.
    assert got.content == raw.replace(b"\n", b"\r\n").replace(b"\r\r\n", b"\r\n")
    chunks = -(-len(raw) // 1000)  # chunks are cut before CRLF repair
    assert chunks >= 29
    if pipelining:
        # MAIL+RCPT+first chunk in one group, the other chunks without waiting.
        assert trips <= 6
    else:
        # MAIL, RCPT, then one wait per chunk.
        assert trips == 2 + chunks


def test_binarymime_for_nul_octets(flavor: str) -> None:
    raw = b"From: a@x.example\r\nTo: b@y.example\r\nContent-Transfer-Encoding: binary\r\n\r\n\x00\x01\xff\r\nbare\nlf\r"
    with CoreServer(extensions=["PIPELINING", "CHUNKING", "BINARYMIME", "8BITMIME"]) as srv:
        async def scenario(make: Make) -> None:
            async with make(HOST, srv.port, **PLAIN) as client:
                await client.send_message(raw)

        run_flavor(flavor, scenario)
    [got] = srv.messages
    assert got.content == raw  # binary: not a byte changed
    assert got.mail_params["BODY"] == "BINARYMIME"
    with CoreServer(extensions=["PIPELINING", "8BITMIME"]) as srv2:
        async def refused(make: Make) -> None:
            async with make(HOST, srv2.port, **PLAIN) as client:
                with pytest.raises(SMTPNotSupportedError):
                    await client.send_message(raw)

        run_flavor(flavor, refused)
    assert not any(isinstance(c, Mail) for c in srv2.commands)


def test_smtputf8_and_8bitmime(flavor: str) -> None:
    raw = "From: Jörg <jörg@bücher.example>\r\nTo: zoë@bücher.example\r\nSubject: Grüße\r\n\r\nÄrger über Öl\r\n".encode()
    with aiosmtpd_server(enable_SMTPUTF8=True) as (port, handler):
        async def scenario(make: Make) -> None:
            async with make(HOST, port, **PLAIN) as client:
                await client.send_message(raw)

        run_flavor(flavor, scenario)
    [got] = handler.messages
    assert got.content == raw and got.smtp_utf8
    assert got.mail_from == "jörg@bücher.example" and got.rcpt_tos == ["zoë@bücher.example"]
    assert "BODY=8BITMIME" in got.mail_options
    # A server without SMTPUTF8: refused before MAIL is sent.
    with aiosmtpd_server(enable_SMTPUTF8=False) as (port2, handler2):
        async def refused(make: Make) -> None:
            async with make(HOST, port2, **PLAIN) as client:
                with pytest.raises(SMTPNotSupportedError):
                    await client.send_message(raw)
                await client.send_message(b"Subject: x\r\n\r\n\xc3\xa4 8bit body\r\n", "a@x.example", ["b@y.example"])

        run_flavor(flavor, refused)
    [only] = handler2.messages
    assert "BODY=8BITMIME" in only.mail_options and not only.smtp_utf8


def test_size_limit_checked_before_sending(flavor: str) -> None:
    with CoreServer(extensions=["PIPELINING", "SIZE 70000"]) as srv:
        async def scenario(make: Make) -> None:
            async with make(HOST, srv.port, **PLAIN) as client:
                with pytest.raises(SMTPMessageTooLarge):
                    await client.send_message(b"\r\n" + b"z" * 80000 + b"\r\n", "a@x.example", ["b@y.example"])

        run_flavor(flavor, scenario)
    assert not any(isinstance(c, Mail) for c in srv.commands)


def test_lmtp_per_recipient_results(flavor: str) -> None:
    with CoreServer(lmtp=True, lmtp_fail={"full@y.example"}) as srv:
        async def scenario(make: Make) -> Any:
            async with make(HOST, srv.port, lmtp=True, **PLAIN) as client:
                ok = await client.send_message(b"\r\nhello\r\n", "a@x.example", ["b@y.example", "full@y.example"])
                with pytest.raises(SMTPDataRefused) as info:
                    await client.send_message(b"\r\nagain\r\n", "a@x.example", ["full@y.example"])
                return ok, info.value

        ok, err = run_flavor(flavor, scenario)
    assert ok.recipients["b@y.example"].code == 250 and "b@y.example" in ok.recipients["b@y.example"].text
    assert ok.recipients["full@y.example"].code == 452
    assert ok.accepted == ["b@y.example"]
    assert err.recipients["full@y.example"].code == 452
    assert len(srv.messages) == 2


def test_lmtp_with_chunking(flavor: str) -> None:
    with CoreServer(lmtp=True, lmtp_fail={"full@y.example"}, extensions=["PIPELINING", "CHUNKING", "8BITMIME"]) as srv:
        async def scenario(make: Make) -> Any:
            async with make(HOST, srv.port, lmtp=True, chunk_size=7, **PLAIN) as client:
                return await client.send_message(b"\r\nhello there\r\n", "a@x.example",
                                                 ["b@y.example", "full@y.example", "c@y.example"])

        result = run_flavor(flavor, scenario)
    assert [s.code for s in result.recipients.values()] == [250, 452, 250]
    assert srv.messages[0].via == "BDAT" and srv.messages[0].content == b"\r\nhello there\r\n"


# ----------------------------------------------------------------- session


def test_noop_quit_and_socketpair(flavor: str) -> None:
    srv = CoreServer()
    client_sock, server_sock = socket.socketpair()
    client_sock.settimeout(IO_TIMEOUT)
    srv.serve_in_thread(server_sock)

    async def scenario(make: Make) -> Any:
        client = make(sock=client_sock, local_hostname="client.example", **PLAIN)
        await client.connect()
        noop = await client.noop()
        await client.send_message(b"\r\nvia socketpair\r\n", "a@x.example", ["b@y.example"])
        bye = await client.quit()
        return noop, bye, client.is_connected

    noop, bye, connected = run_flavor(flavor, scenario)
    srv.__exit__(None, None, None)
    assert noop.code == 250 and bye.code == 221 and not connected
    assert srv.messages[0].content == b"\r\nvia socketpair\r\n"
    assert srv.commands[0].domain == "client.example"
    assert not srv.errors


def test_ehlo_name_defaults_to_address_literal(flavor: str) -> None:
    with CoreServer() as srv:
        async def scenario(make: Make) -> None:
            async with make(HOST, srv.port, **PLAIN):
                pass

        run_flavor(flavor, scenario)
    assert srv.commands[0].domain == "[127.0.0.1]"


def test_helo_fallback(flavor: str) -> None:
    log = bytearray()

    def script(sock: socket.socket) -> None:
        sock.sendall(b"220 old.example\r\n")
        assert read_line(sock, log).startswith(b"EHLO ")
        sock.sendall(b"502 5.5.1 what?\r\n")
        assert read_line(sock, log).startswith(b"HELO ")
        sock.sendall(b"250 old.example\r\n")
        assert read_line(sock, log).startswith(b"MAIL FROM:<a@x.example>")
        sock.sendall(b"250 ok\r\n")
        read_line(sock, log)
        sock.sendall(b"250 ok\r\n")
        assert read_line(sock, log) == b"DATA\r\n"
        sock.sendall(b"354 go\r\n")
        while read_line(sock, log) != b".\r\n":
            pass
        sock.sendall(b"250 done\r\n")
        assert read_line(sock, log) == b"QUIT\r\n"
        sock.sendall(b"221 bye\r\n")

    with ScriptedServer(script) as srv:
        async def scenario(make: Make) -> Any:
            async with make(HOST, srv.port, **PLAIN) as client:
                return await client.send_message(b"\r\n8bit \xe4 is not declared\r\n", "a@x.example", "b@y.example")

        with pytest.raises(SMTPNotSupportedError):
            run_flavor(flavor, scenario)

    with ScriptedServer(script) as srv:
        async def scenario2(make: Make) -> Any:
            async with make(HOST, srv.port, **PLAIN) as client:
                return await client.send_message(b"\r\nseven bit\r\n", "a@x.example", "b@y.example")

        result = run_flavor(flavor, scenario2)
    assert result.ok and not srv.errors
    assert b"BODY=" not in log and b"SIZE=" not in log


def test_greeting_refused(flavor: str) -> None:
    def script(sock: socket.socket) -> None:
        sock.sendall(b"554 5.3.2 no service for you\r\n")
        read_line(sock)  # QUIT

    with ScriptedServer(script) as srv:
        async def scenario(make: Make) -> None:
            async with make(HOST, srv.port, **PLAIN):
                pass

        with pytest.raises(SMTPConnectError) as info:
            run_flavor(flavor, scenario)
    assert info.value.reply is not None and info.value.reply.code == 554


def test_unreachable_server(flavor: str) -> None:
    port = 1
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: refused

        async def scenario(make: Make) -> None:
            async with make(HOST, port, **PLAIN):
                pass

        with pytest.raises(SMTPConnectError, match="cannot connect"):
            run_flavor(flavor, scenario)


def test_timeout_from_deadline_greeting(flavor: str) -> None:
    def script(sock: socket.socket) -> None:
        time.sleep(1.5)  # says nothing

    with ScriptedServer(script) as srv:
        async def scenario(make: Make) -> None:
            async with make(HOST, srv.port, starttls="never", timeout=0.2):
                pass

        start = time.monotonic()
        with pytest.raises(TimeoutError, match=r"\(waiting for its greeting\)$"):
            run_flavor(flavor, scenario)
        assert time.monotonic() - start < 1.2


def test_closed_before_greeting(flavor: str) -> None:
    """A server that hangs up without a greeting (an implicit-TLS port giving
    up on us, a refusing filter): the error says when it happened."""
    from smtpproto.adapters._client_flow import SMTPServerDisconnected

    def script(sock: socket.socket) -> None:
        pass  # closes at once

    with ScriptedServer(script) as srv:
        async def scenario(make: Make) -> None:
            async with make(HOST, srv.port, **PLAIN):
                pass

        with pytest.raises(SMTPServerDisconnected, match=r"\(before its greeting\)$") as info:
            run_flavor(flavor, scenario)
    assert info.value.reply is None


def test_timeout_waiting_for_mail_reply(flavor: str) -> None:
    def script(sock: socket.socket) -> None:
        sock.sendall(b"220 hi\r\n")
        read_line(sock)
        sock.sendall(b"250 hi\r\n")
        read_line(sock)  # MAIL: never answered
        time.sleep(1.5)

    with ScriptedServer(script) as srv:
        async def scenario(make: Make) -> None:
            client = make(HOST, srv.port, starttls="never", timeout=0.25)
            await client.connect()
            try:
                await client.send_message(b"\r\nx\r\n", "a@x.example", ["b@y.example"])
            finally:
                assert not client.is_connected
                await client.close()

        start = time.monotonic()
        with pytest.raises(TimeoutError):
            run_flavor(flavor, scenario)
        assert time.monotonic() - start < 1.2


def test_timeout_is_per_reply_not_per_read(flavor: str) -> None:
    """A server dripping one byte every 0.1 s cannot stretch a 0.5 s deadline."""
    def script(sock: socket.socket) -> None:
        for b in b"220-" + b"x" * 40 + b"\r\n220 hi\r\n":
            sock.sendall(bytes([b]))
            time.sleep(0.1)

    with ScriptedServer(script) as srv:
        async def scenario(make: Make) -> None:
            async with make(HOST, srv.port, starttls="never", timeout=0.5):
                pass

        start = time.monotonic()
        with pytest.raises(TimeoutError):
            run_flavor(flavor, scenario)
        assert time.monotonic() - start < 2.0


def test_server_closes_mid_session(flavor: str) -> None:
    def script(sock: socket.socket) -> None:
        sock.sendall(b"220 hi\r\n")
        read_line(sock)
        sock.sendall(b"250 hi\r\n")
        read_line(sock)
        sock.sendall(b"250 ok\r\n250 o")  # a half reply, then EOF (F-01)

    from smtpproto.adapters._client_flow import SMTPServerDisconnected

    with ScriptedServer(script) as srv:
        async def scenario(make: Make) -> None:
            async with make(HOST, srv.port, pipelining=False, **PLAIN) as client:
                await client.send_message(b"\r\nx\r\n", "a@x.example", ["b@y.example"])

        with pytest.raises(SMTPServerDisconnected):
            run_flavor(flavor, scenario)


def test_f01_half_reply_then_eof(flavor: str) -> None:
    """F-01 (client): b"499 incomplete response\\" and EOF: a lost connection,
    never a reply."""
    def script(sock: socket.socket) -> None:
        sock.sendall(b"499 incomplete response\\")

    from smtpproto.adapters._client_flow import SMTPServerDisconnected

    with ScriptedServer(script) as srv:
        async def scenario(make: Make) -> None:
            async with make(HOST, srv.port, **PLAIN):
                pass

        with pytest.raises(SMTPServerDisconnected):
            run_flavor(flavor, scenario)


def test_421_during_session(flavor: str) -> None:
    def script(sock: socket.socket) -> None:
        sock.sendall(b"220 hi\r\n")
        read_line(sock)
        sock.sendall(b"250 hi\r\n")
        read_line(sock)
        sock.sendall(b"421 4.3.2 shutting down\r\n")

    from smtpproto.adapters._client_flow import SMTPServerDisconnected

    with ScriptedServer(script) as srv:
        async def scenario(make: Make) -> None:
            async with make(HOST, srv.port, **PLAIN) as client:
                await client.send_message(b"\r\nx\r\n", "a@x.example", ["b@y.example"])

        with pytest.raises(SMTPServerDisconnected) as info:
            run_flavor(flavor, scenario)
    assert info.value.reply is not None and info.value.reply.code == 421


def test_lmtp_over_a_unix_socket(flavor: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "lmtp.sock")
        with CoreServer(lmtp=True, unix_path=path) as srv:
            async def scenario(make: Make) -> Any:
                async with make(unix_socket=path, lmtp=True, **PLAIN) as client:
                    return await client.send_message(b"\r\nlocal delivery\r\n", "a@x.example", ["u1@local", "u2@local"])

            result = run_flavor(flavor, scenario)
    assert [s.code for s in result.recipients.values()] == [250, 250]
    assert srv.messages[0].content == b"\r\nlocal delivery\r\n"
    assert srv.commands[0].domain == "localhost"  # no address literal for a UNIX socket


def test_source_address(flavor: str) -> None:
    with CoreServer() as srv:
        async def scenario(make: Make) -> Any:
            async with make(HOST, srv.port, source_address=("127.0.0.1", 0), **PLAIN) as client:
                return await client.noop()

        assert run_flavor(flavor, scenario).code == 250


def test_reconnect_after_quit_and_send_after_quit_fails(flavor: str) -> None:
    from smtpproto.adapters._client_flow import SMTPServerDisconnected

    with CoreServer() as srv:
        async def scenario(make: Make) -> Any:
            client = make(HOST, srv.port, **PLAIN)
            await client.connect()
            await client.send_message(b"\r\none\r\n", "a@x.example", ["b@y.example"])
            await client.quit()
            with pytest.raises(SMTPServerDisconnected):
                await client.send_message(b"\r\nlost\r\n", "a@x.example", ["b@y.example"])
            await client.connect()  # the same object opens a new session
            await client.send_message(b"\r\ntwo\r\n", "a@x.example", ["b@y.example"])
            return await client.quit()

        bye = run_flavor(flavor, scenario)
    assert bye.code == 221
    assert [m.content for m in srv.messages] == [b"\r\none\r\n", b"\r\ntwo\r\n"]
    assert srv.flushes and len(srv.flushes) == 2


class _Generated(io.RawIOBase):
    """A non-seekable stream of ``total`` octets of mail lines, made on the fly."""

    def __init__(self, total: int) -> None:
        self.left = total
        self.head = b"From: a@x.example\r\nTo: b@y.example\r\nSubject: big\r\n\r\n"

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self.head:
            out, self.head = self.head, b""
            return out
        n = min(self.left, 65536 if n is None or n < 0 else n)
        self.left -= n
        line = b"." + b"m" * 97 + b"\r\n"
        return (line * (n // 100 + 1))[:n]


def _discarding_sink(sizes: list[int]) -> Callable[[socket.socket], None]:
    def script(sock: socket.socket) -> None:
        sock.sendall(b"220 sink\r\n")
        buf = b""
        while True:
            while b"\r\n" not in buf:
                buf += sock.recv(65536)
            line, buf = buf.split(b"\r\n", 1)
            if line.startswith(b"EHLO"):
                sock.sendall(b"250-sink\r\n250 PIPELINING\r\n")
            elif line == b"DATA":
                sock.sendall(b"250 ok\r\n250 ok\r\n354 go\r\n")
                size, tail = 0, buf
                while not tail.endswith(b"\r\n.\r\n"):
                    more = sock.recv(1 << 20)
                    size += len(more)
                    tail = (tail + more)[-5:]
                sizes.append(size)
                buf = b""
                sock.sendall(b"250 done\r\n")
            elif line == b"QUIT":
                sock.sendall(b"221 bye\r\n")
                return

    return script


def test_streaming_memory_stays_bounded(flavor: str) -> None:
    """48 MiB streamed through DATA: the client's peak allocation stays within a
    few chunks (dot-stuffing doubles every line's dot, so the wire carries more)."""
    import tracemalloc

    total = 48 * 1024 * 1024
    sizes: list[int] = []
    with ScriptedServer(_discarding_sink(sizes)) as srv:
        async def scenario(make: Make) -> Any:
            async with make(HOST, srv.port, chunk_size=256 * 1024, **PLAIN) as client:
                tracemalloc.start()
                try:
                    result = await client.send_message(_Generated(total), "a@x.example", ["b@y.example"])
                    peak = tracemalloc.get_traced_memory()[1]
                finally:
                    tracemalloc.stop()
                return result, peak

        result, peak = run_flavor(flavor, scenario)
    assert result.ok and result.size > total
    assert sizes and sizes[0] > total  # every line's leading dot was doubled on the wire
    print(f"{flavor}: peak traced {peak / 2**20:.2f} MiB for {total / 2**20:.0f} MiB")
    assert peak < 8 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB"


def test_dsn_parameters_pass_through(flavor: str) -> None:
    with CoreServer(extensions=["PIPELINING", "8BITMIME", "DSN"]) as srv:
        async def scenario(make: Make) -> None:
            async with make(HOST, srv.port, **PLAIN) as client:
                await client.send_message(b"\r\ndsn\r\n", "a@x.example", ["b@y.example"],
                                          mail_params={"RET": "HDRS", "ENVID": "QQ314159"},
                                          rcpt_params={"NOTIFY": "SUCCESS,FAILURE"})
                with pytest.raises(ValueError):  # C-03: no CR/LF through a parameter value
                    await client.send_message(b"\r\nx\r\n", "a@x.example", ["b@y.example"],
                                              mail_params={"ENVID": "x\r\nRCPT TO:<evil@x.example>"})

        run_flavor(flavor, scenario)
    mail = next(c for c in srv.commands if isinstance(c, Mail))
    rcpt = next(c for c in srv.commands if isinstance(c, Rcpt))
    assert mail.params == {"RET": "HDRS", "ENVID": "QQ314159"}
    assert rcpt.params == {"NOTIFY": "SUCCESS,FAILURE"}
    assert sum(isinstance(c, Mail) for c in srv.commands) == 1


def test_r10_server_flooding_while_we_write(flavor: str) -> None:
    """R-10: a server that answers DATA with 354 and then floods 4 MiB without a
    line end while we send a large message: a protocol error, no hang, and the
    asyncio client stops reading (it has the only user-space buffer)."""
    def script(sock: socket.socket) -> None:
        sock.sendall(b"220 hi\r\n")
        read_line(sock)
        sock.sendall(b"250-hi\r\n250 PIPELINING\r\n")
        for _ in range(3):
            read_line(sock)
        sock.sendall(b"250 ok\r\n250 ok\r\n354 go\r\n")
        sock.settimeout(5)
        try:
            sock.sendall(b"x" * (4 << 20))
        except OSError:
            pass
        time.sleep(0.5)

    from smtpproto.adapters._client_flow import SMTPProtocolViolation, SMTPServerDisconnected

    with ScriptedServer(script) as srv:
        async def scenario(make: Make) -> None:
            async with make(HOST, srv.port, **PLAIN) as client:
                await client.send_message(b"\r\n" + b"y" * 98 + b"\r\n" * 1, "a@x.example", ["b@y.example"])

        with pytest.raises((SMTPProtocolViolation, SMTPServerDisconnected)) as info:
            run_flavor(flavor, scenario)
    if isinstance(info.value, SMTPProtocolViolation):
        assert "too long" in str(info.value) or "R-10" in str(info.value)
