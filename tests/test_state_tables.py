"""Consistency checks of the session tables in ``smtpproto._state`` and of the
generated state diagram in ``docs/states.md``."""

from __future__ import annotations

import re
from collections import deque
from pathlib import Path

import pytest

from smtpproto import (
    Auth,
    AuthResponse,
    Bdat,
    Command,
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
    State,
    Vrfy,
)
from smtpproto import _events, _state
from smtpproto._state import ALLOWED, GROUP_ENDERS, TRANSITIONS, Greeting, diagram, next_state

#: Every command type the events module defines (new ones are picked up).
ALL_COMMANDS = tuple(
    cls for cls in vars(_events).values()
    if isinstance(cls, type) and issubclass(cls, Command) and cls is not Command
)
#: Postfix's XCLIENT, when the core has it: success is a new 220 that restarts
#: the session, so like STARTTLS it must end a pipelined group.
XCLIENT = getattr(_events, "Xclient", None)
#: Row keys that are not commands a client issues: the greeting, the end of the
#: content (DATA, or a BDAT LAST chunk) and an AUTH continuation.
PSEUDO = (Greeting, EndOfMessage, AuthResponse)
DOCS_STATES = Path(__file__).resolve().parent.parent / "docs" / "states.md"


def test_every_state_has_an_allowed_row() -> None:
    assert set(ALLOWED) == set(State)


@pytest.mark.parametrize("state", list(State))
def test_allowed_rows_hold_command_types(state: State) -> None:
    row = ALLOWED[state]
    assert isinstance(row, frozenset)
    for cls in row:
        assert isinstance(cls, type)
        assert issubclass(cls, Command) or cls is AuthResponse, cls


def test_transition_keys_and_targets_are_well_formed() -> None:
    assert TRANSITIONS
    for (src, cmd, cls), dst in TRANSITIONS.items():
        assert isinstance(src, State)
        assert isinstance(dst, State), (src, cmd, cls, dst)
        assert cls in (2, 3, 4, 5), (src, cmd, cls)
        assert cmd in ALL_COMMANDS or cmd in PSEUDO, cmd


def test_transitions_only_for_commands_allowed_in_their_state() -> None:
    for (src, cmd, cls), dst in TRANSITIONS.items():
        if cmd is Greeting:
            assert src is State.GREETING
        elif cmd is EndOfMessage:
            # DATA content, or a BDAT LAST chunk issued in RCPT/BDAT.
            assert src is State.DATA or Bdat in ALLOWED[src], (src, cls)
        else:
            assert cmd in ALLOWED[src], (src, cmd, cls)


def test_intermediate_replies_only_where_they_exist() -> None:
    """3xx moves the session only for DATA (354) and AUTH (334)."""
    for (src, cmd, cls), dst in TRANSITIONS.items():
        if cls == 3:
            assert cmd in (Data, Auth, AuthResponse), (src, cmd)


def test_greeting_rows() -> None:
    assert next_state(State.GREETING, Greeting, 220) is State.HELLO
    assert next_state(State.GREETING, Greeting, 554) is State.NO_SERVICE
    assert next_state(State.GREETING, Greeting, 421) is State.CLOSED
    assert ALLOWED[State.GREETING] == frozenset()
    assert ALLOWED[State.NO_SERVICE] == frozenset({Quit})


def test_421_closes_from_anywhere() -> None:
    for state in State:
        for cmd in ALL_COMMANDS + PSEUDO:
            assert next_state(state, cmd, 421) is State.CLOSED, (state, cmd)


