"""Exceptions raised by the core.

Two families, as in h11: a :class:`LocalProtocolError` means *we* (the caller of
:meth:`Connection.send`) tried to do something the protocol or our limits forbid;
nothing was written and the connection is unchanged unless the docstring says
otherwise.  A :class:`RemoteProtocolError` means the *peer* broke the protocol in a
way that cannot be recovered; the connection moves to ``ERROR``.  On the server
side it always carries the reply that should be sent before closing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from ._events import Reply

__all__ = [
    "SMTPProtocolError",
    "LocalProtocolError",
    "RemoteProtocolError",
    "TLSRequiredError",
]


class SMTPProtocolError(Exception):
    """Base class of the protocol errors raised by :class:`~smtpproto.Connection`."""


class LocalProtocolError(SMTPProtocolError, ValueError):
    """We tried to send something invalid: bad argument bytes, a command out of
    sequence, a limit exceeded.  Nothing is produced for the wire.

    It is also a :class:`ValueError` so that code written against smtplib-style
    argument checks (CPython bpo-43124) catches it.
    """


class TLSRequiredError(LocalProtocolError):
    """The configuration requires TLS and the command would go out in cleartext
    (SECURITY-CASES T-08, T-09).  Abort the session instead of downgrading."""


class RemoteProtocolError(SMTPProtocolError):
    """The peer violated the protocol beyond recovery.

    :attr:`reply` is the reply a server should send before it closes the
    connection (``None`` on the client side, where there is nothing to answer).
    Pass it to :meth:`Connection.send` (allowed once, in the ``ERROR`` state) to
    get its bytes.
    """

    def __init__(self, message: str, reply: "Reply | None" = None) -> None:
        super().__init__(message)
        self.reply = reply
