"""Record SMTP sessions to transcript files and replay them against a server.

Every adapter (client and server, sockets, asyncio and trio) takes
``record=``: a client writes its session to one file, a server writes one file
per session into a directory.  :func:`replay_transcript` plays the client side
of a transcript to any server, through a client
:class:`~smtpproto.Connection` in raw mode (so malformed recordings replay as
they are), and reports where the replies differ from the recorded ones.
``python -m smtpproto replay FILE HOST:PORT`` does the same from the shell.

The file format, version 1, is JSON lines (UTF-8).  The first line is a
header::

    {"smtpproto-transcript": 1, "role": "client", "peer": "[127.0.0.1]:25",
     "implicit_tls": false, "started": "2024-05-01T12:00:00Z"}

``role`` says which side recorded it.  Each further line is one record, in the
order the recording side saw things happen:

* ``{"t": 0.0132, "dir": "C", "data": "EHLO c.example\\r\\n"}`` — octets the
  client sent (``"C"``) or the server sent (``"S"``), ``t`` seconds after the
  recording began (when they were read or written).  ``data`` holds one
  character per octet (the octets decoded as latin-1), so any byte string,
  malformed or binary, is kept exactly; JSON escapes the control characters.
* ``{"t": 0.2, "dir": "C", "event": "starttls"}`` — the TLS handshake after
  STARTTLS happened here; the records after it were inside TLS.
* ``{"t": 0.3, "dir": "S", "event": "eof"}`` — that side closed the connection.

One write is one record, so pipelined commands stay together.  Octets the
recording side *received* are written once its core has parsed them (in
order, before anything it sends after), so each AUTH exchange can be redacted
in place: the initial response of ``AUTH``, every SASL response line and the
text of every 334 challenge are replaced by ``<redacted>`` (the same redaction
as the clients' ``transcript=`` callback).  A replayed AUTH therefore fails
where the recorded one succeeded: the transcript holds no secret to replay.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import ssl
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable, Iterable, Literal, Sequence, Union

from ._config import Config
from ._connection import NEED_DATA, Connection, RawBytes, Role
from ._errors import LocalProtocolError, RemoteProtocolError
from ._events import ConnectionClosed, Reply
from ._replies import parse_reply_line

__all__ = [
    "FORMAT_VERSION",
    "REDACTED",
    "Direction",
    "Record",
    "RecordTarget",
    "RecordedReply",
    "Recorder",
    "Recording",
    "ReplayReport",
    "ReplayStep",
    "ServerRecordTarget",
    "format_report",
    "load_transcript",
    "redact_auth_line",
    "redact_challenges",
    "replay_transcript",
]

#: The transcript format version this module writes and reads.
FORMAT_VERSION = 1
#: What replaces a secret in a transcript (and in the clients' transcript callback).
REDACTED = "<redacted>"
_REDACTED = REDACTED.encode("ascii")
_MAGIC = "smtpproto-transcript"

#: ``"C"``: sent by the client; ``"S"``: sent by the server.
Direction = Literal["C", "S"]
#: What a client adapter's ``record=`` takes: a file path (overwritten) or a
#: :class:`Recorder`.
RecordTarget = Union[str, "os.PathLike[str]", "Recorder"]
#: What a server adapter's ``record=`` takes: a directory (one new file per
#: session, created as needed) or a function ``(peer) -> Recorder``.
ServerRecordTarget = Union[str, "os.PathLike[str]", Callable[[object], "Recorder"]]


# ---------------------------------------------------------------- redaction


def redact_auth_line(line: bytes) -> bytes:
    """One line of an AUTH exchange as the client sends it (with or without its
    line end), the secret replaced by :data:`REDACTED`: the initial response of
    an ``AUTH`` command, or the whole of a SASL response line.  ``AUTH
    mechanism`` alone and the ``*`` that cancels are kept."""
    body = line.rstrip(b"\r\n")
    end = line[len(body):]
    if body[:4].upper() == b"AUTH" and body[4:5] in (b" ", b"\t"):
        words = body.split(None, 2)
        if len(words) < 3:
            return line
        return words[0] + b" " + words[1] + b" " + _REDACTED + end
    if body == b"*":
        return line
    return _REDACTED + end


def redact_challenges(data: bytes) -> bytes:
    """Server output (reply lines only) with the text of every 334 challenge
    line replaced by :data:`REDACTED`; other lines are kept as they are."""
    if b"334" not in data:
        return data
    out = []
    for line in data.splitlines(keepends=True):
        if line.startswith(b"334") and len(line.rstrip(b"\r\n")) > 4:
            body = line.rstrip(b"\r\n")
            line = body[:4] + _REDACTED + line[len(body):]
        out.append(line)
    return b"".join(out)


def _redact_auth_lines(data: bytes, in_auth: bool) -> bytes:
    """Client input a server never parsed: any line starting with AUTH, and the
    first line when a SASL response was due, redacted."""
    out = []
    for i, line in enumerate(data.splitlines(keepends=True)):
        if (i == 0 and in_auth) or line[:4].upper() == b"AUTH":
            line = redact_auth_line(line)
        out.append(line)
    return b"".join(out)


# ---------------------------------------------------------------- recording


def _who(peer: object) -> str | None:
    if peer is None:
        return None
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"[{peer[0]}]:{peer[1]}"
    return str(peer)


class Recorder:
    """Writes one session's transcript, one JSON line per record.

    :param target: a file path (created or overwritten) or an open text file
        (written to, flushed, never closed here).
    :param role: who records: ``"client"`` or ``"server"`` (for the header).
    :param peer: the other side's address, for the header.
    :param implicit_tls: the session began with TLS (RFC 8314), so a replay
        must start with a TLS handshake.
    :param clock: a monotonic clock in seconds.

    The adapters create and feed recorders themselves (``record=``); use one
    directly to record what a raw-mode :class:`~smtpproto.Connection` sends
    and receives.  Each record is flushed at once, so the file is complete up
    to the last record even if the process dies.
    """

    def __init__(
        self,
        target: str | os.PathLike[str] | IO[str],
        *,
        role: Literal["client", "server"] = "client",
        peer: object = None,
        implicit_tls: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if role not in ("client", "server"):
            raise ValueError(f"role must be 'client' or 'server', not {role!r}")
        self.path: Path | None
        if isinstance(target, (str, os.PathLike)):
            self.path = Path(target)
            self._file: IO[str] = open(self.path, "w", encoding="utf-8", newline="\n")
            self._owned = True
        else:
            self.path = None
            self._file = target
            self._owned = False
        self.role = role
        self._clock = clock
        self._start = clock()
        self._closed = False
        started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        self._write({_MAGIC: FORMAT_VERSION, "role": role, "peer": _who(peer),
                     "implicit_tls": bool(implicit_tls), "started": started})

    @property
    def closed(self) -> bool:
        return self._closed

    def _write(self, obj: dict[str, object]) -> None:
        if self._closed:
            raise ValueError("the recorder is closed")
        self._file.write(json.dumps(obj, ensure_ascii=True) + "\n")
        self._file.flush()

    def _t(self, at: float | None) -> float:
        return round((self._clock() if at is None else at) - self._start, 6)

    def record(self, direction: Direction, data: bytes, *, at: float | None = None) -> None:
        """Octets sent by the client (``"C"``) or the server (``"S"``); ``at``
        is when (a ``clock()`` value; default now).  Empty data is skipped."""
        if direction not in ("C", "S"):
            raise ValueError(f"direction must be 'C' or 'S', not {direction!r}")
        if data:
            self._write({"t": self._t(at), "dir": direction, "data": bytes(data).decode("latin-1")})

    def starttls(self, *, at: float | None = None) -> None:
        """The TLS handshake after STARTTLS took place here."""
        self._write({"t": self._t(at), "dir": "C", "event": "starttls"})

    def eof(self, direction: Direction, *, at: float | None = None) -> None:
        """The client (``"C"``) or the server (``"S"``) closed the connection."""
        if direction not in ("C", "S"):
            raise ValueError(f"direction must be 'C' or 'S', not {direction!r}")
        self._write({"t": self._t(at), "dir": direction, "event": "eof"})

    def close(self) -> None:
        """Stop recording (and close the file if this recorder opened it)."""
        if self._closed:
            return
        self._closed = True
        if self._owned:
            self._file.close()

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _open_client_recorder(target: RecordTarget, *, peer: object = None, implicit_tls: bool = False
                         ) -> tuple[Recorder, bool]:
    """(recorder, owned) for a client adapter's ``record=``."""
    if isinstance(target, Recorder):
        return target, False
    if isinstance(target, (str, os.PathLike)):
        return Recorder(target, role="client", peer=peer, implicit_tls=implicit_tls), True
    raise TypeError("record= takes a file path or a Recorder")


