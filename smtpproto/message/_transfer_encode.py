"""Content-Transfer-Encoding writers (RFC 2045 §6) and the choice between them.

* :func:`encode_quoted_printable` — RFC 2045 §6.7, binary-safe: CRLF pairs are hard line
  breaks, a bare CR or LF is written as ``=0D`` / ``=0A``, so decoding gives back the
  exact input bytes. Lines are at most 76 characters (soft breaks ``=`` CRLF).
* :func:`encode_base64` — RFC 2045 §6.8, 76-character lines.
* :func:`choose_encoding` — ``7bit`` when the data already is 7bit (§2.7), ``8bit`` only
  when allowed (§2.8), ``binary`` only when allowed (§2.9), else whichever of
  quoted-printable and base64 is smaller.
* :func:`normalize_newlines` — CRLF, bare CR and bare LF all become CRLF, so a text body
  can never carry a bare-LF line that a relay would read as an end of data (H-10).
"""

from __future__ import annotations

import binascii
import re
from typing import Literal

__all__ = [
    "Encoding",
    "choose_encoding",
    "encode_base64",
    "encode_body",
    "encode_quoted_printable",
    "is_line_safe",
    "normalize_newlines",
]

Encoding = Literal["7bit", "8bit", "binary", "quoted-printable", "base64"]

#: RFC 2045 §6.7 (5): encoded lines are no more than 76 characters long.
QP_LINE = 76
#: RFC 5322 §2.1.1 / RFC 2045 §2.7: at most 998 octets between CRLFs.
MAX_LINE = 998

# RFC 2045 §6.7 (2): octets 33-60 and 62-126 may stand for themselves; space and tab too,
# except at the end of an encoded line (rule 3).
_QP_SAFE_BYTES = bytes(b for b in range(256) if 33 <= b <= 60 or 62 <= b <= 126 or b in (9, 32))
_NEWLINES = re.compile(rb"\r\n|\r|\n")
_DOT_LINE = re.compile(rb"^\.$", re.MULTILINE)


def normalize_newlines(data: bytes) -> bytes:
    """Turn every line ending (CRLF, bare LF, bare CR) into CRLF (RFC 5322 §2.3, H-10)."""
    return _NEWLINES.sub(b"\r\n", data)


def encode_quoted_printable(data: bytes) -> bytes:
    """Quoted-printable encode *data* (RFC 2045 §6.7); exact for any input bytes.

    CRLF pairs in *data* become hard line breaks; every other octet that is not a safe
    printable character — including a bare CR or LF — is written as ``=XX``, and white
    space at the end of a line is encoded (rule 3). The output uses CRLF line ends, has no
    line longer than 76 characters (soft breaks never split an escape), never has a line
    that is a lone ``.``, and ends with CRLF only if *data* did.
    """
    data = bytes(data)
    if not data:
        return b""
    # binascii does the escaping and soft-wrapping in C. Each CRLF-delimited line is
    # encoded in binary mode, so its bare CR / LF octets become =0D / =0A; the soft
    # breaks it emits as "=\n" are turned into "=\r\n".
    b2a = binascii.b2a_qp
    out = b"\r\n".join([b2a(line, quotetabs=False, istext=False) for line in data.split(b"\r\n")])
    out = out.replace(b"=\n", b"=\r\n")
    if b"\n.\r" in out or out.startswith(b".\r") or out.endswith(b"\n.") or out == b".":
        # A line holding only "." (possible after a soft break): encode the dot, so no
        # relay that forgets dot-stuffing can see an end of data in it.
        out = b"\r\n".join(b"=2E" if ln == b"." else ln for ln in out.split(b"\r\n"))
    return out


def encode_base64(data: bytes) -> bytes:
    """Base64 encode *data* (RFC 2045 §6.8) in CRLF-terminated lines of 76 characters."""
    data = bytes(data)
    if not data:
        return b""
    encoded = binascii.b2a_base64(data, newline=False)
    return b"".join(encoded[i : i + 76] + b"\r\n" for i in range(0, len(encoded), 76))


def is_line_safe(data: bytes) -> bool:
    """True if *data* has no NUL, no CR or LF outside CRLF pairs and no line over 998
    octets — the conditions RFC 2045 §2.7/§2.8 put on ``7bit`` and ``8bit`` data."""
    if b"\x00" in data:
        return False
    crlf = data.count(b"\r\n")
    if data.count(b"\r") != crlf or data.count(b"\n") != crlf:
        return False
    if len(data) <= MAX_LINE:
        return True
    start = 0
    while True:
        end = data.find(b"\r\n", start)
        if end < 0:
            return len(data) - start <= MAX_LINE
        if end - start > MAX_LINE:
            return False
        start = end + 2


def _qp_size(data: bytes) -> int:
    # CRLF pairs are hard line breaks, not escapes.
    unsafe = len(data.translate(None, _QP_SAFE_BYTES)) - 2 * data.count(b"\r\n")
    size = len(data) + 2 * unsafe
    return size + 3 * (size // (QP_LINE - 1))  # soft breaks, roughly


def _base64_size(data: bytes) -> int:
    size = (len(data) + 2) // 3 * 4
    return size + 2 * ((size + 75) // 76)


def choose_encoding(
    data: bytes, *, allow_8bit: bool = False, allow_binary: bool = False
) -> Encoding:
    """Pick the Content-Transfer-Encoding for *data* (already in its final line form).

    ``7bit`` if *data* is ASCII and line-safe (:func:`is_line_safe`); ``8bit`` if it is
    line-safe and *allow_8bit* (the peer offered 8BITMIME, RFC 6152); ``binary`` if
    *allow_binary* (BINARYMIME, RFC 3030); otherwise the smaller of quoted-printable and
    base64 (quoted-printable on a tie, being readable).
    """
    data = bytes(data)
    if is_line_safe(data):
        if data.isascii():
            return "7bit"
        if allow_8bit or allow_binary:
            return "8bit"
    if allow_binary:
        return "binary"
    return "quoted-printable" if _qp_size(data) <= _base64_size(data) else "base64"


def encode_body(data: bytes, encoding: str) -> bytes:
    """Encode *data* with the named Content-Transfer-Encoding.

    ``7bit`` and ``8bit`` check that the data qualifies (RFC 2045 §2.7/§2.8) and raise
    ``ValueError`` otherwise (H-09: a line over 998 octets is never written); ``binary``
    passes the data through.
    """
    enc = encoding.lower()
    if enc == "quoted-printable":
        return encode_quoted_printable(data)
    if enc == "base64":
        return encode_base64(data)
    if enc in ("7bit", "8bit"):
        if not is_line_safe(data) or (enc == "7bit" and not bytes(data).isascii()):
            raise ValueError(f"data cannot be sent as {enc} (RFC 2045 §2.7/§2.8)")
        return bytes(data)
    if enc == "binary":
        return bytes(data)
    raise ValueError(f"unknown Content-Transfer-Encoding {encoding!r}")
