"""A byte-level fake OpenFlow 1.3 switch (test tooling): it consumes the messages the app sends.

``OFSwitch.receive(data)`` takes a stream of OpenFlow 1.3 messages as bytes and applies them as
OVS would: flow-mod ADD (replaces the flow of the same table, priority and match), DELETE_STRICT
(only where the cookie agrees under the cookie mask), group-mod add/modify/delete, meter-mod,
ONF bundles (open, add, commit: applied at commit, all or nothing), packet-out (recorded) and
barrier (counted). A message it cannot apply is recorded in ``errors`` with its xid, as the
switch's OFPT_ERROR would be.

It counts packets per flow as OVS does (:meth:`OFSwitch.hit` stands for traffic): an ADD that
replaces a flow keeps its counts (measured on OVS 3.1 with OpenFlow 1.3), and a flow that leaves
(DELETE_STRICT, or :meth:`OFSwitch.expire`) with OFPFF_SEND_FLOW_REM set sends its final counts.
Aggregate-statistics requests are answered. The asynchronous messages and replies go to
``outbox`` in the order the switch sends them, as :class:`Removed` and :class:`AggregateReply`;
:class:`Datapath` stands for os-ken's datapath between such a switch and the app.

It decodes independently of lisp_app.dataplane.ofwire: flow-mods with os-ken's own message
parser (``OFPFlowMod.parser``), actions with os-ken's action parser, and group-mods, meter-mods,
bundles and packet-outs with this module's own struct layouts. What it holds can be read back
in the record form reconciliation consumes (:meth:`OFSwitch.state`), or as our plain ``Flow``
and ``Group`` objects (:meth:`OFSwitch.flows`, :meth:`OFSwitch.group_list`) for
``tests.fakeswitch.FakeSwitch`` to run packets through. ``preload`` installs flows and groups
written by os-ken's serializer: flows of other controllers (other cookies) or of an earlier run.
:meth:`OFSwitch.reply` answers the multipart requests the shell sends on connect (ports, group
descriptions, meter configurations, flow statistics) with os-ken's reply body objects.
"""

from __future__ import annotations

import copy
import struct
from types import SimpleNamespace
from dataclasses import dataclass, field

from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from lisp_app.dataplane.flows import (OFPP_CONTROLLER, Bucket, CheckPktLarger, CopyField, DecTtl,
                                      Flow, Group, GroupAction, Meter, Multipath, Output, SetField,
                                      ToController, canonical_match)
from lisp_app.dataplane.pipeline import COOKIE_BASE, COOKIE_MASK
from lisp_app.dataplane.reconcile import BridgeState, FlowRecord

OFPT_EXPERIMENTER, OFPT_PACKET_OUT, OFPT_FLOW_MOD, OFPT_GROUP_MOD = 4, 13, 14, 15
OFPT_MULTIPART_REQUEST, OFPT_BARRIER_REQUEST, OFPT_METER_MOD = 18, 20, 29
ONF_EXPERIMENTER = 0x4F4E4600
BUNDLE_CONTROL, BUNDLE_ADD = 2300, 2301
BUNDLE_OPEN, BUNDLE_COMMIT, BUNDLE_DISCARD = 0, 4, 6
NX_CHECK_PKT_LARGER = 49


class Refused(Exception):
    """A message the switch would answer with an error."""


@dataclass
class Entry:
    """One flow in the table: its plain form and what the switch keeps of the flow-mod."""

    flow: Flow
    flags: int
    instructions: bytes  # the instruction bytes as received
    parsed: object = None  # os-ken's OFPFlowMod of it (its match and instruction objects)
    packets: int = 0


@dataclass(frozen=True)
class Removed:
    """An OFPT_FLOW_REMOVED: the flow's cookie, key, reason and final packet count."""

    cookie: int
    key: tuple
    reason: int
    packets: int


@dataclass(frozen=True)
class AggregateReply:
    """The reply to an aggregate-statistics request."""

    xid: int
    packets: int
    flows: int


@dataclass
class PacketOutRecord:
    xid: int
    in_port: int
    actions: tuple
    data: bytes


@dataclass
class Tables:
    flows: dict = field(default_factory=dict)   # (table, priority, canonical match) -> Entry
    groups: dict = field(default_factory=dict)  # id -> Group
    group_actions: dict = field(default_factory=dict)  # id -> [(weight, os-ken actions)]
    meters: dict = field(default_factory=dict)  # id -> Meter


