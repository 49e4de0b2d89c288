"""The LISP codec's wire format against tshark's LISP dissectors, field by field."""

from __future__ import annotations

import hashlib
import hmac
from ipaddress import IPv4Address, IPv6Address, ip_address

import pytest

from lisp_app.protocol import (GPE_IPV4, GPE_IPV6, Action, AfiListAddress, DataHeader, EidRecord,
                               EncapsulatedControlMessage, InstanceIdAddress, Locator, MapNotify,
                               MapNotifyAck, MapRegister, MapReply, MapRequest, MappingRecord,
                               NoAddress, sign)
from tests.tshark_oracle import (as_list, colon_hex, dissect, ethernet_frame, flatten,
                                 from_colon_hex, ip_udp_packet, problem_items, tshark_path,
                                 write_pcap)

CONTROL_PORT = 4342
DATA_PORT = 4341
VXLAN_GPE_PORT = 4790
OUTER_SRC, OUTER_DST = "192.0.2.1", "192.0.2.2"
AUTH_KEY = b"tshark-oracle-key"
HMAC_HASHES = {1: hashlib.sha1, 2: hashlib.sha256}

AFI_IPV4, AFI_IPV6, AFI_LCAF = 1, 2, 16387
LCAF_AFI_LIST, LCAF_INSTANCE_ID = 1, 2


def ip(text: str) -> IPv4Address | IPv6Address:
    return ip_address(text)


# --- the messages ------------------------------------------------------------------------------

TWO_LOCATORS = (
    Locator(ip("192.0.2.10"), priority=1, weight=70, m_priority=5, m_weight=6,
            local=True, probed=False, reachable=True),
    Locator(ip("2001:db8:ff::20"), priority=2, weight=30, m_priority=7, m_weight=8,
            local=False, probed=True, reachable=False),
)

MAP_REQUESTS = {
    # IPv4 source EID, three ITR-RLOCs of both families (IRC 2), an Instance-ID EID; A, S, p.
    "map-request-ipv4": MapRequest(
        nonce=0x0123456789ABCDEF,
        records=(EidRecord(InstanceIdAddress(1000, ip("10.1.0.0"), 24), 24),
                 EidRecord(ip("10.9.0.0"), 16)),
        itr_rlocs=(ip("192.0.2.1"), ip("2001:db8::1"), ip("198.51.100.9")),
        source_eid=ip("10.1.0.5"), authoritative=True, smr=True, pitr=True),
    # IPv6 source EID and ITR-RLOCs (IRC 1), an IPv6 Instance-ID EID; P, s, and RFC 9301's L and D
    # (tshark 4.0 still counts L and D among the reserved bits: see expected_map_request).
    "map-request-ipv6": MapRequest(
        nonce=0xFEDCBA9876543210,
        records=(EidRecord(ip("2001:db8:1::"), 48),
                 EidRecord(InstanceIdAddress(0xFFFFFF, ip("2001:db8:2::"), 64), 64)),
        itr_rlocs=(ip("2001:db8::a"), ip("192.0.2.77")),
        source_eid=ip("2001:db8:1::5"), probe=True, smr_invoked=True, local_xtr=True,
        dont_map_reply=True),
    # No source EID (AFI 0), an RLOC-probe with a Map-Reply record (M bit) and A.
    "map-request-with-map-reply-record": MapRequest(
        nonce=1, records=(EidRecord(ip("10.2.0.0"), 16),), itr_rlocs=(ip("192.0.2.1"),),
        authoritative=True, probe=True,
        map_reply_record=MappingRecord(ip("10.2.0.0"), 16, TWO_LOCATORS, ttl=60,
                                       authoritative=True, map_version=9)),
}

