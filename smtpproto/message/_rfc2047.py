"""RFC 2047 encoded-words: decoding (tolerant) and encoding.

Decoding is a single left-to-right regular-expression scan whose pattern cannot
backtrack more than once per ``?`` in the input, so hostile values such as
``"=?x?q?" * 50_000`` (SECURITY-CASES H-08) stay linear.
"""

from __future__ import annotations

import binascii
import re

from ._charsets import decode_text, lookup_charset
from ._defects import Defect, DefectKind, Severity

__all__ = ["decode_words", "encode_words", "has_encoded_word", "remove_folds_in_words"]

# RFC 2047 section 2: encoded-word = "=?" charset "?" encoding "?" encoded-text "?="
# The charset may carry an RFC 2231 section 5 language suffix ("utf-8*en").
# encoded-text is taken up to the next "?" and may contain folding whitespace:
# real mailers fold inside words, and RFC 2047 section 2 tolerates dropping it.
_WORD = re.compile(r"=\?([^?\s]{1,80})\?([QqBb])\?([^?]*)\?=")
_WS_ONLY = re.compile(r"[ \t\r\n]*\Z")
_WS = re.compile(r"[ \t\r\n]+")
_Q_HEX = re.compile(rb"=([0-9A-Fa-f]{2})")


def has_encoded_word(text: str) -> bool:
    """True if ``text`` contains something shaped like an encoded-word."""
    return "=?" in text and _WORD.search(text) is not None


def _q_decode(text: str) -> bytes:
    # RFC 2047 section 4.2: "_" is always 0x20; "=XX" is an octet.  Malformed
    # "=" sequences are kept literally (tolerance over rejection).
    raw = text.replace("_", " ").encode("ascii", "replace")
    return _Q_HEX.sub(lambda m: bytes((int(m.group(1), 16),)), raw)


_NOT_B64 = re.compile(r"[^A-Za-z0-9+/=\s]")


def _b_decode(text: str) -> tuple[bytes, bool]:
    data = re.sub(r"[^A-Za-z0-9+/]", "", text)
    # Octets outside the alphabet (padding and white space aside) are dropped,
    # and the word is reported: "=?utf-8?b?!!!?=" is not an empty word.
    ok = _NOT_B64.search(text) is None
    rem = len(data) % 4
    if rem == 1:
        data, ok = data[:-1], False
    elif rem:
        data += "=" * (4 - rem)
        ok = ok and text.rstrip().endswith("=")
    try:
        return binascii.a2b_base64(data.encode("ascii")), ok
    except (binascii.Error, ValueError):
        return b"", False


_FOLD_IN_WORD = re.compile(r"=\?[^?\s]{1,80}\?[QqBb]\?[^?]*\?=")
_FOLD = re.compile(r"\r?\n[ \t]+")


def remove_folds_in_words(text: str) -> str:
    """Delete line folds that fall inside an encoded-word (mailers fold there)."""
    if "\n" not in text or "=?" not in text:
        return text
    return _FOLD_IN_WORD.sub(lambda m: _FOLD.sub("", m.group()), text)


def decode_words(text: str, defects: list[Defect] | None = None) -> str:
    """Decode every encoded-word in an (already unfolded) header text.

    Whitespace between two adjacent encoded-words is dropped (RFC 2047
    section 6.2); consecutive words in the same charset are joined as bytes
    before decoding, because mailers split multi-byte characters across words.
    Invalid words are left as they are, with a defect.
    """
    if "=?" not in text:
        return text
    out: list[str] = []
    pending: bytearray = bytearray()
    pending_cs: str | None = None
    pos = 0
    last_end = -1

    def flush() -> None:
        nonlocal pending, pending_cs
        if pending_cs is not None:
            out.append(decode_text(bytes(pending), pending_cs, defects))
        pending = bytearray()
        pending_cs = None

    for m in _WORD.finditer(text):
        start = m.start()
        gap = text[pos:start]
        if not (last_end == start or (last_end >= 0 and _WS_ONLY.match(gap))):
            flush()
            out.append(gap)
        charset = m.group(1).split("*", 1)[0]
        if m.group(2) in "Qq":
            # Spaces are illegal in Q text but common; keep them as spaces.
            data = _q_decode(m.group(3))
        else:
            data, ok = _b_decode(_WS.sub("", m.group(3)))
            if not ok and defects is not None:
                defects.append(Defect(DefectKind.INVALID_ENCODED_WORD,
                                      "invalid or badly padded base64 in encoded-word", None,
                                      Severity.WARNING))
        if lookup_charset(charset) is None:
            flush()
            if defects is not None:
                defects.append(Defect(DefectKind.UNKNOWN_CHARSET,
                                      f"unknown charset {charset!r} in encoded-word", None,
                                      Severity.ERROR))
            out.append(data.decode("utf-8", "replace"))
        else:
            if pending_cs is not None and pending_cs.lower() != charset.lower():
                flush()
            pending_cs = charset
            pending += data
        pos = last_end = m.end()
    flush()
    out.append(text[pos:])
    return "".join(out)


# RFC 2047 section 5 (3): in a phrase only these characters may stay literal in
# the "Q" encoding; we use this most restrictive set for every context.
_Q_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")
_MAX_WORD = 75  # RFC 2047 section 2: an encoded-word is at most 75 characters


def _q_char(b: int) -> str:
    if b in _Q_SAFE:
        return chr(b)
    if b == 0x20:
        return "_"
    return f"={b:02X}"


def encode_words(text: str, charset: str = "utf-8") -> str:
    """Encode ``text`` as RFC 2047 encoded-words separated by single spaces.

    Chooses "Q" when it is shorter than "B" for this text, else "B"; every word
    is at most 75 characters and never splits a character's bytes, so each word
    decodes on its own.  Raises ``LookupError`` for an unknown charset and
    ``UnicodeEncodeError`` when ``text`` cannot be represented in it.
    """
    codec = lookup_charset(charset)
    if codec is None:
        raise LookupError(f"unknown charset {charset!r}")
    label = charset.strip().lower()
    if codec in ("utf-16", "utf-32"):
        # Python would put a byte-order mark before every character; name
        # the byte order instead (RFC 2781 section 3.3).
        codec = codec + "-be"
        label = codec.replace("-be", "be")
    if not text:
        return f"=?{label}?q??="
    chars = [ch.encode(codec) for ch in text]
    q_len = sum(len(_q_char(b)) for c in chars for b in c)
    b_len = (sum(len(c) for c in chars) + 2) // 3 * 4
    enc = "q" if q_len <= b_len else "b"
    prefix = f"=?{label}?{enc}?"
    room = _MAX_WORD - len(prefix) - 2
    if room < 8:
        raise ValueError(f"charset name {charset!r} too long for an encoded-word")
    words: list[str] = []
    if enc == "q":
        cur = ""
        for c in chars:
            piece = "".join(_q_char(b) for b in c)
            if cur and len(cur) + len(piece) > room:
                words.append(prefix + cur + "?=")
                cur = ""
            cur += piece
        words.append(prefix + cur + "?=")
    else:
        max_bytes = room // 4 * 3
        buf = b""
        for c in chars:
            if buf and len(buf) + len(c) > max_bytes:
                words.append(prefix + binascii.b2a_base64(buf, newline=False).decode() + "?=")
                buf = b""
            buf += c
        words.append(prefix + binascii.b2a_base64(buf, newline=False).decode() + "?=")
    return " ".join(words)
