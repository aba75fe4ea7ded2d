"""``python -m smtpproto probe HOST:PORT``: try the protocol rows of
SECURITY-CASES.md against a live server and say, per row, what it did.

Each case opens a fresh TCP connection to the one address given.  The normal
part of the dialogue (greeting, EHLO, MAIL, RCPT, DATA) is sent and parsed by a
client :class:`~smtpproto.Connection`; the hostile bytes are then written raw,
and everything the server answers from that point on is split into replies
with the core's reply-line parser and *counted*, because the number of replies
is exactly what tells a safe server from a vulnerable one (a server that ends
DATA at ``<LF>.<LF>`` answers the smuggled commands too).

Nothing here needs certificates: for the STARTTLS cases (T-01..T-05, with
``--starttls``) the probe completes the TLS handshake as a client that does not
check the server certificate, only to see what the server says inside TLS.
Every wait is bounded by the per-case timeout and by the whole run's budget;
the limit cases send bounded amounts (R-02: 1 MiB of one line, R-04d: one
octet over an advertised SIZE of at most 32 MiB, R-05: 1001 recipients) and
say "inconclusive" when that was not enough to reach the server's limit.

Rows that cannot be probed from outside (client-side rows, codec rows, the
slow-loris timeouts of R-08) are listed with the reason in docs/fuzzing.md.
"""

from __future__ import annotations

import argparse
import json
import socket
import ssl
import sys
import time
from dataclasses import asdict, dataclass
from typing import Callable, Literal, NoReturn, Sequence

from ._config import Config
from ._connection import NEED_DATA, Connection, Role
from ._errors import LocalProtocolError, RemoteProtocolError
from ._events import ConnectionClosed, Data, Ehlo, Mail, Noop, Rcpt, Reply
from ._replies import parse_reply_line

__all__ = ["CaseResult", "ProbeError", "Verdict", "format_table", "main", "parse_target", "run_probe"]

#: The outcome of one case.
Verdict = Literal["safe", "vulnerable", "inconclusive"]

#: How long the whole run may take at most (seconds); the brief is one minute.
RUN_BUDGET = 55.0

#: The most a case reads from the server before it stops listening.
_MAX_WIRE = 1024 * 1024


class ProbeError(Exception):
    """The probe could not run at all (the server is unreachable)."""


@dataclass(frozen=True)
class CaseResult:
    """One row of the report."""

    #: The SECURITY-CASES id, e.g. ``"S-01"``.
    case: str
    #: What the case is about, in a few words.
    title: str
    #: The hostile bytes sent, escaped and shortened.
    sent: str
    #: What the server answered (reply codes and the first words of their text).
    server: str
    verdict: Verdict
    #: Why the verdict was reached.
    reason: str

    def as_dict(self) -> dict[str, str]:
        """The row as a JSON-ready dictionary."""
        return asdict(self)


@dataclass(frozen=True)
class _Seen:
    """A reply counted in the hostile phase."""

    code: int
    text: str
    #: The lines after the first (an EHLO reply's keywords).
    more: tuple[str, ...] = ()

    def __str__(self) -> str:
        text = self.text if len(self.text) <= 40 else self.text[:37] + "..."
        return f"{self.code} {text}".rstrip()


class _Abort(Exception):
    """The normal part of the dialogue failed: the case is inconclusive."""


def escape(data: bytes, limit: int = 60) -> str:
    """``data`` as a printable Python-style literal body, shortened to about
    ``limit`` characters with the number of octets left out."""
    text = repr(data)[2:-1]
    if len(text) <= limit:
        return text
    head = text[: limit - 20]
    tail = text[-12:]
    return f"{head}…({len(data)} octets)…{tail}"


class _Session:
    """One TCP connection for one case."""

    def __init__(self, sock: socket.socket, timeout: float, deadline: float) -> None:
        self.deadline = min(deadline, time.monotonic() + timeout)
        self.run_deadline = deadline
        self.timeout = timeout
        self.sock: socket.socket | ssl.SSLSocket = sock
        self.conn = Connection(Role.CLIENT, Config(bare_newline="normalize"))
        self.tracking = True
        self.wire = bytearray()
        self.closed = False
        self.timed_out = False
        self.flooded = False
        self.send_failed = False

    @classmethod
    def connect(cls, host: str, port: int, timeout: float, deadline: float) -> "_Session":
        left = max(0.05, min(deadline, time.monotonic() + timeout) - time.monotonic())
        return cls(socket.create_connection((host, port), timeout=left), timeout, deadline)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def silence(self, otherwise: str) -> str:
        """Why no reply was counted."""
        if self.flooded:
            return f"sent over {_MAX_WIRE // 1024} KiB without a complete reply; reading stopped"
        if self.closed:
            return "closed the connection without a reply"
        return otherwise

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def extend(self, factor: float) -> None:
        """Give a case that must send a lot (limits) ``factor`` times the
        per-case timeout from now, never past the run's deadline."""
        self.deadline = min(self.run_deadline, max(self.deadline, time.monotonic() + factor * self.timeout))

    def starttls(self, host: str) -> str | None:
        """Complete a TLS handshake on the connection; the error's name if it
        failed.  The certificate is not checked: the probe only looks at what
        the server says inside TLS, it authenticates nothing."""
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        try:
            self.sock.settimeout(max(0.05, self.remaining()))
            self.sock = ctx.wrap_socket(self.sock, server_hostname=host)
        except (OSError, ssl.SSLError) as exc:
            return type(exc).__name__
        return None

    def _recv(self, until: float) -> bool:
        """Read once; False on timeout or when the peer closed."""
        left = min(until, self.deadline) - time.monotonic()
        if self.flooded:
            return False
        if left <= 0 or self.closed:
            if left <= 0:
                self.timed_out = time.monotonic() >= self.deadline
            return False
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except (socket.timeout, TimeoutError):
            self.timed_out = time.monotonic() >= self.deadline
            return False
        except OSError:
            data = b""
        if not data:
            self.closed = True
            if self.tracking:
                self.conn.receive_data(b"")
            return False
        self.wire += data
        if self.tracking:
            self.conn.receive_data(data)
        if len(self.wire) > _MAX_WIRE:
            self.flooded = True  # a server that never stops talking: keep memory bounded
        return True

    # ---- the normal dialogue, through the core client Connection

    def reply(self, what: str) -> Reply:
        """The next reply, parsed by the client Connection."""
        while True:
            try:
                ev = self.conn.next_event()
            except RemoteProtocolError as exc:
                raise _Abort(f"{what}: the server broke the protocol ({exc})") from None
            if isinstance(ev, Reply):
                return ev
            if isinstance(ev, ConnectionClosed):
                raise _Abort(f"{what}: the server closed the connection")
            if ev is NEED_DATA:
                if not self._recv(self.deadline):
                    raise _Abort(f"{what}: no reply within the time limit" if not self.closed
                                 else f"{what}: the server closed the connection")
                continue
            raise _Abort(f"{what}: unexpected {ev!r}")

    def command(self, event: Ehlo | Mail | Rcpt | Data | Noop, what: str, *, want: int = 250) -> Reply:
        """Send ``event`` (bytes from the core) and require a ``want``-class reply."""
        try:
            data = self.conn.send(event)
        except LocalProtocolError as exc:
            raise _Abort(f"{what}: {exc}") from None
        self.sock.sendall(data)
        reply = self.reply(what)
        if reply.code // 100 != want // 100:
            raise _Abort(f"{what} refused: {reply.code} {' '.join(reply.lines)[:60]}")
        return reply

    def greeting(self) -> Reply:
        reply = self.reply("greeting")
        if reply.code != 220:
            raise _Abort(f"greeting was {reply.code}, not 220")
        return reply

    # ---- the hostile phase: raw bytes out, replies counted

    def mark(self) -> int:
        """Stop feeding the Connection; replies from here on are counted."""
        self.tracking = False
        leftover, _ = self.conn.trailing_data
        # Bytes the Connection already buffered but did not parse belong to the
        # hostile phase.
        return len(self.wire) - len(leftover)

    def raw(self, data: bytes) -> None:
        try:
            # A server that stops reading must not block us past the deadline.
            self.sock.settimeout(max(0.05, self.remaining()))
            self.sock.sendall(data)
        except OSError:
            # The server stopped reading (it may have closed after a refusal);
            # what it said before is still there to be read.
            self.send_failed = True

    def seen(self, mark: int) -> tuple[list[_Seen], bytes]:
        """Complete replies received since ``mark`` and the unparsed rest."""
        out: list[_Seen] = []
        data = bytes(self.wire[mark:])
        pos = 0
        lines: list[str] = []
        while True:
            end = data.find(b"\n", pos)
            if end < 0:
                break
            raw = data[pos:end].rstrip(b"\r")
            pos = end + 1
            parsed = parse_reply_line(raw)
            if parsed is None:
                out.append(_Seen(0, "malformed: " + escape(raw, 30)))
                lines = []
                continue
            lines.append(parsed.text)
            if parsed.last:
                out.append(_Seen(parsed.code, lines[0], tuple(lines[1:])))
                lines = []
        return out, data[pos:]

    def collect(self, mark: int, at_least: int, settle: float, wait: float | None = None) -> list[_Seen]:
        """Read until ``at_least`` replies arrived (or the peer closed, or time
        ran out: the case's deadline, or ``wait`` seconds if given), then for
        ``settle`` more seconds of quiet."""
        until = self.deadline if wait is None else min(self.deadline, time.monotonic() + wait)
        while len(self.seen(mark)[0]) < at_least:
            if not self._recv(until):
                return self.seen(mark)[0]
        while self._recv(time.monotonic() + settle):
            pass
        return self.seen(mark)[0]


