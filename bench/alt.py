"""ALT control-plane figures of lisp_app, against FRR and a bare UDP socket measured in the same run.

Topology: topologies/seed_alt.py (SeedAlt) built with interface tag "ab" (--tag), with two ALT
routers (FRR bgpd + zebra: a1, a2) and two controllers only: x1 (the site xTR on a1) and the
Map-Server/Map-Resolver "ms" (on a1, RLOC 198.18.0.20). x2 and x3 are not started; x3's namespace
serves as a plain load-generator host (198.19.0.1/24 on its uplink, default via the router r).
x1's ALT import filter is widened to 100.0.0.0/7 (besides 153.16.0.0/16) and its max-prefix set
above N, so that it accepts the benchmark's routes.

1. Route learning (N routes, --routes, default 100000; --quick 2000).
   a1's bgpd.conf gets N ``network`` statements (/24s: 100.0.0.0/24 upwards through 101.x, in
   100.0.0.0/7; ``no bgp network import-check``) and ``neighbor ... shutdown`` for its three
   peers (x1, a2, ms); bgpd is restarted and we wait until its RIB holds the N local routes
   (FRR's config load time is reported). Then, one at a time:
   - ours: ``no neighbor <x1> shutdown`` on a1 starts the clock, followed by ``lispctl bgp clear
     <a1>`` on x1 (x1's os-ken, in connect mode active, refuses a1's attempts and would
     otherwise reconnect only at the next tick of its 30 s connect-retry timer, a random delay
     of up to 31 s: 18 s in one run); the time until x1's controller
     holds N + B routes (``lisp_alt_routes`` on GET /metrics in x1's namespace, polled every
     0.25 s with curl; B = the routes x1 held from a1 before the phase, i.e. a1's default route
     and its long-path prefix). The session-Established time (a1's view) is reported too.
   - baseline: ``no neighbor <a2> shutdown`` on a1 starts the clock; the time until FRR bgpd on
     a2 shows pfxRcd >= N + B' for a1 in ``show bgp ipv4 unicast summary json`` (B' = what a2 got
     from a1 before the phase), polled every 0.25 s. a2 also hands the routes to its zebra
     (installs them in its kernel): that is FRR's normal work, and is included.
   - os-ken's floor: a1 shuts x1's session again, x1's controller is stopped (its flows stay,
     fail_mode=secure: the ALT path alt0 - br-lisp - GRE is unchanged) and a bare os-ken
     BGPSpeaker starts in x1's namespace (FLOOR_SPEAKER: the controller's eventlet setup, x1's
     AS, router-id, address and neighbour, an adj-RIB-in handler that does nothing); ``no
     neighbor <x1> shutdown`` starts the clock; the time until os-ken's own adj-RIB-in for a1
     holds N + B routes (written to a file by the speaker every 0.05 s, polled every 0.25 s).
     --profile-floor PATH writes that process's cProfile stats.
   Both sessions start from the same a1, carry the same routes, run one after the other on the
   same machine. Ratio = our time / FRR's time (> 1: we are slower). Routes/s = N / time.
   floor/FRR is what os-ken alone costs; ours/floor is lisp_app's own share on top of it.
   What is compared: os-ken BGPSpeaker + lisp_app's ALT RIB in one eventlet process versus FRR
   bgpd's receive path (C, multi-threaded I/O); all include session setup from the shutdown
   being lifted, and the poll interval (0.25 s) bounds the resolution.

2. Map-Request rates (T seconds each, --seconds, default 5; --quick 2), from a Python load
   generator in x3's namespace (UDP socket bound to 198.19.0.1, sending to 198.18.0.20 as fast
   as one Python loop can, draining replies on the same socket):
   - MS: plain Map-Requests (UDP 4342) for EID 153.16.40.10/32 (site-40, configured at the
     Map-Server, no registration: the Map-Server answers each with a negative Map-Reply to
     198.19.0.1). Accepted/s = delta of the map_server counters (negative_replies +
     proxy_replies + requests_forwarded) over T, from GET /mapstat in ms's namespace; replies
     received by the generator are reported too.
   - MR: ECM Map-Requests (UDP 4342, inner destination 153.16.38.10, covered by the ALT default
     route a1 announces): the Map-Resolver decapsulates and forwards the inner Map-Request into
     the ALT. Accepted/s = delta of map_resolver.forwarded over T. (Nothing answers: x2 is off.)
   - baseline: the same generator sends the same plain Map-Request bytes to 198.18.0.20 port
     4343, where a plain blocking-socket Python echo loop in ms's namespace sends every datagram
     back. Echo/s = replies the generator received over T.
   What is compared: both paths cross the same veth, the router r and ms's OVS userspace bridge
   br-u; the controller path is then an OpenFlow packet-in to os-ken (behind the underlay
   bridge's meter METER_CONTROL, 1000 pps as configured: lisp_app/dataplane/pipeline.py) and,
   for replies, a packet-out; the echo path is OVS NORMAL into the kernel and a Python socket.
   The controller figure is therefore bounded by the meter (1000/s) by design; the RESULT
   reports the meter next to it. Ratios = controller accepted/s / echo replies/s.

Progress goes to stderr; figures, then the RESULT lines last, to stdout.

    sudo .venv/bin/python bench/alt.py [--routes N] [--seconds T] [--quick] [--json PATH]
                                       [--tag T] [--profile-floor PATH]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import time
from ipaddress import IPv4Address
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.harness import run_and_report  # noqa: E402

MS_RLOC = "198.18.0.20"
GEN_ADDR, GEN_GW = "198.19.0.1", "198.19.0.254"
ECHO_PORT = 4343
MS_EID = "153.16.40.10"      # site-40 at the Map-Server, unregistered: negative Map-Reply
MR_EID = "153.16.38.10"      # covered by a1's default route on the ALT: forwarded
ROUTE_SPACE = "100.0.0.0/7"
POLL_S = 0.25
CONTROL_METER_PPS = 1000     # UnderlayBridge.control_rate_pps (METER_CONTROL)

_started = time.monotonic()


def progress(message: str) -> None:
    print(f"[bench/alt {time.monotonic() - _started:6.1f}s] {message}", file=sys.stderr,
          flush=True)


def route_prefixes(n: int) -> list[str]:
    """N distinct /24s inside 100.0.0.0/7."""
    base = int(IPv4Address("100.0.0.0")) >> 8
    if n > 1 << 17:
        raise ValueError("at most 131072 /24s fit in 100.0.0.0/7")
    return [f"{IPv4Address((base + i) << 8)}/24" for i in range(n)]


# -- load generator and echo server (run inside namespaces) ----------------------------------

GENERATOR = r'''
import json, socket, sys, time
src, dst, port, seconds, hexpayload = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
payload = bytes.fromhex(hexpayload)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.bind((src, 0))
s.setblocking(False)
sent = received = errors = 0
start = time.monotonic()
end = start + seconds
while True:
    now = time.monotonic()
    if now >= end:
        break
    for _ in range(32):
        try:
            s.sendto(payload, (dst, port))
            sent += 1
        except OSError:
            errors += 1
    while True:
        try:
            s.recv(2048)
            received += 1
        except BlockingIOError:
            break
# late replies of what was sent in the window
drain_end = time.monotonic() + 0.5
while time.monotonic() < drain_end:
    try:
        s.recv(2048)
        received += 1
    except BlockingIOError:
        time.sleep(0.005)
print(json.dumps({"sent": sent, "received": received, "send_errors": errors,
                  "seconds": seconds, "sport": s.getsockname()[1]}))
'''

ECHO_SERVER = r'''
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.bind((sys.argv[1], int(sys.argv[2])))
print("ready", flush=True)
while True:
    data, peer = s.recvfrom(2048)
    s.sendto(data, peer)
'''


# os-ken's floor: a bare BGPSpeaker set up as x1's controller sets up its own (eventlet hub, full
# monkey_patch, the same AS, router-id, address and neighbour), with an adj-RIB-in handler that
# does nothing. A green thread writes how many routes the speaker holds from the neighbour (the
# size of os-ken's own adj-RIB-in for it) to a file every 0.05 s.
FLOOR_SPEAKER = r"""
import warnings
warnings.filterwarnings("ignore")
import eventlet
eventlet.monkey_patch()
import os, sys, time
os.environ.setdefault("OSKEN_HUB_TYPE", "eventlet")
local_as, router_id, address = int(sys.argv[1]), sys.argv[2], sys.argv[3]
peer, peer_as, out = sys.argv[4], int(sys.argv[5]), sys.argv[6]
from os_ken.services.protocols.bgp.bgpspeaker import BGPSpeaker
from os_ken.services.protocols.bgp.core_manager import CORE_MANAGER
from os_ken.services.protocols.bgp.rtconf import neighbors as conf

