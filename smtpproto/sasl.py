"""SASL mechanisms as sans-I/O step objects, client and server (RFC 4422, RFC 4954).

Nothing here reads a socket or a clock. Two layers:

* **Mechanisms** work on decoded payloads (``bytes``).

  - Client: :meth:`ClientMechanism.initial_response`,
    :meth:`ClientMechanism.respond` (one call per 334 challenge) and
    :meth:`ClientMechanism.finish` when the server says 235 (SCRAM raises
    there if the server never proved it knows the password).
  - Server: :meth:`ServerMechanism.start` and :meth:`ServerMechanism.step`
    return a :data:`Step`: :class:`Challenge`, :class:`Success` or
    :class:`Failure` (with the SMTP reply to send). The application decides
    about credentials through a :class:`SaslBackend` it subclasses.

* **SMTP framing**: :class:`AuthClient` and :class:`AuthServer` turn those
  steps into the text of ``AUTH`` arguments, 334 lines and 235/5xx replies,
  with strict base64 (:func:`decode_response`), ``*`` cancellation, ``=``
  for an empty initial response (RFC 4954 §4), a cap on the number of
  challenges, and the TLS policy of SECURITY-CASES T-04 / T-08.

Secrets (passwords, tokens, salted keys, proofs) never appear in ``repr()``.
Only ``hashlib``, ``hmac``, ``secrets``, ``base64``, ``stringprep`` and
``unicodedata`` are used; randomness is injectable (``randbytes``) for tests.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import stringprep
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Final, Literal, Union

__all__ = [
    "SaslError",
    "AuthenticationCancelled",
    "MalformedAuthData",
    "Challenge",
    "Success",
    "Failure",
    "Step",
    "AUTH_SUCCESSFUL",
    "INVALID_CREDENTIALS",
    "MECHANISM_TOO_WEAK",
    "ENCRYPTION_REQUIRED",
    "TEMPORARY_FAILURE",
    "UNRECOGNIZED_MECHANISM",
    "MALFORMED",
    "CANCELLED",
    "TOO_MANY_STEPS",
    "ALREADY_AUTHENTICATED",
    "saslprep",
    "encode_challenge",
    "decode_challenge",
    "encode_response",
    "decode_response",
    "encode_initial_response",
    "decode_initial_response",
    "Credentials",
    "ClientMechanism",
    "PlainClient",
    "LoginClient",
    "CramMD5Client",
    "XOAuth2Client",
    "OAuthBearerClient",
    "ExternalClient",
    "AnonymousClient",
    "ScramClient",
    "ScramCredentials",
    "SaslBackend",
    "ServerMechanism",
    "PlainServer",
    "LoginServer",
    "CramMD5Server",
    "XOAuth2Server",
    "OAuthBearerServer",
    "ExternalServer",
    "AnonymousServer",
    "ScramServer",
    "CLIENT_MECHANISMS",
    "SERVER_MECHANISMS",
    "DEFAULT_PREFERENCE",
    "PLAINTEXT_MECHANISMS",
    "choose_mechanism",
    "client_mechanism",
    "server_mechanism",
    "AuthClient",
    "AuthServer",
    "AuthStep",
]

RandBytes = Callable[[int], bytes]


# ---------------------------------------------------------------------------
# Errors and outcomes
# ---------------------------------------------------------------------------


class SaslError(Exception):
    """A SASL exchange cannot go on (bad peer data, failed server proof, misuse)."""


@dataclass(frozen=True, slots=True)
class Failure:
    """The exchange failed; ``code``/``enhanced``/``text`` is the SMTP reply to send."""

    code: int
    enhanced: str
    text: str


class AuthenticationCancelled(SaslError):
    """The client answered a challenge with ``*`` (RFC 4954 §4)."""

    reply: Failure

    def __init__(self) -> None:
        super().__init__("authentication cancelled by the client")
        self.reply = CANCELLED


class MalformedAuthData(SaslError):
    """A 334 line, AUTH argument or payload is not valid (base64 or mechanism syntax)."""

    reply: Failure

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.reply = MALFORMED


@dataclass(frozen=True, slots=True)
class Challenge:
    """Send ``data`` to the client in a 334 reply (base64-encoded by the framing)."""

    data: bytes

    def __repr__(self) -> str:
        return f"Challenge(<{len(self.data)} bytes>)"


@dataclass(frozen=True, slots=True)
class Success:
    """The client is authenticated as ``authcid``, acting as ``authzid`` (None = itself)."""

    authcid: str
    authzid: str | None = None
    mechanism: str = ""


Step = Union[Challenge, Success, Failure]

# RFC 4954 §6 and RFC 3463 / RFC 5248 codes, with Postfix-like wording.
AUTH_SUCCESSFUL: Final = (235, "2.7.0", "Authentication successful")
INVALID_CREDENTIALS: Final = Failure(535, "5.7.8", "Error: authentication failed: authentication credentials invalid")
MECHANISM_TOO_WEAK: Final = Failure(534, "5.7.9", "Authentication mechanism is too weak")
ENCRYPTION_REQUIRED: Final = Failure(538, "5.7.11", "Encryption required for requested authentication mechanism")
TEMPORARY_FAILURE: Final = Failure(454, "4.7.0", "Temporary authentication failure")
UNRECOGNIZED_MECHANISM: Final = Failure(504, "5.5.4", "Unrecognized authentication type")
MALFORMED: Final = Failure(501, "5.5.2", "Cannot decode response")
CANCELLED: Final = Failure(501, "5.7.0", "Authentication aborted")
TOO_MANY_STEPS: Final = Failure(501, "5.7.0", "Authentication aborted: too many steps")
ALREADY_AUTHENTICATED: Final = Failure(503, "5.5.1", "Error: already authenticated")
_INITIAL_NOT_ALLOWED: Final = Failure(501, "5.5.2", "Initial response not allowed for this mechanism")


# ---------------------------------------------------------------------------
# SASLprep (RFC 4013, a profile of stringprep RFC 3454)
# ---------------------------------------------------------------------------


def saslprep(text: str, *, allow_unassigned: bool = True) -> str:
    """Prepare *text* per RFC 4013 (used for SCRAM user names and passwords).

    *allow_unassigned*: True for "queries" (what a client sends), False for
    "stored strings" (RFC 3454 §7). Raises ``ValueError`` for prohibited
    output or a bidirectional-text violation.
    """
    # §2.1 mapping: non-ASCII spaces -> SPACE, "commonly mapped to nothing" removed.
    mapped = "".join(
        " " if stringprep.in_table_c12(c) else c for c in text if not stringprep.in_table_b1(c)
    )
    # §2.2 normalisation: NFKC.
    norm = unicodedata.normalize("NFKC", mapped)
    if not norm:
        return norm
    # §2.3 prohibited output.
    for c in norm:
        if (
            stringprep.in_table_c12(c)
            or stringprep.in_table_c21_c22(c)
            or stringprep.in_table_c3(c)
            or stringprep.in_table_c4(c)
            or stringprep.in_table_c5(c)
            or stringprep.in_table_c6(c)
            or stringprep.in_table_c7(c)
            or stringprep.in_table_c8(c)
            or stringprep.in_table_c9(c)
        ):
            raise ValueError("SASLprep: prohibited character")
        # §2.5 unassigned code points.
        if not allow_unassigned and stringprep.in_table_a1(c):
            raise ValueError("SASLprep: unassigned code point")
    # §2.4 bidirectional characters (RFC 3454 §6).
    if any(stringprep.in_table_d1(c) for c in norm):
        if any(stringprep.in_table_d2(c) for c in norm):
            raise ValueError("SASLprep: mixed right-to-left and left-to-right text")
        if not (stringprep.in_table_d1(norm[0]) and stringprep.in_table_d1(norm[-1])):
            raise ValueError("SASLprep: right-to-left text must start and end with RandALCat")
    return norm


# ---------------------------------------------------------------------------
# base64 framing of 334 lines (RFC 4954 §4)
# ---------------------------------------------------------------------------

_B64_RE: Final = re.compile(r"[A-Za-z0-9+/]*={0,2}\Z")


def _strict_b64decode(text: str) -> bytes:
    """Decode canonical base64 only: no whitespace, correct padding, no stray bits."""
    if not _B64_RE.match(text) or len(text) % 4:
        raise MalformedAuthData("invalid base64")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedAuthData("invalid base64") from None
    if base64.b64encode(data).decode("ascii") != text:
        raise MalformedAuthData("non-canonical base64")
    return data


def encode_challenge(data: bytes) -> str:
    """The text of a 334 line for a server challenge (``""`` for an empty one)."""
    return base64.b64encode(data).decode("ascii")


def decode_challenge(text: str) -> bytes:
    """Decode the text of a 334 line received by a client (strict base64).

    Raises :class:`MalformedAuthData`.
    """
    return _strict_b64decode(text.strip(" "))


def encode_response(data: bytes) -> str:
    """The line a client sends in answer to a 334 challenge (``""`` if empty)."""
    return base64.b64encode(data).decode("ascii")


def decode_response(line: str | bytes) -> bytes:
    """Decode a client's answer to a 334 challenge (without its CRLF).

    ``*`` raises :class:`AuthenticationCancelled` (reply 501 5.7.0); anything
    but canonical base64 raises :class:`MalformedAuthData` (reply 501 5.5.2).
    An empty line is an empty response.
    """
    text = line.decode("ascii", "replace") if isinstance(line, (bytes, bytearray)) else line
    if text == "*":
        raise AuthenticationCancelled()
    return _strict_b64decode(text)


def encode_initial_response(data: bytes | None) -> str | None:
    """The AUTH command's initial-response argument: None, ``"="`` (empty) or base64."""
    if data is None:
        return None
    if not data:
        return "="
    return base64.b64encode(data).decode("ascii")


