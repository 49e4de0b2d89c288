"""A small OpenFlow 1.3 table simulator for the pipeline's plain-data flows (test tooling).

Packets are dicts of OXM-named fields. ``FakeSwitch.run(packet)`` walks the tables as OVS would:
highest priority wins (two matching flows at the same priority is a pipeline bug and raises),
instructions run in OpenFlow order, and the action set runs when the pipeline ends. It returns what
left the switch: outputs, punts to the controller (with the punting flow's cookie) and meters hit
(in order). Meters are only recorded, unless the switch is given them (``FakeSwitch(meters=...)``)
and packets carry a ``time`` (seconds): then each meter is a token bucket holding one second of its
rate, and a packet it finds empty is dropped there (``Result.policed`` names the meter).

Multipath (Nicira's, on the source address) uses its own deterministic hash, not OVS's: the CRC-32
of the packed source address and the basis, modulo the number of links (:func:`multipath_link`).
Tests that need two sources in different buckets ask it, as a real test asks OVS (ofproto/trace).
"""

from __future__ import annotations

import copy
import zlib
from dataclasses import dataclass, field
from ipaddress import ip_address

from lisp_app.dataplane.flows import (OFPP_IN_PORT, CheckPktLarger, CopyField, DecTtl, Flow,
                                      Group, GroupAction, Multipath, Output, SetField,
                                      ToController)

_IP_FIELDS = {"ipv4_dst", "ipv4_src", "ipv6_dst", "ipv6_src", "arp_tpa", "arp_spa",
              "ipv6_nd_target", "tun_ipv4_dst", "tun_ipv6_dst"}


def _field_matches(name: str, want, have) -> bool:
    if have is None:
        return False
    if isinstance(want, tuple):
        value, mask = want
        if name in _IP_FIELDS:
            return int(ip_address(have)) & int(ip_address(mask)) == \
                int(ip_address(value)) & int(ip_address(mask))
        return have & mask == value & mask
    if name in _IP_FIELDS:
        return ip_address(have) == ip_address(want)
    return have == want


def multipath_link(act: Multipath, packet: dict) -> int:
    """The link (bucket) ``act`` picks for ``packet``: a hash of its IPv4 or IPv6 source address
    (of the basis alone without one, as OVS does), modulo the number of links."""
    src = packet.get("ipv4_src") or packet.get("ipv6_src")
    data = (ip_address(src).packed if src is not None else b"") + act.basis.to_bytes(2, "big")
    return zlib.crc32(data) % act.n_links


def flow_matches(flow: Flow, packet: dict) -> bool:
    return all(_field_matches(k, v, packet.get(k)) for k, v in flow.match)


@dataclass
class Result:
    outputs: list = field(default_factory=list)   # (port, packet)
    punts: list = field(default_factory=list)     # (cookie, packet)
    meters: list = field(default_factory=list)
    path: list = field(default_factory=list)      # flows that matched, in order
    dropped: bool = False
    policed: int | None = None                    # the meter that dropped the packet

    @property
    def ports(self) -> list:
        return [port for port, _pkt in self.outputs]


