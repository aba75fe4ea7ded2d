"""Tests for smtpproto.message._encode: names, values, folding, addresses, verification."""

from __future__ import annotations

import re

import pytest

from smtpproto.message._rfc2047 import decode_words
from smtpproto.message._encode import (
    HeaderError,
    check_field_name,
    format_address,
    format_addresses,
    format_header,
    format_params_header,
    verify_header_bytes,
    verify_header_section,
)



def lines_of(raw: bytes) -> list[bytes]:
    assert raw.endswith(b"\r\n")
    return raw[:-2].split(b"\r\n")


def unfold(raw: bytes) -> str:
    """RFC 5322 §2.2.3 unfolding of one field, returning the text after 'Name:'."""
    text = raw[:-2].replace(b"\r\n", b"").decode("utf-8")
    return text.split(":", 1)[1]


# ------------------------------------------------------------------ field names (H-04)


@pytest.mark.parametrize("name", ["Subject", "X-Custom", "a", "!#$%&'*+-.^_`|~", "X" * 200])
def test_valid_field_names(name: str) -> None:
    check_field_name(name)


@pytest.mark.parametrize(
    "name", ["X-A: b\r\nBcc", "X Bad", "", "Sub:ject", "X\tA", "Ü", "X\x00", "X\x7f", "X\n"]
)
def test_invalid_field_names(name: str) -> None:
    with pytest.raises(HeaderError):
        check_field_name(name)
    with pytest.raises(HeaderError):
        format_header(name, "value")


def test_field_name_must_be_str() -> None:
    with pytest.raises(HeaderError):
        check_field_name(b"Subject")  # type: ignore[arg-type]


# ------------------------------------------------------------------ values (H-02)


@pytest.mark.parametrize(
    "value",
    ["A subject\n", "A subject\r", "A subject\r\n", "a\nBcc: x@y", "a\rb", "a\x00b", "\n"],
)
@pytest.mark.parametrize("name", ["Subject", "To", "Message-ID", "X-Thing"])
def test_value_with_cr_lf_nul_is_rejected(name: str, value: str) -> None:
    with pytest.raises(HeaderError):
        format_header(name, value)
    with pytest.raises(HeaderError):
        format_header(name, value, utf8=True)


def test_simple_header() -> None:
    assert format_header("Subject", "Hello world") == b"Subject: Hello world\r\n"
    assert format_header("X-Empty", "") == b"X-Empty:\r\n"


def test_folding_is_lossless_and_short() -> None:
    value = " ".join(f"word{i}" for i in range(200))
    raw = format_header("Subject", value)
    lines = lines_of(raw)
    assert len(lines) > 10
    assert all(len(line) <= 78 for line in lines)
    assert all(line[:1] == b" " for line in lines[1:])
    assert unfold(raw) == " " + value
    verify_header_bytes(raw)


def test_folding_keeps_multiple_spaces_and_tabs() -> None:
    value = ("abc  \tdef " * 30).strip()
    raw = format_header("Subject", value)
    assert unfold(raw) == " " + value
    assert all(len(line) <= 78 for line in lines_of(raw))


def test_trailing_white_space_never_makes_blank_line() -> None:
    raw = format_header("Subject", "x" * 70 + "      ")
    verify_header_bytes(raw)
    assert unfold(raw) == " " + "x" * 70 + "      "


def test_long_ascii_word_fits_under_998_unencoded_when_possible() -> None:
    word = "a" * 900
    raw = format_header("X-Long", word)
    assert raw == b"X-Long: " + word.encode() + b"\r\n"


def test_structured_field_not_encoded() -> None:
    raw = format_header("Message-ID", "<abc.def@example.com>")
    assert raw == b"Message-ID: <abc.def@example.com>\r\n"
    with pytest.raises(HeaderError):
        format_header("Message-ID", "<ü@example.com>")
    assert format_header("Message-ID", "<ü@example.com>", utf8=True) == (
        "Message-ID: <ü@example.com>\r\n".encode()
    )


def test_structured_field_too_long_raises() -> None:
    with pytest.raises(HeaderError):
        format_header("Message-ID", "<" + "a" * 1200 + "@example.com>")


def test_references_folds_between_ids() -> None:
    ids = " ".join(f"<id{i}.{'x' * 20}@example.com>" for i in range(20))
    raw = format_header("References", ids)
    assert all(len(line) <= 78 for line in lines_of(raw))
    assert unfold(raw) == " " + ids


# ------------------------------------------------------------------ verification (H-03)