def _open_server_recorder(target: ServerRecordTarget, *, peer: object = None, implicit_tls: bool = False
                         ) -> tuple[Recorder, bool]:
    """(recorder, owned) for one server session: a new file in the directory
    ``target``, or what the factory ``target(peer)`` returns."""
    if isinstance(target, (str, os.PathLike)):
        directory = Path(target)
        directory.mkdir(parents=True, exist_ok=True)
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S")
        path = directory / f"{stamp}-{uuid.uuid4().hex[:8]}.jsonl"
        return Recorder(path, role="server", peer=peer, implicit_tls=implicit_tls), True
    if callable(target):
        recorder = target(peer)
        if not isinstance(recorder, Recorder):
            raise TypeError(f"the record= factory returned {type(recorder).__name__}, not a Recorder")
        return recorder, False
    raise TypeError("record= takes a directory or a function (peer) -> Recorder")


class _SessionTap:
    """Feeds one session's recorder from an adapter flow (internal).

    Our writes are recorded at once.  The peer's octets are held until the
    core has parsed them: ``parsed()`` is called after each event with the
    number of octets the core still buffers, and may redact the octets that
    event consumed.  Everything parsed so far is recorded before anything we
    write, so the file keeps the order of cause and effect.
    """

    def __init__(self, recorder: Recorder, *, ours: Direction, owned: bool,
                 tail: Callable[[bytes], bytes], clock: Callable[[], float] = time.monotonic) -> None:
        self.recorder = recorder
        self._ours: Direction = ours
        self._theirs: Direction = "S" if ours == "C" else "C"
        self._owned = owned
        self._tail = tail
        self._clock = clock
        self._held: list[tuple[float, bytes]] = []  # (when read, octets) not yet recorded
        self._base = 0  # stream offset of the first held octet
        self._fed = 0  # octets of the peer's stream received so far
        self._mark = 0  # octets of it the core has turned into events
        self._subs: list[tuple[int, int, bytes]] = []  # (start, end, replacement)
        self._done = False

    def wrote(self, data: bytes) -> None:
        if self._done:
            return
        self._emit(self._mark)
        self.recorder.record(self._ours, data)

    def read(self, data: bytes) -> None:
        if self._done:
            return
        if not data:
            self._emit(self._mark)
            self.recorder.eof(self._theirs)
            return
        self._held.append((self._clock(), bytes(data)))
        self._fed += len(data)

    def parsed(self, remaining: int, redact: Callable[[bytes], bytes] | None = None) -> None:
        """The core produced an event and still buffers ``remaining`` octets;
        ``redact`` rewrites the octets that event consumed."""
        if self._done:
            return
        end = self._fed - remaining
        if end <= self._mark:
            return
        if redact is not None:
            raw = self._slice(self._mark, end)
            replacement = redact(raw)
            if replacement != raw:
                self._subs.append((self._mark, end, replacement))
        self._mark = end
        self._emit(end, whole_reads=True)

    def starttls(self) -> None:
        if self._done:
            return
        self._emit(self._mark)
        self.recorder.starttls()

    def finish(self, *, tail: Callable[[bytes], bytes] | None = None) -> None:
        """The session is over: record the rest (octets the core never parsed
        go through ``tail``) and our end of the connection."""
        if self._done:
            return
        unparsed = self._slice(self._mark, self._fed)
        if unparsed:
            replacement = (tail or self._tail)(unparsed)
            if replacement != unparsed:
                self._subs.append((self._mark, self._fed, replacement))
        self._mark = self._fed
        try:
            self._emit(self._fed)
            self.recorder.eof(self._ours)
        finally:
            self._done = True
            if self._owned:
                self.recorder.close()

    def _slice(self, start: int, end: int) -> bytes:
        out = bytearray()
        pos = self._base
        for _, chunk in self._held:
            lo, hi = max(start, pos), min(end, pos + len(chunk))
            if lo < hi:
                out += chunk[lo - pos:hi - pos]
            pos += len(chunk)
            if pos >= end:
                break
        return bytes(out)

    def _emit(self, limit: int, *, whole_reads: bool = False) -> None:
        """Record held octets up to stream offset ``limit``, one record per read
        (or the part of it below ``limit``, unless ``whole_reads``),
        substitutions applied."""
        while self._held and self._base < limit:
            at, chunk = self._held[0]
            take = min(len(chunk), limit - self._base)
            if whole_reads and take < len(chunk):
                return
            start, stop = self._base, self._base + take
            out = bytearray()
            pos = start
            for s, e, replacement in self._subs:
                if e <= start or s >= stop:
                    continue
                if s >= pos:
                    out += chunk[pos - start:s - start]
                    out += replacement
                pos = max(pos, min(e, stop))
            out += chunk[pos - start:take]
            if take == len(chunk):
                self._held.pop(0)
            else:
                self._held[0] = (at, chunk[take:])
            self._base = stop
            self._subs = [sub for sub in self._subs if sub[1] > stop]
            self.recorder.record(self._theirs, bytes(out), at=at)