def _codes(seen: Sequence[_Seen]) -> str:
    if not seen:
        return "no reply"
    if len(seen) <= 2:
        return ", ".join(str(s) for s in seen)
    # Many replies: the code and the first word (often the enhanced code) each.
    return _runs(seen)


def _malformed(seen: Sequence[_Seen]) -> bool:
    return any(r.code == 0 for r in seen)


def _did(seen: Sequence[_Seen], s: _Session) -> str:
    text = _codes(seen)
    if s.flooded:
        text += f"; over {_MAX_WIRE // 1024} KiB, reading stopped"
    elif s.closed:
        text += "; closed"
    elif s.timed_out and not seen:
        text += " (timed out)"
    return text


# ---------------------------------------------------------------- the cases


@dataclass(frozen=True)
class _Options:
    host: str
    port: int
    timeout: float
    settle: float
    helo: str
    mail_from: str
    rcpt_to: str
    starttls: bool


Case = Callable[[_Session, _Options], CaseResult]


def _open_transaction(s: _Session, o: _Options) -> None:
    s.greeting()
    s.command(Ehlo(domain=o.helo), "EHLO")
    s.command(Mail(reverse_path=o.mail_from), "MAIL")
    s.command(Rcpt(forward_path=o.rcpt_to), "RCPT")
    s.command(Data(), "DATA", want=354)


_CONTENT: tuple[Verdict, str] = ("safe", "one reply, after the real <CR><LF>.<CR><LF>: the variant stayed message content")


_EARLY_END = "the variant ended DATA early and the rest of the content was read as commands"


def _smuggling(case: str, title: str, segments: Sequence[bytes],
               accepted: tuple[Verdict, str] = _CONTENT, many: str = _EARLY_END) -> Case:
    """After DATA, ``segments`` a moment apart: one reply, after the real end
    of data, is safe (``accepted`` says what a 2xx means); more than one means
    ``many``."""
    def run(s: _Session, o: _Options) -> CaseResult:
        sent = " + ".join(escape(seg, 48) for seg in segments)
        _open_transaction(s, o)
        mark = s.mark()
        for i, seg in enumerate(segments):
            if i:
                time.sleep(min(0.1, max(0.0, s.remaining())))  # keep the segments apart
            s.raw(seg)
        seen = s.collect(mark, 1, o.settle)
        did = _did(seen, s)
        if _malformed(seen):
            return CaseResult(case, title, sent, did, "inconclusive", "the server sent a malformed reply line")
        if not seen:
            why = s.silence("no reply to the real end of data")
            return CaseResult(case, title, sent, did, "inconclusive", why)
        if len(seen) > 1:
            return CaseResult(case, title, sent, did, "vulnerable",
                              f"{len(seen)} replies to one message: {many}")
        first = seen[0]
        if first.code < 400:
            return CaseResult(case, title, sent, did, *accepted)
        return CaseResult(case, title, sent, did, "safe",
                          f"one reply: the message was refused ({first.code}), no second message")
    return run


def _case_s12(s: _Session, o: _Options) -> CaseResult:
    title = "pipelining sync: content sent before the 354"
    tail = (b"\r\n.\r\nMAIL FROM:<" + o.mail_from.encode() + b">\r\nRCPT TO:<" + o.rcpt_to.encode()
            + b">\r\nDATA\r\nFrom: admin@victim.example\r\n\r\nspoof\r\n.\r\n")
    body = b"Subject: smtpproto probe S-12\r\n\r\nbody"
    sent = "<body> + " + escape(tail, 56)
    _open_transaction(s, o)
    mark = s.mark()
    s.raw(body)
    time.sleep(min(0.1, max(0.0, s.remaining())))
    s.raw(tail)
    seen = s.collect(mark, 5, o.settle)
    did = _did(seen, s)
    if _malformed(seen):
        return CaseResult("S-12", title, sent, did, "inconclusive", "the server sent a malformed reply line")
    if not seen:
        return CaseResult("S-12", title, sent, did, "inconclusive", "no reply to the end of the first message")
    rest = seen[1:]
    codes = [r.code for r in rest]
    if 354 in codes:
        after = rest[codes.index(354) + 1:]
        if after and after[0].code < 400:
            return CaseResult("S-12", title, sent, did, "vulnerable",
                              "accepted a second message whose content arrived before its 354")
        if after and (after[0].code == 554 or s.closed):
            return CaseResult("S-12", title, sent, did, "safe",
                              f"refused the content that arrived before its 354 ({after[0].code}), "
                              "no second message")
        return CaseResult("S-12", title, sent, did, "inconclusive",
                          "gave 354 for content that arrived before it, but did not accept that message")
    if s.closed or any(c >= 500 for c in codes):
        return CaseResult("S-12", title, sent, did, "safe",
                          "refused the pipelined DATA and its early content (no 354)")
    return CaseResult("S-12", title, sent, did, "inconclusive", "neither a 354 nor a refusal for the inner DATA")


def _case_s15(s: _Session, o: _Options) -> CaseResult:
    title = "bare LF ends no command line"
    line = b"EHLO " + o.helo.encode() + b"\nMAIL FROM:<" + o.mail_from.encode() + b">\r\n"
    sent = escape(line)
    s.greeting()
    mark = s.mark()
    s.raw(line)
    seen = s.collect(mark, 1, o.settle)
    did = _did(seen, s)
    if _malformed(seen):
        return CaseResult("S-15", title, sent, did, "inconclusive", "the server sent a malformed reply line")
    if not seen:
        return CaseResult("S-15", title, sent, did, "inconclusive",
                          s.silence("no reply"))
    if seen[0].code < 400:
        return CaseResult("S-15", title, sent, did, "vulnerable", "accepted an EHLO line ended by a bare LF")
    if any(r.code < 400 for r in seen):
        return CaseResult("S-15", title, sent, did, "vulnerable",
                          "split the line at the bare LF and ran the command after it")
    return CaseResult("S-15", title, sent, did, "safe",
                      f"refused the line ({seen[0].code}) and ran nothing from it")


def _case_r01(s: _Session, o: _Options) -> CaseResult:
    title = "command line over 512 octets"
    line = b"NOOP " + b"A" * 600 + b"\r\n"
    sent = escape(line, 40) + " + NOOP\\r\\n"
    s.greeting()
    s.command(Ehlo(domain=o.helo), "EHLO")
    mark = s.mark()
    s.raw(line)
    first = s.collect(mark, 1, o.settle)
    if first and not s.closed:
        s.raw(b"NOOP\r\n")
        seen = s.collect(mark, len(first) + 1, o.settle)
    else:
        seen = first
    did = _did(seen, s)
    if _malformed(seen):
        return CaseResult("R-01", title, sent, did, "inconclusive", "the server sent a malformed reply line")
    if not seen:
        return CaseResult("R-01", title, sent, did, "inconclusive",
                          s.silence("no reply"))
    if len(seen) > 2:
        return CaseResult("R-01", title, sent, did, "vulnerable",
                          f"{len(seen)} replies to 2 lines: the tail of the long line was read as a command")
    if len(seen) == 1:
        if seen[0].code >= 400 and s.closed:
            return CaseResult("R-01", title, sent, did, "safe", "refused the long line and closed")
        return CaseResult("R-01", title, sent, did, "inconclusive", "no reply to the NOOP after the long line")
    if seen[1].code >= 400:
        return CaseResult("R-01", title, sent, did, "inconclusive", "the NOOP after the long line was refused")
    if seen[0].code >= 400:
        return CaseResult("R-01", title, sent, did, "safe",
                          "refused the long line as one command and answered the next NOOP")
    return CaseResult("R-01", title, sent, did, "safe",
                      "accepted the 607-octet line as one command (a limit above RFC 5321's 512)")


