"""HAProxy PROXY protocol, versions 1 and 2 (with TLVs): a pure, incremental parser.

A load balancer in front of an SMTP server prepends one header to the
connection, before any SMTP byte, telling the real client and server
addresses. :func:`parse_proxy_header` reads it from the start of a buffer:
it returns None while more bytes are needed, a :class:`ProxyHeader` (with
``consumed``, the number of bytes to drop) once complete, and raises
:class:`ProxyProtocolError` as soon as the bytes cannot be a valid header, so
a server can close the connection (SECURITY: a missing or garbage header must
never be taken as SMTP).

Reference: the HAProxy "PROXY protocol" specification (versions 1 and 2),
sections 2.1 (human-readable v1), 2.2 (binary v2) and 2.2.x (TLVs).
:func:`format_v1` / :func:`format_v2` produce headers for clients and tests.
"""

from __future__ import annotations

import ipaddress
import re
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

__all__ = [
    "ProxyProtocolError",
    "TLV",
    "SSLInfo",
    "ProxyHeader",
    "parse_proxy_header",
    "format_v1",
    "format_v2",
    "crc32c",
    "V1_MAX_LENGTH",
    "V2_SIGNATURE",
    "PP2_TYPE_ALPN",
    "PP2_TYPE_AUTHORITY",
    "PP2_TYPE_CRC32C",
    "PP2_TYPE_NOOP",
    "PP2_TYPE_UNIQUE_ID",
    "PP2_TYPE_SSL",
    "PP2_SUBTYPE_SSL_VERSION",
    "PP2_SUBTYPE_SSL_CN",
    "PP2_SUBTYPE_SSL_CIPHER",
    "PP2_SUBTYPE_SSL_SIG_ALG",
    "PP2_SUBTYPE_SSL_KEY_ALG",
    "PP2_TYPE_NETNS",
    "PP2_CLIENT_SSL",
    "PP2_CLIENT_CERT_CONN",
    "PP2_CLIENT_CERT_SESS",
]

#: Spec §2.1: a v1 header is at most 107 bytes including the CRLF.
V1_MAX_LENGTH: Final = 107
#: Spec §2.2: the 12-byte v2 signature.
V2_SIGNATURE: Final = b"\r\n\r\n\x00\r\nQUIT\n"
_V1_PREFIX: Final = b"PROXY "

# Spec §2.2.x TLV types.
PP2_TYPE_ALPN: Final = 0x01
PP2_TYPE_AUTHORITY: Final = 0x02
PP2_TYPE_CRC32C: Final = 0x03
PP2_TYPE_NOOP: Final = 0x04
PP2_TYPE_UNIQUE_ID: Final = 0x05
PP2_TYPE_SSL: Final = 0x20
PP2_SUBTYPE_SSL_VERSION: Final = 0x21
PP2_SUBTYPE_SSL_CN: Final = 0x22
PP2_SUBTYPE_SSL_CIPHER: Final = 0x23
PP2_SUBTYPE_SSL_SIG_ALG: Final = 0x24
PP2_SUBTYPE_SSL_KEY_ALG: Final = 0x25
PP2_TYPE_NETNS: Final = 0x30
# PP2_TYPE_SSL "client" bit field.
PP2_CLIENT_SSL: Final = 0x01
PP2_CLIENT_CERT_CONN: Final = 0x02
PP2_CLIENT_CERT_SESS: Final = 0x04

Family = Literal["UNSPEC", "INET", "INET6", "UNIX"]
Protocol = Literal["UNSPEC", "STREAM", "DGRAM"]
_FAMILIES: Final[dict[int, Family]] = {0: "UNSPEC", 1: "INET", 2: "INET6", 3: "UNIX"}
_FAMILY_CODES: Final[dict[str, int]] = {v: k for k, v in _FAMILIES.items()}
_PROTOCOLS: Final[dict[int, Protocol]] = {0: "UNSPEC", 1: "STREAM", 2: "DGRAM"}
_PROTOCOL_CODES: Final[dict[str, int]] = {v: k for k, v in _PROTOCOLS.items()}
# Spec §2.2: address block sizes per family.
_ADDR_LEN: Final[dict[Family, int]] = {"UNSPEC": 0, "INET": 12, "INET6": 36, "UNIX": 216}


class ProxyProtocolError(ValueError):
    """The connection does not start with a valid PROXY protocol header."""