if sys.argv[7] == "identity":  # the queue fix lisp_app's adapter applies (see its docstring)
    sys.path.insert(0, os.getcwd())
    from lisp_app.alt.speaker import queue_by_identity
    assert queue_by_identity()
if len(sys.argv) > 8:  # --profile-floor: cProfile the whole process, written out on SIGTERM
    import cProfile, signal
    profiler = cProfile.Profile()

    def dump(*args):
        profiler.disable()
        profiler.dump_stats(sys.argv[8])
        os._exit(0)
    signal.signal(signal.SIGTERM, dump)
    profiler.enable()


def nothing(*args):
    pass


speaker = BGPSpeaker(as_number=local_as, router_id=router_id, bgp_server_hosts=(address,),
                     adj_rib_in_change_handler=nothing, peer_down_handler=nothing)
speaker.neighbor_add(peer, peer_as, enable_ipv4=True, local_address=address,
                     connect_mode=conf.CONNECT_MODE_ACTIVE)
print("ready", flush=True)
while True:
    held = CORE_MANAGER.get_core_service().peer_manager.get_by_addr(peer)
    count = len(held.adj_rib_in) if held is not None else -1
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{count} {time.monotonic()}\n")
    os.replace(tmp, out)
    eventlet.sleep(0.05)
"""


def map_request_bytes(eid: str) -> bytes:
    from lisp_app.protocol.map_request import MapRequest
    from lisp_app.protocol.records import EidRecord
    return MapRequest(nonce=0x4c49535042454e43, records=(EidRecord(IPv4Address(eid), 32),),
                      itr_rlocs=(IPv4Address(GEN_ADDR),)).encode()


def ecm_bytes(eid: str) -> bytes:
    from lisp_app.protocol.ecm import EncapsulatedControlMessage
    from lisp_app.protocol.map_request import MapRequest
    from lisp_app.protocol.records import EidRecord
    request = MapRequest(nonce=0x4c4953504543_4d00, records=(EidRecord(IPv4Address(eid), 32),),
                         itr_rlocs=(IPv4Address(GEN_ADDR),))
    return EncapsulatedControlMessage(IPv4Address(GEN_ADDR), IPv4Address(eid), request,
                                      source_port=4342).encode()


def script(topo, name: str, text: str) -> str:
    """Write a helper script into the run directory; its path."""
    path = topo.rundir / name
    path.write_text(text)
    return str(path)


def generate(topo, port: int, seconds: float, payload: bytes) -> dict:
    path = script(topo, "loadgen.py", GENERATOR)
    out = topo.host("x3").cmd(f"{sys.executable} {path} {GEN_ADDR} {MS_RLOC} {port} {seconds} "
                              f"{payload.hex()}")
    try:
        return json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise RuntimeError(f"load generator failed: {out}") from None


def mapstat(xtr) -> dict:
    return json.loads(xtr.lispctl("--json", "mapstat"))


def ms_answered(stat: dict) -> int:
    ms = stat["map_server"]
    return ms["negative_replies"] + ms["proxy_replies"] + ms["requests_forwarded"]


def meter_packets(xtr, bridge: str = "br-u") -> str:
    return xtr.ofctl(f"meter-stats {bridge}", check=False)


def map_request_rates(topo, seconds: float) -> dict:
    gen = topo.host("x3")
    intf = f"{topo.tag}x3-up"
    gen.cmd(f"ip link set {intf} up; ip addr add {GEN_ADDR}/24 dev {intf}; "
            f"ip route add default via {GEN_GW}")
    ms = topo.xtrs["ms"]
    probe = gen.cmd(f"ping -c 2 -W 2 {MS_RLOC}")
    if " 0% packet loss" not in probe and "2 received" not in probe:
        raise RuntimeError(f"load generator cannot reach the Map-Server: {probe}")
    out = {"seconds": seconds, "control_meter_pps": CONTROL_METER_PPS}

    progress(f"Map-Server: plain Map-Requests for {MS_EID} as fast as possible, {seconds} s")
    before = mapstat(ms)
    run = generate(topo, 4342, seconds, map_request_bytes(MS_EID))
    time.sleep(0.5)
    after = mapstat(ms)
    answered = ms_answered(after) - ms_answered(before)
    out["ms"] = dict(run, accepted=answered, accepted_per_s=answered / seconds,
                     replies_per_s=run["received"] / seconds, offered_per_s=run["sent"] / seconds,
                     counters={k: after["map_server"][k] - before["map_server"][k]
                               for k in after["map_server"]})

    progress(f"Map-Resolver: ECM Map-Requests for {MR_EID} as fast as possible, {seconds} s")
    before = mapstat(ms)
    run = generate(topo, 4342, seconds, ecm_bytes(MR_EID))
    time.sleep(0.5)
    after = mapstat(ms)
    forwarded = after["map_resolver"]["forwarded"] - before["map_resolver"]["forwarded"]
    out["mr"] = dict(run, accepted=forwarded, accepted_per_s=forwarded / seconds,
                     offered_per_s=run["sent"] / seconds,
                     counters={k: after["map_resolver"][k] - before["map_resolver"][k]
                               for k in after["map_resolver"]})

    progress(f"baseline: UDP echo loop on {MS_RLOC}:{ECHO_PORT} in ms's namespace, {seconds} s")
    echo = ms.host.popen([sys.executable, script(topo, "echo.py", ECHO_SERVER), MS_RLOC,
                          str(ECHO_PORT)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        if echo.stdout.readline().strip() != "ready":
            raise RuntimeError("echo server did not start")
        run = generate(topo, ECHO_PORT, seconds, map_request_bytes(MS_EID))
    finally:
        echo.terminate()
        echo.wait(5)
    out["echo"] = dict(run, replies_per_s=run["received"] / seconds,
                       offered_per_s=run["sent"] / seconds)
    out["meter_stats_br_u"] = meter_packets(ms).strip()
    return out


# -- route learning ---------------------------------------------------------------------------

def frr_json(router, command: str) -> dict:
    text = router.vtysh(command)
    try:
        return json.loads(text)
    except ValueError:
        return {}


def frr_peer(router, address: str) -> dict:
    data = frr_json(router, "show bgp ipv4 unicast summary json")
    # FRR 8.4 answers with the address family's object itself; older ones wrap it
    return data.get("ipv4Unicast", data).get("peers", {}).get(address, {})


def x1_routes(x1) -> int:
    text = x1.sh("curl -s --max-time 5 http://127.0.0.1:8080/metrics", check=False)
    m = re.search(r"^lisp_alt_routes (\d+)", text, re.M)
    return int(m.group(1)) if m else -1


def a1_vty(a1, *lines: str) -> str:
    cmd = " ".join(f"-c '{line}'" for line in ("configure terminal",
                                                f"router bgp {a1.spec.asn}", *lines))
    return a1.sh(f"vtysh --vty_socket {a1.frr_dir} {cmd}", check=False)


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time a process (all its threads) has used so far; NaN when gone. Less
    sensitive than wall-clock time to what else runs on the machine."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, TypeError):
        return math.nan


def pidfile_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def wait_count(read, target: int, timeout: float, label: str, on_poll=None) -> tuple[float, int]:
    """Poll read() every POLL_S until >= target; (seconds since call, last count). NaN on
    timeout."""
    start = time.monotonic()
    last_report = start
    count = -1
    while True:
        count = read()
        now = time.monotonic()
        if on_poll is not None:
            on_poll(now - start)
        if count >= target:
            return now - start, count
        if now - start > timeout:
            progress(f"{label}: TIMEOUT after {timeout:.0f} s at {count}/{target}")
            return math.nan, count
        if now - last_report >= 5:
            progress(f"{label}: {count}/{target} after {now - start:.1f} s")
            last_report = now
        time.sleep(POLL_S)


def route_learning(topo, n: int, timeout: float, profile: str | None = None) -> dict:
    from topologies.seed_alt import ALT, MS, SITES
    a1, a2, x1 = topo.alts["a1"], topo.alts["a2"], topo.xtrs["x1"]
    x1_addr, a2_addr, ms_addr = SITES[1]["alt"], ALT["a2"]["link"], MS["alt"]
    a1_on_a2 = ALT["a1"]["link"]
    base_x1 = x1_routes(x1)
    base_a2 = int(frr_peer(a2, a1_on_a2).get("pfxRcd", 0))
    progress(f"before: x1 holds {base_x1} ALT routes, a2 has {base_a2} from a1")

    conf = a1.frr_dir / "bgpd.conf"
    original = conf.read_text()
    text = original.replace(
        " address-family ipv4 unicast\n",
        "".join(f" neighbor {p} shutdown\n neighbor {p} timers connect 1\n"
                for p in (x1_addr, a2_addr, ms_addr))
        + " address-family ipv4 unicast\n"
        + "".join(f"  network {p}\n" for p in route_prefixes(n)), 1)
    conf.write_text(text)
    progress(f"a1: restarting bgpd with {n} network statements (peers shut down)")
    t0 = time.monotonic()
    a1.restart_bgpd()

    def a1_rib() -> int:
        m = re.search(r"Total Prefixes\s*:\s*(\d+)", a1.vtysh("show bgp ipv4 unicast statistics"))
        return int(m.group(1)) if m else -1
    load_s, _ = wait_count(a1_rib, n, timeout, "a1 loading its config")
    restart_s = time.monotonic() - t0
    # x1 notices the session went down (hold timer or TCP reset) and drops a1's routes
    for _ in range(100):
        if x1_routes(x1) == 0:
            break
        time.sleep(0.2)
    out = {"routes": n, "frr_config_load_s": load_s, "a1_restart_total_s": restart_s,
           "x1_base_routes": base_x1, "a2_base_routes": base_a2,
           "x1_routes_before_activation": x1_routes(x1)}

    established = {}

    def watch(address: str):
        def on_poll(elapsed: float) -> None:
            if address not in established and \
                    frr_peer(a1, address).get("state") == "Established":
                established[address] = elapsed
        return on_poll

    progress(f"ours: a1 -> x1 ({x1_addr}), waiting for {n + base_x1} routes in x1")
    ours_pid = x1.controller.pid
    ours_cpu = cpu_seconds(ours_pid)
    a1_vty(a1, f"no neighbor {x1_addr} shutdown")
    # os-ken (connect mode active) would retry at its 30 s connect-retry timer's next tick: a
    # delay at a random phase that has nothing to do with learning routes. A clear makes it
    # connect within its 1 s pause, as the floor's fresh speaker does.
    x1.lispctl("bgp", "clear", SITES[1]["alt_peer"])
    ours_s, ours_count = wait_count(lambda: x1_routes(x1), n + base_x1, timeout,
                                    "x1 learning", watch(x1_addr))
    ours_cpu = cpu_seconds(ours_pid) - ours_cpu
    out["ours"] = {"seconds": ours_s, "count": ours_count, "target": n + base_x1,
                   "established_s": established.get(x1_addr),
                   "routes_per_s": n / ours_s if ours_s else math.nan}
    out["ours"]["after_established_s"] = ours_s - (established.get(x1_addr) or 0.0)
    out["ours"]["cpu_s"] = ours_cpu
    progress(f"ours: {ours_s:.2f} s")

    progress(f"baseline: a1 -> a2 ({a2_addr}), waiting for pfxRcd {n + base_a2} on a2")
    frr_pids = {d: pidfile_pid(a2.frr_dir / f"{d}.pid") for d in ("bgpd", "zebra")}
    frr_cpu = {d: cpu_seconds(pid) for d, pid in frr_pids.items()}
    a1_vty(a1, f"no neighbor {a2_addr} shutdown")
    frr_s, frr_count = wait_count(lambda: int(frr_peer(a2, a1_on_a2).get("pfxRcd", -1)),
                                  n + base_a2, timeout, "a2 learning", watch(a2_addr))
    frr_cpu = {d: cpu_seconds(pid) - frr_cpu[d] for d, pid in frr_pids.items()}
    out["frr"] = {"seconds": frr_s, "count": frr_count, "target": n + base_a2,
                  "established_s": established.get(a2_addr),
                  "routes_per_s": n / frr_s if frr_s else math.nan}
    out["frr"]["after_established_s"] = frr_s - (established.get(a2_addr) or 0.0)
    out["frr"]["cpu_s"] = frr_cpu["bgpd"]  # a2's bgpd; its zebra installing them beside it
    out["frr"]["zebra_cpu_s"] = frr_cpu["zebra"]
    progress(f"FRR: {frr_s:.2f} s")
    bgp = json.loads(x1.lispctl("--json", "bgp").strip() or "{}") if n <= 5000 else None
    if bgp is not None:
        out["x1_neighbors"] = bgp.get("neighbors")
    else:
        out["x1_metrics_alt"] = [line for line in x1.sh(
            "curl -s --max-time 10 http://127.0.0.1:8080/metrics", check=False).splitlines()
            if line.startswith("lisp_alt")]
    for variant, key in (("stock", "floor"), ("identity", "floor_fixed")):
        out[key] = oskens_floor(topo, n, base_x1, timeout, variant,
                                f"{profile}.{variant}" if profile else None)
        progress(f"os-ken's floor ({variant}): {out[key]['seconds']:.2f} s")
    return out


def oskens_floor(topo, n: int, base: int, timeout: float, variant: str,
                 profile: str | None = None) -> dict:
    """The same session from a1 to a bare os-ken BGPSpeaker in x1's namespace, with x1's
    address, AS and router-id (x1's controller stopped: its flows stay, fail_mode=secure, so the
    ALT path through br-lisp is unchanged), whose adj-RIB-in handler does nothing. ``variant``:
    "stock" (os-ken as installed) or "identity" (with the queue fix lisp_app's adapter applies,
    lisp_app.alt.speaker.queue_by_identity)."""
    from topologies.seed_alt import ALT, SITES
    a1, x1 = topo.alts["a1"], topo.xtrs["x1"]
    x1_addr, conf = SITES[1]["alt"], x1.spec.extra["alt"]
    progress(f"os-ken's floor ({variant}): a1 shuts x1's session, x1's controller stops, a "
             "bare BGPSpeaker takes its place")
    a1_vty(a1, f"neighbor {x1_addr} shutdown")
    x1.stop_controller()
    count_file = topo.rundir / "floor.count"
    count_file.unlink(missing_ok=True)
    speaker = x1.host.popen(
        [sys.executable, script(topo, "floor_speaker.py", FLOOR_SPEAKER), str(conf["local_as"]),
         conf["router_id"], x1_addr, SITES[1]["alt_peer"], str(ALT["a1"]["asn"]),
         str(count_file), variant, *([str(Path(profile).resolve())] if profile else [])],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=str(REPO))

    def held() -> int:
        try:
            return int(count_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return -1
    try:
        if speaker.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the bare os-ken speaker did not start: {speaker.stdout.read()}")
        progress(f"os-ken's floor ({variant}): a1 -> bare speaker ({x1_addr}), waiting for "
                 f"{n + base} routes")
        established: dict = {}

        def on_poll(elapsed: float) -> None:
            if x1_addr not in established and \
                    frr_peer(a1, x1_addr).get("state") == "Established":
                established[x1_addr] = elapsed
        cpu = cpu_seconds(speaker.pid)
        a1_vty(a1, f"no neighbor {x1_addr} shutdown")
        seconds, count = wait_count(held, n + base, timeout, "bare os-ken learning", on_poll)
        cpu = cpu_seconds(speaker.pid) - cpu
    finally:
        speaker.terminate()
        try:
            speaker.wait(5)
        except subprocess.TimeoutExpired:
            speaker.kill()
            speaker.wait(5)
    out = {"seconds": seconds, "count": count, "target": n + base,
           "established_s": established.get(x1_addr),
           "routes_per_s": n / seconds if seconds else math.nan}
    out["after_established_s"] = seconds - (established.get(x1_addr) or 0.0)
    out["cpu_s"] = cpu
    return out


# -- driver -----------------------------------------------------------------------------------

def build_specs(tag: str, n: int):
    from topologies.seed_alt import ms_spec, xtr_spec
    x1 = xtr_spec(1, tag, max_prefix=n + 1000)
    x1.extra["alt"]["eid_space"] = ["153.16.0.0/16", ROUTE_SPACE]
    ms = ms_spec(tag)
    # the generator is one source: let it have the whole control meter, as before per-source
    # control punting (issue 15), so that the figures stay comparable
    ms.extra["punting"] = {"control_per_source": CONTROL_METER_PPS}
    return [x1, ms]


def run(args) -> dict:
    from topologies.seed_alt import SeedAlt
    figures = {"parameters": {"routes": args.routes, "seconds": args.seconds, "tag": args.tag},
               "cpus": os.cpu_count()}
    progress(f"building SeedAlt (a1, a2, x1, ms; tag {args.tag!r})")
    with SeedAlt(tag=args.tag, xtrs=build_specs(args.tag, args.routes)) as topo:
        progress("waiting for the ALT sessions")
        topo.wait_established(90)
        figures["map_requests"] = map_request_rates(topo, args.seconds)
        figures["route_learning"] = route_learning(topo, args.routes, args.timeout,
                                                   args.profile_floor)
        progress("tearing down")
    figures["load_average"] = os.getloadavg()
    return figures


def ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(b) else math.nan


def report(figures: dict) -> None:
    rl, mr = figures["route_learning"], figures["map_requests"]
    ours, frr = rl["ours"], rl["frr"]
    n = rl["routes"]
    print(f"parameters: {figures['parameters']}, cpus {figures['cpus']}, load average after "
          f"{', '.join(f'{v:.2f}' for v in figures['load_average'])}")
    print(f"FRR a1 loaded {n} network statements in {rl['frr_config_load_s']:.2f} s")
    print(f"route learning, ours (a1 FRR -> x1 os-ken BGPSpeaker + ALT RIB): {ours['seconds']:.2f}"
          f" s to {ours['count']}/{ours['target']} routes, Established after "
          f"{ours['established_s']} s, {ours['routes_per_s']:.0f} routes/s")
    print(f"route learning, FRR (a1 FRR -> a2 FRR bgpd): {frr['seconds']:.2f} s to "
          f"{frr['count']}/{frr['target']} routes, Established after {frr['established_s']} s, "
          f"{frr['routes_per_s']:.0f} routes/s")
    floor, fixed = rl["floor"], rl["floor_fixed"]
    for label, f in (("os-ken as installed", floor),
                     ("os-ken with lisp_app's queue fix", fixed)):
        print(f"route learning, floor, {label} (a1 FRR -> a bare BGPSpeaker in x1's place, "
              f"empty handler): {f['seconds']:.2f} s to {f['count']}/{f['target']} routes, "
              f"Established after {f['established_s']} s, {f['routes_per_s']:.0f} routes/s")
    print(f"CPU seconds while learning: ours (x1's controller) {ours['cpu_s']:.2f}, FRR (a2's "
          f"bgpd) {frr['cpu_s']:.2f} (+ zebra {frr['zebra_cpu_s']:.2f}), os-ken as installed "
          f"{floor['cpu_s']:.2f}, os-ken with the queue fix {fixed['cpu_s']:.2f}")
    print(f"shares: ours/FRR {ratio(ours['seconds'], frr['seconds']):.2f}; floor/FRR "
          f"{ratio(floor['seconds'], frr['seconds']):.2f} (os-ken as installed), "
          f"{ratio(fixed['seconds'], frr['seconds']):.2f} (with the queue fix ours runs with); "
          f"ours/fixed floor {ratio(ours['seconds'], fixed['seconds']):.2f} (lisp_app's own "
          f"share: {ours['seconds'] - fixed['seconds']:.2f} s of {ours['seconds']:.2f} s)")
    ms, mres, echo = mr["ms"], mr["mr"], mr["echo"]
    print(f"Map-Server (plain Map-Requests, {mr['seconds']} s): offered {ms['offered_per_s']:.0f}"
          f"/s, answered {ms['accepted_per_s']:.0f}/s by counters {ms['counters']}, replies "
          f"received {ms['replies_per_s']:.0f}/s")
    print(f"Map-Resolver (ECM Map-Requests): offered {mres['offered_per_s']:.0f}/s, forwarded "
          f"{mres['accepted_per_s']:.0f}/s, counters {mres['counters']}")
    print(f"UDP echo loop (same generator, same path to {MS_RLOC}, port {ECHO_PORT}): offered "
          f"{echo['offered_per_s']:.0f}/s, echoed {echo['replies_per_s']:.0f}/s")
    print(f"ms br-u meters after the run: {mr['meter_stats_br_u']!r}")
    print(f"note: control punts on br-u pass METER_CONTROL at {mr['control_meter_pps']} pps: the "
          f"Map-Server/Map-Resolver rates are meter-bound by design")
    print(f"RESULT alt_routes n={n} ours_s={ours['seconds']:.2f} frr_s={frr['seconds']:.2f} "
          f"ours_routes_per_s={ours['routes_per_s']:.0f} frr_routes_per_s="
          f"{frr['routes_per_s']:.0f} ratio={ratio(ours['seconds'], frr['seconds']):.2f} "
          f"ours_after_established_s={ours['after_established_s']:.2f} "
          f"frr_after_established_s={frr['after_established_s']:.2f} ratio_after_established="
          f"{ratio(ours['after_established_s'], frr['after_established_s']):.2f}")
    print(f"RESULT alt_routes_floor n={n} floor_s={floor['seconds']:.2f} "
          f"fixed_floor_s={fixed['seconds']:.2f} "
          f"ours_s={ours['seconds']:.2f} frr_s={frr['seconds']:.2f} "
          f"floor_over_frr={ratio(floor['seconds'], frr['seconds']):.2f} "
          f"fixed_floor_over_frr={ratio(fixed['seconds'], frr['seconds']):.2f} "
          f"ours_over_fixed_floor={ratio(ours['seconds'], fixed['seconds']):.2f} "
          f"floor_after_established_s={floor['after_established_s']:.2f} "
          f"fixed_floor_after_established_s={fixed['after_established_s']:.2f}")
    print(f"RESULT alt_routes_cpu n={n} ours_cpu_s={ours['cpu_s']:.2f} "
          f"frr_cpu_s={frr['cpu_s']:.2f} frr_zebra_cpu_s={frr['zebra_cpu_s']:.2f} "
          f"floor_cpu_s={floor['cpu_s']:.2f} fixed_floor_cpu_s={fixed['cpu_s']:.2f} "
          f"ours_over_frr={ratio(ours['cpu_s'], frr['cpu_s']):.2f} "
          f"ours_over_fixed_floor={ratio(ours['cpu_s'], fixed['cpu_s']):.2f}")
    print(f"RESULT map_server_answers_per_s={ms['accepted_per_s']:.0f} "
          f"echo_per_s={echo['replies_per_s']:.0f} "
          f"ratio={ratio(ms['accepted_per_s'], echo['replies_per_s']):.3f} "
          f"meter_pps={mr['control_meter_pps']}")
    print(f"RESULT map_resolver_forwarded_per_s={mres['accepted_per_s']:.0f} "
          f"echo_per_s={echo['replies_per_s']:.0f} "
          f"ratio={ratio(mres['accepted_per_s'], echo['replies_per_s']):.3f} "
          f"meter_pps={mr['control_meter_pps']}")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routes", type=int, default=None,
                        help="ALT routes a1 announces (default 100000, --quick 2000)")
    parser.add_argument("--seconds", type=float, default=None,
                        help="length of each Map-Request run (default 5, --quick 2)")
    parser.add_argument("--timeout", type=float, default=240.0,
                        help="give up waiting for routes after this many seconds")
    parser.add_argument("--quick", action="store_true", help="few routes, short runs")
    parser.add_argument("--json", metavar="PATH", help="also write every figure as JSON here")
    parser.add_argument("--profile-floor", metavar="PATH",
                        help="cProfile the bare os-ken speaker; its stats (pstats) go here")
    parser.add_argument("--tag", default="ab",
                        help="interface-name prefix, so that topologies can coexist (default ab)")
    args = parser.parse_args(argv)
    if args.routes is None:
        args.routes = 2000 if args.quick else 100000
    if args.seconds is None:
        args.seconds = 2.0 if args.quick else 5.0
    if not 1 <= args.routes <= 1 << 17:
        parser.error("--routes must be between 1 and 131072")
    if os.geteuid() != 0:
        print("bench/alt.py: run as root (Mininet, OVS and FRR need it)", file=sys.stderr)
        return 1

    return run_and_report("bench/alt.py", run, report, args, progress)


if __name__ == "__main__":
    sys.exit(main())
