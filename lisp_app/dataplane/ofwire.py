"""Plain-data flows straight to OpenFlow 1.3 bytes, for bulk programming.

os-ken builds a message object tree and serializes it generically (about 70 us per encapsulation
flow-mod here); installing 100,000 mappings that way costs more than the switch needs to install
them. This module writes the flow-mods the pipeline produces with ``struct`` directly, and frames
them in an ONF bundle (the OpenFlow 1.3 extension EXT-230 that OVS implements; ``ovs-ofctl
--bundle`` uses it), so that a batch of mappings lands atomically and in one classifier update.

It also writes the rest of what the shell sends: strict flow deletes, group-mods, meter-mods,
packet-outs, aggregate-statistics requests and barriers. The bytes are those os-ken produces for the same message
(``tests/unit/test_ofwire.py`` checks every flow, group and meter the pipeline compiles against
os-ken's serializer). A match field or action this module does not know raises
:class:`Unsupported`; the caller then falls back to os-ken.

:class:`Encoder` holds the memos that make bulk encoding cheap (match fields and instruction
lists are shared by many flows); the app owns one. The module-level functions hold no state.
"""

from __future__ import annotations

import struct
from socket import AF_INET, AF_INET6, inet_pton
from ipaddress import IPv4Address, IPv4Network, IPv6Address, ip_address

from .flows import (OFPP_CONTROLLER, CheckPktLarger, CopyField, DecTtl, Flow, Group,
                    GroupAction, Meter, Multipath, Output, SetField, ToController)
from .pipeline import COOKIE_MASK, COUNTED_KINDS, kind_of

OFP_VERSION = 0x04
OFPT_EXPERIMENTER = 4
OFPT_PACKET_OUT = 13
OFPT_FLOW_MOD = 14
OFPT_GROUP_MOD = 15
OFPT_MULTIPART_REQUEST = 18
OFPT_BARRIER_REQUEST = 20
OFPT_METER_MOD = 29
OFPFC_ADD, OFPFC_DELETE_STRICT = 0, 4
OFPGC_ADD, OFPGC_MODIFY, OFPGC_DELETE = 0, 1, 2
OFPGT_SELECT = 1
OFPMC_ADD, OFPMC_MODIFY = 0, 1
OFPMF_PKTPS = 2
OFPMBT_DROP = 1
OFP_NO_BUFFER = 0xFFFFFFFF
OFPP_ANY = 0xFFFFFFFF  # "any port" in requests and deletes (not a port a flow outputs to)
OFPG_ANY = 0xFFFFFFFF
OFPFF_SEND_FLOW_REM = 1
OFPMP_AGGREGATE = 2
OFPTT_ALL = 0xFF
ALL_BITS = 0xFFFFFFFFFFFFFFFF

ONF_EXPERIMENTER_ID = 0x4F4E4600
ONF_ET_BUNDLE_CONTROL = 2300
ONF_ET_BUNDLE_ADD_MESSAGE = 2301
ONF_BCT_OPEN_REQUEST, ONF_BCT_OPEN_REPLY = 0, 1
ONF_BCT_COMMIT_REQUEST, ONF_BCT_COMMIT_REPLY = 4, 5
ONF_BCT_DISCARD_REQUEST = 6
ONF_BF_ATOMIC, ONF_BF_ORDERED = 1, 2

NX_VENDOR_ID = 0x00002320
NXAST_REG_MOVE = 6
NXAST_MULTIPATH = 10
NX_HASH_FIELDS_NW_SRC = 4  # the IPv4 or IPv6 source address
NX_MP_ALG_MODULO_N = 0
NXAST_CHECK_PKT_LARGER = 49

OXM_BASIC = 0x8000
NXM_1 = 0x0001


class Unsupported(ValueError):
    """A match field, value form or action this encoder does not write (use os-ken's)."""


def _ip(value) -> bytes:
    if isinstance(value, (IPv4Address, IPv6Address)):
        return value.packed
    if type(value) is str:  # the common case, a flow's own text (inet_pton: 10 times faster)
        try:
            return inet_pton(AF_INET6 if ":" in value else AF_INET, value)
        except OSError:
            pass  # (a scope id, or no address: ip_address says which)
    return ip_address(value).packed


