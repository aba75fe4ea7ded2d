"""Differential tests: smtpproto against a second implementation of the same thing.

(a) Our server (the threads adapter) against aiosmtpd, both on loopback:
    the same generated sessions and DATA bodies go to both, and both must
    accept the same message content.
(b) Our codec against the standard library's ``email`` package
    (``policy.default`` and ``compat32``) on generated MIME messages: the
    same part tree, content types, decoded bodies and text, filenames and
    subjects.

Where the two legitimately differ, the difference is a named, triaged case
below (``*_DIFFERENCES``), asserted on its own, and listed with its reason in
docs/fuzzing.md ("Differential testing").  Anything else is a failure.
"""

from __future__ import annotations

import email
import email.message
import email.policy
import faulthandler
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from typing import Any

import pytest
from hypothesis import given, settings

from smtpproto import Config
from smtpproto import testing as T
from smtpproto.adapters import Envelope, Handler, ServerSettings, Session
from smtpproto.adapters.sockets import SMTPServer
from smtpproto.message import Message, parse

#: Every socket operation here waits at most this long (seconds).
WAIT = 5.0


@pytest.fixture
def watchdog() -> Iterator[None]:
    """Tests that use sockets stop by themselves: besides the socket
    timeouts, a test still running after 90 s dumps every thread's stack and
    ends the run (a hang would otherwise stall CI)."""
    faulthandler.dump_traceback_later(90, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


SOCKETS = pytest.mark.usefixtures("watchdog")


# =========================================================================== (a) servers


@dataclass
class Delivery:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes


class OurRecorder(Handler):
    def __init__(self) -> None:
        self.delivered: list[Delivery] = []
        self.lock = threading.Lock()

    def on_message(self, session: Session, envelope: Envelope) -> None:
        assert envelope.content is not None
        with self.lock:
            self.delivered.append(Delivery(envelope.mail_from, list(envelope.rcpt_tos), envelope.content))


class AiosmtpdRecorder:
    def __init__(self) -> None:
        self.delivered: list[Delivery] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.delivered.append(Delivery(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content)))
        return "250 OK"


@dataclass
class Peer:
    name: str
    address: tuple[str, int]
    recorder: OurRecorder | AiosmtpdRecorder


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class _AiosmtpdServer:
    """aiosmtpd's Controller on a free loopback port (``content`` as bytes)."""

    def __init__(self, **kwargs: Any) -> None:
        from aiosmtpd.controller import Controller

        self.recorder = AiosmtpdRecorder()
        last: Exception | None = None
        for _ in range(5):
            port = _free_port()
            controller = Controller(self.recorder, hostname="127.0.0.1", port=port, decode_data=False,
                                    ready_timeout=10, **kwargs)
            try:
                controller.start()
            except Exception as exc:  # the port was taken meanwhile: take another
                last = exc
                continue
            self.controller, self.port = controller, port
            return
        raise RuntimeError(f"aiosmtpd did not start: {last}")

    def stop(self) -> None:
        self.controller.stop()


@pytest.fixture(scope="module")
def peers() -> Iterator[dict[str, Peer]]:
    """Our server with each bare-newline policy, and aiosmtpd as its
    Controller sets it up by default (SMTPUTF8 on)."""
    pytest.importorskip("aiosmtpd")
    out: dict[str, Peer] = {}
    servers = []
    try:
        for policy in ("reject", "normalize"):
            recorder = OurRecorder()
            server = SMTPServer(recorder, host="127.0.0.1", port=0, settings=ServerSettings(
                config=Config(bare_newline=policy), hostname="mx.test", error_delay=0))  # type: ignore[arg-type]
            server.start()
            servers.append(server)
            host, port = server.address  # type: ignore[misc]
            out[policy] = Peer(policy, (host, port), recorder)
        theirs = _AiosmtpdServer()
        servers.append(theirs)
        out["aiosmtpd"] = Peer("aiosmtpd", ("127.0.0.1", theirs.port), theirs.recorder)
        yield out
    finally:
        for s in servers:
            if isinstance(s, _AiosmtpdServer):
                s.stop()
            else:
                s.shutdown(timeout=WAIT)


