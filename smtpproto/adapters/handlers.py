"""Ready-made server handlers: sink, print, Maildir, mbox and relay.

Each works with all three server adapters (plain methods; the relay blocks, so
the asyncio and trio adapters run it in a worker thread).
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
import socket
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any, Awaitable, BinaryIO, Callable, Sequence, cast

from .._events import Rcpt, Reply
from ._handler import Envelope, Handler, MessageResult, Session

__all__ = [
    "MaildirHandler",
    "MboxHandler",
    "PasswordAuthMixin",
    "PrintHandler",
    "RelayHandler",
    "SinkHandler",
]


class SinkHandler(Handler):
    """Accept every message and forget it (counts them in :attr:`received`)."""

    collect_content = False

    def __init__(self) -> None:
        self.received = 0
        self._lock = threading.Lock()

    def on_message(self, session: Session, envelope: Envelope) -> MessageResult:
        with self._lock:
            self.received += 1
        return None


class PasswordAuthMixin:
    """Add PLAIN/LOGIN AUTH with one fixed user (for debugging servers).

    The check runs in constant time.  AUTH is offered only over TLS unless the
    server's ``Config(allow_auth_without_tls=True)``.
    """

    auth_mechanisms: Sequence[str] = ()
    _auth_user: str | None = None
    _auth_password: str | None = None

    def set_credentials(self, username: str, password: str) -> None:
        self._auth_user = username
        self._auth_password = password
        self.auth_mechanisms = ("PLAIN", "LOGIN")

    def verify_password(self, session: Session, username: str, password: str, authzid: str | None) -> bool:
        import hmac

        if self._auth_user is None or self._auth_password is None:
            return False
        if authzid not in (None, username):
            return False
        user_ok = hmac.compare_digest(username.encode("utf-8"), self._auth_user.encode("utf-8"))
        pw_ok = hmac.compare_digest(password.encode("utf-8"), self._auth_password.encode("utf-8"))
        return user_ok and pw_ok


def _envelope_lines(session: Session, envelope: Envelope) -> list[str]:
    peer = session.peer
    peer_text = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else str(peer or "local")
    lines = [
        f"Peer: {peer_text}" + (" (TLS)" if session.tls_active else "")
        + (f" (authenticated as {session.auth.authcid})" if session.auth else ""),
        f"MAIL FROM: <{envelope.mail_from}>" + "".join(
            f" {k}" + (f"={v}" if v is not None else "") for k, v in envelope.mail_params.items()),
    ]
    lines += [f"RCPT TO: <{r}>" for r in envelope.rcpt_tos]
    lines.append(f"Size: {envelope.size} octets via {envelope.transfer}")
    return lines


class PrintHandler(PasswordAuthMixin, Handler):
    """Print each message to a text stream (standard output by default), like
    ``python -m aiosmtpd -n``'s debugging handler."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream
        self._lock = threading.Lock()

    def on_message(self, session: Session, envelope: Envelope) -> MessageResult:
        out = self.stream if self.stream is not None else sys.stdout
        content = envelope.content or b""
        text = content.decode("utf-8", "replace").replace("\r\n", "\n")
        rule = "-" * 10
        block = [f"{rule} MESSAGE FOLLOWS {rule}", *_envelope_lines(session, envelope), ""]
        block.append(text.rstrip("\n"))
        block.append(f"{rule} END MESSAGE {rule}")
        with self._lock:
            out.write("\n".join(block) + "\n")
            out.flush()
        return None