def decode_initial_response(text: str | None) -> bytes | None:
    """Decode the initial-response argument of ``AUTH`` (RFC 4954 §4).

    None: no initial response; ``"="``: an empty one. Raises
    :class:`MalformedAuthData` for invalid base64 and
    :class:`AuthenticationCancelled` for ``*``.
    """
    if text is None:
        return None
    if text == "=":
        return b""
    if text == "*":
        raise AuthenticationCancelled()
    if not text:
        raise MalformedAuthData("empty initial response must be sent as '='")
    return _strict_b64decode(text)


# ---------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------


def _utf8(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedAuthData(f"{what} is not UTF-8") from None


def _saslname_encode(name: str) -> str:
    # RFC 5802 §5.1 / RFC 5801 §4: "=" -> "=3D", "," -> "=2C".
    return name.replace("=", "=3D").replace(",", "=2C")


def _saslname_decode(text: str) -> str:
    if re.search(r"=(?!2C|3D)", text):
        raise MalformedAuthData("invalid saslname escape")
    return text.replace("=2C", ",").replace("=3D", "=")


def _no_nul(value: str, what: str) -> None:
    if "\x00" in value:
        raise ValueError(f"{what} must not contain NUL")


def _oauth_error(status: str = "invalid_token", scope: str | None = None, openid_configuration: str | None = None) -> bytes:
    # RFC 7628 §3.2.2: a JSON object with "status", optionally "scope" and
    # "openid-configuration".
    obj: dict[str, str] = {"status": status}
    if scope is not None:
        obj["scope"] = scope
    if openid_configuration is not None:
        obj["openid-configuration"] = openid_configuration
    return json.dumps(obj, separators=(",", ":")).encode("utf-8")


# ---------------------------------------------------------------------------
# Client side
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a client authenticates with. Secrets are hidden from ``repr()``.

    ``username`` is the authentication identity (authcid); ``authzid`` the
    identity to act as (None = the same); ``password`` for password-based
    mechanisms; ``token`` an OAuth 2.0 bearer token.
    """

    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    authzid: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        have = [n for n in ("username", "password", "authzid", "token") if getattr(self, n) is not None]
        return f"Credentials(<{', '.join(have) or 'empty'}>)"


class ClientMechanism(ABC):
    """A client side SASL mechanism (one exchange; create a new one per AUTH).

    ``plaintext`` marks mechanisms that reveal a reusable secret (password or
    bearer token) to anyone who can read the connection: they must not be used
    without TLS (SECURITY-CASES T-08).
    """

    #: The mechanism name as sent in the AUTH command.
    name: str
    plaintext: ClassVar[bool] = False
    #: The server may send 334 prompts that are not base64 (LOGIN, in the wild).
    tolerant_challenges: ClassVar[bool] = False

    def __init__(self) -> None:
        self._done = False

    def initial_response(self) -> bytes | None:
        """The payload to send with the AUTH command, or None for none."""
        return None

    @abstractmethod
    def respond(self, challenge: bytes) -> bytes:
        """Answer one 334 challenge. Raises :class:`SaslError` for bad server data."""

    def finish(self) -> None:
        """Called when the server replied 235; raises :class:`SaslError` if it
        never proved itself (SCRAM) or the exchange is incomplete."""
        self._done = True

    @property
    def done(self) -> bool:
        """True once :meth:`finish` was called successfully."""
        return self._done

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} done={self._done}>"


class PlainClient(ClientMechanism):
    """PLAIN (RFC 4616): ``[authzid] NUL authcid NUL passwd`` as the initial response."""

    name = "PLAIN"
    plaintext = True

    def __init__(self, username: str, password: str, authzid: str | None = None) -> None:
        super().__init__()
        for value, what in ((username, "username"), (password, "password"), (authzid or "", "authzid")):
            _no_nul(value, what)
        if not username or not password:
            raise ValueError("PLAIN needs a username and a password")
        self.__payload = f"{authzid or ''}\x00{username}\x00{password}".encode("utf-8")
        self._sent = False

    def initial_response(self) -> bytes:
        self._sent = True
        return self.__payload

    def respond(self, challenge: bytes) -> bytes:
        # RFC 4616 §2: a server without initial-response support sends an empty
        # challenge; anything after the credentials is a protocol error.
        if self._sent or challenge:
            raise SaslError("unexpected PLAIN challenge")
        self._sent = True
        return self.__payload


class LoginClient(ClientMechanism):
    """LOGIN (draft-murchison-sasl-login): user name, then password, on prompts.

    Tolerant of the prompt variants servers send ("Username:", "User Name",
    "username:", non-base64 prompts, no prompt text at all): a prompt that
    mentions a password gets the password, one that mentions a user gets the
    user name, otherwise the order decides. With ``initial_response=True`` the
    user name goes with the AUTH command.
    """

    name = "LOGIN"
    plaintext = True
    tolerant_challenges = True

    def __init__(self, username: str, password: str, *, initial_response: bool = False) -> None:
        super().__init__()
        if not username or not password:
            raise ValueError("LOGIN needs a username and a password")
        self.__username = username.encode("utf-8")
        self.__password = password.encode("utf-8")
        self._use_ir = initial_response
        self._user_sent = False
        self._pass_sent = False

    def initial_response(self) -> bytes | None:
        if not self._use_ir:
            return None
        self._user_sent = True
        return self.__username

    def respond(self, challenge: bytes) -> bytes:
        if self._pass_sent:
            raise SaslError("unexpected LOGIN challenge after the password")
        prompt = challenge.decode("utf-8", "replace").strip().lower()
        if "pass" in prompt:
            want = "password"
        elif "user" in prompt or "name" in prompt or "login" in prompt:
            want = "username"
        else:
            want = "password" if self._user_sent else "username"
        if want == "username" and not self._user_sent:
            self._user_sent = True
            return self.__username
        self._user_sent = True
        self._pass_sent = True
        return self.__password

    def finish(self) -> None:
        if not self._pass_sent:
            raise SaslError("server accepted LOGIN before the password was sent")
        super().finish()


class CramMD5Client(ClientMechanism):
    """CRAM-MD5 (RFC 2195): ``user SP hex(HMAC-MD5(secret, challenge))``."""

    name = "CRAM-MD5"

    def __init__(self, username: str, password: str) -> None:
        super().__init__()
        if not username or " " in username:
            raise ValueError("CRAM-MD5 needs a username without spaces")
        self.__username = username
        self.__secret = password.encode("utf-8")
        self._answered = False

    def respond(self, challenge: bytes) -> bytes:
        if self._answered:
            raise SaslError("unexpected second CRAM-MD5 challenge")
        if not challenge:
            raise SaslError("empty CRAM-MD5 challenge")
        self._answered = True
        digest = hmac.new(self.__secret, challenge, hashlib.md5).hexdigest()
        return f"{self.__username} {digest}".encode("utf-8")

    def finish(self) -> None:
        if not self._answered:
            raise SaslError("server accepted CRAM-MD5 without a challenge")
        super().finish()


class XOAuth2Client(ClientMechanism):
    """XOAUTH2 (Google/Microsoft): ``user=U ^A auth=Bearer T ^A ^A``.

    On failure the server sends a JSON error as a challenge; the client answers
    with an empty response and the error is kept in :attr:`error`.
    """

    name = "XOAUTH2"
    plaintext = True

    def __init__(self, username: str, token: str) -> None:
        super().__init__()
        for value, what in ((username, "username"), (token, "token")):
            if not value or any(c in value for c in "\x00\x01\r\n"):
                raise ValueError(f"invalid XOAUTH2 {what}")
        self.__payload = f"user={username}\x01auth=Bearer {token}\x01\x01".encode("utf-8")
        self.error: dict[str, object] | None = None

    def initial_response(self) -> bytes:
        return self.__payload

    def respond(self, challenge: bytes) -> bytes:
        if not challenge:
            # A server without initial-response support asks with an empty challenge.
            return self.__payload
        if self.error is not None:
            raise SaslError("unexpected XOAUTH2 challenge")
        self.error = _parse_json_error(challenge)
        return b""


def _parse_json_error(data: bytes) -> dict[str, object]:
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise SaslError("server sent an undecodable OAuth error") from None
    if not isinstance(obj, dict):
        raise SaslError("server sent an OAuth error that is not a JSON object")
    return obj


class OAuthBearerClient(ClientMechanism):
    """OAUTHBEARER (RFC 7628 §3.1): GS2 header, then ^A-separated key/values.

    On failure the server sends a JSON error challenge (§3.2.2); the client
    answers with a single ^A (§3.2.3) and keeps the error in :attr:`error`.
    """

    name = "OAUTHBEARER"
    plaintext = True

    def __init__(
        self,
        token: str,
        *,
        authzid: str | None = None,
        host: str | None = None,
        port: int | None = None,
    ) -> None:
        super().__init__()
        # RFC 7628 §3.1: value = *(VCHAR / SP / HTAB / CR / LF); the bearer
        # token itself is b64token (RFC 6750 §2.1).
        if not token or not re.fullmatch(r"[A-Za-z0-9\-._~+/]+=*", token):
            raise ValueError("invalid bearer token")
        for value in (authzid or "", host or ""):
            if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
                raise ValueError("control character in OAUTHBEARER field")
        gs2 = "n," + (f"a={_saslname_encode(authzid)}" if authzid else "") + ","
        kv = ""
        if host is not None:
            kv += f"host={host}\x01"
        if port is not None:
            if not 0 < port < 65536:
                raise ValueError("invalid port")
            kv += f"port={port}\x01"
        kv += f"auth=Bearer {token}\x01"
        self.__payload = (gs2 + "\x01" + kv + "\x01").encode("utf-8")
        self.error: dict[str, object] | None = None

    def initial_response(self) -> bytes:
        return self.__payload

    def respond(self, challenge: bytes) -> bytes:
        if not challenge:
            return self.__payload
        if self.error is not None:
            raise SaslError("unexpected OAUTHBEARER challenge")
        self.error = _parse_json_error(challenge)
        return b"\x01"


class ExternalClient(ClientMechanism):
    """EXTERNAL (RFC 4422 Appendix A): identity from outside SASL (a TLS client
    certificate); the payload is the optional authzid."""

    name = "EXTERNAL"

    def __init__(self, authzid: str | None = None) -> None:
        super().__init__()
        if authzid is not None:
            _no_nul(authzid, "authzid")
        self._authzid = (authzid or "").encode("utf-8")
        self._sent = False

    def initial_response(self) -> bytes:
        self._sent = True
        return self._authzid

    def respond(self, challenge: bytes) -> bytes:
        if self._sent and challenge:
            raise SaslError("unexpected EXTERNAL challenge")
        self._sent = True
        return self._authzid


class AnonymousClient(ClientMechanism):
    """ANONYMOUS (RFC 4505): optional trace information (at most 255 characters)."""

    name = "ANONYMOUS"

    def __init__(self, trace: str = "") -> None:
        super().__init__()
        if len(trace) > 255 or any(ord(c) < 0x20 for c in trace):
            raise ValueError("ANONYMOUS trace must be at most 255 printable characters")
        self._trace = trace.encode("utf-8")
        self._sent = False

    def initial_response(self) -> bytes:
        self._sent = True
        return self._trace

    def respond(self, challenge: bytes) -> bytes:
        if self._sent and challenge:
            raise SaslError("unexpected ANONYMOUS challenge")
        self._sent = True
        return self._trace


# --- SCRAM (RFC 5802, RFC 7677) --------------------------------------------

_SCRAM_HASHES: Final[dict[str, str]] = {"SCRAM-SHA-1": "sha1", "SCRAM-SHA-256": "sha256"}
CHANNEL_BINDING_TYPES: Final = ("tls-exporter", "tls-server-end-point", "tls-unique")
_CB_NAME_RE: Final = re.compile(r"[A-Za-z0-9.-]+\Z")
_PRINTABLE_NONCE_RE: Final = re.compile(r"[\x21-\x2b\x2d-\x7e]+\Z")  # printable except ","


def _hmac(key: bytes, msg: bytes, hash_name: str) -> bytes:
    return hmac.new(key, msg, hash_name).digest()


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b))


def _salted_password(password: str, salt: bytes, iterations: int, hash_name: str) -> bytes:
    # RFC 5802 §3: SaltedPassword := Hi(Normalize(password), salt, i) = PBKDF2.
    return hashlib.pbkdf2_hmac(hash_name, saslprep(password).encode("utf-8"), salt, iterations)


@dataclass(frozen=True, slots=True)
class ScramCredentials:
    """What a SCRAM server stores for a user (RFC 5802 §3): never the password.

    ``hash_name`` is a hashlib name ("sha1" or "sha256").
    """

    salt: bytes = field(repr=False)
    iterations: int
    stored_key: bytes = field(repr=False)
    server_key: bytes = field(repr=False)
    hash_name: str = "sha256"

    def __post_init__(self) -> None:
        if self.iterations < 1:
            raise ValueError("iterations must be >= 1")
        if self.hash_name not in ("sha1", "sha256"):
            raise ValueError("hash_name must be 'sha1' or 'sha256'")
        if not self.salt:
            raise ValueError("salt must not be empty")

    def __repr__(self) -> str:
        return f"ScramCredentials(hash_name={self.hash_name!r}, iterations={self.iterations}, <keys hidden>)"

    @classmethod
    def derive(
        cls,
        password: str,
        salt: bytes | None = None,
        iterations: int = 4096,
        hash_name: str = "sha256",
        *,
        randbytes: RandBytes = secrets.token_bytes,
    ) -> ScramCredentials:
        """Derive the stored keys from *password* (SASLprep'd per RFC 5802 §2.2).

        *salt* defaults to 16 random bytes. *hash_name* is "sha1" or "sha256"
        (or the mechanism name "SCRAM-SHA-1"/"SCRAM-SHA-256").
        """
        hash_name = _SCRAM_HASHES.get(hash_name.upper(), hash_name.lower())
        if salt is None:
            salt = randbytes(16)
        salted = _salted_password(password, salt, iterations, hash_name)
        client_key = _hmac(salted, b"Client Key", hash_name)
        stored_key = hashlib.new(hash_name, client_key).digest()
        server_key = _hmac(salted, b"Server Key", hash_name)
        return cls(salt, iterations, stored_key, server_key, hash_name)


def _parse_attrs(text: str) -> list[tuple[str, str]]:
    """Split ``a=v,b=w`` into pairs (RFC 5802 §7 attr-val), strictly."""
    out: list[tuple[str, str]] = []
    for part in text.split(","):
        if len(part) < 2 or part[1] != "=" or not part[0].isalpha() or not part[0].isascii():
            raise MalformedAuthData("malformed SCRAM attribute")
        out.append((part[0], part[2:]))
    return out


class ScramClient(ClientMechanism):
    """SCRAM-SHA-1 / SCRAM-SHA-256 and their -PLUS variants (RFC 5802, RFC 7677).

    *channel_binding* is ``(type, data)`` supplied by the adapter from the TLS
    layer (``tls-exporter`` for TLS 1.3, RFC 9266; ``tls-server-end-point``,
    RFC 5929). With it and a -PLUS name, the binding is used; with it and a
    plain name, the client says "y" (it could bind but the server offered no
    -PLUS), which lets a server that does support -PLUS detect a downgrade.
    *nonce* fixes the client nonce (tests); otherwise *randbytes* makes one.
    Iteration counts outside ``[min_iterations, max_iterations]`` are refused.
    """

    tolerant_challenges = False

    def __init__(
        self,
        username: str,
        password: str,
        *,
        mechanism: str = "SCRAM-SHA-256",
        authzid: str | None = None,
        channel_binding: tuple[str, bytes] | None = None,
        nonce: str | None = None,
        randbytes: RandBytes = secrets.token_bytes,
        min_iterations: int = 4096,
        max_iterations: int = 1_000_000,
    ) -> None:
        super().__init__()
        mech = mechanism.upper()
        self._plus = mech.endswith("-PLUS")
        base = mech[: -len("-PLUS")] if self._plus else mech
        if base not in _SCRAM_HASHES:
            raise ValueError(f"unknown SCRAM mechanism {mechanism!r}")
        self.name = mech
        self._hash = _SCRAM_HASHES[base]
        if self._plus and channel_binding is None:
            raise ValueError(f"{mech} needs channel binding data")
        if channel_binding is not None and not _CB_NAME_RE.match(channel_binding[0]):
            raise ValueError("invalid channel binding type name")
        if nonce is None:
            nonce = base64.b64encode(randbytes(18)).decode("ascii")
        if not _PRINTABLE_NONCE_RE.match(nonce):
            raise ValueError("SCRAM nonce must be printable ASCII without ','")
        self.__user = _saslname_encode(saslprep(username))
        self.__password = password
        if channel_binding is not None and self._plus:
            self._cb_flag = f"p={channel_binding[0]}"
            self.__cb_data = channel_binding[1]
        else:
            self._cb_flag = "y" if channel_binding is not None else "n"
            self.__cb_data = b""
        self._gs2 = f"{self._cb_flag}," + (f"a={_saslname_encode(authzid)}" if authzid else "") + ","
        self.__cnonce = nonce
        self._min_i = min_iterations
        self._max_i = max_iterations
        self._state: Literal["initial", "first-sent", "final-sent", "verified"] = "initial"
        self.__expected_server_sig = b""

    def initial_response(self) -> bytes:
        if self._state != "initial":
            raise SaslError("SCRAM exchange already started")
        self._state = "first-sent"
        self._client_first_bare = f"n={self.__user},r={self.__cnonce}"
        return (self._gs2 + self._client_first_bare).encode("utf-8")

    def respond(self, challenge: bytes) -> bytes:
        if self._state == "initial" and not challenge:
            # Server without initial-response support: empty 334 first.
            return self.initial_response()
        if self._state == "first-sent":
            return self._client_final(challenge)
        if self._state == "final-sent":
            self._verify_server_final(challenge)
            return b""
        raise SaslError("unexpected SCRAM challenge")

    def _client_final(self, challenge: bytes) -> bytes:
        server_first = _utf8(challenge, "server-first-message")
        attrs = _parse_attrs(server_first)
        if attrs and attrs[0][0] == "m":
            # RFC 5802 §5.1: mandatory extensions we do not know -> fail.
            raise SaslError("SCRAM server requires an unsupported extension")
        if len(attrs) < 3 or [a for a, _ in attrs[:3]] != ["r", "s", "i"]:
            raise SaslError("malformed SCRAM server-first-message")
        nonce, salt_b64, iter_text = attrs[0][1], attrs[1][1], attrs[2][1]
        if not nonce.startswith(self.__cnonce) or len(nonce) <= len(self.__cnonce):
            raise SaslError("SCRAM server nonce does not extend the client nonce")
        if not _PRINTABLE_NONCE_RE.match(nonce):
            raise SaslError("invalid SCRAM nonce")
        try:
            salt = _strict_b64decode(salt_b64)
        except MalformedAuthData:
            raise SaslError("invalid SCRAM salt") from None
        if not salt or not iter_text.isdigit() or len(iter_text) > 9:
            raise SaslError("invalid SCRAM salt or iteration count")
        iterations = int(iter_text)
        if not self._min_i <= iterations <= self._max_i:
            raise SaslError(f"SCRAM iteration count {iterations} outside the accepted range")
        h = self._hash
        salted = _salted_password(self.__password, salt, iterations, h)
        client_key = _hmac(salted, b"Client Key", h)
        stored_key = hashlib.new(h, client_key).digest()
        cbind = base64.b64encode(self._gs2.encode("utf-8") + self.__cb_data).decode("ascii")
        without_proof = f"c={cbind},r={nonce}"
        auth_message = f"{self._client_first_bare},{server_first},{without_proof}".encode("utf-8")
        client_sig = _hmac(stored_key, auth_message, h)
        proof = base64.b64encode(_xor(client_key, client_sig)).decode("ascii")
        server_key = _hmac(salted, b"Server Key", h)
        self.__expected_server_sig = _hmac(server_key, auth_message, h)
        self._state = "final-sent"
        return f"{without_proof},p={proof}".encode("utf-8")

    def _verify_server_final(self, data: bytes) -> None:
        text = _utf8(data, "server-final-message")
        attrs = _parse_attrs(text)
        key, value = attrs[0]
        if key == "e":
            raise SaslError(f"SCRAM server error: {value}")
        if key != "v":
            raise SaslError("malformed SCRAM server-final-message")
        try:
            sig = _strict_b64decode(value)
        except MalformedAuthData:
            raise SaslError("malformed SCRAM server signature") from None
        if not hmac.compare_digest(sig, self.__expected_server_sig):
            raise SaslError("SCRAM server signature mismatch: the server does not know the password")
        self._state = "verified"

    def finish(self) -> None:
        if self._state != "verified":
            raise SaslError("server claimed success without proving it knows the password")
        super().finish()

    def __repr__(self) -> str:
        return f"<ScramClient {self.name} state={self._state}>"


# ---------------------------------------------------------------------------
# Server side
# ---------------------------------------------------------------------------


class SaslBackend:
    """The application's decisions about credentials; subclass what you need.

    Each ``verify_*`` returns True, False (535 5.7.8) or a :class:`Failure`
    to send instead (e.g. :data:`TEMPORARY_FAILURE` when the user database
    is down). The defaults refuse everything.
    """

    def verify_password(self, authcid: str, password: str, authzid: str | None) -> bool | Failure:
        """PLAIN and LOGIN: check a password (and whether authcid may act as authzid)."""
        return False

    def lookup_secret(self, authcid: str) -> str | None:
        """CRAM-MD5: the shared secret (password) of *authcid*, or None."""
        return None

    def lookup_scram(self, authcid: str, hash_name: str) -> ScramCredentials | None:
        """SCRAM: the stored keys of *authcid* for "sha1" / "sha256", or None."""
        return None

    def authorize(self, authcid: str, authzid: str | None) -> bool:
        """May *authcid* act as *authzid*? (SCRAM, CRAM-MD5). Default: only as itself."""
        return authzid is None or authzid == authcid

    def verify_token(self, user: str | None, token: str, fields: Mapping[str, str]) -> bool | str | Failure:
        """XOAUTH2 / OAUTHBEARER: check a bearer token for *user* (None for
        OAUTHBEARER without authzid). *fields* holds host/port if sent.

        Return True (valid for *user*), the identity the token belongs to (a
        ``str``; becomes ``Success.authcid``), False, or a :class:`Failure`.
        """
        return False

    def verify_external(self, identity: str, authzid: str | None) -> bool | Failure:
        """EXTERNAL: may the externally authenticated *identity* act as *authzid*?"""
        return authzid is None or authzid == identity

    def allow_anonymous(self, trace: str) -> bool:
        """ANONYMOUS: accept an anonymous login with this trace text?"""
        return False


class ServerMechanism(ABC):
    """A server side SASL mechanism: :meth:`start`, then :meth:`step` per response.

    At most *max_challenges* challenges are sent; one more and the exchange
    fails with :data:`TOO_MANY_STEPS` (it never loops). After the final
    :class:`Success` or :class:`Failure`, further calls raise :class:`SaslError`.
    """

    name: ClassVar[str]
    plaintext: ClassVar[bool] = False
    allows_initial_response: ClassVar[bool] = True

    def __init__(self, backend: SaslBackend, *, max_challenges: int = 10) -> None:
        self.backend = backend
        self.max_challenges = max_challenges
        self._challenges = 0
        self._finished = False
        self.result: Success | Failure | None = None

    @property
    def mechanism_name(self) -> str:
        """The name this instance runs under (SCRAM instances vary)."""
        return self.name

    def start(self, initial: bytes | None) -> Step:
        """Begin with the decoded initial response (None if the client sent none)."""
        if self._finished or self._challenges:
            raise SaslError("mechanism already started")
        if initial is not None and not self.allows_initial_response:
            return self._finish(_INITIAL_NOT_ALLOWED)
        return self._track(self._start(initial))

    def step(self, data: bytes) -> Step:
        """Process the decoded response to the last challenge."""
        if self._finished:
            raise SaslError("exchange already finished")
        if not self._challenges:
            raise SaslError("step() before start()")
        return self._track(self._step(data))

    def cancel(self) -> Failure:
        """The client sent ``*``: the exchange ends with 501 5.7.0."""
        self._finish(CANCELLED)
        return CANCELLED

    def _finish(self, outcome: Success | Failure) -> Success | Failure:
        self._finished = True
        self.result = outcome
        return outcome

    def _track(self, step: Step) -> Step:
        if isinstance(step, Challenge):
            self._challenges += 1
            if self._challenges > self.max_challenges:
                return self._finish(TOO_MANY_STEPS)
            return step
        if isinstance(step, Success) and not step.mechanism:
            step = Success(step.authcid, step.authzid, self.mechanism_name)
        return self._finish(step)

    def _decide(self, verdict: bool | Failure, success: Success) -> Success | Failure:
        if isinstance(verdict, Failure):
            return verdict
        return success if verdict is True else INVALID_CREDENTIALS

    @abstractmethod
    def _start(self, initial: bytes | None) -> Step: ...

    @abstractmethod
    def _step(self, data: bytes) -> Step: ...

    def __repr__(self) -> str:
        state = "finished" if self._finished else f"challenges={self._challenges}"
        return f"<{type(self).__name__} {self.mechanism_name} {state}>"


class PlainServer(ServerMechanism):
    """PLAIN (RFC 4616 §2): ``[authzid] NUL authcid NUL passwd``."""

    name = "PLAIN"
    plaintext = True

    def _start(self, initial: bytes | None) -> Step:
        if initial is None:
            return Challenge(b"")
        return self._step(initial)

    def _step(self, data: bytes) -> Step:
        parts = data.split(b"\x00")
        if len(parts) != 3 or not parts[1] or not parts[2]:
            return MALFORMED
        try:
            authzid, authcid, password = (p.decode("utf-8") for p in parts)
        except UnicodeDecodeError:
            return MALFORMED
        # RFC 4616 §2: each field at most 255 octets.
        if any(len(p) > 255 for p in parts):
            return MALFORMED
        az = authzid or None
        return self._decide(self.backend.verify_password(authcid, password, az), Success(authcid, az))


class LoginServer(ServerMechanism):
    """LOGIN: prompts "Username:" and "Password:" (an initial response is the user name)."""

    name = "LOGIN"
    plaintext = True

    def __init__(self, backend: SaslBackend, *, max_challenges: int = 10) -> None:
        super().__init__(backend, max_challenges=max_challenges)
        self._username: str | None = None

    def _start(self, initial: bytes | None) -> Step:
        if initial is None:
            return Challenge(b"Username:")
        return self._got_username(initial)

    def _got_username(self, data: bytes) -> Step:
        try:
            user = data.decode("utf-8")
        except UnicodeDecodeError:
            return MALFORMED
        if not user or "\x00" in user:
            return MALFORMED
        self._username = user
        return Challenge(b"Password:")

    def _step(self, data: bytes) -> Step:
        if self._username is None:
            return self._got_username(data)
        try:
            password = data.decode("utf-8")
        except UnicodeDecodeError:
            return MALFORMED
        if not password or "\x00" in password:
            return MALFORMED
        user = self._username
        return self._decide(self.backend.verify_password(user, password, None), Success(user))


class CramMD5Server(ServerMechanism):
    """CRAM-MD5 (RFC 2195): challenge ``<random.random@hostname>``, answer ``user SP hexdigest``."""

    name = "CRAM-MD5"
    allows_initial_response = False

    def __init__(
        self,
        backend: SaslBackend,
        *,
        hostname: str = "localhost",
        randbytes: RandBytes = secrets.token_bytes,
        max_challenges: int = 10,
        challenge: bytes | None = None,
    ) -> None:
        super().__init__(backend, max_challenges=max_challenges)
        if challenge is None:
            a = int.from_bytes(randbytes(4), "big")
            b = int.from_bytes(randbytes(4), "big")
            challenge = f"<{a}.{b}@{hostname}>".encode("ascii")
        self._challenge = challenge

    def _start(self, initial: bytes | None) -> Step:
        return Challenge(self._challenge)

    def _step(self, data: bytes) -> Step:
        m = re.fullmatch(rb"(\S{1,255}) ([0-9a-f]{32})", data)
        if not m:
            return MALFORMED
        try:
            user = m.group(1).decode("utf-8")
        except UnicodeDecodeError:
            return MALFORMED
        secret = self.backend.lookup_secret(user)
        if secret is None:
            return INVALID_CREDENTIALS
        expected = hmac.new(secret.encode("utf-8"), self._challenge, hashlib.md5).hexdigest()
        if not hmac.compare_digest(expected.encode("ascii"), m.group(2)):
            return INVALID_CREDENTIALS
        if not self.backend.authorize(user, None):
            return INVALID_CREDENTIALS
        return Success(user)


class _OAuthServerBase(ServerMechanism):
    plaintext = True

    def __init__(
        self,
        backend: SaslBackend,
        *,
        max_challenges: int = 10,
        error_scope: str | None = None,
        openid_configuration: str | None = None,
    ) -> None:
        super().__init__(backend, max_challenges=max_challenges)
        self._error_sent = False
        self._error = _oauth_error("invalid_token", error_scope, openid_configuration)
        self._pending_failure: Failure = INVALID_CREDENTIALS

    def _start(self, initial: bytes | None) -> Step:
        if initial is None or initial == b"":
            return Challenge(b"")
        return self._check(initial)

    def _step(self, data: bytes) -> Step:
        if self._error_sent:
            # RFC 7628 §3.2.3: after the error challenge the client sends a
            # dummy response and the server fails the exchange.
            return self._pending_failure
        return self._check(data)

    def _reject(self, verdict: Failure | None) -> Step:
        if verdict is not None and verdict.code // 100 == 4:
            return verdict  # temporary failures are reported directly
        self._error_sent = True
        if verdict is not None:
            self._pending_failure = verdict
        return Challenge(self._error)

    @abstractmethod
    def _check(self, data: bytes) -> Step: ...


class XOAuth2Server(_OAuthServerBase):
    """XOAUTH2: ``user=U ^A auth=Bearer T ^A ^A``; a bad token gets a JSON error challenge."""

    name = "XOAUTH2"

    def _check(self, data: bytes) -> Step:
        m = re.fullmatch(rb"user=([^\x01]+)\x01auth=Bearer ([^\x01]+)\x01\x01", data)
        if not m:
            return MALFORMED
        try:
            user = m.group(1).decode("utf-8")
            token = m.group(2).decode("ascii")
        except UnicodeDecodeError:
            return MALFORMED
        verdict = self.backend.verify_token(user, token, {})
        if verdict is True:
            return Success(user)
        if isinstance(verdict, str) and verdict:
            return Success(verdict, None if verdict == user else user)
        return self._reject(verdict if isinstance(verdict, Failure) else None)


class OAuthBearerServer(_OAuthServerBase):
    """OAUTHBEARER (RFC 7628 §3): GS2 header, ``^A``-separated ``key=value`` pairs."""

    name = "OAUTHBEARER"

    def _check(self, data: bytes) -> Step:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return MALFORMED
        # gs2-header: cbind flag "n" or "y" (no channel binding for OAUTHBEARER).
        m = re.fullmatch(r"([ny]),(a=[^,\x01]*)?,\x01((?:[A-Za-z]+=[^\x01]*\x01)*)\x01", text)
        if not m:
            return MALFORMED
        authzid: str | None = None
        if m.group(2):
            try:
                authzid = _saslname_decode(m.group(2)[2:]) or None
            except MalformedAuthData:
                return MALFORMED
        fields: dict[str, str] = {}
        for pair in m.group(3).split("\x01")[:-1]:
            key, _, value = pair.partition("=")
            if key in fields:
                return MALFORMED
            fields[key] = value
        auth = fields.pop("auth", None)
        if auth is None:
            return MALFORMED
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not re.fullmatch(r"[A-Za-z0-9\-._~+/]+=*", token):
            return MALFORMED
        verdict = self.backend.verify_token(authzid, token, fields)
        if isinstance(verdict, str) and verdict:
            return Success(verdict, None if authzid in (None, verdict) else authzid)
        if verdict is True and authzid is not None:
            return Success(authzid)
        if verdict is True:
            # Valid, but nobody to name: the backend must return the identity.
            return INVALID_CREDENTIALS
        return self._reject(verdict if isinstance(verdict, Failure) else None)


class ExternalServer(ServerMechanism):
    """EXTERNAL: the identity comes from the adapter (e.g. the TLS client
    certificate subject); the payload is the requested authzid."""

    name = "EXTERNAL"

    def __init__(
        self, backend: SaslBackend, *, external_identity: str | None, max_challenges: int = 10
    ) -> None:
        super().__init__(backend, max_challenges=max_challenges)
        self.external_identity = external_identity

    def _start(self, initial: bytes | None) -> Step:
        if initial is None:
            return Challenge(b"")
        return self._step(initial)

    def _step(self, data: bytes) -> Step:
        try:
            authzid = data.decode("utf-8") or None
        except UnicodeDecodeError:
            return MALFORMED
        if authzid is not None and "\x00" in authzid:
            return MALFORMED
        if self.external_identity is None:
            return INVALID_CREDENTIALS
        identity = self.external_identity
        return self._decide(self.backend.verify_external(identity, authzid), Success(identity, authzid))


class AnonymousServer(ServerMechanism):
    """ANONYMOUS (RFC 4505): the payload is trace text; the application decides."""

    name = "ANONYMOUS"

    def __init__(self, backend: SaslBackend, *, max_challenges: int = 10) -> None:
        super().__init__(backend, max_challenges=max_challenges)
        self.trace: str | None = None

    def _start(self, initial: bytes | None) -> Step:
        if initial is None:
            return Challenge(b"")
        return self._step(initial)

    def _step(self, data: bytes) -> Step:
        try:
            trace = data.decode("utf-8")
        except UnicodeDecodeError:
            return MALFORMED
        if len(trace) > 255:
            return MALFORMED
        self.trace = trace
        if not self.backend.allow_anonymous(trace):
            return INVALID_CREDENTIALS
        return Success("anonymous")


class ScramServer(ServerMechanism):
    """SCRAM-SHA-1/-256 server and -PLUS (RFC 5802 §5, RFC 7677).

    *channel_bindings* maps a binding type (e.g. ``"tls-exporter"``) to the
    data the adapter took from this TLS connection; a -PLUS mechanism needs
    it. *plus_offered* tells a plain SCRAM server that -PLUS was advertised
    too, so a client flag "y" means a downgrade (RFC 5802 §6). An unknown
    user runs the exchange with made-up keys and fails at the end, so the
    reply does not reveal which users exist.
    """

    name = "SCRAM-SHA-256"
    allows_initial_response = True

    def __init__(
        self,
        backend: SaslBackend,
        *,
        mechanism: str = "SCRAM-SHA-256",
        channel_bindings: Mapping[str, bytes] | None = None,
        plus_offered: bool = False,
        randbytes: RandBytes = secrets.token_bytes,
        nonce: str | None = None,
        max_challenges: int = 10,
    ) -> None:
        super().__init__(backend, max_challenges=max_challenges)
        mech = mechanism.upper()
        self._plus = mech.endswith("-PLUS")
        base = mech[: -len("-PLUS")] if self._plus else mech
        if base not in _SCRAM_HASHES:
            raise ValueError(f"unknown SCRAM mechanism {mechanism!r}")
        self._mech = mech
        self._hash = _SCRAM_HASHES[base]
        self._bindings = dict(channel_bindings or {})
        if self._plus and not self._bindings:
            raise ValueError(f"{mech} needs channel binding data")
        self._plus_offered = plus_offered or self._plus
        self._randbytes = randbytes
        if nonce is None:
            nonce = base64.b64encode(randbytes(18)).decode("ascii")
        if not _PRINTABLE_NONCE_RE.match(nonce):
            raise ValueError("SCRAM nonce must be printable ASCII without ','")
        self.__snonce = nonce
        self._phase: Literal["first", "final", "verify-ack"] = "first"
        self.__creds: ScramCredentials | None = None
        self._known_user = False
        self._success: Success | None = None

    @property
    def mechanism_name(self) -> str:
        return self._mech

    def _start(self, initial: bytes | None) -> Step:
        if initial is None or initial == b"":
            return Challenge(b"")
        return self._client_first(initial)

    def _step(self, data: bytes) -> Step:
        if self._phase == "first":
            return self._client_first(data)
        if self._phase == "final":
            return self._client_final(data)
        # RFC 4954 §4: the server-final message went out as a challenge; the
        # client acknowledges it with an empty response.
        if data != b"" or self._success is None:
            return MALFORMED
        return self._success

    def _client_first(self, data: bytes) -> Step:
        try:
            text = _utf8(data, "client-first-message")
            flag, sep1, rest = text.partition(",")
            authz, sep2, bare = rest.partition(",")
            if not sep1 or not sep2:
                return MALFORMED
            if flag == "n":
                cb_type = None
            elif flag == "y":
                if self._plus_offered:
                    # RFC 5802 §6: the client could bind but believes the
                    # server cannot, while we advertised -PLUS: downgrade.
                    return INVALID_CREDENTIALS
                cb_type = None
            elif flag.startswith("p=") and _CB_NAME_RE.match(flag[2:]):
                cb_type = flag[2:]
            else:
                return MALFORMED
            if self._plus:
                if cb_type is None or cb_type not in self._bindings:
                    return INVALID_CREDENTIALS
            elif cb_type is not None:
                # A -PLUS request on a plain SCRAM mechanism.
                return INVALID_CREDENTIALS
            authzid: str | None = None
            if authz:
                if not authz.startswith("a="):
                    return MALFORMED
                authzid = _saslname_decode(authz[2:]) or None
            attrs = _parse_attrs(bare)
            if attrs[0][0] == "m":
                return MALFORMED  # no mandatory extensions supported
            if len(attrs) < 2 or attrs[0][0] != "n" or attrs[1][0] != "r":
                return MALFORMED
            username = saslprep(_saslname_decode(attrs[0][1]))
            cnonce = attrs[1][1]
            if not username or not _PRINTABLE_NONCE_RE.match(cnonce):
                return MALFORMED
        except (MalformedAuthData, ValueError):
            return MALFORMED
        creds = self.backend.lookup_scram(username, self._hash)
        if creds is not None and creds.hash_name != self._hash:
            creds = None
        self._known_user = creds is not None
        if creds is None:
            creds = ScramCredentials.derive(
                base64.b64encode(self._randbytes(24)).decode("ascii"),
                self._randbytes(16),
                4096,
                self._hash,
            )
        self.__creds = creds
        self._gs2 = f"{flag},{authz},"
        self._cb_type = cb_type
        self._username = username
        self._authzid = authzid
        self._nonce = cnonce + self.__snonce
        self._client_first_bare = bare
        salt = base64.b64encode(creds.salt).decode("ascii")
        self._server_first = f"r={self._nonce},s={salt},i={creds.iterations}"
        self._phase = "final"
        return Challenge(self._server_first.encode("utf-8"))

    def _client_final(self, data: bytes) -> Step:
        creds = self.__creds
        if creds is None:
            raise SaslError("SCRAM state lost")
        try:
            text = _utf8(data, "client-final-message")
            without_proof, sep, proof_part = text.rpartition(",p=")
            if not sep:
                return MALFORMED
            attrs = _parse_attrs(without_proof)
            if len(attrs) < 2 or attrs[0][0] != "c" or attrs[1][0] != "r":
                return MALFORMED
            cbind = _strict_b64decode(attrs[0][1])
            proof = _strict_b64decode(proof_part)
        except MalformedAuthData:
            return MALFORMED
        if attrs[1][1] != self._nonce:
            return INVALID_CREDENTIALS
        expected_cb = self._gs2.encode("utf-8")
        if self._cb_type is not None:
            expected_cb += self._bindings[self._cb_type]
        if not hmac.compare_digest(cbind, expected_cb):
            return INVALID_CREDENTIALS
        h = self._hash
        auth_message = f"{self._client_first_bare},{self._server_first},{without_proof}".encode("utf-8")
        client_sig = _hmac(creds.stored_key, auth_message, h)
        if len(proof) != len(client_sig):
            return INVALID_CREDENTIALS
        client_key = _xor(proof, client_sig)
        if not hmac.compare_digest(hashlib.new(h, client_key).digest(), creds.stored_key):
            return INVALID_CREDENTIALS
        if not self._known_user:
            return INVALID_CREDENTIALS
        if not self.backend.authorize(self._username, self._authzid):
            return INVALID_CREDENTIALS
        server_sig = base64.b64encode(_hmac(creds.server_key, auth_message, h)).decode("ascii")
        self._success = Success(self._username, self._authzid, self._mech)
        self._phase = "verify-ack"
        return Challenge(f"v={server_sig}".encode("ascii"))


# ---------------------------------------------------------------------------
# Registries and mechanism choice
# ---------------------------------------------------------------------------

#: Strongest first. Token mechanisms are chosen only when a token is given;
#: EXTERNAL only when asked for; ANONYMOUS never by default.
DEFAULT_PREFERENCE: Final = (
    "SCRAM-SHA-256-PLUS",
    "SCRAM-SHA-1-PLUS",
    "SCRAM-SHA-256",
    "SCRAM-SHA-1",
    "OAUTHBEARER",
    "XOAUTH2",
    "PLAIN",
    "LOGIN",
    "CRAM-MD5",
)

#: Mechanisms that reveal a reusable secret to an eavesdropper (need TLS).
PLAINTEXT_MECHANISMS: Final = frozenset({"PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER"})

CLIENT_MECHANISMS: Final = (
    "PLAIN",
    "LOGIN",
    "CRAM-MD5",
    "XOAUTH2",
    "OAUTHBEARER",
    "EXTERNAL",
    "ANONYMOUS",
    "SCRAM-SHA-1",
    "SCRAM-SHA-256",
    "SCRAM-SHA-1-PLUS",
    "SCRAM-SHA-256-PLUS",
)
SERVER_MECHANISMS: Final = CLIENT_MECHANISMS

_PASSWORD_MECHS: Final = frozenset(
    {"PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS"}
)
_TOKEN_MECHS: Final = frozenset({"XOAUTH2", "OAUTHBEARER"})


def choose_mechanism(
    offered: Sequence[str],
    preference: Sequence[str] | None = None,
    *,
    tls_active: bool,
    have_password: bool = True,
    have_token: bool = False,
    have_external: bool = False,
    channel_binding: bool = False,
    allow_plaintext: bool = False,
) -> str | None:
    """Pick the strongest mechanism both sides support, or None.

    *offered* is what the server advertised (``Capabilities.auth_mechanisms``);
    *preference* overrides :data:`DEFAULT_PREFERENCE` (strongest first).
    Mechanisms in :data:`PLAINTEXT_MECHANISMS` are never chosen without TLS
    unless *allow_plaintext* (SECURITY-CASES T-04, T-08). -PLUS needs
    *channel_binding* (the adapter has binding data); password mechanisms need
    *have_password*, token ones *have_token*; EXTERNAL needs *have_external*
    and TLS. ANONYMOUS is chosen only when listed in *preference*.
    """
    offered_set = {m.upper() for m in offered}
    order = [m.upper() for m in (preference if preference is not None else DEFAULT_PREFERENCE)]
    if preference is None and have_external:
        order.insert(0, "EXTERNAL")
    for mech in order:
        if mech not in offered_set:
            continue
        if mech in PLAINTEXT_MECHANISMS and not tls_active and not allow_plaintext:
            continue
        if mech.endswith("-PLUS") and not (channel_binding and tls_active):
            continue
        if mech in _PASSWORD_MECHS and not have_password:
            continue
        if mech in _TOKEN_MECHS and not have_token:
            continue
        if mech == "EXTERNAL" and not (have_external and tls_active):
            continue
        if mech not in CLIENT_MECHANISMS:
            continue
        return mech
    return None


def client_mechanism(
    name: str,
    credentials: Credentials,
    *,
    channel_binding: tuple[str, bytes] | None = None,
    host: str | None = None,
    port: int | None = None,
    randbytes: RandBytes = secrets.token_bytes,
) -> ClientMechanism:
    """Create the client mechanism *name* from *credentials*.

    Raises ``ValueError`` for an unknown name or missing credentials.
    """
    mech = name.upper()
    user, pw, authz, token = credentials.username, credentials.password, credentials.authzid, credentials.token

    def need_pw() -> tuple[str, str]:
        if user is None or pw is None:
            raise ValueError(f"{mech} needs a username and a password")
        return user, pw

    if mech == "PLAIN":
        u, p = need_pw()
        return PlainClient(u, p, authz)
    if mech == "LOGIN":
        u, p = need_pw()
        return LoginClient(u, p)
    if mech == "CRAM-MD5":
        u, p = need_pw()
        return CramMD5Client(u, p)
    if mech.startswith("SCRAM-"):
        u, p = need_pw()
        return ScramClient(u, p, mechanism=mech, authzid=authz, channel_binding=channel_binding, randbytes=randbytes)
    if mech == "XOAUTH2":
        if user is None or token is None:
            raise ValueError("XOAUTH2 needs a username and a token")
        return XOAuth2Client(user, token)
    if mech == "OAUTHBEARER":
        if token is None:
            raise ValueError("OAUTHBEARER needs a token")
        return OAuthBearerClient(token, authzid=authz or user, host=host, port=port)
    if mech == "EXTERNAL":
        return ExternalClient(authz)
    if mech == "ANONYMOUS":
        return AnonymousClient(user or "")
    raise ValueError(f"unsupported SASL mechanism {name!r}")


def server_mechanism(
    name: str,
    backend: SaslBackend,
    *,
    channel_bindings: Mapping[str, bytes] | None = None,
    plus_offered: bool = False,
    external_identity: str | None = None,
    hostname: str = "localhost",
    max_challenges: int = 10,
    randbytes: RandBytes = secrets.token_bytes,
) -> ServerMechanism:
    """Create the server mechanism *name*; ``ValueError`` if unknown."""
    mech = name.upper()
    if mech == "PLAIN":
        return PlainServer(backend, max_challenges=max_challenges)
    if mech == "LOGIN":
        return LoginServer(backend, max_challenges=max_challenges)
    if mech == "CRAM-MD5":
        return CramMD5Server(backend, hostname=hostname, randbytes=randbytes, max_challenges=max_challenges)
    if mech == "XOAUTH2":
        return XOAuth2Server(backend, max_challenges=max_challenges)
    if mech == "OAUTHBEARER":
        return OAuthBearerServer(backend, max_challenges=max_challenges)
    if mech == "EXTERNAL":
        return ExternalServer(backend, external_identity=external_identity, max_challenges=max_challenges)
    if mech == "ANONYMOUS":
        return AnonymousServer(backend, max_challenges=max_challenges)
    if mech in ("SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS"):
        return ScramServer(
            backend,
            mechanism=mech,
            channel_bindings=channel_bindings,
            plus_offered=plus_offered,
            randbytes=randbytes,
            max_challenges=max_challenges,
        )
    raise ValueError(f"unsupported SASL mechanism {name!r}")


# ---------------------------------------------------------------------------
# SMTP framing: AUTH command text, 334 lines, outcome replies
# ---------------------------------------------------------------------------


class AuthClient:
    """Drive a :class:`ClientMechanism` over SMTP text (RFC 4954 §4).

    Refuses (``SaslError``) to run a plaintext mechanism without TLS unless
    *allow_plaintext* (SECURITY-CASES T-08).
    """

    def __init__(
        self,
        mechanism: ClientMechanism,
        *,
        tls_active: bool,
        allow_plaintext: bool = False,
        use_initial_response: bool = True,
    ) -> None:
        if mechanism.plaintext and not tls_active and not allow_plaintext:
            raise SaslError(f"refusing {mechanism.name} without TLS")
        self.mechanism = mechanism
        self._use_ir = use_initial_response
        self._started = False
        self._steps = 0

    def command(self) -> tuple[str, str | None]:
        """``(mechanism name, initial-response text or None)`` for the AUTH command."""
        if self._started:
            raise SaslError("AUTH already sent")
        self._started = True
        initial = self.mechanism.initial_response() if self._use_ir else None
        return self.mechanism.name, encode_initial_response(initial)

    def command_bytes(self) -> tuple[str, bytes | None]:
        """Like :meth:`command`, with the initial response decoded (for an ``Auth`` event)."""
        if self._started:
            raise SaslError("AUTH already sent")
        self._started = True
        initial = self.mechanism.initial_response() if self._use_ir else None
        return self.mechanism.name, initial

    def answer(self, text: str) -> bytes:
        """Like :meth:`challenge`, returning the decoded answer (for an ``AuthResponse`` event)."""
        return base64.b64decode(self.challenge(text))

    def challenge(self, text: str) -> str:
        """Answer the text of a 334 line; returns the line to send (no CRLF).

        Raises :class:`SaslError` if the challenge is invalid; send
        :meth:`cancel` then.
        """
        if not self._started:
            raise SaslError("334 before AUTH")
        self._steps += 1
        try:
            data = decode_challenge(text)
        except MalformedAuthData:
            if not self.mechanism.tolerant_challenges:
                raise
            data = text.encode("utf-8", "replace")
        return encode_response(self.mechanism.respond(data))

    @staticmethod
    def cancel() -> str:
        """The line that aborts the exchange (``*``)."""
        return "*"

    def success(self) -> None:
        """The server replied 235; raises :class:`SaslError` if it is not believable."""
        self.mechanism.finish()

    def __repr__(self) -> str:
        return f"<AuthClient {self.mechanism.name} steps={self._steps}>"


@dataclass(frozen=True, slots=True)
class AuthStep:
    """One server reply of an AUTH exchange.

    ``code`` 334 carries base64 challenge ``text`` (``enhanced`` None);
    235 carries ``success``; anything else is a failure.
    """

    code: int
    enhanced: str | None
    text: str
    success: Success | None = None

    @property
    def final(self) -> bool:
        """True unless this is a 334 continuation."""
        return self.code != 334


def _failure_step(f: Failure) -> AuthStep:
    return AuthStep(f.code, f.enhanced, f.text)


class AuthServer:
    """Run the server side of ``AUTH`` over SMTP text, one exchange at a time.

    *mechanisms* is the list to offer (names the library knows). Without TLS,
    mechanisms in :data:`PLAINTEXT_MECHANISMS` are not offered and get
    538 5.7.11 unless *allow_plaintext*; with *require_tls* nothing is offered
    or accepted without TLS (SECURITY-CASES T-04). -PLUS mechanisms are
    offered only with *channel_bindings*; EXTERNAL only with an
    *external_identity*.
    """

    def __init__(
        self,
        backend: SaslBackend,
        mechanisms: Sequence[str] = ("SCRAM-SHA-256", "PLAIN", "LOGIN"),
        *,
        tls_active: bool,
        require_tls: bool = False,
        allow_plaintext: bool = False,
        channel_bindings: Mapping[str, bytes] | None = None,
        external_identity: str | None = None,
        hostname: str = "localhost",
        max_challenges: int = 10,
        randbytes: RandBytes = secrets.token_bytes,
    ) -> None:
        for m in mechanisms:
            if m.upper() not in SERVER_MECHANISMS:
                raise ValueError(f"unsupported SASL mechanism {m!r}")
        self.backend = backend
        self._mechanisms = tuple(m.upper() for m in mechanisms)
        self.tls_active = tls_active
        self.require_tls = require_tls
        self.allow_plaintext = allow_plaintext
        self._bindings = dict(channel_bindings or {})
        self._external_identity = external_identity
        self._hostname = hostname
        self._max_challenges = max_challenges
        self._randbytes = randbytes
        self._current: ServerMechanism | None = None
        self.authenticated: Success | None = None

    def _usable(self, mech: str) -> Failure | None:
        if not self.tls_active:
            if self.require_tls:
                return ENCRYPTION_REQUIRED
            if mech in PLAINTEXT_MECHANISMS and not self.allow_plaintext:
                return ENCRYPTION_REQUIRED
        if mech.endswith("-PLUS") and not (self.tls_active and self._bindings):
            return UNRECOGNIZED_MECHANISM
        if mech == "EXTERNAL" and self._external_identity is None:
            return UNRECOGNIZED_MECHANISM
        return None

    def advertised(self) -> tuple[str, ...]:
        """The mechanisms to list in the EHLO ``AUTH`` line right now."""
        return tuple(m for m in self._mechanisms if self._usable(m) is None)

    @property
    def in_progress(self) -> bool:
        """True while a 334 exchange is open."""
        return self._current is not None

    def start(self, mechanism: str, initial: str | None) -> AuthStep:
        """Handle ``AUTH mechanism [initial-response]``."""
        if self._current is not None:
            raise SaslError("an AUTH exchange is already in progress")
        if self.authenticated is not None:
            return _failure_step(ALREADY_AUTHENTICATED)
        mech = mechanism.upper()
        if mech not in self._mechanisms:
            return _failure_step(UNRECOGNIZED_MECHANISM)
        problem = self._usable(mech)
        if problem is not None:
            return _failure_step(problem)
        try:
            data = decode_initial_response(initial)
        except (MalformedAuthData, AuthenticationCancelled) as exc:
            return _failure_step(exc.reply)
        plus_offered = any(m.endswith("-PLUS") and self._usable(m) is None for m in self._mechanisms)
        self._current = server_mechanism(
            mech,
            self.backend,
            channel_bindings=self._bindings,
            plus_offered=plus_offered,
            external_identity=self._external_identity,
            hostname=self._hostname,
            max_challenges=self._max_challenges,
            randbytes=self._randbytes,
        )
        return self._wrap(self._current.start(data))

    def begin(self, mechanism: str, initial_response: bytes | None) -> AuthStep:
        """Like :meth:`start`, with the initial response already decoded
        (as an ``Auth`` event carries it; ``b""`` for ``=``)."""
        text = None if initial_response is None else (encode_initial_response(initial_response))
        return self.start(mechanism, text)

    def step(self, data: bytes) -> AuthStep:
        """Like :meth:`respond`, with the client's answer already decoded (``AuthResponse.data``)."""
        current = self._current
        if current is None:
            raise SaslError("no AUTH exchange in progress")
        return self._wrap(current.step(data))

    def cancel(self) -> AuthStep:
        """The client sent ``*`` (``AuthResponse(cancelled=True)``): 501 5.7.0."""
        current = self._current
        if current is None:
            raise SaslError("no AUTH exchange in progress")
        return self._wrap(current.cancel())

    def respond(self, line: str | bytes) -> AuthStep:
        """Handle the client's line in answer to a 334 (without CRLF)."""
        current = self._current
        if current is None:
            raise SaslError("no AUTH exchange in progress")
        try:
            data = decode_response(line)
        except AuthenticationCancelled:
            return self._wrap(current.cancel())
        except MalformedAuthData:
            current._finish(MALFORMED)
            return self._wrap(MALFORMED)
        return self._wrap(current.step(data))

    def _wrap(self, step: Step) -> AuthStep:
        if isinstance(step, Challenge):
            return AuthStep(334, None, encode_challenge(step.data))
        self._current = None
        if isinstance(step, Success):
            self.authenticated = step
            code, enhanced, text = AUTH_SUCCESSFUL
            return AuthStep(code, enhanced, text, step)
        return _failure_step(step)

    def reset(self) -> None:
        """Forget the authentication state (e.g. after STARTTLS, RFC 3207 §4.2)."""
        self._current = None
        self.authenticated = None

    def __repr__(self) -> str:
        who = "authenticated" if self.authenticated else "anonymous"
        return f"<AuthServer {who} in_progress={self.in_progress}>"
