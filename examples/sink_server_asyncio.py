"""A sink SMTP server on asyncio, with STARTTLS when given a certificate.

Hooks can be coroutines: here RCPT is checked by an (imaginary) async lookup.

    python examples/sink_server_asyncio.py [--port 8025] [--cert cert.pem --key key.pem]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import ssl

from smtpproto import Rcpt, Reply
from smtpproto.adapters import Envelope, Handler, Session
from smtpproto.adapters.asyncio import AsyncSMTPServer


class Sink(Handler):
    collect_content = False

    async def on_rcpt(self, session: Session, command: Rcpt) -> Reply | None:  # type: ignore[override]
        await asyncio.sleep(0)  # stands for a directory lookup
        if command.forward_path.lower().startswith("nobody@"):
            return Reply(code=550, lines=("No such user here",), enhanced_status="5.1.1")
        return None

    def on_message(self, session: Session, envelope: Envelope) -> None:
        tls = " over TLS" if session.tls_active else ""
        print(f"message from <{envelope.mail_from}>{tls}: {envelope.size} octets", flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    args = parser.parse_args()

    context = None
    if args.cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)
    server = AsyncSMTPServer(Sink(), host=args.host, port=args.port, ssl_context=context)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    host, port = server.address  # type: ignore[misc]
    print(f"listening on {host}:{port}" + (" (STARTTLS)" if context else ""), flush=True)
    await stop.wait()
    print("shutting down", flush=True)
    await server.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
