"""The trio SMTP/LMTP client: :class:`TrioSMTPClient` (needs the ``trio`` extra).

It performs the actions of :class:`~smtpproto.adapters._client_flow.ClientSession`
on a trio stream (``trio.SSLStream`` for TLS); every protocol decision is made
there.
"""

from __future__ import annotations

import dataclasses
import socket
import ssl
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import TypeVar

try:
    import trio  # type: ignore[import-untyped,import-not-found,unused-ignore]
except ImportError as exc:  # pragma: no cover - exercised only without trio
    raise ImportError(
        "smtpproto's trio client needs trio; install it with: pip install 'smtpproto[trio]'") from exc

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
    SMTPServerDisconnected,
    SMTPTimeoutError,
    SMTPTLSError,
    StartTLS,
    Write,
    hello_name,
    prepare_message,
)

__all__ = ["TrioSMTPClient"]

T = TypeVar("T")
# Replies are small; a larger buffer costs an mmap per recv() (21 us against 3 us here).
_RECV = 64 * 1024


def _tls_failure(exc: BaseException) -> BaseException | None:
    """The ssl error behind a trio BrokenResourceError, if any."""
    cause = exc.__cause__ or exc.__context__
    return cause if isinstance(cause, ssl.SSLError) else None


async def _connect_from(host: str, port: int, source: tuple[str, int]) -> trio.SocketStream:
    """A TCP connection from ``source`` (address and port), trying each
    address of ``host`` in turn, as socket.create_connection() does."""
    error: OSError | None = None
    for family, kind, proto, _, address in await trio.socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        sock = trio.socket.socket(family, kind, proto)
        try:
            await sock.bind(source)
            await sock.connect(address)
        except OSError as exc:
            sock.close()
            error = exc
            continue
        except BaseException:
            sock.close()
            raise
        return trio.SocketStream(sock)
    raise error if error is not None else OSError(f"no address for {host}")


