"""The parsed message: original bytes plus lazily decoded views.

A :class:`Message` (every MIME part is one) remembers where its header fields,
body and sub-parts lie in the bytes it was parsed from.  Nothing is decoded
until asked for, and ``to_bytes()`` of an unchanged message is a slice of the
input.  After an edit only the edited fields are re-serialised (through
``_encode.format_header``, the one validated writer); every other byte is
copied from the source.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ._charsets import decode_text
from ._decode import IDENTITY_ENCODINGS, decode_transfer
from ._defects import Defect, DefectKind, Severity
from ._headers import Header, decode_raw_value, unfold
from ._params import ParamValue, parse_param_header
from ._rfc2047 import remove_folds_in_words

if TYPE_CHECKING:  # pragma: no cover
    import email.message

    from ._address import Address, Group
    from ._lists import ListHeader
    from ._received import Received

__all__ = ["Message", "LEAF", "MULTIPART", "MESSAGE", "ENCODED_MESSAGE"]

#: Part kinds: a leaf (any non-composite body), a multipart with sub-parts, a
#: message/rfc822 (or message/global) whose body is parsed in place, and one
#: whose body had to be transfer-decoded first (base64/quoted-printable).
LEAF, MULTIPART, MESSAGE, ENCODED_MESSAGE = 0, 1, 2, 3

# (start, colon, end, name, offset in the input) of one header field.
RawField = tuple[int, int, int, str, "int | None"]

_INLINE_MEDIA = ("image/", "audio/", "video/")

# Fields that may appear at most once: RFC 5322 section 3.6 (table) and the
# MIME fields of RFC 2045 / RFC 2183.
_SINGLETONS = frozenset({
    "date", "from", "sender", "reply-to", "to", "cc", "bcc", "message-id", "in-reply-to",
    "references", "subject", "mime-version", "content-type", "content-transfer-encoding",
    "content-disposition", "content-id"})


class Message:
    """One message or MIME part; parse with :func:`smtpproto.message.parse`.

    Header access (``msg["Subject"]``, :meth:`get`, :meth:`get_all`) returns
    decoded, unfolded text; :attr:`headers` gives the raw fields.  Sub-parts
    are in :attr:`parts` (for a message/rfc822 part: the one enclosed message).
    """

    __slots__ = (
        "_src", "_start", "_hdr_end", "_body_start", "_end", "_raw_fields", "_fields",
        "_kind", "_children", "_parent", "_preamble_end", "_epilogue_start", "_closed",
        "_defects", "_pv", "_ct_seen", "_in_digest", "_dirty", "_hdr_dirty",
        "_body_retained", "_depth", "_enc_level", "_disp", "_body_checked", "_body_decoded",
        "__weakref__",
    )

    def __init__(self) -> None:
        """Create an empty message; use :func:`parse` to get one from bytes."""
        self._src: bytes = b""
        self._start = 0
        self._hdr_end = 0
        self._body_start = 0
        self._end = 0
        self._raw_fields: list[RawField] = []
        self._fields: list[Header] | None = None
        self._kind = LEAF
        self._children: list[Message] = []
        self._parent: Message | None = None
        self._preamble_end = -1
        self._epilogue_start = -1
        self._closed = False
        self._defects: list[Defect] = []
        self._pv: ParamValue | None = None
        self._ct_seen = False
        self._in_digest = False
        self._dirty = False
        self._hdr_dirty = False
        self._body_retained = True
        self._depth = 0
        self._enc_level = 0
        self._disp: ParamValue | None = None
        self._body_checked = False
        self._body_decoded = False

    # ------------------------------------------------------------------ headers

    @property
    def headers(self) -> list[Header]:
        """All header fields in order, as :class:`Header` objects (raw bytes + value)."""
        fields = self._fields
        if fields is None:
            src = self._src
            fields = self._fields = [Header(src, s, c, e, n, o)
                                     for (s, c, e, n, o) in self._raw_fields]
        return list(fields)

    def _all_fields(self) -> list[Header]:
        if self._fields is None:
            self.headers  # noqa: B018 - builds the cache
        assert self._fields is not None
        return self._fields

    def get_all(self, name: str) -> list[str]:
        """Decoded values of every field called ``name`` (case-insensitive), in order."""
        lname = name.lower()
        return [h.value for h in self._all_fields() if h.lname == lname]

    def get(self, name: str, default: str | None = None) -> str | None:
        """Decoded value of the first field called ``name``, or ``default``."""
        lname = name.lower()
        for h in self._all_fields():
            if h.lname == lname:
                return h.value
        return default

    def __getitem__(self, name: str) -> str:
        """Decoded value of the first field called ``name``; ``KeyError`` if absent."""
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        """True if a field called ``name`` (case-insensitive) is present."""
        if not isinstance(name, str):
            return False
        lname = name.lower()
        return any(f[3].lower() == lname for f in self._raw_fields) if self._fields is None \
            else any(h.lname == lname for h in self._fields)

    def keys(self) -> list[str]:
        """Field names in order (as written; duplicates repeated)."""
        return [h.name for h in self._all_fields() if h.name]

    def _first_field(self, lname: str) -> tuple[str, int | None] | None:
        # Structured fields: unfolded text with encoded-words left in place,
        # and where the field starts in the input (for defect offsets).
        if self._fields is None:
            src = self._src
            for s, c, e, n, o in self._raw_fields:
                if n.lower() == lname:
                    raw = bytes(src[c + 1:e]).rstrip(b"\r\n")
                    return unfold(remove_folds_in_words(decode_raw_value(raw))), o
            return None
        for h in self._fields:
            if h.lname == lname:
                return h.text(), h.offset
        return None

    def _first_text(self, lname: str) -> str | None:
        found = self._first_field(lname)
        return None if found is None else found[0]

    # ------------------------------------------------------------------ editing

    def _mark_dirty(self) -> None:
        node: Message | None = self
        while node is not None and not node._dirty:
            node._dirty = True
            node = node._parent

    def _format(self, name: str, value: str) -> Header:
        from ._encode import check_field_name, format_header
        check_field_name(name)
        return Header.from_bytes(format_header(name, value))

    def _edited(self) -> list[Header]:
        fields = self._all_fields()
        self._hdr_dirty = True
        self._pv = None
        self._ct_seen = False
        self._disp = None
        self._mark_dirty()
        return fields

    def add_header(self, name: str, value: str) -> None:
        """Append a field at the end of the header section (validated and encoded)."""
        header = self._format(name, value)
        self._edited().append(header)

    def replace_header(self, name: str, value: str) -> None:
        """Replace the first field called ``name`` in place; ``KeyError`` if absent."""
        header = self._format(name, value)
        lname = name.lower()
        fields = self._all_fields()
        for i, h in enumerate(fields):
            if h.lname == lname:
                self._edited()[i] = header
                return
        raise KeyError(name)

    def __setitem__(self, name: str, value: str) -> None:
        """Set a field: the first occurrence is replaced, later ones removed.

        Unlike ``email.message.Message.__setitem__`` (which appends), this
        keeps the field where it was, so the rest of the bytes stay unchanged.
        Editing Content-Type does not re-split the body: parse
        ``to_bytes()`` again to see the new structure.
        """
        header = self._format(name, value)
        lname = name.lower()
        fields = self._edited()
        idx = [i for i, h in enumerate(fields) if h.lname == lname]
        if not idx:
            fields.append(header)
            return
        fields[idx[0]] = header
        for i in reversed(idx[1:]):
            del fields[i]

    def __delitem__(self, name: str) -> None:
        """Remove every field called ``name`` (no error when there is none)."""
        lname = name.lower()
        if not any(h.lname == lname for h in self._all_fields()):
            return
        fields = self._edited()
        fields[:] = [h for h in fields if h.lname != lname]

    # ------------------------------------------------------------------ structure

    @property
    def parts(self) -> list[Message]:
        """Sub-parts: a multipart's parts, or the message inside a message/rfc822 part."""
        return list(self._children)

    @property
    def parent(self) -> Message | None:
        """The enclosing part, or ``None`` for the top-level message."""
        return self._parent

    @property
    def is_multipart(self) -> bool:
        """True when this part was parsed as a multipart with sub-parts."""
        return self._kind == MULTIPART

    def walk(self) -> Iterator[Message]:
        """Every part, depth-first, this one first (iterative: no recursion limit)."""
        stack: list[Message] = [self]
        while stack:
            node = stack.pop()
            yield node
            if node._children:
                stack.extend(reversed(node._children))

    @property
    def preamble(self) -> bytes | None:
        """Bytes before a multipart's first boundary (``None`` if not multipart)."""
        if self._kind != MULTIPART or self._preamble_end < 0:
            return None if self._kind != MULTIPART else b""
        return bytes(self._src[self._body_start:self._preamble_end])

    @property
    def epilogue(self) -> bytes | None:
        """Bytes after a multipart's closing boundary line (``None`` if there is none)."""
        if self._kind != MULTIPART or self._epilogue_start < 0:
            return None
        return bytes(self._src[self._epilogue_start:self._end])

    # ------------------------------------------------------------------ MIME type

    def _content_type_pv(self) -> ParamValue | None:
        if not self._ct_seen:
            self._ct_seen = True
            found = self._first_field("content-type")
            if found is not None:
                self._pv = parse_param_header(found[0])
                if self._pv.defects:
                    self._note(self._pv.defects, found[1])
        pv = self._pv
        if pv is None or not pv.maintype or not pv.subtype:
            return None
        return pv

    @property
    def content_type(self) -> str:
        """Lower-case ``type/subtype`` with RFC 2045 section 5.2 defaults applied.

        A missing or unusable Content-Type means ``text/plain``, except inside a
        multipart/digest where it means ``message/rfc822`` (RFC 2046 section 5.1.5).
        """
        pv = self._content_type_pv()
        if pv is None:
            return "message/rfc822" if self._in_digest else "text/plain"
        return f"{pv.maintype}/{pv.subtype}"

    @property
    def maintype(self) -> str:
        """The part of :attr:`content_type` before the slash."""
        return self.content_type.split("/", 1)[0]

    @property
    def subtype(self) -> str:
        """The part of :attr:`content_type` after the slash."""
        return self.content_type.split("/", 1)[1]

    @property
    def params(self) -> dict[str, str]:
        """Content-Type parameters (lower-case names, RFC 2231/2047-decoded values)."""
        pv = self._content_type_pv()
        return dict(pv.params) if pv is not None else {}

    @property
    def charset(self) -> str | None:
        """The ``charset`` parameter, lower-cased, or ``None``."""
        cs = self.params.get("charset")
        return cs.strip().lower() if cs else None

    def _disposition_pv(self) -> ParamValue | None:
        if self._disp is None:
            found = self._first_field("content-disposition")
            if found is None:
                return None
            self._disp = parse_param_header(found[0], disposition=True)
            self._note(self._disp.defects, found[1])
        return self._disp

    @property
    def content_disposition(self) -> str | None:
        """Lower-case disposition type (``inline``, ``attachment``...) or ``None``."""
        pv = self._disposition_pv()
        return pv.maintype or None if pv is not None else None

    @property
    def disposition_params(self) -> dict[str, str]:
        """Content-Disposition parameters (RFC 2183, RFC 2231-decoded), or ``{}``."""
        pv = self._disposition_pv()
        return dict(pv.params) if pv is not None else {}

    @property
    def filename(self) -> str | None:
        """Content-Disposition ``filename``, else Content-Type ``name`` (decoded)."""
        pv = self._disposition_pv()
        if pv is not None and pv.params.get("filename"):
            return pv.params["filename"]
        name = self.params.get("name")
        return name or None

    @property
    def is_attachment(self) -> bool:
        """True for ``Content-Disposition: attachment``, or a named non-text leaf
        part without a disposition (what mail clients show as an attachment)."""
        disp = self.content_disposition
        if disp == "attachment":
            return True
        if disp is not None or self._kind == MULTIPART:
            return False
        return self.filename is not None and self.maintype != "text"

    # ------------------------------------------------------------------ bodies

    @property
    def raw_body(self) -> bytes:
        """The body bytes exactly as in the source (still transfer-encoded)."""
        return bytes(self._src[self._body_start:self._end])

    @property
    def body_retained(self) -> bool:
        """False when the body went to a body sink while streaming (so it is empty here)."""
        return self._body_retained

    @property
    def transfer_encoding(self) -> str:
        """Lower-case Content-Transfer-Encoding, ``7bit`` when absent (RFC 2045 6.1)."""
        cte = self._first_text("content-transfer-encoding")
        return cte.strip().lower() if cte else "7bit"

    def decoded_body(self) -> bytes:
        """The body with its Content-Transfer-Encoding undone (never raises)."""
        defects: list[Defect] = []
        data = decode_transfer(self.raw_body, self.transfer_encoding, defects,
                               None if self._enc_level else self._body_start)
        if not self._body_decoded:
            self._body_decoded = True
            self._defects.extend(defects)
        return data

    def text(self) -> str:
        """The body decoded to text using its charset (US-ASCII by default).

        Never raises: unknown charsets and bad bytes give replacement characters
        and a defect.
        """
        data = self.decoded_body()
        defects: list[Defect] = []
        result = decode_text(data, self.charset, defects)
        if defects and not any(d.kind == defects[0].kind for d in self._defects):
            self._defects.extend(defects)
        return result

    # ------------------------------------------------------------------ RFC 8621

    def _body_structure(self) -> tuple[list[Message], list[Message], list[Message]]:
        text: list[Message] = []
        html: list[Message] = []
        atts: list[Message] = []
        _parse_structure([self], "mixed", False, html, text, atts)
        return text, html, atts

    @property
    def text_body(self) -> list[Message]:
        """Parts to show as the plain-text body (RFC 8621 section 4.1.4 algorithm)."""
        return self._body_structure()[0]

    @property
    def html_body(self) -> list[Message]:
        """Parts to show as the HTML body (RFC 8621 section 4.1.4 algorithm)."""
        return self._body_structure()[1]

    @property
    def attachments(self) -> list[Message]:
        """Parts that are attachments (RFC 8621 section 4.1.4 algorithm)."""
        return self._body_structure()[2]

    # ------------------------------------------------------------------ typed views

    def _note(self, found: list[Defect], offset: int | None) -> None:
        # Record defects from a typed view once, however often it is called,
        # located at the field they came from.
        for d in found:
            if d.offset is None and offset is not None and not self._enc_level:
                d = Defect(d.kind, d.message, offset, d.severity)
            if d not in self._defects:
                self._defects.append(d)

    def _fields_named(self, name: str) -> list[Header]:
        lname = name.lower()
        return [h for h in self._all_fields() if h.lname == lname]

    def addresses(self, name: str = "From") -> list[Address | Group]:
        """Every address or group in all fields called ``name`` (e.g. ``"To"``)."""
        from ._address import parse_address_list
        out: list[Address | Group] = []
        for h in self._fields_named(name):
            found: list[Defect] = []
            out.extend(parse_address_list(h.text(), found))
            self._note(found, h.offset)
        return out

    def date(self, name: str = "Date") -> datetime | None:
        """The first ``name`` field as an aware datetime (``None`` if absent/invalid)."""
        from ._dates import parse_date
        for h in self._fields_named(name):
            found: list[Defect] = []
            result = parse_date(h.text(), found)
            self._note(found, h.offset)
            return result
        return None

    def message_ids(self, name: str = "Message-ID") -> list[str]:
        """Message identifiers (without angle brackets) in all fields called ``name``."""
        from ._msgid import parse_message_ids
        out: list[str] = []
        for h in self._fields_named(name):
            found: list[Defect] = []
            out.extend(parse_message_ids(h.text(), found))
            self._note(found, h.offset)
        return out

    def received(self) -> list[Received]:
        """The Received trace fields, newest first, parsed (RFC 5321 section 4.4)."""
        from ._received import parse_received
        out: list[Received] = []
        for h in self._fields_named("Received"):
            found: list[Defect] = []
            out.append(parse_received(h.text(), found))
            self._note(found, h.offset)
        return out

    def list_header(self, name: str) -> list[ListHeader]:
        """An RFC 2369 List-* field (List-Help, List-Unsubscribe...) as URLs with comments."""
        from ._lists import parse_list_header
        for h in self._fields_named(name):
            found: list[Defect] = []
            result = parse_list_header(h.text(), found)
            self._note(found, h.offset)
            return result
        return []

    def list_id(self) -> str | None:
        """The RFC 2919 List-Id identifier (without angle brackets), or ``None``."""
        from ._lists import parse_list_id
        for h in self._fields_named("List-Id"):
            found: list[Defect] = []
            result = parse_list_id(h.text(), found)
            self._note(found, h.offset)
            return result
        return None

    # ------------------------------------------------------------------ defects

    @property
    def defects(self) -> list[Defect]:
        """Defects of this part and all its sub-parts, in walk order.

        Structural defects are found while parsing; defects in header values
        and bodies are added as those are decoded (see :meth:`check`).
        """
        out: list[Defect] = []
        for node in self.walk():
            out.extend(node._defects)
            if node._fields is not None:
                for h in node._fields:
                    out.extend(h.defects)
        return out

    def check(self) -> list[Defect]:
        """Decode every header value and body once, then return all defects."""
        for node in self.walk():
            if node._body_checked:
                continue
            seen: set[str] = set()
            for h in node._all_fields():
                h.value  # noqa: B018 - decoding records the defects
                if h.lname in _SINGLETONS:
                    if h.lname in seen:
                        node._defects.append(Defect(
                            DefectKind.DUPLICATE_HEADER,
                            f"{h.name} appears more than once (the first is used)", h.offset,
                            Severity.WARNING))
                    seen.add(h.lname)
            node._content_type_pv()
            node._disposition_pv()
            if node._kind == LEAF:
                if node.maintype == "text":
                    node.text()
                else:
                    node.decoded_body()
            node._body_checked = True
        return self.defects

    # ------------------------------------------------------------------ output

    def to_bytes(self) -> bytes:
        """The message as bytes: the parsed input exactly, unless it was edited.

        After an edit only the edited header fields differ; every other byte is
        copied from the source (re-encoded only for an edited message inside a
        base64 or quoted-printable message/rfc822 part).  Iterative, so any
        nesting depth works.
        """
        if not self._dirty:
            return bytes(self._src[self._start:self._end])
        out = bytearray()
        stack: list[Message | bytes] = [self]
        while stack:
            item = stack.pop()
            if isinstance(item, bytes):
                out += item
            elif not item._dirty:
                out += item._src[item._start:item._end]
            else:
                stack.extend(reversed(item._pieces()))
        return bytes(out)

    def _pieces(self) -> list[Message | bytes]:
        """This edited part as a sequence of byte strings and unexpanded sub-parts."""
        src = self._src
        pieces: list[Message | bytes] = []
        if self._hdr_dirty:
            head = bytearray()
            fields = self._all_fields()
            for i, h in enumerate(fields):
                raw = h.raw
                head += raw
                if i + 1 < len(fields) and not raw.endswith(b"\n"):
                    head += b"\r\n"
            sep = bytes(src[self._hdr_end:self._body_start])
            if not sep and self._body_start < self._end and _reads_as_header(
                    src, self._body_start, self._end):
                # The source had no blank line (a cut-off header section, or a
                # line that is no field ended it) and the body now starts with
                # what a parser would take for a continuation or a field: it
                # would fold into the field just written.  A blank line keeps
                # the body a body.
                sep = b"\r\n"
            if fields and not head.endswith(b"\n") and sep:
                head += b"\r\n"
            head += sep
            pieces.append(bytes(head))
        else:
            pieces.append(bytes(src[self._start:self._body_start]))
        if self._kind == MULTIPART or self._kind == MESSAGE:
            pos = self._body_start
            for child in self._children:
                pieces.append(bytes(src[pos:child._start]))
                pieces.append(child)
                pos = child._end
            pieces.append(bytes(src[pos:self._end]))
        elif self._kind == ENCODED_MESSAGE and self._children and self._children[0]._dirty:
            from ._transfer_encode import encode_base64, encode_quoted_printable
            inner = self._children[0].to_bytes()  # depth bounded by max_encoded_nesting
            if self.transfer_encoding == "base64":
                pieces.append(encode_base64(inner))
            else:
                pieces.append(encode_quoted_printable(inner))
        else:
            pieces.append(bytes(src[self._body_start:self._end]))
        return pieces

    def __bytes__(self) -> bytes:
        return self.to_bytes()

    # ------------------------------------------------------------------ stdlib

    def to_email_message(self, policy: Any = None) -> email.message.Message:
        """Convert to an :class:`email.message.Message` (see ``_stdlib``)."""
        from ._stdlib import to_email_message
        return to_email_message(self, policy)

    @classmethod
    def from_email_message(cls, message: email.message.Message) -> Message:
        """Build a :class:`Message` from an :class:`email.message.Message`."""
        from ._stdlib import from_email_message
        return from_email_message(message)

    def __repr__(self) -> str:
        return f"<Message {self.content_type} parts={len(self._children)}>"


