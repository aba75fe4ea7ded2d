"""smtpproto: a sans-I/O SMTP and LMTP protocol library.

Bytes in, events out; events in, bytes out.  See ``docs/`` for the concepts.
"""

from ._config import Config, NewlinePolicy, PregreetPolicy
from ._connection import NEED_DATA, PAUSED, Connection, Deadline, Role
from ._errors import LocalProtocolError, RemoteProtocolError, SMTPProtocolError, TLSRequiredError
from ._events import (
    Auth,
    AuthResponse,
    Bdat,
    Command,
    ConnectionClosed,
    Data,
    Ehlo,
    EndOfMessage,
    Event,
    Expn,
    Helo,
    Help,
    InvalidCommand,
    Lhlo,
    Mail,
    MessageData,
    MessageRejected,
    Noop,
    Quit,
    Rcpt,
    Reply,
    Rset,
    StartTLS,
    UnknownCommand,
    Vrfy,
)
from ._extensions import Capabilities
from ._state import State

__version__ = "0.1.0"

__all__ = [
    "Auth",
    "AuthResponse",
    "Bdat",
    "Capabilities",
    "Command",
    "Config",
    "Connection",
    "ConnectionClosed",
    "Data",
    "Deadline",
    "Ehlo",
    "EndOfMessage",
    "Event",
    "Expn",
    "Helo",
    "Help",
    "InvalidCommand",
    "Lhlo",
    "LocalProtocolError",
    "Mail",
    "MessageData",
    "MessageRejected",
    "NEED_DATA",
    "NewlinePolicy",
    "Noop",
    "PAUSED",
    "PregreetPolicy",
    "Quit",
    "Rcpt",
    "RemoteProtocolError",
    "Reply",
    "Role",
    "Rset",
    "SMTPProtocolError",
    "StartTLS",
    "State",
    "TLSRequiredError",
    "UnknownCommand",
    "Vrfy",
    "__version__",
]
