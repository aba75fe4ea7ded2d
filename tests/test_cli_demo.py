"""``python -m smtpproto demo``: the README's first command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_demo_runs_and_reads_well() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, "-m", "smtpproto", "demo"], capture_output=True, text=True,
                            timeout=60, env=env, cwd=str(ROOT))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert result.stderr == ""
    # The transcript: greeting, EHLO, AUTH (redacted), the transaction, QUIT.
    assert "S: 220 server.demo.test ESMTP smtpproto" in out
    assert "C: EHLO client.demo.test" in out
    assert "C: AUTH PLAIN <redacted>" in out
    assert "S: 235 2.7.0 Authentication successful" in out
    assert "C: MAIL FROM:<alice@sender.test>" in out
    assert "C: QUIT" in out and "S: 221 2.0.0 Bye" in out
    assert "demo-password" not in out and "ZGVtbw" not in out  # no secret, not even base64
    # The parsed message: structure, text and the attachment.
    assert "multipart/mixed" in out and "multipart/alternative" in out
    assert 'text/csv  (attachment "numbers.csv"' in out
    assert "  | The numbers are attached." in out
    assert "  | Reykjavik,139875" in out
    assert "stored bytes identical to the bytes sent: yes" in out
    assert all(len(line) <= 100 for line in out.splitlines())


def test_demo_rejects_arguments() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, "-m", "smtpproto", "demo", "--bogus"], capture_output=True,
                            text=True, timeout=60, env=env, cwd=str(ROOT))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
