"""Envelope helpers for a sending client.

* :func:`envelope_from_headers` — the SMTP reverse-path and forward-paths (RFC 5321
  §3.3) a client would use for a message, taken from its header fields, honouring the
  most recent block of Resent-* fields (RFC 5322 §3.6.6).
* :func:`strip_bcc` — the bytes to transmit: Bcc and Resent-Bcc fields removed from the
  top-level header section (RFC 5322 §3.6.3 allows removing them), every other byte kept.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    from ._message import Message

__all__ = ["EnvelopeError", "envelope_from_headers", "strip_bcc"]

MessageInput = Union[bytes, bytearray, memoryview, "Message"]

_RECIPIENT_FIELDS = ("to", "cc", "bcc")
# Field name: everything up to the colon; obsolete syntax (RFC 5322 §4.5) allows WSP
# between the name and the colon.
_FIELD_NAME = re.compile(rb"([\x21-\x39\x3b-\x7e]+)[ \t]*:")


class EnvelopeError(ValueError):
    """The header fields do not give an envelope (e.g. no sender)."""


def _as_message(message: MessageInput) -> Message:
    if isinstance(message, (bytes, bytearray, memoryview)):
        from ._parser import parse

        return parse(bytes(message))
    return message


def _mailboxes(text: str) -> list[str]:
    """addr-specs of every mailbox in an address list, group members included."""
    from ._address import parse_address_list

    out: list[str] = []
    for item in parse_address_list(text, []):
        members = getattr(item, "addresses", None)
        for mailbox in members if members is not None else [item]:
            spec = getattr(mailbox, "addr_spec", "")
            if spec:
                out.append(spec)
    return out


def _dedupe(addresses: list[str]) -> list[str]:
    # The local part is case-sensitive (RFC 5321 §2.4), the domain is not.
    seen: set[str] = set()
    out: list[str] = []
    for spec in addresses:
        local, at, domain = spec.rpartition("@")
        key = f"{local}@{domain.lower()}" if at else spec
        if key not in seen:
            seen.add(key)
            out.append(spec)
    return out


def _latest_resent_block(fields: list[tuple[str, str]]) -> list[tuple[str, str]] | None:
    """The first (= most recent, RFC 5322 §3.6.6: prepended) run of Resent-* fields.

    A run ends at the first other field, or when a once-per-block field (Resent-Date,
    -From, -Sender, -Message-ID) repeats in the run: a second, older block written right
    below. Resent-To/-Cc/-Bcc may repeat within a block.
    """
    block: list[tuple[str, str]] = []
    names: set[str] = set()
    for lname, text in fields:
        if lname.startswith("resent-"):
            if lname in names and lname not in ("resent-to", "resent-cc", "resent-bcc"):
                break
            block.append((lname, text))
            names.add(lname)
        elif block:
            break
    return block or None


def envelope_from_headers(message: MessageInput) -> tuple[str, list[str]]:
    """Return ``(sender, recipients)`` addr-specs for sending *message*.

    Without Resent-* fields: the sender is the Sender field's mailbox if present, else
    the first From mailbox; recipients are every mailbox of To, Cc and Bcc (group
    members included), in order, without duplicates. With Resent-* fields the most
    recent resent block is used the same way (Resent-Sender / Resent-From; Resent-To,
    Resent-Cc, Resent-Bcc), as RFC 5322 §3.6.6 describes a resend.

    *message* is a ``Message`` or raw bytes. Raises :class:`EnvelopeError` when no
    sender can be found.
    """
    msg = _as_message(message)
    fields = [(h.lname, h.text()) for h in msg.headers]
    block = _latest_resent_block(fields)
    prefix = ""
    if block is not None:
        fields = block
        prefix = "resent-"

    def collect(name: str) -> list[str]:
        out: list[str] = []
        for lname, text in fields:
            if lname == prefix + name:
                out.extend(_mailboxes(text))
        return out

    senders = collect("sender") or collect("from")
    if not senders:
        where = "the latest Resent- block" if prefix else "the header"
        raise EnvelopeError(f"no {prefix}sender or {prefix}from mailbox in {where}")
    recipients: list[str] = []
    for name in _RECIPIENT_FIELDS:
        recipients.extend(collect(name))
    return senders[0], _dedupe(recipients)


def strip_bcc(message: MessageInput) -> bytes:
    """The message bytes without its Bcc and Resent-Bcc fields; all else byte for byte.

    Only the top-level header section is touched (an attached message/rfc822 keeps its
    own fields). A field is removed with all its continuation lines. Works on CRLF as well
    as on bare-LF input, and on a ``Message`` (via ``to_bytes()``).
    """
    if isinstance(message, (bytes, bytearray, memoryview)):
        data = bytes(message)
    else:
        data = message.to_bytes()
    out = bytearray()
    pos = 0
    n = len(data)
    dropping = False
    while pos < n:
        nl = data.find(b"\n", pos)
        end = n if nl < 0 else nl + 1
        line = data[pos:end]
        if line in (b"\r\n", b"\n"):
            break  # the empty line that ends the header section
        if line[:1] in (b" ", b"\t"):
            if not dropping:  # a continuation line belongs to the field above it
                out += line
        else:
            m = _FIELD_NAME.match(line)
            dropping = m is not None and m.group(1).lower() in (b"bcc", b"resent-bcc")
            if not dropping:
                out += line
        pos = end
    out += data[pos:]
    return bytes(out)
