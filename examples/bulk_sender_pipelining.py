"""Send many messages over one connection, pipelining each transaction.

    python -m smtpproto serve --port 8025 > /dev/null &
    python examples/bulk_sender_pipelining.py 127.0.0.1:8025 500

With PIPELINING (RFC 2920) the client writes MAIL, every RCPT and DATA in one
go and waits once for all their replies, then once more after the content: two
round trips per message, whatever the number of recipients.  The script prints
how many it sent, how fast, and the round trips per message it measured.
"""

from __future__ import annotations

import sys
import time

from smtpproto.adapters import SMTPClientError
from smtpproto.adapters.sockets import SMTPClient
from smtpproto.message import build_bytes


def main(server: str, count: int) -> int:
    host, _, port = server.rpartition(":")
    recipients = [f"member{i}@list.example" for i in range(5)]
    failed = 0
    with SMTPClient(host, int(port), starttls="never", timeout=30) as client:
        pipelining = client.extensions.pipelining
        session = client.session
        assert session is not None
        before = session.round_trips
        start = time.perf_counter()
        for n in range(count):
            message = build_bytes(from_="news@example.org", to=recipients,
                                  subject=f"Newsletter #{n}", text=f"Issue {n}.\n" + "news " * 300)
            try:
                result = client.send_message(message)
            except SMTPClientError as exc:
                failed += 1
                print(f"message {n}: {exc}", file=sys.stderr)
                continue
            failed += 0 if result.ok else 1
        elapsed = time.perf_counter() - start
        trips = session.round_trips - before
    print(f"server offers PIPELINING: {pipelining}")
    print(f"sent {count - failed}/{count} messages to {len(recipients)} recipients each "
          f"in {elapsed:.2f} s ({count / elapsed:.0f} messages/s)")
    print(f"round trips per message: {trips / count:.2f}")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:8025",
                  int(sys.argv[2]) if len(sys.argv) > 2 else 200))
