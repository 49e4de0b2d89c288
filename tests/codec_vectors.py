"""Example LISP messages for the codec tests: named valid messages of every type, a seeded random
generator of valid messages (plain Python, no hypothesis, so the fuzzer is deterministic), and
wire helpers written independently of the codec (a byte-by-byte RFC 1071 checksum and hand-built
ECM inner IPv4/IPv6 + UDP headers).

``CONTROL_VECTORS`` maps a name to a control message object; ``DATA_HEADER_VECTORS`` does the same
for data headers. Every vector is well formed with all reserved bits zero, so
``decode_control(m.encode()) == m`` and ``decode_control(b).encode() == b`` must hold for each.
"""

from __future__ import annotations

import random
import struct
from dataclasses import replace
from ipaddress import IPv4Address, IPv6Address, ip_address

from lisp_app.protocol import (GPE_ETHERNET, GPE_IPV4, GPE_IPV6, GPE_NSH, NO_ADDRESS, Action,
                               AfiListAddress, DataHeader, EidRecord, EncapsulatedControlMessage,
                               InstanceIdAddress, Locator, MapNotify, MapNotifyAck, MapRegister,
                               MapReply, MapRequest, MappingRecord, UnknownLcafAddress, sign)

#: How many LCAFs may nest inside one another (the codec's MAX_LCAF_DEPTH, restated here so a
#: change to the codec's limit is noticed by the tests rather than silently followed).
LCAF_NESTING_LIMIT = 4

AUTH_KEY = b"codec-test-key"


def ip(text: str) -> IPv4Address | IPv6Address:
    """Shorthand for :func:`ipaddress.ip_address`."""
    return ip_address(text)


# --- named valid messages -------------------------------------------------------------------------

V4_EID = ip("10.1.0.0")
V6_EID = ip("2001:db8:1::")
V4_RLOC_A, V4_RLOC_B = ip("192.0.2.1"), ip("198.51.100.7")
V6_RLOC_A, V6_RLOC_B = ip("2001:db8:ff::1"), ip("2001:db8:ff::2")

DUAL_STACK_RLOC = AfiListAddress((V4_RLOC_A, V6_RLOC_A))
#: An ELP-like LCAF (type 10) the codec does not interpret: it must be carried byte for byte.
OPAQUE_LCAF = UnknownLcafAddress(10, bytes.fromhex("0000000100c000020a"), flags=0x5A, rsvd2=0x11)

TWO_LOCATORS = (
    Locator(V4_RLOC_A, priority=1, weight=60, m_priority=255, m_weight=0, local=True),
    Locator(V4_RLOC_B, priority=2, weight=40, m_priority=9, m_weight=10, probed=True,
            reachable=False),
)

MAPPING_V4 = MappingRecord(V4_EID, 24, TWO_LOCATORS, ttl=1440, authoritative=True, map_version=7)
MAPPING_V6_IID = MappingRecord(InstanceIdAddress(0xFFFFFF, V6_EID, 48), 48,
                               (Locator(V6_RLOC_A), Locator(V6_RLOC_B, priority=255, weight=0)),
                               ttl=60)
MAPPING_MIXED_LOCATORS = MappingRecord(
    InstanceIdAddress(1000, ip("10.2.0.0"), 16), 16,
    (Locator(DUAL_STACK_RLOC, local=True, probed=True, reachable=True),
     Locator(OPAQUE_LCAF, priority=3, weight=0),
     Locator(InstanceIdAddress(7, V6_RLOC_B, 0), priority=4, weight=1, reachable=False),
     Locator(NO_ADDRESS, priority=255)),
    ttl=0xFFFFFFFF, map_version=0xFFF)


def _negative(action: int, **kwargs) -> MappingRecord:
    return MappingRecord(ip("10.128.0.0"), 9, (), ttl=15, action=action, **kwargs)


