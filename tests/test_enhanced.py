"""Tests for smtpproto._enhanced (RFC 3463 / RFC 2034 enhanced status codes)."""

from __future__ import annotations

import pytest

from smtpproto._enhanced import (
    CLASSES,
    REGISTRY,
    SUBJECTS,
    EnhancedStatus,
    describe,
    explain,
    is_enhanced_status,
    matches_reply_code,
    parse_enhanced,
    split_enhanced,
)


@pytest.mark.parametrize("text", ["2.0.0", "4.7.0", "5.1.1", "5.7.30", "5.999.999", "2.01.0"])
def test_valid_syntax(text: str) -> None:
    assert is_enhanced_status(text)
    assert str(parse_enhanced(text)) == str(EnhancedStatus.parse(text))


@pytest.mark.parametrize(
    "text", ["", "1.0.0", "3.0.0", "6.1.1", "5.1", "5.1.1.1", "5.1000.1", "5.1.1000", "5..1", "5.a.1", " 5.1.1", "5.1.1 ", "５.1.1"]
)
def test_invalid_syntax(text: str) -> None:
    assert not is_enhanced_status(text)
    assert parse_enhanced(text) is None
    with pytest.raises(ValueError):
        EnhancedStatus.parse(text)


def test_status_object() -> None:
    s = EnhancedStatus.parse("5.1.1")
    assert (s.klass, s.subject, s.detail) == (5, 1, 1)
    assert str(s) == "5.1.1" and s.key == "X.1.1"
    assert s.description == describe("5.1.1")
    assert EnhancedStatus(2, 0, 0) < EnhancedStatus(4, 0, 0)
    with pytest.raises(ValueError):
        EnhancedStatus(3, 0, 0)
    with pytest.raises(ValueError):
        EnhancedStatus(5, 1000, 0)


def test_split_enhanced() -> None:
    assert split_enhanced("2.1.0 Ok") == (EnhancedStatus(2, 1, 0), "Ok")
    assert split_enhanced("2.0.0") == (EnhancedStatus(2, 0, 0), "")
    assert split_enhanced("5.7.8   Bad") == (EnhancedStatus(5, 7, 8), "Bad")
    assert split_enhanced("Ok") == (None, "Ok")
    assert split_enhanced("2.1.0Ok") == (None, "2.1.0Ok")
    assert split_enhanced("mx.example ESMTP") == (None, "mx.example ESMTP")
    assert split_enhanced("9.9.9 x") == (None, "9.9.9 x")


def test_registry_complete_and_well_formed() -> None:
    # Every subject 0..7 has its catch-all, and the RFC 3463 details exist.
    for subject in range(8):
        assert f"X.{subject}.0" in REGISTRY
    expected_max = {1: 10, 2: 4, 3: 6, 4: 7, 5: 6, 6: 9, 7: 30}
    for subject, top in expected_max.items():
        for detail in range(top + 1):
            assert f"X.{subject}.{detail}" in REGISTRY, (subject, detail)
    for key, entry in REGISTRY.items():
        assert is_enhanced_status("5" + key[1:]), key
        assert entry.description and entry.reference
    assert set(CLASSES) == {2, 4, 5} and set(SUBJECTS) == set(range(8))


def test_describe() -> None:
    assert describe("5.1.1") == "The destination mailbox does not exist"
    assert describe(EnhancedStatus(5, 7, 8)) == "The authentication credentials are not valid"
    assert describe("4.5.3") == "Too many recipients for one transaction"
    # Unregistered detail -> the subject catch-all; unknown subject -> X.0.0.
    assert describe("5.1.99") == describe("5.1.0")
    assert describe("5.9.9") == describe("2.0.0")
    assert explain("5.1.1") == "Permanent failure: The destination mailbox does not exist"
    assert explain("4.7.0").startswith("Persistent transient failure: ")
    with pytest.raises(ValueError):
        describe("x.y.z")


def test_matches_reply_code() -> None:
    assert matches_reply_code(250, "2.1.0")
    assert matches_reply_code(452, EnhancedStatus(4, 5, 3))
    assert not matches_reply_code(550, "4.1.1")
    assert not matches_reply_code(250, "5.0.0")
