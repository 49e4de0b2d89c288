"""Our plain data <-> os-ken's OpenFlow 1.3 classes, and the switch's replies as JSON-able rows.

ofwire writes what the shell sends; this module covers the rest: os-ken message objects where a
request needs one (statistics by match) or where ofwire does not know a field or action (the
fallback of :func:`lisp_app.dataplane.reconcile.messages`: this module has its ``flow_add`` and
``flow_delete``), the switch's flow statistics as reconciliation records, and the API's views of
flows and groups. It imports os-ken's ofproto modules only (no controller, no hub).
"""

from __future__ import annotations

from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from ..dataplane.flows import (OFPP_CONTROLLER, OFPP_IN_PORT, OFPP_LOCAL, OFPP_NORMAL,
                               CheckPktLarger, CopyField, DecTtl, Flow, Group, GroupAction,
                               Multipath, Output, SetField, ToController, canonical_match)
from ..dataplane.ofwire import (NX_HASH_FIELDS_NW_SRC, NX_MP_ALG_MODULO_N,
                                NXAST_CHECK_PKT_LARGER, check_pkt_larger_body, flow_flags)
from ..dataplane.pipeline import COOKIE_BASE, COOKIE_MASK, KIND_NAMES, kind_of
from ..dataplane.reconcile import FlowRecord
from . import ofctl

ALL_BITS = 0xFFFFFFFFFFFFFFFF


class _Offline:
    """Stands for a datapath where os-ken only needs the protocol modules (serializing)."""

    ofproto = ofp
    ofproto_parser = parser
    id = None


OFFLINE = _Offline()


def match(flow: Flow):
    return parser.OFPMatch(**flow.match_dict())


def actions(acts) -> list:
    out = []
    for act in acts:
        kind = type(act)
        if kind is Output:
            out.append(parser.OFPActionOutput(act.port, 0))
        elif kind is ToController:
            out.append(parser.OFPActionOutput(OFPP_CONTROLLER, act.max_len))
        elif kind is SetField:
            out.append(parser.OFPActionSetField(**{act.field: act.value}))
        elif kind is CopyField:
            out.append(parser.NXActionRegMove(src_field=act.src, dst_field=act.dst,
                                              n_bits=act.n_bits))
        elif kind is GroupAction:
            out.append(parser.OFPActionGroup(act.group_id))
        elif kind is DecTtl:
            out.append(parser.OFPActionDecNwTtl())
        elif kind is CheckPktLarger:
            out.append(parser.NXActionUnknown(NXAST_CHECK_PKT_LARGER,
                                              data=check_pkt_larger_body(act)))
        elif kind is Multipath:
            out.append(parser.NXActionMultipath(
                fields=NX_HASH_FIELDS_NW_SRC, basis=act.basis, algorithm=NX_MP_ALG_MODULO_N,
                max_link=act.n_links - 1, arg=0, ofs_nbits=act.n_bits - 1, dst=f"reg{act.reg}"))
        else:
            raise TypeError(f"no OpenFlow form for {act!r}")
    return out


def instructions(flow: Flow) -> list:
    inst = []
    if flow.meter is not None:
        inst.append(parser.OFPInstructionMeter(flow.meter, ofp.OFPIT_METER))
    if flow.apply:
        inst.append(parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, actions(flow.apply)))
    if flow.clear:
        inst.append(parser.OFPInstructionActions(ofp.OFPIT_CLEAR_ACTIONS, []))
    if flow.write:
        inst.append(parser.OFPInstructionActions(ofp.OFPIT_WRITE_ACTIONS, actions(flow.write)))
    if flow.metadata is not None:
        inst.append(parser.OFPInstructionWriteMetadata(*flow.metadata))
    if flow.goto is not None:
        inst.append(parser.OFPInstructionGotoTable(flow.goto))
    return inst


def flow_mod(flow: Flow, datapath=OFFLINE):
    """The OFPFlowMod (ADD) of ``flow``."""
    return parser.OFPFlowMod(
        datapath, cookie=flow.cookie, table_id=flow.table, command=ofp.OFPFC_ADD,
        idle_timeout=flow.idle_timeout, hard_timeout=flow.hard_timeout, priority=flow.priority,
        buffer_id=ofp.OFP_NO_BUFFER, out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY,
        flags=flow_flags(flow), match=match(flow), instructions=instructions(flow))


def group_mod(command: int, group: Group, datapath=OFFLINE):
    buckets = [parser.OFPBucket(weight=b.weight, watch_port=ofp.OFPP_ANY,
                                watch_group=ofp.OFPG_ANY, actions=actions(b.actions))
               for b in group.buckets]
    return parser.OFPGroupMod(datapath, command, ofp.OFPGT_SELECT, group.group_id, buckets)


def _bytes(msg, xid: int) -> bytes:
    msg.set_xid(xid)
    msg.serialize()
    return bytes(msg.buf)