CONTROL_VECTORS: dict[str, object] = {
    # --- Map-Request -------------------------------------------------------------------------
    "request-ipv4": MapRequest(0x0102030405060708, (EidRecord(ip("10.1.0.0"), 24),),
                               (V4_RLOC_A,), ip("10.1.0.5")),
    "request-ipv6-flags-p-s": MapRequest(
        0xFEDCBA9876543210, (EidRecord(V6_EID, 48),), (V6_RLOC_A,), ip("2001:db8:1::5"),
        probe=True, smr_invoked=True),
    "request-iid-three-records-all-flags": MapRequest(
        0xFFFFFFFFFFFFFFFF,
        (EidRecord(InstanceIdAddress(1000, ip("10.1.0.0"), 24), 24),
         EidRecord(InstanceIdAddress(0xFFFFFF, V6_EID, 128), 128),
         EidRecord(ip("0.0.0.0"), 0)),
        (V4_RLOC_A, V6_RLOC_A, V4_RLOC_B), InstanceIdAddress(1000, ip("10.1.0.5"), 32),
        authoritative=True, smr=True, pitr=True, local_xtr=True, dont_map_reply=True),
    "request-no-source-eid": MapRequest(0, (EidRecord(ip("192.168.0.1"), 32),), (V4_RLOC_B,)),
    "request-afi-list-itr-rloc": MapRequest(
        42, (EidRecord(ip("2001:db8::"), 32),), (DUAL_STACK_RLOC, V6_RLOC_B)),
    "request-unknown-lcaf-eid": MapRequest(43, (EidRecord(OPAQUE_LCAF, 200),), (V4_RLOC_A,)),
    "request-32-itr-rlocs": MapRequest(
        44, (EidRecord(ip("10.0.0.0"), 8),),
        tuple(ip(f"192.0.2.{i}") for i in range(1, 33))),
    "request-probe-with-map-reply-record": MapRequest(
        0x1122334455667788, (EidRecord(V4_EID, 24),), (V4_RLOC_A,), ip("10.1.0.1"),
        probe=True, map_reply_record=MAPPING_V4),
    "request-smr-with-negative-map-reply-record": MapRequest(
        45, (EidRecord(V6_EID, 48),), (V6_RLOC_A,), smr=True,
        map_reply_record=_negative(Action.NATIVELY_FORWARD)),

    # --- Map-Reply ---------------------------------------------------------------------------
    "reply-ipv4-two-locators": MapReply(0xAABBCCDDEEFF0011, (MAPPING_V4,)),
    "reply-ipv6-iid": MapReply(1, (MAPPING_V6_IID,)),
    "reply-mixed-lcaf-locators": MapReply(2, (MAPPING_MIXED_LOCATORS,)),
    "reply-three-records": MapReply(3, (MAPPING_V4, MAPPING_V6_IID, MAPPING_MIXED_LOCATORS)),
    "reply-no-records": MapReply(4),
    "reply-probe-echo-nonce": MapReply(5, (MAPPING_V4,), probe=True, echo_nonce_capable=True),
    "reply-negative-every-action": MapReply(6, tuple(
        _negative(action, authoritative=bool(action & 1)) for action in Action)),
    "reply-negative-unassigned-actions": MapReply(7, (_negative(6), _negative(7, map_version=1))),
    "reply-security-data": MapReply(8, (MAPPING_V4,), security=True,
                                    security_data=bytes(range(40))),
    "reply-security-bit-no-data": MapReply(9, (MAPPING_V6_IID,), security=True),
    "reply-security-no-records": MapReply(10, security=True, security_data=b"\x01\x02\x03"),

    # --- Map-Register, Map-Notify, Map-Notify-Ack --------------------------------------------
    "register-unsigned": MapRegister(0x0A0B0C0D, (MAPPING_V4,)),
    "register-sha1": sign(MapRegister(11, (MAPPING_V4, MAPPING_V6_IID), want_map_notify=True),
                          AUTH_KEY, 1),
    "register-sha256-xtr-id-all-flags": sign(
        MapRegister(12, (MAPPING_MIXED_LOCATORS,), proxy_reply=True, security_capable=True,
                    want_map_notify=True, xtr_id=(1 << 128) - 1, site_id=0x0123456789ABCDEF),
        AUTH_KEY, 2),
    "register-sha1-96": sign(MapRegister(13, (MAPPING_V4,)), AUTH_KEY, 1, truncated=True),
    "register-sha256-128-xtr-id": sign(
        MapRegister(14, (MAPPING_V6_IID,), xtr_id=0x1234, site_id=0), AUTH_KEY, 2,
        truncated=True),
    "register-odd-auth-data-key-0": MapRegister(15, (MAPPING_V4,), key_id=0, auth_data=b"\x99" * 7),
    "register-no-records": MapRegister(16),
    "notify-sha1": sign(MapNotify(21, (MAPPING_V4,)), AUTH_KEY, 1),
    "notify-sha256-xtr-id": sign(MapNotify(22, (MAPPING_V6_IID, MAPPING_V4), xtr_id=5, site_id=6),
                                 AUTH_KEY, 2),
    "notify-ack-sha1": sign(MapNotifyAck(23, (MAPPING_V4,)), AUTH_KEY, 1),
    "notify-ack-xtr-id-unsigned": MapNotifyAck(24, (MAPPING_MIXED_LOCATORS,), xtr_id=1 << 127,
                                               site_id=1),
}

