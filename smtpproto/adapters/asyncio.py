"""asyncio adapters.

Server: :class:`AsyncSMTPServer` (handler hooks may be coroutines).
"""

from ._asyncio_server import AsyncSMTPServer
from ._handler import Envelope, Handler, Session
from ._server_flow import ServerSettings

__all__ = ["AsyncSMTPServer", "Envelope", "Handler", "ServerSettings", "Session"]
