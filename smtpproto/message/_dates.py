"""Date-time values (RFC 5322 section 3.3, obsolete forms of section 4.3).

Accepted: comments anywhere, a missing day-of-week or seconds, two- and
three-digit years (section 4.3: add 2000 below 50, else 1900), the named US
zones and military letters of RFC 822 (letters other than Z mean "unknown",
so they become UTC with a defect, as section 4.3 advises), ``asctime()``
order, and text before the last ``;`` (a Received field passed whole).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from ._defects import Defect, DefectKind, Severity

__all__ = ["parse_date"]

_MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}
_DAYS = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"}
# RFC 5322 section 4.3 obs-zone
_ZONES = {"ut": 0, "utc": 0, "gmt": 0, "z": 0, "est": -5, "edt": -4, "cst": -6, "cdt": -5,
          "mst": -7, "mdt": -6, "pst": -8, "pdt": -7}
_COMMENT = re.compile(r"\([^()]*\)")
# re.ASCII: "\d" must not match other scripts' digits (int() rejects some).
_TIME = re.compile(r"(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.\d{1,6})?)?\Z", re.ASCII)
_NUMZONE = re.compile(r"([+-])(\d\d)(\d\d)\Z", re.ASCII)
_SPLIT = re.compile(r"[\s,]+")


def _is_number(token: str) -> bool:
    return token.isascii() and token.isdigit()


def _strip_comments(text: str) -> str | None:
    # Innermost comments first; each pass removes a nesting level, and the
    # depth is bounded by the header size cap, so this stays cheap.
    for _ in range(64):
        if "(" not in text and ")" not in text:
            return text
        new = _COMMENT.sub(" ", text)
        if new == text:
            return None  # unbalanced parentheses
        text = new
    return None


def parse_date(text: str, defects: list[Defect] | None = None) -> datetime | None:
    """Parse a date-time into an aware :class:`datetime`, or ``None`` (with a defect)."""
    sink: list[Defect] = [] if defects is None else defects

    def bad(why: str) -> None:
        sink.append(Defect(DefectKind.INVALID_DATE, f"{why}: {text[:80]!r}", None,
                           Severity.WARNING))

    if ";" in text:
        text = text.rpartition(";")[2]
    clean = _strip_comments(text)
    if clean is None:
        bad("unbalanced comment in date")
        return None
    tokens = [t for t in _SPLIT.split(clean) if t]
    month = 0
    nums: list[str] = []
    time_m: re.Match[str] | None = None
    zone: int | None = None
    zone_known = True
    obsolete = False
    for tok in tokens:
        low = tok.lower()
        if low.rstrip(".")[:3] in _DAYS and not month and not nums and low.isalpha():
            continue
        if low.isalpha() and low[:3] in _MONTHS and not month and len(low) >= 3 and \
                (len(low) == 3 or low.startswith(("june", "july", "sept")) or len(low) > 3
                 and low in ("january", "february", "march", "april", "august", "october",
                             "november", "december")):
            month = _MONTHS[low[:3]]
            continue
        if time_m is None:
            tm = _TIME.match(tok)
            if tm is not None:
                time_m = tm
                continue
        if _is_number(tok) and time_m is None:
            nums.append(tok)
            continue
        if time_m is not None and zone is None:
            zm = _NUMZONE.match(tok)
            if zm is not None:
                hours, minutes = int(zm.group(2)), int(zm.group(3))
                if minutes > 59:
                    bad("invalid zone")
                    return None
                zone = (hours * 60 + minutes) * (-1 if zm.group(1) == "-" else 1)
                continue
            alpha = re.match(r"[A-Za-z]+", tok)
            if alpha is not None:
                name = alpha.group().lower()
                obsolete = True
                if name in _ZONES:
                    zone = _ZONES[name] * 60
                elif name[:3] in _ZONES:
                    zone = _ZONES[name[:3]] * 60
                else:
                    zone, zone_known = 0, False
                continue
        if _is_number(tok) and time_m is not None and len(nums) < 2:
            nums.append(tok)  # asctime(): "Fri Feb 07 10:18:12 2003"
            continue
    if time_m is None:
        bad("no time of day")
        return None
    if not month:
        if len(nums) == 3 and 1 <= int(nums[1]) <= 12:
            month = int(nums[1])
            nums = [nums[0], nums[2]]
            obsolete = True
        else:
            bad("no month")
            return None
    if len(nums) < 2:
        bad("no day or year")
        return None
    day_s, year_s = nums[0], nums[1]
    if int(day_s) > 31 and int(year_s) <= 31:
        day_s, year_s = year_s, day_s
    day, year = int(day_s), int(year_s)
    if len(year_s) <= 2:
        year += 2000 if year < 50 else 1900
        obsolete = True
    elif len(year_s) == 3:
        year += 1900
        obsolete = True
    hour, minute = int(time_m.group(1)), int(time_m.group(2))
    second = int(time_m.group(3) or 0)
    if second == 60:
        second = 59  # leap second: datetime cannot hold it
    if zone is None:
        zone, zone_known = 0, False
    if not zone_known:
        sink.append(Defect(DefectKind.OBSOLETE_DATE_SYNTAX, "unknown or missing zone; UTC assumed",
                           None, Severity.WARNING))
    elif obsolete:
        sink.append(Defect(DefectKind.OBSOLETE_DATE_SYNTAX, "obsolete date syntax", None,
                           Severity.INFO))
    try:
        return datetime(year, month, day, hour, minute, second,
                        tzinfo=timezone(timedelta(minutes=zone)))
    except (ValueError, OverflowError):
        bad("date out of range")
        return None
