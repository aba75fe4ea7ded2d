"""The client's fast path for transaction replies (``Connection._client_got_reply``
applies MAIL, RCPT and DATA replies inline instead of through ``_apply``) and
the replies it keeps per connection.  The inline code must do to the session
exactly what ``_apply`` does; these tests compare the two on every reply class."""

from __future__ import annotations

import pytest

from smtpproto import (
    Auth,
    AuthResponse,
    Config,
    Connection,
    Data,
    Ehlo,
    EndOfMessage,
    Mail,
    MessageData,
    Rcpt,
    RemoteProtocolError,
    Reply,
    Role,
)

EHLO_REPLY = (b"250-mx.example\r\n250-PIPELINING\r\n250-SMTPUTF8\r\n250-8BITMIME\r\n"
              b"250-AUTH PLAIN\r\n250 CHUNKING\r\n")
SESSION = ("_state", "_recipients", "_pending_rcpts", "_smtputf8", "_binarymime", "_client_content",
           "_bdat_total", "_bdat_failed", "_lmtp_bdat")


def ready(*sent: object) -> Connection:
    conn = Connection(Role.CLIENT, config=Config(allow_auth_without_tls=True))
    conn.receive_data(b"220 mx.example ESMTP\r\n")
    assert isinstance(conn.next_event(), Reply)
    conn.send(Ehlo(domain="c.example"))
    conn.receive_data(EHLO_REPLY)
    assert isinstance(conn.next_event(), Reply)
    for event in sent:
        conn.send(event)  # type: ignore[arg-type]
    return conn


def snapshot(conn: Connection) -> dict[str, object]:
    out = {name: getattr(conn, name) for name in SESSION}
    out["_recipients"] = list(conn._recipients)
    out["writer"] = type(conn._data_writer).__name__
    return out


MAIL = Mail(reverse_path="a@b.example", params={"SMTPUTF8": None, "BODY": "8BITMIME"})
RCPT = Rcpt(forward_path="x@y.example")
CASES = [
    ((), MAIL),
    ((MAIL,), RCPT),
    ((MAIL, RCPT), Data()),
]


@pytest.mark.parametrize("before, command", CASES, ids=["MAIL", "RCPT", "DATA"])
@pytest.mark.parametrize("code", [250, 251, 354, 421, 450, 452, 550, 554])
def test_inline_replies_do_what_apply_does(before: tuple[object, ...], command: object, code: int) -> None:
    # Every command before the one under test has had its positive reply.
    def prepared() -> Connection:
        conn = ready()
        for event in before:
            conn.send(event)  # type: ignore[arg-type]
            conn.receive_data(b"250 ok\r\n")
            assert isinstance(conn.next_event(), Reply)
        conn.send(command)  # type: ignore[arg-type]
        return conn

    fast = prepared()
    fast.receive_data(b"%d text\r\n" % code)
    try:
        reply = fast.next_event()
    except RemoteProtocolError:
        reply = None  # a 3xx that no rule allows: refused by both paths alike
    general = prepared()
    cmd, ctype = general._pending.popleft()
    if reply is None:
        assert code // 100 == 3 and not isinstance(command, Data)
        return
    assert isinstance(reply, Reply) and reply.code == code and reply.command is command
    general._apply(ctype, cmd, code, ["text"])
    assert snapshot(fast) == snapshot(general)


def test_replies_to_the_same_event_are_kept_and_stay_paired() -> None:
    conn = ready()
    seen = []
    for _ in range(3):
        conn.send(MAIL)
        conn.send(RCPT)
        conn.send(Data())
        conn.receive_data(b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n")
        replies = [conn.next_event() for _ in range(3)]
        conn.send(MessageData(data=b"Subject: x\r\n\r\nhi\r\n"))
        conn.send(EndOfMessage())
        conn.receive_data(b"250 2.0.0 queued\r\n")
        final = conn.next_event()
        assert isinstance(final, Reply) and isinstance(final.command, EndOfMessage)
        seen.append(replies)
    # The same MAIL and RCPT objects got the same (immutable) Reply objects back.
    assert seen[0][0] is seen[2][0] and seen[0][1] is seen[2][1]
    assert seen[0][0].command is MAIL and seen[0][1].command is RCPT
    # A new Data() each time: each reply names the event that was sent.
    assert seen[0][2] == seen[1][2] and seen[0][2].command is not seen[1][2].command
    # A different reply line to the same event is a different Reply.
    conn.send(MAIL)
    conn.receive_data(b"250 2.1.0 Sender ok\r\n")
    other = conn.next_event()
    assert isinstance(other, Reply) and other.lines == ("Sender ok",) and other is not seen[0][0]
    assert len(conn._kept_replies) <= 64


def test_auth_replies_are_never_kept() -> None:
    conn = ready()
    conn.send(Auth(mechanism="PLAIN"))
    conn.receive_data(b"334 \r\n")
    assert isinstance(conn.next_event(), Reply)
    secret = AuthResponse(data=b"\0user\0secret")
    conn.send(secret)
    conn.receive_data(b"235 2.7.0 ok\r\n")
    reply = conn.next_event()
    assert isinstance(reply, Reply) and reply.command is secret
    assert all(r.command is not secret for r in conn._kept_replies.values())
