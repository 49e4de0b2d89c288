"""Map-Server and Map-Resolver: Map-Requests answered per second over real UDP sockets on loopback,
against a plain UDP echo loop with the same client, window and loop, measured in the same run.

One process, one thread, two non-blocking UDP sockets on 127.0.0.1: a client and a server. The loop
alternates: the client sends until W requests are outstanding (--window, default 32); the server
reads every datagram waiting and answers it; the client reads every answer waiting and counts
those that carry the nonce of an outstanding request. Answers per second = counted answers over
the run (--seconds each, default 2; --quick 0.5). If no answer comes for 1 s, the outstanding
requests are written off as lost and the window refilled (lost requests are reported; on loopback
there should be none).

The server's handling of a datagram is what lisp_app's controller does with a LISP control
packet-in, minus the OpenFlow packet-in/packet-out framing (``Xtr._control``), and what the
switchless Map-Server/Map-Resolver does with a datagram (``MapServerNode.on_datagram``):
``time.monotonic()``, ``ControlPlane.on_payload(payload, Received(source, port), now)``
(lisp_app/node/control_plane.py: the fast request decoder or ``decode_control``, dispatch on the
message type to the pure engines, lisp_app/control/map_server.py ``MapServerEngine``,
map_resolver.py ``MapResolverEngine``), and ``sendto`` of each resulting reply's bytes (``SendControl``: the payload to its destination and
port; ``ForwardOverAlt``: the payload to the ALT neighbour's address). The client's source
address is turned into an IPv4Address once and cached (the controller gets it from the frame),
and so is each reply destination's text (the controller writes the reply's frame from the
address's bytes).
Figures, one run each per round, in this order:

- ms-proxy: the Map-Server answers by proxy. Before each run the client registers site-36
  (153.16.36.0/24, key id 1 = HMAC-SHA-1, P bit: proxy reply; M bit: want Map-Notify) with a
  real signed Map-Register over the socket; the engine verifies it and answers with a Map-Notify,
  which the client checks (HMAC and nonce). Requests: plain Map-Requests for 153.16.36.x/32
  (ITR-RLOC 127.0.0.1), as the Map-Server receives them over the ALT; answers: the Map-Server's
  proxy Map-Replies, sent to the ITR-RLOC at the request's UDP source port.
- mr-negative: ECM Map-Requests (inner 127.0.0.1 -> EID, UDP checksum set, as lisp_app's ITR
  sends them) for EIDs in 100.128.0.0/9, which no ALT route covers (the RIB holds 153.16.0.0/16
  and 1,000 /24s in 100.64.0.0/10, --alt-routes); answers: the Map-Resolver's negative
  Map-Replies (natively-forward, the least-specific uncovered prefix, 15 minutes).
- mr-forward: ECM Map-Requests for 153.16.37.x (covered by 153.16.0.0/16): the Map-Resolver
  decapsulates and forwards the inner Map-Request towards the ALT neighbour; the client plays that
  neighbour (its address is the neighbour's), so an answer is the forwarded Map-Request.
- switchless: lisp_app's switchless Map-Server/Map-Resolver (``role: ms-mr`` without an ALT, as
  ``run_controller.py`` runs it): ``MapServerNode.on_datagram`` and the standalone server's send
  path (lisp_app/standalone.py: the peer's address and each destination's text cached), with
  site-36 registered as for ms-proxy; requests: ECM Map-Requests for 153.16.36.x, as an ITR
  sends them to its Map-Resolver; answers: the co-located Map-Server's proxy Map-Replies.
- echo, before each of the above: the same client with the same requests (same bytes, same
  nonce check) and the same loop, the server only ``sendto``-ing each datagram back.

Each mode's ratio = its answers/s / its echo's answers/s, medians over the rounds (--rounds,
default 3; --quick 1). The goal is >= 0.5. The engines' counters are checked after each run
(every answer counted must be a proxy reply / negative reply / forward).

Also reported, per mode, without sockets: the server's per-request work (decode, engine, reply
bytes) and the codec alone (decode the request, encode the answer), best of 5 timed batches.

Progress goes to stderr; figures, then the RESULT lines last, to stdout.

    .venv/bin/python bench/mapserver.py [--seconds T] [--rounds R] [--window W]
                                        [--alt-routes N] [--quick] [--json PATH]

The default run takes about 55 seconds.
"""

