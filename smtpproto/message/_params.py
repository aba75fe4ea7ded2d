"""Content-Type and Content-Disposition values (RFC 2045 section 5.1, RFC 2183,
RFC 2231 parameter continuations, charsets and languages).

Parsing is tolerant in the ways real mailers need (comments, whitespace around
``/`` and ``=``, a missing ``;`` between parameters, RFC 2047 encoded-words in
parameter values, which RFC 2047 section 5 forbids but many clients send) and
records a defect for each repair.  The common simple shape is matched by one
regular expression; everything else goes through a linear character scanner.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, field

from ._charsets import decode_text, lookup_charset
from ._defects import Defect, DefectKind, Severity
from ._rfc2047 import decode_words

__all__ = ["ParamValue", "parse_param_header", "encode_param"]

_TOKEN = r"[A-Za-z0-9!#$&.+^_`{|}~-]+"
_SIMPLE = re.compile(
    rf"[ \t]*({_TOKEN})[ \t]*/[ \t]*({_TOKEN})[ \t]*"
    rf"((?:;[ \t]*{_TOKEN}[ \t]*=[ \t]*(?:{_TOKEN}|\"[^\"\\\r\n]*\")[ \t]*)*);?[ \t]*\Z")
_SIMPLE_PARAM = re.compile(rf";[ \t]*({_TOKEN})[ \t]*=[ \t]*(?:({_TOKEN})|\"([^\"\\\r\n]*)\")")
_SECTION = re.compile(r"\A(.*?)\*(\d{1,5})?(\*?)\Z", re.S | re.ASCII)
_NEXT_PARAM = re.compile(r"[ \t\r\n]+([^\s;=\"]+)[ \t]*=")


@dataclass(slots=True)
class ParamValue:
    """A parsed Content-Type / Content-Disposition value.

    ``maintype`` is lower-case (``""`` when the value is unusable), ``subtype``
    lower-case or ``None`` when absent (always ``None`` for a disposition);
    ``params`` maps lower-case names to decoded values in order of appearance;
    ``languages`` holds RFC 2231 language tags by parameter name.
    """

    maintype: str
    subtype: str | None
    params: dict[str, str] = field(default_factory=dict)
    languages: dict[str, str] = field(default_factory=dict)
    defects: list[Defect] = field(default_factory=list)


def _strip_comments(text: str, defects: list[Defect]) -> str:
    # RFC 5322 section 3.2.2 comments nest; quoted strings protect parentheses.
    out: list[str] = []
    depth = 0
    in_quote = False
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if in_quote:
            out.append(c)
            if c == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 1
            elif c == '"':
                in_quote = False
        elif depth:
            if c == "\\":
                i += 1
            elif c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
                if not depth:
                    out.append(" ")
        elif c == "(":
            depth = 1
        elif c == '"':
            in_quote = True
            out.append(c)
        else:
            out.append(c)
        i += 1
    if depth:
        defects.append(Defect(DefectKind.UNBALANCED_COMMENT, "unterminated comment in parameters",
                              None, Severity.WARNING))
    return "".join(out)


def _raw_params(text: str, defects: list[Defect]) -> list[tuple[str, str, bool]]:
    """Split ``;``-separated ``name=value`` pairs: (lower name, value, was_quoted)."""
    out: list[tuple[str, str, bool]] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " \t\r\n;":
            i += 1
        if i >= n:
            break
        eq = text.find("=", i)
        semi = text.find(";", i)
        if eq < 0 or (0 <= semi < eq):
            end = n if semi < 0 else semi
            defects.append(Defect(DefectKind.INVALID_PARAMETER,
                                  f"parameter without value: {text[i:end].strip()!r}", None,
                                  Severity.WARNING))
            i = end
            continue
        name = text[i:eq].strip().lower()
        i = eq + 1
        while i < n and text[i] in " \t\r\n":
            i += 1
        quoted = i < n and text[i] == '"'
        if quoted:
            i += 1
            chars: list[str] = []
            while i < n and text[i] != '"':
                if text[i] == "\\" and i + 1 < n:
                    i += 1
                chars.append(text[i])
                i += 1
            if i >= n:
                defects.append(Defect(DefectKind.UNTERMINATED_QUOTED_STRING,
                                      f"unterminated quoted value for {name!r}", None,
                                      Severity.WARNING))
            i += 1
            value = "".join(chars)
            semi = text.find(";", i)
            if semi < 0:
                semi = n
            if text[i:semi].strip():
                m = _NEXT_PARAM.match(text, i)
                if m is None:
                    defects.append(Defect(DefectKind.INVALID_PARAMETER,
                                          f"junk after quoted value of {name!r}", None,
                                          Severity.WARNING))
                    i = semi
                else:  # missing ";" before the next parameter
                    defects.append(Defect(DefectKind.INVALID_PARAMETER,
                                          "missing ';' between parameters", None,
                                          Severity.WARNING))
        else:
            semi = text.find(";", i)
            if semi < 0:
                semi = n
            m = _NEXT_PARAM.search(text, i, semi)
            if m is not None and m.start() > i:
                defects.append(Defect(DefectKind.INVALID_PARAMETER,
                                      "missing ';' between parameters", None, Severity.WARNING))
                semi = m.start()
            value = text[i:semi].strip()
            i = semi
        if not name or name.startswith("*"):
            defects.append(Defect(DefectKind.INVALID_PARAMETER, "parameter without a name", None,
                                  Severity.WARNING))
            continue
        if not value and not quoted:
            continue
        out.append((name, value, quoted))
    return out


def _combine(raw: list[tuple[str, str, bool]], result: ParamValue) -> None:
    """Apply RFC 2231 (sections 3, 4): continuations, charsets and languages."""
    plain: dict[str, str] = {}
    ext: dict[str, list[tuple[int, bool, str]]] = {}
    order: list[str] = []
    for name, value, quoted in raw:
        m = _SECTION.match(name) if "*" in name else None
        if m is None or not m.group(1):
            if name in plain:
                result.defects.append(Defect(DefectKind.DUPLICATE_PARAMETER,
                                             f"duplicate parameter {name!r} (first kept)", None,
                                             Severity.WARNING))
                continue
            if "=?" in value:
                value = decode_words(value, result.defects)
            plain[name] = value
            if name not in order:
                order.append(name)
            continue
        base = m.group(1).strip()
        index = int(m.group(2)) if m.group(2) is not None else 0
        # "name*" alone is an extended (encoded) value; "name*3" a plain section.
        encoded = bool(m.group(3)) or m.group(2) is None
        ext.setdefault(base, []).append((index, encoded, value))
        if base not in order:
            order.append(base)
    decoded: dict[str, str] = {}
    for base, segs in ext.items():
        segs.sort(key=lambda s: s[0])
        indexes = [s[0] for s in segs]
        if indexes != list(range(len(segs))):
            result.defects.append(Defect(DefectKind.INVALID_PARAMETER,
                                         f"RFC 2231 sections of {base!r} are not 0..n", None,
                                         Severity.WARNING))
        charset: str | None = None
        data = bytearray()
        for pos, (_index, encoded, value) in enumerate(segs):
            if encoded and pos == 0 and value.count("'") >= 2:
                charset, lang, value = value.split("'", 2)
                if lang:
                    result.languages[base] = lang
                charset = charset or None
            if encoded and pos and charset and value.lower().startswith(charset.lower() + "'"):
                # Broken encoders repeat "charset'" (and a language) on every
                # section; RFC 2231 section 4.1 puts it on the first only.
                value = value[len(charset) + 1:]
                if value.count("'") == 1 and "%" not in value.split("'", 1)[0]:
                    value = value.split("'", 1)[1]
                result.defects.append(Defect(DefectKind.INVALID_PARAMETER,
                                             f"charset repeated in section of {base!r}",
                                             None, Severity.WARNING))
            if encoded:
                data += urllib.parse.unquote_to_bytes(value)
            else:
                codec = lookup_charset(charset) if charset else None
                try:
                    data += value.encode(codec or "utf-8")
                except UnicodeEncodeError:
                    data += value.encode("utf-8")
        if charset is None:
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                text = data.decode("latin-1")
        else:
            text = decode_text(bytes(data), charset, result.defects)
        decoded[base] = text
    for name in order:
        # RFC 2231 section 4: the extended form wins over a plain duplicate.
        if name in decoded:
            result.params[name] = decoded[name]
        else:
            result.params[name] = plain[name]


def parse_param_header(value: str, *, disposition: bool = False) -> ParamValue:
    """Parse a Content-Type (or, with ``disposition=True``, Content-Disposition) value.

    Never raises.  ``maintype`` is ``""`` when no type could be found at all.
    """
    m = _SIMPLE.match(value)
    if m is not None and "=?" not in value and not disposition:
        result = ParamValue(m.group(1).lower(), m.group(2).lower())
        if m.group(3):
            for pm in _SIMPLE_PARAM.finditer(m.group(3)):
                name = pm.group(1).lower()
                if name in result.params:
                    result.defects.append(Defect(DefectKind.DUPLICATE_PARAMETER,
                                                 f"duplicate parameter {name!r} (first kept)",
                                                 None, Severity.WARNING))
                    continue
                pv = pm.group(2)
                result.params[name] = pv if pv is not None else pm.group(3)
        return result
    defects: list[Defect] = []
    text = _strip_comments(value, defects) if "(" in value else value
    semi = text.find(";")
    head, rest = (text, "") if semi < 0 else (text[:semi], text[semi + 1:])
    m2 = _NEXT_PARAM.search(head)
    if m2 is not None:  # "type/sub name=value" with the ";" missing
        defects.append(Defect(DefectKind.INVALID_PARAMETER, "missing ';' after the type", None,
                              Severity.WARNING))
        head, rest = head[:m2.start()], head[m2.start():] + ";" + rest
    head = head.strip(" \t\r\n")
    if disposition:
        result = ParamValue(head.lower(), None, defects=defects)
    else:
        slash = head.find("/")
        if slash < 0:
            maintype, subtype = head, None
        else:
            maintype, subtype = head[:slash].strip(), head[slash + 1:].strip() or None
        result = ParamValue(maintype.lower(), subtype.lower() if subtype else None,
                            defects=defects)
        if not maintype or subtype is None or " " in maintype or (subtype and " " in subtype):
            defects.append(Defect(DefectKind.INVALID_CONTENT_TYPE,
                                  f"invalid content type {head!r}", None, Severity.WARNING))
    if not result.maintype:
        result.maintype = ""
        result.subtype = None
        return result
    if rest:
        _combine(_raw_params(rest, defects), result)
    return result


_TSPECIALS = set('()<>@,;:\\"/[]?=')
_ATTR_CHAR = re.compile(r"[A-Za-z0-9!#$&+.^_`|~-]")


def _is_token(value: str) -> bool:
    return bool(value) and all(33 <= ord(c) < 127 and c not in _TSPECIALS for c in value)


def encode_param(name: str, value: str) -> str:
    """Format one MIME parameter ``name=value`` for a header (RFC 2045, RFC 2231).

    ASCII printable values become a token or a quoted-string; anything else
    (non-ASCII, control characters including CR/LF/NUL, ``=?`` which could
    read as an RFC 2047 encoded-word, or values too long for one line) uses
    RFC 2231 ``name*=utf-8''...`` percent-encoding, split into
    ``name*0*``, ``name*1*``... continuations joined by ``"; "`` so the header
    folder can break between them.  The result never contains CR, LF or NUL.
    """
    if not _is_token(name) or "*" in name or "'" in name or "%" in name:
        raise ValueError(f"invalid parameter name {name!r}")
    printable = all(32 <= ord(c) < 127 for c in value)
    # Parsers (this one too) decode RFC 2047 words in plain values, so a value
    # holding "=?" is percent-encoded to come back unchanged.
    if printable and "=?" not in value and len(name) + len(value) < 70:
        if _is_token(value):
            return f"{name}={value}"
        return '{}="{}"'.format(name, value.replace("\\", "\\\\").replace('"', '\\"'))
    encoded = "".join(c if _ATTR_CHAR.match(c) else "".join(f"%{b:02X}" for b in c.encode("utf-8"))
                      for c in value)
    prefix = "utf-8''"
    if len(name) + len(prefix) + len(encoded) < 70:
        return f"{name}*={prefix}{encoded}"
    # Split at percent-escape boundaries only, so each section is well formed.
    pieces: list[str] = []
    i = 0
    while i < len(encoded):
        pieces.append(encoded[i:i + 3] if encoded[i] == "%" else encoded[i])
        i += len(pieces[-1])
    sections: list[str] = []
    cur = prefix
    for piece in pieces:
        if len(cur) + len(piece) > 60:
            sections.append(cur)
            cur = ""
        cur += piece
    sections.append(cur)
    return "; ".join(f"{name}*{i}*={s}" for i, s in enumerate(sections))
