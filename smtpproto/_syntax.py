"""RFC 5321 / RFC 6531 grammar: domains, address literals, mailboxes, paths,
ESMTP parameters.

Every function here is pure and works on ``str`` (commands are decoded as ASCII,
or as UTF-8 once SMTPUTF8 is in force).  Parsing failures raise
:class:`SyntaxProblem`; the reader turns them into the right reply.
"""

from __future__ import annotations

import ipaddress
import re
from typing import NamedTuple

__all__ = [
    "SyntaxProblem",
    "AddressLimits",
    "is_domain",
    "is_address_literal",
    "check_domain_or_literal",
    "check_mailbox",
    "parse_path",
    "parse_params",
    "format_params",
    "has_controls",
    "has_bare_newline",
]


class SyntaxProblem(ValueError):
    """A string does not match the RFC 5321 grammar.

    ``too_long`` marks a length limit (RFC 5321 §4.5.3.1) rather than bad syntax.
    """

    def __init__(self, message: str, *, too_long: bool = False) -> None:
        super().__init__(message)
        self.too_long = too_long


class AddressLimits(NamedTuple):
    """RFC 5321 §4.5.3.1.1-3 size limits, in octets.

    (A named tuple: it is part of the key of the table of mailboxes already
    checked, and a tuple's hash is computed in C.)"""

    local_part: int = 64
    domain: int = 255
    path: int = 256


DEFAULT_LIMITS = AddressLimits()

# C0 controls and DEL: never allowed inside an argument we send or accept
# (CPython bpo-43124, aiosmtplib GHSA-v3q9-hj7j-63hq).
_CONTROLS = re.compile(r"[\x00-\x1f\x7f]")


def has_controls(text: str) -> bool:
    """True if ``text`` holds a C0 control character or DEL."""
    return _CONTROLS.search(text) is not None


# Every octet but CR and LF, for bytes.translate's delete argument.
_NOT_CR_LF = bytes(i for i in range(256) if i not in (10, 13))


def has_bare_newline(data: bytes) -> bool:
    """True if ``data`` holds a CR not followed by LF or an LF not preceded by
    CR (RFC 5321 §2.3.8: only CRLF ends a line).

    Every CR and LF must belong to a CRLF pair: the CRs and LFs (kept by one
    table-driven translate, cheaper than counting each separately) must number
    exactly twice the CRLF pairs.
    """
    return len(data.translate(None, _NOT_CR_LF)) != 2 * data.count(b"\r\n")


# sub-domain = Let-dig [Ldh-str]; RFC 6531 §3.3 adds U-label (any non-ASCII run is
# accepted here; IDNA validity is the application's business).
_LABEL = r"(?:[A-Za-z0-9\u0080-\U0010ffff](?:[A-Za-z0-9\u0080-\U0010ffff-]*[A-Za-z0-9\u0080-\U0010ffff])?)"
_DOMAIN_RE = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_STD_TAG = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?")
_DCONTENT = re.compile(r"[\x21-\x5a\x5e-\x7e]+")


def is_domain(text: str, *, utf8: bool = False) -> bool:
    """RFC 5321 §4.1.2 ``Domain`` (with RFC 6531 U-labels when ``utf8``)."""
    if not utf8 and not text.isascii():
        return False
    return _DOMAIN_RE.fullmatch(text) is not None


def is_address_literal(text: str) -> bool:
    """RFC 5321 §4.1.3 ``address-literal``: ``[IPv4]``, ``[IPv6:...]`` or
    ``[tag:general]``."""
    if len(text) < 3 or text[0] != "[" or text[-1] != "]":
        return False
    inner = text[1:-1]
    if inner[:5].lower() == "ipv6:":
        try:
            ipaddress.IPv6Address(inner[5:])
        except ValueError:
            return False
        return True
    if ":" in inner:
        tag, _, content = inner.partition(":")
        return (
            _STD_TAG.fullmatch(tag) is not None
            and tag.lower() != "ipv6"
            and _DCONTENT.fullmatch(content) is not None
        )
    parts = inner.split(".")
    # Snum = 1*3DIGIT representing 0-255; ipaddress rejects leading zeros which RFC
    # 5321 allows ("010"), so check by hand.
    return len(parts) == 4 and all(
        p.isascii() and p.isdigit() and 1 <= len(p) <= 3 and int(p) <= 255 for p in parts
    )


