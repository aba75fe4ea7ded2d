"""Address lists (RFC 5322 section 3.4, obsolete syntax of section 4.4, RFC 6532 UTF-8).

The parser is deliberately strict about what counts as an address
(SECURITY-CASES H-07, CVE-2023-27043): a list item is an address only if its
tokens form ``[phrase] "<" addr-spec ">"`` or a bare ``addr-spec``.  Stray
``)``, ``<``, ``>``, ``@`` or ``;`` never lead to an address being picked out
of the remains; such items are dropped with an ``invalid-address`` defect.
Tolerated with an ``obsolete-address-syntax`` defect: routes
(``<@a,@b:x@y>``), comments and whitespace inside an addr-spec, dots in
display names.  One pass of a regular-expression tokenizer plus a counter for
nested comments keeps the work linear in the input (H-08).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ._defects import Defect, DefectKind, Severity
from ._rfc2047 import decode_words

__all__ = ["Address", "Group", "parse_address_list", "format_address_str"]


@dataclass(frozen=True, slots=True)
class Address:
    """A mailbox: an optional display name and an addr-spec (``local@domain``).

    ``addr_spec`` is ``""`` for a mailbox that has only a name (invalid, kept
    so the name is not lost; the parse reports a defect).
    """

    display_name: str | None
    addr_spec: str

    @property
    def local_part(self) -> str:
        """The part before the last ``@`` (quotes kept when needed)."""
        return self.addr_spec.rpartition("@")[0] if "@" in self.addr_spec else self.addr_spec

    @property
    def domain(self) -> str:
        """The part after the last ``@`` (``""`` when there is none)."""
        return self.addr_spec.rpartition("@")[2] if "@" in self.addr_spec else ""

    def __str__(self) -> str:
        return format_address_str(self)


@dataclass(frozen=True, slots=True)
class Group:
    """A named group of mailboxes (RFC 5322 section 3.4), possibly empty."""

    display_name: str | None
    addresses: tuple[Address, ...] = ()

    def __str__(self) -> str:
        inner = ", ".join(format_address_str(a) for a in self.addresses)
        return f"{_phrase(self.display_name or '')}:{' ' if inner else ''}{inner};"


_ATEXT = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\x80-\U0010ffff]+")
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\x80-\U0010ffff]+"
                       r"(?:\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\x80-\U0010ffff]+)*\Z")


def _phrase(name: str) -> str:
    if name and all(_ATEXT.fullmatch(w) for w in name.split(" ")):
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_address_str(addr: Address) -> str:
    """Render an :class:`Address` as RFC 5322 text (no encoding of non-ASCII)."""
    if addr.display_name:
        return f"{_phrase(addr.display_name)} <{addr.addr_spec}>"
    return addr.addr_spec


# Token kinds
_WS, _ATOM, _QS, _COMMENT, _DLIT, _SPECIAL = range(6)
_TOKEN = re.compile(
    r"(?P<ws>[ \t\r\n]+)"
    r"|(?P<atom>[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\x80-\U0010ffff]+)"
    r"|(?P<qs>\"(?:[^\"\\]|\\.)*\"?)"
    r"|(?P<dlit>\[[^\[\]\\]*\]?)"
    r"|(?P<special>.)", re.S)
_UNQUOTE = re.compile(r"\\(.)", re.S)


def _tokenize(text: str, defects: list[Defect]) -> list[tuple[int, str]]:
    toks: list[tuple[int, str]] = []
    i, n = 0, len(text)
    match = _TOKEN.match
    while i < n:
        if text[i] == "(":
            # RFC 5322 section 3.2.2: comments nest and may contain quoted-pairs.
            depth, j, buf = 1, i + 1, []
            while j < n and depth:
                c = text[j]
                if c == "\\" and j + 1 < n:
                    buf.append(text[j + 1])
                    j += 2
                    continue
                if c == "(":
                    depth += 1
                elif c == ")":
                    depth -= 1
                    if not depth:
                        break
                buf.append(c)
                j += 1
            if depth:
                defects.append(Defect(DefectKind.UNBALANCED_COMMENT, "unterminated comment", None,
                                      Severity.WARNING))
            toks.append((_COMMENT, "".join(buf)))
            i = j + 1
            continue
        m = match(text, i)
        assert m is not None  # the last alternative matches any character
        kind = m.lastgroup
        value = m.group()
        if kind == "ws":
            toks.append((_WS, " "))
        elif kind == "atom":
            toks.append((_ATOM, value))
        elif kind == "qs":
            closed = len(value) >= 2 and value.endswith('"') and not _escaped_end(value)
            if not closed:
                defects.append(Defect(DefectKind.UNTERMINATED_QUOTED_STRING,
                                      "unterminated quoted string", None, Severity.WARNING))
                inner = value[1:]
            else:
                inner = value[1:-1]
            toks.append((_QS, _UNQUOTE.sub(r"\1", inner)))
        elif kind == "dlit":
            toks.append((_DLIT, value))
        else:
            toks.append((_SPECIAL, value))
        i = m.end()
    return toks


def _escaped_end(value: str) -> bool:
    # True when the final '"' is itself escaped (odd run of backslashes before it).
    k = len(value) - 2
    count = 0
    while k >= 1 and value[k] == "\\":
        count += 1
        k -= 1
    return count % 2 == 1


class _Invalid(Exception):
    pass


def _addr_spec(toks: list[tuple[int, str]], defects: list[Defect]) -> str:
    """Build an addr-spec from tokens (comments/whitespace removed, obs syntax noted)."""
    words = [t for t in toks if t[0] not in (_WS, _COMMENT)]
    # Only what lies between the first and last word counts (CFWS around an
    # addr-spec is normal, RFC 5322 section 3.4.1; inside it is obsolete).
    idx = [i for i, t in enumerate(toks) if t[0] not in (_WS, _COMMENT)]
    inner = toks[idx[0]:idx[-1] + 1] if idx else []
    if len(inner) != len(words):
        defects.append(Defect(DefectKind.OBSOLETE_ADDRESS_SYNTAX,
                              "comments or whitespace inside an addr-spec", None, Severity.INFO))
    at = [i for i, t in enumerate(words) if t == (_SPECIAL, "@")]
    if len(at) != 1:
        if not at and words and all(t[0] in (_ATOM, _QS) or t == (_SPECIAL, ".") for t in words):
            # A local part alone (RFC 822 local address); no domain is invented.
            defects.append(Defect(DefectKind.INVALID_ADDRESS, "address without a domain", None,
                                  Severity.WARNING))
            return _local(words)
        raise _Invalid
    local_toks, domain_toks = words[:at[0]], words[at[0] + 1:]
    if not local_toks or not domain_toks:
        raise _Invalid
    local = _local(local_toks)
    if len(domain_toks) == 1 and domain_toks[0][0] == _DLIT:
        domain = domain_toks[0][1]
    else:
        if not _alternates(domain_toks, (_ATOM,)):
            raise _Invalid
        domain = "".join(t[1] for t in domain_toks)
    return f"{local}@{domain}"


def _alternates(toks: list[tuple[int, str]], kinds: tuple[int, ...]) -> bool:
    # word *("." word): words and dots alternate, starting and ending with a word
    if len(toks) % 2 == 0:
        return False
    for i, t in enumerate(toks):
        if i % 2 == 0:
            if t[0] not in kinds:
                return False
        elif t != (_SPECIAL, "."):
            return False
    return True


def _local(toks: list[tuple[int, str]]) -> str:
    if not _alternates(toks, (_ATOM, _QS)):
        raise _Invalid
    text = "".join(t[1] for t in toks)
    if any(t[0] == _QS for t in toks) and not _DOT_ATOM.match(text):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


def _display(toks: list[tuple[int, str]], defects: list[Defect]) -> tuple[str | None, str | None]:
    """(display name, first comment) from phrase tokens; raises _Invalid on specials."""
    out: list[str] = []
    comment: str | None = None
    pending_space = False
    for kind, value in toks:
        if kind == _WS:
            pending_space = True
            continue
        if kind == _COMMENT:
            if comment is None and value.strip():
                comment = value.strip()
            pending_space = True
            continue
        if kind == _SPECIAL:
            if value != ".":
                raise _Invalid
            defects.append(Defect(DefectKind.OBSOLETE_ADDRESS_SYNTAX, "'.' in a display name",
                                  None, Severity.INFO))
        elif kind == _DLIT:
            raise _Invalid
        if pending_space and out:
            out.append(" ")
        pending_space = False
        out.append(value)
    if not out:
        return None, comment
    return decode_words("".join(out), defects), comment


def _mailbox(toks: list[tuple[int, str]], defects: list[Defect]) -> Address | None:
    """One mailbox from its tokens, or None for an empty item."""
    significant = [t for t in toks if t[0] not in (_WS, _COMMENT)]
    if not significant:
        return None
    lt = [i for i, t in enumerate(toks) if t == (_SPECIAL, "<")]
    gt = [i for i, t in enumerate(toks) if t == (_SPECIAL, ">")]
    if lt or gt:
        if len(lt) != 1 or len(gt) != 1 or gt[0] < lt[0]:
            raise _Invalid
        inner = toks[lt[0] + 1:gt[0]]
        after = toks[gt[0] + 1:]
        name, comment = _display(toks[:lt[0]], defects)
        # Anything but comments and whitespace after ">" is junk, except
        # stray encoded-words/words some mailers put after the address.
        trailing_name, trailing_comment = _display(after, defects)
        if trailing_name:
            defects.append(Defect(DefectKind.OBSOLETE_ADDRESS_SYNTAX,
                                  "display name after the angle address", None,
                                  Severity.WARNING))
            name = f"{name} {trailing_name}" if name else trailing_name
        comment = comment or trailing_comment
        # obs-route (RFC 5322 section 4.4): "@dom1,@dom2:" before the addr-spec
        colon = [i for i, t in enumerate(inner) if t == (_SPECIAL, ":")]
        if colon:
            route = [t for t in inner[:colon[0]] if t[0] not in (_WS, _COMMENT)]
            if not route or route[0] != (_SPECIAL, "@"):
                raise _Invalid
            defects.append(Defect(DefectKind.OBSOLETE_ADDRESS_SYNTAX, "source route ignored",
                                  None, Severity.INFO))
            inner = inner[colon[0] + 1:]
        if not [t for t in inner if t[0] not in (_WS, _COMMENT)]:
            raise _Invalid  # "<>" is a null reverse-path, not a mailbox
        spec = _addr_spec(inner, defects)
        return Address(name or comment or None, spec)
    # No angle brackets: a bare addr-spec, possibly with a comment as the name
    # ("addr (Real Name)", the pre-RFC 822 convention).
    if any(t == (_SPECIAL, "@") for t in significant):
        spec = _addr_spec([t for t in toks if t[0] != _COMMENT], defects)
        comments = [t[1].strip() for t in toks if t[0] == _COMMENT and t[1].strip()]
        return Address(comments[0] if comments else None, spec)
    name, comment = _display(toks, defects)
    defects.append(Defect(DefectKind.INVALID_ADDRESS, f"no address in {name or comment!r}", None,
                          Severity.WARNING))
    return Address(name or comment, "")


_A = r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\x80-\U0010ffff]"
_DA = rf"{_A}+(?:\.{_A}+)*"
# The common shapes "local@domain" and "Word Word <local@domain>" in one
# deterministic regular expression (each repetition is delimited by a
# character the next one cannot start with, so there is no backtracking).
_FAST_ITEM = re.compile(
    rf"[ \t]*(?:((?:{_A}+[ \t]+)+)<({_DA}@{_DA})>|({_DA}@{_DA}))[ \t]*(,|\Z)")


def _fast_list(text: str, defects: list[Defect]) -> list[Address | Group] | None:
    out: list[Address | Group] = []
    pos, n = 0, len(text)
    match = _FAST_ITEM.match
    while pos < n:
        m = match(text, pos)
        if m is None:
            return None
        if m.group(3) is not None:
            out.append(Address(None, m.group(3)))
        else:
            name = m.group(1).rstrip(" \t")
            if "=?" in name:
                name = decode_words(name, defects)
            out.append(Address(name, m.group(2)))
        pos = m.end()
        if not m.group(4):
            break
    return out


def parse_address_list(text: str, defects: list[Defect] | None = None) -> list[Address | Group]:
    """Parse an address-list / mailbox-list header value (unfolded text).

    Returns :class:`Address` and :class:`Group` items in order.  Items that
    are not addresses are dropped with an ``invalid-address`` defect; a stray
    ``;`` outside a group invalidates the whole value (H-07).  Encoded-words in
    display names are decoded.  Never raises.
    """
    sink: list[Defect] = [] if defects is None else defects
    fast = _fast_list(text, sink)
    if fast is not None:
        return fast
    toks = _tokenize(text, sink)
    items: list[tuple[list[tuple[int, str]], str | None]] = []
    cur: list[tuple[int, str]] = []
    in_angle = False
    for tok in toks:
        if in_angle:
            cur.append(tok)
            if tok == (_SPECIAL, ">"):
                in_angle = False
            continue
        if tok[0] == _SPECIAL and tok[1] in ",;:":
            items.append((cur, tok[1]))
            cur = []
            continue
        if tok == (_SPECIAL, "<"):
            in_angle = True
        cur.append(tok)
    items.append((cur, None))
    result: list[Address | Group] = []
    group: list[Address] | None = None
    group_name: str | None = None
    for toks_i, term in items:
        try:
            if term == ":":
                if group is not None:
                    raise _Invalid
                group_name = _display(toks_i, sink)[0]  # a comment is not a group name
                group = []
                continue
            box = _mailbox(toks_i, sink)
        except _Invalid:
            raw = "".join(t[1] for t in toks_i)
            sink.append(Defect(DefectKind.INVALID_ADDRESS, f"not an address: {raw.strip()!r}",
                               None, Severity.WARNING))
            if term == ";" and group is None:
                return []
            if term == ":":
                group = []
            continue
        if group is not None:
            if box is not None:
                group.append(box)
            if term == ";" or term is None:
                if term is None:
                    sink.append(Defect(DefectKind.INVALID_ADDRESS, "group without ';'", None,
                                       Severity.WARNING))
                result.append(Group(group_name, tuple(group)))
                group = None
                group_name = None
            continue
        if term == ";":
            sink.append(Defect(DefectKind.INVALID_ADDRESS, "';' outside a group", None,
                               Severity.ERROR))
            return []
        if box is not None:
            result.append(box)
    return result
