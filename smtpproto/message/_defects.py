"""Typed defects: what the parser found wrong, without ever raising.

Every problem the read path meets becomes a :class:`Defect` value attached to the
part where it was found.  ``parse()`` never raises; callers decide what to do
with the defects (reject, quarantine, log) according to their own policy.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Defect", "DefectKind", "Severity"]


class Severity(enum.IntEnum):
    """How bad a defect is.

    ``INFO``: legal but unusual (e.g. an mbox ``From `` line).  ``WARNING``: not
    conforming, but the meaning is clear (obsolete syntax, a missing final
    boundary).  ``ERROR``: content was lost, guessed or truncated (bad base64,
    a limit was exceeded, an unknown charset).
    """

    INFO = 10
    WARNING = 20
    ERROR = 30


class DefectKind(str, enum.Enum):
    """The catalogue of defects; the value is a stable string usable in logs."""

    # Header section (RFC 5322 section 2.2, 3.6.8)
    MBOX_FROM_LINE = "mbox-from-line"
    FIRST_LINE_CONTINUATION = "first-line-continuation"
    INVALID_HEADER_LINE = "invalid-header-line"
    MISSING_HEADER_BODY_SEPARATOR = "missing-header-body-separator"
    OBSOLETE_FIELD_NAME_WHITESPACE = "obsolete-field-name-whitespace"
    NON_ASCII_HEADER = "non-ascii-header"
    HEADER_SECTION_TOO_LARGE = "header-section-too-large"
    DUPLICATE_HEADER = "duplicate-header"
    # MIME structure (RFC 2045, RFC 2046)
    MISSING_BOUNDARY_PARAMETER = "missing-boundary-parameter"
    START_BOUNDARY_NOT_FOUND = "start-boundary-not-found"
    CLOSE_BOUNDARY_MISSING = "close-boundary-missing"
    INVALID_CONTENT_TYPE = "invalid-content-type"
    DUPLICATE_PARAMETER = "duplicate-parameter"
    INVALID_PARAMETER = "invalid-parameter"
    COMPOSITE_TRANSFER_ENCODING = "composite-transfer-encoding"
    # Limits (SECURITY-CASES H-11)
    DEPTH_LIMIT = "depth-limit"
    PART_LIMIT = "part-limit"
    ENCODED_NESTING_LIMIT = "encoded-nesting-limit"
    # Transfer and charset decoding (RFC 2045 section 6, RFC 2047, RFC 2231)
    UNKNOWN_TRANSFER_ENCODING = "unknown-transfer-encoding"
    INVALID_BASE64 = "invalid-base64"
    INVALID_QUOTED_PRINTABLE = "invalid-quoted-printable"
    INVALID_UUENCODE = "invalid-uuencode"
    UNKNOWN_CHARSET = "unknown-charset"
    CHARSET_DECODE_ERROR = "charset-decode-error"
    INVALID_ENCODED_WORD = "invalid-encoded-word"
    # Structured header values (RFC 5322 section 3.3 - 3.6, section 4)
    INVALID_ADDRESS = "invalid-address"
    OBSOLETE_ADDRESS_SYNTAX = "obsolete-address-syntax"
    INVALID_DATE = "invalid-date"
    OBSOLETE_DATE_SYNTAX = "obsolete-date-syntax"
    INVALID_MESSAGE_ID = "invalid-message-id"
    UNBALANCED_COMMENT = "unbalanced-comment"
    UNTERMINATED_QUOTED_STRING = "unterminated-quoted-string"
    # A bug in this library; the input is kept as one opaque part.
    INTERNAL_ERROR = "internal-error"


@dataclass(frozen=True, slots=True)
class Defect:
    """One problem found while parsing or decoding.

    ``offset`` is a byte offset into the bytes given to the parser when the
    problem can be located there, otherwise ``None`` (for example inside a
    base64-encoded nested message, whose bytes are not the input's).
    """

    kind: DefectKind
    message: str
    offset: int | None = None
    severity: Severity = Severity.WARNING

    def __str__(self) -> str:
        where = "" if self.offset is None else f" at byte {self.offset}"
        return f"{self.severity.name.lower()}: {self.kind.value}{where}: {self.message}"
