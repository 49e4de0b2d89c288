#!/usr/bin/env python3
"""Two LISP sites across an underlay router, in Mininet, each xTR with its own OVS and controller.

    h1 10.1.0.10 ---- x1 [br-lisp | br-u 192.0.2.1] ---- r ---- [br-u 198.51.100.1 | br-lisp] x2 ---- h2 10.2.0.10
    hb1 10.1.0.10 --'  (instance-id 2000)                              (instance-id 2000)  '-- hb2 10.2.0.10

Site prefixes 10.1.0.0/24 and 2001:db8:1::/48 (x1), 10.2.0.0/24 and 2001:db8:2::/48 (x2) in
instance-id 1000; the blue hosts hb1/hb2 use the same IPv4 prefixes in instance-id 2000. x2 also
holds a second locator 198.51.100.2. Each xTR sends its Map-Requests straight to the other's RLOC.

    sudo .venv/bin/python topologies/two_sites.py          build, ping across, print state, tear down
    sudo .venv/bin/python topologies/two_sites.py --cli    ... and leave you in the Mininet CLI
        (inside it:  x1 lispctl map list   -- see the note the script prints)
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from topologies.lispnode import (LispLab, SitePort, XtrSpec,  # noqa: E402
                                quiet_interface)

IID, BLUE_IID = 1000, 2000


def site_spec(n: int, role: str = "xtr", weights: tuple[int, int] | None = None,
              ttl: int = 1440, mtu: int = 1500, tag: str = "",
              ipv6_rloc: bool = False, blue_iid: int = BLUE_IID,
              encapsulation: str = "gpe",
              priorities: tuple[int, int] | None = None) -> XtrSpec:
    """x1 (n=1) or x2 (n=2). ``tag`` prefixes interface names, so that two topologies can exist
    at once (Mininet creates every link in the root namespace first). ``ipv6_rloc`` adds an IPv6
    RLOC 2001:db8:ff0N::1 to the underlay and announces it as the preferred locator (priority 1,
    the IPv4 one becoming priority 2). ``blue_iid`` is the blue site's instance-id;
    ``encapsulation`` the data header the xTR sends (``lisp``: RFC 9300, written on the uplink);
    ``priorities`` (x2) lists both of its locators with these priorities (weight 100 each)."""
    rlocs = ["192.0.2.1"] if n == 1 else ["198.51.100.1", "198.51.100.2"]
    gw_net = "192.0.2.254" if n == 1 else "198.51.100.254"
    other = "198.51.100.1" if n == 1 else "192.0.2.1"
    if weights is None:
        locators = [{"rloc": rlocs[0], "priority": 1, "weight": 100}]
    else:
        locators = [{"rloc": r, "priority": 1, "weight": w} for r, w in zip(rlocs, weights)]
    if priorities is not None:
        locators = [{"rloc": r, "priority": p, "weight": 100} for r, p in zip(rlocs, priorities)]
    if ipv6_rloc:
        locators = [{"rloc": f"2001:db8:ff0{n}::1", "priority": 1, "weight": 100},
                    {"rloc": rlocs[0], "priority": 2, "weight": 100}]
    prefixes = [{"prefix": f"[{IID}]10.{n}.0.0/24", "ttl": ttl, "locators": locators},
                {"prefix": f"[{IID}]2001:db8:{n}::/48", "ttl": ttl, "locators": locators},
                {"prefix": f"[{blue_iid}]10.{n}.0.0/24", "ttl": ttl, "locators": locators}]
    return XtrSpec(name=f"x{n}", rlocs=rlocs, next_hop=gw_net, uplink=f"{tag}x{n}-up",
                   site_ports=[SitePort(f"{tag}x{n}-site", IID),
                               SitePort(f"{tag}x{n}-blue", blue_iid)],
                   eid_prefixes=prefixes, role=role, instance_id=IID,
                   gateway_ipv4=f"10.{n}.0.1", gateway_ipv6=f"2001:db8:{n}::1",
                   map_request_targets=[other], mtu=mtu,
                   rloc_ipv6=f"2001:db8:ff0{n}::1" if ipv6_rloc else None,
                   next_hop_ipv6=f"2001:db8:ff0{n}::254" if ipv6_rloc else None,
                   encapsulation=encapsulation)


class TwoSites(LispLab):
    """Build, start and tear down the topology. Use as a context manager."""

    rundir_prefix = "lisp-two-sites-"

    def __init__(self, x1: XtrSpec | None = None, x2: XtrSpec | None = None,
                 rundir: str | None = None, tag: str = ""):
        super().__init__(rundir, tag)
        self.specs = [x1 or site_spec(1, tag=tag), x2 or site_spec(2, tag=tag)]

    def intf(self, name: str) -> str:
        """A host's or the router's interface name ("h1" -> "h1-eth0", "r1" -> "r-eth1")."""
        if name.startswith("r"):
            return f"{self.tag}r-eth{name[1:]}"
        return f"{self.tag}{name}-eth0"

    def start(self) -> None:
        net = self.net
        for name in ("h1", "hb1", "h2", "hb2", "x1", "x2", "r"):
            net.addHost(name, ip=None)
        g = self.tag
        for n in (1, 2):
            net.addLink(f"h{n}", f"x{n}", intfName1=f"{g}h{n}-eth0", intfName2=f"{g}x{n}-site")
            net.addLink(f"hb{n}", f"x{n}", intfName1=f"{g}hb{n}-eth0", intfName2=f"{g}x{n}-blue")
            net.addLink(f"x{n}", "r", intfName1=f"{g}x{n}-up", intfName2=f"{g}r-eth{n}")
        self.start_network()
        r = self.host("r")
        for n, addr in ((1, "192.0.2.254/24"), (2, "198.51.100.254/24")):
            quiet_interface(r, f"{g}r-eth{n}")
            r.cmd(f"ip addr add {addr} dev {g}r-eth{n}")
        r.cmd("sysctl -qw net.ipv4.ip_forward=1")
        if any(spec.rloc_ipv6 for spec in self.specs):
            for n in (1, 2):
                intf = f"{g}r-eth{n}"
                r.cmd(f"sysctl -qw net.ipv6.conf.{intf}.disable_ipv6=0")
                r.cmd(f"ip -6 addr add 2001:db8:ff0{n}::254/64 dev {intf} nodad")
            r.cmd("sysctl -qw net.ipv6.conf.all.forwarding=1")
        for n in (1, 2):
            for name, v6 in ((f"h{n}", True), (f"hb{n}", False)):
                h = self.host(name)
                intf = self.intf(name)
                quiet_interface(h, intf, keep_ipv6=v6)
                h.cmd(f"ip addr add 10.{n}.0.10/24 dev {intf}")
                h.cmd(f"ip route add default via 10.{n}.0.1")
                if v6:
                    h.cmd(f"ip -6 addr add 2001:db8:{n}::10/64 dev {intf} nodad")
                    h.cmd(f"ip -6 route add default via 2001:db8:{n}::1")
        self.start_xtrs(self.specs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cli", action="store_true", help="leave me in the Mininet CLI")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("two_sites.py: run as root (Mininet and OVS need it)", file=sys.stderr)
        return 1
    with TwoSites() as topo:
        h1 = topo.host("h1")
        print("*** h1 -> h2 across LISP (cold map-cache):")
        print(h1.cmd("ping -c 3 -i 0.3 10.2.0.10"))
        print("*** x1 lispctl map list:")
        print(topo.xtrs["x1"].lispctl("map", "list"))
        print("*** x1 lispctl mapstat --fresh:")
        print(topo.xtrs["x1"].lispctl("mapstat", "--fresh"))
        if args.cli:
            from mininet.cli import CLI
            print(f"lispctl in a node: x1 {sys.executable} -m lisp_app.api.cli map list")
            CLI(topo.net)
    return 0


if __name__ == "__main__":
    sys.exit(main())
