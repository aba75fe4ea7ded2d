"""``python -m smtpproto probe``: the verdicts discriminate.

Against our own threads server every case must be "safe"; against a naive
server written here (it splits lines on LF, or on any of CR/LF, reads at most
512 octets per line, ends DATA at a line ".", has no pipelining check and
keeps talking in cleartext after STARTTLS) the smuggling cases must be
"vulnerable".  Loopback only; every wait is bounded.
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
from typing import Iterator

import pytest

from smtpproto import _probe
from smtpproto.__main__ import main
from smtpproto.adapters import Handler
from smtpproto.adapters.sockets import SMTPServer

DATA = Path(__file__).parent / "data"
SMUGGLING = ["S-01", "S-02", "S-03", "S-04", "S-05", "S-06a", "S-06b", "S-07"]
LF_VARIANTS = ["S-01", "S-02", "S-03", "S-06a"]  # the ones a bare-LF line splitter falls for
SETTLE = 0.15


class NaiveServer:
    """A deliberately broken SMTP server on 127.0.0.1 (one thread per client).

    ``newline="lf"``: a line ends at LF (a CR before it is stripped), like a
    ``readline()`` loop; ``"any"``: it also ends at a lone CR, like
    ``str.splitlines()``.  Lines are read 512 octets at most, so the tail of a
    longer line becomes the next "line".
    """

    def __init__(self, newline: str = "lf", starttls: bool = False, eod_reply: bytes = b"250 queued\r\n") -> None:
        self.newline = newline
        self.eod_reply = eod_reply
        self.starttls = starttls
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

    def _lines(self, sock: socket.socket) -> Iterator[bytes]:
        buf = b""
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
            if 0 <= end <= 512:
                line, buf = buf[:end].rstrip(b"\r"), buf[cut:]
                yield line
                continue
            if len(buf) >= 512:
                line, buf = buf[:512], buf[512:]
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
            buf += data

    def _session(self, sock: socket.socket) -> None:
        sock.settimeout(0.2)
        with sock:
            try:
                sock.sendall(b"220 naive.example ESMTP\r\n")
                in_data = False
                for line in self._lines(sock):
                    if in_data:
                        if line == b".":
                            in_data = False
                            self.messages += 1
                            sock.sendall(self.eod_reply)
                        continue
                    verb = line.split(b" ", 1)[0].upper()
                    if verb == b"EHLO":
                        tls = b"250-STARTTLS\r\n" if self.starttls else b""
                        sock.sendall(b"250-naive.example\r\n250-PIPELINING\r\n" + tls + b"250 8BITMIME\r\n")
                    elif verb in (b"HELO", b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                        sock.sendall(b"250 ok\r\n")
                    elif verb == b"DATA":
                        in_data = True
                        sock.sendall(b"354 go ahead\r\n")
                    elif verb == b"STARTTLS":
                        sock.sendall(b"220 ready\r\n")  # ...and never starts TLS
                    elif verb == b"QUIT":
                        sock.sendall(b"221 bye\r\n")
                        return
                    else:
                        sock.sendall(b"500 what?\r\n")
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
        if words and (words[0][:2] in ("S-", "T-", "R-", "P-")):
            out[words[0]] = next(w for w in words if w in ("safe", "vulnerable", "inconclusive"))
    return out


@pytest.fixture(scope="module")
def our_server() -> Iterator[tuple[str, int]]:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(DATA / "server-cert.pem", DATA / "server-key.pem")
    with SMTPServer(Handler(), host="127.0.0.1", port=0, ssl_context=ctx) as server:
        host, port = server.address  # type: ignore[misc]
        yield host, port


def test_our_server_is_safe_in_every_case(our_server: tuple[str, int]) -> None:
    start = time.monotonic()
    results = _probe.run_probe(*our_server, starttls=True, timeout=5, settle=SETTLE)
    assert time.monotonic() - start < 20
    got = by_case(results)
    assert list(got) == SMUGGLING + ["S-12", "T-01", "S-15", "R-01", "P-01"]
    for r in results:
        assert r.verdict == "safe", r
    assert "550 5.5.2" in got["S-01"].server
    assert "554 5.5.0" in got["T-01"].server
    table = _probe.format_table(results)
    assert table.splitlines()[-1] == f"{len(results)} safe, 0 vulnerable, 0 inconclusive"
    assert doc_verdicts(0) == {r.case: r.verdict for r in results}  # docs/fuzzing.md stays true


def test_naive_any_newline_server_is_vulnerable() -> None:
    naive = NaiveServer("any", starttls=True)
    try:
        results = by_case(_probe.run_probe(*naive.address, starttls=True, timeout=3, settle=SETTLE))
    finally:
        naive.close()
    for case in SMUGGLING + ["S-12", "T-01", "S-15", "R-01"]:
        assert results[case].verdict == "vulnerable", results[case]
    # Greeting first, then the early EHLO: the most a greeting-at-once server can do.
    assert results["P-01"].verdict == "safe"
    assert "replies to one message" in results["S-01"].reason
    assert "250 queued" in results["S-01"].server
    assert doc_verdicts(1) == {case: r.verdict for case, r in results.items()}


def test_naive_lf_server_falls_only_for_the_lf_variants() -> None:
    naive = NaiveServer("lf")
    try:
        results = by_case(_probe.run_probe(*naive.address, timeout=3, settle=SETTLE))
    finally:
        naive.close()
    assert "T-01" not in results
    for case in SMUGGLING:
        expected = "vulnerable" if case in LF_VARIANTS else "safe"
        assert results[case].verdict == expected, results[case]
    assert results["S-15"].verdict == "vulnerable"


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

sys.path.insert(0, str(Path(__file__).parent / "adapters"))
from test_client_postfix import postfix  # noqa: E402,F401  (the private Postfix instance fixture)


@pytest.mark.interop
def test_probe_sees_what_postfix_hardening_changes(postfix: tuple[int, object, object]) -> None:
    # Needs Postfix and root (the fixture skips otherwise).  Defaults of the
    # packaged Postfix: bare LF ends lines, so <LF>.<LF> smuggling works (CVE-
    # 2023-51764) and pipelined content before the 354 is used; then hardened.
    port = postfix[0]
    envelope = {"mail_from": "a@x.example", "rcpt_to": "b@y.example"}
    cases = ["S-01", "S-12", "S-15", "T-01"]
    before = by_case(_probe.run_probe("127.0.0.1", port, starttls=True, settle=SETTLE, only=cases, **envelope))
    assert before["T-01"].verdict == "safe", before["T-01"]
    if all(r.verdict == "safe" for r in before.values()):
        pytest.skip("this Postfix is hardened by default (>= 3.9): nothing to tell apart")
    assert before["S-01"].verdict == "vulnerable", before["S-01"]
    etc = _postfix_etc(port)
    for setting in ("smtpd_forbid_bare_newline=yes", "smtpd_forbid_bare_newline_exclusions=",
                    "smtpd_forbid_unauth_pipelining=yes"):
        subprocess.run(["postconf", "-c", etc, "-e", setting], check=True, timeout=30,
                       env={**os.environ, "PATH": os.environ.get("PATH", "") + ":/usr/sbin:/sbin"})
    subprocess.run(["postfix", "-c", etc, "reload"], check=True, timeout=30, capture_output=True,
                   env={**os.environ, "PATH": os.environ.get("PATH", "") + ":/usr/sbin:/sbin"})
    deadline = time.monotonic() + 10
    while True:  # the reload takes effect for new smtpd processes
        after = by_case(_probe.run_probe("127.0.0.1", port, starttls=True, settle=SETTLE, only=cases, **envelope))
        if all(r.verdict == "safe" for r in after.values()) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    for r in after.values():
        assert r.verdict == "safe", r


def _postfix_etc(port: int) -> str:
    """The configuration directory of the private instance listening on ``port``."""
    import glob

    for main_cf in glob.glob("/tmp/smtpproto-postfix-*/etc/master.cf"):
        if f"127.0.0.1:{port}" in Path(main_cf).read_text():
            return str(Path(main_cf).parent)
    raise AssertionError("cannot find the Postfix instance's configuration")