from __future__ import annotations

import argparse
import platform
import random
import socket
import statistics
import sys
import time
from ipaddress import IPv4Address, IPv4Network, ip_address
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.harness import best_time_per_call, run_and_report  # noqa: E402

from lisp_app.alt.rib import AltRib, AltRoute  # noqa: E402
from lisp_app.control.actions import SendControl  # noqa: E402
from lisp_app.control.map_resolver import ForwardOverAlt, MapResolverEngine  # noqa: E402
from lisp_app.control.map_server import MapServerEngine, MsSite  # noqa: E402
from lisp_app.control.mapstat import MapStat  # noqa: E402
from lisp_app.config import parse_config  # noqa: E402
from lisp_app.node.control_plane import ControlPlane, Received  # noqa: E402
from lisp_app.node.server import MapServerNode  # noqa: E402
from lisp_app.standalone import AddressTexts  # noqa: E402
from lisp_app.protocol import (EidPrefix, EidRecord,  # noqa: E402
                               EncapsulatedControlMessage, Locator, MappingRecord, MapNotify,
                               MapRegister, MapRequest, decode_control, sign,
                               verify_authentication)

GOAL = 0.5
LOOPBACK = "127.0.0.1"
SITE_KEY = "bench-s3cret"
SITE_PREFIX = EidPrefix.parse("153.16.36.0/24")
SITE = MsSite("site-36", SITE_KEY, (SITE_PREFIX,))
ETR_RLOC = ip_address("198.51.100.36")
ALT_COVER = IPv4Network("153.16.0.0/16")
ALT_NEIGHBOR = "100.64.254.168"           # the ALT neighbour the client stands in for
ALT_OTHER = "100.64.254.169"
ALT_ROUTE_BASE = IPv4Network("100.64.0.0/10")
UNCOVERED = IPv4Network("100.128.0.0/9")  # no ALT route here
POOL = 4096                               # distinct pre-encoded requests per mode
LOST_AFTER = 1.0                          # seconds without any answer: outstanding are lost
MODES = ("ms-proxy", "mr-negative", "mr-forward", "switchless")
WHAT = {"ms-proxy": "Map-Server proxy Map-Replies (plain Map-Request in)",
        "mr-negative": "Map-Resolver negative Map-Replies (ECM Map-Request in)",
        "mr-forward": "Map-Resolver forwards onto the ALT (ECM Map-Request in)",
        "switchless": "switchless ms-mr (no ALT): proxy Map-Replies (ECM Map-Request in)"}
REGISTERS = ("ms-proxy", "switchless")  # modes whose server needs site-36 registered first
SWITCHLESS_CONFIG = f"""
role: ms-mr
map_resolver: true
map_server:
  sites: [{{name: {SITE.name}, key: {SITE_KEY}, eid_prefixes: [{SITE_PREFIX}]}}]
server: {{addresses: [{LOOPBACK}]}}
"""

_started = time.monotonic()


def progress(message: str) -> None:
    print(f"[bench/mapserver {time.monotonic() - _started:6.1f}s] {message}", file=sys.stderr,
          flush=True)


# -- the requests ---------------------------------------------------------------------------------

