"""LISP addresses on the wire: AFI-encoded addresses (RFC 9301) and LCAF (RFC 8060).

An address is one of:

- ``NO_ADDRESS`` (AFI 0), an :class:`ipaddress.IPv4Address` (AFI 1) or :class:`ipaddress.IPv6Address`
  (AFI 2);
- :class:`InstanceIdAddress` (LCAF type 2): an instance-id around another address;
- :class:`AfiListAddress` (LCAF type 1): a list of addresses;
- :class:`UnknownLcafAddress`: any other LCAF type, kept as raw bytes so that it round-trips
  (a peer may send NAT-traversal or ELP locators; we can carry them, not use them).

:class:`EidPrefix` is the mapping system's view of an EID: ``(instance_id, network)``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_network
from typing import Union

from .errors import DecodeError, EncodeError, check_range

AFI_NONE = 0
AFI_IPV4 = 1
AFI_IPV6 = 2
AFI_LCAF = 16387

LCAF_AFI_LIST = 1
LCAF_INSTANCE_ID = 2

#: How deep LCAFs may nest (an Instance-ID around an AFI list around ...). Deeper input is refused,
#: so decoding never recurses without bound.
MAX_LCAF_DEPTH = 4

_LCAF_HEADER = struct.Struct("!BBBBH")  # Rsvd1, Flags, Type, Rsvd2, Length
_U32 = struct.Struct("!I")


@dataclass(frozen=True, slots=True)
class NoAddress:
    """AFI 0: no address (an unknown source EID, say)."""

    def __str__(self) -> str:
        return "no-address"


NO_ADDRESS = NoAddress()


@dataclass(frozen=True, slots=True)
class InstanceIdAddress:
    """LCAF Instance-ID (type 2). ``mask_len`` is the LCAF's IID mask-len byte (Rsvd2): we write the
    EID's mask length there, as deployed implementations do, and keep whatever a peer sent."""

    instance_id: int
    address: "Address"
    mask_len: int = 0

    def __str__(self) -> str:
        return f"[{self.instance_id}]{self.address}"


@dataclass(frozen=True, slots=True)
class AfiListAddress:
    """LCAF AFI List (type 1): several addresses for one thing (an RLOC with IPv4 and IPv6)."""

    addresses: tuple

    def __str__(self) -> str:
        return "(" + ", ".join(str(a) for a in self.addresses) + ")"


@dataclass(frozen=True, slots=True)
class UnknownLcafAddress:
    """An LCAF type this codec does not interpret, carried byte for byte."""

    lcaf_type: int
    payload: bytes
    flags: int = 0
    rsvd2: int = 0

    def __str__(self) -> str:
        return f"lcaf-type-{self.lcaf_type}:{self.payload.hex()}"


Address = Union[NoAddress, IPv4Address, IPv6Address, InstanceIdAddress, AfiListAddress,
                UnknownLcafAddress]


def decode_address(data: bytes, off: int, end: int, what: str = "address",
                   depth: int = 0) -> tuple[Address, int]:
    """Decode one AFI-encoded address from ``data[off:end]``; return it and the offset after it."""
    if end - off < 2:
        raise DecodeError(f"{what}: truncated AFI", off)
    afi = data[off] << 8 | data[off + 1]
    pos = off + 2
    if afi == AFI_IPV4:
        if end - pos < 4:
            raise DecodeError(f"{what}: truncated IPv4 address", pos)
        return IPv4Address(_U32.unpack_from(data, pos)[0]), pos + 4
    if afi == AFI_IPV6:
        if end - pos < 16:
            raise DecodeError(f"{what}: truncated IPv6 address", pos)
        return IPv6Address(int.from_bytes(data[pos:pos + 16], "big")), pos + 16
    if afi == AFI_NONE:
        return NO_ADDRESS, pos
    if afi == AFI_LCAF:
        return _decode_lcaf(data, pos, end, what, depth)
    raise DecodeError(f"{what}: unsupported AFI {afi}", off)


