"""Core benchmarks: DATA receive throughput, memory, small transactions.

    python benchmarks/bench_core.py            # full run (100 MB message)
    python benchmarks/bench_core.py --quick    # 20 MB, for a smoke run

Printed as ratios against a bare-bytes ceiling measured in the same run on the
same chunks: ``bytes.find`` for the terminator plus ``bytes.replace`` for
unstuffing, which is the least any correct receiver must do.

Times are CPU time of this process (``time.process_time``), not wall time:
the work is single-threaded and CPU-bound, and on a shared machine wall time
also counts the moments the scheduler gave the CPU to someone else -- which
penalises the longer of two measurements.  Each measurement is still the best
of several rounds, taken in turns.
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc

from smtpproto import (
    NEED_DATA,
    PAUSED,
    Connection,
    Data,
    Ehlo,
    EndOfMessage,
    Mail,
    MessageData,
    Rcpt,
    Reply,
    Role,
)

# CPU time of this process: see the module docstring.
_clock = time.process_time

CHUNK = 64 * 1024
LINE = b"The quick brown fox jumps over the lazy dog, and then some more text here.\r\n"


B64_LINE = b"TWFpbCBib2RpZXMgYXJlIG1vc3RseSBiYXNlNjQgYXR0YWNobWVudHMgdGhlc2UgZGF5cy4gT2su\r\n"


def make_chunks(total: int, kind: str = "attachment") -> list[bytes]:
    """``total`` octets of message content cut into 64 KiB chunks, the last one
    carrying CRLF.CRLF.

    ``attachment``: what a 100 MB message mostly is, a base64 attachment
    (76-octet lines; base64 has no "." at all) after a short text part.
    ``text``: prose lines with full stops but no line starting with a dot.
    ``dots``: prose where one line in 41 starts with a dot, so every chunk
    needs unstuffing (the worst case for the reader, the best for the ceiling).
    """
    if kind == "attachment":
        head = b"Subject: report\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n"
        block = B64_LINE * 800
        body = bytearray(head + LINE * 20)
        while len(body) < total:
            body += block
        del body[total:]
        body[-2:] = b"\r\n"
        body += b".\r\n"
        data = bytes(body)
        return [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]
    if kind == "text":
        block = LINE * 1000
    else:
        block = (LINE * 40 + b"..a line that began with a dot\r\n") * 25
    body = bytearray()
    while len(body) < total:
        body += block
    del body[total:]
    body[-2:] = b"\r\n"
    body += b".\r\n"
    data = bytes(body)
    return [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]


def server_in_data(max_size: int) -> Connection:
    from smtpproto import Config

    conn = Connection(Role.SERVER, Config(max_message_size=max_size))
    conn.send(Reply(code=220, lines=["bench"]))
    for line, reply in (
        (b"EHLO c.example\r\n", Reply(code=250, lines=["bench", "8BITMIME", "PIPELINING"])),
        (b"MAIL FROM:<a@x.example>\r\n", Reply(code=250, lines=["ok"])),
        (b"RCPT TO:<b@y.example>\r\n", Reply(code=250, lines=["ok"])),
        (b"DATA\r\n", Reply(code=354, lines=["go"])),
    ):
        conn.receive_data(line)
        conn.next_event()
        assert conn.next_event() is PAUSED
        conn.send(reply)
    return conn


def receive(chunks: list[bytes]) -> tuple[float, int]:
    conn = server_in_data(max_size=len(chunks) * CHUNK * 2)
    got = 0
    ended = False
    start = _clock()
    for chunk in chunks:
        conn.receive_data(chunk)
        while True:
            ev = conn.next_event()
            if ev is NEED_DATA or ev is PAUSED:
                break
            if isinstance(ev, MessageData):
                got += len(ev.data)
            elif isinstance(ev, EndOfMessage):
                ended = True
    elapsed = _clock() - start
    assert ended, "end of data not seen"
    return elapsed, got


def ceiling(chunks: list[bytes]) -> float:
    start = _clock()
    total = 0
    for chunk in chunks:
        chunk.find(b"\r\n.\r\n")
        total += len(chunk.replace(b"\r\n.", b"\r\n"))
    return _clock() - start


def peak_memory(chunks: list[bytes]) -> int:
    conn = server_in_data(max_size=len(chunks) * CHUNK * 2)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for chunk in chunks:
        conn.receive_data(chunk)
        while True:
            ev = conn.next_event()
            if ev is NEED_DATA or ev is PAUSED:
                break
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return peak


def small_transactions(n: int) -> float:
    body = (b"Subject: hi\r\n\r\n" + LINE * 26)[:2048]
    client = Connection(Role.CLIENT)
    server = Connection(Role.SERVER)

    def pump() -> None:
        while True:
            ev = server.next_event()
            if ev is NEED_DATA:
                return
            if ev is PAUSED:
                owed = server.reply_owed
                code = 354 if isinstance(owed, Data) else 250
                lines = ["s.example", "PIPELINING"] if isinstance(owed, Ehlo) else ["ok"]
                client.receive_data(server.send(Reply(code=code, lines=lines)))

    def drain_client() -> None:
        while client.next_event() is not NEED_DATA:
            pass

    client.receive_data(server.send(Reply(code=220, lines=["s.example"])))
    drain_client()
    server.receive_data(client.send(Ehlo(domain="c.example")))
    pump()
    drain_client()
    start = _clock()
    for _ in range(n):
        server.receive_data(client.send(Mail(reverse_path="a@x.example"))
                            + client.send(Rcpt(forward_path="b@y.example")) + client.send(Data()))
        pump()
        drain_client()
        server.receive_data(client.send(MessageData(data=body)) + client.send(EndOfMessage()))
        pump()
        drain_client()
    return n / (_clock() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="20 MB instead of 100 MB")
    ap.add_argument("--rounds", type=int, default=5, help="rounds of taking turns (default 5)")
    args = ap.parse_args()
    big = 20 * 1024 * 1024 if args.quick else 100 * 1024 * 1024
    small = big // 10

    mb = big / 1e6
    for kind in ("attachment", "text", "dots"):
        chunks_big = make_chunks(big, kind)
        chunks_small = make_chunks(small, kind)
        # The three measurements take turns, round after round, and each
        # keeps its best time: a burst of other work on the machine then
        # slows one round of all three instead of one of them.
        runs_big: list[tuple[float, int]] = []
        runs_small: list[float] = []
        runs_ceiling: list[float] = []
        for _ in range(args.rounds):
            gc.collect()
            runs_big.append(receive(chunks_big))
            gc.collect()
            runs_small.append(receive(chunks_small)[0])
            gc.collect()
            runs_ceiling.append(ceiling(chunks_big))
        t_big, got = min(runs_big)
        t_small = min(runs_small)
        t_ceiling = min(runs_ceiling)
        print(f"DATA receive, {big // 2**20} MiB in 64 KiB chunks, {kind} content (best of {args.rounds} rounds)")
        print(f"  smtpproto      {t_big:8.3f} s  {mb / t_big:8.1f} MB/s  (content out: {got} octets)")
        print(f"  ceiling        {t_ceiling:8.3f} s  {mb / t_ceiling:8.1f} MB/s  (find + replace only)")
        print(f"  ratio to ceiling: {t_ceiling / t_big:.2f}  (goal >= 0.5)")
        print(f"  linearity: time({big // 2**20} MiB) / time({small // 2**20} MiB) = {t_big / t_small:.1f}"
              f"  (goal 8..12)")
    peak = peak_memory(chunks_big)
    print(f"  peak traced memory while receiving: {peak / 1024:.0f} KiB"
          f" = chunk + {(peak - CHUNK) / 1024:.0f} KiB  (goal < 1 MiB above the chunk)")
    n = 2000 if args.quick else 10000
    rate = max(small_transactions(n) for _ in range(3))
    print(f"small transactions (MAIL, RCPT, 2 KB DATA) through an in-memory pair: {rate:,.0f}/s")


if __name__ == "__main__":
    main()
