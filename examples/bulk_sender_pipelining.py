"""Send many messages over one connection, pipelining within and across transactions.

    python -m smtpproto serve --port 8025 > /dev/null &
    python examples/bulk_sender_pipelining.py 127.0.0.1:8025 500

With PIPELINING (RFC 2920) ``send_message`` writes MAIL, every RCPT and DATA in
one go and waits once for all their replies, then once more after the content:
two round trips per message, whatever the number of recipients.
``send_messages`` also puts each message's end of data in the same write as the
next message's MAIL, RCPT and DATA (RFC 2920 §3.1 allows it): one round trip
per message.  A refusal of one message does not stop the others; each gets its
own outcome.  The script sends half the messages each way and prints how fast
and how many round trips per message each took.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator

from smtpproto.adapters import SendResult
from smtpproto.adapters.sockets import SMTPClient
from smtpproto.message import build_bytes

RECIPIENTS = [f"member{i}@list.example" for i in range(5)]


def newsletters(first: int, count: int) -> Iterator[bytes]:
    """Built one at a time, as they are sent: memory stays flat for any count."""
    for n in range(first, first + count):
        yield build_bytes(from_="news@example.org", to=RECIPIENTS,
                          subject=f"Newsletter #{n}", text=f"Issue {n}.\n" + "news " * 300)


def main(server: str, count: int) -> int:
    host, _, port = server.rpartition(":")
    half = count // 2
    failed = 0
    with SMTPClient(host, int(port), starttls="never", timeout=30) as client:
        print(f"server offers PIPELINING: {client.extensions.pipelining}")
        session = client.session
        assert session is not None

        # One call per message: two round trips each.
        before, start = session.round_trips, time.perf_counter()
        for message in newsletters(0, half):
            try:
                failed += 0 if client.send_message(message).ok else 1
            except Exception as exc:  # a refusal of this message: report it, go on
                failed += 1
                print(f"refused: {exc}", file=sys.stderr)
        report("send_message ", half, time.perf_counter() - start, session.round_trips - before)

        # One call for the lot: one round trip each.
        before, start = session.round_trips, time.perf_counter()
        outcomes = client.send_messages(newsletters(half, count - half))
        report("send_messages", count - half, time.perf_counter() - start, session.round_trips - before)
        for n, outcome in enumerate(outcomes, half):
            if not isinstance(outcome, SendResult) or not outcome.ok:
                failed += 1
                print(f"message {n}: {outcome}", file=sys.stderr)
    print(f"sent {count - failed}/{count} messages to {len(RECIPIENTS)} recipients each")
    return 0 if failed == 0 else 1


def report(how: str, count: int, elapsed: float, trips: int) -> None:
    print(f"{how}: {count} messages in {elapsed:.2f} s ({count / elapsed:.0f} messages/s), "
          f"round trips per message: {trips / count:.2f}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:8025",
                  int(sys.argv[2]) if len(sys.argv) > 2 else 200))
