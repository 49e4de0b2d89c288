"""Building blocks for LISP topologies in Mininet: an xTR host with its own Open vSwitch and its own
lisp_app controller, and helpers for plain hosts and routers.

Each xTR runs a private ovsdb-server and ovs-vswitchd inside its network namespace (one
ovs-vswitchd cannot host two xTRs with native tunnels), with two userspace bridges:

- br-lisp: the site port(s) and the LISP-GPE port ``gpe`` (VXLAN-GPE on UDP 4341, L3 payload);
- br-u: the uplink; its LOCAL port holds the RLOC, so OVS's native tunnelling routes from it.

Both bridges run fail_mode=secure with the controller at tcp:127.0.0.1:6653 inside the namespace,
and the controller (``lisp-controller``, see controller_command) serves its REST API on
127.0.0.1:8080 there.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
OF_PORT = 6653
API_PORT = 8080
LISP_DPID = "0000000000000001"
UNDERLAY_DPID = "0000000000000002"


def controller_command() -> list[str]:
    """How the topologies start a controller: the installed ``lisp-controller`` console script
    beside this Python (scripts/setup.sh installs it), else ``run_controller.py``."""
    script = Path(sys.executable).parent / "lisp-controller"
    if script.exists():
        return [str(script)]
    return [sys.executable, str(REPO / "run_controller.py")]


def start_ovs(sh, d: Path) -> None:
    """A private ovsdb-server and ovs-vswitchd with their files in ``d``; ``sh`` runs a command in
    the node's namespace with OVS_RUNDIR/DBDIR/LOGDIR pointing at ``d``."""
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    sh(f"ovsdb-tool create {d}/conf.db /usr/share/openvswitch/vswitch.ovsschema")
    sh(f"ovsdb-server {d}/conf.db --remote=punix:{d}/db.sock --pidfile={d}/ovsdb.pid "
       f"--unixctl={d}/ovsdb.ctl --log-file={d}/ovsdb.log --detach")
    sh(f"ovs-vsctl --db=unix:{d}/db.sock --no-wait init")
    sh(f"ovs-vswitchd unix:{d}/db.sock --pidfile={d}/vswitchd.pid "
       f"--unixctl={d}/vswitchd.ctl --log-file={d}/vswitchd.log --detach")


def stop_pidfile(pidfile: Path) -> None:
    if pidfile.exists():
        try:
            os.kill(int(pidfile.read_text().strip()), signal.SIGTERM)
        except (ValueError, ProcessLookupError):
            pass


class LispLab:
    """A Mininet network of LISP nodes (no Mininet switches or controllers: every xTR runs its own
    OVS and controller). Subclasses add hosts and links in ``build()``; use as a context manager,
    which tears everything down even when building fails."""

    rundir_prefix = "lisp-lab-"

    def __init__(self, rundir: str | None = None, tag: str = ""):
        from mininet.net import Mininet
        self.tag = tag  # prefixes interface names, so that two labs can be built at once
        self._own_rundir = rundir is None
        self.rundir = Path(rundir or tempfile.mkdtemp(prefix=self.rundir_prefix))
        self.net = Mininet(topo=None, controller=None, build=False, autoSetMacs=False,
                           autoStaticArp=False)
        self.nodes: list = []  # XtrNode / AltRouterNode, stopped in reverse order
        self.xtrs: dict[str, XtrNode] = {}

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()

    def host(self, name: str):
        return self.net.get(name)

    def start_network(self) -> None:
        """Build and start Mininet, then clear the addresses Mininet gave the interfaces."""
        self.net.build()
        self.net.start()
        for node in self.net.hosts:
            node.cmd("ip link set lo up")
            for intf in node.intfNames():
                if intf != "lo":
                    node.cmd(f"ip addr flush dev {intf}")

    def start_xtrs(self, specs) -> None:
        """Start an xTR (OVS and controller) in each spec's host, then wait until all are
        programmed."""
        for spec in specs:
            xtr = XtrNode(self.host(spec.name), spec, self.rundir)
            self.xtrs[spec.name] = xtr
            self.nodes.append(xtr)
            xtr.start()
        for xtr in self.xtrs.values():
            xtr.wait_programmed()

    def start(self) -> None:  # pragma: no cover - subclasses build their network
        raise NotImplementedError

    def stop(self) -> None:
        for node in reversed(self.nodes):
            try:
                node.stop()
            except Exception as exc:  # keep tearing down the rest
                print(f"teardown of {node.spec.name}: {exc}", file=sys.stderr)
        try:
            self.net.stop()
        except Exception as exc:
            print(f"mininet teardown: {exc}", file=sys.stderr)
        if self._own_rundir and not os.environ.get("LISP_KEEP_RUNDIR"):
            shutil.rmtree(self.rundir, ignore_errors=True)


@dataclass
class _Name:
    name: str