def _client_tap(target: RecordTarget, *, implicit_tls: bool) -> _SessionTap:
    """The tap a client session records through (internal)."""
    recorder, owned = _open_client_recorder(target, implicit_tls=implicit_tls)
    return _SessionTap(recorder, ours="C", owned=owned, tail=redact_challenges)


def _server_tap(target: ServerRecordTarget, *, peer: object, implicit_tls: bool,
               in_auth: Callable[[], bool]) -> _SessionTap:
    """The tap a server session records through (internal); ``in_auth()``
    says whether a SASL response line is due."""
    recorder, owned = _open_server_recorder(target, peer=peer, implicit_tls=implicit_tls)
    return _SessionTap(recorder, ours="S", owned=owned, tail=lambda data: _redact_auth_lines(data, in_auth()))


# ---------------------------------------------------------------- loading


@dataclass(frozen=True)
class Record:
    """One line of a transcript after the header."""

    #: Seconds after the recording began.
    t: float
    direction: Direction
    #: The octets (empty for an event).
    data: bytes = b""
    #: ``"starttls"`` or ``"eof"`` for an event record, else None.
    event: str | None = None


@dataclass(frozen=True)
class Recording:
    """A transcript as :func:`load_transcript` read it."""

    role: str
    peer: str | None
    implicit_tls: bool
    started: str
    records: tuple[Record, ...]

    def sent(self, direction: Direction) -> bytes:
        """Every octet one side sent, in order."""
        return b"".join(r.data for r in self.records if r.direction == direction)