class _RecordingSocket:
    """Passes ``sendall``/``recv`` through and keeps every byte sent."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sent = b""

    def sendall(self, data: bytes) -> None:
        self.sent += data
        self.sock.sendall(data)

    def recv(self, size: int) -> bytes:
        return self.sock.recv(size)


@dataclass
class Played:
    sent: bytes
    result: T.ReplayResult
    delivered: list[Delivery] = field(default_factory=list)


def play(peer: Peer, transcript: T.Transcript) -> Played:
    """Replay ``transcript`` through our client state machine and collect
    what the server delivered."""
    peer.recorder.delivered.clear()
    with socket.create_connection(peer.address, timeout=WAIT) as sock:
        rec = _RecordingSocket(sock)
        result = T.replay(rec, transcript)  # type: ignore[arg-type]
    return Played(rec.sent, result, list(peer.recorder.delivered))


def _read_reply(f: Any) -> tuple[int, str]:
    """One reply: its code and its lines' text joined by LF."""
    lines = []
    while True:
        line = f.readline()
        if not line:
            raise ConnectionError("closed")
        lines.append(line.decode("utf-8", "replace").rstrip("\r\n")[4:])
        if line[3:4] != b"-":
            return int(line[:3]), "\n".join(lines)


def dialogue(peer: Peer, lines: list[bytes]) -> list[tuple[int, str]]:
    """Send each line raw and read its reply (the greeting is read first)."""
    peer.recorder.delivered.clear()
    out = []
    with socket.create_connection(peer.address, timeout=WAIT) as sock:
        f = sock.makefile("rb")
        _read_reply(f)
        for line in lines:
            sock.sendall(line)
            out.append(_read_reply(f))
    return out


_ENVELOPE = [b"EHLO c.example\r\n", b"MAIL FROM:<a@x.example> BODY=8BITMIME\r\n", b"RCPT TO:<b@y.example>\r\n",
             b"DATA\r\n"]


def send_data(peer: Peer, wire: bytes) -> tuple[int, list[bytes]]:
    """One transaction whose content is ``wire`` exactly (already
    dot-stuffed, with its end of data): the final reply and the delivery."""
    replies = dialogue(peer, _ENVELOPE + [wire])
    assert [code for code, _ in replies[:4]] == [250, 250, 250, 354], replies
    return replies[-1][0], [d.content for d in peer.recorder.delivered]


def stuffed(body: bytes) -> bytes:
    """``body`` as a client writes it after DATA, without normalizing line
    ends: a dot doubled at the start of every CRLF line, then the end of data."""
    out = re.sub(rb"(?<=\r\n)\.", b"..", body)
    if out.startswith(b"."):
        out = b"." + out
    return out + (b".\r\n" if out == b"" or out.endswith(b"\r\n") else b"\r\n.\r\n")


def _has_bare_newline(data: bytes) -> bool:
    rest = data.replace(b"\r\n", b"")
    return b"\r" in rest or b"\n" in rest


_ATEXT_OR_DOT = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.\-\u0080-\U0010ffff]+")


def canonical_mailbox(address: str) -> str:
    """The form in which both servers' envelopes are compared (see
    SERVER_DIFFERENCES): the null reverse-path as ``""``, and a quoted local
    part without its quotes when it holds only atext and dots."""
    if address == "<>":
        return ""
    local, at, domain = address.rpartition("@")
    if at and local.startswith('"') and local.endswith('"'):
        inner = re.sub(r"\\(.)", r"\1", local[1:-1])
        if _ATEXT_OR_DOT.fullmatch(inner):
            return inner + "@" + domain
    return address


def _envelopes(delivered: list[Delivery]) -> list[tuple[str, list[str]]]:
    return [(canonical_mailbox(d.mail_from), [canonical_mailbox(r) for r in d.rcpt_tos]) for d in delivered]


