"""Smoke run of the peer benchmarks: each script with --quick exits 0 and prints its ratio lines.

Not a timing test: nothing here depends on how fast anything is. It needs Postfix's
smtp-source / smtp-sink (and aiosmtpd / aiosmtplib for the ratios), hence ``interop``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

pytestmark = [pytest.mark.slow, pytest.mark.interop]


def _tool(name: str) -> str:
    found = shutil.which(name) or (f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None)
    if found is None:
        pytest.skip(f"{name} (Postfix) is not installed")
    return found


def _run(script: str) -> str:
    pytest.importorskip("aiosmtpd")
    pytest.importorskip("aiosmtplib")
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=240,
        cwd=BENCHMARKS.parent,
    )
    output = result.stdout.decode(errors="replace")
    assert result.returncode == 0, output
    return output


def test_bench_server_quick() -> None:
    _tool("smtp-source")
    output = _run("bench_server.py")
    assert "Python " in output and "shared machine" in output
    assert "RATIOS asyncio vs aiosmtpd: (a) messages/s" in output, output
    assert "(b) MB/s" in output and "(c) peak RSS" in output, output


def test_bench_client_quick() -> None:
    _tool("smtp-sink")
    output = _run("bench_client.py")
    assert "Python " in output and "shared machine" in output
    assert "RATIO smtpproto SMTPClient / smtplib:" in output, output
    assert "RATIO smtpproto AsyncSMTPClient / aiosmtplib:" in output, output
    assert output.count("RATIO   same, send_messages / smtplib:") == 4, output  # (a) twice, (b), (d)
    assert "DELAYED" in output, output


def test_bench_client_cpu_quick() -> None:
    # No peer needed (fake in-process sockets); kept with the other benchmarks.
    result = subprocess.run([sys.executable, str(BENCHMARKS / "bench_client_cpu.py"), "--quick"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=240, cwd=BENCHMARKS.parent)
    output = result.stdout.decode(errors="replace")
    assert result.returncode == 0, output
    assert output.count("RATIO smtplib/ours") == 2, output
