#!/usr/bin/env python3
"""A lisp_app site and an Open Overlay Router site, in Mininet, sharing a Map-Server/Map-Resolver.

    h1 10.1.0.10 ---- x1 [lisp_app on OVS, RLOC 192.0.2.1] ---- r ---- o2 [OOR, RLOC 198.51.100.1,
                                                                |          EID 10.2.0.1/32]
                                                                +---- ms 203.0.113.1

Instance-id 1000 on both sites (or another, ``iid``). ``ms`` is Open Overlay Router's Map-Server (``ms="oor"``) or
lisp_app's switchless Map-Server/Map-Resolver (``ms="lisp_app"``); both sites register with it
(key-id 1) and send their Map-Requests to it in ECMs. OOR runs as a mobile node: its EID sits on
its tun interface, so the far end of a ping from h1 is o2 itself.

    sudo .venv/bin/python topologies/oor_site.py [--ms oor|lisp_app] [--cli]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from topologies.lispnode import LispLab, ProcessNode, quiet_interface  # noqa: E402
from topologies.oor import fix_oor_interface, oor_binary, oor_config  # noqa: E402
from topologies.two_sites import IID, site_spec  # noqa: E402

MS_ADDRESS, OOR_RLOC, OOR_EID, KEY = "203.0.113.1", "198.51.100.1", "10.2.0.1", "s3cret"
REPO = Path(__file__).resolve().parents[1]


def oor_ms_config(iid: int = IID) -> str:
    sites = "".join(f"""
lisp-site {{
    eid-prefix = {prefix}
    key-type = 1
    key = {KEY}
    iid = {iid}
    accept-more-specifics = true
    proxy-reply = false
}}
""" for prefix in ("10.1.0.0/24", "10.2.0.0/24"))
    return f"debug = 2\noperating-mode = MS\ncontrol-iface = ms-eth0\n{sites}"


def lisp_app_ms_config(iid: int = IID) -> str:
    space = f"[{iid}]" if iid else ""
    return f"""role: ms-mr
map_resolver: true
map_server:
  sites:
    - {{name: lisp-app-site, key: {KEY}, eid_prefixes: ["{space}10.1.0.0/24"]}}
    - {{name: oor-site, key: {KEY}, eid_prefixes: ["{space}10.2.0.0/24"]}}