@dataclass(frozen=True, slots=True)
class TLV:
    """One v2 Type-Length-Value field (spec §2.2.x)."""

    type: int
    value: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.type <= 255:
            raise ValueError("TLV type must be 0..255")
        if len(self.value) > 0xFFFF:
            raise ValueError("TLV value longer than 65535 bytes")

    def to_bytes(self) -> bytes:
        """Wire form: type, big-endian 16-bit length, value."""
        return struct.pack("!BH", self.type, len(self.value)) + self.value


@dataclass(frozen=True, slots=True)
class SSLInfo:
    """The PP2_TYPE_SSL TLV (spec §2.2.5): how the client reached the proxy.

    ``client`` is the bit field (PP2_CLIENT_*); ``verify`` is 0 when a
    client certificate was presented and verified; the sub-TLVs are decoded
    into ``version``, ``cn``, ``cipher``, ``sig_alg``, ``key_alg``.
    """

    client: int
    verify: int
    version: str | None = None
    cn: str | None = None
    cipher: str | None = None
    sig_alg: str | None = None
    key_alg: str | None = None
    tlvs: tuple[TLV, ...] = ()

    @property
    def ssl(self) -> bool:
        """The client connected to the proxy over TLS."""
        return bool(self.client & PP2_CLIENT_SSL)

    @property
    def cert_verified(self) -> bool:
        """A client certificate was presented (this connection or session) and verified."""
        return bool(self.client & (PP2_CLIENT_CERT_CONN | PP2_CLIENT_CERT_SESS)) and self.verify == 0

    def to_tlv(self) -> TLV:
        """Encode back into a PP2_TYPE_SSL TLV."""
        subs = list(self.tlvs)
        for subtype, value in (
            (PP2_SUBTYPE_SSL_VERSION, self.version),
            (PP2_SUBTYPE_SSL_CN, self.cn),
            (PP2_SUBTYPE_SSL_CIPHER, self.cipher),
            (PP2_SUBTYPE_SSL_SIG_ALG, self.sig_alg),
            (PP2_SUBTYPE_SSL_KEY_ALG, self.key_alg),
        ):
            if value is not None:
                subs.append(TLV(subtype, value.encode("utf-8")))
        body = struct.pack("!BI", self.client, self.verify) + b"".join(t.to_bytes() for t in subs)
        return TLV(PP2_TYPE_SSL, body)


@dataclass(frozen=True, slots=True)
class ProxyHeader:
    """A parsed PROXY protocol header.

    ``command`` is "PROXY" (addresses are those of the real client) or
    "LOCAL" (v2: a connection made by the proxy itself, e.g. a health check;
    use the real socket endpoints). For family "UNSPEC" (v2 UNSPEC or v1
    ``UNKNOWN``) the addresses are None. ``consumed`` is the number of bytes
    of the buffer that belong to the header.
    """

    version: Literal[1, 2]
    command: Literal["PROXY", "LOCAL"]
    family: Family
    protocol: Protocol
    source_address: str | None
    source_port: int | None
    destination_address: str | None
    destination_port: int | None
    consumed: int
    tlvs: tuple[TLV, ...] = field(default=())

    def _tlv(self, type_: int) -> bytes | None:
        for tlv in self.tlvs:
            if tlv.type == type_:
                return tlv.value
        return None

    @property
    def use_addresses(self) -> bool:
        """True if the application should use the addresses given here."""
        return self.command == "PROXY" and self.family != "UNSPEC"

    @property
    def alpn(self) -> bytes | None:
        """PP2_TYPE_ALPN: the negotiated application protocol."""
        return self._tlv(PP2_TYPE_ALPN)

    @property
    def authority(self) -> str | None:
        """PP2_TYPE_AUTHORITY: the host name the client asked for (TLS SNI)."""
        value = self._tlv(PP2_TYPE_AUTHORITY)
        return None if value is None else value.decode("utf-8", "replace")

    @property
    def unique_id(self) -> bytes | None:
        """PP2_TYPE_UNIQUE_ID: an opaque connection id (at most 128 bytes)."""
        return self._tlv(PP2_TYPE_UNIQUE_ID)

    @property
    def netns(self) -> str | None:
        """PP2_TYPE_NETNS: the network namespace name."""
        value = self._tlv(PP2_TYPE_NETNS)
        return None if value is None else value.decode("ascii", "replace")

    @property
    def ssl(self) -> SSLInfo | None:
        """PP2_TYPE_SSL, decoded (None if absent)."""
        value = self._tlv(PP2_TYPE_SSL)
        return None if value is None else _parse_ssl(value)


