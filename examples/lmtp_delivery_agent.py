"""An LMTP delivery agent: one Maildir per local user, one reply per recipient.

An MTA (Postfix: ``mailbox_transport = lmtp:unix:/path/to/lmtp.sock``) hands it
messages over LMTP (RFC 2033).  Unknown users are refused at RCPT; after the
data each recipient gets its own final reply, so one full mailbox does not
fail the others.

    python examples/lmtp_delivery_agent.py --socket /tmp/lmtp.sock --root /tmp/mail --users alice,bob
    python examples/lmtp_delivery_agent.py --port 8024 --root /tmp/mail --users alice,bob

Each user's mail lands in ROOT/USER/new/.  A user whose Maildir already holds
``--quota`` octets gets ``452 4.2.2`` (mailbox full) for new messages.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import time
from pathlib import Path

from smtpproto import Config, Rcpt, Reply
from smtpproto.adapters import Envelope, Handler, ServerSettings, Session
from smtpproto.adapters.asyncio import AsyncSMTPServer


def _reply(code: int, enhanced: str, text: str) -> Reply:
    return Reply(code=code, lines=(text,), enhanced_status=enhanced)


class MaildirDelivery(Handler):
    def __init__(self, root: Path, users: set[str], quota: int) -> None:
        self.root = root
        self.users = users
        self.quota = quota
        self.counter = 0
        for user in users:
            for sub in ("tmp", "new", "cur"):
                (root / user / sub).mkdir(parents=True, exist_ok=True)

    def _user(self, address: str) -> str:
        return address.rsplit("@", 1)[0].lower()

    def on_rcpt(self, session: Session, command: Rcpt) -> Reply | None:
        if self._user(command.forward_path) not in self.users:
            return _reply(550, "5.1.1", f"<{command.forward_path}>: no such user here")
        return None

    def _used(self, user: str) -> int:
        folder = self.root / user / "new"
        return sum(p.stat().st_size for p in folder.iterdir())

    def _deliver(self, session: Session, user: str, data: bytes) -> str:
        self.counter += 1
        name = f"{int(time.time())}.P{os.getpid()}Q{self.counter}.lmtp"
        tmp = self.root / user / "tmp" / name
        with open(tmp, "xb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.rename(tmp, self.root / user / "new" / name)
        return name

    def on_message(self, session: Session, envelope: Envelope) -> list[Reply]:
        content = envelope.content or b""
        replies = []
        for address in envelope.rcpt_tos:  # same order as the RCPT commands
            user = self._user(address)
            if self._used(user) + len(content) > self.quota:
                replies.append(_reply(452, "4.2.2", f"<{address}>: mailbox full"))
                continue
            data = session.received_header(Envelope(mail_from=envelope.mail_from, rcpt_tos=[address])) + content
            name = self._deliver(session, user, data)
            replies.append(_reply(250, "2.0.0", f"<{address}>: delivered as {name}"))
        return replies


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--socket", help="UNIX socket path")
    where.add_argument("--port", type=int, default=8024, help="TCP port on 127.0.0.1 (default 8024)")
    parser.add_argument("--root", required=True, help="directory holding one Maildir per user")
    parser.add_argument("--users", required=True, help="comma-separated local users")
    parser.add_argument("--quota", type=int, default=50 * 1024 * 1024, help="octets per mailbox")
    args = parser.parse_args()

    handler = MaildirDelivery(Path(args.root), {u.strip().lower() for u in args.users.split(",") if u.strip()},
                              args.quota)
    settings = ServerSettings(config=Config(lmtp=True), hostname="lmtp.localhost")
    server = AsyncSMTPServer(handler, host="127.0.0.1", port=args.port, unix_path=args.socket, settings=settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    address = server.address
    where_text = f"unix:{address}" if isinstance(address, str) else f"{address[0]}:{address[1]}"
    print(f"listening on {where_text} (LMTP)", flush=True)
    await stop.wait()
    await server.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
