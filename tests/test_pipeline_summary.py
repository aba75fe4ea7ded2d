"""The client's summary of its pending commands (``Connection._ahead`` and the
counts next to it): each pipelined command is checked against the state the
pending ones lead to without walking the queue again, so pipelining n commands
costs O(n), not O(n^2).  The summary must always say what a walk of the queue
says; these tests hold it to that after every step of random sessions."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from smtpproto import (
    Bdat,
    Config,
    Connection,
    Data,
    Ehlo,
    EndOfMessage,
    LocalProtocolError,
    Mail,
    MessageData,
    Noop,
    Rcpt,
    RemoteProtocolError,
    Reply,
    Role,
    Rset,
    State,
)

EHLO_REPLY = (b"250-mx.example\r\n250-PIPELINING\r\n250-CHUNKING\r\n250-SMTPUTF8\r\n"
              b"250-8BITMIME\r\n250 BINARYMIME\r\n")


def client(lmtp: bool = False, raw: bool = False) -> Connection:
    conn = Connection(Role.CLIENT, config=Config(max_recipients=100_000, lmtp=lmtp), allow_raw_unchecked=raw)
    conn.receive_data(b"220 mx.example ESMTP\r\n")
    assert isinstance(conn.next_event(), Reply)
    conn.send(Ehlo(domain="c.example") if not lmtp else __import__("smtpproto").Lhlo(domain="c.example"))
    conn.receive_data(EHLO_REPLY)
    assert isinstance(conn.next_event(), Reply)
    return conn


def summary(conn: Connection) -> tuple[object, ...]:
    return conn._ahead, conn._enders, conn._mails, conn._last_mail


def walked(conn: Connection) -> tuple[object, ...]:
    kept = summary(conn), conn._ahead_ok
    conn._recount()
    fresh = summary(conn)
    (conn._ahead, conn._enders, conn._mails, conn._last_mail), conn._ahead_ok = kept
    return fresh


_sends = st.sampled_from([
    ("mail", Mail(reverse_path="a@b.example")),
    ("mail8", Mail(reverse_path="a@b.example", params={"SMTPUTF8": None, "BODY": "8BITMIME"})),
    ("mailbin", Mail(reverse_path="a@b.example", params={"BODY": "BINARYMIME"})),
    ("rcpt", Rcpt(forward_path="x@y.example")),
    ("rcpt8", Rcpt(forward_path="ü@y.example")),
    ("data", Data()),
    ("rset", Rset()),
    ("noop", Noop()),
    ("bdat", Bdat(size=3, last=False)),
    ("bdatlast", Bdat(size=3, last=True)),
    ("content", MessageData(data=b"abc")),
    ("eom", EndOfMessage()),
    ("raw", None),
])
_codes = st.sampled_from([250, 251, 354, 421, 450, 452, 503, 550, 554])
_steps = st.lists(st.one_of(st.tuples(st.just("send"), _sends), st.tuples(st.just("reply"), _codes)), max_size=40)


@settings(max_examples=500, deadline=None)
@given(_steps, st.booleans())
def test_the_summary_is_what_a_walk_of_the_queue_gives(steps: list[tuple[str, object]], lmtp: bool) -> None:
    conn = client(lmtp=lmtp, raw=True)
    for what, arg in steps:
        try:
            if what == "send":
                name, event = arg  # type: ignore[misc]
                if name == "raw":
                    conn.send_raw_unchecked(b"NOOP\r\n", expect_replies=1)
                else:
                    conn.send(event)
            else:
                if not conn._pending:
                    continue
                conn.receive_data(b"%d ok\r\n" % arg)  # type: ignore[str-format]
                while isinstance(conn.next_event(), Reply):
                    pass
        except (LocalProtocolError, RemoteProtocolError):
            pass
        if conn._ahead_ok and conn._pending and conn.state not in (State.ERROR, State.CLOSED):
            # (In ERROR and CLOSED nothing more is sent: the summary is not read.)
            assert summary(conn) == walked(conn), (what, arg)


def test_a_rcpt_follows_the_pending_mail_of_its_own_transaction() -> None:
    """BDAT LAST lets a second transaction be pipelined behind the first: its
    RCPT is checked against its own MAIL, not the first MAIL still pending, nor
    the transaction before it whose MAIL was already answered."""
    conn = client()
    conn.send(Mail(reverse_path="a@b.example", params={"SMTPUTF8": None}))
    conn.receive_data(b"250 ok\r\n")
    assert isinstance(conn.next_event(), Reply)  # the applied transaction is SMTPUTF8
    conn.send(Rcpt(forward_path="ü@y.example"))
    conn.send(Bdat(size=0, last=True))
    conn.send(EndOfMessage())
    conn.send(Mail(reverse_path="a@b.example"))  # pending, without SMTPUTF8
    try:
        conn.send(Rcpt(forward_path="ü@y.example"))
    except LocalProtocolError as exc:
        assert "SMTPUTF8" in str(exc)
    else:
        raise AssertionError("a non-ASCII RCPT went out in a transaction without SMTPUTF8")

    conn = client()
    conn.send(Mail(reverse_path="a@b.example"))  # pending, ASCII only
    conn.send(Rcpt(forward_path="x@y.example"))
    conn.send(Bdat(size=0, last=True))
    conn.send(EndOfMessage())
    conn.send(Mail(reverse_path="a@b.example", params={"SMTPUTF8": None}))
    assert conn.send(Rcpt(forward_path="ü@y.example")) == "RCPT TO:<ü@y.example>\r\n".encode()


def test_pipelining_many_commands_is_linear() -> None:
    calls = 0
    conn = client()
    original = conn._recount

    def counting() -> None:
        nonlocal calls
        calls += 1
        original()

    conn._recount = counting  # type: ignore[method-assign]
    conn.send(Mail(reverse_path="a@b.example"))
    rcpt = Rcpt(forward_path="x@y.example")
    for _ in range(20_000):
        conn.send(rcpt)
    assert calls == 0  # kept up as they were queued, never walked
    conn.receive_data(b"250 ok\r\n" * 20_001)
    for _ in range(20_001):
        assert isinstance(conn.next_event(), Reply)
    assert conn.send(Data()) == b"DATA\r\n" and calls == 0


def test_an_answered_group_ender_leaves_the_group_open_behind_it() -> None:
    """A raw send may sit behind DATA; once the 354 came, DATA no longer ends
    the group, so a MAIL pipelined behind the end of data goes out."""
    conn = client(raw=True)
    for event in (Mail(reverse_path="a@b.example"), Rcpt(forward_path="x@y.example")):
        conn.send(event)
        conn.receive_data(b"250 ok\r\n")
        assert isinstance(conn.next_event(), Reply)
    conn.send(Data())
    conn.send_raw_unchecked(b"NOOP\r\n", expect_replies=1)
    conn.receive_data(b"354 go\r\n")
    assert isinstance(conn.next_event(), Reply)
    assert summary(conn) == walked(conn)
    conn.send(MessageData(data=b"Subject: x\r\n\r\nhi\r\n"))
    conn.send(EndOfMessage())
    assert conn.send(Mail(reverse_path="a@b.example")) == b"MAIL FROM:<a@b.example>\r\n"
