"""Tests for smtpproto._extensions: capabilities, xtext, MAIL/RCPT parameters."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smtpproto._extensions import (
    Capabilities,
    DeliverBy,
    FutureRelease,
    MailParams,
    Orcpt,
    ParameterError,
    ParamProblem,
    RcptParams,
    Rrvs,
    check_mail_params,
    check_rcpt_params,
    is_esmtp_keyword,
    is_esmtp_value,
    is_xtext,
    utf8_addr_decode,
    utf8_addr_unitext_encode,
    utf8_addr_xtext_encode,
    xtext_decode,
    xtext_encode,
)

POSTFIX_EHLO = [
    "PIPELINING",
    "SIZE 10240000",
    "VRFY",
    "ETRN",
    "STARTTLS",
    "AUTH PLAIN LOGIN",
    "AUTH=PLAIN LOGIN",
    "ENHANCEDSTATUSCODES",
    "8BITMIME",
    "DSN",
    "SMTPUTF8",
    "CHUNKING",
]

FULL = Capabilities.build(
    size=1000,
    pipelining=True,
    eightbitmime=True,
    smtputf8=True,
    chunking=True,
    binarymime=True,
    starttls=True,
    auth=("PLAIN", "SCRAM-SHA-256"),
    dsn=True,
    enhancedstatuscodes=True,
    requiretls=True,
    mt_priority="MIXER",
    deliverby=60,
    rrvs=True,
    futurerelease=FutureRelease(86400, "2030-01-01T00:00:00Z"),
    limits={"RCPTMAX": 100, "MAILMAX": 10},
)
BARE = Capabilities()


# --------------------------------------------------------------------------
# Capabilities
# --------------------------------------------------------------------------


def test_parse_postfix_reply() -> None:
    caps = Capabilities.parse(POSTFIX_EHLO)
    assert caps.pipelining and caps.vrfy and caps.etrn and caps.starttls
    assert caps.size == 10240000
    assert caps.auth_mechanisms == ("PLAIN", "LOGIN")
    assert caps.enhancedstatuscodes and caps.eightbitmime and caps.dsn
    assert caps.smtputf8 and caps.chunking
    assert not caps.binarymime and not caps.requiretls and not caps.help
    assert list(caps)[:3] == ["PIPELINING", "SIZE", "VRFY"]
    assert "size" in caps and caps["size"] == "10240000"
    assert caps["AUTH="] == "PLAIN LOGIN"


def test_parse_tolerates_case_whitespace_and_blank_lines() -> None:
    caps = Capabilities.parse(["  pipelining ", "", "size   2048 ", "x-unknown  a   b", "auth login"])
    assert caps.size == 2048
    assert caps["X-UNKNOWN"] == "a b"
    assert caps.auth_mechanisms == ("LOGIN",)
    assert caps.pipelining


def test_old_auth_form_only() -> None:
    caps = Capabilities.parse(["AUTH=LOGIN PLAIN"])
    assert caps.auth
    assert caps.auth_mechanisms == ("LOGIN", "PLAIN")
    assert caps.to_lines() == ["AUTH=LOGIN PLAIN"]


def test_auth_lines_merge() -> None:
    caps = Capabilities.parse(["AUTH PLAIN", "AUTH LOGIN PLAIN", "AUTH=CRAM-MD5"])
    assert caps.auth_mechanisms == ("PLAIN", "LOGIN", "CRAM-MD5")


def test_size_variants() -> None:
    assert Capabilities.parse([]).size is None
    assert Capabilities.parse(["SIZE"]).size == 0
    assert Capabilities.parse(["SIZE 0"]).size == 0
    assert Capabilities.parse(["SIZE abc"]).size == 0
    assert Capabilities.parse(["SIZE " + "9" * 25]).size == 0


def test_typed_extensions() -> None:
    caps = Capabilities.parse(
        [
            "MT-PRIORITY MIXER",
            "DELIVERBY 120",
            "RRVS",
            "FUTURERELEASE 604800 2030-01-01T00:00:00Z",
            "LIMITS RCPTMAX=50 mailmax=5 BROKEN junk=x",
            "REQUIRETLS",
            "BINARYMIME",
            "XCLIENT NAME ADDR PORT",
            "XFORWARD NAME ADDR PROTO HELO",
            "HELP",
            "EXPN",
        ]
    )
    assert caps.mt_priority and caps.mt_priority_policy == "MIXER"
    assert caps.deliverby and caps.deliverby_min == 120
    assert caps.rrvs and caps.requiretls and caps.binarymime and caps.help and caps.expn
    assert caps.futurerelease == FutureRelease(604800, "2030-01-01T00:00:00Z")
    assert caps.limits == {"RCPTMAX": 50, "MAILMAX": 5}
    assert caps.xclient == ("NAME", "ADDR", "PORT")
    assert caps.xforward == ("NAME", "ADDR", "PROTO", "HELO")


def test_absent_typed_extensions() -> None:
    caps = Capabilities.parse(["MT-PRIORITY", "DELIVERBY", "FUTURERELEASE bad"])
    assert caps.mt_priority_policy is None
    assert caps.deliverby_min is None
    assert caps.futurerelease is None
    assert caps.limits is None and caps.xclient is None and caps.xforward is None


def test_build_and_roundtrip() -> None:
    lines = FULL.to_lines()
    assert lines[0] == "PIPELINING"
    assert "SIZE 1000" in lines
    assert "AUTH PLAIN SCRAM-SHA-256" in lines
    assert "MT-PRIORITY MIXER" in lines
    assert "DELIVERBY 60" in lines
    assert "LIMITS RCPTMAX=100 MAILMAX=10" in lines
    again = Capabilities.parse(lines)
    assert again == FULL
    assert again.to_lines() == lines


def test_build_size_zero_and_none() -> None:
    assert Capabilities.build(size=0).to_lines() == ["SIZE"]
    assert Capabilities.build().to_lines() == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"binarymime": True},
        {"size": -1},
        {"auth": ("PLAIN LOGIN",)},
        {"auth": ("BAD\r\nMECH",)},
        {"limits": {"BAD NAME": 1}},
        {"extra": [("BAD KEYWORD", "")]},
        {"extra": [("X-OK", "a\r\nb")]},
    ],
)
def test_build_rejects(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Capabilities.build(**kwargs)  # type: ignore[arg-type]


def test_constructor_validation() -> None:
    with pytest.raises(ValueError):
        Capabilities([("-X", "")])
    with pytest.raises(ValueError):
        Capabilities([("X", "a"), ("x", "b")])
    with pytest.raises(ValueError):
        Capabilities([("X", "a  b")])
    caps = Capabilities({"X-Y": "1 2"})
    assert caps.to_lines() == ["X-Y 1 2"]


def test_without_and_with_keyword() -> None:
    caps = Capabilities.parse(POSTFIX_EHLO)
    stripped = caps.without("starttls", "AUTH")
    assert not stripped.starttls and stripped.auth_mechanisms == ()
    assert caps.starttls  # original unchanged
    added = stripped.with_keyword("auth", "SCRAM-SHA-256")
    assert added.auth_mechanisms == ("SCRAM-SHA-256",)
    with pytest.raises(ValueError):
        stripped.with_keyword("bad kw")


def test_capabilities_is_readonly_mapping() -> None:
    caps = Capabilities.parse(["SIZE 1"])
    with pytest.raises(TypeError):
        caps["SIZE"] = "2"  # type: ignore[index]
    assert repr(caps) == "Capabilities({'SIZE': '1'})"
    assert caps == {"SIZE": "1"}
    assert object() not in caps


# --------------------------------------------------------------------------
# Lexical helpers, xtext, RFC 6533
# --------------------------------------------------------------------------


def test_keyword_and_value_syntax() -> None:
    assert is_esmtp_keyword("MT-PRIORITY") and is_esmtp_keyword("8BITMIME")
    assert not is_esmtp_keyword("-X") and not is_esmtp_keyword("") and not is_esmtp_keyword("A_B")
    assert is_esmtp_value("abc<>~!")
    for bad in ("", "a=b", "a b", "1000\r\nRCPT TO:<x@y>", "a\x00", "a\x7f", "ä"):
        assert not is_esmtp_value(bad), bad
    assert is_esmtp_value("jörg", smtputf8=True)
    assert not is_esmtp_value("a\r\n", smtputf8=True)
    assert not is_esmtp_value("\ud800", smtputf8=True)


def test_xtext_known_values() -> None:
    assert xtext_encode("a+b=c d") == "a+2Bb+3Dc+20d"
    assert xtext_encode("QQ314159") == "QQ314159"
    assert xtext_encode(b"\r\n") == "+0D+0A"
    assert xtext_encode("é") == "+C3+A9"
    assert xtext_decode("a+2Bb+3dc") == "a+b=c"
    assert xtext_decode("+C3+A9") == "é"
    for bad in ("a b", "a=b", "+2", "+ZZ", "+", "a\x7f"):
        assert not is_xtext(bad), bad
        with pytest.raises(ValueError):
            xtext_decode(bad)
    with pytest.raises(ValueError):
        xtext_decode("+FF")  # not UTF-8


@given(st.text())
def test_xtext_roundtrip(value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return
    encoded = xtext_encode(value)
    assert is_esmtp_value(encoded) or encoded == ""
    assert xtext_decode(encoded) == value


def test_utf8_addr_forms() -> None:
    assert utf8_addr_xtext_encode("jörg+x@exämple.org") == "j\\x{F6}rg\\x{2B}x@ex\\x{E4}mple.org"
    assert utf8_addr_unitext_encode("jörg+x@exämple.org") == "jörg\\x{2B}x@exämple.org"
    assert utf8_addr_xtext_encode("a\\b c") == "a\\x{5C}b\\x{20}c"
    assert utf8_addr_xtext_encode("\U0001F600@x") == "\\x{1F600}@x"
    assert utf8_addr_decode("j\\x{F6}rg@x") == "jörg@x"
    assert utf8_addr_decode("j\\x{f6}rg@x") == "jörg@x"
    assert utf8_addr_decode("jörg@x") == "jörg@x"
    with pytest.raises(ValueError):
        utf8_addr_decode("jörg@x", allow_utf8=False)
    for bad in ("", "a+b", "a=b", "a b", "a\\x{41}", "a\\x{00F6}", "a\\x{D800}", "a\\x{110000}", "a\\x", "a\\"):
        with pytest.raises(ValueError):
            utf8_addr_decode(bad)


@given(st.text(min_size=1).filter(lambda s: not any(0xD800 <= ord(c) <= 0xDFFF for c in s) and "\x00" not in s))
def test_utf8_addr_roundtrip(value: str) -> None:
    x = utf8_addr_xtext_encode(value)
    assert x.isascii()
    assert utf8_addr_decode(x, allow_utf8=False) == value
    assert utf8_addr_decode(utf8_addr_unitext_encode(value)) == value


# --------------------------------------------------------------------------
# check_mail_params / check_rcpt_params
# --------------------------------------------------------------------------


def _mail(params: dict[str, str | None], caps: Capabilities = FULL, max_size: int | None = None) -> ParamProblem | None:
    return check_mail_params(params, caps, max_size=max_size)


def test_mail_all_valid() -> None:
    params: dict[str, str | None] = {
        "SIZE": "999",
        "BODY": "8bitmime",
        "SMTPUTF8": None,
        "RET": "HDRS",
        "ENVID": "QQ314159",
        "AUTH": "e+3Dmc2@example.com",
        "REQUIRETLS": None,
        "MT-PRIORITY": "-3",
        "BY": "120;RT",
        "HOLDFOR": "3600",
    }
    assert _mail(params) is None
    assert _mail({"HOLDUNTIL": "2030-01-01T00:00:00+01:00"}) is None
    assert _mail({"BODY": "BINARYMIME"}) is None
    assert _mail({"AUTH": "<>"}) is None
    assert _mail({}) is None


@pytest.mark.parametrize(
    "keyword,value",
    [
        ("SIZE", "1"),
        ("BODY", "8BITMIME"),
        ("SMTPUTF8", None),
        ("RET", "FULL"),
        ("ENVID", "x"),
        ("AUTH", "<>"),
        ("REQUIRETLS", None),
        ("MT-PRIORITY", "1"),
        ("BY", "10;N"),
        ("HOLDFOR", "1"),
        ("HOLDUNTIL", "2030-01-01T00:00:00Z"),
        ("XFOO", "1"),
        ("NOTIFY", "NEVER"),  # an RCPT parameter on MAIL
    ],
)
def test_mail_not_advertised_is_555(keyword: str, value: str | None) -> None:
    problem = _mail({keyword: value}, caps=BARE)
    assert problem == ParamProblem(555, "5.5.4", f"Unsupported option: {keyword}")


def test_mail_unknown_keyword_with_full_caps_is_555() -> None:
    problem = _mail({"X-UNKNOWN": None})
    assert problem is not None and problem.code == 555 and problem.enhanced == "5.5.4"


def test_body_needs_its_extension() -> None:
    only8 = Capabilities.build(eightbitmime=True)
    assert _mail({"BODY": "7BIT"}, only8) is None
    p = _mail({"BODY": "BINARYMIME"}, only8)
    assert p is not None and p.code == 555
    binonly = Capabilities.build(chunking=True, binarymime=True)
    p = _mail({"BODY": "8BITMIME"}, binonly)
    assert p is not None and p.code == 555


@pytest.mark.parametrize(
    "keyword,value",
    [
        ("SIZE", "1e9"),  # R-04 (b)
        ("SIZE", "9" * 5000),  # R-04 (c)
        ("SIZE", "9" * 21),
        ("SIZE", None),
        ("SIZE", "-1"),
        ("BODY", "9BIT"),
        ("BODY", None),
        ("SMTPUTF8", "yes"),
        ("RET", "ALL"),
        ("ENVID", "a+ZZ"),
        ("ENVID", "x" * 101),
        ("ENVID", "+0A"),
        ("AUTH", "nobody"),
        ("AUTH", "a+20b@x"),
        ("REQUIRETLS", "1"),
        ("MT-PRIORITY", "10"),
        ("MT-PRIORITY", "+1"),
        ("MT-PRIORITY", "-0"),
        ("BY", "0;R"),
        ("BY", "10"),
        ("BY", "1234567890;N"),
        ("BY", "10;X"),
        ("HOLDFOR", "abc"),
        ("HOLDFOR", "1234567890"),
        ("HOLDUNTIL", "2030-13-01T00:00:00Z"),
        ("HOLDUNTIL", "tomorrow"),
    ],
)
def test_mail_bad_value_is_501(keyword: str, value: str | None) -> None:
    problem = _mail({keyword: value})
    assert problem is not None, (keyword, value)
    assert (problem.code, problem.enhanced) == (501, "5.5.4")
    assert keyword in problem.text


def test_mail_injection_value_is_501() -> None:
    # SECURITY-CASES C-03: the value never reaches the wire.
    problem = _mail({"SIZE": "1000\r\nRCPT TO:<attacker@evil.example>"})
    assert problem is not None and problem.code == 501
    problem = _mail({"BAD KEY": "1"})
    assert problem is not None and problem.code == 501


def test_size_limits() -> None:
    # R-04 (a)
    p = _mail({"SIZE": "99999999999"}, max_size=10_240_000)
    assert p == ParamProblem(552, "5.3.4", "Message size exceeds fixed maximum message size")
    assert _mail({"SIZE": "10240000"}, max_size=10_240_000) is None
    # With max_size None the advertised limit applies.
    p = _mail({"SIZE": "1001"})
    assert p is not None and p.code == 552
    assert _mail({"SIZE": "1000"}) is None
    # SIZE advertised without a limit: anything goes.
    assert _mail({"SIZE": "9" * 20}, Capabilities.build(size=0)) is None


def test_holdfor_rules() -> None:
    p = _mail({"HOLDFOR": "86401"})
    assert p is not None and p.code == 501
    p = _mail({"HOLDFOR": "1", "HOLDUNTIL": "2030-01-01T00:00:00Z"})
    assert p is not None and p.code == 501 and "exclusive" in p.text


def test_mail_smtputf8_value() -> None:
    caps = Capabilities.build(smtputf8=True, extra=[("X-U", "")])
    # non-ASCII values only with SMTPUTF8 in the same command (RFC 6531 §3.3)
    p = _mail({"X-U": "jörg"}, caps)
    assert p is not None and p.code == 501
    p = _mail({"SMTPUTF8": None, "X-U": "jörg"}, caps)
    assert p is not None and p.code == 555  # syntax ok, but not a known parameter


def test_rcpt_params() -> None:
    ok: list[dict[str, str | None]] = [
        {"NOTIFY": "NEVER"},
        {"NOTIFY": "success,failure,DELAY"},
        {"ORCPT": "rfc822;bob+2Bx@example.com"},
        {"ORCPT": "utf-8;j\\x{F6}rg@example.com"},
        {"RRVS": "2014-04-03T23:01:00Z"},
        {"RRVS": "2014-04-03T23:01:00Z;C"},
    ]
    for params in ok:
        assert check_rcpt_params(params, FULL) is None, params
    bad: list[dict[str, str | None]] = [
        {"NOTIFY": "NEVER,SUCCESS"},
        {"NOTIFY": "SUCCESS,SUCCESS"},
        {"NOTIFY": "SOMETIMES"},
        {"NOTIFY": None},
        {"ORCPT": "bob@example.com"},
        {"ORCPT": "rfc822;" + "a" * 500},
        {"ORCPT": "rfc822;a+2"},
        {"ORCPT": ";a@b"},
        {"RRVS": "2014-04-03"},
        {"RRVS": "2014-04-03T23:01:00Z;X"},
    ]
    for params in bad:
        p = check_rcpt_params(params, FULL)
        assert p is not None and p.code == 501, params
    p = check_rcpt_params({"NOTIFY": "NEVER"}, BARE)
    assert p is not None and p.code == 555
    p = check_rcpt_params({"SIZE": "1"}, FULL)
    assert p is not None and p.code == 555


def test_rcpt_orcpt_unitext_needs_smtputf8() -> None:
    params: dict[str, str | None] = {"ORCPT": "utf-8;jörg@example.com"}
    p = check_rcpt_params(params, FULL)
    assert p is not None and p.code == 501
    assert check_rcpt_params(params, FULL, smtputf8=True) is None


# --------------------------------------------------------------------------
# Typed views
# --------------------------------------------------------------------------


def test_mail_params_roundtrip() -> None:
    mp = MailParams(
        size=1234,
        body="8BITMIME",
        smtputf8=True,
        ret="HDRS",
        envid="id with space+plus",
        auth="user@example.com",
        requiretls=True,
        mt_priority=4,
        by=DeliverBy(120, "R", True),
        holdfor=60,
        extra=(("X-FOO", "bar"), ("X-FLAG", None)),
    )
    params = mp.to_params()
    assert params == {
        "SIZE": "1234",
        "BODY": "8BITMIME",
        "SMTPUTF8": None,
        "RET": "HDRS",
        "ENVID": "id+20with+20space+2Bplus",
        "AUTH": "user@example.com",
        "REQUIRETLS": None,
        "MT-PRIORITY": "4",
        "BY": "120;RT",
        "HOLDFOR": "60",
        "X-FOO": "bar",
        "X-FLAG": None,
    }
    for value in params.values():
        assert value is None or is_esmtp_value(value)
    assert MailParams.from_params(params) == mp


def test_mail_params_with_caps_checks() -> None:
    parsed = MailParams.from_params({"SIZE": "10", "BODY": "7bit"}, FULL)
    assert parsed.size == 10 and parsed.body == "7BIT"
    with pytest.raises(ParameterError) as info:
        MailParams.from_params({"X-FOO": "1"}, FULL)
    assert info.value.problem.code == 555
    with pytest.raises(ParameterError) as info:
        MailParams.from_params({"SIZE": "abc"})
    assert info.value.problem.code == 501
    with pytest.raises(ParameterError):
        MailParams.from_params({"HOLDFOR": "1", "HOLDUNTIL": "2030-01-01T00:00:00Z"})


@pytest.mark.parametrize(
    "kwargs",
    [
        {"size": -1},
        {"size": 10**21},
        {"body": "9BIT"},
        {"ret": "ALL"},
        {"envid": ""},
        {"envid": "x" * 101},
        {"envid": "a\r\nb"},
        {"auth": "no-at-sign"},
        {"auth": "a\r\n@b"},
        {"mt_priority": 10},
        {"holdfor": -1},
        {"holduntil": "soon"},
        {"holdfor": 1, "holduntil": "2030-01-01T00:00:00Z"},
        {"extra": (("SIZE", "1"),)},
        {"extra": (("X-A", "1\r\nRCPT TO:<x@y>"),)},
        {"extra": (("X A", "1"),)},
        {"extra": (("X-A", "1"), ("x-a", "2"))},
    ],
)
def test_mail_params_rejects(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        MailParams(**kwargs)  # type: ignore[arg-type]


def test_deliverby_validation() -> None:
    with pytest.raises(ValueError):
        DeliverBy(0, "R")
    with pytest.raises(ValueError):
        DeliverBy(10, "X")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        DeliverBy(10**9, "N")
    assert DeliverBy(-5, "N").encode() == "-5;N"


def test_rcpt_params_roundtrip() -> None:
    rp = RcptParams(
        notify=("success", "FAILURE"),
        orcpt=Orcpt("bob+tag@example.com"),
        rrvs=Rrvs("2014-04-03T23:01:00Z", "R"),
    )
    assert rp.notify == ("SUCCESS", "FAILURE")
    params = rp.to_params()
    assert params == {
        "NOTIFY": "SUCCESS,FAILURE",
        "ORCPT": "rfc822;bob+2Btag@example.com",
        "RRVS": "2014-04-03T23:01:00Z;R",
    }
    assert RcptParams.from_params(params, FULL) == rp
    assert RcptParams.from_params(params) == rp


def test_orcpt_non_ascii_encoding() -> None:
    o = Orcpt("jörg@exämple.org")
    assert o.encode() == "utf-8;j\\x{F6}rg@ex\\x{E4}mple.org"
    assert o.encode(smtputf8=True) == "utf-8;jörg@exämple.org"
    rp = RcptParams.from_params({"ORCPT": o.encode()}, FULL)
    assert rp.orcpt == Orcpt("jörg@exämple.org", "utf-8")
    with pytest.raises(ValueError):
        Orcpt("a\r\nb")
    with pytest.raises(ValueError):
        Orcpt("x", "bad type")
    with pytest.raises(ValueError):
        Orcpt("a" * 600).encode()


def test_rcpt_params_rejects() -> None:
    with pytest.raises(ValueError):
        RcptParams(notify=("NEVER", "SUCCESS"))
    with pytest.raises(ValueError):
        RcptParams(notify=())
    with pytest.raises(ValueError):
        Rrvs("yesterday")
    with pytest.raises(ParameterError) as info:
        RcptParams.from_params({"NOTIFY": "BAD"})
    assert info.value.problem.code == 501
    extra = RcptParams.from_params({"X-Y": "1"})
    assert extra.extra == (("X-Y", "1"),)


# --------------------------------------------------------------------------
# Robustness: hostile input never raises (the server turns it into a reply)
# --------------------------------------------------------------------------

_KEYS = st.sampled_from(
    ["SIZE", "BODY", "SMTPUTF8", "RET", "ENVID", "AUTH", "REQUIRETLS", "MT-PRIORITY", "BY", "HOLDFOR",
     "HOLDUNTIL", "NOTIFY", "ORCPT", "RRVS", "X-Y", "bad key", ""]
) | st.text(max_size=8)
_VALUES = st.none() | st.text(max_size=40) | st.sampled_from(["utf-8;a\\x{", "rfc822;+", "1;R", "2030-02-30T25:00:00Z"])


@given(st.dictionaries(_KEYS, _VALUES, max_size=5), st.booleans(), st.none() | st.integers(0, 10**12))
def test_param_checks_never_raise(params: dict[str, str | None], utf8: bool, max_size: int | None) -> None:
    for caps in (FULL, BARE):
        for problem in (
            check_mail_params(params, caps, max_size=max_size),
            check_rcpt_params(params, caps, smtputf8=utf8),
        ):
            assert problem is None or (problem.code in (501, 552, 555) and "\r" not in problem.text and "\n" not in problem.text)


@given(st.lists(st.text(max_size=60), max_size=12))
def test_capabilities_parse_never_raises(lines: list[str]) -> None:
    caps = Capabilities.parse(lines)
    for name in ("size", "auth_mechanisms", "limits", "futurerelease", "deliverby_min", "mt_priority_policy", "xclient"):
        getattr(caps, name)
    assert len(caps) <= len(lines)


@given(st.dictionaries(_KEYS, _VALUES, max_size=5))
def test_typed_views_accept_only_what_they_can_re_encode(params: dict[str, str | None]) -> None:
    for cls in (MailParams, RcptParams):
        try:
            view = cls.from_params(params)
        except ParameterError as exc:
            assert exc.problem.code == 501
            continue
        for value in view.to_params().values():
            assert value is None or is_esmtp_value(value, smtputf8=True)
