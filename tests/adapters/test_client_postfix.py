"""Interop tier: the three client facades sending to Postfix's ``smtp-sink``
and to a full Postfix ``smtpd`` that relays to a recording aiosmtpd, checking
that each message arrives byte-exact (the trace headers the relay adds aside).

Needs Postfix (``apt-get install postfix``) and root for the full instance;
skips with the reason otherwise (``.ci/run`` installs it, so there it runs).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from test_client_support import (  # noqa: E402
    FLAVORS,
    Cert,
    RecordingHandler,
    aiosmtpd_server,
    free_port,
    make_cert,
    run_flavor,
)

from smtpproto.adapters._client_flow import SMTPRecipientsRefused  # noqa: E402

pytestmark = pytest.mark.interop
Make = Callable[..., Any]
SBIN = ["/usr/sbin", "/usr/local/sbin", "/sbin"]


def _tool(name: str) -> str | None:
    return shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), *SBIN]))


def _wait_port(port: int, deadline: float = 10.0) -> None:
    import socket

    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


MESSAGE = (b"From: Alice <alice@x.example>\r\nTo: bob@y.example\r\nSubject: interop\r\n"
           b"Date: Sun, 29 Nov 2026 10:00:00 +0000\r\nMessage-ID: <interop.1@x.example>\r\n\r\n"
           b".leading dot\r\n..two\r\n\r\n.\r\nend of body\r\n")
UTF8 = ("From: Jörg <jörg@bücher.example>\r\nTo: zoë@bücher.example\r\nSubject: Grüße\r\n"
        "Date: Sun, 29 Nov 2026 10:00:00 +0000\r\nMessage-ID: <interop.2@x.example>\r\n\r\n"
        "Ärger über Öl\r\n").encode()


# ------------------------------------------------------------------ smtp-sink


@pytest.fixture
def smtp_sink() -> Iterator[tuple[int, Path]]:
    sink = _tool("smtp-sink")
    if sink is None:
        pytest.skip("Postfix smtp-sink not installed (apt-get install postfix)")
    # smtp-sink drops to "nobody" when started as root: the dump directory (and
    # the path to it) must be reachable for that user, so not under tmp_path.
    dump = Path(tempfile.mkdtemp(prefix="smtpproto-sink-"))
    dump.chmod(0o777)
    port = free_port()
    args = [sink, "-t", "10"]
    if os.geteuid() == 0:
        args += ["-u", "nobody"]
    proc = subprocess.Popen([*args, "-d", f"{dump}/%M.", f"127.0.0.1:{port}", "16"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_port(port)
        yield port, dump
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(dump, ignore_errors=True)


def _sink_messages(dump: Path, count: int) -> list[bytes]:
    end = time.monotonic() + 10
    while time.monotonic() < end:
        files = sorted(dump.iterdir())
        if len(files) >= count:
            time.sleep(0.2)  # let the last one be closed
            return [f.read_bytes() for f in sorted(dump.iterdir())]
        time.sleep(0.05)
    raise AssertionError(f"smtp-sink stored {len(list(dump.iterdir()))} of {count} messages")


def _sink_content(dumped: bytes) -> tuple[dict[str, list[str]], bytes]:
    """smtp-sink's X- records and the message as received (its dump uses LF)."""
    head, sep, rest = dumped.partition(b"\nReceived: ")
    assert sep, dumped[:200]
    records: dict[str, list[str]] = {}
    for line in head.decode().splitlines():
        name, _, value = line.partition(": ")
        records.setdefault(name, []).append(value)
    # The Received record is three lines; the message follows, then an empty line.
    body = rest.split(b"\n", 3)[3]
    assert body.endswith(b"\n")
    return records, body[:-1]


@pytest.mark.parametrize("flavor", FLAVORS)
def test_smtp_sink_byte_exact_and_pipelined(flavor: str, smtp_sink: tuple[int, Path]) -> None:
    port, dump = smtp_sink
    lines: list[str] = []

    async def scenario(make: Make) -> Any:
        async with make("127.0.0.1", port, starttls="never", timeout=20,
                        transcript=lambda d, line: lines.append(f"{d}: {line}")) as client:
            first = await client.send_message(MESSAGE, recipients=["bob@y.example", "carol@y.example"])
            second = await client.send_message(b"Subject: 8bit\r\n\r\n\xc3\xa4\r\n", "a@x.example", ["d@y.example"])
            return first, second

    first, second = run_flavor(flavor, scenario)
    assert first.ok and second.ok
    dumps = _sink_messages(dump, 2)
    got = [_sink_content(d) for d in dumps]
    by_subject = {b"interop" in body: (rec, body) for rec, body in got}
    rec, body = by_subject[True]
    assert body == MESSAGE.replace(b"\r\n", b"\n")
    assert rec["X-Rcpt-Args"] == ["<bob@y.example>", "<carol@y.example>"]
    assert rec["X-Mail-Args"] == ["<alice@x.example>"]
    rec8, body8 = by_subject[False]
    assert rec8["X-Mail-Args"] == ["<a@x.example> BODY=8BITMIME"] and body8 == b"Subject: 8bit\n\n\xc3\xa4\n"
    # smtp-sink offers PIPELINING: MAIL, both RCPTs and DATA went out before any reply.
    i = lines.index("C: MAIL FROM:<alice@x.example>")
    assert lines[i + 1 : i + 4] == ["C: RCPT TO:<bob@y.example>", "C: RCPT TO:<carol@y.example>", "C: DATA"]