#: Triaged differences between our server (default Config) and aiosmtpd
#: 1.4.6 (its Controller's defaults), each asserted by the test named.
SERVER_DIFFERENCES = {
    "null-sender": "aiosmtpd reports the null reverse-path as '<>', we as '' (representation only)",
    "quoted-local-part": "aiosmtpd drops the quotes of a quoted local part made of atext and dots, even "
                         "where the result is not a valid Dot-string (\".eu\"@x -> .eu@x); we keep the "
                         "address as sent (RFC 5321 §4.1.2: the local part is the receiving host's to interpret)",
    "bare-newline-in-content": "aiosmtpd keeps a bare CR or LF in the content as it came; we refuse the "
                               "message with 550 5.5.2 (bare_newline='reject', the default, SECURITY-CASES "
                               "H-10) or deliver it with every bare CR and LF made CRLF ('normalize')",
    "1001-octet-line": "aiosmtpd takes a content line of 1001 octets with its CRLF (line_length_limit 1001); "
                       "we refuse it with 500 5.5.2 (RFC 5321 §4.5.3.1.6: 1000 octets)",
    "utf8-mailbox-without-smtputf8": "aiosmtpd (Controller default enable_SMTPUTF8=True) accepts a "
                                     "non-ASCII mailbox in MAIL/RCPT without the SMTPUTF8 parameter; we "
                                     "refuse it with 553 5.6.7 (RFC 6531 §3.4)",
    "smtputf8-disabled": "aiosmtpd with enable_SMTPUTF8=False (the SMTP class default) does not offer "
                         "SMTPUTF8 and answers any 8-bit command with '500 Error: strict ASCII mode'; we "
                         "offer SMTPUTF8 by default",
}


@SOCKETS
@settings(max_examples=40)
@given(T.transcripts())
def test_same_sessions_deliver_the_same_content(peers: dict[str, Peer], transcript: T.Transcript) -> None:
    ours = play(peers["reject"], transcript)
    theirs = play(peers["aiosmtpd"], transcript)
    # Both answered alike, so our client wrote the very same bytes to both.
    assert ours.sent == theirs.sent
    assert (ours.result.accepted, ours.result.refused) == (theirs.result.accepted, theirs.result.refused) \
        == (len(transcript.transactions), 0)
    expected = [T.expected_content(tx.body) for tx in transcript.transactions]
    assert [d.content for d in ours.delivered] == [d.content for d in theirs.delivered] == expected
    # Envelopes agree up to "null-sender" and "quoted-local-part".
    assert _envelopes(ours.delivered) == _envelopes(theirs.delivered)
    assert [d.mail_from for d in ours.delivered] == [tx.mail.reverse_path for tx in transcript.transactions]


@SOCKETS
@settings(max_examples=60)
@given(T.message_bodies())
def test_raw_bodies_with_dots_and_line_endings(peers: dict[str, Peer], body: bytes) -> None:
    wire = stuffed(body)
    aio_code, aio = send_data(peers["aiosmtpd"], wire)
    strict_code, strict = send_data(peers["reject"], wire)
    lenient_code, lenient = send_data(peers["normalize"], wire)
    # aiosmtpd ends DATA only at CRLF.CRLF and undoes dot-stuffing at CRLF
    # line starts: it delivers the body as sent, ended by CRLF.
    assert (aio_code, aio) == (250, [body + (b"\r\n" if body and not body.endswith(b"\r\n") else b"")])
    if not _has_bare_newline(body):
        assert (strict_code, strict) == (lenient_code, lenient) == (250, aio)
    else:
        # "bare-newline-in-content"
        assert (strict_code, strict) == (550, [])
        assert (lenient_code, lenient) == (250, [T.expected_content(aio[0])])


@SOCKETS
def test_difference_null_sender(peers: dict[str, Peer]) -> None:
    session = [b"EHLO c.example\r\n", b"MAIL FROM:<>\r\n", b"RCPT TO:<b@y.example>\r\n", b"DATA\r\n", b"x\r\n.\r\n"]
    got = {}
    for name in ("reject", "aiosmtpd"):
        assert dialogue(peers[name], session)[-1][0] == 250
        got[name] = peers[name].recorder.delivered[0].mail_from
    assert got == {"reject": "", "aiosmtpd": "<>"}