MAP_REPLIES = {
    # Two locators with distinct priority, weight, m-priority, m-weight and L/p/R; P and E.
    "map-reply-two-locators": MapReply(
        nonce=0x1122334455667788, probe=True, echo_nonce_capable=True,
        records=(MappingRecord(ip("10.2.0.0"), 24, TWO_LOCATORS, ttl=1440, authoritative=True,
                               map_version=1234),)),
    # Negative replies: natively-forward first, then every other ACT (3 bits), extreme TTLs.
    "map-reply-negative": MapReply(
        nonce=2,
        records=(MappingRecord(ip("10.3.0.0"), 16, (), ttl=15, action=Action.NATIVELY_FORWARD),
                 *(MappingRecord(ip(f"10.4.{act}.0"), 24, (), ttl=0xFFFFFFFF - act, action=act)
                   for act in (Action.NO_ACTION, Action.SEND_MAP_REQUEST, Action.DROP_NO_REASON,
                               Action.DROP_POLICY_DENIED, Action.DROP_AUTH_FAILURE)))),
    # An IPv6 EID, Instance-ID EIDs of both families, an AFI-list locator, map-version 4095.
    "map-reply-ipv6-iid-afi-list": MapReply(
        nonce=3,
        records=(
            MappingRecord(ip("2001:db8:5::"), 48, (Locator(ip("2001:db8::9"), 255, 0, 0, 255),),
                          ttl=30, map_version=4095),
            MappingRecord(InstanceIdAddress(7, ip("10.5.0.0"), 16), 16,
                          (Locator(AfiListAddress((ip("192.0.2.8"), ip("2001:db8::8"))), 3, 100,
                                   255, 0, local=True, probed=True, reachable=True),)),
            MappingRecord(InstanceIdAddress(4096, ip("2001:db8:6::"), 56), 56,
                          (Locator(ip("198.51.100.1")),), authoritative=True),
        )),
}

REGISTER_RECORDS = (
    MappingRecord(ip("10.6.0.0"), 24, TWO_LOCATORS, ttl=1440, authoritative=True),
    MappingRecord(InstanceIdAddress(1000, ip("10.7.0.0"), 16), 16, (Locator(ip("192.0.2.1")),)),
)
XTR_ID = 0x0102030405060708090A0B0C0D0E0F10
SITE_ID = 0xA1A2A3A4A5A6A7A8

MAP_REGISTERS = {
    # HMAC-SHA-1 (key-id 1, 20 bytes), P set, M clear, no xTR-ID.
    "map-register-sha1": sign(MapRegister(nonce=0xAABBCCDD00112233, records=REGISTER_RECORDS,
                                          proxy_reply=True), AUTH_KEY, 1),
    # HMAC-SHA-256 (key-id 2, 32 bytes), M and S set, P clear, with xTR-ID and site-ID (I bit).
    "map-register-sha256-xtr-id": sign(MapRegister(nonce=5, records=REGISTER_RECORDS[1:],
                                                   want_map_notify=True, security_capable=True,
                                                   xtr_id=XTR_ID, site_id=SITE_ID), AUTH_KEY, 2),
}

MAP_NOTIFIES = {
    "map-notify-sha1": sign(MapNotify(nonce=0xAABBCCDD00112233, records=REGISTER_RECORDS),
                            AUTH_KEY, 1),
    "map-notify-sha256-xtr-id": sign(MapNotify(nonce=5, records=REGISTER_RECORDS[1:],
                                               xtr_id=XTR_ID, site_id=SITE_ID), AUTH_KEY, 2),
}

MAP_NOTIFY_ACK = sign(MapNotifyAck(nonce=6, records=REGISTER_RECORDS[:1], xtr_id=XTR_ID,
                                   site_id=SITE_ID), AUTH_KEY, 1)

ECMS = {
    # Inner IPv4 with a UDP checksum; D and M set (M: to a Map-Server, RFC 9301).
    "ecm-ipv4": EncapsulatedControlMessage(
        ip("10.1.0.5"), ip("10.2.0.1"), MAP_REQUESTS["map-request-ipv4"], source_port=61000,
        ttl=17, tos=0xB8, ip_id=0x4242, dont_fragment=True, ddt_originated=True, to_ms=True),
    # Inner IPv6 with traffic class and flow label; S and E set (E: to an ETR).
    "ecm-ipv6": EncapsulatedControlMessage(
        ip("2001:db8:1::5"), ip("2001:db8:2::1"), MAP_REQUESTS["map-request-ipv6"],
        ttl=200, tos=0x20, flow_label=0x12345, security=True, to_etr=True),
    # Inner IPv4 without a UDP checksum (zero), no flags.
    "ecm-ipv4-no-udp-checksum": EncapsulatedControlMessage(
        ip("10.1.0.6"), ip("10.2.0.2"), MAP_REQUESTS["map-request-with-map-reply-record"],
        udp_checksum=False),
}

