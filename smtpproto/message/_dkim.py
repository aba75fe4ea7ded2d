"""DKIM canonicalization (RFC 6376 §3.4) as pure functions over bytes.

Only the canonicalization step is here: what a signer or verifier hashes. Hashing,
signing and key lookup belong to the caller.

* ``simple`` headers (§3.4.1): the fields exactly as they are.
* ``relaxed`` headers (§3.4.2): field name lower-cased, continuation lines unfolded,
  runs of WSP turned into one SP, WSP at the end of the value and around the colon removed.
* ``simple`` body (§3.4.3): trailing empty lines removed; an empty body becomes one CRLF.
* ``relaxed`` body (§3.4.4): WSP at the end of lines removed, runs of WSP inside a line
  turned into one SP, trailing empty lines removed; a non-empty body gets a final CRLF.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal, Union

__all__ = ["canonicalize_header", "canonicalize_headers", "canonicalize_body", "Method"]

Method = Literal["simple", "relaxed"]

#: A header field for :func:`canonicalize_headers`: raw field bytes (``b"Name: value"``,
#: possibly folded, with or without the final CRLF) or a ``(name, raw value)`` pair.
HeaderInput = Union[bytes, "tuple[str | bytes, str | bytes]"]

_WSP_RUN = re.compile(rb"[ \t]+")
_FOLD = re.compile(rb"\r\n(?=[ \t])")
# A field ends at a CRLF that is not followed by WSP (RFC 5322 §2.2.3).
_FIELD_END = re.compile(rb"\r\n(?![ \t])")


def _check_method(method: str) -> None:
    if method not in ("simple", "relaxed"):
        raise ValueError(f"unknown DKIM canonicalization {method!r}; use 'simple' or 'relaxed'")


def _as_bytes(value: str | bytes) -> bytes:
    # Header text is bytes on the wire; str input is taken as UTF-8 (RFC 6532 / RFC 8616).
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def canonicalize_header(field: HeaderInput, method: Method) -> bytes:
    """Canonicalize one header field; the result always ends with CRLF.

    *field* is the raw field (``b"Subject: a\\r\\n b\\r\\n"``, e.g. a parsed ``Header``'s
    ``raw``) or a ``(name, value)`` pair where *value* is everything after the colon, as
    it appeared.
    """
    _check_method(method)
    if isinstance(field, tuple):
        name, value = _as_bytes(field[0]), _as_bytes(field[1])
        if value.endswith(b"\r\n"):
            value = value[:-2]
    else:
        raw = bytes(field)
        # The field's own line break is not part of it (a parsed Header's ``raw`` has it).
        if raw.endswith(b"\r\n"):
            raw = raw[:-2]
        elif raw.endswith(b"\n"):
            raw = raw[:-1]
        name, colon, value = raw.partition(b":")
        if not colon:
            raise ValueError(f"not a header field (no colon): {raw[:40]!r}")
    if method == "simple":
        return name + b":" + value + b"\r\n"
    # §3.4.2: lower-case the name, delete WSP before the colon ...
    name = _WSP_RUN.sub(b"", name).lower()
    # ... unfold, reduce WSP runs to one SP, drop WSP at the end and after the colon.
    value = _WSP_RUN.sub(b" ", _FOLD.sub(b"", value)).strip(b" ")
    return name + b":" + value + b"\r\n"


def _split_fields(section: bytes) -> list[bytes]:
    end = section.find(b"\r\n\r\n")
    if end >= 0:
        section = section[: end + 2]
    elif section.startswith(b"\r\n"):
        return []  # an empty header section
    fields: list[bytes] = []
    start = 0
    for m in _FIELD_END.finditer(section):
        fields.append(section[start : m.end()])
        start = m.end()
    if start < len(section):
        fields.append(section[start:])
    return fields


def canonicalize_headers(headers: bytes | Iterable[HeaderInput], method: Method) -> bytes:
    """Canonicalize header fields, in the order given, and concatenate them.

    *headers* is a raw header section (bytes; read up to the empty line that ends it, if
    present) or an iterable of fields as :func:`canonicalize_header` accepts them. A DKIM
    signer/verifier passes the fields named in ``h=``, in the order §5.4.2 selects them.
    """
    _check_method(method)
    fields = _split_fields(bytes(headers)) if isinstance(headers, (bytes, bytearray)) else headers
    return b"".join(canonicalize_header(f, method) for f in fields)


def _strip_trailing_crlfs(body: bytes) -> bytes:
    end = len(body)
    while end >= 2 and body[end - 2 : end] == b"\r\n":
        end -= 2
    return body[:end]


def canonicalize_body(body: bytes, method: Method, length: int | None = None) -> bytes:
    """Canonicalize a message body (the bytes after the empty line).

    *length*, when given (the ``l=`` tag, §3.5), truncates the canonical body to that
    many octets. Line ends are CRLF; a bare CR or LF is ordinary data, as in §3.4.
    """
    _check_method(method)
    body = bytes(body)
    if method == "simple":
        # §3.4.3: remove empty lines at the end; the body then ends with exactly one CRLF.
        body = _strip_trailing_crlfs(body)
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
    else:
        lines = body.split(b"\r\n")
        # §3.4.4: reduce WSP runs to one SP; WSP at the end of a line (before a CRLF) goes.
        last = len(lines) - 1
        out = [
            _WSP_RUN.sub(b" ", line).rstrip(b" ") if i < last else _WSP_RUN.sub(b" ", line)
            for i, line in enumerate(lines)
        ]
        body = _strip_trailing_crlfs(b"\r\n".join(out))
        if body and not body.endswith(b"\r\n"):
            body += b"\r\n"
    if length is not None:
        if length < 0:
            raise ValueError("length must not be negative")
        body = body[:length]
    return body