def _case_p01(s: _Session, o: _Options) -> CaseResult:
    title = "client talks before the greeting"
    line = b"EHLO " + o.helo.encode() + b"\r\n"
    sent = escape(line) + " (before the 220)"
    mark = s.mark()
    s.raw(line)
    seen = s.collect(mark, 2, o.settle)
    did = _did(seen, s)
    if _malformed(seen):
        return CaseResult("P-01", title, sent, did, "inconclusive", "the server sent a malformed reply line")
    if not seen:
        return CaseResult("P-01", title, sent, did, "inconclusive",
                          s.silence("no greeting"))
    if seen[0].code != 220:
        if seen[0].code >= 500 and len(seen) == 1:
            return CaseResult("P-01", title, sent, did, "safe", f"refused the early talker ({seen[0].code})")
        if seen[0].code < 400:
            return CaseResult("P-01", title, sent, did, "vulnerable",
                              "answered the command before sending its greeting")
        return CaseResult("P-01", title, sent, did, "inconclusive", f"greeting was {seen[0].code}")
    if len(seen) == 1:
        if s.closed:
            return CaseResult("P-01", title, sent, did, "safe", "greeted, then closed on the early talker")
        return CaseResult("P-01", title, sent, did, "inconclusive",
                          s.silence("greeted but never answered the early EHLO"))
    if seen[1].code >= 400:
        return CaseResult("P-01", title, sent, did, "safe", f"detected the early talker ({seen[1].code})")
    return CaseResult("P-01", title, sent, did, "safe",
                      "greeted first and only then answered the early EHLO (no pregreet test, which "
                      "needs a greeting delay)")


def _inject_behind_starttls(case: str, title: str, seg: bytes, behind: str, injected: str,
                            handshake_note: str, s: _Session, o: _Options) -> CaseResult | tuple[str, int]:
    """Write ``seg`` -- STARTTLS with ``behind`` (e.g. "commands") after it in
    the same write -- and judge what came back in cleartext.  Returns the
    verdict, or, when the server answered only 220 and TLS is now up, what it
    did so far and the wire mark where TLS began (the caller goes on inside)."""
    sent = escape(seg)
    s.greeting()
    if not _offers_starttls(_ehlo(s, o)):
        return CaseResult(case, title, sent, "EHLO reply without STARTTLS", "inconclusive",
                          "the server does not offer STARTTLS")
    mark = s.mark()
    s.raw(seg)
    seen = s.collect(mark, 1, o.settle)
    did = _did(seen, s)
    if _malformed(seen):
        return CaseResult(case, title, sent, did, "inconclusive", "the server sent a malformed reply line")
    if not seen:
        return CaseResult(case, title, sent, did, "inconclusive", s.silence("no reply to STARTTLS"))
    if seen[0].code != 220:
        if seen[0].code == 554 or s.closed:
            return CaseResult(case, title, sent, did, "safe",
                              f"refused STARTTLS with {behind} behind it ({seen[0].code})")
        return CaseResult(case, title, sent, did, "inconclusive", f"STARTTLS refused ({seen[0].code})")
    if len(seen) > 1:
        if any(r.code < 400 for r in seen[1:]):
            return CaseResult(case, title, sent, did, "vulnerable",
                              f"answered the injected {injected} in cleartext after its 220")
        return CaseResult(case, title, sent, did, "safe",
                          f"refused the {behind} sent behind STARTTLS ({seen[1].code}) instead of running them")
    if s.closed:
        return CaseResult(case, title, sent, did, "safe", f"closed after the 220 rather than run the injected {injected}")
    # 220 and silence: shake hands; the caller sees what is answered inside TLS.
    failed = s.starttls(o.host)
    if failed:
        return CaseResult(case, title, sent, did + "; TLS handshake failed", "inconclusive",
                          f"{handshake_note}could not complete TLS ({failed})")
    return did, len(s.wire)


def _case_t01(s: _Session, o: _Options) -> CaseResult:
    title = "STARTTLS command injection"
    seg = b"STARTTLS\r\nRSET\r\n"
    sent = escape(seg)
    got = _inject_behind_starttls("T-01", title, seg, "bytes", "RSET", "220, no cleartext answer to RSET; ", s, o)
    if isinstance(got, CaseResult):
        return got
    did, tls_mark = got
    early = s.collect(tls_mark, 0, o.settle)
    s.raw(b"EHLO " + o.helo.encode() + b"\r\n")
    inside = s.collect(tls_mark, len(early) + 1, o.settle)
    did = f"{did}; in TLS: {_codes(inside)}"
    if early or len(inside) > 1:
        return CaseResult("T-01", title, sent, did, "vulnerable",
                          "the RSET sent in cleartext was answered inside TLS (CVE-2011-0411)")
    if len(inside) == 1:
        return CaseResult("T-01", title, sent, did, "safe",
                          "the cleartext RSET was discarded: inside TLS only the EHLO was answered")
    return CaseResult("T-01", title, sent, did, "inconclusive", "no reply inside TLS")


# ---- helpers shared by the cases below

#: R-04d sends at most this much content (one octet over an advertised SIZE up
#: to it); a larger advertised limit is reported inconclusive, not tested.
_MAX_DATA = 32 * 1024 * 1024 + 1
#: R-04d without an advertised limit: this much, then "no limit reached".
_UNLIMITED_DATA = 1024 * 1024
#: R-02: one command line this long, without LF, in 64 KiB writes.
_ENDLESS = 1024 * 1024
#: R-05: RCPT commands sent at most (Postfix's smtpd_recipient_limit is 1000).
_RCPTS = 1001


def _keywords(lines: Sequence[str]) -> dict[str, list[str]]:
    """The EHLO keywords (upper case) of an EHLO reply's lines after the first."""
    out: dict[str, list[str]] = {}
    for line in lines:
        words = line.split()
        if words:
            out[words[0].upper()] = words[1:]
    return out


def _ehlo(s: _Session, o: _Options) -> dict[str, list[str]]:
    return _keywords(s.command(Ehlo(domain=o.helo), "EHLO").lines[1:])


def _size_limit(kw: dict[str, list[str]]) -> int:
    """The advertised SIZE limit; 0 when there is none (RFC 1870: SIZE alone or 0)."""
    args = kw.get("SIZE") or ["0"]
    return int(args[0]) if args[0].isdigit() else 0


def _without_goodbye(seen: list[_Seen], s: _Session) -> list[_Seen]:
    """``seen`` without a last 421 the server sent as it hung up (an error
    limit reached): that reply belongs to no command."""
    if len(seen) > 1 and seen[-1].code == 421 and s.closed:
        return seen[:-1]
    return seen


def _poll(s: _Session, mark: int) -> list[_Seen]:
    """Replies so far, reading only what has already arrived."""
    return s.collect(mark, 0, 0.005)


def _runs(seen: Sequence[_Seen]) -> str:
    """Replies as code and first word each, a repeated one counted
    (``250 2.1.5 ×1000, 452 4.5.3``)."""
    keys = [f"{s.code} {s.text.split(' ', 1)[0]}".rstrip() for s in seen]
    parts: list[str] = []
    i = 0
    while i < len(keys):
        j = i
        while j < len(keys) and keys[j] == keys[i]:
            j += 1
        parts.append(f"{keys[i]} ×{j - i}" if j - i > 1 else keys[i])
        i = j
    return ", ".join(parts)


_Judge = Callable[[_Seen, dict[str, list[str]]], tuple[Verdict, str]]


def _one_line(case: str, title: str, line: Callable[[_Options], bytes], judge: _Judge,
              *, needs_starttls: bool = False) -> Case:
    """After EHLO, one command line; exactly one reply is judged."""
    def run(s: _Session, o: _Options) -> CaseResult:
        data = line(o)
        sent = escape(data)
        s.greeting()
        kw = _ehlo(s, o)
        if needs_starttls and "STARTTLS" not in kw:
            return CaseResult(case, title, sent, "EHLO reply without STARTTLS", "inconclusive",
                              "the server does not offer STARTTLS")
        mark = s.mark()
        s.raw(data)
        seen = _without_goodbye(s.collect(mark, 1, o.settle), s)
        did = _did(seen, s)
        if _malformed(seen):
            return CaseResult(case, title, sent, did, "inconclusive", "the server sent a malformed reply line")
        if not seen:
            if s.closed:
                return CaseResult(case, title, sent, did, "safe", "closed the connection rather than take the line")
            return CaseResult(case, title, sent, did, "inconclusive", s.silence("no reply"))
        if len(seen) > 1:
            return CaseResult(case, title, sent, did, "vulnerable",
                              f"{len(seen)} replies to one line: it was split into several commands")
        verdict, reason = judge(seen[0], kw)
        return CaseResult(case, title, sent, did, verdict, reason)
    return run


