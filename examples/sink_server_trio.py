"""A sink SMTP server on trio (needs: pip install "smtpproto[trio]").

    python examples/sink_server_trio.py [--port 8025]
"""

from __future__ import annotations

import argparse
import signal

import trio

from smtpproto.adapters import Envelope, Handler, Session
from smtpproto.adapters.trio import TrioSMTPServer


class Sink(Handler):
    collect_content = False

    async def on_message(self, session: Session, envelope: Envelope) -> None:  # type: ignore[override]
        await trio.sleep(0)  # e.g. hand the message to a queue
        print(f"message from <{envelope.mail_from}>: {envelope.size} octets", flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    args = parser.parse_args()

    server = TrioSMTPServer(Sink(), host=args.host, port=args.port)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            host, port = await nursery.start(server.serve)
            print(f"listening on {host}:{port}", flush=True)
            async for _ in signals:
                break
            print("shutting down", flush=True)
            await server.shutdown()


if __name__ == "__main__":
    trio.run(main)
