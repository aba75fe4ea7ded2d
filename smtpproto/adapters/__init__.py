"""I/O adapters: blocking sockets, asyncio and trio, client and server.

The server side shares one handler interface (:class:`Handler`) and one session
driver (:class:`ServerSession`); the adapters only move bytes.  Import the
adapter you use: ``smtpproto.adapters.sockets``, ``smtpproto.adapters.asyncio``
or ``smtpproto.adapters.trio`` (needs the ``trio`` extra).
"""

from ._handler import Envelope, Handler, MessageResult, RcptResult, Session
from ._server_flow import ServerSession, ServerSettings
from ._client_flow import (
    ClientSession,
    RecipientStatus,
    SendResult,
    SMTPAuthenticationError,
    SMTPClientError,
    SMTPConnectError,
    SMTPDataRefused,
    SMTPHeloError,
    SMTPMessageTooLarge,
    SMTPNotSupportedError,
    SMTPProtocolViolation,
    SMTPRecipientsRefused,
    SMTPResponseError,
    SMTPSenderRefused,
    SMTPServerDisconnected,
    SMTPTimeoutError,
    SMTPTLSError,
    SMTPTLSRequiredError,
)

__all__ = [
    "Envelope",
    "Handler",
    "MessageResult",
    "RcptResult",
    "ServerSession",
    "ServerSettings",
    "Session",
    # client side (one facade per adapter; these are shared)
    "ClientSession",
    "RecipientStatus",
    "SendResult",
    "SMTPAuthenticationError",
    "SMTPClientError",
    "SMTPConnectError",
    "SMTPDataRefused",
    "SMTPHeloError",
    "SMTPMessageTooLarge",
    "SMTPNotSupportedError",
    "SMTPProtocolViolation",
    "SMTPRecipientsRefused",
    "SMTPResponseError",
    "SMTPSenderRefused",
    "SMTPServerDisconnected",
    "SMTPTimeoutError",
    "SMTPTLSError",
    "SMTPTLSRequiredError",
]
