"""The session state machine as tables.

This module does not know which role we play: a client applies a transition when
a reply *arrives*, a server when it *sends* one, and both look the move up here,
so the two peers cannot disagree.  A command moves the session only through its
reply (RFC 5321 §4.1.4, §4.3.2); the reply class (2, 3, 4, 5) is the key.
``docs/states.md`` is generated from these tables by ``docs/gen_states.py``.
"""

from __future__ import annotations

import enum

from ._events import (
    Auth,
    AuthResponse,
    Bdat,
    Data,
    Ehlo,
    EndOfMessage,
    Expn,
    Helo,
    Help,
    Lhlo,
    Mail,
    Noop,
    Quit,
    Rcpt,
    Rset,
    StartTLS,
    Vrfy,
    Xclient,
    Xforward,
)

__all__ = ["State", "Greeting", "ALLOWED", "TRANSITIONS", "GROUP_ENDERS", "next_state", "diagram"]


class State(enum.Enum):
    """Where a session is.  Both peers run the same machine."""

    # Members compare by identity, so the identity hash agrees with ==; Enum's
    # own __hash__ is a Python-level call, paid on every table lookup by state.
    __hash__ = object.__hash__

    #: Connected; the server's greeting is due.
    GREETING = "GREETING"
    #: Greeted (or TLS just came up): EHLO/HELO/LHLO is due.
    HELLO = "HELLO"
    #: Between transactions.
    READY = "READY"
    #: MAIL accepted, no recipient yet.
    MAIL = "MAIL"
    #: At least one recipient accepted.
    RCPT = "RCPT"
    #: 354 given: content until CRLF.CRLF, then the final reply(ies).
    DATA = "DATA"
    #: At least one non-LAST BDAT chunk answered.
    BDAT = "BDAT"
    #: A SASL exchange is under way (334 given).
    AUTH = "AUTH"
    #: 220 to STARTTLS given: waiting for the adapter's TLS hand-over.
    TLS = "TLS"
    #: The greeting was 554 (RFC 5321 §3.1): only QUIT is answered.
    NO_SERVICE = "NO_SERVICE"
    #: 221 or 421 given, or the peer closed.
    CLOSED = "CLOSED"
    #: A protocol error; nothing more can happen.
    ERROR = "ERROR"

    # Members are singletons compared by identity; Enum's own __hash__ is a
    # Python-level function, and states key the transition tables looked up
    # for every command and reply.
    __hash__ = object.__hash__


class Greeting:
    """Stands for the greeting in the tables: the reply nobody asked for."""

    __slots__ = ()


S = State
_HELLOS: tuple[type, ...] = (Ehlo, Helo, Lhlo)
#: Commands valid in every state where commands are read at all (RFC 5321 §4.1.4:
#: NOOP, HELP, EXPN, VRFY and RSET "may be used at any time during a session").
_ANYTIME: tuple[type, ...] = (Noop, Rset, Quit, Vrfy, Expn, Help)

#: Which commands may be issued in which state.  Anything else is "bad sequence":
#: a 503 from a server, a LocalProtocolError for a client.
ALLOWED: dict[State, frozenset[type]] = {
    S.GREETING: frozenset(),
    S.NO_SERVICE: frozenset({Quit}),
    S.HELLO: frozenset(_HELLOS + _ANYTIME),
    S.READY: frozenset(_HELLOS + _ANYTIME + (Mail, StartTLS, Auth, Xclient, Xforward)),
    S.MAIL: frozenset(_HELLOS + _ANYTIME + (Rcpt,)),
    S.RCPT: frozenset(_HELLOS + _ANYTIME + (Rcpt, Data, Bdat)),
    # RFC 3030 §3: after a BDAT chunk only further chunks (or leaving) make sense.
    S.BDAT: frozenset({Bdat, Rset, Quit, Noop}),
    S.DATA: frozenset(),
    S.AUTH: frozenset({AuthResponse}),
    S.TLS: frozenset(),
    S.CLOSED: frozenset(),
    S.ERROR: frozenset(),
}