_MAX_STRUCTURE_DEPTH = 200


def _parse_structure(parts: list[Message], multipart_type: str, in_alternative: bool,
                     html: list[Message] | None, text: list[Message] | None,
                     atts: list[Message], depth: int = 0) -> None:
    # RFC 8621 section 4.1.4 "parseStructure", transcribed from its pseudo-code.
    # It recurses per multipart level: Limits.max_depth bounds that, and so
    # does _MAX_STRUCTURE_DEPTH should a caller raise the limit enormously.
    text_len = len(text) if text is not None else -1
    html_len = len(html) if html is not None else -1
    for i, part in enumerate(parts):
        ctype = part.content_type
        inline_media = ctype.startswith(_INLINE_MEDIA)
        is_inline = (part.content_disposition != "attachment"
                     and (ctype in ("text/plain", "text/html") or inline_media)
                     and (i == 0 or (multipart_type != "related"
                                     and (inline_media or part.filename is None))))
        if part._kind == MULTIPART and depth < _MAX_STRUCTURE_DEPTH:
            sub = ctype.split("/", 1)[1]
            _parse_structure(part._children, sub, in_alternative or sub == "alternative",
                             html, text, atts, depth + 1)
        elif is_inline:
            if multipart_type == "alternative":
                if ctype == "text/plain" and text is not None:
                    text.append(part)
                elif ctype == "text/html" and html is not None:
                    html.append(part)
                elif ctype not in ("text/plain", "text/html"):
                    atts.append(part)
                continue
            if in_alternative:
                if ctype == "text/plain":
                    html = None
                if ctype == "text/html":
                    text = None
            if text is not None:
                text.append(part)
            if html is not None:
                html.append(part)
            if (text is None or html is None) and inline_media:
                atts.append(part)
        else:
            atts.append(part)
    if multipart_type == "alternative" and text is not None and html is not None:
        if text_len == len(text) and html_len != len(html):
            text.extend(html[html_len:])
        if html_len == len(html) and text_len != len(text):
            html.extend(text[text_len:])


BodySink = Callable[[Message, bytes], object]


def _reads_as_header(src: bytes | bytearray, start: int, end: int) -> bool:
    """Whether a body at ``src[start:end]`` would be parsed as header lines
    if it followed a header section directly (no blank line between)."""
    from ._parser import _FIELD_NAME

    return src[start:start + 1] in (b" ", b"\t") or _FIELD_NAME.match(src, start, end) is not None
