"""The MIME parser: one incremental, iterative state machine (RFC 5322, RFC 2045/2046).

Design notes (why it looks like this):

* One machine serves both ``parse(bytes)`` and ``MessageParser.feed()``: the
  input is scanned with ``bytes.find`` from a remembered position, so no byte is
  examined twice however the input is split (no quadratic rescans).
* Header lines are classified one by one (they are short and few); bodies are
  skipped with ``find(b"\\n--")``, checking only lines that start with ``--``
  against the active boundaries, innermost first (RFC 2046 section 5.1.2: an
  outer boundary also ends the inner parts).
* Nesting is an explicit stack of frames, never recursion, and every cap in
  :class:`Limits` turns into a defect (SECURITY-CASES H-11).
* With a body sink, leaf bodies (and preambles/epilogues) are passed on and
  dropped as soon as they cannot be part of a boundary line, so memory stays at
  the header sections plus one chunk.  Offsets stored in the parts then refer
  to the retained bytes (the message without those bodies).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ._decode import IDENTITY_ENCODINGS, decode_transfer
from ._defects import Defect, DefectKind, Severity
from ._limits import Limits
from ._message import ENCODED_MESSAGE, LEAF, MESSAGE, MULTIPART, Message

__all__ = ["parse", "MessageParser"]

_HEADERS, _BODY = 0, 1
_R_LEAF, _R_PREAMBLE, _R_EPILOGUE = 0, 1, 2

# RFC 5322 section 3.6.8 field-name = 1*ftext, then the colon; WSP before the
# colon is the obsolete syntax of section 4.5 (accepted with a defect).
_FIELD_NAME = re.compile(rb"([\x21-\x39\x3b-\x7e]+)([ \t]*):")

SinkFunction = Callable[[Message, bytes], object]


class _Machine:
    """The parser state machine; see the module docstring."""

    def __init__(self, limits: Limits, sink: SinkFunction | None, buf: bytes | bytearray,
                 *, base_depth: int = 0, enc_level: int = 0,
                 counter: list[int] | None = None, offsets: bool = True) -> None:
        self.limits = limits
        self.sink = sink
        self.buf: bytes | bytearray = buf
        self.base = 0          # absolute offset of buf[0] (moves only with a sink)
        self.skipped = 0       # bytes given to the sink / dropped so far
        self.acct = 0          # absolute position accounted (kept or skipped) so far
        self.kept: bytearray | None = bytearray() if sink is not None else None
        self.offsets = offsets  # report defect offsets (False for decoded content)
        self.base_depth = base_depth
        self.enc_level = enc_level
        self.counter = counter if counter is not None else [0]
        self.frames: list[tuple[Message, bytes | None]] = []
        self.ndelims = 0
        self.frozen = False
        self.done = False
        self.root = self._new_part(0, None)
        self.counter[0] += 1
        self.cur = self.root
        self.mode = _HEADERS
        self.pos = 0
        self.hstart = 0        # absolute start of the current header section
        self.field: list[int] | None = None  # [start, colon] of the open field
        self.fname = ""
        self.region = _R_LEAF
        self.region_start = 0
        self.at_line_start = False
        # No "\n" between the pending line's start and this position: a line
        # that arrives in small chunks is not searched again from its start.
        self.nl_hint = 0

    # ------------------------------------------------------------------ helpers

    def _src(self) -> bytes | bytearray:
        return self.kept if self.kept is not None else self.buf

    def _k(self, pos: int) -> int:
        return pos - self.skipped

    def _defect(self, node: Message, kind: DefectKind, msg: str, pos: int | None,
                severity: Severity = Severity.WARNING) -> None:
        node._defects.append(Defect(kind, msg, pos if self.offsets else None, severity))

    def _new_part(self, start: int, parent: Message | None) -> Message:
        node = Message()
        node._src = self._src()  # type: ignore[assignment]  # replaced by bytes at close
        node._start = node._hdr_end = node._body_start = node._end = self._k(start)
        node._parent = parent
        node._enc_level = self.enc_level
        node._depth = self.base_depth + len(self.frames)
        node._body_retained = self.sink is None
        if parent is not None and parent._kind == MULTIPART and parent.subtype == "digest":
            node._in_digest = True
        return node

    def _account(self, upto: int, skip: bool) -> None:
        """Move bytes up to ``upto`` into the kept copy, or drop them (sink mode)."""
        if self.kept is None or upto <= self.acct:
            return
        chunk = self.buf[self.acct - self.base:upto - self.base]
        if skip:
            self.skipped += len(chunk)
            if self.region == _R_LEAF and self.sink is not None and chunk:
                self.sink(self.cur, bytes(chunk))
        else:
            self.kept += chunk
        self.acct = upto

    # ------------------------------------------------------------------ driving

    def run(self, final: bool) -> None:
        """Process as much buffered input as possible; ``final`` means end of input."""
        while not self.done:
            if self.mode == _HEADERS:
                if not self._header_step(final):
                    break
            elif not self._body_step(final):
                break
        if final and not self.done:
            self._finish()
        if self.kept is not None and not self.done:
            # Keep only what a later boundary or header line could still need.
            if self.mode == _HEADERS:
                self._account(self.pos, False)
            else:
                # A boundary found later starts at or after pos, and its
                # preceding CRLF (not body) at or after pos - 2.
                safe = self.pos - 2 if self.ndelims and not self.frozen \
                    else self.base + len(self.buf)
                self._account(max(safe, self.acct), True)
            assert isinstance(self.buf, bytearray)
            del self.buf[:self.acct - self.base]
            self.base = self.acct

    # ------------------------------------------------------------------ headers

    def _header_step(self, final: bool) -> bool:
        """Consume header lines; False when more input is needed.

        Lines are handled in one loop with local variables (header sections
        are most of the per-part work); it returns True as soon as the header
        section ended or the state changed, for run() to dispatch.
        """
        buf, off = self.buf, self.base
        end_abs = off + len(buf)
        max_end = self.hstart + self.limits.max_header_bytes
        check_delims = bool(self.ndelims) and not self.frozen
        field_match = _FIELD_NAME.match
        find = buf.find
        start = self.pos
        while True:
            if start >= end_abs:
                self.pos = start
                if final:
                    self._end_headers(start, start)
                    self._end_region(start)
                    self._finish()
                return False
            nl = find(b"\n", max(start, self.nl_hint) - off)
            if nl < 0:
                self.nl_hint = end_abs
                if not final:
                    self.pos = start
                    if end_abs > max_end:
                        self._header_cap(start)
                        return True
                    return False
                line_end = end_abs
            else:
                line_end = nl + off + 1
            if line_end > max_end:
                self._header_cap(start)
                return True
            first = buf[start - off]
            if first == 32 or first == 9:
                if self.field is None:
                    self._defect(self.cur, DefectKind.FIRST_LINE_CONTINUATION,
                                 "header section starts with a continuation line", start)
                    self.field = [start, start - 1]
                    self.fname = ""
                start = line_end
                continue
            m = field_match(buf, start - off, line_end - off) if first != 45 or not check_delims \
                else None
            if m is not None:
                field = self.field
                if field is not None:
                    self.cur._raw_fields.append(
                        (field[0] - self.skipped, field[1] - self.skipped, start - self.skipped,
                         self.fname, field[0] if self.offsets else None))
                if m.group(2):
                    self._defect(self.cur, DefectKind.OBSOLETE_FIELD_NAME_WHITESPACE,
                                 "whitespace between field name and colon", start)
                self.field = [start, m.end() - 1 + off]
                self.fname = m.group(1).decode("ascii")
                start = line_end
                continue
            self.pos = start
            return self._odd_header_line(start, line_end, nl, first, check_delims)

    def _odd_header_line(self, start: int, line_end: int, nl: int, first: int,
                         check_delims: bool) -> bool:
        """A header-section line that is not a plain field or continuation."""
        buf, off = self.buf, self.base
        if first == 10 or (first == 13 and line_end - start == 2 and nl >= 0):
            self._end_headers(start, line_end)
            return True
        if first == 45 and check_delims:
            match = self._match(start, line_end)
            if match is not None and (match[1] or self._count(self.cur, start)):
                self._end_headers(start, start, begin=False)
                self._boundary(start, line_end, match[0], match[1], in_headers=True)
                return True
            m = _FIELD_NAME.match(buf, start - off, line_end - off)
            if m is not None:  # a field name starting with "-"
                self._close_field(start)
                if m.group(2):
                    self._defect(self.cur, DefectKind.OBSOLETE_FIELD_NAME_WHITESPACE,
                                 "whitespace between field name and colon", start)
                self.field = [start, m.end() - 1 + off]
                self.fname = m.group(1).decode("ascii")
                self.pos = line_end
                return True
        if start == self.hstart and buf.startswith(b"From ", start - off):
            # An mbox separator line (RFC 4155); kept as a nameless field.
            self._defect(self.cur, DefectKind.MBOX_FROM_LINE, "mbox 'From ' line", start,
                         Severity.INFO)
            self._close_field(start)
            self.field = [start, start - 1]
            self.fname = ""
            self.pos = line_end
            return True
        parent = self.cur._parent
        if start == self.hstart and parent is not None and parent._kind == MESSAGE:
            # A message/rfc822 part whose body does not start with a header
            # field is not a message at all: keep it as an opaque leaf.
            self._defect(parent, DefectKind.INVALID_HEADER_LINE,
                         "message/rfc822 body is not a message; kept as data", start)
            parent._kind = LEAF
            parent._children = []
            self.frames.pop()
            self.cur = parent
            self.mode = _BODY
            self.region = _R_LEAF
            self.region_start = self.pos = start
            self.at_line_start = True
            return True
        self._defect(self.cur, DefectKind.MISSING_HEADER_BODY_SEPARATOR,
                     "line is not a header field; body starts here", start)
        self._end_headers(start, start)
        return True

    def _header_cap(self, start: int) -> None:
        self._defect(self.cur, DefectKind.HEADER_SECTION_TOO_LARGE,
                     f"header section exceeds {self.limits.max_header_bytes} bytes; "
                     "the rest is treated as body", start, Severity.ERROR)
        self._end_headers(start, start)

    def _close_field(self, end: int) -> None:
        if self.field is not None:
            s, c = self.field
            self.cur._raw_fields.append((self._k(s), self._k(c), self._k(end), self.fname,
                                         s if self.offsets else None))
            self.field = None

    def _end_headers(self, hdr_end: int, body_start: int, begin: bool = True) -> None:
        """The header section ends at ``hdr_end``; the body starts at ``body_start``."""
        self._close_field(hdr_end)
        self._account(body_start, False)
        node = self.cur
        node._hdr_end = self._k(hdr_end)
        node._body_start = self._k(body_start)
        self.pos = body_start
        if begin:
            self._begin_body(node, body_start)

    def _begin_body(self, node: Message, body_start: int) -> None:
        ctype = node.content_type  # parses Content-Type once, while bytes are at hand
        depth = self.base_depth + len(self.frames)
        self.mode = _BODY
        self.region = _R_LEAF
        self.region_start = body_start
        self.at_line_start = True
        if ctype.startswith("multipart/"):
            boundary = node.params.get("boundary")
            if not boundary:
                self._defect(node, DefectKind.MISSING_BOUNDARY_PARAMETER,
                             "multipart without a boundary parameter; treated as one part",
                             body_start)
            elif depth >= self.limits.max_depth:
                self._defect(node, DefectKind.DEPTH_LIMIT,
                             f"nesting deeper than {self.limits.max_depth}; not parsed",
                             body_start, Severity.ERROR)
            else:
                if node.transfer_encoding not in IDENTITY_ENCODINGS:
                    self._defect(node, DefectKind.COMPOSITE_TRANSFER_ENCODING,
                                 "multipart with a transfer encoding (RFC 2045 section 6.4)",
                                 body_start)
                node._kind = MULTIPART
                self.frames.append((node, b"--" + boundary.encode("utf-8", "replace")))
                self.ndelims += 1
                self.region = _R_PREAMBLE
                return
        elif ctype in ("message/rfc822", "message/global"):
            if node.transfer_encoding not in IDENTITY_ENCODINGS:
                node._kind = ENCODED_MESSAGE  # decoded and parsed after the outer parse
                return
            if depth >= self.limits.max_depth:
                self._defect(node, DefectKind.DEPTH_LIMIT,
                             f"nesting deeper than {self.limits.max_depth}; not parsed",
                             body_start, Severity.ERROR)
                return
            if not self._count(node, body_start):
                return
            node._kind = MESSAGE
            self.frames.append((node, None))
            child = self._new_part(body_start, node)
            node._children.append(child)
            self._start_part(child, body_start)

    def _count(self, node: Message, pos: int) -> bool:
        if self.counter[0] >= self.limits.max_parts:
            self._defect(node, DefectKind.PART_LIMIT,
                         f"more than {self.limits.max_parts} parts; the rest is not split",
                         pos, Severity.ERROR)
            self.frozen = True
            return False
        self.counter[0] += 1
        return True

    def _start_part(self, node: Message, start: int) -> None:
        self._account(start, False)
        self.cur = node
        self.mode = _HEADERS
        self.pos = self.hstart = start
        self.field = None

    # ------------------------------------------------------------------ bodies

    def _match(self, start: int, line_end: int) -> tuple[int, bool] | None:
        """Which frame's boundary the line at ``start`` is, innermost first."""
        buf, off = self.buf, self.base
        for i in range(len(self.frames) - 1, -1, -1):
            delim = self.frames[i][1]
            if delim is None or not buf.startswith(delim, start - off):
                continue
            # RFC 2046 section 5.1.1: "it is sufficient that the boundary
            # appear in its entirety following the CRLF" -- a prefix match;
            # whatever follows on the line is ignored.
            return i, buf.startswith(b"--", start + len(delim) - off)
        return None

    def _body_step(self, final: bool) -> bool:
        buf, off = self.buf, self.base
        end_abs = off + len(buf)
        if not self.ndelims or self.frozen:
            if final:
                self._end_region(end_abs)
                self._finish()
            self.pos = end_abs
            return False
        limit = self.limits.max_boundary_line
        while True:
            if self.at_line_start:
                line = self.pos
                if end_abs - line < 2 and not final:
                    return False
                self.at_line_start = False
                if not buf.startswith(b"--", line - off):
                    continue
            else:
                idx = buf.find(b"\n--", self.pos - off)
                if idx < 0:
                    self.pos = max(self.pos, end_abs - 2)
                    if final:
                        self._end_region(end_abs)
                        self._finish()
                    return False
                line = idx + off + 1
            nl = buf.find(b"\n", max(line, self.nl_hint) - off, line - off + limit + 1)
            if nl < 0:
                self.nl_hint = min(end_abs, line + limit + 1)
                if end_abs - line <= limit and not final:
                    self.pos = line
                    self.at_line_start = True
                    return False
                if end_abs - line > limit:
                    self.pos = line  # too long for a boundary: plain body text
                    continue
                line_end = end_abs
            else:
                line_end = nl + off + 1
            match = self._match(line, line_end)
            if match is None:
                self.pos = line_end - 1 if nl >= 0 else line_end
                if nl < 0:
                    self.at_line_start = False
                continue
            if not match[1] and self.counter[0] >= self.limits.max_parts:
                self._count(self.frames[match[0]][0], line)  # records the defect, freezes
                self.pos = end_abs if final else line_end
                return True
            body_end = line
            if line > self.region_start and buf[line - 1 - off] == 10:
                body_end = line - 1
                if body_end > self.region_start and buf[body_end - 1 - off] == 13:
                    body_end -= 1
            self._end_region(body_end)
            self._boundary(line, line_end, match[0], match[1], in_headers=False)
            return True

    def _end_region(self, end: int) -> None:
        node = self.cur
        if self.mode == _HEADERS:
            node._end = self._k(end)
            return
        self._account(end, True)
        if self.region == _R_LEAF:
            if self.sink is not None:
                self.sink(node, b"")
            node._end = self._k(end)
        elif self.region == _R_PREAMBLE:
            node._preamble_end = self._k(end)
            node._end = self._k(end)
        else:
            node._end = self._k(end)

    def _boundary(self, line: int, line_end: int, index: int, close: bool,
                  *, in_headers: bool) -> None:
        end = line if in_headers else None
        if in_headers:
            self.cur._end = self._k(line)
        # Frames inside the matched one end here, without their close delimiter.
        body_end = self._k(line) if end is not None else self.cur._end
        while len(self.frames) > index + 1:
            node, delim = self.frames.pop()
            if delim is not None:
                self.ndelims -= 1
                if not node._children:
                    self._no_parts(node, line)
                else:
                    self._defect(node, DefectKind.CLOSE_BOUNDARY_MISSING,
                                 "multipart ended by an outer boundary", line)
            node._end = body_end
        frame_node, _delim = self.frames[index]
        if frame_node._preamble_end < 0:
            frame_node._preamble_end = body_end
        self._account(line_end, False)
        if close:
            self.frames.pop()
            self.ndelims -= 1
            frame_node._closed = True
            if not frame_node._children:
                self._defect(frame_node, DefectKind.START_BOUNDARY_NOT_FOUND,
                             "close delimiter before any part", line)
            frame_node._epilogue_start = self._k(line_end)
            self.cur = frame_node
            self.mode = _BODY
            self.region = _R_EPILOGUE
            self.region_start = self.pos = line_end
            self.at_line_start = True
            return
        if not in_headers:
            self.counter[0] += 1  # (the header path counted it already)
        child = self._new_part(line_end, frame_node)
        frame_node._children.append(child)
        self._start_part(child, line_end)

    def _finish(self) -> None:
        end_abs = self.base + len(self.buf)
        self._account(end_abs, False)
        end = self._k(end_abs)
        self._drop_trailing_empty_part(end)
        while self.frames:
            node, delim = self.frames.pop()
            if delim is not None:
                if not node._children:
                    self._no_parts(node, end_abs)
                else:
                    self._defect(node, DefectKind.CLOSE_BOUNDARY_MISSING,
                                 "multipart has no close delimiter", end_abs)
            node._end = end
        self.ndelims = 0
        self.done = True

    def _no_parts(self, node: Message, pos: int) -> None:
        # No delimiter line at all: the body is kept as one opaque leaf body
        # (it cannot be split, and calling it a multipart would hide the data).
        self._defect(node, DefectKind.START_BOUNDARY_NOT_FOUND,
                     "no boundary line found in multipart; body kept as one part", pos)
        if self.sink is None:
            node._kind = LEAF
            node._preamble_end = -1
        # With a sink the bytes already streamed past as preamble (which sinks
        # never receive), so the part stays a multipart without parts.

    def _drop_trailing_empty_part(self, end: int) -> None:
        # A delimiter line that is the last line of the input (a truncated
        # message) opens no part; the multipart just lacks its
        # close delimiter, which _finish reports.
        node = self.cur
        parent = node._parent
        if parent is None or parent._kind != MULTIPART or node._raw_fields or \
                not parent._children or parent._children[-1] is not node:
            return
        if node._start != end:
            return
        parent._children.pop()
        self.cur = parent

    def result(self) -> Message:
        """Freeze the source bytes into every part and return the root."""
        src = bytes(self.kept) if self.kept is not None else bytes(self.buf) \
            if not isinstance(self.buf, bytes) else self.buf
        for node in self.root.walk():
            node._src = src
            if node._fields is not None:
                for h in node._fields:
                    if not isinstance(h._src, bytes):
                        h._src = src
        return self.root


