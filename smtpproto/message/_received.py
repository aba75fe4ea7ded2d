"""Received trace fields (RFC 5321 section 4.4, RFC 5322 section 3.6.7).

``Received: from A (B [ip]) by C via D with E id F for <G>; date``.  Every
clause is optional and free-form text appears in practice, so parsing is
keyword-driven: each known keyword takes the next word as its value, and the
comment after the ``from`` domain is searched for the connecting IP address,
the reverse-DNS name and a ``helo=`` value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from ._dates import parse_date
from ._defects import Defect

__all__ = ["Received", "parse_received"]


@dataclass(frozen=True, slots=True)
class Received:
    """One parsed Received field; ``None`` for each clause that is absent."""

    from_: str | None = None
    from_ip: str | None = None
    from_rdns: str | None = None
    helo: str | None = None
    by: str | None = None
    via: str | None = None
    with_: str | None = None
    id: str | None = None
    for_: str | None = None
    date: datetime | None = None


_TOKEN = re.compile(r"\s+|(\()|(<[^<>]*>)|([^\s()<>;]+)|(.)")
_IP = re.compile(r"\[(?:IPv6:)?([0-9A-Fa-f:.]+)(?:%\w+)?(?::\d+)?\]|"
                 r"\b(\d{1,3}(?:\.\d{1,3}){3})\b", re.ASCII)
_HELO = re.compile(r"\bhelo[= ]([^\s()\[\]]+)", re.I)
_KEYWORDS = ("from", "by", "via", "with", "id", "for")


def _tokens(text: str) -> list[tuple[bool, str]]:
    """(is_comment, text) tokens; comments nest (RFC 5322 section 3.2.2)."""
    out: list[tuple[bool, str]] = []
    i, n = 0, len(text)
    while i < n:
        m = _TOKEN.match(text, i)
        assert m is not None
        if m.group(1):
            depth, j = 1, i + 1
            while j < n and depth:
                if text[j] == "\\":
                    j += 1
                elif text[j] == "(":
                    depth += 1
                elif text[j] == ")":
                    depth -= 1
                j += 1
            out.append((True, text[i + 1:j - 1 if not depth else j]))
            i = j
            continue
        word = m.group(2) or m.group(3) or m.group(4)
        if word:
            out.append((False, word))
        i = m.end()
    return out


def parse_received(text: str, defects: list[Defect] | None = None) -> Received:
    """Parse an unfolded Received value; never raises (unknown parts are skipped)."""
    head, sep, tail = text.rpartition(";")
    if not sep:
        head, tail = text, ""
    date = parse_date(tail, defects) if tail.strip() else None
    values: dict[str, str] = {}
    from_comment: str | None = None
    toks = _tokens(head)
    i = 0
    while i < len(toks):
        is_comment, word = toks[i]
        key = word.lower()
        if not is_comment and key in _KEYWORDS and key not in values:
            j = i + 1
            while j < len(toks) and toks[j][0]:
                j += 1
            if j < len(toks) and toks[j][1].lower() not in _KEYWORDS:
                value = toks[j][1]
                if key in ("for", "id") and value.startswith("<"):
                    value = value[1:-1]
                values[key] = value
                if key == "from" and j + 1 < len(toks) and toks[j + 1][0]:
                    from_comment = toks[j + 1][1]
                i = j + 1
                continue
            if key == "from" and j < len(toks) and i + 1 < len(toks) and toks[i + 1][0]:
                from_comment = toks[i + 1][1]  # "from ([1.2.3.4])": no name at all
        i += 1
    from_ = values.get("from")
    from_ip = rdns = helo = None
    if from_ and from_.startswith("[") and "]" in from_:
        # "[ip]" or "[ip]:port": an address literal (RFC 5321 section 4.1.3)
        from_ip = from_[1:from_.index("]")].removeprefix("IPv6:")
        from_ = from_[:from_.index("]") + 1]
    if from_comment is not None:
        m = _IP.search(from_comment)
        if m is not None and from_ip is None:
            from_ip = m.group(1) or m.group(2)
        first = from_comment.split()[0] if from_comment.split() else ""
        if first and not first.startswith("[") and "." in first and "=" not in first:
            rdns = first
        hm = _HELO.search(from_comment)
        if hm is not None:
            helo = hm.group(1)
    return Received(from_=from_, from_ip=from_ip, from_rdns=rdns, helo=helo,
                    by=values.get("by"), via=values.get("via"), with_=values.get("with"),
                    id=values.get("id"), for_=values.get("for"), date=date)