@pytest.mark.parametrize(
    "raw",
    [
        b"Subject: a\r\n",
        b"Subject: a\r\n b\r\n",
        b"Subject: a\r\n\tb\r\n",
        b"Subject:\r\n",
        b"X: " + b"a" * 995 + b"\r\n",
    ],
)
def test_verify_accepts(raw: bytes) -> None:
    verify_header_bytes(raw)


@pytest.mark.parametrize(
    "raw",
    [
        b"Subject: a",  # no CRLF
        b"Subject: a\n",  # bare LF end
        b"Subject: a\nBcc: x@y\r\n",  # bare LF
        b"Subject: a\rBcc: x@y\r\n",  # bare CR
        b"Subject: a\r\nBcc: x@y\r\n",  # CRLF followed by non-WSP
        b"Subject: a\r\n\r\n",  # ends the header section
        b"Subject: a\r\n   \r\n",  # blank continuation line
        b"Subject: a\x00\r\n",
        b"Sub ject: a\r\n",
        b": a\r\n",
        b"no colon\r\n",
        b"X: " + b"a" * 996 + b"\r\n",  # 999-octet line
        b"Subject: a\r\n b\r",
    ],
)
def test_verify_rejects(raw: bytes) -> None:
    with pytest.raises(HeaderError):
        verify_header_bytes(raw)


def test_verify_rejects_non_bytes() -> None:
    with pytest.raises(HeaderError):
        verify_header_bytes("Subject: a\r\n")  # type: ignore[arg-type]


def test_verify_section() -> None:
    verify_header_section(b"From: a@b\r\nSubject: x\r\n y\r\n\r\n")
    verify_header_section(b"From: a@b\r\n")
    with pytest.raises(HeaderError):
        verify_header_section(b"From: a@b\r\nbad line\r\n\r\n")
    with pytest.raises(HeaderError):
        verify_header_section(b"From: a@b\r\nSubject: x\n\r\n")
    with pytest.raises(HeaderError):
        verify_header_section(b"From: a@b")


# ------------------------------------------------------------------ addresses


def test_format_address_plain_and_quoted() -> None:
    assert format_address("joe@example.com") == "joe@example.com"
    assert format_address(("", "joe@example.com")) == "joe@example.com"
    assert format_address(("Joe Public", "joe@example.com")) == "Joe Public <joe@example.com>"
    assert format_address(("Joe Q. Public", "joe@example.com")) == (
        '"Joe Q. Public" <joe@example.com>'
    )
    assert format_address(('Say "hi" \\ bye', "a@b.c")) == '"Say \\"hi\\" \\\\ bye" <a@b.c>'
    assert format_address(("Doe, John", "j@d.org")) == '"Doe, John" <j@d.org>'


def test_format_address_local_part_quoting() -> None:
    assert format_address("a b@example.com".replace(" ", "_")) == "a_b@example.com"
    assert format_address(("", "john..doe@example.com")) == '"john..doe"@example.com'
    assert format_address(("", '"a b"@example.com')) == '"a b"@example.com'


@pytest.mark.parametrize(
    "spec", ["noat", "@example.com", "a@", "a@exa mple.com", "a@b\r\nBcc: c@d", "a@<b>"]
)
def test_format_address_rejects_bad_addr_spec(spec: str) -> None:
    with pytest.raises(HeaderError):
        format_address(("X", spec))


def test_idna_domain_and_utf8_local_part() -> None:
    assert format_address("a@bücher.example") == "a@xn--bcher-kva.example"
    assert format_address("a@bücher.example", utf8=True) == "a@bücher.example"
    with pytest.raises(HeaderError):
        format_address("jösé@example.com")
    assert format_address("jösé@example.com", utf8=True) == "jösé@example.com"


def test_utf8_display_name_raw() -> None:
    assert format_address(("Jösé Müller", "j@e.com"), utf8=True) == "Jösé Müller <j@e.com>"


class _Addr:
    def __init__(self, display_name: str, addr_spec: str) -> None:
        self.display_name = display_name
        self.addr_spec = addr_spec


class _Group:
    def __init__(self, display_name: str, addresses: list[_Addr]) -> None:
        self.display_name = display_name
        self.addresses = addresses


def test_format_objects_and_groups() -> None:
    group = _Group("Friends", [_Addr("A", "a@x.org"), _Addr("", "b@x.org")])
    assert format_address(group) == "Friends: A <a@x.org>, b@x.org;"
    assert format_address(_Group("Undisclosed recipients", [])) == "Undisclosed recipients:;"
    assert format_addresses([_Addr("A", "a@x.org"), group]) == (
        "A <a@x.org>, Friends: A <a@x.org>, b@x.org;"
    )


