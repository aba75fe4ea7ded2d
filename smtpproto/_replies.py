"""Reply lines: formatting what a server sends and parsing what a client
receives (RFC 5321 §4.2, enhanced status codes per RFC 2034 §4)."""

from __future__ import annotations

import re

from ._errors import LocalProtocolError
from ._events import Reply, split_enhanced

__all__ = ["format_reply", "parse_reply_line", "ReplyLine", "split_enhanced"]

# RFC 5321 §4.2: Reply-code [ ("-" / SP) textstring ]; a bare code is a valid
# last line.  textstring = 1*(%d09 / %d32-126), and RFC 6531 §3.7.1 allows UTF-8.
_LINE = re.compile(rb"([2-5][0-9][0-9])(?:([ -])(.*))?", re.DOTALL)
_BAD_TEXT = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


class ReplyLine:
    """One parsed reply line."""

    __slots__ = ("code", "last", "text")

    def __init__(self, code: int, last: bool, text: str) -> None:
        self.code = code
        self.last = last
        self.text = text


def parse_reply_line(line: bytes) -> ReplyLine | None:
    """Parse one reply line without its CRLF; None if it is malformed (R-11:
    ``25 ok``, ``2500 ok``, ``abc ok``)."""
    m = _LINE.fullmatch(line)
    if m is None:
        return None
    text = m.group(3) or b""
    if _BAD_TEXT.search(text):
        return None
    sep = m.group(2)
    # Reply text is ASCII, or UTF-8 with SMTPUTF8; keep any other byte via
    # surrogateescape so nothing is lost.
    return ReplyLine(int(m.group(1)), sep != b"-", text.decode("utf-8", "surrogateescape"))


# Wire forms already made, by (code, lines, enhanced status, max_line): a
# server sends the same few replies over and over.  Bounded, emptied when full.
_FORMATTED: dict[tuple[int, tuple[str, ...], str | None, int], bytes] = {}
_FORMATTED_MAX = 1024


def format_reply(reply: Reply, *, max_line: int = 512) -> bytes:
    """The wire form of ``reply``; every line must fit ``max_line`` octets with
    its CRLF (RFC 5321 §4.5.3.1.5)."""
    lines = reply.lines
    if type(lines) is not tuple:
        return _format_reply(reply, max_line)
    key = (reply.code, lines, reply.enhanced_status, max_line)
    out = _FORMATTED.get(key)
    if out is None:
        out = _format_reply(reply, max_line)
        if len(_FORMATTED) >= _FORMATTED_MAX:
            _FORMATTED.clear()
        _FORMATTED[key] = out
    return out


def _format_reply(reply: Reply, max_line: int) -> bytes:
    code = str(reply.code)
    prefix = reply.enhanced_status
    out = []
    last = len(reply.lines) - 1
    for i, text in enumerate(reply.lines):
        if prefix is not None:
            text = f"{prefix} {text}" if text else prefix
        sep = " " if i == last else "-"
        # RFC 5321 §4.2 lets a last line be the bare code, but RFC 4954 §4's
        # continue-req is "334" SP [base64]: keep the space for 334.
        bare = not text and sep == " " and reply.code != 334
        line = (code if bare else code + sep + text).encode("utf-8", "surrogateescape")
        if len(line) + 2 > max_line:
            raise LocalProtocolError(f"reply line longer than {max_line} octets: {line[:60]!r}...")
        out.append(line)
        out.append(b"\r\n")
    return b"".join(out)