def _parse_encoded(root: Message, limits: Limits, counter: list[int]) -> None:
    """Decode and parse base64/QP-encoded message/rfc822 parts (worklist, no recursion)."""
    work = [n for n in root.walk() if n._kind == ENCODED_MESSAGE]
    while work:
        node = work.pop()
        if node._enc_level + 1 > limits.max_encoded_nesting:
            node._defects.append(Defect(DefectKind.ENCODED_NESTING_LIMIT,
                                        "encoded message nested more than "
                                        f"{limits.max_encoded_nesting} times; not parsed",
                                        None, Severity.ERROR))
            node._kind = LEAF
            continue
        if node._depth + 1 >= limits.max_depth:
            node._defects.append(Defect(DefectKind.DEPTH_LIMIT, "nesting too deep; not parsed",
                                        None, Severity.ERROR))
            node._kind = LEAF
            continue
        if counter[0] >= limits.max_parts:
            node._defects.append(Defect(DefectKind.PART_LIMIT, "too many parts; not parsed",
                                        None, Severity.ERROR))
            node._kind = LEAF
            continue
        defects: list[Defect] = []
        data = decode_transfer(node.raw_body, node.transfer_encoding, defects, None)
        node._defects.extend(defects)
        node._body_decoded = True
        try:
            machine = _Machine(limits, None, data, base_depth=node._depth + 1,
                               enc_level=node._enc_level + 1, counter=counter, offsets=False)
            machine.run(True)
            child = machine.result()
        except Exception as exc:  # pragma: no cover - see _opaque
            child = _opaque(data, exc)
        child._parent = node
        node._children = [child]
        work.extend(n for n in child.walk() if n._kind == ENCODED_MESSAGE)