@pytest.mark.parametrize("flavor", FLAVORS)
def test_smtp_sink_send_messages_grouped(flavor: str, smtp_sink: tuple[int, Path]) -> None:
    """send_messages against a real server: each end of data goes in one write
    with the next envelope (RFC 2920 §3.1), smtp-sink takes every message
    byte-exact, one round trip per message."""
    port, dump = smtp_sink
    count = 30
    messages = [MESSAGE.replace(b"Subject: interop", b"Subject: batch %02d" % i)
                + b".a dotted line %d\r\n" % i for i in range(count)]

    async def scenario(make: Make) -> Any:
        async with make("127.0.0.1", port, starttls="never", timeout=20) as client:
            assert client.extensions.pipelining and not client.extensions.chunking
            before = client.session.round_trips
            outcomes = await client.send_messages((m, "alice@x.example", ["bob@y.example"]) for m in messages)
            return outcomes, client.session.round_trips - before

    outcomes, trips = run_flavor(flavor, scenario)
    assert [type(o).__name__ for o in outcomes] == ["SendResult"] * count and all(o.ok for o in outcomes)
    assert trips == count + 1  # the first envelope, then one per message
    bodies = sorted(_sink_content(d)[1] for d in _sink_messages(dump, count))
    assert bodies == sorted(m.replace(b"\r\n", b"\n") for m in messages)


# ------------------------------------------------------------------ full Postfix


@pytest.fixture(scope="module")
def postfix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Cert, RecordingHandler]]:
    postfix_bin, postconf = _tool("postfix"), _tool("postconf")
    if postfix_bin is None or postconf is None or not Path("/etc/postfix/master.cf").exists():
        pytest.skip("Postfix not installed (apt-get install postfix)")
    if os.geteuid() != 0:
        pytest.skip("a private Postfix instance needs root (its master runs as root)")
    # Postfix's daemons run as "postfix": the instance must not live under
    # pytest's private (0700) temporary directory.
    base = Path(tempfile.mkdtemp(prefix="smtpproto-postfix-"))
    base.chmod(0o755)
    etc, queue, data = base / "etc", base / "queue", base / "data"
    for d in (etc, queue, data):
        d.mkdir()
    shutil.chown(data, "postfix")
    cert = make_cert(etc)
    shutil.copy("/etc/postfix/master.cf", etc / "master.cf")
    handler = RecordingHandler(refuse=set())
    with aiosmtpd_server(handler) as (relay_port, _):
        port = free_port()
        main_cf = f"""
compatibility_level = 3.6
queue_directory = {queue}
data_directory = {data}
meta_directory = /etc/postfix
maillog_file_prefixes = /var, /dev/stdout, {base}
maillog_file = {base}/maillog
myhostname = postfix.localhost
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions = check_recipient_access inline:{{ {{ refused@y.example = REJECT no such user }} }}
relayhost = [127.0.0.1]:{relay_port}
default_transport = smtp
relay_transport = smtp
smtp_tls_security_level = none
alias_maps =
alias_database =
local_header_rewrite_clients =
smtputf8_enable = yes
message_size_limit = 0
mailbox_size_limit = 0
smtpd_tls_security_level = may
smtpd_tls_cert_file = {cert.cert}
smtpd_tls_key_file = {cert.key}
"""
        (etc / "main.cf").write_text(main_cf)
        cfg = ["-c", str(etc)]
        def run(*a: str) -> None:
            proc = subprocess.run(a, capture_output=True, text=True, timeout=60)
            if proc.returncode:
                log = (base / "maillog").read_text() if (base / "maillog").exists() else ""
                raise RuntimeError(f"{' '.join(a)} failed: {proc.stderr.strip()} {log[-2000:]}")

        run(postconf, *cfg, "-MX", "smtp/inet")
        run(postconf, *cfg, "-M", f"127.0.0.1:{port}/inet=127.0.0.1:{port} inet n - n - - smtpd")
        run(postconf, *cfg, "-F", "*/*/chroot=n")
        run(postfix_bin, *cfg, "check")
        run(postfix_bin, *cfg, "start")
        try:
            _wait_port(port)
            yield port, cert, handler
        finally:
            subprocess.run([postfix_bin, *cfg, "stop"], capture_output=True, timeout=60)
            shutil.rmtree(base, ignore_errors=True)


def _relayed(handler: RecordingHandler, marker: bytes, timeout: float = 30.0) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for m in handler.messages:
            if marker in m.content:
                return m
        time.sleep(0.05)
    raise AssertionError(f"Postfix did not relay the message with {marker!r}")