def split(data: bytes):
    """The messages of a byte stream: (type, xid, message bytes)."""
    offset = 0
    while offset < len(data):
        version, mtype, length, xid = struct.unpack_from("!BBHI", data, offset)
        if version != ofp.OFP_VERSION or length < 8 or offset + length > len(data):
            raise Refused(f"bad header at {offset}: version {version} length {length}")
        yield mtype, xid, bytes(data[offset:offset + length])
        offset += length


def plain_action(act):
    """An os-ken parsed action as our plain action (this module's own reading)."""
    if isinstance(act, parser.OFPActionOutput):
        return ToController(act.max_len) if act.port == OFPP_CONTROLLER else Output(act.port)
    if isinstance(act, parser.OFPActionSetField):
        return SetField(act.key, act.value)
    if isinstance(act, parser.OFPActionGroup):
        return GroupAction(act.group_id)
    if isinstance(act, parser.OFPActionDecNwTtl):
        return DecTtl()
    if isinstance(act, parser.NXActionRegMove):
        if act.src_ofs or act.dst_ofs:
            raise Refused("reg_move with offsets")
        return CopyField(act.src_field, act.dst_field, act.n_bits)
    if isinstance(act, parser.NXActionUnknown) and act.subtype == NX_CHECK_PKT_LARGER:
        length, bit, header = struct.unpack_from("!HHI", bytes(act.data))
        return CheckPktLarger(length, (header >> 9) & 0x7F, bit)
    if isinstance(act, parser.NXActionMultipath):
        if (act.fields, act.algorithm, act.arg, act.ofs_nbits >> 6) != (4, 0, 0, 0) or \
                not act.dst.startswith("reg"):
            raise Refused(f"multipath {act!r}")
        mp = Multipath(act.max_link + 1, int(act.dst[3:]), act.basis)
        if act.ofs_nbits & 63 != mp.n_bits - 1:
            raise Refused(f"multipath bits {act!r}")
        return mp
    raise Refused(f"action {act!r}")


def _parsed_actions(buf: bytes, offset: int, end: int) -> list:
    out = []
    while offset < end:
        _type, length = struct.unpack_from("!HH", buf, offset)
        out.append(parser.OFPAction.parser(buf, offset))
        offset += length
    return out


def _actions(buf: bytes, offset: int, end: int) -> tuple:
    return tuple(plain_action(a) for a in _parsed_actions(buf, offset, end))


def decode_flow_mod(data: bytes):
    """(parsed OFPFlowMod, its plain Flow, its instruction bytes)."""
    msg = parser.OFPFlowMod.parser(None, ofp.OFP_VERSION, OFPT_FLOW_MOD, len(data),
                                   struct.unpack_from("!I", data, 4)[0], data)
    fields = dict(apply=(), write=(), clear=False, metadata=None, goto=None, meter=None)
    for inst in msg.instructions:
        if isinstance(inst, parser.OFPInstructionMeter):
            fields["meter"] = inst.meter_id
        elif isinstance(inst, parser.OFPInstructionActions):
            acts = tuple(plain_action(a) for a in inst.actions)
            if inst.type == ofp.OFPIT_APPLY_ACTIONS:
                fields["apply"] = acts
            elif inst.type == ofp.OFPIT_WRITE_ACTIONS:
                fields["write"] = acts
            else:
                fields["clear"] = True
        elif isinstance(inst, parser.OFPInstructionWriteMetadata):
            fields["metadata"] = (inst.metadata, inst.metadata_mask)
        elif isinstance(inst, parser.OFPInstructionGotoTable):
            fields["goto"] = inst.table_id
        else:
            raise Refused(f"instruction {inst!r}")
    flow = Flow(msg.table_id, msg.priority, canonical_match(msg.match.items()), msg.cookie,
                idle_timeout=msg.idle_timeout, hard_timeout=msg.hard_timeout, **fields)
    match_len = struct.unpack_from("!H", data, 50)[0]
    start = 48 + (match_len + 7) // 8 * 8
    return msg, flow, data[start:]


