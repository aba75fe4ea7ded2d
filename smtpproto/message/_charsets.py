"""Charset labels (WHATWG Encoding Standard labels plus common IANA names) to Python codecs.

MIME charset names arrive in every spelling; this table maps the labels of the
WHATWG Encoding Standard and the IANA registry that Python can decode.  We keep
ISO-8859-1 as Latin-1 (rather than the WHATWG windows-1252 alias) because
Latin-1 can decode any byte, while unknown labels fall back to UTF-8 with
replacement characters plus an ``unknown-charset`` defect.
"""

from __future__ import annotations

import codecs
import functools

from ._defects import Defect, DefectKind, Severity

__all__ = ["CHARSET_LABELS", "lookup_charset", "decode_text"]

_GROUPS: dict[str, tuple[str, ...]] = {
    "utf-8": ("utf-8", "utf8", "unicode-1-1-utf-8", "unicode11utf8", "unicode20utf8",
              "x-unicode20utf8", "csutf8"),
    "ascii": ("us-ascii", "ascii", "us", "ansi_x3.4-1968", "iso-ir-6", "iso646-us", "csascii",
              "ibm367", "cp367", "ansi_x3.4-1986", "iso_646.irv:1991"),
    "latin-1": ("iso-8859-1", "iso8859-1", "iso_8859-1", "iso88591", "latin1", "l1",
                "iso-ir-100", "iso_8859-1:1987", "cp819", "ibm819", "csisolatin1"),
    "cp866": ("ibm866", "866", "cp866", "csibm866"),
    "iso8859-2": ("iso-8859-2", "iso8859-2", "iso88592", "iso_8859-2", "iso_8859-2:1987",
                  "iso-ir-101", "l2", "latin2", "csisolatin2"),
    "iso8859-3": ("iso-8859-3", "iso8859-3", "iso88593", "iso_8859-3", "iso_8859-3:1988",
                  "iso-ir-109", "l3", "latin3", "csisolatin3"),
    "iso8859-4": ("iso-8859-4", "iso8859-4", "iso88594", "iso_8859-4", "iso_8859-4:1988",
                  "iso-ir-110", "l4", "latin4", "csisolatin4"),
    "iso8859-5": ("iso-8859-5", "iso8859-5", "iso88595", "iso_8859-5", "iso_8859-5:1988",
                  "iso-ir-144", "cyrillic", "csisolatincyrillic"),
    "iso8859-6": ("iso-8859-6", "iso8859-6", "iso88596", "iso_8859-6", "iso_8859-6:1987",
                  "iso-ir-127", "arabic", "asmo-708", "ecma-114", "csisolatinarabic",
                  "iso-8859-6-e", "iso-8859-6-i", "csiso88596e", "csiso88596i"),
    "iso8859-7": ("iso-8859-7", "iso8859-7", "iso88597", "iso_8859-7", "iso_8859-7:1987",
                  "iso-ir-126", "greek", "greek8", "ecma-118", "elot_928", "sun_eu_greek",
                  "csisolatingreek"),
    "iso8859-8": ("iso-8859-8", "iso8859-8", "iso88598", "iso_8859-8", "iso_8859-8:1988",
                  "iso-ir-138", "hebrew", "visual", "csisolatinhebrew", "iso-8859-8-e",
                  "csiso88598e", "iso-8859-8-i", "logical", "csiso88598i"),
    "iso8859-10": ("iso-8859-10", "iso8859-10", "iso885910", "iso-ir-157", "l6", "latin6",
                   "csisolatin6"),
    "iso8859-13": ("iso-8859-13", "iso8859-13", "iso885913"),
    "iso8859-14": ("iso-8859-14", "iso8859-14", "iso885914", "latin8", "l8"),
    "iso8859-15": ("iso-8859-15", "iso8859-15", "iso885915", "iso_8859-15", "l9", "latin9",
                   "latin-9", "csisolatin9"),
    "iso8859-16": ("iso-8859-16", "iso8859-16", "iso885916", "latin10", "l10"),
    "koi8-r": ("koi8-r", "koi8_r", "koi8", "koi", "cskoi8r"),
    "koi8-u": ("koi8-u", "koi8-ru"),
    "mac-roman": ("macintosh", "mac", "x-mac-roman", "csmacintosh"),
    "mac-cyrillic": ("x-mac-cyrillic", "x-mac-ukrainian"),
    "cp874": ("windows-874", "dos-874", "iso-8859-11", "iso8859-11", "iso885911", "tis-620"),
    "cp1250": ("windows-1250", "cp1250", "x-cp1250"),
    "cp1251": ("windows-1251", "cp1251", "x-cp1251"),
    "cp1252": ("windows-1252", "cp1252", "x-cp1252"),
    "cp1253": ("windows-1253", "cp1253", "x-cp1253"),
    "cp1254": ("windows-1254", "cp1254", "x-cp1254", "iso-8859-9", "iso8859-9", "iso88599",
               "iso_8859-9", "iso_8859-9:1989", "iso-ir-148", "l5", "latin5", "csisolatin5"),
    "cp1255": ("windows-1255", "cp1255", "x-cp1255"),
    "cp1256": ("windows-1256", "cp1256", "x-cp1256"),
    "cp1257": ("windows-1257", "cp1257", "x-cp1257"),
    "cp1258": ("windows-1258", "cp1258", "x-cp1258"),
    "gbk": ("gbk", "chinese", "csgb2312", "csiso58gb231280", "gb2312", "gb_2312", "gb_2312-80",
            "iso-ir-58", "x-gbk", "cp936", "ms936", "windows-936"),
    "gb18030": ("gb18030",),
    "big5": ("big5", "big5-hkscs", "cn-big5", "csbig5", "x-x-big5"),
    "euc_jp": ("euc-jp", "cseucpkdfmtjapanese", "x-euc-jp"),
    "iso2022_jp": ("iso-2022-jp", "csiso2022jp"),
    "iso2022_jp_2": ("iso-2022-jp-2",),
    "shift_jis": ("shift_jis", "shift-jis", "csshiftjis", "ms932", "ms_kanji", "sjis",
                  "windows-31j", "x-sjis", "cp932"),
    "euc_kr": ("euc-kr", "cseuckr", "csksc56011987", "iso-ir-149", "korean", "ks_c_5601-1987",
               "ks_c_5601-1989", "ksc5601", "ksc_5601", "windows-949", "cp949"),
    "iso2022_kr": ("iso-2022-kr", "csiso2022kr"),
    "utf-16-be": ("utf-16be", "unicodefffe"),
    "utf-16-le": ("utf-16le", "csunicode", "iso-10646-ucs-2", "ucs-2", "unicode",
                  "unicodefeff"),
    "utf-16": ("utf-16",),
    "utf-32": ("utf-32",),
    "utf-32-be": ("utf-32be",),
    "utf-32-le": ("utf-32le",),
    "utf-7": ("utf-7", "unicode-1-1-utf-7", "csunicode11utf7"),
    "hz": ("hz-gb-2312",),
    "cp437": ("ibm437", "cp437", "437", "cspc8codepage437"),
    "cp850": ("ibm850", "cp850", "850", "cspc850multilingual"),
    "cp852": ("ibm852", "cp852", "852", "cspcp852"),
    "cp1026": ("ibm1026", "cp1026"),
    "tis-620": ("tis620",),
    "koi8-t": ("koi8-t",),
    "kz1048": ("kz-1048", "strk1048-2002", "rk1048"),
}

