"""The os-ken application: the only place that touches datapaths, the hub and OpenFlow messages.

It identifies the two bridges by datapath id, reconciles their meters, groups and flows with what
the :class:`~lisp_app.node.xtr.Xtr` wants (:mod:`lisp_app.dataplane.reconcile` plans it: add
what is missing, remove our stale flows, never touch flows without our cookie), feeds packet-ins
and timers to the Xtr and turns the effects it returns into OpenFlow bytes
(:mod:`lisp_app.dataplane.ofwire`) and packet-outs. Its timing policies live in
:mod:`lisp_app.shell.policy`, the translation to and from os-ken's classes in
:mod:`lisp_app.shell.translate`.
"""

from __future__ import annotations

import functools
import logging
import time

from os_ken.app.ofctl import api as ofctl_api
from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import DEAD_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
from os_ken.lib import hub
from os_ken.ofproto import ofproto_v1_3

from .alt.effects import AddNeighbor, Announce, RemoveNeighbor, Withdraw
from .node import Xtr
from .node.reload import reload_file
from .dataplane import ofread, ofwire, reconcile
from .dataplane.effects import LISP, UNDERLAY, FlowChange, PacketOut
from .dataplane.flows import Flow
from .dataplane.warm import Warmer
from .logs import Summary, flush_due
from .dataplane.pipeline import COUNTED_KINDS, K_HOST, cookie, kind_of
from .shell import policy, translate
from .shell.gcpolicy import GcPolicy
from .shell.hangup import RELOAD_POLL
from .shell.packet_in import PacketInTap, send_now
from .shell.writer import FlowWriter, SwitchErrors, bulk_batches, split_bulk, summary

LOG = logging.getLogger("lisp_app")

ALT_INTERVAL = 2.0  # apply ALT announcements and refresh session states this often
HANDLER_ERRORS = Summary(LOG, "handler errors", logging.ERROR)
BULK_BATCH = 256  # effects of a bulk install taken (and their flows sent) at a time
COUNTS_TIMEOUT = 5.0  # how long a poll of the data-plane counters waits for the switch


def guarded(handler):
    """An event handler (or spawned task) whose exception is logged with its event and counted
    (mapstat ``handler_errors``) instead of reaching os-ken: the controller keeps running."""
    @functools.wraps(handler)
    def run(self, *args):
        try:
            return handler(self, *args)
        except Exception:
            self.xtr.stats.handler_errors += 1
            HANDLER_ERRORS(handler.__name__, "%s failed on %s", handler.__name__,
                           ", ".join(repr(getattr(a, "msg", a)) for a in args), exc_info=True)
    return run