def _decode_lcaf(data: bytes, pos: int, end: int, what: str, depth: int) -> tuple[Address, int]:
    if depth >= MAX_LCAF_DEPTH:
        raise DecodeError(f"{what}: LCAF nested deeper than {MAX_LCAF_DEPTH}", pos)
    if end - pos < 6:
        raise DecodeError(f"{what}: truncated LCAF header", pos)
    _rsvd1, flags, lcaf_type, rsvd2, length = _LCAF_HEADER.unpack_from(data, pos)
    start = pos + 6
    stop = start + length
    if stop > end:
        raise DecodeError(f"{what}: LCAF length {length} runs past the end ({end - start} bytes left)",
                          pos + 4)
    if lcaf_type == LCAF_INSTANCE_ID:
        if length < 6:
            raise DecodeError(f"{what}: LCAF Instance-ID length {length} < 6", pos + 4)
        iid = _U32.unpack_from(data, start)[0]
        inner, after = decode_address(data, start + 4, stop, what, depth + 1)
        if after != stop:
            raise DecodeError(f"{what}: LCAF Instance-ID length {length} leaves {stop - after} "
                              "bytes after its address", after)
        return InstanceIdAddress(iid, inner, rsvd2), stop
    if lcaf_type == LCAF_AFI_LIST:
        items = []
        cur = start
        while cur < stop:
            item, cur = decode_address(data, cur, stop, what, depth + 1)
            items.append(item)
        return AfiListAddress(tuple(items)), stop
    return UnknownLcafAddress(lcaf_type, bytes(data[start:stop]), flags, rsvd2), stop


def encode_address(addr: Address, depth: int = 0) -> bytes:
    """The wire form of an address (AFI and body). ``depth`` counts the LCAFs around it: like the
    decoder, the encoder refuses LCAFs nested deeper than :data:`MAX_LCAF_DEPTH`."""
    kind = type(addr)
    if kind is IPv4Address:
        return b"\x00\x01" + addr.packed
    if kind is IPv6Address:
        return b"\x00\x02" + addr.packed
    if kind is NoAddress:
        return b"\x00\x00"
    if kind in (InstanceIdAddress, AfiListAddress, UnknownLcafAddress) and depth >= MAX_LCAF_DEPTH:
        raise EncodeError(f"LCAFs nested deeper than {MAX_LCAF_DEPTH}")
    if kind is InstanceIdAddress:
        check_range("instance_id", addr.instance_id, 32)
        check_range("IID mask_len", addr.mask_len, 8)
        body = _U32.pack(addr.instance_id) + encode_address(addr.address, depth + 1)
        return _lcaf(0, LCAF_INSTANCE_ID, addr.mask_len, body)
    if kind is AfiListAddress:
        return _lcaf(0, LCAF_AFI_LIST, 0,
                     b"".join(encode_address(a, depth + 1) for a in addr.addresses))
    if kind is UnknownLcafAddress:
        check_range("LCAF type", addr.lcaf_type, 8)
        if addr.lcaf_type in (LCAF_AFI_LIST, LCAF_INSTANCE_ID):
            meant = "AfiListAddress" if addr.lcaf_type == LCAF_AFI_LIST else "InstanceIdAddress"
            raise EncodeError(f"LCAF type {addr.lcaf_type} is decoded as {meant}, not carried raw")
        check_range("LCAF flags", addr.flags, 8)
        check_range("LCAF rsvd2", addr.rsvd2, 8)
        return _lcaf(addr.flags, addr.lcaf_type, addr.rsvd2, addr.payload)
    raise EncodeError(f"not a LISP address: {addr!r}")


def _lcaf(flags: int, lcaf_type: int, rsvd2: int, body: bytes) -> bytes:
    if len(body) > 0xFFFF:
        raise EncodeError(f"LCAF type {lcaf_type} body of {len(body)} bytes exceeds 65535")
    return b"\x40\x03" + _LCAF_HEADER.pack(0, flags, lcaf_type, rsvd2, len(body)) + body


def max_mask_len(addr: Address) -> int | None:
    """The longest mask an address admits (32, 128), or None where masks do not apply."""
    while type(addr) is InstanceIdAddress:
        addr = addr.address
    if type(addr) is IPv4Address:
        return 32
    if type(addr) is IPv6Address:
        return 128
    return None


_NEW = object.__new__
_SET = object.__setattr__
_IPV4_NETMASKS = tuple(IPv4Network((0, plen)).netmask for plen in range(33))


def ipv4_network(value: int, plen: int) -> IPv4Network:
    """``IPv4Network((value, plen))`` for a 32-bit ``value`` without host bits and 0 <= ``plen``
    <= 32 (unchecked), built from the integers without the constructor's parsing: about a
    quarter of its cost. It compares, hashes, prints and answers as the constructor's network
    does, but for ``hosts()`` of a /31 or /32, which is the generic method's (nothing here asks
    for hosts; Python 3.11's constructor also gives such networks a per-object closure for it,
    which this leaves out)."""
    address = _NEW(IPv4Address)
    address._ip = value
    network = _NEW(IPv4Network)
    network.network_address = address
    network.netmask = _IPV4_NETMASKS[plen]
    network._prefixlen = plen
    return network


