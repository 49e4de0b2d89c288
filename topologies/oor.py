"""Open Overlay Router 1.3 as a peer for the interop tests and benchmarks: built from the source
archive in ../shared/peers (never copied into lisp_app), run in network namespaces that the tests
and benchmarks create and remove.

:func:`oor_binary` builds it once per archive (about 30 s; scripts/setup.sh installs the build
packages) into a cache directory outside the checkout. :class:`OorNetwork` is a plain-namespace
underlay: one router namespace and one namespace per node, each joined to the router by a veth
with its own /24 (node i: 10.77.i.1, the router 10.77.i.254).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

from topologies.capture import start_capture, stop_capture

ROOT = Path(__file__).resolve().parents[1]
PEERS = ROOT.parent / "shared" / "peers"
BUILD_CACHE = Path(os.environ.get("LISP_APP_PEER_CACHE", "/var/tmp/lisp_app-peers"))


def oor_archive() -> Path:
    found = sorted(PEERS.glob("oor-*.tar.gz"))
    if not found:
        raise FileNotFoundError(f"no Open Overlay Router archive in {PEERS}")
    return found[-1]


def oor_binary() -> Path:
    """The oor executable, built from the archive if this archive was not built before."""
    archive = oor_archive()
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()[:16]
    home = BUILD_CACHE / f"oor-{digest}"
    binary = next(home.glob("*/oor/oor"), None) if home.exists() else None
    if binary is not None and os.access(binary, os.X_OK):
        return binary
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    sh(f"tar xzf {archive} -C {home}")
    (source,) = home.glob("*/oor")
    done = subprocess.run(["make", "-j2"], cwd=source, env={**os.environ, "CFLAGS": "-fcommon"},
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"building Open Overlay Router failed:\n{done.stderr[-3000:]}")
    return source / "oor"


def sh(command: str, check: bool = True) -> str:
    done = subprocess.run(command, shell=True, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise RuntimeError(f"{command}: {done.stderr.strip()}")
    return done.stdout


def oor_config(eid: str, map_server: str, key: str, map_resolver: str | None = None,
               iid: int = 0, encapsulation: str = "LISP", probe_interval: int | None = None) -> str:
    """An OOR mobile-node configuration: one EID (a /32 on its tun interface), registered with
    ``map_server`` (key-id 1), resolving through ``map_resolver``; with ``probe_interval``, OOR
    RLOC-probes the locators of its map-cache entries that often (seconds; OOR's default: 30)."""
    probing = "" if probe_interval is None else (
        f"rloc-probing {{\n    rloc-probe-interval = {probe_interval}\n"
        f"    rloc-probe-retries = 1\n    rloc-probe-retries-interval = 1\n}}\n")
    return f"""debug = 2
operating-mode = MN
encapsulation = {encapsulation}
{probing}map-request-retries = 2
map-resolver = {{
  {map_resolver or map_server}
}}
map-server {{
  address = {map_server}
  key-type = 1
  key = {key}
  proxy-reply = off
}}
database-mapping {{
  eid-prefix = {eid}
  iid = {iid}
  ttl = 10
  rloc-iface {{
    interface = eth0
    ip_version = 4
    priority = 1
    weight = 100
  }}
}}
"""


#: The interface index OOR's interfaces get in our labs. OOR's xTR gives each RLOC interface a
#: routing table and rule of its own numbered 10 + its interface index (RULE_IFACE_BASE_TABLE_
#: PRIORITY in its data-plane/tun/tun.c): an interface of index 243 to 245 gets table 253, 254
#: or 255, the kernel's default, main and local tables, and the routes OOR puts into its tunnel
#: then capture its own control traffic (seen in CI: an interface of index 244, its
#: Map-Registers never left the namespace). An index left to chance reaches those values once
#: the machine has made a few hundred interfaces.
OOR_IFINDEX = 10


def fix_oor_interface(host, name: str, peer, peer_name: str) -> None:
    """Make a Mininet link's ``name`` end (on ``host``, which runs OOR) again with the index
    OOR_IFINDEX, its other end ``peer_name`` on ``peer``; both up, without addresses (call it
    before configuring them)."""
    host.cmd(f"ip link del {name}")
    host.cmd(f"ip link add {name} index {OOR_IFINDEX} type veth peer name {peer_name} "
             f"netns {peer.pid}")
    host.cmd(f"ip link set {name} up")
    peer.cmd(f"ip link set {peer_name} up")
    index = host.cmd(f"cat /sys/class/net/{name}/ifindex").strip()
    if index != str(OOR_IFINDEX):
        raise RuntimeError(f"{name}: interface index {index!r}, wanted {OOR_IFINDEX}")


class OorNetwork:
    """Namespaces ``<tag>r`` (the router) and ``<tag><name>`` per node; :meth:`close` removes
    them and every process started in them."""

    def __init__(self, tag: str, nodes: list[str], workdir: Path):
        self.tag, self.workdir = tag, workdir
        self.nodes = {name: i + 1 for i, name in enumerate(nodes)}
        self.procs: list[subprocess.Popen] = []
        self.router = f"{tag}r"
        try:
            self._build()
        except Exception:
            self.close()
            raise

    def ns(self, name: str) -> str:
        return f"{self.tag}{name}"

    def address(self, name: str) -> str:
        return f"10.77.{self.nodes[name]}.1"

    def _build(self) -> None:
        for ns in [self.router, *(self.ns(n) for n in self.nodes)]:
            sh(f"ip netns add {ns}; ip -n {ns} link set lo up")
        sh(f"ip netns exec {self.router} sysctl -qw net.ipv4.ip_forward=1")
        for name, i in self.nodes.items():
            ns, a, b = self.ns(name), f"{self.tag}{i}a", f"{self.tag}{i}b"
            # eth0 made in the node's namespace with a fixed interface index (OOR_IFINDEX)
            sh(f"ip -n {ns} link add eth0 index {OOR_IFINDEX} type veth peer name {b} "
               f"netns {self.router}; "
               f"ip -n {ns} addr add 10.77.{i}.1/24 dev eth0; ip -n {ns} link set eth0 up; "
               f"ip -n {ns} route add default via 10.77.{i}.254; "
               f"ip -n {self.router} addr add 10.77.{i}.254/24 dev {b}; "
               f"ip -n {self.router} link set {b} up; "
               f"ip netns exec {ns} sysctl -qw net.ipv4.conf.all.rp_filter=0 "
               f"net.ipv4.conf.default.rp_filter=0 net.ipv4.ip_forward=1")

    def start(self, name: str, argv: list[str], log: str) -> subprocess.Popen:
        out = open(self.workdir / log, "w")
        proc = subprocess.Popen(["ip", "netns", "exec", self.ns(name), *argv], stdout=out,
                                stderr=subprocess.STDOUT, cwd=ROOT)
        self.procs.append(proc)
        return proc

    def start_oor(self, name: str, config: str) -> subprocess.Popen:
        path = self.workdir / f"{name}.conf"
        path.write_text(config)
        # line-buffered, so that the test can read what it logged so far
        return self.start(name, ["stdbuf", "-oL", "-eL", str(oor_binary()), "-f", str(path)],
                          f"{name}.log")

    def run(self, name: str, command: str, check: bool = True) -> str:
        return sh(f"ip netns exec {self.ns(name)} {command}", check)

    def ping(self, name: str, source: str, target: str, count: int) -> tuple[int, int]:
        out = self.run(name, f"ping -c {count} -i 0.3 -W 2 -I {source} {target}", check=False)
        for line in out.splitlines():
            if "packets transmitted" in line:
                parts = line.split()
                return int(parts[0]), int(parts[3])
        raise AssertionError(f"no ping summary: {out}")

    def api(self, name: str, port: int, path: str, check: bool = True) -> dict | None:
        """GET a lisp_app REST API inside a namespace (None when it does not answer and not
        ``check``)."""
        fetch = (f"import sys, urllib.request; sys.stdout.write(urllib.request.urlopen("
                 f"'http://127.0.0.1:{port}{path}', timeout=5).read().decode())")
        out = self.run(name, f'{ROOT / ".venv/bin/python"} -c "{fetch}"', check=check)
        return json.loads(out) if out else None

    def capture(self, path: Path) -> subprocess.Popen:
        """tshark on the router's interfaces, LISP ports only (stop with :meth:`stop_capture`)."""
        def popen(argv, **kw):
            return subprocess.Popen(["ip", "netns", "exec", self.router, *argv], **kw)
        return start_capture(popen, [f"{self.tag}{i}b" for i in self.nodes.values()], path)

    @staticmethod
    def stop_capture(proc: subprocess.Popen, path: Path) -> list[dict]:
        return stop_capture(proc, path)

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        for ns in [*(self.ns(n) for n in self.nodes), self.router]:
            sh(f"ip netns pids {ns} 2>/dev/null | xargs -r kill -9; ip netns del {ns}",
               check=False)