_INNER_REQUEST = CONTROL_VECTORS["request-ipv4"]
_INNER_REQUEST_V6 = CONTROL_VECTORS["request-ipv6-flags-p-s"]

CONTROL_VECTORS.update({
    "ecm-ipv4-udp-checksum": EncapsulatedControlMessage(ip("10.1.0.5"), ip("10.1.0.0"),
                                                        _INNER_REQUEST),
    "ecm-ipv4-no-udp-checksum-df": EncapsulatedControlMessage(
        ip("10.1.0.5"), ip("10.9.9.9"), _INNER_REQUEST, source_port=61000, ttl=1, tos=0xB8,
        ip_id=0xBEEF, dont_fragment=True, udp_checksum=False),
    "ecm-ipv6-udp-checksum": EncapsulatedControlMessage(
        ip("2001:db8:1::5"), ip("2001:db8:1::"), _INNER_REQUEST_V6, ttl=255, tos=0x28,
        flow_label=0xABCDE),
    "ecm-ipv6-no-udp-checksum": EncapsulatedControlMessage(
        ip("::"), ip("2001:db8:1::"), _INNER_REQUEST_V6, udp_checksum=False),
    "ecm-all-flags-map-register": EncapsulatedControlMessage(
        ip("192.0.2.1"), ip("192.0.2.2"), CONTROL_VECTORS["register-sha1"], security=True,
        ddt_originated=True, to_etr=True, to_ms=True),
    "ecm-map-reply-with-security-data": EncapsulatedControlMessage(
        ip("2001:db8::1"), ip("2001:db8::2"), CONTROL_VECTORS["reply-security-data"], dest_port=1),
})


DATA_HEADER_VECTORS: dict[str, DataHeader] = {
    "empty": DataHeader(),
    "gpe-ipv4": DataHeader.gpe(1000),
    "gpe-ipv6": DataHeader.gpe(0xFFFFFF, GPE_IPV6),
    "gpe-ethernet-no-iid": DataHeader(next_protocol=GPE_ETHERNET),
    "gpe-nsh-lsbs": DataHeader(instance_id=1, lsbs=0xFF, next_protocol=GPE_NSH),
    "nonce-echo": DataHeader(nonce=0xABCDEF, echo_nonce=True),
    "nonce-lsbs-32": DataHeader(nonce=1, lsbs=0xFFFFFFFF),
    "map-version": DataHeader(map_version=(0xFFF, 0x001)),
    "iid-lsbs-key": DataHeader(instance_id=0xABCDEF, lsbs=0x5A, key_id=3),
    "iid-only": DataHeader(instance_id=0),
    "map-version-iid": DataHeader(instance_id=77, map_version=(1, 2), key_id=1),
}


# --- independent wire helpers ---------------------------------------------------------------------


