"""Send three messages at once with the asyncio client (one connection each).

    python -m smtpproto serve --port 8025 &
    python examples/send_asyncio.py 127.0.0.1:8025
"""

from __future__ import annotations

import asyncio
import sys

from smtpproto.adapters import SendResult
from smtpproto.adapters.asyncio import AsyncSMTPClient
from smtpproto.message import build


async def send_one(host: str, port: int, n: int) -> SendResult:
    message = build(from_="reports@example.org", to=[f"team{n}@example.net"],
                    subject=f"Report {n}", text=f"Report number {n}.\n")
    async with AsyncSMTPClient(host, port, starttls="never", timeout=30) as client:
        return await client.send_message(message)


async def main(server: str) -> int:
    host, _, port = server.rpartition(":")
    results = await asyncio.gather(*(send_one(host, int(port), n) for n in range(1, 4)))
    for result in results:
        for address, status in result.recipients.items():
            print(f"{address}: {status.summary}")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:8025")))
