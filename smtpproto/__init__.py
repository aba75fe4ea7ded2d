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
from ._enhanced import EnhancedStatus
from ._enhanced import describe as describe_status
from ._enhanced import explain as explain_status
from ._extensions import (
    Capabilities,
    DeliverBy,
    FutureRelease,
    MailParams,
    Orcpt,
    ParameterError,
    ParamProblem,
    RcptParams,
    Rrvs,
    xtext_decode,
    xtext_encode,
)
from ._state import State
from ._xclient import XclientError, format_xclient, format_xforward, parse_xclient, parse_xforward
from .proxy import ProxyHeader, ProxyProtocolError
from .replies import ReplySpec

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
    "DeliverBy",
    "describe_status",
    "Ehlo",
    "EndOfMessage",
    "EnhancedStatus",
    "Event",
    "explain_status",
    "Expn",
    "format_xclient",
    "format_xforward",
    "FutureRelease",
    "Helo",
    "Help",
    "InvalidCommand",
    "Lhlo",
    "LocalProtocolError",
    "Mail",
    "MailParams",
    "MessageData",
    "MessageRejected",
    "NEED_DATA",
    "NewlinePolicy",
    "Noop",
    "Orcpt",
    "ParameterError",
    "ParamProblem",
    "parse_xclient",
    "parse_xforward",
    "PAUSED",
    "PregreetPolicy",
    "ProxyHeader",
    "ProxyProtocolError",
    "Quit",
    "Rcpt",
    "RcptParams",
    "RemoteProtocolError",
    "Reply",
    "ReplySpec",
    "Role",
    "Rrvs",
    "Rset",
    "SMTPProtocolError",
    "StartTLS",
    "State",
    "TLSRequiredError",
    "UnknownCommand",
    "Vrfy",
    "XclientError",
    "xtext_decode",
    "xtext_encode",
    "__version__",
]
