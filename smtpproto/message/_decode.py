"""Content-Transfer-Encoding decoding (RFC 2045 section 6), tolerant.

Decoders never raise: damaged input is decoded as well as possible and each
repair is reported as a defect, because a mail reader must show what it can.
"""

from __future__ import annotations

import binascii
import re

from ._defects import Defect, DefectKind, Severity

__all__ = ["decode_transfer", "IDENTITY_ENCODINGS"]

#: Encodings whose bytes are the content itself (RFC 2045 section 6.2).
IDENTITY_ENCODINGS = frozenset({"", "7bit", "8bit", "binary"})

_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_DELETE = bytes(b for b in range(256) if b not in _B64_ALPHABET)
_B64_WS = b" \t\r\n"
_QP_BAD_EQ = re.compile(rb"=(?![0-9A-Fa-f]{2}|[ \t]*\r?\n|[ \t]*\Z)")
_QP_TRAILING_WS = re.compile(rb"[ \t]+(?=\r?\n)")


def _base64(data: bytes, defects: list[Defect], offset: int | None) -> bytes:
    # RFC 2045 section 6.8: characters outside the alphabet are ignored (with a
    # defect when they are not line breaks).  Padding is dropped and rebuilt so
    # that missing or surplus "=" do not lose the data.
    clean = data.translate(None, _B64_DELETE)
    junk = len(data) - len(clean) - sum(data.count(c) for c in (b" ", b"\t", b"\r", b"\n", b"="))
    if junk:
        defects.append(Defect(DefectKind.INVALID_BASE64,
                              f"{junk} characters outside the base64 alphabet ignored", offset,
                              Severity.WARNING))
    first_pad = data.find(b"=")
    if first_pad >= 0 and data[first_pad:].translate(None, b"= \t\r\n"):
        defects.append(Defect(DefectKind.INVALID_BASE64, "data after base64 padding", offset,
                              Severity.WARNING))
    rem = len(clean) % 4
    if rem == 1:
        defects.append(Defect(DefectKind.INVALID_BASE64, "truncated base64 (one stray character)",
                              offset, Severity.WARNING))
        clean = clean[:-1]
    elif rem:
        clean += b"=" * (4 - rem)
    try:
        return binascii.a2b_base64(clean)
    except binascii.Error:  # pragma: no cover - the input is cleaned above
        return b""


def _quoted_printable(data: bytes, defects: list[Defect], offset: int | None) -> bytes:
    # RFC 2045 section 6.7 rule (3): trailing whitespace on a line was added in
    # transport and must be removed; "=" not followed by two hex digits or a
    # line break is kept literally (the "robust" advice in the same section).
    if _QP_BAD_EQ.search(data):
        defects.append(Defect(DefectKind.INVALID_QUOTED_PRINTABLE,
                              "'=' not followed by two hex digits kept literally", offset,
                              Severity.WARNING))
    if b" \r\n" in data or b"\t\r\n" in data or b" \n" in data or b"\t\n" in data:
        data = _QP_TRAILING_WS.sub(b"", data)
    return binascii.a2b_qp(data)


def _uudecode(data: bytes, defects: list[Defect], offset: int | None) -> bytes:
    out = bytearray()
    started = False
    for line in data.splitlines():
        if not started:
            started = line.startswith(b"begin ")
            continue
        if line.strip() in (b"end", b"`"):
            if line.strip() == b"end":
                return bytes(out)
            continue
        if not line:
            continue
        try:
            out += binascii.a2b_uu(line)
        except binascii.Error:
            # Some encoders pad lines wrongly; decode by the declared length.
            length = (line[0] - 32) & 63
            try:
                out += binascii.a2b_uu(line[: (length + 2) // 3 * 4 + 1])
            except binascii.Error:
                defects.append(Defect(DefectKind.INVALID_UUENCODE, "undecodable uuencode line",
                                      offset, Severity.WARNING))
    if not started:
        defects.append(Defect(DefectKind.INVALID_UUENCODE, "no 'begin' line", offset,
                              Severity.WARNING))
        return data
    return bytes(out)


def decode_transfer(data: bytes, encoding: str, defects: list[Defect],
                    offset: int | None = None) -> bytes:
    """Undo a Content-Transfer-Encoding; unknown encodings return the bytes unchanged.

    ``encoding`` is matched case-insensitively.  ``x-uuencode`` (and its
    aliases) is supported as an extension.
    """
    enc = encoding.strip().lower()
    if enc in IDENTITY_ENCODINGS:
        return data
    if enc == "base64":
        return _base64(data, defects, offset)
    if enc == "quoted-printable":
        return _quoted_printable(data, defects, offset)
    if enc in ("x-uuencode", "uuencode", "x-uue", "uue"):
        return _uudecode(data, defects, offset)
    defects.append(Defect(DefectKind.UNKNOWN_TRANSFER_ENCODING,
                          f"unknown Content-Transfer-Encoding {encoding!r}; body left as is",
                          offset, Severity.ERROR))
    return data