server: {{addresses: [{MS_ADDRESS}]}}
api: {{port: 8081}}
"""


class OorSite(LispLab):
    rundir_prefix = "lisp-oor-site-"

    def __init__(self, ms: str = "oor", tag: str = "", rundir: str | None = None,
                 iid: int = IID, probe_interval: int | None = None):
        super().__init__(rundir, tag)
        self.ms_kind, self.iid, self.probe_interval = ms, iid, probe_interval
        spec = site_spec(1, tag=tag)
        spec.site_ports = spec.site_ports[:1]  # h1 only
        spec.site_ports[0].instance_id = spec.instance_id = iid
        spec.eid_prefixes = [{**p, "prefix": p["prefix"].replace(f"[{IID}]", f"[{iid}]")}
                             for p in spec.eid_prefixes if p["prefix"].startswith(f"[{IID}]10.")]
        spec.map_request_targets = []
        spec.map_resolvers = [MS_ADDRESS]
        spec.extra = {"map_servers": [{"address": MS_ADDRESS, "key": KEY, "key_id": 1}]}
        self.spec = spec
        self.oor: ProcessNode | None = None
        self.ms: ProcessNode | None = None

    def intf(self, name: str) -> str:
        """An interface name: "r1" is the router's towards x1, "r2" towards o2, "r3" towards ms;
        other names are a host's first interface ("h1" -> "h1-eth0")."""
        if name.startswith("r"):
            return f"{self.tag}r-eth{name[1:]}"
        return f"{self.tag}{name}-eth0"

    def start(self) -> None:
        net, g = self.net, self.tag
        for name in ("h1", "x1", "r", "o2", "ms"):
            net.addHost(name, ip=None)
        net.addLink("h1", "x1", intfName1=f"{g}h1-eth0", intfName2=f"{g}x1-site")
        net.addLink("x1", "r", intfName1=f"{g}x1-up", intfName2=f"{g}r-eth1")
        net.addLink("o2", "r", intfName1=f"{g}o2-eth0", intfName2=f"{g}r-eth2")
        net.addLink("ms", "r", intfName1=f"{g}ms-eth0", intfName2=f"{g}r-eth3")
        self.start_network()
        r = self.host("r")
        # OOR's interfaces with a fixed index (topologies.oor.OOR_IFINDEX says why)
        fix_oor_interface(self.host("o2"), f"{g}o2-eth0", r, f"{g}r-eth2")
        if self.ms_kind == "oor":
            fix_oor_interface(self.host("ms"), f"{g}ms-eth0", r, f"{g}r-eth3")
        for n, addr in ((1, "192.0.2.254/24"), (2, "198.51.100.254/24"), (3, "203.0.113.254/24")):
            quiet_interface(r, f"{g}r-eth{n}")
            r.cmd(f"ip addr add {addr} dev {g}r-eth{n}")
        r.cmd("sysctl -qw net.ipv4.ip_forward=1")
        h1 = self.host("h1")
        quiet_interface(h1, f"{g}h1-eth0")
        h1.cmd(f"ip addr add 10.1.0.10/24 dev {g}h1-eth0; ip route add default via 10.1.0.1")
        for name, addr, gw in (("o2", OOR_RLOC, "198.51.100.254"),
                               ("ms", MS_ADDRESS, "203.0.113.254")):
            h = self.host(name)
            quiet_interface(h, f"{g}{name}-eth0")
            h.cmd(f"ip addr add {addr}/24 dev {g}{name}-eth0; ip route add default via {gw}")
        self.host("o2").cmd("sysctl -qw net.ipv4.conf.all.rp_filter=0 "
                            "net.ipv4.conf.default.rp_filter=0 net.ipv4.ip_forward=1")
        self.start_ms()
        self.start_xtrs([self.spec])
        self.start_oor()

    def start_ms(self) -> None:
        d = self.rundir
        if self.ms_kind == "oor":
            conf = d / "ms.conf"
            conf.write_text(oor_ms_config(self.iid).replace("ms-eth0", f"{self.tag}ms-eth0"))
            argv = ["stdbuf", "-oL", str(oor_binary()), "-f", str(conf)]
        else:
            conf = d / "ms.yaml"
            conf.write_text(lisp_app_ms_config(self.iid))
            argv = [sys.executable, str(REPO / "run_controller.py"), "--config", str(conf)]
        self.ms = ProcessNode(self.host("ms"), "ms", argv, d / "ms.log")
        self.nodes.append(self.ms)

    def start_oor(self) -> None:
        conf = self.rundir / "o2.conf"
        conf.write_text(oor_config(f"{OOR_EID}/32", MS_ADDRESS, KEY, iid=self.iid,
                                   probe_interval=self.probe_interval)
                        .replace("interface = eth0", f"interface = {self.tag}o2-eth0"))
        self.oor = ProcessNode(self.host("o2"), "o2",
                               ["stdbuf", "-oL", str(oor_binary()), "-f", str(conf)],
                               self.rundir / "o2.log")
        self.nodes.append(self.oor)


def wait_registered(topo: "OorSite", timeout: float = 30.0) -> None:
    """Until both sites' registrations are confirmed (a Map-Request for an EID that has not
    registered yet gets a negative reply, which the asker caches for a minute)."""
    import json
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counters = json.loads(topo.xtrs["x1"].lispctl("--json", "mapstat"))["counters"]
        if counters["registrations_confirmed"] and \
                "confirms correct registration" in topo.oor.log_text():
            return
        time.sleep(0.3)
    raise TimeoutError("the sites' registrations were not confirmed")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ms", choices=("oor", "lisp_app"), default="oor")
    parser.add_argument("--cli", action="store_true", help="leave me in the Mininet CLI")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("oor_site.py: run as root (Mininet and OVS need it)", file=sys.stderr)
        return 1
    with OorSite(args.ms) as topo:
        wait_registered(topo)
        print(f"*** h1 -> the OOR site ({OOR_EID}), cold map-caches:")
        print(topo.host("h1").cmd(f"ping -c 5 -i 0.5 {OOR_EID}"))
        print("*** the OOR site -> h1:")
        print(topo.host("o2").cmd(f"ping -c 5 -i 0.5 -I {OOR_EID} 10.1.0.10"))
        print(topo.xtrs["x1"].lispctl("map", "list"))
        print(topo.xtrs["x1"].lispctl("mapstat", "--fresh"))
        if args.cli:
            from mininet.cli import CLI
            CLI(topo.net)
    return 0


if __name__ == "__main__":
    sys.exit(main())