INNER_IPV4_ENDS = ("10.1.0.5", "10.2.0.9")
INNER_IPV6_ENDS = ("2001:db8:1::5", "2001:db8:2::9")
INNER_IPV4 = ip_udp_packet(*INNER_IPV4_ENDS, 33000, 7, b"inner payload", ident=7)
INNER_IPV6 = ip_udp_packet(*INNER_IPV6_ENDS, 33000, 7, b"inner payload")
#: name -> (header, inner packet, UDP port)
DATA_HEADERS = {
    "data-nonce-iid-lsbs": (DataHeader(instance_id=1000, lsbs=0x03, nonce=0xABCDEF),
                            INNER_IPV4, DATA_PORT),
    "data-iid-only": (DataHeader(instance_id=0xFFFFFF), INNER_IPV6, DATA_PORT),
    "data-echo-nonce": (DataHeader(nonce=5, echo_nonce=True), INNER_IPV4, DATA_PORT),
    "data-map-version-lsbs32": (DataHeader(map_version=(123, 4095), lsbs=0x80000001),
                                INNER_IPV4, DATA_PORT),
    # The GPE form Open vSwitch sends: 0c 00 00 01 | IID 00. tshark 4.0's lisp-data dissector
    # reads RFC 9300 only (P is a reserved bit to it), so the same bytes also go to UDP 4790, where
    # its VXLAN-GPE dissector reads them (the I, P, Next Protocol and VNI/IID fields coincide).
    "gpe-ipv4": (DataHeader.gpe(1000), INNER_IPV4, DATA_PORT),
    "gpe-ipv6": (DataHeader.gpe(0xABCDEF, GPE_IPV6), INNER_IPV6, DATA_PORT),
    "gpe-ipv4-as-vxlan-gpe": (DataHeader.gpe(1000, GPE_IPV4), INNER_IPV4, VXLAN_GPE_PORT),
    "gpe-ipv6-as-vxlan-gpe": (DataHeader.gpe(0xABCDEF, GPE_IPV6), INNER_IPV6, VXLAN_GPE_PORT),
}


def notify_ack_with_notify_type(ack: MapNotifyAck) -> bytes:
    """The Map-Notify-Ack's bytes with the type nibble set to 4 (Map-Notify), flags kept: RFC 9301
    gives both one body, and tshark 4.0 dissects the body only under type 4."""
    wire = ack.encode()
    return bytes([0x40 | wire[0] & 0x0F]) + wire[1:]


def lisp_payloads() -> dict[str, tuple[bytes, int]]:
    """Every UDP payload of the capture by name, with its UDP port."""
    payloads: dict[str, tuple[bytes, int]] = {}
    for group in (MAP_REQUESTS, MAP_REPLIES, MAP_REGISTERS, MAP_NOTIFIES, ECMS):
        for name, message in group.items():
            payloads[name] = (message.encode(), CONTROL_PORT)
    payloads["map-notify-ack"] = (MAP_NOTIFY_ACK.encode(), CONTROL_PORT)
    payloads["map-notify-ack-as-notify"] = (notify_ack_with_notify_type(MAP_NOTIFY_ACK),
                                            CONTROL_PORT)
    for name, (header, inner, port) in DATA_HEADERS.items():
        payloads[name] = (header.encode() + inner, port)
    return payloads


PAYLOADS = lisp_payloads()


@pytest.fixture(scope="module")
def dissected(tmp_path_factory) -> dict[str, dict]:
    """tshark's layers for every payload, from one capture and one tshark run."""
    tshark = tshark_path()
    workdir = tmp_path_factory.mktemp("tshark")
    names = list(PAYLOADS)
    frames = [ethernet_frame(ip_udp_packet(OUTER_SRC, OUTER_DST, port, port, payload, ident=n))
              for n, (payload, port) in enumerate(PAYLOADS.values(), start=1)]
    pcap = workdir / "lisp.pcap"
    write_pcap(pcap, frames)
    (workdir / "profile").mkdir()
    packets = dissect(tshark, pcap, workdir / "profile")
    assert len(packets) == len(names)
    return dict(zip(names, packets))


