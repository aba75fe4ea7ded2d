"""What the three server adapters and the three client facades share.

The constructors are the public API of six classes: their arguments are
declared and checked once, here; each adapter adds only its transport's
state in ``_setup``.
"""

from __future__ import annotations

import errno
import os
import ssl
import stat
from dataclasses import replace

import socket
from collections.abc import Sequence

from .. import sasl
from .._config import Config
from .._extensions import Capabilities
from ..transcript import RecordTarget, ServerRecordTarget
from ._client_flow import (
    DEFAULT_CHUNK_SIZE,
    ClientSession,
    SMTPServerDisconnected,
    StartTLSMode,
    Transcript,
    build_options,
    default_port,
)
from ._handler import Handler
from ._server_flow import ServerSettings

__all__ = ["ClientBase", "ServerBase"]


def clear_unix_path(path: str) -> None:
    """Make way for a UNIX socket at ``path``: remove a socket left there by a
    server that is gone.  Anything else stays, with an error: a file that is
    not a socket (a mistyped path must not delete data), or a socket a server
    still accepts connections on (its clients would silently reach us)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise FileExistsError(errno.EEXIST, "exists and is not a socket; not removed", path)
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        pass  # nobody listens: a stale socket
    except OSError:
        pass  # cannot tell (no permission, say): unlink() below decides
    else:
        raise OSError(errno.EADDRINUSE, "a server is listening on this UNIX socket", path)
    finally:
        probe.close()
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def unix_path_identity(path: str) -> tuple[int, int] | None:
    """(device, inode) of the socket file just bound at ``path``."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def remove_unix_path(path: str, identity: tuple[int, int] | None) -> None:
    """Remove our socket file at shutdown, unless another server has put its
    own at ``path`` since."""
    if identity is None or unix_path_identity(path) != identity:
        return
    try:
        os.unlink(path)
    except OSError:
        pass


class ServerBase:
    """The constructor of :class:`~smtpproto.adapters.sockets.SMTPServer`,
    :class:`~smtpproto.adapters.asyncio.AsyncSMTPServer` and
    :class:`~smtpproto.adapters.trio.TrioSMTPServer` (parameters documented
    on the first)."""

    def __init__(
        self,
        handler: Handler,
        *,
        host: str = "127.0.0.1",
        port: int = 8025,
        unix_path: str | os.PathLike[str] | None = None,
        settings: ServerSettings | None = None,
        config: Config | None = None,
        ssl_context: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
        max_connections: int = 100,
        tls_handshake_timeout: float = 30.0,
        shutdown_grace: float = 5.0,
        record: ServerRecordTarget | None = None,
    ) -> None:
        if implicit_tls and ssl_context is None:
            raise ValueError("implicit_tls needs an ssl_context")
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        settings = settings or ServerSettings()
        if config is not None:
            settings = replace(settings, config=config)
        if record is not None:
            settings = replace(settings, record=record)
        self.handler = handler
        self.settings = settings
        self.host = host
        self.port = port
        self.unix_path = os.fspath(unix_path) if unix_path is not None else None
        self.ssl_context = ssl_context
        self.implicit_tls = implicit_tls
        self.max_connections = max_connections
        self.tls_handshake_timeout = tls_handshake_timeout
        self.shutdown_grace = shutdown_grace
        #: (device, inode) of the UNIX socket file we bound, removed at shutdown.
        self._unix_identity: tuple[int, int] | None = None
        self._setup()

    def _setup(self) -> None:
        """The adapter's own state; called at the end of ``__init__``."""


class ClientBase:
    """The constructor of :class:`~smtpproto.adapters.sockets.SMTPClient`,
    :class:`~smtpproto.adapters.asyncio.AsyncSMTPClient` and
    :class:`~smtpproto.adapters.trio.TrioSMTPClient` (parameters documented
    on the first)."""

    def __init__(
        self,
        host: str | None = None,
        port: int | None = None,
        *,
        starttls: StartTLSMode = "required",
        tls: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        username: str | None = None,
        password: str | None = None,
        credentials: sasl.Credentials | None = None,
        auth_mechanisms: Sequence[str] | None = None,
        local_hostname: str | None = None,
        lmtp: bool = False,
        timeout: float | None = None,
        connect_timeout: float = 30.0,
        config: Config | None = None,
        transcript: Transcript | None = None,
        chunking: bool = True,
        pipelining: bool = True,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        source_address: tuple[str, int] | None = None,
        unix_socket: str | None = None,
        sock: socket.socket | None = None,
        record: RecordTarget | None = None,
    ) -> None:
        self._options = build_options(
            starttls=starttls, tls=tls, username=username, password=password, credentials=credentials,
            auth_mechanisms=auth_mechanisms, local_hostname=local_hostname, lmtp=lmtp, timeout=timeout,
            config=config, transcript=transcript, chunking=chunking, pipelining=pipelining,
            chunk_size=chunk_size, record=record)
        self._explicit_name = local_hostname is not None
        self.host = host
        self.port = port if port is not None else default_port(tls=tls, lmtp=lmtp)
        self._tls = tls
        self._ssl_context = ssl_context
        self._server_hostname = server_hostname or host
        self._connect_timeout = connect_timeout
        self._source_address = source_address
        self._unix_socket = unix_socket
        self._given_sock = sock
        self._read_deadline: float | None = None
        self.session: ClientSession | None = None
        self._setup()

    def _setup(self) -> None:
        """The adapter's own transport state; called at the end of ``__init__``."""

    def _context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context

    def _where(self) -> str:
        return self._unix_socket if self._unix_socket is not None else f"{self.host}:{self.port}"

    def _has_transport(self) -> bool:
        """Whether the adapter holds an open transport (each adapter says)."""
        raise NotImplementedError

    def _session(self) -> ClientSession:
        if self.session is None or not self._has_transport():
            raise SMTPServerDisconnected("not connected; call connect() first")
        return self.session

    @property
    def extensions(self) -> Capabilities:
        """What the server advertised in its last EHLO/LHLO reply."""
        return self._session().extensions

    @property
    def tls_active(self) -> bool:
        """Whether the session runs over TLS (implicit or after STARTTLS)."""
        return self._session().tls_active

    @property
    def is_connected(self) -> bool:
        """Connected, and the session can still run commands."""
        return self._has_transport() and self.session is not None and self.session.usable
