"""An ALT router for Mininet topologies: its own Open vSwitch (userspace GRE tunnels to its peers)
and FRR (zebra + bgpd) running standalone inside its namespace.

For each peer there is an internal port ``alt-<peer>`` holding this router's end of the
point-to-point ALT link and a GRE port ``gre-<peer>`` (legacy_l3) to the peer's RLOC; static flows
join the two. The GRE ports are L3, so the kernel gets a static neighbour entry for each peer and
packets out of a tunnel get the internal port's MAC. Zebra installs the BGP routes and the kernel
forwards Map-Requests from one tunnel to another (ip_forward on, rp_filter off).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from topologies.lispnode import quiet_interface, start_ovs, stop_pidfile

PEER_MAC = "02:4c:49:53:50:02"  # what packets from a tunnel claim as their source
ALT_MTU = 1400                  # room for GRE + outer IPv4 on a 1500-byte underlay


@dataclass
class AltPeer:
    name: str             # short name, used in port names
    rloc: str             # the peer's RLOC (GRE remote)
    address: str          # the peer's ALT address
    local_address: str    # our end of the /31
    remote_as: int


@dataclass
class AltRouterSpec:
    name: str
    rloc: str
    next_hop: str
    uplink: str
    asn: int
    router_id: str
    peers: list[AltPeer] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)       # announced as they are
    long_path_networks: list[str] = field(default_factory=list)  # announced with a long AS path
    long_path: list[int] = field(default_factory=list)


class AltRouterNode:
    def __init__(self, host, spec: AltRouterSpec, rundir: Path):
        self.host = host
        self.spec = spec
        self.dir = rundir / spec.name
        # FRR drops privileges to the frr user: its files live where that user can reach them
        # (test run directories are private to root)
        self.frr_dir: Path | None = None

    def sh(self, command: str, check: bool = True) -> str:
        d = self.dir
        out = self.host.cmd(f"OVS_RUNDIR={d} OVS_DBDIR={d} OVS_LOGDIR={d} {command}; echo __rc=$?")
        text, _, rc = out.rpartition("__rc=")
        if check and rc.strip() != "0":
            raise RuntimeError(f"{self.spec.name}: `{command}` failed ({rc.strip()}): {text}")
        return text

    def vsctl(self, args: str) -> str:
        return self.sh(f"ovs-vsctl --db=unix:{self.dir}/db.sock {args}")

    def ofctl(self, args: str) -> str:
        return self.sh(f"ovs-ofctl -O OpenFlow13 {args}")

    def vtysh(self, command: str) -> str:
        return self.sh(f"vtysh --vty_socket {self.frr_dir} -c '{command}'", check=False)

    def start(self) -> None:
        s = self.spec
        start_ovs(self.sh, self.dir)
        quiet_interface(self.host, s.uplink, arp=False)
        self.vsctl(f"add-br br-u -- set bridge br-u datapath_type=netdev -- add-port br-u {s.uplink}")
        self.sh(f"ip addr add {s.rloc}/24 dev br-u; ip link set br-u up; "
                f"ip route add default via {s.next_hop}")
        self.ofctl("add-flow br-u actions=NORMAL")
        self.vsctl("add-br br-alt -- set bridge br-alt datapath_type=netdev fail_mode=secure")
        for p in s.peers:
            alt, gre = f"alt-{p.name}", f"gre-{p.name}"
            self.vsctl(f"add-port br-alt {alt} -- set interface {alt} type=internal "
                       f"-- add-port br-alt {gre} -- set interface {gre} type=gre "
                       f"options:remote_ip={p.rloc} options:packet_type=legacy_l3")
            self.sh(f"ip link set {alt} mtu {ALT_MTU}; ip addr add {p.local_address}/31 dev {alt}; "
                    f"ip link set {alt} up; ip neigh replace {p.address} lladdr {PEER_MAC} "
                    f"dev {alt}; sysctl -qw net.ipv4.conf.{alt}.rp_filter=0")
            mac = self.sh(f"cat /sys/class/net/{alt}/address").strip()
            self.ofctl(f"add-flow br-alt 'in_port={alt},ip,actions=output:{gre}'")
            self.ofctl(f"add-flow br-alt 'in_port={gre},ip,actions=set_field:{PEER_MAC}->eth_src,"
                       f"set_field:{mac}->eth_dst,output:{alt}'")
        self.sh("sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 "
                "net.ipv4.conf.default.rp_filter=0")
        self._start_frr()

    def _start_frr(self) -> None:
        s = self.spec
        d = self.frr_dir = Path(tempfile.mkdtemp(prefix=f"lisp-frr-{s.name}-"))
        d.chmod(0o755)
        lines = [f"router bgp {s.asn}", f" bgp router-id {s.router_id}",
                 " no bgp ebgp-requires-policy", " no bgp network import-check"]
        for p in s.peers:
            lines.append(f" neighbor {p.address} remote-as {p.remote_as}")
        lines.append(" address-family ipv4 unicast")
        lines += [f"  network {n}" for n in s.networks]
        lines += [f"  network {n} route-map LONG" for n in s.long_path_networks]
        lines.append(" exit-address-family")
        if s.long_path_networks:
            lines += ["route-map LONG permit 10",
                      " set as-path prepend " + " ".join(map(str, s.long_path))]
        (d / "bgpd.conf").write_text("\n".join(lines) + "\n")
        (d / "zebra.conf").write_text("")
        for f in (d, *d.iterdir()):
            shutil.chown(f, "frr", "frr")
        self.sh(f"/usr/lib/frr/zebra -d -f {d}/zebra.conf -i {d}/zebra.pid -z {d}/zserv.api "
                f"--vty_socket {d} --log file:{d}/zebra.log")
        time.sleep(0.5)
        self.sh(f"/usr/lib/frr/bgpd -d -f {d}/bgpd.conf -i {d}/bgpd.pid -z {d}/zserv.api "
                f"--vty_socket {d} -S -P 0 --log file:{d}/bgpd.log")

    def restart_bgpd(self) -> None:
        self._kill("bgpd")
        time.sleep(0.5)
        d = self.frr_dir
        self.sh(f"/usr/lib/frr/bgpd -d -f {d}/bgpd.conf -i {d}/bgpd.pid -z {d}/zserv.api "
                f"--vty_socket {d} -S -P 0 --log file:{d}/bgpd.log")

    def _kill(self, name: str) -> None:
        base = self.frr_dir if name in ("bgpd", "zebra") else self.dir
        if base is None:
            return
        pidfile = base / f"{name}.pid"
        if pidfile.exists():
            stop_pidfile(pidfile)
            for _ in range(50):
                if not pidfile.exists():
                    break
                time.sleep(0.1)

    def stop(self) -> None:
        for name in ("bgpd", "zebra", "vswitchd", "ovsdb"):
            self._kill(name)
        if self.frr_dir is not None:
            keep = self.dir / "frr"
            if keep.parent.exists():  # keep FRR's logs with the run's other files
                shutil.copytree(self.frr_dir, keep, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("*.api", "*.vty"))
            shutil.rmtree(self.frr_dir, ignore_errors=True)
            self.frr_dir = None
