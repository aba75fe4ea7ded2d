"""Tests for smtpproto.sasl: RFC vectors, client <-> server round trips, framing, policy."""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Callable, Iterator, Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smtpproto import sasl
from smtpproto.sasl import (
    CANCELLED,
    ENCRYPTION_REQUIRED,
    INVALID_CREDENTIALS,
    MALFORMED,
    TEMPORARY_FAILURE,
    TOO_MANY_STEPS,
    UNRECOGNIZED_MECHANISM,
    AnonymousClient,
    AnonymousServer,
    AuthClient,
    AuthenticationCancelled,
    AuthServer,
    Challenge,
    ClientMechanism,
    CramMD5Client,
    CramMD5Server,
    Credentials,
    ExternalClient,
    ExternalServer,
    Failure,
    LoginClient,
    LoginServer,
    MalformedAuthData,
    OAuthBearerClient,
    OAuthBearerServer,
    PlainClient,
    PlainServer,
    SaslBackend,
    SaslError,
    ScramClient,
    ScramCredentials,
    ScramServer,
    ServerMechanism,
    Step,
    Success,
    XOAuth2Client,
    XOAuth2Server,
    choose_mechanism,
    client_mechanism,
    decode_challenge,
    decode_initial_response,
    decode_response,
    encode_challenge,
    encode_initial_response,
    saslprep,
    server_mechanism,
)

PASSWORD = "s3cr3t-Pa55w0rd"
TOKEN = "ya29.TOKENVALUEabcdef"
SECRETS = (PASSWORD, TOKEN, "pencil", "tanstaaftanstaaf")


def counter_bytes() -> Callable[[int], bytes]:
    """Deterministic randomness for tests."""
    it = itertools.count(1)

    def rb(n: int) -> bytes:
        return bytes((next(it) * 37) % 256 for _ in range(n))

    return rb


class Backend(SaslBackend):
    """A test backend with one user, 'alice'."""

    def __init__(self, *, temp_fail: bool = False) -> None:
        self.temp_fail = temp_fail
        self.scram = {
            "sha1": ScramCredentials.derive(PASSWORD, b"salt-one-1234567", 4096, "sha1"),
            "sha256": ScramCredentials.derive(PASSWORD, b"salt-two-1234567", 4096, "sha256"),
        }

    def verify_password(self, authcid: str, password: str, authzid: str | None) -> bool | Failure:
        if self.temp_fail:
            return TEMPORARY_FAILURE
        if authzid not in (None, authcid, "shared@example.com"):
            return False
        return authcid == "alice" and password == PASSWORD

    def lookup_secret(self, authcid: str) -> str | None:
        return PASSWORD if authcid == "alice" else None

    def lookup_scram(self, authcid: str, hash_name: str) -> ScramCredentials | None:
        return self.scram[hash_name] if authcid == "alice" else None

    def verify_token(self, user: str | None, token: str, fields: Mapping[str, str]) -> bool | str | Failure:
        if token != TOKEN:
            return False
        return user == "alice" if user is not None else "alice"

    def allow_anonymous(self, trace: str) -> bool:
        return trace != "blocked"


# --------------------------------------------------------------------------
# RFC test vectors
# --------------------------------------------------------------------------


def test_rfc4616_plain_examples() -> None:
    # RFC 4616 §4: "\0tim\0tanstaaftanstaaf" and authzid "Ursel" for "Kurt".
    assert PlainClient("tim", "tanstaaftanstaaf").initial_response() == b"\x00tim\x00tanstaaftanstaaf"
    assert PlainClient("Kurt", "xipj3plmq", "Ursel").initial_response() == b"Ursel\x00Kurt\x00xipj3plmq"

    class B(SaslBackend):
        def verify_password(self, authcid: str, password: str, authzid: str | None) -> bool | Failure:
            return (authcid, password, authzid) in {("tim", "tanstaaftanstaaf", None), ("Kurt", "xipj3plmq", "Ursel")}

    assert PlainServer(B()).start(b"\x00tim\x00tanstaaftanstaaf") == Success("tim", None, "PLAIN")
    assert PlainServer(B()).start(b"Ursel\x00Kurt\x00xipj3plmq") == Success("Kurt", "Ursel", "PLAIN")
    assert PlainServer(B()).start(b"\x00tim\x00wrong") == INVALID_CREDENTIALS


def test_rfc2195_cram_md5_example() -> None:
    challenge = b"<1896.697170952@postoffice.reston.mci.net>"
    # RFC 2195 §2: base64 challenge and the response digest.
    assert encode_challenge(challenge) == "PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+"
    response = CramMD5Client("tim", "tanstaaftanstaaf").respond(challenge)
    assert response == b"tim b913a602c7eda7a495b4e6e7334d3890"
    assert base64.b64encode(response) == b"dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw"

    class B(SaslBackend):
        def lookup_secret(self, authcid: str) -> str | None:
            return "tanstaaftanstaaf" if authcid == "tim" else None

    server = CramMD5Server(B(), challenge=challenge)
    assert server.start(None) == Challenge(challenge)
    assert server.step(response) == Success("tim", None, "CRAM-MD5")


