"""``python -m smtpproto send``: send one message from the command line.

Builds the message with :mod:`smtpproto.message` (or sends a file as it is),
sends it with the blocking :class:`~smtpproto.adapters.sockets.SMTPClient`, and
prints one line per recipient.  Exit status: 0 when every recipient got the
message, 1 when the server refused some or all of it or could not be reached,
2 for bad options.  ``--verbose`` prints the transcript (AUTH redacted) on
standard error; ``--record FILE`` writes it to a transcript file for ``replay``.
"""

from __future__ import annotations

import argparse
import os
import ssl
import sys
from typing import BinaryIO, NoReturn, TextIO

from .._config import Config
from ..message import Attachment, BuildError, EnvelopeError, HeaderError, build_bytes
from ._client_flow import (
    SMTPClientError,
    SMTPDataRefused,
    SMTPRecipientsRefused,
    SMTPServerDisconnected,
    SMTPTimeoutError,
    SMTPTLSError,
    SendResult,
    default_port,
)

__all__ = ["main_send"]

PROG = "python -m smtpproto send"


class _UsageError(Exception):
    """Bad options: one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description=(
        "Send one message over SMTP or LMTP. Without --message-file the message is built from "
        "--from/--to/--subject/--body/--attach."))
    p.add_argument("--server", required=True, metavar="HOST:PORT",
                   help="server address ([v6addr]:port works; a path is a UNIX socket)")
    p.add_argument("--from", dest="sender", metavar="ADDR", help="envelope sender and From: field")
    p.add_argument("--to", action="append", default=[], metavar="ADDR", help="recipient (repeatable)")
    p.add_argument("--subject", help="Subject: field")
    body = p.add_mutually_exclusive_group()
    body.add_argument("--body", metavar="TEXT", help="plain-text body")
    body.add_argument("--body-file", metavar="FILE", help="read the plain-text body (UTF-8) from FILE")
    p.add_argument("--attach", action="append", default=[], metavar="FILE", help="attach FILE (repeatable)")
    p.add_argument("--message-file", metavar="EML",
                   help="send this RFC 5322 file as it is (Bcc removed); the envelope comes from its "
                        "header fields unless --from/--to are given")
    tls = p.add_mutually_exclusive_group()
    tls.add_argument("--starttls", action="store_true", help="require STARTTLS before sending anything")
    tls.add_argument("--tls", action="store_true", help="implicit TLS from the first byte (RFC 8314, port 465)")
    p.add_argument("--insecure", action="store_true", help="do not verify the server's certificate")
    p.add_argument("--user", metavar="U", help="AUTH user name")
    p.add_argument("--password", metavar="P", help="AUTH password")
    p.add_argument("--allow-plaintext-auth", action="store_true",
                   help="allow AUTH without TLS (only for testing on loopback)")
    p.add_argument("--lmtp", action="store_true", help="speak LMTP (RFC 2033)")
    p.add_argument("--helo", metavar="NAME", help="the EHLO/LHLO name (default: our address literal)")
    p.add_argument("--timeout", type=float, default=60.0, metavar="S",
                   help="seconds to wait for the server at most, per step (default 60)")
    p.add_argument("--verbose", "-v", action="store_true", help="print the SMTP transcript on standard error")
    p.add_argument("--record", metavar="FILE",
                   help="write the session to a transcript file (AUTH redacted; see 'python -m smtpproto replay')")
    return p


def _split_server(text: str, *, tls: bool, lmtp: bool) -> tuple[str | None, int, str | None]:
    """(host, port, unix path)."""
    if "/" in text:
        return None, 0, text
    port = default_port(tls=tls, lmtp=lmtp)
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise _UsageError(f"--server: cannot read {text!r} (use HOST:PORT or [IPv6]:PORT)")
        port_text = rest[1:] if rest else ""
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    elif ":" in text:
        raise _UsageError(f"--server: write an IPv6 address in brackets, e.g. [{text}]:25")
    else:
        host, port_text = text, ""
    if not host:
        raise _UsageError("--server: the host is missing")
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise _UsageError(f"--server: bad port {port_text!r}")
        port = int(port_text)
    return host, port, None


def _message(args: argparse.Namespace) -> bytes | BinaryIO:
    """The message: built bytes, or the open --message-file (streamed)."""
    if args.message_file is not None:
        if args.subject is not None or args.body is not None or args.body_file is not None or args.attach:
            raise _UsageError("--message-file cannot be combined with --subject, --body, --body-file or --attach")
        try:
            return open(args.message_file, "rb")
        except OSError as exc:
            raise _UsageError(f"--message-file: {exc.strerror or exc}: {args.message_file}") from None
    if args.sender is None or not args.to:
        raise _UsageError("--from and at least one --to are needed (or --message-file)")
    text = args.body
    if args.body_file is not None:
        try:
            with open(args.body_file, "rb") as f:
                text = f.read().decode("utf-8")
        except OSError as exc:
            raise _UsageError(f"--body-file: {exc.strerror or exc}: {args.body_file}") from None
        except UnicodeDecodeError:
            raise _UsageError(f"--body-file: {args.body_file} is not UTF-8 text") from None
    attachments = []
    for path in args.attach:
        try:
            with open(path, "rb") as f:
                attachments.append(Attachment(data=f.read(), filename=os.path.basename(path)))
        except OSError as exc:
            raise _UsageError(f"--attach: {exc.strerror or exc}: {path}") from None
    utf8 = not all(a.isascii() for a in [args.sender, *args.to])
    try:
        return build_bytes(from_=args.sender, to=list(args.to), subject=args.subject, text=text or "",
                           attachments=attachments, date=True, message_id=True, smtputf8=utf8)
    except (BuildError, HeaderError, ValueError) as exc:
        raise _UsageError(f"cannot build the message: {exc}") from None


def _ssl_context(insecure: bool) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


#: OpenSSL's words for a peer whose first bytes are no TLS record (a plaintext
#: server's "220 ..." greeting, say); they differ between OpenSSL versions.
_NOT_TLS_REASONS = frozenset({"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG",
                              "UNKNOWN_PROTOCOL", "HTTP_REQUEST"})


def _tls_hint(exc: BaseException, args: argparse.Namespace, greeted: bool = True) -> str:
    """What to try after a failed TLS handshake, or after a plaintext
    connection that never saw a greeting ("" for other errors)."""
    if not greeted and not args.tls and isinstance(exc, (SMTPTimeoutError, SMTPServerDisconnected)):
        return "; if the port expects TLS from the first byte, as 465 does, try --tls"
    cause = exc.__cause__
    if not isinstance(exc, SMTPTLSError) or not isinstance(cause, ssl.SSLError):
        return ""
    if isinstance(cause, ssl.SSLCertVerificationError):
        return " (the server's certificate could not be verified; --insecure skips the check)"
    if args.tls and getattr(cause, "reason", None) in _NOT_TLS_REASONS:
        return " (the server does not speak TLS from the first byte: is this a plaintext port? try --starttls)"
    return ""


def _report(result: SendResult, out: TextIO) -> None:
    width = max(len(a) for a in result.recipients)
    for address, status in result.recipients.items():
        word = "ok     " if status.ok else "REFUSED"
        out.write(f"{word} {address:<{width}}  {status.summary}\n")


def main_send(argv: list[str], *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Run ``send`` with ``argv`` (without the ``send`` word); returns the exit status."""
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    parser = _parser()
    try:
        if any(a in ("-h", "--help") for a in argv):
            parser.print_help(out)
            return 0
        args = parser.parse_args(argv)
        if (args.user is None) != (args.password is None):
            raise _UsageError("--user and --password go together")
        if args.timeout <= 0:
            raise _UsageError("--timeout must be positive")
        host, port, unix = _split_server(args.server, tls=args.tls, lmtp=args.lmtp)
        if args.record is not None:
            try:
                open(args.record, "w").close()  # fail now, not after connecting
            except OSError as exc:
                raise _UsageError(f"--record: {exc.strerror or exc}: {args.record}") from None
        message = _message(args)
    except _UsageError as exc:
        err.write(f"{PROG}: error: {exc} (see --help)\n")
        return 2

    from ._sockets_client import SMTPClient

    def transcript(direction: str, line: str) -> None:
        err.write(f"{direction}: {line}\n")

    client = SMTPClient(
        host, port, unix_socket=unix,
        starttls="required" if args.starttls else "never",
        tls=args.tls,
        ssl_context=_ssl_context(args.insecure) if (args.tls or args.starttls) else None,
        username=args.user, password=args.password,
        local_hostname=args.helo, lmtp=args.lmtp,
        timeout=args.timeout, connect_timeout=args.timeout,
        config=Config(allow_auth_without_tls=args.allow_plaintext_auth),
        transcript=transcript if args.verbose else None,
        record=args.record,
    )
    to = list(args.to) or None
    try:
        with client:
            result = client.send_message(message, args.sender, to)
    except SMTPRecipientsRefused as exc:
        for address, status in exc.recipients.items():
            out.write(f"REFUSED {address}  {status.summary}\n")
        err.write(f"{PROG}: error: every recipient was refused\n")
        return 1
    except SMTPDataRefused as exc:
        for address, status in exc.recipients.items():
            out.write(f"REFUSED {address}  {status.summary}\n")
        err.write(f"{PROG}: error: {exc}\n")
        return 1
    except EnvelopeError as exc:
        err.write(f"{PROG}: error: no envelope: {exc}; give --from/--to\n")
        return 1
    except (SMTPClientError, ValueError) as exc:
        greeted = client.session is None or client.session.greeting is not None
        err.write(f"{PROG}: error: {exc}{_tls_hint(exc, args, greeted)}\n")
        return 1
    finally:
        if not isinstance(message, bytes):
            message.close()
    _report(result, out)
    if not result.ok:
        err.write(f"{PROG}: error: {len(result.refused)} of {len(result.recipients)} recipients refused\n")
        return 1
    return 0
