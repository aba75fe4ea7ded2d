"""Server benchmark: smtpproto's servers side by side with aiosmtpd, fed by Postfix's smtp-source.

    python benchmarks/bench_server.py               # full run (a few minutes)
    python benchmarks/bench_server.py --quick       # smaller counts, a smoke run (< 1 minute)
    python benchmarks/bench_server.py --skip-peers  # without smtp-source: memory only

Every server runs as its own subprocess on 127.0.0.1 with a handler that accepts and
forgets each message (smtpproto: ``SinkHandler``; aiosmtpd: ``aiosmtpd.handlers.Sink``),
so the peak RSS read from /proc/PID/status (VmHWM) is the server's own. In one run:

(a) ``smtp-source -s 4 -m 20000 -l 2048``: 20,000 messages of 2 KB, 4 sessions in
    parallel (smtp-source opens a new connection per message) -> messages/s;
(a') the same with ``-d``: 4 connections, each reused for its share of the messages;
(b) ``smtp-source -s 1 -m 100 -l 5242880``: 100 messages of 5 MiB -> MB/s (10^6 B/s);
(c) a fresh server process receives one 100 MiB message by DATA -> peak RSS.

All servers run at once (idle but for the one being fed); (a), (a') and (b) are each cut
into 5 slices (``-m 4000``, ``-m 20``) and the servers take turns slice by slice, so a change
in the machine's other load hits them all alike. A rate is the total over the summed time.

Ratios are against aiosmtpd measured in the same run. Goals (issue 5): >= 2x aiosmtpd's
messages/s, >= 3x its MB/s, peak RSS < 64 MiB for the 100 MiB message.

``floor`` is no SMTP server but a reference: an asyncio protocol that answers every line
with a canned reply and only looks for the end of DATA.  Its ratio is the most any
asyncio server can reach on this machine, whatever its protocol code costs.
This is a script, not a test: numbers vary with the machine's other load.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from collections.abc import Callable
from typing import BinaryIO

ROOT = Path(__file__).resolve().parents[1]
MIB = 1024 * 1024
SERVERS = ("asyncio", "threads", "trio", "aiosmtpd", "floor")
LABELS = {
    "asyncio": "smtpproto asyncio",
    "threads": "smtpproto threads",
    "trio": "smtpproto trio",
    "aiosmtpd": "aiosmtpd (Sink)",
    "floor": "floor (canned)",
}
MAX_SIZE = 256 * MIB  # every server accepts the 100 MiB message


# --------------------------------------------------------------------------- child: one server


def _announce(address: object) -> None:
    port = address[1] if isinstance(address, tuple) else address
    print(f"listening on 127.0.0.1:{port}", flush=True)


def _on_stdin_eof(stop: Callable[[], None]) -> Callable[[], None]:
    """A reader callback for stdin that calls ``stop`` at EOF (the parent went away)."""

    def readable() -> None:
        if not os.read(sys.stdin.fileno(), 1):
            stop()

    return readable


def serve(kind: str) -> None:
    """Run one server until SIGTERM (or until stdin closes: the parent is gone)."""
    sys.path.insert(0, str(ROOT))
    if kind == "aiosmtpd":
        _serve_aiosmtpd()
        return
    if kind == "floor":
        _serve_floor()
        return
    from smtpproto import Config
    from smtpproto.adapters import ServerSettings
    from smtpproto.adapters.handlers import SinkHandler

    settings = ServerSettings(config=Config(max_message_size=MAX_SIZE), hostname="bench.example")
    handler = SinkHandler()
    if kind == "threads":
        import threading

        from smtpproto.adapters.sockets import SMTPServer

        server = SMTPServer(handler, port=0, settings=settings)
        server.start()
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())

        def watch_stdin() -> None:
            sys.stdin.read()
            stop.set()

        threading.Thread(target=watch_stdin, daemon=True).start()
        _announce(server.address)
        stop.wait()
        server.shutdown(timeout=2)
    elif kind == "asyncio":
        import asyncio

        from smtpproto.adapters.asyncio import AsyncSMTPServer

        async def main() -> None:
            server = AsyncSMTPServer(handler, port=0, settings=settings)
            await server.start()
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGTERM, stop.set)
            loop.add_reader(sys.stdin.fileno(), _on_stdin_eof(stop.set))
            _announce(server.address)
            await stop.wait()
            await server.shutdown(timeout=2)

        asyncio.run(main())
    elif kind == "trio":
        import trio  # type: ignore[import-untyped,unused-ignore]

        from smtpproto.adapters.trio import TrioSMTPServer

        async def main_trio() -> None:
            server = TrioSMTPServer(handler, port=0, settings=settings)
            async with trio.open_nursery() as nursery:
                address = await nursery.start(server.serve)
                _announce(address)
                with trio.open_signal_receiver(signal.SIGTERM) as signals:
                    async for _ in signals:
                        break
                await server.shutdown(timeout=2)

        trio.run(main_trio)
    else:
        raise SystemExit(f"unknown server {kind!r}")


def _serve_aiosmtpd() -> None:
    from aiosmtpd.handlers import Sink
    from aiosmtpd.smtp import SMTP

    _serve_protocol(lambda: SMTP(Sink(), hostname="bench.example", data_size_limit=MAX_SIZE))


def _serve_protocol(factory: Callable[[], object]) -> None:
    """Serve an asyncio protocol on a free loopback port until SIGTERM or
    until stdin closes."""
    import asyncio

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(factory, "127.0.0.1", 0)  # type: ignore[arg-type]
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_reader(sys.stdin.fileno(), _on_stdin_eof(stop.set))
        _announce(server.sockets[0].getsockname())
        await stop.wait()
        server.close()

    asyncio.run(main())


def _serve_floor() -> None:
    """Not an SMTP server: an asyncio protocol that answers each line with a
    canned reply and finds the end of DATA, nothing else.  No parsing, no
    checks, no handler: what asyncio and the kernel cost per message on this
    machine, the floor under any asyncio server's figures."""
    import asyncio

    class Canned(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            self.transport = transport
            self.buf = b""
            self.in_data = False
            transport.write(b"220 bench.example ESMTP\r\n")

        def data_received(self, data: bytes) -> None:
            buf = self.buf + data
            while buf:
                if self.in_data:
                    end = buf.find(b"\r\n.\r\n")
                    if end < 0:
                        buf = buf[-4:]  # all that may begin the terminator
                        break
                    buf, self.in_data = buf[end + 5:], False
                    self.transport.write(b"250 ok\r\n")
                    continue
                end = buf.find(b"\r\n")
                if end < 0:
                    break
                verb, buf = buf[:4].upper(), buf[end + 2:]
                if verb == b"EHLO":
                    self.transport.write(b"250-bench.example\r\n250 PIPELINING\r\n")
                elif verb == b"DATA":
                    self.in_data = True
                    buf = b"\r\n" + buf  # the CRLF before "." may be the first two octets
                    self.transport.write(b"354 go\r\n")
                elif verb == b"QUIT":
                    self.transport.write(b"221 bye\r\n")
                    self.transport.close()
                    break
                else:
                    self.transport.write(b"250 ok\r\n")
            self.buf = buf

    _serve_protocol(Canned)


# --------------------------------------------------------------------------- parent


def _die_with_parent() -> None:
    """In the child before exec: get SIGKILL if the benchmark itself dies (Linux)."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class Running:
    """Every process this script started, ended on exit whatever happens."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start_server(self, kind: str) -> tuple[subprocess.Popen[bytes], int]:
        proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--_serve", kind],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            preexec_fn=_die_with_parent,
        )
        self.procs.append(proc)
        assert proc.stdout is not None
        deadline = time.monotonic() + 30
        line = b""
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line or line.startswith(b"listening on"):
                break
        match = re.search(rb":(\d+)\s*$", line)
        if not match:
            self.stop(proc)
            raise RuntimeError(f"{kind} server did not start (said {line!r})")
        return proc, int(match.group(1))

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self) -> None:
        for proc in list(self.procs):
            try:
                self.stop(proc)
            except Exception:
                proc.kill()


