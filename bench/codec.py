"""LISP codec throughput beside os-ken's packet parser, measured in the same run.

For (a) a Map-Request and (b) a Map-Reply with two locators this measures:

- the codec: ``decode_control(payload).encode()``, one decode plus one encode per operation;
- os-ken: ``os_ken.lib.packet.packet.Packet(frame)`` on the Ethernet/IPv4/UDP frame carrying the
  same message, as an OpenFlow packet-in would deliver it (os-ken parses the Ethernet, IPv4 and UDP
  headers and leaves the UDP 4342 payload as raw bytes).

The two are measured in paired rounds: in each round the codec and os-ken are timed back to back
(in alternating order from round to round), each as the best of a few timeit-style repeats, and
the round's ratio is taken from that pair, so a disturbance of the machine that lasts seconds
touches both sides of a ratio alike. One run's figure is the median of the rounds' ratios; the
spread (lowest and highest round) says how far a single round could be trusted. (A single
measurement of each side, one after the other, gave Map-Reply ratios from 0.91 to 1.65 across
runs on one machine.) The last lines give codec cost / os-ken parse cost for each message; the
goal is at most 1.0, i.e. decoding and re-encoding a LISP message costs no more than the header
parsing every packet-in already pays.

Usage: python bench/codec.py [--seconds N] [--repeats R] [--rounds K]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import warnings
from ipaddress import ip_address
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

warnings.simplefilter("ignore")  # importing os-ken may warn about eventlet's deprecation

from os_ken.lib.packet import ethernet, ipv4, udp  # noqa: E402
from os_ken.lib.packet.packet import Packet  # noqa: E402

from bench.harness import best_time_per_call  # noqa: E402
from lisp_app.dataplane.frames import udp_frame  # noqa: E402
from lisp_app.protocol import (LISP_CONTROL_PORT, EidRecord, InstanceIdAddress,  # noqa: E402
                               Locator, MapReply, MappingRecord, MapRequest, decode_control)

ITR_MAC, MR_MAC = "02:00:00:00:00:01", "02:00:00:00:00:02"
ITR_RLOC, ETR_RLOC, ETR_RLOC_2 = (ip_address("192.0.2.1"), ip_address("198.51.100.1"),
                                  ip_address("198.51.100.2"))
EID_PREFIX = InstanceIdAddress(1000, ip_address("10.2.0.0"), 24)

MESSAGES = {
    "map-request": MapRequest(
        nonce=0x5A5A0123456789AB, records=(EidRecord(EID_PREFIX, 24),), itr_rlocs=(ITR_RLOC,),
        source_eid=InstanceIdAddress(1000, ip_address("10.1.0.5"), 32)),
    "map-reply-2-locators": MapReply(
        nonce=0x5A5A0123456789AB,
        records=(MappingRecord(EID_PREFIX, 24, (Locator(ETR_RLOC, priority=1, weight=50),
                                                Locator(ETR_RLOC_2, priority=1, weight=50)),
                               ttl=1440, authoritative=True),)),
}


def frame_for(payload: bytes) -> bytes:
    """The Ethernet/IPv4/UDP 4342 frame a packet-in would carry for this LISP payload."""
    return udp_frame(ITR_MAC, MR_MAC, ITR_RLOC, ETR_RLOC, LISP_CONTROL_PORT, LISP_CONTROL_PORT,
                     payload)


def check_workload(payload: bytes, frame: bytes) -> None:
    """Make sure both sides do the work they are credited with before timing them."""
    if decode_control(payload).encode() != payload:
        sys.exit("codec round trip changed the payload; refusing to benchmark")
    parsed = Packet(frame)
    kinds = [type(p) for p in parsed.protocols]
    if kinds[:3] != [ethernet.ethernet, ipv4.ipv4, udp.udp] or parsed.protocols[3] != payload:
        sys.exit(f"os-ken did not parse the frame as Ethernet/IPv4/UDP + payload: {kinds}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0,
                        help="total measuring time, shared by all figures (default 4)")
    parser.add_argument("--repeats", type=int, default=5,
                        help="repeats per figure in each round (default 5)")
    parser.add_argument("--rounds", type=int, default=7,
                        help="paired rounds per message; the median ratio counts (default 7)")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.repeats < 1 or args.rounds < 1:
        parser.error("--seconds must be positive, --repeats and --rounds at least 1")
    budget = args.seconds / (2 * len(MESSAGES) * args.rounds)

    print(f"LISP codec vs os-ken packet parsing: Python {platform.python_version()}, "
          f"{args.rounds} paired rounds of best-of-{args.repeats} figures, {args.seconds:g} s "
          "budget")
    ratios = {}
    for name, message in MESSAGES.items():
        payload = message.encode()
        frame = frame_for(payload)
        check_workload(payload, frame)
        sides = {"codec": lambda: decode_control(payload).encode(),
                 "osken": lambda: Packet(frame)}
        rounds = []  # (codec seconds, os-ken seconds) per round
        for n in range(args.rounds):
            order = ("codec", "osken") if n % 2 == 0 else ("osken", "codec")
            took = {side: best_time_per_call(sides[side], budget, args.repeats)
                    for side in order}
            rounds.append((took["codec"], took["osken"]))
        per_round = [c / o for c, o in rounds]
        codec = statistics.median(c for c, _ in rounds)
        osken = statistics.median(o for _, o in rounds)
        ratios[name] = statistics.median(per_round)
        print(f"{name} ({len(payload)}-byte payload, {len(frame)}-byte frame; medians over "
              f"rounds)")
        print(f"  codec decode+encode   {1 / codec:>12,.0f} ops/s  {codec * 1e6:8.2f} us/op")
        print(f"  os-ken Packet(frame)  {1 / osken:>12,.0f} ops/s  {osken * 1e6:8.2f} us/op")
        print(f"  ratio per round: {', '.join(f'{r:.2f}' for r in per_round)} (lowest "
              f"{min(per_round):.2f}, highest {max(per_round):.2f})")
    for name, ratio in ratios.items():
        print(f"ratio {name}: codec/os-ken = {ratio:.2f} (goal <= 1.0)")


if __name__ == "__main__":
    main()
