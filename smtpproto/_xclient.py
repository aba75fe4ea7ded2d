"""Postfix XCLIENT and XFORWARD: parse, validate and format their attributes.

Both commands carry ``NAME=value`` pairs separated by spaces, values
xtext-encoded (RFC 3461 §4), with the special values ``[UNAVAILABLE]`` and
(for host names) ``[TEMPUNAVAIL]``. Semantics, per Postfix's XCLIENT_README
and XFORWARD_README:

* **XCLIENT** (a trusted proxy tells the server who the real client is; the
  server answers with a new 220 greeting and the session restarts) —
  attributes NAME, REVERSE_NAME, ADDR, PORT, PROTO, HELO, LOGIN, DESTADDR,
  DESTPORT.
* **XFORWARD** (a content filter passes the original client's details on;
  answered with 250) — attributes NAME, ADDR, PORT, PROTO, HELO, IDENT, SOURCE.

IPv6 addresses carry the ``IPV6:`` prefix. The server advertises the
attribute names it accepts after the EHLO keyword (``XCLIENT NAME ADDR``);
see ``Capabilities.xclient`` / ``Capabilities.xforward``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from ._extensions import xtext_decode, xtext_encode

__all__ = [
    "XCLIENT_ATTRIBUTES",
    "XFORWARD_ATTRIBUTES",
    "UNAVAILABLE",
    "TEMPUNAVAIL",
    "XclientProblem",
    "XclientError",
    "NOT_AUTHORIZED",
    "parse_xclient",
    "parse_xforward",
    "format_xclient",
    "format_xforward",
    "validate_attribute",
    "format_address",
    "parse_address",
]

XCLIENT_ATTRIBUTES: Final = (
    "NAME",
    "REVERSE_NAME",
    "ADDR",
    "PORT",
    "PROTO",
    "HELO",
    "LOGIN",
    "DESTADDR",
    "DESTPORT",
)
XFORWARD_ATTRIBUTES: Final = ("NAME", "ADDR", "PORT", "PROTO", "HELO", "IDENT", "SOURCE")

UNAVAILABLE: Final = "[UNAVAILABLE]"
TEMPUNAVAIL: Final = "[TEMPUNAVAIL]"

Command = Literal["XCLIENT", "XFORWARD"]

_NAME_RE: Final = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,253}[A-Za-z0-9.])?\Z")
_PORT_RE: Final = re.compile(r"(?:0|[1-9][0-9]{0,4})\Z")
_TOKEN_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")


@dataclass(frozen=True, slots=True)
class XclientProblem:
    """What is wrong, as the reply a server should send."""

    code: int
    enhanced: str
    text: str


class XclientError(ValueError):
    """Invalid XCLIENT/XFORWARD input; ``problem`` holds the suggested reply."""

    def __init__(self, problem: XclientProblem) -> None:
        super().__init__(f"{problem.code} {problem.enhanced} {problem.text}")
        self.problem = problem


def _bad(text: str) -> XclientError:
    # Postfix answers attribute syntax errors with 501 5.5.4.
    return XclientError(XclientProblem(501, "5.5.4", text))


def parse_address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """Parse an ADDR/DESTADDR value: dotted IPv4 or ``IPV6:`` + IPv6 (prefix case-insensitive)."""
    if value[:5].upper() == "IPV6:":
        return ipaddress.IPv6Address(value[5:])
    return ipaddress.IPv4Address(value)


def format_address(address: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """Render an address for ADDR/DESTADDR (``IPV6:`` prefix for IPv6)."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    return f"IPV6:{ip.compressed}" if ip.version == 6 else str(ip)


def validate_attribute(command: Command, name: str, value: str) -> str:
    """Check one decoded attribute value; return it normalised (or raise XclientError).

    ``name`` is upper-cased; addresses come back in canonical form, PROTO and
    SOURCE upper-cased.
    """
    key = name.upper()
    allowed = XCLIENT_ATTRIBUTES if command == "XCLIENT" else XFORWARD_ATTRIBUTES
    if key not in allowed:
        raise _bad(f"Bad {command} attribute name: {name}")
    if value == UNAVAILABLE:
        return value
    if value == TEMPUNAVAIL:
        if key in ("NAME", "REVERSE_NAME"):
            return value
        raise _bad(f"Bad {command} {key} attribute value: {value}")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value) or not value:
        raise _bad(f"Bad {command} {key} attribute value")
    if key in ("NAME", "REVERSE_NAME"):
        if not _NAME_RE.match(value):
            raise _bad(f"Bad {command} {key} syntax: {value}")
        return value
    if key in ("ADDR", "DESTADDR"):
        try:
            return format_address(parse_address(value))
        except ValueError:
            raise _bad(f"Bad {command} {key} syntax: {value}") from None
    if key in ("PORT", "DESTPORT"):
        if not _PORT_RE.match(value) or int(value) > 65535:
            raise _bad(f"Bad {command} {key} syntax: {value}")
        return value
    if key == "PROTO":
        upper = value.upper()
        if command == "XCLIENT" and upper not in ("SMTP", "ESMTP"):
            raise _bad(f"Bad {command} PROTO syntax: {value}")
        if not _TOKEN_RE.match(value):
            raise _bad(f"Bad {command} PROTO syntax: {value}")
        return upper
    if key == "SOURCE":
        upper = value.upper()
        if upper not in ("LOCAL", "REMOTE"):
            raise _bad(f"Bad {command} SOURCE syntax: {value}")
        return upper
    if key == "IDENT":
        if not re.fullmatch(r"[\x21-\x7e]{1,64}", value):
            raise _bad(f"Bad {command} IDENT syntax: {value}")
        return value
    # HELO and LOGIN: any printable text of bounded length.
    if len(value) > 255:
        raise _bad(f"Bad {command} {key} attribute value: too long")
    return value


