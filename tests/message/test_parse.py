"""Unit tests for the read path: structure, header views, bodies, editing, streaming."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone

import pytest

from smtpproto.message import (
    Address,
    DefectKind,
    Group,
    Limits,
    Message,
    MessageParser,
    Severity,
    parse,
)
from smtpproto.message._encode import HeaderError

SIMPLE = (b"From: Alice <alice@example.org>\r\n"
          b"To: bob@example.com, \"Carol C.\" <carol@example.net>\r\n"
          b"Subject: =?utf-8?q?caf=C3=A9?= and\r\n more\r\n"
          b"Date: Tue, 1 Jul 2003 10:52:37 +0200\r\n"
          b"Message-ID: <id1@example.org>\r\n"
          b"\r\n"
          b"Hello\r\n")

MULTI = (b"From: a@example.org\r\n"
         b"MIME-Version: 1.0\r\n"
         b"Content-Type: multipart/mixed; boundary=\"outer\"\r\n"
         b"\r\n"
         b"preamble text\r\n"
         b"--outer\r\n"
         b"Content-Type: multipart/alternative; boundary=inner\r\n"
         b"\r\n"
         b"--inner\r\n"
         b"Content-Type: text/plain; charset=iso-8859-1\r\n"
         b"Content-Transfer-Encoding: quoted-printable\r\n"
         b"\r\n"
         b"caf=E9\r\n"
         b"--inner\r\n"
         b"Content-Type: text/html; charset=utf-8\r\n"
         b"\r\n"
         b"<p>caf\xc3\xa9</p>\r\n"
         b"--inner--\r\n"
         b"--outer\r\n"
         b"Content-Type: application/pdf; name=\"=?utf-8?q?r=C3=A9sum=C3=A9?=.pdf\"\r\n"
         b"Content-Disposition: attachment;\r\n"
         b" filename*=utf-8''r%C3%A9sum%C3%A9.pdf\r\n"
         b"Content-Transfer-Encoding: base64\r\n"
         b"\r\n"
         b"JVBERi0xLjQK\r\n"
         b"--outer\r\n"
         b"Content-Type: message/rfc822\r\n"
         b"\r\n"
         b"Subject: inner message\r\n"
         b"\r\n"
         b"inner body\r\n"
         b"--outer--\r\n"
         b"epilogue\r\n")


# ---------------------------------------------------------------- headers

def test_header_access_decodes_and_unfolds() -> None:
    msg = parse(SIMPLE)
    assert msg["Subject"] == "café and more"
    assert msg.get("subject") == "café and more"
    assert msg.get("X-Missing") is None
    assert msg.get("X-Missing", "d") == "d"
    assert "SUBJECT" in msg and "x-missing" not in msg
    with pytest.raises(KeyError):
        msg["X-Missing"]
    assert msg.keys() == ["From", "To", "Subject", "Date", "Message-ID"]
    h = msg.headers[2]
    assert h.name == "Subject"
    assert h.raw == b"Subject: =?utf-8?q?caf=C3=A9?= and\r\n more\r\n"
    assert h.raw_value == b" =?utf-8?q?caf=C3=A9?= and\r\n more"
    assert h.offset == SIMPLE.index(b"Subject")


def test_get_all_in_order() -> None:
    msg = parse(b"Received: one\r\nX: 1\r\nreceived: two\r\n\r\n")
    assert msg.get_all("Received") == ["one", "two"]
    assert msg.get_all("nope") == []


def test_typed_views() -> None:
    msg = parse(SIMPLE)
    assert msg.addresses("From") == [Address("Alice", "alice@example.org")]
    assert msg.addresses("To") == [Address(None, "bob@example.com"),
                                   Address("Carol C.", "carol@example.net")]
    assert msg.date() == datetime(2003, 7, 1, 10, 52, 37,
                                  tzinfo=timezone(timedelta(hours=2)))
    assert msg.message_ids() == ["id1@example.org"]


def test_group_and_utf8_addresses() -> None:
    msg = parse("To: Friends: jane@example.com, Jöhn <jöhn@exämple.com>;, x@y.z\r\n\r\n"
                .encode())
    assert msg.addresses("To") == [
        Group("Friends", (Address(None, "jane@example.com"),
                          Address("Jöhn", "jöhn@exämple.com"))),
        Address(None, "x@y.z")]


@pytest.mark.parametrize("value", [
    "alice@example.org)<bob@example.com>",
    "alice@example.org<<bob@example.com>",
    "alice@example.org><bob@example.com>",
    "alice@example.org@<bob@example.com>",
    "alice@example.org;<bob@example.com>",
])
def test_h07_no_address_guessed_out_of_junk(value: str) -> None:
    msg = parse(f"From: {value}\r\n\r\n".encode())
    assert msg.addresses("From") == []
    assert DefectKind.INVALID_ADDRESS in {d.kind for d in msg.defects}


def test_view_defects_recorded_once_at_the_field() -> None:
    data = b"Subject: x\r\nFrom: a@b.c, junk)<x@y.z>\r\n\r\n"
    msg = parse(data)
    msg.addresses("From")
    msg.addresses("From")
    invalid = [d for d in msg.defects if d.kind == DefectKind.INVALID_ADDRESS]
    assert len(invalid) == 1
    assert invalid[0].offset == data.index(b"From")
    assert msg.addresses("From") == [Address(None, "a@b.c")]


def test_cfws_around_addr_spec_is_not_obsolete() -> None:
    msg = parse(b"From: a@b.example (Real Name) \r\nTo: < x@y.example > (c)\r\n\r\n")
    assert msg.addresses("From") == [Address("Real Name", "a@b.example")]
    assert msg.addresses("To") == [Address("c", "x@y.example")]
    assert msg.defects == []


def test_h07_comma_case_yields_both() -> None:
    msg = parse(b"From: alice@example.org,<bob@example.com>\r\n\r\n")
    assert [a.addr_spec for a in msg.addresses("From")] == ["alice@example.org",
                                                          "bob@example.com"]


def test_obsolete_address_syntax_accepted_with_defect() -> None:
    msg = parse(b"To: Mary <@relay.test:mary@example.net>, jdoe@test . example\r\n\r\n")
    assert [a.addr_spec for a in msg.addresses("To")] == ["mary@example.net",
                                                        "jdoe@test.example"]
    assert DefectKind.OBSOLETE_ADDRESS_SYNTAX in {d.kind for d in msg.defects}


def test_received_list_and_ids() -> None:
    msg = parse(b"Received: from mx.example.org (mx.example.org [192.0.2.1])\r\n"
                b"\tby mail.example.com with ESMTPS id ABC123 for <bob@example.com>;\r\n"
                b"\tTue, 29 Aug 2023 16:20:12 +0000\r\n"
                b"List-Unsubscribe: <mailto:leave@example.org>, <https://example.org/u>\r\n"
                b"List-Id: Example list <list.example.org>\r\n"
                b"References: <a@x> <b@y>\r\n\r\n")
    (rcv,) = msg.received()
    assert (rcv.from_, rcv.from_ip, rcv.from_rdns, rcv.by, rcv.with_, rcv.id, rcv.for_) == (
        "mx.example.org", "192.0.2.1", "mx.example.org", "mail.example.com", "ESMTPS",
        "ABC123", "bob@example.com")
    assert rcv.date == datetime(2023, 8, 29, 16, 20, 12, tzinfo=timezone.utc)
    assert [e.url for e in msg.list_header("List-Unsubscribe")] == [
        "mailto:leave@example.org", "https://example.org/u"]
    assert msg.list_id() == "list.example.org"
    assert msg.message_ids("References") == ["a@x", "b@y"]


@pytest.mark.parametrize("text,expected", [
    ("21 Nov 97 09:55:06 GMT", datetime(1997, 11, 21, 9, 55, 6, tzinfo=timezone.utc)),
    ("Sun, 27 Oct 2002 23:57:07 EST",
     datetime(2002, 10, 27, 23, 57, 7, tzinfo=timezone(timedelta(hours=-5)))),
    ("Thu, 13 Feb 1969 23:32 -0330 (Newfoundland Time)",
     datetime(1969, 2, 13, 23, 32, tzinfo=timezone(-timedelta(hours=3, minutes=30)))),
    ("Fri Feb 07 10:18:12 2003 -0800",
     datetime(2003, 2, 7, 10, 18, 12, tzinfo=timezone(timedelta(hours=-8)))),
    ("13 zzz 2021 09:55:06 +0200", None),
    ("1 Jan \u00b2012 10:00:00 +0000", None),  # found by fuzzing: '²' is not a digit
    ("1 Jan 2012 \u0661\u0660:00:00 +0000", None),
    ("no date here", None),
])
def test_dates(text: str, expected: datetime | None) -> None:
    assert parse(f"Date: {text}\r\n\r\n".encode()).date() == expected


def test_non_utf8_header_bytes_decode_with_defect() -> None:
    msg = parse(b"Subject: caf\xe9\r\n\r\n")
    assert msg["Subject"] == "café"
    assert DefectKind.NON_ASCII_HEADER in {d.kind for d in msg.defects}
    assert parse("Subject: café\r\n\r\n".encode())["Subject"] == "café"


# ---------------------------------------------------------------- structure

def test_multipart_tree_walk_and_types() -> None:
    msg = parse(MULTI)
    assert [p.content_type for p in msg.walk()] == [
        "multipart/mixed", "multipart/alternative", "text/plain", "text/html",
        "application/pdf", "message/rfc822", "text/plain"]
    assert msg.is_multipart and len(msg.parts) == 3
    assert msg.preamble == b"preamble text"
    assert msg.epilogue == b"epilogue\r\n"
    alt, pdf, rfc = msg.parts
    assert alt.params == {"boundary": "inner"}
    assert alt.parts[0].text() == "café"  # the CRLF before --inner belongs to it
    assert alt.parts[1].text() == "<p>café</p>"
    assert pdf.decoded_body() == b"%PDF-1.4\n"
    assert pdf.filename == "résumé.pdf"
    assert pdf.is_attachment
    assert not alt.parts[0].is_attachment
    assert rfc.parts[0]["Subject"] == "inner message"
    assert rfc.parts[0].parent is rfc and rfc.parent is msg
    assert msg.defects == []


def test_rfc8621_body_structure() -> None:
    msg = parse(MULTI)
    alt, pdf, rfc = msg.parts
    assert msg.text_body == [alt.parts[0]]
    assert msg.html_body == [alt.parts[1]]
    assert msg.attachments == [pdf, rfc]


def test_defaults_rfc2045_and_digest() -> None:
    assert parse(b"\r\nbody").content_type == "text/plain"
    assert parse(b"Content-Type: garbage\r\n\r\n").content_type == "text/plain"
    digest = parse(b"Content-Type: multipart/digest; boundary=d\r\n\r\n"
                   b"--d\r\n\r\nSubject: one\r\n\r\nfirst\r\n"
                   b"--d\r\nContent-Type: text/plain\r\n\r\nnot a message\r\n--d--\r\n")
    first, second = digest.parts
    assert first.content_type == "message/rfc822"
    assert first.parts[0]["Subject"] == "one"
    assert second.content_type == "text/plain"


def test_lf_only_message() -> None:
    data = MULTI.replace(b"\r\n", b"\n")
    msg = parse(data)
    assert [p.content_type for p in msg.walk()] == [
        p.content_type for p in parse(MULTI).walk()]
    assert msg.to_bytes() == data
    assert msg.parts[0].parts[0].text() == "café"


def test_boundary_prefix_match_rfc2046() -> None:
    # RFC 2046 5.1.1: the boundary need only start the line.
    msg = parse(b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
                b"--b trailing junk\r\n\r\none\r\n--b\r\n\r\ntwo\r\n--b-- junk\r\nepi")
    assert [p.raw_body for p in msg.parts] == [b"one", b"two"]
    assert msg.epilogue == b"epi"


def test_outer_boundary_ends_inner_multipart() -> None:
    msg = parse(b"Content-Type: multipart/mixed; boundary=o\r\n\r\n"
                b"--o\r\nContent-Type: multipart/mixed; boundary=i\r\n\r\n"
                b"--i\r\n\r\ninner\r\n"
                b"--o\r\n\r\nsecond\r\n--o--\r\n")
    assert [p.content_type for p in msg.walk()] == [
        "multipart/mixed", "multipart/mixed", "text/plain", "text/plain"]
    assert msg.parts[1].raw_body == b"second"
    assert DefectKind.CLOSE_BOUNDARY_MISSING in {d.kind for d in msg.defects}


def test_structural_defects_with_offsets() -> None:
    data = (b"Content-Type: multipart/mixed; boundary=zz\r\n\r\n"
            b"--zz\r\nContent-Type: text/plain\r\nnot a header\r\n--zz\r\n\r\nx\r\n")
    msg = parse(data)
    kinds = {d.kind: d for d in msg.defects}
    sep = kinds[DefectKind.MISSING_HEADER_BODY_SEPARATOR]
    assert sep.offset == data.index(b"not a header")
    assert kinds[DefectKind.CLOSE_BOUNDARY_MISSING].severity == Severity.WARNING
    assert msg.parts[0].raw_body == b"not a header"


def test_parameter_defects_point_at_their_field() -> None:
    data = b"Subject: x\r\nContent-Type: text/plain; a=1; a=2\r\n\r\n"
    msg = parse(data)
    (dup,) = [d for d in msg.defects if d.kind == DefectKind.DUPLICATE_PARAMETER]
    assert dup.offset == data.index(b"Content-Type")


def test_missing_boundary_and_no_delimiters() -> None:
    msg = parse(b"Content-Type: multipart/mixed\r\n\r\nbody")
    assert not msg.is_multipart and msg.raw_body == b"body"
    assert DefectKind.MISSING_BOUNDARY_PARAMETER in {d.kind for d in msg.defects}
    msg = parse(b"Content-Type: multipart/mixed; boundary=q\r\n\r\nbody")
    assert not msg.is_multipart and msg.raw_body == b"body"
    assert DefectKind.START_BOUNDARY_NOT_FOUND in {d.kind for d in msg.defects}


def test_base64_message_rfc822_is_parsed() -> None:
    inner = b"Subject: wrapped\r\n\r\nhi\r\n"
    data = (b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
            b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            + base64.encodebytes(inner) + b"--b--\r\n")
    msg = parse(data)
    wrapped = msg.parts[0].parts[0]
    assert wrapped["Subject"] == "wrapped"
    assert wrapped.to_bytes() == inner
    assert msg.to_bytes() == data
    # Editing inside re-encodes only that part.
    wrapped["Subject"] = "changed"
    out = msg.to_bytes()
    assert parse(out).parts[0].parts[0]["Subject"] == "changed"
    assert out.startswith(data[:data.index(b"\r\n\r\n", 60)])


def test_message_rfc822_that_is_not_a_message() -> None:
    msg = parse(b"Content-Type: message/rfc822\r\n\r\nthis is not a message\r\n")
    assert msg.parts == [] and msg.raw_body == b"this is not a message\r\n"


def test_mbox_from_line_is_kept() -> None:
    data = b"From alice@example.org Mon Jan  1 00:00:00 2024\r\nSubject: x\r\n\r\nb"
    msg = parse(data)
    assert msg["Subject"] == "x"
    assert msg.to_bytes() == data
    assert [d.severity for d in msg.defects] == [Severity.INFO]


@pytest.mark.parametrize("data", [
    b"", b"\r\n", b"\n", b"no colon at all", b"Subject: x", b"Subject: x\r\n",
    b"\x00\xff\xfe", b"--b\r\n", b": empty name\r\n\r\n", b" leading\r\nA: b\r\n\r\n",
    b"Content-Type: multipart/mixed; boundary=\r\n\r\n--\r\n",
    b"Content-Type: message/rfc822\r\n\r\n",
])
def test_odd_inputs_round_trip(data: bytes) -> None:
    msg = parse(data)
    assert msg.to_bytes() == data
    msg.check()
    assert parse(bytearray(data)).to_bytes() == data
    assert parse(memoryview(data)).to_bytes() == data


# ---------------------------------------------------------------- bodies and charsets

def test_text_never_raises() -> None:
    msg = parse(b"Content-Type: text/plain; charset=x-no-such\r\n\r\ncaf\xc3\xa9")
    assert msg.text() == "café"
    assert DefectKind.UNKNOWN_CHARSET in {d.kind for d in msg.defects}
    msg = parse(b"Content-Type: text/plain; charset=utf-8\r\n\r\nbad \xff byte")
    assert msg.text() == "bad \ufffd byte"
    assert DefectKind.CHARSET_DECODE_ERROR in {d.kind for d in msg.defects}
    msg = parse(b"Content-Type: text/plain; charset=windows-1252\r\n"
                b"Content-Transfer-Encoding: quoted-printable\r\n\r\n=93hi=94 =\r\nthere")
    assert msg.text() == "\u201chi\u201d there"


def test_transfer_decoding_is_tolerant() -> None:
    msg = parse(b"Content-Transfer-Encoding: base64\r\n\r\naGVs*bG8\r\n")
    assert msg.decoded_body() == b"hello"
    assert DefectKind.INVALID_BASE64 in {d.kind for d in msg.defects}
    msg = parse(b"Content-Transfer-Encoding: x-weird\r\n\r\nraw")
    assert msg.decoded_body() == b"raw"
    assert DefectKind.UNKNOWN_TRANSFER_ENCODING in {d.kind for d in msg.defects}
    uu = parse(b"Content-Transfer-Encoding: x-uuencode\r\n\r\n"
               b"begin 644 f.txt\r\n%:&5L;&\\`\r\n`\r\nend\r\n")
    assert uu.decoded_body() == b"hello"


def test_filename_rfc2231_continuations_and_2047() -> None:
    msg = parse(b"Content-Type: application/octet-stream\r\n"
                b"Content-Disposition: attachment;\r\n"
                b" filename*0*=iso-8859-1'fr'r%E9sum;\r\n"
                b" filename*1=\"e final.txt\"\r\n\r\n")
    assert msg.filename == "résume final.txt"
    assert msg.content_disposition == "attachment"
    assert msg.disposition_params == {"filename": "résume final.txt"}
    msg = parse(b"Content-Type: image/png; name==?utf-8?b?w6k=?=.png\r\n\r\n")
    assert msg.filename == "é.png"
    assert msg.is_attachment


# ---------------------------------------------------------------- editing

def test_unchanged_message_is_the_input() -> None:
    msg = parse(MULTI)
    assert msg.to_bytes() == MULTI
    assert bytes(msg) == MULTI


def test_edit_changes_only_that_field() -> None:
    msg = parse(SIMPLE)
    msg["Subject"] = "new subject"
    out = msg.to_bytes()
    assert out == SIMPLE.replace(b"Subject: =?utf-8?q?caf=C3=A9?= and\r\n more\r\n",
                                 b"Subject: new subject\r\n")
    msg.add_header("X-Tag", "1")
    assert msg.to_bytes().endswith(b"Message-ID: <id1@example.org>\r\nX-Tag: 1\r\n\r\nHello\r\n")
    del msg["To"]
    assert b"\r\nTo:" not in msg.to_bytes()
    msg.replace_header("From", "Zed <z@example.org>")
    assert parse(msg.to_bytes()).addresses("From") == [Address("Zed", "z@example.org")]
    with pytest.raises(KeyError):
        msg.replace_header("X-None", "v")


def test_edit_of_a_cut_off_header_section_keeps_the_body_a_body() -> None:
    # Found by fuzz_message_roundtrip on flanker/long-header.eml: a header
    # section cut at max_header_bytes leaves continuation lines in the body;
    # after an edit they must not fold into the field written last.
    from smtpproto.message import Limits

    data = b"Subject: " + b"word " * 40 + b"\r\n" + b" more words\r\n" * 30 + b"\r\nbody\r\n"
    limits = Limits(max_header_bytes=256)
    msg = parse(data, limits=limits)
    body = msg.raw_body
    assert body.startswith(b" more words")
    msg["X-Tag"] = "1"
    again = parse(msg.to_bytes())
    assert again["X-Tag"] == "1"
    assert again.raw_body == body


def test_edit_after_a_non_field_line_inserts_nothing() -> None:
    # A line that is no field ends the header section without a blank line
    # (as in enmime/mail/qp-utf8-header-no-break.raw): it cannot be read as a
    # header, so an edit adds the field and nothing else.
    data = b"Subject: a\r\nThis is a multi-part message in MIME format.\r\n"
    msg = parse(data)
    msg.add_header("X-Tag", "1")
    assert msg.to_bytes() == b"Subject: a\r\nX-Tag: 1\r\nThis is a multi-part message in MIME format.\r\n"


def test_edit_nested_part_keeps_the_rest() -> None:
    msg = parse(MULTI)
    pdf = msg.parts[1]
    pdf["Content-Disposition"] = "inline"
    out = msg.to_bytes()
    before, after = MULTI.split(b"Content-Disposition: attachment;\r\n"
                                b" filename*=utf-8''r%C3%A9sum%C3%A9.pdf\r\n")
    assert out == before + b"Content-Disposition: inline\r\n" + after
    assert not parse(out).parts[1].is_attachment


def test_setitem_replaces_all_occurrences_in_place() -> None:
    msg = parse(b"A: 1\r\nB: 2\r\nA: 3\r\n\r\nx")
    msg["a"] = "9"
    assert msg.to_bytes() == b"a: 9\r\nB: 2\r\n\r\nx"


@pytest.mark.parametrize("name,value", [
    ("Subject", "A subject\r\nBcc: injected@example.com"),
    ("Subject", "A subject\n"),
    ("Subject", "nul\x00"),
    ("X-A: b\r\nBcc", "v"),
    ("X Bad", "v"),
    ("", "v"),
])
def test_h01_to_h04_edits_are_validated(name: str, value: str) -> None:
    msg = parse(SIMPLE)
    with pytest.raises(HeaderError):
        msg[name] = value
    with pytest.raises(HeaderError):
        msg.add_header(name, value)
    assert msg.to_bytes() == SIMPLE


def test_h01_decoded_newline_cannot_be_written_back() -> None:
    msg = parse(b"Subject: Here's an =?UTF-8?Q?embedded_newline=0A?=\r\n"
                b"To: a@example.org\r\n\r\nbody")
    for h in msg.headers:
        try:
            msg[h.name] = h.value
        except HeaderError:
            pass
    out = msg.to_bytes()
    assert parse(out).keys() == ["Subject", "To"]
    assert b"\nBcc" not in out


# ---------------------------------------------------------------- streaming

def test_feed_byte_by_byte_equals_one_shot() -> None:
    for data in (SIMPLE, MULTI, MULTI.replace(b"\r\n", b"\n")):
        parser = MessageParser()
        for i in range(len(data)):
            parser.feed(data[i:i + 1])
        msg = parser.close()
        one = parse(data)
        assert msg.to_bytes() == data
        assert [p.content_type for p in msg.walk()] == [p.content_type for p in one.walk()]
        assert [p.raw_body for p in msg.walk()] == [p.raw_body for p in one.walk()]
        assert [(d.kind, d.offset) for d in msg.defects] == \
            [(d.kind, d.offset) for d in one.defects]


def test_body_sink_receives_leaf_bodies_in_order() -> None:
    got: list[tuple[str, bytes]] = []

    class Sink:
        def write(self, part: Message, chunk: bytes) -> None:
            got.append((part.content_type, chunk))

    parser = MessageParser(body_sink=Sink())
    for i in range(0, len(MULTI), 5):
        parser.feed(MULTI[i:i + 5])
    msg = parser.close()
    bodies: dict[str, bytes] = {}
    for ctype, chunk in got:
        bodies[ctype] = bodies.get(ctype, b"") + chunk
    assert bodies["text/html"] == b"<p>caf\xc3\xa9</p>"
    assert bodies["application/pdf"] == b"JVBERi0xLjQK"
    assert bodies["text/plain"] == b"caf=E9inner body"
    assert sum(1 for _, c in got if c == b"") == 4  # one end marker per leaf
    assert [p.content_type for p in msg.walk()] == [p.content_type for p in parse(MULTI).walk()]
    assert msg.parts[1].filename == "résumé.pdf"


def test_parser_misuse_raises() -> None:
    parser = MessageParser()
    parser.feed(b"A: b\r\n\r\n")
    parser.close()
    with pytest.raises(RuntimeError):
        parser.feed(b"x")
    with pytest.raises(RuntimeError):
        parser.close()
    with pytest.raises(TypeError):
        MessageParser(body_sink=42)
    with pytest.raises(ValueError):
        Limits(max_depth=0)


# ---------------------------------------------------------------- stdlib bridge

def test_stdlib_bridges() -> None:
    import email.message
    import email.policy

    msg = parse(MULTI)
    em = msg.to_email_message()
    assert isinstance(em, email.message.Message)
    assert [p.get_content_type() for p in em.walk()][:5] == [
        p.content_type for p in msg.walk()][:5]
    modern = msg.to_email_message(email.policy.default)
    assert isinstance(modern, email.message.EmailMessage)
    assert str(modern["From"]) == "a@example.org"
    back = Message.from_email_message(em)
    assert [p.content_type for p in back.walk()] == [p.content_type for p in msg.walk()]
    built = email.message.EmailMessage()
    built["Subject"] = "Grüße"
    built["To"] = "x@example.org"
    built.set_content("hällo\n")
    ours = Message.from_email_message(built)
    assert ours["Subject"] == "Grüße"
    assert ours.text().replace("\r\n", "\n") == "hällo\n"


def test_public_read_path_names_are_documented() -> None:
    import inspect

    import smtpproto.message as m

    names = ["Address", "Defect", "DefectKind", "Group", "Header", "Limits", "ListHeader",
             "Message", "MessageParser", "ParamValue", "Received", "Severity", "decode_words",
             "encode_param", "encode_words", "parse", "parse_address_list", "parse_date",
             "parse_list_header", "parse_list_id", "parse_message_ids", "parse_param_header",
             "parse_received"]
    for name in names:
        assert name in m.__all__
        obj = getattr(m, name)
        assert obj.__doc__, name
        if inspect.isclass(obj):
            for attr, value in vars(obj).items():
                if attr.startswith("_") and attr not in ("__getitem__", "__setitem__",
                                                         "__delitem__", "__contains__"):
                    continue
                func = value.fget if isinstance(value, property) else value
                if callable(func):
                    assert func.__doc__, f"{name}.{attr}"
