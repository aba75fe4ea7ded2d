"""Helpers for the server adapter tests: run any backend in a background thread,
talk raw SMTP over a loopback socket, a recording handler.  (No tests here.)"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import threading
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from smtpproto import Config, Reply
from smtpproto.adapters import Envelope, Handler, ServerSettings, Session

DATA = Path(__file__).resolve().parent.parent / "data"
CERT = DATA / "server-cert.pem"
KEY = DATA / "server-key.pem"
try:
    import trio as _trio  # noqa: F401

    _NO_TRIO = ""
except ImportError:
    _NO_TRIO = 'trio is not installed (pip install "smtpproto[trio]")'

BACKENDS = ["threads", "asyncio",
            pytest.param("trio", marks=pytest.mark.skipif(bool(_NO_TRIO), reason=_NO_TRIO or "-"))]
#: Every blocking wait in these tests is bounded by this (seconds).
WAIT = 10.0


def server_tls_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(CERT), str(KEY))
    return ctx


def client_tls_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(CERT))
    return ctx


def fast_settings(**config: Any) -> ServerSettings:
    return ServerSettings(config=Config(**config), hostname="mx.test", error_delay=0)


class Recorder(Handler):
    """Keeps every envelope and every hook call."""

    parse_message = True

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.events: list[str] = []
        self.sessions: list[Session] = []
        self.delivered = threading.Event()
        self.disconnected = threading.Event()
        self.lock = threading.Lock()

    def on_connect(self, session: Session) -> None:
        with self.lock:
            self.sessions.append(session)
            self.events.append("connect")
        return None

    def on_message(self, session: Session, envelope: Envelope) -> Any:
        with self.lock:
            self.envelopes.append(envelope)
            self.events.append("message")
        self.delivered.set()
        return None

    def on_message_aborted(self, session: Session, envelope: Envelope, reason: str) -> None:
        with self.lock:
            self.events.append(f"aborted:{reason}")

    def on_disconnect(self, session: Session) -> None:
        with self.lock:
            self.events.append("disconnect")
        self.disconnected.set()


class AuthRecorder(Recorder):
    auth_mechanisms = ("PLAIN", "LOGIN")

    def verify_password(self, session: Session, username: str, password: str, authzid: str | None) -> bool:
        return username == "user" and password == "secret"


class RunningServer:
    """A server of one backend serving in a background thread."""

    def __init__(self, backend: str, handler: Handler, **kwargs: Any) -> None:
        kwargs.setdefault("port", 0)
        kwargs.setdefault("settings", fast_settings())
        kwargs.setdefault("shutdown_grace", 2.0)
        self.backend = backend
        self.handler = handler
        self.kwargs = kwargs
        self.address: Any = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stop: Callable[[float | None], None] | None = None
        self._thread: threading.Thread | None = None
        self.server: Any = None

    @property
    def port(self) -> int:
        return int(self.address[1])

    def __enter__(self) -> "RunningServer":
        if self.backend == "threads":
            from smtpproto.adapters.sockets import SMTPServer

            self.server = SMTPServer(self.handler, **self.kwargs)
            self.server.start()
            self.address = self.server.address
            self._stop = lambda t: self.server.shutdown(t)
            return self
        target = self._run_asyncio if self.backend == "asyncio" else self._run_trio
        self._thread = threading.Thread(target=target, daemon=True)
        self._thread.start()
        if not self._ready.wait(WAIT):
            raise RuntimeError("server did not start")
        if self._error is not None:
            raise self._error
        return self

    def _run_asyncio(self) -> None:
        from smtpproto.adapters.asyncio import AsyncSMTPServer

        async def main() -> None:
            try:
                self.server = AsyncSMTPServer(self.handler, **self.kwargs)
                await self.server.start()
            except BaseException as exc:
                self._error = exc
                self._ready.set()
                return
            loop = asyncio.get_running_loop()
            stop = asyncio.Event()
            grace: list[float | None] = [None]

            def request(t: float | None) -> None:
                grace[0] = t
                loop.call_soon_threadsafe(stop.set)

            self._stop = request
            self.address = self.server.address
            self._ready.set()
            await stop.wait()
            await self.server.shutdown(grace[0])

        asyncio.run(main())

    def _run_trio(self) -> None:
        import trio

        from smtpproto.adapters.trio import TrioSMTPServer

        async def main() -> None:
            try:
                self.server = TrioSMTPServer(self.handler, **self.kwargs)
                async with trio.open_nursery() as nursery:
                    self.address = await nursery.start(self.server.serve)
                    token = trio.lowlevel.current_trio_token()

                    def request(t: float | None) -> None:
                        trio.from_thread.run(self.server.shutdown, t, trio_token=token)

                    self._stop = request
                    self._ready.set()
            except BaseException as exc:
                # trio >= 0.25 wraps what a nursery's task raised in an
                # ExceptionGroup: report the error itself, as the other backends do.
                while isinstance(getattr(exc, "exceptions", None), tuple) and len(exc.exceptions) == 1:  # type: ignore[attr-defined]
                    exc = exc.exceptions[0]  # type: ignore[attr-defined]
                self._error = exc
                self._ready.set()

        trio.run(main)

    def stop(self, grace: float | None = None) -> float:
        """Shut down; returns how long it took."""
        t0 = time.monotonic()
        if self._stop is not None:
            stop, self._stop = self._stop, None
            if self.backend == "threads":
                stop(grace)
            else:
                stop(grace)
                assert self._thread is not None
                self._thread.join(WAIT)
                assert not self._thread.is_alive(), "server thread did not finish"
        return time.monotonic() - t0

    def __exit__(self, *exc: object) -> None:
        self.stop()


class RawClient:
    """A line-oriented SMTP client on a plain (or TLS) socket, for exact bytes."""

    def __init__(self, address: Any, *, unix: bool = False, timeout: float = WAIT) -> None:
        if unix:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(address)
        else:
            self.sock = socket.create_connection(address, timeout=timeout)
        self.buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def reply(self) -> tuple[int, list[str]]:
        """Read one (possibly multi-line) reply."""
        lines: list[str] = []
        while True:
            line = self.line()
            if line is None:
                raise ConnectionError(f"closed after {lines!r}")
            lines.append(line)
            if len(line) < 4 or line[3] == " ":
                return int(line[:3]), lines

    def line(self) -> str | None:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def command(self, data: bytes) -> tuple[int, list[str]]:
        self.send(data)
        return self.reply()

    def closed(self) -> bool:
        """True once the server closed (EOF), reading anything left first."""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def starttls(self, ctx: ssl.SSLContext, server_hostname: str = "localhost") -> None:
        self.sock = ctx.wrap_socket(self.sock, server_hostname=server_hostname)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "RawClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def hello(client: RawClient, verb: bytes = b"EHLO") -> list[str]:
    code, lines = client.reply()
    assert code == 220, lines
    code, lines = client.command(verb + b" client.test\r\n")
    assert code == 250, lines
    return lines


def reply(code: int, enhanced: str | None, text: str) -> Reply:
    return Reply(code=code, lines=(text,), enhanced_status=enhanced)


def unix_path(tmp_path: Path) -> str:
    # AF_UNIX paths are short (108 bytes); pytest's tmp_path may be long.
    path = str(tmp_path / "s.sock")
    if len(path) > 100:
        import tempfile

        path = os.path.join(tempfile.mkdtemp(prefix="smtpp"), "s.sock")
    return path