#: The reply for XCLIENT/XFORWARD from a client that is not allowed to use them.
NOT_AUTHORIZED: Final = XclientProblem(550, "5.7.0", "Error: insufficient authorization")


def _parse(command: Command, argument: str, accepted: Sequence[str] | None) -> dict[str, str]:
    text = argument.strip(" ")
    if not text:
        raise _bad(f"Syntax: {command} attribute=value...")
    out: dict[str, str] = {}
    for item in text.split(" "):
        if not item:
            continue  # tolerate runs of spaces
        name, eq, raw = item.partition("=")
        if not eq:
            raise _bad(f"Syntax: {command} attribute=value...")
        try:
            value = xtext_decode(raw)
        except ValueError:
            raise _bad(f"Bad {command} {name.upper()} attribute value encoding") from None
        key = name.upper()
        if key in out:
            raise _bad(f"Duplicate {command} attribute: {key}")
        if accepted is not None and key not in {a.upper() for a in accepted}:
            raise _bad(f"Bad {command} attribute name: {name}")
        out[key] = validate_attribute(command, key, value)
    return out


def parse_xclient(argument: str, *, accepted: Sequence[str] | None = None) -> dict[str, str]:
    """Parse the argument of ``XCLIENT`` into ``{NAME: decoded value}``.

    *accepted* restricts the names to those the server advertised. Raises
    :class:`XclientError` (reply 501 5.5.4) for an unknown or unaccepted
    attribute, a duplicate, bad xtext or a bad value. Whether the client may
    use XCLIENT at all is the application's decision (:data:`NOT_AUTHORIZED`).
    """
    return _parse("XCLIENT", argument, accepted)


def parse_xforward(argument: str, *, accepted: Sequence[str] | None = None) -> dict[str, str]:
    """Parse the argument of ``XFORWARD``; see :func:`parse_xclient`."""
    return _parse("XFORWARD", argument, accepted)


def _format(
    command: Command, attributes: Mapping[str, str], max_length: int, advertised: Sequence[str] | None
) -> list[str]:
    pieces: list[str] = []
    for name, value in attributes.items():
        key = name.upper()
        if advertised is not None and key not in {a.upper() for a in advertised}:
            raise _bad(f"{command} attribute {key} was not advertised")
        if key in ("ADDR", "DESTADDR") and value not in (UNAVAILABLE, TEMPUNAVAIL):
            # Accept a bare IPv6 address from the caller; add the prefix.
            try:
                value = format_address(value)
            except ValueError:
                pass
        checked = validate_attribute(command, key, value)
        encoded = checked if checked in (UNAVAILABLE, TEMPUNAVAIL) else xtext_encode(checked)
        pieces.append(f"{key}={encoded}")
    if not pieces:
        raise ValueError(f"{command} needs at least one attribute")
    # Split across several commands so no line exceeds max_length (incl. CRLF).
    budget = max_length - len(command) - 1 - 2
    out: list[str] = []
    current: list[str] = []
    for piece in pieces:
        if len(piece) > budget:
            raise ValueError(f"{command} attribute too long for one command line")
        if current and len(" ".join(current + [piece])) > budget:
            out.append(" ".join(current))
            current = []
        current.append(piece)
    out.append(" ".join(current))
    return out


def format_xclient(
    attributes: Mapping[str, str], *, max_length: int = 512, advertised: Sequence[str] | None = None
) -> list[str]:
    """Encode XCLIENT attributes into one or more command arguments.

    Each string is what follows ``XCLIENT `` on one command line; lines stay
    within *max_length* octets including the verb and CRLF. With *advertised*
    (the names from the server's EHLO line), an attribute the server did not
    list raises :class:`XclientError`. Values are validated, then xtext-encoded.
    """
    return _format("XCLIENT", attributes, max_length, advertised)


def format_xforward(
    attributes: Mapping[str, str], *, max_length: int = 512, advertised: Sequence[str] | None = None
) -> list[str]:
    """Encode XFORWARD attributes; see :func:`format_xclient`."""
    return _format("XFORWARD", attributes, max_length, advertised)