def check_domain_or_literal(text: str, *, utf8: bool = False, limit: int = 255) -> None:
    """Raise :class:`SyntaxProblem` unless ``text`` is a Domain or address-literal."""
    if len(text.encode("utf-8")) > limit:
        raise SyntaxProblem(f"domain longer than {limit} octets", too_long=True)
    if not (is_domain(text, utf8=utf8) or is_address_literal(text)):
        raise SyntaxProblem(f"not a domain or address literal: {text!r}")


# atext (RFC 5321 §4.1.2 via RFC 5322 §3.2.3) plus UTF-8 (RFC 6531 §3.3).
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\u0080-\U0010ffff]+"
_DOT_STRING = re.compile(rf"{_ATOM}(?:\.{_ATOM})*")
# Quoted-string: qtextSMTP = %d32-33 / %d35-91 / %d93-126, quoted-pairSMTP = "\" %d32-126
_QUOTED = re.compile(r'"(?:[\x20\x21\x23-\x5b\x5d-\x7e\u0080-\U0010ffff]|\\[\x20-\x7e])*"')


def _split_mailbox(text: str) -> tuple[str, str]:
    """Split ``local@domain`` at the right ``@`` (a quoted local part may hold one)."""
    if text.startswith('"'):
        m = _QUOTED.match(text)
        if m is None:
            raise SyntaxProblem("bad quoted local part")
        local = m.group(0)
        rest = text[m.end():]
        if not rest.startswith("@"):
            raise SyntaxProblem("missing @ after the local part")
        return local, rest[1:]
    local, at, domain = text.rpartition("@")
    if not at:
        raise SyntaxProblem("missing @ in mailbox")
    return local, domain


def check_mailbox(
    text: str, *, utf8: bool = False, limits: AddressLimits = DEFAULT_LIMITS
) -> None:
    """Raise :class:`SyntaxProblem` unless ``text`` is an RFC 5321 ``Mailbox``
    (``Local-part "@" (Domain / address-literal)``) within ``limits``."""
    key = (text, utf8, limits)
    if key in _MAILBOXES_SEEN:
        return
    _check_mailbox(text, utf8, limits)
    if len(_MAILBOXES_SEEN) >= _MAILBOXES_SEEN_MAX:
        _MAILBOXES_SEEN.clear()
    _MAILBOXES_SEEN[key] = None


# Mailboxes that passed, by (text, utf8, limits): a client sends the same
# sender for every message and both roles check each path on construction
# and again against the session, so most checks repeat one already made.
# Only successes are kept, and the table is emptied when full.
_MAILBOXES_SEEN: dict[tuple[str, bool, AddressLimits], None] = {}
_MAILBOXES_SEEN_MAX = 1024


def _check_mailbox(text: str, utf8: bool, limits: AddressLimits) -> None:
    if has_controls(text):
        raise SyntaxProblem("control character in address")
    if not utf8 and not text.isascii():
        raise SyntaxProblem("non-ASCII address without SMTPUTF8")
    local, domain = _split_mailbox(text)
    if len(local.encode("utf-8")) > limits.local_part:
        raise SyntaxProblem(f"local part longer than {limits.local_part} octets", too_long=True)
    if not (_DOT_STRING.fullmatch(local) or _QUOTED.fullmatch(local)):
        raise SyntaxProblem(f"bad local part {local!r}")
    check_domain_or_literal(domain, utf8=utf8, limit=limits.domain)


_AT_DOMAIN = re.compile(r"@(\[[^\]]*\]|[^,:\[\]]+)")


def _path_end(text: str) -> int:
    """The index of the ">" that closes the path opening ``text``.

    A quoted local part may hold a ">", and so may a general address literal
    (dcontent = %d33-90 / %d94-126 includes '"' and '>'), so quotes count only
    where a mailbox starts and brackets only after an "@".  (:func:`parse_path`
    calls this only when a quote, a bracket or a source route comes before the
    first ">"; otherwise that ">" is the end.)
    """
    i = 1
    n = len(text)
    route = text[1:2] == "@"
    at_mailbox_start = not route
    in_quote = in_literal = False
    prev = "<"
    while i < n:
        c = text[i]
        start = at_mailbox_start
        at_mailbox_start = False
        if in_quote:
            if c == "\\":
                i += 1
            elif c == '"':
                in_quote = False
        elif in_literal:
            in_literal = c != "]"
        elif c == '"' and start:
            in_quote = True
        elif c == "[" and prev == "@":
            in_literal = True
        elif c == ":" and route:
            route = False
            at_mailbox_start = True
        elif c == ">":
            return i
        prev = c
        i += 1
    raise SyntaxProblem("unterminated path")