def _refused(what: str) -> _Judge:
    """Judge: a 4xx/5xx is safe, anything else shows the wrong behaviour."""
    def judge(r: _Seen, kw: dict[str, list[str]]) -> tuple[Verdict, str]:
        if r.code >= 400:
            return "safe", f"refused {what} ({r.code})"
        return "vulnerable", f"accepted {what}"
    return judge


# ---- DATA-phase cases


def _case_s11(s: _Session, o: _Options) -> CaseResult:
    title = "empty message: '.' right after the 354"
    seg = b".\r\n"
    sent = escape(seg) + " (then \\r\\n.\\r\\n if unanswered)"
    _open_transaction(s, o)
    mark = s.mark()
    s.raw(seg)
    seen = s.collect(mark, 1, o.settle, wait=min(2.0, s.timeout / 2))
    if not seen and not s.closed and not s.flooded:
        # Perhaps it wants a CRLF in front of the dot: another end of data tells.
        s.raw(b"\r\n.\r\n")
        later = s.collect(mark, 1, o.settle)
        did = "no reply; after \\r\\n.\\r\\n: " + _did(later, s)
        if _malformed(later):
            return CaseResult("S-11", title, sent, did, "inconclusive", "the server sent a malformed reply line")
        if later:
            return CaseResult("S-11", title, sent, did, "vulnerable",
                              "'.' straight after the 354 did not end the message; only a second "
                              "<CR><LF>.<CR><LF> did (RFC 5321 §4.1.1.4)")
        return CaseResult("S-11", title, sent, did, "inconclusive", s.silence("no reply to either end of data"))
    did = _did(seen, s)
    if _malformed(seen):
        return CaseResult("S-11", title, sent, did, "inconclusive", "the server sent a malformed reply line")
    if not seen:
        return CaseResult("S-11", title, sent, did, "inconclusive", s.silence("no reply"))
    if len(seen) > 1:
        return CaseResult("S-11", title, sent, did, "vulnerable", f"{len(seen)} replies to one end of data")
    return CaseResult("S-11", title, sent, did, "safe",
                      f"one reply ({seen[0].code}): the empty message ended at the '.' line")


def _case_s13(s: _Session, o: _Options) -> CaseResult:
    title = "BDAT chunk holding an end of data and a command"
    chunk = b"x\r\n.\r\nMAIL FROM:<a@x.example>\r\n"
    head = b"BDAT %d LAST\r\n" % len(chunk)
    s.greeting()
    kw = _ehlo(s, o)
    s.command(Mail(reverse_path=o.mail_from), "MAIL")
    s.command(Rcpt(forward_path=o.rcpt_to), "RCPT")
    mark = s.mark()
    if "CHUNKING" not in kw:
        sent = escape(head)
        s.raw(head)
        seen = s.collect(mark, 1, o.settle)
        did = _did(seen, s)
        if _malformed(seen):
            return CaseResult("S-13", title, sent, did, "inconclusive", "the server sent a malformed reply line")
        if seen and seen[0].code >= 500:
            return CaseResult("S-13", title, sent, did, "safe",
                              f"does not offer CHUNKING and refused BDAT ({seen[0].code})")
        if not seen:
            return CaseResult("S-13", title, sent, did, "inconclusive", s.silence("no reply to BDAT"))
        return CaseResult("S-13", title, sent, did, "inconclusive",
                          f"does not offer CHUNKING but answered BDAT with {seen[0].code}")
    sent = escape(head + chunk[:6]) + " + " + escape(chunk[6:]) + " + QUIT\\r\\n"
    s.raw(head + chunk[:6])
    time.sleep(min(0.1, max(0.0, s.remaining())))  # a DATA-style scanner would answer now
    s.raw(chunk[6:])
    first = s.collect(mark, 1, o.settle)
    s.raw(b"QUIT\r\n")
    seen = s.collect(mark, len(first) + 1, o.settle)
    did = _did(seen, s)
    if _malformed(seen):
        return CaseResult("S-13", title, sent, did, "inconclusive", "the server sent a malformed reply line")
    body = seen[:-1] if seen and seen[-1].code == 221 else seen
    if len(body) > 1:
        return CaseResult("S-13", title, sent, did, "vulnerable",
                          f"{len(body)} replies to one BDAT chunk: its <CR><LF>.<CR><LF> or MAIL line "
                          "was read as protocol")
    if not body:
        return CaseResult("S-13", title, sent, did, "inconclusive", s.silence("no reply to the BDAT chunk"))
    if body[0].code < 400:
        return CaseResult("S-13", title, sent, did, "safe",
                          f"one reply to the chunk, then QUIT answered: the {len(chunk)} octets were content")
    return CaseResult("S-13", title, sent, did, "safe",
                      f"one reply: the chunk was refused ({body[0].code}), nothing in it ran")


def _case_f01(s: _Session, o: _Options) -> CaseResult:
    title = "connection closed in the middle of DATA"
    seg = b"Subject: smtpproto probe F-01\r\n\r\npartial body\r\n"
    sent = escape(seg) + " + EOF"
    _open_transaction(s, o)
    mark = s.mark()
    s.raw(seg)
    try:
        s.sock.shutdown(socket.SHUT_WR)  # our half only: we still read
    except OSError:
        pass
    seen = s.collect(mark, 1, o.settle)
    did = _did(seen, s)
    if _malformed(seen):
        return CaseResult("F-01", title, sent, did, "inconclusive", "the server sent a malformed reply line")
    if any(r.code < 400 for r in seen):
        return CaseResult("F-01", title, sent, did, "vulnerable",
                          "accepted a message cut off by the end of the connection")
    if s.closed:
        return CaseResult("F-01", title, sent, did, "safe", "closed without accepting the partial message")
    return CaseResult("F-01", title, sent, did, "inconclusive", s.silence("neither replied nor closed after EOF"))


def _case_f02(s: _Session, o: _Options) -> CaseResult:
    title = "end of data split across reads"
    parts = [b"Subject: smtpproto probe F-02\r\n\r\nbody\r", b"\n", b".", b"\r", b"\n"]
    sent = " + ".join(escape(p, 40) for p in parts)
    _open_transaction(s, o)
    try:
        s.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # one segment per write
    except OSError:
        pass
    mark = s.mark()
    for i, part in enumerate(parts[:-1]):
        s.raw(part)
        early = s.collect(mark, 0, 0.1)
        if early or s.closed:
            did = _did(early, s)
            if not early:
                return CaseResult("F-02", title, sent, did, "inconclusive", "closed before the end of data")
            return CaseResult("F-02", title, sent, did, "vulnerable",
                              f"answered after segment {i + 1} of {len(parts)}, before the end of data was complete")
    s.raw(parts[-1])
    seen = s.collect(mark, 1, o.settle)
    did = _did(seen, s)
    if _malformed(seen):
        return CaseResult("F-02", title, sent, did, "inconclusive", "the server sent a malformed reply line")
    if not seen:
        if s.closed or s.flooded:
            return CaseResult("F-02", title, sent, did, "inconclusive", s.silence("no reply"))
        return CaseResult("F-02", title, sent, did, "vulnerable",
                          "no reply: it missed the <CR><LF>.<CR><LF> that came in pieces")
    if len(seen) > 1:
        return CaseResult("F-02", title, sent, did, "vulnerable", f"{len(seen)} replies to one message")
    return CaseResult("F-02", title, sent, did, "safe",
                      f"one reply ({seen[0].code}) once the last piece of <CR><LF>.<CR><LF> arrived")


# ---- STARTTLS cases (--starttls)


def _offers_starttls(kw: dict[str, list[str]]) -> bool:
    return "STARTTLS" in kw