class ProcessNode:
    """A daemon in a Mininet host (OOR, or a switchless Map-Server), stopped with the lab
    (``LispLab.nodes``)."""

    def __init__(self, host, name: str, argv: list[str], log: Path):
        self.spec = _Name(name)
        self.log = log
        self.proc = host.popen(argv, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                               cwd=str(REPO))

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def quiet_interface(node, intf: str, keep_ipv6: bool = False, arp: bool = True) -> None:
    """Offloads off (the userspace datapath forwards partial checksums as they are and TCP then
    stalls), optionally no IPv6 and no ARP (a port handed to OVS must not answer for the RLOC)."""
    node.cmd(f"ethtool -K {intf} tx off rx off >/dev/null 2>&1")
    if not keep_ipv6:
        node.cmd(f"sysctl -qw net.ipv6.conf.{intf}.disable_ipv6=1")
    if not arp:
        node.cmd(f"ip link set {intf} arp off")
    node.cmd(f"ip link set {intf} up")


@dataclass
class SitePort:
    intf: str             # the interface in the xTR's namespace
    instance_id: int


@dataclass
class XtrSpec:
    name: str
    rlocs: list[str]                  # first one is the RLOC; more are extra locators (/24 each)
    next_hop: str
    uplink: str                       # interface name in the xTR
    site_ports: list[SitePort]
    eid_prefixes: list[dict]          # config entries (prefix, locators, ttl)
    role: str = "xtr"
    instance_id: int = 0
    gateway_ipv4: str | None = None
    gateway_ipv6: str | None = None
    map_request_targets: list[str] = field(default_factory=list)
    map_resolvers: list[str] = field(default_factory=list)
    mtu: int = 1500
    rloc_ipv6: str | None = None      # an IPv6 RLOC on br-u (/64), routed via next_hop_ipv6
    next_hop_ipv6: str | None = None
    alt_address: str | None = None    # our ALT address (/31, on the internal port alt0)
    alt_tunnels: list[tuple[str, str]] = field(default_factory=list)  # (GRE port, peer RLOC)
    encapsulation: str = "gpe"        # underlay.encapsulation: gpe or lisp (RFC 9300 headers)
    classic_decap: bool = True        # underlay.classic_decap: accept RFC 9300 headers (XDP)
    native: bool = False              # a patch pair native-l/native-u for natively-forwarded
    #                                   traffic, routed by the xTR namespace's kernel
    extra: dict = field(default_factory=dict)


