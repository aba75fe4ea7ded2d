"""Serialising what we send: command lines and message content.

Content for DATA is dot-stuffed (RFC 5321 §4.5.2) and its line endings made
CRLF incrementally, so the state needed across chunks is two booleans and the
memory used is one chunk, whatever the message size.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping

from ._errors import LocalProtocolError
from ._events import (
    Auth,
    AuthResponse,
    Bdat,
    Command,
    Data,
    Ehlo,
    Expn,
    Helo,
    Help,
    Lhlo,
    Mail,
    Noop,
    Quit,
    Rcpt,
    Rset,
    StartTLS,
    Vrfy,
    Xclient,
    Xforward,
)
from ._syntax import format_params, has_bare_newline
from ._xclient import format_xclient, format_xforward

__all__ = ["format_command", "format_auth_response", "DataWriter"]


def _bracket(path: str) -> str:
    return f"<{path}>"


def _params(params: Mapping[str, str | None]) -> str:
    return format_params(dict(params)) if params else ""


# Commands that are their verb alone.
_BARE = frozenset({Data, Noop, Quit, Rset, StartTLS})


def format_command(cmd: Command) -> str:
    """The command line for ``cmd`` without its CRLF."""
    kind = type(cmd)  # the commands of every transaction first, by exact type
    if kind is Mail:
        assert isinstance(cmd, Mail)
        return f"MAIL FROM:<{cmd.reverse_path}>{_params(cmd.params)}"
    if kind is Rcpt:
        assert isinstance(cmd, Rcpt)
        return f"RCPT TO:<{cmd.forward_path}>{_params(cmd.params)}"
    if kind in _BARE:
        return cmd.verb
    if isinstance(cmd, (Ehlo, Helo, Lhlo)):
        return f"{cmd.verb} {cmd.domain}"
    if isinstance(cmd, Mail):
        return f"MAIL FROM:{_bracket(cmd.reverse_path)}{format_params(dict(cmd.params))}"
    if isinstance(cmd, Rcpt):
        return f"RCPT TO:{_bracket(cmd.forward_path)}{format_params(dict(cmd.params))}"
    if isinstance(cmd, Bdat):
        return f"BDAT {cmd.size} LAST" if cmd.last else f"BDAT {cmd.size}"
    if isinstance(cmd, (Vrfy, Expn)):
        return f"{cmd.verb} {cmd.argument}"
    if isinstance(cmd, Help):
        return "HELP" if cmd.argument is None else f"HELP {cmd.argument}"
    if isinstance(cmd, (Xclient, Xforward)):
        lines = (format_xclient if isinstance(cmd, Xclient) else format_xforward)(cmd.attributes, max_length=10**6)
        return f"{cmd.verb} {lines[0]}"
    if isinstance(cmd, Auth):
        if cmd.initial_response is None:
            return f"AUTH {cmd.mechanism}"
        # RFC 4954 §4: a zero-length initial response is sent as "=".
        encoded = base64.b64encode(cmd.initial_response).decode("ascii") or "="
        return f"AUTH {cmd.mechanism} {encoded}"
    return cmd.verb


def format_auth_response(event: AuthResponse) -> str:
    """RFC 4954 §4: ``*`` cancels; otherwise base64 (an empty response is an empty line)."""
    if event.cancelled:
        return "*"
    return base64.b64encode(event.data).decode("ascii")


# Any line ending: CRLF, or a bare CR or LF (H-10: aiosmtplib's rule).
_EOL = re.compile(rb"\r\n|\r|\n")


class DataWriter:
    """Dot-stuffing and line-ending repair for DATA content, across chunks."""

    __slots__ = ("_normalize", "_at_line_start", "_pending_cr")

    def __init__(self, *, normalize: bool) -> None:
        self._normalize = normalize
        self._at_line_start = True
        self._pending_cr = False  # a chunk ended in CR: it may pair with the next LF

    def write(self, data: bytes) -> bytes:
        if self._pending_cr:
            data = b"\r" + data
            self._pending_cr = False
        if data.endswith(b"\r"):
            data = data[:-1]
            self._pending_cr = True
        if not data:
            return b""
        if has_bare_newline(data):
            if not self._normalize:
                raise LocalProtocolError("message content holds a bare CR or LF (client_bare_newline='reject')")
            data = _EOL.sub(b"\r\n", data)
        out = data.replace(b"\r\n.", b"\r\n..") if b"\r\n." in data else data
        if self._at_line_start and out[:1] == b".":
            out = b"." + out
        self._at_line_start = data.endswith(b"\r\n")
        return out

    def close(self) -> bytes:
        """The end of data: finish the last line if needed, then ``.CRLF``."""
        tail = b""
        if self._pending_cr:
            if not self._normalize:
                raise LocalProtocolError("message content ends with a bare CR")
            tail = b"\r\n"
            self._pending_cr = False
            self._at_line_start = True
        if not self._at_line_start:
            # RFC 5321 §4.1.1.4: the content must end with CRLF before the dot.
            tail += b"\r\n"
        return tail + b".\r\n"
