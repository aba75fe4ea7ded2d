"""Blocking-sockets SMTP/LMTP server: one thread per connection.

Only I/O lives here; every decision is :class:`~._server_flow.ServerSession`'s.
"""

from __future__ import annotations

import errno
import inspect
import logging
import socket
import ssl
import threading
import time
from typing import Generator

from .._config import Config
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
    ServerSettings,
    Sleep,
    UpgradeTLS,
    Write,
    busy_flow,
)

__all__ = ["SMTPServer"]

log = logging.getLogger("smtpproto.server")

#: How often blocked reads and accepts look at the shutdown flag (seconds).
_POLL = 0.25


class SMTPServer(ServerBase):
    """A threaded SMTP (or LMTP) server.

    :param handler: the :class:`~smtpproto.adapters.Handler` (shared by all
        connections; per-connection state lives in the ``Session``).  Its hooks
        must be plain methods here.
    :param host, port: where to listen (port 0 picks a free one; see
        :attr:`address`).  Ignored when ``unix_path`` is given.
    :param unix_path: listen on a UNIX socket instead (LMTP's usual home).
    :param settings: :class:`~smtpproto.adapters.ServerSettings`;
        ``config`` replaces its :class:`~smtpproto.Config` when given.
    :param ssl_context: a server ``ssl.SSLContext``: STARTTLS is offered, or with
        ``implicit_tls`` every connection starts with a TLS handshake (RFC 8314).
    :param max_connections: sessions served at once; more get ``421 4.3.2``.
    :param tls_handshake_timeout: seconds allowed for a TLS handshake.
    :param shutdown_grace: seconds :meth:`shutdown` waits for sessions to end.
    :param record: record every session (AUTH redacted): a directory, where
        each session gets a new transcript file, or a function ``(peer) ->
        Recorder`` (see :mod:`smtpproto.transcript`); sets
        ``ServerSettings.record``.
    """

    def _setup(self) -> None:
        #: The listening sockets: one per address of ``host`` (as asyncio and
        #: trio listen), the first one's address being :attr:`address`.
        self._listeners: list[socket.socket] = []
        self._accept_threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._sessions: dict[threading.Thread, socket.socket] = {}
        self._slots = threading.BoundedSemaphore(self.max_connections)

    # ------------------------------------------------------------ lifecycle

    @property
    def address(self) -> tuple[str, int] | str:
        """Where the server listens: ``(host, port)`` or the UNIX socket path."""
        if not self._listeners:
            raise RuntimeError("the server is not started")
        if self.unix_path is not None:
            return self.unix_path
        host, port = self._listeners[0].getsockname()[:2]
        return host, port

    def start(self) -> None:
        """Bind, listen and accept connections in a background thread."""
        if self._listeners:
            raise RuntimeError("already started")
        if self.unix_path is not None:
            clear_unix_path(self.unix_path)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.bind(self.unix_path)
            except BaseException:
                sock.close()
                raise
            self._unix_identity = unix_path_identity(self.unix_path)
            listeners = [sock]
        else:
            listeners = _tcp_listeners(self.host, self.port)
        for sock in listeners:
            sock.listen(128)
            sock.settimeout(_POLL)
        self._listeners = listeners
        for sock in listeners:
            thread = threading.Thread(target=self._accept_loop, args=(sock,), name="smtpproto-accept", daemon=True)
            self._accept_threads.append(thread)
            thread.start()

    def serve_forever(self) -> None:
        """Start (if needed) and block until :meth:`shutdown` is called."""
        if not self._listeners:
            self.start()
        for thread in self._accept_threads:
            while thread.is_alive():  # short joins: Ctrl-C stays deliverable
                thread.join(_POLL)

    def shutdown(self, timeout: float | None = None) -> None:
        """Stop accepting; idle sessions get ``421 4.3.2`` and close; wait up to
        ``timeout`` (default ``shutdown_grace``) for the others, then cut them."""
        grace = self.shutdown_grace if timeout is None else timeout
        self._stopping.set()
        for accepting in self._accept_threads:
            if accepting is not threading.current_thread():
                accepting.join()
        deadline = time.monotonic() + grace
        for thread in self._snapshot():
            thread.join(max(0.0, deadline - time.monotonic()))
        for thread, sock in self._snapshot_items():
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            thread.join(1.0)
        for listener in self._listeners:
            listener.close()
        if self.unix_path is not None:
            remove_unix_path(self.unix_path, self._unix_identity)

    def __enter__(self) -> SMTPServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    @property
    def active_sessions(self) -> int:
        with self._lock:
            return len(self._sessions)

    def _snapshot(self) -> list[threading.Thread]:
        with self._lock:
            return list(self._sessions)

    def _snapshot_items(self) -> list[tuple[threading.Thread, socket.socket]]:
        with self._lock:
            return list(self._sessions.items())

    # ------------------------------------------------------------ accepting

    def _accept_loop(self, listener: socket.socket) -> None:
        while not self._stopping.is_set():
            try:
                sock, peer = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                if self._stopping.is_set():
                    break
                time.sleep(_POLL)  # EMFILE and friends: back off
                continue
            if not self._slots.acquire(blocking=False):
                self._refuse(sock)
                continue
            thread = threading.Thread(target=self._serve, args=(sock, peer), name="smtpproto-session", daemon=True)
            with self._lock:
                self._sessions[thread] = sock
            thread.start()

    def _refuse(self, sock: socket.socket) -> None:
        try:
            if not self.implicit_tls:  # a 421 in cleartext would break a TLS client
                sock.settimeout(2.0)
                _run_plain(busy_flow(self.settings), sock)
        except OSError:
            pass
        finally:
            sock.close()

    def _serve(self, sock: socket.socket, peer: object) -> None:
        io: _SessionIO | None = None
        try:
            if sock.family != getattr(socket, "AF_UNIX", None):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            tls = False
            if self.implicit_tls:
                assert self.ssl_context is not None
                sock.settimeout(self.tls_handshake_timeout)
                try:
                    sock = self.ssl_context.wrap_socket(sock, server_side=True)
                except (OSError, ssl.SSLError) as exc:
                    log.info("TLS handshake with %s failed: %s", peer, exc)
                    return
                tls = True
                with self._lock:
                    self._sessions[threading.current_thread()] = sock
            flow = ServerSession(
                self.handler, self.settings, peer=peer or None, tls_active=tls,
                starttls=self.ssl_context is not None and not self.implicit_tls,
            ).run()
            io = _SessionIO(self, sock)
            io.drive(flow)
        except Exception:
            log.exception("session with %s failed", peer)
        finally:
            # After STARTTLS the session runs on the SSLSocket that wrap_socket()
            # made (it took the descriptor over): that one must be closed too.
            for each in (sock, io.sock if io is not None else None):
                try:
                    if each is not None:
                        each.close()
                except OSError:
                    pass
            with self._lock:
                self._sessions.pop(threading.current_thread(), None)
            self._slots.release()


