"""Header fields kept as their original bytes, with values decoded on demand."""

from __future__ import annotations

import re

from ._defects import Defect, DefectKind, Severity
from ._rfc2047 import decode_words, remove_folds_in_words

__all__ = ["Header", "unfold", "decode_raw_value", "decode_unstructured"]

# Unfolding (RFC 5322 section 2.2.3) removes the line break of a fold.  Folding
# mailers also turn one space into CRLF+TAB or add indentation, so the
# whitespace around a fold is collapsed to one space: the readable value.
_FOLD = re.compile(r"[ \t]*\r?\n[ \t]*")


def unfold(text: str) -> str:
    """Join folded lines, collapsing the whitespace at each fold into one space."""
    if "\n" not in text:
        return text.strip(" \t\r")
    return _FOLD.sub(" ", text).strip(" \t\r\n")


def decode_raw_value(raw: bytes, defects: list[Defect] | None = None,
                     offset: int | None = None) -> str:
    """Bytes of a header value to str: UTF-8 (RFC 6532), else windows-1252 with a defect."""
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        if defects is not None:
            defects.append(Defect(DefectKind.NON_ASCII_HEADER,
                                  "header bytes are not UTF-8; decoded as windows-1252", offset,
                                  Severity.WARNING))
        return raw.decode("cp1252", "replace")


def decode_unstructured(raw: bytes, defects: list[Defect] | None = None,
                        offset: int | None = None) -> str:
    """Decode an unstructured value (RFC 5322 section 3.2.5): unfold, then RFC 2047."""
    text = decode_raw_value(raw, defects, offset)
    return decode_words(unfold(remove_folds_in_words(text)), defects)


class Header:
    """One header field: its exact bytes plus a lazily decoded value.

    ``name`` is the field name as written (without trailing whitespace),
    ``raw`` the complete field including the name, colon, folds and final line
    break, ``offset`` where it starts in the parsed input (``None`` for fields
    added by editing).
    """

    __slots__ = ("_src", "_start", "_colon", "_end", "name", "lname", "offset", "_value",
                 "defects")

    def __init__(self, src: bytes, start: int, colon: int, end: int, name: str,
                 offset: int | None) -> None:
        self._src = src
        self._start = start
        self._colon = colon
        self._end = end
        self.name = name
        self.lname = name.lower()
        self.offset = offset
        self._value: str | None = None
        #: Defects found while decoding this field's value (filled on access).
        self.defects: list[Defect] = []

    @classmethod
    def from_bytes(cls, raw: bytes) -> Header:
        """Wrap already formatted field bytes (``Name: value\\r\\n``)."""
        colon = raw.find(b":")
        if colon < 0:
            raise ValueError("a header field needs a colon")
        return cls(raw, 0, colon, len(raw), raw[:colon].decode("latin-1").rstrip(" \t"), None)

    @property
    def raw(self) -> bytes:
        """The complete field as bytes, exactly as parsed (or as formatted)."""
        return self._src[self._start:self._end]

    @property
    def raw_value(self) -> bytes:
        """The bytes after the colon, without the final line break (folds kept)."""
        end = self._end
        src = self._src
        if end > self._colon + 1 and src[end - 1] == 10:
            end -= 1
            if end > self._colon + 1 and src[end - 1] == 13:
                end -= 1
        return src[self._colon + 1:end]

    @property
    def value(self) -> str:
        """The unfolded value with RFC 2047 encoded-words decoded (cached)."""
        if self._value is None:
            self._value = decode_unstructured(self.raw_value, self.defects, self.offset)
        return self._value

    def text(self) -> str:
        """The unfolded value as text, encoded-words left alone (for structured parsers)."""
        return unfold(remove_folds_in_words(
            decode_raw_value(self.raw_value, self.defects, self.offset)))

    def __repr__(self) -> str:
        return f"Header({self.name!r}, {self.raw_value!r})"
