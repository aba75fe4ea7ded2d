"""asyncio SMTP/LMTP server.

Built on the public transport/protocol API (``loop.create_server``,
``loop.start_tls``) rather than ``StreamReader``: a ``StreamReader`` may hold
bytes that arrived after ``STARTTLS`` and has no public way to show them, so
they would be read *as if they came over TLS* (SECURITY-CASES T-01/T-02).  Here
every received byte sits in our own buffer, and whatever is there at the
hand-over goes to the core, which refuses it.  Only I/O lives here; decisions
are :class:`~._server_flow.ServerSession`'s.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import ssl
from typing import Generator

from ._facades import ServerBase
from ._handler import Handler
from ._server_flow import (
    SHUTDOWN,
    TIMEOUT,
    Action,
    Call,
    HookFailed,
    PlaintextPending,
    Read,
    ServerSession,
    Sleep,
    UpgradeTLS,
    Write,
    busy_flow,
)

__all__ = ["AsyncSMTPServer"]

log = logging.getLogger("smtpproto.server")

_HIGH_WATER = 256 * 1024
_LOW_WATER = 64 * 1024


def _writes_of(flow: Generator[Action, object, None]) -> bytes:
    out: list[bytes] = []
    result: object = None
    while True:
        try:
            action = flow.send(result)
        except StopIteration:
            return b"".join(out)
        if not isinstance(action, Write):
            raise RuntimeError(f"unexpected action {action!r}")
        out.append(action.data)
        result = True


class AsyncSMTPServer(ServerBase):
    """An asyncio SMTP (or LMTP) server.

    Parameters as :class:`smtpproto.adapters.sockets.SMTPServer`.  Handler hooks
    may be plain methods or coroutines.  Use ``async with`` or
    :meth:`start` / :meth:`shutdown`; :meth:`serve_forever` blocks until
    :meth:`shutdown`.
    """

    def _setup(self) -> None:
        self._server: asyncio.Server | None = None
        self._sessions: set[_SessionProtocol] = set()
        self._stopping = False
        self._stopped: asyncio.Event | None = None

    @property
    def address(self) -> tuple[str, int] | str:
        """Where the server listens: ``(host, port)`` or the UNIX socket path."""
        if self._server is None:
            raise RuntimeError("the server is not started")
        if self.unix_path is not None:
            return self.unix_path
        host, port = self._server.sockets[0].getsockname()[:2]
        return host, port

    @property
    def active_sessions(self) -> int:
        return len(self._sessions)

    async def start(self) -> None:
        """Bind and start accepting connections."""
        if self._server is not None:
            raise RuntimeError("already started")
        loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        tls = self.ssl_context if self.implicit_tls else None
        hs = self.tls_handshake_timeout if tls is not None else None
        if self.unix_path is not None:
            if os.path.exists(self.unix_path):
                os.unlink(self.unix_path)
            self._server = await loop.create_unix_server(
                lambda: _SessionProtocol(self), self.unix_path, ssl=tls, ssl_handshake_timeout=hs)
        else:
            self._server = await loop.create_server(
                lambda: _SessionProtocol(self), self.host, self.port, ssl=tls,
                ssl_handshake_timeout=hs, reuse_address=True)

    async def serve_forever(self) -> None:
        """Start (if needed) and wait until :meth:`shutdown` has finished."""
        if self._server is None:
            await self.start()
        assert self._stopped is not None
        await self._stopped.wait()

    async def shutdown(self, timeout: float | None = None) -> None:
        """Stop accepting; idle sessions get ``421 4.3.2`` and close; wait up to
        ``timeout`` (default ``shutdown_grace``) for busy ones, then cut them."""
        grace = self.shutdown_grace if timeout is None else timeout
        self._stopping = True
        if self._server is not None:
            self._server.close()
        for proto in list(self._sessions):
            proto.wake(SHUTDOWN)
        tasks = [p.task for p in self._sessions if p.task is not None]
        if tasks:
            done, pending = await asyncio.wait(tasks, timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        for proto in list(self._sessions):
            proto.abort()
        if self._server is not None:
            try:
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            except asyncio.TimeoutError:
                pass
        if self.unix_path is not None and os.path.exists(self.unix_path):
            try:
                os.unlink(self.unix_path)
            except OSError:
                pass
        if self._stopped is not None:
            self._stopped.set()

    async def __aenter__(self) -> AsyncSMTPServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown()


class _SessionProtocol(asyncio.Protocol):
    """One connection: buffers input, performs the session's actions."""

    def __init__(self, server: AsyncSMTPServer) -> None:
        self.server = server
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.eof = False
        self.lost = False
        self.reading_paused = False
        self.writing_paused = False
        self.waiter: asyncio.Future[object] | None = None
        self.drain_waiter: asyncio.Future[None] | None = None
        self.task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        server = self.server
        if server._stopping or len(server._sessions) >= server.max_connections:
            transport.write(_writes_of(busy_flow(server.settings)))
            transport.close()
            return
        server._sessions.add(self)
        self.task = self.loop.create_task(self._main())

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if len(self.buf) > _HIGH_WATER and not self.reading_paused and self.transport is not None:
            self.transport.pause_reading()
            self.reading_paused = True
        self.wake(True)

    def eof_received(self) -> bool:
        self.eof = True
        self.wake(True)
        # Keep the write side open (the session closes it) -- except over TLS,
        # where asyncio closes anyway and warns when asked not to.
        return self.transport is not None and self.transport.get_extra_info("ssl_object") is None

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.eof = True
        self.wake(True)
        if self.drain_waiter is not None and not self.drain_waiter.done():
            self.drain_waiter.set_result(None)

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        if self.drain_waiter is not None and not self.drain_waiter.done():
            self.drain_waiter.set_result(None)

    def wake(self, value: object) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(value)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # ------------------------------------------------------------ session

    async def _main(self) -> None:
        transport = self.transport
        assert transport is not None
        server = self.server
        session: ServerSession | None = None
        try:
            peer = transport.get_extra_info("peername")
            session = ServerSession(
                server.handler, server.settings, peer=peer or None,
                tls_active=server.implicit_tls,
                starttls=server.ssl_context is not None and not server.implicit_tls,
            )
            flow = session.run()
            result: object = None
            while True:
                try:
                    action = flow.send(result)
                except StopIteration:
                    break
                if isinstance(action, Read):
                    result = await self._read(action)
                elif isinstance(action, Write):
                    result = await self._write(action.data)
                elif isinstance(action, Call):
                    result = await self._call(action)
                elif isinstance(action, UpgradeTLS):
                    result = await self._upgrade()
                elif isinstance(action, Sleep):
                    await asyncio.sleep(action.seconds)
                    result = None
                else:
                    raise RuntimeError(f"unknown action {action!r}")
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("session with %s failed", transport.get_extra_info("peername"))
        finally:
            server._sessions.discard(self)
            if self.transport is not None:
                self.transport.close()
            if session is not None:
                # Cancelled mid-session (shutdown grace over): owed hooks still run.
                for call in session.cleanup_calls():
                    await self._call(call)

    async def _read(self, action: Read) -> object:
        if self.server._stopping:
            return SHUTDOWN
        if not self.buf and not self.eof:
            waiter = self.waiter = self.loop.create_future()
            timer = None
            if action.timeout is not None:
                timer = self.loop.call_later(action.timeout, self.wake, TIMEOUT)
            try:
                outcome = await waiter
            finally:
                self.waiter = None
                if timer is not None:
                    timer.cancel()
            if outcome is TIMEOUT or outcome is SHUTDOWN:
                return outcome
        if self.buf:
            n = min(len(self.buf), action.size)
            data = bytes(self.buf[:n])
            del self.buf[:n]
            if self.reading_paused and len(self.buf) < _LOW_WATER and self.transport is not None:
                self.reading_paused = False
                self.transport.resume_reading()
            return data
        return b""

    async def _write(self, data: bytes) -> bool:
        transport = self.transport
        if self.lost or transport is None or transport.is_closing():
            return False
        transport.write(data)
        if self.writing_paused:
            self.drain_waiter = self.loop.create_future()
            try:
                await asyncio.wait_for(self.drain_waiter, self.server.settings.config.timeout_server)
            except asyncio.TimeoutError:
                return False
            finally:
                self.drain_waiter = None
        return not self.lost

    async def _call(self, action: Call) -> object:
        try:
            result = getattr(self.server.handler, action.hook)(*action.args)
            if inspect.isawaitable(result):
                result = await result
            return result
        except Exception as exc:
            return HookFailed(exc)

    async def _upgrade(self) -> object:
        ctx = self.server.ssl_context
        transport = self.transport
        if ctx is None or transport is None or self.lost:
            return False
        if self.buf:
            # Cleartext that came after STARTTLS: the core must see it.
            data = bytes(self.buf)
            self.buf.clear()
            return PlaintextPending(data)
        if self.reading_paused:
            self.reading_paused = False
            transport.resume_reading()
        try:
            new = await self.loop.start_tls(
                transport, self, ctx, server_side=True,
                ssl_handshake_timeout=self.server.tls_handshake_timeout)
        except (OSError, ssl.SSLError, ConnectionError, asyncio.TimeoutError) as exc:
            log.info("TLS handshake failed: %s", exc)
            return False
        if new is None:
            return False
        assert isinstance(new, asyncio.Transport)
        self.transport = new
        return True
