"""The switch's flows and groups written as ``ovs-ofctl -O OpenFlow13 dump-flows`` (and
``dump-groups``) writes them, so that a line of ``lispctl flows`` can be compared with, or pasted
into, ``ovs-ofctl``.

Input is what os-ken parses from the switch's replies (OFPFlowStats, OFPGroupDescStats). The
spelling follows OVS: matches in OVS's field order with its names (``ip``, ``udp6`` shorthands,
``nw_dst=10.1.0.0/24``, ``tun_id``, ``metadata=0x3e8/0xffffff``, ``tp_dst``), actions as OVS
prints them (``set_field:..->tun_dst``, ``CONTROLLER:65535``, ``output:3``, ``move:NXM_..[]``,
``check_pkt_larger(1464)->NXM_NX_REG0[0]``, ``write_actions(..)``, ``goto_table:2``, ``drop``).
Ports are numbers (``ovs-ofctl --no-names``). The fields and actions the pipeline uses are covered;
anything else is written in os-ken's spelling (and so will not paste into ``ovs-ofctl``).
"""

from __future__ import annotations

import struct
from ipaddress import IPv4Address, IPv6Address

from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from ..dataplane.ofwire import NXAST_CHECK_PKT_LARGER

DEFAULT_PRIORITY = 0x8000  # OVS leaves this priority out of a match
PORT_NAMES = {ofp.OFPP_IN_PORT: "IN_PORT", ofp.OFPP_TABLE: "TABLE", ofp.OFPP_NORMAL: "NORMAL",
              ofp.OFPP_FLOOD: "FLOOD", ofp.OFPP_ALL: "ALL", ofp.OFPP_CONTROLLER: "CONTROLLER",
              ofp.OFPP_LOCAL: "LOCAL", ofp.OFPP_ANY: "ANY"}
FLAG_NAMES = ((ofp.OFPFF_SEND_FLOW_REM, "send_flow_rem"), (ofp.OFPFF_CHECK_OVERLAP, "check_overlap"),
              (ofp.OFPFF_RESET_COUNTS, "reset_counts"), (ofp.OFPFF_NO_PKT_COUNTS, "no_packet_counts"),
              (ofp.OFPFF_NO_BYT_COUNTS, "no_byte_counts"))

ETH_IPV4, ETH_IPV6, ETH_ARP, ETH_RARP = 0x0800, 0x86DD, 0x0806, 0x8035
SHORTHANDS = {(ETH_IPV4, 1): "icmp", (ETH_IPV4, 2): "igmp", (ETH_IPV4, 6): "tcp",
              (ETH_IPV4, 17): "udp", (ETH_IPV4, 132): "sctp", (ETH_IPV6, 58): "icmp6",
              (ETH_IPV6, 6): "tcp6", (ETH_IPV6, 17): "udp6", (ETH_IPV6, 132): "sctp6"}
TYPE_SHORTHANDS = {ETH_IPV4: "ip", ETH_IPV6: "ipv6", ETH_ARP: "arp", ETH_RARP: "rarp",
                   0x8847: "mpls", 0x8848: "mplsm"}

# os-ken's OXM names -> OVS's names where they differ (set_field targets and matches)
OVS_FIELD_NAMES = {"tunnel_id": "tun_id", "tun_ipv4_src": "tun_src", "tun_ipv4_dst": "tun_dst",
                   "ipv4_src": "ip_src", "ipv4_dst": "ip_dst", "ipv6_nd_target": "nd_target",
                   "ipv6_nd_sll": "nd_sll", "ipv6_nd_tll": "nd_tll"}
