"""A sink SMTP server on blocking sockets (a thread per connection).

It accepts every message, prints one summary line per message, and stops
cleanly on Ctrl-C or SIGTERM:

    python examples/sink_server_sockets.py [--port 8025]
    swaks --server 127.0.0.1:8025 --to you@example.org      # in another terminal
"""

from __future__ import annotations

import argparse
import signal
import threading

from smtpproto.adapters import Envelope, Handler, Session
from smtpproto.adapters.sockets import SMTPServer


class Sink(Handler):
    collect_content = False  # count the bytes, keep none of them

    def on_message(self, session: Session, envelope: Envelope) -> None:
        print(f"message from <{envelope.mail_from}> to {len(envelope.rcpt_tos)} recipient(s), "
              f"{envelope.size} octets", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    args = parser.parse_args()

    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with SMTPServer(Sink(), host=args.host, port=args.port, max_connections=50) as server:
        host, port = server.address  # type: ignore[misc]
        print(f"listening on {host}:{port}", flush=True)
        stop.wait()
        print("shutting down", flush=True)
    # Leaving the with-block said 421 to idle clients and waited for busy ones.


if __name__ == "__main__":
    main()