# --- what tshark must show, derived from our objects -------------------------------------------


def flag(value: bool) -> str:
    return "1" if value else "0"


def afi(address) -> int:
    if type(address) is IPv4Address:
        return AFI_IPV4
    if type(address) is IPv6Address:
        return AFI_IPV6
    if type(address) is NoAddress:
        return 0
    return AFI_LCAF


def afi_length(address) -> int:
    """The wire length of a plain AFI-encoded IP address, AFI included."""
    return 2 + len(address.packed)


def expected_lcaf(address) -> dict:
    """tshark's ``lisp.lcaf`` subtree for an Instance-ID or AFI-list LCAF (RFC 8060)."""
    if type(address) is InstanceIdAddress:
        inner = address.address
        lcaf_type, rsvd2, length = LCAF_INSTANCE_ID, address.mask_len, 4 + afi_length(inner)
        body = {"lisp.lcaf.iid": str(address.instance_id),
                "lisp.lcaf.iid.afi": str(afi(inner)),
                f"lisp.lcaf.iid.ipv{inner.version}": str(inner)}
    elif type(address) is AfiListAddress:
        lcaf_type, rsvd2 = LCAF_AFI_LIST, 0
        length = sum(afi_length(item) for item in address.addresses)
        body = {"lisp.lcaf.afi_list.item": [
            {"lisp.lcaf.afi_list.afi": str(afi(item)),
             f"lisp.lcaf.afi_list.ipv{item.version}": str(item)} for item in address.addresses]}
    else:
        raise AssertionError(f"no tshark expectation for {address!r}")
    header = bytes([0, 0, lcaf_type, rsvd2]) + length.to_bytes(2, "big")
    return {"lisp.lcaf.header": colon_hex(header),
            "lisp.lcaf.header_tree": {"lisp.lcaf.res1": "0x00", "lisp.lcaf.flags": "0x00",
                                      "lisp.lcaf.type": str(lcaf_type),
                                      "lisp.lcaf.res2": f"0x{rsvd2:02x}",
                                      "lisp.lcaf.length": str(length)},
            **body}


def expected_eid(address, prefix: str, label: str) -> dict:
    """An EID-prefix field group: ``<prefix>.afi`` and the address; an Instance-ID LCAF sits in a
    subtree tshark labels ``<label>: [iid] address``."""
    fields = {f"{prefix}.afi": str(afi(address))}
    if type(address) in (IPv4Address, IPv6Address):
        fields[f"{prefix}.ipv{address.version}"] = str(address)
    else:
        fields[f"{label}: [{address.instance_id}] {address.address}"] = {
            "lisp.lcaf": expected_lcaf(address)}
    return fields


def expected_locator(locator: Locator) -> dict:
    flags = locator.local << 2 | locator.probed << 1 | locator.reachable
    fields = {"lisp.loc.priority": str(locator.priority),
              "lisp.loc.weight": str(locator.weight),
              "lisp.loc.multicast_priority": str(locator.m_priority),
              "lisp.loc.multicast_weight": str(locator.m_weight),
              "lisp.loc.flags": f"0x{flags:04x}",
              "lisp.loc.flags_tree": {"lisp.loc.flags.res": "0x0000",
                                      "lisp.loc.flags.local": flag(locator.local),
                                      "lisp.loc.flags.probe": flag(locator.probed),
                                      "lisp.loc.flags.reach": flag(locator.reachable)},
              "lisp.loc.afi": str(afi(locator.address))}
    if type(locator.address) in (IPv4Address, IPv6Address):
        fields["lisp.loc.locator"] = str(locator.address)
    else:
        fields["lisp.lcaf"] = expected_lcaf(locator.address)
    return fields


