"""Blocking-sockets adapters (threads).

Server: :class:`SMTPServer` (a thread per connection).
"""

from ._handler import Envelope, Handler, Session
from ._server_flow import ServerSettings
from ._sockets_server import SMTPServer

__all__ = ["Envelope", "Handler", "SMTPServer", "ServerSettings", "Session"]