class LispApp(app_manager.OSKenApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.config = kwargs["lisp_config"]
        self.classic = kwargs.get("lisp_classic")  # lisp_app.classic.ClassicPath, attached
        self.api_socket = kwargs.get("lisp_api_socket")  # bound by lisp_app.controller
        self.config_path = kwargs.get("lisp_config_path")  # re-read on SIGHUP
        self.reload_requests = kwargs.get("lisp_reload_requests")  # shell.hangup.ReloadRequests
        self.alt = None
        if self.config.alt is not None:
            from .alt.speaker import AltSpeaker
            self.alt = AltSpeaker(self.config.alt)
        self.xtr = Xtr(self.config, alt_rib=self.alt.state.rib if self.alt else None)
        self.datapaths = {}  # bridge name -> datapath, once reconciled
        self.bridge_of_dpid = {self.config.lisp_bridge.datapath_id: LISP,
                               self.config.underlay.datapath_id: UNDERLAY}
        self.started = time.monotonic()
        self.workers = []
        self.warm = policy.WarmSchedule()
        self.errors = SwitchErrors()
        self.writer = FlowWriter(fallback=translate)
        self._bulk_running = 0  # bulk installs under way: the statistics poll waits for them
        self._counts_waiting = {}  # FlowCounts ticket -> hub.Event set once it is answered
        self.tap = PacketInTap()  # packet-ins of programmed bridges, read before os-ken parses
        self.warmer = Warmer()  # re-reads recent packet-ins at each timer tick
        self.gc_policy = GcPolicy()  # short collector pauses at any map-cache size (at start)
        self._effect_handlers = {Announce: self._alt_effect, Withdraw: self._alt_effect,
                                 AddNeighbor: self._alt_effect, RemoveNeighbor: self._alt_effect}

    def start(self):
        super().start()
        self.tap.install()
        self.workers.append(hub.spawn(self._timer_loop))
        self.workers.append(hub.spawn(self._stats_loop))
        if self.config.api.port:
            from .api.server import listen, serve
            if self.api_socket is None:  # started without lisp_app.controller (tests)
                self.api_socket = listen(self.config.api.host, self.config.api.port)
            self.workers.append(hub.spawn(serve, self, self.api_socket))
        if self.alt is not None:
            self.alt.start()
            self.execute(self.xtr.on_start(time.monotonic()))
            self.workers.append(hub.spawn(self._alt_loop))
        if self.reload_requests is not None:
            self.workers.append(hub.spawn(self._reload_loop))
        # installed last: its first collection freezes what start-up built (os-ken, the
        # configuration, the node), so that no later full collection walks it again
        self.gc_policy.install()

    def stop(self):
        for worker in self.workers:  # endless loops: OSKenApp.stop() would wait for them forever
            hub.kill(worker)
        self.workers = []
        self.tap.uninstall()
        if self.alt is not None:
            self.alt.stop()  # withdraws our prefixes from the ALT
        self.gc_policy.remove()
        super().stop()

    def _alt_loop(self) -> None:
        while True:
            try:
                self.alt.reconcile()
            except Exception:
                LOG.exception("ALT reconciliation failed")
            hub.sleep(ALT_INTERVAL)

    def _reload_loop(self) -> None:
        """Reloads asked for by SIGHUP, carried out here on the hub, one at a time."""
        while True:
            hub.sleep(RELOAD_POLL)
            if self.reload_requests.take():
                try:
                    self.reload()
                except Exception:
                    self.xtr.stats.handler_errors += 1
                    LOG.exception("reload of %s failed", self.config_path)

    def reload(self) -> None:
        """Re-read the configuration file and apply what changed (lisp_app.node.reload), with
        the LISP bridge's ports as they are now (a new ALT neighbour's GRE port may be new)."""
        ports = macs = None
        dp = self.datapaths.get(LISP)
        if dp is not None:
            ports, macs, _local = translate.port_maps(
                self._bodies(dp.ofproto_parser.OFPPortDescStatsRequest(dp, 0)))
        outcome = reload_file(self.xtr, self.config_path, time.monotonic(), ports, macs)
        if outcome.config is not None:
            self.config = outcome.config
        self.execute(outcome.effects)

    # -- connection and reconciliation ----------------------------------------------------------

    @set_ev_cls(ofp_event.EventOFPStateChange, [MAIN_DISPATCHER, DEAD_DISPATCHER])
    @guarded
    def _state_change(self, ev):
        dp = ev.datapath
        bridge = self.bridge_of_dpid.get(dp.id)
        if ev.state == MAIN_DISPATCHER:
            if bridge is None:
                LOG.warning("datapath %016x is neither the LISP nor the underlay bridge of the "
                            "config: leaving it alone", dp.id or 0)
                return
            hub.spawn(self._connect, bridge, dp)
        elif ev.state == DEAD_DISPATCHER:
            self.tap.detach(dp)
        if ev.state == DEAD_DISPATCHER and bridge is not None:
            if self.datapaths.get(bridge) is dp:
                del self.datapaths[bridge]
                LOG.warning("%s bridge disconnected", bridge)

    def _bodies(self, msg) -> list:
        """The bodies of the replies to a multipart request (waits for them)."""
        replies = ofctl_api.send_msg(self, msg, reply_cls=translate.REPLY_OF[type(msg)],
                                     reply_multi=True) or []
        return [item for reply in replies for item in
                (reply.body if isinstance(reply.body, list) else [reply.body])]

    @guarded
    def _connect(self, bridge: str, dp) -> None:
        """Program a bridge that (re)connected: read what it holds, send what the plan says."""
        parser = dp.ofproto_parser
        ports, macs, local_mac = translate.port_maps(
            self._bodies(parser.OFPPortDescStatsRequest(dp, 0)))
        groups = frozenset(g.group_id for g in
                           self._bodies(parser.OFPGroupDescStatsRequest(dp, 0)))
        if bridge == LISP:
            self.xtr.flow_counts.new_epoch()  # counts go on from the baseline taken below
            self.xtr.lisp_bridge_ready(ports, macs)
            self.xtr.avoid_group_ids(groups)
            self.xtr.reprogram_mappings()
        else:
            self.xtr.underlay_bridge_ready(ports, local_mac)
        meters = translate.meter_rates(
            self._bodies(parser.OFPMeterConfigStatsRequest(dp, 0, dp.ofproto.OFPM_ALL)))
        have = reconcile.BridgeState(tuple(map(translate.flow_record, self._flow_stats(dp))),
                                     groups, meters)
        plan, messages = self.writer.reconcile(bridge, have, self.xtr.desired(bridge),
                                               lambda: self._xid(dp))
        _send(dp, messages)
        self._barrier(dp)
        if bridge == LISP and not self._poll_counters(dp):
            LOG.warning("lisp bridge: no baseline of the flow counters (counted from the "
                        "next statistics poll)")
        self.datapaths[bridge] = dp
        self.tap.attach(dp, functools.partial(self._raw_packet_in, bridge, dp))
        if bridge == UNDERLAY:
            now = time.monotonic()
            self.execute(self.xtr.warm_underlay(now))
            self.warm.connected(now)
        LOG.info("%s bridge %016x programmed: %d flows added, %d stale removed, %d kept",
                 bridge, dp.id, plan.added, plan.stale, plan.kept)
        if self.config.ovsdb.remote:
            hub.spawn(self._reconnect_settings, dp.id)

    def _reconnect_settings(self, dpid: int) -> None:
        """Write the bridge's reconnect timing while it is connected: OVS before 3.3 applies
        it only then (lisp_app.ovsdb)."""
        from .ovsdb import OvsdbError, configure
        o = self.config.ovsdb
        try:
            LOG.info("%s", configure(o.remote, [dpid], o.max_backoff, o.inactivity_probe,
                                     stamp=f"{time.time():.3f}"))
        except OvsdbError as exc:
            LOG.warning("ovsdb: %s: the bridge reconnects at its own pace", exc)

    def _barrier(self, dp) -> None:
        ofctl_api.send_msg(self, dp.ofproto_parser.OFPBarrierRequest(dp),
                           reply_cls=dp.ofproto_parser.OFPBarrierReply)

    # -- effects --------------------------------------------------------------------------------

    def execute(self, effects) -> None:
        """Carry out effects; what they send to one datapath leaves in one write, in order
        (a Map-Reply's flow-mods and the held packets' packet-outs together)."""
        batch = {}  # datapath -> messages not sent yet
        try:
            for effect in effects:
                kind = type(effect)
                if kind is PacketOut:
                    self._packet_out(effect, batch)
                elif kind is FlowChange:
                    self._flow_change(effect, batch)
                else:
                    _flush(batch)  # what came before goes first
                    handler = self._effect_handlers.get(kind)
                    if handler is None:
                        LOG.debug("no shell handler for %r: ignored", effect)
                    else:
                        handler(effect)
        finally:
            _flush(batch)

    def _alt_effect(self, effect) -> None:
        if self.alt is None:
            LOG.debug("not on the ALT: %r ignored", effect)
        else:
            self.alt.apply(effect)

    def execute_bulk(self, effects) -> dict:
        """Carry out ``effects`` as ``execute`` does, but send each bridge's new flows in one
        atomic ONF bundle and return once the switch has committed it (a barrier follows), so the
        caller knows the switch holds them. ``effects`` may be a generator: they are taken
        BULK_BATCH at a time and each batch's flows sent at once, so that the switch works on
        them while later ones are compiled. Returns counts; raises RuntimeError naming the
        switch's error if it refused any part (an atomic bundle then changes nothing). If
        ``effects`` raises, the open bundles are discarded and the exception goes on."""
        self._bulk_running += 1
        try:
            return self._execute_bulk(iter(effects))
        finally:
            self._bulk_running -= 1

    def _execute_bulk(self, effects) -> dict:
        counts = {"flows": 0, "bundles": 0, "groups": 0}
        bundles: dict = {}  # bridge -> (datapath, Bundle), or None while it has no new flows
        try:
            for batch in bulk_batches(effects, BULK_BATCH):
                at_once, adds = split_bulk(batch, self.datapaths)
                self.execute(at_once)
                counts["groups"] += sum(len(e.groups) for e in at_once
                                        if isinstance(e, FlowChange))
                for bridge, flows in adds.items():
                    open_ = bundles.get(bridge)
                    if open_ is None and flows:
                        dp = self.datapaths[bridge]
                        open_ = bundles[bridge] = (dp, self.writer.bundle(
                            None, functools.partial(self._xid, dp)))
                        dp.send(open_[1].open())
                    elif open_ is None:
                        bundles[bridge] = None
                    if flows:
                        _send(open_[0], open_[1].add(flows))
        except BaseException:
            for open_ in bundles.values():
                if open_ is not None:
                    open_[0].send(open_[1].discard())
            raise
        pending = list(bundles.items())
        while pending:
            bridge, open_ = pending.pop(0)
            if open_ is None:
                if bridge in self.datapaths:  # (gone meanwhile: programmed in full when back)
                    self._barrier(self.datapaths[bridge])
                continue
            dp, bundle = open_
            dp.send(bundle.close())
            self._barrier(dp)  # the bundle ends with a barrier
            failed = self.errors.between(bridge, bundle.first, bundle.commit)
            if failed:
                for _bridge, later in pending:  # the other bridges' bundles change nothing
                    if later is not None:
                        later[0].send(later[1].discard())
                raise RuntimeError(f"the switch refused bundle {bundle.bundle_id} "
                                   f"({bundle.flows} flows): " + summary(failed))
            counts["flows"] += bundle.flows
            counts["bundles"] += 1
        return counts

    @staticmethod
    def _xid(dp) -> int:
        dp.xid = (dp.xid + 1) & 0xFFFFFFFF
        return dp.xid

    def _packet_out(self, out: PacketOut, batch: dict) -> None:
        dp = self.datapaths.get(out.bridge)
        if dp is None:
            LOG.debug("%s bridge not connected: packet-out dropped", out.bridge)
            return
        batch.setdefault(dp, []).append(
            ofwire.encode_packet_out(self._xid(dp), out.in_port, out.out_port, out.data))

    def _flow_change(self, change: FlowChange, batch: dict) -> None:
        dp = self.datapaths.get(change.bridge)
        if dp is not None:  # else: programmed in full when the bridge (re)connects
            batch.setdefault(dp, []).extend(self.writer.change(change, lambda: self._xid(dp)))

    # -- events ---------------------------------------------------------------------------------

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    @guarded
    def _packet_in(self, ev):
        """Packet-ins os-ken parsed: those of a bridge not yet programmed (dropped here), or
        any if the tap is not installed."""
        msg = ev.msg
        bridge = self.bridge_of_dpid.get(msg.datapath.id)
        if bridge is None or bridge not in self.datapaths:
            return
        self._to_core(bridge, msg.cookie, msg.match.get("in_port", 0),
                      msg.match.get("metadata", 0), bytes(msg.data))

    @guarded
    def _raw_packet_in(self, bridge: str, dp, message: bytes) -> None:
        """A programmed bridge's packet-in, as bytes, in os-ken's receiving thread (the tap)."""
        try:
            pin = ofread.decode_packet_in(message)
        except ofread.Malformed as exc:
            self.xtr.stats.bad_header += 1
            LOG.debug("%s bridge: malformed packet-in dropped: %s", bridge, exc)
            return
        self._to_core(bridge, pin.cookie, pin.in_port, pin.metadata, pin.data)
        self.warmer.remember(kind_of(pin.cookie), message)

    def _to_core(self, bridge: str, cookie_: int, in_port: int, metadata: int,
                 data: bytes) -> None:
        try:
            effects = self.xtr.on_packet_in(bridge, cookie_, in_port, metadata, data,
                                            time.monotonic())
        except Exception:  # a packet the core could not read: counted as such, then guarded
            self.xtr.stats.bad_header += 1
            raise
        self.execute(effects)

    @set_ev_cls(ofp_event.EventOFPFlowRemoved, MAIN_DISPATCHER)
    @guarded
    def _flow_removed(self, ev):
        msg = ev.msg
        kind = kind_of(msg.cookie)
        if self.bridge_of_dpid.get(msg.datapath.id) == LISP:  # its final count
            self.xtr.flow_counts.flow_removed(kind, msg.packet_count)
        if kind == K_HOST:
            self.xtr.host_expired(dict(msg.match.items()))

    @set_ev_cls(ofp_event.EventOFPAggregateStatsReply, MAIN_DISPATCHER)
    @guarded
    def _aggregate_reply(self, ev):
        """Handled here, not by ofctl, so that replies and FlowRemoved messages reach the
        counters in the order the switch sent them (lisp_app.control.counting)."""
        msg = ev.msg
        if self.bridge_of_dpid.get(msg.datapath.id) != LISP:
            return
        ticket = self.xtr.flow_counts.answered(msg.xid, msg.body.packet_count)
        waiting = self._counts_waiting.get(ticket)
        if waiting is not None:
            waiting.set()

    @set_ev_cls(ofp_event.EventOFPErrorMsg, MAIN_DISPATCHER)
    @guarded
    def _error(self, ev):
        msg = ev.msg
        name = translate.error_name(msg.type, msg.code)
        LOG.error("switch %016x refused a message: %s (type %d code %d; the message: %s)",
                  msg.datapath.id, name, msg.type, msg.code, bytes(msg.data[:64]).hex())
        self.errors.record(self.bridge_of_dpid.get(msg.datapath.id), msg.xid, name)

    # -- threads --------------------------------------------------------------------------------

    def _timer_loop(self) -> None:
        while True:
            now = time.monotonic()
            try:
                effects = self.xtr.on_timer(now) + self.xtr.retry_next_hop(now)
                if UNDERLAY in self.datapaths and self.warm.due(now):
                    effects += self.xtr.warm_underlay(now)
                self.execute(effects)
                self.warmer.exercise()
            except Exception:
                LOG.exception("timer work failed")
            flush_due()  # the summaries of repeated problems (lisp_app.logs)
            hub.sleep(policy.timer_wait(now, self.xtr.next_deadline()))

    def _stats_loop(self) -> None:
        """Poll our flows' counters as :mod:`lisp_app.shell.policy` says."""
        pause = policy.pause_after(None)
        while True:
            hub.sleep(pause)
            if not policy.poll_now(self._bulk_running):
                pause = policy.pause_after(None)
                continue
            start = time.monotonic()
            try:
                self.poll_flow_stats()
            except Exception:
                LOG.exception("flow statistics poll failed")
            self.poll_classic()
            pause = policy.pause_after(time.monotonic() - start)

    def poll_classic(self) -> None:
        """The classic-LISP programs' counters into mapstat (lisp_app.classic), carried over
        when the programs (and so their maps) are replaced."""
        if self.classic is None:
            return
        try:
            values = self.classic.counters()
            self.xtr.classic_counts.update(values, tuple(sorted(self.classic.maps.items())))
        except Exception as exc:
            LOG.warning("classic-LISP counters: %s", exc)

    # -- what the switch holds ------------------------------------------------------------------

    def flow_stats(self, bridge: str) -> list:
        """Our flows on a bridge as the switch reports them (OFPFlowStats objects)."""
        dp = self.datapaths.get(bridge)
        return [] if dp is None else self._flow_stats(dp)

    def _flow_stats(self, dp, flow: Flow | None = None) -> list:
        """Our flows (with ``flow``: that one flow, by exact cookie, table and match)."""
        return self._bodies(translate.flow_stats_request(dp, flow))

    def group_stats(self, bridge: str) -> list:
        """(OFPGroupDescStats or None, OFPGroupStats) of each group on a bridge."""
        dp = self.datapaths.get(bridge)
        if dp is None:
            return []
        parser = dp.ofproto_parser
        desc = {g.group_id: g for g in self._bodies(parser.OFPGroupDescStatsRequest(dp, 0))}
        return [(desc.get(g.group_id), g)
                for g in self._bodies(parser.OFPGroupStatsRequest(dp, 0, dp.ofproto.OFPG_ALL))]

    def flow_rows(self, bridge: str) -> list[dict]:
        """Our flows on a bridge as the API shows them."""
        return translate.flow_rows(self.flow_stats(bridge))

    def group_rows(self, bridge: str) -> list[dict]:
        """The groups on a bridge as the API shows them, each with the prefix that owns it."""
        return translate.group_rows(self.group_stats(bridge), self.xtr.group_ids())

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

    def poll_counters(self, timeout: float = COUNTS_TIMEOUT,
                      settle: float = policy.FRESH_SETTLE) -> bool:
        """Read the data-plane counters from the LISP bridge and wait for them (``GET
        /mapstat?fresh=1``), ``settle`` seconds from now: the time OVS takes to count what
        has passed. False: the bridge is not connected, or did not answer in time."""
        if LISP not in self.datapaths:
            return False
        hub.sleep(settle)
        dp = self.datapaths.get(LISP)
        return dp is not None and self._poll_counters(dp, timeout)

    def _poll_counters(self, dp, timeout: float = COUNTS_TIMEOUT) -> bool:
        """One aggregate request per counted flow kind; their replies reach FlowCounts through
        :meth:`_aggregate_reply`. True once all are answered."""
        requests = {self._xid(dp): kind for kind in sorted(COUNTED_KINDS)}
        counts = self.xtr.flow_counts
        ticket = counts.ask(requests, time.monotonic())
        done = self._counts_waiting[ticket] = hub.Event()
        try:
            _send(dp, [ofwire.aggregate_request(xid, cookie(kind))
                       for xid, kind in requests.items()])
            return done.wait(timeout=timeout)
        finally:
            del self._counts_waiting[ticket]
            counts.forget(ticket)

    def poll_flow_stats(self) -> None:
        """The switch's counters: aggregate requests per counted flow kind for mapstat (sent,
        delivered, dropped_negative, dropped_policy, received), and the per-flow counters of the
        mappings the ITR watches for traffic (Xtr.traffic_watch), asked one by one when few, in
        one full dump when many."""
        dp = self.datapaths.get(LISP)
        if dp is None:
            return
        if not self._poll_counters(dp):
            LOG.warning("lisp bridge: flow counters not answered within %.0f s", COUNTS_TIMEOUT)
        watch = self.xtr.traffic_watch(time.monotonic(), policy.WATCH_HORIZON)
        if not watch:
            self.xtr.on_flow_stats(LISP, [], time.monotonic())
            return
        if policy.one_by_one(len(watch)):
            stats = [s for flow in watch for s in self._flow_stats(dp, flow)]
        else:
            stats = self._flow_stats(dp)
        self.xtr.on_flow_stats(LISP, translate.watched_rows(watch, stats), time.monotonic())


def _send(dp, messages: list[bytes]) -> None:
    """Send messages to a datapath in one write (none: nothing)."""
    data = b"".join(messages)
    if data:
        dp.send(data)


def _flush(batch: dict) -> None:
    """Send each datapath's gathered messages in one write, and forget them."""
    for dp, messages in batch.items():
        data = b"".join(messages)
        if data:
            send_now(dp, data)
    batch.clear()
