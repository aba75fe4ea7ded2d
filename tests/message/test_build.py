"""The message builder: structure, determinism, encodings, and interop with stdlib email."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import datetime, timedelta, timezone

import pytest

from smtpproto.message._builder import Attachment, BuildError, build_bytes, format_date, make_msgid
from smtpproto.message._encode import HeaderError, verify_header_section

FIXED = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def std(raw: bytes) -> email.message.EmailMessage:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, email.message.EmailMessage)
    return msg


def check_wire_shape(raw: bytes) -> None:
    assert b"\x00" not in raw
    # CRLF only, no line over 998 octets (H-09), header section verified (H-03).
    assert raw.count(b"\r") == raw.count(b"\r\n") == raw.count(b"\n")
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    verify_header_section(raw[: raw.index(b"\r\n\r\n") + 4])


def test_format_date() -> None:
    assert format_date(FIXED) == "Tue, 02 Jan 2024 03:04:05 +0000"
    tz = timezone(timedelta(hours=-3, minutes=-30))
    assert format_date(datetime(1969, 2, 13, 23, 32, 54, tzinfo=tz)) == (
        "Thu, 13 Feb 1969 23:32:54 -0330"
    )
    assert format_date(datetime(2024, 12, 31, 0, 0, 0)) == "Tue, 31 Dec 2024 00:00:00 -0000"


def test_make_msgid() -> None:
    a, b = make_msgid("example.com"), make_msgid("example.com")
    assert a != b
    assert re.fullmatch(r"<[0-9a-f]{32}@example\.com>", a)
    assert make_msgid("example.com", unique="x.y") == "<x.y@example.com>"
    assert make_msgid("bücher.example", unique="1") == "<1@xn--bcher-kva.example>"
    with pytest.raises(BuildError):
        make_msgid("exa mple.com")
    with pytest.raises(BuildError):
        make_msgid("example.com", unique="a>b")


def test_minimal_text_message() -> None:
    raw = build_bytes(from_="a@example.com", to="b@example.com", subject="Hi", text="Hello\n")
    assert raw == (
        b"From: a@example.com\r\n"
        b"To: b@example.com\r\n"
        b"Subject: Hi\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=us-ascii\r\n"
        b"Content-Transfer-Encoding: 7bit\r\n"
        b"\r\n"
        b"Hello\r\n"
    )


def test_no_date_or_message_id_unless_asked() -> None:
    raw = build_bytes(from_="a@example.com", text="x")
    assert b"Date:" not in raw and b"Message-ID:" not in raw
    raw = build_bytes(from_="a@example.com", text="x", date=FIXED, message_id="<1@example.com>")
    assert b"Date: Tue, 02 Jan 2024 03:04:05 +0000\r\n" in raw
    assert b"Message-ID: <1@example.com>\r\n" in raw
    raw = build_bytes(from_=("A", "a@example.com"), text="x", date=True, message_id=True)
    assert re.search(rb"Message-ID: <[0-9a-f]{32}@example\.com>\r\n", raw)
    assert re.search(rb"Date: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d \+0000\r\n", raw)
    with pytest.raises(BuildError):
        build_bytes(text="x", message_id=True)


def full_kwargs() -> dict[str, object]:
    return dict(
        from_=("Jöe Sender", "joe@example.com"),
        to=["a@example.com", ("Bob Smith", "bob@example.org")],
        cc=("Çé", "c@example.net"),
        bcc="hidden@example.com",
        subject="Grüße — a long subject " * 4,
        text="Hello\nWörld\r\n.\nbye",
        html='<p>Hi <img src="cid:logo@x"></p>',
        inline=[Attachment(b"\x89PNG\r\n\x1a\n" + bytes(range(256)), filename="logo.png", content_id="logo@x")],
        attachments=[
            Attachment(b"%PDF-1.4\n" + bytes(range(256)) * 3, filename="Rechnung für März.pdf"),
            Attachment(b"col1,col2\r\n1,2\r\n", filename="data.csv"),
        ],
        headers=[("X-Mailer", "smtpproto"), ("In-Reply-To", "<prev@example.com>")],
        date=FIXED,
        message_id="<m1@example.com>",
        seed="s",
    )


def test_full_message_with_stdlib_oracle() -> None:
    raw = build_bytes(**full_kwargs())  # type: ignore[arg-type]
    check_wire_shape(raw)
    msg = std(raw)
    assert msg.get_content_type() == "multipart/mixed"
    assert str(msg["Subject"]) == "Grüße — a long subject " * 4
    assert msg["From"].addresses[0].display_name == "Jöe Sender"
    assert msg["From"].addresses[0].addr_spec == "joe@example.com"
    assert [a.addr_spec for a in msg["To"].addresses] == ["a@example.com", "bob@example.org"]
    assert msg["Cc"].addresses[0].display_name == "Çé"
    assert msg["Bcc"].addresses[0].addr_spec == "hidden@example.com"
    assert msg["X-Mailer"] == "smtpproto"
    types = [p.get_content_type() for p in msg.walk()]
    assert types == [
        "multipart/mixed",
        "multipart/alternative",
        "text/plain",
        "multipart/related",
        "text/html",
        "image/png",
        "application/pdf",
        "text/csv",
    ]
    parts = list(msg.walk())
    assert parts[2].get_content() == "Hello\r\nWörld\r\n.\r\nbye"
    assert parts[4].get_content() == '<p>Hi <img src="cid:logo@x"></p>'
    assert parts[5]["Content-ID"] == "<logo@x>"
    assert parts[5].get_content_disposition() == "inline"
    assert parts[5].get_payload(decode=True) == b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    assert parts[6].get_filename() == "Rechnung für März.pdf"
    assert parts[6].get_content_disposition() == "attachment"
    assert parts[6].get_payload(decode=True) == b"%PDF-1.4\n" + bytes(range(256)) * 3
    assert parts[7].get_filename() == "data.csv"
    assert parts[7].get_payload(decode=True) == b"col1,col2\r\n1,2\r\n"


def test_seeded_build_is_deterministic_and_random_one_differs() -> None:
    kwargs = full_kwargs()
    assert build_bytes(**kwargs) == build_bytes(**kwargs)  # type: ignore[arg-type]
    kwargs["seed"] = None
    a = build_bytes(**kwargs)  # type: ignore[arg-type]
    b = build_bytes(**kwargs)  # type: ignore[arg-type]
    assert a != b
    check_wire_shape(a)


def test_explicit_boundary_is_outermost() -> None:
    raw = build_bytes(text="t", html="<b>h</b>", boundary="outer-b")
    assert b'Content-Type: multipart/alternative; boundary=outer-b\r\n' in raw
    assert raw.endswith(b"--outer-b--\r\n")
    raw = build_bytes(text="t", attachments=[Attachment(b"x")], boundary="outer-b")
    assert b"multipart/mixed; boundary=outer-b" in raw
    raw = build_bytes(html="<b>h</b>", inline=[Attachment(b"x", content_id="c")], boundary="ob")
    assert b"multipart/related; boundary=ob" in raw


def test_explicit_boundary_collision_raises() -> None:
    with pytest.raises(BuildError):
        build_bytes(text="line\n--zz\n", html="<p>x</p>", boundary="zz")
    with pytest.raises(BuildError):
        build_bytes(text="x", html="y", boundary="bad boundary ")


def test_generated_boundary_avoids_content() -> None:
    # Content that contains the boundary a seed would produce first.
    first = build_bytes(text="a", html="b", seed="k")
    boundary = re.search(rb'boundary="([^"]+)"', first).group(1)  # type: ignore[union-attr]
    raw = build_bytes(text="a " + boundary.decode(), html="b", seed="k")
    other = re.search(rb'boundary="([^"]+)"', raw).group(1)  # type: ignore[union-attr]
    assert other != boundary
    body = raw.split(b"\r\n\r\n", 1)[1]
    assert body.count(b"--" + other) == 3


def test_smtputf8_raw_headers_and_8bit() -> None:
    raw = build_bytes(
        from_=("Jöe", "jöe@exämple.com"), to="ü@example.com", subject="Grüße", text="Grüße\n",
        smtputf8=True,
    )
    assert "From: Jöe <jöe@exämple.com>\r\n".encode() in raw
    assert "Subject: Grüße\r\n".encode() in raw
    assert b"Content-Transfer-Encoding: 8bit" in raw
    assert raw.endswith("Grüße\r\n".encode())
    with pytest.raises(HeaderError):
        build_bytes(from_="jöe@example.com", text="x")


def test_non_ascii_text_without_8bit_is_encoded() -> None:
    mostly_ascii = "Viele Grüße aus Köln; this is mostly plain English text.\n"
    raw = build_bytes(text=mostly_ascii)
    assert raw.isascii()
    assert b"Content-Transfer-Encoding: quoted-printable" in raw
    raw = build_bytes(text="Привет, мир! Как дела?\n")
    assert b"Content-Transfer-Encoding: base64" in raw
    raw = build_bytes(text=mostly_ascii, allow_8bit=True)
    assert b"Content-Transfer-Encoding: 8bit" in raw


def test_h09_long_body_line_is_encoded() -> None:
    raw = build_bytes(text="x" * 5000, allow_8bit=True)
    check_wire_shape(raw)
    assert b"quoted-printable" in raw
    assert std(raw).get_content() == "x" * 5000


def test_h10_body_line_endings_normalized() -> None:
    raw = build_bytes(text="hi\n.\r\nMAIL FROM:<x@x>\r\n")
    body = raw.split(b"\r\n\r\n", 1)[1]
    assert body == b"hi\r\n.\r\nMAIL FROM:<x@x>\r\n"
    raw = build_bytes(text="a\rb\n\rc")
    assert raw.split(b"\r\n\r\n", 1)[1] == b"a\r\nb\r\n\r\nc"


def test_attachment_types_and_guessing() -> None:
    assert Attachment(b"", filename="x.pdf").resolved_type() == "application/pdf"
    assert Attachment(b"", filename="x.unknownext").resolved_type() == "application/octet-stream"
    assert Attachment(b"", content_type="Text/Plain").resolved_type() == "text/plain"
    with pytest.raises(BuildError):
        Attachment(b"", content_type="text").resolved_type()
    with pytest.raises(BuildError):
        build_bytes(attachments=[Attachment(b"x", content_type="multipart/mixed")])


def test_message_rfc822_attachment() -> None:
    inner = build_bytes(from_="a@b.c", subject="inner", text="hello\n")
    raw = build_bytes(text="see attached", attachments=[Attachment(inner, content_type="message/rfc822")])
    assert b"Content-Type: message/rfc822" in raw
    msg = std(raw)
    attached = list(msg.walk())[2]
    assert attached.get_content_type() == "message/rfc822"
    with pytest.raises(BuildError):
        build_bytes(attachments=[Attachment(b"\xff" * 10, content_type="message/rfc822")])


def test_header_argument_validation() -> None:
    with pytest.raises(BuildError):
        build_bytes(text="x", headers={"Content-Type": "text/html"})
    with pytest.raises(BuildError):
        build_bytes(subject="a", headers=[("Subject", "b")])
    with pytest.raises(HeaderError):
        build_bytes(headers=[("X-Bad Name", "v")])
    with pytest.raises(HeaderError):
        build_bytes(subject="A subject\n")
    with pytest.raises(BuildError):
        build_bytes(attachments=[b"raw bytes"])  # type: ignore[list-item]
    with pytest.raises(BuildError):
        build_bytes(attachments=[Attachment(b"x", content_id="a b")])


def test_empty_message() -> None:
    raw = build_bytes()
    assert raw == (
        b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n"
        b"Content-Transfer-Encoding: 7bit\r\n\r\n"
    )


def test_inline_without_html_goes_to_mixed() -> None:
    raw = build_bytes(text="t", inline=[Attachment(b"img", filename="a.png", content_id="c1")], seed=1)
    msg = std(raw)
    types = [p.get_content_type() for p in msg.walk()]
    assert types == ["multipart/mixed", "text/plain", "image/png"]
    assert list(msg.walk())[2].get_content_disposition() == "inline"


def test_group_and_sender() -> None:
    raw = build_bytes(
        from_="a@example.com", sender=("Secretary", "sec@example.com"),
        to=[], cc=None, headers=[("To", "undisclosed-recipients:;")], text="x",
    )
    assert b"Sender: Secretary <sec@example.com>\r\n" in raw
    assert b"To: undisclosed-recipients:;\r\n" in raw


def test_several_authors_need_sender() -> None:
    with pytest.raises(BuildError):
        build_bytes(from_=["a@example.com", "b@example.com"], text="x")
    raw = build_bytes(from_=["a@example.com", "b@example.com"], sender="a@example.com", text="x")
    assert raw.startswith(b"From: a@example.com, b@example.com\r\nSender: a@example.com\r\n")


def test_attachment_data_must_be_bytes() -> None:
    with pytest.raises(BuildError):
        build_bytes(attachments=[Attachment("text", filename="a.txt")])  # type: ignore[arg-type]
    raw = build_bytes(attachments=[Attachment(bytearray(b"ok"), filename="a.bin")], seed=1)
    assert std(raw).get_payload()[0].get_payload(decode=True) == b"ok"