# ---------------------------------------------------------------------------
# CRC32C (Castagnoli), for PP2_TYPE_CRC32C (spec §2.2.3)
# ---------------------------------------------------------------------------


def _crc32c_table() -> list[int]:
    poly = 0x82F63B78  # reflected Castagnoli polynomial
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE: Final = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of *data*, as used by PP2_TYPE_CRC32C."""
    crc = 0xFFFFFFFF
    for b in data:
        crc = _CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


# ---------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------

_PORT_RE: Final = re.compile(rb"0|[1-9][0-9]{0,4}\Z")


def _v1_port(raw: bytes) -> int:
    if not _PORT_RE.fullmatch(raw) or int(raw) > 65535:
        raise ProxyProtocolError("PROXY v1: invalid port")
    return int(raw)


def _parse_v1(buf: bytes) -> ProxyHeader | None:
    end = buf.find(b"\r\n", 0, V1_MAX_LENGTH)
    if end < 0:
        if len(buf) >= V1_MAX_LENGTH:
            raise ProxyProtocolError("PROXY v1 header longer than 107 bytes")
        if b"\n" in buf or b"\r" in buf[:-1]:
            raise ProxyProtocolError("PROXY v1 header not terminated by CRLF")
        return None
    line = buf[:end]
    consumed = end + 2
    parts = line.split(b" ")
    if len(parts) >= 2 and parts[1] == b"UNKNOWN":
        # Spec §2.1: the rest of the line is ignored; use the real endpoints.
        return ProxyHeader(1, "PROXY", "UNSPEC", "UNSPEC", None, None, None, None, consumed)
    if len(parts) != 6 or parts[0] != b"PROXY":
        raise ProxyProtocolError("PROXY v1: malformed header")
    proto = parts[1]
    try:
        if proto == b"TCP4":
            family: Family = "INET"
            src = str(ipaddress.IPv4Address(parts[2].decode("ascii")))
            dst = str(ipaddress.IPv4Address(parts[3].decode("ascii")))
        elif proto == b"TCP6":
            family = "INET6"
            src = str(ipaddress.IPv6Address(parts[2].decode("ascii")))
            dst = str(ipaddress.IPv6Address(parts[3].decode("ascii")))
        else:
            raise ProxyProtocolError("PROXY v1: unknown protocol")
    except (ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, ProxyProtocolError):
            raise
        raise ProxyProtocolError("PROXY v1: invalid address") from None
    return ProxyHeader(
        1, "PROXY", family, "STREAM", src, _v1_port(parts[4]), dst, _v1_port(parts[5]), consumed
    )


def _parse_tlvs(data: bytes, what: str) -> tuple[TLV, ...]:
    out: list[TLV] = []
    i = 0
    while i < len(data):
        if len(data) - i < 3:
            raise ProxyProtocolError(f"PROXY v2: truncated {what} TLV header")
        type_, length = struct.unpack_from("!BH", data, i)
        i += 3
        if len(data) - i < length:
            raise ProxyProtocolError(f"PROXY v2: {what} TLV overruns the header")
        out.append(TLV(type_, bytes(data[i : i + length])))
        i += length
    return tuple(out)


def _parse_ssl(value: bytes) -> SSLInfo:
    if len(value) < 5:
        raise ProxyProtocolError("PROXY v2: PP2_TYPE_SSL shorter than 5 bytes")
    client, verify = struct.unpack_from("!BI", value, 0)
    subs = _parse_tlvs(value[5:], "SSL sub-")
    known: dict[int, str] = {}
    rest: list[TLV] = []
    for t in subs:
        if t.type in (
            PP2_SUBTYPE_SSL_VERSION,
            PP2_SUBTYPE_SSL_CN,
            PP2_SUBTYPE_SSL_CIPHER,
            PP2_SUBTYPE_SSL_SIG_ALG,
            PP2_SUBTYPE_SSL_KEY_ALG,
        ):
            known[t.type] = t.value.decode("utf-8", "replace")
        else:
            rest.append(t)
    return SSLInfo(
        client,
        verify,
        known.get(PP2_SUBTYPE_SSL_VERSION),
        known.get(PP2_SUBTYPE_SSL_CN),
        known.get(PP2_SUBTYPE_SSL_CIPHER),
        known.get(PP2_SUBTYPE_SSL_SIG_ALG),
        known.get(PP2_SUBTYPE_SSL_KEY_ALG),
        tuple(rest),
    )


def _unix_path(raw: bytes) -> str:
    return raw.split(b"\x00", 1)[0].decode("utf-8", "surrogateescape")


def _parse_v2(buf: bytes) -> ProxyHeader | None:
    if len(buf) < 16:
        return None
    ver_cmd, fam_proto, length = struct.unpack_from("!BBH", buf, 12)
    if ver_cmd >> 4 != 2:
        raise ProxyProtocolError("PROXY v2: unsupported version")
    cmd = ver_cmd & 0x0F
    if cmd not in (0, 1):
        raise ProxyProtocolError("PROXY v2: unknown command")
    family = _FAMILIES.get(fam_proto >> 4)
    protocol = _PROTOCOLS.get(fam_proto & 0x0F)
    if family is None or protocol is None:
        raise ProxyProtocolError("PROXY v2: unknown address family or protocol")
    total = 16 + length
    if len(buf) < total:
        return None
    body = bytes(buf[16:total])
    need = _ADDR_LEN[family]
    if len(body) < need:
        raise ProxyProtocolError("PROXY v2: address block shorter than its family needs")
    command: Literal["PROXY", "LOCAL"] = "PROXY" if cmd == 1 else "LOCAL"
    src: str | None = None
    dst: str | None = None
    sport: int | None = None
    dport: int | None = None
    if family == "INET":
        src = str(ipaddress.IPv4Address(body[0:4]))
        dst = str(ipaddress.IPv4Address(body[4:8]))
        sport, dport = struct.unpack_from("!HH", body, 8)
    elif family == "INET6":
        src = str(ipaddress.IPv6Address(body[0:16]))
        dst = str(ipaddress.IPv6Address(body[16:32]))
        sport, dport = struct.unpack_from("!HH", body, 32)
    elif family == "UNIX":
        src = _unix_path(body[0:108])
        dst = _unix_path(body[108:216])
    tlvs = _parse_tlvs(body[need:], "")
    for tlv in tlvs:
        if tlv.type == PP2_TYPE_CRC32C:
            # Spec §2.2.3: the checksum covers the whole header with this
            # field's value set to zero.
            if len(tlv.value) != 4:
                raise ProxyProtocolError("PROXY v2: CRC32C TLV must be 4 bytes")
            offset = _tlv_value_offset(body, need, PP2_TYPE_CRC32C) + 16
            zeroed = bytes(buf[:offset]) + b"\x00\x00\x00\x00" + bytes(buf[offset + 4 : total])
            if crc32c(zeroed) != struct.unpack("!I", tlv.value)[0]:
                raise ProxyProtocolError("PROXY v2: CRC32C mismatch")
        elif tlv.type == PP2_TYPE_UNIQUE_ID and len(tlv.value) > 128:
            raise ProxyProtocolError("PROXY v2: UNIQUE_ID longer than 128 bytes")
        elif tlv.type == PP2_TYPE_SSL:
            _parse_ssl(tlv.value)
    return ProxyHeader(2, command, family, protocol, src, sport, dst, dport, total, tlvs)


def _tlv_value_offset(body: bytes, start: int, type_: int) -> int:
    i = start
    while i < len(body):
        t, length = struct.unpack_from("!BH", body, i)
        if t == type_:
            return i + 3
        i += 3 + length
    raise ProxyProtocolError("PROXY v2: TLV not found")  # pragma: no cover - guarded by caller


def parse_proxy_header(
    buf: bytes | bytearray, *, allow_v1: bool = True, allow_v2: bool = True
) -> ProxyHeader | None:
    """Parse a PROXY protocol header from the start of *buf*.

    Returns None if more bytes are needed, a :class:`ProxyHeader` when the
    header is complete (drop ``consumed`` bytes, the rest is SMTP), or raises
    :class:`ProxyProtocolError` when *buf* does not start with a valid header
    (a missing header, garbage, a v1 line over 107 bytes, a disallowed
    version). The decision never depends on how the bytes were split.
    """
    data = bytes(buf[: 16 + 0xFFFF])
    n = len(data)
    could_v1 = allow_v1 and data[: len(_V1_PREFIX)] == _V1_PREFIX[: min(n, len(_V1_PREFIX))]
    could_v2 = allow_v2 and data[: len(V2_SIGNATURE)] == V2_SIGNATURE[: min(n, len(V2_SIGNATURE))]
    if not could_v1 and not could_v2:
        raise ProxyProtocolError("connection does not start with a PROXY protocol header")
    if could_v2 and n >= len(V2_SIGNATURE):
        return _parse_v2(data)
    if could_v1 and n >= len(_V1_PREFIX):
        return _parse_v1(data)
    return None


# ---------------------------------------------------------------------------
# Formatting
# ---------------------------------------------------------------------------


def format_v1(
    source_address: str | None = None,
    destination_address: str | None = None,
    source_port: int | None = None,
    destination_port: int | None = None,
) -> bytes:
    """A v1 header; with no addresses, ``PROXY UNKNOWN\\r\\n``.

    The family (TCP4/TCP6) follows the addresses, which must agree.
    """
    if source_address is None and destination_address is None:
        return b"PROXY UNKNOWN\r\n"
    if source_address is None or destination_address is None or source_port is None or destination_port is None:
        raise ValueError("give both addresses and both ports, or none")
    src = ipaddress.ip_address(source_address)
    dst = ipaddress.ip_address(destination_address)
    if src.version != dst.version:
        raise ValueError("source and destination must be the same address family")
    for port in (source_port, destination_port):
        if not 0 <= port <= 65535:
            raise ValueError("port out of range")
    proto = "TCP4" if src.version == 4 else "TCP6"
    line = f"PROXY {proto} {src} {dst} {source_port} {destination_port}\r\n".encode("ascii")
    assert len(line) <= V1_MAX_LENGTH
    return line


def format_v2(
    command: Literal["PROXY", "LOCAL"] = "PROXY",
    source_address: str | None = None,
    destination_address: str | None = None,
    source_port: int = 0,
    destination_port: int = 0,
    *,
    protocol: Protocol = "STREAM",
    unix: bool = False,
    tlvs: Iterable[TLV] = (),
    with_crc32c: bool = False,
) -> bytes:
    """A v2 header.

    IP addresses pick INET or INET6; ``unix=True`` treats them as socket
    paths (at most 108 bytes each); no addresses gives family UNSPEC. With
    *with_crc32c* a PP2_TYPE_CRC32C TLV is appended and filled in.
    """
    if command not in ("PROXY", "LOCAL"):
        raise ValueError("command must be PROXY or LOCAL")
    family: Family
    if source_address is None and destination_address is None:
        # Spec §2.2: with no addresses the family and protocol are UNSPEC.
        family, addr, protocol = "UNSPEC", b"", "UNSPEC"
    elif source_address is None or destination_address is None:
        raise ValueError("give both addresses or none")
    elif unix:
        family = "UNIX"
        s, d = source_address.encode("utf-8"), destination_address.encode("utf-8")
        if len(s) > 108 or len(d) > 108:
            raise ValueError("UNIX socket path longer than 108 bytes")
        addr = s.ljust(108, b"\x00") + d.ljust(108, b"\x00")
    else:
        src = ipaddress.ip_address(source_address)
        dst = ipaddress.ip_address(destination_address)
        if src.version != dst.version:
            raise ValueError("source and destination must be the same address family")
        for port in (source_port, destination_port):
            if not 0 <= port <= 65535:
                raise ValueError("port out of range")
        family = "INET" if src.version == 4 else "INET6"
        addr = src.packed + dst.packed + struct.pack("!HH", source_port, destination_port)
    tlv_list: Sequence[TLV] = list(tlvs)
    body = addr + b"".join(t.to_bytes() for t in tlv_list)
    if with_crc32c:
        body += TLV(PP2_TYPE_CRC32C, b"\x00\x00\x00\x00").to_bytes()
    if len(body) > 0xFFFF:
        raise ValueError("PROXY v2 header too long")
    ver_cmd = 0x20 | (1 if command == "PROXY" else 0)
    fam_proto = (_FAMILY_CODES[family] << 4) | _PROTOCOL_CODES[protocol]
    header = V2_SIGNATURE + struct.pack("!BBH", ver_cmd, fam_proto, len(body)) + body
    if with_crc32c:
        checksum = crc32c(header)
        header = header[:-4] + struct.pack("!I", checksum)
    return header
