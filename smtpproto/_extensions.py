"""EHLO capabilities and typed MAIL/RCPT parameters.

Pure functions and immutable values, no I/O. The core uses this module in both
roles:

* a **client** parses the EHLO/LHLO reply into :class:`Capabilities` and checks
  the parameters it is about to send with :func:`check_mail_params` /
  :func:`check_rcpt_params` (raising if a problem comes back);
* a **server** renders its advertisement with :meth:`Capabilities.build` /
  :meth:`Capabilities.to_lines` and checks the parameters it received with the
  same functions, turning a returned :class:`ParamProblem` into a reply.

Grammar references: RFC 5321 §4.1.2 (esmtp-keyword, esmtp-value) and §4.1.1.1
(ehlo-keyword, ehlo-param), RFC 1870 (SIZE), RFC 6152 (8BITMIME), RFC 3030
(CHUNKING, BINARYMIME), RFC 6531 (SMTPUTF8), RFC 3461 (DSN, xtext), RFC 6533
(utf-8-addr-xtext / utf-8-addr-unitext), RFC 4954 §5 (AUTH=), RFC 8689
(REQUIRETLS), RFC 6710 (MT-PRIORITY), RFC 2852 (DELIVERBY), RFC 7293 (RRVS),
RFC 4865 (FUTURERELEASE), RFC 9422 (LIMITS).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Callable, Final, Literal

__all__ = [
    "Capabilities",
    "FutureRelease",
    "ParamProblem",
    "ParameterError",
    "DeliverBy",
    "Orcpt",
    "Rrvs",
    "MailParams",
    "RcptParams",
    "check_mail_params",
    "check_rcpt_params",
    "is_esmtp_keyword",
    "is_esmtp_value",
    "xtext_encode",
    "xtext_decode",
    "is_xtext",
    "utf8_addr_xtext_encode",
    "utf8_addr_unitext_encode",
    "utf8_addr_decode",
]

# ---------------------------------------------------------------------------
# Lexical helpers
# ---------------------------------------------------------------------------

# RFC 5321 §4.1.2: esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
# (ehlo-keyword in §4.1.1.1 has the same shape).
_KEYWORD_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*\Z")
# RFC 5321 §4.1.2: esmtp-value = 1*(%d33-60 / %d62-126)  (no "=", SP, controls)
_VALUE_RE: Final = re.compile(r"[\x21-\x3c\x3e-\x7e]+\Z")
# RFC 6531 §3.3: with SMTPUTF8 esmtp-value may also carry UTF-8 (non-ASCII).
_VALUE_UTF8_RE: Final = re.compile(r"[\x21-\x3c\x3e-\x7e\u0080-\U0010ffff]+\Z")
# RFC 5321 §4.1.1.1: ehlo-param = 1*(%d33-126), separated by SP.
_EHLO_PARAMS_RE: Final = re.compile(r"[\x21-\x7e]+(?: [\x21-\x7e]+)*\Z")
_DIGITS_RE: Final = re.compile(r"[0-9]+\Z")
# RFC 5322 §3.2.3 atom (atext), used for the DSN addr-type (RFC 3461 §4.2).
_ATOM_RE: Final = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+\Z")
# RFC 3339 §5.6 date-time (used by RRVS and HOLDUNTIL).
_DATETIME_RE: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?"
    r"(?:[Zz]|[+-](\d{2}):(\d{2}))\Z"
)


def _is_surrogate(cp: int) -> bool:
    return 0xD800 <= cp <= 0xDFFF


def is_esmtp_keyword(text: str) -> bool:
    """True if *text* is a valid RFC 5321 esmtp-keyword / ehlo-keyword."""
    return bool(_KEYWORD_RE.match(text))


def is_esmtp_value(text: str, *, smtputf8: bool = False) -> bool:
    """True if *text* is a valid esmtp-value (RFC 5321 §4.1.2).

    With *smtputf8* the RFC 6531 §3.3 extension is allowed (non-ASCII
    characters). CR, LF, NUL, SP, "=" and every other control are never
    allowed (SECURITY-CASES C-03).
    """
    if smtputf8:
        if any(_is_surrogate(ord(c)) for c in text):
            return False
        return bool(_VALUE_UTF8_RE.match(text))
    return bool(_VALUE_RE.match(text))


def _valid_datetime(text: str) -> bool:
    """RFC 3339 §5.6 date-time with range checks of each field."""
    m = _DATETIME_RE.match(text)
    if not m:
        return False
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    del year
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return False
    # RFC 3339 allows second 60 for a leap second.
    if hour > 23 or minute > 59 or second > 60:
        return False
    if m.group(7) is not None:
        if int(m.group(7)) > 23 or int(m.group(8)) > 59:
            return False
    return True


# ---------------------------------------------------------------------------
# xtext (RFC 3461 §4) and utf-8-addr-xtext / unitext (RFC 6533 §3)
# ---------------------------------------------------------------------------

_HEX_UPPER: Final = "0123456789ABCDEF"


def xtext_encode(value: str | bytes) -> str:
    """Encode *value* as RFC 3461 §4 xtext.

    ``xchar`` (printable ASCII except "+" and "=") is copied; every other octet
    becomes ``"+" 2HEXDIG`` with upper-case hex digits. A ``str`` is encoded as
    UTF-8 first, so non-ASCII text survives as its octets.
    """
    data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    out: list[str] = []
    for octet in data:
        if 33 <= octet <= 126 and octet not in (0x2B, 0x3D):
            out.append(chr(octet))
        else:
            out.append("+" + _HEX_UPPER[octet >> 4] + _HEX_UPPER[octet & 15])
    return "".join(out)


def _xtext_octets(text: str) -> bytes:
    """Decode xtext to octets; ValueError on any syntax error."""
    out = bytearray()
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        o = ord(c)
        if c == "+":
            hexpart = text[i + 1 : i + 3]
            # RFC 3461 §4 asks for upper-case hex; lower case is accepted on
            # input (be liberal), never produced.
            if len(hexpart) != 2 or not all(h in "0123456789ABCDEFabcdef" for h in hexpart):
                raise ValueError("xtext: '+' must be followed by two hex digits")
            out.append(int(hexpart, 16))
            i += 3
            continue
        if o < 33 or o > 126 or c == "=":
            raise ValueError(f"xtext: character {c!r} is not allowed")
        out.append(o)
        i += 1
    return bytes(out)


def xtext_decode(text: str) -> str:
    """Decode RFC 3461 §4 xtext to text (the octets are read as UTF-8).

    Raises ``ValueError`` for characters outside xtext, a malformed ``+XX``
    escape, or octets that are not UTF-8.
    """
    return _xtext_octets(text).decode("utf-8")


def is_xtext(text: str) -> bool:
    """True if *text* is syntactically valid xtext (RFC 3461 §4)."""
    try:
        _xtext_octets(text)
    except ValueError:
        return False
    return True


def _needs_uescape(ch: str, *, ascii_only: bool) -> bool:
    o = ord(ch)
    # QCHAR = %x21-2a / %x2c-3c / %x3e-5b / %x5d-7e  (RFC 6533 §3)
    if 0x21 <= o <= 0x7E:
        return ch in "+=\\"
    if o >= 0x80:
        return ascii_only
    return True  # controls, SP, DEL


def _uescape(ch: str) -> str:
    return "\\x{%02X}" % ord(ch)


def utf8_addr_xtext_encode(address: str) -> str:
    """Encode *address* as RFC 6533 utf-8-addr-xtext (7-bit).

    Non-ASCII characters, controls, SP, "+", "=" and "\\\\" become
    ``\\x{HEX}`` (upper-case, at least two digits).
    """
    return "".join(_uescape(c) if _needs_uescape(c, ascii_only=True) else c for c in address)


def utf8_addr_unitext_encode(address: str) -> str:
    """Encode *address* as RFC 6533 utf-8-addr-unitext (UTF-8 kept as is).

    Only controls, SP, "+", "=" and "\\\\" are escaped; for use when SMTPUTF8
    is in effect.
    """
    return "".join(_uescape(c) if _needs_uescape(c, ascii_only=False) else c for c in address)


_UESC_RE: Final = re.compile(r"\\x\{([0-9A-Fa-f]{2,6})\}")


def _hexpoint_allowed(cp: int) -> bool:
    """What an RFC 6533 HEXPOINT may stand for.

    ASCII controls, SP, "+", "=", DEL and "\\\\" (the characters QCHAR excludes),
    or a non-ASCII Unicode scalar value.
    """
    if cp < 0x80:
        return 0x01 <= cp <= 0x20 or cp in (0x2B, 0x3D, 0x5C, 0x7F)
    return cp <= 0x10FFFF and not _is_surrogate(cp)


def utf8_addr_decode(text: str, *, allow_utf8: bool = True) -> str:
    """Decode utf-8-addr-unitext (or, with ``allow_utf8=False``, utf-8-addr-xtext).

    Raises ``ValueError`` for a character outside QCHAR/QUCHAR, a malformed
    ``\\x{...}`` escape or one that stands for a character that needs none.
    """
    if not text:
        raise ValueError("empty address")
    out: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            m = _UESC_RE.match(text, i)
            if not m:
                raise ValueError("malformed \\x{...} escape")
            digits = m.group(1)
            cp = int(digits, 16)
            # Shortest form only (RFC 6533 HEXPOINT has no leading zeros
            # beyond the two-digit forms).
            if len(digits) > 2 and digits[0] == "0":
                raise ValueError("\\x{...} escape with leading zeros")
            if not _hexpoint_allowed(cp):
                raise ValueError(f"\\x{{{digits}}} does not need escaping or is not a character")
            out.append(chr(cp))
            i = m.end()
            continue
        o = ord(c)
        if 0x21 <= o <= 0x7E:
            if c in "+=":
                raise ValueError(f"character {c!r} must be escaped")
        elif o >= 0x80 and allow_utf8 and not _is_surrogate(o):
            pass
        else:
            raise ValueError(f"character {c!r} is not allowed")
        out.append(c)
        i += 1
    return "".join(out)


# ---------------------------------------------------------------------------
# Capabilities
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FutureRelease:
    """The FUTURERELEASE advertisement (RFC 4865 §3).

    ``max_interval`` is max-future-release-interval in seconds;
    ``max_datetime`` is max-future-release-date-time as sent (RFC 3339).
    """

    max_interval: int
    max_datetime: str


def _size_of(items: Mapping[str, str]) -> int | None:
    """The SIZE limit in ``items`` (see :attr:`Capabilities.size`)."""
    if "SIZE" not in items:
        return None
    text = items["SIZE"].split(" ", 1)[0]
    if text and _DIGITS_RE.match(text) and len(text) <= 20:
        return int(text)
    return 0


class Capabilities(Mapping[str, str]):
    """What an EHLO/LHLO reply advertises: keyword (upper case) -> parameters.

    The parameter text is ``""`` for a keyword without parameters. Order is
    kept and unknown keywords are preserved. Instances are immutable and
    compare equal to any mapping with the same items.

    The old ``AUTH=MECH ...`` form (sent by some servers next to or instead of
    ``AUTH MECH ...``) is kept under the key ``"AUTH="`` with the mechanism
    list as its value, and merged into :attr:`auth_mechanisms`.
    """

    __slots__ = ("_items", "_size")

    def __init__(self, items: Iterable[tuple[str, str]] | Mapping[str, str] = ()) -> None:
        """Build from ``(keyword, parameters)`` pairs, validating each.

        Raises ``ValueError`` for a keyword that is not an ehlo-keyword (or
        ``"AUTH="``), or parameters outside RFC 5321 ehlo-param syntax.
        """
        pairs = items.items() if isinstance(items, Mapping) else items
        data: dict[str, str] = {}
        for keyword, params in pairs:
            kw = keyword.upper()
            if kw != "AUTH=" and not is_esmtp_keyword(kw):
                raise ValueError(f"invalid EHLO keyword: {keyword!r}")
            if params and not _EHLO_PARAMS_RE.match(params):
                raise ValueError(f"invalid EHLO parameters for {kw}: {params!r}")
            if kw in data:
                raise ValueError(f"duplicate EHLO keyword: {kw}")
            data[kw] = params
        self._items: dict[str, str] = data
        self._size = _size_of(data)

    @classmethod
    def _trusted(cls, data: dict[str, str]) -> Capabilities:
        obj = cls.__new__(cls)
        obj._items = data
        obj._size = _size_of(data)
        return obj

    # -- Mapping protocol ---------------------------------------------------

    def __getitem__(self, keyword: str) -> str:
        return self._items[keyword.upper()]

    def __contains__(self, keyword: object) -> bool:
        return isinstance(keyword, str) and keyword.upper() in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Capabilities({self._items!r})"

    # -- parsing / rendering -----------------------------------------------

    @classmethod
    def parse(cls, lines: Sequence[str]) -> Capabilities:
        """Parse the text of the EHLO/LHLO 250 reply lines after the first.

        Tolerant, as a client must be (RFC 5321 §4.1.1.1 is often bent):
        blank lines are skipped, keywords are upper-cased, runs of whitespace
        between parameters are collapsed, unknown keywords are kept. A repeated
        keyword keeps its first position and its last parameters, except AUTH
        whose mechanism lists are merged.
        """
        data: dict[str, str] = {}
        for raw in lines:
            text = raw.strip()
            if not text:
                continue
            head, _, rest = text.partition(" ")
            params = " ".join(rest.split())
            kw = head.upper()
            if kw.startswith("AUTH="):
                # Old draft form: "AUTH=LOGIN PLAIN" (mechanisms after "=").
                mechs = kw[5:]
                params = " ".join(p for p in (mechs, params.upper()) if p)
                kw = "AUTH="
            if kw in ("AUTH", "AUTH=") and kw in data:
                merged = data[kw].split() + [m for m in params.split() if m not in data[kw].split()]
                data[kw] = " ".join(merged)
                continue
            data[kw] = params
        return cls._trusted(data)

    def to_lines(self) -> list[str]:
        """Render one line per keyword, e.g. ``["PIPELINING", "SIZE 10240000"]``.

        These are the lines after the first (domain) line of a server's EHLO
        reply; the core adds the ``250-``/``250 `` framing.
        """
        out: list[str] = []
        for kw, params in self._items.items():
            if kw == "AUTH=":
                out.append(f"AUTH={params}")
                continue
            out.append(f"{kw} {params}" if params else kw)
        return out

    def without(self, *keywords: str) -> Capabilities:
        """A copy without *keywords* (e.g. drop STARTTLS once TLS is up)."""
        drop = {k.upper() for k in keywords}
        if "AUTH" in drop:
            drop.add("AUTH=")
        return self._trusted({k: v for k, v in self._items.items() if k not in drop})

    def with_keyword(self, keyword: str, params: str = "") -> Capabilities:
        """A copy with *keyword* added (or its parameters replaced), validated."""
        data = dict(self._items)
        data.pop(keyword.upper(), None)
        single = Capabilities([(keyword, params)])
        data.update(single._items)
        return self._trusted(data)

    @classmethod
    def build(
        cls,
        *,
        size: int | None = None,
        pipelining: bool = False,
        vrfy: bool = False,
        etrn: bool = False,
        starttls: bool = False,
        auth: Sequence[str] = (),
        enhancedstatuscodes: bool = False,
        eightbitmime: bool = False,
        dsn: bool = False,
        smtputf8: bool = False,
        chunking: bool = False,
        binarymime: bool = False,
        requiretls: bool = False,
        mt_priority: bool | str = False,
        deliverby: int | None = None,
        rrvs: bool = False,
        futurerelease: FutureRelease | None = None,
        limits: Mapping[str, int] | None = None,
        help: bool = False,
        expn: bool = False,
        extra: Iterable[tuple[str, str]] = (),
    ) -> Capabilities:
        """Build a server advertisement in a conventional (Postfix-like) order.

        ``size``: ``None`` = do not advertise, ``0`` = advertise SIZE without a
        fixed limit (RFC 1870 §4), otherwise the limit in octets.
        ``auth``: mechanism names; empty = do not advertise AUTH.
        ``mt_priority``: ``True`` or a priority-assignment policy name (RFC 6710).
        ``deliverby``: the min-by-time in seconds (RFC 2852), ``0`` for none.
        Raises ``ValueError`` for invalid values (e.g. BINARYMIME without
        CHUNKING, RFC 3030 §3).
        """
        items: list[tuple[str, str]] = []
        if pipelining:
            items.append(("PIPELINING", ""))
        if size is not None:
            if size < 0:
                raise ValueError("SIZE must be >= 0")
            items.append(("SIZE", str(size) if size else ""))
        if vrfy:
            items.append(("VRFY", ""))
        if etrn:
            items.append(("ETRN", ""))
        if expn:
            items.append(("EXPN", ""))
        if starttls:
            items.append(("STARTTLS", ""))
        if auth:
            mechs = [m.upper() for m in auth]
            for m in mechs:
                if not re.fullmatch(r"[A-Z0-9_-]{1,20}", m):
                    raise ValueError(f"invalid SASL mechanism name: {m!r}")
            items.append(("AUTH", " ".join(mechs)))
        if enhancedstatuscodes:
            items.append(("ENHANCEDSTATUSCODES", ""))
        if eightbitmime:
            items.append(("8BITMIME", ""))
        if dsn:
            items.append(("DSN", ""))
        if smtputf8:
            items.append(("SMTPUTF8", ""))
        if chunking:
            items.append(("CHUNKING", ""))
        if binarymime:
            if not chunking:
                raise ValueError("BINARYMIME requires CHUNKING (RFC 3030 §3)")
            items.append(("BINARYMIME", ""))
        if requiretls:
            items.append(("REQUIRETLS", ""))
        if mt_priority:
            items.append(("MT-PRIORITY", mt_priority if isinstance(mt_priority, str) else ""))
        if deliverby is not None:
            if deliverby < 0:
                raise ValueError("DELIVERBY min-by-time must be >= 0")
            items.append(("DELIVERBY", str(deliverby) if deliverby else ""))
        if rrvs:
            items.append(("RRVS", ""))
        if futurerelease is not None:
            if futurerelease.max_interval < 0:
                raise ValueError("FUTURERELEASE interval must be >= 0")
            items.append(
                ("FUTURERELEASE", f"{futurerelease.max_interval} {futurerelease.max_datetime}")
            )
        if limits:
            parts = []
            for name, value in limits.items():
                if not re.fullmatch(r"[A-Za-z0-9_-]+", name) or value < 0:
                    raise ValueError(f"invalid LIMITS entry {name}={value}")
                parts.append(f"{name.upper()}={value}")
            items.append(("LIMITS", " ".join(parts)))
        if help:
            items.append(("HELP", ""))
        items.extend(extra)
        return cls(items)

    # -- typed views ----------------------------------------------------------

    def _flag(self, keyword: str) -> bool:
        return keyword in self._items

    @property
    def size(self) -> int | None:
        """SIZE limit (RFC 1870): None if not advertised, 0 if no fixed limit.

        A malformed or absurd (> 20 digits) parameter is read as 0.
        """
        # Parsed once (the object is immutable): both roles ask at every MAIL.
        return self._size

    @property
    def pipelining(self) -> bool:
        """PIPELINING (RFC 2920)."""
        return self._flag("PIPELINING")

    @property
    def eightbitmime(self) -> bool:
        """8BITMIME (RFC 6152)."""
        return self._flag("8BITMIME")

    @property
    def smtputf8(self) -> bool:
        """SMTPUTF8 (RFC 6531)."""
        return self._flag("SMTPUTF8")

    @property
    def chunking(self) -> bool:
        """CHUNKING / BDAT (RFC 3030)."""
        return self._flag("CHUNKING")

    @property
    def binarymime(self) -> bool:
        """BINARYMIME (RFC 3030); only meaningful together with CHUNKING."""
        return self._flag("BINARYMIME")

    @property
    def starttls(self) -> bool:
        """STARTTLS (RFC 3207)."""
        return self._flag("STARTTLS")

    @property
    def auth_mechanisms(self) -> tuple[str, ...]:
        """SASL mechanisms from ``AUTH`` and the old ``AUTH=`` form, upper case, deduplicated."""
        seen: dict[str, None] = {}
        for kw in ("AUTH", "AUTH="):
            for mech in self._items.get(kw, "").split():
                seen.setdefault(mech.upper(), None)
        return tuple(seen)

    @property
    def auth(self) -> bool:
        """AUTH advertised at all (RFC 4954), in either form."""
        return "AUTH" in self._items or "AUTH=" in self._items

    @property
    def dsn(self) -> bool:
        """DSN (RFC 3461)."""
        return self._flag("DSN")

    @property
    def enhancedstatuscodes(self) -> bool:
        """ENHANCEDSTATUSCODES (RFC 2034)."""
        return self._flag("ENHANCEDSTATUSCODES")

    @property
    def requiretls(self) -> bool:
        """REQUIRETLS (RFC 8689)."""
        return self._flag("REQUIRETLS")

    @property
    def mt_priority(self) -> bool:
        """MT-PRIORITY (RFC 6710)."""
        return self._flag("MT-PRIORITY")

    @property
    def mt_priority_policy(self) -> str | None:
        """The MT-PRIORITY priority-assignment policy (e.g. ``MIXER``), or None."""
        value = self._items.get("MT-PRIORITY")
        return value.split(" ", 1)[0].upper() if value else None

    @property
    def deliverby(self) -> bool:
        """DELIVERBY (RFC 2852)."""
        return self._flag("DELIVERBY")

    @property
    def deliverby_min(self) -> int | None:
        """DELIVERBY min-by-time in seconds; None if absent or not given."""
        value = self._items.get("DELIVERBY", "")
        head = value.split(" ", 1)[0]
        if head and _DIGITS_RE.match(head) and len(head) <= 9:
            return int(head)
        return None

    @property
    def rrvs(self) -> bool:
        """RRVS (RFC 7293)."""
        return self._flag("RRVS")

    @property
    def futurerelease(self) -> FutureRelease | None:
        """FUTURERELEASE limits (RFC 4865 §3), or None if absent or malformed."""
        value = self._items.get("FUTURERELEASE")
        if value is None:
            return None
        parts = value.split()
        if len(parts) != 2 or not _DIGITS_RE.match(parts[0]) or len(parts[0]) > 9:
            return None
        return FutureRelease(int(parts[0]), parts[1])

    @property
    def limits(self) -> dict[str, int] | None:
        """LIMITS (RFC 9422 §4) as ``{"RCPTMAX": 100, ...}``; None if not advertised.

        Names are upper-cased; malformed entries are skipped (RFC 9422 §4:
        unknown or invalid limits are ignored by the client).
        """
        value = self._items.get("LIMITS")
        if value is None:
            return None
        out: dict[str, int] = {}
        for part in value.split():
            name, eq, num = part.partition("=")
            if eq and name and _DIGITS_RE.match(num) and len(num) <= 9:
                out.setdefault(name.upper(), int(num))
        return out

    @property
    def vrfy(self) -> bool:
        """VRFY keyword advertised."""
        return self._flag("VRFY")

    @property
    def etrn(self) -> bool:
        """ETRN (RFC 1985) advertised."""
        return self._flag("ETRN")

    @property
    def expn(self) -> bool:
        """EXPN keyword advertised."""
        return self._flag("EXPN")

    @property
    def help(self) -> bool:
        """HELP keyword advertised."""
        return self._flag("HELP")

    @property
    def xclient(self) -> tuple[str, ...] | None:
        """XCLIENT attribute names (Postfix), or None if not advertised."""
        value = self._items.get("XCLIENT")
        return None if value is None else tuple(a.upper() for a in value.split())

    @property
    def xforward(self) -> tuple[str, ...] | None:
        """XFORWARD attribute names (Postfix), or None if not advertised."""
        value = self._items.get("XFORWARD")
        return None if value is None else tuple(a.upper() for a in value.split())


# ---------------------------------------------------------------------------
# Parameter problems
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParamProblem:
    """What is wrong with a MAIL/RCPT parameter, as the reply a server should send."""

    code: int
    enhanced: str
    text: str


class ParameterError(ValueError):
    """A MAIL/RCPT parameter is invalid; ``problem`` holds the suggested reply."""

    def __init__(self, problem: ParamProblem) -> None:
        super().__init__(f"{problem.code} {problem.enhanced} {problem.text}")
        self.problem = problem


def _unsupported(keyword: str) -> ParamProblem:
    # RFC 5321 §4.1.1.11 / §4.2.3: 555 for unrecognised or unimplemented
    # MAIL/RCPT parameters; Postfix uses 5.5.4 and this wording.
    return ParamProblem(555, "5.5.4", f"Unsupported option: {keyword}")


def _bad_syntax(keyword: str, detail: str = "") -> ParamProblem:
    text = f"Bad {keyword} parameter syntax"
    if detail:
        text += f": {detail}"
    return ParamProblem(501, "5.5.4", text)


class _BadValue(Exception):
    """Internal: a value parser rejects its input."""


# Value parsers: each takes the raw esmtp-value (None: keyword without "=")
# and returns the decoded typed value, raising _BadValue.


def _need(value: str | None) -> str:
    if value is None or value == "":
        raise _BadValue("a value is required")
    return value


def _no_value(value: str | None) -> bool:
    if value is not None:
        raise _BadValue("takes no value")
    return True


def _parse_size(value: str | None) -> int:
    # RFC 1870 §5: size-value ::= 1*20DIGIT (SECURITY-CASES R-04: never int()
    # an unbounded or non-digit string).
    v = _need(value)
    if not _DIGITS_RE.match(v) or len(v) > 20:
        raise _BadValue("must be 1 to 20 digits")
    return int(v)


_BODY_VALUES: Final = ("7BIT", "8BITMIME", "BINARYMIME")


def _parse_body(value: str | None) -> str:
    # RFC 6152 §2 and RFC 3030 §3: BODY=7BIT / 8BITMIME / BINARYMIME.
    v = _need(value).upper()
    if v not in _BODY_VALUES:
        raise _BadValue("must be 7BIT, 8BITMIME or BINARYMIME")
    return v


def _parse_ret(value: str | None) -> str:
    # RFC 3461 §4.3: RET=FULL / HDRS.
    v = _need(value).upper()
    if v not in ("FULL", "HDRS"):
        raise _BadValue("must be FULL or HDRS")
    return v


def _parse_envid(value: str | None) -> str:
    # RFC 3461 §4.4: ENVID=xtext, at most 100 characters, printable ASCII.
    v = _need(value)
    try:
        decoded = xtext_decode(v)
    except ValueError as exc:
        raise _BadValue(str(exc)) from None
    if len(decoded) > 100 or not all(0x20 <= ord(c) <= 0x7E for c in decoded):
        raise _BadValue("must be at most 100 printable ASCII characters")
    return decoded


def _parse_auth(value: str | None) -> str:
    # RFC 4954 §5: AUTH=xtext whose decoded form is "<>" or a mailbox.
    v = _need(value)
    try:
        decoded = xtext_decode(v)
    except ValueError as exc:
        raise _BadValue(str(exc)) from None
    if decoded != "<>":
        if any(ord(c) < 0x21 or ord(c) == 0x7F for c in decoded) or "@" not in decoded:
            raise _BadValue('must be "<>" or an address')
    return decoded


def _parse_mt_priority(value: str | None) -> int:
    # RFC 6710 §3: priority-value = ( [ "-" ] %x31-39 ) / "0", i.e. -9..9.
    v = _need(value)
    if not re.fullmatch(r"-?[1-9]|0", v):
        raise _BadValue("must be an integer from -9 to 9")
    return int(v)


@dataclass(frozen=True, slots=True)
class DeliverBy:
    """The MAIL ``BY=`` parameter (RFC 2852 §4).

    ``seconds`` is by-time (may be negative in N mode); ``mode`` is "N"
    (notify) or "R" (return); ``trace`` requests the trace flag "T".
    """

    seconds: int
    mode: Literal["N", "R"]
    trace: bool = False

    def __post_init__(self) -> None:
        if self.mode not in ("N", "R"):
            raise ValueError("BY mode must be 'N' or 'R'")
        if abs(self.seconds) > 999_999_999:
            raise ValueError("BY time must have at most 9 digits")
        if self.mode == "R" and self.seconds <= 0:
            # RFC 2852 §4: a by-time of zero or less is only meaningful with N.
            raise ValueError("BY time must be positive with mode R")

    def encode(self) -> str:
        """The esmtp-value, e.g. ``"120;RT"``."""
        return f"{self.seconds};{self.mode}{'T' if self.trace else ''}"


_BY_RE: Final = re.compile(r"([+-]?[0-9]{1,9});([NnRr])([Tt]?)\Z")


def _parse_by(value: str | None) -> DeliverBy:
    # RFC 2852 §4: by-value = by-time ";" by-mode [ by-trace ];
    # by-time = [ "-" / "+" ] 1*9digit; by-mode = "N" / "R"; by-trace = "T".
    m = _BY_RE.match(_need(value))
    if not m:
        raise _BadValue("must be <seconds>;N|R[T]")
    mode: Literal["N", "R"] = "N" if m.group(2).upper() == "N" else "R"
    try:
        return DeliverBy(int(m.group(1)), mode, bool(m.group(3)))
    except ValueError as exc:
        raise _BadValue(str(exc)) from None


def _parse_holdfor(value: str | None) -> int:
    # RFC 4865 §4: holdfor-value = 1*9DIGIT (seconds).
    v = _need(value)
    if not _DIGITS_RE.match(v) or len(v) > 9:
        raise _BadValue("must be 1 to 9 digits")
    return int(v)


def _parse_holduntil(value: str | None) -> str:
    # RFC 4865 §4: holduntil-value = date-time (RFC 3339).
    v = _need(value)
    if not _valid_datetime(v):
        raise _BadValue("must be an RFC 3339 date-time")
    return v


_NOTIFY_VALUES: Final = ("SUCCESS", "FAILURE", "DELAY")


def _parse_notify(value: str | None) -> tuple[str, ...]:
    # RFC 3461 §4.1: NOTIFY=NEVER / 1#( SUCCESS / FAILURE / DELAY ).
    v = _need(value).upper()
    if v == "NEVER":
        return ("NEVER",)
    items = v.split(",")
    if any(i not in _NOTIFY_VALUES for i in items) or len(set(items)) != len(items):
        raise _BadValue("must be NEVER or a list of SUCCESS, FAILURE, DELAY")
    return tuple(items)


@dataclass(frozen=True, slots=True)
class Orcpt:
    """The RCPT ``ORCPT=`` parameter (RFC 3461 §4.2, RFC 6533 §3), decoded.

    ``addr_type`` is "rfc822" or "utf-8" (any atom is accepted);
    ``address`` is the decoded original recipient.
    """

    address: str
    addr_type: str = "rfc822"

    def __post_init__(self) -> None:
        if not _ATOM_RE.match(self.addr_type):
            raise ValueError("ORCPT addr-type must be an atom")
        if not self.address:
            raise ValueError("ORCPT address must not be empty")
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in self.address):
            raise ValueError("ORCPT address must not contain control characters")

    def encode(self, *, smtputf8: bool = False) -> str:
        """The esmtp-value: ``addr-type ";" xtext`` (or utf-8-addr-xtext/unitext).

        A non-ASCII address with addr-type rfc822 is sent as "utf-8" with
        utf-8-addr-xtext (RFC 6533 §3), or utf-8-addr-unitext with *smtputf8*.
        """
        atype = self.addr_type
        is_ascii = self.address.isascii()
        if atype.lower() == "utf-8" or not is_ascii:
            atype = "utf-8"
            body = (
                utf8_addr_unitext_encode(self.address)
                if smtputf8
                else utf8_addr_xtext_encode(self.address)
            )
        else:
            body = xtext_encode(self.address)
        text = f"{atype};{body}"
        if len(text) > 500:
            raise ValueError("ORCPT value longer than 500 characters")
        return text


def _parse_orcpt_inner(value: str | None, smtputf8: bool) -> Orcpt:
    # RFC 3461 §4.2: orcpt-parameter = "ORCPT=" addr-type ";" xtext,
    # at most 500 characters; RFC 6533 §3 for addr-type "utf-8".
    v = _need(value)
    if len(v) > 500:
        raise _BadValue("longer than 500 characters")
    atype, semi, rest = v.partition(";")
    if not semi or not _ATOM_RE.match(atype) or not rest:
        raise _BadValue("must be addr-type;address")
    try:
        if atype.lower() == "utf-8":
            address = utf8_addr_decode(rest, allow_utf8=smtputf8)
        else:
            address = xtext_decode(rest)
        return Orcpt(address, atype)
    except ValueError as exc:
        raise _BadValue(str(exc)) from None


@dataclass(frozen=True, slots=True)
class Rrvs:
    """The RCPT ``RRVS=`` parameter (RFC 7293 §3.1).

    ``timestamp`` is an RFC 3339 date-time; ``action`` is "C" (continue) or
    "R" (reject), or None for the default.
    """

    timestamp: str
    action: Literal["C", "R"] | None = None

    def __post_init__(self) -> None:
        if not _valid_datetime(self.timestamp):
            raise ValueError("RRVS timestamp must be an RFC 3339 date-time")
        if self.action not in (None, "C", "R"):
            raise ValueError("RRVS action must be 'C' or 'R'")

    def encode(self) -> str:
        """The esmtp-value, e.g. ``"2014-04-03T23:01:00Z;C"``."""
        return self.timestamp + (f";{self.action}" if self.action else "")


def _parse_rrvs(value: str | None) -> Rrvs:
    # RFC 7293 §3.1: rrvs-param = "RRVS=" date-time [ ";" ( "C" / "R" ) ].
    v = _need(value)
    ts, semi, act = v.partition(";")
    action: Literal["C", "R"] | None = None
    if semi:
        if act.upper() == "C":
            action = "C"
        elif act.upper() == "R":
            action = "R"
        else:
            raise _BadValue("action must be C or R")
    try:
        return Rrvs(ts, action)
    except ValueError as exc:
        raise _BadValue(str(exc)) from None


# keyword -> (capability predicate, value parser)
_Parser = Callable[[str | None], object]
_MAIL_SPECS: Final[dict[str, tuple[Callable[[Capabilities], bool], _Parser]]] = {
    "SIZE": (lambda c: c.size is not None, _parse_size),
    "BODY": (lambda c: c.eightbitmime or c.binarymime, _parse_body),
    "SMTPUTF8": (lambda c: c.smtputf8, _no_value),
    "RET": (lambda c: c.dsn, _parse_ret),
    "ENVID": (lambda c: c.dsn, _parse_envid),
    "AUTH": (lambda c: c.auth, _parse_auth),
    "REQUIRETLS": (lambda c: c.requiretls, _no_value),
    "MT-PRIORITY": (lambda c: c.mt_priority, _parse_mt_priority),
    "BY": (lambda c: c.deliverby, _parse_by),
    "HOLDFOR": (lambda c: c.futurerelease is not None, _parse_holdfor),
    "HOLDUNTIL": (lambda c: c.futurerelease is not None, _parse_holduntil),
}


def _syntax_problem(keyword: str, value: str | None, smtputf8: bool) -> ParamProblem | None:
    if not is_esmtp_keyword(keyword):
        return ParamProblem(501, "5.5.4", "Bad parameter syntax")
    if value is not None and not is_esmtp_value(value, smtputf8=smtputf8):
        return _bad_syntax(keyword)
    return None


def _mail_problem(
    params: Mapping[str, str | None], caps: Capabilities, max_size: int | None
) -> tuple[ParamProblem | None, dict[str, object]]:
    if not params:
        return None, {}  # nothing to check (most MAIL commands)
    smtputf8 = "SMTPUTF8" in params and caps.smtputf8
    parsed: dict[str, object] = {}
    for raw_kw, value in params.items():
        kw = raw_kw.upper()
        problem = _syntax_problem(kw, value, smtputf8)
        if problem:
            return problem, parsed
        spec = _MAIL_SPECS.get(kw)
        if spec is None or not spec[0](caps):
            return _unsupported(kw), parsed
        if kw == "BODY" and value is not None:
            body = value.upper()
            # RFC 6152 / RFC 3030: each BODY value needs its own extension.
            if body == "8BITMIME" and not caps.eightbitmime:
                return _unsupported("BODY=8BITMIME"), parsed
            if body == "BINARYMIME" and not (caps.binarymime and caps.chunking):
                return _unsupported("BODY=BINARYMIME"), parsed
        try:
            parsed[kw] = spec[1](value)
        except _BadValue as exc:
            return _bad_syntax(kw, str(exc)), parsed
    if "HOLDFOR" in parsed and "HOLDUNTIL" in parsed:
        # RFC 4865 §4: the two are mutually exclusive.
        return ParamProblem(501, "5.5.4", "HOLDFOR and HOLDUNTIL are mutually exclusive"), parsed
    fr = caps.futurerelease
    holdfor = parsed.get("HOLDFOR")
    if fr is not None and isinstance(holdfor, int) and holdfor > fr.max_interval:
        return ParamProblem(
            501, "5.5.4", "HOLDFOR exceeds the maximum future release interval"
        ), parsed
    size = parsed.get("SIZE")
    limit = max_size if max_size is not None else (caps.size or None)
    if isinstance(size, int) and limit and size > limit:
        # RFC 1870 §6.1 and SECURITY-CASES R-04.
        return ParamProblem(
            552, "5.3.4", "Message size exceeds fixed maximum message size"
        ), parsed
    return None, parsed


def check_mail_params(
    params: Mapping[str, str | None], caps: Capabilities, *, max_size: int | None
) -> ParamProblem | None:
    """Check MAIL FROM parameters against what *caps* advertises.

    *params* maps upper-cased keywords to values (None: keyword without
    "="). Returns None if all is well, otherwise the reply a server should
    send (a client raises instead of sending):

    * unknown or not advertised keyword -> 555 5.5.4;
    * value syntax error (incl. a SIZE that is not 1-20 digits) -> 501 5.5.4;
    * SIZE above *max_size* (or, if None, above the advertised SIZE limit)
      -> 552 5.3.4.
    """
    return _mail_problem(params, caps, max_size)[0]


_RCPT_SPECS: Final[dict[str, tuple[Callable[[Capabilities], bool], _Parser]]] = {
    "NOTIFY": (lambda c: c.dsn, _parse_notify),
    "ORCPT": (lambda c: c.dsn, lambda v: _parse_orcpt_inner(v, False)),
    "RRVS": (lambda c: c.rrvs, _parse_rrvs),
}


def _rcpt_problem(
    params: Mapping[str, str | None], caps: Capabilities, smtputf8: bool
) -> tuple[ParamProblem | None, dict[str, object]]:
    parsed: dict[str, object] = {}
    for raw_kw, value in params.items():
        kw = raw_kw.upper()
        problem = _syntax_problem(kw, value, smtputf8)
        if problem:
            return problem, parsed
        spec = _RCPT_SPECS.get(kw)
        if spec is None or not spec[0](caps):
            return _unsupported(kw), parsed
        try:
            if kw == "ORCPT":
                parsed[kw] = _parse_orcpt_inner(value, smtputf8)
            else:
                parsed[kw] = spec[1](value)
        except _BadValue as exc:
            return _bad_syntax(kw, str(exc)), parsed
    return None, parsed


def check_rcpt_params(
    params: Mapping[str, str | None], caps: Capabilities, *, smtputf8: bool = False
) -> ParamProblem | None:
    """Check RCPT TO parameters against what *caps* advertises.

    *smtputf8* tells whether the transaction's MAIL carried SMTPUTF8 (then
    values may contain UTF-8, RFC 6531 §3.3, and ORCPT may use
    utf-8-addr-unitext, RFC 6533 §3). Same reply rules as
    :func:`check_mail_params`.
    """
    return _rcpt_problem(params, caps, smtputf8)[0]


# ---------------------------------------------------------------------------
# Typed views
# ---------------------------------------------------------------------------


def _check_extra(extra: tuple[tuple[str, str | None], ...], known: Iterable[str]) -> None:
    known_set = set(known)
    seen: set[str] = set()
    for kw, value in extra:
        if not is_esmtp_keyword(kw):
            raise ValueError(f"invalid esmtp-keyword: {kw!r}")
        if kw.upper() in known_set:
            raise ValueError(f"{kw} has a typed field; do not pass it in extra")
        if kw.upper() in seen:
            raise ValueError(f"duplicate parameter {kw}")
        seen.add(kw.upper())
        if value is not None and not is_esmtp_value(value, smtputf8=True):
            raise ValueError(f"invalid esmtp-value for {kw}: {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class MailParams:
    """Typed MAIL FROM parameters.

    Every field is validated on construction (``ValueError``), so
    :meth:`to_params` only ever produces valid esmtp-values (C-03).
    ``envid`` and ``auth`` hold decoded text; they are xtext-encoded on output.
    ``extra`` carries other ``(keyword, value)`` pairs verbatim.
    """

    size: int | None = None
    body: Literal["7BIT", "8BITMIME", "BINARYMIME"] | None = None
    smtputf8: bool = False
    ret: Literal["FULL", "HDRS"] | None = None
    envid: str | None = None
    auth: str | None = None
    requiretls: bool = False
    mt_priority: int | None = None
    by: DeliverBy | None = None
    holdfor: int | None = None
    holduntil: str | None = None
    extra: tuple[tuple[str, str | None], ...] = field(default=())

    def __post_init__(self) -> None:
        if self.size is not None and (self.size < 0 or len(str(self.size)) > 20):
            raise ValueError("SIZE must be a non-negative integer of at most 20 digits")
        if self.body is not None and self.body not in _BODY_VALUES:
            raise ValueError("BODY must be 7BIT, 8BITMIME or BINARYMIME")
        if self.ret is not None and self.ret not in ("FULL", "HDRS"):
            raise ValueError("RET must be FULL or HDRS")
        if self.envid is not None:
            if not self.envid or len(self.envid) > 100:
                raise ValueError("ENVID must be 1 to 100 characters")
            if not all(0x20 <= ord(c) <= 0x7E for c in self.envid):
                raise ValueError("ENVID must be printable ASCII")
        if self.auth is not None:
            try:
                _parse_auth(xtext_encode(self.auth))
            except _BadValue as exc:
                raise ValueError(f"AUTH: {exc}") from None
        if self.mt_priority is not None and not -9 <= self.mt_priority <= 9:
            raise ValueError("MT-PRIORITY must be from -9 to 9")
        if self.holdfor is not None and not 0 <= self.holdfor <= 999_999_999:
            raise ValueError("HOLDFOR must be 0 to 999999999 seconds")
        if self.holduntil is not None and not _valid_datetime(self.holduntil):
            raise ValueError("HOLDUNTIL must be an RFC 3339 date-time")
        if self.holdfor is not None and self.holduntil is not None:
            raise ValueError("HOLDFOR and HOLDUNTIL are mutually exclusive")
        _check_extra(self.extra, _MAIL_SPECS)

    @classmethod
    def from_params(
        cls, params: Mapping[str, str | None], caps: Capabilities | None = None
    ) -> MailParams:
        """Decode received parameters; raise :class:`ParameterError` if invalid.

        With *caps*, the full server check of :func:`check_mail_params` runs
        (including 555 for what was not advertised, without a size limit);
        without it, unknown keywords are kept in ``extra`` and only the known
        ones are validated.
        """
        if caps is not None:
            problem, parsed = _mail_problem(params, caps, None)
            if problem is not None and problem.code != 552:
                raise ParameterError(problem)
            extra: list[tuple[str, str | None]] = []
        else:
            parsed = {}
            extra = []
            for raw_kw, value in params.items():
                kw = raw_kw.upper()
                problem = _syntax_problem(kw, value, True)
                if problem:
                    raise ParameterError(problem)
                spec = _MAIL_SPECS.get(kw)
                if spec is None:
                    extra.append((kw, value))
                    continue
                try:
                    parsed[kw] = spec[1](value)
                except _BadValue as exc:
                    raise ParameterError(_bad_syntax(kw, str(exc))) from None
        try:
            return cls(
                size=_opt_int(parsed.get("SIZE")),
                body=_opt_body(parsed.get("BODY")),
                smtputf8="SMTPUTF8" in parsed,
                ret="FULL" if parsed.get("RET") == "FULL" else "HDRS" if "RET" in parsed else None,
                envid=_opt_str(parsed.get("ENVID")),
                auth=_opt_str(parsed.get("AUTH")),
                requiretls="REQUIRETLS" in parsed,
                mt_priority=_opt_int(parsed.get("MT-PRIORITY")),
                by=_opt_by(parsed.get("BY")),
                holdfor=_opt_int(parsed.get("HOLDFOR")),
                holduntil=_opt_str(parsed.get("HOLDUNTIL")),
                extra=tuple(extra),
            )
        except ValueError as exc:
            raise ParameterError(ParamProblem(501, "5.5.4", str(exc))) from None

    def to_params(self) -> dict[str, str | None]:
        """Encode as ``{keyword: esmtp-value or None}``, in a stable order."""
        out: dict[str, str | None] = {}
        if self.size is not None:
            out["SIZE"] = str(self.size)
        if self.body is not None:
            out["BODY"] = self.body
        if self.smtputf8:
            out["SMTPUTF8"] = None
        if self.ret is not None:
            out["RET"] = self.ret
        if self.envid is not None:
            out["ENVID"] = xtext_encode(self.envid)
        if self.auth is not None:
            out["AUTH"] = xtext_encode(self.auth)
        if self.requiretls:
            out["REQUIRETLS"] = None
        if self.mt_priority is not None:
            out["MT-PRIORITY"] = str(self.mt_priority)
        if self.by is not None:
            out["BY"] = self.by.encode()
        if self.holdfor is not None:
            out["HOLDFOR"] = str(self.holdfor)
        if self.holduntil is not None:
            out["HOLDUNTIL"] = self.holduntil
        for kw, value in self.extra:
            out[kw.upper()] = value
        return out


def _opt_int(v: object) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _opt_by(v: object) -> DeliverBy | None:
    return v if isinstance(v, DeliverBy) else None


def _opt_str(v: object) -> str | None:
    return v if isinstance(v, str) else None


def _opt_body(v: object) -> Literal["7BIT", "8BITMIME", "BINARYMIME"] | None:
    if v == "7BIT":
        return "7BIT"
    if v == "8BITMIME":
        return "8BITMIME"
    if v == "BINARYMIME":
        return "BINARYMIME"
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class RcptParams:
    """Typed RCPT TO parameters (DSN NOTIFY/ORCPT, RRVS), validated on construction.

    ``notify`` is ``("NEVER",)`` or a tuple of SUCCESS/FAILURE/DELAY.
    ``smtputf8`` only affects how ORCPT is encoded (utf-8-addr-unitext).
    """

    notify: tuple[str, ...] | None = None
    orcpt: Orcpt | None = None
    rrvs: Rrvs | None = None
    extra: tuple[tuple[str, str | None], ...] = field(default=())
    smtputf8: bool = False

    def __post_init__(self) -> None:
        if self.notify is not None:
            items = tuple(i.upper() for i in self.notify)
            if items != ("NEVER",) and (
                not items
                or any(i not in _NOTIFY_VALUES for i in items)
                or len(set(items)) != len(items)
            ):
                raise ValueError("NOTIFY must be ('NEVER',) or SUCCESS/FAILURE/DELAY")
            object.__setattr__(self, "notify", items)
        _check_extra(self.extra, _RCPT_SPECS)

    @classmethod
    def from_params(
        cls,
        params: Mapping[str, str | None],
        caps: Capabilities | None = None,
        *,
        smtputf8: bool = False,
    ) -> RcptParams:
        """Decode received parameters; raise :class:`ParameterError` if invalid.

        With *caps* the full :func:`check_rcpt_params` check runs; without it,
        unknown keywords are kept in ``extra``.
        """
        extra: list[tuple[str, str | None]] = []
        if caps is not None:
            problem, parsed = _rcpt_problem(params, caps, smtputf8)
            if problem is not None:
                raise ParameterError(problem)
        else:
            parsed = {}
            for raw_kw, value in params.items():
                kw = raw_kw.upper()
                problem = _syntax_problem(kw, value, smtputf8)
                if problem:
                    raise ParameterError(problem)
                if kw not in _RCPT_SPECS:
                    extra.append((kw, value))
                    continue
                try:
                    parsed[kw] = (
                        _parse_orcpt_inner(value, smtputf8)
                        if kw == "ORCPT"
                        else _RCPT_SPECS[kw][1](value)
                    )
                except _BadValue as exc:
                    raise ParameterError(_bad_syntax(kw, str(exc))) from None
        notify = parsed.get("NOTIFY")
        orcpt = parsed.get("ORCPT")
        rrvs = parsed.get("RRVS")
        return cls(
            notify=notify if isinstance(notify, tuple) else None,
            orcpt=orcpt if isinstance(orcpt, Orcpt) else None,
            rrvs=rrvs if isinstance(rrvs, Rrvs) else None,
            extra=tuple(extra),
            smtputf8=smtputf8,
        )

    def to_params(self) -> dict[str, str | None]:
        """Encode as ``{keyword: esmtp-value or None}``."""
        out: dict[str, str | None] = {}
        if self.notify is not None:
            out["NOTIFY"] = ",".join(self.notify)
        if self.orcpt is not None:
            out["ORCPT"] = self.orcpt.encode(smtputf8=self.smtputf8)
        if self.rrvs is not None:
            out["RRVS"] = self.rrvs.encode()
        for kw, value in self.extra:
            out[kw.upper()] = value
        return out