def build_requests(mode: str, rng: random.Random, client_port: int
                   ) -> tuple[list[bytes], list[int]]:
    """POOL distinct requests for a mode and their nonces. An ECM's inner UDP source port is the
    client's (the Map-Resolver answers the ITR-RLOC at that port; an ITR would use 4342)."""
    itr = ip_address(LOOPBACK)
    payloads, nonces = [], []
    seen = set()
    for i in range(POOL):
        nonce = rng.getrandbits(64)
        while nonce in seen or not nonce:
            nonce = rng.getrandbits(64)
        seen.add(nonce)
        if mode in REGISTERS:
            eid = SITE_PREFIX.network.network_address + 1 + i % 254
        elif mode == "mr-negative":
            eid = UNCOVERED.network_address + rng.randrange(1, UNCOVERED.num_addresses - 1)
        else:
            eid = ALT_COVER.network_address + (37 << 8) + 1 + i % 254
        request = MapRequest(nonce, (EidRecord.for_prefix(EidPrefix(0, IPv4Network(eid))),),
                             (itr,), source_eid=ip_address("10.1.0.10"))
        if mode == "ms-proxy":
            payload = request.encode()
        else:  # what lisp_app's ITR sends its Map-Resolver
            payload = EncapsulatedControlMessage(ip_address("10.1.0.10"), eid, request,
                                                 source_port=client_port).encode()
        payloads.append(payload)
        nonces.append(nonce)
    return payloads, nonces


def nonce_at(payload: bytes, nonce: int) -> slice:
    raw = nonce.to_bytes(8, "big")
    at = payload.find(raw)
    if at < 0:
        raise RuntimeError("nonce not found in its own request")
    return slice(at, at + 8)


# -- the server side ------------------------------------------------------------------------------

class Server:
    """The controller's control-message path on a UDP socket: decode, engine, send the replies."""

    def __init__(self, sock: socket.socket, ms: MapServerEngine, mr: MapResolverEngine,
                 alt_neighbors: dict[str, tuple[str, int]]):
        self.sock, self.ms, self.mr, self.alt_neighbors = sock, ms, mr, alt_neighbors
        self.addresses: dict[str, IPv4Address] = {}
        # each destination's text, made once, as the switchless server makes it: the controller
        # writes the reply's frame from the address's bytes, never its text
        self.texts = AddressTexts()
        self.control = ControlPlane(MapStat(), ms=ms, mr=mr)

    @property
    def malformed(self) -> int:
        return self.control.stats.control_malformed

    @property
    def unexpected(self) -> int:
        return self.control.stats.control_unexpected

    def quiet(self, sock) -> "Server":
        """The same server (same engines) on another socket."""
        return Server(sock, self.ms, self.mr, self.alt_neighbors)

    def handle(self, data: bytes, peer: tuple[str, int]) -> None:
        now = time.monotonic()
        source = self.addresses.get(peer[0])
        if source is None:
            source = self.addresses[peer[0]] = ip_address(peer[0])
        actions = self.control.on_payload(data, Received(source, peer[1]), now)
        sendto = self.sock.sendto
        for act in actions:
            if type(act) is SendControl:
                sendto(act.payload, (self.texts.text(act.destination), act.dest_port))
            elif type(act) is ForwardOverAlt:
                target = self.alt_neighbors.get(act.neighbor)
                if target is not None:
                    sendto(act.payload, target)


class SwitchlessServer:
    """The switchless Map-Server/Map-Resolver on a UDP socket: what lisp_app/standalone.py's
    receive loop and send path do with a datagram, around ``MapServerNode.on_datagram``."""

    def __init__(self, sock: socket.socket, node: MapServerNode):
        self.sock, self.node, self.ms, self.mr = sock, node, node.ms, node.mr
        self.addresses: dict[str, object] = {}
        self.texts = AddressTexts()  # as standalone.py's send path

    @property
    def malformed(self) -> int:
        return self.node.stats.control_malformed

    @property
    def unexpected(self) -> int:
        return self.node.stats.control_unexpected

    def quiet(self, sock) -> "SwitchlessServer":
        return SwitchlessServer(sock, self.node)

    def handle(self, data: bytes, peer: tuple[str, int]) -> None:
        source = self.addresses.get(peer[0])
        if source is None:
            source = self.addresses[peer[0]] = ip_address(peer[0])
        sends = self.node.on_datagram(data, Received(source, peer[1]), time.monotonic())
        sendto = self.sock.sendto
        for send in sends:
            sendto(send.payload, (self.texts.text(send.destination), send.dest_port))