def ones_complement_checksum(data: bytes) -> int:
    """RFC 1071 checksum, 16-bit big-endian words summed one by one (not the codec's code)."""
    if len(data) % 2:
        data = data + b"\x00"
    total = 0
    for i in range(0, len(data), 2):
        total += data[i] << 8 | data[i + 1]
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ecm_bytes(inner: bytes, src: IPv4Address | IPv6Address, dst: IPv4Address | IPv6Address,
              *, flags: int = 0, sport: int = 4342, dport: int = 4342, ttl: int = 64,
              tos: int = 0, ip_id: int = 0, frag: int = 0, flow_label: int = 0,
              udp_checksum: bool = True, proto: int = 17) -> bytes:
    """An ECM built field by field: 4-byte LISP header, inner IPv4/IPv6 header, UDP header and
    ``inner`` (the encapsulated message's bytes), every length and checksum computed here."""
    udp_len = 8 + len(inner)
    if src.version == 4:
        pseudo = src.packed + dst.packed + struct.pack("!BBH", 0, 17, udp_len)
        head = struct.pack("!BBHHHBBH", 0x45, tos, 20 + udp_len, ip_id, frag, ttl, proto, 0)
        head += src.packed + dst.packed
        head = head[:10] + struct.pack("!H", ones_complement_checksum(head)) + head[12:]
    else:
        pseudo = src.packed + dst.packed + struct.pack("!IxxxB", udp_len, 17)
        head = struct.pack("!IHBB", 6 << 28 | tos << 20 | flow_label, udp_len, proto, ttl)
        head += src.packed + dst.packed
    csum = 0
    if udp_checksum:
        csum = ones_complement_checksum(pseudo + struct.pack("!HHHH", sport, dport, udp_len, 0)
                                        + inner) or 0xFFFF
    udp = struct.pack("!HHHH", sport, dport, udp_len, csum)
    return bytes((0x80 | flags, 0, 0, 0)) + head + udp + inner


def ecm_with_ffff_udp_checksum() -> EncapsulatedControlMessage:
    """An ECM whose UDP checksum computes to 0 and so goes on the wire as 0xFFFF: the inner
    Map-Request's nonce is chosen to make the ones'-complement sum come out that way."""
    src, dst = ip("10.1.0.5"), ip("10.1.0.0")
    base = replace(_INNER_REQUEST, nonce=0)
    inner = base.encode()
    pseudo = src.packed + dst.packed + struct.pack("!BBH", 0, 17, 8 + len(inner))
    udp = struct.pack("!HHHH", 4342, 4342, 8 + len(inner), 0)
    partial = (~ones_complement_checksum(pseudo + udp + inner)) & 0xFFFF  # folded sum, nonce 0
    # The nonce's last 16 bits sit on an even offset; adding w to the sum makes it 0xFFFF.
    low_word = 0xFFFF - partial
    return EncapsulatedControlMessage(src, dst, replace(base, nonce=low_word))


CONTROL_VECTORS["ecm-udp-checksum-0xffff"] = ecm_with_ffff_udp_checksum()


# --- a seeded generator of valid messages ---------------------------------------------------------


def mask_limit(address) -> int:
    """The longest EID mask-len the codec accepts for ``address`` (255 where masks do not apply)."""
    while isinstance(address, InstanceIdAddress):
        address = address.address
    if isinstance(address, IPv4Address):
        return 32
    if isinstance(address, IPv6Address):
        return 128
    return 255


def random_ip(rng: random.Random) -> IPv4Address | IPv6Address:
    if rng.random() < 0.5:
        return IPv4Address(rng.getrandbits(32))
    return IPv6Address(rng.getrandbits(128))


def random_address(rng: random.Random, lcafs_above: int = 0):
    """Any address the codec can carry; ``lcafs_above`` LCAFs already enclose it."""
    roll = rng.random()
    can_nest = lcafs_above < LCAF_NESTING_LIMIT
    if roll < 0.55 or not can_nest:
        return NO_ADDRESS if roll < 0.05 else random_ip(rng)
    if roll < 0.8:
        return InstanceIdAddress(rng.getrandbits(rng.choice((24, 32))),
                                 random_address(rng, lcafs_above + 1), rng.getrandbits(8))
    if roll < 0.92:
        return AfiListAddress(tuple(random_address(rng, lcafs_above + 1)
                                    for _ in range(rng.randrange(4))))
    return UnknownLcafAddress(rng.choice((0, 3, 4, 5, 10, 12, 14, 15, 255)),
                              rng.randbytes(rng.randrange(12)), rng.getrandbits(8),
                              rng.getrandbits(8))


def random_eid(rng: random.Random):
    """An EID address and a mask-len the codec accepts for it."""
    eid = random_address(rng)
    return eid, rng.randint(0, mask_limit(eid))


def random_locator(rng: random.Random) -> Locator:
    return Locator(random_address(rng), rng.getrandbits(8), rng.getrandbits(8), rng.getrandbits(8),
                   rng.getrandbits(8), rng.random() < 0.5, rng.random() < 0.5, rng.random() < 0.5)


