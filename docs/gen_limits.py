"""Write docs/limits.md: every ``smtpproto.Config`` field, its default and why.

    python docs/gen_limits.py            # rewrites docs/limits.md
    python docs/gen_limits.py OUTDIR     # writes OUTDIR/limits.md (tests/test_docs.py)

The names, types and defaults come from ``dataclasses.fields(Config)``; the
explanations live in ``EXPLAIN`` below.  A field without an explanation, or an
explanation for a field that no longer exists, stops the script, so the page
cannot fall behind the code.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from smtpproto import Config

# field -> (group, basis: RFC section or precedent, what the connection does with it)
EXPLAIN: dict[str, tuple[str, str, str]] = {
    # ------------------------------------------------------------------ lines
    "max_command_line": (
        "lines",
        "RFC 5321 §4.5.3.1.4 (512 octets with CRLF)",
        "Server: a command line other than MAIL, RCPT or AUTH longer than this gets "
        "`InvalidCommand` with `500 5.5.2`. Client: `send()` refuses to produce a longer "
        "line. Must be at least 512.",
    ),
    "max_mail_rcpt_line": (
        "lines",
        "RFC 5321 §4.5.3.1.4 lets extensions raise the limit (RFC 1870, 3461, 4954 §5, 6531); "
        "Postfix `line_length_limit` 2048",
        "The limit for MAIL and RCPT lines, and the most a server buffers of any line outside "
        "an AUTH exchange: past it the rest of the line is discarded up to its LF and answered "
        "with one `500 5.5.2` (R-01). Must be at least `max_command_line`.",
    ),
    "max_auth_line": (
        "lines",
        "RFC 4954 §4 (responses as long as the mechanism needs; 12288 octets named as "
        "sufficient); Postfix `smtpd_sasl_response_limit` 12288",
        "The limit for the lines of a SASL exchange: each response line in the `AUTH` state, "
        "and on the client also the `AUTH` command with its initial response. A server reads "
        "the `AUTH` command itself under `max_mail_rcpt_line`; RFC 4954 §4 keeps that command "
        "within the normal SMTP line limit. See [auth-framing.md](auth-framing.md).",
    ),
    "max_data_line": (
        "lines",
        "RFC 5321 §4.5.3.1.6 (1000 octets with CRLF)",
        "Server, DATA only: a longer text line marks the message; the content is drained to "
        "the real end of data and `MessageRejected` (`500 5.5.2`) replaces `EndOfMessage` "
        "(R-03). `None` accepts lines of any length; memory stays bounded by the chunk "
        "either way, because the reader never holds a whole line. Must be at least 1000.",
    ),
    "max_reply_line": (
        "lines",
        "RFC 5321 §4.5.3.1.5 says 512; smtplib `_MAXLINE` and aiosmtplib use 8192 (R-10)",
        "Client: a longer reply line is a `RemoteProtocolError`; the buffer never grows past "
        "it while waiting for a line end.",
    ),
    "max_reply_size": (
        "lines",
        "aiosmtplib `MAX_RESPONSE_LENGTH` (32 KiB) (R-10)",
        "Client: the most octets one multi-line reply may take; more is a "
        "`RemoteProtocolError`, so endless `250-` continuations cannot exhaust memory.",
    ),
    "max_discard": (
        "lines",
        "Postfix 2026 fix for unlimited long command lines; aiosmtpd `LimitOverrunError` loop (R-02)",
        "Server: how many octets of one over-long command line are thrown away before the "
        "client is given up on: `RemoteProtocolError` with `500 5.5.2`, then close.",
    ),
    # -------------------------------------------------------------- addresses
    "max_local_part": (
        "addresses",
        "RFC 5321 §4.5.3.1.1 (64 octets)",
        "Both roles: a longer local part is a syntax error (server `501`, client "
        "`LocalProtocolError`) (R-06).",
    ),
    "max_domain": (
        "addresses",
        "RFC 5321 §4.5.3.1.2 (255 octets)",
        "Both roles: the limit for the domain of a path and for the EHLO/HELO/LHLO argument "
        "(R-06, C-04).",
    ),
    "max_path": (
        "addresses",
        "RFC 5321 §4.5.3.1.3 (256 octets with the angle brackets)",
        "Both roles: the limit for a whole reverse or forward path (R-06).",
    ),
    # ----------------------------------------------------------- transactions
    "max_recipients": (
        "transactions",
        "RFC 5321 §4.5.3.1.8 (at least 100), §4.5.3.1.10 (452 for too many); Postfix "
        "`smtpd_recipient_limit` 1000",
        "Server: each RCPT past the limit gets `InvalidCommand` with `452 4.5.3` and the "
        "transaction goes on (R-05). Client: `send()` refuses to queue more. Must be at least 100.",
    ),
    "max_message_size": (
        "transactions",
        "RFC 1870 (SIZE); RFC 5321 §4.5.3.1.7 (at least 64 KiB); Postfix `message_size_limit`",
        "Server: the size ceiling. If the EHLO reply advertised a smaller `SIZE`, that one "
        "applies. `MAIL SIZE=` above it gets `552 5.3.4`; DATA content above it is drained "
        "and refused with `552 5.3.4` at the end; a BDAT chunk that would pass it is drained "
        "and refused with `552 5.3.4` (R-04, S-13). Must be at least 65536.",
    ),
    # ---------------------------------------------------------- error budgets
    "hard_error_limit": (
        "error budgets",
        "Postfix `smtpd_hard_error_limit` 20",
        "Server: once this many 4xx/5xx replies were sent, the next read raises "
        "`RemoteProtocolError` with `421 4.7.0 Error: too many errors` (R-07).",
    ),
    "soft_error_limit": (
        "error budgets",
        "Postfix `smtpd_soft_error_limit` 10 and `smtpd_error_sleep_time`",
        "Server: from this many errors on, `Connection.delay_advised` is true; the adapter "
        "decides how long to wait before each reply (the core never sleeps). Must not exceed "
        "`hard_error_limit`.",
    ),
    "junk_command_limit": (
        "error budgets",
        "Postfix `smtpd_junk_command_limit` 100",
        "Server: NOOP, RSET, VRFY, EXPN and HELP count as junk; each one past the limit also "
        "counts as an error, so a session of nothing but NOOPs reaches `hard_error_limit`. "
        "The count starts over after a delivered message.",
    ),
    "unknown_command_limit": (
        "error budgets",
        "aiosmtpd `BOGUS_LIMIT` 5",
        "Server: unknown verbs tolerated; the next one raises `RemoteProtocolError` with "
        "`421 4.7.0` (R-07).",
    ),
    # --------------------------------------------------------------- policies
    "bare_newline": (
        "policies",
        "RFC 5321 §2.3.8; Postfix `smtpd_forbid_bare_newline`; SMTP smuggling (S-01..S-17)",
        "Receiving side. `\"reject\"`: a command line with a bare LF gets `500 5.5.2`; DATA "
        "content with a bare CR or LF is drained to the real end of data and answered with "
        "`550 5.5.2`; a reply line ending in a bare LF is a `RemoteProtocolError` (R-11). "
        "`\"normalize\"`: treat them as CRLF. In both modes only CRLF.CRLF ends DATA.",
    ),
    "client_bare_newline": (
        "policies",
        "H-10 (outbound smuggling); aiosmtplib `write_message_data`",
        "Sending side, DATA content: `\"normalize\"` rewrites bare CR and LF to CRLF before "
        "dot-stuffing; `\"reject\"` makes `send(MessageData(...))` raise `LocalProtocolError`. "
        "BDAT content is sent as is either way.",
    ),
    "enforce_pipelining_sync": (
        "policies",
        "RFC 2920 §3.1; Postfix `smtpd_forbid_unauth_pipelining` (S-12, P-02)",
        "Server: input that arrives while a reply to a group-ending command is owed, or while "
        "any reply is owed without PIPELINING, is a `RemoteProtocolError` with "
        "`554 5.5.0 Error: SMTP protocol synchronization`. Data after STARTTLS is refused "
        "even when this is off (T-01).",
    ),
    "pregreet": (
        "policies",
        "Postfix postscreen `postscreen_greet_action` (P-01)",
        "Server, bytes received before the greeting was sent. `\"drop\"`: "
        "`RemoteProtocolError` with `521 5.5.1`. `\"enforce\"`: every later command but QUIT "
        "gets `550 5.5.1`. `\"ignore\"`: process them after the greeting.",
    ),
    "require_tls": (
        "policies",
        "RFC 3207 §4; aiosmtpd `require_starttls` (T-04, T-08, T-09)",
        "Server: MAIL before TLS gets `530 5.7.0`, AUTH gets `538 5.7.11`. Client: `send()` "
        "raises `TLSRequiredError` for MAIL or AUTH in cleartext.",
    ),
    "allow_auth_without_tls": (
        "policies",
        "RFC 4954 §4 and §15 (credentials over cleartext); aiosmtpd `auth_require_tls`",
        "Off: a server may not advertise AUTH and answers AUTH with `538 5.7.11` before TLS; a "
        "client raises `TLSRequiredError`. On: AUTH is allowed in cleartext (unless "
        "`require_tls`).",
    ),
    "lmtp": (
        "policies",
        "RFC 2033",
        "Speak LMTP: LHLO instead of EHLO/HELO (the other greeting is an unknown command), "
        "and one reply per accepted recipient after the end of data.",
    ),
    "proxy_protocol": (
        "policies",
        "HAProxy PROXY protocol (proxy-protocol.txt), Postfix `smtpd_upstream_proxy_protocol`",
        "Server behind a load balancer: `\"v1\"`, `\"v2\"` or `\"any\"` makes a PROXY "
        "header the first thing expected (a `ProxyConnected` event carries it); a missing or "
        "malformed header closes the connection. `\"off\"`: no header is expected.",
    ),
    # --------------------------------------------------------------- timeouts
    "timeout_greeting": (
        "timeouts (seconds; reported by `Connection.deadline()`, never enforced by the core)",
        "RFC 5321 §4.5.3.2.1 (5 minutes)",
        "Client: waiting for the server's greeting.",
    ),
    "timeout_mail": (
        "timeouts (seconds; reported by `Connection.deadline()`, never enforced by the core)",
        "RFC 5321 §4.5.3.2.2 (5 minutes)",
        "Client: waiting for the reply to MAIL.",
    ),
    "timeout_rcpt": (
        "timeouts (seconds; reported by `Connection.deadline()`, never enforced by the core)",
        "RFC 5321 §4.5.3.2.3 (5 minutes)",
        "Client: waiting for the reply to RCPT.",
    ),
    "timeout_data_init": (
        "timeouts (seconds; reported by `Connection.deadline()`, never enforced by the core)",
        "RFC 5321 §4.5.3.2.4 (2 minutes)",
        "Client: waiting for the 354 to DATA.",
    ),
    "timeout_data_block": (
        "timeouts (seconds; reported by `Connection.deadline()`, never enforced by the core)",
        "RFC 5321 §4.5.3.2.5 (3 minutes)",
        "Client: between 354 and the end of the content, for each write.",
    ),
    "timeout_data_term": (
        "timeouts (seconds; reported by `Connection.deadline()`, never enforced by the core)",
        "RFC 5321 §4.5.3.2.6 (10 minutes)",
        "Client: waiting for the reply after the end of data (or to a BDAT chunk).",
    ),
    "timeout_other": (
        "timeouts (seconds; reported by `Connection.deadline()`, never enforced by the core)",
        "none in RFC 5321 §4.5.3.2 for other commands; 5 minutes, as for MAIL and RCPT",
        "Client: waiting for the reply to any other command.",
    ),
    "timeout_server": (
        "timeouts (seconds; reported by `Connection.deadline()`, never enforced by the core)",
        "RFC 5321 §4.5.3.2.7 (server timeout, 5 minutes); Postfix `smtpd_timeout` (R-08)",
        "Server: a deadline per request (from the first byte of a command line, not per "
        "read), so a client trickling one byte at a time cannot hold the session open.",
    ),
    "min_data_rate": (
        "timeouts (seconds; reported by `Connection.deadline()`, never enforced by the core)",
        "Postfix `smtpd_min_data_rate` 500 (R-08)",
        "Server, DATA/BDAT (octets per second): the adapter extends the deadline by "
        "received octets / rate, capped at `timeout_server`.",
    ),
}

HEADER = """\
<!-- GENERATED by docs/gen_limits.py from dataclasses.fields(smtpproto.Config) and the
     explanations kept in that script. Do not edit by hand: run
     `python docs/gen_limits.py` and commit the result. -->