def parse(data: bytes | bytearray | memoryview, *, limits: Limits | None = None) -> Message:
    """Parse a complete message.  Never raises on any input: problems become defects.

    ``data`` may be bytes, bytearray or memoryview; line endings may be CRLF or
    LF.  The returned message serialises back to ``data`` exactly.
    """
    lim = limits if limits is not None else Limits()
    buf = data if isinstance(data, bytes) else bytes(data)
    counter = [0]
    try:
        machine = _Machine(lim, None, buf, counter=counter)
        machine.run(True)
        root = machine.result()
    except Exception as exc:  # pragma: no cover - the promise is "never raises"
        return _opaque(buf, exc)
    _parse_encoded(root, lim, counter)
    return root


def _opaque(data: bytes, exc: Exception) -> Message:
    # Last line of defence for the "never raises" contract: should a bug
    # surface, the caller still gets the exact bytes back plus an error defect
    # (the property tests assert this never happens).
    node = Message()
    node._src = data
    node._end = len(data)
    node._defects.append(Defect(DefectKind.INTERNAL_ERROR, f"parser error: {exc!r}", None,
                                Severity.ERROR))
    return node


class MessageParser:
    """Incremental parser: ``feed()`` chunks as they arrive, then ``close()``.

    ``body_sink``, if given, receives ``(part, chunk)`` for the raw
    (still transfer-encoded) body bytes of every leaf part as they stream, and
    ``(part, b"")`` once when that part's body is complete.  The part's headers
    are available when it is called.  With a sink, bodies, preambles and
    epilogues are not kept: memory stays bounded by the header sections plus one
    chunk, and the returned message has empty leaf bodies (``to_bytes()`` then
    gives the message without them).  The sink may also be an object with a
    ``write(part, chunk)`` method.
    """

    def __init__(self, limits: Limits | None = None, body_sink: object | None = None) -> None:
        self._limits = limits if limits is not None else Limits()
        sink: SinkFunction | None
        if body_sink is None:
            sink = None
        elif callable(body_sink):
            sink = body_sink
        elif callable(getattr(body_sink, "write", None)):
            sink = getattr(body_sink, "write")  # noqa: B009 - typed as object
        else:
            raise TypeError("body_sink must be callable or have a write(part, chunk) method")
        self._machine = _Machine(self._limits, sink, bytearray())
        self._closed = False

    def feed(self, data: bytes) -> None:
        """Add the next chunk of the message (any size, split anywhere)."""
        if self._closed:
            raise RuntimeError("feed() after close()")
        buf = self._machine.buf
        assert isinstance(buf, bytearray)
        buf += data
        self._machine.run(False)

    def close(self) -> Message:
        """Signal the end of the input and return the parsed :class:`Message`."""
        if self._closed:
            raise RuntimeError("close() called twice")
        self._closed = True
        self._machine.run(True)
        root = self._machine.result()
        if self._machine.sink is None:
            _parse_encoded(root, self._limits, self._machine.counter)
        return root