@SOCKETS
@pytest.mark.parametrize(("sent", "aiosmtpd_delivers"), [
    ('"h4"@x.example', "h4@x.example"),
    ('"first.last"@x.example', "first.last@x.example"),
    ('".eu"@x.example', ".eu@x.example"),  # not a valid Dot-string any more
    ('"a..b"@x.example', "a..b@x.example"),
    ('"a b"@x.example', '"a b"@x.example'),  # quotes needed: kept
])
def test_difference_quoted_local_part(peers: dict[str, Peer], sent: str, aiosmtpd_delivers: str) -> None:
    session = [b"EHLO c.example\r\n", b"MAIL FROM:<a@x.example>\r\n", b"RCPT TO:<" + sent.encode() + b">\r\n",
               b"DATA\r\n", b"x\r\n.\r\n"]
    got = {}
    for name in ("reject", "aiosmtpd"):
        assert dialogue(peers[name], session)[-1][0] == 250
        got[name] = peers[name].recorder.delivered[0].rcpt_tos
    assert got == {"reject": [sent], "aiosmtpd": [aiosmtpd_delivers]}
    assert canonical_mailbox(sent) == canonical_mailbox(aiosmtpd_delivers)


@SOCKETS
def test_difference_bare_newline_in_content(peers: dict[str, Peer]) -> None:
    # S-01's fake end of data as content: nobody ends DATA there, but only we
    # refuse (or normalize) the bare LFs.
    body = b"Subject: a\r\n\r\nbody\n.\nmore\r\n"
    assert send_data(peers["aiosmtpd"], stuffed(body)) == (250, [body])
    assert send_data(peers["reject"], stuffed(body)) == (550, [])
    assert send_data(peers["normalize"], stuffed(body)) == (250, [b"Subject: a\r\n\r\nbody\r\n.\r\nmore\r\n"])
    assert dialogue(peers["reject"], _ENVELOPE + [stuffed(body)])[-1][1].startswith("5.5.2")


@SOCKETS
@pytest.mark.parametrize("octets", [998, 999, 1000])
def test_difference_1001_octet_line(peers: dict[str, Peer], octets: int) -> None:
    # ``octets`` before the CRLF: 998 is RFC 5321's longest text line.
    wire = b"x" * octets + b"\r\n.\r\n"
    ours, theirs = send_data(peers["reject"], wire), send_data(peers["aiosmtpd"], wire)
    if octets == 998:
        assert ours == theirs == (250, [wire[:-3]])
    elif octets == 999:
        assert (ours, theirs) == ((500, []), (250, [wire[:-3]]))
        assert dialogue(peers["reject"], _ENVELOPE + [wire])[-1][1].startswith("5.5.2")
    else:
        assert ours[0] == theirs[0] == 500 and ours[1] == theirs[1] == []


@SOCKETS
def test_difference_utf8_mailbox_without_smtputf8(peers: dict[str, Peer]) -> None:
    lines = [b"EHLO c.example\r\n", b"MAIL FROM:<j\xc3\xb6@x.example>\r\n", b"RSET\r\n",
             b"MAIL FROM:<a@x.example>\r\n", b"RCPT TO:<\xc3\xb6@y.example>\r\n", b"RSET\r\n",
             b"MAIL FROM:<j\xc3\xb6@x.example> SMTPUTF8\r\n", b"RCPT TO:<\xc3\xb6@y.example>\r\n"]
    ours = [code for code, _ in dialogue(peers["reject"], lines)]
    theirs = [code for code, _ in dialogue(peers["aiosmtpd"], lines)]
    assert ours == [250, 553, 250, 250, 553, 250, 250, 250]
    assert theirs == [250, 250, 250, 250, 250, 250, 250, 250]


