"""Charset labels (WHATWG / IANA) and decoding that never raises."""

from __future__ import annotations

import codecs

import pytest

from smtpproto.message import DefectKind, parse
from smtpproto.message._charsets import CHARSET_LABELS, decode_text, lookup_charset
from smtpproto.message._defects import Defect

# A sample of labels from the WHATWG Encoding Standard, each with a string that
# must survive an encode/decode round trip in that encoding.
WHATWG_SAMPLES = {
    "utf-8": "grüße ✓", "unicode-1-1-utf-8": "grüße", "ibm866": "привет",
    "iso-8859-2": "łódź", "iso-8859-3": "ħ", "iso-8859-4": "ā", "iso-8859-5": "привет",
    "iso-8859-6": "مرحبا", "iso-8859-7": "γειά", "iso-8859-8": "שלום", "iso-8859-8-i": "שלום",
    "iso-8859-10": "ŋ", "iso-8859-13": "ž", "iso-8859-14": "ŵ", "iso-8859-15": "€",
    "iso-8859-16": "ș", "koi8-r": "привет", "koi8-u": "ґ", "macintosh": "é",
    "x-mac-cyrillic": "п", "windows-874": "ก", "windows-1250": "ł", "windows-1251": "п",
    "windows-1252": "€", "windows-1253": "γ", "windows-1254": "ğ", "windows-1255": "ש",
    "windows-1256": "م", "windows-1257": "ž", "windows-1258": "ư", "gbk": "中文",
    "gb18030": "中文", "big5": "中文", "euc-jp": "日本語", "iso-2022-jp": "日本語",
    "shift_jis": "日本語", "euc-kr": "한국어", "utf-16be": "ü", "utf-16le": "ü",
    "us-ascii": "plain", "iso-8859-1": "é", "latin1": "é", "csutf8": "✓", "cp1252": "€",
    "ks_c_5601-1987": "한", "x-sjis": "日本", "hz-gb-2312": "中", "utf-7": "é",
}


def test_at_least_41_labels_and_all_decodable() -> None:
    assert len(CHARSET_LABELS) >= 41
    for label, codec in CHARSET_LABELS.items():
        assert codecs.lookup(codec), label
        assert b"abc".decode(codec) if "16" not in codec and "32" not in codec else True


@pytest.mark.parametrize("label,text", sorted(WHATWG_SAMPLES.items()))
def test_label_round_trip(label: str, text: str) -> None:
    codec = lookup_charset(label)
    assert codec is not None
    defects: list[Defect] = []
    assert decode_text(text.encode(codec), label, defects) == text
    assert defects == []


@pytest.mark.parametrize("label", ["UTF-8", " utf-8 ", '"utf-8"', "Utf8", "ISO_8859-1"])
def test_label_spelling_is_normalised(label: str) -> None:
    assert lookup_charset(label) is not None


@pytest.mark.parametrize("label", ["x-unknown", "base64", "rot13", "unicode_escape", "idna",
                                   "hex", "zlib", "", "utf-8; drop table", "a" * 100])
def test_unknown_or_non_text_codecs_refused(label: str) -> None:
    assert lookup_charset(label) is None
    defects: list[Defect] = []
    assert decode_text(b"caf\xc3\xa9 \xff", label, defects) == "café \ufffd"
    assert [d.kind for d in defects] == [DefectKind.UNKNOWN_CHARSET]


def test_python_aliases_reach_text_codecs() -> None:
    assert lookup_charset("cp1125") == "cp1125"
    assert lookup_charset("latin_1") == "iso8859-1"


def test_bad_bytes_replaced_with_defect() -> None:
    defects: list[Defect] = []
    assert decode_text(b"ok\xff", "utf-8", defects) == "ok\ufffd"
    assert [d.kind for d in defects] == [DefectKind.CHARSET_DECODE_ERROR]


def test_ascii_label_with_utf8_content() -> None:
    defects: list[Defect] = []
    assert decode_text("naïve".encode(), "us-ascii", defects) == "naïve"
    assert defects and defects[0].kind == DefectKind.CHARSET_DECODE_ERROR


def test_part_text_uses_charset_param() -> None:
    for label, text in WHATWG_SAMPLES.items():
        codec = lookup_charset(label)
        assert codec is not None
        msg = parse(b"Content-Type: text/plain; charset=\"" + label.encode() + b"\"\r\n\r\n"
                    + text.encode(codec))
        assert msg.text() == text, label


def test_encoded_word_charsets() -> None:
    msg = parse(b"Subject: =?koi8-r?b?8NLJ18XU?= =?x-bogus?q?abc?=\r\n\r\n")
    # RFC 2047 section 6.2: whitespace between adjacent encoded-words is dropped.
    assert msg["Subject"] == "Приветabc"
    assert DefectKind.UNKNOWN_CHARSET in {d.kind for d in msg.defects}


def test_b_encoded_word_with_octets_outside_base64_is_a_defect() -> None:
    # "!!!" is no base64 at all: the word decodes to nothing, and says so.
    msg = parse(b"Subject: =?utf-8?b?!!!?= x\r\n\r\n")
    assert msg["Subject"] == " x"
    assert DefectKind.INVALID_ENCODED_WORD in {d.kind for d in msg.defects}
    clean = parse(b"Subject: =?utf-8?b?YQ==?= x\r\n\r\n")
    assert clean["Subject"] == "a x"
    assert DefectKind.INVALID_ENCODED_WORD not in {d.kind for d in clean.defects}