#: Every accepted label, lower-case, mapped to the Python codec that decodes it.
CHARSET_LABELS: dict[str, str] = {
    label: codec for codec, labels in _GROUPS.items() for label in labels
}

# Python codecs that are not charsets at all (or that do surprising things
# with attacker data); never reached through the fallback lookup.
_REFUSED = frozenset({"unicode-escape", "raw-unicode-escape", "idna", "punycode", "undefined",
                      "mbcs", "oem", "unicode-internal"})


@functools.lru_cache(maxsize=256)
def lookup_charset(label: str) -> str | None:
    """Return the Python codec name for a MIME charset label, or ``None`` if unknown.

    Labels are matched case-insensitively after trimming whitespace and quotes;
    labels outside the table are tried against Python's own aliases (e.g.
    ``latin_1``, ``cp1125``) provided they name a text codec.
    """
    name = label.strip().strip("\"'").strip().lower()
    found = CHARSET_LABELS.get(name)
    if found is not None:
        return found
    if not name or len(name) > 40 or not all(c.isalnum() or c in "-_.:" for c in name):
        return None
    try:
        info = codecs.lookup(name)
    except LookupError:
        return None
    if info.name.replace("_", "-") in _REFUSED or not getattr(info, "_is_text_encoding", True):
        return None
    return info.name


def decode_text(data: bytes, charset: str | None, defects: list[Defect] | None = None,
                offset: int | None = None) -> str:
    """Decode ``data`` in ``charset`` without ever raising.

    Unknown charsets decode as UTF-8 with replacement characters and add an
    ``unknown-charset`` defect; undecodable bytes are replaced and add a
    ``charset-decode-error`` defect.  Text labelled US-ASCII that is valid UTF-8
    is decoded as UTF-8 (a very common mislabelling) with a defect.
    """
    codec = "ascii" if charset is None else lookup_charset(charset)
    if codec is None:
        if defects is not None:
            defects.append(Defect(DefectKind.UNKNOWN_CHARSET, f"unknown charset {charset!r}",
                                  offset, Severity.ERROR))
        return data.decode("utf-8", "replace")
    try:
        return data.decode(codec)
    except UnicodeDecodeError:
        pass
    except LookupError:  # pragma: no cover - table entries are checked by the tests
        return data.decode("utf-8", "replace")
    if codec == "ascii":
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("cp1252", "replace") if charset is None else \
                data.decode("ascii", "replace")
        if defects is not None:
            defects.append(Defect(DefectKind.CHARSET_DECODE_ERROR,
                                  "8-bit data in text declared as US-ASCII", offset,
                                  Severity.WARNING))
        return text
    if defects is not None:
        defects.append(Defect(DefectKind.CHARSET_DECODE_ERROR,
                              f"bytes not valid in charset {charset!r}", offset,
                              Severity.WARNING))
    return data.decode(codec, "replace")
