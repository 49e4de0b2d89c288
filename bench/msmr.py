"""The switchless Map-Server/Map-Resolver: ECM Map-Requests answered per second by lisp_app's
``ms-mr`` without an ALT or a switch (``run_controller.py``, its own UDP sockets), against a plain
UDP echo loop in Python and against Open Overlay Router 1.3's Map-Server (C, built from
../shared/peers), all driven by the same compiled client in one run.

Everything runs in one network namespace the benchmark creates and removes (root needed), on its
own interface: the server under test on 10.99.0.1:4342 (OOR's Map-Server answers from its control
interface's address, so every server listens there), the registering ETR at 127.0.0.2, the client
at 10.99.0.1 port 40000. The client is ``bench/udpload.c`` (built here with gcc): one socket,
requests sent round-robin from a file, at most --window unanswered, for --seconds; it counts the
answers and the valid ones (a Map-Reply; for the echo, the echoed ECM). Its own ceiling is
measured against a compiled echo server (the same C file), so that a server's figure below it is
the server's, not the client's.

The workload is the one an ITR gives a Map-Resolver: ECM Map-Requests (inner 127.0.0.1 -> the
EID, UDP checksum set, as lisp_app's ITR sends them) for EIDs inside a registration that asked
for proxy replies (P bit), so that the Map-Server answers each with a Map-Reply to the inner UDP
source port. Before each server run the ETR registers over the socket (key-id 1, HMAC-SHA-1: what
OOR's Map-Server accepts) and waits for the Map-Notify.

Figures (medians over --rounds, default 3; --quick 1):

- client ceiling: the client against the compiled echo;
- echo: the client against a Python UDP echo loop (``recvfrom``/``sendto``), the baseline of the
  issue's ratio (goal: lisp_app >= 0.5 of it);
- lisp_app: the switchless ms-mr with one registered prefix, and with --registrations prefixes
  (default 100,000 /25s inside 10.0.0.0/8, registered in Map-Registers of 250 records) to show
  the rate holds;
- oor: OOR's Map-Server (operating-mode MS) with one registered prefix (goal: lisp_app >= 1.0 of
  it: the anchor is C).

Progress goes to stderr; figures, then the RESULT lines last, to stdout.

    sudo .venv/bin/python bench/msmr.py [--seconds T] [--rounds R] [--window W]
                                        [--registrations N] [--quick] [--json PATH] [--tag T]

The default run takes about 2 minutes.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from ipaddress import IPv4Address
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.harness import run_and_report  # noqa: E402

from lisp_app.protocol import (EidPrefix, EidRecord,  # noqa: E402
                               EncapsulatedControlMessage, MapRequest)

GOAL_ECHO, GOAL_OOR = 0.5, 1.0
# OOR answers from its control interface's address, so every server listens there (not on lo)
SERVER, ETR, CLIENT_PORT, PORT, API = "10.99.0.1", "127.0.0.2", 40000, 4342, 18580
KEY = "bench-s3cret"
SITE = EidPrefix.parse("153.16.36.0/24")
BIG_SITE = EidPrefix.parse("10.0.0.0/8")


def progress(message: str) -> None:
    print(f"[bench/msmr {time.monotonic() - STARTED:6.1f}s] {message}", file=sys.stderr,
          flush=True)


STARTED = time.monotonic()


def sh(command: str) -> str:
    return subprocess.run(command, shell=True, check=True, capture_output=True, text=True).stdout


class Namespace:
    def __init__(self, name: str):
        self.name = name
        subprocess.run(f"ip netns del {name}", shell=True, capture_output=True)
        sh(f"ip netns add {name}; ip -n {name} link set lo up")
        self.procs: list[subprocess.Popen] = []

    def popen(self, argv: list[str], log: Path | None = None) -> subprocess.Popen:
        out = open(log, "w") if log else subprocess.DEVNULL
        proc = subprocess.Popen(["ip", "netns", "exec", self.name, *argv], stdout=out,
                                stderr=subprocess.STDOUT, cwd=REPO)
        self.procs.append(proc)
        return proc

    def run(self, argv: list[str], timeout: float) -> str:
        return subprocess.run(["ip", "netns", "exec", self.name, *argv], capture_output=True,
                              text=True, timeout=timeout, check=True, cwd=REPO).stdout

    @staticmethod
    def stop(proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def close(self) -> None:
        for proc in self.procs:
            self.stop(proc)
        subprocess.run(f"ip netns pids {self.name} | xargs -r kill -9; ip netns del {self.name}",
                       shell=True, capture_output=True)


def requests_file(path: Path, prefixes: list[EidPrefix], count: int, rng: random.Random) -> None:
    """``count`` ECM Map-Requests for addresses inside ``prefixes`` (length-prefixed)."""
    itr = IPv4Address(SERVER)
    with open(path, "wb") as f:
        for n in range(count):
            net = rng.choice(prefixes).network
            eid = net.network_address + 1 + rng.randrange(max(net.num_addresses - 2, 1))
            request = MapRequest(0xB0000000 << 32 | n,
                                 (EidRecord.for_prefix(EidPrefix.parse(f"{eid}/32")),), (itr,))
            wire = EncapsulatedControlMessage(itr, eid, request, source_port=CLIENT_PORT).encode()
            f.write(len(wire).to_bytes(2, "big") + wire)


def register(ns: Namespace, prefixes: list[EidPrefix], work: Path, timeout: float = 120.0) -> None:
    """The ETR registers ``prefixes`` (P bit, M bit) and waits for every Map-Notify."""
    listing = work / "prefixes.txt"
    listing.write_text("\n".join(map(str, prefixes)))
    script = f"""