def expected_mapping(record: MappingRecord) -> dict:
    return {"lisp.mapping.ttl": str(record.ttl),
            "lisp.mapping.loccnt": str(len(record.locators)),
            "lisp.mapping.eid.masklen": str(record.mask_len),
            "lisp.mapping.act": str(int(record.action)),
            "lisp.mapping.auth": flag(record.authoritative),
            "lisp.mapping.res1": "0x0000",
            "lisp.mapping.res2": "0x0000",
            "lisp.mapping.ver": str(record.map_version),
            **expected_eid(record.eid, "lisp.mapping.eid", "EID Prefix"),
            "lisp.loc": [expected_locator(loc) for loc in record.locators]}


def expected_source_eid(address) -> dict:
    fields = {"lisp.mreq.srceid.afi": str(afi(address))}
    if type(address) is NoAddress:
        fields["lisp.mreq.srceid.string"] = "not set"
    elif type(address) is IPv4Address:
        fields["lisp.mreq.srceid.ipv4"] = str(address)
    else:
        fields["lisp.mreq.srceid_ipv6"] = str(address)  # sic: tshark 4.0's name has "_ipv6"
    return fields


def expected_map_request(msg: MapRequest) -> dict:
    # lisp.mreq.flags is bits 4-9 of the first 24 (mask 0xfc000), shown shifted: A M P S p s.
    flags = (msg.authoritative << 5 | (msg.map_reply_record is not None) << 4 | msg.probe << 3
             | msg.smr << 2 | msg.pitr << 1 | msg.smr_invoked)
    # tshark 4.0 predates RFC 9301's L and D bits: they fall in lisp.mreq.res (mask 0x3fe0, shown
    # shifted by 5), L as 0x2 and D as 0x1, just above the 5-bit IRC, where RFC 9301 puts them.
    reserved = msg.local_xtr << 1 | msg.dont_map_reply
    fields = {"lisp.type": "1",
              "lisp.mreq.flags": f"0x{flags:06x}",
              "lisp.mreq.flags_tree": {
                  "lisp.mreq.flags.auth": flag(msg.authoritative),
                  "lisp.mreq.flags.mrp": flag(msg.map_reply_record is not None),
                  "lisp.mreq.flags.probe": flag(msg.probe),
                  "lisp.mreq.flags.smr": flag(msg.smr),
                  "lisp.mreq.flags.pitr": flag(msg.pitr),
                  "lisp.mreq.flags.smri": flag(msg.smr_invoked)},
              "lisp.mreq.res": f"0x{reserved:06x}",
              "lisp.irc": str(len(msg.itr_rlocs) - 1),
              "lisp.records": str(len(msg.records)),
              "lisp.nonce": f"0x{msg.nonce:016x}",
              **expected_source_eid(msg.source_eid),
              "lisp.mreq.itr_rloc": [
                  {"lisp.mreq.itr_rloc.afi": str(afi(rloc)),
                   f"lisp.mreq.itr_rloc_ipv{rloc.version}": str(rloc)} for rloc in msg.itr_rlocs],
              "lisp.mreq.record": [
                  {"lisp.mreq.record.res": "0x00",
                   "lisp.mreq.record.prefix.length": str(rec.mask_len),
                   **expected_eid(rec.eid, "lisp.mreq.record.prefix", "Prefix")}
                  for rec in msg.records]}
    if msg.map_reply_record is not None:
        fields["lisp.mrep.record"] = {"lisp.mapping": expected_mapping(msg.map_reply_record)}
    return fields


def expected_map_reply(msg: MapReply) -> dict:
    return {"lisp.type": "2",
            "lisp.mrep.flags.probe": flag(msg.probe),
            "lisp.mrep.flags.enlr": flag(msg.echo_nonce_capable),
            "lisp.mrep.flags.sec": flag(msg.security),
            "lisp.mrep.res": "0x000000",
            "lisp.records": str(len(msg.records)),
            "lisp.nonce": f"0x{msg.nonce:016x}",
            "lisp.mapping": [expected_mapping(rec) for rec in msg.records]}


