"""Build correct MIME messages from plain values.

``build_bytes(...)`` returns the message bytes, ``build(...)`` the parsed ``Message``.
The shape follows RFC 2046 and what mail clients expect::

    multipart/mixed                       (only when there are attachments)
      multipart/alternative               (only when there are text *and* HTML)
        text/plain
        multipart/related                 (only when there are inline parts)
          text/html
          image/png  Content-ID: <...>
      application/pdf  (attachment)

Everything written is checked: headers go through :mod:`._encode` (folded, RFC 2047 /
RFC 2231 encoded, verified), bodies get the smallest safe Content-Transfer-Encoding
(:func:`~._transfer_encode.choose_encoding`), text line ends are normalized to CRLF
(H-10), and no line exceeds 998 octets (H-09). The builder is deterministic: Date and
Message-ID are written only when passed (or asked for with ``True``), and boundaries are
derived from ``boundary=`` / ``seed=`` when given.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Union

from ._encode import (
    AddressInput,
    AddressLike,
    GroupLike,
    HeaderError,
    format_header,
    format_params_header,
    verify_header_section,
)
from ._transfer_encode import choose_encoding, encode_body, is_line_safe, normalize_newlines

if TYPE_CHECKING:
    from ._message import Message

__all__ = [
    "Attachment",
    "BuildError",
    "build",
    "build_bytes",
    "format_date",
    "make_msgid",
]


class BuildError(ValueError):
    """The builder was given values it cannot turn into a correct message."""


#: One address argument: a single address (object, ``(name, addr)`` pair, or string) or
#: a sequence of them.
Addresses = Union[AddressInput, Sequence[AddressInput], None]
HeaderItems = Union[Mapping[str, str], Iterable[tuple[str, str]]]

# A private, deterministic MIME type table: mimetypes.MimeTypes() built without files uses
# only Python's built-in map, never the host's /etc/mime.types.
_MIME_TYPES = mimetypes.MimeTypes(filenames=())
_TYPE_RE = re.compile(r"[A-Za-z0-9!#$%&'*+\-.^_`{|}~]+/[A-Za-z0-9!#$%&'*+\-.^_`{|}~]+")
_CONTENT_ID = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.@\[\]]+")
# Field names the builder writes itself (RFC 2045 §3, §4, §5, §6; RFC 2183).
_MANAGED = frozenset(
    {"mime-version", "content-type", "content-transfer-encoding", "content-disposition"}
)
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class Attachment:
    """A non-text part: an attachment, or an inline part referenced from HTML.

    * ``data`` — the exact bytes; they come back unchanged from ``decoded_body()``.
    * ``filename`` — written as the ``filename`` (Content-Disposition) and ``name``
      (Content-Type) parameters, RFC 2231-encoded when non-ASCII.
    * ``content_type`` — ``type/subtype``; guessed from the filename when omitted,
      else ``application/octet-stream``.
    * ``content_id`` — for inline parts: the HTML refers to it as ``cid:<content_id>``
      (RFC 2392); written as ``Content-ID: <content_id>``.
    * ``inline`` — ``Content-Disposition: inline`` instead of ``attachment``.
    * ``params`` — extra Content-Type parameters (e.g. ``charset`` for a text file).
    * ``headers`` — extra part header fields (e.g. Content-Description).
    """

    data: bytes
    filename: str | None = None
    content_type: str | None = None
    content_id: str | None = None
    inline: bool = False
    params: Mapping[str, str] = field(default_factory=dict)
    headers: Sequence[tuple[str, str]] = ()

    def resolved_type(self) -> str:
        """The Content-Type to write (lower case), guessing from the filename if needed."""
        if self.content_type:
            ctype = self.content_type.strip().lower()
            if not _TYPE_RE.fullmatch(ctype):
                raise BuildError(f"invalid content type {self.content_type!r}")
            return ctype
        if self.filename:
            guessed, _ = _MIME_TYPES.guess_type(self.filename, strict=False)
            if guessed:
                return guessed.lower()
        return "application/octet-stream"


# --------------------------------------------------------------------------- helpers


def format_date(dt: datetime) -> str:
    """Format *dt* as an RFC 5322 §3.3 date-time: ``Thu, 13 Feb 1969 23:32:54 -0330``.

    English day and month names regardless of locale; seconds are kept, fractions
    dropped. A naive datetime is written with zone ``-0000`` ("no zone information",
    §3.3); the offset of an aware one is rounded to whole minutes.
    """
    offset = dt.utcoffset()
    if offset is None:
        zone = "-0000"
    else:
        minutes = round(offset / timedelta(minutes=1))
        sign = "+" if minutes >= 0 else "-"
        zone = f"{sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"
    return (
        f"{_DAYS[dt.weekday()]}, {dt.day:02d} {_MONTHS[dt.month - 1]} {dt.year:04d} "
        f"{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d} {zone}"
    )


def make_msgid(domain: str, *, unique: str | None = None) -> str:
    """Return a new RFC 5322 §3.6.4 msg-id, ``<unique@domain>``.

    *unique* defaults to 128 random bits in hex (``secrets``), so ids never collide;
    pass a value to get a deterministic id. A non-ASCII domain is IDNA-encoded.
    """
    if unique is None:
        unique = secrets.token_hex(16)
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise BuildError(f"domain {domain!r} cannot be IDNA-encoded") from exc
    msgid = f"<{unique}@{domain}>"
    atom = r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+(?:\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*"
    if not re.fullmatch(rf"<{atom}@(?:{atom}|\[[\x21-\x5a\x5e-\x7e]*\])>", msgid):
        raise BuildError(f"cannot make a msg-id from {unique!r} and {domain!r}")
    return msgid


def _as_list(value: Addresses) -> list[AddressInput]:
    if value is None:
        return []
    if isinstance(value, (str, tuple)) or isinstance(value, (AddressLike, GroupLike)):
        return [value]
    return list(value)


def _domain_of(addresses: list[AddressInput]) -> str:
    for addr in addresses:
        if isinstance(addr, str):
            spec = addr
        elif isinstance(addr, tuple):
            spec = addr[1]
        else:
            spec = getattr(addr, "addr_spec", "") or ""
        m = re.search(r"@([^\s<>@,;]+)>?\s*$", spec)
        if m:
            return m.group(1)
    raise BuildError("message_id=True needs a From address with a domain (or pass make_msgid(...))")


def _header_items(headers: HeaderItems) -> list[tuple[str, str]]:
    items = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    for item in items:
        if not (isinstance(item, tuple) and len(item) == 2):
            raise BuildError(f"a header is a (name, value) pair, not {item!r}")
    return items


# --------------------------------------------------------------------------- parts


@dataclass
class _Part:
    """An encoded part: its header fields (bytes) and its encoded body."""

    headers: list[bytes]
    body: bytes

    def to_bytes(self) -> bytes:
        return b"".join(self.headers) + b"\r\n" + self.body


class _Boundaries:
    """Boundary source: explicit / seeded (deterministic) or random."""

    def __init__(self, boundary: str | None, seed: str | int | bytes | None) -> None:
        if boundary is not None:
            # RFC 2046 §5.1.1: 1-70 bchars, not ending in a space.
            if not re.fullmatch(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]", boundary):
                raise BuildError(f"invalid boundary {boundary!r} (RFC 2046 §5.1.1)")
        self.explicit = boundary
        if isinstance(seed, bytes):
            seed = seed.hex()
        self.seed = None if seed is None else str(seed)
        self.count = 0

    def candidate(self, outermost: bool, attempt: int) -> str:
        if outermost and self.explicit is not None:
            return self.explicit
        self.count += 1
        if self.seed is not None or self.explicit is not None:
            base = f"{self.seed}|{self.explicit}|{self.count}|{attempt}".encode()
            token = hashlib.sha256(base).hexdigest()[:32]
        else:
            token = secrets.token_hex(16)
        # "=_" can never occur in base64 or quoted-printable output (RFC 2045 §6.7: "="
        # is followed by two hex digits or a line break), which makes collisions unlikely.
        return "=_" + token

    def pick(self, children: Sequence[bytes], outermost: bool) -> str:
        for attempt in range(100):
            cand = self.candidate(outermost, attempt)
            marker = cand.encode("ascii")
            if outermost and self.explicit is not None:
                # The caller chose it: it only has to not start any line of the content.
                delim = b"--" + marker
                if any(c.startswith(delim) or b"\n" + delim in c for c in children):
                    raise BuildError(f"boundary {cand!r} occurs in the content")
                return cand
            if not any(marker in c for c in children):
                return cand
        raise BuildError("could not find a boundary absent from the content")  # pragma: no cover


def _multipart(
    subtype: str, parts: Sequence[_Part], boundaries: _Boundaries, outermost: bool, utf8: bool
) -> _Part:
    children = [p.to_bytes() for p in parts]
    boundary = boundaries.pick(children, outermost)
    delim = b"--" + boundary.encode("ascii")
    # RFC 2046 §5.1.1: the CRLF before each delimiter belongs to the delimiter.
    body = b"".join(delim + b"\r\n" + c + b"\r\n" for c in children) + delim + b"--\r\n"
    header = format_params_header(
        "Content-Type", f"multipart/{subtype}", {"boundary": boundary}, utf8=utf8
    )
    return _Part([header], body)


def _leaf(
    ctype: str,
    params: Mapping[str, str],
    data: bytes,
    *,
    allow_8bit: bool,
    allow_binary: bool,
    utf8: bool,
    disposition: str | None = None,
    filename: str | None = None,
    content_id: str | None = None,
    extra: Sequence[tuple[str, str]] = (),
) -> _Part:
    params = dict(params)
    if filename is not None and "name" not in params:
        params["name"] = filename
    if ctype.startswith("multipart/"):
        raise BuildError("a multipart type cannot be given as a part's content type")
    if ctype.startswith("message/"):
        # RFC 2046 §5.2.1: message/rfc822 bodies may only be 7bit, 8bit or binary.
        if is_line_safe(data) and (data.isascii() or allow_8bit or allow_binary):
            cte = "7bit" if data.isascii() else "8bit"
        elif allow_binary:
            cte = "binary"
        else:
            raise BuildError(
                f"{ctype} content must be 7bit/8bit/binary (RFC 2046 §5.2.1); "
                "enable allow_8bit/allow_binary or send it as application/octet-stream"
            )
    else:
        cte = choose_encoding(data, allow_8bit=allow_8bit, allow_binary=allow_binary)
    headers = [format_params_header("Content-Type", ctype, params, utf8=utf8)]
    headers.append(format_header("Content-Transfer-Encoding", cte))
    if disposition is not None:
        dparams = {"filename": filename} if filename is not None else {}
        headers.append(format_params_header("Content-Disposition", disposition, dparams, utf8=utf8))
    if content_id is not None:
        cid = content_id.strip()
        if cid.startswith("<") and cid.endswith(">"):
            cid = cid[1:-1]
        if not _CONTENT_ID.fullmatch(cid):
            raise BuildError(f"invalid Content-ID {content_id!r}")
        headers.append(format_header("Content-ID", f"<{cid}>"))
    for name, value in extra:
        if name.lower() in _MANAGED or name.lower() == "content-id":
            raise BuildError(f"{name} is written by the builder; use the Attachment fields")
        headers.append(format_header(name, value, utf8=utf8))
    return _Part(headers, encode_body(data, cte))


def _text_part(text: str, subtype: str, allow_8bit: bool, utf8: bool) -> _Part:
    if not isinstance(text, str):
        raise BuildError(f"text/{subtype} content must be str")
    # H-10: every line ending becomes CRLF before anything else looks at the body.
    data = normalize_newlines(text.encode("utf-8", "surrogatepass"))
    charset = "us-ascii" if data.isascii() else "utf-8"
    return _leaf(
        f"text/{subtype}", {"charset": charset}, data,
        allow_8bit=allow_8bit, allow_binary=False, utf8=utf8,
    )


# --------------------------------------------------------------------------- build


def build_bytes(
    *,
    from_: Addresses = None,
    sender: AddressInput | None = None,
    reply_to: Addresses = None,
    to: Addresses = None,
    cc: Addresses = None,
    bcc: Addresses = None,
    subject: str | None = None,
    text: str | None = None,
    html: str | None = None,
    attachments: Iterable[Attachment] = (),
    inline: Iterable[Attachment] = (),
    headers: HeaderItems = (),
    date: datetime | str | bool | None = None,
    message_id: str | bool | None = None,
    smtputf8: bool = False,
    allow_8bit: bool | None = None,
    allow_binary: bool = False,
    boundary: str | None = None,
    seed: str | int | bytes | None = None,
) -> bytes:
    """Build a message and return its bytes (CRLF line ends, no line over 998 octets).

    Addresses (``from_``, ``to``, …) are ``Address``/``Group`` objects, ``(name,
    addr_spec)`` pairs or strings, alone or in a list; display names are RFC 2047-encoded
    when non-ASCII. ``text`` and ``html`` become ``text/plain`` and ``text/html``
    (``multipart/alternative`` when both); ``inline`` parts go into a
    ``multipart/related`` with the HTML (or into ``multipart/mixed`` with
    ``Content-Disposition: inline`` when there is no HTML); ``attachments`` make the
    message ``multipart/mixed``. ``headers`` adds any other fields, in order.

    Determinism: ``date`` is a datetime (formatted with :func:`format_date`), a ready
    string, or ``True`` for "now"; ``message_id`` is a msg-id string or ``True`` for
    :func:`make_msgid` with the From domain; neither is written when omitted.
    ``boundary`` fixes the outermost boundary and ``seed`` makes all boundaries
    reproducible; otherwise they are random. Every boundary is checked against the
    encoded content it encloses.

    ``smtputf8=True`` writes non-ASCII header text as raw UTF-8 (RFC 6532) and allows
    8bit bodies (RFC 6531 requires 8BITMIME); ``allow_8bit`` / ``allow_binary`` enable
    8bit (RFC 6152) and binary (RFC 3030) bodies.
    """
    utf8 = smtputf8
    b8 = smtputf8 if allow_8bit is None else allow_8bit
    attachments = list(attachments)
    inline = list(inline)
    for a in attachments + inline:
        if not isinstance(a, Attachment):
            raise BuildError(f"attachments must be Attachment objects, not {type(a).__name__}")
        if not isinstance(a.data, (bytes, bytearray, memoryview)):
            raise BuildError(f"Attachment.data must be bytes, not {type(a.data).__name__}")
    extra = _header_items(headers)
    extra_names = {n.lower() for n, _ in extra}
    for name in extra_names & _MANAGED:
        raise BuildError(f"{name} is written by the builder")

    # ---- top-level header fields, RFC 5322 §3.6 order
    fields: list[bytes] = []

    def add(name: str, value: str | list[AddressInput]) -> None:
        if name.lower() in extra_names:
            raise BuildError(f"{name} given both as an argument and in headers")
        fields.append(format_header(name, value, utf8=utf8))

    from_list = _as_list(from_)
    if len(from_list) > 1 and sender is None:
        # RFC 5322 §3.6.2: with more than one author, Sender must name the one who sent it.
        raise BuildError("a From with several mailboxes needs a sender= (RFC 5322 §3.6.2)")
    if date is not None and date is not False:
        if date is True:
            date = datetime.now(timezone.utc)
        add("Date", format_date(date) if isinstance(date, datetime) else date)
    if from_list:
        add("From", from_list)
    if sender is not None:
        add("Sender", [sender])
    for name, value in (("Reply-To", reply_to), ("To", to), ("Cc", cc), ("Bcc", bcc)):
        items = _as_list(value)
        if items:
            add(name, items)
    if subject is not None:
        add("Subject", subject)
    if message_id is not None and message_id is not False:
        if message_id is True:
            message_id = make_msgid(_domain_of(from_list))
        add("Message-ID", message_id)
    for name, value in extra:
        fields.append(format_header(name, value, utf8=utf8))
    fields.append(format_header("MIME-Version", "1.0"))

    # ---- body tree
    boundaries = _Boundaries(boundary, seed)
    opts = {"allow_8bit": b8, "allow_binary": allow_binary, "utf8": utf8}

    def attachment_part(a: Attachment, disposition: str) -> _Part:
        return _leaf(
            a.resolved_type(), a.params, bytes(a.data),
            disposition=disposition, filename=a.filename, content_id=a.content_id,
            extra=a.headers, **opts,
        )

    # Which multipart is outermost decides who gets an explicit ``boundary``.
    has_others = bool(attachments) or (bool(inline) and html is None)
    has_alt = text is not None and html is not None
    html_part = _text_part(html, "html", b8, utf8) if html is not None else None
    if html_part is not None and inline:
        related = [html_part] + [attachment_part(a, "inline") for a in inline]
        outer = not has_alt and not has_others
        html_part = _multipart("related", related, boundaries, outer, utf8)
        inline = []
    text_part = _text_part(text, "plain", b8, utf8) if text is not None else None
    body_parts = [p for p in (text_part, html_part) if p is not None]
    main: _Part | None
    if len(body_parts) == 2:
        main = _multipart("alternative", body_parts, boundaries, not has_others, utf8)
    else:
        main = body_parts[0] if body_parts else None
    # Inline parts without HTML to refer to them are shown inline in a mixed message.
    others = [attachment_part(a, "inline") for a in inline]
    others += [attachment_part(a, "inline" if a.inline else "attachment") for a in attachments]
    if others:
        top = _multipart("mixed", ([main] if main else []) + others, boundaries, True, utf8)
    elif main is not None:
        top = main
    else:
        top = _text_part("", "plain", b8, utf8)
    raw_headers = b"".join(fields) + b"".join(top.headers) + b"\r\n"
    verify_header_section(raw_headers)
    return raw_headers + top.body


def build(
    *,
    from_: Addresses = None,
    sender: AddressInput | None = None,
    reply_to: Addresses = None,
    to: Addresses = None,
    cc: Addresses = None,
    bcc: Addresses = None,
    subject: str | None = None,
    text: str | None = None,
    html: str | None = None,
    attachments: Iterable[Attachment] = (),
    inline: Iterable[Attachment] = (),
    headers: HeaderItems = (),
    date: datetime | str | bool | None = None,
    message_id: str | bool | None = None,
    smtputf8: bool = False,
    allow_8bit: bool | None = None,
    allow_binary: bool = False,
    boundary: str | None = None,
    seed: str | int | bytes | None = None,
) -> Message:
    """Build a message like :func:`build_bytes` and return it parsed as a ``Message``.

    Takes the same arguments; ``build(...).to_bytes()`` gives the built bytes unchanged.
    """
    from ._parser import parse

    return parse(
        build_bytes(
            from_=from_, sender=sender, reply_to=reply_to, to=to, cc=cc, bcc=bcc,
            subject=subject, text=text, html=html, attachments=attachments, inline=inline,
            headers=headers, date=date, message_id=message_id, smtputf8=smtputf8,
            allow_8bit=allow_8bit, allow_binary=allow_binary, boundary=boundary, seed=seed,
        )
    )
