"""Client benchmark: smtpproto's clients side by side with smtplib and aiosmtplib, sending to smtp-sink.

    python benchmarks/bench_client.py               # full run (a few minutes)
    python benchmarks/bench_client.py --quick       # smaller counts, a smoke run (< 1 minute)
    python benchmarks/bench_client.py --skip-peers  # without smtp-sink: an in-script sink instead

The script starts Postfix's ``smtp-sink`` on a free loopback port (``smtp-sink -u nobody
127.0.0.1:PORT 256`` as root) and, in one run, times every client on:

(a) 5,000 messages of 2 KB on one connection -> messages/s;
(b) 20 messages of 5 MiB on one connection -> MB/s (10^6 B/s);
(d) 500 messages of 2 KB on one connection through an in-script proxy that delays each
    direction by 1 ms (about 2 ms round trip, like a LAN): what PIPELINING buys.

Clients: ``smtplib.SMTP.sendmail`` vs ``SMTPClient.send_message``;
``aiosmtplib.SMTP.sendmail`` vs ``AsyncSMTPClient.send_message``; ``TrioSMTPClient`` (no
trio peer; its ratio is against aiosmtplib).  "same, send_messages" is the same client
sending the lot in one ``send_messages`` call, which also pipelines each end of data with
the next message's envelope (RFC 2920 §3.1): one round trip per message instead of two. Each figure is the best of 3 rounds (1 with
--quick), the clients interleaved within a round. Goals (issue 5): >= 1.5x smtplib,
>= 2x aiosmtplib. This is a script, not a test: numbers vary with the machine's other load.

Where the scheduler puts the client and smtp-sink decides the small-message race, so (a)
runs twice, with both processes pinned (``os.sched_setaffinity``): **apart** (client on
CPU 0, smtp-sink on CPU 1: every round trip wakes the other core, as across a network) and
**together** (both on CPU 0: a round trip costs almost nothing, so only CPU time per
message counts, and smtplib's four lock-step round trips per message cost it little).
Unpinned, a run lands on either and its figures with it. (b) and (d) run apart.
``--placement free`` pins nothing (and is what a machine without ``sched_setaffinity`` or
with one CPU gets).

``floor`` is no SMTP client but a reference: a blocking socket writing canned, pipelined
commands and the pre-stuffed content, and only counting reply lines.  Its ratio to smtplib
is the most a client can reach against smtp-sink on this machine when it waits for each
message's final reply before the next MAIL (as ``send_message`` does); ``floor, grouped``
is the same with each end of data written together with the next envelope (as
``send_messages`` does).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MIB = 1024 * 1024
SENDER = "bench@client.example"
RECIPIENT = "sink@bench.example"
HELO = "client.example"


def make_message(size: int) -> bytes:
    """A message of exactly ``size`` octets: a short header section, then 78-octet lines."""
    head = f"From: {SENDER}\r\nTo: {RECIPIENT}\r\nSubject: bench\r\n\r\n".encode()
    line = b"x" * 76 + b"\r\n"
    body = line * ((size - len(head)) // len(line) + 1)
    body = body[: size - len(head) - 2] + b"\r\n"
    return head + body


# --------------------------------------------------------------------------- children


def _listen_and_announce(loop: asyncio.AbstractEventLoop, factory: Callable[[], asyncio.Protocol]) -> None:
    async def start() -> None:
        server = await loop.create_server(factory, "127.0.0.1", 0)
        print(f"listening on 127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)

    loop.run_until_complete(start())
    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    loop.run_forever()


class _DelayedPipe(asyncio.Protocol):
    """One side of the delay proxy: what it reads, the peer side writes ``delay`` seconds later."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.peer: _DelayedPipe | None = None
        self.transport: asyncio.Transport | None = None
        self.pending: deque[tuple[float, bytes | None]] = deque()
        self.timer: asyncio.TimerHandle | None = None
        self.early: list[bytes | None] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._queue(data)

    def eof_received(self) -> bool:
        self._queue(None)
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self._queue(None)

    def _queue(self, data: bytes | None) -> None:
        loop = asyncio.get_running_loop()
        self.pending.append((loop.time() + self.delay, data))
        if self.timer is None:
            self.timer = loop.call_at(self.pending[0][0], self._flush)

    def _flush(self) -> None:
        self.timer = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        while self.pending and self.pending[0][0] <= now:
            _, data = self.pending.popleft()
            target = self.peer.transport if self.peer is not None else None
            if target is None or target.is_closing():
                continue
            if data is None:
                target.close()
            else:
                target.write(data)
        if self.pending:
            self.timer = loop.call_at(self.pending[0][0], self._flush)