def proc_status_mib(pid: int, field: str) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def smtp_source(port: int, args: list[str], timeout: float) -> float:
    """Run smtp-source against the port; the wall time in seconds."""
    command = ["smtp-source", *args, "-f", "bench@source.example", "-t", "sink@bench.example",
               "-M", "source.example", f"127.0.0.1:{port}"]
    start = time.perf_counter()
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                            preexec_fn=_die_with_parent)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"smtp-source exited {result.returncode}: {result.stdout.decode(errors='replace')[-300:]}")
    return elapsed


def _reply(reader: BinaryIO) -> bytes:
    """The last line of one (possibly multi-line) reply."""
    while True:
        line = reader.readline()
        if not line:
            raise RuntimeError("server closed the connection")
        if line[3:4] != b"-":
            return line


def send_big(port: int, size: int) -> bytes:
    """Send one message of ``size`` octets by DATA from this process (no peer needed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
        reader = sock.makefile("rb")
        _reply(reader)
        sock.sendall(b"EHLO source.example\r\n")
        _reply(reader)
        sock.sendall(b"MAIL FROM:<bench@source.example>\r\n")
        _reply(reader)
        sock.sendall(b"RCPT TO:<sink@bench.example>\r\n")
        _reply(reader)
        sock.sendall(b"DATA\r\n")
        if not _reply(reader).startswith(b"354"):
            raise RuntimeError("DATA refused")
        sock.sendall(b"From: bench@source.example\r\nTo: sink@bench.example\r\nSubject: big\r\n\r\n")
        block = (b"A" * 76 + b"\r\n") * 800  # 62,400 octets of base64-like lines
        sent = 0
        while sent < size:
            piece = block[: size - sent]
            sock.sendall(piece)
            sent += len(piece)
        sock.sendall(b"\r\n.\r\n")
        final = _reply(reader)
        sock.sendall(b"QUIT\r\n")
        return final


def fmt_ratio(ours: float | None, peer: float | None) -> str:
    if ours is None or peer is None or peer == 0:
        return "n/a"
    return f"{ours / peer:.2f}x"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts, for a smoke run")
    parser.add_argument("--skip-peers", action="store_true",
                        help="do not use smtp-source (throughput phases skipped; memory phase still runs)")
    parser.add_argument("--servers", default=",".join(SERVERS), help="comma-separated subset of " + ",".join(SERVERS))
    parser.add_argument("--_serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._serve:
        serve(args._serve)
        return 0

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks
    small_count, big_count, huge = (2000, 10, 20 * MIB) if args.quick else (20000, 100, 100 * MIB)
    slices = 2 if args.quick else 5
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]

    print(f"bench_server.py{' --quick' if args.quick else ''}: Python {platform.python_version()} "
          f"({platform.python_implementation()}), {platform.system()} {platform.machine()}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print("Note: a shared machine; other work changes these numbers from run to run. Compare ratios, not absolutes.")

    have_source = shutil.which("smtp-source") is not None
    if args.skip_peers:
        use_source = False
        print("SKIPPED (a) and (b), the smtp-source throughput runs: --skip-peers was given.")
    elif not have_source:
        print("error: smtp-source (Postfix) not found on PATH; install postfix or pass --skip-peers "
              "to run only the memory phase", file=sys.stderr)
        return 2
    else:
        use_source = True
    try:
        import aiosmtpd  # noqa: F401
    except ImportError:
        if "aiosmtpd" in servers:
            servers.remove("aiosmtpd")
            print("SKIPPED aiosmtpd: not installed (pip install aiosmtpd); no ratios can be printed.")
    try:
        import trio  # noqa: F401
    except ImportError:
        if "trio" in servers:
            servers.remove("trio")
            print("SKIPPED smtpproto trio: trio not installed.")

    rates: dict[str, float] = {}
    reused: dict[str, float] = {}
    mbps: dict[str, float] = {}
    peaks: dict[str, float] = {}
    base: dict[str, float] = {}
    cpu_new: dict[str, float] = {}
    cpu_reused: dict[str, float] = {}
    peer_name = "aiosmtpd"
    running = Running()
    try:
        if use_source:
            n_small, n_big = small_count // slices, big_count // slices
            print(f"\n(a)  {slices} x smtp-source -s 4 -m {n_small} -l 2048      ({n_small * slices} messages,"
                  " a new connection per message)")
            print(f"(a') {slices} x smtp-source -s 4 -d -m {n_small} -l 2048   ({n_small * slices} messages,"
                  " 4 connections, each reused)")
            print(f"(b)  {slices} x smtp-source -s 1 -m {n_big} -l 5242880     ({n_big * slices} messages)")
            print("     the servers take turns slice by slice, so that a change"
                  " in the machine's load hits all of them alike; a rate is the total over the sum of the times")
            ports = {}
            pids = {}
            for kind in servers:
                proc, ports[kind] = running.start_server(kind)
                pids[kind] = proc.pid
                smtp_source(ports[kind], ["-s", "1", "-m", "20", "-l", "2048"], 60)  # warm-up
            phases = (
                ("a", ["-s", "4", "-m", str(small_count // slices), "-l", "2048"], small_count // slices * slices),
                ("a'", ["-s", "4", "-d", "-m", str(small_count // slices), "-l", "2048"], small_count // slices * slices),
                ("b", ["-s", "1", "-m", str(big_count // slices), "-l", str(5 * MIB)], big_count // slices * slices),
            )
            for name, source_args, total in phases:
                spent = dict.fromkeys(servers, 0.0)
                cpu = dict.fromkeys(servers, 0.0)
                for turn in range(slices):
                    order = servers[turn % len(servers):] + servers[: turn % len(servers)]
                    for kind in order:
                        before = proc_cpu_seconds(pids[kind])
                        spent[kind] += smtp_source(ports[kind], source_args, 300)
                        cpu[kind] += proc_cpu_seconds(pids[kind]) - before
                for kind in servers:
                    if name == "a":
                        rates[kind] = total / spent[kind]
                        cpu_new[kind] = cpu[kind] / total * 1e6
                    elif name == "a'":
                        reused[kind] = total / spent[kind]
                        cpu_reused[kind] = cpu[kind] / total * 1e6
                    else:
                        mbps[kind] = total * 5 * MIB / spent[kind] / 1e6
            for kind in servers:
                print(f"  {LABELS[kind]:20s} (a) {rates[kind]:6.0f} messages/s   (a') {reused[kind]:6.0f} messages/s"
                      f"   (b) {mbps[kind]:6.1f} MB/s", flush=True)
            print("  the server process's CPU time (user + system) per message, less sensitive to other load"
                  " than the rates:")
            for kind in servers:
                print(f"  {LABELS[kind]:20s} (a) {cpu_new[kind]:6.0f} us/message"
                      f" (aiosmtpd: {fmt_ratio(cpu_new.get(peer_name), cpu_new.get(kind))} as much)"
                      f"   (a') {cpu_reused[kind]:6.0f} us/message"
                      f" (aiosmtpd: {fmt_ratio(cpu_reused.get(peer_name), cpu_reused.get(kind))} as much)", flush=True)
            running.stop_all()

        print(f"\n(c) peak RSS (VmHWM) of a fresh server process receiving one {huge // MIB} MiB message by DATA")
        for kind in servers:
            proc, port = running.start_server(kind)
            try:
                base[kind] = proc_status_mib(proc.pid, "VmRSS")
                if use_source:
                    smtp_source(port, ["-s", "1", "-m", "1", "-l", str(huge)], 300)
                else:
                    final = send_big(port, huge)
                    if not final.startswith(b"250"):
                        raise RuntimeError(f"{kind}: the {huge // MIB} MiB message was refused: {final!r}")
                peaks[kind] = proc_status_mib(proc.pid, "VmHWM")
                print(f"  {LABELS[kind]:20s} peak {peaks[kind]:6.1f} MiB   (at start {base[kind]:5.1f} MiB)", flush=True)
            finally:
                running.stop(proc)
    finally:
        running.stop_all()

    print("\nSummary (ratios against aiosmtpd in this run; goals: >= 2x messages/s, >= 3x MB/s, peak RSS < 64 MiB)")
    heads = ("(a) msg/s", "ratio", "(a') msg/s", "ratio", "(b) MB/s", "ratio", "(c) peak RSS")
    print(f"  {'server':20s} {heads[0]:>10s} {heads[1]:>6s} {heads[2]:>10s} {heads[3]:>6s} "
          f"{heads[4]:>9s} {heads[5]:>6s} {heads[6]:>13s}")
    peer = "aiosmtpd"

    def cell(table: dict[str, float], kind: str, digits: int) -> str:
        return f"{table[kind]:.{digits}f}" if kind in table else "-"

    for kind in servers:
        print(f"  {LABELS[kind]:20s} {cell(rates, kind, 0):>10s} {fmt_ratio(rates.get(kind), rates.get(peer)):>6s} "
              f"{cell(reused, kind, 0):>10s} {fmt_ratio(reused.get(kind), reused.get(peer)):>6s} "
              f"{cell(mbps, kind, 1):>9s} {fmt_ratio(mbps.get(kind), mbps.get(peer)):>6s} "
              f"{cell(peaks, kind, 1) + ' MiB' if kind in peaks else '-':>13s}")
    ours = "asyncio"
    if ours in servers:
        verdicts = []
        for name, table, goal in (("(a) messages/s", rates, 2.0), ("(a') messages/s", reused, 2.0),
                                  ("(b) MB/s", mbps, 3.0)):
            if ours in table and table.get(peer):
                r = table[ours] / table[peer]
                verdicts.append(f"{name} {r:.2f}x (goal {goal:g}x: {'met' if r >= goal else 'NOT met'})")
        if ours in peaks:
            p = peaks[ours]
            verdicts.append(f"(c) peak RSS {p:.1f} MiB for {huge // MIB} MiB (goal < 64 MiB: {'met' if p < 64 else 'NOT met'})")
        print("RATIOS asyncio vs aiosmtpd: " + ("; ".join(verdicts) if verdicts else "no figures"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
