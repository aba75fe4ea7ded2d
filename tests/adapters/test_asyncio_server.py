"""asyncio-only behaviour of the asyncio server adapter (the shared behaviour of
all three adapters is in test_server_adapters.py)."""

from __future__ import annotations

import asyncio

from test_server_support import WAIT, RawClient, Recorder, RunningServer, hello

from smtpproto import Rcpt
from smtpproto.adapters import Session


class CancelsItself(Recorder):
    async def on_rcpt(self, session: Session, command: Rcpt) -> bool:  # type: ignore[override]
        raise asyncio.CancelledError()


def test_hook_cancelled_ends_the_session() -> None:
    """A hook whose awaitable is cancelled (not by shutdown) ends its session
    as a cancelled task did: connection closed, on_disconnect called -- never
    a session left waiting for a result that cannot come."""
    handler = CancelsItself()
    with RunningServer("asyncio", handler) as srv, RawClient(srv.address) as c:
        hello(c)
        assert c.command(b"MAIL FROM:<a@x.example>\r\n")[0] == 250
        c.send(b"RCPT TO:<b@y.example>\r\n")
        assert c.closed()
        assert handler.disconnected.wait(WAIT)
