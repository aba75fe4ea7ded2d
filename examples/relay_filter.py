"""A filtering relay: an asyncio SMTP server in front, smtpproto's asyncio client behind.

It takes mail only for the domains it relays (anything else is refused at RCPT
with 550 5.7.1, so it is never an open relay), reads each message with the codec
as it streams in, refuses messages carrying attachments of blocked types
(550 5.7.1), and forwards the rest to the upstream server, the content exactly
as received with two fields in front: a Received trace field (RFC 5321 §4.4)
and ``X-Filter: passed``.  The final reply answers for the upstream server:
its 2xx when every recipient was accepted there, its refusal when all were
refused, and 451 4.4.1 when it was unreachable or took only some recipients
(SMTP has one final reply for all recipients, and this relay keeps no queue:
asking the client to retry may duplicate a message but never loses one,
RFC 5321 §6.1).

    python examples/relay_filter.py --upstream 127.0.0.1:8025 --domain example.org [--port 8026]

With the sink example as the upstream, in two more terminals:

    python examples/sink_server_asyncio.py --port 8025
    swaks --server 127.0.0.1:8026 --to you@example.org --attach-type text/plain --attach @README.md
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Literal

from smtpproto import Rcpt, Reply
from smtpproto.adapters import Envelope, Handler, Session, SMTPClientError, SMTPRecipientsRefused
from smtpproto.adapters.asyncio import AsyncSMTPClient, AsyncSMTPServer

StartTLS = Literal["required", "opportunistic", "never"]
BLOCKED = (".exe", ".scr", ".js", ".vbs", ".bat", ".com")


def _reply(code: int, enhanced: str, text: str) -> Reply:
    return Reply(code=code, lines=(text,), enhanced_status=enhanced)


def _upstream(code: int, enhanced: str | None, text: str) -> Reply:
    """The upstream server's refusal as our final reply (its text shortened to
    stay well inside RFC 5321 §4.5.3.1.5's 512-octet reply line)."""
    return Reply(code=code, lines=(f"upstream: {text[:200]}",), enhanced_status=enhanced)


class FilterRelay(Handler):
    parse_message = True  # envelope.message: the codec's parse, built while the data streams in

    def __init__(self, upstream: tuple[str, int], domains: set[str], starttls: StartTLS, timeout: float) -> None:
        self.upstream = upstream
        self.domains = {d.lower() for d in domains}
        self.starttls = starttls
        self.timeout = timeout

    def on_rcpt(self, session: Session, command: Rcpt) -> Reply | None:
        domain = command.forward_path.rpartition("@")[2].lower()
        if domain not in self.domains:
            return _reply(550, "5.7.1", f"<{command.forward_path}>: relaying denied")
        return None

    def verdict(self, envelope: Envelope) -> Reply | None:
        """The filter: a Reply refuses the message, None lets it through."""
        assert envelope.message is not None
        for part in envelope.message.walk():  # every part, inline ones included
            name = (part.filename or "").lower()
            if name.endswith(BLOCKED):
                return _reply(550, "5.7.1", f"attachments of this type are not accepted: {part.filename}")
        return None

    async def on_message(self, session: Session, envelope: Envelope) -> Reply:
        refused = self.verdict(envelope)
        if refused is not None:
            return refused
        data = session.received_header(envelope) + b"X-Filter: passed\r\n" + (envelope.content or b"")
        host, port = self.upstream
        try:
            async with AsyncSMTPClient(host, port, starttls=self.starttls, timeout=self.timeout) as client:
                # The client picks BODY=8BITMIME / SMTPUTF8 / SIZE from the bytes and the addresses.
                result = await client.send_message(data, envelope.mail_from, envelope.rcpt_tos)
        except SMTPRecipientsRefused as exc:
            # Every recipient refused upstream: answer with a temporary refusal if
            # any was temporary (a retry may work), else the first permanent one.
            statuses = sorted(exc.recipients.values(), key=lambda s: s.code >= 500)
            first = statuses[0]
            return _upstream(first.code, first.enhanced_status, first.text)
        except SMTPClientError as exc:
            reply = getattr(exc, "reply", None)
            if isinstance(reply, Reply) and reply.code >= 400 and reply.code != 421:
                # Refused upstream as a whole (the sender or the data): say so.  (A 421
                # closes the upstream connection, not ours: that is "try later" below.)
                return _upstream(reply.code, reply.enhanced_status, " ".join(reply.lines))
            return _reply(451, "4.4.1", f"upstream {host}:{port} unavailable ({type(exc).__name__}), try again later")
        if not result.ok:
            return _reply(451, "4.4.1", "some recipients were refused upstream, try again later")
        return _reply(250, "2.0.0", f"Ok: relayed to {host}:{port}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8026)
    parser.add_argument("--upstream", required=True, help="HOST:PORT of the server to relay to")
    parser.add_argument("--domain", action="append", required=True, help="a domain to relay for (repeatable)")
    parser.add_argument("--upstream-starttls", choices=("required", "opportunistic", "never"),
                        default="opportunistic")
    parser.add_argument("--timeout", type=float, default=60.0, help="upstream reply timeout cap, seconds")
    args = parser.parse_args()
    up_host, _, up_port = args.upstream.rpartition(":")
    if not up_host or not up_port.isdigit():
        parser.error("--upstream must be HOST:PORT")

    starttls: StartTLS = args.upstream_starttls
    handler = FilterRelay((up_host, int(up_port)), set(args.domain), starttls, args.timeout)
    server = AsyncSMTPServer(handler, host=args.host, port=args.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    address = server.address
    assert isinstance(address, tuple)
    host, port = address
    print(f"listening on {host}:{port}, relaying to {args.upstream}", flush=True)
    await stop.wait()
    print("shutting down", flush=True)
    await server.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
