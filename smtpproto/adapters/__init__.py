"""I/O adapters: blocking sockets, asyncio and trio, client and server.

The server side shares one handler interface (:class:`Handler`) and one session
driver (:class:`ServerSession`); the adapters only move bytes.  Import the
adapter you use: ``smtpproto.adapters.sockets``, ``smtpproto.adapters.asyncio``
or ``smtpproto.adapters.trio`` (needs the ``trio`` extra).
"""

from ._handler import Envelope, Handler, MessageResult, RcptResult, Session
from ._server_flow import ServerSession, ServerSettings

__all__ = [
    "Envelope",
    "Handler",
    "MessageResult",
    "RcptResult",
    "ServerSession",
    "ServerSettings",
    "Session",
]