def test_address_header_folds_after_commas() -> None:
    addrs = [(f"Person {i}", f"person{i}@example.com") for i in range(30)]
    raw = format_header("To", addrs)
    lines = lines_of(raw)
    assert all(len(line) <= 78 for line in lines)
    for line in lines[:-1]:
        assert line.endswith(b","), line
    assert unfold(raw) == " " + format_addresses(addrs)


def test_address_header_string_ascii() -> None:
    raw = format_header("To", "a@b.c, \"Doe, J\" <j@d.org>")
    assert raw == b'To: a@b.c, "Doe, J" <j@d.org>\r\n'


def test_address_objects_only_for_address_fields() -> None:
    with pytest.raises(HeaderError):
        format_header("Subject", [("a", "a@b.c")])


# ------------------------------------------------------------------ params


def test_params_header() -> None:
    raw = format_params_header("Content-Type", "text/plain", {"charset": "utf-8"})
    assert raw.startswith(b"Content-Type: text/plain; charset=")
    verify_header_bytes(raw)
    long_name = "ä" * 120 + ".pdf"
    raw = format_params_header("Content-Disposition", "attachment", {"filename": long_name})
    assert all(len(line) <= 998 for line in lines_of(raw))
    assert b"filename*" in raw
    raw = format_params_header(
        "Content-Disposition", "attachment", {"filename": "ä.pdf"}, utf8=True
    )
    assert raw == 'Content-Disposition: attachment; filename="ä.pdf"\r\n'.encode()
    with pytest.raises(HeaderError):
        format_params_header("Content-Type", "text/plain", {"bad name": "x"})
    with pytest.raises(HeaderError):
        format_params_header("Content-Type", "text/plain", {"charset": "a\r\nb"})


# ------------------------------------------------------------------ encoding (needs _rfc2047)


def test_non_ascii_subject_is_encoded() -> None:
    raw = format_header("Subject", "Grüße aus Köln, " * 10)
    assert raw.isascii()
    assert b"=?" in raw
    assert all(len(line) <= 78 for line in lines_of(raw))
    verify_header_bytes(raw)


def test_only_non_ascii_words_are_encoded() -> None:
    raw = format_header("Subject", "Hello Wörld again")
    assert raw.startswith(b"Subject: Hello =?")
    assert raw.endswith(b"?= again\r\n")


def test_utf8_subject_raw() -> None:
    raw = format_header("Subject", "Grüße", utf8=True)
    assert raw == "Subject: Grüße\r\n".encode()


def test_encoded_word_lookalike_is_encoded() -> None:
    value = "A subject=?UTF-8?Q?=0A?=Bcc: injected@example.com"
    raw = format_header("Subject", value)
    assert b"=?UTF-8?Q?=0A?=" not in raw
    assert not re.search(rb"\r\n[^ \t]", raw[:-2])


def test_very_long_word_is_encoded_to_fit() -> None:
    raw = format_header("X-Long", "a" * 5000)
    assert all(len(line) <= 998 for line in lines_of(raw))
    verify_header_bytes(raw)


def test_non_ascii_display_name_encoded_addr_spec_not() -> None:
    out = format_address(("Jösé Müller", "jose@example.com"))
    assert out.isascii()
    assert out.endswith(" <jose@example.com>")
    assert out.startswith("=?")


def test_control_characters_are_encoded() -> None:
    raw = format_header("Subject", "bell\x07here")
    assert b"\x07" not in raw


# ------------------------------------------------------------------ properties

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00"),
    max_size=300,
).map(lambda s: s.strip(" \t"))


@settings(max_examples=300, deadline=None)
@given(_text, st.booleans())
def test_unstructured_round_trip(value: str, utf8: bool) -> None:
    raw = format_header("Subject", value, utf8=utf8)
    verify_header_bytes(raw)
    if not utf8:
        assert raw.isascii()
    assert all(len(line) <= 998 for line in lines_of(raw))
    text = unfold(raw)
    assert text[:1] in ("", " ")
    assert decode_words(text[1:]) == value


def test_h01_lookalike_decodes_to_literal_text() -> None:
    value = "A subject=?UTF-8?Q?=0A?=Bcc: injected@example.com"
    raw = format_header("Subject", value)
    decoded = decode_words(unfold(raw)[1:])
    assert decoded == value
    assert "\n" not in decoded