def load_transcript(source: str | os.PathLike[str] | IO[str] | Iterable[str]) -> Recording:
    """Read a transcript file (a path, an open text file or its lines).

    :raises ValueError: not a transcript, a version this module does not
        know, or a malformed line (the message names the line).
    """
    if isinstance(source, (str, os.PathLike)):
        with open(source, encoding="utf-8") as f:
            return _parse(list(f))
    return _parse(list(source))


def _parse(lines: Sequence[str]) -> Recording:
    if not lines:
        raise ValueError("empty file: not an smtpproto transcript")
    try:
        head = json.loads(lines[0])
    except json.JSONDecodeError:
        head = None
    if not isinstance(head, dict) or _MAGIC not in head:
        raise ValueError("line 1: not an smtpproto transcript header")
    if head[_MAGIC] != FORMAT_VERSION:
        raise ValueError(f"line 1: transcript version {head[_MAGIC]!r}; this smtpproto reads version {FORMAT_VERSION}")
    records = []
    for n, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            t = obj["t"]
            direction = obj["dir"]
            if not isinstance(t, (int, float)) or isinstance(t, bool) or direction not in ("C", "S"):
                raise ValueError("bad t or dir")
            if ("data" in obj) == ("event" in obj):
                raise ValueError("a record holds either data or an event")
            if "data" in obj:
                if not isinstance(obj["data"], str):
                    raise ValueError("data must be a string")
                records.append(Record(float(t), direction, obj["data"].encode("latin-1")))
            else:
                if obj["event"] not in ("starttls", "eof"):
                    raise ValueError(f"unknown event {obj['event']!r}")
                records.append(Record(float(t), direction, event=obj["event"]))
        except (ValueError, KeyError, TypeError, UnicodeEncodeError) as exc:
            raise ValueError(f"line {n}: not a transcript record ({exc})") from None
    return Recording(role=str(head.get("role")), peer=head.get("peer"),
                     implicit_tls=bool(head.get("implicit_tls")), started=str(head.get("started")),
                     records=tuple(records))


