"""Shared helpers for the corpus tests: locating the corpus and comparing with stalwart.

Run ``python3 tests/message/corpus_support.py`` for the corpus figures (parse and
round-trip counts, agreement with stalwart's expected parses).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def corpus_dir() -> Path | None:
    """The shared corpus: $SMTPPROTO_CORPUS, else ../shared/corpus beside the repo."""
    env = os.environ.get("SMTPPROTO_CORPUS")
    path = Path(env) if env else REPO / ".." / "shared" / "corpus"
    return path.resolve() if path.is_dir() else None


def message_files(root: Path) -> list[Path]:
    """Every message in the corpus: .eml, .raw, builder goldens, DKIM test emails."""
    out = []
    for p in sorted(root.rglob("*")):
        if not p.is_file():
            continue
        if p.suffix in (".eml", ".raw", ".golden") or (
                p.parent.name == "dkim" and p.name.startswith("email.")):
            out.append(p)
    return out


def stalwart_pairs(root: Path) -> list[tuple[Path, Path]]:
    """(message, expected .json) pairs under stalwart/ (the LF-variant JSON)."""
    pairs = []
    for eml in sorted((root / "stalwart").rglob("*.eml")):
        js = eml.with_suffix(".json")
        if js.exists():
            pairs.append((eml, js))
    return pairs


# ---------------------------------------------------------------- expected trees

def _header(part: dict[str, Any], name: str) -> Any:
    for h in part["headers"]:
        if h["name"] == name:
            return h["value"]
    return None


def _attrs(value: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    if isinstance(value, dict) and "ContentType" in value:
        for a in value["ContentType"].get("attributes") or []:
            k, v = (a["name"], a["value"]) if isinstance(a, dict) else a
            out.setdefault(k.lower(), v)
    return out


def _expected_node(msg: dict[str, Any], index: int) -> dict[str, Any]:
    part = msg["parts"][index]
    ct = _header(part, "content_type")
    ctype = None
    if isinstance(ct, dict) and "ContentType" in ct:
        c = ct["ContentType"]
        ctype = (c["c_type"].lower(), (c["c_subtype"] or "").lower() or None)
    subject = _header(part, "subject")
    subject_text = subject["Text"] if isinstance(subject, dict) and "Text" in subject else None
    filename = _attrs(_header(part, "content_disposition")).get("filename") or \
        _attrs(ct).get("name")
    body = part["body"]
    children: list[dict[str, Any]] = []
    kind = "leaf"
    if isinstance(body, dict) and "Multipart" in body:
        kind = "multipart"
        children = [_expected_node(msg, i) for i in body["Multipart"]]
    elif isinstance(body, dict) and "Message" in body:
        kind = "message"
        children = [_expected_node(body["Message"], 0)]
    return {"ctype": ctype, "subject": subject_text, "filename": filename, "kind": kind,
            "children": children}


def expected_tree(json_path: Path) -> dict[str, Any]:
    """The comparable tree (declared type, subject, filename, kind, children) of a .json."""
    return _expected_node(json.loads(json_path.read_text("utf-8")), 0)


def actual_tree(msg: Any) -> dict[str, Any]:
    """The same shape for one of our parsed messages (iterative, no recursion limit)."""
    from smtpproto.message._message import ENCODED_MESSAGE, MESSAGE, MULTIPART

    def node(m: Any) -> dict[str, Any]:
        pv = m._content_type_pv() if m.get("content-type") is not None else None
        raw_pv = m._pv
        ctype = None
        if raw_pv is not None and raw_pv.maintype:
            ctype = (raw_pv.maintype, raw_pv.subtype)
        del pv
        kind = {MULTIPART: "multipart", MESSAGE: "message", ENCODED_MESSAGE: "message"}.get(
            m._kind, "leaf")
        if m._kind == ENCODED_MESSAGE and not m.parts:
            kind = "leaf"
        return {"ctype": ctype, "subject": m.get("subject"), "filename": m.filename,
                "kind": kind, "children": [node(c) for c in m.parts]}

    return node(msg)


def first_difference(exp: dict[str, Any], act: dict[str, Any], path: str = "root") -> str | None:
    """A description of the first disagreement between two trees, or None."""
    for key in ("kind", "ctype", "subject", "filename"):
        if exp[key] != act[key]:
            return f"{path}.{key}: expected {exp[key]!r}, got {act[key]!r}"
    if len(exp["children"]) != len(act["children"]):
        return (f"{path}: expected {len(exp['children'])} children, "
                f"got {len(act['children'])}")
    for i, (e, a) in enumerate(zip(exp["children"], act["children"])):
        diff = first_difference(e, a, f"{path}[{i}]")
        if diff:
            return diff
    return None


def compare_all(root: Path) -> dict[str, str | None]:
    """Map each stalwart message (relative path) to its first difference (None = agrees)."""
    from smtpproto.message import parse
    out: dict[str, str | None] = {}
    for eml, js in stalwart_pairs(root):
        msg = parse(eml.read_bytes())
        out[str(eml.relative_to(root))] = first_difference(expected_tree(js), actual_tree(msg))
    return out


def main() -> None:
    sys.path.insert(0, str(REPO))
    from smtpproto.message import parse
    root = corpus_dir()
    if root is None:
        print("corpus not found")
        return
    files = message_files(root)
    parsed = same = 0
    for p in files:
        data = p.read_bytes()
        msg = parse(data)
        parsed += 1
        same += msg.to_bytes() == data
    print(f"message files: {len(files)}; parsed without exception: {parsed}; "
          f"to_bytes() identical: {same}")
    results = compare_all(root)
    agree = sum(1 for v in results.values() if v is None)
    print(f"stalwart expected parses: {agree}/{len(results)} agree "
          f"({100.0 * agree / len(results):.1f}%)")
    for group in ("rfc", "thirdparty", "malformed"):
        sub = {k: v for k, v in results.items() if k.startswith(f"stalwart/{group}/")}
        ok = sum(1 for v in sub.values() if v is None)
        print(f"  {group}: {ok}/{len(sub)}")
    for name, diff in results.items():
        if diff:
            print(f"  {name}: {diff}")


if __name__ == "__main__":
    main()
