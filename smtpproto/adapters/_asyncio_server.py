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
import ssl
from typing import Awaitable, Coroutine, Generator

from .._events import Reply
from ._facades import ServerBase, clear_unix_path, remove_unix_path, unix_path_identity
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
        self._loop: asyncio.AbstractEventLoop | None = None
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
        loop = self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        # Implicit TLS is started by each connection (loop.start_tls), not by
        # create_server(ssl=...): asyncio would report the connection only after
        # its handshake, uncounted by max_connections until then.
        if self.unix_path is not None:
            clear_unix_path(self.unix_path)
            self._server = await loop.create_unix_server(lambda: _SessionProtocol(self), self.unix_path)
            self._unix_identity = unix_path_identity(self.unix_path)
        else:
            self._server = await loop.create_server(
                lambda: _SessionProtocol(self), self.host, self.port, reuse_address=True)

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
        waiting = [p.done for p in self._sessions if not p.done.done()]
        if waiting:
            await asyncio.wait(waiting, timeout=grace)
            late = [p for p in self._sessions if not p.done.done()]
            if late:
                await asyncio.gather(*(p.abandon() for p in late), return_exceptions=True)
        for proto in list(self._sessions):
            proto.abort()
        if self._server is not None:
            try:
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            except asyncio.TimeoutError:
                pass
        if self.unix_path is not None:
            remove_unix_path(self.unix_path, self._unix_identity)
        if self._stopped is not None:
            self._stopped.set()

    async def __aenter__(self) -> AsyncSMTPServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown()