def test_next_state_is_the_table_or_no_change() -> None:
    """Only the reply class matters (but 421), and a missing row changes nothing."""
    for state in State:
        for cmd in ALL_COMMANDS + PSEUDO:
            for code in (211, 250, 251, 334, 354, 450, 452, 500, 503, 550, 554):
                expected = TRANSITIONS.get((state, cmd, code // 100), state)
                assert next_state(state, cmd, code) is expected, (state, cmd, code)


def test_terminal_states() -> None:
    for state in (State.CLOSED, State.ERROR):
        assert ALLOWED[state] == frozenset()
        assert not [k for k in TRANSITIONS if k[0] is state]


def test_content_and_handover_states_accept_no_command() -> None:
    assert ALLOWED[State.DATA] == frozenset()
    assert ALLOWED[State.TLS] == frozenset()
    assert ALLOWED[State.AUTH] == frozenset({AuthResponse})


def test_every_state_is_reachable() -> None:
    seen = {State.GREETING}
    todo = deque([State.GREETING])
    while todo:
        src = todo.popleft()
        for (s, _, _), dst in TRANSITIONS.items():
            if s is src and dst not in seen:
                seen.add(dst)
                todo.append(dst)
        if src is State.TLS and State.HELLO not in seen:  # the adapter's TLS hand-over
            seen.add(State.HELLO)
            todo.append(State.HELLO)
    # ERROR is entered by a protocol error, not by a reply.
    assert seen == set(State) - {State.ERROR}


@pytest.mark.parametrize("state", [s for s in State if ALLOWED[s] and s is not State.AUTH])
def test_quit_is_always_possible_where_commands_are_read(state: State) -> None:
    assert Quit in ALLOWED[state]
    assert next_state(state, Quit, 221) is State.CLOSED


@pytest.mark.parametrize("state", [State.HELLO, State.READY, State.MAIL, State.RCPT])
def test_anytime_commands(state: State) -> None:
    """RFC 5321 section 4.1.4: NOOP, HELP, EXPN, VRFY and RSET may be used at any time."""
    assert {Noop, Help, Expn, Vrfy, Rset, Quit} <= ALLOWED[state]


@pytest.mark.parametrize("state", [State.HELLO, State.READY, State.MAIL, State.RCPT])
@pytest.mark.parametrize("hello", [Ehlo, Helo, Lhlo])
def test_hello_is_an_implicit_rset(state: State, hello: type) -> None:
    assert hello in ALLOWED[state]
    assert next_state(state, hello, 250) is State.READY
    assert next_state(state, hello, 550) is state


def test_all_commands_found() -> None:
    assert {Ehlo, Helo, Lhlo, Mail, Rcpt, Data, Bdat, Rset, Noop, Quit, Vrfy, Expn, Help, StartTLS, Auth} <= set(ALL_COMMANDS)


@pytest.mark.skipif(XCLIENT is None, reason="the core has no XCLIENT")
def test_xclient_restarts_the_session() -> None:
    assert XCLIENT in ALLOWED[State.READY]
    assert next_state(State.READY, XCLIENT, 220) is State.HELLO
    assert next_state(State.READY, XCLIENT, 550) is State.READY
    for state in (State.MAIL, State.RCPT, State.BDAT, State.DATA):
        assert XCLIENT not in ALLOWED[state]  # not inside a transaction


def test_transaction_rows() -> None:
    assert next_state(State.READY, Mail, 250) is State.MAIL
    assert next_state(State.MAIL, Rcpt, 250) is State.RCPT
    assert next_state(State.MAIL, Rcpt, 550) is State.MAIL
    assert next_state(State.RCPT, Rcpt, 550) is State.RCPT
    assert next_state(State.RCPT, Data, 354) is State.DATA
    assert next_state(State.RCPT, Data, 554) is State.RCPT
    for code in (250, 451, 554):
        assert next_state(State.DATA, EndOfMessage, code) is State.READY
    for state in (State.READY, State.MAIL, State.RCPT, State.BDAT):
        assert next_state(state, Rset, 250) is State.READY
    assert Mail not in ALLOWED[State.MAIL] and Mail not in ALLOWED[State.RCPT]
    assert Data not in ALLOWED[State.MAIL] and Data not in ALLOWED[State.READY]


def test_bdat_rows() -> None:
    assert next_state(State.RCPT, Bdat, 250) is State.BDAT
    assert next_state(State.BDAT, Bdat, 250) is State.BDAT
    for src in (State.RCPT, State.BDAT):
        for code in (250, 452, 552):
            assert next_state(src, EndOfMessage, code) is State.READY  # BDAT LAST
    assert Data not in ALLOWED[State.BDAT]
    assert Mail not in ALLOWED[State.BDAT]


def test_starttls_and_auth_rows() -> None:
    assert next_state(State.READY, StartTLS, 220) is State.TLS
    assert next_state(State.READY, StartTLS, 454) is State.READY
    assert next_state(State.READY, Auth, 334) is State.AUTH
    assert next_state(State.READY, Auth, 235) is State.READY
    assert next_state(State.AUTH, AuthResponse, 334) is State.AUTH
    for code in (235, 454, 501, 535):
        assert next_state(State.AUTH, AuthResponse, code) is State.READY
    for state in (State.MAIL, State.RCPT, State.BDAT, State.HELLO):
        assert StartTLS not in ALLOWED[state] and Auth not in ALLOWED[state]


# RFC 2920 section 3.1: "The EHLO, DATA, VRFY, EXPN, TURN, QUIT, and NOOP
# commands can only appear as the last command in a group" (TURN is not
# implemented); RFC 3207 and RFC 4954 add STARTTLS and AUTH.
RFC2920_ENDERS = {Ehlo, Data, Vrfy, Expn, Quit, Noop}


def test_group_enders_match_rfc2920_plus_starttls_and_auth() -> None:
    assert RFC2920_ENDERS <= GROUP_ENDERS
    assert {StartTLS, Auth} <= GROUP_ENDERS
    # Anything else in the set is a hello (HELO, LMTP's LHLO), an AUTH
    # continuation, or XCLIENT (its 220 restarts the session).
    assert GROUP_ENDERS - RFC2920_ENDERS - {StartTLS, Auth} <= {Helo, Lhlo, AuthResponse, XCLIENT}
    if XCLIENT is not None:
        assert XCLIENT in GROUP_ENDERS
    # MAIL, RCPT, RSET, HELP and BDAT may be followed by more commands.
    assert not {Mail, Rcpt, Rset, Help, Bdat} & GROUP_ENDERS


def test_diagram_lists_every_transition_once() -> None:
    text = diagram()
    out = text.splitlines()
    assert out[0] == "stateDiagram-v2"
    assert "    [*] --> GREETING" in out
    edges = [line for line in out if re.fullmatch(r"    [A-Z_]+ --> [A-Z_]+: .+ [2-5]xx", line)]
    assert len(edges) == len(TRANSITIONS)
    assert len(set(edges)) == len(edges)
    for (src, cmd, cls), dst in TRANSITIONS.items():
        assert any(line.startswith(f"    {src.value} --> {dst.value}: ") and line.endswith(f" {cls}xx")
                   for line in edges), (src, cmd, cls, dst)
    assert diagram() == text  # deterministic


def test_allowed_table_lists_every_state() -> None:
    table = _state.allowed_table()
    for state in State:
        assert f"| `{state.value}` |" in table


def test_docs_states_md_holds_the_generated_diagram() -> None:
    if not DOCS_STATES.exists():
        pytest.skip("docs/states.md does not exist yet (it is to be generated with `python -m smtpproto._state`)")
    text = DOCS_STATES.read_text(encoding="utf-8")
    blocks = re.findall(r"```mermaid\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) == 1, "docs/states.md should hold exactly one mermaid block"
    assert blocks[0].strip("\n") == diagram(), "docs/states.md is stale: regenerate it from smtpproto._state.diagram()"
