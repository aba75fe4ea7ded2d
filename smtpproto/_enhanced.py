"""Enhanced mail system status codes (RFC 3463, RFC 2034, the IANA registry).

An enhanced status code is ``class.subject.detail`` (RFC 3463 §2): class 2
(success), 4 (persistent transient failure) or 5 (permanent failure); subject
and detail are 1 to 3 digits. With ENHANCEDSTATUSCODES (RFC 2034 §4) every
reply after the greeting carries one at the start of each line's text, and its
class must agree with the first digit of the reply code.

:data:`REGISTRY` holds every subject.detail of the IANA "Enumerated Status
Codes" registry, each explained in our own words, with the RFC that defined it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

__all__ = [
    "EnhancedStatus",
    "RegistryEntry",
    "REGISTRY",
    "CLASSES",
    "SUBJECTS",
    "is_enhanced_status",
    "parse_enhanced",
    "split_enhanced",
    "describe",
    "explain",
    "matches_reply_code",
]

# RFC 3463 §2: status-code = class "." subject "." detail;
# class = "2" / "4" / "5"; subject = 1*3digit; detail = 1*3digit.
_STATUS_RE: Final = re.compile(r"([245])\.([0-9]{1,3})\.([0-9]{1,3})\Z")
_LEADING_RE: Final = re.compile(r"([245]\.[0-9]{1,3}\.[0-9]{1,3})(?: +|\Z)")


@dataclass(frozen=True, slots=True, order=True)
class EnhancedStatus:
    """A parsed enhanced status code; ``str()`` gives ``"5.1.1"``."""

    klass: int
    subject: int
    detail: int

    def __post_init__(self) -> None:
        if self.klass not in (2, 4, 5):
            raise ValueError("enhanced status class must be 2, 4 or 5")
        if not (0 <= self.subject <= 999 and 0 <= self.detail <= 999):
            raise ValueError("enhanced status subject and detail must be 0..999")

    @classmethod
    def parse(cls, text: str) -> EnhancedStatus:
        """Parse ``"c.s.d"``; ``ValueError`` if it is not RFC 3463 syntax."""
        m = _STATUS_RE.match(text)
        if not m:
            raise ValueError(f"not an enhanced status code: {text!r}")
        return cls(int(m.group(1)), int(m.group(2)), int(m.group(3)))

    def __str__(self) -> str:
        return f"{self.klass}.{self.subject}.{self.detail}"

    @property
    def key(self) -> str:
        """The registry key, ``"X.subject.detail"``."""
        return f"X.{self.subject}.{self.detail}"

    @property
    def description(self) -> str:
        """Shorthand for :func:`describe`."""
        return describe(self)


@dataclass(frozen=True, slots=True)
class RegistryEntry:
    """One row of the registry: what the code means and where it is defined."""

    description: str
    reference: str


#: RFC 3463 §3.1: the meaning of each class.
CLASSES: Final[dict[int, str]] = {
    2: "Success",
    4: "Persistent transient failure",
    5: "Permanent failure",
}

#: RFC 3463 §3: the subjects (the "X.Y.0" catch-all of each is in REGISTRY).
SUBJECTS: Final[dict[int, str]] = {
    0: "Other or undefined status",
    1: "Addressing status",
    2: "Mailbox status",
    3: "Mail system status",
    4: "Network and routing status",
    5: "Mail delivery protocol status",
    6: "Message content or media status",
    7: "Security or policy status",
}

_R = RegistryEntry

#: The IANA "Enumerated Status Codes" registry, keyed ``"X.subject.detail"``.
REGISTRY: Final[dict[str, RegistryEntry]] = {
    "X.0.0": _R("Other or undefined status; no more specific code applies", "RFC 3463"),
    # Addressing (RFC 3463 §3.2)
    "X.1.0": _R("Something about an address went wrong", "RFC 3463"),
    "X.1.1": _R("The destination mailbox does not exist", "RFC 3463"),
    "X.1.2": _R("The destination system (the part after @) is unknown or cannot take mail", "RFC 3463"),
    "X.1.3": _R("The destination mailbox address is syntactically invalid", "RFC 3463"),
    "X.1.4": _R("The destination address matches more than one mailbox", "RFC 3463"),
    "X.1.5": _R("The destination address is valid", "RFC 3463"),
    "X.1.6": _R("The mailbox has moved and there is no forwarding address", "RFC 3463"),
    "X.1.7": _R("The sender's mailbox address is syntactically invalid", "RFC 3463"),
    "X.1.8": _R("The sender's system is unknown or cannot receive replies", "RFC 3463"),
    "X.1.9": _R("The message was relayed to a system that does not send delivery notifications", "RFC 3886"),
    "X.1.10": _R("The recipient's domain publishes a null MX: it accepts no mail", "RFC 7505"),
    # Mailbox (§3.3)
    "X.2.0": _R("Something about the destination mailbox went wrong", "RFC 3463"),
    "X.2.1": _R("The mailbox exists but is not accepting messages", "RFC 3463"),
    "X.2.2": _R("The mailbox is over its storage quota", "RFC 3463"),
    "X.2.3": _R("The message is larger than this mailbox accepts", "RFC 3463"),
    "X.2.4": _R("Expanding a mailing list failed", "RFC 3463"),
    # Mail system (§3.4)
    "X.3.0": _R("Something about the destination mail system went wrong", "RFC 3463"),
    "X.3.1": _R("The mail system has run out of storage", "RFC 3463"),
    "X.3.2": _R("The system is not accepting network messages (e.g. shutting down)", "RFC 3463"),
    "X.3.3": _R("The system cannot provide a feature the message requires", "RFC 3463"),
    "X.3.4": _R("The message is larger than the system accepts at all", "RFC 3463"),
    "X.3.5": _R("The system is configured incorrectly", "RFC 3463"),
    "X.3.6": _R("The requested priority was changed", "RFC 6710"),
    # Network and routing (§3.5)
    "X.4.0": _R("Something about the network or routing went wrong", "RFC 3463"),
    "X.4.1": _R("The destination host did not answer", "RFC 3463"),
    "X.4.2": _R("The connection broke or timed out during the transaction", "RFC 3463"),
    "X.4.3": _R("A directory server (e.g. DNS) failed", "RFC 3463"),
    "X.4.4": _R("No route to the destination could be found", "RFC 3463"),
    "X.4.5": _R("The mail system is congested", "RFC 3463"),
    "X.4.6": _R("A routing loop was detected", "RFC 3463"),
    "X.4.7": _R("The message could not be delivered in time and has expired", "RFC 3463"),
    # Mail delivery protocol (§3.6)
    "X.5.0": _R("Something about the mail protocol went wrong", "RFC 3463"),
    "X.5.1": _R("The command is not valid (unknown, or not allowed now)", "RFC 3463"),
    "X.5.2": _R("The command line could not be parsed", "RFC 3463"),
    "X.5.3": _R("Too many recipients for one transaction", "RFC 3463"),
    "X.5.4": _R("A command argument or parameter is not valid", "RFC 3463"),
    "X.5.5": _R("The two sides speak different protocol versions", "RFC 3463"),
    "X.5.6": _R("An authentication exchange line was too long", "RFC 4954"),
    # Content or media (§3.7)
    "X.6.0": _R("Something about the message content went wrong", "RFC 3463"),
    "X.6.1": _R("A media type in the message is not supported", "RFC 3463"),
    "X.6.2": _R("The content needs converting but conversion is prohibited", "RFC 3463"),
    "X.6.3": _R("The content needs converting but the system cannot convert it", "RFC 3463"),
    "X.6.4": _R("The content was delivered, but converting it lost information", "RFC 3463"),
    "X.6.5": _R("Converting the content failed", "RFC 3463"),
    "X.6.6": _R("The referenced message content is not available", "RFC 4468"),
    "X.6.7": _R("A non-ASCII address is not allowed for this sender or recipient", "RFC 6531"),
    "X.6.8": _R("A UTF-8 reply string is needed but the client cannot take one", "RFC 6531"),
    "X.6.9": _R("A message with UTF-8 headers cannot be passed on to a recipient", "RFC 6531"),
    # Security or policy (§3.8)
    "X.7.0": _R("Something about security or policy went wrong", "RFC 3463"),
    "X.7.1": _R("The sender is not allowed to send this message here (policy refusal)", "RFC 3463"),
    "X.7.2": _R("Expanding this mailing list is not allowed for the sender", "RFC 3463"),
    "X.7.3": _R("A security conversion is needed but cannot be done", "RFC 3463"),
    "X.7.4": _R("The security features the message needs are not supported", "RFC 3463"),
    "X.7.5": _R("A cryptographic operation (e.g. decryption) failed", "RFC 3463"),
    "X.7.6": _R("The cryptographic algorithm used is not supported", "RFC 3463"),
    "X.7.7": _R("The message failed an integrity check", "RFC 3463"),
    "X.7.8": _R("The authentication credentials are not valid", "RFC 4954"),
    "X.7.9": _R("The authentication mechanism is too weak for this server's policy", "RFC 4954"),
    "X.7.10": _R("Encryption is needed for this action", "RFC 5248"),
    "X.7.11": _R("The chosen authentication mechanism is only allowed over an encrypted connection", "RFC 4954"),
    "X.7.12": _R("A password change is needed before this mechanism can be used", "RFC 4954"),
    "X.7.13": _R("The user's account is disabled", "RFC 5248"),
    "X.7.14": _R("A trust relationship with the other side is required", "RFC 5248"),
    "X.7.15": _R("The requested priority level is too low to be accepted", "RFC 6710"),
    "X.7.16": _R("The message is too big for the requested priority", "RFC 6710"),
    "X.7.17": _R("The mailbox changed owner since the sender's reference time", "RFC 7293"),
    "X.7.18": _R("The domain changed owner since the sender's reference time", "RFC 7293"),
    "X.7.19": _R("The RRVS ownership test could not be completed", "RFC 7293"),
    "X.7.20": _R("No passing DKIM signature was found", "RFC 7372"),
    "X.7.21": _R("No DKIM signature that satisfies local policy was found", "RFC 7372"),
    "X.7.22": _R("No valid DKIM signature from the author's domain was found", "RFC 7372"),
    "X.7.23": _R("The sender failed SPF validation", "RFC 7372"),
    "X.7.24": _R("SPF validation could not be completed because of an error", "RFC 7372"),
    "X.7.25": _R("The sending host's reverse DNS did not validate", "RFC 7372"),
    "X.7.26": _R("Several authentication checks failed together", "RFC 7372"),
    "X.7.27": _R("The sender's domain publishes a null MX, so replies could not be delivered", "RFC 7505"),
    "X.7.28": _R("Too many similar messages: a mail flood was detected", "IANA registration"),
    "X.7.29": _R("ARC validation of the message failed", "RFC 8617"),
    "X.7.30": _R("The message requires TLS (REQUIRETLS) on a path that cannot provide it", "RFC 8689"),
}


def is_enhanced_status(text: str) -> bool:
    """True if *text* is RFC 3463 ``class.subject.detail`` syntax."""
    return bool(_STATUS_RE.match(text))


def parse_enhanced(text: str) -> EnhancedStatus | None:
    """Parse *text* as an enhanced status code, or None if it is not one."""
    try:
        return EnhancedStatus.parse(text)
    except ValueError:
        return None


def split_enhanced(line_text: str) -> tuple[EnhancedStatus | None, str]:
    """Split the enhanced code off the start of a reply line's text.

    ``"2.1.0 Ok"`` -> ``(EnhancedStatus(2, 1, 0), "Ok")``; text without a
    leading code comes back unchanged with None.
    """
    m = _LEADING_RE.match(line_text)
    if not m:
        return None, line_text
    return EnhancedStatus.parse(m.group(1)), line_text[m.end() :]


def _coerce(code: str | EnhancedStatus) -> EnhancedStatus:
    return code if isinstance(code, EnhancedStatus) else EnhancedStatus.parse(code)


def describe(code: str | EnhancedStatus) -> str:
    """The meaning of a code's subject.detail, in words.

    Unregistered details fall back to the subject's catch-all ("X.Y.0");
    unknown subjects to "Other or undefined status". ``ValueError`` for
    malformed input.
    """
    status = _coerce(code)
    entry = REGISTRY.get(status.key) or REGISTRY.get(f"X.{status.subject}.0")
    if entry is not None:
        return entry.description
    return REGISTRY["X.0.0"].description


def explain(code: str | EnhancedStatus) -> str:
    """A sentence with the class too, e.g. ``"Permanent failure: The destination mailbox does not exist"``."""
    status = _coerce(code)
    return f"{CLASSES[status.klass]}: {describe(status)}"


def matches_reply_code(reply_code: int, code: str | EnhancedStatus) -> bool:
    """RFC 2034 §4 / RFC 3463 §2: the class must equal the reply code's first digit."""
    status = _coerce(code)
    return reply_code // 100 == status.klass
