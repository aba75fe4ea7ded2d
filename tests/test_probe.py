"""``python -m smtpproto probe``: the verdicts discriminate.

Against our own server (threads, asyncio and trio backends, with STARTTLS)
every case must be "safe"; against a naive server written here (it splits
lines on LF, or on any of CR/LF, reads at most 512 octets per line, ends DATA
at a line ".", has no pipelining check and keeps talking in cleartext after
STARTTLS, plus one optional flaw per remaining case) each case must say
"vulnerable" for the flaw it is about.  aiosmtpd and (interop tier) Postfix
get their observed verdicts recorded.  Loopback only; every wait is bounded.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator, NamedTuple

import pytest

from smtpproto import _probe
from smtpproto.__main__ import main
from smtpproto.adapters import Handler, ServerSettings
from smtpproto.adapters.sockets import SMTPServer

sys.path.insert(0, str(Path(__file__).parent / "adapters"))
from test_client_postfix import postfix  # noqa: E402,F401  (the private Postfix instance fixture)
from test_client_support import aiosmtpd_server  # noqa: E402
from test_server_support import BACKENDS, RunningServer, server_tls_context  # noqa: E402

DATA = Path(__file__).parent / "data"
SMUGGLING = ["S-01", "S-02", "S-03", "S-04", "S-05", "S-06a", "S-06b", "S-07"]
LF_VARIANTS = ["S-01", "S-02", "S-03", "S-06a"]  # the ones a bare-LF line splitter falls for
#: Every case of a run with --starttls, in the order the probe runs them.
ALL_CASES = SMUGGLING + ["S-10", "S-11", "S-12", "S-13", "S-14", "S-17", "F-01", "F-02",
                         "T-01", "T-02", "T-03", "T-04", "T-05", "S-15", "S-16", "P-02", "C-06",
                         "R-01", "R-02", "R-03", "R-04a", "R-04b", "R-04c", "R-04d", "R-05", "R-06",
                         "R-07a", "R-07b", "P-01"]
SETTLE = 0.15


def expect(vulnerable: str = "", inconclusive: str = "") -> dict[str, str]:
    """A verdict for every case: these vulnerable, those inconclusive, the rest safe."""
    v, i = vulnerable.split(), inconclusive.split()
    return {c: "vulnerable" if c in v else "inconclusive" if c in i else "safe" for c in ALL_CASES}


NAIVE_ANY = expect(" ".join(SMUGGLING) + " S-12 T-01 T-02 T-05 S-15 S-16 P-02 C-06 R-01 R-02 R-04c R-07a R-07b",
                   "S-14 S-17 T-03 R-03 R-04a R-04b R-04d R-05 R-06")
AIOSMTPD = expect("S-12 T-03 S-15 P-02 R-07b", "S-14 S-17 C-06 R-02 R-05 R-06")


class _Line(NamedTuple):
    data: bytes
    #: the line's octets came in more than one recv() (its end was split)
    spanned: bool
    #: no line end within 512 octets: this is a 512-octet piece of a longer line
    cut: bool


class NaiveServer:
    """A deliberately broken SMTP server on 127.0.0.1 (one thread per client).

    ``newline="lf"``: a line ends at LF (a CR before it is stripped), like a
    ``readline()`` loop; ``"any"``: it also ends at a lone CR, like
    ``str.splitlines()``.  Lines are read 512 octets at most, so the tail of a
    longer line becomes the next "line".

    ``flaws`` adds one more mistake each, for the cases that need it:
    ``"dotdot"`` a ``..`` line also ends DATA (S-10); ``"eod-needs-crlf"`` a
    ``.`` right after the 354 does not (S-11); ``"bdat-as-data"`` offers
    CHUNKING and reads BDAT like DATA (S-13); ``"partial-on-eof"`` accepts what
    it has when the client closes in DATA (F-01); ``"eod-one-read"`` sees the
    ``.`` line only when it arrives in one read (F-02); ``"auth-plain"`` offers
    AUTH before TLS (T-04); ``"size"`` advertises SIZE 65536 and enforces
    nothing (R-04); ``"early-long-line"`` answers a long DATA line at once
    (R-03).
    """

    def __init__(self, newline: str = "lf", starttls: bool = False, eod_reply: bytes = b"250 queued\r\n",
                 flaws: frozenset[str] = frozenset()) -> None:
        self.newline = newline
        self.eod_reply = eod_reply
        self.starttls = starttls
        self.flaws = flaws
        self.messages = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.address = self.listener.getsockname()[:2]
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()

    def close(self) -> None:
        self.stop.set()
        self.acceptor.join(5)
        self.listener.close()
        for t in self.threads:
            t.join(5)

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                sock, _ = self.listener.accept()
            except (socket.timeout, TimeoutError):
                continue
            except OSError:
                return
            t = threading.Thread(target=self._session, args=(sock,), daemon=True)
            self.threads.append(t)
            t.start()

    def _lines(self, sock: socket.socket) -> Iterator[_Line]:
        buf = b""
        starts: list[int] = []  # where in buf each recv()'s octets begin
        while not self.stop.is_set():
            if self.newline == "lf":
                end = buf.find(b"\n")
                cut = end + 1 if end >= 0 else -1
            else:
                ends = [i for i in (buf.find(b"\r"), buf.find(b"\n")) if i >= 0]
                end = min(ends) if ends else -1
                if end >= 0 and buf[end:end + 1] == b"\r" and end + 1 == len(buf):
                    end = -1  # maybe CRLF: wait for the next byte
                cut = end + (2 if buf[end:end + 2] == b"\r\n" else 1) if end >= 0 else -1
            piece = 0 <= end <= 512
            if piece or len(buf) >= 512:
                if not piece:
                    end = cut = 512
                line = _Line(buf[:end].rstrip(b"\r"), any(0 < s < cut for s in starts), not piece)
                buf = buf[cut:]
                starts = [s - cut for s in starts if s - cut >= 0]
                yield line
                continue
            try:
                data = sock.recv(4096)
            except (socket.timeout, TimeoutError):
                continue
            except OSError:
                return
            if not data:
                return
            starts.append(len(buf))
            buf += data

    def _session(self, sock: socket.socket) -> None:
        sock.settimeout(0.2)
        # One write per reply: without this, Nagle and delayed ACKs cost 40 ms
        # per pipelined batch.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        flaws = self.flaws
        with sock:
            try:
                sock.sendall(b"220 naive.example ESMTP\r\n")
                in_data = first = False
                for line in self._lines(sock):
                    if in_data:
                        if line.cut and "early-long-line" in flaws:
                            sock.sendall(b"500 line too long\r\n")
                        end = line.data == b"." or (line.data == b".." and "dotdot" in flaws)
                        if first and "eod-needs-crlf" in flaws:
                            end = False
                        if line.spanned and "eod-one-read" in flaws:
                            end = False
                        first = False
                        if end:
                            in_data = False
                            self.messages += 1
                            sock.sendall(self.eod_reply)
                        continue
                    verb = line.data.split(b" ", 1)[0].upper()
                    if verb == b"EHLO":
                        ext = b"250-STARTTLS\r\n" if self.starttls else b""
                        ext += b"250-CHUNKING\r\n" if "bdat-as-data" in flaws else b""
                        ext += b"250-AUTH PLAIN LOGIN\r\n" if "auth-plain" in flaws else b""
                        ext += b"250-SIZE 65536\r\n" if "size" in flaws else b""
                        sock.sendall(b"250-naive.example\r\n250-PIPELINING\r\n" + ext + b"250 8BITMIME\r\n")
                    elif verb in (b"HELO", b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                        sock.sendall(b"250 ok\r\n")
                    elif verb == b"DATA":
                        in_data = first = True
                        sock.sendall(b"354 go ahead\r\n")
                    elif verb == b"BDAT" and "bdat-as-data" in flaws:
                        in_data = True  # the mistake: no octet count, a "." line ends it
                    elif verb == b"STARTTLS":
                        sock.sendall(b"220 ready\r\n")  # ...and never starts TLS
                    elif verb == b"QUIT":
                        sock.sendall(b"221 bye\r\n")
                        return
                    else:
                        sock.sendall(b"500 what?\r\n")
                if in_data and "partial-on-eof" in flaws:
                    sock.sendall(self.eod_reply)
            except OSError:
                return


def by_case(results: list[_probe.CaseResult]) -> dict[str, _probe.CaseResult]:
    return {r.case: r for r in results}


def doc_verdicts(table: int) -> dict[str, str]:
    """(case -> verdict) of the ``table``-th probe report shown in docs/fuzzing.md."""
    page = (Path(__file__).resolve().parent.parent / "docs" / "fuzzing.md").read_text(encoding="utf-8")
    reports = [b for b in page.split("```") if "\ncase " in b and "verdict" in b]
    out = {}
    for line in reports[table].splitlines():
        words = line.split()
        if words and (words[0][:2] in ("S-", "T-", "R-", "P-", "F-", "C-")):
            out[words[0]] = next(w for w in words if w in ("safe", "vulnerable", "inconclusive"))
    return out


@pytest.fixture(scope="module")
def our_server() -> Iterator[tuple[str, int]]:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(DATA / "server-cert.pem", DATA / "server-key.pem")
    with SMTPServer(Handler(), host="127.0.0.1", port=0, ssl_context=ctx) as server:
        host, port = server.address  # type: ignore[misc]
        yield host, port


@pytest.mark.parametrize("backend", BACKENDS)
def test_our_server_is_safe_in_every_case(backend: str) -> None:
    # Default settings (error delay included), STARTTLS with the test certificate.
    with RunningServer(backend, Handler(), settings=ServerSettings(), ssl_context=server_tls_context()) as server:
        start = time.monotonic()
        results = _probe.run_probe("127.0.0.1", server.port, starttls=True, timeout=5, settle=SETTLE)
        assert time.monotonic() - start < 40
    got = by_case(results)
    assert list(got) == ALL_CASES
    for r in results:
        assert r.verdict == "safe", r
    # Not just "safe": safe for the reason the catalogue gives.
    assert "550 5.5.2" in got["S-01"].server and "550 5.5.2" in got["S-14"].server
    assert "554 5.5.0" in got["T-01"].server and "554 5.5.0" in got["T-02"].server
    assert "554 5.5.0" in got["P-02"].server and got["P-02"].server.endswith("closed")
    assert got["S-13"].server.startswith("250 2.0.0") and "221" in got["S-13"].server
    assert got["T-03"].server.startswith("STARTTLS 503, RSET, STARTTLS 220; in TLS: RCPT 503")
    assert "(SIZE 10485760 + 1)" in got["R-04d"].sent and got["R-04d"].server.startswith("552 5.3.4")
    assert got["R-05"].server.startswith("250 2.1.5 ×1000, 452 4.5.3") and "RSET 250" in got["R-05"].reason
    assert got["R-02"].server.endswith("closed after 128 KiB")
    assert got["R-07a"].server == "500 5.5.2 ×5, 421 4.7.0; closed"  # Config.unknown_command_limit 5
    assert got["R-07b"].server == "250 2.0.0 ×120, 421 4.7.0; closed"  # junk 100, then 20 errors
    table = _probe.format_table(results)
    assert table.splitlines()[-1] == f"{len(results)} safe, 0 vulnerable, 0 inconclusive"
    assert doc_verdicts(0) == {r.case: r.verdict for r in results}  # docs/fuzzing.md stays true


def test_naive_any_newline_server_is_vulnerable() -> None:
    naive = NaiveServer("any", starttls=True)
    try:
        results = by_case(_probe.run_probe(*naive.address, starttls=True, timeout=3, settle=SETTLE))
    finally:
        naive.close()
    assert {case: r.verdict for case, r in results.items()} == NAIVE_ANY
    assert "replies to one message" in results["S-01"].reason
    assert "250 queued" in results["S-01"].server
    # It never starts TLS, so T-03 cannot get inside; the cleartext cases tell.
    assert "TLS handshake failed" in results["T-03"].server
    assert results["R-02"].server == "500 what? ×128 after 64 KiB"
    assert doc_verdicts(1) == NAIVE_ANY


def test_naive_lf_server_falls_only_for_the_lf_variants() -> None:
    naive = NaiveServer("lf")
    try:
        results = by_case(_probe.run_probe(*naive.address, timeout=3, settle=SETTLE, only=SMUGGLING + ["S-15"]))
    finally:
        naive.close()
    assert "T-01" not in results
    for case in SMUGGLING:
        expected = "vulnerable" if case in LF_VARIANTS else "safe"
        assert results[case].verdict == expected, results[case]
    assert results["S-15"].verdict == "vulnerable"


#: (flaw of NaiveServer, a case that must call it vulnerable).  The same case
#: against the server without the flaw must not.
FLAWS = [("dotdot", "S-10"), ("eod-needs-crlf", "S-11"), ("bdat-as-data", "S-13"),
         ("partial-on-eof", "F-01"), ("eod-one-read", "F-02"), ("auth-plain", "T-04"),
         ("size", "R-04a"), ("size", "R-04b"), ("size", "R-04d"), ("early-long-line", "R-03")]


@pytest.mark.parametrize(("flaw", "case"), FLAWS)
def test_a_case_tells_its_flaw_apart(flaw: str, case: str) -> None:
    got = {}
    for flaws in (frozenset(), frozenset({flaw})):
        naive = NaiveServer("lf", starttls=True, flaws=flaws)
        try:
            got[bool(flaws)] = _probe.run_probe(*naive.address, starttls=True, timeout=2, settle=SETTLE,
                                                only=[case])[0]
        finally:
            naive.close()
    assert got[True].verdict == "vulnerable", got[True]
    assert got[False].verdict != "vulnerable", got[False]


def test_aiosmtpd_verdicts_are_recorded() -> None:
    # aiosmtpd 1.4.6 (Controller, STARTTLS offered): the verdicts as observed.
    # Why each non-safe one:
    #   S-12  no pipelining synchronization: content sent before the 354 is taken
    #   S-15  commands split at a bare LF (readuntil(b"\n")), so the EHLO runs
    #   P-02  MAIL and RCPT pipelined behind EHLO run (and PIPELINING is not even offered)
    #   T-03  a second STARTTLS inside TLS gets "220 Ready to start TLS" again
    #   R-07b no junk-command limit by default (command_call_limit is opt-in)
    #   S-14/S-17 accepted; the bare LF/CR is kept in the content (asserted below),
    #         which the probe cannot see from outside
    #   C-06  offers SMTPUTF8 and takes a UTF-8 sender without the parameter
    #   R-02  reads 1 MiB of one line without a word
    #   no recipient limit, no address length limits by default
    import aiosmtpd

    with aiosmtpd_server(tls_context=server_tls_context()) as (port, handler):
        start = time.monotonic()
        results = _probe.run_probe("127.0.0.1", port, starttls=True, timeout=5, settle=SETTLE)
        assert time.monotonic() - start < 40
    got = by_case(results)
    assert aiosmtpd.__version__ == "1.4.6", "the verdicts below are 1.4.6's: probe the new version and record"
    assert {case: r.verdict for case, r in got.items()} == AIOSMTPD
    assert got["T-03"].reason == "a second STARTTLS was accepted"
    contents = [m.content for m in handler.messages]
    assert any(b"Testing\n.\r\nNO SMUGGLING" in c for c in contents)  # S-02 stayed content (CVE-2024-27305 fix)
    assert any(b"hello\nworld" in c for c in contents)  # S-14: the bare LF is kept
    assert doc_verdicts(4) == AIOSMTPD


def test_t01_inconclusive_when_starttls_not_offered() -> None:
    naive = NaiveServer("lf", starttls=False)
    try:
        results = by_case(_probe.run_probe(*naive.address, starttls=True, timeout=3, settle=SETTLE,
                                           only=["T-01"]))
    finally:
        naive.close()
    assert list(results) == ["T-01"]
    assert results["T-01"].verdict == "inconclusive"
    assert "does not offer STARTTLS" in results["T-01"].reason


def test_malformed_reply_is_inconclusive() -> None:
    naive = NaiveServer("lf", eod_reply=b"queued, thanks\r\n")
    try:
        results = by_case(_probe.run_probe(*naive.address, timeout=3, settle=SETTLE, only=["S-01", "S-05"]))
    finally:
        naive.close()
    for case in ("S-01", "S-05"):
        assert results[case].verdict == "inconclusive", results[case]
        assert "malformed" in results[case].reason


def test_silent_server_is_inconclusive_within_the_budget() -> None:
    # Accepts connections and never says a word: every case must time out
    # (per-case timeout) and the whole run stop within its budget.
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        start = time.monotonic()
        results = _probe.run_probe(*listener.getsockname()[:2], timeout=0.3, settle=0.05, budget=3.0)
        assert time.monotonic() - start < 4.5
    finally:
        stop.set()
        t.join(5)
        listener.close()
        for s in accepted:
            s.close()
    assert results and all(r.verdict == "inconclusive" for r in results)


def test_flooding_server_is_read_only_so_far() -> None:
    # Greets, then sends an endless multi-line reply: the probe must stop
    # reading (memory bounded) and still finish each case quickly.
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    stop = threading.Event()
    sent = [0]

    def flood() -> None:
        while not stop.is_set():
            try:
                sock = listener.accept()[0]
            except OSError:
                continue
            with sock:
                sock.settimeout(0.5)
                try:
                    sock.sendall(b"220 flood.example\r\n")
                    while not stop.is_set():
                        sent[0] += sock.send(b"250-" + b"x" * 4000 + b"\r\n")
                except OSError:
                    pass

    t = threading.Thread(target=flood, daemon=True)
    t.start()
    try:
        start = time.monotonic()
        results = by_case(_probe.run_probe(*listener.getsockname()[:2], timeout=3, settle=0.1,
                                           only=["P-01", "S-15", "R-01"]))
        assert time.monotonic() - start < 9
    finally:
        stop.set()
        t.join(5)
        listener.close()
    assert sent[0] > 1024 * 1024 * 0.9
    assert results["P-01"].verdict == "inconclusive" and "reading stopped" in results["P-01"].reason
    assert results["S-15"].verdict == "inconclusive" and "reading stopped" in results["S-15"].reason
    # R-01 needs an EHLO reply first: the client state machine refuses the flood.
    assert results["R-01"].verdict == "inconclusive" and "R-10" in results["R-01"].reason


def test_cli_json_and_table(our_server: tuple[str, int], capsys: pytest.CaptureFixture[str]) -> None:
    host, port = our_server
    assert main(["probe", f"{host}:{port}", "--json", "--settle", "0.1", "--case", "S-02", "--case", "R-01"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["target"] == f"{host}:{port}"
    rows = doc["results"]
    assert [r["case"] for r in rows] == ["S-02", "R-01"]
    assert {r["verdict"] for r in rows} == {"safe"}
    assert set(rows[0]) == {"case", "title", "sent", "server", "verdict", "reason"}
    assert main(["probe", f"{host}:{port}", "--settle", "0.1", "--case", "P-01"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"smtpproto probe {host}:{port}"
    assert out[1].split() == ["case", "sent", "server", "did", "verdict", "reason"]
    assert out[3].startswith("P-01 ") and " safe " in out[3]
    assert out[-1] == "1 safe, 0 vulnerable, 0 inconclusive"


def test_cli_unreachable_is_one_line_and_nonzero(capsys: pytest.CaptureFixture[str]) -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    assert main(["probe", f"127.0.0.1:{port}", "--timeout", "2"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot connect to 127.0.0.1" in err


@pytest.mark.parametrize("args", [["127.0.0.1:notaport"], ["127.0.0.1:0"], ["[::1"], [":25"],
                                  ["127.0.0.1:25", "--case", "X-99"], ["127.0.0.1:25", "--timeout", "0"],
                                  ["127.0.0.1:25", "--rcpt-to", "a\r\nb@x"]])
def test_cli_bad_arguments_are_a_usage_error(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["probe", *args])
    assert exc.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_parse_target() -> None:
    assert _probe.parse_target("mx.example:2525") == ("mx.example", 2525)
    assert _probe.parse_target("mx.example") == ("mx.example", 25)
    assert _probe.parse_target("[::1]:25") == ("::1", 25)


def test_escape_shortens_and_escapes() -> None:
    assert _probe.escape(b"a\r\n.\n") == "a\\r\\n.\\n"
    long = _probe.escape(b"x" * 500, 40)
    assert "(500 octets)" in long and len(long) < 60


# --------------------------------------------------------------------------- Postfix (interop tier)

#: Postfix 3.7 (Debian 12's package) with its defaults, probed from loopback
#: (in $mynetworks).  Why each non-safe one:
#:   S-01 S-02 S-03 S-06a  a bare LF ends a line, so <LF>.<LF>, <LF>.<CR><LF>,
#:         <CR><LF>.<LF> and <LF>.<CR> end DATA (CVE-2023-51764; the default
#:         smtpd_forbid_bare_newline = no, and $mynetworks is exempt anyway)
#:   S-12  no smtpd_forbid_unauth_pipelining: content sent before the 354 is used
#:   S-15  an EHLO line ended by a bare LF is taken
#:   P-02  MAIL and RCPT pipelined behind EHLO run
#:   S-14 S-17  accepted; Postfix makes the bare LF a line end (not visible outside)
#:   C-06  offers SMTPUTF8 (smtputf8_enable = yes) and takes a UTF-8 sender without it
#:   R-02  reads 1 MiB of one command line without a word (the 2026 security
#:         updates of 3.8+ stop this; 3.7 discards but keeps reading)
#:   R-03  accepts a 2002-octet text line (line_length_limit 2048 splits longer ones)
#:   R-06  accepts a 65-octet local part and a 257-octet path (only the domain is checked)
POSTFIX_37 = expect("S-01 S-02 S-03 S-06a S-12 S-15 P-02", "S-14 S-17 C-06 R-02 R-03 R-06")
#: The same with smtpd_forbid_bare_newline = yes, no exclusions, and
#: smtpd_forbid_unauth_pipelining = yes: every smuggling, pipelining and
#: bare-LF case turns safe; the inconclusive rows stay (limits and content
#: handling those settings do not touch).
POSTFIX_37_HARDENED = expect("", "S-14 S-17 C-06 R-02 R-03 R-06")


def test_docs_show_the_recorded_postfix_reports() -> None:
    assert doc_verdicts(2) == POSTFIX_37
    assert doc_verdicts(3) == POSTFIX_37_HARDENED


@pytest.mark.interop
def test_probe_against_postfix_default_and_hardened(postfix: tuple[int, object, object]) -> None:
    # Needs Postfix and root (the fixture skips otherwise).
    version = subprocess.run(["postconf", "-d", "-h", "mail_version"], capture_output=True, text=True,
                             timeout=30, env=_SBIN_ENV).stdout.strip()
    if not version.startswith("3.7."):
        pytest.skip(f"the verdicts here are Postfix 3.7's, this is {version!r}: probe it and record them")
    port = postfix[0]
    envelope = {"mail_from": "a@x.example", "rcpt_to": "b@y.example"}
    # Back to Postfix's default size limit (the fixture lifts it for big test
    # messages), so that R-04 has a limit to find.
    _reconfigure(port, ["message_size_limit=10240000"], until=("R-04a", "safe"))
    start = time.monotonic()
    before = by_case(_probe.run_probe("127.0.0.1", port, starttls=True, settle=SETTLE, **envelope))
    assert time.monotonic() - start < 40
    assert {case: r.verdict for case, r in before.items()} == POSTFIX_37, _probe.format_table(list(before.values()))
    assert before["S-01"].server == "250 2.0.0, 250 2.1.0, 250 2.1.5, 354 End, 250 2.0.0"  # a second message
    assert before["R-04d"].server.startswith("552 5.3.4")
    assert before["R-05"].server.startswith("250 2.1.5 ×1000, 452 4.5.3")
    assert "tarpit" in before["R-07a"].reason  # smtpd_error_sleep_time after smtpd_soft_error_limit

    _reconfigure(port, ["smtpd_forbid_bare_newline=yes", "smtpd_forbid_bare_newline_exclusions=",
                        "smtpd_forbid_unauth_pipelining=yes"], until=("S-15", "safe"))
    after = by_case(_probe.run_probe("127.0.0.1", port, starttls=True, settle=SETTLE, **envelope))
    assert {case: r.verdict for case, r in after.items()} == POSTFIX_37_HARDENED, \
        _probe.format_table(list(after.values()))
    for case in ("S-12", "S-15", "P-02"):
        assert "554 5.5.0" in after[case].server, after[case]  # "SMTP protocol synchronization"


_SBIN_ENV = {**os.environ, "PATH": os.environ.get("PATH", "") + ":/usr/sbin:/sbin"}


def _reconfigure(port: int, settings: list[str], until: tuple[str, str]) -> None:
    """``postconf -e`` each setting, reload, and wait until new sessions show
    it (case ``until[0]`` gets verdict ``until[1]``): smtpd processes started
    before the reload keep the old settings."""
    etc = _postfix_etc(port)
    for setting in settings:
        subprocess.run(["postconf", "-c", etc, "-e", setting], check=True, timeout=30, env=_SBIN_ENV)
    subprocess.run(["postfix", "-c", etc, "reload"], check=True, timeout=30, capture_output=True, env=_SBIN_ENV)
    case, verdict = until
    deadline = time.monotonic() + 15
    while True:
        got = _probe.run_probe("127.0.0.1", port, settle=SETTLE, only=[case], mail_from="a@x.example",
                               rcpt_to="b@y.example")[0]
        if got.verdict == verdict:
            return
        assert time.monotonic() < deadline, f"Postfix did not take {settings}: {got}"
        time.sleep(0.5)


def _postfix_etc(port: int) -> str:
    """The configuration directory of the private instance listening on ``port``."""
    import glob

    for main_cf in glob.glob("/tmp/smtpproto-postfix-*/etc/master.cf"):
        if f"127.0.0.1:{port}" in Path(main_cf).read_text():
            return str(Path(main_cf).parent)
    raise AssertionError("cannot find the Postfix instance's configuration")
