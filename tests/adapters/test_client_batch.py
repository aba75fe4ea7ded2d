"""``send_messages``: many messages on one connection, each message's content
and end of data in one write with the next message's MAIL/RCPT/DATA (RFC 2920
§3.1), one round trip per message.  Per-message outcomes (refusals and bad
items do not stop the batch), a lost connection ends it without taking more
items, and the fallbacks (no PIPELINING, CHUNKING, LMTP, streams) still
deliver.  Every test runs once per facade (blocking, asyncio, trio)."""

from __future__ import annotations

import io
import os
import socket
import sys
from dataclasses import dataclass
from typing import Any, Callable, Generator, Iterator

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from test_client_support import (  # noqa: E402
    FLAVORS,
    IO_TIMEOUT,
    CoreServer,
    ScriptedServer,
    aiosmtpd_server,
    run_flavor,
)

from smtpproto import Bdat, Data, Lhlo, Mail, Rcpt, Rset  # noqa: E402
from smtpproto.adapters._client_flow import (  # noqa: E402
    ClientSession,
    SendResult,
    SMTPDataRefused,
    SMTPMessageTooLarge,
    SMTPNotSupportedError,
    SMTPRecipientsRefused,
    SMTPSenderRefused,
    SMTPServerDisconnected,
    SMTPTimeoutError,
    Write,
)
from smtpproto.message import EnvelopeError, strip_bcc  # noqa: E402

Make = Callable[..., Any]
pytestmark = pytest.mark.parametrize("flavor", FLAVORS)

HOST = "127.0.0.1"
PLAIN = {"starttls": "never", "timeout": IO_TIMEOUT, "connect_timeout": IO_TIMEOUT}
#: How long a scripted server waits for the client's next flight: a client
#: that waits for a reply the script withholds fails the test in this time.
STEP_TIMEOUT = 3.0
EHLO_PIPELINING = b"250-scripted.example\r\n250 PIPELINING\r\n"
ENVELOPE_OK = b"250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go ahead\r\n"


# ----------------------------------------------------------------- helpers


async def send_batch(client: Any, items: Any, **kwargs: Any) -> list[Any]:
    """``send_messages`` on any facade, as a list."""
    return list(await client.send_messages(items, **kwargs))


def stored(raw: bytes) -> bytes:
    """What a server stores for ``raw`` sent with DATA: Bcc removed, content
    ending with CRLF (RFC 5321 §4.1.1.4)."""
    data = strip_bcc(raw)
    return data if data.endswith(b"\r\n") else data + b"\r\n"


def numbered(i: int) -> bytes:
    """Message ``i`` of a long batch: its envelope in its header fields, lines
    that need dot-stuffing, sizes and endings that vary."""
    body = b".dot %d\r\n" % i * (i % 3) + b"x" * (i * 7) + b"\r\n..two\r\n.\r\nend %d" % i
    if i % 2:
        body += b"\r\n"
    bcc = b"Bcc: hidden%d@z.example\r\n" % i if i % 5 == 0 else b""
    return b"From: s%d@x.example\r\nTo: r%d@y.example\r\n%bSubject: n%d\r\n\r\n%b" % (i, i, bcc, i, body)


def recipients_of(i: int) -> list[str]:
    return [f"r{i}@y.example"] + ([f"hidden{i}@z.example"] if i % 5 == 0 else [])


def envelope(sender: str, *recipients: str) -> bytes:
    return (b"MAIL FROM:<%s>\r\n" % sender.encode()
            + b"".join(b"RCPT TO:<%s>\r\n" % r.encode() for r in recipients) + b"DATA\r\n")


@dataclass
class Step:
    """Read the client's bytes until they end with ``until``, then answer
    ``reply``; ``reply=None``: hang up instead; ``reply=b""``: say nothing and
    wait for the client to hang up."""

    until: bytes
    reply: bytes | None


