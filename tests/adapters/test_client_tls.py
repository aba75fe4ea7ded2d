"""TLS, AUTH and hostile-server cases for the three client facades:
STARTTLS required / opportunistic / stripped (T-08), implicit TLS (RFC 8314),
response injection after STARTTLS (T-06), unsolicited replies (T-11), AUTH with
the best common mechanism and a redacted transcript."""

from __future__ import annotations

import os
import socket
import sys
from typing import Any, Callable

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from test_client_support import (  # noqa: E402
    FLAVORS,
    IO_TIMEOUT,
    Cert,
    CoreServer,
    ScriptedServer,
    aiosmtpd_server,
    read_line,
    run_flavor,
    tls_cert,  # noqa: F401  (fixture)
)

from smtpproto import Auth, Mail  # noqa: E402
from smtpproto.adapters._client_flow import (  # noqa: E402
    SMTPAuthenticationError,
    SMTPProtocolViolation,
    SMTPTLSError,
    SMTPTLSRequiredError,
)

Make = Callable[..., Any]
pytestmark = pytest.mark.parametrize("flavor", FLAVORS)
HOST = "127.0.0.1"
T = {"timeout": IO_TIMEOUT, "connect_timeout": IO_TIMEOUT}
MSG = b"From: a@x.example\r\nTo: b@y.example\r\nSubject: tls\r\n\r\nover TLS\r\n"


def test_starttls_required_with_aiosmtpd(flavor: str, tls_cert: Cert) -> None:
    with aiosmtpd_server(tls_context=tls_cert.server_context(), require_starttls=True) as (port, handler):
        async def scenario(make: Make) -> Any:
            async with make(HOST, port, starttls="required", ssl_context=tls_cert.client_context(),
                            server_hostname="localhost", **T) as client:
                assert client.tls_active
                assert "STARTTLS" not in client.extensions
                return await client.send_message(MSG)

        result = run_flavor(flavor, scenario)
    assert result.ok and handler.messages[0].content == MSG


def test_starttls_opportunistic_uses_tls_when_offered(flavor: str, tls_cert: Cert) -> None:
    with CoreServer(cert=tls_cert) as srv:
        async def scenario(make: Make) -> bool:
            async with make(HOST, srv.port, starttls="opportunistic", ssl_context=tls_cert.client_context(),
                            server_hostname="localhost", **T) as client:
                await client.send_message(MSG)
                return bool(client.tls_active)

        assert run_flavor(flavor, scenario) is True
    assert srv.messages[0].content == MSG and not srv.errors


def test_starttls_opportunistic_goes_on_in_cleartext_without_it(flavor: str) -> None:
    with CoreServer() as srv:
        async def scenario(make: Make) -> bool:
            async with make(HOST, srv.port, starttls="opportunistic", **T) as client:
                await client.send_message(MSG)
                return bool(client.tls_active)

        assert run_flavor(flavor, scenario) is False
    assert srv.messages[0].content == MSG


def test_t08_required_tls_and_stripped_starttls(flavor: str) -> None:
    """T-08: the server's EHLO reply lacks STARTTLS (an attacker stripped it):
    neither AUTH nor MAIL may be sent."""
    with CoreServer(extensions=["PIPELINING", "AUTH PLAIN LOGIN"]) as srv:
        async def scenario(make: Make) -> None:
            async with make(HOST, srv.port, starttls="required", username="u", password="secret", **T) as client:
                await client.send_message(MSG)

        with pytest.raises(SMTPTLSRequiredError, match="STARTTLS"):
            run_flavor(flavor, scenario)
    assert not any(isinstance(c, (Mail, Auth)) for c in srv.commands)


def test_t08_d1_ehlo_refused_only_helo(flavor: str) -> None:
    """T-08 variant D_1: EHLO is refused so only HELO works (no extensions at
    all): with TLS required the client must give up before MAIL."""
    seen = bytearray()

    def script(sock: socket.socket) -> None:
        sock.sendall(b"220 mitm.example\r\n")
        read_line(sock, seen)
        sock.sendall(b"502 5.5.1 unimplemented\r\n")
        read_line(sock, seen)
        sock.sendall(b"250 mitm.example\r\n")
        try:
            while True:
                read_line(sock, seen)
        except ConnectionError:
            pass

    with ScriptedServer(script) as srv:
        async def scenario(make: Make) -> None:
            async with make(HOST, srv.port, starttls="required", **T) as client:
                await client.send_message(MSG)

        with pytest.raises(SMTPTLSRequiredError):
            run_flavor(flavor, scenario)
    assert b"HELO " in seen and b"MAIL" not in seen and b"AUTH" not in seen


def test_opportunistic_never_sends_credentials_in_cleartext(flavor: str) -> None:
    with CoreServer(extensions=["PIPELINING", "AUTH PLAIN LOGIN"]) as srv:
        async def scenario(make: Make) -> None:
            async with make(HOST, srv.port, starttls="opportunistic", username="u", password="secret", **T):
                pass

        with pytest.raises(SMTPTLSRequiredError, match="cleartext"):
            run_flavor(flavor, scenario)
    assert not any(isinstance(c, Auth) for c in srv.commands)


