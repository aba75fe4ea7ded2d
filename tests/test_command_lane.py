"""The server's command lane (``Connection._command_lane``) against the general path.

A command line that arrives alone in one read takes the lane; the same line split
over two reads cannot (the buffer no longer holds one received chunk) and takes
the general line reader.  Whatever the line -- valid, refused, malformed, in any
state -- both must give the same events, the same errors, the same state and the
same wire bytes for the reply that follows.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from smtpproto import NEED_DATA, Config, Connection, LocalProtocolError, RemoteProtocolError, Reply, Role
from smtpproto._receivebuffer import ReceiveBuffer

CONFIG = Config(max_message_size=1_000_000, junk_command_limit=3)
EHLO_LINES = ("mx.example", "PIPELINING", "SIZE 1000000", "8BITMIME", "SMTPUTF8", "DSN", "CHUNKING",
              "ENHANCEDSTATUSCODES")

# Where the line arrives: the commands that came (and were accepted) before it.
SETUPS = {
    "greeted": [],
    "helo": [b"HELO client.example\r\n"],
    "ready": [b"EHLO client.example\r\n"],
    "mail": [b"EHLO client.example\r\n", b"MAIL FROM:<a@b.example>\r\n"],
    "rcpt": [b"EHLO client.example\r\n", b"MAIL FROM:<a@b.example>\r\n", b"RCPT TO:<c@d.example>\r\n"],
    "utf8": [b"EHLO client.example\r\n", b"MAIL FROM:<a@b.example> SMTPUTF8\r\n"],
    # At the junk limit: one more NOOP/RSET/VRFY/... counts as an error.
    "junk": [b"EHLO client.example\r\n", b"NOOP\r\n", b"RSET\r\n", b"NOOP x\r\n"],
}

_verbs = st.sampled_from(["MAIL", "RCPT", "DATA", "RSET", "QUIT", "NOOP", "EHLO", "HELO", "LHLO", "VRFY",
                          "EXPN", "HELP", "BDAT", "AUTH", "STARTTLS", "XCLIENT", "FOO"])
_cases = st.sampled_from([str.upper, str.lower, str.title])
_paths = st.sampled_from(["<a@b.example>", "<>", "<Postmaster>", "<@r.example:a@b.example>", "<\"x y\"@b.example>",
                          "<a@[127.0.0.1]>", "<a@b>", "<a@@b>", "a@b.example", "<a@b.example", "<jö@b.example>",
                          "<" + "x" * 70 + "@b.example>", "<a@" + "d" * 300 + ".example>"])
_params = st.sampled_from(["", " SIZE=100", " SIZE=99999999", " BODY=8BITMIME", " BODY=BINARYMIME", " SMTPUTF8",
                           " NOTIFY=NEVER", " FOO=bar", " SIZE=1 SIZE=2", "  SIZE=1", " RET=HDRS"])
_args = st.sampled_from(["", " ", " x", " client.example", " 5", " 3 LAST", " 0 LAST", " PLAIN", " now", " a b"])


@st.composite
def lines(draw: st.DrawFn) -> bytes:
    verb = draw(_cases)(draw(_verbs))
    if verb.upper() == "MAIL":
        text = verb + draw(st.sampled_from([" FROM:", " from:", " FROM: ", " FROM:  ", " TO:", "FROM:"])) \
            + draw(_paths) + draw(_params)
    elif verb.upper() == "RCPT":
        text = verb + draw(st.sampled_from([" TO:", " to:", " TO: ", " FROM:"])) + draw(_paths) + draw(_params)
    else:
        text = verb + draw(_args)
    raw = text.encode("utf-8")
    tail = draw(st.sampled_from([b"", b"", b"", b"\r", b"\n", b"\x00", b"\xff", b"x" * 600]))
    where = draw(st.integers(0, len(raw)))
    return raw[:where] + tail + raw[where:] + b"\r\n"


def _server(setup: str, newline: str) -> Connection:
    conn = Connection(Role.SERVER, replace(CONFIG, bare_newline=newline))
    conn.send(Reply(code=220, lines=("mx.example ESMTP",)))
    for line in SETUPS[setup]:
        # Split, so the setup goes by the general path whatever the lane does.
        conn.receive_data(line[:1])
        assert conn.next_event() is NEED_DATA
        conn.receive_data(line[1:])
        ev = conn.next_event()
        conn.send(Reply(code=250, lines=EHLO_LINES if line.startswith(b"EHLO") else ("Ok",)))
        assert conn.next_event() is NEED_DATA, ev
    return conn


def _outcome(conn: Connection, chunks: list[bytes]) -> list[Any]:
    """Feed ``chunks``; the events (as reprs), the error, then what the reply
    that is owed (or a 250) turns into, and the state after."""
    out: list[Any] = []
    for chunk in chunks:
        conn.receive_data(chunk)
        while True:
            try:
                ev = conn.next_event()
            except RemoteProtocolError as exc:
                out.append(("error", str(exc), exc.reply))
                return out
            out.append(repr(ev))
            if ev is NEED_DATA or repr(ev) == "PAUSED":
                break
    owed = conn.reply_owed
    reply = getattr(owed, "reply", None) or Reply(code=250, lines=("Ok",))
    try:
        out.append(conn.send(reply))
    except LocalProtocolError as exc:
        out.append(("refused", str(exc)))
    out.append((conn.state, conn.their_state, conn.error_count, conn.recipients, len(conn.pending)))
    return out


@settings(max_examples=600, deadline=None)
@given(lines(), st.sampled_from(sorted(SETUPS)), st.sampled_from(["reject", "normalize"]))
def test_the_lane_and_the_general_path_agree(line: bytes, setup: str, newline: str) -> None:
    # Two lines (a bare LF ends one under "normalize") never take the lane, and
    # split apart they would meet the pipelining rules instead.
    assume(newline == "reject" or b"\n" not in line[:-1])
    lane = _outcome(_server(setup, newline), [line])
    general = _outcome(_server(setup, newline), [line[:1], line[1:]])
    # The one-byte first read gives NEED_DATA before the rest arrives.
    if general and general[0] == repr(NEED_DATA) and not (lane and lane[0] == repr(NEED_DATA) and len(line) == 1):
        general = general[1:]
    assert lane == general


def test_the_lane_is_taken_for_a_lone_line() -> None:
    """Guard for the test above: a lone clean line really is served by the lane
    (otherwise the comparison would compare the general path with itself)."""
    conn = _server("ready", "reject")
    conn.receive_data(b"MAIL FROM:<a@b.example>\r\n")
    taken: list[object] = []
    original = Connection._command_lane

    def spy(self: Connection) -> object:
        result = original(self)
        taken.append(result)
        return result

    Connection._command_lane = spy  # type: ignore[method-assign]
    try:
        ev = conn.next_event()
    finally:
        Connection._command_lane = original  # type: ignore[method-assign]
    assert taken == [ev] and type(ev).__name__ == "Mail"


def test_a_split_line_is_not_a_sole_chunk() -> None:
    buf = ReceiveBuffer()
    buf.append(b"RSET\r\n")
    assert buf.sole() == b"RSET\r\n"
    buf.clear()
    assert not buf and buf.sole() is None
    buf.append(b"RS")
    buf.append(b"ET\r\n")
    assert buf.sole() is None and buf.find(b"\r\n") == 6