def new_engines(alt_routes: int) -> tuple[MapServerEngine, MapResolverEngine]:
    rib = AltRib()
    rib.update(AltRoute(ALT_COVER, ALT_NEIGHBOR, ALT_NEIGHBOR))
    base = int(ALT_ROUTE_BASE.network_address)
    for i in range(alt_routes):
        rib.update(AltRoute(IPv4Network((base + (i << 8), 24)), ALT_OTHER, ALT_OTHER))
    return MapServerEngine((SITE,)), MapResolverEngine(rib)


def register(client: socket.socket, server: Server, server_addr, rng: random.Random) -> None:
    """A signed Map-Register (proxy reply, want Map-Notify) through the socket and the engine,
    and the Map-Notify checked."""
    record = MappingRecord.for_prefix(SITE_PREFIX, locators=(Locator(ETR_RLOC),), ttl=1440,
                                      authoritative=True)
    nonce = rng.getrandbits(64)
    message = sign(MapRegister(nonce, (record,), proxy_reply=True, want_map_notify=True),
                   SITE_KEY, 1)
    accepted = server.ms.stats.registers_accepted
    client.sendto(message.encode(), server_addr)
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        try:
            data, peer = server.sock.recvfrom(4096)
        except BlockingIOError:
            pass
        else:
            server.handle(data, peer)
        try:
            answer = client.recv(4096)
        except BlockingIOError:
            continue
        notify = decode_control(answer)
        if not (isinstance(notify, MapNotify) and notify.nonce == nonce
                and verify_authentication(answer, SITE_KEY)):
            raise RuntimeError(f"unexpected answer to the Map-Register: {notify!r}")
        if server.ms.stats.registers_accepted != accepted + 1 or \
                not server.ms.registrations[SITE_PREFIX].proxy_reply:
            raise RuntimeError("the Map-Server did not record a proxy-reply registration")
        return
    raise RuntimeError("no Map-Notify for the Map-Register")


# -- the measured loop ----------------------------------------------------------------------------

def drain(*socks: socket.socket) -> None:
    """Discard whatever is left in flight (late answers, unanswered requests)."""
    deadline = time.monotonic() + 0.05
    while time.monotonic() < deadline:
        for sock in socks:
            try:
                while True:
                    sock.recv(4096)
            except BlockingIOError:
                pass
        time.sleep(0.005)


def run_loop(client: socket.socket, server_sock: socket.socket, handle, server_addr,
             payloads: list[bytes], nonces: list[int], answer_nonce: slice, window: int,
             seconds: float) -> dict:
    """Client and server alternating in one thread; answers with outstanding nonces per second."""
    outstanding: set[bytes] = set()
    keys = [n.to_bytes(8, "big") for n in nonces]
    send, recv = client.sendto, client.recv
    server_recvfrom = server_sock.recvfrom
    sent = answered = lost = stray = k = 0
    mask = len(payloads) - 1
    start = last_progress = time.monotonic()
    end = start + seconds
    now = start
    while now < end:
        while len(outstanding) < window:
            key = keys[k & mask]
            send(payloads[k & mask], server_addr)
            k += 1
            outstanding.add(key)
            sent += 1
        while True:
            try:
                data, peer = server_recvfrom(4096)
            except BlockingIOError:
                break
            handle(data, peer)
        before = answered
        while True:
            try:
                data = recv(4096)
            except BlockingIOError:
                break
            key = data[answer_nonce]
            if key in outstanding:
                outstanding.remove(key)
                answered += 1
            else:
                stray += 1
        now = time.monotonic()
        if answered != before:
            last_progress = now
        elif now - last_progress > LOST_AFTER:
            lost += len(outstanding)
            outstanding.clear()
            last_progress = now
    elapsed = now - start
    drain(client, server_sock)
    return {"sent": sent, "answered": answered, "lost": lost, "stray": stray,
            "seconds": elapsed, "per_s": answered / elapsed}