class MaildirHandler(PasswordAuthMixin, Handler):
    """Deliver into a Maildir (``tmp/``, ``new/``, ``cur/``), streaming.

    The content is written to ``tmp/`` as it arrives (memory stays bounded),
    fsynced, then renamed into ``new/`` (the Maildir delivery protocol).  The
    stored file is a ``Received:`` trace field followed by the content exactly
    as received (CRLF line ends kept).  In LMTP every recipient gets the same
    file.
    """

    collect_content = False

    def __init__(self, path: str | os.PathLike[str], *, add_received: bool = True) -> None:
        self.path = Path(path)
        self.add_received = add_received
        for sub in ("tmp", "new", "cur"):
            (self.path / sub).mkdir(parents=True, exist_ok=True)
        self._counter = 0
        self._lock = threading.Lock()
        self._host = re.sub(r"[/:]", "_", socket.gethostname() or "localhost")

    def _unique(self) -> str:
        with self._lock:
            self._counter += 1
            n = self._counter
        now = time.time()
        return f"{int(now)}.M{int((now % 1) * 1e6)}P{os.getpid()}Q{n}.{self._host}"

    def on_data_start(self, session: Session, envelope: Envelope) -> None:
        name = self._unique()
        tmp = self.path / "tmp" / name
        fh = open(tmp, "xb")
        session.extra["maildir"] = (name, fh)
        if self.add_received:
            fh.write(session.received_header(envelope))

    def on_data_chunk(self, session: Session, envelope: Envelope, chunk: bytes) -> None:
        name, fh = _pending_file(session.extra["maildir"])
        fh.write(chunk)

    def on_message(self, session: Session, envelope: Envelope) -> MessageResult:
        name, fh = _pending_file(session.extra.pop("maildir"))
        fh.flush()
        os.fsync(fh.fileno())
        fh.close()
        os.rename(self.path / "tmp" / name, self.path / "new" / name)
        return Reply(code=250, lines=(f"Ok: delivered as {name}",), enhanced_status="2.0.0")

    def on_message_aborted(self, session: Session, envelope: Envelope, reason: str) -> None:
        self._discard(session)

    def on_disconnect(self, session: Session) -> None:
        self._discard(session)

    def _discard(self, session: Session) -> None:
        item = session.extra.pop("maildir", None)
        if item is None:
            return
        name, fh = _pending_file(item)
        fh.close()
        try:
            os.unlink(self.path / "tmp" / name)
        except OSError:
            pass


def _pending_file(item: object) -> tuple[str, BinaryIO]:
    return cast("tuple[str, BinaryIO]", item)


_FROM_LINE = re.compile(rb"^(>*From )", re.MULTILINE)


class MboxHandler(PasswordAuthMixin, Handler):
    """Append each message to an mbox file (mboxrd: body lines matching
    ``>*From `` get one more ``>``, which readers remove again).

    Each message is preceded by ``From sender date`` and, unless disabled, a
    ``Received:`` trace field; the content keeps its CRLF line ends.  Appends
    are serialised with a lock (and ``flock`` where available).
    """

    def __init__(self, path: str | os.PathLike[str], *, add_received: bool = True) -> None:
        self.path = Path(path)
        self.add_received = add_received
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def on_message(self, session: Session, envelope: Envelope) -> MessageResult:
        content = envelope.content or b""
        sender = envelope.mail_from or "MAILER-DAEMON"
        sender = re.sub(r"[\s]", "_", sender)
        stamp = time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime())
        parts = [f"From {sender} {stamp}\n".encode("utf-8", "replace")]
        if self.add_received:
            parts.append(session.received_header(envelope))
        parts.append(_FROM_LINE.sub(rb">\1", content))
        if not content.endswith(b"\n"):
            parts.append(b"\r\n")
        parts.append(b"\n")
        data = b"".join(parts)
        with self._lock, open(self.path, "ab") as fh:
            try:
                import fcntl

                fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            except (ImportError, OSError):
                pass
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        return None