class XtrNode:
    """An xTR inside a Mininet host: its OVS daemons, bridges and controller."""

    def __init__(self, host, spec: XtrSpec, rundir: Path):
        self.host = host
        self.spec = spec
        self.dir = rundir / spec.name
        self.controller = None
        self.config_path = self.dir / "site.yaml"

    # -- OVS ------------------------------------------------------------------------------------

    def _env(self) -> str:
        d = self.dir
        return f"OVS_RUNDIR={d} OVS_DBDIR={d} OVS_LOGDIR={d}"

    def sh(self, command: str, check: bool = True) -> str:
        """Run a shell command in the xTR's namespace (with its OVS environment)."""
        marker = "__rc="
        out = self.host.cmd(f"{self._env()} {command}; echo {marker}$?")
        text, _, rc = out.rpartition(marker)
        if check and rc.strip() != "0":
            raise RuntimeError(f"{self.spec.name}: `{command}` failed ({rc.strip()}): {text}")
        return text

    def vsctl(self, args: str) -> str:
        return self.sh(f"ovs-vsctl --db=unix:{self.dir}/db.sock {args}")

    def ofctl(self, args: str, check: bool = True) -> str:
        return self.sh(f"ovs-ofctl -O OpenFlow13 {args}", check)

    def appctl(self, args: str) -> str:
        return self.sh(f"ovs-appctl -t {self.dir}/vswitchd.ctl {args}")

    def start_ovs(self) -> None:
        start_ovs(self.sh, self.dir)

    def build_bridges(self) -> None:
        s = self.spec
        ctl = f"tcp:127.0.0.1:{OF_PORT}"
        quiet_interface(self.host, s.uplink, arp=False)
        self.vsctl(f"add-br br-u -- set bridge br-u datapath_type=netdev fail_mode=secure "
                   f"protocols=OpenFlow13 other-config:datapath-id={UNDERLAY_DPID} "
                   f"-- add-port br-u {s.uplink}")
        for rloc in s.rlocs:
            self.sh(f"ip addr add {rloc}/24 dev br-u")
        self.sh("ip link set br-u up")
        self.sh(f"ip route add default via {s.next_hop}")
        if s.rloc_ipv6:
            self.sh(f"ip -6 addr add {s.rloc_ipv6}/64 dev br-u nodad")
            self.sh(f"ip -6 route add default via {s.next_hop_ipv6}")
        ports = ""
        for p in s.site_ports:
            quiet_interface(self.host, p.intf, arp=False)
            ports += f" -- add-port br-lisp {p.intf}"
        if s.alt_address:
            ports += " -- add-port br-lisp alt0 -- set interface alt0 type=internal"
            for gre, remote in s.alt_tunnels:
                ports += (f" -- add-port br-lisp {gre} -- set interface {gre} type=gre "
                          f"options:remote_ip={remote} options:packet_type=legacy_l3")
        self.vsctl(f"add-br br-lisp -- set bridge br-lisp datapath_type=netdev fail_mode=secure "
                   f"protocols=OpenFlow13 other-config:datapath-id={LISP_DPID}{ports} "
                   f"-- add-port br-lisp gpe -- set interface gpe type=vxlan options:exts=gpe "
                   f"options:dst_port=4341 options:remote_ip=flow options:key=flow "
                   f"options:packet_type=legacy_l3")
        if s.alt_address:
            # TCP over GRE needs room for the GRE and outer headers (measured: an inner MTU of at most
            # 1476 bytes on a 1500-byte underlay, docs/architecture.rst)
            self.sh(f"ip link set alt0 mtu 1400; ip addr add {s.alt_address}/31 dev alt0; "
                    f"ip link set alt0 up")
        if s.native:
            self.vsctl("add-port br-lisp native-l -- set interface native-l type=patch "
                       "options:peer=native-u -- add-port br-u native-u -- set interface "
                       "native-u type=patch options:peer=native-l")
            # the namespace's kernel routes natively-forwarded packets (out br-u again)
            self.sh("sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.send_redirects=0 "
                    "net.ipv4.conf.br-u.send_redirects=0")
        for br in ("br-lisp", "br-u"):
            self.vsctl(f"set-controller {br} {ctl} -- set controller {br} "
                       f"connection-mode=out-of-band")

    def stop_ovs(self) -> None:
        for name in ("vswitchd", "ovsdb"):
            stop_pidfile(self.dir / f"{name}.pid")

    # -- controller -----------------------------------------------------------------------------

    def config(self) -> dict:
        s = self.spec
        cfg = {
            "role": s.role,
            "instance_id": s.instance_id,
            "eid_prefixes": s.eid_prefixes,
            "lisp_bridge": {"datapath_id": LISP_DPID,
                            "site_ports": [{"name": p.intf, "instance_id": p.instance_id}
                                           for p in s.site_ports],
                            "gpe_port": "gpe",
                            **({"native_port": "native-l"} if s.native else {})},
            "underlay": {"datapath_id": UNDERLAY_DPID, "rloc": s.rlocs[0],
                         "next_hop": s.next_hop, "uplink_port": s.uplink, "mtu": s.mtu,
                         "encapsulation": s.encapsulation, "classic_decap": s.classic_decap,
                         **({"native_port": "native-u"} if s.native else {}),
                         **({"rloc_ipv6": s.rloc_ipv6, "next_hop_ipv6": s.next_hop_ipv6}
                            if s.rloc_ipv6 else {})},
            "site_gateway": {k: v for k, v in (("ipv4", s.gateway_ipv4),
                                               ("ipv6", s.gateway_ipv6)) if v},
            "api": {"host": "127.0.0.1", "port": API_PORT},
            # the controller sets how fast the bridges call back after a restart
            "ovsdb": {"remote": f"unix:{self.dir}/db.sock"},
        }
        if s.map_request_targets:
            cfg["map_request_targets"] = s.map_request_targets
        if s.map_resolvers:
            cfg["map_resolvers"] = s.map_resolvers
        cfg.update(s.extra)
        return cfg

    def start_controller(self) -> None:
        self.config_path.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        log = open(self.dir / "controller.log", "wb")
        self.controller = self.host.popen(
            [*controller_command(), "--config", str(self.config_path),
             "--ofp-tcp-listen-port", str(OF_PORT), "--ofp-listen-host", "127.0.0.1"],
            stdout=log, stderr=subprocess.STDOUT, cwd=str(REPO))

    def stop_controller(self) -> None:
        if self.controller is not None and self.controller.poll() is None:
            self.controller.terminate()
            try:
                self.controller.wait(5)
            except subprocess.TimeoutExpired:
                self.controller.kill()
                self.controller.wait(5)
        self.controller = None

    def wait_programmed(self, timeout: float = 30.0) -> None:
        """Until the controller has reconciled both bridges (its API lists them). Flows alone
        prove nothing: with fail_mode=secure they outlive a controller restart."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.controller is not None and self.controller.poll() is not None:
                raise RuntimeError(f"{self.spec.name}: controller exited: {self.log_tail()}")
            try:
                state = json.loads(self.lispctl("--json", "mapstat"))
            except (RuntimeError, ValueError):
                state = {}
            if set(state.get("bridges", ())) >= {"lisp", "underlay"}:
                return
            time.sleep(0.3)
        raise TimeoutError(f"{self.spec.name}: bridges not programmed in {timeout}s: "
                           f"{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        path = self.dir / "controller.log"
        if not path.exists():
            return "(no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def lispctl(self, *args: str) -> str:
        """Run lispctl inside the xTR's namespace."""
        return self.sh(f"{sys.executable} -m lisp_app.api.cli --api "
                       f"http://127.0.0.1:{API_PORT} {' '.join(args)}")

    def start(self) -> None:
        self.start_ovs()
        self.build_bridges()
        self.start_controller()

    def stop(self) -> None:
        self.stop_controller()
        self.stop_ovs()
