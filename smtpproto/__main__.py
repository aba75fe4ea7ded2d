"""The command line: ``python -m smtpproto serve | send | demo``.

* ``serve`` — a debugging SMTP/LMTP server (prints or stores what it receives);
* ``send`` — send a message (implemented in ``smtpproto.adapters._cli_send``);
* ``demo`` — a server and a client talking over loopback, with the transcript;
* ``replay`` — play a recorded transcript to a server and compare the replies.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import ssl
import sys
import threading
from typing import NoReturn, Sequence, TextIO

__all__ = ["main"]

PROG = "python -m smtpproto"


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


class CLIError(Exception):
    """A bad combination of options: printed as one line, exit status 2."""


class ListenError(Exception):
    """The server could not listen: printed as one line, exit status 1."""


# ---------------------------------------------------------------- serve


def _serve_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=f"{PROG} serve", description=(
        "A debugging SMTP/LMTP server. Without --maildir/--mbox it prints every message to standard output."))
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8025, help="port (default 8025; 0 picks a free one)")
    p.add_argument("--unix-socket", metavar="PATH", help="listen on a UNIX socket instead (e.g. for --lmtp)")
    p.add_argument("--backend", choices=("asyncio", "trio", "threads"), default="asyncio",
                   help="I/O backend (default asyncio)")
    store = p.add_mutually_exclusive_group()
    store.add_argument("--maildir", metavar="DIR", help="deliver into this Maildir")
    store.add_argument("--mbox", metavar="FILE", help="append to this mbox file")
    p.add_argument("--tls-cert", metavar="FILE", help="PEM certificate chain (enables STARTTLS)")
    p.add_argument("--tls-key", metavar="FILE", help="PEM private key for --tls-cert")
    p.add_argument("--implicit-tls", action="store_true", help="TLS from the first byte (RFC 8314) instead of STARTTLS")
    p.add_argument("--require-tls", action="store_true", help="refuse MAIL and AUTH before STARTTLS")
    p.add_argument("--lmtp", action="store_true", help="speak LMTP (RFC 2033) instead of SMTP")
    p.add_argument("--auth-user", metavar="U", help="accept AUTH PLAIN/LOGIN for this user (offered after TLS)")
    p.add_argument("--auth-password", metavar="P", help="the password for --auth-user")
    p.add_argument("--allow-plaintext-auth", action="store_true",
                   help="also offer AUTH without TLS (only for testing on loopback)")
    p.add_argument("--max-message-size", type=int, metavar="N", help="message size limit in octets (advertised as SIZE)")
    p.add_argument("--max-connections", type=int, default=100, metavar="N", help="concurrent sessions (default 100)")
    p.add_argument("--hostname", help="our name in the greeting and EHLO reply")
    p.add_argument("--verbose", "-v", action="store_true",
                   help="log sessions and the SMTP transcript (AUTH redacted) to standard error")
    p.add_argument("--record", metavar="DIR",
                   help="write each session to a transcript file in DIR (AUTH redacted; see 'replay')")
    return p


#: The Config / ServerSettings fields ``serve`` sets, by the flag that sets them.
_FLAG_OF_FIELD = {
    "max_message_size": "--max-message-size",
    "lmtp": "--lmtp",
    "require_tls": "--require-tls",
    "allow_auth_without_tls": "--allow-plaintext-auth",
    "hostname": "--hostname",
    "record": "--record",
}


def _flag_message(message: str, flag: str) -> str:
    """A Config/ServerSettings validation message in the words of the command
    line: field names (``Config.max_message_size`` anywhere, a bare
    ``max_message_size`` at the start, never a quoted value) become the flags
    that set them; a message naming none is put after ``flag``, the one flag
    that could have caused it."""
    def name(m: re.Match[str]) -> str:
        return _FLAG_OF_FIELD.get(m.group(2), m.group(0))

    text = re.sub(r"\b(Config\.|ServerSettings\.)([a-z][a-z0-9_]*)\b", name, message)
    text = re.sub(r"^()([a-z][a-z0-9_]*)\b", name, text)
    if not any(f in text for f in _FLAG_OF_FIELD.values()):
        text = f"{flag}: {text}"
    return text


def _where(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _Setup:
    def __init__(self, args: argparse.Namespace) -> None:
        from . import Config
        from .adapters import ServerSettings
        from .adapters.handlers import MaildirHandler, MboxHandler, PrintHandler

        if args.port is not None and not 0 <= args.port <= 65535:
            raise CLIError(f"--port must be between 0 and 65535, not {args.port}")
        if (args.tls_cert is None) != (args.tls_key is None):
            raise CLIError("--tls-cert and --tls-key go together")
        if args.implicit_tls and args.tls_cert is None:
            raise CLIError("--implicit-tls needs --tls-cert and --tls-key")
        if args.require_tls and args.tls_cert is None:
            raise CLIError("--require-tls needs --tls-cert and --tls-key")
        if (args.auth_user is None) != (args.auth_password is None):
            raise CLIError("--auth-user and --auth-password go together")
        if args.auth_user is not None and args.tls_cert is None and not args.allow_plaintext_auth:
            raise CLIError("AUTH is only offered over TLS: add --tls-cert/--tls-key (or --allow-plaintext-auth)")
        if args.max_connections < 1:
            raise CLIError(f"--max-connections must be at least 1, not {args.max_connections}")
        changes: dict[str, object] = {"lmtp": args.lmtp, "require_tls": args.require_tls,
                                      "allow_auth_without_tls": args.allow_plaintext_auth}
        if args.max_message_size is not None:
            changes["max_message_size"] = args.max_message_size
        try:
            config = Config().replace(**changes)
        except ValueError as exc:
            raise CLIError(_flag_message(str(exc), "--max-message-size")) from None
        if args.record is not None:
            try:
                os.makedirs(args.record, exist_ok=True)
            except OSError as exc:
                raise CLIError(f"--record: cannot use {args.record} as a directory: {exc.strerror or exc}") from None
        try:
            self.settings = ServerSettings(config=config, record=args.record,
                                           **({"hostname": args.hostname} if args.hostname is not None else {}))
        except ValueError as exc:
            raise CLIError(_flag_message(str(exc), "--hostname")) from None
        self.ssl_context: ssl.SSLContext | None = None
        if args.tls_cert is not None:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            try:
                ctx.load_cert_chain(args.tls_cert, args.tls_key)
            except (OSError, ssl.SSLError) as exc:
                raise CLIError(f"cannot load the TLS certificate/key: {exc}") from None
            self.ssl_context = ctx
        handler: PrintHandler | MaildirHandler | MboxHandler
        try:
            if args.maildir:
                handler = MaildirHandler(args.maildir)
            elif args.mbox:
                handler = MboxHandler(args.mbox)
            else:
                handler = PrintHandler()
        except OSError as exc:
            raise CLIError(f"cannot use the mail store: {exc}") from None
        if args.auth_user is not None:
            handler.set_credentials(args.auth_user, args.auth_password)
        self.handler = handler
        self.args = args
        self.server_kwargs: dict[str, object] = dict(
            host=args.host, port=args.port, unix_path=args.unix_socket, settings=self.settings,
            ssl_context=self.ssl_context, implicit_tls=args.implicit_tls,
            max_connections=args.max_connections)
        #: Where we (try to) listen, for the error when we cannot.
        self.where = f"unix:{args.unix_socket}" if args.unix_socket is not None else _where(args.host, args.port)

    def listen_failed(self, exc: OSError) -> ListenError:
        return ListenError(f"cannot listen on {self.where}: {exc.strerror or exc}")

    def announce(self, address: object) -> None:
        if isinstance(address, tuple):
            where = _where(str(address[0]), address[1])
        else:
            where = f"unix:{address}"
        extra = []
        if self.args.lmtp:
            extra.append("LMTP")
        if self.args.implicit_tls:
            extra.append("implicit TLS")
        elif self.ssl_context is not None:
            extra.append("STARTTLS")
        print(f"listening on {where}" + (f" ({', '.join(extra)})" if extra else ""), flush=True)


def _serve_threads(setup: _Setup) -> None:
    from .adapters.sockets import SMTPServer

    server = SMTPServer(setup.handler, **setup.server_kwargs)  # type: ignore[arg-type]
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    old_int = signal.signal(signal.SIGINT, on_signal)
    old_term = signal.signal(signal.SIGTERM, on_signal)
    try:
        try:
            server.start()
        except OSError as exc:
            raise setup.listen_failed(exc) from None
        setup.announce(server.address)
        while not stop.wait(0.5):
            pass
    finally:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)
        server.shutdown()


def _serve_asyncio(setup: _Setup) -> None:
    import asyncio

    from .adapters.asyncio import AsyncSMTPServer

    async def run() -> None:
        server = AsyncSMTPServer(setup.handler, **setup.server_kwargs)  # type: ignore[arg-type]
        try:
            await server.start()
        except OSError as exc:
            raise setup.listen_failed(exc) from None
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        setup.announce(server.address)
        try:
            await stop.wait()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            await server.shutdown()

    asyncio.run(run())


def _serve_trio(setup: _Setup) -> None:
    try:
        import trio  # type: ignore[import-untyped, unused-ignore]
    except ImportError:
        raise CLIError("--backend trio needs the trio package: pip install \"smtpproto[trio]\"") from None
    from .adapters.trio import TrioSMTPServer

    failed: list[OSError] = []

    async def run() -> None:
        server = TrioSMTPServer(setup.handler, **setup.server_kwargs)  # type: ignore[arg-type]
        # The signal receiver is in place before we say we listen, so a
        # Ctrl-C right after the announcement still shuts down cleanly.
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                try:
                    address = await nursery.start(server.serve)
                except Exception as exc:
                    # Kept, not raised here: in the nursery it could come out
                    # wrapped in an exception group.
                    cause = _sole_os_error(exc)
                    if cause is None:
                        raise
                    failed.append(cause)
                    return
                setup.announce(address)
                async for _ in signals:
                    break
                await server.shutdown()

    trio.run(run)
    if failed:
        raise setup.listen_failed(failed[0])


def _sole_os_error(exc: BaseException) -> OSError | None:
    """``exc`` if it is an OSError, or the one OSError in (nested) exception
    groups holding nothing else."""
    while not isinstance(exc, OSError):
        inner = getattr(exc, "exceptions", None)
        if not isinstance(inner, tuple) or len(inner) != 1 or not isinstance(inner[0], BaseException):
            return None
        exc = inner[0]
    return exc


def cmd_serve(argv: Sequence[str]) -> int:
    parser = _serve_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s")
    if args.verbose:  # our transcript, not every library's debug output
        logging.getLogger("asyncio").setLevel(logging.WARNING)
    try:
        setup = _Setup(args)
        runner = {"threads": _serve_threads, "asyncio": _serve_asyncio, "trio": _serve_trio}[args.backend]
        runner(setup)
    except CLIError as exc:
        print(f"{PROG} serve: error: {exc}", file=sys.stderr)
        return 2
    except ListenError as exc:
        print(f"{PROG} serve: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"{PROG} serve: error: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    print("stopped", flush=True)
    return 0


# ---------------------------------------------------------------- send


def cmd_send(argv: Sequence[str]) -> int:
    try:
        from .adapters._cli_send import main_send  # type: ignore[import-not-found, unused-ignore]
    except ImportError as exc:
        if "_cli_send" not in str(exc):
            raise
        print(f"{PROG} send: error: not available in this build (smtpproto.adapters._cli_send is missing)",
              file=sys.stderr)
        return 2
    return int(main_send(list(argv)))


# ---------------------------------------------------------------- demo


def cmd_demo(argv: Sequence[str]) -> int:
    parser = _Parser(prog=f"{PROG} demo", description=(
        "Start a server on a free loopback port, send it a multipart message with an attachment "
        "through the client, print the SMTP transcript and the message as the server parsed it."))
    parser.parse_args(argv)
    return run_demo(sys.stdout)


_DEMO_USER = "demo"
_DEMO_PASSWORD = "demo-password"


def run_demo(out: TextIO) -> int:
    """The ``demo`` command; returns the exit status."""
    from . import Config
    from .adapters import Envelope, Handler, ServerSettings, Session
    from .adapters.sockets import SMTPServer
    from .message import Attachment, build_bytes

    try:
        from .adapters.sockets import SMTPClient
    except ImportError:
        print(f"{PROG} demo: error: the blocking client (smtpproto.adapters.sockets.SMTPClient) is missing",
              file=sys.stderr)
        return 1

    received: list[Envelope] = []
    done = threading.Event()

    class DemoHandler(Handler):
        parse_message = True
        auth_mechanisms = ("PLAIN", "LOGIN")

        def verify_password(self, session: Session, username: str, password: str, authzid: str | None) -> bool:
            return username == _DEMO_USER and password == _DEMO_PASSWORD

        def on_message(self, session: Session, envelope: Envelope) -> None:
            received.append(envelope)
            done.set()

    # Loopback only, so the demo lets AUTH run without TLS (it needs no
    # certificate and works on any machine); real servers offer AUTH after TLS.
    config = Config(allow_auth_without_tls=True)
    settings = ServerSettings(config=config, hostname="server.demo.test", error_delay=0)
    server = SMTPServer(DemoHandler(), host="127.0.0.1", port=0, settings=settings, shutdown_grace=2.0)
    try:
        server.start()
    except OSError as exc:
        print(f"{PROG} demo: error: cannot listen on 127.0.0.1: {exc.strerror or exc}", file=sys.stderr)
        return 1
    address = server.address
    assert isinstance(address, tuple)
    host, port = address
    csv = b"city,population\r\nReykjavik,139875\r\nTromso,77544\r\nNuuk,19872\r\n"
    message = build_bytes(
        from_=("Alice Example", "alice@sender.test"),
        to=[("Bob Example", "bob@receiver.test")],
        subject="Quarterly numbers \N{BAR CHART}",
        text="Hi Bob,\n\nThe numbers are attached.\n\n-- Alice\n",
        html="<p>Hi Bob,</p><p>The numbers are <b>attached</b>.</p><p>-- Alice</p>",
        attachments=[Attachment(data=csv, filename="numbers.csv", content_type="text/csv")],
        date=True,
        message_id=True,
    )
    lines: list[tuple[str, str]] = []
    try:
        client = SMTPClient(
            host, port, starttls="never", username=_DEMO_USER, password=_DEMO_PASSWORD,
            config=config, local_hostname="client.demo.test", timeout=10.0,
            transcript=lambda direction, line: lines.append((direction, line)),
        )
        with client:
            result = client.send_message(message)
        done.wait(5.0)
    except Exception as exc:
        print(f"{PROG} demo: error: sending failed: {exc}", file=sys.stderr)
        return 1
    finally:
        server.shutdown()
    if not received:
        print(f"{PROG} demo: error: the server received nothing", file=sys.stderr)
        return 1
    envelope = received[0]
    w = out.write
    w(f"smtpproto demo: a server on {host}:{port} and a client, both from this library.\n")
    w("AUTH runs without TLS here only because this is loopback; payloads are redacted.\n\n")
    w("== SMTP transcript (C: client, S: server) ==\n")
    for direction, line in lines:
        w(f"{direction}: {line}\n")
    w("\n== Outcome ==\n")
    for rcpt, status in result.recipients.items():
        enhanced = f" {status.enhanced_status}" if status.enhanced_status else ""
        w(f"{rcpt}: {status.code}{enhanced} {status.text}\n")
    w(f"{result.size} octets sent with {result.body}\n")
    w("\n== The message as the server parsed it ==\n")
    msg = envelope.message
    if msg is None:
        w("(not parsed)\n")
        return 1
    w(f"envelope: MAIL FROM:<{envelope.mail_from}> RCPT TO:" + ", ".join(f"<{r}>" for r in envelope.rcpt_tos) + "\n")
    for name in ("From", "To", "Subject", "Date", "Message-ID"):
        value = msg.get(name)
        if value is not None:
            w(f"{name}: {value}\n")
    w("structure:\n")
    for part in msg.walk():
        depth = 0
        parent = part.parent
        while parent is not None:
            depth += 1
            parent = parent.parent
        label = part.content_type
        if part.filename:
            label += f'  (attachment "{part.filename}", {len(part.decoded_body())} octets)'
        elif not part.is_multipart:
            label += f"  ({len(part.decoded_body())} octets, {part.transfer_encoding})"
        w(f"  {'  ' * depth}{label}\n")
    for part in msg.text_body:
        w("text body:\n")
        for text_line in part.text().splitlines():
            w(f"  | {text_line}\n")
    for part in msg.attachments:
        w(f"attachment {part.filename}:\n")
        for text_line in part.decoded_body().decode("utf-8", "replace").splitlines():
            w(f"  | {text_line}\n")
    same = envelope.content == message
    w(f"\nstored bytes identical to the bytes sent: {'yes' if same else 'NO'}\n")
    out.flush()
    return 0 if same else 1


# ---------------------------------------------------------------- replay


def cmd_replay(argv: Sequence[str]) -> int:
    """``replay FILE HOST:PORT``: 0 when every reply code matches the
    transcript, 1 when some differ, 2 on bad usage, an unreadable transcript
    or an unreachable server."""
    import json

    from ._probe import parse_target
    from .transcript import format_report, load_transcript, replay_transcript

    p = _Parser(prog=f"{PROG} replay", description=(
        "Play the client side of a transcript recorded with --record (or record=) to one server, "
        "write by write, and compare its replies with the recorded ones. AUTH was redacted when "
        "recording, so a recorded AUTH fails on replay."))
    p.add_argument("transcript", metavar="FILE", help="the transcript (JSON lines)")
    p.add_argument("target", metavar="HOST:PORT", help="the server to replay it to (port 25 if omitted)")
    p.add_argument("--timeout", type=float, default=5.0, metavar="S",
                   help="seconds to wait for the replies to each write (default 5)")
    p.add_argument("--settle", type=float, default=0.3, metavar="S",
                   help="seconds to listen after the last write (default 0.3)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = p.parse_args(list(argv))
    try:
        host, port = parse_target(args.target)
    except ValueError as exc:
        p.error(str(exc))
    if not 0 < args.timeout <= 60 or not 0 <= args.settle <= 10:
        p.error("--timeout must be in (0, 60] and --settle in [0, 10] seconds")
    try:
        recording = load_transcript(args.transcript)
    except (OSError, ValueError) as exc:
        print(f"{p.prog}: error: cannot read {args.transcript}: {exc}", file=sys.stderr)
        return 2
    try:
        report = replay_transcript((host, port), recording, timeout=args.timeout, settle=args.settle)
    except OSError as exc:
        print(f"{p.prog}: error: cannot connect to {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({
            "target": report.target, "matches": report.matches, "closed": report.closed,
            "recorded_closed": report.recorded_closed, "error": report.error,
            "steps": [{"index": s.index, "sent": s.sent.decode("latin-1"), "starttls": s.starttls,
                       "recorded": [str(r) for r in s.expected],
                       "replayed": [f"{r.code} {' '.join(r.lines)}".rstrip() for r in s.replies],
                       "matches": s.matches} for s in report.steps],
        }, indent=2))
    else:
        print(f"smtpproto replay {args.transcript} to {host}:{port}")
        print(format_report(report))
    return 0 if report.matches else 1


# ---------------------------------------------------------------- main


_USAGE = f"""usage: {PROG} <command> [options]

commands:
  serve   run a debugging SMTP/LMTP server (prints or stores messages)
  send    send a message
  demo    a server and a client talking over loopback, with the transcript
  probe   try the SECURITY-CASES protocol rows against a live server
  replay  play a recorded transcript (serve/send --record) to a server

'{PROG} <command> --help' describes each command's options.
"""


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        sys.stdout.write(_USAGE)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "serve":
        return cmd_serve(rest)
    if command == "send":
        return cmd_send(rest)
    if command == "demo":
        return cmd_demo(rest)
    if command == "probe":
        from ._probe import main as probe_main

        return probe_main(rest)
    if command == "replay":
        return cmd_replay(rest)
    if command in ("--version", "version"):
        from . import __version__

        print(f"smtpproto {__version__}")
        return 0
    print(f"{PROG}: error: unknown command {command!r} (choose serve, send, demo, probe or replay)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
