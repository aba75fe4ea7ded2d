"""The blocking SMTP/LMTP client: :class:`SMTPClient` (sockets and :mod:`ssl`).

It only moves bytes: every protocol decision is in
:class:`~smtpproto.adapters._client_flow.ClientSession`, whose actions this
module performs on a socket.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import ssl
import time
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import TypeVar

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

__all__ = ["SMTPClient"]

T = TypeVar("T")
# Replies are small; a larger buffer costs an mmap per recv() (21 us against 3 us here).
_RECV = 64 * 1024
# write() on a socket's descriptor is send() without flags (POSIX; not Windows).
_DIRECT_WRITE = os.name == "posix"


def _set_timeout(sock: socket.socket, timeout: float | None) -> None:
    """``sock.settimeout(timeout)`` unless it is set already: each call is an
    ioctl (CPython re-applies the blocking mode), and most operations of a
    session use the same timeout as the one before."""
    if sock.gettimeout() != timeout:
        sock.settimeout(timeout)


class SMTPClient(ClientBase):
    """A blocking SMTP (or LMTP) client.

    ::

        with SMTPClient("mail.example", 587, username="u", password="p") as client:
            result = client.send_message(message)

    :param host: server name or address (or ``unix_socket`` for a UNIX socket).
    :param port: default 25, 465 with ``tls=True``, 24 with ``lmtp=True``.
    :param starttls: ``"required"`` (default: STARTTLS must succeed before MAIL
        or AUTH), ``"opportunistic"`` (when offered) or ``"never"``.
    :param tls: implicit TLS from the first byte (RFC 8314, port 465).
    :param ssl_context: for TLS; default :func:`ssl.create_default_context`.
    :param username, password, credentials, auth_mechanisms: AUTH with the best
        mechanism both sides support (never in cleartext unless
        ``config.allow_auth_without_tls``).
    :param local_hostname: the EHLO name; default our address literal.
    :param lmtp: speak LMTP (RFC 2033): per-recipient final replies.
    :param timeout: cap, in seconds, on every RFC 5321 timeout (reply waits and
        writes); ``connect_timeout`` for the TCP connection and TLS handshake.
    :param transcript: ``callable(direction, line)`` for each line sent ("C")
        and received ("S"), AUTH payloads redacted.
    :param sock: an already connected socket to use instead of connecting.
    :param record: write each session to a transcript file (a path, written
        anew by each :meth:`connect`) or a
        :class:`~smtpproto.transcript.Recorder`; AUTH redacted.
    """

    def _setup(self) -> None:
        self._sock: socket.socket | None = None

    # ------------------------------------------------------------ I/O

    def _wrap(self, sock: socket.socket) -> ssl.SSLSocket:
        sock.settimeout(self._connect_timeout)
        try:
            return self._context().wrap_socket(sock, server_hostname=self._server_hostname)
        except (ssl.SSLError, ssl.CertificateError) as exc:
            raise SMTPTLSError(f"TLS handshake failed: {exc}") from exc
        except TimeoutError as exc:
            raise SMTPTimeoutError("TLS handshake timed out") from exc
        except OSError as exc:
            raise SMTPServerDisconnected(f"connection lost during the TLS handshake: {exc}") from exc

    def _open(self) -> socket.socket:
        if self._given_sock is not None:
            return self._given_sock
        try:
            if self._unix_socket is not None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(self._connect_timeout)
                try:
                    sock.connect(self._unix_socket)
                except BaseException:
                    sock.close()
                    raise
                return sock
            if self.host is None:
                raise SMTPConnectError("no host to connect to")
            return socket.create_connection(
                (self.host, self.port), timeout=self._connect_timeout, source_address=self._source_address)
        except TimeoutError as exc:
            raise SMTPConnectError(f"cannot connect to {self._where()}: timed out") from exc
        except OSError as exc:
            raise SMTPConnectError(f"cannot connect to {self._where()}: {exc.strerror or exc}") from exc

    def _write(self, action: Write) -> None:
        sock = self._require_sock()
        _set_timeout(sock, action.timeout)
        try:
            data: bytes | memoryview = action.data
            if _DIRECT_WRITE and action.timeout and type(sock) is socket.socket:
                # With a timeout the descriptor is non-blocking, and sendall()
                # would poll() before every send: try one plain write() first,
                # which takes all of a command group or a small message.
                # (Never on a TLS socket, whose bytes must go through ssl.)
                try:
                    sent = os.write(sock.fileno(), data)
                except BlockingIOError:
                    sent = 0
                if sent == len(data):
                    return
                data = memoryview(data)[sent:]
            sock.sendall(data)
        except TimeoutError as exc:
            raise SMTPTimeoutError(f"the server did not take our data within {action.timeout} s") from exc
        except OSError as exc:
            raise SMTPServerDisconnected(f"write failed: {exc}") from exc

    def _read(self, action: Read) -> bytes:
        sock = self._require_sock()
        now = time.monotonic()
        if action.fresh or self._read_deadline is None:
            self._read_deadline = None if action.timeout is None else now + action.timeout
        if self._read_deadline is None:
            _set_timeout(sock, None)
        else:
            remaining = self._read_deadline - now
            if remaining <= 0:
                raise SMTPTimeoutError(f"no reply from the server within {action.timeout} s")
            _set_timeout(sock, remaining)
        try:
            return sock.recv(_RECV)
        except TimeoutError as exc:
            raise SMTPTimeoutError(f"no reply from the server within {action.timeout} s") from exc
        except ssl.SSLError as exc:
            raise SMTPServerDisconnected(f"TLS error while reading: {exc}") from exc
        except OSError as exc:
            raise SMTPServerDisconnected(f"read failed: {exc}") from exc

    def _require_sock(self) -> socket.socket:
        if self._sock is None:
            raise SMTPServerDisconnected("not connected")
        return self._sock

    def _close_transport(self) -> None:
        if self.session is not None:
            self.session.transport_closed()
        sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass

    def _run(self, flow: Flow[T]) -> T:
        try:
            return self._drive(flow)
        except BaseException as exc:
            if self.session is not None and self.session.interrupted(flow, exc):
                self._close_transport()
            raise

    def _drive(self, flow: Flow[T]) -> T:
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
                    self._write(action)
                elif isinstance(action, Read):
                    value = self._read(action)
                elif isinstance(action, StartTLS):
                    self._sock = self._wrap(self._require_sock())
                elif isinstance(action, Close):
                    self._close_transport()
            except SMTPClientError as exc:
                error = exc

    # ------------------------------------------------------------ API

    def connect(self) -> Reply:
        """Connect, read the greeting, EHLO, STARTTLS and AUTH as configured.
        Returns the last EHLO/LHLO/HELO reply."""
        if self._sock is not None:
            raise SMTPClientError("already connected")
        sock = self._open()
        try:
            if self._tls:
                sock = self._wrap(sock)
            options = self._options
            if not self._explicit_name:
                try:
                    options = dataclasses.replace(options, local_hostname=hello_name(sock.getsockname()))
                except OSError:
                    pass
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                # Commands are small writes followed by a wait: never let Nagle hold them.
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sock = sock
            self.session = ClientSession(options)
            return self._run(self.session.handshake())
        except BaseException:
            current, self._sock = self._sock, None
            if current is not None:
                current.close()  # the TLS socket after STARTTLS
            sock.close()
            raise

    def _has_transport(self) -> bool:
        return self._sock is not None

    def send_message(
        self,
        message: MessageInput,
        sender: str | None = None,
        recipients: Sequence[str] | str | None = None,
        *,
        mail_params: dict[str, str | None] | None = None,
        rcpt_params: dict[str, str | None] | None = None,
    ) -> SendResult:
        """Send one message (a :class:`smtpproto.message.Message`, an
        :mod:`email` message, bytes, or a binary file to stream).

        The envelope comes from the header fields when not given; Bcc is
        removed.  Returns per-recipient results when at least one recipient
        got the message; raises :class:`SMTPSenderRefused`,
        :class:`SMTPRecipientsRefused` or :class:`SMTPDataRefused` otherwise.
        """
        session = self._session()
        env_sender, env_rcpts, outgoing = prepare_message(
            message, sender, recipients, chunk_size=session.options.chunk_size)
        return self._run(session.send_mail(
            env_sender, env_rcpts, outgoing, mail_params=mail_params, rcpt_params=rcpt_params))

    def send_messages(
        self,
        messages: Iterable[BatchItem],
        *,
        mail_params: dict[str, str | None] | None = None,
        rcpt_params: dict[str, str | None] | None = None,
    ) -> list[SendOutcome]:
        """Send many messages on this connection, each one's end of data in one
        write with the next one's MAIL, RCPT and DATA (RFC 2920 §3.1): with
        PIPELINING, one round trip per message instead of two.

        Each item is a message (its envelope from its header fields) or a
        ``(message, sender, recipients)`` tuple (None: from the header fields).
        Returns one outcome per item taken, in order: the :class:`SendResult`,
        or the exception that :meth:`send_message` would have raised for that
        message alone (a refusal is not fatal to the others).  When the
        connection is lost, the messages whose fate is unknown get that error
        and no further item is taken from ``messages``, so an iterator can be
        resumed on a new connection.  One item is taken ahead of the one being
        sent.
        """
        return self._run(self._session().send_messages(
            messages, mail_params=mail_params, rcpt_params=rcpt_params))

    def noop(self) -> Reply:
        return self._run(self._session().noop())

    def rset(self) -> Reply:
        return self._run(self._session().rset())

    def quit(self) -> Reply | None:
        """Say QUIT and close; returns the 221 reply (None if the connection was
        already gone)."""
        if self.session is None or self._sock is None:
            self._close_transport()
            return None
        try:
            return self._run(self.session.quit())
        finally:
            self._close_transport()

    def close(self) -> None:
        """Close the connection without QUIT."""
        self._close_transport()

    def __enter__(self) -> "SMTPClient":
        if self._sock is None:
            self.connect()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None or isinstance(exc, SMTPClientError) and self.is_connected:
            try:
                self.quit()
            except SMTPClientError:
                self.close()
        else:
            self.close()
