#!/usr/bin/env python3
"""The seed's LISP+ALT setting in Mininet: LISP sites whose xTRs join an FRR ALT over OVS GRE.

    h1 153.16.36.10 - x1 (AS 2147483677) ===GRE=== a1 (ALT, AS 2147483671) ===GRE=== x2 (AS 2147483678) - h2 153.16.38.10
                       RLOC 192.0.2.1                  RLOC 203.0.113.1                RLOC 198.51.100.1
                             \\______________________ r (underlay) ______________________/

The seed's numbers: site AS 2147483677, router-id 153.16.36.254, EID prefix 153.16.36.0/24, ALT
neighbour AS 2147483671. Its GRE inner addresses were class E (240.0.254.169/.168); Linux and OVS
carry them, but FRR 8.4 refuses a class-E BGP next hop ("martian or self next-hop", even with
`bgp allow-martian-nexthop`), so the ALT links use 100.64.254.168/31 and .170/31 instead.
Each xTR sends its Map-Requests into the ALT (IP destination = the EID); the ALT routers forward
them by their BGP routes (zebra installs them) to the ETR, which answers over the underlay. Both
ALT routers announce a default route; a1 also announces 153.16.99.0/24 with a 22-ASN path of
10-digit ASNs (the path that crashed the seed's Quagga).

    sudo .venv/bin/python topologies/seed_alt.py [--cli]

"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from topologies.altnode import AltPeer, AltRouterNode, AltRouterSpec  # noqa: E402
from topologies.lispnode import (LispLab, SitePort, XtrSpec,  # noqa: E402
                                quiet_interface)

LONG_PATH = [4294967294, 4000000000, 3000000001, 2147483699, 4200000000, 4200000001,
             4200000002, 4200000003, 4200000004, 4200000005, 4200000006, 4200000007,
             4200000008, 4200000009, 4200000010, 4200000011, 4200000012, 4200000013,
             4200000014, 4200000015, 4200000016]

# the ALT core: a1 and a2, meshed by a GRE tunnel (a1 100.64.254.176 <-> a2 100.64.254.177)
ALT = {
    "a1": dict(rloc="203.0.113.1", gw="203.0.113.254", asn=2147483671, link="100.64.254.176",
               r_intf=3, r_addr="203.0.113.254/24"),
    "a2": dict(rloc="198.18.1.1", gw="198.18.1.254", asn=2147483672, link="100.64.254.177",
               r_intf=6, r_addr="198.18.1.254/24"),
}
ALT_AS = ALT["a1"]["asn"]
ALT_RLOC = ALT["a1"]["rloc"]
SITES = {
    1: dict(rloc="192.0.2.1", gw="192.0.2.254", eid="153.16.36", asn=2147483677,
            alt="100.64.254.169", alt_peer="100.64.254.168", router="a1"),
    2: dict(rloc="198.51.100.1", gw="198.51.100.254", eid="153.16.38", asn=2147483678,
            alt="100.64.254.171", alt_peer="100.64.254.170", router="a2"),
}
# the Map-Server/Map-Resolver (on the ALT) and a third site that is not on the ALT
MS = dict(rloc="198.18.0.20", gw="198.18.0.254", asn=2147483673, alt="100.64.254.173",
          alt_peer="100.64.254.172")
SITE3 = dict(rloc="198.19.0.1", gw="198.19.0.254", eid="153.16.40")
MS_KEY = "lisp-alt-s3cret"


def xtr_spec(n: int, tag: str = "", max_prefix: int = 1000) -> XtrSpec:
    """x1 or x2, on the ALT. x2 sends the first packet of a miss as a data probe over the ALT."""
    s = SITES[n]
    return XtrSpec(
        name=f"x{n}", rlocs=[s["rloc"]], next_hop=s["gw"], uplink=f"{tag}x{n}-up",
        site_ports=[SitePort(f"{tag}x{n}-site", 0)],
        eid_prefixes=[{"prefix": f"{s['eid']}.0/24"}], role="xtr",
        gateway_ipv4=f"{s['eid']}.1", alt_address=s["alt"],
        alt_tunnels=[("gre0", ALT[s["router"]]["rloc"])],
        extra={"alt": {"local_as": s["asn"], "router_id": f"{s['eid']}.254",
                       "address": s["alt"], "eid_space": ["153.16.0.0/16"],
                       "neighbors": [{"address": s["alt_peer"],
                                      "remote_as": ALT[s["router"]]["asn"],
                                      "gre_port": "gre0", "max_prefix": max_prefix}]},
               "data_probes": n == 2})


def ms_spec(tag: str = "") -> XtrSpec:
    """The Map-Server/Map-Resolver: on the ALT, no site of its own."""
    return XtrSpec(
        name="ms", rlocs=[MS["rloc"]], next_hop=MS["gw"], uplink=f"{tag}ms-up", site_ports=[],
        eid_prefixes=[], role="ms-mr", alt_address=MS["alt"], alt_tunnels=[("gre0", ALT_RLOC)],
        extra={"map_resolver": True,
               "map_server": {"sites": [{"name": "site-40", "key": MS_KEY,
                                         "eid_prefixes": [f"{SITE3['eid']}.0/24"]}]},
               "alt": {"local_as": MS["asn"], "router_id": MS["rloc"], "address": MS["alt"],
                       "eid_space": ["153.16.0.0/16"],
                       "neighbors": [{"address": MS["alt_peer"], "remote_as": ALT_AS,
                                      "gre_port": "gre0"}]}})


def site3_spec(tag: str = "", key: str = MS_KEY) -> XtrSpec:
    """A site off the ALT: Map-Requests through the Map-Resolver, registered at the Map-Server."""
    return XtrSpec(
        name="x3", rlocs=[SITE3["rloc"]], next_hop=SITE3["gw"], uplink=f"{tag}x3-up",
        site_ports=[SitePort(f"{tag}x3-site", 0)],
        eid_prefixes=[{"prefix": f"{SITE3['eid']}.0/24"}], role="xtr",
        gateway_ipv4=f"{SITE3['eid']}.1", map_resolvers=[MS["rloc"]],
        extra={"map_servers": [{"address": MS["rloc"], "key": key, "key_id": 1}]})


def alt_specs(tag: str = "") -> list[AltRouterSpec]:
    """a1 (x1's and the Map-Server's ALT router, announcing the long path) and a2 (x2's)."""
    specs = []
    for name, me in ALT.items():
        other_name = "a2" if name == "a1" else "a1"
        other = ALT[other_name]
        peers = [AltPeer(f"x{n}", s["rloc"], s["alt"], s["alt_peer"], s["asn"])
                 for n, s in SITES.items() if s["router"] == name]
        peers.append(AltPeer(other_name, other["rloc"], other["link"], me["link"], other["asn"]))
        if name == "a1":
            peers.append(AltPeer("ms", MS["rloc"], MS["alt"], MS["alt_peer"], MS["asn"]))
        specs.append(AltRouterSpec(
            name=name, rloc=me["rloc"], next_hop=me["gw"], uplink=f"{tag}{name}-up",
            asn=me["asn"], router_id=me["rloc"], peers=peers, networks=["0.0.0.0/0"],
            long_path_networks=["153.16.99.0/24"] if name == "a1" else [], long_path=LONG_PATH))
    return specs


class SeedAlt(LispLab):
    rundir_prefix = "lisp-seed-alt-"

    def __init__(self, rundir: str | None = None, tag: str = "",
                 alts: list[AltRouterSpec] | None = None, xtrs: list[XtrSpec] | None = None):
        super().__init__(rundir, tag)
        self.alt_specs = alts or alt_specs(tag)
        self.xtr_specs = xtrs or [xtr_spec(1, tag), xtr_spec(2, tag), ms_spec(tag),
                                  site3_spec(tag)]
        self.alts: dict[str, AltRouterNode] = {}

    def intf(self, name: str) -> str:
        """"r1".."r3": the router's interfaces towards x1, x2, a1; "h1": h1's interface."""
        if name.startswith("r"):
            return f"{self.tag}r-eth{name[1:]}"
        return f"{self.tag}{name}-eth0"

    def start(self) -> None:
        net, g = self.net, self.tag
        for name in ("h1", "h2", "h3", "x1", "x2", "x3", "a1", "a2", "ms", "r"):
            net.addHost(name, ip=None)
        for n in (1, 2, 3):
            net.addLink(f"h{n}", f"x{n}", intfName1=f"{g}h{n}-eth0", intfName2=f"{g}x{n}-site")
        net.addLink("x1", "r", intfName1=f"{g}x1-up", intfName2=f"{g}r-eth1")
        net.addLink("x2", "r", intfName1=f"{g}x2-up", intfName2=f"{g}r-eth2")
        for name, a in ALT.items():
            net.addLink(name, "r", intfName1=f"{g}{name}-up", intfName2=f"{g}r-eth{a['r_intf']}")
        net.addLink("ms", "r", intfName1=f"{g}ms-up", intfName2=f"{g}r-eth4")
        net.addLink("x3", "r", intfName1=f"{g}x3-up", intfName2=f"{g}r-eth5")
        self.start_network()
        r = self.host("r")
        for i, addr in ((1, "192.0.2.254/24"), (2, "198.51.100.254/24"),
                        (ALT["a1"]["r_intf"], ALT["a1"]["r_addr"]), (4, "198.18.0.254/24"),
                        (5, "198.19.0.254/24"), (ALT["a2"]["r_intf"], ALT["a2"]["r_addr"])):
            quiet_interface(r, f"{g}r-eth{i}")
            r.cmd(f"ip addr add {addr} dev {g}r-eth{i}")
        r.cmd("sysctl -qw net.ipv4.ip_forward=1")
        for n, s in {**SITES, 3: SITE3}.items():
            h = self.host(f"h{n}")
            quiet_interface(h, f"{g}h{n}-eth0")
            h.cmd(f"ip link set {g}h{n}-eth0 mtu 1450")
            h.cmd(f"ip addr add {s['eid']}.10/24 dev {g}h{n}-eth0")
            h.cmd(f"ip route add default via {s['eid']}.1")
        for spec in self.alt_specs:
            a = AltRouterNode(self.host(spec.name), spec, self.rundir)
            self.alts[spec.name] = a
            self.nodes.append(a)
            a.start()
        self.start_xtrs(self.xtr_specs)

    def wait_established(self, timeout: float = 60.0) -> None:
        """Until every BGP session of every ALT router is Established (as FRR sees it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self._all_up(a) for a in self.alts.values()):
                return
            time.sleep(1)
        raise TimeoutError("ALT sessions not established:\n" + "\n".join(
            a.vtysh("show bgp ipv4 unicast summary") for a in self.alts.values()))

    def _all_up(self, router: AltRouterNode) -> bool:
        started = {x.spec.alt_address for x in self.xtrs.values()} | {
            ALT[a]["link"] for a in self.alts}
        wanted = [p.address for p in router.spec.peers if p.address in started]
        summary = router.vtysh("show bgp ipv4 unicast summary")
        return all(any(line.startswith(p) and line.split()[-2].isdigit()
                       for line in summary.splitlines()) for p in wanted)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cli", action="store_true")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("seed_alt.py: run as root (Mininet, OVS and FRR need it)", file=sys.stderr)
        return 1
    with SeedAlt() as topo:
        print("*** waiting for the ALT sessions")
        topo.wait_established()
        for a in topo.alts.values():
            print(a.vtysh("show bgp ipv4 unicast"))
        print("*** h1 -> h2 across LISP+ALT (cold map-cache):")
        print(topo.host("h1").cmd("ping -c 3 -i 0.3 153.16.38.10"))
        print(topo.xtrs["x1"].lispctl("map", "list"))
        if args.cli:
            from mininet.cli import CLI
            CLI(topo.net)
    return 0


if __name__ == "__main__":
    sys.exit(main())