def flow_add(flow: Flow, xid: int) -> bytes:
    """The flow-mod (ADD) of ``flow`` as os-ken writes it."""
    return _bytes(flow_mod(flow), xid)


def flow_delete(record, xid: int) -> bytes:
    """A strict delete of ``record`` (a Flow or a FlowRecord) under our cookie mask."""
    return _bytes(parser.OFPFlowMod(
        OFFLINE, cookie=record.cookie, cookie_mask=COOKIE_MASK, table_id=record.table,
        command=ofp.OFPFC_DELETE_STRICT, priority=record.priority, out_port=ofp.OFPP_ANY,
        out_group=ofp.OFPG_ANY, match=parser.OFPMatch(**dict(record.match))), xid)


# -- what the switch reports ------------------------------------------------------------------

def match_key(ofp_match) -> tuple:
    """A comparable form of an os-ken OFPMatch (see canonical_match)."""
    return canonical_match(ofp_match.items())


def instruction_bytes(insts) -> bytes:
    """The OpenFlow bytes of parsed instructions (what ofwire writes for the same list)."""
    buf = bytearray()
    for inst in insts:
        inst.serialize(buf, len(buf))
    return bytes(buf)


def flow_record(stat) -> FlowRecord:
    """An OFPFlowStats as reconciliation sees it."""
    return FlowRecord(stat.table_id, stat.priority, match_key(stat.match), stat.cookie,
                      instruction_bytes(stat.instructions), stat.flags)


def flow_view(stat) -> dict:
    return {"table": stat.table_id, "priority": stat.priority, "cookie": hex(stat.cookie),
            "kind": KIND_NAMES.get(kind_of(stat.cookie), "other"),
            "match": {k: _jsonable(v) for k, v in stat.match.items()},
            "actions": describe_instructions(stat.instructions),
            "packets": stat.packet_count, "bytes": stat.byte_count,
            "idle_timeout": stat.idle_timeout, "duration": stat.duration_sec,
            "ofctl": ofctl.flow_line(stat)}


def group_view(desc, stat) -> dict:
    buckets = []
    if desc is not None:
        for b in desc.buckets:
            buckets.append({"weight": b.weight, "actions": [describe_action(a) for a in b.actions]})
    return {"group_id": stat.group_id, "packets": stat.packet_count, "bytes": stat.byte_count,
            "buckets": buckets,
            "bucket_packets": [b.packet_count for b in stat.bucket_stats],
            "ofctl": None if desc is None else ofctl.group_line(desc),
            "ofctl_stats": ofctl.group_stats_line(stat)}


_ACTION_LISTS = {ofp.OFPIT_APPLY_ACTIONS: "apply", ofp.OFPIT_WRITE_ACTIONS: "write"}


def describe_instructions(insts) -> list[str]:
    out = []
    for inst in insts:
        if isinstance(inst, parser.OFPInstructionActions):
            if inst.type == ofp.OFPIT_CLEAR_ACTIONS:
                out.append("clear_actions")
                continue
            label = _ACTION_LISTS.get(inst.type, str(inst.type))
            out.append(f"{label}({','.join(describe_action(a) for a in inst.actions)})")
        elif isinstance(inst, parser.OFPInstructionGotoTable):
            out.append(f"goto_table:{inst.table_id}")
        elif isinstance(inst, parser.OFPInstructionWriteMetadata):
            out.append(f"write_metadata:{inst.metadata:#x}/{inst.metadata_mask:#x}")
        elif isinstance(inst, parser.OFPInstructionMeter):
            out.append(f"meter:{inst.meter_id}")
        else:
            out.append(type(inst).__name__)
    return out


_PORT_NAMES = {OFPP_CONTROLLER: "CONTROLLER", OFPP_IN_PORT: "IN_PORT", OFPP_NORMAL: "NORMAL",
               OFPP_LOCAL: "LOCAL"}


def describe_action(act) -> str:
    if isinstance(act, parser.OFPActionOutput):
        return f"output:{_PORT_NAMES.get(act.port, act.port)}"
    if isinstance(act, parser.OFPActionSetField):
        return f"set_field:{act.value}->{act.key}"
    if isinstance(act, parser.OFPActionGroup):
        return f"group:{act.group_id}"
    if isinstance(act, parser.OFPActionDecNwTtl):
        return "dec_ttl"
    if isinstance(act, parser.NXActionRegMove):
        return f"move:{act.src_field}->{act.dst_field}"
    if isinstance(act, parser.NXActionMultipath):
        return (f"multipath(nw_src,{act.basis},modulo_n,{act.max_link + 1},{act.arg},"
                f"{act.dst}[{act.ofs_nbits >> 6}..{(act.ofs_nbits >> 6) + (act.ofs_nbits & 63)}])")
    if isinstance(act, parser.NXActionUnknown) and \
            getattr(act, "subtype", None) == NXAST_CHECK_PKT_LARGER:
        return f"check_pkt_larger({int.from_bytes(bytes(act.data[:2]), 'big')})"
    return type(act).__name__


