"""Blocking-sockets adapters (threads).

Server: :class:`SMTPServer` (a thread per connection).
Client: :class:`SMTPClient`.
"""

from ._handler import Envelope, Handler, Session
from ._server_flow import ServerSettings
from ._sockets_server import SMTPServer
from ._sockets_client import SMTPClient

__all__ = ["Envelope", "Handler", "SMTPClient", "SMTPServer", "ServerSettings", "Session"]
