"""Safe header serialization: field names, values, addresses, folding, verification.

Every path that writes header bytes ends in :func:`verify_header_bytes` (SECURITY-CASES
H-03), so a header that could split into two fields, end the header section early or
exceed the RFC 5322 §2.1.1 line limit is never emitted.

Rules applied here:

* field names are RFC 5322 §3.6.8 ``ftext`` (H-04);
* CR, LF and NUL are refused anywhere in a value, trailing ones included (H-02);
* non-ASCII text is RFC 2047-encoded (or written as raw UTF-8 for RFC 6532 / SMTPUTF8
  messages), and text that merely *looks* like an encoded word is encoded too, so a
  decoder gives back the literal text and never, say, a decoded line break (H-01);
* lines are folded at white space near 78 octets and never exceed 998 (H-09);
* structured fields (address lists, message identifiers, MIME parameters) are never
  encoded wholesale: only display names are encoded, addr-specs are kept as they are.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol, Union, runtime_checkable

__all__ = [
    "HeaderError",
    "check_field_name",
    "format_header",
    "format_address",
    "format_addresses",
    "format_params_header",
    "verify_header_bytes",
    "verify_header_section",
]

#: RFC 5322 §2.1.1: "Each line of characters MUST be no more than 998 characters ...
#: excluding the CRLF".
MAX_LINE = 998
#: RFC 5322 §2.1.1: "... SHOULD be no more than 78 characters, excluding the CRLF".
FOLD_WIDTH = 78
#: RFC 2047 §2: "... each line of a header field that contains one or more
#: 'encoded-word's is limited to 76 characters".
ENCODED_WIDTH = 76


class HeaderError(ValueError):
    """A header field name or value cannot be written safely."""


# RFC 5322 §3.6.8: field-name = 1*ftext; ftext = %d33-57 / %d59-126.
_FTEXT_STR = re.compile(r"[\x21-\x39\x3b-\x7e]+")
_FTEXT_BYTES = re.compile(rb"[\x21-\x39\x3b-\x7e]+")
_FORBIDDEN = re.compile(r"[\r\n\x00]")
# Characters (besides non-ASCII) that may not appear raw in RFC 5322 unstructured text:
# C0 controls other than HTAB, and DEL (RFC 5322 §3.2.5, VCHAR / WSP only).
_CONTROL = re.compile(r"[\x01-\x08\x0b-\x1f\x7f]")
_WSP_SPLIT = re.compile(r"([ \t]+)")
# RFC 5322 §3.2.3 atext (plus "." for a dot-atom display name, which §4.1 obs-phrase allows
# but we quote instead, to produce strictly conforming output).
_ATEXT_RUN = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+")
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+(?:\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*")
_DOT_ATOM_UTF8 = re.compile(
    r"(?:[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]|[^\x00-\x7f])+"
    r"(?:\.(?:[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]|[^\x00-\x7f])+)*"
)
_QUOTED_LOCAL = re.compile(r'"(?:[^"\\\x00-\x1f\x7f]|\\[\x20-\x7e])*"')
_DOMAIN_LITERAL = re.compile(r"\[[\x21-\x5a\x5e-\x7e]*\]")

# Fields whose body is an address list (RFC 5322 §3.6.2, §3.6.3, §3.6.6).
ADDRESS_FIELDS = frozenset(
    {
        "from", "sender", "reply-to", "to", "cc", "bcc",
        "resent-from", "resent-sender", "resent-to", "resent-cc", "resent-bcc",
        "disposition-notification-to", "return-receipt-to", "mail-followup-to",
        "mail-reply-to",
    }
)
# Structured fields that must never be RFC 2047-encoded (RFC 2047 §5: encoded words are
# only allowed in unstructured text, comments and phrases).
STRUCTURED_FIELDS = frozenset(
    {
        "message-id", "in-reply-to", "references", "resent-message-id", "content-id",
        "date", "resent-date", "received", "return-path", "mime-version",
        "content-type", "content-disposition", "content-transfer-encoding",
        "dkim-signature", "arc-seal", "arc-message-signature", "authentication-results",
        "list-id", "list-unsubscribe", "list-post", "list-help", "list-subscribe",
        "list-owner", "list-archive",
    }
)


@runtime_checkable
class AddressLike(Protocol):
    """Anything with a ``display_name`` and an ``addr_spec`` (e.g. ``Address``)."""

    @property
    def display_name(self) -> str | None: ...

    @property
    def addr_spec(self) -> str: ...


@runtime_checkable
class GroupLike(Protocol):
    """Anything with a ``display_name`` and ``addresses`` (e.g. ``Group``)."""

    @property
    def display_name(self) -> str | None: ...

    @property
    def addresses(self) -> Sequence[AddressLike]: ...


#: What :func:`format_address` accepts: an ``Address``/``Group``-like object, a
#: ``(display_name, addr_spec)`` pair, or a bare addr-spec string.
AddressInput = Union[AddressLike, GroupLike, "tuple[str | None, str]", str]


# --------------------------------------------------------------------------- names


def check_field_name(name: str) -> None:
    """Raise :class:`HeaderError` unless *name* is a valid RFC 5322 §3.6.8 field name.

    A field name is one or more printable US-ASCII characters except the colon
    (``%d33-57 / %d59-126``); space, CR, LF, NUL and non-ASCII are refused (H-04).
    """
    if not isinstance(name, str):
        raise HeaderError(f"field name must be str, not {type(name).__name__}")
    if not _FTEXT_STR.fullmatch(name):
        raise HeaderError(f"invalid header field name {name!r} (RFC 5322 §3.6.8 ftext)")


def _check_value(value: str) -> None:
    if not isinstance(value, str):
        raise HeaderError(f"header value must be str, not {type(value).__name__}")
    m = _FORBIDDEN.search(value)
    if m is not None:
        raise HeaderError(
            f"header value contains {m.group()!r} at index {m.start()}; "
            "CR, LF and NUL are not allowed in a header value"
        )


# --------------------------------------------------------------------------- verify


def verify_header_bytes(raw: bytes) -> None:
    """Check that *raw* is exactly one well-formed, safely folded header field.

    The one verification routine every serializer path runs (H-03). It raises
    :class:`HeaderError` unless all of these hold:

    * the field name (up to the first colon) is RFC 5322 ``ftext``;
    * there is no NUL, and no CR or LF other than a CRLF pair;
    * every CRLF except the final one is followed by SP or HTAB (RFC 5322 §2.2.3), and
      no continuation line consists only of white space (§3.2.2 forbids generating it);
    * the field ends with CRLF;
    * no line is longer than 998 octets, excluding the CRLF (§2.1.1).
    """
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise HeaderError(f"header bytes must be bytes, not {type(raw).__name__}")
    raw = bytes(raw)
    if not raw.endswith(b"\r\n"):
        raise HeaderError("header field does not end with CRLF")
    if b"\x00" in raw:
        raise HeaderError("header field contains NUL")
    colon = raw.find(b":")
    if colon <= 0 or not _FTEXT_BYTES.fullmatch(raw, 0, colon):
        raise HeaderError(f"invalid header field name in {raw[:40]!r}")
    lines = raw[:-2].split(b"\r\n")
    for index, line in enumerate(lines):
        if b"\r" in line or b"\n" in line:
            raise HeaderError("header field contains a bare CR or LF")
        if len(line) > MAX_LINE:
            raise HeaderError(f"header line of {len(line)} octets exceeds {MAX_LINE}")
        if index:
            if not line or line[0] not in b" \t":
                raise HeaderError("CRLF inside a header field not followed by white space")
            if not line.strip(b" \t"):
                raise HeaderError("header field contains a line of only white space")


def verify_header_section(raw: bytes) -> None:
    """Verify a whole header section: fields as :func:`verify_header_bytes` checks them,
    optionally followed by the empty line that ends the section (and nothing after)."""
    raw = bytes(raw)
    if raw.endswith(b"\r\n\r\n"):
        raw = raw[:-2]
    elif raw == b"\r\n":
        return
    if not raw:
        return
    if not raw.endswith(b"\r\n"):
        raise HeaderError("header section does not end with CRLF")
    start = 0
    # A field ends at a CRLF not followed by WSP.
    for m in re.finditer(rb"\r\n(?![ \t])", raw):
        verify_header_bytes(raw[start : m.end()])
        start = m.end()
    if start != len(raw):  # pragma: no cover - the final CRLF always matches
        raise HeaderError("trailing garbage in header section")


# --------------------------------------------------------------------------- encoding


def _encode_words(text: str) -> str:
    # RFC 2047 encoding lives with the read path (_rfc2047.py); imported lazily so that
    # this module never depends on import order.
    from ._rfc2047 import encode_words

    return encode_words(text, "utf-8")


def _needs_encoding(word: str, utf8: bool) -> bool:
    if "=?" in word:
        # Literal text that looks like an encoded word must itself be encoded, or a
        # decoder would turn it into something else (RFC 2047 §5, H-01).
        return True
    if _CONTROL.search(word):
        return True
    if not utf8 and not word.isascii():
        return True
    return False


def _encode_first_run(run: str, room: int) -> list[str]:
    """Encode *run* so its first encoded word fits in *room* characters after the name.

    Adjacent encoded words separated by white space decode as one text (RFC 2047 §6.2),
    so the run can be cut anywhere between characters.
    """
    lo, hi = 0, len(run)  # the longest head whose encoding is one word that fits
    while lo < hi:
        mid = (lo + hi + 1) // 2
        head = _encode_words(run[:mid])
        if " " not in head and len(head) <= room:
            lo = mid
        else:
            hi = mid - 1
    if lo == 0:
        return _encode_words(run).split(" ")
    return [_encode_words(run[:lo])] + _encode_words(run[lo:]).split(" ")


def _encode_unstructured(name: str, value: str, utf8: bool) -> list[str]:
    """Return *value* as folding units: each unit after the first starts with WSP."""
    parts = _WSP_SPLIT.split(value)
    # parts alternates word, ws, word, ws, ... starting and ending with a (maybe empty) word.
    words = parts[0::2]
    spaces = [""] + parts[1::2]
    room = MAX_LINE - len(name) - 2  # what fits on the first line after "Name: "
    flags = [
        bool(w)
        and (
            _needs_encoding(w, utf8)
            # A word too long for a line even after folding is encoded so it can be split
            # across several encoded words (H-09).
            or len(spaces[i].encode()) + len(w.encode("utf-8")) > room
        )
        for i, w in enumerate(words)
    ]
    # A white-space run too long for a line can only travel inside an encoded run.
    for i in range(1, len(words)):
        if len(spaces[i]) > room // 2 and words[i - 1] and words[i]:
            flags[i - 1] = flags[i] = True
    units: list[str] = []
    i = 0
    n = len(words)
    while i < n:
        if flags[i]:
            j = i
            # Merge neighbouring words that need encoding, with the white space between
            # them, into one run: white space between encoded words is not displayed
            # (RFC 2047 §6.2), so it must travel inside the encoded text.
            while j + 1 < n and flags[j + 1]:
                j += 1
            run = words[i]
            for k in range(i + 1, j + 1):
                run += spaces[k] + words[k]
            encoded = _encode_words(run).split(" ")
            if not units and len(name) + 2 + len(encoded[0]) > ENCODED_WIDTH:
                encoded = _encode_first_run(run, ENCODED_WIDTH - len(name) - 2)
            units.append(spaces[i] + encoded[0])
            units.extend(" " + e for e in encoded[1:] if e)
            i = j + 1
        else:
            units.append(spaces[i] + words[i])
            i += 1
    return units


def _split_at_wsp(unit: str) -> list[str]:
    """Split *unit* before each run of white space that is followed by text."""
    pieces = _WSP_SPLIT.split(unit)
    out: list[str] = [pieces[0]]
    for k in range(1, len(pieces), 2):
        ws, word = pieces[k], pieces[k + 1]
        if word:
            out.append(ws + word)
        else:
            out[-1] += ws
    return out


def _fold(name: str, units: Sequence[str]) -> bytes:
    """Greedily pack *units* after ``name:`` into lines of at most 78 octets (76 when
    the field holds an encoded word).

    Folding only ever happens before a unit, and every unit after the first starts with
    white space, so unfolding (RFC 5322 §2.2.3: remove the CRLFs) restores the value
    exactly. A unit longer than a line is broken at its own white space first.
    """
    # RFC 2047 §2: a line holding an encoded word is at most 76 characters.
    limit = ENCODED_WIDTH if any("=?" in u for u in units) else FOLD_WIDTH
    fine: list[str] = []
    for unit in units:
        if len(unit.encode("utf-8")) > limit - 2:
            fine.extend(_split_at_wsp(unit))
        else:
            fine.append(unit)
    lines: list[bytes] = []
    prefix = name.encode("ascii") + b":"  # what the current line starts with
    cur: list[bytes] = []  # the units on the current line

    def can_start_line(data: bytes, preferred: bool) -> bool:
        # A continuation line starts with white space and is not blank (RFC 5322 §3.2.2).
        # Readers commonly collapse the white space around a fold to one space, so the
        # preferred fold point is a single SP; others are used only to stay within 998.
        if data[:1] not in (b" ", b"\t") or not data.strip(b" \t"):
            return False
        return not preferred or (data[:1] == b" " and data[1:2] not in (b" ", b"\t"))

    def has_text(pieces: list[bytes]) -> bool:
        return bool(lines) or any(p.strip(b" \t") for p in pieces)

    for index, unit in enumerate(fine):
        data = unit.encode("utf-8")
        if index == 0:
            # The first unit follows "Name:" after one space unless it starts with WSP.
            cur = [data if not data or data[:1] in (b" ", b"\t") else b" " + data]
            continue
        width = len(prefix) + sum(map(len, cur)) + len(data)
        if width <= limit:
            cur.append(data)
            continue
        if has_text(cur) and can_start_line(data, True):
            lines.append(prefix + b"".join(cur))
            prefix, cur = b"", [data]
            continue
        # Fold earlier on this line, at its last preferred point, if there is one.
        k = next(
            (j for j in range(len(cur) - 1, 0, -1)
             if can_start_line(cur[j], True) and has_text(cur[:j])),
            None,
        )
        if k is not None:
            lines.append(prefix + b"".join(cur[:k]))
            prefix, cur = b"", cur[k:] + [data]
        elif width > MAX_LINE and has_text(cur) and can_start_line(data, False):
            lines.append(prefix + b"".join(cur))
            prefix, cur = b"", [data]
        else:
            cur.append(data)
    line = prefix + b"".join(cur)
    if not cur:
        line += b" "
    lines.append(line)
    out = b"\r\n".join(lines) + b"\r\n"
    for ln in lines:
        if len(ln) > MAX_LINE:
            raise HeaderError(
                f"{name} header cannot be folded to lines of at most {MAX_LINE} octets"
            )
    verify_header_bytes(out)
    return out


def format_header(
    name: str,
    value: str | AddressLike | GroupLike | Sequence[AddressInput],
    *,
    utf8: bool = False,
) -> bytes:
    """Serialize one header field to ``b"Name: value\\r\\n"``, folded and verified.

    * *name* must be RFC 5322 ftext (:func:`check_field_name`).
    * A *value* containing CR, LF or NUL is refused with :class:`HeaderError` (H-02).
    * Unstructured fields (Subject, Comments, ``X-*``, …): words with non-ASCII
      characters, control characters or anything resembling an encoded word are
      RFC 2047-encoded (H-01); with ``utf8=True`` (an RFC 6532 / SMTPUTF8 message)
      non-ASCII is written as raw UTF-8 instead.
    * Address fields (From, To, Cc, Bcc, Reply-To, Sender, Resent-*): *value* may be an
      ``Address``/``Group``, a list of them (or of ``(name, addr)`` pairs), or a string;
      a string is re-formatted via the address parser when it needs encoding, so only
      display names are ever encoded. Folding happens after the list commas.
    * Other structured fields (Message-ID, Date, Content-Type, …) are never encoded;
      non-ASCII is refused unless ``utf8=True``.
    * Lines are folded at white space to about 78 octets; a line never exceeds 998
      octets (H-09): over-long unstructured words are encoded so they can be split, and
      a structured value that cannot be folded raises :class:`HeaderError`.

    The result is checked with :func:`verify_header_bytes` before it is returned.
    """
    check_field_name(name)
    lname = name.lower()
    if value is None or isinstance(value, (bytes, bytearray, int, float)):
        raise HeaderError(f"header value must be str, not {type(value).__name__}")
    if not isinstance(value, str):
        if lname not in ADDRESS_FIELDS:
            raise HeaderError(f"only address fields take address objects, not {name}")
        return _fold(name, _address_units(name, _as_address_list(value), utf8))
    _check_value(value)
    if lname in ADDRESS_FIELDS:
        if (not utf8 and not value.isascii()) or "=?" in value or _CONTROL.search(value):
            return _fold(name, _address_units(name, _parse_address_string(value), utf8))
        return _fold(name, _structured_units(value, ","))
    if lname in STRUCTURED_FIELDS:
        if not utf8 and not value.isascii():
            raise HeaderError(
                f"{name} is a structured field and cannot be RFC 2047-encoded; "
                "non-ASCII needs utf8=True (RFC 6532)"
            )
        if _CONTROL.search(value):
            raise HeaderError(f"{name} value contains a control character")
        return _fold(name, _structured_units(value, ";" if lname.startswith("content-") else ","))
    return _fold(name, _encode_unstructured(name, value, utf8))


def _structured_units(value: str, separator: str) -> list[str]:
    """Split a structured value into folding units, preferring breaks after *separator*."""
    pieces = re.split(r"(?<=" + re.escape(separator) + r")(?=[ \t])", value)
    return [p for p in pieces if p] or [""]


def _parse_address_string(value: str) -> list[AddressLike | GroupLike]:
    from . import _address

    parser = getattr(_address, "parse_address_list", None)
    if parser is None:  # pragma: no cover - depends on the read path's API
        raise HeaderError("address parsing is unavailable; pass Address objects instead")
    defects: list[object] = []
    items = list(parser(value, defects))
    if defects:
        # Writing must not silently drop or guess: refuse what the reader flags.
        raise HeaderError(f"cannot write address list {value!r}: {defects[0]}")
    return items


# --------------------------------------------------------------------------- addresses


def _as_address_list(value: object) -> list[AddressInput]:
    if isinstance(value, (str, tuple)) or isinstance(value, (AddressLike, GroupLike)):
        return [value]
    if isinstance(value, Iterable):
        return list(value)
    raise HeaderError(f"cannot format {type(value).__name__} as an address")


def _quote(text: str) -> str:
    """RFC 5322 §3.2.4 quoted-string: backslash-escape DQUOTE and backslash."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _format_phrase(text: str, utf8: bool, room: int | None = None) -> str:
    """A display name as an RFC 5322 §3.2.5 phrase: atoms, a quoted string or encoded words."""
    _check_value(text)
    if not text:
        return '""'
    too_long = any(len(w.encode("utf-8")) > MAX_LINE // 2 for w in text.split(" "))
    if "=?" in text or _CONTROL.search(text) or (not utf8 and not text.isascii()) or too_long:
        # RFC 2047 §5 (3): encoded words are allowed in a phrase; used for non-ASCII, for
        # literal text that would otherwise be decoded as an encoded word, and for words
        # too long to fold (H-09).
        encoded = _encode_words(text)
        if room is not None and len(encoded.split(" ")[0]) > room:
            return " ".join(_encode_first_run(text, room))
        return encoded
    words = text.split(" ")
    atext = _DOT_ATOM_UTF8 if utf8 else _ATEXT_RUN
    if all(w and atext.fullmatch(w) and "." not in w for w in words):
        return text
    return _quote(text)


def _format_addr_spec(addr_spec: str, utf8: bool) -> str:
    _check_value(addr_spec)
    if _CONTROL.search(addr_spec) or any(c in addr_spec for c in " \t<>"):
        if not (addr_spec.startswith('"') and _QUOTED_LOCAL.match(addr_spec)):
            raise HeaderError(f"invalid addr-spec {addr_spec!r}")
    if not addr_spec:
        raise HeaderError("empty addr-spec")
    local, at, domain = addr_spec.rpartition("@")
    if not at:
        raise HeaderError(f"addr-spec {addr_spec!r} has no domain")
    if not local:
        raise HeaderError(f"addr-spec {addr_spec!r} has an empty local part")
    if not (_DOMAIN_LITERAL.fullmatch(domain) or (_DOT_ATOM_UTF8 if utf8 else _DOT_ATOM).fullmatch(domain)):
        if not utf8 and not domain.isascii() and _DOT_ATOM_UTF8.fullmatch(domain):
            try:
                domain = domain.encode("idna").decode("ascii")
            except UnicodeError as exc:
                raise HeaderError(f"domain {domain!r} cannot be IDNA-encoded") from exc
        else:
            raise HeaderError(f"invalid domain in addr-spec {addr_spec!r}")
    if _QUOTED_LOCAL.fullmatch(local):
        if not utf8 and not local.isascii():
            raise HeaderError(f"non-ASCII local part {local!r} needs utf8=True (RFC 6531)")
    elif (_DOT_ATOM_UTF8 if utf8 else _DOT_ATOM).fullmatch(local):
        pass
    else:
        if not utf8 and not local.isascii():
            raise HeaderError(f"non-ASCII local part {local!r} needs utf8=True (RFC 6531)")
        local = _quote(local)
    return local + "@" + domain


def _address_parts(addr: AddressInput) -> tuple[str | None, str, Sequence[AddressInput] | None]:
    if isinstance(addr, str):
        return None, addr, None
    if isinstance(addr, tuple):
        if len(addr) != 2:
            raise HeaderError("an address tuple is (display_name, addr_spec)")
        return addr[0], addr[1], None
    members = getattr(addr, "addresses", None)
    if members is not None:
        return addr.display_name, "", list(members)
    spec: str = getattr(addr, "addr_spec")
    return addr.display_name, spec, None


def format_address(addr: AddressInput, *, utf8: bool = False) -> str:
    """Format one mailbox or group as RFC 5322 text (§3.4), without folding.

    *addr* is an ``Address``/``Group``-like object, a ``(display_name, addr_spec)``
    pair or a bare addr-spec. The display name is written as atoms when it can be, as
    a quoted string (§3.2.4) otherwise, and RFC 2047-encoded when it has non-ASCII
    characters (raw UTF-8 if ``utf8=True``). The addr-spec is never encoded; a non-ASCII
    domain is IDNA-encoded unless ``utf8=True``, and a non-ASCII local part needs
    ``utf8=True``. A group is written as ``name: a, b;``.
    """
    return _format_address(addr, utf8)


def _format_address(addr: AddressInput, utf8: bool, room: int | None = None) -> str:
    # *room*: characters left on the line for a leading encoded word (RFC 2047 §2).
    display, addr_spec, members = _address_parts(addr)
    if members is not None:
        inner = ", ".join(format_address(m, utf8=utf8) for m in members)
        return f"{_format_phrase(display or '', utf8, room)}:{' ' + inner if inner else ''};"
    spec = _format_addr_spec(addr_spec, utf8)
    if display:
        return f"{_format_phrase(display, utf8, room)} <{spec}>"
    return spec


def format_addresses(addresses: Iterable[AddressInput], *, utf8: bool = False) -> str:
    """Format an address list (RFC 5322 §3.4 ``address-list``), comma separated."""
    return ", ".join(format_address(a, utf8=utf8) for a in addresses)


def _address_units(name: str, addresses: Sequence[AddressInput], utf8: bool) -> list[str]:
    room = ENCODED_WIDTH - len(name) - 2
    items = [_format_address(a, utf8, room if i == 0 else None) for i, a in enumerate(addresses)]
    if not items:
        return [""]
    units = [items[0]]
    for item in items[1:]:
        units[-1] += ","
        units.append(" " + item)
    return units


# --------------------------------------------------------------------------- parameters


def _format_param(key: str, val: str, utf8: bool) -> str:
    check_field_name(key)
    _check_value(val)
    if utf8 and not val.isascii() and "=?" not in val:
        # RFC 6532 §3.2 allows UTF-8 in a quoted-string (but "=?" could read as
        # an RFC 2047 word there: encode_param percent-encodes it).
        return f"{key}={_quote(val)}"
    from ._params import encode_param

    return encode_param(key, val)


def format_params_header(
    name: str,
    value: str,
    params: Mapping[str, str] | Iterable[tuple[str, str]] = (),
    *,
    utf8: bool = False,
) -> bytes:
    """Serialize a MIME field with parameters, e.g. Content-Type or Content-Disposition.

    ``format_params_header("Content-Type", "text/plain", {"charset": "utf-8"})`` gives
    ``b'Content-Type: text/plain; charset="utf-8"\\r\\n'``-style output. Parameter values
    are written by the RFC 2231 encoder (non-ASCII values and long values become
    ``name*=`` / ``name*0*=`` continuations; raw UTF-8 quoted strings with ``utf8=True``),
    and the field folds after the ``;`` separators.
    """
    check_field_name(name)
    _check_value(value)
    if not value.isascii() or _CONTROL.search(value) or not value.strip():
        raise HeaderError(f"invalid {name} value {value!r}")
    items = params.items() if isinstance(params, Mapping) else params
    units = [value.strip()]
    for key, val in items:
        # Long units (e.g. RFC 2231 continuations) are folded at their own white space.
        units[-1] += ";"
        units.append(" " + _format_param(key, val, utf8))
    return _fold(name, units)
