"""Message-ID, In-Reply-To and References (RFC 5322 section 3.6.4).

``msg-id = "<" id-left "@" id-right ">"``; real mail also carries ids without
angle brackets or with obsolete whitespace and comments inside (section 4.5.4).
Each is returned without its brackets; lenient forms add a defect.
"""

from __future__ import annotations

import re

from ._defects import Defect, DefectKind, Severity

__all__ = ["parse_message_ids"]

_ANGLE = re.compile(r"<([^<>]*)>")
_COMMENT = re.compile(r"\([^()]*\)")


def parse_message_ids(text: str, defects: list[Defect] | None = None) -> list[str]:
    """Every message identifier in ``text`` (without ``<>``), in order."""
    sink: list[Defect] = [] if defects is None else defects
    found = [m.group(1).strip() for m in _ANGLE.finditer(text)]
    ids = [f for f in found if f]
    if found and len(ids) < len(found):
        sink.append(Defect(DefectKind.INVALID_MESSAGE_ID, "empty message id '<>'", None,
                           Severity.WARNING))
    if ids:
        for i in ids:
            if "@" not in i or " " in i or "(" in i:
                sink.append(Defect(DefectKind.INVALID_MESSAGE_ID,
                                   f"malformed message id {i!r}", None, Severity.INFO))
        return ids
    if found:
        return []
    # No angle brackets: accept bare words (obsolete / broken mailers).
    bare = _COMMENT.sub(" ", text).split()
    if bare:
        sink.append(Defect(DefectKind.INVALID_MESSAGE_ID, "message id without angle brackets",
                           None, Severity.WARNING))
    return bare