class TrioSMTPClient(ClientBase):
    """A trio SMTP (or LMTP) client; the same arguments and methods as
    :class:`~smtpproto.adapters.sockets.SMTPClient`, awaited.

    ::

        async with TrioSMTPClient("mail.example", 587, username="u", password="p") as client:
            result = await client.send_message(message)
    """

    def _setup(self) -> None:
        self._stream: trio.abc.Stream | None = None
        self._sockname: object = None

    # ------------------------------------------------------------ I/O

    async def _handshake(self, stream: trio.abc.Stream) -> trio.SSLStream[trio.abc.Stream]:
        tls = trio.SSLStream(stream, self._context(), server_hostname=self._server_hostname)
        try:
            with trio.fail_after(self._connect_timeout):
                await tls.do_handshake()
        except trio.TooSlowError as exc:
            raise SMTPTimeoutError("TLS handshake timed out") from exc
        except trio.BrokenResourceError as exc:
            if _tls_failure(exc) is not None:
                raise SMTPTLSError(f"TLS handshake failed: {_tls_failure(exc)}") from exc
            raise SMTPServerDisconnected(f"connection lost during the TLS handshake: {exc}") from exc
        return tls

    async def _open(self) -> trio.abc.Stream:
        stream: trio.abc.Stream
        try:
            with trio.fail_after(self._connect_timeout):
                if self._given_sock is not None:
                    sock_stream = trio.SocketStream(trio.socket.from_stdlib_socket(self._given_sock))
                elif self._unix_socket is not None:
                    sock_stream = await trio.open_unix_socket(self._unix_socket)
                else:
                    if self.host is None:
                        raise SMTPConnectError("no host to connect to")
                    source = self._source_address
                    if source is not None and source[1]:
                        # open_tcp_stream() binds an address only, never a port.
                        sock_stream = await _connect_from(self.host, self.port, source)
                    else:
                        local = source[0] if source else None
                        sock_stream = await trio.open_tcp_stream(self.host, self.port, local_address=local)
        except trio.TooSlowError as exc:
            raise SMTPConnectError(f"cannot connect to {self._where()}: timed out") from exc
        except OSError as exc:
            raise SMTPConnectError(f"cannot connect to {self._where()}: {exc.strerror or exc}") from exc
        try:
            self._sockname = sock_stream.socket.getsockname()
        except OSError:
            self._sockname = None
        stream = sock_stream
        if self._tls:
            try:
                stream = await self._handshake(sock_stream)
            except BaseException:
                await trio.aclose_forcefully(sock_stream)
                raise
        return stream

    def _require(self) -> trio.abc.Stream:
        if self._stream is None:
            raise SMTPServerDisconnected("not connected")
        return self._stream

    async def _write(self, action: Write) -> None:
        stream = self._require()
        try:
            if action.timeout is None:
                await stream.send_all(action.data)
            else:
                with trio.fail_after(action.timeout):
                    await stream.send_all(action.data)
        except trio.TooSlowError as exc:
            raise SMTPTimeoutError(f"the server did not take our data within {action.timeout} s") from exc
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise SMTPServerDisconnected(f"write failed: {exc}") from exc

    async def _read(self, action: Read) -> bytes:
        stream = self._require()
        now = trio.current_time()
        if action.fresh or self._read_deadline is None:
            self._read_deadline = None if action.timeout is None else now + action.timeout
        deadline = self._read_deadline if self._read_deadline is not None else float("inf")
        try:
            with trio.move_on_at(deadline) as scope:
                data = await stream.receive_some(_RECV)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            if _tls_failure(exc) is not None:
                raise SMTPServerDisconnected(f"TLS error while reading: {_tls_failure(exc)}") from exc
            raise SMTPServerDisconnected(f"read failed: {exc}") from exc
        if scope.cancelled_caught:
            raise SMTPTimeoutError(f"no reply from the server within {action.timeout} s")
        return bytes(data)

    async def _start_tls(self) -> None:
        self._stream = await self._handshake(self._require())

    async def _close_transport(self) -> None:
        if self.session is not None:
            self.session.transport_closed()
        stream, self._stream = self._stream, None
        if stream is not None:
            await trio.aclose_forcefully(stream)

    async def _run(self, flow: Flow[T]) -> T:
        try:
            return await self._drive(flow)
        except BaseException as exc:
            if self.session is not None and self.session.interrupted(flow, exc):
                # aclose_forcefully closes at once, also inside a cancelled scope.
                await self._close_transport()
            raise

    async def _drive(self, flow: Flow[T]) -> T:
        value: bytes | None = None
        error: SMTPClientError | None = None
        while True:
            try:
                action = flow.send(value) if error is None else flow.throw(error)
            except StopIteration as stop:
                result: T = stop.value
                return result
            value, error = None, None
            try:
                if isinstance(action, Write):
                    await self._write(action)
                elif isinstance(action, Read):
                    value = await self._read(action)
                elif isinstance(action, StartTLS):
                    await self._start_tls()
                elif isinstance(action, Close):
                    await self._close_transport()
            except SMTPClientError as exc:
                error = exc

    # ------------------------------------------------------------ API

    async def connect(self) -> Reply:
        """Connect, read the greeting, EHLO, STARTTLS and AUTH as configured.
        Returns the last EHLO/LHLO/HELO reply."""
        if self._stream is not None:
            raise SMTPClientError("already connected")
        self._stream = await self._open()
        options = self._options
        if not self._explicit_name:
            options = dataclasses.replace(options, local_hostname=hello_name(self._sockname))
        self.session = ClientSession(options)
        try:
            return await self._run(self.session.handshake())
        except BaseException:
            await self._close_transport()
            raise

    def _has_transport(self) -> bool:
        return self._stream is not None

    async def send_message(
        self,
        message: MessageInput,
        sender: str | None = None,
        recipients: Sequence[str] | str | None = None,
        *,
        mail_params: dict[str, str | None] | None = None,
        rcpt_params: dict[str, str | None] | None = None,
    ) -> SendResult:
        """See :meth:`SMTPClient.send_message`."""
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
        if self.session is None or self._stream is None:
            await self._close_transport()
            return None
        try:
            return await self._run(self.session.quit())
        finally:
            await self._close_transport()

    async def close(self) -> None:
        """Close the connection without QUIT."""
        await self._close_transport()

    async def __aenter__(self) -> "TrioSMTPClient":
        if self._stream is None:
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
