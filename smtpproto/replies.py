"""A catalogue of standard server replies, so servers answer like a mature MTA.

Each entry is a :class:`ReplySpec` ``(code, enhanced, text)``; the core wraps
it in a ``Reply`` event. Codes follow RFC 5321 §4.2 and the RFC 3463 enhanced
codes; the wording is modelled on what Postfix sends (``250 2.1.0 Ok``,
``503 5.5.1 Error: need RCPT command``, ...), written for this library.

Constants are for fixed replies; functions build those that name a host, an
address, a queue id or a keyword. Every text is validated: no CR, LF or other
control characters can reach the wire through this module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from ._enhanced import is_enhanced_status

__all__ = [
    "ReplySpec",
    "greeting",
    "greeting_refused",
    "ehlo_ok",
    "helo_ok",
    "queued",
    "recipient_rejected",
    "sender_rejected",
    "relay_denied",
    "timeout",
    "too_many_errors",
    "shutting_down",
    "unsupported_parameter",
    "syntax",
    "lmtp_delivered",
    "CLOSING",
    "OK",
    "SENDER_OK",
    "RECIPIENT_OK",
    "RESET_OK",
    "NOOP_OK",
    "VRFY_CANNOT_VERIFY",
    "START_MAIL_INPUT",
    "STARTTLS_READY",
    "AUTH_SUCCESSFUL",
    "TLS_NOT_AVAILABLE",
    "MAILBOX_BUSY",
    "LOCAL_ERROR",
    "INSUFFICIENT_STORAGE",
    "TOO_MANY_RECIPIENTS",
    "AUTH_TEMPORARY_FAILURE",
    "COMMAND_UNRECOGNIZED",
    "LINE_TOO_LONG",
    "BARE_LF_COMMAND",
    "BARE_LF_DATA",
    "BARE_CR_DATA",
    "DATA_LINE_TOO_LONG",
    "AUTH_LINE_TOO_LONG",
    "SYNTAX_ERROR",
    "BAD_SENDER_SYNTAX",
    "BAD_RECIPIENT_SYNTAX",
    "COMMAND_NOT_IMPLEMENTED",
    "BDAT_NOT_IMPLEMENTED",
    "SEND_HELO_FIRST",
    "NESTED_MAIL",
    "NEED_MAIL",
    "NEED_RCPT",
    "ALREADY_AUTHENTICATED",
    "TLS_ALREADY_ACTIVE",
    "BDAT_DATA_MIX",
    "PARAMETER_NOT_IMPLEMENTED",
    "AUTH_MECHANISM_UNRECOGNIZED",
    "AUTH_REQUIRED",
    "MUST_ISSUE_STARTTLS",
    "AUTH_MECHANISM_TOO_WEAK",
    "AUTH_INVALID_CREDENTIALS",
    "AUTH_ENCRYPTION_REQUIRED",
    "AUTH_CANCELLED",
    "MAILBOX_UNAVAILABLE",
    "USER_UNKNOWN",
    "MESSAGE_TOO_BIG",
    "SIZE_EXCEEDED",
    "MAILBOX_NAME_NOT_ALLOWED",
    "NON_ASCII_ADDRESS",
    "TRANSACTION_FAILED",
    "NO_VALID_RECIPIENTS",
    "SYNC_ERROR",
    "REQUIRETLS_NEEDS_TLS",
]

# What a reply text may contain: printable ASCII and SP, plus UTF-8 text
# (RFC 6531 §3.7.4.2 allows it in replies to SMTPUTF8 clients); never
# CR, LF, NUL or other controls.
_TEXT_RE: Final = re.compile(r"[^\x00-\x1f\x7f]*\Z")
_HOST_RE: Final = re.compile(r"[A-Za-z0-9.:\[\]_-]{1,255}\Z")


@dataclass(frozen=True, slots=True)
class ReplySpec:
    """A server reply: three-digit ``code``, optional ``enhanced`` status, ``text``.

    Validated on construction: code 200..599, enhanced syntax and class equal
    to the code's first digit (RFC 2034 §4), text without control characters.
    ``text`` may hold several lines separated by ``"\\n"``; see :attr:`lines`.
    """

    code: int
    enhanced: str | None
    text: str

    def __post_init__(self) -> None:
        if not 200 <= self.code <= 599:
            raise ValueError(f"reply code out of range: {self.code}")
        if self.enhanced is not None:
            if not is_enhanced_status(self.enhanced):
                raise ValueError(f"invalid enhanced status code: {self.enhanced!r}")
            if int(self.enhanced[0]) != self.code // 100:
                raise ValueError("enhanced status class must match the reply code")
        for line in self.text.split("\n"):
            if not _TEXT_RE.match(line):
                raise ValueError("reply text must not contain control characters")

    @property
    def text_lines(self) -> list[str]:
        """The text lines without the enhanced code (for ``Reply(lines=..., enhanced_status=...)``)."""
        return self.text.split("\n")

    @property
    def lines(self) -> list[str]:
        """The text lines, each prefixed with the enhanced code if there is one."""
        prefix = f"{self.enhanced} " if self.enhanced else ""
        return [prefix + line if line else (self.enhanced or "") for line in self.text.split("\n")]

    def with_text(self, text: str) -> ReplySpec:
        """The same code and enhanced status with other words."""
        return ReplySpec(self.code, self.enhanced, text)

    def without_enhanced(self) -> ReplySpec:
        """The same reply for a session that did not negotiate ENHANCEDSTATUSCODES."""
        return ReplySpec(self.code, None, self.text)

    def to_bytes(self) -> bytes:
        """Wire form, for tests and simple tools: ``250-...`` / ``250 ...`` lines with CRLF."""
        lines = self.lines
        out = []
        for i, line in enumerate(lines):
            sep = " " if i == len(lines) - 1 else "-"
            out.append(f"{self.code}{sep}{line}".rstrip(" ") + "\r\n")
        return "".join(out).encode("utf-8")

    def __str__(self) -> str:
        return self.to_bytes().decode("utf-8").rstrip("\r\n").replace("\r\n", "\n")


def _host(hostname: str) -> str:
    if not _HOST_RE.match(hostname):
        raise ValueError(f"invalid host name for a reply: {hostname!r}")
    return hostname


def _safe(text: str) -> str:
    if not _TEXT_RE.match(text):
        raise ValueError("reply text must not contain control characters")
    return text


# --- 2xx ------------------------------------------------------------------


def greeting(hostname: str, banner: str = "ESMTP") -> ReplySpec:
    """``220 <hostname> ESMTP`` (RFC 5321 §4.3.1; no enhanced code in a greeting)."""
    return ReplySpec(220, None, f"{_host(hostname)} {_safe(banner)}".rstrip())


def ehlo_ok(hostname: str, capability_lines: list[str] | tuple[str, ...] = ()) -> ReplySpec:
    """The multi-line 250 answer to EHLO: the host name, then one line per capability.

    EHLO replies carry no enhanced status codes (RFC 2034 §3).
    """
    lines = [_host(hostname)] + [_safe(line) for line in capability_lines]
    return ReplySpec(250, None, "\n".join(lines))


def helo_ok(hostname: str) -> ReplySpec:
    """``250 <hostname>`` for HELO (RFC 5321 §4.1.1.1)."""
    return ReplySpec(250, None, _host(hostname))


#: 221 after QUIT (RFC 5321 §4.1.1.10).
CLOSING: Final = ReplySpec(221, "2.0.0", "Bye")
#: Generic success.
OK: Final = ReplySpec(250, "2.0.0", "Ok")
#: MAIL FROM accepted (RFC 3463: X.1.0 for the originator).
SENDER_OK: Final = ReplySpec(250, "2.1.0", "Ok")
#: RCPT TO accepted (X.1.5: destination address valid).
RECIPIENT_OK: Final = ReplySpec(250, "2.1.5", "Ok")
#: RSET (RFC 5321 §4.1.1.5).
RESET_OK: Final = ReplySpec(250, "2.0.0", "Ok")
#: NOOP (RFC 5321 §4.1.1.9).
NOOP_OK: Final = ReplySpec(250, "2.0.0", "Ok")
#: VRFY when the server will not tell (RFC 5321 §3.5.3 recommends 252).
VRFY_CANNOT_VERIFY: Final = ReplySpec(
    252, "2.0.0", "Cannot VRFY user, but will accept message and attempt delivery"
)
#: 220 to STARTTLS (RFC 3207 §4).
STARTTLS_READY: Final = ReplySpec(220, "2.0.0", "Ready to start TLS")
#: 235 after AUTH (RFC 4954 §6).
AUTH_SUCCESSFUL: Final = ReplySpec(235, "2.7.0", "Authentication successful")


def queued(queue_id: str | None = None) -> ReplySpec:
    """``250 2.0.0 Ok: queued as <id>`` after the end of data."""
    if queue_id is None:
        return ReplySpec(250, "2.0.0", "Ok: queued")
    if not re.fullmatch(r"[\x21-\x7e]{1,64}", queue_id):
        raise ValueError("queue id must be 1-64 printable characters")
    return ReplySpec(250, "2.0.0", f"Ok: queued as {queue_id}")


def lmtp_delivered(recipient: str) -> ReplySpec:
    """LMTP per-recipient success after the end of data (RFC 2033 §4.2)."""
    return ReplySpec(250, "2.1.5", f"<{_safe(recipient)}>: delivered")


# --- 3xx ------------------------------------------------------------------

#: 354 to DATA (RFC 5321 §4.1.1.4); intermediate replies carry no enhanced code.
START_MAIL_INPUT: Final = ReplySpec(354, None, "End data with <CR><LF>.<CR><LF>")

# --- 4xx ------------------------------------------------------------------


def timeout(hostname: str) -> ReplySpec:
    """421 when the client was idle too long (RFC 5321 §4.5.3.2; SECURITY-CASES R-08)."""
    return ReplySpec(421, "4.4.2", f"{_host(hostname)} Error: timeout exceeded")


def too_many_errors(hostname: str) -> ReplySpec:
    """421 when the error budget is spent (SECURITY-CASES R-07)."""
    return ReplySpec(421, "4.7.0", f"{_host(hostname)} Error: too many errors")


def shutting_down(hostname: str) -> ReplySpec:
    """421 when the service is closing (RFC 5321 §3.8)."""
    return ReplySpec(421, "4.3.2", f"{_host(hostname)} Service not available, closing transmission channel")


#: STARTTLS refused for a passing reason (RFC 3207 §4).
TLS_NOT_AVAILABLE: Final = ReplySpec(454, "4.7.0", "TLS not available due to temporary reason")
#: Mailbox temporarily unavailable (RFC 5321 §4.2.3, 450).
MAILBOX_BUSY: Final = ReplySpec(450, "4.2.1", "Mailbox temporarily unavailable")
#: A local problem while processing (451).
LOCAL_ERROR: Final = ReplySpec(451, "4.3.0", "Error: local error in processing")
#: Out of storage (452).
INSUFFICIENT_STORAGE: Final = ReplySpec(452, "4.3.1", "Insufficient system storage")
#: Recipient limit reached: 452, not 5xx (RFC 5321 §4.5.3.1.10; SECURITY-CASES R-05).
TOO_MANY_RECIPIENTS: Final = ReplySpec(452, "4.5.3", "Error: too many recipients")
#: Temporary authentication failure (RFC 4954 §6).
AUTH_TEMPORARY_FAILURE: Final = ReplySpec(454, "4.7.0", "Temporary authentication failure")

# --- 5xx: syntax and sequence ------------------------------------------------

#: Unknown command verb (RFC 5321 §4.2.4).
COMMAND_UNRECOGNIZED: Final = ReplySpec(500, "5.5.2", "Error: command not recognized")
#: Command line over the limit (RFC 5321 §4.5.3.1.4; SECURITY-CASES R-01).
LINE_TOO_LONG: Final = ReplySpec(500, "5.5.2", "Error: line too long")
#: Bare LF in a command (SECURITY-CASES S-15).
BARE_LF_COMMAND: Final = ReplySpec(500, "5.5.2", "Error: bare <LF> received")
#: Bare LF in message content, answered after the real end of data (S-01, S-14).
BARE_LF_DATA: Final = ReplySpec(550, "5.5.2", "Error: bare <LF> received")
#: Bare CR in message content (S-04, S-17).
BARE_CR_DATA: Final = ReplySpec(550, "5.5.2", "Error: bare <CR> received")
#: A text line over 1000 octets in DATA (RFC 5321 §4.5.3.1.6; R-03).
DATA_LINE_TOO_LONG: Final = ReplySpec(500, "5.5.2", "Error: message line too long")
#: AUTH line over the limit (RFC 4954 §4).
AUTH_LINE_TOO_LONG: Final = ReplySpec(500, "5.5.6", "Authentication exchange line is too long")
#: Generic argument syntax error.
SYNTAX_ERROR: Final = ReplySpec(501, "5.5.4", "Syntax error in parameters or arguments")
#: Bad MAIL FROM address (SECURITY-CASES S-16, R-06).
BAD_SENDER_SYNTAX: Final = ReplySpec(501, "5.1.7", "Bad sender address syntax")
#: Bad RCPT TO address.
BAD_RECIPIENT_SYNTAX: Final = ReplySpec(501, "5.1.3", "Bad recipient address syntax")
#: A known but unimplemented command (RFC 5321 §4.2.4).
COMMAND_NOT_IMPLEMENTED: Final = ReplySpec(502, "5.5.1", "Error: command not implemented")
#: BDAT without CHUNKING (SECURITY-CASES S-13).
BDAT_NOT_IMPLEMENTED: Final = ReplySpec(502, "5.5.1", "Error: BDAT not implemented")
#: Transaction command before HELO/EHLO.
SEND_HELO_FIRST: Final = ReplySpec(503, "5.5.1", "Error: send HELO/EHLO first")
#: MAIL inside a transaction.
NESTED_MAIL: Final = ReplySpec(503, "5.5.1", "Error: nested MAIL command")
#: RCPT or DATA before MAIL.
NEED_MAIL: Final = ReplySpec(503, "5.5.1", "Error: need MAIL command")
#: DATA before any accepted RCPT.
NEED_RCPT: Final = ReplySpec(503, "5.5.1", "Error: need RCPT command")
#: AUTH after a successful AUTH (RFC 4954 §4).
ALREADY_AUTHENTICATED: Final = ReplySpec(503, "5.5.1", "Error: already authenticated")
#: STARTTLS inside TLS (SECURITY-CASES T-03).
TLS_ALREADY_ACTIVE: Final = ReplySpec(554, "5.5.1", "Error: TLS already active")
#: DATA after BDAT in one transaction (RFC 3030 §2).
BDAT_DATA_MIX: Final = ReplySpec(503, "5.5.1", "Error: DATA and BDAT cannot be mixed in one transaction")
#: A command parameter that is not implemented (RFC 5321 §4.2.4, 504).
PARAMETER_NOT_IMPLEMENTED: Final = ReplySpec(504, "5.5.4", "Command parameter not implemented")
#: AUTH with an unknown mechanism (RFC 4954 §4).
AUTH_MECHANISM_UNRECOGNIZED: Final = ReplySpec(504, "5.5.4", "Unrecognized authentication type")

# --- 5xx: security -----------------------------------------------------------

#: MAIL before AUTH where AUTH is mandatory (RFC 4954 §6).
AUTH_REQUIRED: Final = ReplySpec(530, "5.7.0", "Authentication required")
#: MAIL/AUTH before STARTTLS where TLS is mandatory (RFC 3207 §4; SECURITY-CASES T-04).
MUST_ISSUE_STARTTLS: Final = ReplySpec(530, "5.7.0", "Must issue a STARTTLS command first")
#: RFC 4954 §6.
AUTH_MECHANISM_TOO_WEAK: Final = ReplySpec(534, "5.7.9", "Authentication mechanism is too weak")
#: RFC 4954 §6.
AUTH_INVALID_CREDENTIALS: Final = ReplySpec(
    535, "5.7.8", "Error: authentication failed: authentication credentials invalid"
)
#: RFC 4954 §6 (SECURITY-CASES T-04).
AUTH_ENCRYPTION_REQUIRED: Final = ReplySpec(
    538, "5.7.11", "Encryption required for requested authentication mechanism"
)
#: The client answered a challenge with "*" (RFC 4954 §4).
AUTH_CANCELLED: Final = ReplySpec(501, "5.7.0", "Authentication aborted")
#: REQUIRETLS on a connection without TLS (RFC 8689 §4.1 uses X.7.10).
REQUIRETLS_NEEDS_TLS: Final = ReplySpec(530, "5.7.10", "REQUIRETLS requires a TLS connection")

# --- 5xx: mailbox, size, transaction ---------------------------------------------

#: Mailbox unavailable (RFC 5321 §4.2.3, 550).
MAILBOX_UNAVAILABLE: Final = ReplySpec(550, "5.1.1", "Mailbox unavailable")
#: Unknown local user, without naming the address.
USER_UNKNOWN: Final = ReplySpec(550, "5.1.1", "Recipient address rejected: User unknown")
#: The received message grew past the limit (SECURITY-CASES R-04 (d)).
MESSAGE_TOO_BIG: Final = ReplySpec(552, "5.3.4", "Error: message file too big")
#: A declared SIZE over the limit at MAIL (RFC 1870 §6.1; R-04 (a)).
SIZE_EXCEEDED: Final = ReplySpec(552, "5.3.4", "Message size exceeds fixed maximum message size")
#: RFC 5321 §4.2.3, 553.
MAILBOX_NAME_NOT_ALLOWED: Final = ReplySpec(553, "5.1.3", "Mailbox name not allowed")
#: Non-ASCII address without SMTPUTF8 (RFC 6531 §3.5; SECURITY-CASES C-06).
NON_ASCII_ADDRESS: Final = ReplySpec(553, "5.6.7", "Non-ASCII addresses require SMTPUTF8")
#: Generic transaction failure (RFC 5321 §4.2.3, 554).
TRANSACTION_FAILED: Final = ReplySpec(554, "5.0.0", "Transaction failed")
#: DATA with no accepted recipient (RFC 5321 §3.3).
NO_VALID_RECIPIENTS: Final = ReplySpec(554, "5.5.1", "Error: no valid recipients")
#: Pipelining violation (RFC 2920 §3.1; SECURITY-CASES S-12, P-02).
SYNC_ERROR: Final = ReplySpec(554, "5.5.0", "Error: SMTP protocol synchronization")


def greeting_refused(hostname: str) -> ReplySpec:
    """554 instead of 220: no service for this client (RFC 5321 §3.1)."""
    return ReplySpec(554, "5.7.1", f"{_host(hostname)} No SMTP service here")


def recipient_rejected(address: str, reason: str = "User unknown") -> ReplySpec:
    """``550 5.1.1 <addr>: Recipient address rejected: <reason>``."""
    return ReplySpec(550, "5.1.1", f"<{_safe(address)}>: Recipient address rejected: {_safe(reason)}")


def sender_rejected(address: str, reason: str = "Access denied") -> ReplySpec:
    """``553 5.7.1 <addr>: Sender address rejected: <reason>``."""
    return ReplySpec(553, "5.7.1", f"<{_safe(address)}>: Sender address rejected: {_safe(reason)}")


def relay_denied(address: str) -> ReplySpec:
    """``554 5.7.1 <addr>: Relay access denied``."""
    return ReplySpec(554, "5.7.1", f"<{_safe(address)}>: Relay access denied")


def unsupported_parameter(keyword: str) -> ReplySpec:
    """``555 5.5.4 Unsupported option: KEYWORD`` (RFC 5321 §4.2.3)."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9=-]{0,63}", keyword):
        raise ValueError("invalid parameter keyword")
    return ReplySpec(555, "5.5.4", f"Unsupported option: {keyword}")


def syntax(command: str) -> ReplySpec:
    """``501 5.5.4 Syntax: <usage>``, e.g. ``syntax("MAIL FROM:<address>")``."""
    return ReplySpec(501, "5.5.4", f"Syntax: {_safe(command)}")