# fields OVS writes in hexadecimal (with C's %#x: 0 is "0")
HEX_FIELDS = {"tunnel_id", "metadata", "eth_type"} | {f"reg{i}" for i in range(16)}
# field -> (its Nicira/OpenFlow NXM name, width in bits), for move:
NXM_FIELDS = {"in_port": ("NXM_OF_IN_PORT", 16), "eth_dst": ("NXM_OF_ETH_DST", 48),
              "eth_src": ("NXM_OF_ETH_SRC", 48), "eth_type": ("NXM_OF_ETH_TYPE", 16),
              "ip_proto": ("NXM_OF_IP_PROTO", 8), "ipv4_src": ("NXM_OF_IP_SRC", 32),
              "ipv4_dst": ("NXM_OF_IP_DST", 32), "arp_op": ("NXM_OF_ARP_OP", 16),
              "arp_spa": ("NXM_OF_ARP_SPA", 32), "arp_tpa": ("NXM_OF_ARP_TPA", 32),
              "arp_sha": ("NXM_NX_ARP_SHA", 48), "arp_tha": ("NXM_NX_ARP_THA", 48),
              "ipv6_src": ("NXM_NX_IPV6_SRC", 128), "ipv6_dst": ("NXM_NX_IPV6_DST", 128),
              "tunnel_id": ("NXM_NX_TUN_ID", 64), "tun_ipv4_src": ("NXM_NX_TUN_IPV4_SRC", 32),
              "tun_ipv4_dst": ("NXM_NX_TUN_IPV4_DST", 32), "metadata": ("OXM_OF_METADATA", 64),
              **{f"reg{i}": (f"NXM_NX_REG{i}", 32) for i in range(16)}}
NXM_1 = 0x0001  # the Nicira extension class (registers)


def c_hex(value: int) -> str:
    """C's ``%#x``, as OVS prints with it: ``0x3e8``, but ``0`` for zero."""
    return f"{value:#x}" if value else "0"


# -- matches ------------------------------------------------------------------------------------

def _split(value):
    """(value, mask or None) of an os-ken match value."""
    if isinstance(value, tuple) and len(value) == 2:
        return value
    return value, None


def _hex_masked(name: str, value, bits: int) -> str:
    val, mask = _split(value)
    text = f"{name}={c_hex(val)}"
    if mask is not None and mask != (1 << bits) - 1:
        text += f"/{c_hex(mask)}"
    return text


def _int_masked(name: str, value, bits: int) -> str:
    """OVS's 16-bit fields (ports, ICMP type): decimal when exact, hex value/mask when not."""
    val, mask = _split(value)
    if mask is None or mask == (1 << bits) - 1:
        return f"{name}={val}"
    return f"{name}=0x{val:x}/0x{mask:x}"


def _prefix_length(mask: int, bits: int) -> int | None:
    """The prefix length of a contiguous mask (None: not contiguous)."""
    inverted = ~mask & ((1 << bits) - 1)
    if inverted & (inverted + 1):
        return None
    return bits - inverted.bit_length()


def _address_masked(name: str, value, version: int) -> str:
    kind, bits = (IPv4Address, 32) if version == 4 else (IPv6Address, 128)
    val, mask = _split(value)
    text = f"{name}={kind(val)}"
    if mask is not None:
        mask_int = int(kind(mask))
        if mask_int != (1 << bits) - 1:
            length = _prefix_length(mask_int, bits)
            text += f"/{length}" if length is not None else f"/{kind(mask)}"
    return text


def _mac_masked(name: str, value) -> str:
    val, mask = _split(value)
    text = f"{name}={val.lower()}"
    if mask is not None and mask.lower() != "ff:ff:ff:ff:ff:ff":
        text += f"/{mask.lower()}"
    return text


def port_text(port: int) -> str:
    return PORT_NAMES.get(port, str(port))