def run_proxy(target_port: int, delay_ms: float) -> None:
    loop = asyncio.new_event_loop()
    delay = delay_ms / 1000

    class Downstream(_DelayedPipe):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            transport.pause_reading()  # type: ignore[attr-defined]
            loop.create_task(self._connect(transport))

        async def _connect(self, transport: asyncio.BaseTransport) -> None:
            try:
                _, upstream = await loop.create_connection(lambda: _DelayedPipe(delay), "127.0.0.1", target_port)
            except OSError:
                transport.close()
                return
            upstream.peer, self.peer = self, upstream
            transport.resume_reading()  # type: ignore[attr-defined]

    _listen_and_announce(loop, lambda: Downstream(delay))


class _Sink(asyncio.Protocol):
    """A minimal SMTP sink (PIPELINING, 8BITMIME) for --skip-peers: accepts and forgets."""

    EHLO = b"250-sink.example\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.buffer = bytearray()
        self.in_data = False
        transport.write(b"220 sink.example ESMTP\r\n")  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        out = []
        while True:
            if self.in_data:
                end = self.buffer.find(b"\r\n.\r\n")
                if end < 0:
                    del self.buffer[: max(0, len(self.buffer) - 4)]
                    break
                del self.buffer[: end + 5]
                self.in_data = False
                out.append(b"250 2.0.0 Ok: queued\r\n")
                continue
            end = self.buffer.find(b"\r\n")
            if end < 0:
                break
            verb = bytes(self.buffer[:4]).upper()
            del self.buffer[: end + 2]
            if verb in (b"EHLO", b"HELO"):
                out.append(self.EHLO)
            elif verb == b"DATA":
                out.append(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                self.in_data = True
                self.buffer[:0] = b"\r\n"  # the content may end at once with ".\r\n"
            elif verb == b"QUIT":
                self.transport.write(b"".join(out) + b"221 2.0.0 Bye\r\n")
                self.transport.close()
                return
            else:
                out.append(b"250 2.0.0 Ok\r\n")
        if out:
            self.transport.write(b"".join(out))


def run_sink() -> None:
    _listen_and_announce(asyncio.new_event_loop(), _Sink)


# --------------------------------------------------------------------------- parent: processes


def _die_with_parent() -> None:
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG (Linux)
    except Exception:
        pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_connectable(port: int, proc: subprocess.Popen[bytes], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.recv(100)  # the greeting
                sock.sendall(b"QUIT\r\n")
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def round_trip_ms(port: int, samples: int = 50) -> float:
    """The median time of one NOOP round trip to ``port`` (through the proxy: its added delay)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        reader = sock.makefile("rb")
        reader.readline()  # 220
        times = []
        for _ in range(samples):
            start = time.perf_counter()
            sock.sendall(b"NOOP\r\n")
            reader.readline()
            times.append(time.perf_counter() - start)
        sock.sendall(b"QUIT\r\n")
        reader.readline()
    return sorted(times)[len(times) // 2] * 1000


class Processes:
    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, command: list[str], announce: bool) -> tuple[subprocess.Popen[bytes], int | None]:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE if announce else subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL if not announce else None,
                                preexec_fn=_die_with_parent)
        self.procs.append(proc)
        if not announce:
            return proc, None
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(rb":(\d+)\s*$", line)
        if not match:
            raise RuntimeError(f"{command!r} did not start (said {line!r})")
        return proc, int(match.group(1))

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
            if proc.stdout is not None:
                proc.stdout.close()
        self.procs.clear()


# --------------------------------------------------------------------------- parent: the clients


def run_smtplib(port: int, message: bytes, count: int) -> None:
    with smtplib.SMTP("127.0.0.1", port, local_hostname=HELO, timeout=120) as client:
        for _ in range(count):
            refused = client.sendmail(SENDER, [RECIPIENT], message)
            assert not refused, refused


def run_ours(port: int, message: bytes, count: int) -> None:
    from smtpproto.adapters.sockets import SMTPClient

    with SMTPClient("127.0.0.1", port, starttls="never", local_hostname=HELO, timeout=120) as client:
        for _ in range(count):
            result = client.send_message(message, SENDER, [RECIPIENT])
            assert result.ok, result


def run_ours_batch(port: int, message: bytes, count: int) -> None:
    from smtpproto.adapters import SendResult
    from smtpproto.adapters.sockets import SMTPClient

    with SMTPClient("127.0.0.1", port, starttls="never", local_hostname=HELO, timeout=120) as client:
        outcomes = client.send_messages((message, SENDER, [RECIPIENT]) for _ in range(count))
        assert len(outcomes) == count and all(isinstance(o, SendResult) and o.ok for o in outcomes), outcomes[:3]


def run_aiosmtplib(port: int, message: bytes, count: int) -> None:
    import aiosmtplib

    async def main() -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, local_hostname=HELO, timeout=120)
        async with client:
            for _ in range(count):
                refused, _reply = await client.sendmail(SENDER, [RECIPIENT], message)
                assert not refused, refused

    asyncio.run(main())


def run_ours_async(port: int, message: bytes, count: int) -> None:
    from smtpproto.adapters.asyncio import AsyncSMTPClient

    async def main() -> None:
        async with AsyncSMTPClient("127.0.0.1", port, starttls="never", local_hostname=HELO, timeout=120) as client:
            for _ in range(count):
                result = await client.send_message(message, SENDER, [RECIPIENT])
                assert result.ok, result

    asyncio.run(main())


def run_ours_async_batch(port: int, message: bytes, count: int) -> None:
    from smtpproto.adapters import SendResult
    from smtpproto.adapters.asyncio import AsyncSMTPClient

    async def main() -> None:
        async with AsyncSMTPClient("127.0.0.1", port, starttls="never", local_hostname=HELO, timeout=120) as client:
            outcomes = await client.send_messages((message, SENDER, [RECIPIENT]) for _ in range(count))
            assert len(outcomes) == count and all(isinstance(o, SendResult) and o.ok for o in outcomes)

    asyncio.run(main())


def run_ours_trio(port: int, message: bytes, count: int) -> None:
    import trio  # type: ignore[import-untyped,unused-ignore]

    from smtpproto.adapters.trio import TrioSMTPClient

    async def main() -> None:
        async with TrioSMTPClient("127.0.0.1", port, starttls="never", local_hostname=HELO, timeout=120) as client:
            for _ in range(count):
                result = await client.send_message(message, SENDER, [RECIPIENT])
                assert result.ok, result

    trio.run(main)


def run_floor(port: int, message: bytes, count: int) -> None:
    """Not an SMTP client: the least a pipelining client that waits for each
    final reply before the next MAIL must do on the wire.  One blocking
    socket; per message one write of MAIL, RCPT and DATA, a read until three
    final replies, one write of the content (dot-stuffed once, up front) and
    the end of data, a read of the final reply.  No parsing beyond counting
    reply lines, no checks, no message handling."""
    envelope, content = _canned(message)
    with _floor_session(port) as sock:
        for _ in range(count):
            sock.sendall(envelope)
            _replies(sock, 3)
            sock.sendall(content)
            _replies(sock, 1)


def run_floor_grouped(port: int, message: bytes, count: int) -> None:
    """``run_floor`` with each content and end of data written together with
    the next message's MAIL, RCPT and DATA: one round trip per message."""
    envelope, content = _canned(message)
    with _floor_session(port) as sock:
        sock.sendall(envelope)
        _replies(sock, 3)
        for _ in range(count - 1):
            sock.sendall(content + envelope)
            _replies(sock, 4)
        sock.sendall(content)
        _replies(sock, 1)


@contextlib.contextmanager
def _floor_session(port: int) -> Iterator[socket.socket]:
    """A floor's connection: greeting and EHLO before, QUIT after."""
    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        _replies(sock, 1)
        sock.sendall(f"EHLO {HELO}\r\n".encode())
        _replies(sock, 1)
        yield sock
        sock.sendall(b"QUIT\r\n")
        _replies(sock, 1)


def _replies(sock: socket.socket, n: int) -> None:
    """Read until ``n`` final reply lines came (the floors' only parsing)."""
    buf = b""
    while sum(1 for line in buf.split(b"\r\n") if line[3:4] == b" ") < n:
        data = sock.recv(65536)
        if not data:
            raise RuntimeError("the sink closed the connection")
        buf += data


def _canned(message: bytes) -> tuple[bytes, bytes]:
    """The floors' envelope group and their dot-stuffed content with its end of data."""
    stuffed = message.replace(b"\r\n.", b"\r\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    if not stuffed.endswith(b"\r\n"):
        stuffed += b"\r\n"
    envelope = f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<{RECIPIENT}>\r\nDATA\r\n".encode()
    return envelope, stuffed + b".\r\n"


CLIENTS: list[tuple[str, str, Callable[[int, bytes, int], None]]] = [
    ("smtplib", "smtplib (stdlib)", run_smtplib),
    ("SMTPClient", "smtpproto SMTPClient", run_ours),
    ("SMTPClient batch", "  same, send_messages", run_ours_batch),
    ("aiosmtplib", "aiosmtplib", run_aiosmtplib),
    ("AsyncSMTPClient", "smtpproto AsyncSMTPClient", run_ours_async),
    ("AsyncSMTPClient batch", "  same, send_messages", run_ours_async_batch),
    ("TrioSMTPClient", "smtpproto TrioSMTPClient", run_ours_trio),
    ("floor", "floor (canned, pipelined)", run_floor),
    ("floor grouped", "  floor, grouped", run_floor_grouped),
]
PEER_OF = {"SMTPClient": "smtplib", "AsyncSMTPClient": "aiosmtplib", "TrioSMTPClient": "aiosmtplib",
           "SMTPClient batch": "smtplib", "AsyncSMTPClient batch": "aiosmtplib", "floor": "smtplib",
           "floor grouped": "smtplib"}
GOAL = {"SMTPClient": 1.5, "AsyncSMTPClient": 2.0, "SMTPClient batch": 1.5, "AsyncSMTPClient batch": 2.0}


def available_clients() -> list[tuple[str, str, Callable[[int, bytes, int], None]]]:
    chosen = []
    for key, label, fn in CLIENTS:
        module = {"aiosmtplib": "aiosmtplib", "TrioSMTPClient": "trio"}.get(key)
        if module is not None:
            try:
                __import__(module)
            except ImportError:
                print(f"SKIPPED {label}: {module} is not installed.")
                continue
        chosen.append((key, label, fn))
    return chosen


def measure(clients: list[tuple[str, str, Callable[[int, bytes, int], None]]], port: int,
            message: bytes, count: int, rounds: int) -> dict[str, float]:
    """Best wall time (connect to QUIT) per client over ``rounds`` interleaved rounds."""
    best = {key: float("inf") for key, _, _ in clients}
    for _ in range(rounds):
        for key, _, fn in clients:
            start = time.perf_counter()
            fn(port, message, count)
            best[key] = min(best[key], time.perf_counter() - start)
    return best


def place(sink_pids: list[int], placement: str) -> str:
    """Pin this process (the clients) and the sink's to CPUs for ``placement``;
    the description printed with the figures."""
    if placement == "free":
        return "unpinned"
    ours, theirs = {0}, ({1} if placement == "apart" else {0})
    os.sched_setaffinity(0, ours)
    for pid in sink_pids:
        os.sched_setaffinity(pid, theirs)
    return ("client on CPU 0, sink on CPU 1" if placement == "apart"
            else "client and sink both on CPU 0")


def report(title: str, clients: list[tuple[str, str, Callable[[int, bytes, int], None]]],
           times: dict[str, float], count: int, size: int, unit: str) -> dict[str, float]:
    print(title)
    values: dict[str, float] = {}
    for key, label, _ in clients:
        seconds = times[key]
        values[key] = count / seconds if unit == "msg/s" else count * size / seconds / 1e6
        line = f"  {label:27s} {values[key]:9.1f} {unit}"
        print(line, flush=True)
    for key, label, _ in clients:
        peer = PEER_OF.get(key)
        if peer in values:
            ratio = values[key] / values[peer]
            goal = GOAL.get(key)
            verdict = f" (goal {goal:g}x: {'met' if ratio >= goal else 'NOT met'})" if goal else ""
            print(f"  RATIO {label} / {peer}: {ratio:.2f}x{verdict}")
    return values


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts and one round, for a smoke run")
    parser.add_argument("--skip-peers", action="store_true", help="use an in-script sink instead of smtp-sink")
    parser.add_argument("--placement", choices=("both", "apart", "together", "free"), default="both",
                        help="CPU placement of client and sink for (a): both (default) runs it apart and together")
    parser.add_argument("--_sink", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--_proxy", nargs=2, type=float, metavar=("PORT", "DELAY_MS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._sink:
        run_sink()
        return 0
    if args._proxy:
        run_proxy(int(args._proxy[0]), args._proxy[1])
        return 0

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks
    if args.quick:
        small_count, big_count, delayed_count, rounds = 500, 4, 100, 1
    else:
        small_count, big_count, delayed_count, rounds = 5000, 20, 500, 3
    print(f"bench_client.py{' --quick' if args.quick else ''}: Python {platform.python_version()} "
          f"({platform.python_implementation()}), {platform.system()} {platform.machine()}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print("Note: a shared machine; other work changes these numbers from run to run. Compare ratios, not absolutes.")

    sink_path = shutil.which("smtp-sink") or ("/usr/sbin/smtp-sink" if os.path.exists("/usr/sbin/smtp-sink") else None)
    if args.skip_peers:
        print("SKIPPED smtp-sink: --skip-peers was given; sending to the in-script Python sink instead "
              "(slower than smtp-sink, so the figures are not comparable with smtp-sink runs).")
    elif sink_path is None:
        print("error: smtp-sink (Postfix) not found; install postfix or pass --skip-peers", file=sys.stderr)
        return 2
    placements = ["apart", "together"] if args.placement == "both" else [args.placement]
    if placements != ["free"] and (not hasattr(os, "sched_setaffinity") or (os.cpu_count() or 1) < 2):
        print("SKIPPED pinning: needs os.sched_setaffinity and two CPUs; the processes run unpinned.")
        placements = ["free"]
    clients = available_clients()
    processes = Processes()
    script = str(Path(__file__).resolve())
    try:
        if args.skip_peers:
            _, sink_port = processes.start([sys.executable, script, "--_sink"], announce=True)
            assert sink_port is not None
            sink_name = "in-script sink"
        else:
            sink_port = free_port()
            assert sink_path is not None
            command = [sink_path, "127.0.0.1:%d" % sink_port, "256"]
            if os.geteuid() == 0:
                command[1:1] = ["-u", "nobody"]
            proc, _ = processes.start(command, announce=False)
            wait_connectable(sink_port, proc)
            sink_name = "smtp-sink"
        sink_pids = [proc.pid for proc in processes.procs]
        print(f"Sink: {sink_name} on 127.0.0.1:{sink_port}; best of {rounds} round(s); time from connect to QUIT")
        _, proxy_port = processes.start([sys.executable, script, "--_proxy", str(sink_port), "1"], announce=True)
        assert proxy_port is not None

        small, big = make_message(2048), make_message(5 * MIB)
        measure(clients, sink_port, small, 20, 1)  # warm-up: imports, first connections
        results = {}
        for placement in placements:
            where = place(sink_pids, placement)
            times = measure(clients, sink_port, small, small_count, rounds)
            results["a " + placement] = report(
                f"\n(a) {small_count} x 2 KB on one connection, {sink_name}, {placement} ({where})",
                clients, times, small_count, len(small), "msg/s")
        # The rest with the first placement (apart unless one was chosen).
        place(sink_pids + [proxy.pid for proxy in processes.procs if proxy.pid not in sink_pids], placements[0])
        times = measure(clients, sink_port, big, big_count, rounds)
        results["b"] = report(f"\n(b) {big_count} x 5 MiB on one connection, {sink_name}, {placements[0]}",
                              clients, times, big_count, len(big), "MB/s")
        direct, delayed = round_trip_ms(sink_port), round_trip_ms(proxy_port)
        times = measure(clients, proxy_port, small, delayed_count, rounds)
        results["d"] = report(f"\n(d) DELAYED: {delayed_count} x 2 KB on one connection through the in-script proxy "
                              f"(+1 ms each way; measured NOOP round trip {delayed:.2f} ms, {direct:.2f} ms direct), "
                              f"{sink_name}, {placements[0]}",
                              clients, times, delayed_count, len(small), "msg/s")
    finally:
        processes.stop_all()

    phases = [("a " + p, f"(a) {p}", 0) for p in placements] + [("b", "(b) MB/s", 1), ("d", "(d) msg/s", 0)]
    print("\nSummary (ratios: SMTPClient/smtplib, AsyncSMTPClient/aiosmtplib, TrioSMTPClient/aiosmtplib;"
          " (a) in msg/s)")
    print(f"  {'client':27s} " + " ".join(f"{title:>12s} {'ratio':>6s}" for _, title, _ in phases))
    for key, label, _ in clients:
        cells = []
        for phase, _, digits in phases:
            value = results[phase][key]
            peer = PEER_OF.get(key)
            ratio = f"{value / results[phase][peer]:.2f}x" if peer in results[phase] else ""
            cells.append(f"{value:12.{digits}f} {ratio:>6s}")
        print(f"  {label:27s} " + " ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
