"""The asyncio SMTP/LMTP client: :class:`AsyncSMTPClient`.

It moves bytes with a small :class:`asyncio.Protocol` (so STARTTLS uses the
public :meth:`loop.start_tls` and nothing private) and performs the actions of
:class:`~smtpproto.adapters._client_flow.ClientSession`; every protocol
decision is made there.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ssl
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import TypeVar, Union

from .._config import Config
from .._events import Reply
from ._facades import ClientBase
from ._client_flow import (
    ClientSession,
    Close,
    Flow,
    BatchItem,
    MessageInput,
    Read,
    SendOutcome,
    SendResult,
    SMTPClientError,
    SMTPConnectError,
    SMTPProtocolViolation,
    SMTPServerDisconnected,
    SMTPTimeoutError,
    SMTPTLSError,
    StartTLS,
    Write,
    hello_name,
    prepare_message,
)

__all__ = ["AsyncSMTPClient"]

T = TypeVar("T")
#: Unread bytes from the server held before reading pauses (a reply is at most
#: Config.max_reply_size, 32 KiB by default).
_MAX_BUFFERED = 256 * 1024


#: What AsyncSMTPClient._step leaves: (True, the flow's result) or (False, the
#: action to await).
_Step = tuple[bool, Union[T, Write, Read, StartTLS, Close]]


class _ClientProtocol(asyncio.BufferedProtocol):
    """Buffers what arrives and wakes the one reader; honours write flow control.

    A buffered protocol, so the event loop reads into one reused 64 KiB buffer
    instead of allocating its 256 KiB default for every small reply.
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.buffer = bytearray()
        self._recv = bytearray(64 * 1024)
        self._view = memoryview(self._recv)
        self.reading_paused = False
        self.eof = False
        self.lost: Exception | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._drain: asyncio.Future[None] | None = None
        self._paused = False
        #: A session waiting for bytes, run on by the callback that brings them
        #: (see AsyncSMTPClient._wait_read), so no task wake-up comes between
        #: a reply and the write that answers it.
        self.resume: Callable[[], None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        # Kept: asyncio.get_running_loop() makes a getpid() system call on
        # Python 3.11, and every read asks the loop for the time.
        self.loop = asyncio.get_running_loop()

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._view

    def buffer_updated(self, nbytes: int) -> None:
        self.buffer += self._view[:nbytes]
        if len(self.buffer) > _MAX_BUFFERED and not self.reading_paused and self.transport is not None:
            # A server talking while we do not listen (we are writing a message)
            # must not fill our memory: stop reading until the client catches up.
            self.reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def take(self) -> bytes:
        """Everything buffered, and reading resumed if it was paused."""
        data = bytes(self.buffer)
        self.buffer.clear()
        if self.reading_paused and self.transport is not None and not self.transport.is_closing():
            self.reading_paused = False
            self.transport.resume_reading()
        return data

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.lost = exc
        self._wake()
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    def _wake(self) -> None:
        resume = self.resume
        if resume is not None:
            self.resume = None
            resume()

    def arm_timer(self, deadline: float) -> None:
        """Wake the reader at ``deadline`` (loop time) at the latest.  One timer
        kept across reads, moved only when a deadline comes before it: firing
        early (for an earlier read's deadline) just wakes the reader, which
        checks its own deadline and sets the timer again."""
        if self._timer is None or self._timer.when() > deadline:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = (self.loop or asyncio.get_running_loop()).call_at(deadline, self._timer_fired)

    def _timer_fired(self) -> None:
        self._timer = None
        self._wake()

    def cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    @property
    def must_drain(self) -> bool:
        """:meth:`drain` would wait (flow control) or raise (connection lost)."""
        return self._paused or self.eof

    async def drain(self) -> None:
        while self._paused and not self.eof:
            self._drain = (self.loop or asyncio.get_running_loop()).create_future()
            try:
                await self._drain
            finally:
                self._drain = None
        if self.eof and self.lost is not None:
            raise self.lost


class AsyncSMTPClient(ClientBase):
    """An asyncio SMTP (or LMTP) client; the same arguments and methods as
    :class:`~smtpproto.adapters.sockets.SMTPClient`, awaited.

    ::

        async with AsyncSMTPClient("mail.example", 587, username="u", password="p") as client:
            result = await client.send_message(message)
    """

    def _setup(self) -> None:
        self._proto: _ClientProtocol | None = None
        self._transport: asyncio.Transport | None = None

    # ------------------------------------------------------------ I/O

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        ctx = self._context() if self._tls else None
        hostname = self._server_hostname if self._tls else None
        try:
            if self._given_sock is not None:
                coro = loop.create_connection(
                    _ClientProtocol, sock=self._given_sock, ssl=ctx, server_hostname=hostname)
            elif self._unix_socket is not None:
                coro = loop.create_unix_connection(
                    _ClientProtocol, self._unix_socket, ssl=ctx, server_hostname=hostname)
            else:
                if self.host is None:
                    raise SMTPConnectError("no host to connect to")
                coro = loop.create_connection(
                    _ClientProtocol, self.host, self.port, ssl=ctx, server_hostname=hostname,
                    local_addr=self._source_address)
            transport, proto = await asyncio.wait_for(coro, self._connect_timeout)
        except asyncio.TimeoutError as exc:
            raise SMTPConnectError(f"cannot connect to {self._where()}: timed out") from exc
        except (ssl.SSLError, ssl.CertificateError) as exc:
            raise SMTPTLSError(f"TLS handshake failed: {exc}") from exc
        except OSError as exc:
            raise SMTPConnectError(f"cannot connect to {self._where()}: {exc.strerror or exc}") from exc
        assert isinstance(transport, asyncio.Transport)
        self._transport, self._proto = transport, proto

    def _require(self) -> tuple[asyncio.Transport, _ClientProtocol]:
        if self._transport is None or self._proto is None:
            raise SMTPServerDisconnected("not connected")
        return self._transport, self._proto

    def _write_now(self, action: Write) -> bool:
        """Hand the bytes to the transport; True if it asks us to wait (drain)."""
        transport, proto = self._require()
        if proto.eof or transport.is_closing():
            raise SMTPServerDisconnected("the connection is closed")
        transport.write(action.data)
        return proto.must_drain

    async def _drain(self, action: Write) -> None:
        _, proto = self._require()
        try:
            await asyncio.wait_for(proto.drain(), action.timeout)
        except asyncio.TimeoutError as exc:
            raise SMTPTimeoutError(f"the server did not take our data within {action.timeout} s") from exc
        except OSError as exc:
            raise SMTPServerDisconnected(f"write failed: {exc}") from exc

    def _begin_read(self, action: Read) -> bytes | None:
        """Start ``action``: what is buffered (b"" at the end of the stream), or
        None when it must wait."""
        now = (self._require()[1].loop or asyncio.get_running_loop()).time()
        if action.fresh or self._read_deadline is None:
            self._read_deadline = None if action.timeout is None else now + action.timeout
        return self._poll_read(action, now)

    def _poll_read(self, action: Read, now: float) -> bytes | None:
        _, proto = self._require()
        if proto.buffer:
            return proto.take()
        if proto.eof:
            if isinstance(proto.lost, ssl.SSLError):
                raise SMTPServerDisconnected(f"TLS error while reading: {proto.lost}")
            return b""
        if self._read_deadline is not None and self._read_deadline - now <= 0:
            raise SMTPTimeoutError(f"no reply from the server within {action.timeout} s")
        return None

    def _step(self, flow: Flow[T], value: bytes | None, error: SMTPClientError | None) -> _Step[T]:
        """Run ``flow`` on as far as it goes without waiting: (True, its result),
        or (False, the action to await: a Read with nothing buffered, a Write
        that must drain, StartTLS).  Raises what the flow raises."""
        while True:
            try:
                action = flow.send(value) if error is None else flow.throw(error)
            except StopIteration as stop:
                return True, stop.value
            value, error = None, None
            try:
                if isinstance(action, Write):
                    if self._write_now(action):
                        return False, action
                elif isinstance(action, Read):
                    value = self._begin_read(action)
                    if value is None:
                        return False, action
                elif isinstance(action, StartTLS):
                    return False, action
                elif isinstance(action, Close):
                    self._close_transport()
            except SMTPClientError as exc:
                error = exc

    async def _wait_read(self, flow: Flow[T], action: Read) -> _Step[T]:
        """Wait for bytes for ``action``; the callback that brings them (or the
        end of the stream, or the timer) runs the flow on (see _step) and
        hands over what the task must do next."""
        _, proto = self._require()
        loop = proto.loop or asyncio.get_running_loop()
        done: asyncio.Future[_Step[T]] = loop.create_future()
        waiting = action

        def resume() -> None:
            nonlocal waiting
            if done.done():  # the task was cancelled
                return
            data: bytes | None = None
            error: SMTPClientError | None = None
            try:
                data = self._poll_read(waiting, loop.time())
            except SMTPClientError as exc:
                error = exc
            if data is not None or error is not None:
                try:
                    step = self._step(flow, data, error)
                except Exception as exc:
                    done.set_exception(exc)
                    return
                if not (not step[0] and isinstance(step[1], Read)):
                    done.set_result(step)
                    return
                waiting = step[1]
            if self._read_deadline is not None:
                proto.arm_timer(self._read_deadline)
            proto.resume = resume

        if self._read_deadline is not None:
            proto.arm_timer(self._read_deadline)
        proto.resume = resume
        try:
            return await done
        finally:
            if proto.resume is resume:
                proto.resume = None

    async def _start_tls(self) -> None:
        transport, proto = self._require()
        if proto.buffer:
            # Bytes that came after the 220 in cleartext must never be read as
            # if they came over TLS (SECURITY-CASES T-06).
            raise SMTPProtocolViolation("cleartext data received after the 220 reply to STARTTLS (T-06)")
        loop = asyncio.get_running_loop()
        try:
            new = await asyncio.wait_for(
                loop.start_tls(transport, proto, self._context(), server_hostname=self._server_hostname),
                self._connect_timeout)
        except asyncio.TimeoutError as exc:
            raise SMTPTimeoutError("TLS handshake timed out") from exc
        except (ssl.SSLError, ssl.CertificateError) as exc:
            raise SMTPTLSError(f"TLS handshake failed: {exc}") from exc
        except (OSError, ConnectionError) as exc:
            raise SMTPServerDisconnected(f"connection lost during the TLS handshake: {exc}") from exc
        if new is None:
            raise SMTPServerDisconnected("connection lost during the TLS handshake")
        assert isinstance(new, asyncio.Transport)
        self._transport = proto.transport = new

    def _close_transport(self) -> None:
        if self.session is not None:
            self.session.transport_closed()
        transport, self._transport = self._transport, None
        if self._proto is not None:
            self._proto.cancel_timer()
        if transport is not None:
            transport.close()

    async def _run(self, flow: Flow[T]) -> T:
        try:
            return await self._drive(flow)
        except BaseException as exc:
            if self.session is not None and self.session.interrupted(flow, exc):
                self._close_transport()
            raise

    async def _drive(self, flow: Flow[T]) -> T:
        error: SMTPClientError | None = None
        while True:
            step = self._step(flow, None, error)
            error = None
            while not step[0] and isinstance(step[1], Read):
                step = await self._wait_read(flow, step[1])
            if step[0]:
                result: T = step[1]  # type: ignore[assignment]
                return result
            try:
                action = step[1]
                if isinstance(action, Write):
                    await self._drain(action)
                elif isinstance(action, StartTLS):
                    await self._start_tls()
            except SMTPClientError as exc:
                error = exc

    # ------------------------------------------------------------ API

    async def connect(self) -> Reply:
        """Connect, read the greeting, EHLO, STARTTLS and AUTH as configured.
        Returns the last EHLO/LHLO/HELO reply."""
        if self._transport is not None:
            raise SMTPClientError("already connected")
        await self._open()
        transport, _ = self._require()
        options = self._options
        if not self._explicit_name:
            options = dataclasses.replace(options, local_hostname=hello_name(transport.get_extra_info("sockname")))
        self.session = ClientSession(options)
        try:
            return await self._run(self.session.handshake())
        except BaseException:
            self._close_transport()
            raise

    def _has_transport(self) -> bool:
        return self._transport is not None

    async def send_message(
        self,
        message: MessageInput,
        sender: str | None = None,
        recipients: Sequence[str] | str | None = None,
        *,
        mail_params: dict[str, str | None] | None = None,
        rcpt_params: dict[str, str | None] | None = None,
    ) -> SendResult:
        """See :meth:`SMTPClient.send_message`.  A file object is read in
        chunks as the transfer goes (blocking reads; files are fast)."""
        session = self._session()
        env_sender, env_rcpts, outgoing = prepare_message(
            message, sender, recipients, chunk_size=session.options.chunk_size)
        return await self._run(session.send_mail(
            env_sender, env_rcpts, outgoing, mail_params=mail_params, rcpt_params=rcpt_params))

    async def send_messages(
        self,
        messages: Iterable[BatchItem],
        *,
        mail_params: dict[str, str | None] | None = None,
        rcpt_params: dict[str, str | None] | None = None,
    ) -> list[SendOutcome]:
        """:meth:`SMTPClient.send_messages <smtpproto.adapters.sockets.SMTPClient.send_messages>`,
        awaited: many messages, one round trip each with PIPELINING, one
        outcome per message (a :class:`SendResult` or the exception)."""
        return await self._run(self._session().send_messages(
            messages, mail_params=mail_params, rcpt_params=rcpt_params))

    async def noop(self) -> Reply:
        return await self._run(self._session().noop())

    async def rset(self) -> Reply:
        return await self._run(self._session().rset())

    async def quit(self) -> Reply | None:
        if self.session is None or self._transport is None:
            self._close_transport()
            return None
        try:
            return await self._run(self.session.quit())
        finally:
            self._close_transport()

    async def close(self) -> None:
        """Close the connection without QUIT."""
        self._close_transport()

    async def __aenter__(self) -> "AsyncSMTPClient":
        if self._transport is None:
            await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None or isinstance(exc, SMTPClientError) and self.is_connected:
            try:
                await self.quit()
            except SMTPClientError:
                await self.close()
        else:
            await self.close()