def _tcp_listeners(host: str | None, port: int) -> list[socket.socket]:
    """Bound sockets for every address of ``host`` (all interfaces when it is
    None or ""), on one port: with port 0, the port the first one got."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    listeners: list[socket.socket] = []
    seen: set[tuple[object, ...]] = set()
    try:
        for family, kind, proto, _, address in infos:
            if (family, address) in seen:
                continue
            seen.add((family, address))
            sock = socket.socket(family, kind, proto)
            listeners.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                # Each family on its own socket: "::" must not also take the
                # IPv4 addresses that the 0.0.0.0 socket binds.
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if listeners[0] is not sock:
                address = (address[0], listeners[0].getsockname()[1], *address[2:])
            try:
                sock.bind(address)
            except OSError as exc:
                if listeners[0] is sock or exc.errno not in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
                    raise
                listeners.remove(sock)  # e.g. ::1 on a host with IPv6 turned off
                sock.close()
    except BaseException:
        for sock in listeners:
            sock.close()
        raise
    return listeners


def _run_plain(flow: Generator[Action, object, None], sock: socket.socket) -> None:
    result: object = None
    while True:
        try:
            action = flow.send(result)
        except StopIteration:
            return
        if isinstance(action, Write):
            sock.sendall(action.data)
            result = True
        else:
            raise RuntimeError(f"unexpected action {action!r}")


class _SessionIO:
    """Performs a session's actions on a blocking socket."""

    def __init__(self, server: SMTPServer, sock: socket.socket) -> None:
        self.server = server
        self.sock = sock
        self._timeout: float | None = -1.0

    def _settimeout(self, value: float | None) -> None:
        if value != self._timeout:
            self.sock.settimeout(value)
            self._timeout = value

    def drive(self, flow: Generator[Action, object, None]) -> None:
        result: object = None
        perform = self.perform
        while True:
            try:
                action = flow.send(result)
            except StopIteration:
                return
            result = perform(action)

    def perform(self, action: Action) -> object:
        if isinstance(action, Read):
            return self._read(action)
        if isinstance(action, Write):
            try:
                self._settimeout(self.server.settings.config.timeout_server)
                self.sock.sendall(action.data)
                return True
            except OSError:
                return False
        if isinstance(action, Call):
            try:
                result = getattr(self.server.handler, action.hook)(*action.args)
            except Exception as exc:
                return HookFailed(exc)
            if inspect.isawaitable(result):
                close = getattr(result, "close", None)
                if close is not None:
                    close()
                return HookFailed(TypeError(
                    f"handler hook {action.hook} is async; the sockets adapter needs plain methods"))
            return result
        if isinstance(action, UpgradeTLS):
            return self._upgrade()
        if isinstance(action, Sleep):
            time.sleep(action.seconds)
            return None
        raise RuntimeError(f"unknown action {action!r}")

    def _read(self, action: Read) -> object:
        stopping = self.server._stopping
        end = None if action.timeout is None else time.monotonic() + action.timeout
        while True:
            if stopping.is_set():
                return SHUTDOWN
            wait = _POLL
            if end is not None:
                left = end - time.monotonic()
                if left <= 0:
                    return TIMEOUT
                wait = min(wait, left)
            self._settimeout(wait)
            try:
                return self.sock.recv(action.size)
            except socket.timeout:
                continue
            except OSError:
                return b""

    def _upgrade(self) -> bool:
        ctx = self.server.ssl_context
        if ctx is None:
            return False
        try:
            self._settimeout(self.server.tls_handshake_timeout)
            tls = ctx.wrap_socket(self.sock, server_side=True)
        except (OSError, ssl.SSLError) as exc:
            log.info("TLS handshake failed: %s", exc)
            return False
        self.sock = tls
        with self.server._lock:
            self.server._sessions[threading.current_thread()] = tls
        return True
