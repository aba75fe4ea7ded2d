"""What the adapters leave behind: sockets closed by us (not by the garbage
collector), a shutdown's timeout used once, a client's source port kept."""

from __future__ import annotations

import errno
import gc
import os
import smtplib
import socket
import warnings
from typing import Any

import pytest
from test_server_support import BACKENDS, WAIT, Recorder, RunningServer, client_tls_context, server_tls_context


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_socket_is_left_to_the_garbage_collector_after_starttls(backend: str) -> None:
    # The sockets server used to close only the plain socket, which wrap_socket()
    # had detached: the SSLSocket was freed later with a ResourceWarning.
    gc.collect()  # what earlier tests left is not this test's business
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        handler = Recorder()
        with RunningServer(backend, handler, ssl_context=server_tls_context()) as srv:
            with smtplib.SMTP("127.0.0.1", srv.port, timeout=WAIT) as client:
                client.starttls(context=client_tls_context())
                client.sendmail("a@x.example", ["b@y.example"], b"Subject: s\r\n\r\nx\r\n")
            assert handler.disconnected.wait(WAIT)
        gc.collect()
    leaks = [str(w.message) for w in caught
             if issubclass(w.category, ResourceWarning) and f", {srv.port})" in str(w.message)]
    assert leaks == []  # no socket of this server (laddr or raddr on its port) was left open


def test_trio_shutdown_timeout_does_not_change_shutdown_grace() -> None:
    trio = pytest.importorskip("trio")
    from smtpproto.adapters.trio import TrioSMTPServer

    server = TrioSMTPServer(Recorder(), port=0, shutdown_grace=7.5)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve)
            await server.shutdown(timeout=0.05)

    trio.run(main)
    assert server.shutdown_grace == 7.5


@pytest.mark.parametrize("flavor", ["blocking", "asyncio", "trio"])
def test_every_client_binds_the_source_port_it_was_given(flavor: str) -> None:
    if flavor == "trio":
        pytest.importorskip("trio")
    from test_client_support import run_flavor

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        source_port = probe.getsockname()[1]
    handler = Recorder()

    async def scenario(make: Any) -> None:
        async with make("127.0.0.1", srv.port, starttls="never", timeout=WAIT,
                        source_address=("127.0.0.1", source_port)) as client:
            await client.noop()

    with RunningServer("asyncio", handler) as srv:
        run_flavor(flavor, scenario)
    assert handler.sessions[0].peer[:2] == ("127.0.0.1", source_port)



@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_shutdown_grace_holds_with_a_relay_stuck_upstream(backend: str) -> None:
    """A relay waiting on a silent upstream server is cut when the grace ends
    (under trio the worker thread used to be waited for, grace or not)."""
    import asyncio
    import threading
    import time

    from smtpproto.adapters.handlers import RelayHandler
    from test_server_support import fast_settings

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)  # accepts (in the kernel) and never says a word
    # The relay's own timeout (3 s) outlasts the grace (0.3 s): the grace must win.
    handler = RelayHandler("127.0.0.1", silent.getsockname()[1], starttls="never", timeout=3)
    failures: list[BaseException] = []

    def send(port: int) -> None:
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=WAIT) as client:
                client.sendmail("a@x.example", ["b@y.example"], b"Subject: s\r\n\r\nx\r\n")
        except (smtplib.SMTPException, OSError) as exc:
            failures.append(exc)

    took: list[float] = []
    try:
        if backend == "asyncio":
            from smtpproto.adapters.asyncio import AsyncSMTPServer

            async def main_asyncio() -> None:
                server = AsyncSMTPServer(handler, port=0, settings=fast_settings(), shutdown_grace=0.3)
                await server.start()
                threading.Thread(target=send, args=(server.address[1],), daemon=True).start()
                await asyncio.sleep(0.6)  # the relay is now waiting for the upstream greeting
                started = time.monotonic()
                await server.shutdown()
                took.append(time.monotonic() - started)

            asyncio.run(main_asyncio())
        else:
            trio = pytest.importorskip("trio")
            from smtpproto.adapters.trio import TrioSMTPServer

            async def main_trio() -> None:
                server = TrioSMTPServer(handler, port=0, settings=fast_settings(), shutdown_grace=0.3)
                async with trio.open_nursery() as nursery:
                    address = await nursery.start(server.serve)
                    threading.Thread(target=send, args=(address[1],), daemon=True).start()
                    await trio.sleep(0.6)
                    started = time.monotonic()
                    await server.shutdown()
                    took.append(time.monotonic() - started)

            trio.run(main_trio)
    finally:
        silent.close()
    assert took[0] < 1.5, f"shutdown took {took[0]:.1f} s with a 0.3 s grace"
    deadline = time.monotonic() + WAIT
    while not failures and time.monotonic() < deadline:
        time.sleep(0.05)
    assert failures  # the client was not told that the message went through