def _mac(value) -> bytes:
    raw = bytes.fromhex(str(value).replace(":", ""))
    if len(raw) != 6:
        raise Unsupported(f"not a MAC address: {value!r}")
    return raw


def _uint(size: int):
    def pack(value) -> bytes:
        return int(value).to_bytes(size, "big")
    return pack


# name -> (class, field, value length, value encoder); the numbers are OpenFlow 1.3's and
# Nicira's NXM_1 class (registers and tunnel addresses), as os-ken names them.
OXM_FIELDS = {
    "in_port": (OXM_BASIC, 0, 4, _uint(4)),
    "metadata": (OXM_BASIC, 2, 8, _uint(8)),
    "eth_dst": (OXM_BASIC, 3, 6, _mac),
    "eth_src": (OXM_BASIC, 4, 6, _mac),
    "eth_type": (OXM_BASIC, 5, 2, _uint(2)),
    "ip_proto": (OXM_BASIC, 10, 1, _uint(1)),
    "ipv4_src": (OXM_BASIC, 11, 4, _ip),
    "ipv4_dst": (OXM_BASIC, 12, 4, _ip),
    "udp_src": (OXM_BASIC, 15, 2, _uint(2)),
    "udp_dst": (OXM_BASIC, 16, 2, _uint(2)),
    "icmpv4_type": (OXM_BASIC, 19, 1, _uint(1)),
    "arp_op": (OXM_BASIC, 21, 2, _uint(2)),
    "arp_spa": (OXM_BASIC, 22, 4, _ip),
    "arp_tpa": (OXM_BASIC, 23, 4, _ip),
    "arp_sha": (OXM_BASIC, 24, 6, _mac),
    "arp_tha": (OXM_BASIC, 25, 6, _mac),
    "ipv6_src": (OXM_BASIC, 26, 16, _ip),
    "ipv6_dst": (OXM_BASIC, 27, 16, _ip),
    "icmpv6_type": (OXM_BASIC, 29, 1, _uint(1)),
    "ipv6_nd_target": (OXM_BASIC, 31, 16, _ip),
    "tunnel_id": (OXM_BASIC, 38, 8, _uint(8)),
    **{f"reg{n}": (NXM_1, n, 4, _uint(4)) for n in range(8)},
    "tun_ipv4_src": (NXM_1, 31, 4, _ip),
    "tun_ipv4_dst": (NXM_1, 32, 4, _ip),
    "tun_ipv6_src": (NXM_1, 109, 16, _ip),
    "tun_ipv6_dst": (NXM_1, 110, 16, _ip),
}


def _oxm(name: str, value, masked_ok: bool = True) -> tuple[int, bytes]:
    """(sort key, bytes) of one OXM TLV; os-ken orders a match's fields by the sort key."""
    try:
        cls, fld, size, enc = OXM_FIELDS[name]
    except KeyError:
        raise Unsupported(f"match field {name!r}") from None
    sort_key = (cls << 7) | fld
    if isinstance(value, tuple):
        if not masked_ok or len(value) != 2:
            raise Unsupported(f"{name}: value form {value!r}")
        val, mask = (enc(v) for v in value)
        return sort_key, struct.pack("!I", (cls << 16) | (fld << 9) | 0x100 | (2 * size)) \
            + val + mask
    return sort_key, struct.pack("!I", (cls << 16) | (fld << 9) | size) + enc(value)


def _oxm_header(name: str) -> int:
    """The 32-bit header of an unmasked OXM field (as reg_move names its source and target)."""
    try:
        cls, fld, size, _enc = OXM_FIELDS[name]
    except KeyError:
        raise Unsupported(f"field {name!r}") from None
    return (cls << 16) | (fld << 9) | size


def _pad8(data: bytes) -> bytes:
    return data + bytes(-len(data) % 8)