def expected_authenticated_body(msg) -> dict:
    """The fields Map-Register and Map-Notify share after their flags."""
    fields = {"lisp.records": str(len(msg.records)),
              "lisp.nonce": f"0x{msg.nonce:016x}",
              "lisp.keyid": f"0x{msg.key_id:04x}",  # tshark 4.0 reads one 16-bit Key ID
              "lisp.authlen": str(len(msg.auth_data)),
              "lisp.auth": colon_hex(msg.auth_data),
              "lisp.mapping": [expected_mapping(rec) for rec in msg.records]}
    if msg.xtr_id is not None:
        fields["lisp.xtrid"] = colon_hex(msg.xtr_id.to_bytes(16, "big"))
        fields["lisp.siteid"] = colon_hex(msg.site_id.to_bytes(8, "big"))
    return fields


def expected_map_register(msg: MapRegister) -> dict:
    return {"lisp.type": "3",
            "lisp.mreg.flags.pmr": flag(msg.proxy_reply),
            "lisp.mreg.flags.sec": flag(msg.security_capable),
            "lisp.mreg.flags.xtrid": flag(msg.xtr_id is not None),
            "lisp.mreg.flags.rtr": "0",
            "lisp.mreg.res": "0x000000",
            "lisp.mreg.flags.wmn": flag(msg.want_map_notify),
            **expected_authenticated_body(msg)}


def expected_map_notify(msg: MapNotify) -> dict:
    return {"lisp.type": "4",
            "lisp.mnot.flags.xtrid": flag(msg.xtr_id is not None),
            "lisp.mnot.flags.rtr": "0",
            "lisp.mnot.res": "0x000000",
            **expected_authenticated_body(msg)}


def expected_ecm_header(ecm: EncapsulatedControlMessage) -> dict:
    # tshark 4.0 knows S and D; RFC 9301's E and M bits fall in lisp.ecm.res (mask 0x3ffffff):
    # E is 0x02000000 and M 0x01000000 there, the two bits after D, as RFC 9301 places them.
    return {"lisp.type": "8",
            "lisp.ecm.flags.sec": flag(ecm.security),
            "lisp.ecm.flags.ddt": flag(ecm.ddt_originated),
            "lisp.ecm.res": f"0x{ecm.to_etr << 25 | ecm.to_ms << 24:08x}"}


def expected_data_header(header: DataHeader) -> dict:
    flags = ((header.nonce is not None) << 7 | (header.lsbs is not None) << 6
             | header.echo_nonce << 5 | (header.map_version is not None) << 4
             | (header.instance_id is not None) << 3)
    # tshark 4.0's lisp-data is RFC 9300 only: GPE's P bit and the two K bits are "reserved".
    reserved = (header.next_protocol is not None) << 2 | header.key_id
    fields = {"lisp-data.flags": f"0x{flags | reserved:02x}",
              "lisp-data.flags_tree": {
                  "lisp-data.flags.nonce": flag(header.nonce is not None),
                  "lisp-data.flags.lsb": flag(header.lsbs is not None),
                  "lisp-data.flags.enr": flag(header.echo_nonce),
                  "lisp-data.flags.mv": flag(header.map_version is not None),
                  "lisp-data.flags.iid": flag(header.instance_id is not None),
                  "lisp-data.flags.res": f"0x{reserved:02x}"}}
    if header.nonce is not None:
        fields["lisp-data.nonce"] = str(header.nonce)
    if header.map_version is not None:
        source, destination = header.map_version
        fields["lisp-data.mapver"] = f"0x{source << 12 | destination:06x}"
        fields["lisp-data.mapver_tree"] = {"lisp-data.srcmapver": str(source),
                                           "lisp-data.dstmapver": str(destination)}
    if header.instance_id is not None:
        fields["lisp-data.iid"] = str(header.instance_id)
        if header.lsbs is not None:
            fields["lisp-data.lsb8"] = f"0x{header.lsbs:02x}"
    elif header.lsbs is not None:
        fields["lisp-data.lsb"] = f"0x{header.lsbs:08x}"
    return fields


def expected_vxlan_gpe(header: DataHeader) -> dict:
    return {"vxlan.flags": f"0x{0x08 | 0x04 | header.key_id:02x}",
            "vxlan.flags_tree": {"vxlan.ver": "0", "vxlan.i_bit": "1", "vxlan.p_bit": "1",
                                 "vxlan.o_bit": flag(header.key_id & 1),
                                 "vxlan.flags_reserved": "0"},
            "vxlan.reserved_16": "0",
            "vxlan.next_proto": str(header.next_protocol),
            "vxlan.vni": str(header.instance_id),
            "vxlan.reserved8": "0"}


