"""CPU per message of the blocking clients themselves: SMTPClient vs smtplib.

No network, no server process: each client talks to an in-process fake socket
that answers with canned replies (PIPELINING, 8BITMIME, ENHANCEDSTATUSCODES
offered), so what is timed is only the client's own Python (and C) work per
message: the state machine, reply parsing, checks, dot-stuffing — and for
smtplib its four command/reply exchanges.  ``time.process_time``, best of
several rounds.

Why it exists: with client and server on one CPU, ``bench_client.py`` measures
everything both processes spend per message, and a round trip there costs
almost nothing, so the pipelining client's advantage (fewer round trips) goes
away and this per-message CPU decides (see benchmarks/README.md).

    python benchmarks/bench_client_cpu.py [--quick]
"""

from __future__ import annotations

import argparse
import io
import platform
import smtplib
import socket
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_client import HELO, RECIPIENT, SENDER, make_message  # noqa: E402

from smtpproto.adapters.sockets import SMTPClient  # noqa: E402

GREETING = b"220 sink.example ESMTP\r\n"
_GROUP_REPLIES = b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go ahead\r\n"
EHLO = b"250-sink.example\r\n250-PIPELINING\r\n250-SIZE 0\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n"


class _FakeServer:
    """The replies a pipelining-capable server would give, by what was written."""

    def __init__(self) -> None:
        self.out: list[bytes] = [GREETING]

    def written(self, data: bytes) -> None:
        verb = data[:4].upper()
        if verb in (b"EHLO", b"HELO"):
            self.out.append(EHLO)
        elif verb == b"MAIL":
            # A pipelining client sends MAIL, RCPT and DATA in one write (one
            # recipient here) and gets the three replies at once; smtplib
            # sends MAIL alone.
            self.out.append(_GROUP_REPLIES if data.endswith(b"DATA\r\n") else b"250 2.1.0 Ok\r\n")
        elif verb == b"RCPT":
            self.out.append(b"250 2.1.5 Ok\r\n")
        elif verb == b"DATA":
            self.out.append(b"354 go ahead\r\n")
        elif data.endswith(b"\r\n.\r\n"):
            self.out.append(b"250 2.0.0 Ok: queued\r\n")
        elif verb == b"QUIT":
            self.out.append(b"221 2.0.0 Bye\r\n")
        elif verb == b"RSET" or verb == b"NOOP":
            self.out.append(b"250 2.0.0 Ok\r\n")
        else:
            raise AssertionError(f"unexpected write {data[:40]!r}")

    def read(self) -> bytes:
        return self.out.pop(0)


class FakeSocket:
    """Enough of socket.socket for SMTPClient(sock=...)."""

    family = socket.AF_INET

    def __init__(self) -> None:
        self.server = _FakeServer()
        self._timeout: float | None = None

    def settimeout(self, timeout: float | None) -> None:
        self._timeout = timeout

    def gettimeout(self) -> float | None:
        return self._timeout

    def setsockopt(self, *args: Any) -> None:
        pass

    def getsockname(self) -> tuple[str, int]:
        return ("127.0.0.1", 2525)

    def fileno(self) -> int:
        return -1

    def close(self) -> None:
        pass

    def sendall(self, data: bytes) -> None:
        self.server.written(bytes(data))

    def recv(self, size: int) -> bytes:
        return self.server.read()


class _Raw(io.RawIOBase):
    def __init__(self, server: _FakeServer) -> None:
        self.server = server

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.server.read()
        buffer[: len(data)] = data
        return len(data)


class _SmtplibSocket(FakeSocket):
    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(_Raw(self.server))


class _FakeSMTP(smtplib.SMTP):
    def _get_socket(self, host: str, port: int, timeout: float) -> Any:
        return _SmtplibSocket()


def run_ours(message: bytes, count: int) -> None:
    with SMTPClient(sock=FakeSocket(), starttls="never", local_hostname=HELO, timeout=120) as client:  # type: ignore[arg-type]
        for _ in range(count):
            if not client.send_message(message, SENDER, [RECIPIENT]).ok:
                raise AssertionError("not delivered")


def run_smtplib(message: bytes, count: int) -> None:
    client = _FakeSMTP()
    client.connect("sink.example", 25)
    client.ehlo(HELO)
    for _ in range(count):
        if client.sendmail(SENDER, [RECIPIENT], message):
            raise AssertionError("not delivered")
    client.quit()


def best_us_per_message(run: Callable[[bytes, int], None], message: bytes, count: int, rounds: int) -> float:
    run(message, max(count // 10, 10))  # warm up
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        run(message, count)
        best = min(best, time.process_time() - start)
    return 1e6 * best / count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    args = parser.parse_args()
    count, rounds = (300, 2) if args.quick else (3000, 7)
    print(f"Python {platform.python_version()} on {platform.machine()}; {count} messages per round, "
          f"best of {rounds}; CPU time of this process (no server, no network)")
    for size in (2048, 64 * 1024):
        message = make_message(size)
        ours = best_us_per_message(run_ours, message, count, rounds)
        theirs = best_us_per_message(run_smtplib, message, count, rounds)
        print(f"  {size // 1024:>3} KiB  smtpproto SMTPClient {ours:8.1f} us/message   "
              f"smtplib {theirs:8.1f} us/message   RATIO smtplib/ours {theirs / ours:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