# Limits and policies: `Config`

Every limit and policy of a `Connection` is a field of one frozen dataclass,
`smtpproto.Config`. All sizes are octets and, for lines, include the CRLF. The
defaults are the "proposed smtpproto default" column of the project's security
cases (see [security.md](security.md)); the second column names the RFC
section or the implementation whose behaviour the default follows.

```python
from smtpproto import Config, Connection, Role

config = Config(max_message_size=50 * 1024 * 1024, lmtp=True)
server = Connection(Role.SERVER, config)
stricter = config.replace(hard_error_limit=10, soft_error_limit=5)   # a validated copy
assert stricter.lmtp and stricter.hard_error_limit == 10
```

`Config()` validates itself: a non-positive number, `max_command_line < 512`,
`max_recipients < 100`, `max_data_line < 1000`, `max_message_size < 65536`,
`soft_error_limit > hard_error_limit` or an unknown policy name raises
`ValueError`. The minimums are the ones RFC 5321 §4.5.3.1 says every
implementation must accept, so a configuration cannot make the library refuse
what a conforming peer is allowed to send.

Why limits are checked *before* parsing: the receive buffer never holds more
than the current limit (plus one received chunk), and the answer to a given
byte string is the same however TCP splits it (SECURITY-CASES F-02).
"""

FOOTER = """
## Where the core stops