import socket, sys
sys.path.insert(0, {str(REPO)!r})
from lisp_app.protocol import *
from ipaddress import ip_address
prefixes = [EidPrefix.parse(p) for p in open({str(listing)!r}).read().split()]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(({ETR!r}, 0))  # OOR holds 0.0.0.0:4342; Map-Notifies go to our port
s.settimeout(5)
etr = ip_address({ETR!r})
for i in range(0, len(prefixes), 250):
    records = tuple(MappingRecord.for_prefix(p, locators=(Locator(etr),), ttl=1440,
                                             authoritative=True)
                    for p in prefixes[i:i + 250])
    msg = sign(MapRegister(i + 1, records, proxy_reply=True, want_map_notify=True), {KEY!r}, 1)
    for attempt in range(5):
        s.sendto(msg.encode(), ({SERVER!r}, {PORT}))
        try:
            data = s.recv(65535)
        except socket.timeout:
            continue
        notify = decode_control(data)
        assert isinstance(notify, MapNotify) and notify.nonce == i + 1, notify
        assert verify_authentication(data, {KEY!r})
        break
    else:
        raise SystemExit(f"no Map-Notify for registration {{i // 250}}")
print("registered", len(prefixes))
"""
    ns.run([sys.executable, "-c", script], timeout)


def load(ns: Namespace, tool: Path, requests: Path, args, expect: int) -> dict:
    out = ns.run([str(tool), "client", SERVER, str(PORT), str(requests), str(args.window),
                  str(args.seconds), str(expect), str(CLIENT_PORT)], timeout=args.seconds + 30)
    fields = dict(item.split("=") for item in out.split())
    figures = {k: float(v) if k == "seconds" else int(v) for k, v in fields.items()}
    figures["per_s"] = figures["valid"] / figures["seconds"]
    return figures


def wait_port(ns: Namespace, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if f":{PORT} " in ns.run(["ss", "-uln"], timeout=10):
            return
        time.sleep(0.2)
    raise RuntimeError(f"nothing listens on UDP {PORT}")


def lisp_app_config(path: Path, site: EidPrefix) -> None:
    path.write_text(f"""role: ms-mr
map_resolver: true
map_server:
  sites: [{{name: bench, key: {KEY}, eid_prefixes: ["{site}"]}}]
server: {{addresses: [{SERVER}], port: {PORT}}}
api: {{port: {API}}}
""")


def oor_config(path: Path) -> None:
    path.write_text(f"""debug = 0
