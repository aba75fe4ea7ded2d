"""Mailing-list fields: List-Help, List-Unsubscribe, ... (RFC 2369) and List-Id (RFC 2919)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ._defects import Defect, DefectKind, Severity
from ._rfc2047 import decode_words

__all__ = ["ListHeader", "parse_list_header", "parse_list_id"]


@dataclass(frozen=True, slots=True)
class ListHeader:
    """One entry of an RFC 2369 field: a URL (``mailto:``, ``https:``...) and its comment.

    ``url`` is ``None`` for the special value ``NO`` of List-Post (section 3.4).
    """

    url: str | None
    comment: str | None = None


_ENTRY = re.compile(r"<([^<>]*)>|\(((?:[^()\\]|\\.)*)\)|(,)|([^\s<>(),]+)")


def parse_list_header(text: str, defects: list[Defect] | None = None) -> list[ListHeader]:
    """Parse an RFC 2369 value: angle-bracketed URLs separated by commas, with comments.

    RFC 2369 section 2: whitespace inside the brackets is ignored; a comment
    belongs to the URL it follows (or precedes, when it comes first).
    """
    sink: list[Defect] = [] if defects is None else defects
    out: list[ListHeader] = []
    url: str | None = None
    comment: str | None = None
    seen_url = False

    def flush() -> None:
        nonlocal url, comment, seen_url
        if seen_url:
            out.append(ListHeader(url, decode_words(comment) if comment else None))
        url, comment, seen_url = None, None, False

    for m in _ENTRY.finditer(text):
        if m.group(1) is not None:
            if seen_url:
                flush()
            url = "".join(m.group(1).split())
            seen_url = True
        elif m.group(2) is not None:
            if comment is None and m.group(2).strip():
                comment = m.group(2).strip()
        elif m.group(3):
            flush()
        else:
            word = m.group(4)
            if word.upper() == "NO" and not seen_url:
                seen_url, url = True, None
            else:
                sink.append(Defect(DefectKind.INVALID_PARAMETER,
                                   f"unbracketed text in list field: {word!r}", None,
                                   Severity.WARNING))
    flush()
    return out


_LIST_ID = re.compile(r"<([^<>\s]+)>")


def parse_list_id(text: str, defects: list[Defect] | None = None) -> str | None:
    """The list identifier of an RFC 2919 List-Id (``<list.example.org>`` → id)."""
    m = _LIST_ID.search(text)
    if m is None:
        if defects is not None:
            defects.append(Defect(DefectKind.INVALID_PARAMETER, "List-Id without <id>", None,
                                  Severity.WARNING))
        words = text.split()
        return words[-1] if words else None
    return m.group(1)
