"""The client examples run against a loopback server (our own server Connection)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "adapters"))

from test_client_support import HAVE_TRIO, CoreServer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def run_example(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "examples" / name), *args],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_send_blocking() -> None:
    with CoreServer() as srv:
        proc = run_example("send_blocking.py", f"127.0.0.1:{srv.port}")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["bob@example.net: 250 2.0.0 queued", "archive@example.org: 250 2.0.0 queued"]
    [msg] = srv.messages
    assert msg.recipients == ["bob@example.net", "archive@example.org"]
    assert b"archive@example.org" not in msg.content and b"minutes.txt" in msg.content


@pytest.mark.parametrize("name", ["send_asyncio.py", pytest.param("send_trio.py", marks=pytest.mark.skipif(
    not HAVE_TRIO, reason="trio is not installed (pip install 'smtpproto[trio]')"))])
def test_send_concurrently(name: str) -> None:
    with CoreServer() as srv:
        proc = run_example(name, f"127.0.0.1:{srv.port}")
    assert proc.returncode == 0, proc.stderr
    assert sorted(proc.stdout.splitlines()) == [f"team{n}@example.net: 250 2.0.0 queued" for n in (1, 2, 3)]
    assert sorted(m.recipients[0] for m in srv.messages) == [f"team{n}@example.net" for n in (1, 2, 3)]


def test_bulk_sender_pipelining() -> None:
    with CoreServer(extensions=["PIPELINING", "8BITMIME"]) as srv:
        proc = run_example("bulk_sender_pipelining.py", f"127.0.0.1:{srv.port}", "50")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "server offers PIPELINING: True"
    assert lines[1].startswith("send_message : 25 messages in ") and lines[1].endswith(
        "round trips per message: 2.00")
    # The last message's final reply is one more read: 26 for 25 messages.
    assert lines[2].startswith("send_messages: 25 messages in ") and lines[2].endswith(
        "round trips per message: 1.04")
    assert lines[3] == "sent 50/50 messages to 5 recipients each"
    assert len(srv.messages) == 50 and all(len(m.recipients) == 5 for m in srv.messages)
    assert [m.content.split(b"Subject: Newsletter #", 1)[1].split(b"\r\n", 1)[0] for m in srv.messages] == \
        [str(n).encode() for n in range(50)]


def test_in_memory_session() -> None:
    proc = run_example("in_memory_session.py")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    # The whole exchange, both sides, with no socket: from greeting to QUIT.
    assert out.startswith("S: b'220 ") and "C: b'MAIL FROM:<alice@example.org>\\r\\n'" in out
    assert "server event: Data()" in out and "C: b'QUIT\\r\\n'" in out
    received = out.split("message as the server received it:\n", 1)[1]
    assert "\n.this line starts with a dot (it gets dot-stuffed on the wire)\n" in received  # unstuffed again