def _jsonable(value):
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


def flow_rows(stats) -> list[dict]:
    """The API's rows of our flows, by table and falling priority."""
    rows = [flow_view(s) for s in stats]
    rows.sort(key=lambda f: (f["table"], -f["priority"]))
    return rows


def group_rows(groups, owners: dict) -> list[dict]:
    """The API's rows of (desc, stats) pairs, each with the prefix owning it (``owners``:
    prefix -> group id, as Xtr.group_ids() gives)."""
    by_id = {gid: str(prefix) for prefix, gid in owners.items()}
    return [dict(group_view(d, s), prefix=by_id.get(s.group_id)) for d, s in groups]


def watched_rows(watch, stats) -> list[tuple]:
    """The Xtr's flow-stats rows (cookie, table, priority, our match, packets) for the watched
    flows among ``stats`` (the switch's OFPFlowStats)."""
    by_key = {(f.table, f.priority, canonical_match(f.match)): f for f in watch}
    rows = []
    for s in stats:
        flow = by_key.get((s.table_id, s.priority, match_key(s.match)))
        if flow is not None:
            rows.append((s.cookie, flow.table, flow.priority, flow.match, s.packet_count))
    return rows


# -- requests the shell sends and how it reads their replies ------------------------------------

REPLY_OF = {parser.OFPPortDescStatsRequest: parser.OFPPortDescStatsReply,
            parser.OFPGroupDescStatsRequest: parser.OFPGroupDescStatsReply,
            parser.OFPGroupStatsRequest: parser.OFPGroupStatsReply,
            parser.OFPMeterConfigStatsRequest: parser.OFPMeterConfigStatsReply,
            parser.OFPFlowStatsRequest: parser.OFPFlowStatsReply}


def flow_stats_request(dp, flow: Flow | None = None):
    """Our flows (cookie under COOKIE_MASK), or with ``flow`` exactly that one."""
    if flow is None:
        return parser.OFPFlowStatsRequest(dp, 0, ofp.OFPTT_ALL, ofp.OFPP_ANY, ofp.OFPG_ANY,
                                          COOKIE_BASE, COOKIE_MASK, parser.OFPMatch())
    return parser.OFPFlowStatsRequest(dp, 0, flow.table, ofp.OFPP_ANY, ofp.OFPG_ANY,
                                      flow.cookie, ALL_BITS, match(flow))


def port_maps(port_descs) -> tuple[dict, dict, str | None]:
    """(name -> port number, name -> MAC, the LOCAL port's MAC) of the port descriptions."""
    ports, macs, local_mac = {}, {}, None
    for port in port_descs:
        name = port.name.decode() if isinstance(port.name, bytes) else port.name
        ports[name] = port.port_no
        macs[name] = port.hw_addr
        if port.port_no == OFPP_LOCAL:
            local_mac = port.hw_addr
    return ports, macs, local_mac


def meter_rates(configs) -> dict[int, tuple[int, ...]]:
    return {cfg.meter_id: tuple(b.rate for b in cfg.bands) for cfg in configs}


# OpenFlow 1.3 error types -> the prefix of their codes' names (ofproto_v1_3's constants)
_ERROR_CODE_PREFIX = {
    "OFPET_HELLO_FAILED": "OFPHFC_", "OFPET_BAD_REQUEST": "OFPBRC_",
    "OFPET_BAD_ACTION": "OFPBAC_", "OFPET_BAD_INSTRUCTION": "OFPBIC_",
    "OFPET_BAD_MATCH": "OFPBMC_", "OFPET_FLOW_MOD_FAILED": "OFPFMFC_",
    "OFPET_GROUP_MOD_FAILED": "OFPGMFC_", "OFPET_PORT_MOD_FAILED": "OFPPMFC_",
    "OFPET_TABLE_MOD_FAILED": "OFPTMFC_", "OFPET_QUEUE_OP_FAILED": "OFPQOFC_",
    "OFPET_SWITCH_CONFIG_FAILED": "OFPSCFC_", "OFPET_ROLE_REQUEST_FAILED": "OFPRRFC_",
    "OFPET_METER_MOD_FAILED": "OFPMMFC_", "OFPET_TABLE_FEATURES_FAILED": "OFPTFFC_"}


def error_name(error_type: int, code: int) -> str:
    """An OpenFlow error by name, as ``ovs-ofctl`` and the specification write it
    (``OFPET_BAD_MATCH/OFPBMC_BAD_FIELD``), with the numbers for anything unknown."""
    type_name = next((n for n in _ERROR_CODE_PREFIX if getattr(ofp, n) == error_type), None)
    if type_name is None:
        return f"type {error_type} code {code}"
    prefix = _ERROR_CODE_PREFIX[type_name]
    code_name = next((n for n in dir(ofp) if n.startswith(prefix) and getattr(ofp, n) == code),
                     f"code {code}")
    return f"{type_name}/{code_name}"

