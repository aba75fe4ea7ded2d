"""smtpproto.message: a bytes-first RFC 5322 / MIME codec.

Parse with :func:`parse` (or :class:`MessageParser` for streaming input), then
inspect the :class:`Message` through decoded views; unchanged messages
serialise back byte for byte.  This package never imports the SMTP core.
"""

from ._address import Address, Group, parse_address_list
from ._dates import parse_date
from ._defects import Defect, DefectKind, Severity
from ._headers import Header
from ._limits import Limits
from ._lists import ListHeader, parse_list_header, parse_list_id
from ._message import Message
from ._msgid import parse_message_ids
from ._params import ParamValue, encode_param, parse_param_header
from ._parser import MessageParser, parse
from ._received import Received, parse_received
from ._rfc2047 import decode_words, encode_words

__all__ = [
    "Address",
    "Defect",
    "DefectKind",
    "Group",
    "Header",
    "Limits",
    "ListHeader",
    "Message",
    "MessageParser",
    "ParamValue",
    "Received",
    "Severity",
    "decode_words",
    "encode_param",
    "encode_words",
    "parse",
    "parse_address_list",
    "parse_date",
    "parse_list_header",
    "parse_list_id",
    "parse_message_ids",
    "parse_param_header",
    "parse_received",
]