def in_process(mode: str, server: Server, payload: bytes, budget: float) -> dict:
    """The server's work on one request without sockets, and the codec's share of it."""
    sink = []

    class NoSocket:
        def sendto(self, data, target):
            sink.append(data)

    quiet = server.quiet(NoSocket())
    peer = (LOOPBACK, 40000)
    quiet.handle(payload, peer)
    if len(sink) != 1:
        raise RuntimeError(f"{mode}: one request gave {len(sink)} answers")
    answer = sink[0]
    decoded_answer = decode_control(answer)
    work = best_time_per_call(lambda: (quiet.handle(payload, peer), sink.clear()), budget, 5)
    codec = best_time_per_call(lambda: (decode_control(payload), decoded_answer.encode()),
                               budget, 5)
    return {"server_us": work * 1e6, "codec_us": codec * 1e6, "request_bytes": len(payload),
            "answer_bytes": len(answer)}


# -- run and report -------------------------------------------------------------------------------

def counters(server: Server) -> dict:
    ms, mr = server.ms.stats, server.mr.stats
    return {"proxy_replies": ms.proxy_replies, "ms_negative_replies": ms.negative_replies,
            "ms_forwarded": ms.requests_forwarded, "ms_unknown": ms.requests_unknown,
            "mr_negative_replies": mr.negative_replies, "mr_forwarded": mr.forwarded,
            "mr_unusable": mr.unusable, "malformed": server.malformed,
            "unexpected": server.unexpected}


EXPECTED_COUNTER = {"ms-proxy": "proxy_replies", "mr-negative": "mr_negative_replies",
                    "mr-forward": "mr_forwarded", "switchless": "proxy_replies"}


def run(args) -> dict:
    rng = random.Random(11)
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for sock in (client, server_sock):
            sock.bind((LOOPBACK, 0))
            sock.setblocking(False)
        server_addr = server_sock.getsockname()
        ms, mr = new_engines(args.alt_routes)
        alt_server = Server(server_sock, ms, mr, {ALT_NEIGHBOR: client.getsockname()})
        switchless = SwitchlessServer(server_sock, MapServerNode(parse_config(SWITCHLESS_CONFIG)))
        servers = {mode: switchless if mode == "switchless" else alt_server for mode in MODES}

        def echo(data, peer, sendto=server_sock.sendto):
            sendto(data, peer)

        figures = {"python": platform.python_version(),
                   "parameters": {"seconds": args.seconds, "rounds": args.rounds,
                                  "window": args.window, "alt_routes": args.alt_routes},
                   "modes": {}}
        requests = {}
        for mode in MODES:
            payloads, nonces = build_requests(mode, rng, client.getsockname()[1])
            requests[mode] = (payloads, nonces, nonce_at(payloads[0], nonces[0]))
            figures["modes"][mode] = {"ours": [], "echo": [], "what": WHAT[mode]}
        progress(f"{len(MODES)} modes x {args.rounds} round(s) x (echo, ours), {args.seconds:g} s "
                 f"each, window {args.window}")
        for rnd in range(1, args.rounds + 1):
            for mode in MODES:
                server = servers[mode]
                payloads, nonces, request_nonce = requests[mode]
                base = run_loop(client, server_sock, echo, server_addr, payloads, nonces,
                                request_nonce, args.window, args.seconds)
                if mode in REGISTERS:
                    register(client, server, server_addr, rng)
                before = counters(server)
                ours = run_loop(client, server_sock, server.handle, server_addr, payloads,
                                nonces, slice(4, 12), args.window, args.seconds)
                after = counters(server)
                moved = {k: after[k] - before[k] for k in after if after[k] != before[k]}
                ours["counters"] = moved
                if not ours["answered"] or set(moved) - {EXPECTED_COUNTER[mode]} or \
                        moved.get(EXPECTED_COUNTER[mode], 0) < ours["answered"]:
                    raise RuntimeError(f"{mode}: {ours['answered']} answers but the counters "
                                       f"moved {moved}")
                figures["modes"][mode]["echo"].append(base)
                figures["modes"][mode]["ours"].append(ours)
                progress(f"round {rnd} {mode}: {ours['per_s']:,.0f}/s vs echo "
                         f"{base['per_s']:,.0f}/s ({ours['per_s'] / base['per_s']:.3f})")
        progress("per-request work without sockets")
        for mode in MODES:
            if mode in REGISTERS:
                register(client, servers[mode], server_addr, rng)
            figures["modes"][mode]["in_process"] = in_process(
                mode, servers[mode], requests[mode][0][0], min(0.25, args.seconds / 2))
    finally:
        client.close()
        server_sock.close()
    for mode, v in figures["modes"].items():
        ours = statistics.median(r["per_s"] for r in v["ours"])
        base = statistics.median(r["per_s"] for r in v["echo"])
        v["summary"] = {"ours_per_s": ours, "echo_per_s": base, "ratio": ours / base,
                        "lost": sum(r["lost"] for r in v["ours"] + v["echo"])}
    progress("done")
    return figures