def test_rfc5802_scram_sha1_example() -> None:
    client = ScramClient("user", "pencil", mechanism="SCRAM-SHA-1", nonce="fyko+d2lbbFgONRv9qkxdawL")
    assert client.initial_response() == b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL"
    final = client.respond(b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096")
    assert final == (
        b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="
    )
    assert client.respond(b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=") == b""
    client.finish()
    assert client.done

    # The same exchange from the server's side, with keys derived from the RFC salt.
    creds = ScramCredentials.derive("pencil", base64.b64decode("QSXCR+Q6sek8bf92"), 4096, "sha1")

    class B(SaslBackend):
        def lookup_scram(self, authcid: str, hash_name: str) -> ScramCredentials | None:
            return creds if authcid == "user" else None

    server = ScramServer(B(), mechanism="SCRAM-SHA-1", nonce="3rfcNHYJY1ZVvWVs7j")
    first = server.start(b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL")
    assert first == Challenge(b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096")
    assert server.step(final) == Challenge(b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=")
    assert server.step(b"") == Success("user", None, "SCRAM-SHA-1")


def test_rfc7677_scram_sha256_example() -> None:
    client = ScramClient("user", "pencil", mechanism="SCRAM-SHA-256", nonce="rOprNGfwEbeRWgbNEkqO")
    assert client.initial_response() == b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
    server_first = b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    final = client.respond(server_first)
    assert final == (
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    )
    client.respond(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
    client.finish()

    creds = ScramCredentials.derive("pencil", base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ=="), 4096, "SCRAM-SHA-256")
    assert creds.hash_name == "sha256"

    class B(SaslBackend):
        def lookup_scram(self, authcid: str, hash_name: str) -> ScramCredentials | None:
            return creds

    server = ScramServer(B(), mechanism="SCRAM-SHA-256", nonce="%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0")
    assert server.start(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO") == Challenge(server_first)
    assert server.step(final) == Challenge(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
    assert isinstance(server.step(b""), Success)


RFC7628_TOKEN = "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg=="


def test_rfc7628_oauthbearer_examples() -> None:
    # RFC 7628 §4.1 (IMAP, port 143) and §4.3 (SMTP, port 587) initial responses.
    imap = OAuthBearerClient(RFC7628_TOKEN, authzid="user@example.com", host="server.example.com", port=143)
    assert base64.b64encode(imap.initial_response()) == (
        b"bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9MTQzAWF1dGg9QmVhcmVy"
        b"IHZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB"
    )
    smtp = OAuthBearerClient(RFC7628_TOKEN, authzid="user@example.com", host="server.example.com", port=587)
    assert base64.b64encode(smtp.initial_response()) == (
        b"bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9NTg3AWF1dGg9QmVhcmVy"
        b"IHZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB"
    )
    seen: dict[str, object] = {}

    class B(SaslBackend):
        def verify_token(self, user: str | None, token: str, fields: Mapping[str, str]) -> bool | str | Failure:
            seen.update(user=user, token=token, fields=dict(fields))
            return token == RFC7628_TOKEN

    server = OAuthBearerServer(B())
    assert server.start(smtp.initial_response()) == Success("user@example.com", None, "OAUTHBEARER")
    assert seen == {
        "user": "user@example.com",
        "token": RFC7628_TOKEN,
        "fields": {"host": "server.example.com", "port": "587"},
    }

    # §4.3 failure: a JSON error challenge, the client answers ^A, then 535.
    bad = OAuthBearerClient("wrongtoken", authzid="user@example.com")
    server = OAuthBearerServer(B(), error_scope="example_scope", openid_configuration="https://example.com/.well-known/openid-configuration")
    step = server.start(bad.initial_response())
    assert isinstance(step, Challenge)
    assert json.loads(step.data) == {
        "status": "invalid_token",
        "scope": "example_scope",
        "openid-configuration": "https://example.com/.well-known/openid-configuration",
    }
    assert bad.respond(step.data) == b"\x01"
    assert bad.error is not None and bad.error["status"] == "invalid_token"
    assert server.step(b"\x01") == INVALID_CREDENTIALS


def test_xoauth2_google_example() -> None:
    # The example in Google's XOAUTH2 documentation.
    c = XOAuth2Client("someuser@example.com", "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg")
    assert base64.b64encode(c.initial_response()) == (
        b"dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhk"
        b"SFJoZG1semRHRXVZMjl0Q2cBAQ=="
    )


# --------------------------------------------------------------------------
# Round trips through AuthClient <-> AuthServer (text level)
# --------------------------------------------------------------------------

CB = {"tls-exporter": b"\x01" * 32, "tls-server-end-point": b"\x02" * 32}


def run_exchange(client: AuthClient, server: AuthServer, *, max_rounds: int = 20) -> sasl.AuthStep:
    name, initial = client.command()
    step = server.start(name, initial)
    rounds = 0
    while not step.final:
        rounds += 1
        assert rounds <= max_rounds
        step = server.respond(client.challenge(step.text))
    if step.code == 235:
        client.success()
    return step


def make_client(name: str, password: str = PASSWORD, token: str = TOKEN, user: str = "alice", **kw: object) -> ClientMechanism:
    creds = Credentials(username=user, password=password, token=token)
    cb = ("tls-exporter", CB["tls-exporter"]) if name.endswith("-PLUS") else None
    return client_mechanism(name, creds, channel_binding=cb, randbytes=counter_bytes())


ALL_PASSWORD = ["PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS"]


def make_server(mechs: tuple[str, ...] = sasl.SERVER_MECHANISMS, **kw: object) -> AuthServer:
    defaults: dict[str, object] = dict(
        tls_active=True, channel_bindings=CB, external_identity="alice", randbytes=counter_bytes()
    )
    defaults.update(kw)
    return AuthServer(Backend(), mechs, **defaults)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ALL_PASSWORD + ["XOAUTH2", "OAUTHBEARER"])
def test_round_trip_success(name: str) -> None:
    server = make_server()
    step = run_exchange(AuthClient(make_client(name), tls_active=True), server)
    assert (step.code, step.enhanced) == (235, "2.7.0")
    assert step.success is not None and step.success.authcid == "alice"
    assert step.success.mechanism == name
    assert server.authenticated == step.success
    assert not server.in_progress


@pytest.mark.parametrize("name", ALL_PASSWORD)
def test_round_trip_wrong_password(name: str) -> None:
    server = make_server()
    client = AuthClient(make_client(name, password="wrong"), tls_active=True)
    name_, initial = client.command()
    step = server.start(name_, initial)
    while not step.final:
        step = server.respond(client.challenge(step.text))
    assert (step.code, step.enhanced) == (535, "5.7.8")
    assert server.authenticated is None


@pytest.mark.parametrize("name", ["PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-256"])
def test_round_trip_unknown_user(name: str) -> None:
    server = make_server()
    step = run_exchange_fail(AuthClient(make_client(name, user="mallory"), tls_active=True), server)
    assert step.code == 535


def run_exchange_fail(client: AuthClient, server: AuthServer) -> sasl.AuthStep:
    name, initial = client.command()
    step = server.start(name, initial)
    while not step.final:
        step = server.respond(client.challenge(step.text))
    return step


@pytest.mark.parametrize("name", ["XOAUTH2", "OAUTHBEARER"])
def test_round_trip_bad_token(name: str) -> None:
    server = make_server()
    mech = make_client(name, token="badtoken")
    step = run_exchange_fail(AuthClient(mech, tls_active=True), server)
    assert (step.code, step.enhanced) == (535, "5.7.8")
    assert getattr(mech, "error") == {"status": "invalid_token"}


def test_round_trip_external_and_anonymous() -> None:
    server = make_server()
    step = run_exchange(AuthClient(ExternalClient(), tls_active=True), server)
    assert step.success == Success("alice", None, "EXTERNAL")
    server = make_server()
    step = run_exchange(AuthClient(ExternalClient("bob"), tls_active=True), server)
    assert step.code == 535
    server = make_server()
    step = run_exchange(AuthClient(AnonymousClient("me@example.org"), tls_active=True), server)
    assert step.success == Success("anonymous", None, "ANONYMOUS")
    server = make_server()
    step = run_exchange(AuthClient(AnonymousClient("blocked"), tls_active=True), server)
    assert step.code == 535


@pytest.mark.parametrize("name", ["PLAIN", "LOGIN", "SCRAM-SHA-256", "XOAUTH2", "OAUTHBEARER", "EXTERNAL", "ANONYMOUS"])
def test_round_trip_without_initial_response(name: str) -> None:
    mech: ClientMechanism
    if name == "EXTERNAL":
        mech = ExternalClient()
    elif name == "ANONYMOUS":
        mech = AnonymousClient("x")
    else:
        mech = make_client(name)
    client = AuthClient(mech, tls_active=True, use_initial_response=False)
    cmd = client.command()
    assert cmd == (name, None)
    server = make_server()
    step = server.start(*cmd)
    assert step.code == 334
    while not step.final:
        step = server.respond(client.challenge(step.text))
    assert step.code == 235, step


def test_plain_with_authzid() -> None:
    server = make_server()
    client = AuthClient(PlainClient("alice", PASSWORD, "shared@example.com"), tls_active=True)
    step = run_exchange(client, server)
    assert step.success == Success("alice", "shared@example.com", "PLAIN")


def test_scram_authzid_authorization() -> None:
    server = make_server()
    mech = ScramClient("alice", PASSWORD, authzid="root", randbytes=counter_bytes())
    step = run_exchange_fail(AuthClient(mech, tls_active=True), server)
    assert step.code == 535  # default authorize(): only as itself
    server = make_server()
    mech = ScramClient("alice", PASSWORD, authzid="alice", randbytes=counter_bytes())
    assert run_exchange(AuthClient(mech, tls_active=True), server).success == Success("alice", "alice", "SCRAM-SHA-256")


def test_scram_username_escaping() -> None:
    creds = ScramCredentials.derive(PASSWORD, b"0123456789abcdef", 4096)

    class B(SaslBackend):
        def lookup_scram(self, authcid: str, hash_name: str) -> ScramCredentials | None:
            return creds if authcid == "a,b=c" else None

    client = ScramClient("a,b=c", PASSWORD, nonce="abc")
    assert client.initial_response() == b"n,,n=a=2Cb=3Dc,r=abc"
    server = AuthServer(B(), ("SCRAM-SHA-256",), tls_active=True)
    client = ScramClient("a,b=c", PASSWORD)
    assert run_exchange(AuthClient(client, tls_active=True), server).code == 235


# --------------------------------------------------------------------------
# SCRAM channel binding
# --------------------------------------------------------------------------


def test_scram_plus_gs2_header_and_binding() -> None:
    client = ScramClient("alice", PASSWORD, mechanism="SCRAM-SHA-256-PLUS", channel_binding=("tls-exporter", b"CBDATA"), nonce="n1")
    assert client.initial_response() == b"p=tls-exporter,,n=alice,r=n1"
    final = client.respond(b"r=n1srv,s=" + base64.b64encode(b"saltsalt") + b",i=4096")
    cbind = final.split(b",")[0]
    assert cbind == b"c=" + base64.b64encode(b"p=tls-exporter,,CBDATA")


def test_scram_plus_binding_mismatch_fails() -> None:
    server = make_server(channel_bindings={"tls-exporter": b"server-view"})
    mech = ScramClient("alice", PASSWORD, mechanism="SCRAM-SHA-256-PLUS", channel_binding=("tls-exporter", b"mitm-view"))
    step = run_exchange_fail(AuthClient(mech, tls_active=True), server)
    assert step.code == 535


def test_scram_plus_unsupported_binding_type_fails() -> None:
    server = make_server(channel_bindings={"tls-server-end-point": b"x"})
    mech = ScramClient("alice", PASSWORD, mechanism="SCRAM-SHA-256-PLUS", channel_binding=("tls-exporter", b"x"))
    assert run_exchange_fail(AuthClient(mech, tls_active=True), server).code == 535
    mech = ScramClient("alice", PASSWORD, mechanism="SCRAM-SHA-256-PLUS", channel_binding=("tls-server-end-point", b"x"))
    server = make_server(channel_bindings={"tls-server-end-point": b"x"})
    assert run_exchange(AuthClient(mech, tls_active=True), server).code == 235


def test_scram_downgrade_detected() -> None:
    # Client can bind ("y") but the server did offer -PLUS: RFC 5802 §6.
    server = make_server()
    mech = ScramClient("alice", PASSWORD, mechanism="SCRAM-SHA-256", channel_binding=("tls-exporter", CB["tls-exporter"]))
    assert mech.initial_response().startswith(b"y,,")
    server = make_server()
    mech = ScramClient("alice", PASSWORD, mechanism="SCRAM-SHA-256", channel_binding=("tls-exporter", CB["tls-exporter"]))
    assert run_exchange_fail(AuthClient(mech, tls_active=True), server).code == 535
    # Without -PLUS on offer, "y" is fine.
    server = make_server(("SCRAM-SHA-256",))
    mech = ScramClient("alice", PASSWORD, mechanism="SCRAM-SHA-256", channel_binding=("tls-exporter", CB["tls-exporter"]))
    assert run_exchange(AuthClient(mech, tls_active=True), server).code == 235


def test_scram_plus_request_on_plain_mechanism_fails() -> None:
    server = ScramServer(Backend(), mechanism="SCRAM-SHA-256")
    assert server.start(b"p=tls-exporter,,n=alice,r=abc") == INVALID_CREDENTIALS


def test_scram_plus_needs_binding_data() -> None:
    with pytest.raises(ValueError):
        ScramClient("alice", PASSWORD, mechanism="SCRAM-SHA-256-PLUS")
    with pytest.raises(ValueError):
        ScramServer(Backend(), mechanism="SCRAM-SHA-1-PLUS")
    with pytest.raises(ValueError):
        ScramClient("alice", PASSWORD, mechanism="SCRAM-MD5")
    with pytest.raises(ValueError):
        ScramClient("alice", PASSWORD, nonce="has,comma")


# --------------------------------------------------------------------------
# SCRAM client defences
# --------------------------------------------------------------------------


def scram_client() -> ScramClient:
    c = ScramClient("user", "pencil", mechanism="SCRAM-SHA-1", nonce="fyko+d2lbbFgONRv9qkxdawL")
    c.initial_response()
    return c


@pytest.mark.parametrize(
    "server_first",
    [
        b"r=OTHERNONCE,s=QSXCR+Q6sek8bf92,i=4096",
        b"r=fyko+d2lbbFgONRv9qkxdawL,s=QSXCR+Q6sek8bf92,i=4096",  # not extended
        b"r=fyko+d2lbbFgONRv9qkxdawLx,s=QSXCR+Q6sek8bf92,i=100",  # too few iterations
        b"r=fyko+d2lbbFgONRv9qkxdawLx,s=QSXCR+Q6sek8bf92,i=99999999",  # too many
        b"r=fyko+d2lbbFgONRv9qkxdawLx,s=!!!,i=4096",
        b"r=fyko+d2lbbFgONRv9qkxdawLx,i=4096",
        b"m=ext,r=fyko+d2lbbFgONRv9qkxdawLx,s=QSXCR+Q6sek8bf92,i=4096",
        b"garbage",
        b"\xff\xfe",
    ],
)
def test_scram_client_rejects_bad_server_first(server_first: bytes) -> None:
    with pytest.raises(SaslError):
        scram_client().respond(server_first)


def test_scram_client_rejects_bad_server_signature() -> None:
    c = scram_client()
    c.respond(b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096")
    with pytest.raises(SaslError, match="signature"):
        c.respond(b"v=" + base64.b64encode(b"\x00" * 20))
    c = scram_client()
    c.respond(b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096")
    with pytest.raises(SaslError, match="other-error"):
        c.respond(b"e=other-error")


def test_scram_client_refuses_success_without_server_proof() -> None:
    # A fake server answering 235 right after the client proof (no v=).
    c = scram_client()
    c.respond(b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096")
    with pytest.raises(SaslError):
        c.finish()
    assert not c.done


# --------------------------------------------------------------------------
# Server edge cases
# --------------------------------------------------------------------------


def test_plain_server_malformed() -> None:
    for payload in (b"", b"alice", b"\x00alice", b"\x00alice\x00", b"a\x00b\x00c\x00d", b"\x00\xff\x00pw", b"\x00" + b"a" * 256 + b"\x00pw"):
        assert PlainServer(Backend()).start(payload) == MALFORMED, payload


def test_login_server_prompts_and_initial_response() -> None:
    s = LoginServer(Backend())
    assert s.start(None) == Challenge(b"Username:")
    assert s.step(b"alice") == Challenge(b"Password:")
    assert s.step(PASSWORD.encode()) == Success("alice", None, "LOGIN")
    s = LoginServer(Backend())
    assert s.start(b"alice") == Challenge(b"Password:")
    assert s.step(b"nope") == INVALID_CREDENTIALS
    s = LoginServer(Backend())
    s.start(None)
    assert s.step(b"") == MALFORMED


@pytest.mark.parametrize(
    "prompts",
    [
        (b"Username:", b"Password:"),
        (b"User Name\x00", b"Password"),
        (b"username:", b"password:"),
        (b"", b""),
        (b"VXNlcm5hbWU6", b"UGFzc3dvcmQ6"),  # prompts base64-encoded twice
        (b"Login:", b"Passwort:"),
    ],
)
def test_login_client_prompt_variants(prompts: tuple[bytes, bytes]) -> None:
    c = LoginClient("alice", PASSWORD)
    assert c.initial_response() is None
    assert c.respond(prompts[0]) == b"alice"
    assert c.respond(prompts[1]) == PASSWORD.encode()
    c.finish()
    with pytest.raises(SaslError):
        c.respond(b"Password:")


def test_login_client_initial_response_and_password_first() -> None:
    c = LoginClient("alice", PASSWORD, initial_response=True)
    assert c.initial_response() == b"alice"
    assert c.respond(b"Password:") == PASSWORD.encode()
    c2 = LoginClient("alice", PASSWORD)
    with pytest.raises(SaslError):
        c2.finish()


def test_login_non_base64_prompts_via_auth_client() -> None:
    client = AuthClient(LoginClient("alice", PASSWORD), tls_active=True)
    client.command()
    assert base64.b64decode(client.challenge("Username:")) == b"alice"
    assert base64.b64decode(client.challenge("Password:")) == PASSWORD.encode()


def test_cram_md5_server_edge_cases() -> None:
    s = CramMD5Server(Backend(), hostname="mx.example", randbytes=counter_bytes())
    ch = s.start(None)
    assert isinstance(ch, Challenge) and ch.data.startswith(b"<") and ch.data.endswith(b"@mx.example>")
    assert s.step(b"alice NOTHEX") == MALFORMED
    s = CramMD5Server(Backend())
    assert s.start(b"initial") == Failure(501, "5.5.2", "Initial response not allowed for this mechanism")
    s = CramMD5Server(Backend(), challenge=b"<1.2@x>")
    s.start(None)
    assert s.step(b"alice " + b"0" * 32) == INVALID_CREDENTIALS


def test_oauthbearer_server_malformed_and_identity() -> None:
    s = OAuthBearerServer(Backend())
    assert s.start(b"n,,\x01auth=Basic abc\x01\x01") == MALFORMED
    assert OAuthBearerServer(Backend()).start(b"n,,\x01host=x\x01\x01") == MALFORMED
    assert OAuthBearerServer(Backend()).start(b"garbage") == MALFORMED
    # No authzid: the backend names the user.
    step = OAuthBearerServer(Backend()).start(f"n,,\x01auth=Bearer {TOKEN}\x01\x01".encode())
    assert step == Success("alice", None, "OAUTHBEARER")
    # The token is not valid for the requested authzid.
    s = OAuthBearerServer(Backend())
    step = s.start(f"n,a=bob,\x01auth=Bearer {TOKEN}\x01\x01".encode())
    assert isinstance(step, Challenge)


def test_oauth_temporary_failure_is_reported_directly() -> None:
    class B(SaslBackend):
        def verify_token(self, user: str | None, token: str, fields: Mapping[str, str]) -> bool | str | Failure:
            return TEMPORARY_FAILURE

    assert XOAuth2Server(B()).start(b"user=a\x01auth=Bearer t\x01\x01") == TEMPORARY_FAILURE


def test_temporary_failure_from_backend() -> None:
    server = AuthServer(Backend(temp_fail=True), ("PLAIN",), tls_active=True)
    step = run_exchange_fail(AuthClient(PlainClient("alice", PASSWORD), tls_active=True), server)
    assert (step.code, step.enhanced) == (454, "4.7.0")


def test_external_without_identity() -> None:
    s = ExternalServer(Backend(), external_identity=None)
    assert s.start(b"") == INVALID_CREDENTIALS
    s = ExternalServer(Backend(), external_identity="alice")
    assert s.start(b"\xff") == MALFORMED
    assert AnonymousServer(Backend()).start(b"x" * 256) == MALFORMED


def test_scram_server_malformed_inputs() -> None:
    for payload in (b"x,,n=alice,r=abc", b"n,,r=abc", b"n,,n=alice", b"n,b=x,n=alice,r=abc", b"n,,m=1,n=alice,r=abc", b"n,,n=al=41ice,r=abc", b"nonsense", b"\xff"):
        assert ScramServer(Backend()).start(payload) == MALFORMED, payload
    s = ScramServer(Backend())
    s.start(b"n,,n=alice,r=abc")
    assert s.step(b"c=biws,r=abc") == MALFORMED  # no proof
    s = ScramServer(Backend())
    s.start(b"n,,n=alice,r=abc")
    assert s.step(b"c=biws,r=wrongnonce,p=AAAA") == INVALID_CREDENTIALS


class Looper(ServerMechanism):
    """A hostile mechanism that challenges forever."""

    name = "LOOP"

    def _start(self, initial: bytes | None) -> Step:
        return Challenge(b"again")

    def _step(self, data: bytes) -> Step:
        return Challenge(b"again")


def test_challenge_cap() -> None:
    m = Looper(Backend(), max_challenges=3)
    steps = [m.start(None)] + [m.step(b"") for _ in range(3)]
    assert steps[:3] == [Challenge(b"again")] * 3
    assert steps[3] == TOO_MANY_STEPS
    with pytest.raises(SaslError):
        m.step(b"")
    # An SMTP-level cap via AuthServer: SCRAM with an initial response needs 2.
    server = make_server(max_challenges=1)
    step = run_exchange_fail(AuthClient(make_client("SCRAM-SHA-256"), tls_active=True), server)
    assert step.code == TOO_MANY_STEPS.code and step.text == TOO_MANY_STEPS.text


def test_server_mechanism_misuse() -> None:
    m = PlainServer(Backend())
    with pytest.raises(SaslError):
        m.step(b"x")
    m.start(None)
    m.step(f"\x00alice\x00{PASSWORD}".encode())
    with pytest.raises(SaslError):
        m.step(b"x")
    with pytest.raises(SaslError):
        m.start(None)


# --------------------------------------------------------------------------
# Framing
# --------------------------------------------------------------------------


def test_decode_response() -> None:
    assert decode_response("") == b""
    assert decode_response("AGFsaWNlAHNlY3JldA==") == b"\x00alice\x00secret"
    assert decode_response(b"YQ==") == b"a"
    with pytest.raises(AuthenticationCancelled) as info:
        decode_response("*")
    assert info.value.reply == CANCELLED == Failure(501, "5.7.0", "Authentication aborted")
    for bad in ("YQ", "YQ=", "Y Q==", "YQ==\r", "YR==", "!!!!", "=", "YQ==YQ==", "a"):
        with pytest.raises(MalformedAuthData) as minfo:
            decode_response(bad)
        assert minfo.value.reply == MALFORMED and MALFORMED.code == 501


def test_initial_response_framing() -> None:
    assert encode_initial_response(None) is None
    assert encode_initial_response(b"") == "="
    assert encode_initial_response(b"a") == "YQ=="
    assert decode_initial_response(None) is None
    assert decode_initial_response("=") == b""
    assert decode_initial_response("YQ==") == b"a"
    with pytest.raises(MalformedAuthData):
        decode_initial_response("")
    with pytest.raises(MalformedAuthData):
        decode_initial_response("YQ")
    with pytest.raises(AuthenticationCancelled):
        decode_initial_response("*")
    assert decode_challenge("") == b""
    assert decode_challenge("VXNlcm5hbWU6") == b"Username:"


def test_auth_server_cancel_and_malformed() -> None:
    server = make_server()
    assert server.start("LOGIN", None).code == 334
    step = server.respond("*")
    assert (step.code, step.enhanced, step.text) == (501, "5.7.0", "Authentication aborted")
    assert not server.in_progress and server.authenticated is None
    assert server.start("LOGIN", None).code == 334
    step = server.respond("not base64!")
    assert (step.code, step.enhanced) == (501, "5.5.2")
    assert not server.in_progress
    step = server.start("PLAIN", "%%%")
    assert (step.code, step.enhanced) == (501, "5.5.2")
    step = server.start("PLAIN", "*")
    assert step.code == 501 and step.enhanced == "5.7.0"
    with pytest.raises(SaslError):
        server.respond("")


def test_auth_server_policy() -> None:
    # T-04: plaintext mechanisms are neither offered nor accepted without TLS.
    server = make_server(tls_active=False)
    adv = server.advertised()
    assert "PLAIN" not in adv and "LOGIN" not in adv and "XOAUTH2" not in adv
    assert "SCRAM-SHA-256" in adv and "SCRAM-SHA-256-PLUS" not in adv
    step = server.start("PLAIN", "AGFsaWNlAHNlY3JldA==")
    assert (step.code, step.enhanced) == (ENCRYPTION_REQUIRED.code, "5.7.11")
    # require_tls: nothing without TLS.
    server = make_server(tls_active=False, require_tls=True)
    assert server.advertised() == ()
    assert server.start("SCRAM-SHA-256", None).code == 538
    # Explicit opt-in.
    server = make_server(("PLAIN",), tls_active=False, allow_plaintext=True)
    assert server.advertised() == ("PLAIN",)
    # Unknown / not offered mechanisms.
    server = make_server(("PLAIN",))
    step = server.start("GSSAPI", None)
    assert (step.code, step.enhanced) == (UNRECOGNIZED_MECHANISM.code, "5.5.4")
    assert server.start("LOGIN", None).code == 504
    # No EXTERNAL without an identity, no -PLUS without binding data.
    server = make_server(external_identity=None, channel_bindings=None)
    assert "EXTERNAL" not in server.advertised()
    assert not any(m.endswith("-PLUS") for m in server.advertised())
    assert server.start("EXTERNAL", "=").code == 504
    with pytest.raises(ValueError):
        AuthServer(Backend(), ("GSSAPI",), tls_active=True)


def test_auth_server_already_authenticated_and_reset() -> None:
    server = make_server()
    run_exchange(AuthClient(make_client("PLAIN"), tls_active=True), server)
    step = server.start("PLAIN", "=")
    assert (step.code, step.enhanced) == (503, "5.5.1")
    server.reset()
    assert server.authenticated is None
    assert run_exchange(AuthClient(make_client("PLAIN"), tls_active=True), server).code == 235
    server2 = make_server()
    server2.start("LOGIN", None)
    with pytest.raises(SaslError):
        server2.start("LOGIN", None)


def test_auth_client_refuses_plaintext_without_tls() -> None:
    # T-08: no PLAIN/LOGIN/bearer tokens in cleartext unless explicitly allowed.
    for name in ("PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER"):
        with pytest.raises(SaslError):
            AuthClient(make_client(name), tls_active=False)
        AuthClient(make_client(name), tls_active=False, allow_plaintext=True)
    AuthClient(make_client("SCRAM-SHA-256"), tls_active=False)
    AuthClient(make_client("CRAM-MD5"), tls_active=False)


def test_auth_client_misuse() -> None:
    client = AuthClient(make_client("PLAIN"), tls_active=True)
    with pytest.raises(SaslError):
        client.challenge("")
    client.command()
    with pytest.raises(SaslError):
        client.command()
    assert client.cancel() == "*"
    scram = AuthClient(make_client("SCRAM-SHA-256"), tls_active=True)
    scram.command()
    with pytest.raises(MalformedAuthData):
        scram.challenge("not base64")


# --------------------------------------------------------------------------
# Mechanism choice
# --------------------------------------------------------------------------


def test_choose_mechanism() -> None:
    offered = ["PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-256-PLUS", "XOAUTH2"]
    assert choose_mechanism(offered, tls_active=True, channel_binding=True) == "SCRAM-SHA-256-PLUS"
    assert choose_mechanism(offered, tls_active=True) == "SCRAM-SHA-256"
    assert choose_mechanism(["PLAIN", "LOGIN"], tls_active=True) == "PLAIN"
    assert choose_mechanism(["LOGIN"], tls_active=True) == "LOGIN"
    # T-08: without TLS, plaintext mechanisms are refused...
    assert choose_mechanism(["PLAIN", "LOGIN"], tls_active=False) is None
    assert choose_mechanism(["PLAIN", "CRAM-MD5"], tls_active=False) == "CRAM-MD5"
    # ...unless explicitly allowed.
    assert choose_mechanism(["PLAIN", "LOGIN"], tls_active=False, allow_plaintext=True) == "PLAIN"
    # Tokens.
    assert choose_mechanism(offered, tls_active=True, have_password=False, have_token=True) == "XOAUTH2"
    assert choose_mechanism(offered + ["OAUTHBEARER"], tls_active=True, have_password=False, have_token=True) == "OAUTHBEARER"
    assert choose_mechanism(["XOAUTH2"], tls_active=False, have_token=True) is None
    # User preference wins, still within policy; case-insensitive.
    assert choose_mechanism(["plain", "scram-sha-256"], ["PLAIN", "SCRAM-SHA-256"], tls_active=True) == "PLAIN"
    assert choose_mechanism(["PLAIN"], ["PLAIN"], tls_active=False) is None
    # EXTERNAL and ANONYMOUS only when asked for.
    assert choose_mechanism(["EXTERNAL", "PLAIN"], tls_active=True, have_external=True) == "EXTERNAL"
    assert choose_mechanism(["EXTERNAL"], tls_active=True) is None
    assert choose_mechanism(["ANONYMOUS"], tls_active=True) is None
    assert choose_mechanism(["ANONYMOUS"], ["ANONYMOUS"], tls_active=True) == "ANONYMOUS"
    assert choose_mechanism(["GSSAPI"], ["GSSAPI"], tls_active=True) is None
    assert choose_mechanism([], tls_active=True) is None


def test_client_and_server_factories() -> None:
    for name in sasl.CLIENT_MECHANISMS:
        mech = make_client(name)
        assert mech.name == name
        assert server_mechanism(name, Backend(), channel_bindings=CB, external_identity="x").mechanism_name == name
    with pytest.raises(ValueError):
        client_mechanism("GSSAPI", Credentials(username="a", password="b"))
    with pytest.raises(ValueError):
        client_mechanism("PLAIN", Credentials(username="a"))
    with pytest.raises(ValueError):
        client_mechanism("XOAUTH2", Credentials(username="a"))
    with pytest.raises(ValueError):
        client_mechanism("OAUTHBEARER", Credentials(username="a"))
    with pytest.raises(ValueError):
        server_mechanism("GSSAPI", Backend())


@pytest.mark.parametrize(
    "factory",
    [
        lambda: PlainClient("a\x00", "b"),
        lambda: PlainClient("a", ""),
        lambda: LoginClient("", "b"),
        lambda: CramMD5Client("a b", "c"),
        lambda: XOAuth2Client("a", "t\x01"),
        lambda: OAuthBearerClient("bad token"),
        lambda: OAuthBearerClient("tok", port=70000),
        lambda: OAuthBearerClient("tok", host="h\r\n"),
        lambda: ExternalClient("a\x00b"),
        lambda: AnonymousClient("x" * 256),
        lambda: ScramCredentials(b"", 4096, b"a", b"b"),
        lambda: ScramCredentials(b"s", 0, b"a", b"b"),
        lambda: ScramCredentials(b"s", 1, b"a", b"b", "md5"),
    ],
)
def test_constructor_validation(factory: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        factory()


def test_client_unexpected_challenges() -> None:
    p = PlainClient("a", "b")
    p.initial_response()
    with pytest.raises(SaslError):
        p.respond(b"")
    assert PlainClient("a", "b").respond(b"") == b"\x00a\x00b"
    c = CramMD5Client("a", "b")
    with pytest.raises(SaslError):
        c.respond(b"")
    c.respond(b"<x>")
    with pytest.raises(SaslError):
        c.respond(b"<y>")
    with pytest.raises(SaslError):
        CramMD5Client("a", "b").finish()
    x = XOAuth2Client("a", "t")
    x.respond(b'{"status":"401"}')
    with pytest.raises(SaslError):
        x.respond(b'{"status":"401"}')
    with pytest.raises(SaslError):
        XOAuth2Client("a", "t").respond(b"not json")
    with pytest.raises(SaslError):
        OAuthBearerClient("t").respond(b"[1]")
    e = ExternalClient()
    e.initial_response()
    with pytest.raises(SaslError):
        e.respond(b"x")
    an = AnonymousClient()
    an.initial_response()
    with pytest.raises(SaslError):
        an.respond(b"x")


# --------------------------------------------------------------------------
# SASLprep
# --------------------------------------------------------------------------


def test_saslprep_rfc4013_examples() -> None:
    # RFC 4013 §3 examples.
    assert saslprep("I\u00adX") == "IX"
    assert saslprep("user") == "user"
    assert saslprep("USER") == "USER"
    assert saslprep("\u00aa") == "a"
    assert saslprep("\u2168") == "IX"
    with pytest.raises(ValueError):
        saslprep("\u0007")
    with pytest.raises(ValueError):
        saslprep("\u0627\u0031")  # bidi violation
    assert saslprep("a\u00a0b") == "a b"
    assert saslprep("") == ""
    with pytest.raises(ValueError):
        saslprep("\U000e0001x")  # unassigned when stored... and prohibited (tagging)
    with pytest.raises(ValueError):
        saslprep("\u0221", allow_unassigned=False)  # unassigned in Unicode 3.2
    assert saslprep("\u0221") == "\u0221"


# --------------------------------------------------------------------------
# No secrets in repr()
# --------------------------------------------------------------------------


def all_objects() -> Iterator[object]:
    creds = Credentials(username="alice", password=PASSWORD, token=TOKEN, authzid="z")
    yield creds
    yield Credentials()
    for name in sasl.CLIENT_MECHANISMS:
        mech = make_client(name)
        yield mech
        yield AuthClient(mech, tls_active=True)
    yield ScramCredentials.derive(PASSWORD, b"saltsaltsaltsalt", 4096)
    yield PlainClient("alice", PASSWORD)
    yield LoginClient("alice", PASSWORD, initial_response=True)
    yield XOAuth2Client("alice", TOKEN)
    yield OAuthBearerClient(TOKEN)
    yield Backend()
    # Objects mid-exchange and after it.
    for name in ALL_PASSWORD + ["XOAUTH2", "OAUTHBEARER"]:
        server = make_server()
        client = AuthClient(make_client(name), tls_active=True)
        cmd = client.command()
        step = server.start(*cmd)
        yield server, client, step
        while not step.final:
            yield server._current
            step = server.respond(client.challenge(step.text))
            yield step, server, client, client.mechanism
    yield Challenge(PASSWORD.encode())


def test_no_secret_in_any_repr() -> None:
    checked = 0
    for obj in all_objects():
        text = repr(obj) + str(obj)
        for secret in SECRETS:
            assert secret not in text, (secret, text)
        assert "alice" not in text or isinstance(obj, tuple) or "Success" in text, text
        checked += 1
    assert checked > 50


def test_scram_keys_not_in_repr() -> None:
    creds = ScramCredentials.derive(PASSWORD, b"saltsaltsaltsalt", 4096)
    text = repr(creds)
    for blob in (creds.stored_key, creds.server_key, creds.salt):
        assert repr(blob) not in text
        assert base64.b64encode(blob).decode() not in text
        assert blob.hex() not in text


# --------------------------------------------------------------------------
# Decoded-bytes entry points (what the core's Auth / AuthResponse events carry)
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_PASSWORD + ["XOAUTH2", "OAUTHBEARER"])
def test_round_trip_with_decoded_payloads(name: str) -> None:
    server = make_server()
    client = AuthClient(make_client(name), tls_active=True)
    mech, initial = client.command_bytes()
    step = server.begin(mech, initial)
    while not step.final:
        step = server.step(client.answer(step.text))
    assert step.code == 235
    client.success()


def test_decoded_cancel_and_misuse() -> None:
    server = make_server()
    assert server.begin("LOGIN", None).code == 334
    step = server.cancel()
    assert (step.code, step.enhanced) == (501, "5.7.0")
    with pytest.raises(SaslError):
        server.step(b"x")
    with pytest.raises(SaslError):
        server.cancel()
    # "=" (an empty initial response) is a malformed PLAIN message...
    assert (server.begin("PLAIN", b"").code, server.begin("PLAIN", b"").enhanced) == (501, "5.5.2")
    # ...but a valid EXTERNAL one (no authzid).
    assert server.begin("EXTERNAL", b"").success == Success("alice", None, "EXTERNAL")
    client = AuthClient(make_client("PLAIN"), tls_active=True)
    client.command_bytes()
    with pytest.raises(SaslError):
        client.command_bytes()


def test_docs_auth_examples_run() -> None:
    """Every ```python block of docs/auth.md runs as written."""
    import pathlib
    import re as _re

    doc = pathlib.Path(__file__).resolve().parent.parent / "docs" / "auth.md"
    blocks = _re.findall(r"```python\n(.*?)```", doc.read_text(encoding="utf-8"), _re.S)
    assert len(blocks) >= 5
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, str(doc), "exec"), namespace)


# --------------------------------------------------------------------------
# Robustness: hostile payloads never raise anything but the documented errors
# --------------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(sasl.SERVER_MECHANISMS),
    st.none() | st.binary(max_size=80),
    st.lists(st.binary(max_size=80) | st.sampled_from([b"", b"\x01", b"alice", b"n,,n=alice,r=abc"]), max_size=12),
)
def test_server_mechanisms_survive_arbitrary_payloads(name: str, initial: bytes | None, steps: list[bytes]) -> None:
    server = make_server(max_challenges=4)
    step = server.begin(name, initial)
    count = 0
    for data in steps:
        if step.final:
            break
        step = server.step(data)
        count += 1
    assert count <= 5
    assert step.code in (334, 235, 454, 501, 504, 535, 538)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sasl.SERVER_MECHANISMS), st.lists(st.text(max_size=40), min_size=1, max_size=6))
def test_auth_server_text_lines_never_raise(name: str, lines: list[str]) -> None:
    server = make_server()
    step = server.start(name, None)
    for line in lines:
        if step.final:
            break
        step = server.respond(line)
        assert step.code in (334, 235, 454, 501, 535)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sasl.CLIENT_MECHANISMS), st.lists(st.binary(max_size=60), min_size=1, max_size=4))
def test_client_mechanisms_only_raise_sasl_error(name: str, challenges: list[bytes]) -> None:
    mech = make_client(name)
    mech.initial_response()
    for challenge in challenges:
        try:
            mech.respond(challenge)
        except SaslError:
            return


def test_auth_events_never_show_a_secret_or_its_length() -> None:
    from smtpproto import Auth, AuthResponse

    shown = repr(Auth(mechanism="PLAIN", initial_response=b"\x00user\x00S3cretPW")) + repr(
        AuthResponse(data=b"S3cretPW"))
    assert "S3cret" not in shown and "<redacted>" in shown
    assert "8" not in shown and "15" not in shown  # no lengths either