operating-mode = MS
control-iface = v0
lisp-site {{
    eid-prefix = {SITE.network}
    key-type = 1
    key = {KEY}
    iid = 0
    accept-more-specifics = true
    proxy-reply = true
}}
""")


def mapstat(ns: Namespace) -> dict:
    fetch = (f"import urllib.request,sys; sys.stdout.write(urllib.request.urlopen("
             f"'http://127.0.0.1:{API}/mapstat', timeout=30).read().decode())")  # the API: lo
    return json.loads(ns.run([sys.executable, "-c", fetch], timeout=60))


def run(args) -> dict:
    from topologies.oor import oor_binary
    work = Path(tempfile.mkdtemp(prefix="bench-msmr-"))
    tool = work / "udpload"
    sh(f"gcc -O2 -o {tool} {REPO / 'bench' / 'udpload.c'}")
    oor = oor_binary()
    rng = random.Random(7)
    if args.registrations > 1 << 17:
        raise SystemExit(f"--registrations: at most {1 << 17} /25s fit in {BIG_SITE}")
    big = [EidPrefix.parse(f"10.{n >> 9 & 255}.{n >> 1 & 255}.{(n & 1) * 128}/25")
           for n in range(args.registrations)]
    one_req, big_req = work / "one.req", work / "big.req"
    requests_file(one_req, [SITE], 4096, rng)
    requests_file(big_req, big or [SITE], 4096, rng)
    ns = Namespace(args.tag)
    figures: dict = {"parameters": vars(args), "rounds": []}
    try:
        # OOR's Map-Server needs an interface with an address of its own (not lo)
        sh(f"ip -n {ns.name} link add v0 type veth peer name v1; "
           f"ip -n {ns.name} addr add {SERVER}/24 dev v0; ip -n {ns.name} link set v0 up; "
           f"ip -n {ns.name} link set v1 up")
        for r in range(args.rounds):
            row = {}
            progress(f"round {r + 1}/{args.rounds}: client ceiling (compiled echo)")
            echo = ns.popen([str(tool), "echo", SERVER, str(PORT)])
            wait_port(ns)
            row["ceiling"] = load(ns, tool, one_req, args, 8)
            ns.stop(echo)
            progress("  Python echo loop")
            echo = ns.popen([sys.executable, "-c",
                             "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                             f"s.bind(({SERVER!r}, {PORT}))\n"
                             "while True:\n    d, a = s.recvfrom(65535)\n    s.sendto(d, a)\n"])
            wait_port(ns)
            row["echo"] = load(ns, tool, one_req, args, 8)
            ns.stop(echo)
            for name, site, prefixes, requests in (("lisp_app", SITE, [SITE], one_req),
                                                   ("lisp_app_big", BIG_SITE, big, big_req)):
                if name == "lisp_app_big" and not big:
                    continue
                progress(f"  lisp_app, {len(prefixes)} registered prefix(es)")
                lisp_app_config(work / f"{name}.yaml", site)
                server = ns.popen([sys.executable, str(REPO / "run_controller.py"), "--config",
                                   str(work / f"{name}.yaml")], work / f"{name}.log")
                wait_port(ns)
                register(ns, prefixes, work)
                before = mapstat(ns)["map_server"]["proxy_replies"]
                row[name] = load(ns, tool, requests, args, 2)
                stat = mapstat(ns)
                row[name]["server_proxy_replies"] = stat["map_server"]["proxy_replies"] - before
                row[name]["registrations"] = len(stat["registrations"])
                ns.stop(server)
            progress("  OOR's Map-Server")
            oor_config(work / "oor.conf")
            server = ns.popen(["stdbuf", "-oL", str(oor), "-f", str(work / "oor.conf")],
                              work / "oor.log")
            wait_port(ns)
            register(ns, [SITE], work)
            row["oor"] = load(ns, tool, one_req, args, 2)
            ns.stop(server)
            figures["rounds"].append(row)
            progress("  " + ", ".join(f"{k} {v['per_s']:.0f}/s" for k, v in row.items()))
    finally:
        ns.close()
    med = {k: statistics.median(row[k]["per_s"] for row in figures["rounds"])
           for k in figures["rounds"][0]}
    figures["median_per_s"] = med
    return figures


def report(figures: dict) -> None:
    med = figures["median_per_s"]
    print("bench/msmr: answers per second (median over rounds)")
    for row in figures["rounds"]:
        for name, f in row.items():
            extra = "".join(f", {k} {f[k]}" for k in ("server_proxy_replies", "registrations")
                            if k in f)
            print(f"  {name:13s} {f['per_s']:9.0f}/s  (sent {f['sent']}, answers {f['answers']}, "
                  f"valid {f['valid']}, lost {f['lost']}{extra})")
    ours = med["lisp_app"]
    print(f"RESULT msmr_client_ceiling_per_s={med['ceiling']:.0f}")
    print(f"RESULT msmr_lisp_app_per_s={ours:.0f} echo_per_s={med['echo']:.0f} "
          f"ratio={ours / med['echo']:.2f} (goal >= {GOAL_ECHO})")
    print(f"RESULT msmr_lisp_app_per_s={ours:.0f} oor_per_s={med['oor']:.0f} "
          f"ratio={ours / med['oor']:.2f} (goal >= {GOAL_OOR})")
    if "lisp_app_big" in med:
        n = figures["parameters"]["registrations"]
        print(f"RESULT msmr_registrations={n} lisp_app_per_s={med['lisp_app_big']:.0f} "
              f"ratio_to_one={med['lisp_app_big'] / ours:.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--registrations", type=int, default=None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json")
    parser.add_argument("--tag", default="bmsr", help="the namespace's name")
    args = parser.parse_args(argv)
    args.seconds = args.seconds or (1.0 if args.quick else 4.0)
    args.rounds = args.rounds or (1 if args.quick else 3)
    if args.registrations is None:
        args.registrations = 10000 if args.quick else 100000
    return run_and_report("bench/msmr", run, report, args, progress)


if __name__ == "__main__":
    sys.exit(main())
