"""The os-ken application: the only place that touches datapaths, the hub and OpenFlow messages.

It identifies the two bridges by datapath id, reconciles their meters, groups and flows with what
the :class:`~lisp_app.control.xtr.Xtr` wants (adding what is missing, removing our stale flows,
never touching flows without our cookie), feeds packet-ins and timers to the Xtr and turns the
effects it returns into flow-mods, group-mods and packet-outs.
"""

from __future__ import annotations

import logging
import time

from os_ken.app.ofctl import api as ofctl_api
from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import DEAD_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
from os_ken.lib import hub
from os_ken.ofproto import ofproto_v1_3

from .alt.effects import Announce, Withdraw
from .node import Xtr
from .dataplane.effects import LISP, UNDERLAY, FlowChange, PacketOut
from .dataplane.flows import (CheckPktLarger, CopyField, DecTtl, Flow, Group, GroupAction, Meter,
                              Output, SetField, ToController)
from .dataplane import ofwire
from .dataplane.ofwire import NXAST_CHECK_PKT_LARGER, check_pkt_larger_body
from .dataplane.flows import canonical_match
from .dataplane.pipeline import (COOKIE_BASE, COOKIE_MASK, K_DECAP, K_DROP, K_ENCAP, K_HOST,
                                 K_NEGATIVE, cookie, kind_of)

LOG = logging.getLogger("lisp_app")

TIMER_TICK = 0.1
STATS_INTERVAL = 5.0
WATCH_HORIZON = 2 * STATS_INTERVAL  # start watching a mapping's counter this early
WATCH_ONE_BY_ONE = 200  # more watched flows than this: one full flow-stats dump instead
STATS_DUTY = 10  # a poll that took t seconds is followed by at least 10 t seconds without one
# Resolve the underlay next hops again shortly after connecting and then every minute: OVS's
# tunnel neighbour cache, which learns from these replies, can miss the first answers while the
# namespace's addresses and routes are still settling (measured for IPv6 next hops on first start).
WARM_AGAIN_AFTER = (1.0, 2.0, 4.0)  # successive waits after connecting, then WARM_INTERVAL
ALT_INTERVAL = 2.0  # apply ALT announcements and refresh session states this often
WARM_INTERVAL = 60.0