def test_t06_response_injection_after_starttls(flavor: str) -> None:
    """T-06: the 220 to STARTTLS comes with a forged EHLO reply in the same
    segment; the client must not take it as the post-TLS capabilities."""
    seen = bytearray()

    def script(sock: socket.socket) -> None:
        sock.sendall(b"220 mx.example ESMTP\r\n")
        read_line(sock, seen)
        sock.sendall(b"250-mx.example\r\n250-PIPELINING\r\n250 STARTTLS\r\n")
        assert read_line(sock, seen) == b"STARTTLS\r\n"
        sock.sendall(b"220 Ready to start TLS\r\n250-example.org\r\n250 AUTH LOGIN\r\n")
        try:
            while True:
                read_line(sock, seen)
        except ConnectionError:
            pass

    with ScriptedServer(script) as srv:
        async def scenario(make: Make) -> None:
            async with make(HOST, srv.port, starttls="required", username="u", password="p", **T):
                pass

        with pytest.raises((SMTPProtocolViolation, SMTPTLSError)) as info:
            run_flavor(flavor, scenario)
    assert "T-06" in str(info.value) or isinstance(info.value, SMTPTLSError)
    assert b"AUTH" not in seen and b"MAIL" not in seen


def test_t11_unsolicited_reply(flavor: str) -> None:
    """T-11: an extra reply nobody asked for must not be paired with MAIL."""
    seen = bytearray()

    def script(sock: socket.socket) -> None:
        sock.sendall(b"220 mx.example ESMTP\r\n")
        read_line(sock, seen)
        sock.sendall(b"250 mx.example\r\n250 2.1.0 forged ok\r\n")
        try:
            while True:
                read_line(sock, seen)
        except ConnectionError:
            pass

    with ScriptedServer(script) as srv:
        async def scenario(make: Make) -> None:
            async with make(HOST, srv.port, starttls="never", **T) as client:
                await client.send_message(MSG)

        with pytest.raises(SMTPProtocolViolation, match="T-11"):
            run_flavor(flavor, scenario)
    assert b"MAIL" not in seen


def test_implicit_tls(flavor: str, tls_cert: Cert) -> None:
    with CoreServer(cert=tls_cert, implicit_tls=True) as srv:
        async def scenario(make: Make) -> bool:
            async with make(HOST, srv.port, tls=True, ssl_context=tls_cert.client_context(),
                            server_hostname="localhost", **T) as client:
                await client.send_message(MSG)
                return bool(client.tls_active)

        assert run_flavor(flavor, scenario) is True
    assert srv.messages[0].content == MSG and not srv.errors


def test_untrusted_certificate_fails(flavor: str, tls_cert: Cert) -> None:
    with CoreServer(cert=tls_cert) as srv:
        async def scenario(make: Make) -> None:
            # The default context does not trust the self-signed certificate.
            async with make(HOST, srv.port, starttls="required", server_hostname="localhost", **T):
                pass

        with pytest.raises(SMTPTLSError, match="TLS handshake failed"):
            run_flavor(flavor, scenario)
    assert not any(isinstance(c, Mail) for c in srv.commands)


def test_auth_best_mechanism_and_redacted_transcript(flavor: str, tls_cert: Cert) -> None:
    lines: list[tuple[str, str]] = []
    with aiosmtpd_server(tls_context=tls_cert.server_context(), require_starttls=True,
                         users={"alice": "s3cret-pw"}) as (port, handler):
        async def scenario(make: Make) -> None:
            async with make(HOST, port, starttls="required", ssl_context=tls_cert.client_context(),
                            server_hostname="localhost", username="alice", password="s3cret-pw",
                            transcript=lambda d, line: lines.append((d, line)), **T) as client:
                await client.send_message(MSG)

        run_flavor(flavor, scenario)
    assert handler.messages[0].content == MSG
    text = "\n".join(f"{d}: {line}" for d, line in lines)
    assert "C: AUTH PLAIN <redacted>" in text  # PLAIN ranks above LOGIN; over TLS
    assert "s3cret" not in text and "czNjcmV0" not in text and "YWxpY2" not in text
    assert "S: 235" in text and "C: <TLS established>" in text
    assert any(d == "C" and line.startswith("MAIL FROM:<a@x.example>") for d, line in lines)


def test_auth_login_when_preferred_and_wrong_password(flavor: str, tls_cert: Cert) -> None:
    lines: list[str] = []
    with aiosmtpd_server(tls_context=tls_cert.server_context(), users={"alice": "right"}) as (port, handler):
        async def ok(make: Make) -> None:
            async with make(HOST, port, ssl_context=tls_cert.client_context(), server_hostname="localhost",
                            username="alice", password="right", auth_mechanisms=["LOGIN"],
                            transcript=lambda d, line: lines.append(line), **T) as client:
                await client.send_message(MSG)

        run_flavor(flavor, ok)

        async def bad(make: Make) -> None:
            async with make(HOST, port, ssl_context=tls_cert.client_context(), server_hostname="localhost",
                            username="alice", password="wrong", **T):
                pass

        with pytest.raises(SMTPAuthenticationError) as info:
            run_flavor(flavor, bad)
    assert "AUTH LOGIN" in lines and "<redacted>" in lines and "right" not in " ".join(lines)
    assert info.value.reply is not None and info.value.reply.code == 535
    assert len(handler.messages) == 1


def test_auth_in_cleartext_only_when_allowed(flavor: str) -> None:
    from smtpproto import Config

    with aiosmtpd_server(users={"alice": "pw"}, auth_require_tls=False) as (port, handler):
        async def scenario(make: Make) -> None:
            async with make(HOST, port, starttls="never", username="alice", password="pw",
                            config=Config(allow_auth_without_tls=True), **T) as client:
                await client.send_message(MSG)

        run_flavor(flavor, scenario)
    assert len(handler.messages) == 1