@SOCKETS
def test_difference_smtputf8_disabled(peers: dict[str, Peer]) -> None:
    strict = _AiosmtpdServer(enable_SMTPUTF8=False)
    try:
        peer = Peer("aiosmtpd-ascii", ("127.0.0.1", strict.port), strict.recorder)
        lines = [b"EHLO c.example\r\n", b"MAIL FROM:<j\xc3\xb6@x.example> SMTPUTF8\r\n", b"MAIL FROM:<a@x.example>\r\n",
                 b"RCPT TO:<\xc3\xb6@y.example>\r\n"]
        theirs = dialogue(peer, lines)
        ours = dialogue(peers["reject"], lines)
    finally:
        strict.stop()
    assert "SMTPUTF8" not in theirs[0][1].splitlines()
    assert [theirs[1], theirs[2][0], theirs[3]] == [(500, "Error: strict ASCII mode"), 250,
                                                    (500, "Error: strict ASCII mode")]
    assert "SMTPUTF8" in ours[0][1].splitlines()
    assert [code for code, _ in ours[1:]] == [250, 503, 250]  # the second MAIL: a transaction is open


# =========================================================================== (b) codec vs email


def _tree(ours: Message) -> list[tuple[str, int]]:
    return [(p.content_type, len(p.parts)) for p in ours.walk()]


def _email_tree(theirs: email.message.Message) -> list[tuple[str, int]]:
    return [(p.get_content_type(), len(p.get_payload()) if p.is_multipart() else 0) for p in theirs.walk()]


def _email_subject(theirs: email.message.Message, policy: Any) -> str | None:
    value = theirs["subject"]
    if value is None:
        return None
    if policy is email.policy.compat32:
        return str(make_header(decode_header(value)))
    return str(value)


def _email_text(part: email.message.Message, policy: Any) -> str:
    if policy is email.policy.compat32:
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        return payload.decode(part.get_content_charset() or "us-ascii", "replace")
    assert isinstance(part, email.message.EmailMessage)
    text: str = part.get_content()
    return text


#: Triaged differences between our codec and the stdlib ``email`` package
#: (Python 3.10-3.13), each asserted by test_codec_difference_<key>.
CODEC_DIFFERENCES = {
    "subject-trailing-space": "we strip white space at both ends of an unstructured field's value; "
                              "email (both policies) strips only the leading white space",
    "compat32-raw-utf8": "compat32 predates RFC 6532: raw UTF-8 in a header (subject, filename) reads "
                         "as U+FFFD replacement characters; policy.default and we decode it",
    "filename-strip": "Message.get_filename() strips white space around the filename; we return the "
                      "parameter as written",
    "filename-unquote": "get_filename() unquotes the value once more, so a filename that starts and "
                        "ends with '\"' or with '<' and '>' loses them ('<x@y>' -> 'x@y'); we return it as written",
    "default-apostrophe-token": "policy.default refuses \"'\" in an unquoted parameter value "
                                "(filename=a'b: get_filename() is None, with an InvalidHeaderDefect), which "
                                "RFC 2045's token allows; compat32 and we read a'b",
}


def _subject_difference(ours: str | None, theirs: str | None, policy: Any, built: T.BuiltMessage) -> str | None:
    if ours == theirs:
        return None
    if policy is email.policy.compat32 and built.smtputf8 and theirs is not None and "\ufffd" in theirs:
        return "compat32-raw-utf8"
    if ours is not None and theirs is not None and theirs.rstrip() == ours and theirs != ours:
        return "subject-trailing-space"
    return "UNTRIAGED"


def _filename_difference(ours: str | None, theirs: str | None, policy: Any, built: T.BuiltMessage) -> str | None:
    if ours == theirs:
        return None
    if ours is None:
        return "UNTRIAGED"
    if policy is email.policy.compat32 and built.smtputf8 and theirs is not None and "\ufffd" in theirs:
        return "compat32-raw-utf8"
    if policy is email.policy.default and theirs is None and "'" in ours:
        return "default-apostrophe-token"
    if theirs == ours.strip():
        return "filename-strip"
    if len(ours) >= 2 and ours[0] + ours[-1] in ('""', "<>") and theirs == ours[1:-1].strip():
        return "filename-unquote"
    return "UNTRIAGED"