def assert_same_fields(shown: dict, expected: dict) -> None:
    """Every field tshark shows equals ours, and tshark shows no field we did not expect."""
    assert flatten(shown) == flatten(expected)


def independent_hmac(payload: bytes, auth_len: int, key_id: int) -> bytes:
    """The HMAC (Python's hmac, not the codec's) of a message as sent, its authentication data
    (at byte 16, RFC 9301 5.6) zeroed."""
    blank = payload[:16] + bytes(auth_len) + payload[16 + auth_len:]
    return hmac.new(AUTH_KEY, blank, HMAC_HASHES[key_id]).digest()


def udp_payload(layers: dict) -> bytes:
    """The outer UDP payload as tshark read it."""
    return from_colon_hex(as_list(layers["udp"])[0]["udp.payload"])


# --- the tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(PAYLOADS))
def test_tshark_flags_nothing(dissected, name):
    """No malformed-packet and no expert item anywhere (tshark 4.0 raises none, not even at
    "chat" level, for these packets; a bad IPv4 or UDP checksum would be one)."""
    layers = dissected[name]
    assert problem_items(layers) == []
    assert udp_payload(layers) == PAYLOADS[name][0]


@pytest.mark.parametrize("name", list(MAP_REQUESTS))
def test_map_request(dissected, name):
    layers = dissected[name]
    assert layers["frame"]["frame.protocols"] == "eth:ethertype:ip:udp:lisp"
    assert_same_fields(layers["lisp"], expected_map_request(MAP_REQUESTS[name]))


@pytest.mark.parametrize("name", list(MAP_REPLIES))
def test_map_reply(dissected, name):
    assert_same_fields(dissected[name]["lisp"], expected_map_reply(MAP_REPLIES[name]))


@pytest.mark.parametrize("name", list(MAP_REGISTERS))
def test_map_register(dissected, name):
    msg, layers = MAP_REGISTERS[name], dissected[name]
    assert_same_fields(layers["lisp"], expected_map_register(msg))
    assert len(msg.auth_data) == {1: 20, 2: 32}[msg.key_id]
    shown = layers["lisp"]
    assert from_colon_hex(shown["lisp.auth"]) == independent_hmac(
        udp_payload(layers), int(shown["lisp.authlen"]), msg.key_id)


@pytest.mark.parametrize("name", list(MAP_NOTIFIES))
def test_map_notify(dissected, name):
    msg, layers = MAP_NOTIFIES[name], dissected[name]
    assert_same_fields(layers["lisp"], expected_map_notify(msg))
    shown = layers["lisp"]
    assert from_colon_hex(shown["lisp.auth"]) == independent_hmac(
        udp_payload(layers), int(shown["lisp.authlen"]), msg.key_id)


def test_map_notify_ack_type_is_unknown_to_tshark_4_0(dissected):
    """tshark 4.0 knows no type 5 ("Unknown LISP Control Packet (5)"): it shows the type and
    leaves the whole message as undissected data, which must be exactly our message."""
    layers = dissected["map-notify-ack"]
    assert layers["lisp"] == {"lisp.type": "5"}
    payload = MAP_NOTIFY_ACK.encode()
    assert layers["data"] == {"data.data": colon_hex(payload), "data.len": str(len(payload))}
    auth_len = len(MAP_NOTIFY_ACK.auth_data)
    assert payload[16:16 + auth_len] == independent_hmac(payload, auth_len, MAP_NOTIFY_ACK.key_id)


def test_map_notify_ack_body_read_as_map_notify(dissected):
    """The Ack's body, under type 4, is the Map-Notify body tshark expects, field by field."""
    as_notify = MapNotify(**{name: getattr(MAP_NOTIFY_ACK, name)
                             for name in ("nonce", "records", "key_id", "auth_data", "xtr_id",
                                          "site_id")})
    assert_same_fields(dissected["map-notify-ack-as-notify"]["lisp"],
                       expected_map_notify(as_notify))