def check_pkt_larger_body(act: CheckPktLarger) -> bytes:
    """The body of Nicira's check_pkt_larger action after its subtype: packet length, result bit
    offset, the destination register's NXM header, padding to a 24-byte action."""
    nxm_reg = (NXM_1 << 16) | (act.reg << 9) | 4  # NXM_NX_REGn, 4 bytes, no mask
    return struct.pack("!HHI", act.length, act.bit, nxm_reg) + bytes(6)


def multipath_body(act: Multipath) -> bytes:
    """The body of Nicira's multipath action after its subtype (32 bytes in all): hash fields,
    basis, pad, algorithm, the highest link number, the algorithm's argument, pad, where the
    result goes (offset << 6 | bits - 1) and the destination register's NXM header."""
    if not 1 <= act.n_links <= 0x10000 or not 0 <= act.reg < 8:
        raise Unsupported(f"action {act!r}")
    nxm_reg = (NXM_1 << 16) | (act.reg << 9) | 4
    return struct.pack("!HH2xHHI2xHI", NX_HASH_FIELDS_NW_SRC, act.basis, NX_MP_ALG_MODULO_N,
                       act.n_links - 1, 0, act.n_bits - 1, nxm_reg)


def encode_action(act) -> bytes:
    kind = type(act)
    if kind is Output:
        return struct.pack("!HHIH6x", 0, 16, act.port, 0)
    if kind is ToController:
        return struct.pack("!HHIH6x", 0, 16, OFPP_CONTROLLER, act.max_len)
    if kind is SetField:
        _key, tlv = _oxm(act.field, act.value, masked_ok=False)
        return _pad8(struct.pack("!HH", 25, _pad8_len(4 + len(tlv))) + tlv)
    if kind is GroupAction:
        return struct.pack("!HHI", 22, 8, act.group_id)
    if kind is CopyField:
        body = struct.pack("!IHHHHII", NX_VENDOR_ID, NXAST_REG_MOVE, act.n_bits, 0, 0,
                           _oxm_header(act.src), _oxm_header(act.dst))
        return _pad8(struct.pack("!HH", 0xFFFF, _pad8_len(4 + len(body))) + body)
    if kind is DecTtl:
        return struct.pack("!HH4x", 24, 8)
    if kind is CheckPktLarger:
        body = struct.pack("!IH", NX_VENDOR_ID, NXAST_CHECK_PKT_LARGER) + check_pkt_larger_body(act)
        return _pad8(struct.pack("!HH", 0xFFFF, _pad8_len(4 + len(body))) + body)
    if kind is Multipath:
        body = struct.pack("!IH", NX_VENDOR_ID, NXAST_MULTIPATH) + multipath_body(act)
        return struct.pack("!HH", 0xFFFF, 4 + len(body)) + body
    raise Unsupported(f"action {act!r}")


def _pad8_len(n: int) -> int:
    return n + (-n % 8)


def _actions_instruction(itype: int, actions) -> bytes:
    body = b"".join(encode_action(a) for a in actions)
    return struct.pack("!HH4x", itype, 8 + len(body)) + body


def flow_flags(flow: Flow) -> int:
    """The flow-mod flags of ``flow``: the flows whose packets mapstat counts (COUNTED_KINDS)
    tell the controller their final counts when they leave (and host flows when they expire)."""
    return OFPFF_SEND_FLOW_REM if kind_of(flow.cookie) in COUNTED_KINDS else 0


def _encode_instructions(flow: Flow) -> bytes:
    out = []
    if flow.meter is not None:
        out.append(struct.pack("!HHI", 6, 8, flow.meter))
    if flow.apply:
        out.append(_actions_instruction(4, flow.apply))
    if flow.clear:
        out.append(struct.pack("!HH4x", 5, 8))
    if flow.write:
        out.append(_actions_instruction(3, flow.write))
    if flow.metadata is not None:
        out.append(struct.pack("!HH4xQQ", 2, 24, *flow.metadata))
    if flow.goto is not None:
        out.append(struct.pack("!HHB3x", 1, 8, flow.goto))
    return b"".join(out)


