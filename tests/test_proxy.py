"""Tests for smtpproto.proxy (HAProxy PROXY protocol v1/v2)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smtpproto.proxy import (
    PP2_CLIENT_CERT_CONN,
    PP2_CLIENT_SSL,
    PP2_TYPE_ALPN,
    PP2_TYPE_AUTHORITY,
    PP2_TYPE_NETNS,
    PP2_TYPE_NOOP,
    PP2_TYPE_UNIQUE_ID,
    V1_MAX_LENGTH,
    V2_SIGNATURE,
    TLV,
    ProxyHeader,
    ProxyProtocolError,
    SSLInfo,
    crc32c,
    format_v1,
    format_v2,
    parse_proxy_header,
)

SMTP = b"EHLO client.example\r\n"

V1_TCP4 = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"
# Built by hand from the v2 layout: signature, ver/cmd 0x21, INET/STREAM 0x11,
# length 12, src 192.168.0.1, dst 192.168.0.11, ports 56324 and 443.
V2_TCP4 = V2_SIGNATURE + bytes.fromhex("2111000c" "c0a80001" "c0a8000b" "dc04" "01bb")


def assert_split_invariant(data: bytes) -> ProxyHeader:
    """Every proper prefix needs more data; the whole gives the same header."""
    for i in range(len(data)):
        assert parse_proxy_header(data[:i]) is None, i
    header = parse_proxy_header(data)
    assert header is not None
    return header


def test_v1_tcp4() -> None:
    h = assert_split_invariant(V1_TCP4)
    assert (h.version, h.command, h.family, h.protocol) == (1, "PROXY", "INET", "STREAM")
    assert (h.source_address, h.source_port) == ("192.168.0.1", 56324)
    assert (h.destination_address, h.destination_port) == ("192.168.0.11", 443)
    assert h.consumed == len(V1_TCP4) and h.use_addresses
    again = parse_proxy_header(bytearray(V1_TCP4 + SMTP))
    assert again == h  # trailing SMTP bytes are left alone


def test_v1_tcp6_longest_and_unknown() -> None:
    longest = b"PROXY TCP6 " + b"ffff:" * 7 + b"ffff " + b"ffff:" * 7 + b"ffff 65535 65535\r\n"
    h = assert_split_invariant(longest)
    assert h.family == "INET6" and h.source_address == "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
    # Spec: "PROXY UNKNOWN" may carry anything up to the 107-byte limit.
    unknown = b"PROXY UNKNOWN " + b"x" * (V1_MAX_LENGTH - 16) + b"\r\n"
    assert len(unknown) == V1_MAX_LENGTH
    h = assert_split_invariant(unknown)
    assert h.family == "UNSPEC" and h.source_address is None and not h.use_addresses
    assert parse_proxy_header(b"PROXY UNKNOWN\r\n" + SMTP) == ProxyHeader(
        1, "PROXY", "UNSPEC", "UNSPEC", None, None, None, None, 15
    )


@pytest.mark.parametrize(
    "data",
    [
        b"EHLO client.example\r\n",  # missing header
        b"GET / HTTP/1.1\r\n",
        b"proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
        b"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n",
        b"PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n",
        b"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n",
        b"PROXY TCP4 ::1 ::1 1 2\r\n",
        b"PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n",
        b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",  # bare LF
        b"PROXY TCP4 1.2.3.4\r5.6.7.8 1 2\r\n",
        b"PROXY " + b"A" * 200,  # no CRLF within 107 bytes
        b"PROXY UNKNOWN " + b"x" * 92 + b"\r\n",  # 108 bytes
        b"\r\n\r\n\x00\r\nQUIX\n",
    ],
)
def test_garbage_is_an_error(data: bytes) -> None:
    with pytest.raises(ProxyProtocolError):
        parse_proxy_header(data)


def test_garbage_detected_early() -> None:
    # The first byte that cannot start a header is enough.
    with pytest.raises(ProxyProtocolError):
        parse_proxy_header(b"E")
    with pytest.raises(ProxyProtocolError):
        parse_proxy_header(b"PROXX")
    with pytest.raises(ProxyProtocolError):
        parse_proxy_header(b"\r\n\r\n\x01")
    assert parse_proxy_header(b"") is None
    assert parse_proxy_header(b"PROX") is None
    assert parse_proxy_header(b"\r\n\r") is None


def test_version_restrictions() -> None:
    with pytest.raises(ProxyProtocolError):
        parse_proxy_header(V1_TCP4, allow_v1=False)
    with pytest.raises(ProxyProtocolError):
        parse_proxy_header(V2_TCP4, allow_v2=False)
    assert parse_proxy_header(V2_TCP4, allow_v1=False) is not None


def test_v2_tcp4_vector() -> None:
    h = assert_split_invariant(V2_TCP4)
    assert (h.version, h.command, h.family, h.protocol) == (2, "PROXY", "INET", "STREAM")
    assert (h.source_address, h.source_port, h.destination_address, h.destination_port) == (
        "192.168.0.1",
        56324,
        "192.168.0.11",
        443,
    )
    assert h.consumed == 28 and h.tlvs == ()
    assert format_v2("PROXY", "192.168.0.1", "192.168.0.11", 56324, 443) == V2_TCP4


def test_v2_local_and_unspec() -> None:
    local = format_v2("LOCAL")
    assert local == V2_SIGNATURE + b"\x20\x00\x00\x00"
    h = assert_split_invariant(local)
    assert h.command == "LOCAL" and h.family == "UNSPEC" and not h.use_addresses
    # LOCAL with addresses: parsed, but not to be used.
    h = assert_split_invariant(format_v2("LOCAL", "10.0.0.1", "10.0.0.2", 1, 2))
    assert h.source_address == "10.0.0.1" and not h.use_addresses


def test_v2_ipv6_and_unix() -> None:
    h = assert_split_invariant(format_v2("PROXY", "2001:db8::1", "2001:db8::2", 12345, 25))
    assert h.family == "INET6" and h.source_address == "2001:db8::1" and h.destination_port == 25
    assert h.consumed == 16 + 36
    h = assert_split_invariant(format_v2("PROXY", "/run/a.sock", "/run/b.sock", unix=True))
    assert h.family == "UNIX" and h.source_address == "/run/a.sock" and h.source_port is None
    assert h.consumed == 16 + 216
    h = assert_split_invariant(format_v2("PROXY", "10.0.0.1", "10.0.0.2", 5, 6, protocol="DGRAM"))
    assert h.protocol == "DGRAM"


def test_v2_tlvs() -> None:
    ssl = SSLInfo(
        PP2_CLIENT_SSL | PP2_CLIENT_CERT_CONN,
        0,
        version="TLSv1.3",
        cn="client.example",
        cipher="TLS_AES_256_GCM_SHA384",
        sig_alg="SHA256",
        key_alg="RSA2048",
    )
    tlvs = [
        TLV(PP2_TYPE_ALPN, b"smtp"),
        TLV(PP2_TYPE_AUTHORITY, "mx.exämple.org".encode()),
        TLV(PP2_TYPE_UNIQUE_ID, b"\x01" * 128),
        ssl.to_tlv(),
        TLV(PP2_TYPE_NETNS, b"blue"),
        TLV(PP2_TYPE_NOOP, b""),
        TLV(0xE0, b"custom"),
    ]
    data = format_v2("PROXY", "192.0.2.1", "192.0.2.2", 40000, 25, tlvs=tlvs, with_crc32c=True)
    h = assert_split_invariant(data)
    assert h.alpn == b"smtp"
    assert h.authority == "mx.exämple.org"
    assert h.unique_id == b"\x01" * 128
    assert h.netns == "blue"
    assert h.ssl == ssl and h.ssl is not None and h.ssl.ssl and h.ssl.cert_verified
    assert [t.type for t in h.tlvs][-1] == 0x03  # CRC32C appended
    assert TLV(0xE0, b"custom") in h.tlvs
    plain = parse_proxy_header(format_v2("PROXY", "192.0.2.1", "192.0.2.2", 1, 2))
    assert plain is not None and plain.ssl is None and plain.alpn is None and plain.authority is None


def test_v2_crc32c_mismatch() -> None:
    data = bytearray(format_v2("PROXY", "192.0.2.1", "192.0.2.2", 1, 2, with_crc32c=True))
    assert parse_proxy_header(bytes(data)) is not None
    data[20] ^= 0x01  # flip a bit in the addresses
    with pytest.raises(ProxyProtocolError, match="CRC32C"):
        parse_proxy_header(bytes(data))


def test_crc32c_check_value() -> None:
    # The standard CRC-32C check value.
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(b"") == 0


def v2(ver_cmd: int, fam: int, body: bytes) -> bytes:
    return V2_SIGNATURE + struct.pack("!BBH", ver_cmd, fam, len(body)) + body


@pytest.mark.parametrize(
    "data",
    [
        v2(0x11, 0x11, b"\x00" * 12),  # version 1 in the binary form
        v2(0x22, 0x11, b"\x00" * 12),  # command 2
        v2(0x21, 0x41, b"\x00" * 12),  # family 4
        v2(0x21, 0x13, b"\x00" * 12),  # protocol 3
        v2(0x21, 0x11, b"\x00" * 11),  # address block too short
        v2(0x21, 0x21, b"\x00" * 35),
        v2(0x21, 0x11, b"\x00" * 12 + b"\x01\x00"),  # truncated TLV header
        v2(0x21, 0x11, b"\x00" * 12 + b"\x01\x00\x05ab"),  # TLV overruns
        v2(0x21, 0x11, b"\x00" * 12 + b"\x20\x00\x02ab"),  # SSL TLV too short
        v2(0x21, 0x11, b"\x00" * 12 + b"\x20\x00\x07\x01\x00\x00\x00\x00\x21\x00"),  # bad SSL sub-TLV
        v2(0x21, 0x11, b"\x00" * 12 + b"\x05\x00\x81" + b"x" * 129),  # UNIQUE_ID > 128
        v2(0x21, 0x11, b"\x00" * 12 + b"\x03\x00\x02ab"),  # CRC32C wrong size
    ],
)
def test_v2_malformed(data: bytes) -> None:
    with pytest.raises(ProxyProtocolError):
        parse_proxy_header(data)


def test_v2_incomplete_returns_none() -> None:
    data = format_v2("PROXY", "2001:db8::1", "2001:db8::2", 1, 2, tlvs=[TLV(1, b"x" * 300)])
    assert parse_proxy_header(data[:-1]) is None
    assert parse_proxy_header(data + SMTP) is not None


def test_format_v1() -> None:
    assert format_v1("192.168.0.1", "192.168.0.11", 56324, 443) == V1_TCP4
    assert format_v1() == b"PROXY UNKNOWN\r\n"
    assert format_v1("::1", "::2", 1, 2) == b"PROXY TCP6 ::1 ::2 1 2\r\n"
    for args in (("1.2.3.4", "::1", 1, 2), ("1.2.3.4", "5.6.7.8", 1, 70000), ("1.2.3.4", None, 1, 2), ("x", "y", 1, 2)):
        with pytest.raises(ValueError):
            format_v1(*args)


def test_format_v2_validation() -> None:
    with pytest.raises(ValueError):
        format_v2("PROXY", "1.2.3.4", None)
    with pytest.raises(ValueError):
        format_v2("PROXY", "1.2.3.4", "::1")
    with pytest.raises(ValueError):
        format_v2("PROXY", "a" * 109, "b", unix=True)
    with pytest.raises(ValueError):
        format_v2("PROXY", "1.2.3.4", "1.2.3.5", 70000, 1)
    with pytest.raises(ValueError):
        format_v2("MAYBE")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        TLV(256, b"")
    with pytest.raises(ValueError):
        format_v2("PROXY", "1.2.3.4", "1.2.3.5", tlvs=[TLV(1, b"x" * 65535)])


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    try:
        h = parse_proxy_header(data)
    except ProxyProtocolError:
        return
    if h is not None:
        assert 0 < h.consumed <= len(data)


@given(
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=4).map(str),
    st.integers(0, 65535),
    st.integers(0, 65535),
    st.binary(max_size=40),
)
def test_roundtrip_property(src: str, dst: str, sport: int, dport: int, alpn: bytes) -> None:
    for data in (format_v1(src, dst, sport, dport), format_v2("PROXY", src, dst, sport, dport, tlvs=[TLV(1, alpn)])):
        h = parse_proxy_header(data + SMTP)
        assert h is not None and h.consumed == len(data)
        assert (h.source_address, h.destination_address, h.source_port, h.destination_port) == (src, dst, sport, dport)
