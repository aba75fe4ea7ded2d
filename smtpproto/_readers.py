"""Parsing what we receive: command lines (server) and DATA content.

The DATA reader is where SMTP smuggling is decided: only ``CRLF . CRLF`` ends
the content (RFC 5321 §2.3.8, §4.1.1.4; SECURITY-CASES S-01..S-17), whatever
the chunking.  It works on whole chunks with C-speed ``bytes`` methods and keeps
at most a few bytes back, so memory is bounded by one chunk and the cost per
chunk is a handful of linear scans.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ._events import (
    Auth,
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
    _trusted,
)
from ._xclient import XclientError, parse_xclient, parse_xforward
from .sasl import MalformedAuthData, _strict_b64decode
from ._syntax import AddressLimits, SyntaxProblem, has_controls, parse_params, parse_path

__all__ = ["CommandProblem", "parse_command", "decode_sasl", "DataReader", "KNOWN_VERBS"]


@dataclass(frozen=True)
class CommandProblem:
    """Why a command line was refused, with the reply to suggest."""

    verb: str | None
    reason: str
    code: int
    enhanced: str
    text: str
    unknown: bool = False


def _syntax(verb: str, usage: str, reason: str = "") -> CommandProblem:
    return CommandProblem(verb, reason or f"syntax error in {verb}", 501, "5.5.4", f"Syntax: {usage}")


KNOWN_VERBS = frozenset(
    {"EHLO", "HELO", "LHLO", "MAIL", "RCPT", "DATA", "BDAT", "RSET", "NOOP", "QUIT",
     "VRFY", "EXPN", "HELP", "STARTTLS", "AUTH", "XCLIENT", "XFORWARD"}
)

_BDAT_SIZE = re.compile(r"[0-9]{1,20}")


def decode_sasl(text: str) -> bytes | None:
    """Strict, canonical base64 as RFC 4954 §4 requires (the same decoder the
    SASL mechanisms use); ``=`` is the empty response.  None when invalid."""
    if text == "=":
        return b""
    try:
        return _strict_b64decode(text)
    except MalformedAuthData:
        return None


def parse_command(
    line: str, *, utf8: bool, lmtp: bool, limits: AddressLimits
) -> Command | CommandProblem:
    """Parse one command line (without CRLF, already decoded) into an event.

    ``utf8`` allows UTF-8 in paths (RFC 6531, once SMTPUTF8 is in force).
    Sequence and extension checks are the connection's; this is grammar only.
    """
    verb, sep, arg = line.partition(" ")
    verb = verb.upper()
    if verb not in KNOWN_VERBS or (lmtp and verb in ("EHLO", "HELO")) or (not lmtp and verb == "LHLO"):
        return CommandProblem(verb or None, f"unknown command {verb[:20]!r}", 500, "5.5.2",
                              "Error: command not recognized", unknown=True)
    if verb in ("EHLO", "HELO", "LHLO"):
        if not arg or " " in arg or has_controls(arg) or len(arg.encode("utf-8")) > limits.domain:
            return _syntax(verb, f"{verb} hostname")
        cls = {"EHLO": Ehlo, "HELO": Helo, "LHLO": Lhlo}[verb]
        return cls(domain=arg)
    if verb in ("MAIL", "RCPT"):
        prefix = "FROM:" if verb == "MAIL" else "TO:"
        usage = "MAIL FROM:<address>" if verb == "MAIL" else "RCPT TO:<address>"
        if arg[: len(prefix)].upper() != prefix:
            return _syntax(verb, usage)
        rest = arg[len(prefix):]
        # RFC 5321 has no space after the colon, but widely deployed clients
        # send one; Postfix and aiosmtpd accept it, and it cannot be ambiguous.
        if rest.startswith(" "):
            rest = rest[1:]
        enhanced = "5.1.7" if verb == "MAIL" else "5.1.3"
        what = "sender" if verb == "MAIL" else "recipient"
        try:
            path, rest = parse_path(
                rest, allow_null=verb == "MAIL", allow_postmaster=verb == "RCPT",
                utf8=utf8, limits=limits,
            )
        except SyntaxProblem as exc:
            return CommandProblem(verb, str(exc), 501, enhanced, f"Bad {what} address syntax")
        if rest and not rest.startswith(" "):
            return _syntax(verb, usage)
        try:
            params = parse_params(rest[1:]) if rest else {}
        except SyntaxProblem as exc:
            return CommandProblem(verb, str(exc), 501, "5.5.4", "Bad parameter syntax")
        # parse_path and parse_params have checked everything the events'
        # constructors would check again (with the session's limits).
        if verb == "MAIL":
            return _trusted(Mail, reverse_path=path, params=params)
        return _trusted(Rcpt, forward_path=path, params=params)
    if verb in ("DATA", "RSET", "QUIT", "STARTTLS"):
        if sep:
            # T-05: "STARTTLS now" must not start TLS.
            return _syntax(verb, verb)
        return {"DATA": Data, "RSET": Rset, "QUIT": Quit, "STARTTLS": StartTLS}[verb]()
    if verb == "NOOP":
        return Noop()  # RFC 5321 §4.1.1.9: a parameter is allowed and ignored.
    if verb in ("VRFY", "EXPN"):
        if not arg or has_controls(arg):
            return _syntax(verb, f"{verb} address")
        return Vrfy(argument=arg) if verb == "VRFY" else Expn(argument=arg)
    if verb == "HELP":
        if has_controls(arg):
            return _syntax(verb, "HELP [topic]")
        return Help(argument=arg or None)
    if verb == "BDAT":
        size, _, last = arg.partition(" ")
        if _BDAT_SIZE.fullmatch(size) is None or last.upper() not in ("", "LAST"):
            return _syntax(verb, "BDAT size [LAST]")
        n = int(size)
        if n == 0 and not last:
            return _syntax(verb, "BDAT size [LAST]", "BDAT 0 without LAST")
        return Bdat(size=n, last=bool(last))
    if verb in ("XCLIENT", "XFORWARD"):
        try:
            attrs = parse_xclient(arg) if verb == "XCLIENT" else parse_xforward(arg)
        except XclientError as exc:
            p = exc.problem
            return CommandProblem(verb, str(exc), p.code, p.enhanced, p.text)
        return Xclient(attributes=attrs) if verb == "XCLIENT" else Xforward(attributes=attrs)
    # AUTH mechanism [initial-response]  (RFC 4954 §4)
    mech, _, initial = arg.partition(" ")
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,20}", mech) or " " in initial:
        return _syntax(verb, "AUTH mechanism [initial-response]")
    response = None
    if initial:
        response = decode_sasl(initial)
        if response is None:
            return CommandProblem(verb, "initial response is not base64", 501, "5.5.2",
                                  "Error: cannot decode response")
    return Auth(mechanism=mech, initial_response=response)


class DataOutcome:
    """What one step of the DATA reader produced."""

    __slots__ = ("data", "consumed", "end", "violation")

    def __init__(self, data: bytes, consumed: int, end: bool, violation: str | None) -> None:
        self.data = data
        self.consumed = consumed
        self.end = end
        self.violation = violation


_EOL = re.compile(rb"\r\n|\r|\n")


class DataReader:
    """Incremental DATA content decoding (server side).

    ``step(chunk)`` looks at the bytes available, returns the unstuffed content it
    can release, how many input bytes it consumed, and whether the end of data
    was reached.  It holds back at most two bytes (``.\\r`` after a CRLF, or a
    lone ``\\r``): the only bytes whose meaning depends on what comes next.
    """

    __slots__ = ("_normalize", "_max_line", "_max_size", "_at_line_start", "_line_len",
                 "_line_dot", "size", "violation")

    def __init__(self, *, normalize: bool, max_line: int | None, max_size: int) -> None:
        self._normalize = normalize
        self._max_line = max_line
        self._max_size = max_size
        self._at_line_start = True
        self._line_len = 0  # octets of the current, unfinished line
        self._line_dot = False  # ... which began with a (stuffed) dot
        #: Content octets so far (after unstuffing), as SIZE counts them.
        self.size = 0
        #: The first rule broken, if any: "bare-lf", "bare-cr", "line", "size".
        self.violation: str | None = None

    def step(self, data: bytes) -> DataOutcome | None:
        """Process ``data`` (all bytes buffered); None means "need more"."""
        if self._at_line_start and data.startswith(b".\r\n"):
            return self._finish(b"", 3, True)
        # Every end of data and every stuffed dot starts with CRLF "."; most
        # chunks of real mail have neither, so one scan settles both.  Large
        # messages are mostly base64, which has no "." at all: a memchr-speed
        # test skips even that scan.
        j = data.find(b"\r\n.") if b"." in data else -1
        stuffed = j >= 0
        if stuffed:
            i = data.find(b"\r\n.\r\n", j)
            if i >= 0:
                # j == i: the first CRLF "." is the terminator, no dot to unstuff.
                return self._finish(data[: i + 2], i + 5, True, j < i)
        # No end yet: keep back what could begin a terminator or a CRLF.
        if data.endswith(b"\r\n.\r"):
            hold = 2
        elif data.endswith(b"\r\n.") or data.endswith(b"\r"):
            hold = 1
        else:
            hold = 0
        end = len(data) - hold
        if self._at_line_start and data[:end] in (b"", b".", b".\r"):
            return None  # "." or ".\r" at a line start may still be the end
        if end <= 0:
            return None
        return self._finish(data[:end] if hold else data, end, False, stuffed)

    def _finish(self, raw: bytes, consumed: int, end: bool, stuffed: bool = True) -> DataOutcome:
        if not raw:
            return DataOutcome(b"", consumed, end, self.violation)
        at_line_start = self._at_line_start
        # Where the next bytes start matters for the end of data even after a
        # violation: the content is drained to the real CRLF.CRLF.
        self._at_line_start = raw.endswith(b"\r\n")
        if self.violation is not None:
            return DataOutcome(b"", consumed, end, self.violation)
        # Content is released up to the first octet that breaks a rule and not
        # beyond, so what comes out never depends on the chunking (F-02).
        # One splitlines() answers both per-chunk questions at C speed: a CRLF
        # is one break and two terminator octets, a bare CR or LF one break
        # and one octet, so bare newlines = 2 * breaks - terminator octets;
        # and the longest line bounds every line's length.
        lines = raw.splitlines()
        lens = list(map(len, lines))
        breaks = len(lines) - (raw[-1] not in b"\r\n")
        bare = 2 * breaks != len(raw) - sum(lens)
        limit = self._max_line
        if not bare and limit is not None and max(lens) + 2 <= limit and self._line_len + lens[0] + 2 <= limit:
            cut, kind = len(raw), None  # every line, with its CRLF, fits
        else:
            cut, kind = self._first_violation(raw, bare)
        if kind is not None:
            raw = raw[:cut]
        out = raw
        if at_line_start and raw[:1] == b".":
            out = raw[1:]
        if stuffed:
            out = out.replace(b"\r\n.", b"\r\n")
        if bare and self._normalize:
            out = _EOL.sub(b"\r\n", out)
        if self.size + len(out) > self._max_size:
            out = out[: self._max_size - self.size]
            kind = "size"
        self.size += len(out)
        if kind is not None:
            self.violation = kind
            if self._normalize and out.endswith(b"\r"):
                out = out[:-1]  # half a CRLF made from a bare CR; nothing follows
        else:
            last = raw.rfind(b"\n")
            if last >= 0:
                self._line_dot = raw[last + 1 : last + 2] == b"."
            elif not self._line_len:
                self._line_dot = raw[:1] == b"."
            self._line_len = _tail_len(raw, self._line_len)
        return DataOutcome(out, consumed, end, self.violation)

    def _first_violation(self, raw: bytes, bare: bool) -> tuple[int, str | None]:
        """The index of the first octet that breaks a rule, and which rule."""
        best, kind = len(raw), None
        if bare and not self._normalize:
            m = _BARE.search(raw)
            assert m is not None
            best = m.start()
            kind = "bare-cr" if raw[best] == 13 else "bare-lf"
        if self._max_line is not None:
            pos = self._long_line(raw, self._max_line)
            if pos is not None and pos < best:
                best, kind = pos, "line"
        return best, kind

    def _long_line(self, raw: bytes, limit: int) -> int | None:
        """Index of the first octet that makes a line longer than ``limit``
        (lines counted with their CRLF, the current line's earlier octets
        included, and, per RFC 5321 §4.5.3.1.6, not counting a leading dot
        doubled for transparency), or None."""
        find = raw.find
        # The current line started with a dot: it may be one octet longer.
        allow = limit + (1 if (self._line_dot if self._line_len else raw[:1] == b".") else 0)
        first = find(b"\n")
        if first < 0:
            return allow - self._line_len if self._line_len + len(raw) > allow else None
        if self._line_len + first + 1 > allow:
            return allow - self._line_len
        last = raw.rfind(b"\n")
        if last - first > limit:
            # A line longer than ``limit`` between two LFs leaves a gap of at
            # least ``limit`` octets, which covers a whole aligned block of
            # limit//2; so probing one block per limit//2 octets finds every
            # candidate with C-speed finds instead of a Python loop per line.
            block = limit // 2
            k = (first // block + 1) * block
            while k + block <= last:
                if find(b"\n", k, k + block) < 0:
                    before = raw.rfind(b"\n", 0, k)
                    after = find(b"\n", k + block)
                    allow = limit + (1 if raw[before + 1] == 46 else 0)  # 46: "."
                    if after - before > allow:
                        return before + 1 + allow
                    k = (after // block + 1) * block
                else:
                    k += block
        # The unfinished line after the last LF.
        allow = limit + (1 if raw[last + 1 : last + 2] == b"." else 0)
        return last + 1 + allow if len(raw) - last - 1 > allow else None


def _tail_len(raw: bytes, carried: int) -> int:
    """Octets of the unfinished last line after ``raw``."""
    last = raw.rfind(b"\n")
    return carried + len(raw) if last < 0 else len(raw) - last - 1


# A CR not followed by LF, or an LF not preceded by CR.
_BARE = re.compile(rb"\r(?!\n)|(?<!\r)\n")