# an ONF bundle-add header (as bundle_add writes it) and a flow-mod's fixed part (flow_add's)
_BUNDLED_FLOW_ADD = struct.Struct("!BBHIIIIHH" "BBHIQQBBHHHIIIH2x")
# the same 72 bytes from a template's constant parts, the xids and the bundle id
_SPLICE = struct.Struct("!4sI8sI8sI40s")
OXM_SORT_KEYS = {name: (cls << 7) | fld for name, (cls, fld, _size, _enc) in OXM_FIELDS.items()}


class Encoder:
    """Writes flow-mods, group-mods and meter-mods. It remembers the TLV of each match field
    and the instruction bytes of each instruction list it has written (bounded memos: values
    come and go with the mappings), which is what makes 100,000 flow-mods cheap."""

    MEMO_LIMIT = 1 << 16

    def __init__(self):
        self._tlvs: dict = {}
        self._instructions: dict = {}
        # by the identity of the flow's action tuples (the pipeline shares them among the
        # mappings to the same locators): no hashing of the actions in the common case
        self._instructions_of: dict = {}
        self._tlv_of: dict = {}  # match fields by identity, those met more than once
        self._shapes: dict = {}  # bundled flow-mod templates (bundled_flow_add)
        self._runs: dict = {}  # (id(record), iid, plen) -> run templates (bundled_run)

    def _remember(self, memo: dict, key, value):
        if len(memo) >= self.MEMO_LIMIT:
            memo.clear()
        memo[key] = value
        return value

    def match(self, fields) -> bytes:
        """An OFPMT_OXM match (type, length, TLVs in os-ken's order, padding to 8)."""
        tlvs = []
        memo, of = self._tlvs, self._tlv_of
        for item in fields:
            seen = of.get(id(item))  # a field object many flows share (their instance-id's)
            if seen is not None and seen[0] is item:
                tlvs.append(seen[1])
                continue
            tlv = memo.get(item)
            if tlv is None:
                tlv = self._remember(memo, item, _oxm(*item))
            else:  # seen before: remembered by identity too (held, so its id is not reused)
                self._remember(of, id(item), (item, tlv))
            tlvs.append(tlv)
        tlvs.sort()
        body = b"".join(tlv for _key, tlv in tlvs)
        return _pad8(struct.pack("!HH", 1, 4 + len(body)) + body)

    def instructions(self, flow: Flow) -> bytes:
        """Meter, apply, clear, write, write-metadata, goto: the order os-ken is given them in."""
        apply, write = flow.apply, flow.write
        rest = (flow.meter, flow.clear, flow.metadata, flow.goto)
        seen = self._instructions_of.get((id(apply), id(write)))
        # (the memo holds the tuples it names, so their ids are not reused meanwhile)
        if seen is not None and seen[0] is apply and seen[1] is write and seen[2] == rest:
            return seen[3]
        key = (flow.meter, apply, flow.clear, write, flow.metadata, flow.goto)
        done = self._instructions.get(key)
        if done is None:
            done = self._remember(self._instructions, key, _encode_instructions(flow))
        self._remember(self._instructions_of, (id(apply), id(write)), (apply, write, rest, done))
        return done

    def flow_add(self, flow: Flow, xid: int, flags: int | None = None) -> bytes:
        """OFPT_FLOW_MOD, command ADD, no buffer, for ``flow`` (flags: :func:`flow_flags`)."""
        body = self.match(flow.match) + self.instructions(flow)
        return struct.pack("!BBHIQQBBHHHIIIH2x", OFP_VERSION, OFPT_FLOW_MOD, 48 + len(body), xid,
                           flow.cookie, 0, flow.table, OFPFC_ADD, flow.idle_timeout,
                           flow.hard_timeout, flow.priority, OFP_NO_BUFFER, OFPP_ANY, OFPG_ANY,
                           flow_flags(flow) if flags is None else flags) + body

    def bundled_flow_add(self, flow: Flow, xid: int, bundle_id: int) -> bytes:
        """``bundle_add(flow_add(flow, xid), bundle_id)`` written in one go (bulk installs).

        The flows of a bulk load differ in one match field (the destination prefix): the rest
        of their match fields and their actions are objects the pipeline shares among them.
        Such a flow is written from its shape's template (remembered by the identity of the
        shared objects, which the template holds, so that their ids stay theirs): the header
        with this xid and bundle id, and the one field's TLV spliced in."""
        of, unique, ids = self._tlv_of, None, []
        for item in flow.match:
            seen = of.get(id(item))
            if seen is not None and seen[0] is item:
                ids.append(id(item))
            elif unique is None:
                unique = item
                ids.append(None)
            else:
                return self._bundled_flow_add(flow, xid, bundle_id)
        if unique is None or type(unique[1]) not in (str, tuple):
            return self._bundled_flow_add(flow, xid, bundle_id)
        key = (tuple(ids), unique[0], type(unique[1]), id(flow.apply), id(flow.write),
               flow.clear, flow.metadata, flow.goto, flow.meter, flow.cookie, flow.table,
               flow.priority, flow.idle_timeout, flow.hard_timeout)
        shape = self._shapes.get(key)
        _sort_key, tlv = _oxm(*unique)
        if shape is None:
            shape = self._shape(flow, unique, tlv)
            if shape is None:
                return self._bundled_flow_add(flow, xid, bundle_id)
            self._remember(self._shapes, key, shape)
        head0, head1, head2, head3, before, after, size = shape[:7]
        if len(tlv) != size:  # (a value of another form: the general way)
            return self._bundled_flow_add(flow, xid, bundle_id)
        return _SPLICE.pack(head0, xid, head1, bundle_id, head2, xid, head3) + before + tlv \
            + after

    def _shape(self, flow: Flow, unique, tlv: bytes):
        """A template for the flows like ``flow`` but for the field ``unique``: the parts of its
        message around that field's TLV (and what the key names, held). None when the field's
        place could vary (another field of the same name)."""
        name = unique[0]
        if sum(1 for item in flow.match if item[0] == name) != 1:
            return None
        whole = self._bundled_flow_add(flow, 0, 0)
        keyed = sorted((_oxm(*item) for item in flow.match))
        start = 72 + 4 + sum(len(t) for k, t in keyed if k < OXM_SORT_KEYS[name])
        if whole[start:start + len(tlv)] != tlv:
            return None
        return (whole[0:4], whole[8:16], whole[20:28], whole[32:72], whole[72:start],
                whole[start + len(tlv):], len(tlv), flow.match, flow.apply, flow.write)

    def bundled_run(self, run, next_xid, bundle_id: int) -> list[bytes]:
        """The messages of bundle ``bundle_id`` adding the flows of a run (a bulk load's new
        mappings that differ only in their prefixes: ``run.record``, the shared object their
        flows are compiled from, ``run.prefixes``, and ``run.flow(prefix)``; see
        :class:`lisp_app.dataplane.pipeline.FlowRun`), each numbered by ``next_xid()``.

        The flows of one record, instance-id and IPv4 prefix length differ in the destination
        address alone: each is written from a template of its first one's message, with its
        xids, the bundle id and its address spliced in, without building the flow. Anything
        else (IPv6, a flow whose address cannot be placed) is compiled and written whole."""
        out = []
        append, templates, record = out.append, self._runs, run.record
        rid, last_iid, last_plen, template = id(record), -1, -1, None
        for prefix in run.prefixes:
            net = prefix.network
            if type(net) is not IPv4Network:
                out.append(self.bundled_flow_add(run.flow(prefix), next_xid(), bundle_id))
                continue
            iid, plen = prefix.instance_id, net._prefixlen
            if iid != last_iid or plen != last_plen:  # (a run is mostly of one kind)
                template = templates.get((rid, iid, plen))
                if template is None or template[0] is not record:  # (held: its id stays)
                    template = self._remember(templates, (rid, iid, plen),
                                              (record, *self._run_template(run, prefix)))
                last_iid, last_plen = iid, plen
            pack, head0, head1, head2, before, after = template[1:]
            if pack is None:
                append(self.bundled_flow_add(run.flow(prefix), next_xid(), bundle_id))
                continue
            xid = next_xid()
            append(pack(head0, xid, head1, bundle_id, head2, xid, before,
                        net.network_address._ip, after))
        return out

    def _run_template(self, run, prefix) -> tuple:
        """(pack, head0, head1, head2, before, after) writing the message of ``prefix``'s flow
        in ``run`` for any address of the same prefix length (and instance-id): the parts
        around the xids, the bundle id and the destination address's four bytes. (None, ...)
        when the flow does not match on exactly one IPv4 destination whose bytes can be
        placed."""
        flow = run.flow(prefix)
        whole = self._bundled_flow_add(flow, 0, 0)
        fields = [item for item in flow.match if item[0] == "ipv4_dst"]
        address = prefix.network.network_address.packed
        if len(fields) == 1:
            _key, tlv = _oxm(*fields[0])
            sort_key = OXM_SORT_KEYS["ipv4_dst"]
            start = 72 + 4 + sum(len(t) for k, t in (_oxm(*item) for item in flow.match)
                                 if k < sort_key)
            if whole[start:start + len(tlv)] == tlv and tlv[4:8] == address:
                at = start + 4
                pack = struct.Struct(f"!4sI8sI8sI{at - 32}sI{len(whole) - at - 4}s").pack
                return pack, whole[0:4], whole[8:16], whole[20:28], whole[32:at], whole[at + 4:]
        return None, None, None, None, None, None

    def _bundled_flow_add(self, flow: Flow, xid: int, bundle_id: int) -> bytes:
        body = self.match(flow.match) + self.instructions(flow)
        size = 48 + len(body)
        return _BUNDLED_FLOW_ADD.pack(
            OFP_VERSION, OFPT_EXPERIMENTER, 24 + size, xid, ONF_EXPERIMENTER_ID,
            ONF_ET_BUNDLE_ADD_MESSAGE, bundle_id, 0, ONF_BF_ATOMIC | ONF_BF_ORDERED,
            OFP_VERSION, OFPT_FLOW_MOD, size, xid, flow.cookie, 0, flow.table, OFPFC_ADD,
            flow.idle_timeout, flow.hard_timeout, flow.priority, OFP_NO_BUFFER, OFPP_ANY,
            OFPG_ANY, flow_flags(flow)) + body

    def flow_delete(self, table: int, priority: int, match, cookie: int, xid: int,
                    cookie_mask: int = COOKIE_MASK) -> bytes:
        """OFPT_FLOW_MOD, command DELETE_STRICT: the flow of exactly this table, priority and
        match, and only if its cookie agrees with ``cookie`` under ``cookie_mask`` (ours)."""
        body = self.match(match)
        return struct.pack("!BBHIQQBBHHHIIIH2x", OFP_VERSION, OFPT_FLOW_MOD, 48 + len(body), xid,
                           cookie, cookie_mask, table, OFPFC_DELETE_STRICT, 0, 0, priority,
                           OFP_NO_BUFFER, OFPP_ANY, OFPG_ANY, 0) + body

    def flow_delete_of(self, flow: Flow, xid: int) -> bytes:
        return self.flow_delete(flow.table, flow.priority, flow.match, flow.cookie, xid)

    @staticmethod
    def group_mod(command: int, group: Group, xid: int) -> bytes:
        """OFPT_GROUP_MOD (add or modify) of a select group with weighted buckets."""
        return group_mod(command, group.group_id, group.buckets, xid)

    @staticmethod
    def group_delete(group_id: int, xid: int) -> bytes:
        return group_mod(OFPGC_DELETE, group_id, (), xid)

    @staticmethod
    def meter_mod(command: int, meter: Meter, xid: int) -> bytes:
        return meter_mod(command, meter, xid)