def random_mapping(rng: random.Random) -> MappingRecord:
    eid, mask_len = random_eid(rng)
    action = rng.randrange(8)
    return MappingRecord(eid, mask_len, tuple(random_locator(rng) for _ in range(rng.randrange(4))),
                         rng.getrandbits(32), Action(action) if action <= 5 else action,
                         rng.random() < 0.5, rng.getrandbits(12))


def _flags(rng: random.Random, count: int) -> list[bool]:
    return [rng.random() < 0.5 for _ in range(count)]


def random_map_request(rng: random.Random) -> MapRequest:
    records = tuple(EidRecord(*random_eid(rng)) for _ in range(rng.randint(1, 3)))
    rlocs = tuple(random_address(rng) for _ in range(rng.choice((1, 1, 2, 3, 32))))
    mrr = random_mapping(rng) if rng.random() < 0.3 else None
    return MapRequest(rng.getrandbits(64), records, rlocs, random_address(rng), *_flags(rng, 7),
                      map_reply_record=mrr)


def random_map_reply(rng: random.Random) -> MapReply:
    security = rng.random() < 0.3
    data = rng.randbytes(rng.randrange(20)) if security else b""
    records = tuple(random_mapping(rng) for _ in range(rng.randrange(4)))
    return MapReply(rng.getrandbits(64), records, rng.random() < 0.5, rng.random() < 0.5, security,
                    data)


def random_authenticated(rng: random.Random):
    records = tuple(random_mapping(rng) for _ in range(rng.randrange(4)))
    xtr = (rng.getrandbits(128), rng.getrandbits(64)) if rng.random() < 0.4 else (None, None)
    kind = rng.choice((MapRegister, MapNotify, MapNotifyAck))
    if kind is MapRegister:
        message = MapRegister(rng.getrandbits(64), records, 0, b"", *_flags(rng, 3), *xtr)
    else:
        message = kind(rng.getrandbits(64), records, 0, b"", *xtr)
    roll = rng.random()
    if roll < 0.6:
        return sign(message, rng.randbytes(8), rng.choice((1, 2)), truncated=rng.random() < 0.3)
    if roll < 0.8:
        return replace(message, key_id=rng.getrandbits(16),
                       auth_data=rng.randbytes(rng.randrange(40)))
    return message


def random_ecm(rng: random.Random) -> EncapsulatedControlMessage:
    inner = rng.choice((random_map_request, random_map_request, random_map_reply,
                        random_authenticated))(rng)
    if rng.random() < 0.5:
        src, dst = IPv4Address(rng.getrandbits(32)), IPv4Address(rng.getrandbits(32))
        family = dict(ip_id=rng.getrandbits(16), dont_fragment=rng.random() < 0.5)
    else:
        src, dst = IPv6Address(rng.getrandbits(128)), IPv6Address(rng.getrandbits(128))
        family = dict(flow_label=rng.getrandbits(20))
    return EncapsulatedControlMessage(src, dst, inner, rng.getrandbits(16), rng.getrandbits(16),
                                      rng.getrandbits(8), rng.getrandbits(8),
                                      udp_checksum=rng.random() < 0.7, security=rng.random() < 0.5,
                                      ddt_originated=rng.random() < 0.5,
                                      to_etr=rng.random() < 0.5, to_ms=rng.random() < 0.5,
                                      **family)


def random_control_message(rng: random.Random):
    """A random well-formed control message of any type (reserved bits zero)."""
    return rng.choice((random_map_request, random_map_reply, random_authenticated,
                       random_ecm))(rng)


def random_data_header(rng: random.Random) -> DataHeader:
    """A random data header that :meth:`DataHeader.encode` accepts."""
    word0 = rng.choice(("nonce", "version", "gpe", None))
    nonce = rng.getrandbits(24) if word0 == "nonce" else None
    version = (rng.getrandbits(12), rng.getrandbits(12)) if word0 == "version" else None
    next_protocol = rng.choice((GPE_IPV4, GPE_IPV6, GPE_ETHERNET, GPE_NSH, rng.getrandbits(8))) \
        if word0 == "gpe" else None
    iid = rng.getrandbits(24) if rng.random() < 0.6 else None
    lsbs = None
    if rng.random() < 0.5:
        lsbs = rng.getrandbits(8 if iid is not None else 32)
    return DataHeader(iid, lsbs, nonce, nonce is not None and rng.random() < 0.5, version,
                      next_protocol, rng.getrandbits(2))