class RelayHandler(Handler):
    """Forward every message through smtpproto's blocking client.

    ``client_factory()`` returns a connected-on-use client; by default an
    ``SMTPClient(host, port, **client_options)``.  The final reply mirrors the
    upstream outcome: 250 when every recipient was accepted upstream, the
    upstream error otherwise (LMTP: per recipient).  The content is relayed
    exactly as received.  Under asyncio/trio the blocking send runs in a
    worker thread.
    """

    def __init__(
        self,
        host: str,
        port: int = 25,
        *,
        client_factory: Callable[[], Any] | None = None,
        add_received: bool = True,
        **client_options: Any,
    ) -> None:
        self.host = host
        self.port = port
        self.add_received = add_received
        self.client_options = client_options
        self._factory = client_factory

    def _client(self) -> Any:
        if self._factory is not None:
            return self._factory()
        from .sockets import SMTPClient  # type: ignore[attr-defined, unused-ignore]

        return SMTPClient(self.host, self.port, **self.client_options)

    def relay(self, session: Session, envelope: Envelope) -> list[Reply]:
        """Send ``envelope`` upstream (blocking); one reply per recipient."""
        data = envelope.content or b""
        if self.add_received:
            data = session.received_header(envelope) + data
        params: dict[str, str | None] = {}
        for key in ("SMTPUTF8", "BODY"):
            if key in envelope.mail_params:
                params[key] = envelope.mail_params[key]
        try:
            with self._client() as client:
                result = client.send_message(data, envelope.mail_from, list(envelope.rcpt_tos),
                                             mail_params=params or None)
        except Exception as exc:
            reply = getattr(exc, "reply", None)
            if isinstance(reply, Reply) and reply.code >= 400:
                return [Reply(code=reply.code, lines=reply.lines, enhanced_status=reply.enhanced_status)]
            return [Reply(code=451, lines=(f"Error: relay to {self.host} failed: {type(exc).__name__}",),
                          enhanced_status="4.4.1")]
        replies: list[Reply] = []
        for rcpt in envelope.rcpt_tos:
            status = result.recipients.get(rcpt)
            if status is not None and status.ok:
                replies.append(Reply(code=250, lines=("Ok: relayed",), enhanced_status="2.0.0"))
            elif status is not None and status.code >= 400:
                enhanced = status.enhanced_status
                if enhanced is not None and enhanced[0] != str(status.code)[0]:
                    enhanced = None
                replies.append(Reply(code=status.code, lines=(f"Upstream: {status.text}",),
                                     enhanced_status=enhanced))
            else:
                replies.append(Reply(code=451, lines=("Error: relay refused the recipient",),
                                     enhanced_status="4.4.1"))
        return replies

    def on_rcpt(self, session: Session, command: Rcpt) -> bool:
        return True

    def on_message(self, session: Session, envelope: Envelope) -> MessageResult | Awaitable[MessageResult]:
        if _in_asyncio():
            return asyncio.get_running_loop().run_in_executor(None, self._finish, session, envelope)
        if _in_trio():
            import trio  # type: ignore[import-untyped, unused-ignore]

            # Abandoned on cancellation (the shutdown grace is over), as asyncio's
            # executor future is: the relay may still finish upstream, and the
            # client, told nothing, sends again (a duplicate, never a loss).
            run_sync: Any = trio.to_thread.run_sync
            return run_sync(self._finish, session, envelope, **{_trio_abandon_keyword(): True})  # type: ignore[no-any-return]
        return self._finish(session, envelope)

    def _finish(self, session: Session, envelope: Envelope) -> MessageResult:
        replies = self.relay(session, envelope)
        if session.lmtp:
            return replies
        if all(r.code < 400 for r in replies):
            return replies[0]
        if any(r.code < 400 for r in replies):
            # SMTP has one final reply and we keep no queue: accepting would lose
            # the refused recipients, so ask the client to retry (RFC 5321 §6.1
            # prefers a duplicate to a loss).
            return Reply(code=451, lines=("Error: some recipients were refused upstream, try again later",),
                         enhanced_status="4.4.1")
        return replies[0]


def _in_asyncio() -> bool:
    try:
        asyncio.get_running_loop()
        return True
    except RuntimeError:
        return False


@functools.cache
def _trio_abandon_keyword() -> str:
    """trio 0.23 renamed to_thread.run_sync's ``cancellable`` to
    ``abandon_on_cancel`` (looked up once, not per relayed message)."""
    import inspect

    import trio  # type: ignore[import-untyped, unused-ignore]

    params = inspect.signature(trio.to_thread.run_sync).parameters
    return "abandon_on_cancel" if "abandon_on_cancel" in params else "cancellable"


def _in_trio() -> bool:
    if "trio" not in sys.modules:
        return False
    import trio  # type: ignore[import-untyped, unused-ignore]

    try:
        trio.lowlevel.current_task()
        return True
    except RuntimeError:
        return False