def _case_t02(s: _Session, o: _Options) -> CaseResult:
    title = "STARTTLS injection of a transaction"
    seg = (b"STARTTLS\r\nMAIL FROM:<" + o.mail_from.encode() + b">\r\nRCPT TO:<" + o.rcpt_to.encode()
           + b">\r\nDATA\r\n")
    sent = escape(seg)
    got = _inject_behind_starttls("T-02", title, seg, "commands", "commands", "", s, o)
    if isinstance(got, CaseResult):
        return got
    did, tls_mark = got
    early = s.collect(tls_mark, 0, o.settle)
    if early:
        return CaseResult("T-02", title, sent, f"{did}; in TLS unasked: {_codes(early)}", "vulnerable",
                          "answered the cleartext MAIL/RCPT/DATA inside TLS before anything was sent there")
    s.raw(b"RCPT TO:<" + o.rcpt_to.encode() + b">\r\n")
    inside = s.collect(tls_mark, 1, o.settle)
    did = f"{did}; in TLS, RCPT: {_codes(inside)}"
    if _malformed(inside):
        return CaseResult("T-02", title, sent, did, "inconclusive", "the server sent a malformed reply line")
    if not inside:
        return CaseResult("T-02", title, sent, did, "inconclusive", s.silence("no reply inside TLS"))
    if len(inside) > 1:
        return CaseResult("T-02", title, sent, did, "vulnerable",
                          f"{len(inside)} replies to one command inside TLS: the injected ones ran there")
    if inside[0].code < 400:
        return CaseResult("T-02", title, sent, did, "vulnerable",
                          "accepted RCPT inside TLS with no MAIL sent there: the injected MAIL was in effect")
    return CaseResult("T-02", title, sent, did, "safe",
                      f"inside TLS, RCPT without MAIL got {inside[0].code}: the injected transaction was discarded")


def _case_t03(s: _Session, o: _Options) -> CaseResult:
    title = "state after STARTTLS"
    sent = "MAIL, STARTTLS; in TLS: RCPT, EHLO, STARTTLS (one at a time)"
    s.greeting()
    if not _offers_starttls(_ehlo(s, o)):
        return CaseResult("T-03", title, sent, "EHLO reply without STARTTLS", "inconclusive",
                          "the server does not offer STARTTLS")
    s.command(Mail(reverse_path=o.mail_from), "MAIL")
    mark = s.mark()
    s.raw(b"STARTTLS\r\n")
    seen = s.collect(mark, 1, 0)
    first = "STARTTLS 220"
    if seen and not _malformed(seen) and seen[0].code >= 400 and not s.closed:
        # Refusing STARTTLS inside a transaction (Postfix: 503) also keeps the
        # MAIL from crossing over; the other checks need a session without it.
        first = f"STARTTLS {seen[0].code}, RSET, STARTTLS 220"
        s.raw(b"RSET\r\n")
        seen = s.collect(mark, 2, 0)
        if len(seen) == 2 and seen[1].code < 400:
            s.raw(b"STARTTLS\r\n")
            seen = s.collect(mark, 3, 0)
        seen = seen[2:]
    if _malformed(seen) or not seen or seen[0].code != 220:
        return CaseResult("T-03", title, sent, _did(s.seen(mark)[0], s), "inconclusive",
                          "STARTTLS was not answered with 220" if seen else s.silence("no reply to STARTTLS"))
    failed = s.starttls(o.host)
    if failed:
        return CaseResult("T-03", title, sent, f"{first}; TLS handshake failed", "inconclusive",
                          f"could not complete TLS ({failed})")
    did = [first]
    problems: list[str] = []
    for name, line in (("RCPT", b"RCPT TO:<" + o.rcpt_to.encode() + b">\r\n"),
                       ("EHLO", b"EHLO " + o.helo.encode() + b"\r\n"),
                       ("STARTTLS", b"STARTTLS\r\n")):
        m = len(s.wire)
        s.raw(line)
        got = s.collect(m, 1, 0)
        if _malformed(got) or not got:
            did.append(f"{name}: {_did(got, s)}")
            why = "the server sent a malformed reply line" if got else s.silence(f"no reply to {name} inside TLS")
            return CaseResult("T-03", title, sent, "; ".join(did), "inconclusive", why)
        r = got[0]
        if name == "EHLO":
            again = "STARTTLS" in _keywords(r.more)
            did.append(f"EHLO {r.code}" + (" with STARTTLS" if again else " (no STARTTLS)"))
            if again:
                problems.append("its EHLO reply inside TLS offers STARTTLS again (RFC 3207 §4.2)")
        else:
            did.append(f"{name} {r.code}")
            if name == "RCPT" and r.code < 400:
                problems.append("RCPT was accepted inside TLS: the MAIL given before TLS survived")
            if name == "STARTTLS" and r.code == 220:
                problems.append("a second STARTTLS was accepted")
        if s.closed:
            break
    text = "; in TLS: ".join([did[0], ", ".join(did[1:])])
    if problems:
        return CaseResult("T-03", title, sent, text, "vulnerable", "; ".join(problems))
    if len(did) < 4:
        return CaseResult("T-03", title, sent, text + "; closed", "inconclusive", "closed before every step ran")
    why = "TLS started a new session: no transaction, STARTTLS neither offered nor accepted again"
    if first != "STARTTLS 220":
        why = "refused STARTTLS inside a transaction; after RSET, " + why
    return CaseResult("T-03", title, sent, text, "safe", why)


def _case_t04(s: _Session, o: _Options) -> CaseResult:
    title = "AUTH before TLS"
    line = b"AUTH PLAIN\r\n"
    sent = escape(line) + " (no credentials)"
    s.greeting()
    kw = _ehlo(s, o)
    if not _offers_starttls(kw):
        return CaseResult("T-04", title, sent, "EHLO reply without STARTTLS", "inconclusive",
                          "the server does not offer STARTTLS")
    if "AUTH" in kw:
        return CaseResult("T-04", title, "EHLO (cleartext)", "AUTH " + " ".join(kw["AUTH"]), "vulnerable",
                          "offers AUTH before STARTTLS: a client may send its password in cleartext")
    mark = s.mark()
    s.raw(line)
    seen = s.collect(mark, 1, o.settle)
    if seen and seen[0].code == 334:
        s.raw(b"*\r\n")  # cancel the exchange (RFC 4954 §4)
        seen = s.collect(mark, 2, o.settle)
    did = _did(seen, s)
    if _malformed(seen):
        return CaseResult("T-04", title, sent, did, "inconclusive", "the server sent a malformed reply line")
    if not seen:
        return CaseResult("T-04", title, sent, did, "inconclusive", s.silence("no reply to AUTH"))
    if seen[0].code < 400:
        return CaseResult("T-04", title, sent, did, "vulnerable",
                          f"started an AUTH exchange in cleartext ({seen[0].code}) without offering AUTH there")
    return CaseResult("T-04", title, sent, did, "safe", f"no AUTH before TLS: not offered, refused ({seen[0].code})")


def _t05_judge(r: _Seen, kw: dict[str, list[str]]) -> tuple[Verdict, str]:
    if r.code == 220:
        return "vulnerable", "agreed to start TLS on a STARTTLS with a parameter (RFC 3207: 501)"
    if r.code >= 400:
        return "safe", f"refused STARTTLS with a parameter ({r.code})"
    return "inconclusive", f"answered {r.code}"


# ---- command-phase cases


def _case_p02(s: _Session, o: _Options) -> CaseResult:
    title = "commands pipelined behind EHLO"
    seg = (b"EHLO " + o.helo.encode() + b"\r\nMAIL FROM:<" + o.mail_from.encode() + b">\r\nRCPT TO:<"
           + o.rcpt_to.encode() + b">\r\n")
    sent = escape(seg)
    s.greeting()
    mark = s.mark()
    s.raw(seg)
    seen = s.collect(mark, 3, o.settle)
    did = _did(seen, s)
    if _malformed(seen):
        return CaseResult("P-02", title, sent, did, "inconclusive", "the server sent a malformed reply line")
    if not seen:
        return CaseResult("P-02", title, sent, did, "inconclusive", s.silence("no reply"))
    if any(r.code < 400 for r in seen[1:]):
        return CaseResult("P-02", title, sent, did, "vulnerable",
                          "ran MAIL/RCPT sent behind EHLO before its reply (RFC 2920 §3.1: EHLO ends a group)")
    if seen[0].code == 554:
        # Postfix's smtpd_forbid_unauth_pipelining answers the EHLO itself so.
        return CaseResult("P-02", title, sent, did, "safe", "refused the EHLO that had commands behind it (554)")
    if seen[0].code >= 400:
        return CaseResult("P-02", title, sent, did, "inconclusive", f"EHLO refused ({seen[0].code})")
    if seen[1:] or s.closed:
        return CaseResult("P-02", title, sent, did, "safe",
                          "answered the EHLO, then refused what was pipelined behind it")
    return CaseResult("P-02", title, sent, did, "inconclusive", "answered the EHLO only; the rest got no reply")