def group_mod(command: int, group_id: int, buckets, xid: int,
              group_type: int = OFPGT_SELECT) -> bytes:
    """OFPT_GROUP_MOD; each bucket: weight, watch port/group ANY, its actions."""
    body = []
    for bucket in buckets:
        acts = b"".join(encode_action(a) for a in bucket.actions)
        body.append(struct.pack("!HHII4x", 16 + len(acts), bucket.weight, OFPP_ANY, OFPG_ANY)
                    + acts)
    raw = b"".join(body)
    return struct.pack("!BBHIHBxI", OFP_VERSION, OFPT_GROUP_MOD, 16 + len(raw), xid, command,
                       group_type, group_id) + raw


def meter_mod(command: int, meter: Meter, xid: int) -> bytes:
    """OFPT_METER_MOD of a packets-per-second meter with one drop band."""
    return struct.pack("!BBHIHHIHHII4x", OFP_VERSION, OFPT_METER_MOD, 32, xid, command,
                       OFPMF_PKTPS, meter.meter_id, OFPMBT_DROP, 16, meter.rate_pps, meter.burst)


def aggregate_request(xid: int, cookie: int, cookie_mask: int = ALL_BITS) -> bytes:
    """OFPMP_AGGREGATE request: the packet, byte and flow counts of the flows (all tables, any
    match) whose cookie agrees with ``cookie`` under ``cookie_mask`` (default: exactly)."""
    return struct.pack("!BBHIHH4xB3xII4xQQHH4x", OFP_VERSION, OFPT_MULTIPART_REQUEST, 56, xid,
                       OFPMP_AGGREGATE, 0, OFPTT_ALL, OFPP_ANY, OFPG_ANY, cookie, cookie_mask,
                       1, 4)