@dataclass(frozen=True, slots=True)
class EidPrefix:
    """An EID prefix as the mapping system sees it: an instance-id and an IP network.

    Written ``[iid]prefix`` (e.g. ``[1000]10.1.0.0/24``); ``prefix`` alone means instance-id 0.
    """

    instance_id: int
    network: IPv4Network | IPv6Network
    # the hash, computed once: a prefix is a key of several dicts on every mapping's way (the
    # map-cache, the installer, probing), and ipaddress hashes a network in Python each time
    _hash: int = field(init=False, repr=False, compare=False, default=0)

    def __post_init__(self) -> None:
        iid = self.instance_id
        if not isinstance(iid, int) or not 0 <= iid < 1 << 24:
            raise ValueError(f"instance-id {iid!r} is not a 24-bit number")
        net = self.network
        try:  # (equal prefixes have equal addresses and lengths: integers hash in C)
            key = hash((iid, int(net.network_address), net.prefixlen))
        except (AttributeError, TypeError):
            key = hash((iid, net))
        object.__setattr__(self, "_hash", key)

    def __hash__(self) -> int:
        return self._hash

    @classmethod
    def ipv4(cls, instance_id: int, value: int, plen: int) -> "EidPrefix":
        """``EidPrefix(instance_id, IPv4Network((value, plen)))`` for arguments known good (a
        24-bit instance-id, a 32-bit address without host bits, 0 <= plen <= 32), built without
        checks or parsing: bulk loads build 100,000s. Equal to, and hashing as, the checked
        construction."""
        prefix = _NEW(cls)
        _SET(prefix, "instance_id", instance_id)
        _SET(prefix, "network", ipv4_network(value, plen))
        _SET(prefix, "_hash", hash((instance_id, value, plen)))
        return prefix

    @classmethod
    def parse(cls, text: str, default_instance_id: int = 0) -> "EidPrefix":
        """Parse ``[iid]prefix`` or ``prefix`` (instance-id ``default_instance_id``); host bits
        must be zero."""
        text = text.strip()
        iid = default_instance_id
        if text.startswith("["):
            close = text.find("]")
            if close < 0:
                raise ValueError(f"EID prefix {text!r}: '[' without ']'")
            try:
                iid = int(text[1:close])
            except ValueError:
                raise ValueError(f"EID prefix {text!r}: instance-id is not a number") from None
            text = text[close + 1:]
        return cls(iid, ip_network(text, strict=True))

    @classmethod
    def from_wire(cls, addr: Address, mask_len: int) -> "EidPrefix":
        """The prefix an EID record names (host bits beyond the mask are cleared)."""
        iid = 0
        if type(addr) is InstanceIdAddress:
            iid = addr.instance_id & 0xFFFFFF
            addr = addr.address
        kind = type(addr)
        if kind is IPv4Address:  # from the address's integer: no detour through its text
            return cls(iid, IPv4Network((int(addr), mask_len), strict=False))
        if kind is IPv6Address:
            return cls(iid, IPv6Network((int(addr), mask_len), strict=False))
        raise ValueError(f"EID {addr} is not an IP address")

    def to_wire(self) -> tuple[Address, int]:
        """(address, mask_len) for an EID record: an Instance-ID LCAF when the instance-id is not 0."""
        addr = self.network.network_address
        plen = self.network.prefixlen
        if self.instance_id:
            return InstanceIdAddress(self.instance_id, addr, plen), plen
        return addr, plen

    def contains(self, other: "EidPrefix") -> bool:
        """True when ``other`` lies inside this prefix (same instance-id and family): it is at
        least as long and agrees on this prefix's bits (``subnet_of``, in integers)."""
        mine, theirs = self.network, other.network
        if self.instance_id != other.instance_id or mine.version != theirs.version:
            return False
        plen = mine.prefixlen
        if theirs.prefixlen < plen:
            return False
        shift = mine.max_prefixlen - plen
        return int(theirs.network_address) >> shift == int(mine.network_address) >> shift

    def __str__(self) -> str:
        return f"[{self.instance_id}]{self.network}" if self.instance_id else str(self.network)