class FakeSwitch:
    def __init__(self, flows=(), groups=(), meters=()):
        self.flows: dict[tuple, Flow] = {}
        self.groups: dict[int, Group] = {}
        self.meters = {m.meter_id: m for m in meters}
        self._buckets: dict[int, tuple[float, float]] = {}  # meter id -> (tokens, time)
        self.install(flows, groups)

    def _meter_passes(self, meter_id: int, now: float) -> bool:
        meter = self.meters[meter_id]
        tokens, then = self._buckets.get(meter_id, (float(meter.rate_pps), now))
        tokens = min(float(meter.rate_pps), tokens + (now - then) * meter.rate_pps)
        if tokens < 1:
            self._buckets[meter_id] = (tokens, now)
            return False
        self._buckets[meter_id] = (tokens - 1, now)
        return True

    def install(self, flows=(), groups=()):
        for f in flows:
            self.flows[f.key] = f
        for g in groups:
            if g is not None:
                self.groups[g.group_id] = g

    def remove(self, flows):
        for f in flows:
            del self.flows[f.key]

    def table(self, table_id: int) -> list[Flow]:
        return [f for f in self.flows.values() if f.table == table_id]

    def lookup(self, table_id: int, packet: dict) -> Flow | None:
        hits = [f for f in self.table(table_id) if flow_matches(f, packet)]
        if not hits:
            return None
        top = max(f.priority for f in hits)
        best = [f for f in hits if f.priority == top]
        if len(best) > 1:
            raise AssertionError(f"ambiguous match in table {table_id} at priority {top}: {best}")
        return best[0]

    def run(self, packet: dict) -> Result:
        pkt = copy.deepcopy(packet)
        pkt.setdefault("reg0", 0)
        pkt.setdefault("metadata", 0)
        result = Result()
        action_set: dict = {}
        table_id = 0
        while True:
            flow = self.lookup(table_id, pkt)
            if flow is None:  # no table-miss flow: OpenFlow 1.3 drops
                result.dropped = True
                return result
            result.path.append(flow)
            if flow.meter is not None:
                result.meters.append(flow.meter)
                if flow.meter in self.meters and "time" in pkt and \
                        not self._meter_passes(flow.meter, pkt["time"]):
                    result.dropped, result.policed = True, flow.meter
                    return result
            for act in flow.apply:
                if not self._execute(act, pkt, result, flow):
                    result.dropped = True
                    return result
            if flow.clear:
                action_set.clear()
            for act in flow.write:
                key = (type(act), act.field) if isinstance(act, SetField) else type(act)
                action_set[key] = act
            if flow.metadata is not None:
                value, mask = flow.metadata
                pkt["metadata"] = pkt["metadata"] & ~mask | value & mask
            if flow.goto is None:
                break
            assert flow.goto > table_id, "goto must move forward"
            table_id = flow.goto
        ordered = sorted(action_set.values(), key=lambda a: {DecTtl: 0, SetField: 1,
                                                             GroupAction: 2, Output: 3}[type(a)])
        if any(isinstance(a, GroupAction) for a in ordered):
            ordered = [a for a in ordered if not isinstance(a, Output)]
        for act in ordered:
            if not self._execute(act, pkt, result, flow):
                result.dropped = True
                return result
        if not result.outputs and not result.punts:
            result.dropped = True
        return result

    def _execute(self, act, pkt: dict, result: Result, flow: Flow) -> bool:
        if isinstance(act, Output):
            port = pkt["in_port"] if act.port == OFPP_IN_PORT else act.port
            result.outputs.append((port, dict(pkt)))
        elif isinstance(act, ToController):
            result.punts.append((flow.cookie, dict(pkt)))
        elif isinstance(act, SetField):
            pkt[act.field] = act.value
        elif isinstance(act, CopyField):
            pkt[act.dst] = pkt[act.src]
        elif isinstance(act, DecTtl):
            pkt["ttl"] = pkt.get("ttl", 64) - 1
            if pkt["ttl"] <= 0:
                return False
        elif isinstance(act, CheckPktLarger):
            bit = 1 << act.bit
            larger = pkt["length"] > act.length
            pkt[f"reg{act.reg}"] = pkt.get(f"reg{act.reg}", 0) & ~bit | (bit if larger else 0)
        elif isinstance(act, Multipath):
            mask = (1 << act.n_bits) - 1
            reg = f"reg{act.reg}"
            pkt[reg] = pkt.get(reg, 0) & ~mask | multipath_link(act, pkt)
        elif isinstance(act, GroupAction):
            group = self.groups[act.group_id]
            bucket = self.choose_bucket(group, pkt)
            for sub in bucket.actions:
                if not self._execute(sub, pkt, result, flow):
                    return False
        else:
            raise AssertionError(f"unknown action {act!r}")
        return True

    @staticmethod
    def choose_bucket(group: Group, pkt: dict):
        """A weighted choice by a hash of the addresses, as a select group spreads flows."""
        total = sum(b.weight for b in group.buckets)
        key = f"{pkt.get('ipv4_src')}|{pkt.get('ipv4_dst')}|{pkt.get('ipv6_src')}|" \
              f"{pkt.get('ipv6_dst')}".encode()
        point = zlib.crc32(key) % total
        for bucket in group.buckets:
            if point < bucket.weight:
                return bucket
            point -= bucket.weight
        raise AssertionError("unreachable")