class OFSwitch:
    """One bridge, as the app's OpenFlow connection sees it."""

    def __init__(self, ports: dict | None = None):
        self.ports = ports or {}  # name -> (port number, MAC)
        self.tables = Tables()
        self.bundles: dict[int, list[bytes]] = {}
        self.packet_outs: list[PacketOutRecord] = []
        self.errors: list[tuple[int, str]] = []   # (xid, reason)
        self.barriers = 0
        self.received: list[int] = []             # message types, in order (barriers included)
        self.outbox: list = []                    # Removed and AggregateReply, in order

    # -- input ----------------------------------------------------------------------------------

    def receive(self, data: bytes) -> None:
        for mtype, xid, msg in split(data):
            self.received.append(mtype)
            try:
                self._apply(self.tables, mtype, msg, live=True)
            except Refused as exc:
                self.errors.append((xid, str(exc)))

    def _apply(self, tables: Tables, mtype: int, msg: bytes, live: bool) -> None:
        if mtype == OFPT_FLOW_MOD:
            self._flow_mod(tables, msg)
        elif mtype == OFPT_GROUP_MOD:
            self._group_mod(tables, msg)
        elif mtype == OFPT_METER_MOD:
            self._meter_mod(tables, msg)
        elif mtype == OFPT_PACKET_OUT and live:
            self._packet_out(msg)
        elif mtype == OFPT_BARRIER_REQUEST and live:
            self.barriers += 1
        elif mtype == OFPT_MULTIPART_REQUEST and live:
            self._multipart(tables, msg)
        elif mtype == OFPT_EXPERIMENTER and live:
            self._bundle(msg)
        else:
            raise Refused(f"message type {mtype}" + ("" if live else " in a bundle"))

    def _flow_mod(self, tables: Tables, data: bytes) -> None:
        msg, flow, inst = decode_flow_mod(data)
        key = (flow.table, flow.priority, flow.match)
        if msg.command == ofp.OFPFC_ADD:
            old = tables.flows.get(key)
            tables.flows[key] = Entry(flow, msg.flags, inst, msg,
                                      old.packets if old is not None else 0)
        elif msg.command == ofp.OFPFC_DELETE_STRICT:
            have = tables.flows.get(key)
            mask = msg.cookie_mask
            if have is not None and have.flow.cookie & mask == msg.cookie & mask:
                self._remove(tables, key, ofp.OFPRR_DELETE)
        else:
            raise Refused(f"flow-mod command {msg.command}")

    def _remove(self, tables: Tables, key: tuple, reason: int) -> None:
        entry = tables.flows.pop(key)
        if entry.flags & ofp.OFPFF_SEND_FLOW_REM:
            self.outbox.append(Removed(entry.flow.cookie, key, reason, entry.packets))

    def _multipart(self, tables: Tables, data: bytes) -> None:
        xid, = struct.unpack_from("!I", data, 4)
        mp_type, = struct.unpack_from("!H", data, 8)
        if mp_type != ofp.OFPMP_AGGREGATE or len(data) != 56 or data[48:] != bytes.fromhex(
                "0001000400000000"):
            raise Refused(f"multipart request {mp_type} (only aggregates, any match)")
        table, out_port, out_group, cookie, mask = struct.unpack_from("!B3xII4xQQ", data, 16)
        if (table, out_port, out_group) != (ofp.OFPTT_ALL, ofp.OFPP_ANY, ofp.OFPG_ANY):
            raise Refused("aggregate request for one table, port or group")
        chosen = [e for e in tables.flows.values() if e.flow.cookie & mask == cookie & mask]
        self.outbox.append(AggregateReply(xid, sum(e.packets for e in chosen), len(chosen)))

    def _group_mod(self, tables: Tables, data: bytes) -> None:
        command, gtype, gid = struct.unpack_from("!HBxI", data, 8)
        if command == ofp.OFPGC_DELETE:
            tables.groups.pop(gid, None)
            tables.group_actions.pop(gid, None)
            return
        if gtype != ofp.OFPGT_SELECT:
            raise Refused(f"group type {gtype}")
        buckets, parsed, offset = [], [], 16
        while offset < len(data):
            length, weight, _port, _group = struct.unpack_from("!HHII", data, offset)
            acts = _parsed_actions(data, offset + 16, offset + length)
            buckets.append(Bucket(weight, tuple(plain_action(a) for a in acts)))
            parsed.append((weight, acts))
            offset += length
        if command == ofp.OFPGC_ADD and gid in tables.groups:
            raise Refused(f"group {gid} exists")
        if command == ofp.OFPGC_MODIFY and gid not in tables.groups:
            raise Refused(f"group {gid} unknown")
        if command not in (ofp.OFPGC_ADD, ofp.OFPGC_MODIFY):
            raise Refused(f"group-mod command {command}")
        tables.groups[gid] = Group(gid, tuple(buckets))
        tables.group_actions[gid] = parsed

    def _meter_mod(self, tables: Tables, data: bytes) -> None:
        command, flags, mid = struct.unpack_from("!HHI", data, 8)
        btype, _blen, rate, burst = struct.unpack_from("!HHII", data, 16)
        if flags & ofp.OFPMF_PKTPS == 0 or btype != ofp.OFPMBT_DROP or len(data) != 32:
            raise Refused("only pktps meters with one drop band")
        if command == ofp.OFPMC_ADD and mid in tables.meters:
            raise Refused(f"meter {mid} exists")
        if command == ofp.OFPMC_MODIFY and mid not in tables.meters:
            raise Refused(f"meter {mid} unknown")
        if command == ofp.OFPMC_DELETE:
            tables.meters.pop(mid, None)
            return
        tables.meters[mid] = Meter(mid, rate, burst)

    def _packet_out(self, data: bytes) -> None:
        xid, = struct.unpack_from("!I", data, 4)
        _buffer, in_port, alen = struct.unpack_from("!IIH", data, 8)
        self.packet_outs.append(PacketOutRecord(xid, in_port, _actions(data, 24, 24 + alen),
                                                data[24 + alen:]))

    def _bundle(self, data: bytes) -> None:
        exp, etype, bundle_id = struct.unpack_from("!III", data, 8)
        if exp != ONF_EXPERIMENTER:
            raise Refused(f"experimenter {exp:#x}")
        if etype == BUNDLE_ADD:
            if bundle_id not in self.bundles:
                raise Refused(f"bundle {bundle_id} is not open")
            self.bundles[bundle_id].append(data[24:])
            return
        ctype, = struct.unpack_from("!H", data, 20)
        if etype != BUNDLE_CONTROL:
            raise Refused(f"ONF message {etype}")
        if ctype == BUNDLE_OPEN:
            self.bundles[bundle_id] = []
        elif ctype == BUNDLE_DISCARD:
            self.bundles.pop(bundle_id, None)
        elif ctype == BUNDLE_COMMIT:
            staged = copy.deepcopy(self.tables)
            for inner in self.bundles.pop(bundle_id, []):
                ((mtype, _xid, msg),) = split(inner)
                self._apply(staged, mtype, msg, live=False)  # Refused: nothing is applied
            self.tables = staged
        else:
            raise Refused(f"bundle control {ctype}")

    # -- traffic --------------------------------------------------------------------------------

    def _key(self, flow: Flow) -> tuple:
        return (flow.table, flow.priority, canonical_match(flow.match))

    def hit(self, flow: Flow, packets: int = 1) -> None:
        """``packets`` packets matched the installed ``flow``."""
        self.tables.flows[self._key(flow)].packets += packets

    def packets(self, flow: Flow) -> int:
        return self.tables.flows[self._key(flow)].packets

    def expire(self, flow: Flow, reason: int = ofp.OFPRR_IDLE_TIMEOUT) -> None:
        """The installed ``flow`` timed out."""
        self._remove(self.tables, self._key(flow), reason)

    def take_outbox(self) -> list:
        out, self.outbox = self.outbox, []
        return out

    # -- set-up ---------------------------------------------------------------------------------

    def preload(self, flows=(), groups=()) -> None:
        """Install flows and groups as another writer (os-ken's serializer) would have."""
        from lisp_app.shell import translate
        for group in groups:
            self.receive(_serialized(translate.group_mod(ofp.OFPGC_ADD, group)))
        for flow in flows:
            self.receive(translate.flow_add(flow, 1))

    # -- output ---------------------------------------------------------------------------------

    def state(self, cookie: int = COOKIE_BASE, mask: int = COOKIE_MASK) -> BridgeState:
        """What a flow-stats request for ``cookie``/``mask``, a group-desc and a meter-config
        request would report, as reconciliation records."""
        records = tuple(FlowRecord(e.flow.table, e.flow.priority, e.flow.match, e.flow.cookie,
                                   e.instructions, e.flags)
                        for e in self.tables.flows.values() if e.flow.cookie & mask == cookie)
        return BridgeState(records, frozenset(self.tables.groups),
                           {m.meter_id: (m.rate_pps,) for m in self.tables.meters.values()})

    def reply(self, request) -> list:
        """The reply bodies (os-ken objects) to a multipart request, as OVS would send them."""
        if isinstance(request, parser.OFPPortDescStatsRequest):
            return [parser.OFPPort(no, mac, name.encode(), 0, 0, 0, 0, 0, 0, 0, 0)
                    for name, (no, mac) in self.ports.items()]
        if isinstance(request, parser.OFPGroupDescStatsRequest):
            return [parser.OFPGroupDescStats(
                ofp.OFPGT_SELECT, gid, [parser.OFPBucket(w, ofp.OFPP_ANY, ofp.OFPG_ANY, acts)
                                        for w, acts in self.tables.group_actions[gid]])
                for gid in self.tables.groups]
        if isinstance(request, parser.OFPMeterConfigStatsRequest):
            return [parser.OFPMeterConfigStats(ofp.OFPMF_PKTPS, m.meter_id,
                                               [parser.OFPMeterBandDrop(m.rate_pps, m.burst)])
                    for m in self.tables.meters.values()]
        if isinstance(request, parser.OFPFlowStatsRequest):
            want = canonical_match(request.match.items())
            out = []
            for e in self.tables.flows.values():
                f = e.flow
                if f.cookie & request.cookie_mask != request.cookie & request.cookie_mask:
                    continue
                if request.table_id != ofp.OFPTT_ALL and f.table != request.table_id:
                    continue
                if want and f.match != want:  # (a strict subset of OpenFlow's matching)
                    continue
                out.append(parser.OFPFlowStats(
                    f.table, 1, 0, f.priority, f.idle_timeout, f.hard_timeout, e.flags,
                    f.cookie, 0, 0, e.parsed.match, e.parsed.instructions))
            return out
        raise Refused(f"request {type(request).__name__}")

    def flows(self) -> list[Flow]:
        return [e.flow for e in self.tables.flows.values()]

    def flow_set(self) -> set[Flow]:
        return set(self.flows())

    def group_list(self) -> list[Group]:
        return list(self.tables.groups.values())

    def flags(self, flow: Flow) -> int:
        return self.tables.flows[(flow.table, flow.priority, canonical_match(flow.match))].flags