class LispApp(app_manager.OSKenApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.config = kwargs["lisp_config"]
        self.alt = None
        if self.config.alt is not None:
            from .alt.speaker import AltSpeaker
            self.alt = AltSpeaker(self.config.alt)
        self.xtr = Xtr(self.config, alt_rib=self.alt.state.rib if self.alt else None)
        self.datapaths = {}  # bridge name -> datapath, once reconciled
        self.bridge_of_dpid = {self.config.lisp_bridge.datapath_id: LISP,
                               self.config.underlay.datapath_id: UNDERLAY}
        self.switch_groups: set[int] = set()
        self.started = time.monotonic()
        self.workers = []
        self._next_warm = None
        self._warm_waits: list[float] = []
        self._errors: dict[int, str] = {}  # xid -> the switch's error, the most recent ones
        self._next_bundle = 1
        self._bulk_running = 0  # bulk installs under way: the statistics poll waits for them

    def start(self):
        super().start()
        self.workers.append(hub.spawn(self._timer_loop))
        self.workers.append(hub.spawn(self._stats_loop))
        if self.config.api.port:
            from .api.server import serve
            self.workers.append(hub.spawn(serve, self, self.config.api.host, self.config.api.port))
        if self.alt is not None:
            self.alt.start()
            self.execute(self.xtr.on_start(time.monotonic()))
            self.workers.append(hub.spawn(self._alt_loop))

    def stop(self):
        for worker in self.workers:  # endless loops: OSKenApp.stop() would wait for them forever
            hub.kill(worker)
        self.workers = []
        if self.alt is not None:
            self.alt.stop()  # withdraws our prefixes from the ALT
        super().stop()

    def _alt_loop(self) -> None:
        while True:
            try:
                self.alt.reconcile()
            except Exception:
                LOG.exception("ALT reconciliation failed")
            hub.sleep(ALT_INTERVAL)

    # -- connection and reconciliation ----------------------------------------------------------

    @set_ev_cls(ofp_event.EventOFPStateChange, [MAIN_DISPATCHER, DEAD_DISPATCHER])
    def _state_change(self, ev):
        dp = ev.datapath
        bridge = self.bridge_of_dpid.get(dp.id)
        if ev.state == MAIN_DISPATCHER:
            if bridge is None:
                LOG.warning("datapath %016x is neither the LISP nor the underlay bridge of the "
                            "config: leaving it alone", dp.id or 0)
                return
            hub.spawn(self._connect, bridge, dp)
        elif ev.state == DEAD_DISPATCHER and bridge is not None:
            if self.datapaths.get(bridge) is dp:
                del self.datapaths[bridge]
                LOG.warning("%s bridge disconnected", bridge)

    def _connect(self, bridge: str, dp) -> None:
        try:
            self._reconcile(bridge, dp)
        except Exception:  # a failed reconciliation must not kill the controller
            LOG.exception("could not program the %s bridge", bridge)

    def _request(self, dp, msg, reply_cls):
        return ofctl_api.send_msg(self, msg, reply_cls=reply_cls, reply_multi=True) or []

    def _reconcile(self, bridge: str, dp) -> None:
        parser, ofp = dp.ofproto_parser, dp.ofproto
        ports, macs, local_mac = {}, {}, None
        for reply in self._request(dp, parser.OFPPortDescStatsRequest(dp, 0),
                                   parser.OFPPortDescStatsReply):
            for port in reply.body:
                name = port.name.decode() if isinstance(port.name, bytes) else port.name
                ports[name] = port.port_no
                macs[name] = port.hw_addr
                if port.port_no == ofp.OFPP_LOCAL:
                    local_mac = port.hw_addr
        current_groups = set()
        for reply in self._request(dp, parser.OFPGroupDescStatsRequest(dp, 0),
                                   parser.OFPGroupDescStatsReply):
            current_groups.update(g.group_id for g in reply.body)
        if bridge == LISP:
            self.xtr.lisp_bridge_ready(ports, macs)
            self.xtr.avoid_group_ids(current_groups)
            self.xtr.reprogram_mappings()
        else:
            self.xtr.underlay_bridge_ready(ports, local_mac)
        meters, flows, groups = self.xtr.desired(bridge)
        self._reconcile_meters(dp, meters)
        existing = {}
        for reply in self._request(dp, parser.OFPFlowStatsRequest(
                dp, 0, ofp.OFPTT_ALL, ofp.OFPP_ANY, ofp.OFPG_ANY, COOKIE_BASE, COOKIE_MASK,
                parser.OFPMatch()), parser.OFPFlowStatsReply):
            for stat in reply.body:
                existing[(stat.table_id, stat.priority, _match_key(stat.match))] = stat
        wanted = {}
        for flow in flows:
            wanted[self._canonical_key(dp, flow)] = flow
        stale = [stat for key, stat in existing.items() if key not in wanted]
        for stat in stale:
            dp.send_msg(parser.OFPFlowMod(
                dp, cookie=stat.cookie, cookie_mask=COOKIE_MASK, table_id=stat.table_id,
                command=ofp.OFPFC_DELETE_STRICT, priority=stat.priority,
                out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY, match=stat.match))
        self.switch_groups = current_groups if bridge == LISP else self.switch_groups
        for group in groups:
            self._send_group(dp, group)
        added = 0
        for key, flow in wanted.items():
            have = existing.get(key)
            if have is None or not self._same_instructions(dp, have, flow):
                dp.send_msg(self._flow_mod(dp, flow))
                added += 1
        for gid in current_groups - {g.group_id for g in groups}:
            if bridge == LISP:
                dp.send_msg(parser.OFPGroupMod(dp, ofp.OFPGC_DELETE, ofp.OFPGT_SELECT, gid, []))
                self.switch_groups.discard(gid)
        self._barrier(dp)
        self.datapaths[bridge] = dp
        if bridge == UNDERLAY:
            self.execute(self.xtr.warm_underlay(time.monotonic()))
            self._warm_waits = list(WARM_AGAIN_AFTER)
            self._next_warm = time.monotonic() + self._warm_waits.pop(0)
        LOG.info("%s bridge %016x programmed: %d flows added, %d stale removed, %d kept",
                 bridge, dp.id, added, len(stale), len(wanted) - added)

    def _reconcile_meters(self, dp, meters: list[Meter]) -> None:
        parser, ofp = dp.ofproto_parser, dp.ofproto
        present = {}
        for reply in self._request(dp, parser.OFPMeterConfigStatsRequest(dp, 0, ofp.OFPM_ALL),
                                   parser.OFPMeterConfigStatsReply):
            for cfg in reply.body:
                present[cfg.meter_id] = [b.rate for b in cfg.bands]
        for meter in meters:
            if present.get(meter.meter_id) == [meter.rate_pps]:
                continue
            command = ofp.OFPMC_MODIFY if meter.meter_id in present else ofp.OFPMC_ADD
            band = parser.OFPMeterBandDrop(rate=meter.rate_pps, burst_size=meter.burst)
            dp.send_msg(parser.OFPMeterMod(dp, command, ofp.OFPMF_PKTPS, meter.meter_id, [band]))

    def _barrier(self, dp) -> None:
        ofctl_api.send_msg(self, dp.ofproto_parser.OFPBarrierRequest(dp),
                           reply_cls=dp.ofproto_parser.OFPBarrierReply)

    # -- plain-data flows -> OpenFlow -----------------------------------------------------------

    def _match(self, dp, flow: Flow):
        return dp.ofproto_parser.OFPMatch(**flow.match_dict())

    def _canonical_key(self, dp, flow: Flow) -> tuple:
        """The flow's key as the switch will report it (tests/unit/test_ofwire.py checks that
        canonical_match agrees with os-ken's serialize-and-parse round trip)."""
        return (flow.table, flow.priority, canonical_match(flow.match))

    def _actions(self, dp, actions) -> list:
        parser, ofp = dp.ofproto_parser, dp.ofproto
        out = []
        for act in actions:
            kind = type(act)
            if kind is Output:
                out.append(parser.OFPActionOutput(act.port, 0))
            elif kind is ToController:
                out.append(parser.OFPActionOutput(ofp.OFPP_CONTROLLER, act.max_len))
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
            else:
                raise TypeError(f"no OpenFlow form for {act!r}")
        return out

    def _instructions(self, dp, flow: Flow) -> list:
        parser, ofp = dp.ofproto_parser, dp.ofproto
        inst = []
        if flow.meter is not None:
            inst.append(parser.OFPInstructionMeter(flow.meter, ofp.OFPIT_METER))
        if flow.apply:
            inst.append(parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS,
                                                     self._actions(dp, flow.apply)))
        if flow.clear:
            inst.append(parser.OFPInstructionActions(ofp.OFPIT_CLEAR_ACTIONS, []))
        if flow.write:
            inst.append(parser.OFPInstructionActions(ofp.OFPIT_WRITE_ACTIONS,
                                                     self._actions(dp, flow.write)))
        if flow.metadata is not None:
            inst.append(parser.OFPInstructionWriteMetadata(*flow.metadata))
        if flow.goto is not None:
            inst.append(parser.OFPInstructionGotoTable(flow.goto))
        return inst

    def _flow_mod(self, dp, flow: Flow, command=None):
        parser, ofp = dp.ofproto_parser, dp.ofproto
        flags = ofp.OFPFF_SEND_FLOW_REM if kind_of(flow.cookie) == K_HOST else 0
        return parser.OFPFlowMod(
            dp, cookie=flow.cookie, table_id=flow.table,
            command=ofp.OFPFC_ADD if command is None else command,
            idle_timeout=flow.idle_timeout, hard_timeout=flow.hard_timeout,
            priority=flow.priority, buffer_id=ofp.OFP_NO_BUFFER, out_port=ofp.OFPP_ANY,
            out_group=ofp.OFPG_ANY, flags=flags, match=self._match(dp, flow),
            instructions=self._instructions(dp, flow))

    def _same_instructions(self, dp, stat, flow: Flow) -> bool:
        want = [i.to_jsondict() for i in self._instructions(dp, flow)]
        have = [i.to_jsondict() for i in stat.instructions]
        return want == have and stat.cookie == flow.cookie

    def _send_group(self, dp, group: Group) -> None:
        parser, ofp = dp.ofproto_parser, dp.ofproto
        buckets = [parser.OFPBucket(weight=b.weight, watch_port=ofp.OFPP_ANY,
                                    watch_group=ofp.OFPG_ANY,
                                    actions=self._actions(dp, b.actions))
                   for b in group.buckets]
        command = ofp.OFPGC_MODIFY if group.group_id in self.switch_groups else ofp.OFPGC_ADD
        dp.send_msg(parser.OFPGroupMod(dp, command, ofp.OFPGT_SELECT, group.group_id, buckets))
        self.switch_groups.add(group.group_id)

    # -- effects --------------------------------------------------------------------------------

    def execute(self, effects) -> None:
        for effect in effects:
            if isinstance(effect, PacketOut):
                self._packet_out(effect)
            elif isinstance(effect, FlowChange):
                self._flow_change(effect)
            elif isinstance(effect, (Announce, Withdraw)):
                if self.alt is not None:
                    self.alt.apply(effect)

    def execute_bulk(self, effects) -> dict:
        """Carry out ``effects`` as ``execute`` does, but send each bridge's new flows in one
        atomic ONF bundle and return once the switch has committed it (a barrier follows), so the
        caller knows the switch holds them. Returns counts; raises RuntimeError naming the
        switch's error if it refused any part (an atomic bundle then changes nothing)."""
        self._bulk_running += 1
        try:
            return self._execute_bulk(effects)
        finally:
            self._bulk_running -= 1

    def _execute_bulk(self, effects) -> dict:
        adds: dict[str, list[Flow]] = {}
        counts = {"flows": 0, "groups": 0, "bundles": 0}
        for effect in effects:
            if isinstance(effect, PacketOut):
                self._packet_out(effect)
            elif isinstance(effect, FlowChange):
                dp = self.datapaths.get(effect.bridge)
                if dp is None:
                    continue  # programmed in full when the bridge (re)connects
                if effect.delete or effect.groups or effect.delete_groups:
                    self._flow_change(FlowChange(effect.bridge, delete=effect.delete,
                                                 groups=effect.groups,
                                                 delete_groups=effect.delete_groups))
                    counts["groups"] += len(effect.groups)
                adds.setdefault(effect.bridge, []).extend(effect.add)
        for bridge, flows in adds.items():
            if flows:  # the bundle ends with a barrier
                self._send_bundle(self.datapaths[bridge], flows)
                counts["flows"] += len(flows)
                counts["bundles"] += 1
            else:
                self._barrier(self.datapaths[bridge])
        return counts

    def _send_bundle(self, dp, flows: list[Flow], chunk: int = 256) -> None:
        bundle_id = self._next_bundle
        self._next_bundle = (self._next_bundle % 0xFFFFFFFF) + 1
        first = self._xid(dp)
        dp.send(ofwire.bundle_control(first, bundle_id, ofwire.ONF_BCT_OPEN_REQUEST))
        parts = []
        for flow in flows:
            parts.append(ofwire.bundle_add(self._flow_add_bytes(dp, flow), bundle_id))
            if len(parts) >= chunk:
                dp.send(b"".join(parts))
                parts = []
        commit = self._xid(dp)
        parts.append(ofwire.bundle_control(commit, bundle_id, ofwire.ONF_BCT_COMMIT_REQUEST))
        dp.send(b"".join(parts))
        self._barrier(dp)
        failed = [self._errors[x] for x in list(self._errors)
                  if _xid_in(x, first, commit)]
        if failed:
            raise RuntimeError(f"the switch refused bundle {bundle_id} ({len(flows)} flows): "
                               f"{failed[0]}" + (f" and {len(failed) - 1} more errors"
                                                 if len(failed) > 1 else ""))

    def _flow_add_bytes(self, dp, flow: Flow) -> bytes:
        """The flow-mod (ADD) for ``flow``: written by ofwire, or by os-ken where ofwire does
        not know a field or action (tests/unit/test_ofwire.py: both give the same bytes)."""
        xid = self._xid(dp)
        flags = ofwire.OFPFF_SEND_FLOW_REM if kind_of(flow.cookie) == K_HOST else 0
        try:
            return ofwire.encode_flow_add(flow, xid, flags)
        except ofwire.Unsupported:
            msg = self._flow_mod(dp, flow)
            msg.set_xid(xid)
            msg.serialize()
            return bytes(msg.buf)

    @staticmethod
    def _xid(dp) -> int:
        dp.xid = (dp.xid + 1) & 0xFFFFFFFF
        return dp.xid

    def _packet_out(self, out: PacketOut) -> None:
        dp = self.datapaths.get(out.bridge)
        if dp is None:
            LOG.debug("%s bridge not connected: packet-out dropped", out.bridge)
            return
        dp.send(ofwire.encode_packet_out(self._xid(dp), out.in_port, out.out_port, out.data))

    def _flow_change(self, change: FlowChange) -> None:
        dp = self.datapaths.get(change.bridge)
        if dp is None:
            return  # programmed in full when the bridge (re)connects
        parser, ofp = dp.ofproto_parser, dp.ofproto
        for flow in change.delete:
            dp.send_msg(parser.OFPFlowMod(
                dp, cookie=flow.cookie, cookie_mask=COOKIE_MASK, table_id=flow.table,
                command=ofp.OFPFC_DELETE_STRICT, priority=flow.priority, out_port=ofp.OFPP_ANY,
                out_group=ofp.OFPG_ANY, match=self._match(dp, flow)))
        for group in change.groups:
            self._send_group(dp, group)
        for flow in change.add:
            dp.send(self._flow_add_bytes(dp, flow))
        for gid in change.delete_groups:
            dp.send_msg(parser.OFPGroupMod(dp, ofp.OFPGC_DELETE, ofp.OFPGT_SELECT, gid, []))
            self.switch_groups.discard(gid)

    # -- events ---------------------------------------------------------------------------------

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def _packet_in(self, ev):
        msg = ev.msg
        bridge = self.bridge_of_dpid.get(msg.datapath.id)
        if bridge is None or bridge not in self.datapaths:
            return
        try:
            effects = self.xtr.on_packet_in(bridge, msg.cookie, msg.match.get("in_port", 0),
                                            msg.match.get("metadata", 0), bytes(msg.data),
                                            time.monotonic())
        except Exception:  # one bad packet must never take the handler down
            self.xtr.stats.bad_header += 1
            LOG.exception("packet-in on the %s bridge could not be handled", bridge)
            return
        self.execute(effects)

    @set_ev_cls(ofp_event.EventOFPFlowRemoved, MAIN_DISPATCHER)
    def _flow_removed(self, ev):
        msg = ev.msg
        if kind_of(msg.cookie) == K_HOST:
            self.xtr.host_expired(dict(msg.match.items()))

    @set_ev_cls(ofp_event.EventOFPErrorMsg, MAIN_DISPATCHER)
    def _error(self, ev):
        msg = ev.msg
        LOG.error("switch %016x refused a message: type %d code %d (%s)", msg.datapath.id,
                  msg.type, msg.code, bytes(msg.data[:64]).hex())
        self._errors[msg.xid] = f"type {msg.type} code {msg.code}"
        if len(self._errors) > 1024:
            del self._errors[next(iter(self._errors))]

    # -- threads --------------------------------------------------------------------------------

    def _timer_loop(self) -> None:
        while True:
            now = time.monotonic()
            try:
                effects = self.xtr.on_timer(now) + self.xtr.retry_next_hop(now)
                if self._next_warm is not None and now >= self._next_warm and \
                        UNDERLAY in self.datapaths:
                    effects += self.xtr.warm_underlay(now)
                    self._next_warm = now + (self._warm_waits.pop(0) if self._warm_waits
                                             else WARM_INTERVAL)
                self.execute(effects)
            except Exception:
                LOG.exception("timer work failed")
            deadline = self.xtr.next_deadline()
            wait = TIMER_TICK if deadline is None else min(TIMER_TICK, max(0.01, deadline - now))
            hub.sleep(wait)

    def _stats_loop(self) -> None:
        """Poll our flows' counters every STATS_INTERVAL seconds, or less often when a poll
        is expensive (a big map-cache): the poll takes at most 1/STATS_DUTY of the time."""
        pause = STATS_INTERVAL
        while True:
            hub.sleep(pause)
            if self._bulk_running:
                pause = STATS_INTERVAL
                continue
            start = time.monotonic()
            try:
                self.poll_flow_stats()
            except Exception:
                LOG.exception("flow statistics poll failed")
            pause = max(STATS_INTERVAL, STATS_DUTY * (time.monotonic() - start))

    def flow_stats(self, bridge: str) -> list:
        """Our flows on a bridge as the switch reports them (OFPFlowStats objects)."""
        dp = self.datapaths.get(bridge)
        if dp is None:
            return []
        parser, ofp = dp.ofproto_parser, dp.ofproto
        stats = []
        for reply in self._request(dp, parser.OFPFlowStatsRequest(
                dp, 0, ofp.OFPTT_ALL, ofp.OFPP_ANY, ofp.OFPG_ANY, COOKIE_BASE, COOKIE_MASK,
                parser.OFPMatch()), parser.OFPFlowStatsReply):
            stats.extend(reply.body)
        return stats

    def echo_rtt(self, bridge: str, count: int = 10) -> list[float]:
        """OpenFlow echo round trips to a bridge, in seconds (the controller's own latency floor)."""
        dp = self.datapaths.get(bridge)
        if dp is None:
            return []
        parser = dp.ofproto_parser
        rtts = []
        for _ in range(count):
            start = time.perf_counter()
            ofctl_api.send_msg(self, parser.OFPEchoRequest(dp, data=b"lisp"),
                               reply_cls=parser.OFPEchoReply)
            rtts.append(time.perf_counter() - start)
        return rtts

    def group_stats(self, bridge: str) -> list:
        dp = self.datapaths.get(bridge)
        if dp is None:
            return []
        parser = dp.ofproto_parser
        desc = {}
        for reply in self._request(dp, parser.OFPGroupDescStatsRequest(dp, 0),
                                   parser.OFPGroupDescStatsReply):
            for g in reply.body:
                desc[g.group_id] = g
        out = []
        for reply in self._request(dp, parser.OFPGroupStatsRequest(dp, 0, dp.ofproto.OFPG_ALL),
                                   parser.OFPGroupStatsReply):
            for g in reply.body:
                out.append((desc.get(g.group_id), g))
        return out

    def poll_flow_stats(self) -> None:
        """The switch's counters: aggregate requests per flow kind for mapstat (sent,
        delivered, dropped, received), and the per-flow counters of the mappings the ITR
        watches for traffic (Xtr.traffic_watch), asked one by one when few, in one full dump
        when many."""
        dp = self.datapaths.get(LISP)
        if dp is None:
            return
        count = {kind: self._aggregate_packets(dp, kind)
                 for kind in (K_ENCAP, K_HOST, K_NEGATIVE, K_DROP, K_DECAP)}
        self.xtr.on_counters(sent=count[K_ENCAP], delivered=count[K_HOST],
                             dropped=count[K_NEGATIVE] + count[K_DROP], received=count[K_DECAP])
        watch = self.xtr.traffic_watch(time.monotonic(), WATCH_HORIZON)
        if not watch:
            self.xtr.on_flow_stats(LISP, [], time.monotonic())
            return
        if len(watch) > WATCH_ONE_BY_ONE:
            stats = self.flow_stats(LISP)
        else:
            parser, ofp = dp.ofproto_parser, dp.ofproto
            stats = []
            for flow in watch:
                for reply in self._request(dp, parser.OFPFlowStatsRequest(
                        dp, 0, flow.table, ofp.OFPP_ANY, ofp.OFPG_ANY, flow.cookie,
                        0xFFFFFFFFFFFFFFFF, self._match(dp, flow)), parser.OFPFlowStatsReply):
                    stats.extend(reply.body)
        by_key = {self._canonical_key(dp, f): f for f in watch}
        rows = []
        for s in stats:
            flow = by_key.get((s.table_id, s.priority, _match_key(s.match)))
            if flow is not None:
                rows.append((s.cookie, flow.table, flow.priority, flow.match, s.packet_count))
        self.xtr.on_flow_stats(LISP, rows, time.monotonic())

    def _aggregate_packets(self, dp, kind: int) -> int:
        parser, ofp = dp.ofproto_parser, dp.ofproto
        total = 0
        for reply in self._request(dp, parser.OFPAggregateStatsRequest(
                dp, 0, ofp.OFPTT_ALL, ofp.OFPP_ANY, ofp.OFPG_ANY, cookie(kind),
                0xFFFFFFFFFFFFFFFF, parser.OFPMatch()), parser.OFPAggregateStatsReply):
            body = reply.body
            total += (body[0] if isinstance(body, list) else body).packet_count
        return total


def _xid_in(xid: int, first: int, last: int) -> bool:
    """Whether ``xid`` lies in the (possibly wrapped) range first..last."""
    return (xid - first) & 0xFFFFFFFF <= (last - first) & 0xFFFFFFFF


def _match_key(match) -> tuple:
    """A comparable form of an os-ken OFPMatch (see canonical_match)."""
    return canonical_match(match.items())
