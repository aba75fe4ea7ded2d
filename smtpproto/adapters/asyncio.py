"""asyncio adapters.

Server: :class:`AsyncSMTPServer` (handler hooks may be coroutines).
Client: :class:`AsyncSMTPClient`.
"""

from ._asyncio_client import AsyncSMTPClient
from ._asyncio_server import AsyncSMTPServer
from ._handler import Envelope, Handler, Session
from ._server_flow import ServerSettings

__all__ = ["AsyncSMTPClient", "AsyncSMTPServer", "Envelope", "Handler", "ServerSettings", "Session"]