def match_text(priority: int, items) -> str:
    """A match (os-ken's ``OFPMatch.items()``) and its priority as ``dump-flows`` writes them:
    ``priority=2024,ip,metadata=0x3e8/0xffffff,nw_dst=10.2.0.0/24`` (no comma at the end)."""
    fields = dict(items)
    out = [] if priority == DEFAULT_PRIORITY else [f"priority={priority}"]
    eth_type = fields.pop("eth_type", None)
    proto = fields.pop("ip_proto", None)
    shorthand = SHORTHANDS.get((eth_type, proto)) if proto is not None else None
    if shorthand is not None:
        out.append(shorthand)
        proto = None  # said by the shorthand
    elif eth_type in TYPE_SHORTHANDS:
        out.append(TYPE_SHORTHANDS[eth_type])
    for i in range(16):
        if f"reg{i}" in fields:
            out.append(_hex_masked(f"reg{i}", fields.pop(f"reg{i}"), 32))
    if "tunnel_id" in fields:
        out.append(_hex_masked("tun_id", fields.pop("tunnel_id"), 64))
    for ours, name, version in (("tun_ipv4_src", "tun_src", 4), ("tun_ipv4_dst", "tun_dst", 4),
                                ("tun_ipv6_src", "tun_ipv6_src", 6),
                                ("tun_ipv6_dst", "tun_ipv6_dst", 6)):
        if ours in fields:
            out.append(_address_masked(name, fields.pop(ours), version))
    if "metadata" in fields:
        out.append(_hex_masked("metadata", fields.pop("metadata"), 64))
    if "in_port" in fields:
        out.append(f"in_port={port_text(fields.pop('in_port'))}")
    for ours, name in (("eth_src", "dl_src"), ("eth_dst", "dl_dst")):
        if ours in fields:
            out.append(_mac_masked(name, fields.pop(ours)))
    if eth_type is not None and eth_type not in TYPE_SHORTHANDS:
        out.append(f"dl_type=0x{eth_type:04x}")
    arp = eth_type in (ETH_ARP, ETH_RARP)
    if eth_type == ETH_IPV6:
        addresses = (("ipv6_src", "ipv6_src", 6), ("ipv6_dst", "ipv6_dst", 6))
    elif arp:
        addresses = (("arp_spa", "arp_spa", 4), ("arp_tpa", "arp_tpa", 4))
    else:
        addresses = (("ipv4_src", "nw_src", 4), ("ipv4_dst", "nw_dst", 4))
    for ours, name, version in addresses:
        if ours in fields:
            out.append(_address_masked(name, fields.pop(ours), version))
    if arp and "arp_op" in fields:
        out.append(f"arp_op={fields.pop('arp_op')}")
    elif proto is not None:
        out.append(f"nw_proto={proto}")
    if arp:
        for name in ("arp_sha", "arp_tha"):
            if name in fields:
                out.append(_mac_masked(name, fields.pop(name)))
    for ours, name in (("icmpv4_type", "icmp_type"), ("icmpv4_code", "icmp_code"),
                       ("icmpv6_type", "icmp_type"), ("icmpv6_code", "icmp_code")):
        if ours in fields:
            out.append(_int_masked(name, fields.pop(ours), 8))
    if "ipv6_nd_target" in fields:
        out.append(_address_masked("nd_target", fields.pop("ipv6_nd_target"), 6))
    for ours, name in (("ipv6_nd_sll", "nd_sll"), ("ipv6_nd_tll", "nd_tll")):
        if ours in fields:
            out.append(_mac_masked(name, fields.pop(ours)))
    for side in ("src", "dst"):
        for l4 in ("tcp", "udp", "sctp"):
            if f"{l4}_{side}" in fields:
                out.append(_int_masked(f"tp_{side}", fields.pop(f"{l4}_{side}"), 16))
    # anything the pipeline does not use: os-ken's spelling
    out += [f"{name}={value}" for name, value in fields.items()]
    return ",".join(out)


# -- actions ------------------------------------------------------------------------------------

def _field_value(field: str, value) -> str:
    val, mask = _split(value)
    if field in HEX_FIELDS:
        text, mask_text = c_hex(val), None if mask is None else c_hex(mask)
    elif isinstance(val, str):
        text, mask_text = val.lower(), None if mask is None else str(mask).lower()
    else:
        text, mask_text = str(val), None if mask is None else str(mask)
    return text if mask_text is None else f"{text}/{mask_text}"