class _SessionProtocol(asyncio.Protocol):
    """One connection: buffers input and performs the session's actions.

    The session runs from the protocol callbacks, not in a task per
    connection: :meth:`_step` drives the flow until it must wait (for input,
    for the transport to drain, for a hook's awaitable, a TLS handshake or a
    delay) and returns; the callback that ends the wait resumes it.  A
    request/reply round trip therefore costs one event-loop turn instead of
    waking a task through a future, and a hook that returns a plain value
    (as the ready-made handlers do) needs no task at all.  Per-request
    deadlines use one timer per connection, moved only when a deadline comes
    earlier than the armed one (a late timer checks and re-arms).
    """

    def __init__(self, server: AsyncSMTPServer) -> None:
        self.server = server
        # The server's loop: asyncio.get_running_loop() makes a getpid() system
        # call on Python 3.11, once per connection.
        self.loop = server._loop or asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.eof = False
        self.lost = False
        self.reading_paused = False
        self.writing_paused = False
        self.session: ServerSession | None = None
        self.flow: Generator[Action, object, None] | None = None
        #: What the flow waits for: None (running or ended), "read", "drain",
        #: "task" (a hook's awaitable, STARTTLS) or "sleep".
        self.waiting: str | None = None
        self.read_size = 0
        self.read_deadline: float | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.drain_timer: asyncio.TimerHandle | None = None
        self.task: asyncio.Task[None] | None = None
        self.done: asyncio.Future[None] = self.loop.create_future()

    # ------------------------------------------------------------ protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        server = self.server
        if server._stopping or len(server._sessions) >= server.max_connections:
            if not server.implicit_tls:  # a cleartext 421 would mean nothing to a TLS client
                transport.write(_writes_of(busy_flow(server.settings)))
            transport.close()
            self.done.set_result(None)
            return
        server._sessions.add(self)
        if server.implicit_tls:
            # RFC 8314: TLS from the first byte.  The task pauses reading in its
            # first step, which runs before any read: pausing here would be
            # undone on Python 3.10, whose transport registers its reader after
            # connection_made even when paused, and the ClientHello then reached
            # the TLS protocol before its connection_made, which dropped it.
            self.task = self.loop.create_task(self._implicit_tls())
            return
        self._begin()

    def _begin(self) -> None:
        """The session starts: the greeting (or the hook's refusal) goes out."""
        server = self.server
        transport = self.transport
        assert transport is not None
        try:
            self.session = ServerSession(
                server.handler, server.settings, peer=transport.get_extra_info("peername") or None,
                tls_active=server.implicit_tls,
                starttls=server.ssl_context is not None and not server.implicit_tls,
            )
        except Exception:
            log.exception("cannot start a session with %s", transport.get_extra_info("peername"))
            self._finish()
            return
        self.flow = self.session.run()
        self._step(None)

    def data_received(self, data: bytes) -> None:
        if self.waiting == "read" and not self.buf and len(data) <= self.read_size:
            self._step(data)  # the usual case: handed on as it came, not copied twice
            return
        self.buf += data
        if len(self.buf) > _HIGH_WATER and not self.reading_paused and self.transport is not None:
            self.transport.pause_reading()
            self.reading_paused = True
        if self.waiting == "read":
            self._resume_read()

    def eof_received(self) -> bool:
        self.eof = True
        if self.waiting == "read":
            self._resume_read()
        # Keep the write side open (the session closes it) -- except over TLS,
        # where asyncio closes anyway and warns when asked not to.
        return self.transport is not None and self.transport.get_extra_info("ssl_object") is None

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.eof = True
        if self.waiting == "read":
            self._resume_read()
        elif self.waiting == "drain":
            self._drained(False)

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        if self.waiting == "drain":
            self._drained(True)

    def wake(self, value: object) -> None:
        """Shutdown: a session waiting for input gets ``value`` at once; a
        connection still in its implicit-TLS handshake is closed."""
        if self.waiting == "read":
            self._resume(value)
        elif self.session is None and self.task is not None:
            self.task.cancel()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # ------------------------------------------------------------ the flow

    def _step(self, result: object) -> None:
        """Run the flow until it has to wait, performing each action."""
        flow = self.flow
        if flow is None:
            return
        self.waiting = None
        try:
            while True:
                try:
                    action = flow.send(result)
                except StopIteration:
                    break
                kind = type(action)
                if kind is Read:
                    assert isinstance(action, Read)
                    if self.server._stopping:
                        result = SHUTDOWN
                    elif self.buf or self.eof:
                        result = self._take(action.size)
                    else:
                        self._wait_read(action)
                        return
                elif kind is Write:
                    assert isinstance(action, Write)
                    transport = self.transport
                    if self.lost or transport is None or transport.is_closing():
                        result = False
                        continue
                    transport.write(action.data)
                    if self.writing_paused:
                        self.waiting = "drain"
                        self.drain_timer = self.loop.call_later(
                            self.server.settings.config.timeout_server, self._drained, False)
                        return
                    result = not self.lost
                elif kind is Call:
                    assert isinstance(action, Call)
                    result = self._invoke(action)
                    if result is not None and type(result) is not Reply and inspect.isawaitable(result):
                        self._wait_task(self._hook(result))
                        return
                elif kind is UpgradeTLS:
                    self._wait_task(self._upgrade())
                    return
                elif kind is Sleep:
                    assert isinstance(action, Sleep)
                    self.waiting = "sleep"
                    self.loop.call_later(action.seconds, self._resume, None)
                    return
                else:
                    raise RuntimeError(f"unknown action {action!r}")
        except Exception:
            log.exception("session with %s failed",
                          self.transport.get_extra_info("peername") if self.transport else None)
        self._finish()

    def _resume(self, result: object) -> None:
        if self.waiting is not None:
            self._step(result)

    def _finish(self) -> None:
        self.flow = None
        self.waiting = None
        self._cancel_timers()
        self.server._sessions.discard(self)
        if self.transport is not None:
            self.transport.close()
        if not self.done.done():
            self.done.set_result(None)

    def _cancel_timers(self) -> None:
        for timer in (self.timer, self.drain_timer):
            if timer is not None:
                timer.cancel()
        self.timer = self.drain_timer = None

    # reading

    def _take(self, size: int) -> bytes:
        buf = self.buf
        if not buf:
            return b""
        if len(buf) <= size:
            data = bytes(buf)
            buf.clear()
        else:
            data = bytes(buf[:size])
            del buf[:size]
        if self.reading_paused and len(buf) < _LOW_WATER and self.transport is not None:
            self.reading_paused = False
            self.transport.resume_reading()
        return data

    def _wait_read(self, action: Read) -> None:
        self.waiting = "read"
        self.read_size = action.size
        if action.timeout is None:
            self.read_deadline = None
            return
        deadline = self.read_deadline = self.loop.time() + action.timeout
        timer = self.timer
        if timer is not None and timer.when() > deadline:
            timer.cancel()
            timer = None
        if timer is None:
            self.timer = self.loop.call_at(deadline, self._timer_fired)

    def _timer_fired(self) -> None:
        self.timer = None
        deadline = self.read_deadline
        if self.waiting != "read" or deadline is None:
            return  # armed for an earlier wait; the next wait re-arms
        if self.loop.time() >= deadline:
            self._resume(TIMEOUT)
        else:
            self.timer = self.loop.call_at(deadline, self._timer_fired)

    def _resume_read(self) -> None:
        self._step(self._take(self.read_size))

    # writing

    def _drained(self, ok: bool) -> None:
        if self.drain_timer is not None:
            self.drain_timer.cancel()
            self.drain_timer = None
        if self.waiting == "drain":
            self._step(ok and not self.lost)

    # hooks and TLS: the waits that need a coroutine

    def _wait_task(self, coro: Coroutine[object, object, None]) -> None:
        self.waiting = "task"
        self.task = self.loop.create_task(coro)

    async def _hook(self, awaitable: Awaitable[object]) -> None:
        try:
            result: object = await awaitable
        except asyncio.CancelledError:
            if self.task is not None:
                # Not abandon()'s doing (it clears self.task first): the hook
                # itself was cancelled.  End the session as abandon() would,
                # rather than leave it waiting for a result that never comes.
                self.task = None
                await self._wrap_up()
            raise
        except Exception as exc:
            result = HookFailed(exc)
        self.task = None
        self._step(result)

    def _invoke(self, action: Call) -> object:
        """Call the hook: its result (perhaps an awaitable), or HookFailed."""
        try:
            return getattr(self.server.handler, action.hook)(*action.args)
        except Exception as exc:
            return HookFailed(exc)

    async def _call(self, action: Call) -> object:
        result = self._invoke(action)
        if inspect.isawaitable(result):
            try:
                result = await result
            except Exception as exc:
                return HookFailed(exc)
        return result

    async def _handshake(self, ctx: ssl.SSLContext, transport: asyncio.Transport) -> bool:
        """TLS over ``transport`` (server side), for STARTTLS and implicit TLS
        alike: True once it holds, with ``self.transport`` the TLS one."""
        try:
            new = await self.loop.start_tls(
                transport, self, ctx, server_side=True,
                ssl_handshake_timeout=self.server.tls_handshake_timeout)
        except (OSError, ssl.SSLError, ConnectionError, asyncio.TimeoutError) as exc:
            log.info("TLS handshake with %s failed: %s", transport.get_extra_info("peername"), exc)
            return False
        if new is None:
            return False
        assert isinstance(new, asyncio.Transport)
        self.transport = new
        return True

    async def _implicit_tls(self) -> None:
        ctx = self.server.ssl_context
        transport = self.transport
        assert ctx is not None and transport is not None
        transport.pause_reading()  # until the handshake owns the transport
        try:
            ok = await self._handshake(ctx, transport)
        except asyncio.CancelledError:
            self._finish()  # shutdown: a connection still in its handshake is idle
            raise
        self.task = None
        if not ok or self.lost:
            self._finish()
            return
        self._begin()

    async def _upgrade(self) -> None:
        result = await self._start_tls()
        self.task = None
        self._step(result)

    async def _start_tls(self) -> object:
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
        return await self._handshake(ctx, transport)

    async def abandon(self) -> None:
        """Shutdown grace is over: stop the session where it stands; the hook
        calls it still owes (on_message_aborted, on_disconnect) run."""
        task, self.task = self.task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task], timeout=1.0)
        await self._wrap_up()

    async def _wrap_up(self) -> None:
        session, flow = self.session, self.flow
        self.flow = None
        if flow is not None:
            flow.close()  # finishes the recording
        if session is not None:
            for call in session.cleanup_calls():
                await self._call(call)
        self._finish()