def report(figures: dict) -> None:
    p = figures["parameters"]
    print(f"bench/mapserver: Python {figures['python']}; one thread, client and server UDP "
          f"sockets on {LOOPBACK}, window {p['window']}, {p['seconds']:g} s per run, "
          f"{p['rounds']} round(s), medians; ALT RIB of {p['alt_routes'] + 1:,} routes")
    for mode, v in figures["modes"].items():
        s, ip = v["summary"], v["in_process"]
        print(f"{mode}: {v['what']}")
        for n, (ours, base) in enumerate(zip(v["ours"], v["echo"]), 1):
            print(f"  round {n}: ours {ours['per_s']:>9,.0f}/s ({ours['answered']:,} answered, "
                  f"{ours['lost']} lost)   echo {base['per_s']:>9,.0f}/s ({base['answered']:,} "
                  f"answered, {base['lost']} lost)   ratio {ours['per_s'] / base['per_s']:.3f}")
        print(f"  without sockets: server work {ip['server_us']:.1f} us/request (codec alone: "
              f"decode {ip['request_bytes']}-byte request + encode {ip['answer_bytes']}-byte "
              f"answer {ip['codec_us']:.1f} us)")
    for mode, v in figures["modes"].items():
        s = v["summary"]
        print(f"RESULT {mode.replace('-', '_')}_per_s={s['ours_per_s']:.0f} "
              f"echo_per_s={s['echo_per_s']:.0f} ratio={s['ratio']:.3f} (goal >= {GOAL})")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=None,
                        help="length of each run (default 2, --quick 0.5)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="echo/ours alternations per mode, medians reported "
                             "(default 3, --quick 1)")
    parser.add_argument("--window", type=int, default=32,
                        help="requests outstanding at any time (default 32)")
    parser.add_argument("--alt-routes", type=int, default=1000,
                        help="/24 routes in the Map-Resolver's ALT RIB besides 153.16.0.0/16 "
                             "(default 1000)")
    parser.add_argument("--quick", action="store_true", help="short runs, one round")
    parser.add_argument("--json", metavar="PATH", help="also write every figure as JSON here")
    args = parser.parse_args(argv)
    if args.seconds is None:
        args.seconds = 0.5 if args.quick else 2.0
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    if not args.seconds > 0:
        parser.error("--seconds must be positive")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if not 1 <= args.window <= 256:
        parser.error("--window must be between 1 and 256")
    if not 0 <= args.alt_routes <= 4096:
        parser.error("--alt-routes must be between 0 and 4096 (/24s in 100.64.0.0/10's first /12)")
    return run_and_report("bench/mapserver.py", run, report, args, progress)


if __name__ == "__main__":
    sys.exit(main())