@pytest.mark.parametrize("policy", [email.policy.default, email.policy.compat32], ids=["default", "compat32"])
@settings(max_examples=80)
@given(built=T.built_messages(binary=True))
def test_codec_and_email_read_generated_messages_alike(policy: Any, built: T.BuiltMessage) -> None:
    ours = parse(built.data)
    theirs = email.message_from_bytes(built.data, policy=policy)
    assert _tree(ours) == _email_tree(theirs)
    assert _subject_difference(ours.get("subject"), _email_subject(theirs, policy), policy, built) in (
        None, *CODEC_DIFFERENCES)
    text_parts = {id(p) for p in ours.text_body + ours.html_body}
    for mine, other in zip(ours.walk(), theirs.walk()):
        assert mine.content_type == other.get_content_type()
        if mine.is_multipart or mine.content_type == "message/rfc822":
            continue
        assert mine.decoded_body() == other.get_payload(decode=True)
        assert _filename_difference(mine.filename, other.get_filename(), policy, built) in (None, *CODEC_DIFFERENCES)
        if id(mine) in text_parts and mine.maintype == "text" and mine.charset in ("utf-8", "us-ascii"):
            assert mine.text() == _email_text(other, policy)


def _both(raw: bytes) -> tuple[Message, email.message.Message, email.message.Message]:
    return (parse(raw), email.message_from_bytes(raw, policy=email.policy.default),
            email.message_from_bytes(raw, policy=email.policy.compat32))


def _attachment(disposition: bytes) -> bytes:
    return b"Content-Type: application/octet-stream\r\nContent-Disposition: " + disposition + b"\r\n\r\nx\r\n"


def test_codec_difference_subject_trailing_space() -> None:
    ours, default, compat = _both(b"Subject:  trail  \r\n\r\n")
    assert ours.get("subject") == "trail"
    assert str(default["subject"]) == "trail  "
    assert str(make_header(decode_header(compat["subject"]))) == "trail  "


def test_codec_difference_compat32_raw_utf8() -> None:
    raw = b"Subject: caf\xc3\xa9\r\n" + _attachment(b'attachment; filename="\xc3\xa9.txt"')
    ours, default, compat = _both(raw)
    assert (ours.get("subject"), ours.filename) == ("café", "é.txt")
    assert (str(default["subject"]), default.get_filename()) == ("café", "é.txt")
    assert str(make_header(decode_header(compat["subject"]))) == "caf\ufffd\ufffd"
    assert compat.get_filename() == "\ufffd\ufffd.txt"


@pytest.mark.parametrize("value", [b'" a.txt "', b"utf-8''%09a.txt%20"], ids=["quoted", "rfc2231"])
def test_codec_difference_filename_strip(value: bytes) -> None:
    name = b"filename*=" + value if value.startswith(b"utf-8") else b"filename=" + value
    ours, default, compat = _both(_attachment(b"attachment; " + name))
    assert ours.filename in (" a.txt ", "\ta.txt ")
    assert default.get_filename() == compat.get_filename() == "a.txt"


@pytest.mark.parametrize(("value", "stdlib"), [(b'"<x@y>"', "x@y"), (b'"\\"a\\""', "a"), (b'"\\"\\""', "")])
def test_codec_difference_filename_unquote(value: bytes, stdlib: str) -> None:
    ours, default, compat = _both(_attachment(b"attachment; filename=" + value))
    assert ours.filename == {"x@y": "<x@y>", "a": '"a"', "": '""'}[stdlib]
    assert default.get_filename() == compat.get_filename() == stdlib


def test_codec_difference_default_apostrophe_token() -> None:
    ours, default, compat = _both(_attachment(b"attachment; filename=a'b"))
    assert ours.filename == compat.get_filename() == "a'b"
    assert default.get_filename() is None
    assert default["content-disposition"].defects
    # Quoted, the same value reads alike everywhere.
    ours, default, compat = _both(_attachment(b"attachment; filename=\"a'b\""))
    assert ours.filename == default.get_filename() == compat.get_filename() == "a'b"


def test_every_difference_has_its_test() -> None:
    names = set(globals())
    assert {f"test_difference_{k.replace('-', '_')}" for k in SERVER_DIFFERENCES} <= names
    assert {f"test_codec_difference_{k.replace('-', '_')}" for k in CODEC_DIFFERENCES} <= names