# ---------------------------------------------------------------- replaying


@dataclass(frozen=True)
class RecordedReply:
    """A reply as the transcript holds it (code 0: a malformed line)."""

    code: int
    lines: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.code} {self.lines[0] if self.lines else ''}".rstrip()


@dataclass
class ReplayStep:
    """One client write of the transcript and the replies around it.

    Step 0 sends nothing: it holds the greeting.  The replies of a step are
    the ones the recording saw before the next client write.
    """

    index: int
    sent: bytes
    expected: tuple[RecordedReply, ...]
    replies: list[Reply] = field(default_factory=list)
    #: A TLS handshake (STARTTLS) came before this write.
    starttls: bool = False

    @property
    def matches(self) -> bool:
        """The same reply codes, in the same order."""
        return [r.code for r in self.replies] == [r.code for r in self.expected]


@dataclass
class ReplayReport:
    """What :func:`replay_transcript` saw."""

    target: str
    steps: list[ReplayStep]
    #: The server closed the connection.
    closed: bool = False
    #: In the recording the server closed the connection first.
    recorded_closed: bool = False
    #: Why the replay stopped early (a protocol error, a failed handshake...).
    error: str | None = None

    @property
    def differences(self) -> list[ReplayStep]:
        return [s for s in self.steps if not s.matches]

    @property
    def matches(self) -> bool:
        """Every step got the recorded reply codes, nothing went wrong, and the
        server closed the connection if it did so in the recording."""
        return not self.differences and self.error is None and (self.closed or not self.recorded_closed)


def _plan(recording: Recording) -> list[ReplayStep]:
    steps = [ReplayStep(0, b"", ())]
    expected: list[list[RecordedReply]] = [[]]
    tls_next = False
    pending = b""
    lines: list[str] = []
    code = 0
    for rec in recording.records:
        if rec.event == "starttls":
            tls_next = True
        elif rec.event is None and rec.direction == "C":
            steps.append(ReplayStep(len(steps), rec.data, (), starttls=tls_next))
            expected.append([])
            tls_next = False
        elif rec.event is None:
            pending += rec.data
            while True:
                end = pending.find(b"\n")
                if end < 0:
                    break
                raw, pending = pending[:end].rstrip(b"\r"), pending[end + 1:]
                parsed = parse_reply_line(raw)
                if parsed is None or (lines and parsed.code != code):
                    expected[-1].append(RecordedReply(0, (raw.decode("latin-1"),)))
                    lines = []
                    continue
                code = parsed.code
                lines.append(parsed.text)
                if parsed.last:
                    expected[-1].append(RecordedReply(code, tuple(lines)))
                    lines = []
    for step, replies in zip(steps, expected):
        step.expected = tuple(replies)
    return steps