class Dialogue:
    """A :class:`ScriptedServer` script: greets, runs the steps in order and
    records in :attr:`flights` what the client sent for each one (a step is
    answered only once all of it has arrived)."""

    def __init__(self, steps: list[Step]) -> None:
        self.steps = [Step(b"\r\n", EHLO_PIPELINING), *steps]
        self.flights: list[bytes] = []

    def __call__(self, sock: socket.socket) -> None:
        sock.settimeout(STEP_TIMEOUT)
        sock.sendall(b"220 scripted.example ESMTP\r\n")
        for step in self.steps:
            buf = bytearray()
            try:
                while not buf.endswith(step.until):
                    chunk = sock.recv(65536)
                    if not chunk:
                        raise ConnectionError("client closed")
                    buf += chunk
            finally:
                self.flights.append(bytes(buf))
            if step.reply is None:
                return
            if not step.reply:
                sock.recv(1)  # until the client gives up and closes
                return
            sock.sendall(step.reply)


def spy_writes(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every write ``send_messages`` asks its facade for, in order."""
    writes: list[bytes] = []
    original = ClientSession.send_messages

    def tapped(flow: Generator[Any, Any, Any]) -> Generator[Any, Any, Any]:
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                action = flow.send(value) if error is None else flow.throw(error)
            except StopIteration as stop:
                return stop.value
            if isinstance(action, Write):
                writes.append(action.data)
            try:
                value, error = (yield action), None
            except GeneratorExit:
                flow.close()
                raise
            except BaseException as exc:
                value, error = None, exc

    def send_messages(self: ClientSession, items: Any, **kwargs: Any) -> Any:
        return tapped(original(self, items, **kwargs))

    monkeypatch.setattr(ClientSession, "send_messages", send_messages)
    return writes


def taking(items: list[Any], taken: list[int]) -> Iterator[Any]:
    """Yields ``items``, noting in ``taken`` the index of each one taken."""
    for i, item in enumerate(items):
        taken.append(i)
        yield item


# ----------------------------------------------------------------- the wire

ONE = b"From: a@x.example\r\nTo: b@y.example\r\nSubject: one\r\n\r\n.leading dot\r\nplain\r\n"
ONE_WIRE = b"From: a@x.example\r\nTo: b@y.example\r\nSubject: one\r\n\r\n..leading dot\r\nplain\r\n.\r\n"
TWO = b"Subject: two\r\n\r\n..two dots\r\n.\r\nno newline at the end"
TWO_WIRE = b"Subject: two\r\n\r\n...two dots\r\n..\r\nno newline at the end\r\n.\r\n"
THREE = b"From: f@x.example\r\nTo: g@y.example\r\nBcc: hidden@z.example\r\n\r\nthree\r\n"
THREE_WIRE = b"From: f@x.example\r\nTo: g@y.example\r\n\r\nthree\r\n.\r\n"


def test_each_end_of_data_goes_with_the_next_envelope(flavor: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """3 messages: 4 writes, byte-exact and dot-stuffed (envelope 1; content 1 +
    envelope 2; content 2 + envelope 3; content 3), each final reply sent only
    once the next envelope arrived, 4 round trips, replies paired in order."""
    flights = [
        envelope("a@x.example", "b@y.example"),
        ONE_WIRE + envelope("c@x.example", "d@y.example", "e@y.example"),
        TWO_WIRE + envelope("f@x.example", "g@y.example", "hidden@z.example"),
        THREE_WIRE,
    ]
    # Message 1's final reply is sent only once message 2's DATA has arrived:
    # a client that waited for it before sending MAIL 2 would stall here.
    dialogue = Dialogue([
        Step(b"DATA\r\n", ENVELOPE_OK),
        Step(b"DATA\r\n", b"250 2.0.0 queued as 1\r\n250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n"),
        Step(b"DATA\r\n", b"250 2.0.0 queued as 2\r\n250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n"),
        Step(b"\r\n.\r\n", b"250 2.0.0 queued as 3\r\n"),
        Step(b"QUIT\r\n", b"221 bye\r\n"),
    ])
    writes = spy_writes(monkeypatch)
    with ScriptedServer(dialogue) as srv:
        async def scenario(make: Make) -> Any:
            async with make(HOST, srv.port, **PLAIN) as client:
                before = client.session.round_trips
                outcomes = await send_batch(client, [ONE, (TWO, "c@x.example", ["d@y.example", "e@y.example"]), THREE])
                return outcomes, client.session.round_trips - before

        outcomes, trips = run_flavor(flavor, scenario)
    assert not srv.errors
    assert dialogue.flights[0].startswith(b"EHLO ")
    assert dialogue.flights[1:] == [*flights, b"QUIT\r\n"]
    assert writes == flights
    assert trips == 4
    assert [type(o) for o in outcomes] == [SendResult] * 3
    one, two, three = outcomes
    assert [o.reply.lines for o in outcomes] == [("queued as 1",), ("queued as 2",), ("queued as 3",)]
    assert all(o.ok and o.body == "DATA" and o.reply.code == 250 for o in outcomes)
    assert (one.sender, one.accepted, one.size) == ("a@x.example", ["b@y.example"], len(ONE))
    assert (two.sender, two.accepted, two.size) == ("c@x.example", ["d@y.example", "e@y.example"], len(TWO))
    assert (three.sender, three.accepted, three.size) == (
        "f@x.example", ["g@y.example", "hidden@z.example"], len(strip_bcc(THREE)))
    assert one.mail_params == {} and two.recipients["e@y.example"].code == 250


@pytest.mark.parametrize("server", ["core", "aiosmtpd"])
def test_fifty_messages_one_write_each(flavor: str, server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """50 messages: all stored byte-exact with their envelopes, all SendResult
    ok; our server (PIPELINING): one write and one round trip per message (+1);
    aiosmtpd (no PIPELINING): one by one, a wait per command."""
    count = 50
    messages = [numbered(i) for i in range(count)]
    writes = spy_writes(monkeypatch)

    def send_all(port: int) -> Any:
        async def scenario(make: Make) -> Any:
            async with make(HOST, port, **PLAIN) as client:
                before = client.session.round_trips
                outcomes = await send_batch(client, messages)
                trips = client.session.round_trips - before
                assert client.is_connected
                return outcomes, trips

        return run_flavor(flavor, scenario)

    if server == "core":
        with CoreServer() as srv:
            outcomes, trips = send_all(srv.port)
        assert not srv.errors
        got = [(m.sender, m.recipients, m.content) for m in srv.messages]
        assert sum(isinstance(c, Mail) for c in srv.commands) == count
    else:
        with aiosmtpd_server() as (port, handler):
            outcomes, trips = send_all(port)
        got = [(m.mail_from, m.rcpt_tos, m.content) for m in handler.messages]
    assert got == [(f"s{i}@x.example", recipients_of(i), stored(messages[i])) for i in range(count)]
    assert [type(o) for o in outcomes] == [SendResult] * count
    assert all(o.ok and o.body == "DATA" for o in outcomes)
    assert [o.accepted for o in outcomes] == [recipients_of(i) for i in range(count)]
    assert [o.size for o in outcomes] == [len(strip_bcc(m)) for m in messages]
    assert b"".join(writes).count(b"MAIL FROM:") == count
    if server == "core":
        assert len(writes) == count + 1
        assert trips <= count + 2
    else:
        # aiosmtpd does not offer PIPELINING: MAIL, each RCPT, DATA, content.
        one_by_one = sum(3 + len(recipients_of(i)) for i in range(count))
        assert len(writes) == one_by_one and trips == one_by_one


# ----------------------------------------------------------------- refusals


def short(i: int) -> bytes:
    return b"Subject: m%d\r\n\r\n.body %d\r\n" % (i, i)


def short_wire(i: int) -> bytes:
    return b"Subject: m%d\r\n\r\n..body %d\r\n.\r\n" % (i, i)


def test_refusals_are_outcomes_and_the_batch_goes_on(flavor: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """MAIL refused, every RCPT refused (then RSET), final 554, some RCPTs
    refused, then ok: exact outcome per message, every message after a refusal
    still sent, byte-exact."""
    items = [
        (short(1), "a@x.example", ["b@y.example"]),
        (short(2), "spam@x.example", ["b@y.example"]),
        (short(3), "a@x.example", ["nobody@y.example"]),
        (short(4), "a@x.example", ["b@y.example"]),
        (short(5), "a@x.example", ["b@y.example", "gone@y.example"]),
        (short(6), "a@x.example", ["b@y.example"]),
    ]
    dialogue = Dialogue([
        Step(b"DATA\r\n", ENVELOPE_OK),
        # 1 queued; 2: MAIL refused (RCPT and DATA then out of sequence).
        Step(b"DATA\r\n", b"250 2.0.0 queued 1\r\n550 5.7.1 sender refused\r\n"
                          b"503 5.5.1 need MAIL\r\n503 5.5.1 need MAIL\r\n"),
        # 3: its only recipient refused, DATA refused: the transaction is open.
        Step(b"DATA\r\n", b"250 2.1.0 ok\r\n550 5.1.1 no such user\r\n554 5.5.1 no valid recipients\r\n"),
        Step(b"RSET\r\n", b"250 2.0.0 flushed\r\n"),
        Step(b"DATA\r\n", ENVELOPE_OK),
        # 4 refused after its content; 5: one of two recipients refused.
        Step(b"DATA\r\n", b"554 5.6.0 content rejected\r\n250 2.1.0 ok\r\n250 2.1.5 ok\r\n"
                          b"550 5.1.1 gone\r\n354 go ahead\r\n"),
        Step(b"\r\n.\r\n", b"250 2.0.0 queued 5\r\n"),
        Step(b"DATA\r\n", ENVELOPE_OK),
        Step(b"\r\n.\r\n", b"250 2.0.0 queued 6\r\n"),
        Step(b"QUIT\r\n", b"221 bye\r\n"),
    ])
    writes = spy_writes(monkeypatch)
    with ScriptedServer(dialogue) as srv:
        async def scenario(make: Make) -> Any:
            async with make(HOST, srv.port, **PLAIN) as client:
                outcomes = await send_batch(client, items)
                assert client.is_connected
                return outcomes

        outcomes = run_flavor(flavor, scenario)
    assert not srv.errors
    assert dialogue.flights[1:] == [
        envelope("a@x.example", "b@y.example"),
        short_wire(1) + envelope("spam@x.example", "b@y.example"),
        envelope("a@x.example", "nobody@y.example"),
        b"RSET\r\n",
        envelope("a@x.example", "b@y.example"),
        short_wire(4) + envelope("a@x.example", "b@y.example", "gone@y.example"),
        short_wire(5),
        envelope("a@x.example", "b@y.example"),
        short_wire(6),
        b"QUIT\r\n",
    ]
    assert writes == dialogue.flights[1:-1]
    assert [type(o) for o in outcomes] == [SendResult, SMTPSenderRefused, SMTPRecipientsRefused, SMTPDataRefused,
                                           SendResult, SendResult]
    first, sender, rcpts, data, partial, last = outcomes
    assert first.ok and first.reply.lines == ("queued 1",)
    assert sender.code == 550 and sender.sender == "spam@x.example" and sender.reply.enhanced_status == "5.7.1"
    assert {a: s.code for a, s in rcpts.recipients.items()} == {"nobody@y.example": 550}
    assert data.code == 554 and data.reply.lines == ("content rejected",)
    assert {a: s.code for a, s in data.recipients.items()} == {"b@y.example": 554}
    assert not partial.ok and partial.accepted == ["b@y.example"] and partial.reply.lines == ("queued 5",)
    assert {a: (s.code, s.text) for a, s in partial.refused.items()} == {"gone@y.example": (550, "gone")}
    assert last.ok and last.reply.lines == ("queued 6",)


def test_bad_items_are_outcomes_and_nothing_is_sent_for_them(flavor: str, tmp_path: Any) -> None:
    """An unusable item (no envelope, no recipients, not a message, 8bit without
    8BITMIME, over SIZE, a bad tuple, an unreadable file, a bad last item) is
    its own outcome; the good ones around it go out grouped: 2 transactions,
    3 round trips."""
    good = [b"From: a@x.example\r\nTo: b@y.example\r\n\r\ngood %d\r\n" % i for i in (1, 2)]
    with open(tmp_path / "write-only.eml", "wb") as write_only:
        items: list[Any] = [
            good[0],
            b"no headers at all",
            b"From: a@x.example\r\n\r\nno To field\r\n",
            42,
            (b"\r\nexplicit but empty\r\n", "a@x.example", []),
            b"From: a@x.example\r\nTo: b@y.example\r\n\r\n8bit \xe4\r\n",
            b"From: a@x.example\r\nTo: b@y.example\r\n\r\n" + b"y" * 2000 + b"\r\n",
            (good[1],),
            write_only,
            good[1],
            None,
        ]
        with CoreServer(extensions=["PIPELINING", "SIZE 1000"]) as srv:
            async def scenario(make: Make) -> Any:
                async with make(HOST, srv.port, **PLAIN) as client:
                    before = client.session.round_trips
                    outcomes = await send_batch(client, items)
                    return outcomes, client.session.round_trips - before, client.is_connected

            outcomes, trips, connected = run_flavor(flavor, scenario)
    assert not srv.errors
    assert [type(o) for o in outcomes] == [
        SendResult, EnvelopeError, ValueError, TypeError, ValueError, SMTPNotSupportedError, SMTPMessageTooLarge,
        ValueError, io.UnsupportedOperation, SendResult, TypeError]
    assert "no recipients" in str(outcomes[2]) and "no recipients" in str(outcomes[4])
    assert "int" in str(outcomes[3]) and "NoneType" in str(outcomes[10])
    assert "8BITMIME" in str(outcomes[5])
    assert outcomes[0].ok and outcomes[9].ok and connected
    assert [m.content for m in srv.messages] == good
    assert sum(isinstance(c, Mail) for c in srv.commands) == 2
    assert trips == 3


def test_empty_and_single_batches(flavor: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """No items: nothing written, []; one item: its envelope, then its content."""
    writes = spy_writes(monkeypatch)
    with CoreServer(extensions=["PIPELINING"]) as srv:
        async def scenario(make: Make) -> Any:
            async with make(HOST, srv.port, **PLAIN) as client:
                empty = await send_batch(client, iter(()))
                written = len(writes)
                single = await send_batch(client, [(short(1), "a@x.example", ["b@y.example"])])
                return empty, written, single, client.is_connected

        empty, written, single, connected = run_flavor(flavor, scenario)
    assert empty == [] and written == 0 and connected
    assert [type(o) for o in single] == [SendResult]
    assert writes == [envelope("a@x.example", "b@y.example"), short_wire(1)]
    assert [m.content for m in srv.messages] == [short(1)]


# ----------------------------------------------------------------- a lost connection

TEN = [(short(i), "a@x.example", ["b@y.example"]) for i in range(1, 11)]


def lost_after_message_2(last: Step) -> Dialogue:
    """Message 1 queued; ``last`` is what the server does once it has message
    2's content and message 3's envelope."""
    return Dialogue([
        Step(b"DATA\r\n", ENVELOPE_OK),
        Step(b"DATA\r\n", b"250 2.0.0 queued 1\r\n" + ENVELOPE_OK),
        last,
    ])


@pytest.mark.parametrize("how", ["close", "421", "queued-then-close"])
def test_lost_connection_ends_the_batch_and_the_iterator_resumes(flavor: str, how: str) -> None:
    """The server hangs up (or says 421) with message 2's final reply owed:
    messages 2 and 3 get SMTPServerDisconnected (2 keeps its 250 when it came
    first), no 4th item is taken, the call returns, the client is closed."""
    last = {"close": Step(b"DATA\r\n", None),
            "421": Step(b"DATA\r\n", b"421 4.3.2 shutting down\r\n"),
            "queued-then-close": Step(b"DATA\r\n", b"250 2.0.0 queued 2\r\n")}[how]
    dialogue = lost_after_message_2(last)
    taken: list[int] = []
    it = taking(TEN, taken)
    with ScriptedServer(dialogue) as srv:
        async def scenario(make: Make) -> Any:
            async with make(HOST, srv.port, **PLAIN) as client:
                outcomes = await send_batch(client, it)
                return outcomes, client.is_connected

        outcomes, connected = run_flavor(flavor, scenario)
    assert not srv.errors
    assert dialogue.flights[1:] == [
        envelope("a@x.example", "b@y.example"),
        short_wire(1) + envelope("a@x.example", "b@y.example"),
        short_wire(2) + envelope("a@x.example", "b@y.example"),
    ]
    assert len(outcomes) == 3 and taken == [0, 1, 2]
    assert next(it) is TEN[3]
    assert not connected
    assert isinstance(outcomes[0], SendResult) and outcomes[0].reply.lines == ("queued 1",)
    if how == "queued-then-close":
        assert isinstance(outcomes[1], SendResult) and outcomes[1].reply.lines == ("queued 2",)
    else:
        assert isinstance(outcomes[1], SMTPServerDisconnected)
    assert isinstance(outcomes[2], SMTPServerDisconnected)
    if how == "421":
        assert all(o.reply is not None and o.reply.code == 421 for o in outcomes[1:])


def test_timeout_ends_the_batch(flavor: str) -> None:
    """No final reply within the timeout: messages 2 and 3 get SMTPTimeoutError,
    no further item is taken, the client is closed, the call returns."""
    dialogue = lost_after_message_2(Step(b"DATA\r\n", b""))
    taken: list[int] = []
    it = taking(TEN, taken)
    with ScriptedServer(dialogue) as srv:
        async def scenario(make: Make) -> Any:
            client = make(HOST, srv.port, starttls="never", timeout=0.3, connect_timeout=IO_TIMEOUT)
            await client.connect()
            try:
                return await send_batch(client, it), client.is_connected
            finally:
                await client.close()

        outcomes, connected = run_flavor(flavor, scenario)
    assert not srv.errors
    assert [type(o) for o in outcomes] == [SendResult, SMTPTimeoutError, SMTPTimeoutError]
    assert taken == [0, 1, 2] and next(it) is TEN[3]
    assert not connected
    assert len(dialogue.flights) == 4  # EHLO and the three groups: nothing after


# ----------------------------------------------------------------- fallbacks

FIVE = [numbered(i) for i in range(1, 6)]


def send_five(flavor: str, port: int, **options: Any) -> tuple[list[Any], int]:
    async def scenario(make: Make) -> Any:
        async with make(HOST, port, **{**PLAIN, **options}) as client:
            before = client.session.round_trips
            outcomes = await send_batch(client, FIVE)
            return outcomes, client.session.round_trips - before

    return run_flavor(flavor, scenario)  # type: ignore[no-any-return]


@pytest.mark.parametrize("offered", [True, False])
def test_without_pipelining_one_by_one(flavor: str, offered: bool) -> None:
    """PIPELINING not offered, or turned off: every message delivered, one
    command per wait (MAIL, each RCPT, DATA, content)."""
    exts = ["8BITMIME", "PIPELINING"] if offered else ["8BITMIME"]
    with CoreServer(extensions=exts) as srv:
        outcomes, trips = send_five(flavor, srv.port, pipelining=not offered)
    assert not srv.errors
    assert [m.content for m in srv.messages] == [stored(m) for m in FIVE]
    assert [type(o) for o in outcomes] == [SendResult] * 5 and all(o.ok for o in outcomes)
    one_by_one = sum(3 + len(recipients_of(i)) for i in range(1, 6))
    assert one_by_one == 21 and trips == one_by_one
    assert srv.flushes == [1 + one_by_one]


def test_with_chunking_bdat_one_by_one(flavor: str) -> None:
    """CHUNKING offered: every message goes with BDAT, byte-exact (no stuffing,
    no CRLF added at the end)."""
    with CoreServer(extensions=["PIPELINING", "CHUNKING", "8BITMIME"]) as srv:
        outcomes, _ = send_five(flavor, srv.port)
    assert not srv.errors
    assert [(m.via, m.content) for m in srv.messages] == [("BDAT", strip_bcc(m)) for m in FIVE]
    assert not any(isinstance(c, Data) for c in srv.commands)
    assert [type(o) for o in outcomes] == [SendResult] * 5
    assert all(o.ok and o.body == "BDAT" for o in outcomes)


def test_chunking_refusal_then_rset_then_the_rest(flavor: str) -> None:
    """With BDAT a refused transaction leaves the session needing RSET: the
    next message is preceded by RSET and delivered."""
    items = [(short(1), "a@x.example", ["b@y.example"]), (short(2), "a@x.example", ["bad@y.example"]),
             (short(3), "a@x.example", ["b@y.example"])]
    with CoreServer(extensions=["PIPELINING", "CHUNKING", "8BITMIME"], refuse={"bad@y.example"}) as srv:
        async def scenario(make: Make) -> Any:
            async with make(HOST, srv.port, **PLAIN) as client:
                return await send_batch(client, items)

        outcomes = run_flavor(flavor, scenario)
    assert not srv.errors
    assert [type(o) for o in outcomes] == [SendResult, SMTPRecipientsRefused, SendResult]
    assert [m.content for m in srv.messages] == [short(1), short(3)]
    kinds = [type(c) for c in srv.commands if isinstance(c, (Mail, Rcpt, Bdat, Rset))]
    # (The second BDAT, pipelined behind the refused RCPT, is refused by the
    # server's core: no Bdat event.)
    assert kinds == [Mail, Rcpt, Bdat, Mail, Rcpt, Rset, Mail, Rcpt, Bdat]


def test_lmtp_one_by_one_with_per_recipient_results(flavor: str) -> None:
    """LMTP: one final reply per recipient; a recipient failing after the data
    is a partial result, the batch goes on."""
    items = [(short(1), "a@x.example", ["u1@local", "full@local"]), (short(2), "a@x.example", ["u2@local"])]
    with CoreServer(lmtp=True, lmtp_fail={"full@local"}) as srv:
        async def scenario(make: Make) -> Any:
            async with make(HOST, srv.port, lmtp=True, **PLAIN) as client:
                return await send_batch(client, items)

        outcomes = run_flavor(flavor, scenario)
    assert not srv.errors
    assert isinstance(srv.commands[0], Lhlo)
    assert [type(o) for o in outcomes] == [SendResult, SendResult]
    assert {a: s.code for a, s in outcomes[0].recipients.items()} == {"u1@local": 250, "full@local": 452}
    assert outcomes[1].ok and outcomes[1].accepted == ["u2@local"]
    assert [m.content for m in srv.messages] == [short(1), short(2)]


def test_transcript_one_by_one(flavor: str) -> None:
    """With a transcript every command is logged: messages go one by one
    (never grouped), all delivered."""
    lines: list[tuple[str, str]] = []
    with CoreServer() as srv:
        outcomes, trips = send_five(flavor, srv.port, transcript=lambda d, line: lines.append((d, line)))
    assert [m.content for m in srv.messages] == [stored(m) for m in FIVE]
    assert all(isinstance(o, SendResult) and o.ok for o in outcomes)
    assert trips == 2 * 5
    assert sum(line == "." for d, line in lines if d == "C") == 5


# ----------------------------------------------------------------- streams and state


def test_stream_and_large_message_in_the_middle(flavor: str, tmp_path: Any) -> None:
    """A file object and a message larger than chunk_size amid bytes messages:
    the grouped ones around them are settled first, all stored byte-exact, in
    order."""
    big = b"From: a@x.example\r\nTo: b@y.example\r\n\r\n" + b"".join(
        b"%05d line\r\n" % i + (b".dot\r\n" if i % 10 == 0 else b"") for i in range(600))
    path = tmp_path / "streamed.eml"
    path.write_bytes(big.replace(b"line", b"file"))
    with CoreServer() as srv:
        async def scenario(make: Make) -> Any:
            async with make(HOST, srv.port, chunk_size=4096, **PLAIN) as client:
                with open(path, "rb") as f:
                    items = [numbered(1), numbered(2), f, numbered(3), io.BytesIO(numbered(4)), big, numbered(5)]
                    return await send_batch(client, items)

        outcomes = run_flavor(flavor, scenario)
    assert not srv.errors
    expected = [numbered(1), numbered(2), path.read_bytes(), numbered(3), numbered(4), big, numbered(5)]
    assert [m.content for m in srv.messages] == [stored(m) for m in expected]
    assert [type(o) for o in outcomes] == [SendResult] * 7 and all(o.ok for o in outcomes)
    assert [o.size for o in outcomes] == [len(strip_bcc(m)) for m in expected]


def test_session_left_mid_transaction_is_reset_first(flavor: str) -> None:
    """A send_message whose recipients were all refused leaves the transaction
    open: the batch starts with RSET and delivers."""
    with CoreServer(refuse={"bad@y.example"}) as srv:
        async def scenario(make: Make) -> Any:
            async with make(HOST, srv.port, **PLAIN) as client:
                with pytest.raises(SMTPRecipientsRefused):
                    await client.send_message(short(0), "a@x.example", ["bad@y.example"])
                return await send_batch(client, [numbered(1), numbered(2)])

        outcomes = run_flavor(flavor, scenario)
    assert not srv.errors
    assert [type(o) for o in outcomes] == [SendResult, SendResult]
    assert [m.content for m in srv.messages] == [stored(numbered(1)), stored(numbered(2))]
    kinds = [type(c) for c in srv.commands if isinstance(c, (Mail, Rset))]
    assert kinds == [Mail, Rset, Mail, Mail]


def test_mail_and_rcpt_params_apply_to_every_message(flavor: str) -> None:
    """mail_params and rcpt_params go on every MAIL and RCPT of the batch."""
    with CoreServer(extensions=["PIPELINING", "8BITMIME", "DSN"]) as srv:
        async def scenario(make: Make) -> Any:
            async with make(HOST, srv.port, **PLAIN) as client:
                return await send_batch(client, [numbered(1), numbered(2), numbered(3)],
                                        mail_params={"RET": "HDRS"}, rcpt_params={"NOTIFY": "NEVER"})

        outcomes = run_flavor(flavor, scenario)
    assert all(isinstance(o, SendResult) and o.ok for o in outcomes)
    assert [c.params for c in srv.commands if isinstance(c, Mail)] == [{"RET": "HDRS"}] * 3
    assert [c.params for c in srv.commands if isinstance(c, Rcpt)] == [{"NOTIFY": "NEVER"}] * 3
    assert all(o.mail_params == {"RET": "HDRS"} for o in outcomes)


@pytest.mark.parametrize("error", [RuntimeError, ValueError])
def test_an_iterable_that_raises_leaves_no_half_sent_session(flavor: str, error: type[Exception]) -> None:
    """The iterable raises while message 2's content is held back (committed in
    the core, not yet written): the exception propagates, and the client is
    either closed or still in step with the server (a NOOP gets its 250);
    never "connected" with the server waiting inside message 2's DATA."""
    def failing() -> Iterator[Any]:
        yield numbered(1)
        yield numbered(2)
        raise error("the message source failed")

    with CoreServer() as srv:
        async def scenario(make: Make) -> Any:
            client = make(HOST, srv.port, starttls="never", timeout=0.5, connect_timeout=IO_TIMEOUT)
            await client.connect()
            try:
                with pytest.raises(error, match="the message source failed"):
                    await send_batch(client, failing())
                if not client.is_connected:
                    return None
                return (await client.noop()).code
            finally:
                await client.close()

        noop = run_flavor(flavor, scenario)
    assert noop in (None, 250)
    assert not srv.errors
    assert [m.content for m in srv.messages][:1] == [stored(numbered(1))]
