"""Send one message with the blocking client.

    python -m smtpproto serve --port 8025 &      # a debugging server to send to
    python examples/send_blocking.py 127.0.0.1:8025

The message is built with smtpproto.message (text, HTML and an attachment); the
envelope comes from its header fields (Bcc included, then removed from what is
sent).  Against a real server use starttls="required" (the default) and
username=/password=.
"""

from __future__ import annotations

import sys

from smtpproto.adapters import SMTPClientError
from smtpproto.adapters.sockets import SMTPClient
from smtpproto.message import Attachment, build


def main(server: str) -> int:
    host, _, port = server.rpartition(":")
    message = build(
        from_=("Alice", "alice@example.org"),
        to=[("Bob", "bob@example.net")],
        bcc=["archive@example.org"],
        subject="Minutes of the meeting",
        text="Hi Bob,\n\nthe minutes are attached.\n",
        html="<p>Hi Bob,</p><p>the minutes are <em>attached</em>.</p>",
        attachments=[Attachment(data=b"1. budget\n2. roadmap\n", filename="minutes.txt")],
        date=True,
        message_id=True,
    )
    try:
        # starttls="never" only because the example talks to a local debugging server.
        with SMTPClient(host, int(port), starttls="never", timeout=30) as client:
            result = client.send_message(message)
    except SMTPClientError as exc:
        print(f"sending failed: {exc}", file=sys.stderr)
        return 1
    for address, status in result.recipients.items():
        print(f"{address}: {status.summary}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:8025"))