def _subfield(field: str, offset: int, n_bits: int) -> str:
    # os-ken names a field the switch sent as an NXM header "<oxm name>_nxm" (OVS sends
    # NXM_OF_ETH_SRC where we wrote OXM's eth_src): the same field
    field = field.removesuffix("_nxm")
    name, width = NXM_FIELDS.get(field, (field, None))
    if offset == 0 and n_bits == width:
        return f"{name}[]"
    if n_bits == 1:
        return f"{name}[{offset}]"
    return f"{name}[{offset}..{offset + n_bits - 1}]"


def _check_pkt_larger(data: bytes) -> str:
    length, bit, header = struct.unpack_from("!HHI", data)
    nxm_class, field = header >> 16, header >> 9 & 0x7F
    target = f"NXM_NX_REG{field}" if nxm_class == NXM_1 else f"NXM_{header:#x}"
    return f"check_pkt_larger({length})->{target}[{bit}]"


# Nicira multipath's hash fields and algorithms, by number, as ovs-ofctl names them
_HASH_FIELDS = {0: "eth_src", 1: "symmetric_l4", 2: "symmetric_l3l4", 3: "symmetric_l3l4+udp",
                4: "nw_src", 5: "nw_dst", 6: "symmetric_l3"}
_MULTIPATH_ALGORITHMS = {0: "modulo_n", 1: "hash_threshold", 2: "hrw", 3: "iter_hash"}


def action_text(act) -> str:
    """One OpenFlow action as ``ovs-ofctl`` writes it."""
    if isinstance(act, parser.OFPActionOutput):
        if act.port == ofp.OFPP_CONTROLLER:
            return f"CONTROLLER:{act.max_len}"
        if act.port in PORT_NAMES:
            return PORT_NAMES[act.port]
        return f"output:{act.port}"
    if isinstance(act, parser.OFPActionSetField):
        return f"set_field:{_field_value(act.key, act.value)}->" \
               f"{OVS_FIELD_NAMES.get(act.key, act.key)}"
    if isinstance(act, parser.OFPActionGroup):
        return f"group:{act.group_id}"
    if isinstance(act, parser.OFPActionDecNwTtl):
        return "dec_ttl"
    if isinstance(act, parser.NXActionRegMove):
        return (f"move:{_subfield(act.src_field, act.src_ofs, act.n_bits)}->"
                f"{_subfield(act.dst_field, act.dst_ofs, act.n_bits)}")
    if isinstance(act, parser.NXActionUnknown) and \
            getattr(act, "subtype", None) == NXAST_CHECK_PKT_LARGER:
        return _check_pkt_larger(bytes(act.data))
    if isinstance(act, parser.NXActionMultipath):
        fields = _HASH_FIELDS.get(act.fields, str(act.fields))
        algorithm = _MULTIPATH_ALGORITHMS.get(act.algorithm, str(act.algorithm))
        dst = _subfield(act.dst, act.ofs_nbits >> 6, (act.ofs_nbits & 63) + 1)
        return (f"multipath({fields},{act.basis},{algorithm},{act.max_link + 1},{act.arg},"
                f"{dst})")
    if isinstance(act, parser.OFPActionPopVlan):
        return "pop_vlan"
    if isinstance(act, parser.OFPActionPushVlan):
        return f"push_vlan:0x{act.ethertype:04x}"
    return type(act).__name__


# OVS writes instructions in OpenFlow's execution order, whatever order the message had
_INSTRUCTION_ORDER = {ofp.OFPIT_METER: 0, ofp.OFPIT_APPLY_ACTIONS: 1, ofp.OFPIT_CLEAR_ACTIONS: 2,
                      ofp.OFPIT_WRITE_ACTIONS: 3, ofp.OFPIT_WRITE_METADATA: 4,
                      ofp.OFPIT_GOTO_TABLE: 5}