def _lmtp_over(path: str) -> bytes:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(WAIT)
        sock.connect(path)
        return sock.recv(100)


@pytest.mark.parametrize("backend", BACKENDS)
def test_unix_path_stale_socket_is_replaced(backend: str, tmp_path: Any) -> None:
    from test_server_support import unix_path

    path = unix_path(tmp_path)
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)  # a server that died without removing its socket
    stale.close()
    with RunningServer(backend, Recorder(), unix_path=path, port=None):
        assert _lmtp_over(path).startswith(b"220 ")
    assert not os.path.exists(path)  # removed at shutdown


@pytest.mark.parametrize("backend", BACKENDS)
def test_unix_path_of_a_running_server_is_not_taken_over(backend: str, tmp_path: Any) -> None:
    from test_server_support import unix_path

    path = unix_path(tmp_path)
    with RunningServer("threads", Recorder(), unix_path=path, port=None):
        with pytest.raises(OSError) as err:
            with RunningServer(backend, Recorder(), unix_path=path, port=None):
                pass
        assert err.value.errno == errno.EADDRINUSE
        assert _lmtp_over(path).startswith(b"220 ")  # the first server still has its socket
    assert not os.path.exists(path)


@pytest.mark.parametrize("backend", BACKENDS)
def test_unix_path_that_is_a_file_is_left_alone(backend: str, tmp_path: Any) -> None:
    from test_server_support import unix_path

    path = unix_path(tmp_path)
    with open(path, "wb") as fh:
        fh.write(b"precious")
    with pytest.raises(FileExistsError):
        with RunningServer(backend, Recorder(), unix_path=path, port=None):
            pass
    with open(path, "rb") as fh:
        assert fh.read() == b"precious"


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


def test_sockets_server_listens_on_every_address_of_its_host() -> None:
    """The blocking server used to bind only the first address getaddrinfo()
    gave; like asyncio and trio it now binds each one, on one port."""
    from smtpproto.adapters.sockets import SMTPServer

    with SMTPServer(Recorder(), host="", port=0, shutdown_grace=0.5) as server:
        port = server.address[1]  # type: ignore[index]
        families = {listener.family for listener in server._listeners}
        assert socket.AF_INET in families
        targets = ["127.0.0.1"] + (["::1"] if _ipv6_loopback() else [])
        if len(targets) > 1:
            assert socket.AF_INET6 in families
        for host in targets:
            with smtplib.SMTP(host, port, timeout=WAIT) as client:
                assert client.noop()[0] == 250


@pytest.mark.parametrize("backend", BACKENDS)
def test_max_connections_counts_implicit_tls_handshakes(backend: str) -> None:
    """Connections that never finish (or start) their TLS handshake hold a
    place: beyond max_connections the server closes them at once.  (asyncio
    used to hear of a connection only after its handshake, so any number of
    half-open TLS connections stayed, and a client over the limit was served.)"""
    import ssl
    import time

    with RunningServer(backend, Recorder(), ssl_context=server_tls_context(), implicit_tls=True,
                       max_connections=2, tls_handshake_timeout=30) as srv:
        idle = [socket.create_connection(("127.0.0.1", srv.port), timeout=WAIT) for _ in range(6)]
        try:
            time.sleep(0.5)
            closed = 0
            for sock in idle:
                sock.settimeout(0.2)
                try:
                    closed += sock.recv(10) == b""
                except TimeoutError:
                    pass  # still held open: one of the two places
                except OSError:
                    closed += 1
            assert closed == 4
            with pytest.raises((ssl.SSLError, OSError)):
                with client_tls_context().wrap_socket(
                        socket.create_connection(("127.0.0.1", srv.port), timeout=WAIT),
                        server_hostname="localhost") as tls:
                    if not tls.recv(100):
                        raise ConnectionResetError("closed")
        finally:
            for sock in idle:
                sock.close()
        # With the places free again, a TLS client is served.
        time.sleep(0.3)
        with client_tls_context().wrap_socket(socket.create_connection(("127.0.0.1", srv.port), timeout=WAIT),
                                              server_hostname="localhost") as tls:
            assert tls.recv(100).startswith(b"220 ")