def _unverified_context() -> ssl.SSLContext:
    # Like probe's T-01: the replay only looks at what the server says.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def replay_transcript(
    target: socket.socket | tuple[str, int],
    transcript: Recording | str | os.PathLike[str],
    *,
    timeout: float = 5.0,
    settle: float = 0.3,
    tls_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
) -> ReplayReport:
    """Play the client side of ``transcript`` to a server and compare replies.

    ``target`` is a connected socket (used, not closed) or ``(host, port)``.
    Each client write of the transcript is sent as it was recorded through
    :meth:`Connection.send_raw_unchecked`, expecting as many replies as the
    recording saw before the next write; the replies are parsed by the core
    client (bare LF line ends accepted) and the next write waits for them, at
    most ``timeout`` seconds.  Where the transcript has a STARTTLS handshake,
    the replay shakes hands too (with ``tls_context``; by default without
    checking the server's certificate, as the replay only compares replies).
    After the last write the replay closes its end if the recorded client did,
    and listens for ``settle`` seconds more.

    Replies arriving late still count for the write they answer (they are
    paired in order); a reply the transcript does not have ends the replay
    with an error, since the core cannot pair it.
    """
    recording = transcript if isinstance(transcript, Recording) else load_transcript(transcript)
    steps = _plan(recording)
    owned = not isinstance(target, socket.socket)
    if isinstance(target, socket.socket):
        sock = target
        peer = target.getpeername()
        where = _who(peer) or "socket"
        host = server_hostname or (str(peer[0]) if isinstance(peer, tuple) else None)
    else:
        host, port = target
        where = _who(target) or ""
        sock = socket.create_connection((host, port), timeout=timeout)
    eofs = [r.direction for r in recording.records if r.event == "eof"]
    report = ReplayReport(where, steps, recorded_closed=bool(eofs) and eofs[0] == "S")
    player = _Player(sock, report, timeout, tls_context, server_hostname or host)
    try:
        player.run(recording.implicit_tls, settle, half_close="C" in eofs)
    finally:
        if owned:
            player.sock.close()
    return report


