"""The OpenFlow pipeline: tables, priorities and cookies, and the compiler from LISP state to flows.

This module is the one owner of the table layout. Every flow carries a cookie whose top 32 bits
spell "LISP" (so the app can list and remove exactly its own flows) and whose next byte says what
kind of flow it is; for a punt, the kind is the reason the controller gets the packet.

LISP bridge (site ports, the LISP-GPE port)::

  0 CLASSIFY  ARP for the gateway -> answered in the switch; ARP replies/NS for the gateway -> ctl;
              site IPv4/IPv6 -> metadata=instance-id, ENCAP;  GPE port -> DECAP;  else drop
  1 ENCAP     (ITR) local EID -> DELIVER; multicast/broadcast -> drop;
              one flow per map-cache entry: check_pkt_larger -> reg0[0], action set = dec_ttl,
              tun_dst, tun_id, output GPE (or the locators' select group) -> MTU;
              negative entries: drop or natively forward (send-map-request ones: as a miss);
              miss -> multipath(nw_src) -> reg1 = the source's bucket, MISS_SOURCE
  2 MTU       reg0[0]=1 -> clear the action set, meter -> controller (ICMP too-big); else the
              action set runs
  3 DECAP     (ETR) tun_id=instance-id + local EID prefix -> metadata, DELIVER;  else drop
  4 DELIVER   one flow per known host: gateway MAC -> host MAC, out its port;
              unknown host in a local prefix -> meter -> controller (resolve);  else drop
  5 MISS_SOURCE  in_port, reg1=bucket -> that port's bucket's meter -> MISS_PORT (one flow per
                 site port and source bucket)
  6 MISS_PORT    in_port=site port -> the port's meter -> MISS_PUNT;  else drop
  7 MISS_PUNT    the aggregate miss meter -> controller (MAPM_MISS)

A miss passes three meters, narrowest first: its source's (each site port hashes its sources into
buckets of its own), its site port's, then the site's. One host's flood fills its own bucket's
meter and leaves the other buckets, ports and most of the aggregate to everyone else; a flood from
many (spoofed) sources fills its port's buckets and meter and leaves the other ports theirs. The
narrow meters come first: behind a shared meter, a flood takes nearly all of what it passes.

Underlay bridge (uplink, LOCAL holds the RLOC)::

  0           UDP 4342 to the RLOC -> multipath(nw_src) -> reg1 = the source's bucket,
              CONTROL_SOURCE;  ARP replies to the RLOC -> controller and NORMAL;  (ETR) UDP 4341
              to a local IPv4 EID (a data probe: outer destination = inner destination) -> as
              UDP 4342;  everything else NORMAL (OVS's own tunnelling uses it)
  1 CONTROL_SOURCE  reg1=bucket -> the bucket's meter -> CONTROL_PUNT
  2 CONTROL_PUNT    the aggregate control meter -> controller (control message or data probe,
                    by UDP port)

As misses on the LISP bridge, control messages pass their source's meter before the shared one: a
garbage flood from one source leaves the other sources' Map-Requests and Map-Replies a share.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from socket import inet_ntoa

from ..mapping.cache import CacheEntry
from ..mapping.locators import Share
from ..protocol.addresses import EidPrefix
from ..protocol.numbers import (ETH_TYPE_ARP, ETH_TYPE_IPV4, ETH_TYPE_IPV6, IPPROTO_ICMPV6,
                                IPPROTO_UDP, LISP_CONTROL_PORT, LISP_DATA_PORT, ND_NEIGHBOR_ADVERT,
                                ND_NEIGHBOR_SOLICIT)
from ..protocol.records import Action
from .flows import (OFPP_IN_PORT, OFPP_LOCAL, OFPP_NORMAL, Bucket, CheckPktLarger, CopyField,
                    DecTtl, Flow, Group, GroupAction, Meter, Multipath, Output, SetField,
                    ToController, match)

T_CLASSIFY, T_ENCAP, T_MTU, T_DECAP, T_DELIVER = 0, 1, 2, 3, 4
T_MISS_SOURCE, T_MISS_PORT, T_MISS_PUNT = 5, 6, 7
T_UNDERLAY = 0
T_CONTROL_SOURCE, T_CONTROL_PUNT = 1, 2

COOKIE_BASE = 0x4C49535000000000  # "LISP"
COOKIE_MASK = 0xFFFFFFFF00000000

# Flow kinds (cookie bits 24-31)
K_BASE = 0x01        # structural flows
K_ENCAP = 0x02       # one per map-cache entry
K_HOST = 0x03        # one per known site host
K_NEGATIVE = 0x04    # negative map-cache entry (drop / natively forward)
K_DROP = 0x05        # explicit drops (counted in the switch)
K_DECAP = 0x06       # decapsulated packets for a local EID prefix (the "received" counter)
K_PUNT_MISS = 0x10   # map-cache miss
K_PUNT_TOO_BIG = 0x11
K_PUNT_RESOLVE = 0x12  # packet for a local host whose MAC is unknown
K_PUNT_NEIGHBOR = 0x13  # ARP reply / neighbour solicitation for the gateway
K_PUNT_CONTROL = 0x14  # LISP control message to our RLOC
K_PUNT_UNDERLAY_ARP = 0x15
K_PUNT_DATA_PROBE = 0x16  # LISP data packet addressed to one of our EIDs (a data probe)
K_PUNT_ALT_CONTROL = 0x17  # a Map-Request for one of our EIDs that travelled the ALT
K_ALT = 0x18              # ALT plumbing: BGP between the internal port and the GRE ports
K_PUNT_UNDERLAY_ND = 0x19  # Neighbor Advertisement to the IPv6 RLOC
K_NATIVE = 0x1A            # natively forwarded: a negative mapping's traffic, or a local EID's

#: The kinds whose packet counts mapstat reports (lisp_app.control.counting): their flows carry
#: OFPFF_SEND_FLOW_REM, so that the switch reports each one's final count when it leaves
#: (expired, or deleted by the controller)
COUNTED_KINDS = frozenset({K_ENCAP, K_HOST, K_NEGATIVE, K_DROP, K_DECAP})

KIND_NAMES = {K_BASE: "base", K_ENCAP: "encap", K_HOST: "host", K_NEGATIVE: "negative",
              K_DROP: "drop", K_DECAP: "decap", K_PUNT_MISS: "punt-miss",
              K_PUNT_TOO_BIG: "punt-too-big", K_PUNT_RESOLVE: "punt-resolve",
              K_PUNT_NEIGHBOR: "punt-neighbor", K_PUNT_CONTROL: "punt-control",
              K_PUNT_UNDERLAY_ARP: "punt-underlay-arp", K_PUNT_DATA_PROBE: "punt-data-probe",
              K_PUNT_ALT_CONTROL: "punt-alt-control", K_ALT: "alt",
              K_PUNT_UNDERLAY_ND: "punt-underlay-nd", K_NATIVE: "native"}

ALT_PEER_MAC = "02:4c:49:53:50:01"  # stands for every ALT peer behind the L3 GRE ports

METER_MISS = 1     # cache misses
METER_PUNT = 2     # too-big, resolve, neighbour
METER_CONTROL = 3  # control messages
METER_MISS_PORT = 0x100      # + the site port's index (0-255): misses per site port
METER_CONTROL_SOURCE = 0x300  # + source bucket (0-255), on the underlay bridge
METER_MISS_SOURCE = 0x10000  # + port index * 256 + source bucket: misses per source, per port
MAX_SOURCE_BUCKETS = 256
MAX_SITE_PORTS = 256
MAX_SOURCE_METERS = 4096     # site ports x source buckets


def miss_source_meter(port_index: int, bucket: int) -> int:
    """The meter of source bucket ``bucket`` on the ``port_index``-th site port."""
    return METER_MISS_SOURCE + (port_index << 8) + bucket
REG_MISS_BUCKET = 1        # the register multipath writes a miss's source bucket into

METADATA_MASK = 0xFFFFFF  # the instance-id lives in the low 24 bits of metadata
ENCAP_OVERHEAD = {4: 20 + 8 + 8, 6: 40 + 8 + 8}  # outer IP + UDP + LISP header
ETHERNET_HEADER = 14


_COOKIES = tuple(COOKIE_BASE | kind << 24 for kind in range(256))  # one int object per kind


def cookie(kind: int) -> int:
    """The cookie of every flow of ``kind`` (one shared int object per kind)."""
    if 0 <= kind < 256:
        return _COOKIES[kind]
    return COOKIE_BASE | kind << 24


def kind_of(cookie_value: int) -> int | None:
    """The kind of one of our flows from its cookie (None: not ours)."""
    if cookie_value & COOKIE_MASK != COOKIE_BASE:
        return None
    return cookie_value >> 24 & 0xFF


def prefix_match(network: IPv4Network | IPv6Network) -> tuple[str, object]:
    """(field, value) matching a destination prefix."""
    if network.version == 4:
        return "ipv4_dst", (str(network.network_address), str(network.netmask))
    return "ipv6_dst", (str(network.network_address), str(network.netmask))


_DEC_TTL = DecTtl()
# netmask text by IP version and prefix length: one shared str per mask, computed once
_NETMASKS = {4: tuple(str(IPv4Network((0, plen)).netmask) for plen in range(33)),
             6: tuple(str(IPv6Network((0, plen)).netmask) for plen in range(129))}
_ETH_TYPE_MATCH = {4: ("eth_type", ETH_TYPE_IPV4), 6: ("eth_type", ETH_TYPE_IPV6)}

#: Bounds of a LispBridge's memos (instance-ids, locator sets and prefixes come from the mapping
#: system, so without a bound they would grow with it). A full memo starts over; what compiled
#: flows already hold stays shared.
METADATA_MEMO_LIMIT = 4096
ENCAP_ACTIONS_MEMO_LIMIT = 4096


def _encap_match(prefix: EidPrefix, metadata_memo: dict | None = None) -> tuple:
    """match(metadata=(iid, METADATA_MASK), eth_type=..., ipvN_dst=(address, netmask)), built
    directly in match()'s sorted order (the bulk path compiles 100,000s of these). Only the
    destination field is the mapping's own; the other fields are shared by every mapping: the
    metadata field through ``metadata_memo`` (instance-id -> field, a LispBridge's)."""
    net = prefix.network
    if net.version == 4:  # (inet_ntoa writes the text str() does, in a fifth of the time)
        dst = ("ipv4_dst", (inet_ntoa(net.network_address.packed), _NETMASKS[4][net.prefixlen]))
    else:
        dst = ("ipv6_dst", (str(net.network_address), _NETMASKS[6][net.prefixlen]))
    iid = prefix.instance_id
    meta = None if metadata_memo is None else metadata_memo.get(iid)
    if meta is None:
        meta = ("metadata", (iid, METADATA_MASK))
        if metadata_memo is not None:
            if len(metadata_memo) >= METADATA_MEMO_LIMIT:
                metadata_memo.clear()
            metadata_memo[iid] = meta
    return (_ETH_TYPE_MATCH[net.version], dst, meta)


def _eth_type(network) -> int:
    return ETH_TYPE_IPV4 if network.version == 4 else ETH_TYPE_IPV6


_ENCAP_PRIORITIES = tuple(2000 + plen for plen in range(129))  # shared int objects


def encap_priority(prefix: EidPrefix) -> int:
    """Longer prefixes win: priority grows with the prefix length."""
    return _ENCAP_PRIORITIES[prefix.network.prefixlen]


def packet_size_limit(underlay_mtu: int, rloc_version: int = 4) -> int:
    """The largest frame (Ethernet header included, as check_pkt_larger measures it) whose
    encapsulation still fits the underlay MTU."""
    return underlay_mtu - ENCAP_OVERHEAD[rloc_version] + ETHERNET_HEADER


def inner_mtu(underlay_mtu: int, rloc_version: int = 4) -> int:
    """The IP MTU a site host must use: what ICMP too-big reports."""
    return underlay_mtu - ENCAP_OVERHEAD[rloc_version]


class FlowRun:
    """The flows of new mappings that differ only in their prefixes (a bulk load's): for each
    prefix, the one flow ``record``'s bridge compiles for it with the record's shares and action
    and no group (``record``: the installer's shared ``(bridge, shares, grouped, action)``, not
    grouped). Read as a sequence it is those :class:`Flow` objects, built as they are read; the
    bundle writer writes their messages from a template instead (``Encoder.bundled_run``), and
    knows a template by the record's identity (so the record must be the shared object that is
    never changed)."""

    __slots__ = ("record", "prefixes")

    def __init__(self, record: tuple, prefixes: list):
        if record[2]:
            raise ValueError("a FlowRun's mappings have no select group")
        self.record = record
        self.prefixes = prefixes

    def flow(self, prefix: EidPrefix) -> Flow:
        """The flow of one of the mappings."""
        bridge, shares, _grouped, action = self.record
        return bridge.mapping_flows(CacheEntry(prefix, (), action), shares, None)[0][0]

    def __len__(self) -> int:
        return len(self.prefixes)

    def __iter__(self):
        return map(self.flow, self.prefixes)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return tuple(map(self.flow, self.prefixes[index]))
        return self.flow(self.prefixes[index])

    def __eq__(self, other) -> bool:  # as the tuple of its flows
        if isinstance(other, (FlowRun, tuple)):
            return tuple(self) == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __add__(self, other):
        return tuple(self) + tuple(other)

    def __radd__(self, other):
        return tuple(other) + tuple(self)

    def __repr__(self) -> str:
        return f"FlowRun({len(self.prefixes)} flows, {self.record[1:]!r})"


@dataclass(frozen=True)
class LispBridge:
    """What the compiler needs to know about the LISP bridge and the site."""

    site_ports: tuple[tuple[int, int], ...]  # (OpenFlow port number, instance-id)
    gpe_port: int | None  # None on a Map-Server/Map-Resolver without data-plane roles
    local_prefixes: tuple[EidPrefix, ...]
    gateway_mac: str
    gateway_ipv4: IPv4Address | None = None
    gateway_ipv6: IPv6Address | None = None
    underlay_mtu: int = 1500
    itr: bool = True
    etr: bool = True
    native_port: int | None = None  # patch port to the underlay, for natively-forward entries
    native_instance_id: int = 0     # native traffic for a local EID belongs to this instance-id
    alt_port: int | None = None     # internal port holding our ALT address (the BGP speaker's)
    alt_mac: str | None = None
    alt_address: IPv4Address | None = None
    alt_peers: tuple[tuple[IPv4Address, int], ...] = ()  # (peer's ALT address, its GRE port)
    alt_last_hop: bool = False  # a Map-Server: every Map-Request off the ALT is ours to handle
    miss_rate_pps: int = 100         # all misses (METER_MISS)
    punt_rate_pps: int = 100
    miss_port_rate_pps: int = 50     # misses from one site port
    miss_source_rate_pps: int = 20   # misses from one source bucket
    miss_source_buckets: int = 64    # sources are hashed into this many buckets (power of two)
    # memos, not configuration: the compiled pieces equal mappings share (see mapping_flows)
    _metadata_memo: dict = field(default_factory=dict, init=False, repr=False, compare=False,
                                 hash=False)
    _encap_actions_memo: dict = field(default_factory=dict, init=False, repr=False,
                                      compare=False, hash=False)
    _miss_actions: tuple = field(default=(), init=False, repr=False, compare=False, hash=False)

    def __post_init__(self):
        if not 1 <= self.miss_source_buckets <= MAX_SOURCE_BUCKETS or \
                self.miss_source_buckets & (self.miss_source_buckets - 1):
            raise ValueError(f"miss_source_buckets: {self.miss_source_buckets} is not a power of "
                             f"two up to {MAX_SOURCE_BUCKETS}")
        ports = len(self._site_port_numbers())
        if ports > MAX_SITE_PORTS or ports * self.miss_source_buckets > MAX_SOURCE_METERS:
            raise ValueError(f"{ports} site ports x {self.miss_source_buckets} source buckets: "
                             f"at most {MAX_SOURCE_METERS} source meters")
        object.__setattr__(self, "_miss_actions",
                           (Multipath(self.miss_source_buckets, REG_MISS_BUCKET),))

    def meters(self) -> list[Meter]:
        meters = [Meter(METER_MISS, self.miss_rate_pps), Meter(METER_PUNT, self.punt_rate_pps)]
        if self.itr:
            ports = range(len(self._site_port_numbers()))
            meters += [Meter(miss_source_meter(i, b), self.miss_source_rate_pps)
                       for i in ports for b in range(self.miss_source_buckets)]
            meters += [Meter(METER_MISS_PORT + i, self.miss_port_rate_pps) for i in ports]
        return meters

    def _site_port_numbers(self) -> tuple[int, ...]:
        return tuple(dict.fromkeys(port for port, _iid in self.site_ports))

    def _to_miss_stages(self) -> tuple:
        """The actions that send a miss into the fair punting stages: its source's bucket into
        the register the MISS_SOURCE table matches (one shared tuple per bridge)."""
        return self._miss_actions

    def _miss_flows(self) -> list[Flow]:
        """The punting stages of a miss: per source bucket, per site port, in all."""
        reg = f"reg{REG_MISS_BUCKET}"  # multipath leaves the bits above the bucket's at 0
        flows = [Flow(T_MISS_SOURCE, 100, match(in_port=port, **{reg: b}), cookie(K_BASE),
                      meter=miss_source_meter(i, b), goto=T_MISS_PORT)
                 for i, port in enumerate(self._site_port_numbers())
                 for b in range(self.miss_source_buckets)]
        flows.append(Flow(T_MISS_SOURCE, 0, (), cookie(K_DROP)))
        flows += [Flow(T_MISS_PORT, 100, match(in_port=port), cookie(K_BASE),
                       meter=METER_MISS_PORT + i, goto=T_MISS_PUNT)
                  for i, port in enumerate(self._site_port_numbers())]
        flows.append(Flow(T_MISS_PORT, 0, (), cookie(K_DROP)))
        flows.append(Flow(T_MISS_PUNT, 0, (), cookie(K_PUNT_MISS), apply=(ToController(),),
                          meter=METER_MISS))
        return flows

    def base_flows(self) -> list[Flow]:
        """The flows that do not depend on the map-cache or on learned hosts."""
        flows = [Flow(T_CLASSIFY, 0, (), cookie(K_DROP)),
                 Flow(T_ENCAP, 0, (), cookie(K_PUNT_MISS), apply=self._to_miss_stages(),
                      goto=T_MISS_SOURCE) if self.itr else Flow(T_ENCAP, 0, (), cookie(K_DROP)),
                 Flow(T_MTU, 100, match(reg0=(1, 1)), cookie(K_PUNT_TOO_BIG),
                      apply=(ToController(),), clear=True, meter=METER_PUNT),
                 Flow(T_MTU, 0, (), cookie(K_BASE)),
                 Flow(T_DECAP, 0, (), cookie(K_DROP)),
                 Flow(T_DELIVER, 0, (), cookie(K_DROP))]
        for port, iid in self.site_ports:
            flows.extend(self._classify_site(port, iid))
        if self.itr:
            flows.extend(self._miss_flows())
        if self.etr:
            for eth in (ETH_TYPE_IPV4, ETH_TYPE_IPV6):
                flows.append(Flow(T_CLASSIFY, 800, match(in_port=self.gpe_port, eth_type=eth),
                                  cookie(K_BASE), goto=T_DECAP))
        # never looked up in the mapping system: multicast, broadcast, link-local
        for net, eth in ((IPv4Network("224.0.0.0/4"), ETH_TYPE_IPV4),
                         (IPv4Network("255.255.255.255/32"), ETH_TYPE_IPV4),
                         (IPv4Network("169.254.0.0/16"), ETH_TYPE_IPV4),
                         (IPv6Network("ff00::/8"), ETH_TYPE_IPV6),
                         (IPv6Network("fe80::/10"), ETH_TYPE_IPV6)):
            flows.append(Flow(T_ENCAP, 4000, match(eth_type=eth, **dict([prefix_match(net)])),
                              cookie(K_DROP)))
        for prefix in self.local_prefixes:
            flows.extend(self._local_prefix(prefix))
            if self.native_port is not None and prefix.instance_id == self.native_instance_id:
                # unencapsulated traffic from a non-LISP host, for a local host
                net = prefix.network
                flows.append(Flow(T_CLASSIFY, 850, match(in_port=self.native_port,
                                                         eth_type=_eth_type(net),
                                                         **dict([prefix_match(net)])),
                                  cookie(K_BASE), metadata=(prefix.instance_id, METADATA_MASK),
                                  goto=T_DELIVER))
        if self.alt_port is not None:
            flows.extend(self._alt_flows())
        return flows

    def _alt_flows(self) -> list[Flow]:
        """BGP and ALT traffic between the internal port and the GRE ports, and nothing else:
        the GRE ports are L3 (no ARP crosses them), so the switch answers the internal port's
        ARP for each peer, and gives packets out of a tunnel the internal port's MAC."""
        alt, mac = str(self.alt_address), self.alt_mac
        flows = []
        for peer, gre in self.alt_peers:
            flows += [
                Flow(T_CLASSIFY, 1100, match(in_port=self.alt_port, eth_type=ETH_TYPE_IPV4,
                                             ipv4_dst=str(peer)), cookie(K_ALT),
                     apply=(Output(gre),)),
                Flow(T_CLASSIFY, 1100, match(in_port=self.alt_port, eth_type=ETH_TYPE_ARP, arp_op=1,
                                             arp_tpa=str(peer)), cookie(K_ALT),
                     apply=_arp_reply_actions(ALT_PEER_MAC, str(peer))),
                Flow(T_CLASSIFY, 1100, match(in_port=gre, eth_type=ETH_TYPE_IPV4, ipv4_dst=alt),
                     cookie(K_ALT), apply=(SetField("eth_src", ALT_PEER_MAC),
                                           SetField("eth_dst", mac), Output(self.alt_port))),
                Flow(T_CLASSIFY, 1000, match(in_port=gre), cookie(K_DROP)),
            ]
            if self.alt_last_hop:
                for port, kind in ((LISP_CONTROL_PORT, K_PUNT_ALT_CONTROL),
                                   (LISP_DATA_PORT, K_PUNT_DATA_PROBE)):
                    flows.append(Flow(T_CLASSIFY, 1150,
                                      match(in_port=gre, eth_type=ETH_TYPE_IPV4,
                                            ip_proto=IPPROTO_UDP, udp_dst=port),
                                      cookie(kind), apply=(ToController(),), meter=METER_PUNT))
            if self.etr:
                for prefix in self.local_prefixes:
                    if prefix.network.version != 4:
                        continue
                    for port, kind in ((LISP_CONTROL_PORT, K_PUNT_ALT_CONTROL),
                                       (LISP_DATA_PORT, K_PUNT_DATA_PROBE)):
                        flows.append(Flow(
                            T_CLASSIFY, 1200,
                            match(in_port=gre, eth_type=ETH_TYPE_IPV4, ip_proto=IPPROTO_UDP,
                                  udp_dst=port, **dict([prefix_match(prefix.network)])),
                            cookie(kind), apply=(ToController(),), meter=METER_PUNT))
        flows.append(Flow(T_CLASSIFY, 1000, match(in_port=self.alt_port), cookie(K_DROP)))
        return flows

    def _classify_site(self, port: int, iid: int) -> list[Flow]:
        flows = []
        meta = (iid, METADATA_MASK)
        for eth in (ETH_TYPE_IPV4, ETH_TYPE_IPV6):
            flows.append(Flow(T_CLASSIFY, 800, match(in_port=port, eth_type=eth), cookie(K_BASE),
                              metadata=meta, goto=T_ENCAP))
        if self.gateway_ipv4 is not None:
            gw, mac = str(self.gateway_ipv4), self.gateway_mac
            # an ARP responder in the switch: no packet-in when hosts refresh the gateway's MAC
            flows.append(Flow(
                T_CLASSIFY, 1000, match(in_port=port, eth_type=ETH_TYPE_ARP, arp_op=1, arp_tpa=gw),
                cookie(K_BASE), apply=_arp_reply_actions(mac, gw)))
            flows.append(Flow(T_CLASSIFY, 900,
                              match(in_port=port, eth_type=ETH_TYPE_ARP, arp_op=2, arp_tpa=gw),
                              cookie(K_PUNT_NEIGHBOR), apply=(ToController(),), meter=METER_PUNT))
        if self.gateway_ipv6 is not None:
            # solicitations for the gateway's address, advertisements sent to it
            for icmpv6_type, field_name in ((ND_NEIGHBOR_SOLICIT, "ipv6_nd_target"),
                                            (ND_NEIGHBOR_ADVERT, "ipv6_dst")):
                flows.append(Flow(T_CLASSIFY, 900,
                                  match(in_port=port, eth_type=ETH_TYPE_IPV6,
                                        ip_proto=IPPROTO_ICMPV6, icmpv6_type=icmpv6_type,
                                        **{field_name: str(self.gateway_ipv6)}),
                                  cookie(K_PUNT_NEIGHBOR), apply=(ToController(),),
                                  meter=METER_PUNT))
        return flows

    def _local_prefix(self, prefix: EidPrefix) -> list[Flow]:
        net = prefix.network
        field_value = prefix_match(net)
        meta = (prefix.instance_id, METADATA_MASK)
        eth = _eth_type(net)
        flows = [
            # traffic between local hosts of one instance-id stays local
            Flow(T_ENCAP, 3000 + net.prefixlen,
                 match(metadata=meta, eth_type=eth, **dict([field_value])), cookie(K_BASE),
                 goto=T_DELIVER),
            Flow(T_DELIVER, 10, match(metadata=meta, eth_type=eth, **dict([field_value])),
                 cookie(K_PUNT_RESOLVE), apply=(ToController(),), meter=METER_PUNT),
        ]
        if self.etr:
            flows.append(Flow(T_DECAP, 1000 + net.prefixlen,
                              match(tunnel_id=prefix.instance_id, eth_type=eth,
                                    **dict([field_value])),
                              cookie(K_DECAP), metadata=meta, goto=T_DELIVER))
        return flows

    def mapping_flows(self, entry: CacheEntry, shares: tuple[Share, ...],
                      group_id: int | None) -> tuple[list[Flow], Group | None]:
        """The flow (and select group, when several locators share traffic) for one entry."""
        prefix = entry.prefix
        m = _encap_match(prefix, self._metadata_memo)
        prio = encap_priority(prefix)
        if not shares:
            if entry.action == Action.SEND_MAP_REQUEST:
                # every packet is a miss again (rate-limited), even under a covering mapping
                return [Flow(T_ENCAP, prio, m, cookie(K_PUNT_MISS),
                             apply=self._to_miss_stages(), goto=T_MISS_SOURCE)], None
            if entry.action == Action.NATIVELY_FORWARD and self.native_port is not None:
                # out unencapsulated, to the underlay bridge (and its LOCAL port: the host's
                # routing table takes the packet on; RFC 9300's natively-forward)
                return [Flow(T_ENCAP, prio, m, cookie(K_NATIVE),
                             apply=(Output(self.native_port),))], None
            return [Flow(T_ENCAP, prio, m, cookie(K_NEGATIVE))], None
        if len(shares) > 1 and group_id is None:
            raise ValueError(f"{prefix}: several locators need a group id")
        # mappings to the same locators share their actions and group buckets (memoized: bulk
        # loads are fast, and a million mappings do not hold a million copies). With a group id,
        # even one locator goes through the group (a mapping keeps its group while probing
        # moves its traffic between locators).
        grouped = group_id is not None
        memo = self._encap_actions_memo
        key = (prefix.instance_id, shares, grouped)
        compiled = memo.get(key)
        if compiled is None:
            compiled = self._encap_actions(prefix.instance_id, shares, grouped)
            if len(memo) >= ENCAP_ACTIONS_MEMO_LIMIT:
                memo.clear()
            memo[key] = compiled
        apply, write, buckets = compiled
        group = None
        if buckets is not None:
            group = Group(group_id, buckets)
            write = (_DEC_TTL, GroupAction(group_id))
        return [Flow(T_ENCAP, prio, m, cookie(K_ENCAP), apply=apply, write=write,
                     goto=T_MTU)], group

    def _encap_actions(self, instance_id: int, shares: tuple[Share, ...], grouped: bool = False
                       ) -> tuple[tuple, tuple | None, tuple[Bucket, ...] | None]:
        """(apply, write, None) for one locator; (apply, None, group buckets) for several, or
        for one when ``grouped`` (the write actions then name the mapping's own group)."""
        tunnel = [SetField("tunnel_id", instance_id)]
        if len(shares) == 1 and not grouped:
            write = (_DEC_TTL, *tunnel, SetField(_tun_dst(shares[0].rloc), str(shares[0].rloc)),
                     Output(self.gpe_port))
            buckets = None
        else:
            write = None
            buckets = tuple(Bucket(s.weight, (*tunnel, SetField(_tun_dst(s.rloc), str(s.rloc)),
                                              Output(self.gpe_port))) for s in shares)
        limit = min(packet_size_limit(self.underlay_mtu, s.rloc.version) for s in shares)
        return (CheckPktLarger(limit),), write, buckets

    def host_flow(self, instance_id: int, address: IPv4Address | IPv6Address, mac: str,
                  port: int, idle_timeout: int = 300) -> Flow:
        """Delivery to one local host (learned by the controller)."""
        field_name = "ipv4_dst" if address.version == 4 else "ipv6_dst"
        eth = ETH_TYPE_IPV4 if address.version == 4 else ETH_TYPE_IPV6
        return Flow(T_DELIVER, 1000,
                    match(metadata=(instance_id, METADATA_MASK), eth_type=eth,
                          **{field_name: str(address)}),
                    cookie(K_HOST), apply=(SetField("eth_src", self.gateway_mac),
                                           SetField("eth_dst", mac), Output(port)),
                    idle_timeout=idle_timeout)


def _arp_reply_actions(mac: str, ip: str) -> tuple:
    """An ARP responder in the switch: turn the request for ``ip`` into the reply "``ip`` is at
    ``mac``" and send it back out of the port it came in on."""
    return (CopyField("eth_src", "eth_dst", 48), SetField("eth_src", mac),
            SetField("arp_op", 2), CopyField("arp_sha", "arp_tha", 48),
            SetField("arp_sha", mac), CopyField("arp_spa", "arp_tpa", 32),
            SetField("arp_spa", ip), Output(OFPP_IN_PORT))


def _tun_dst(rloc) -> str:
    return "tun_ipv4_dst" if rloc.version == 4 else "tun_ipv6_dst"


@dataclass(frozen=True)
class UnderlayBridge:
    """The underlay bridge: punts control traffic to us, forwards the rest normally."""

    rloc: IPv4Address
    control_rate_pps: int = 1000
    data_probe_prefixes: tuple[EidPrefix, ...] = ()  # the ETR's EID prefixes (IPv4 ones used)
    rloc_ipv6: IPv6Address | None = None
    # the ETR's other locators (local prefixes' RLOCs on this xTR): RLOC-probes to them are ours
    # to answer too
    other_rlocs: tuple[IPv4Address | IPv6Address, ...] = ()
    native_port: int | None = None  # patch port to the LISP bridge (natively-forwarded traffic)
    local_mac: str | None = None    # the LOCAL port's: natively-forwarded packets are sent to it
    native_prefixes: tuple[EidPrefix, ...] = ()  # local EIDs reachable natively
    control_source_rate_pps: int = 250  # control messages and data probes from one source bucket
    control_source_buckets: int = 64    # sources are hashed into this many (power of two)
    _control_actions: tuple = field(default=(), init=False, repr=False, compare=False,
                                    hash=False)

    def __post_init__(self):
        buckets = self.control_source_buckets
        if not 1 <= buckets <= MAX_SOURCE_BUCKETS or buckets & (buckets - 1):
            raise ValueError(f"control_source_buckets: {buckets} is not a power of two up to "
                             f"{MAX_SOURCE_BUCKETS}")
        object.__setattr__(self, "_control_actions", (Multipath(buckets, REG_MISS_BUCKET),))

    def meters(self) -> list[Meter]:
        return [Meter(METER_CONTROL, self.control_rate_pps),
                *(Meter(METER_CONTROL_SOURCE + b, self.control_source_rate_pps)
                  for b in range(self.control_source_buckets))]

    def _control_stages(self) -> list[Flow]:
        """Per source bucket, then in all, to the controller; the kind (control message or data
        probe) is the UDP destination port's."""
        reg = f"reg{REG_MISS_BUCKET}"
        flows = [Flow(T_CONTROL_SOURCE, 100, match(**{reg: b}), cookie(K_BASE),
                      meter=METER_CONTROL_SOURCE + b, goto=T_CONTROL_PUNT)
                 for b in range(self.control_source_buckets)]
        flows.append(Flow(T_CONTROL_SOURCE, 0, (), cookie(K_DROP)))
        kinds = [(ETH_TYPE_IPV4, LISP_CONTROL_PORT, K_PUNT_CONTROL),
                 (ETH_TYPE_IPV4, LISP_DATA_PORT, K_PUNT_DATA_PROBE)]
        if self.rloc_ipv6 is not None:
            kinds.append((ETH_TYPE_IPV6, LISP_CONTROL_PORT, K_PUNT_CONTROL))
        for eth, port, kind in kinds:
            flows.append(Flow(T_CONTROL_PUNT, 100, match(eth_type=eth, ip_proto=IPPROTO_UDP,
                                                         udp_dst=port),
                              cookie(kind), apply=(ToController(),), meter=METER_CONTROL))
        flows.append(Flow(T_CONTROL_PUNT, 0, (), cookie(K_DROP)))
        return flows

    def base_flows(self) -> list[Flow]:
        rloc = str(self.rloc)
        flows = [
            *self._control_stages(),
            Flow(T_UNDERLAY, 40000, match(eth_type=ETH_TYPE_IPV4, ip_proto=IPPROTO_UDP,
                                          ipv4_dst=rloc, udp_dst=LISP_CONTROL_PORT),
                 cookie(K_PUNT_CONTROL), apply=self._control_actions, goto=T_CONTROL_SOURCE),
            Flow(T_UNDERLAY, 40000, match(eth_type=ETH_TYPE_ARP, arp_op=2, arp_tpa=rloc),
                 cookie(K_PUNT_UNDERLAY_ARP), apply=(ToController(), Output(OFPP_NORMAL))),
            Flow(T_UNDERLAY, 0, (), cookie(K_BASE), apply=(Output(OFPP_NORMAL),)),
        ]
        if self.rloc_ipv6 is not None:
            rloc6 = str(self.rloc_ipv6)
            flows += [
                Flow(T_UNDERLAY, 40000, match(eth_type=ETH_TYPE_IPV6, ip_proto=IPPROTO_UDP,
                                              ipv6_dst=rloc6, udp_dst=LISP_CONTROL_PORT),
                     cookie(K_PUNT_CONTROL), apply=self._control_actions, goto=T_CONTROL_SOURCE),
                # the next hop's Neighbor Advertisements: to us (its MAC) and on to the LOCAL
                # port's kernel and OVS's neighbour cache
                Flow(T_UNDERLAY, 40000, match(eth_type=ETH_TYPE_IPV6, ip_proto=IPPROTO_ICMPV6,
                                              icmpv6_type=ND_NEIGHBOR_ADVERT, ipv6_dst=rloc6),
                     cookie(K_PUNT_UNDERLAY_ND), apply=(ToController(), Output(OFPP_NORMAL)))]
        own = {self.rloc, self.rloc_ipv6}
        flows += [
            Flow(T_UNDERLAY, 40000, match(eth_type=_eth_type(address), ip_proto=IPPROTO_UDP,
                                          **{"ipv4_dst" if address.version == 4 else "ipv6_dst":
                                             str(address)}, udp_dst=LISP_CONTROL_PORT),
                 cookie(K_PUNT_CONTROL), apply=self._control_actions, goto=T_CONTROL_SOURCE)
            for address in dict.fromkeys(self.other_rlocs) if address not in own
            and (address.version == 4 or self.rloc_ipv6 is not None)]
        if self.native_port is not None and self.local_mac is not None:
            flows.append(Flow(T_UNDERLAY, 30000, match(in_port=self.native_port), cookie(K_NATIVE),
                              apply=(SetField("eth_dst", self.local_mac), Output(OFPP_LOCAL))))
            flows += [Flow(T_UNDERLAY, 30000, match(eth_type=_eth_type(p.network),
                                                    **dict([prefix_match(p.network)])),
                           cookie(K_NATIVE), apply=(Output(self.native_port),))
                      for p in self.native_prefixes]
        flows += [  # data probes (the ITR sends them for IPv4 EIDs only)
            Flow(T_UNDERLAY, 39000, match(eth_type=ETH_TYPE_IPV4, ip_proto=IPPROTO_UDP,
                                          udp_dst=LISP_DATA_PORT,
                                          **dict([prefix_match(p.network)])),
                 cookie(K_PUNT_DATA_PROBE), apply=self._control_actions, goto=T_CONTROL_SOURCE)
            for p in self.data_probe_prefixes if p.network.version == 4]
        return flows