def _c06_judge(r: _Seen, kw: dict[str, list[str]]) -> tuple[Verdict, str]:
    if r.code >= 400:
        return "safe", f"refused a UTF-8 sender given without the SMTPUTF8 parameter ({r.code})"
    if "SMTPUTF8" in kw:
        return "inconclusive", ("offers SMTPUTF8 and accepted a UTF-8 sender without the SMTPUTF8 "
                                "parameter (RFC 6531 §3.4 wants it)")
    return "vulnerable", "accepted a UTF-8 sender though it does not offer SMTPUTF8"


def _case_r02(s: _Session, o: _Options) -> CaseResult:
    title = "endless command line"
    sent = f"A × {_ENDLESS // 1024} KiB, no LF, in 64 KiB writes"
    piece = b"A" * 65536
    s.greeting()
    _ehlo(s, o)
    s.extend(2)
    mark = s.mark()
    done = 0
    while done < _ENDLESS:
        s.raw(piece)
        if s.send_failed:
            break
        done += len(piece)
        if _poll(s, mark) or s.closed:
            break
    seen = s.collect(mark, 0, o.settle)
    did = f"{_did(seen, s)} after {done // 1024} KiB"
    if _malformed(seen):
        return CaseResult("R-02", title, sent, did, "inconclusive", "the server sent a malformed reply line")
    if len(seen) > 1 and not (len(seen) == 2 and s.closed):
        return CaseResult("R-02", title, sent, did, "vulnerable",
                          f"{len(seen)} replies to one line: it was cut into several commands")
    if s.closed:
        return CaseResult("R-02", title, sent, did, "safe", f"gave up on the line within {done // 1024} KiB and closed")
    if seen:
        return CaseResult("R-02", title, sent, did, "inconclusive",
                          f"refused the line ({seen[0].code}) but kept reading it; the catalogue wants a close "
                          "after a discard budget")
    return CaseResult("R-02", title, sent, did, "inconclusive",
                      f"took {done // 1024} KiB of one line without a word: bounded discarding cannot be told "
                      "from buffering it all; the catalogue wants 500 and a close after a discard budget")


def _case_r04d(s: _Session, o: _Options) -> CaseResult:
    title = "message one octet over the SIZE limit"
    s.greeting()
    limit = _size_limit(_ehlo(s, o))
    if limit + 1 > _MAX_DATA:
        return CaseResult("R-04d", title, "nothing", f"SIZE {limit}", "inconclusive",
                          f"the advertised limit is more than the probe sends ({_MAX_DATA - 1} octets)")
    amount = limit + 1 if limit else _UNLIMITED_DATA
    head = b"Subject: smtpproto probe R-04\r\n\r\n"
    # 500-octet lines, the last one shortened so the content is exactly `amount`.
    full, rest = divmod(amount - len(head), 500)
    if 0 < rest < 3:
        full, rest = full - 1, rest + 500
    content = head + (b"x" * 498 + b"\r\n") * full + (b"x" * (rest - 2) + b"\r\n" if rest else b"")
    sent = f"{len(content)} octets of content" + (f" (SIZE {limit} + 1)" if limit else " (no SIZE limit advertised)")
    s.command(Mail(reverse_path=o.mail_from), "MAIL")
    s.command(Rcpt(forward_path=o.rcpt_to), "RCPT")
    s.command(Data(), "DATA", want=354)
    s.extend(3)
    mark = s.mark()
    view = memoryview(content)
    for start in range(0, len(content), 256 * 1024):
        s.raw(bytes(view[start:start + 256 * 1024]))
        if s.send_failed or _poll(s, mark) or s.closed:
            break
    else:
        s.raw(b".\r\n")
    seen = s.collect(mark, 1, o.settle)
    did = _did(seen, s)
    if _malformed(seen):
        return CaseResult("R-04d", title, sent, did, "inconclusive", "the server sent a malformed reply line")
    if not seen:
        if s.closed:
            return CaseResult("R-04d", title, sent, did, "safe", "closed the connection rather than take it all")
        return CaseResult("R-04d", title, sent, did, "inconclusive", s.silence("no reply"))
    if len(_without_goodbye(seen, s)) > 1:
        return CaseResult("R-04d", title, sent, did, "vulnerable", f"{len(seen)} replies to one message")
    if seen[0].code >= 400:
        return CaseResult("R-04d", title, sent, did, "safe", f"refused {amount} octets ({seen[0].code})")
    if limit:
        return CaseResult("R-04d", title, sent, did, "vulnerable",
                          f"accepted {amount} octets though it advertises SIZE {limit}")
    return CaseResult("R-04d", title, sent, did, "inconclusive",
                      f"accepted {amount} octets; it advertises no size limit, so none was reached")


def _r04a_judge(r: _Seen, kw: dict[str, list[str]]) -> tuple[Verdict, str]:
    limit = _size_limit(kw)
    if r.code >= 400:
        return "safe", f"refused the declared size ({r.code})"
    if limit:
        return "vulnerable", f"accepted a declared size of 99999999999 octets with SIZE {limit} advertised"
    if "SIZE" in kw:
        return "inconclusive", "accepted: it advertises SIZE without a fixed limit"
    return "inconclusive", "accepted: it does not advertise SIZE (RFC 1870 wants 555 for the parameter)"


def _bad_size(what: str) -> _Judge:
    def judge(r: _Seen, kw: dict[str, list[str]]) -> tuple[Verdict, str]:
        if r.code >= 400:
            return "safe", f"refused {what} ({r.code})"
        if "SIZE" not in kw:
            return "inconclusive", f"accepted {what} for a SIZE it does not advertise"
        return "vulnerable", f"accepted {what}"
    return judge


def _case_r05(s: _Session, o: _Options) -> CaseResult:
    title = "recipient limit"
    line = b"RCPT TO:<" + o.rcpt_to.encode() + b">\r\n"
    s.greeting()
    kw = _ehlo(s, o)
    s.command(Mail(reverse_path=o.mail_from), "MAIL")
    batch = 10 if "PIPELINING" in kw else 1
    sent = f"up to {_RCPTS} × {escape(line)}" + (f", {batch} per write" if batch > 1 else "") + ", then RSET"
    s.extend(3)
    seen: list[_Seen] = []
    while len(seen) < _RCPTS:
        n = min(batch, _RCPTS - len(seen))
        m = len(s.wire)
        s.raw(line * n)
        got = s.collect(m, n, 0)
        seen += got
        if len(got) < n or _malformed(got) or any(r.code >= 300 for r in got):
            break
    accepted = 0
    while accepted < len(seen) and 200 <= seen[accepted].code < 300:
        accepted += 1
    refusal = seen[accepted] if accepted < len(seen) else None
    rset: list[_Seen] = []
    if refusal is not None and not s.closed:
        m = len(s.wire)
        s.raw(b"RSET\r\n")
        rset = s.collect(m, 1, 0)
    did = _did(seen, s) + (f"; RSET: {_codes(rset)}" if rset else "")
    if _malformed(seen) or _malformed(rset):
        return CaseResult("R-05", title, sent, did, "inconclusive", "the server sent a malformed reply line")
    if refusal is None:
        if accepted >= _RCPTS:
            return CaseResult("R-05", title, sent, did, "inconclusive",
                              f"accepted all {_RCPTS}: no limit up to there (a higher limit cannot be told "
                              "from none)")
        return CaseResult("R-05", title, sent, did, "inconclusive",
                          s.silence(f"stopped answering after {accepted} recipients"))
    if accepted < 100:
        return CaseResult("R-05", title, sent, did, "inconclusive",
                          f"refused recipient {accepted + 1} ({refusal.code}): a policy refusal, not a limit "
                          "(RFC 5321 §4.5.3.1.8 requires 100)")
    usable = bool(rset) and rset[0].code < 400
    tail = f"; the session went on (RSET {rset[0].code})" if usable else "; the session did not go on"
    if refusal.code // 100 == 4:
        return CaseResult("R-05", title, sent, did, "safe", f"accepted {accepted}, then {refusal.code}{tail}")
    return CaseResult("R-05", title, sent, did, "safe",
                      f"accepted {accepted}, then {refusal.code} (RFC 5321 §4.5.3.1.10 prefers 452){tail}")


