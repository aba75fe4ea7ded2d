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
# Write path: safe header writing, builder, transfer encodings, DKIM, envelope.
from ._builder import Attachment, BuildError, build, build_bytes, format_date, make_msgid
from ._dkim import canonicalize_body, canonicalize_header, canonicalize_headers
from ._encode import (
    HeaderError,
    check_field_name,
    format_address,
    format_addresses,
    format_header,
    format_params_header,
    verify_header_bytes,
    verify_header_section,
)
from ._envelope import EnvelopeError, envelope_from_headers, strip_bcc
from ._transfer_encode import (
    choose_encoding,
    encode_base64,
    encode_body,
    encode_quoted_printable,
    normalize_newlines,
)

__all__ = [
    # write path
    "Attachment",
    "BuildError",
    "EnvelopeError",
    "HeaderError",
    "build",
    "build_bytes",
    "canonicalize_body",
    "canonicalize_header",
    "canonicalize_headers",
    "check_field_name",
    "choose_encoding",
    "encode_base64",
    "encode_body",
    "encode_quoted_printable",
    "envelope_from_headers",
    "format_address",
    "format_addresses",
    "format_date",
    "format_header",
    "format_params_header",
    "make_msgid",
    "normalize_newlines",
    "strip_bcc",
    "verify_header_bytes",
    "verify_header_section",
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
