"""The four fuzz targets of smtpproto.testing, run as bounded hypothesis tests.

``fuzz_server``, ``fuzz_client``, ``fuzz_message`` and ``fuzz_message_roundtrip``
raise only when the core or the codec breaks a promise (see docs/fuzzing.md).
Each gets arbitrary bytes and structured seeds: the SECURITY-CASES inputs and
valid sessions for the protocol targets, ``mime_messages()``,
``hostile_mime()`` and the shared corpus for the message targets.  Example
counts are fixed here; everything else comes from the hypothesis profile in
conftest.py.  Coverage-guided runs of the same targets: ``fuzz/run.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smtpproto import NEED_DATA, PAUSED, Connection, ConnectionClosed, EndOfMessage, Reply, Role
from smtpproto import testing as T
from smtpproto._replies import format_reply
from smtpproto.message import Limits, Message, parse

sys.path.insert(0, str(Path(__file__).resolve().parent / "message"))
from corpus_support import corpus_dir, message_files  # noqa: E402
from test_testing_strategies import CAPS, answer  # noqa: E402

_ROOT = corpus_dir()
#: The shared corpus, for seeds (files up to 64 kB; all of them run once below).
CORPUS: list[bytes] = [p.read_bytes() for p in message_files(_ROOT) if p.stat().st_size <= 65536] if _ROOT else []
NO_CORPUS = "shared corpus not found (../shared/corpus or $SMTPPROTO_CORPUS)"

#: The first byte of a fuzz_server input: chunk size, bare-newline policy,
#: pipelining synchronization (see the target's docstring).
HEADS = {"chunk1-reject-sync": 0x00, "chunk38-reject-sync": 0x01, "chunk2332-reject-sync": 0x3F,
         "chunk1-normalize-sync": 0x40, "chunk1-reject-nosync": 0x80, "chunk2332-normalize-nosync": 0xFF}


# --------------------------------------------------------------------------- seeds

_DATA = b"EHLO c.example\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nDATA\r\n"
_SMUGGLED = b"MAIL FROM:<admin@victim.example>\r\nRCPT TO:<b@y.example>\r\nDATA\r\nspoof\r\n"

#: Client input after the greeting, one per SECURITY-CASES row the server
#: core must handle (and a few neighbours).
SERVER_SEEDS: dict[str, bytes] = {
    **{f"{case} {variant!r}": _DATA + b"body" + variant + _SMUGGLED + b"\r\n.\r\n"
       for case, variant in zip(["S-01", "S-02", "S-03", "S-04", "S-05", "S-06a", "S-06b", "S-07"], T.EOD_VARIANTS)},
    "S-12 pipelined second message": _DATA + b"body\r\n.\r\n" + _SMUGGLED + b".\r\n",
    "T-01 STARTTLS + RSET": b"EHLO c.example\r\nSTARTTLS\r\nRSET\r\n",
    "S-15 bare LF in EHLO": b"EHLO c.example\nMAIL FROM:<admin@victim.example>\r\n",
    "bare CR in MAIL": b"EHLO c.example\r\nMAIL FROM:<a@x.example>\rRCPT TO:<b@y.example>\r\n",
    "R-01 long line": b"EHLO c.example\r\nNOOP " + b"A" * 5000 + b"\r\nNOOP\r\n",
    "long content line": _DATA + b"x" * 3000 + b"\r\n.\r\n",
    "BDAT LAST with an end-of-data inside": (b"EHLO c.example\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\n"
                                            b"BDAT 12 LAST\r\nab\r\n.\r\nQUIT\r\n"),
    "BDAT shorter than said": b"EHLO c.example\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nBDAT 100\r\nx",
    "AUTH line at the limit": b"EHLO c.example\r\nAUTH PLAIN " + b"A" * 12300 + b"\r\n",
    "NUL in a command": b"EHLO c.ex\x00ample\r\nMAIL FROM:<a\x00@x.example>\r\n",
    "8-bit in a command": b"EHLO c.example\r\nMAIL FROM:<j\xc3\xb6@x.example> SMTPUTF8\r\n",
    "DATA twice": _DATA + b"DATA\r\nx\r\n.\r\n",
    "everything before EHLO": b"MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nDATA\r\nx\r\n.\r\n",
    "dot-stuffing edge": _DATA + b".\r\n..\r\n...\r\n.x\r\n\r\n.\r\n",
    "QUIT then more": b"QUIT\r\nEHLO c.example\r\n",
}

#: Server output for the client target: replies it must parse or refuse
#: with RemoteProtocolError.
CLIENT_SEEDS: dict[str, bytes] = {
    "a whole session": b"220 mx\r\n250-mx\r\n250-PIPELINING\r\n250 8BITMIME\r\n250 ok\r\n250 ok\r\n354 go\r\n",
    "multi-line with two codes": b"220 mx\r\n250-mx\r\n251 other\r\n",
    "bare LF line ends": b"220 mx\n250-mx\n250 SIZE 10\n250 ok\n",
    "bare CR inside": b"220 mx\r250 x\r\n250 ok\r\n",
    "over-long reply line": b"220 " + b"x" * 9000 + b"\r\n",
    "over-long multi-line reply": b"220 mx\r\n" + b"250-" + b"y" * 900 + b"\r\n" * 40 + b"250 end\r\n",
    "replies before they are owed": b"220 mx\r\n250 mx\r\n250 ok\r\n250 ok\r\n354 go\r\n250 more\r\n",
    "421 mid-session": b"220 mx\r\n421 4.3.2 bye\r\n250 late\r\n",
    "no text, no space": b"220\r\n250\r\n",
    "codes out of range": b"220 mx\r\n000 zero\r\n999 nine\r\n",
    "not a code": b"220 mx\r\nabc def\r\n2200 x\r\n",
    "8-bit and control text": b"220 mx \xc3\xa9\x00\x1b[31m\r\n250 \xff\r\n",
    "enhanced code mismatch": b"220 mx\r\n250 5.1.1 contradictory\r\n",
    "greeting refused": b"554 5.7.1 no\r\n",
    "empty lines": b"\r\n\r\n220 mx\r\n",
}

#: A few hostile messages spelled out, beside the generated ones.
MESSAGE_SEEDS: dict[str, bytes] = {
    "empty": b"",
    "only a blank line": b"\r\n",
    "boundary is a prefix of the inner one": (b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
                                              b'Content-Type: multipart/mixed; boundary="bb"\r\n\r\n--bb\r\n\r\n'
                                              b"x\r\n--b\r\n\r\ny\r\n--bb--\r\n--b--\r\n"),
    "encoded word split across folds": b"Subject: =?utf-8?q?caf=C3?=\r\n =?utf-8?q?=A9?=\r\n\r\n",
    "RFC 2231 out of order": b"Content-Disposition: attachment; filename*1*=%A9; filename*0*=utf-8''caf%C3\r\n\r\n",
    "header injection via encoded CRLF": b"Subject: =?utf-8?q?a=0D=0ABcc:_v@x.example?=\r\n\r\n",
    "base64 message/rfc822 in itself": (b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                                        b"Q29udGVudC1UeXBlOiBtZXNzYWdlL3JmYzgyMg0KQ29udGVudC1UcmFuc2Zlci1FbmNv\r\n"),
    "LF only": b"Content-Type: multipart/mixed; boundary=b\n\n--b\n\nx\n--b--\n",
}


def _server_wire(transcript: T.Transcript) -> bytes:
    """The bytes a client sends for ``transcript`` (from an in-memory run)."""
    client, server = Connection(Role.CLIENT), Connection(Role.SERVER)
    client.receive_data(server.send(Reply(code=220, lines=["mx.example"])))
    client.next_event()
    wire = b""
    for ev in transcript.events():
        data = client.send(ev)
        wire += data
        if data:
            server.receive_data(data)
        while (got := server.next_event()) is not NEED_DATA:
            if got is PAUSED:
                owed = server.reply_owed
                assert owed is not None
                client.receive_data(server.send(answer(owed, CAPS[:4])))
                client.next_event()
            elif isinstance(got, ConnectionClosed):
                break
    return wire


def _with_a_smuggling_variant(wire: bytes, variant: bytes) -> bytes:
    # A valid session with a fake end-of-data and commands spliced into the
    # content of its first message.
    cut = wire.find(b"DATA\r\n")
    return wire if cut < 0 else wire[:cut + 6] + b"x" + variant + _SMUGGLED + wire[cut + 6:]


# --------------------------------------------------------------------------- fuzz_server

heads = st.sampled_from(sorted(HEADS.values())) | st.integers(0, 255)


@pytest.mark.parametrize("head", HEADS.values(), ids=HEADS.keys())
@pytest.mark.parametrize("seed", SERVER_SEEDS.values(), ids=SERVER_SEEDS.keys())
def test_fuzz_server_on_security_cases(seed: bytes, head: int) -> None:
    T.fuzz_server(bytes([head]) + seed)


@settings(max_examples=150)
@given(st.binary(max_size=800), heads)
def test_fuzz_server_on_arbitrary_bytes(data: bytes, head: int) -> None:
    T.fuzz_server(bytes([head]) + data)


@settings(max_examples=200)
@given(st.one_of(
    st.sampled_from(list(SERVER_SEEDS.values())).flatmap(T.mutations),
    T.mutated(T.hostile_inputs()).map(lambda h: b"".join(h.prefix) + h.data),
    T.transcripts().map(_server_wire),
    st.tuples(T.transcripts().map(_server_wire), T.end_of_data_variants()).map(
        lambda p: _with_a_smuggling_variant(*p)),
    T.transcripts().map(_server_wire).flatmap(T.mutations),
), heads)
def test_fuzz_server_on_structured_inputs(data: bytes, head: int) -> None:
    T.fuzz_server(bytes([head]) + data)


# --------------------------------------------------------------------------- fuzz_client


@pytest.mark.parametrize("seed", CLIENT_SEEDS.values(), ids=CLIENT_SEEDS.keys())
def test_fuzz_client_on_hostile_replies(seed: bytes) -> None:
    T.fuzz_client(seed)


@settings(max_examples=150)
@given(st.binary(max_size=400))
def test_fuzz_client_on_arbitrary_bytes(data: bytes) -> None:
    T.fuzz_client(data)


@settings(max_examples=150)
@given(st.one_of(
    st.lists(T.replies(codes=[220, 250, 354, 421, 450, 550]), max_size=6).map(
        lambda rs: b"".join(format_reply(r) for r in rs)).flatmap(lambda b: st.one_of(st.just(b), T.mutations(b))),
    st.sampled_from(list(CLIENT_SEEDS.values())).flatmap(T.mutations),
))
def test_fuzz_client_on_structured_inputs(data: bytes) -> None:
    T.fuzz_client(data)


# --------------------------------------------------------------------------- fuzz_message, fuzz_message_roundtrip

MESSAGE_TARGETS = pytest.mark.parametrize("target", [T.fuzz_message, T.fuzz_message_roundtrip],
                                          ids=["message", "roundtrip"])


@MESSAGE_TARGETS
@pytest.mark.parametrize("seed", MESSAGE_SEEDS.values(), ids=MESSAGE_SEEDS.keys())
def test_message_targets_on_hostile_seeds(target: Callable[[bytes], None], seed: bytes) -> None:
    target(seed)


@MESSAGE_TARGETS
@settings(max_examples=100)
@given(data=st.binary(max_size=1500))
def test_message_targets_on_arbitrary_bytes(target: Callable[[bytes], None], data: bytes) -> None:
    target(data)


@MESSAGE_TARGETS
@settings(max_examples=60)
@given(data=T.mime_messages(binary=True))
def test_message_targets_on_mime_messages(target: Callable[[bytes], None], data: bytes) -> None:
    target(data)


@MESSAGE_TARGETS
@settings(max_examples=100)
@given(data=T.hostile_mime())
def test_message_targets_on_hostile_mime(target: Callable[[bytes], None], data: bytes) -> None:
    target(data)


@pytest.mark.skipif(not CORPUS, reason=NO_CORPUS)
def test_message_targets_on_every_corpus_file() -> None:
    assert _ROOT is not None
    files = message_files(_ROOT)
    assert len(files) >= len(CORPUS)
    for path in files:
        data = path.read_bytes()
        T.fuzz_message(data)
        T.fuzz_message_roundtrip(data)


@MESSAGE_TARGETS
@pytest.mark.skipif(not CORPUS, reason=NO_CORPUS)
@settings(max_examples=80)
@given(data=st.sampled_from(CORPUS or [b""]).flatmap(lambda d: T.mutations(d, max_edits=8)))
def test_message_targets_on_mutated_corpus_files(target: Callable[[bytes], None], data: bytes) -> None:
    target(data)


# --------------------------------------------------------------------------- the targets can fail


def test_protocol_targets_fail_on_a_broken_core(monkeypatch: pytest.MonkeyPatch) -> None:
    # The targets are not vacuous: a core that ends a message twice, or lets
    # an undocumented exception out, is caught.  (Header 0xbf: large chunks,
    # no pipelining synchronization, so the pipelined message gets through.)
    message = b"EHLO a.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@y.example>\r\nDATA\r\nhi\r\n.\r\n"
    T.fuzz_server(b"\xbf" + message)  # the real core passes

    class Twice(Connection):
        pending_extra = False

        def next_event(self):  # type: ignore[no-untyped-def]
            if self.pending_extra:
                self.pending_extra = False
                return EndOfMessage()
            ev = super().next_event()
            if isinstance(ev, EndOfMessage):
                self.pending_extra = True
            return ev

    monkeypatch.setattr(T, "Connection", Twice)
    with pytest.raises(T.InvariantError):
        T.fuzz_server(b"\xbf" + message)

    class Crashing(Connection):
        def next_event(self):  # type: ignore[no-untyped-def]
            raise ValueError("boom")

    monkeypatch.setattr(T, "Connection", Crashing)
    with pytest.raises(ValueError):
        T.fuzz_client(b"220 hi\r\n")


def test_message_targets_fail_on_a_broken_codec(monkeypatch: pytest.MonkeyPatch) -> None:
    # A serializer that loses a byte, and an edit that does not stick, are
    # caught; so is an exception from a view.
    data = b"Subject: hi\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n"
    T.fuzz_message(data)
    T.fuzz_message_roundtrip(data)
    with monkeypatch.context() as m:
        real = Message.to_bytes
        m.setattr(Message, "to_bytes", lambda self: real(self)[:-1])
        with pytest.raises(T.InvariantError, match="to_bytes"):
            T.fuzz_message(data)
    with monkeypatch.context() as m:
        m.setattr(Message, "__setitem__", lambda self, name, value: None)
        with pytest.raises(T.InvariantError, match="edited header"):
            T.fuzz_message_roundtrip(data)
    with monkeypatch.context() as m:
        def broken(self: Message) -> str:
            raise IndexError("boom")

        m.setattr(Message, "text", broken)
        with pytest.raises(IndexError):
            T.fuzz_message(data)


def test_roundtrip_target_edits_a_header_section_at_the_size_cap() -> None:
    # Found by hostile_mime(): a header section a few octets under
    # Limits.max_header_bytes grows past it with X-Fuzz and Subject, and a
    # default-limits reparse reads the new fields as body, as documented.
    # The target checks the edit above the cap; the real cap still applies
    # to fuzz_message.
    field = b"X-Big: " + b"v" * 70 + b"\r\n"
    room = Limits().max_header_bytes - 10
    data = field * (room // len(field)) + b"X-End: " + b"e" * (room % len(field) - 9) + b"\r\n\r\nbody\r\n"
    assert not parse(data).defects
    edited = parse(data)
    edited["Subject"] = "fuzz"
    assert parse(edited.to_bytes()).get("subject") is None  # the documented cap behaviour
    T.fuzz_message_roundtrip(data)
    T.fuzz_message(data)
