"""The connection's configuration: every limit and policy in one frozen object.

Each default is the "proposed smtpproto default" of SECURITY-CASES.md; the RFC
section or the precedent behind it is named next to the field and in
``docs/limits.md``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

__all__ = ["Config", "NewlinePolicy", "PregreetPolicy", "ProxyProtocol"]

#: What to do with a bare CR or bare LF (one not part of CRLF).
#: ``"reject"``: a command line containing one is refused with 500 5.5.2; in DATA the
#: rest is drained to the real end of data and then refused with 550 5.5.2.
#: ``"normalize"``: treat it as CRLF.  In every mode only CRLF.CRLF ends DATA.
NewlinePolicy = Literal["reject", "normalize"]

#: What a server does with bytes that arrive before its greeting was sent
#: (Postfix postscreen's pregreet test): ``"drop"`` raises RemoteProtocolError with
#: a 521 reply, ``"enforce"`` refuses every later command but QUIT with 550,
#: ``"ignore"`` processes them after the greeting.
PregreetPolicy = Literal["drop", "enforce", "ignore"]

#: Whether a server expects a HAProxy PROXY protocol header before anything
#: else, and which versions it accepts.
ProxyProtocol = Literal["off", "v1", "v2", "any"]


@dataclass(frozen=True)
class Config:
    """Limits and policies for a :class:`~smtpproto.Connection`.

    All sizes are in octets and, for lines, include the terminating CRLF.
    """

    # --- lines -------------------------------------------------------------
    #: RFC 5321 §4.5.3.1.4: a command line is at most 512 octets.
    max_command_line: int = 512
    #: MAIL and RCPT lines may carry ESMTP parameters (RFC 5321 §4.5.3.1.4 lets each
    #: extension raise the limit; RFC 1870, 3461, 4954 and 6531 do).  Hard cap.
    max_mail_rcpt_line: int = 2048
    #: RFC 4954 §4: an AUTH command or response line may be 12288 octets.
    max_auth_line: int = 12288
    #: RFC 5321 §4.5.3.1.6: a text line in DATA is at most 1000 octets.  Longer lines
    #: are drained and the message refused with 500 5.5.2 at the end of data; None
    #: accepts lines of any length (memory stays bounded either way).
    max_data_line: int | None = 1000
    #: Client side: one reply line (RFC: 512; smtplib/aiosmtplib tolerate 8192).
    max_reply_line: int = 8192
    #: Client side: a whole (multi-line) reply.
    max_reply_size: int = 32 * 1024
    #: How much of an over-long command line a server discards before it gives up
    #: on the client (R-02): 500 and close.
    max_discard: int = 64 * 1024

    # --- addresses (RFC 5321 §4.5.3.1.1-3) ----------------------------------
    max_local_part: int = 64
    max_domain: int = 255
    max_path: int = 256

    # --- transactions ---------------------------------------------------------
    #: RFC 5321 §4.5.3.1.8: at least 100 must be accepted; excess gets 452 4.5.3.
    max_recipients: int = 1000
    #: Message size limit (RFC 1870), enforced while DATA/BDAT streams in.
    max_message_size: int = 10 * 1024 * 1024

    # --- error budgets (Postfix smtpd_*_error_limit, smtpd_junk_command_limit) --
    #: After this many error replies, 421 4.7.0 and close.
    hard_error_limit: int = 20
    #: After this many error replies :attr:`Connection.delay_advised` turns true.
    soft_error_limit: int = 10
    #: NOOP, RSET, VRFY, EXPN, HELP count as junk; after this many, 421 and close.
    junk_command_limit: int = 100
    #: Unrecognised verbs tolerated before 421 and close.
    unknown_command_limit: int = 5

    # --- policies -------------------------------------------------------------
    #: Bare CR / bare LF handling on the receiving side (commands, DATA, replies).
    bare_newline: NewlinePolicy = "reject"
    #: Bare CR / bare LF in message content *we send*: normalize to CRLF (safe,
    #: H-10) or reject with LocalProtocolError.
    client_bare_newline: NewlinePolicy = "normalize"
    #: RFC 2920 §3.1 synchronization: a server answers 554 5.5.0 and closes when a
    #: client sends past a group-ending command, or pipelines at all without
    #: PIPELINING (S-12, P-02).
    enforce_pipelining_sync: bool = True
    #: Server: bytes received before the greeting was sent (P-01).
    pregreet: PregreetPolicy = "drop"
    #: Refuse MAIL and AUTH until TLS is active (server: 530 / 538; client:
    #: TLSRequiredError).  RFC 3207 §4, T-04, T-08, T-09.
    require_tls: bool = False
    #: Allow AUTH over a cleartext connection (off by default on both sides).
    allow_auth_without_tls: bool = False
    #: LMTP (RFC 2033): LHLO instead of EHLO/HELO, one reply per recipient.
    lmtp: bool = False
    #: Server behind a proxy: a PROXY protocol header must open the connection
    #: (HAProxy proxy-protocol.txt); garbage or a missing header closes it.
    proxy_protocol: ProxyProtocol = "off"

    # --- timeouts (RFC 5321 §4.5.3.2), in seconds; the core only reports them --
    timeout_greeting: float = 300.0
    timeout_mail: float = 300.0
    timeout_rcpt: float = 300.0
    timeout_data_init: float = 120.0
    timeout_data_block: float = 180.0
    timeout_data_term: float = 600.0
    timeout_other: float = 300.0
    #: Server: per-request deadline (Postfix smtpd_timeout) and the minimum
    #: transfer rate in DATA/BDAT by which it is extended (smtpd_min_data_rate).
    timeout_server: float = 300.0
    min_data_rate: int = 500

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if value <= 0:
                raise ValueError(f"Config.{f.name} must be positive, not {value!r}")
        if self.max_command_line < 512:
            raise ValueError("max_command_line must be at least 512 (RFC 5321 §4.5.3.1.4)")
        if self.max_mail_rcpt_line < self.max_command_line:
            raise ValueError("max_mail_rcpt_line must be >= max_command_line")
        if self.max_recipients < 100:
            raise ValueError("max_recipients must be at least 100 (RFC 5321 §4.5.3.1.8)")
        if self.max_data_line is not None and self.max_data_line < 1000:
            raise ValueError("max_data_line must be at least 1000 (RFC 5321 §4.5.3.1.6)")
        if self.max_message_size < 65536:
            raise ValueError("max_message_size must be at least 64 KiB (RFC 5321 §4.5.3.1.7)")
        if self.soft_error_limit > self.hard_error_limit:
            raise ValueError("soft_error_limit must not exceed hard_error_limit")
        if self.bare_newline not in ("reject", "normalize"):
            raise ValueError(f"bad bare_newline policy {self.bare_newline!r}")
        if self.client_bare_newline not in ("reject", "normalize"):
            raise ValueError(f"bad client_bare_newline policy {self.client_bare_newline!r}")
        if self.proxy_protocol not in ("off", "v1", "v2", "any"):
            raise ValueError(f"bad proxy_protocol {self.proxy_protocol!r}")
        if self.pregreet not in ("drop", "enforce", "ignore"):
            raise ValueError(f"bad pregreet policy {self.pregreet!r}")

    def replace(self, **changes: object) -> "Config":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]