@pytest.mark.parametrize(
    "value",
    [
        "a" * 960,
        "b" * 5000,
        "x " + "c" * 990 + " y",
        "a" + " " * 1500 + "b",
        "ü" * 3000,
    ],
)
def test_h09_no_line_over_998(value: str) -> None:
    name = "X-" + "N" * 60
    raw = format_header(name, value)
    assert all(len(line) <= 998 for line in lines_of(raw))
    assert decode_words(unfold(raw)[1:]) == value


def test_address_header_string_with_non_ascii_is_reformatted() -> None:
    from smtpproto.message._parser import parse

    raw = format_header("To", "Jörg Müller <joerg@example.com>, plain@example.org")
    assert raw.isascii()
    assert b"<joerg@example.com>" in raw and b"plain@example.org" in raw
    addrs = parse(raw + b"\r\n").addresses("To")
    assert [(a.display_name, a.addr_spec) for a in addrs] == [  # type: ignore[union-attr]
        ("Jörg Müller", "joerg@example.com"),
        (None, "plain@example.org"),
    ]
    with pytest.raises(HeaderError):
        format_header("To", "Jörg without an address")


def test_address_header_string_utf8_kept_raw() -> None:
    raw = format_header("From", "Jörg <jörg@example.com>", utf8=True)
    assert raw == "From: Jörg <jörg@example.com>\r\n".encode()


def test_huge_leading_or_trailing_white_space_is_refused_not_overlong() -> None:
    # White space at the ends cannot be folded or carried in an encoded word; rather than
    # write a line over 998 octets (H-09) the writer refuses.
    for value in ("a" + " " * 2000, " " * 2000 + "a"):
        with pytest.raises(HeaderError):
            format_header("Subject", value)
    assert format_header("Subject", "a" + " " * 50) == b"Subject: a" + b" " * 50 + b"\r\n"


def test_h09_very_long_display_name_is_encoded_to_fit() -> None:
    from smtpproto.message._parser import parse

    name = "N" * 3000
    raw = format_header("From", [(name, "a@example.com")])
    assert all(len(line) <= 998 for line in lines_of(raw))
    (addr,) = parse(raw + b"\r\n").addresses("From")
    assert (addr.display_name, addr.addr_spec) == (name, "a@example.com")  # type: ignore[union-attr]


def test_folds_prefer_single_spaces() -> None:
    from smtpproto.message._parser import parse

    # A reader that collapses white space around folds still gets the value back.
    value = "by mail.example.com (Postfix) id 270231E8B13; Tue,  7 Jul 2009 22:47:39 -0700 (PDT)"
    raw = format_header("Received", value)
    assert b",  7" in raw  # not folded inside the double space
    assert parse(raw + b"\r\n")["Received"] == value
    words = "ab  " * 300
    raw = format_header("Subject", words.strip())
    assert all(len(line) <= 998 for line in lines_of(raw))


def test_non_str_value_is_refused() -> None:
    for value in (None, b"bytes", 3):
        with pytest.raises(HeaderError):
            format_header("Subject", value)  # type: ignore[arg-type]


def test_lines_with_encoded_words_are_at_most_76() -> None:
    raw = format_header("Subject", "Grüße aus Köln und überall " * 8)
    assert all(len(line) <= 76 for line in lines_of(raw))
    raw = format_header("To", [("Jörg Müller-Lüdenscheidt", f"p{i}@example.com") for i in range(5)])
    assert all(len(line) <= 76 for line in lines_of(raw))


def test_first_line_with_long_encoded_run_is_at_most_76() -> None:
    for value in ("Привет, как дела? Всё хорошо, спасибо большое!", "日本語のテキスト" * 10, "ü" * 30):
        raw = format_header("Subject", value)
        assert all(len(line) <= 76 for line in lines_of(raw)), raw
        assert decode_words(unfold(raw)[1:]) == value


def test_first_address_long_encoded_display_name_fits_76() -> None:
    from smtpproto.message._parser import parse

    name = "Александр Сергеевич Пушкин-Клижентас"
    for header in ("From", "Disposition-Notification-To"):
        raw = format_header(header, [(name, "a@example.com"), (name, "b@example.com")])
        assert all(len(line) <= 76 for line in lines_of(raw)), raw
        got = [(a.display_name, a.addr_spec) for a in parse(raw + b"\r\n").addresses(header)]  # type: ignore[union-attr]
        assert got == [(name, "a@example.com"), (name, "b@example.com")]