def parse_path(
    text: str,
    *,
    allow_null: bool,
    allow_postmaster: bool,
    utf8: bool,
    limits: AddressLimits = DEFAULT_LIMITS,
) -> tuple[str, str]:
    """Parse ``"<" [A-d-l ":"] Mailbox ">"`` at the start of ``text``.

    Returns ``(mailbox, rest)``; the source route (RFC 5321 §4.1.2 ``A-d-l``) is
    accepted and dropped, as §C and §4.1.1.3 require.  ``"<>"`` gives ``""`` when
    ``allow_null`` (a reverse path); ``"<Postmaster>"`` is accepted when
    ``allow_postmaster`` (a forward path, §4.1.1.3).
    """
    if not text.startswith("<"):
        raise SyntaxProblem("path must be enclosed in <>")
    i = text.find(">")
    if i < 0 or text[1:2] == "@" or '"' in text[1:i] or "[" in text[1:i]:
        i = _path_end(text)
    inner = text[1:i]
    rest = text[i + 1:]
    # RFC 5321 §4.5.3.1.3: 256 octets "including the punctuation".
    if i + 1 > limits.path or not inner.isascii() and len(text[: i + 1].encode("utf-8")) > limits.path:
        raise SyntaxProblem(f"path longer than {limits.path} octets", too_long=True)
    if inner == "":
        if not allow_null:
            raise SyntaxProblem("null path not allowed here")
        return "", rest
    if inner.startswith("@"):
        # A-d-l = At-domain *( "," At-domain ); a hop may be an address literal,
        # which may itself hold ":" or ",".
        pos = 0
        while True:
            m = _AT_DOMAIN.match(inner, pos)
            if m is None:
                raise SyntaxProblem("bad source route")
            check_domain_or_literal(m.group(1), utf8=utf8, limit=limits.domain)
            pos = m.end()
            if inner[pos:pos + 1] == ",":
                pos += 1
                continue
            if inner[pos:pos + 1] != ":":
                raise SyntaxProblem("bad source route")
            break
        inner = inner[pos + 1:]
    if allow_postmaster and inner.lower() == "postmaster":
        return inner, rest
    check_mailbox(inner, utf8=utf8, limits=limits)
    return inner, rest


_KEYWORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")
# esmtp-value = 1*(%d33-60 / %d62-126), RFC 6531 §3.3 adds UTF8-non-ascii.
_VALUE = re.compile(r"[\x21-\x3c\x3e-\x7e\u0080-\U0010ffff]+")


def parse_params(text: str) -> dict[str, str | None]:
    """Parse ``esmtp-param *(SP esmtp-param)`` (RFC 5321 §4.1.2).

    Keywords are upper-cased (they are case-insensitive); a repeated keyword is a
    syntax error.  A keyword without ``=value`` maps to ``None``.
    """
    params: dict[str, str | None] = {}
    if text == "":
        return params
    for item in text.split(" "):
        if item == "":
            raise SyntaxProblem("empty parameter (doubled space)")
        keyword, eq, value = item.partition("=")
        if _KEYWORD.fullmatch(keyword) is None:
            raise SyntaxProblem(f"bad parameter keyword {keyword!r}")
        key = keyword.upper()
        if key in params:
            raise SyntaxProblem(f"parameter {key} repeated")
        if eq:
            if _VALUE.fullmatch(value) is None:
                raise SyntaxProblem(f"bad value for parameter {key}")
            params[key] = value
        else:
            params[key] = None
    return params


def check_param(keyword: str, value: str | None) -> None:
    """Raise :class:`SyntaxProblem` unless ``keyword[=value]`` is a valid
    esmtp-param (C-03: no SP, ``=``, CR, LF or controls can sneak in)."""
    if _KEYWORD.fullmatch(keyword) is None:
        raise SyntaxProblem(f"bad parameter keyword {keyword!r}")
    if value is not None and _VALUE.fullmatch(value) is None:
        raise SyntaxProblem(f"bad value for parameter {keyword}: {value!r}")


def format_params(params: dict[str, str | None]) -> str:
    """Render parameters as they go on the wire (leading space included)."""
    return "".join(f" {k}" if v is None else f" {k}={v}" for k, v in params.items())