Timeouts are data, not timers: `Connection.deadline()` returns a `Deadline(name,
seconds, min_rate)` for what the connection is waiting for right now (or `None`
when it waits for nothing from the peer), and the adapter runs the clock. Limits
that need a clock, a count across connections or an address (connections per
client, pre-greeting wait times) are adapter concerns.
"""


def _default(field: dataclasses.Field[object]) -> str:
    value = field.default
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1024 and value % 1024 == 0:
        kib = value // 1024
        human = f"{kib // 1024} MiB" if kib % 1024 == 0 else f"{kib} KiB"
        return f"`{value}` ({human})"
    return f"`{value!r}`"


def render() -> str:
    fields = dataclasses.fields(Config)
    names = [f.name for f in fields]
    missing = [n for n in names if n not in EXPLAIN]
    stale = [n for n in EXPLAIN if n not in names]
    if missing or stale:
        raise SystemExit(f"docs/gen_limits.py is out of date: undocumented {missing}, unknown {stale}")
    out = [HEADER]
    group = None
    for f in fields:
        g, basis, what = EXPLAIN[f.name]
        if g != group:
            group = g
            out.append(f"\n## {g[0].upper()}{g[1:]}\n")
            out.append("| field | default | basis | what it does |")
            out.append("|---|---|---|---|")
        out.append(f"| `{f.name}` | {_default(f)} | {basis} | {what} |")
    out.append(FOOTER)
    return "\n".join(out)


def main(argv: list[str]) -> None:
    out_dir = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent
    (out_dir / "limits.md").write_text(render(), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv)