#: (state, command type, reply class) -> next state.  Missing: no change.
#: 421 from any state closes (RFC 5321 §3.8), handled in :func:`next_state`.
TRANSITIONS: dict[tuple[State, type, int], State] = {
    (S.GREETING, Greeting, 2): S.HELLO,
    (S.GREETING, Greeting, 5): S.NO_SERVICE,
    (S.GREETING, Greeting, 4): S.CLOSED,
    (S.READY, Mail, 2): S.MAIL,
    (S.MAIL, Rcpt, 2): S.RCPT,
    (S.RCPT, Rcpt, 2): S.RCPT,
    (S.RCPT, Data, 3): S.DATA,
    # The transaction ends with the final reply, whatever it says (§4.1.1.4).
    (S.DATA, EndOfMessage, 2): S.READY,
    (S.DATA, EndOfMessage, 4): S.READY,
    (S.DATA, EndOfMessage, 5): S.READY,
    (S.RCPT, Bdat, 2): S.BDAT,
    (S.RCPT, Bdat, 4): S.BDAT,
    (S.RCPT, Bdat, 5): S.BDAT,
    (S.READY, StartTLS, 2): S.TLS,
    (S.READY, Auth, 3): S.AUTH,
    (S.AUTH, AuthResponse, 3): S.AUTH,
    (S.AUTH, AuthResponse, 2): S.READY,
    (S.AUTH, AuthResponse, 4): S.READY,
    (S.AUTH, AuthResponse, 5): S.READY,
    (S.NO_SERVICE, Quit, 2): S.CLOSED,
    # Postfix XCLIENT: success is a new 220 greeting, so the client says EHLO again.
    (S.READY, Xclient, 2): S.HELLO,
}
for _st in (S.HELLO, S.READY, S.MAIL, S.RCPT):
    for _cmd in _HELLOS:
        # A successful EHLO/HELO/LHLO is also an implicit RSET (§4.1.4).
        TRANSITIONS[(_st, _cmd, 2)] = S.READY
    TRANSITIONS[(_st, Quit, 2)] = S.CLOSED
for _st in (S.READY, S.MAIL, S.RCPT, S.BDAT):
    TRANSITIONS[(_st, Rset, 2)] = S.READY
TRANSITIONS[(S.BDAT, Quit, 2)] = S.CLOSED
# BDAT LAST ends the transaction whatever the reply (RFC 3030 §2); a non-LAST
# chunk keeps it in BDAT (after a failure the client must RSET, §3).  The LAST
# flag is not a type, so the connection passes ``EndOfMessage`` for it.
for _st in (S.RCPT, S.BDAT):
    for _cls in (2, 4, 5):
        TRANSITIONS[(_st, EndOfMessage, _cls)] = S.READY
TRANSITIONS[(S.BDAT, Bdat, 2)] = S.BDAT

#: RFC 2920 §3.1: these must be the last command of a pipelined group; RFC 3207
#: and RFC 4954 add STARTTLS and AUTH (and an AUTH continuation is by nature an
#: answer to a challenge); XCLIENT restarts the session like a greeting.
GROUP_ENDERS: frozenset[type] = frozenset(
    {Ehlo, Helo, Lhlo, Data, Vrfy, Expn, Quit, Noop, StartTLS, Auth, AuthResponse, Xclient}
)


def next_state(state: State, command: type, code: int) -> State:
    """The state after ``code`` answers a ``command`` issued in ``state``."""
    if code == 421:
        return S.CLOSED
    return TRANSITIONS.get((state, command, code // 100), state)


def diagram() -> str:
    """A Mermaid state diagram of :data:`TRANSITIONS` (for docs/states.md)."""
    out = ["stateDiagram-v2", "    [*] --> GREETING"]
    for (src, cmd, cls), dst in sorted(
        TRANSITIONS.items(), key=lambda kv: (kv[0][0].value, kv[0][1].__name__, kv[0][2])
    ):
        name = "greeting" if cmd is Greeting else cmd.__name__
        if cmd is EndOfMessage and src is not S.DATA:
            name = "Bdat(last)"
        out.append(f"    {src.value} --> {dst.value}: {name} {cls}xx")
    out.append("    CLOSED --> [*]")
    out.append("    ERROR --> [*]")
    return "\n".join(out)


def allowed_table() -> str:
    """A Markdown table of :data:`ALLOWED`."""
    rows = ["| state | commands accepted |", "|---|---|"]
    for state in State:
        names = sorted(t.__name__ for t in ALLOWED[state])
        rows.append(f"| `{state.value}` | {', '.join(names) or '—'} |")
    return "\n".join(rows)


if __name__ == "__main__":  # pragma: no cover
    print(diagram())