def _serialized(msg, xid: int = 1) -> bytes:
    msg.set_xid(xid)
    msg.serialize()
    return bytes(msg.buf)


def plain(flow: Flow) -> Flow:
    """``flow`` with its match in the canonical form the switch reports."""
    return Flow(flow.table, flow.priority, canonical_match(flow.match), flow.cookie,
                flow.apply, flow.write, flow.clear, flow.metadata, flow.goto, flow.meter,
                flow.idle_timeout, flow.hard_timeout)


class Datapath:
    """An os-ken datapath stand-in for the app (lisp_app.app.LispApp): what it sends goes to
    ``switch``; the switch's aggregate replies and FlowRemoved messages reach ``app``'s handlers
    at once, in the order the switch sent them (without ``app``, nothing answers a poll of the
    counters)."""

    ofproto = ofp
    ofproto_parser = parser

    def __init__(self, dpid: int, switch: OFSwitch, app=None):
        self.id, self.switch, self.xid, self.app = dpid, switch, 0, app

    def send(self, data: bytes) -> None:
        self.switch.receive(data)
        for out in self.switch.take_outbox():
            if self.app is None:
                continue
            if isinstance(out, AggregateReply):
                self.app._aggregate_reply(SimpleNamespace(msg=SimpleNamespace(
                    datapath=self, xid=out.xid, body=SimpleNamespace(packet_count=out.packets))))
            else:
                self.app._flow_removed(SimpleNamespace(msg=SimpleNamespace(
                    datapath=self, cookie=out.cookie, packet_count=out.packets,
                    reason=out.reason, match=parser.OFPMatch(**dict(out.key[2])))))
