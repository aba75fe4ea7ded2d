"""Send three messages at once with the trio client (needs ``pip install "smtpproto[trio]"``).

    python -m smtpproto serve --port 8025 &
    python examples/send_trio.py 127.0.0.1:8025
"""

from __future__ import annotations

import sys

import trio

from smtpproto.adapters import SendResult
from smtpproto.adapters.trio import TrioSMTPClient
from smtpproto.message import build


async def send_one(host: str, port: int, n: int, results: list[SendResult]) -> None:
    message = build(from_="reports@example.org", to=[f"team{n}@example.net"],
                    subject=f"Report {n}", text=f"Report number {n}.\n")
    async with TrioSMTPClient(host, port, starttls="never", timeout=30) as client:
        results.append(await client.send_message(message))


async def main(server: str) -> int:
    host, _, port = server.rpartition(":")
    results: list[SendResult] = []
    async with trio.open_nursery() as nursery:
        for n in range(1, 4):
            nursery.start_soon(send_one, host, int(port), n, results)
    for result in sorted(results, key=lambda r: list(r.recipients)):
        for address, status in result.recipients.items():
            print(f"{address}: {status.summary}")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(trio.run(main, sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:8025"))
