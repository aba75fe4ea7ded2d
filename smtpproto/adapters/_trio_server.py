"""trio SMTP/LMTP server (``trio.SSLStream`` for TLS).

Only I/O lives here; decisions are :class:`~._server_flow.ServerSession`'s.
This module imports trio; import it through :mod:`smtpproto.adapters.trio`.
"""

from __future__ import annotations

import inspect
import logging
import socket
from typing import Generator

import trio  # type: ignore[import-untyped, import-not-found, unused-ignore]

from ._facades import ServerBase, clear_unix_path, remove_unix_path, unix_path_identity
from ._handler import Handler
from ._server_flow import (
    SHUTDOWN,
    TIMEOUT,
    Action,
    Call,
    HookFailed,
    Read,
    ServerSession,
    Sleep,
    UpgradeTLS,
    Write,
    busy_flow,
)

__all__ = ["TrioSMTPServer"]

log = logging.getLogger("smtpproto.server")


class TrioSMTPServer(ServerBase):
    """A trio SMTP (or LMTP) server.

    Parameters as :class:`smtpproto.adapters.sockets.SMTPServer`.  Run it with
    ``await nursery.start(server.serve)`` (which returns the address once it
    listens) and stop it with :meth:`shutdown`.  Handler hooks may be plain
    methods or ``async def``.
    """

    def _setup(self) -> None:
        self._address: tuple[str, int] | str | None = None
        self._accept_scope: trio.CancelScope | None = None
        self._sessions: set[_TrioSession] = set()
        self._stopping = False
        self._shutdown_requested = False
        self._stopped = trio.Event()
        # The grace of the shutdown in progress (shutdown()'s timeout, else
        # shutdown_grace): kept apart so that one call does not change the next.
        self._grace: float | None = None

    @property
    def address(self) -> tuple[str, int] | str:
        if self._address is None:
            raise RuntimeError("the server is not started")
        return self._address

    @property
    def active_sessions(self) -> int:
        return len(self._sessions)

    @property
    def _grace_now(self) -> float:
        """Seconds busy sessions get once a shutdown has begun."""
        return self.shutdown_grace if self._grace is None else self._grace

    async def _listeners(self) -> list[trio.SocketListener]:
        if self.unix_path is not None:
            clear_unix_path(self.unix_path)
            sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                await sock.bind(self.unix_path)
            except BaseException:
                sock.close()
                raise
            self._unix_identity = unix_path_identity(self.unix_path)
            sock.listen(128)
            self._address = self.unix_path
            return [trio.SocketListener(sock)]
        listeners = await trio.open_tcp_listeners(self.port, host=self.host)
        host, port = listeners[0].socket.getsockname()[:2]
        self._address = (host, port)
        return list(listeners)

    async def serve(self, *, task_status: trio.TaskStatus[tuple[str, int] | str] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen and serve until :meth:`shutdown`; ``task_status.started``
        reports the address."""
        listeners = await self._listeners()
        try:
            async with trio.open_nursery() as sessions:
                with trio.CancelScope() as accept:
                    self._accept_scope = accept
                    task_status.started(self.address)
                    if self._shutdown_requested:
                        accept.cancel()
                    await trio.serve_listeners(self._handle, listeners, handler_nursery=sessions)
                # Shutting down: idle sessions were told; give busy ones the grace.
                sessions.cancel_scope.deadline = trio.current_time() + self._grace_now
        finally:
            for listener in listeners:
                await listener.aclose()
            if self.unix_path is not None:
                remove_unix_path(self.unix_path, self._unix_identity)
            self._stopped.set()

    async def shutdown(self, timeout: float | None = None) -> None:
        """Stop accepting; idle sessions get ``421 4.3.2`` and close; busy ones
        get ``timeout`` (default ``shutdown_grace``) seconds.  Returns when
        :meth:`serve` has finished."""
        self._grace = timeout
        self._stopping = True
        self._shutdown_requested = True
        for session in list(self._sessions):
            session.wake_for_shutdown()
        if self._accept_scope is not None:
            self._accept_scope.cancel()
            await self._stopped.wait()

    async def _handle(self, stream: trio.SocketStream) -> None:
        if self._stopping or len(self._sessions) >= self.max_connections:
            if not self.implicit_tls:
                with trio.move_on_after(2.0):
                    try:
                        await stream.send_all(_writes_of(busy_flow(self.settings)))
                    except (trio.BrokenResourceError, trio.ClosedResourceError):
                        pass
            await stream.aclose()
            return
        session = _TrioSession(self, stream)
        self._sessions.add(session)
        try:
            await session.run()
        finally:
            self._sessions.discard(session)


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


class _TrioSession:
    def __init__(self, server: TrioSMTPServer, stream: trio.SocketStream) -> None:
        self.server = server
        self.raw = stream
        self.stream: trio.abc.Stream = stream
        self.read_scope: trio.CancelScope | None = None

    def wake_for_shutdown(self) -> None:
        if self.read_scope is not None:
            self.read_scope.cancel()

    async def run(self) -> None:
        server = self.server
        session: ServerSession | None = None
        try:
            peer: object = None
            try:
                peer = self.raw.socket.getpeername()
            except OSError:
                pass
            if server.unix_path is not None:
                peer = peer or None
            tls = False
            if server.implicit_tls:
                assert server.ssl_context is not None
                if not await self._handshake():
                    return
                tls = True
            session = ServerSession(
                server.handler, server.settings, peer=peer, tls_active=tls,
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
                    result = await self._handshake()
                elif isinstance(action, Sleep):
                    await trio.sleep(action.seconds)
                    result = None
                else:
                    raise RuntimeError(f"unknown action {action!r}")
        except Exception:
            log.exception("session failed")
        finally:
            with trio.CancelScope(shield=True):
                with trio.move_on_after(1.0):
                    try:
                        await self.stream.aclose()
                    except (trio.BrokenResourceError, trio.ClosedResourceError):
                        pass
                if session is not None:
                    # Cancelled mid-session (shutdown grace over): owed hooks still run.
                    with trio.move_on_after(server._grace_now + 1.0):
                        for call in session.cleanup_calls():
                            await self._call(call)

    async def _read(self, action: Read) -> object:
        if self.server._stopping:
            return SHUTDOWN
        with trio.CancelScope() as scope:
            self.read_scope = scope
            if action.timeout is not None:
                scope.deadline = trio.current_time() + action.timeout
            try:
                return await self.stream.receive_some(action.size)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return b""
            finally:
                self.read_scope = None
        return SHUTDOWN if self.server._stopping else TIMEOUT

    async def _write(self, data: bytes) -> bool:
        with trio.move_on_after(self.server.settings.config.timeout_server):
            try:
                await self.stream.send_all(data)
                return True
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return False
        return False

    async def _call(self, action: Call) -> object:
        try:
            result = getattr(self.server.handler, action.hook)(*action.args)
            if inspect.isawaitable(result):
                result = await result
            return result
        except Exception as exc:
            return HookFailed(exc)

    async def _handshake(self) -> bool:
        ctx = self.server.ssl_context
        if ctx is None:
            return False
        ssl_stream = trio.SSLStream(self.stream, ctx, server_side=True)
        with trio.move_on_after(self.server.tls_handshake_timeout):
            try:
                await ssl_stream.do_handshake()
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                log.info("TLS handshake failed: %s", exc)
                return False
            self.stream = ssl_stream
            return True
        return False
