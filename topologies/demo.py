#!/usr/bin/env python3
"""The default demo: the seed's LISP+ALT setting (topologies/seed_alt.py), shown step by step.

    sudo .venv/bin/python topologies/demo.py          # build, show, tear down
    sudo .venv/bin/python topologies/demo.py --cli    # ... and stay in the Mininet CLI, where
                                                      # `x1 lispctl map list` etc. work

It builds two LISP sites on the ALT (two meshed FRR routers over GRE), a Map-Server/Map-Resolver
and a third site behind it, each xTR with its own Open vSwitch and lisp_app controller; waits for
the BGP sessions; pings from h1 to h2 with a cold map-cache while tshark watches the underlay; and
prints what the controllers know. Everything is torn down on exit, on Ctrl-C and on SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from topologies.capture import start_capture, stop_capture  # noqa: E402

NEEDED = {"ovs-vswitchd": "openvswitch-switch", "ovsdb-server": "openvswitch-switch",
          "mnexec": "mininet", "tshark": "tshark", "ethtool": "ethtool", "ping": "iputils-ping"}


def preflight() -> str | None:
    """Why the demo cannot run here (None: it can)."""
    if os.geteuid() != 0:
        return "run the demo as root (Mininet, Open vSwitch and FRR need it)"
    missing = sorted({pkg for tool, pkg in NEEDED.items() if shutil.which(tool) is None})
    if not os.path.exists("/usr/lib/frr/bgpd"):
        missing.append("frr")
    if missing:
        return (f"missing {', '.join(missing)}: run `bash scripts/setup.sh` first (Debian 12, "
                "as root)")
    try:
        import mininet.net  # noqa: F401
    except ImportError:
        return "the mininet Python package is missing: run `bash scripts/setup.sh` first"
    return None


def step(title: str) -> None:
    print(f"\n=== {title}", flush=True)


def show(text: str) -> None:
    print("\n".join("    " + line for line in text.rstrip().splitlines()), flush=True)


def capture(topo, path: Path):
    return start_capture(topo.host("r").popen, [topo.intf("r1"), topo.intf("r2")], path,
                         "udp port 4341 or udp port 4342 or ip proto 47")


def lisp_exchange(path: Path) -> str:
    """The LISP control messages and data probes in a capture, one line each (a packet crossing
    both captured router interfaces shows twice). For packets inside GRE the inner addresses are
    shown: a Map-Request or data probe on the ALT is addressed to the EID itself."""
    out = subprocess.run(
        ["tshark", "-r", str(path), "-Y", "lisp or (gre and lisp-data)", "-T", "fields",
         "-E", "separator=|", "-e", "frame.time_relative", "-e", "gre", "-e", "ip.src",
         "-e", "ip.dst", "-e", "lisp.type", "-e", "lisp.nonce", "-e", "lisp-data.nonce"],
        capture_output=True, text=True).stdout
    names = {"1": "Map-Request", "2": "Map-Reply", "3": "Map-Register", "4": "Map-Notify",
             "8": "ECM"}
    lines = []
    for row in out.splitlines():
        t, gre, src, dst, kind, nonce, probe_nonce = (row.split("|") + [""] * 7)[:7]
        if gre:  # outer,inner -> inner
            src, dst = src.split(",")[-1], dst.split(",")[-1]
        name = names.get(kind, kind) if kind else "data probe"
        if probe_nonce and not nonce:
            nonce = f"0x{int(probe_nonce, 0):06x}"
            probe_nonce = ""
        where = "inside GRE (the ALT)" if gre else "on the underlay"
        lines.append(f"{float(t):7.3f}s  {name:<12} {src:>15} -> {dst:<15} "
                     f"nonce {nonce or probe_nonce:<18}  {where}")
    return "\n".join(lines) or "(no LISP control messages seen)"


def _terminate(_signum, _frame):
    raise KeyboardInterrupt  # unwinds through the topology's teardown


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cli", action="store_true", help="stay in the Mininet CLI at the end")
    args = parser.parse_args()
    problem = preflight()
    if problem:
        print(f"demo: {problem}", file=sys.stderr)
        return 1
    # lispctl inside the Mininet nodes (x1 lispctl map list): the virtualenv's bin on the PATH
    os.environ["PATH"] = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"
    signal.signal(signal.SIGTERM, _terminate)

    from topologies.seed_alt import SeedAlt

    workdir = Path(tempfile.mkdtemp(prefix="lisp-demo-"))
    try:
        step("Building the seed's LISP+ALT topology (each xTR: its own OVS and controller)")
        with SeedAlt() as topo:
            show("sites: h1 153.16.36.10 behind x1 (AS 2147483677), h2 153.16.38.10 behind x2 "
                 "(AS 2147483678)\nALT core: a1 (AS 2147483671) =GRE= a2 (AS 2147483672); "
                 "Map-Server/Map-Resolver ms; h3 153.16.40.10 behind x3, off the ALT")
            step("BGP sessions coming up on the ALT (FRR's view from a1 and a2)")
            topo.wait_established()
            for a in topo.alts.values():
                show(a.vtysh("show bgp ipv4 unicast summary"))
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and "153.16.38.0/24" not in \
                    topo.xtrs["x1"].lispctl("bgp"):
                time.sleep(1)
            step("x1: lispctl bgp (os-ken's BGP speaker inside the controller)")
            show(topo.xtrs["x1"].lispctl("bgp"))
            step("Cold map-cache: h1 pings h2 across LISP+ALT while tshark watches the underlay")
            pcap = workdir / "demo.pcap"
            cap = capture(topo, pcap)
            show(topo.host("h1").cmd("ping -c 3 -i 0.3 -W 3 153.16.38.10"))
            stop_capture(cap)
            step("The mapping exchange: Map-Requests travel the ALT, Map-Replies the underlay")
            show(lisp_exchange(pcap))
            step("x1: lispctl map list")
            show(topo.xtrs["x1"].lispctl("map", "list"))
            step("x1: lispctl flows (our flows and groups, with packet counts)")
            show(topo.xtrs["x1"].lispctl("flows"))
            step("x1: lispctl mapstat --fresh (the switch's counters read now)")
            show(topo.xtrs["x1"].lispctl("mapstat", "--fresh"))
            if args.cli:
                from mininet.cli import CLI
                step("Mininet CLI: try `x1 lispctl map list`, `x2 lispctl bgp`, `h1 ping 153.16.40.10` "
                     "(exit to tear down)")
                CLI(topo.net)
            step("Tearing down")
    except KeyboardInterrupt:
        print("\ndemo: interrupted; everything it started has been torn down", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print("done: nothing left running")
    return 0


if __name__ == "__main__":
    sys.exit(main())
