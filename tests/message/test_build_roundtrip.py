"""Property: parse(build(x)) gives back x — subject, addresses, text, html, attachments."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smtpproto.message._builder import Attachment, build, build_bytes
from smtpproto.message._encode import format_addresses, format_header
from smtpproto.message._parser import parse
from smtpproto.message._transfer_encode import normalize_newlines

# Text without surrogates, CR, LF or NUL (header values cannot carry them: H-02).
_chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00")
_word = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cs", "Zs", "Zl", "Zp", "Cc"), blacklist_characters="\x85"
    ),
    min_size=1,
    max_size=20,
)
# Header text as a reader sees it: words separated by single spaces (a reader collapses
# the white space around a fold, RFC 5322 §2.2.3 leaves that to it).
_phrase = st.lists(_word, max_size=12).map(" ".join)
_atext = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~"
_local = st.lists(st.text(alphabet=_atext, min_size=1, max_size=10), min_size=1, max_size=3).map(
    ".".join
)
_label = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12)
_domain = st.lists(_label, min_size=1, max_size=3).map(lambda ls: ".".join(ls) + ".example")
_addr_spec = st.builds(lambda lp, d: f"{lp}@{d}", _local, _domain)
_mailbox = st.tuples(_phrase, _addr_spec)
_body_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=400)
_filename = st.lists(_word, min_size=1, max_size=4).map(" ".join).filter(
    lambda s: not s.startswith(" ") and "/" not in s and "\\" not in s
)
_attachment = st.builds(
    lambda data, name, ctype: Attachment(data, filename=name, content_type=ctype),
    st.binary(max_size=600),
    _filename,
    st.sampled_from([None, "application/octet-stream", "image/png", "text/plain", "application/pdf"]),
)


def same_addresses(got: list[object], want: list[tuple[str, str]]) -> None:
    assert [(getattr(a, "display_name", None) or "", getattr(a, "addr_spec", None)) for a in got] == [
        (name, spec) for name, spec in want
    ]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    subject=_phrase,
    from_=_mailbox,
    to=st.lists(_mailbox, min_size=1, max_size=5),
    cc=st.lists(_mailbox, max_size=3),
    text=st.none() | _body_text,
    html=st.none() | _body_text,
    attachments=st.lists(_attachment, max_size=3),
    smtputf8=st.booleans(),
    allow_8bit=st.booleans(),
)
def test_parse_build_round_trip(
    subject: str,
    from_: tuple[str, str],
    to: list[tuple[str, str]],
    cc: list[tuple[str, str]],
    text: str | None,
    html: str | None,
    attachments: list[Attachment],
    smtputf8: bool,
    allow_8bit: bool,
) -> None:
    raw = build_bytes(
        from_=from_, to=to, cc=cc, subject=subject, text=text, html=html,
        attachments=attachments, smtputf8=smtputf8, allow_8bit=allow_8bit, seed=1,
    )
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    if not smtputf8 and not allow_8bit:
        assert raw.isascii()
    msg = parse(raw)
    assert msg.to_bytes() == raw
    assert msg["Subject"] == subject
    same_addresses(msg.addresses("From"), [from_])
    same_addresses(msg.addresses("To"), to)
    same_addresses(msg.addresses("Cc"), cc)
    if text is not None:
        assert msg.text_body[0].content_type == "text/plain"
        assert msg.text_body[0].text() == normalize_newlines(text.encode()).decode()
    if html is not None:
        assert msg.html_body[-1].content_type == "text/html"
        assert msg.html_body[-1].text() == normalize_newlines(html.encode()).decode()
    got = [(p.filename, p.decoded_body()) for p in msg.attachments]
    assert got == [(a.filename, a.data) for a in attachments]
    errors = [d for d in msg.check() if getattr(getattr(d, "severity", None), "name", "") == "ERROR"]
    assert not errors


@settings(max_examples=200, deadline=None)
@given(st.lists(_mailbox, min_size=1, max_size=8), st.booleans())
def test_address_list_round_trip(addresses: list[tuple[str, str]], utf8: bool) -> None:
    # format_addresses -> header -> parse gives the same display names and addr-specs.
    field = format_header("To", addresses, utf8=utf8)
    msg = parse(field + b"\r\n")
    same_addresses(msg.addresses("To"), addresses)
    # The plain text form round-trips through the string path of format_header too.
    text = format_addresses(addresses, utf8=utf8)
    if utf8 or text.isascii():
        msg2 = parse(format_header("To", text, utf8=utf8) + b"\r\n")
        same_addresses(msg2.addresses("To"), addresses)


def test_build_returns_message_with_identical_bytes() -> None:
    kwargs = dict(from_="a@example.com", to="b@example.com", subject="s", text="t", seed=3)
    msg = build(**kwargs)
    assert msg.to_bytes() == build_bytes(**kwargs)  # type: ignore[arg-type]
    assert re.match(rb"From: a@example\.com\r\n", msg.to_bytes())


_utf8_local = st.lists(
    st.text(alphabet=_atext[:20] + "äöüßéñçøåжπ日本", min_size=1, max_size=8), min_size=1, max_size=2
).map(".".join)
_utf8_domain = st.lists(
    st.text(alphabet="abcdxyz019äöüжπ", min_size=1, max_size=8), min_size=1, max_size=2
).map(lambda ls: ".".join(ls) + ".example")
_utf8_mailbox = st.tuples(_phrase, st.builds(lambda lp, d: f"{lp}@{d}", _utf8_local, _utf8_domain))


@settings(max_examples=100, deadline=None)
@given(
    from_=_utf8_mailbox,
    to=st.lists(_utf8_mailbox, min_size=1, max_size=4),
    subject=_phrase,
    filename=_filename,
    data=st.binary(max_size=200),
)
def test_smtputf8_round_trip(
    from_: tuple[str, str], to: list[tuple[str, str]], subject: str, filename: str, data: bytes
) -> None:
    raw = build_bytes(
        from_=from_, to=to, subject=subject, text="body",
        attachments=[Attachment(data, filename=filename)], smtputf8=True, seed=2,
    )
    msg = parse(raw)
    assert msg["Subject"] == subject
    same_addresses(msg.addresses("From"), [from_])
    same_addresses(msg.addresses("To"), to)
    assert [(p.filename, p.decoded_body()) for p in msg.attachments] == [(filename, data)]
