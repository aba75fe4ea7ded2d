"""stalwart's per-header vectors (stalwart/vectors/*.json) against our header views.

Each vector value is put into a real header field and parsed as a message, so
folding and header-section termination are exercised too.  Disagreements are
deliberate and listed with the reason; ``strict=True`` xfails turn into
failures if one of them starts to agree, keeping the tables honest.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from smtpproto.message import Address, Group, Message, parse, parse_list_header

from corpus_support import corpus_dir

ROOT = corpus_dir()
pytestmark = pytest.mark.skipif(ROOT is None, reason="shared corpus not found")


def _vectors(kind: str) -> list[dict[str, Any]]:
    if ROOT is None:
        return []
    data: list[dict[str, Any]] = json.loads(
        (ROOT / "stalwart" / "vectors" / f"{kind}.json").read_text("utf-8"))
    return data


def _message(name: str, value: str) -> Message:
    data = name.encode() + b": " + value.encode("utf-8")
    if not data.endswith(b"\n"):
        data += b"\n"
    return parse(data)


def _params(kind: str, known: dict[int, str]) -> list[Any]:
    out = []
    for i, vec in enumerate(_vectors(kind)):
        marks = [pytest.mark.xfail(reason=known[i], strict=True)] if i in known else []
        out.append(pytest.param(vec, id=f"{kind}-{i}", marks=marks))
    return out


# ---------------------------------------------------------------- addresses

def _addr_json(items: list[Address | Group]) -> Any:
    def one(a: Address) -> dict[str, Any]:
        return {"name": a.display_name, "address": a.addr_spec or None}
    if not items:
        return None
    if not any(isinstance(i, Group) for i in items):
        return {"List": [one(a) for a in items if isinstance(a, Address)]}
    groups: list[dict[str, Any]] = []
    loose: list[dict[str, Any]] = []
    for it in items:
        if isinstance(it, Group):
            if loose:
                groups.append({"name": None, "addresses": loose})
                loose = []
            groups.append({"name": it.display_name, "addresses": [one(a) for a in it.addresses]})
        else:
            loose.append(one(it))
    if loose:
        groups.append({"name": None, "addresses": loose})
    return {"Group": groups}


_COMMENT_NAMES = ("stalwart appends comments to the display name; RFC 5322 section 3.2.2 "
                  "comments are not part of the phrase, so we drop them (a comment becomes the "
                  "name only when there is no phrase)")
_LIST_URL = "an RFC 2369 List-* value, not an address: checked with parse_list_header below"
ADDRESS_KNOWN = {
    8: _COMMENT_NAMES,
    9: "backslash before a line fold inside a comment: unfolding leaves a quoted space, "
       "the comment closes early and the stray ')' makes the item invalid (H-07 strictness)",
    10: _COMMENT_NAMES + "; a comment after a group's ';' is not an address",
    11: _COMMENT_NAMES + "; a comment alone inside a group is not a member",
    13: "obsolete route and whitespace inside the addr-spec are normalised away "
        "(RFC 5322 section 4.4), stalwart keeps them verbatim",
    14: "whitespace/comments inside the addr-spec are removed (obs-domain, section 4.4); "
        + _COMMENT_NAMES,
    22: _COMMENT_NAMES,
    37: _LIST_URL, 38: _LIST_URL, 39: _LIST_URL, 40: _LIST_URL, 41: _LIST_URL, 42: _LIST_URL,
    43: _LIST_URL, 44: _LIST_URL, 45: _LIST_URL, 46: _LIST_URL, 47: _LIST_URL,
    51: "an unquoted '@' in a display name is junk; we never guess an address out of it "
        "(SECURITY-CASES H-07)",
    56: _COMMENT_NAMES,
}


@pytest.mark.parametrize("vec", _params("address", ADDRESS_KNOWN))
def test_address_vectors(vec: dict[str, Any]) -> None:
    got = _addr_json(_message("To", vec["header"]).addresses("To"))
    assert got == vec["expected"]


@pytest.mark.parametrize("index", sorted(i for i, r in ADDRESS_KNOWN.items() if r == _LIST_URL))
def test_list_url_vectors_with_list_parser(index: int) -> None:
    vec = _vectors("address")[index]
    entries = _message("List-Help", vec["header"]).list_header("List-Help")
    expected = vec["expected"]["List"]
    got = [{"name": e.comment, "address": e.url if e.url is not None else "NO"} for e in entries]
    assert got == expected
    assert parse_list_header(vec["header"]) == entries


# ---------------------------------------------------------------- content type

CT_KNOWN = {
    34: "encoded-words inside a quoted parameter value are decoded like adjacent words, so "
        "the whitespace between them is dropped (RFC 2047 section 6.2); stalwart keeps it",
    55: "unterminated quoted value: whitespace at the end of the field is not part of it",
    56: "unterminated quoted value: whitespace at the end of the field is not part of it",
    57: "folding whitespace inside a quoted value is collapsed to one space when unfolding",
    61: "malformed RFC 2231 names ('4***', '9*10*...'): we keep names we cannot split "
        "as they are; stalwart drops or renumbers them",
}


def _ct_expected(exp: Any) -> Any:
    if exp is None:
        return None
    params: dict[str, str] = {}
    for a in exp.get("attributes") or []:
        k, v = a if isinstance(a, list) else (a["name"], a["value"])
        if not k.endswith("-language"):
            params[k] = v
    return {"type": exp["c_type"].lower(),
            "subtype": exp["c_subtype"].lower() if exp["c_subtype"] else None,
            "params": params}


@pytest.mark.parametrize("vec", _params("content_type", CT_KNOWN))
def test_content_type_vectors(vec: dict[str, Any]) -> None:
    msg = _message("Content-Type", vec["header"])
    msg.content_type
    pv = msg._pv
    got = None if pv is None or not pv.maintype else {
        "type": pv.maintype, "subtype": pv.subtype, "params": dict(pv.params)}
    assert got == _ct_expected(vec["expected"])


def test_content_type_languages() -> None:
    vec = _vectors("content_type")
    for i, v in enumerate(vec):
        exp = v["expected"] or {}
        langs = {a[0][:-9]: a[1] for a in exp.get("attributes") or []
                 if isinstance(a, list) and a[0].endswith("-language")}
        if langs and i not in CT_KNOWN:
            msg = _message("Content-Type", v["header"])
            msg.content_type
            assert msg._pv is not None and msg._pv.languages == langs


# ---------------------------------------------------------------- dates

DATE_KNOWN = {
    12: "'4 8 15 16 23 42, ...' is not a date; stalwart invents 2015-08-04 16:23:42 +00:04",
}


def _date_json(d: datetime | None) -> Any:
    if d is None:
        return None
    off = d.utcoffset()
    assert off is not None
    secs = int(off.total_seconds())
    return {"year": d.year, "month": d.month, "day": d.day, "hour": d.hour, "minute": d.minute,
            "second": d.second, "tz_before_gmt": secs < 0, "tz_hour": abs(secs) // 3600,
            "tz_minute": abs(secs) % 3600 // 60}


def _zone_neutral(d: Any) -> Any:
    # "-0000" (RFC 5322 section 3.3: time zone unknown) and "+0000" are both
    # UTC for an aware datetime; stalwart keeps the sign.
    if isinstance(d, dict) and d.get("tz_hour") == 0 and d.get("tz_minute") == 0:
        d = dict(d, tz_before_gmt=False)
    return d


@pytest.mark.parametrize("vec", _params("date", DATE_KNOWN))
def test_date_vectors(vec: dict[str, Any]) -> None:
    assert _date_json(_message("Date", vec["header"]).date()) == vec["expected"]


# ---------------------------------------------------------------- message ids

@pytest.mark.parametrize("vec", _params("id", {}))
def test_id_vectors(vec: dict[str, Any]) -> None:
    got = _message("References", vec["header"]).message_ids("References")
    assert (got or None) == vec["expected"]


# ---------------------------------------------------------------- unstructured

_ADJACENT = ("an encoded-word glued to other text is decoded in place; stalwart also inserts "
             "a space between them")
UNSTRUCTURED_KNOWN = {21: _ADJACENT, 22: _ADJACENT, 27: _ADJACENT, 28: _ADJACENT}


@pytest.mark.parametrize("vec", _params("unstructured", UNSTRUCTURED_KNOWN))
def test_unstructured_vectors(vec: dict[str, Any]) -> None:
    assert _message("Subject", vec["header"])["Subject"] == vec["expected"]


@pytest.mark.parametrize("vec", _params("list", {}))
def test_list_vectors(vec: dict[str, Any]) -> None:
    # Comma-separated phrase lists (Keywords, RFC 5322 section 3.6.5).
    value = _message("Keywords", vec["header"])["Keywords"]
    assert [w.strip() for w in value.split(",") if w.strip()] == vec["expected"]


# ---------------------------------------------------------------- received

_WITH_ENUM = ("stalwart maps the 'with' clause to a protocol enum (e.g. 'Microsoft SMTPSVC' "
              "-> SMTP, 'local-esmtps' -> ESMTPS); we return the word as written")
_ID_SLASH = "stalwart cuts the id at '/'; we return the whole id word"


def _received_known() -> dict[int, str]:
    known: dict[int, str] = {}
    for i, vec in enumerate(_vectors("received")):
        got = _received_json(_message("Received", vec["header"]))
        exp = _received_expected(vec["expected"])
        if got == exp:
            continue
        reasons = []
        if got["with"] != exp["with"]:
            reasons.append(_WITH_ENUM)
        if got["id"] != exp["id"] and got["id"] and exp["id"] and \
                got["id"].startswith(exp["id"] + "/"):
            reasons.append(_ID_SLASH)
        rest = {k for k in got if got[k] != exp[k]} - {"with", "id"}
        if got["id"] != exp["id"] and _ID_SLASH not in reasons:
            rest.add("id")
        if rest:
            reasons.append(f"{sorted(rest)}: stalwart also takes values from comments, text "
                           "after the date or zone names as -0000; we follow the clause "
                           "syntax of RFC 5321 section 4.4 and RFC 5322 section 4.3 zones")
        known[i] = "; ".join(reasons)
    return known


def _received_json(msg: Message) -> dict[str, Any]:
    r = msg.received()[0]
    return {"from": r.from_.strip("[]") if r.from_ else None, "by": r.by, "for": r.for_,
            "with": r.with_.upper() if r.with_ else None, "id": r.id,
            "date": _zone_neutral(_date_json(r.date))}


def _received_expected(exp: dict[str, Any]) -> dict[str, Any]:
    frm = exp.get("from") or {}
    return {"from": frm.get("Name") or frm.get("IpAddr"),
            "by": (exp.get("by") or {}).get("Name") or (exp.get("by") or {}).get("IpAddr"),
            "for": exp.get("for_"), "with": (exp.get("with") or "").upper() or None,
            "id": exp.get("id"), "date": _zone_neutral(exp.get("date"))}


RECEIVED_KNOWN = _received_known()


@pytest.mark.parametrize("vec", _params("received", RECEIVED_KNOWN))
def test_received_vectors(vec: dict[str, Any]) -> None:
    got = _received_json(_message("Received", vec["header"]))
    assert got == _received_expected(vec["expected"])


def test_received_known_disagreements_are_mostly_naming() -> None:
    # The Received grammar is free-form; require that most vectors agree
    # fully and that the rest differ only in the documented ways.
    total = len(_vectors("received"))
    assert total > 50
    other = [i for i, r in RECEIVED_KNOWN.items() if "RFC 5321" in r]
    assert len(RECEIVED_KNOWN) <= total // 3
    assert len(other) <= 20, [(_vectors("received")[i]["header"], RECEIVED_KNOWN[i])
                             for i in other]