def barrier_request(xid: int) -> bytes:
    return struct.pack("!BBHI", OFP_VERSION, OFPT_BARRIER_REQUEST, 8, xid)


def encode_packet_out(xid: int, in_port: int, out_port: int, data: bytes) -> bytes:
    """OFPT_PACKET_OUT of ``data`` (no buffer) with one output action."""
    action = struct.pack("!HHIH6x", 0, 16, out_port, 0)
    return struct.pack("!BBHIIIH6x", OFP_VERSION, OFPT_PACKET_OUT, 24 + len(action) + len(data),
                       xid, OFP_NO_BUFFER, in_port, len(action)) + action + bytes(data)


def bundle_control(xid: int, bundle_id: int, ctype: int,
                   flags: int = ONF_BF_ATOMIC | ONF_BF_ORDERED) -> bytes:
    """ONF bundle control request (open, commit, discard)."""
    return struct.pack("!BBHIIIIHH", OFP_VERSION, OFPT_EXPERIMENTER, 24, xid, ONF_EXPERIMENTER_ID,
                       ONF_ET_BUNDLE_CONTROL, bundle_id, ctype, flags)


def bundle_add(message: bytes, bundle_id: int,
               flags: int = ONF_BF_ATOMIC | ONF_BF_ORDERED) -> bytes:
    """ONF bundle add: ``message`` (a complete OpenFlow message) joins the bundle. The outer xid
    is the inner message's (OVS refuses a mismatch)."""
    xid = struct.unpack_from("!I", message, 4)[0]
    return struct.pack("!BBHIIIIHH", OFP_VERSION, OFPT_EXPERIMENTER, 24 + len(message), xid,
                       ONF_EXPERIMENTER_ID, ONF_ET_BUNDLE_ADD_MESSAGE, bundle_id, 0, flags) \
        + message


def parse_bundle_control(data: bytes) -> tuple[int, int, int] | None:
    """(xid, bundle id, control type) of an ONF bundle control message, else None."""
    if len(data) < 24:
        return None
    version, mtype, _length, xid, exp, exp_type, bundle_id, ctype, _flags = struct.unpack_from(
        "!BBHIIIIHH", data)
    if (version, mtype, exp, exp_type) != (OFP_VERSION, OFPT_EXPERIMENTER, ONF_EXPERIMENTER_ID,
                                           ONF_ET_BUNDLE_CONTROL):
        return None
    return xid, bundle_id, ctype