def instructions_text(insts) -> str:
    """A flow's instructions as the ``actions=`` of ``dump-flows`` (``drop`` when empty)."""
    out = []
    for inst in sorted(insts, key=lambda i: _INSTRUCTION_ORDER.get(i.type, 6)):
        if isinstance(inst, parser.OFPInstructionMeter):
            out.append(f"meter:{inst.meter_id}")
        elif isinstance(inst, parser.OFPInstructionActions):
            if inst.type == ofp.OFPIT_CLEAR_ACTIONS:
                out.append("clear_actions")
            elif inst.type == ofp.OFPIT_WRITE_ACTIONS:
                out.append(f"write_actions({','.join(action_text(a) for a in inst.actions)})")
            else:
                out += [action_text(a) for a in inst.actions]
        elif isinstance(inst, parser.OFPInstructionWriteMetadata):
            text = f"write_metadata:{c_hex(inst.metadata)}"
            if inst.metadata_mask != (1 << 64) - 1:
                text += f"/{c_hex(inst.metadata_mask)}"
            out.append(text)
        elif isinstance(inst, parser.OFPInstructionGotoTable):
            out.append(f"goto_table:{inst.table_id}")
        else:
            out.append(type(inst).__name__)
    return ",".join(out) or "drop"


# -- whole lines --------------------------------------------------------------------------------

def duration_text(sec: int, nsec: int) -> str:
    """OVS's duration: whole seconds, milliseconds when exact, else the nanoseconds needed."""
    text = str(sec)
    if nsec:
        if nsec % 1_000_000 == 0:
            text += f".{nsec // 1_000_000:03d}"
        else:
            text += f".{nsec:09d}".rstrip("0")
    return text + "s"


def flow_line(stat) -> str:
    """One OFPFlowStats as a line of ``ovs-ofctl -O OpenFlow13 dump-flows`` (without its
    leading space)."""
    head = [f"cookie={stat.cookie:#x}", f"duration={duration_text(stat.duration_sec, stat.duration_nsec)}",
            f"table={stat.table_id}", f"n_packets={stat.packet_count}",
            f"n_bytes={stat.byte_count}"]
    if stat.idle_timeout:
        head.append(f"idle_timeout={stat.idle_timeout}")
    if stat.hard_timeout:
        head.append(f"hard_timeout={stat.hard_timeout}")
    text = ", ".join(head) + ", "
    text += "".join(f"{name} " for bit, name in FLAG_NAMES if stat.flags & bit)
    matches = match_text(stat.priority, stat.match.items())
    if matches:
        text += matches + " "
    return text + "actions=" + instructions_text(stat.instructions)


GROUP_TYPES = {ofp.OFPGT_ALL: "all", ofp.OFPGT_SELECT: "select", ofp.OFPGT_INDIRECT: "indirect",
               ofp.OFPGT_FF: "ff"}


def group_line(desc) -> str:
    """One OFPGroupDescStats as a line of ``ovs-ofctl -O OpenFlow13 dump-groups``."""
    parts = [f"group_id={desc.group_id}", f"type={GROUP_TYPES.get(desc.type, desc.type)}"]
    for bucket in desc.buckets:
        bucket_parts = []
        if desc.type == ofp.OFPGT_SELECT:
            bucket_parts.append(f"weight:{bucket.weight}")
        if bucket.watch_port != ofp.OFPP_ANY:
            bucket_parts.append(f"watch_port:{port_text(bucket.watch_port)}")
        if bucket.watch_group != ofp.OFPG_ANY:
            bucket_parts.append(f"watch_group:{bucket.watch_group}")
        acts = ",".join(action_text(a) for a in bucket.actions)
        bucket_parts.append(f"actions={acts or 'drop'}")
        parts.append("bucket=" + ",".join(bucket_parts))
    return ",".join(parts)


def group_stats_line(stat) -> str:
    """One OFPGroupStats as a line of ``ovs-ofctl -O OpenFlow13 dump-group-stats``."""
    parts = [f"group_id={stat.group_id}",
             f"duration={duration_text(stat.duration_sec, stat.duration_nsec)}",
             f"ref_count={stat.ref_count}", f"packet_count={stat.packet_count}",
             f"byte_count={stat.byte_count}"]
    parts += [f"bucket{i}:packet_count={b.packet_count},byte_count={b.byte_count}"
              for i, b in enumerate(stat.bucket_stats)]
    return ",".join(parts)
