"""Record and replay (``smtpproto.transcript``): the file format, AUTH
redaction, a real session recorded through each of the six adapters and
replayed against our own server and against aiosmtpd, STARTTLS, malformed
recordings, the command line, and the examples in docs/fuzzing.md.

Everything runs on loopback with bounded waits."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import smtplib
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "adapters"))

from test_client_support import FLAVORS, aiosmtpd_server, run_flavor  # noqa: E402
from test_server_support import (  # noqa: E402
    BACKENDS,
    WAIT,
    AuthRecorder,
    RawClient,
    RunningServer,
    client_tls_context,
    fast_settings,
    hello,
    server_tls_context,
)
from test_server_support import Recorder as KeepAll  # noqa: E402

from smtpproto import Config  # noqa: E402
from smtpproto.adapters._cli_send import main_send  # noqa: E402
from smtpproto.transcript import (  # noqa: E402
    REDACTED,
    Recorder,
    Recording,
    ReplayReport,
    format_report,
    load_transcript,
    redact_auth_line,
    redact_challenges,
    replay_transcript,
)

ROOT = Path(__file__).resolve().parent.parent
#: Every way the secrets below could show up on the wire.
SECRETS = [b"secret", b"wrong-pw", base64.b64encode(b"secret"), base64.b64encode(b"wrong-pw"),
           base64.b64encode(b"\0user\0secret"), base64.b64encode(b"user")]
#: In the message content: looks like AUTH, must be recorded as it is.
CONTENT = b"Subject: t\r\n\r\nAUTH PLAIN Y29udGVudA==\r\nhello\r\n"


def the_file(directory: Path) -> Path:
    files = sorted(directory.iterdir())
    assert len(files) == 1, files
    return files[0]


def assert_no_secret(path: Path) -> None:
    raw = path.read_bytes()
    decoded = load_transcript(path)
    stream = decoded.sent("C") + decoded.sent("S")
    for secret in SECRETS:
        assert secret not in raw and secret not in stream, secret


def redacted_steps(report: ReplayReport) -> set[int]:
    return {s.index for s in report.steps if REDACTED.encode() in s.sent}


def assert_differs_only_at_auth(report: ReplayReport) -> None:
    """The documented difference: replies to the redacted AUTH lines."""
    assert report.error is None, format_report(report)
    assert {s.index for s in report.differences} == redacted_steps(report) != set(), format_report(report)
    assert report.closed or not report.recorded_closed, format_report(report)


# ---------------------------------------------------------------- format


def test_recorder_writes_the_documented_format_and_loads_back_exactly() -> None:
    now = [100.0]
    buf = io.StringIO()
    every_octet = bytes(range(256))
    with Recorder(buf, role="server", peer=("127.0.0.1", 2525), clock=lambda: now[0]) as rec:
        now[0] = 100.5
        rec.record("C", every_octet)
        rec.record("S", b"")  # nothing to record
        rec.starttls()
        rec.record("S", b"250 ok\r\n", at=100.25)
        rec.eof("C")
    assert rec.closed and not buf.closed  # a file given to it stays open
    lines = buf.getvalue().splitlines()
    head = json.loads(lines[0])
    assert head["smtpproto-transcript"] == 1 and head["role"] == "server"
    assert head["peer"] == "[127.0.0.1]:2525" and head["implicit_tls"] is False
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", head["started"])
    assert [json.loads(x) for x in lines[2:]] == [
        {"t": 0.5, "dir": "C", "event": "starttls"},
        {"t": 0.25, "dir": "S", "data": "250 ok\r\n"},
        {"t": 0.5, "dir": "C", "event": "eof"},
    ]
    assert all(line.isascii() for line in lines)
    loaded = load_transcript(io.StringIO(buf.getvalue()))
    assert loaded.role == "server" and loaded.peer == "[127.0.0.1]:2525"
    assert loaded.records[0].data == every_octet and loaded.records[0].direction == "C"
    assert [r.event for r in loaded.records] == [None, "starttls", None, "eof"]
    assert loaded.sent("S") == b"250 ok\r\n"
    with pytest.raises(ValueError):
        rec.record("C", b"x")  # closed


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty file"),
    ('{"t": 0}\n', "line 1: not an smtpproto transcript"),
    ('{"smtpproto-transcript": 2}\n', "version 2"),
    ('{"smtpproto-transcript": 1}\n{"t": 0, "dir": "X", "data": ""}\n', "line 2"),
    ('{"smtpproto-transcript": 1}\n\n{"t": 0, "dir": "C", "data": "\\u0100"}\n', "line 3"),
    ('{"smtpproto-transcript": 1}\n{"t": 0, "dir": "C", "event": "reboot"}\n', "unknown event"),
    ('{"smtpproto-transcript": 1}\n{"t": 0, "dir": "C", "event": "eof", "data": ""}\n', "either data or"),
    ('{"smtpproto-transcript": 1}\nnot json\n', "line 2"),
])
def test_malformed_files_are_refused_with_the_line(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_transcript(io.StringIO(text))


@pytest.mark.parametrize(("line", "redacted"), [
    (b"AUTH PLAIN AHVzZXIAc2VjcmV0\r\n", b"AUTH PLAIN <redacted>\r\n"),
    (b"auth login dXNlcg==", b"auth login <redacted>"),
    (b"AUTH PLAIN =\r\n", b"AUTH PLAIN <redacted>\r\n"),
    (b"AUTH LOGIN\r\n", b"AUTH LOGIN\r\n"),
    (b"c2VjcmV0\r\n", b"<redacted>\r\n"),
    (b"\r\n", b"<redacted>\r\n"),
    (b"*\r\n", b"*\r\n"),
])
def test_redact_auth_line(line: bytes, redacted: bytes) -> None:
    assert redact_auth_line(line) == redacted


def test_redact_challenges_touches_only_334_lines() -> None:
    data = b"250-mx\r\n250 AUTH PLAIN\r\n334 VXNlcm5hbWU6\r\n334 \r\n235 2.7.0 ok\r\n"
    assert redact_challenges(data) == b"250-mx\r\n250 AUTH PLAIN\r\n334 <redacted>\r\n334 \r\n235 2.7.0 ok\r\n"


# ---------------------------------------------------------------- server adapters


def smtplib_session(port: int) -> None:
    """A failed AUTH LOGIN (a SASL response line), a successful AUTH PLAIN (an
    initial response), a message whose content looks like AUTH, QUIT."""
    with smtplib.SMTP("127.0.0.1", port, timeout=WAIT) as client:
        client.ehlo("c.example")
        client.user, client.password = "user", "wrong-pw"
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.auth("LOGIN", client.auth_login)
        client.user, client.password = "user", "secret"
        client.auth("PLAIN", client.auth_plain)
        assert client.sendmail("a@x.example", ["b@y.example"], CONTENT) == {}


@pytest.fixture(scope="module")
def aiosmtpd_with_auth() -> Iterator[int]:
    """aiosmtpd, the other implementation, with AUTH offered on loopback."""
    pytest.importorskip("aiosmtpd")
    with aiosmtpd_server(users={"user": "secret"}, auth_require_tls=False) as (port, _):
        yield port


@pytest.mark.parametrize("backend", BACKENDS)
def test_server_adapter_records_a_session_with_auth_redacted_and_it_replays(
        backend: str, tmp_path: Path, aiosmtpd_with_auth: int) -> None:
    handler = AuthRecorder()
    settings = fast_settings(allow_auth_without_tls=True)
    with RunningServer(backend, handler, settings=settings, record=tmp_path / "rec") as srv:
        smtplib_session(srv.port)
        assert handler.disconnected.wait(WAIT)
    assert handler.envelopes[0].content == CONTENT
    path = the_file(tmp_path / "rec")
    assert_no_secret(path)
    rec = load_transcript(path)
    assert rec.role == "server" and rec.peer is not None and rec.peer.startswith("[127.0.0.1]:")
    client, server = rec.sent("C"), rec.sent("S")
    assert b"AUTH LOGIN <redacted>\r\n<redacted>\r\nAUTH PLAIN <redacted>\r\n" in client
    assert CONTENT in client  # content is never redacted
    assert b"334 <redacted>\r\n" in server and server.count(b"334 ") == 1
    assert b"\r\n535 " in server and b"\r\n235 " in server
    assert (rec.records[-1].direction, rec.records[-1].event) == ("S", "eof")
    # Replayed to our own server and to aiosmtpd: the same codes everywhere
    # but at the lines whose secret was redacted.
    with RunningServer("threads", AuthRecorder(), settings=settings) as again:
        assert_differs_only_at_auth(replay_transcript(("127.0.0.1", again.port), rec))
    report = replay_transcript(("127.0.0.1", aiosmtpd_with_auth), path)
    assert_differs_only_at_auth(report)
    assert report.steps[0].replies[0].code == 220 and "Python SMTP" in report.steps[0].replies[0].text


def test_auth_line_split_across_reads_is_redacted_whole(tmp_path: Path) -> None:
    handler = AuthRecorder()
    with RunningServer("threads", handler, settings=fast_settings(allow_auth_without_tls=True),
                       record=tmp_path) as srv, RawClient(srv.address) as c:
        hello(c)
        line = b"AUTH PLAIN " + base64.b64encode(b"\0user\0secret") + b"\r\n"
        c.send(line[:16])
        time.sleep(0.2)  # two reads on the server side
        c.send(line[16:])
        assert c.reply()[0] == 235
        assert c.command(b"NOOP\r\n")[0] == 250
        c.send(b"QUIT\r\n")
        assert c.reply()[0] == 221
    assert handler.disconnected.wait(WAIT)
    path = the_file(tmp_path)
    assert_no_secret(path)
    rec = load_transcript(path)
    assert rec.sent("C") == b"EHLO client.test\r\nAUTH PLAIN <redacted>\r\nNOOP\r\nQUIT\r\n"


def test_auth_line_the_server_never_parsed_is_redacted_too(tmp_path: Path) -> None:
    # QUIT ends a pipelined group: the AUTH line behind it is never parsed
    # (a 554 synchronization error ends the session), yet it is recorded.
    handler = KeepAll()
    with RunningServer("threads", handler, record=tmp_path) as srv, RawClient(srv.address) as c:
        hello(c)
        c.send(b"QUIT\r\nAUTH PLAIN " + base64.b64encode(b"\0user\0secret") + b"\r\n")
        codes = [c.reply()[0], c.reply()[0]]
        assert codes == [221, 554] and c.closed()
    assert handler.disconnected.wait(WAIT)
    path = the_file(tmp_path)
    assert_no_secret(path)
    assert load_transcript(path).sent("C") == b"EHLO client.test\r\nQUIT\r\nAUTH PLAIN <redacted>\r\n"


def test_server_record_factory_and_a_client_that_just_leaves(tmp_path: Path) -> None:
    buffers: list[io.StringIO] = []
    peers: list[object] = []

    def factory(peer: object) -> Recorder:
        peers.append(peer)
        buffers.append(io.StringIO())
        return Recorder(buffers[-1], role="server", peer=peer)

    handler = KeepAll()
    with RunningServer("threads", handler, record=factory) as srv:
        with RawClient(srv.address) as c:
            hello(c)
            assert c.command(b"NOOP\r\n")[0] == 250
        assert handler.disconnected.wait(WAIT)
        assert len(buffers) == 1 and isinstance(peers[0], tuple)
        rec = load_transcript(io.StringIO(buffers[0].getvalue()))
        # The client closed first, then the server.
        assert [(r.direction, r.event) for r in rec.records[-2:]] == [("C", "eof"), ("S", "eof")]
        report = replay_transcript(("127.0.0.1", srv.port), rec)
    assert not report.recorded_closed
    assert report.matches and report.closed, format_report(report)  # we close our end as recorded


# ---------------------------------------------------------------- client adapters


@pytest.mark.parametrize("flavor", FLAVORS)
def test_client_adapter_records_a_session_with_auth_redacted_and_it_replays(
        flavor: str, tmp_path: Path, aiosmtpd_with_auth: int) -> None:
    path = tmp_path / "client.jsonl"
    config = Config(allow_auth_without_tls=True)
    settings = fast_settings(allow_auth_without_tls=True)

    async def scenario(make: Any) -> None:
        client = make("127.0.0.1", port, starttls="never", username="user", password="secret",
                      auth_mechanisms=["LOGIN"], config=config, local_hostname="c.example", timeout=WAIT,
                      chunking=False, record=str(path))
        await client.connect()
        result = await client.send_message(CONTENT, "a@x.example", ["b@y.example"])
        assert result.ok
        await client.quit()

    handler = AuthRecorder()
    with RunningServer("threads", handler, settings=settings) as srv:
        port = srv.port
        run_flavor(flavor, scenario)
        assert handler.delivered.wait(WAIT)
        assert_no_secret(path)
        rec = load_transcript(path)
        assert rec.role == "client" and not rec.implicit_tls
        client, server = rec.sent("C"), rec.sent("S")
        assert b"AUTH LOGIN" in client and client.count(b"<redacted>\r\n") >= 1
        assert CONTENT in client
        assert re.findall(rb"334 [^\r]*", server) == [b"334 <redacted>"] * server.count(b"334 ")
        assert (rec.records[-1].direction, rec.records[-1].event) == ("C", "eof")
        ours = replay_transcript(("127.0.0.1", srv.port), rec)
    assert_differs_only_at_auth(ours)
    assert_differs_only_at_auth(replay_transcript(("127.0.0.1", aiosmtpd_with_auth), rec))


@pytest.mark.parametrize("flavor", FLAVORS)
def test_client_closed_without_quit_completes_its_transcript(flavor: str, tmp_path: Path) -> None:
    # close() instead of quit(): the recording still ends with our side's eof
    # and the file is closed, not left to the garbage collector.
    path = tmp_path / "closed.jsonl"

    async def scenario(make: Any) -> None:
        client = make("127.0.0.1", port, starttls="never", local_hostname="c.example", timeout=WAIT,
                      record=str(path))
        await client.connect()
        assert (await client.send_message(CONTENT, "a@x.example", ["b@y.example"])).ok
        await client.close()
        rec = load_transcript(path)  # complete before the client object goes away
        assert (rec.records[-1].direction, rec.records[-1].event) == ("C", "eof")
        assert CONTENT in rec.sent("C") and b"QUIT" not in rec.sent("C")

    with RunningServer("threads", AuthRecorder(), settings=fast_settings()) as srv:
        port = srv.port
        run_flavor(flavor, scenario)


def test_starttls_is_recorded_on_both_sides_and_replayed_through(tmp_path: Path) -> None:
    handler = KeepAll()
    path = tmp_path / "client.jsonl"
    from smtpproto.adapters.sockets import SMTPClient

    with RunningServer("threads", handler, ssl_context=server_tls_context(), record=tmp_path / "srv") as srv:
        with SMTPClient("127.0.0.1", srv.port, starttls="required", ssl_context=client_tls_context(),
                        server_hostname="localhost", local_hostname="c.example", timeout=WAIT,
                        record=path) as client:
            client.send_message(CONTENT, "a@x.example", ["b@y.example"])
        assert handler.disconnected.wait(WAIT)
        server_file = the_file(tmp_path / "srv")
        for recorded in (load_transcript(path), load_transcript(server_file)):
            kinds = [r.event or r.direction for r in recorded.records]
            tls = kinds.index("starttls")
            assert b"STARTTLS\r\n" in b"".join(r.data for r in recorded.records[:tls])
            assert b"220 2.0.0 Ready to start TLS" in b"".join(r.data for r in recorded.records[:tls])
            assert b"EHLO c.example" in b"".join(r.data for r in recorded.records[tls:])
            report = replay_transcript(("127.0.0.1", srv.port), recorded, server_hostname="localhost")
            assert report.matches, format_report(report)
            assert any(s.starttls for s in report.steps)


# ---------------------------------------------------------------- malformed recordings


def test_malformed_recording_replays_and_shows_the_s15_difference(tmp_path: Path) -> None:
    # Our server refuses a command line with a bare LF (S-15); aiosmtpd splits
    # it in two and answers both (docs/fuzzing.md, "aiosmtpd 1.4.6").
    pytest.importorskip("aiosmtpd")
    with RunningServer("threads", KeepAll(), record=tmp_path) as srv:
        with RawClient(srv.address) as c:
            assert c.reply()[0] == 220
            assert c.command(b"EHLO c.example\nMAIL FROM:<>\r\n")[0] == 500
            assert c.command(b"QUIT\r\n")[0] == 221
        time.sleep(0.2)
        rec = load_transcript(the_file(tmp_path))
        assert rec.sent("C") == b"EHLO c.example\nMAIL FROM:<>\r\nQUIT\r\n"
        with socket.create_connection(("127.0.0.1", srv.port), timeout=WAIT) as sock:
            ours = replay_transcript(sock, rec)  # a socket we own
            assert sock.fileno() != -1
    assert ours.matches, format_report(ours)
    assert [r.code for r in ours.steps[1].replies] == [500]
    with aiosmtpd_server() as (port, _):
        theirs = replay_transcript(("127.0.0.1", port), rec)
    assert not theirs.matches
    assert [r.code for r in theirs.steps[1].replies] == [250]
    assert theirs.error is not None and "T-11" in theirs.error  # the MAIL's 250 had nothing to pair with
    assert "DIFFERS" in format_report(theirs) and "stopped:" in format_report(theirs)


def test_replay_of_a_server_that_stays_silent_times_out_per_step() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        rec = Recording("client", None, False, "", tuple(load_transcript(io.StringIO(
            '{"smtpproto-transcript": 1}\n'
            '{"t": 0, "dir": "S", "data": "220 hi\\r\\n"}\n'
            '{"t": 0, "dir": "C", "data": "NOOP\\r\\n"}\n'
            '{"t": 0, "dir": "S", "data": "250 ok\\r\\n"}\n')).records))
        t0 = time.monotonic()
        report = replay_transcript(("127.0.0.1", port), rec, timeout=0.3, settle=0.1)
        assert time.monotonic() - t0 < 3
    assert [len(s.replies) for s in report.steps] == [0, 0]
    assert [s.index for s in report.differences] == [0, 1] and report.error is None


# ---------------------------------------------------------------- command line


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "smtpproto", *args], capture_output=True, text=True,
                          timeout=60, env=env, cwd=str(ROOT))


def test_cli_send_record_and_replay(tmp_path: Path) -> None:
    path = tmp_path / "send.jsonl"
    with RunningServer("threads", KeepAll()) as srv:
        out, err = io.StringIO(), io.StringIO()
        code = main_send(["--server", f"127.0.0.1:{srv.port}", "--from", "a@x.example", "--to", "b@y.example",
                          "--subject", "s", "--body", "hi", "--record", str(path)], stdout=out, stderr=err)
        assert (code, err.getvalue()) == (0, "")
        assert load_transcript(path).role == "client"
        good = run_cli("replay", str(path), f"127.0.0.1:{srv.port}")
        assert good.returncode == 0, good.stderr
        assert "all replies match" in good.stdout
        as_json = run_cli("replay", "--json", str(path), f"127.0.0.1:{srv.port}")
        data = json.loads(as_json.stdout)
        assert as_json.returncode == 0 and data["matches"] is True and data["steps"][0]["recorded"][0].startswith("220")
    # The same transcript to a server that refuses every recipient differs.
    refusing = AuthRecorder()
    refusing.on_rcpt = lambda session, rcpt: False  # type: ignore[method-assign, assignment]
    with RunningServer("threads", refusing) as srv:
        bad = run_cli("replay", str(path), f"127.0.0.1:{srv.port}")
    assert bad.returncode == 1 and "DIFFERS" in bad.stdout, bad.stdout
    missing = run_cli("replay", str(tmp_path / "nope.jsonl"), "127.0.0.1:1")
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead_port = closed.getsockname()[1]
    unreachable = run_cli("replay", str(path), f"127.0.0.1:{dead_port}")
    assert unreachable.returncode == 2 and "cannot connect" in unreachable.stderr
    assert run_cli("replay", str(path)).returncode == 2  # usage


def test_cli_send_record_to_an_unwritable_path_is_a_usage_error(tmp_path: Path) -> None:
    err = io.StringIO()
    code = main_send(["--server", "127.0.0.1:1", "--from", "a@x.example", "--to", "b@y.example",
                      "--record", str(tmp_path / "no" / "such" / "dir.jsonl")], stdout=io.StringIO(), stderr=err)
    assert code == 2 and "--record" in err.getvalue()


def test_cli_serve_record(tmp_path: Path) -> None:
    from test_cli_serve import Serve

    s = Serve("--backend", "threads", "--record", str(tmp_path / "rec"))
    try:
        smtplib_plain = smtplib.SMTP("127.0.0.1", s.port, timeout=WAIT)
        with smtplib_plain as client:
            client.sendmail("a@x.example", ["b@y.example"], CONTENT)
        s.wait_for("END MESSAGE")
    finally:
        code, _, err = s.stop()
    assert code == 0, err
    rec = load_transcript(the_file(tmp_path / "rec"))
    assert rec.role == "server" and CONTENT in rec.sent("C")
    bad = run_cli("serve", "--record", str(the_file(tmp_path / "rec")))  # a file, not a directory
    assert bad.returncode == 2 and "--record" in bad.stderr


# ---------------------------------------------------------------- the docs


def _doc_blocks() -> list[str]:
    page = (ROOT / "docs" / "fuzzing.md").read_text(encoding="utf-8")
    mine = page[page.index("## Raw mode"):]  # Raw mode and Record and replay close the page
    return re.findall(r"^```py\n(.*?)^```", mine, re.DOTALL | re.MULTILINE)


def test_the_docs_examples_run() -> None:
    blocks = _doc_blocks()
    assert len(blocks) == 2
    for code in blocks:
        exec(compile(code, "<docs/fuzzing.md example>", "exec"), {})