class _Player:
    def __init__(self, sock: socket.socket, report: ReplayReport, timeout: float,
                 tls_context: ssl.SSLContext | None, hostname: str | None) -> None:
        self.sock: socket.socket = sock
        self.report = report
        self.timeout = timeout
        self.tls_context = tls_context
        self.hostname = hostname
        self.conn = Connection(Role.CLIENT, Config(bare_newline="normalize"), allow_raw_unchecked=True)
        self.owner: dict[int, ReplayStep] = {}  # id(RawBytes marker) -> its step
        self.greeting_step: ReplayStep | None = None
        self.current: ReplayStep = report.steps[0]
        self.owed = 0  # replies expected but not yet received
        self.stopped = False

    def run(self, implicit_tls: bool, settle: float, half_close: bool) -> None:
        if implicit_tls and not self._handshake():
            return
        for step in self.report.steps:
            if step.starttls and not self._handshake():
                return
            self.current = step
            n = len(step.expected)
            if self.greeting_step is None and n:
                # The core pairs the first reply with the greeting itself.
                self.greeting_step = step
                n -= 1
                self.owed += 1
            try:
                data = self.conn.send_raw_unchecked(step.sent, expect_replies=n)
            except LocalProtocolError as exc:
                self.report.error = f"step {step.index}: {exc}"
                return
            if n:
                marker = self.conn.pending[-1]
                self.owner[id(marker)] = step
                self.owed += n
            if data:
                try:
                    self.sock.sendall(data)
                except OSError as exc:
                    self.report.error = f"step {step.index}: write failed: {exc}"
                    return
            self._read_until(time.monotonic() + self.timeout, lambda: self.owed <= 0)
            if self.stopped:
                return
        if half_close:
            # The recorded client closed its end here: so do we, and see
            # whether the server follows.
            try:
                self.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        self._read_until(time.monotonic() + settle, lambda: False)

    def _handshake(self) -> bool:
        ctx = self.tls_context or _unverified_context()
        try:
            self.sock.settimeout(self.timeout)
            self.sock = ctx.wrap_socket(self.sock, server_hostname=self.hostname)
        except (OSError, ssl.SSLError) as exc:
            self.report.error = f"TLS handshake failed: {exc}"
            self.stopped = True
            return False
        return True

    def _read_until(self, deadline: float, done: Callable[[], bool]) -> None:
        while not done() and not self.stopped:
            try:
                ev = self.conn.next_event()
            except RemoteProtocolError as exc:
                self.report.error = f"after step {self.current.index}: {exc}"
                self.stopped = True
                return
            if isinstance(ev, Reply):
                self._file(ev)
                continue
            if isinstance(ev, ConnectionClosed):
                self.report.closed = True
                self.stopped = True
                return
            assert ev is NEED_DATA
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except (socket.timeout, TimeoutError):
                return
            except OSError:
                data = b""
            self.conn.receive_data(data)

    def _file(self, reply: Reply) -> None:
        """Put a reply with the step whose write it answers."""
        command = reply.command
        if isinstance(command, RawBytes) and id(command) in self.owner:
            self.owner[id(command)].replies.append(reply)
            self.owed -= 1
        elif command is None and self.greeting_step is None:
            # A greeting before any step expected one: it belongs where it came.
            self.greeting_step = self.current
            self.current.replies.append(reply)
        elif command is None and self.greeting_step is not None and not self.greeting_step.replies:
            self.greeting_step.replies.append(reply)
            self.owed -= 1
        else:  # unsolicited (a 421 with nothing pending)
            self.current.replies.append(reply)


def _text(reply: Reply) -> str:
    first = reply.lines[0] if reply.lines else ""
    if reply.enhanced_status:
        first = f"{reply.enhanced_status} {first}"
    return f"{reply.code} {first}".rstrip()


def _escape(data: bytes, limit: int = 48) -> str:
    text = repr(data)[2:-1]
    if len(text) <= limit:
        return text
    return f"{text[:limit - 16]}…({len(data)} octets)"


def format_report(report: ReplayReport) -> str:
    """The report as a text table: one row per step, then a summary."""
    rows = [("step", "sent", "recorded", "replayed", "")]
    for step in report.steps:
        sent = ("<TLS> " if step.starttls else "") + (_escape(step.sent) if step.sent else "(connect)")
        recorded = ", ".join(str(r) for r in step.expected) or "-"
        replayed = ", ".join(_text(r) for r in step.replies) or "-"
        rows.append((str(step.index), sent, recorded, replayed, "" if step.matches else "DIFFERS"))
    widths = [min(44, max(len(row[i]) for row in rows)) for i in range(4)]

    def fmt(row: Sequence[str]) -> str:
        cells = [(c if len(c) <= w else c[:w - 1] + "…").ljust(w) for c, w in zip(row, widths)]
        return "  ".join(cells + [row[4]]).rstrip()

    out = [fmt(rows[0])] + [fmt(row) for row in rows[1:]]
    out.append("")
    n = len(report.differences)
    summary = f"{len(report.steps)} steps, {n} differ" if n else f"{len(report.steps)} steps, all replies match"
    if report.recorded_closed and not report.closed:
        summary += "; the server did not close the connection as recorded"
    elif report.closed:
        summary += "; the server closed the connection"
    if report.error:
        summary += f"; stopped: {report.error}"
    out.append(summary)
    return "\n".join(out)