def _case_r06(s: _Session, o: _Options) -> CaseResult:
    title = "address length limits"
    long_domain = ".".join(["d" * 63] * 3 + ["d" * 56]) + ".example"  # 256 octets
    paths = [("local part 65", b"a" * 65 + b"@x.example"),
             ("domain 256", b"a@" + long_domain.encode()),
             ("path 257", b"a" * 64 + b"@" + b"d" * 63 + b"." + b"d" * 63 + b"." + b"d" * 54 + b".example")]
    sent = "MAIL FROM with " + ", ".join(name for name, _ in paths) + " octets"
    s.greeting()
    _ehlo(s, o)
    mark = s.mark()
    did: list[str] = []
    taken: list[str] = []
    for name, path in paths:
        m = len(s.wire)
        s.raw(b"MAIL FROM:<" + path + b">\r\n")
        got = s.collect(m, 1, 0)
        if _malformed(got) or not got:
            did.append(f"{name}: {_did(got, s)}")
            why = "the server sent a malformed reply line" if got else s.silence(f"no reply ({name})")
            return CaseResult("R-06", title, sent, ", ".join(did), "inconclusive", why)
        did.append(f"{name}: {got[0].code}")
        if got[0].code < 400:
            taken.append(name)
            m = len(s.wire)
            s.raw(b"RSET\r\n")
            s.collect(m, 1, 0)
        if s.closed:
            break
    text = ", ".join(did) + ("; closed" if s.closed else "")
    extra = s.collect(mark, 0, o.settle)
    if len(extra) > len(did) + len(taken):
        return CaseResult("R-06", title, sent, text, "vulnerable", "more replies than commands: a line was split")
    if taken:
        return CaseResult("R-06", title, sent, text, "inconclusive",
                          f"accepted {', '.join(taken)}: RFC 5321 §4.5.3.1 allows longer objects, the catalogue "
                          "wants 501 past 64/255/256")
    return CaseResult("R-06", title, sent, text, "safe", "refused every over-long address")


