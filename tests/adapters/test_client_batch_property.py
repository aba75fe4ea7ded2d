"""``send_messages`` against ``send_mail`` one message at a time, in memory
(our server Connection, no I/O): for any batch and any mix of refusals, the
grouped batch gives the same outcome per message and the server receives the
same transactions, in fewer round trips."""

from __future__ import annotations

import os
import sys
from typing import Any

from hypothesis import given, settings, strategies as st

sys.path.insert(0, os.path.dirname(__file__))

from test_client_flow import Memory, session  # noqa: E402

from smtpproto import Config, Connection, Data, EndOfMessage, Mail, Rcpt, Reply, Role  # noqa: E402
from smtpproto.adapters._client_flow import (  # noqa: E402
    Read,
    SendResult,
    SMTPClientError,
    prepare_message,
)


class Policy(Memory):
    """Refuses a sender starting with "bad", a recipient starting with "no",
    and, after the content, a message whose body holds b"REJECT"."""

    def __post_init__(self) -> None:
        super().__post_init__()
        # Refusals are the point here: no 421 for too many of them.
        self.conn = Connection(Role.SERVER, Config(hard_error_limit=10_000, soft_error_limit=10_000,
                                                   junk_command_limit=10_000))
        self.to_client = bytearray(self.conn.send(Reply(code=220, lines=("mem.test",))))
        self.mark = 0  # where the message in progress starts in self.content
        self.delivered: list[tuple[str, tuple[str, ...], bytes]] = []
        self.envelope: tuple[str, list[str]] = ("", [])

    def _answer(self, owed: object) -> Reply:
        if isinstance(owed, Mail):
            if owed.reverse_path.startswith("bad"):
                return Reply(code=550, lines=("sender refused",), enhanced_status="5.7.1")
            self.envelope = (owed.reverse_path, [])
            return Reply(code=250, lines=("ok",))
        if isinstance(owed, Rcpt):
            if owed.forward_path.startswith("no"):
                return Reply(code=550, lines=("no such user",), enhanced_status="5.1.1")
            self.envelope[1].append(owed.forward_path)
            return Reply(code=250, lines=("ok",))
        if isinstance(owed, Data):
            self.mark = len(self.content)
        if isinstance(owed, EndOfMessage):
            content = bytes(self.content[self.mark:])
            if b"REJECT" in content:
                return Reply(code=554, lines=("content refused",), enhanced_status="5.7.1")
            self.delivered.append((self.envelope[0], tuple(self.envelope[1]), content))
            return Reply(code=250, lines=("queued",), enhanced_status="2.0.0")
        return super()._answer(owed)


def _outcome_key(outcome: Any) -> tuple[Any, ...]:
    if isinstance(outcome, SendResult):
        return ("ok", outcome.reply.code, tuple((a, s.code) for a, s in outcome.recipients.items()))
    assert isinstance(outcome, (SMTPClientError, ValueError)), outcome
    return (type(outcome).__name__, getattr(outcome, "code", None))


def one_by_one(mem: Policy, items: list[tuple[bytes, str, list[str]]]) -> list[tuple[Any, ...]]:
    s = session()
    mem.run(s.handshake())
    outcomes = []
    for raw, sender, rcpts in items:
        try:
            snd, rc, out = prepare_message(raw, sender, rcpts, chunk_size=s.options.chunk_size)
            outcomes.append(_outcome_key(mem.run(s.send_mail(snd, rc, out))))
        except (SMTPClientError, ValueError) as exc:
            outcomes.append(_outcome_key(exc))
    return outcomes


message = st.tuples(
    st.sampled_from([b"", b"REJECT "]),
    st.sampled_from(["a@x.example", "bad@x.example"]),
    st.lists(st.sampled_from(["b@y.example", "c@y.example", "no1@y.example", "no2@y.example"]),
             min_size=0, max_size=3, unique=True),
    st.binary(max_size=40),
)


@settings(max_examples=150, deadline=None)
@given(batch=st.lists(message, min_size=1, max_size=6))
def test_batch_equals_one_by_one(batch: list[tuple[bytes, str, list[str], bytes]]) -> None:
    items = [(b"Subject: %d\r\n\r\n" % i + marker + body.replace(b"\r", b"").replace(b"\n", b"\r\n") + b"\r\n",
              sender, rcpts) for i, (marker, sender, rcpts, body) in enumerate(batch)]
    alone = Policy()
    expected = one_by_one(alone, items)

    grouped = Policy()
    s = session()
    grouped.run(s.handshake())
    reads_before = sum(isinstance(a, Read) for a in grouped.actions)
    got = [_outcome_key(o) for o in grouped.run(s.send_messages(items))]

    assert got == expected
    assert grouped.delivered == alone.delivered
    assert s.usable
    # Every accepted envelope costs one read at most, plus the last final
    # reply; refusals may cost the general code's extra reads, never more
    # than one by one does.
    reads = sum(isinstance(a, Read) for a in grouped.actions) - reads_before
    reads_alone = sum(isinstance(a, Read) for a in alone.actions) - 2  # greeting, EHLO
    assert reads <= reads_alone
    if all(o[0] == "ok" and all(code < 400 for _, code in o[2]) for o in expected):
        assert reads == len(items) + 1  # every message grouped: one read each, and the last final reply