@pytest.mark.parametrize("name", list(ECMS))
def test_ecm(dissected, name):
    ecm, layers = ECMS[name], dissected[name]
    outer_lisp, inner_lisp = as_list(layers["lisp"])
    assert_same_fields(outer_lisp, expected_ecm_header(ecm))
    assert_same_fields(inner_lisp, expected_map_request(ecm.message))
    inner_udp_len = 8 + len(ecm.message.encode())
    if ecm.source.version == 4:
        _outer_ip, inner_ip = as_list(layers["ip"])
        assert "ipv6" not in layers
        shown_ip = {key: inner_ip[key] for key in ("ip.version", "ip.hdr_len", "ip.dsfield",
                                                   "ip.len", "ip.id", "ip.frag_offset", "ip.ttl",
                                                   "ip.proto", "ip.checksum.status", "ip.src",
                                                   "ip.dst")}
        shown_ip["ip.flags.df"] = inner_ip["ip.flags_tree"]["ip.flags.df"]
        shown_ip["ip.flags.mf"] = inner_ip["ip.flags_tree"]["ip.flags.mf"]
        assert shown_ip == {"ip.version": "4", "ip.hdr_len": "20", "ip.dsfield": f"0x{ecm.tos:02x}",
                            "ip.len": str(20 + inner_udp_len), "ip.id": f"0x{ecm.ip_id:04x}",
                            "ip.frag_offset": "0", "ip.ttl": str(ecm.ttl), "ip.proto": "17",
                            "ip.checksum.status": "1",  # tshark computed it and found it good
                            "ip.src": str(ecm.source), "ip.dst": str(ecm.destination),
                            "ip.flags.df": flag(ecm.dont_fragment), "ip.flags.mf": "0"}
    else:
        inner_ip = layers["ipv6"]
        shown_ip = {key: inner_ip[key] for key in ("ipv6.version", "ipv6.tclass", "ipv6.flow",
                                                   "ipv6.plen", "ipv6.nxt", "ipv6.hlim",
                                                   "ipv6.src", "ipv6.dst")}
        assert shown_ip == {"ipv6.version": "6", "ipv6.tclass": f"0x{ecm.tos:08x}",
                            "ipv6.flow": f"0x{ecm.flow_label:06x}", "ipv6.plen": str(inner_udp_len),
                            "ipv6.nxt": "17", "ipv6.hlim": str(ecm.ttl),
                            "ipv6.src": str(ecm.source), "ipv6.dst": str(ecm.destination)}
    _outer_udp, inner_udp = as_list(layers["udp"])
    assert (inner_udp["udp.srcport"], inner_udp["udp.dstport"], inner_udp["udp.length"]) == (
        str(ecm.source_port), str(ecm.dest_port), str(inner_udp_len))
    if ecm.udp_checksum:
        assert inner_udp["udp.checksum.status"] == "1"  # computed by tshark and found good
    else:
        assert inner_udp["udp.checksum"] == "0x0000"
        assert inner_udp["udp.checksum_tree"]["udp.checksum.status"] == "3"  # not present


@pytest.mark.parametrize("name", [name for name, (_h, _i, port) in DATA_HEADERS.items()
                                  if port == DATA_PORT])
def test_data_header(dissected, name):
    header, inner, _port = DATA_HEADERS[name]
    layers = dissected[name]
    assert_same_fields(layers["lisp-data"], expected_data_header(header))
    # tshark found the inner packet right after the 8-byte header.
    if inner is INNER_IPV4:
        inner_ip = as_list(layers["ip"])[1]
        assert (inner_ip["ip.src"], inner_ip["ip.dst"]) == INNER_IPV4_ENDS
    else:
        inner_ip = layers["ipv6"]
        assert (inner_ip["ipv6.src"], inner_ip["ipv6.dst"]) == INNER_IPV6_ENDS


@pytest.mark.parametrize("name", [name for name, (_h, _i, port) in DATA_HEADERS.items()
                                  if port == VXLAN_GPE_PORT])
def test_gpe_header_as_vxlan_gpe(dissected, name):
    header, _inner, _port = DATA_HEADERS[name]
    layers = dissected[name]
    assert "lisp-data" not in layers
    assert_same_fields(layers["vxlan"], expected_vxlan_gpe(header))