def _budget(case: str, title: str, lines: Sequence[bytes], count: int, what: str) -> Case:
    """Send ``count`` lines (cycling through ``lines``) one at a time: the
    server should close (or slow down, as a tarpit) before the end."""
    def run(s: _Session, o: _Options) -> CaseResult:
        sent = f"{count} × " + " / ".join(escape(line) for line in lines) + ", one at a time"
        s.greeting()
        _ehlo(s, o)
        s.extend(3)
        mark = s.mark()
        took: list[float] = []
        slowed = 0.0
        for i in range(count):
            m = len(s.wire)
            t0 = time.monotonic()
            s.raw(lines[i % len(lines)])
            got = s.collect(m, 1, 0)
            if not got or s.closed:
                break
            took.append(time.monotonic() - t0)
            quick = sorted(took[:-1])[len(took[:-1]) // 2] if len(took) > 3 else 0.0
            if len(took) > 3 and took[-1] >= max(0.8, 5 * quick):
                slowed = took[-1]
                break
        seen = s.collect(mark, 0, 0 if slowed else o.settle)
        did = _did(seen, s)
        if _malformed(seen):
            return CaseResult(case, title, sent, did, "inconclusive", "the server sent a malformed reply line")
        if s.closed:
            last = f" ({seen[-1]})" if seen else ""
            return CaseResult(case, title, sent, did, "safe", f"closed after {len(seen)} {what}{last}")
        if slowed:
            return CaseResult(case, title, sent, did, "safe",
                              f"answered {len(seen) - 1} {what} at once, then took {slowed:.1f} s (a tarpit)")
        if len(seen) >= count:
            return CaseResult(case, title, sent, did, "vulnerable",
                              f"answered all {count} {what} without closing or slowing down")
        return CaseResult(case, title, sent, did, "inconclusive", s.silence(f"stopped answering after {len(seen)}"))
    return run


def _cases(o: _Options) -> list[tuple[str, str, Case]]:
    cases: list[tuple[str, str, Case]] = [
        ("S-01", "smuggling <LF>.<LF>", _smuggling("S-01", "smuggling <LF>.<LF>", [
            b"Subject: a\r\n\r\nbody\n.\nMAIL FROM:<" + o.mail_from.encode() + b">\r\nRCPT TO:<"
            + o.rcpt_to.encode() + b">\r\nDATA\r\nFrom: admin@victim.example\r\n\r\nspoof\r\n.\r\n"])),
        ("S-02", "smuggling <LF>.<CR><LF>", _smuggling("S-02", "smuggling <LF>.<CR><LF>", [
            b"Subject: a\r\n\r\nTesting\n.\r\nNO SMUGGLING\r\n.\r\n"])),
        ("S-03", "smuggling <CR><LF>.<LF>", _smuggling("S-03", "smuggling <CR><LF>.<LF>", [
            b"body\r\n.\nMAIL FROM:<x@x>\r\n", b"\r\n.\r\n"])),
        ("S-04", "smuggling <CR>.<CR>", _smuggling("S-04", "smuggling <CR>.<CR>", [
            b"body\r.\rMAIL FROM:<x@x>\r\n", b"\r\n.\r\n"])),
        ("S-05", "smuggling <CR>.<LF>", _smuggling("S-05", "smuggling <CR>.<LF>", [
            b"body\r.\n", b"\r\n.\r\n"])),
        ("S-06a", "smuggling <LF>.<CR>", _smuggling("S-06a", "smuggling <LF>.<CR>", [
            b"body\n.\r", b"\r\n.\r\n"])),
        ("S-06b", "smuggling <CR>.<CR><LF>", _smuggling("S-06b", "smuggling <CR>.<CR><LF>", [
            b"body\r.\r\n", b"\r\n.\r\n"])),
        ("S-07", "smuggling <CR><LF>.<CR>", _smuggling("S-07", "smuggling <CR><LF>.<CR>", [
            b"body\r\n.\rMAIL FROM:<x@x>\r\n", b"\r\n.\r\n"])),
        ("S-10", "dot-stuffed lines", _smuggling("S-10", "dot-stuffed lines", [
            b"Subject: smtpproto probe S-10\r\n\r\n..\r\n.foo\r\n...\r\n.\r\n"],
            ("safe", "one reply, after the real <CR><LF>.<CR><LF>: the stuffed dot lines stayed content"))),
        ("S-11", "empty message: '.' right after the 354", _case_s11),
        ("S-12", "pipelining sync: content sent before the 354", _case_s12),
        ("S-13", "BDAT chunk holding an end of data and a command", _case_s13),
        # A strict server refuses these; one that accepts may have kept the bare
        # CR/LF (relaying it on) or made it CRLF: the replies cannot tell which.
        ("S-14", "bare LF inside the message", _smuggling("S-14", "bare LF inside the message", [
            b"Subject: a\r\n\r\nhello\nworld\r\n.\r\n"],
            ("inconclusive", "accepted: whether the bare LF was kept or made CRLF cannot be seen from outside"))),
        ("S-17", "bare CR inside the message", _smuggling("S-17", "bare CR inside the message", [
            b"Subject: a\r\n\r\nline1\rline2\r\n.\r\n"],
            ("inconclusive", "accepted: whether the bare CR was kept or made CRLF cannot be seen from outside"))),
        ("F-01", "connection closed in the middle of DATA", _case_f01),
        ("F-02", "end of data split across reads", _case_f02),
    ]
    if o.starttls:
        cases += [
            ("T-01", "STARTTLS command injection", _case_t01),
            ("T-02", "STARTTLS injection of a transaction", _case_t02),
            ("T-03", "state after STARTTLS", _case_t03),
            ("T-04", "AUTH before TLS", _case_t04),
            ("T-05", "STARTTLS with a parameter", _one_line(
                "T-05", "STARTTLS with a parameter", lambda o: b"STARTTLS now\r\n", _t05_judge,
                needs_starttls=True)),
        ]
    cases += [
        ("S-15", "bare LF ends no command line", _case_s15),
        ("S-16", "bare CR inside a sender address", _one_line(
            "S-16", "bare CR inside a sender address", lambda o: b"MAIL FROM:<attacker\rX-Pwned: 1>\r\n",
            _refused("a sender address holding a bare CR"))),
        ("P-02", "commands pipelined behind EHLO", _case_p02),
        ("C-06", "UTF-8 sender without SMTPUTF8", _one_line(
            "C-06", "UTF-8 sender without SMTPUTF8", lambda o: "MAIL FROM:<jörg@x.example>\r\n".encode(),
            _c06_judge)),
        ("R-01", "command line over 512 octets", _case_r01),
        ("R-02", "endless command line", _case_r02),
        ("R-03", "text line over 1000 octets", _smuggling("R-03", "text line over 1000 octets", [
            b"Subject: smtpproto probe R-03\r\n\r\n" + b"A" * 2000 + b"\r\n", b".\r\n"],
            ("inconclusive", "accepted a 2002-octet text line (RFC 5321: 1000): kept whole, split or cut "
             "cannot be seen from outside"), "it answered in the middle of DATA")),
        ("R-04a", "declared SIZE over the limit", _one_line(
            "R-04a", "declared SIZE over the limit",
            lambda o: b"MAIL FROM:<" + o.mail_from.encode() + b"> SIZE=99999999999\r\n", _r04a_judge)),
        ("R-04b", "SIZE that is not a number", _one_line(
            "R-04b", "SIZE that is not a number",
            lambda o: b"MAIL FROM:<" + o.mail_from.encode() + b"> SIZE=1e9\r\n", _bad_size("SIZE=1e9"))),
        ("R-04c", "SIZE of 5000 digits", _one_line(
            "R-04c", "SIZE of 5000 digits",
            lambda o: b"MAIL FROM:<" + o.mail_from.encode() + b"> SIZE=" + b"9" * 5000 + b"\r\n",
            _bad_size("a 5000-digit SIZE"))),
        ("R-04d", "message one octet over the SIZE limit", _case_r04d),
        ("R-05", "recipient limit", _case_r05),
        ("R-06", "address length limits", _case_r06),
        ("R-07a", "unknown-command budget", _budget(
            "R-07a", "unknown-command budget", [b"FOO\r\n"], 21, "unknown commands")),
        ("R-07b", "junk-command budget", _budget(
            "R-07b", "junk-command budget", [b"NOOP\r\n", b"RSET\r\n"], 130, "junk commands")),
        ("P-01", "client talks before the greeting", _case_p01),
    ]
    return cases


# ---------------------------------------------------------------- running


def parse_target(target: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[IPv6]:PORT`` or ``HOST`` (port 25) as (host, port)."""
    host, port = target, "25"
    if target.startswith("["):
        end = target.find("]")
        if end < 0:
            raise ValueError(f"bad address {target!r}")
        host, rest = target[1:end], target[end + 1:]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"bad address {target!r}")
            port = rest[1:]
    elif target.count(":") == 1:
        host, port = target.split(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"bad address {target!r} (want HOST:PORT)")
    return host, int(port)


def run_probe(
    host: str,
    port: int,
    *,
    starttls: bool = False,
    timeout: float = 5.0,
    settle: float = 0.5,
    budget: float = RUN_BUDGET,
    helo: str = "probe.smtpproto.invalid",
    mail_from: str = "",
    rcpt_to: str = "Postmaster",
    only: Sequence[str] | None = None,
) -> list[CaseResult]:
    """Run every case against ``host:port``, one fresh connection each.

    :param timeout: seconds allowed per case.
    :param settle: seconds of silence that end a case's reading (replies a
        vulnerable server sends to smuggled commands come right after).
    :param budget: seconds for the whole run; cases that do not fit are
        reported inconclusive.
    :param mail_from, rcpt_to: the envelope (default the null sender and
        ``Postmaster``, which every server must accept, RFC 5321 §4.5.1).
        A server may deliver up to one test message per smuggling case.
    :param only: run just these case ids (e.g. ``["S-01", "T-01"]``).
    :raises ProbeError: the server cannot be reached at all.
    """
    if timeout <= 0 or settle < 0 or budget <= 0:
        raise ValueError("timeout and budget must be positive, settle not negative")
    # Fail early with the same checks the core applies to what it sends.
    Ehlo(domain=helo)
    Mail(reverse_path=mail_from)
    Rcpt(forward_path=rcpt_to)
    o = _Options(host, port, timeout, settle, helo, mail_from, rcpt_to, starttls)
    cases = _cases(o)
    if only is not None:
        unknown = set(only) - {c[0] for c in _cases(_Options(host, port, timeout, settle, helo, mail_from,
                                                              rcpt_to, True))}
        if unknown:
            raise ValueError(f"unknown case id(s): {', '.join(sorted(unknown))}")
        cases = [c for c in cases if c[0] in only]
    deadline = time.monotonic() + budget
    try:
        socket.create_connection((host, port), timeout=min(timeout, budget)).close()
    except OSError as exc:
        raise ProbeError(f"cannot connect to {host}:{port}: {exc}") from None
    results: list[CaseResult] = []
    for case_id, title, case in cases:
        if deadline - time.monotonic() < 0.5:
            results.append(CaseResult(case_id, title, "", "not run", "inconclusive", "the run's time budget was used up"))
            continue
        try:
            session = _Session.connect(host, port, timeout, deadline)
        except OSError as exc:
            results.append(CaseResult(case_id, title, "", "no connection", "inconclusive", f"cannot connect: {exc}"))
            continue
        try:
            results.append(case(session, o))
        except _Abort as exc:
            results.append(CaseResult(case_id, title, "", "dialogue failed", "inconclusive", str(exc)))
        except OSError as exc:
            results.append(CaseResult(case_id, title, "", "connection error", "inconclusive", str(exc)))
        finally:
            session.close()
    return results


def format_table(results: Sequence[CaseResult]) -> str:
    """The results as a fixed-width text table (one row per case, then a tally)."""
    headers = ("case", "sent", "server did", "verdict", "reason")
    rows = [(r.case, r.sent, r.server, r.verdict, r.reason) for r in results]
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(headers)]
    widths[1] = min(widths[1], 64)
    widths[2] = min(widths[2], 60)

    def fmt(row: Sequence[str]) -> str:
        cells = []
        for i, cell in enumerate(row[:-1]):
            if len(cell) > widths[i]:
                cell = cell[: widths[i] - 1] + "…"
            cells.append(cell.ljust(widths[i]))
        cells.append(row[-1])
        return "  ".join(cells).rstrip()

    lines = [fmt(headers), fmt(["-" * w for w in widths[:-1]] + ["-" * len(headers[-1])])]
    lines += [fmt(row) for row in rows]
    tally = {v: sum(1 for r in results if r.verdict == v) for v in ("safe", "vulnerable", "inconclusive")}
    lines.append("")
    lines.append(", ".join(f"{n} {v}" for v, n in tally.items()))
    return "\n".join(lines)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def main(argv: Sequence[str]) -> int:
    """``probe HOST:PORT [--starttls] [--json] [--timeout S]``; 0 when the probe
    ran (whatever the verdicts), 1 when the server is unreachable, 2 on bad usage."""
    p = _Parser(prog="python -m smtpproto probe", description=(
        "Run the protocol rows of SECURITY-CASES (SMTP smuggling, pipelining sync, STARTTLS injection, "
        "bare CR/LF, long lines, limits, pre-greeting talk) against one server, one fresh connection per case. "
        "Smuggling cases may deliver a test message to --rcpt-to."))
    p.add_argument("target", metavar="HOST:PORT", help="the server to probe (port 25 if omitted)")
    p.add_argument("--starttls", action="store_true", help="also run T-01..T-05 (STARTTLS cases) if offered")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--timeout", type=float, default=5.0, metavar="S", help="seconds per case (default 5)")
    p.add_argument("--settle", type=float, default=0.5, metavar="S",
                   help="seconds of silence that end a case's reading (default 0.5)")
    p.add_argument("--case", action="append", metavar="ID", help="run only this case (repeatable), e.g. S-01")
    p.add_argument("--helo", default="probe.smtpproto.invalid", help="the EHLO name to use")
    p.add_argument("--mail-from", default="", metavar="ADDR", help="envelope sender (default: <>)")
    p.add_argument("--rcpt-to", default="Postmaster", metavar="ADDR", help="envelope recipient (default: Postmaster)")
    args = p.parse_args(list(argv))
    try:
        host, port = parse_target(args.target)
    except ValueError as exc:
        p.error(str(exc))
    if not 0 < args.timeout <= RUN_BUDGET:
        p.error(f"--timeout must be between 0 and {RUN_BUDGET:g} seconds")
    if not 0 <= args.settle <= 5:
        p.error("--settle must be between 0 and 5 seconds")
    try:
        results = run_probe(host, port, starttls=args.starttls, timeout=args.timeout, settle=args.settle,
                            helo=args.helo, mail_from=args.mail_from, rcpt_to=args.rcpt_to, only=args.case)
    except ProbeError as exc:
        print(f"{p.prog}: error: {exc}", file=sys.stderr)
        return 1
    except LocalProtocolError as exc:
        p.error(f"bad --helo/--mail-from/--rcpt-to: {exc}")
    except ValueError as exc:
        p.error(str(exc))
    if args.json:
        print(json.dumps({"target": f"{host}:{port}", "results": [r.as_dict() for r in results]}, indent=2))
    else:
        print(f"smtpproto probe {host}:{port}")
        print(format_table(results))
    return 0