def _without_trace(content: bytes) -> bytes:
    """Drop the Received: field(s) Postfix put on top."""
    while content.startswith(b"Received:"):
        end = content.index(b"\r\n")
        while content[end + 2 : end + 3] in (b" ", b"\t"):
            end = content.index(b"\r\n", end + 2)
        content = content[end + 2 :]
    return content


@pytest.mark.parametrize("flavor", FLAVORS)
def test_full_postfix_starttls_chunking_smtputf8(flavor: str, postfix: tuple[int, Cert, RecordingHandler],
                                                 tmp_path: Path) -> None:
    port, cert, handler = postfix
    lines: list[str] = []
    tag = f"{flavor}-{time.monotonic_ns()}".encode()
    plain = MESSAGE.replace(b"Subject: interop", b"Subject: interop " + tag)
    utf8 = UTF8.replace("Grüße".encode(), "Grüße ".encode() + tag)
    big = tmp_path / "big.eml"
    big.write_bytes(b"From: a@x.example\r\nTo: big@y.example\r\nSubject: big " + tag
                    + b"\r\nDate: Sun, 29 Nov 2026 10:00:00 +0000\r\nMessage-ID: <big@x.example>\r\n\r\n"
                    + b"".join(b"%07d " % i + b"z" * 60 + b"\r\n" for i in range(40000)))

    async def scenario(make: Make) -> Any:
        async with make("127.0.0.1", port, starttls="required", ssl_context=cert.client_context(),
                        server_hostname="localhost", timeout=30,
                        transcript=lambda d, line: lines.append(f"{d}: {line}")) as client:
            assert client.tls_active and client.extensions.chunking and client.extensions.pipelining
            a = await client.send_message(plain, recipients=["bob@y.example", "refused@y.example"])
            b = await client.send_message(utf8)
            with open(big, "rb") as f:
                c = await client.send_message(f)
            with pytest.raises(SMTPRecipientsRefused):
                await client.send_message(plain, recipients=["refused@y.example"])
            return a, b, c

    a, b, c = run_flavor(flavor, scenario)
    assert a.accepted == ["bob@y.example"] and a.refused["refused@y.example"].code == 554
    assert a.body == b.body == c.body == "BDAT"
    assert b.mail_params.get("SMTPUTF8", "x") is None
    assert any(line.startswith("C: BDAT ") and line.endswith(" LAST") for line in lines)
    mails = [line for line in lines if line.startswith("C: MAIL FROM:")]
    assert all(" SIZE=" in line for line in mails) and any("SMTPUTF8" in line for line in mails)
    assert f"C: MAIL FROM:<a@x.example> SIZE={big.stat().st_size}" in lines
    got = _relayed(handler, b"interop " + tag)
    assert _without_trace(got.content) == plain and got.rcpt_tos == ["bob@y.example"]
    got8 = _relayed(handler, "Grüße ".encode() + tag)
    assert _without_trace(got8.content) == utf8 and got8.smtp_utf8
    gotbig = _relayed(handler, b"big " + tag)
    assert _without_trace(gotbig.content) == big.read_bytes()


@pytest.mark.parametrize("flavor", FLAVORS)
def test_full_postfix_send_messages_grouped(flavor: str, postfix: tuple[int, Cert, RecordingHandler]) -> None:
    """A real Postfix smtpd takes the next MAIL in the same group as the end of
    data (RFC 2920 §3.1): a batch over STARTTLS with CHUNKING turned off on our
    side, a refused recipient in the middle, every other message relayed
    byte-exact."""
    port, cert, handler = postfix
    tag = f"{flavor}-{time.monotonic_ns()}".encode()
    messages = [MESSAGE.replace(b"Subject: interop", b"Subject: grouped %d " % i + tag) for i in range(6)]
    rcpts = [["bob@y.example"]] * 6
    rcpts[3] = ["refused@y.example"]

    async def scenario(make: Make) -> Any:
        async with make("127.0.0.1", port, starttls="required", ssl_context=cert.client_context(),
                        server_hostname="localhost", timeout=30, chunking=False) as client:
            assert client.tls_active and client.extensions.pipelining
            before = client.session.round_trips
            outcomes = await client.send_messages(zip(messages, [None] * 6, rcpts))
            return outcomes, client.session.round_trips - before

    outcomes, trips = run_flavor(flavor, scenario)
    assert [type(o).__name__ for o in outcomes] == ["SendResult"] * 3 + ["SMTPRecipientsRefused"] + ["SendResult"] * 2
    assert all(o.ok and o.body == "DATA" for i, o in enumerate(outcomes) if i != 3)
    assert outcomes[3].recipients["refused@y.example"].code == 554
    assert trips <= len(messages) + 3  # one per message, plus the refused one's ending
    for i, m in enumerate(messages):
        if i == 3:
            continue
        got = _relayed(handler, b"grouped %d " % i + tag)
        assert _without_trace(got.content) == m and got.rcpt_tos == ["bob@y.example"]
    assert not any(b"grouped 3 " + tag in m.content for m in handler.messages)
