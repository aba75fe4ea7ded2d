"""trio adapters (needs the optional ``trio`` extra: ``pip install "smtpproto[trio]"``).

Server: :class:`TrioSMTPServer` (handler hooks may be ``async def``).
Client: :class:`TrioSMTPClient`.
"""

try:
    import trio as _trio  # type: ignore[import-untyped, import-not-found, unused-ignore]  # noqa: F401  (only to fail early with a clear message)
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "smtpproto.adapters.trio needs the 'trio' package; install it with: pip install \"smtpproto[trio]\""
    ) from exc

from ._handler import Envelope, Handler, Session
from ._server_flow import ServerSettings
from ._trio_client import TrioSMTPClient
from ._trio_server import TrioSMTPServer

__all__ = ["Envelope", "Handler", "ServerSettings", "Session", "TrioSMTPClient", "TrioSMTPServer"]
