"""``lispctl``: look at and change a running lisp_app (OpenLISP's ``map`` and ``mapstat``).

    lispctl map get [IID]EID          the mapping an EID uses (database or cache)
    lispctl map list                  the local database and the map-cache
    lispctl map add PREFIX RLOC[/PRIORITY/WEIGHT] ...   a static map-cache entry
    lispctl map del PREFIX            remove a map-cache entry
    lispctl mapstat [--fresh]         counters (--fresh: read the switch's counters first)
    lispctl flows                     our flows and groups with packet counts
    lispctl bgp                       the ALT: BGP neighbours and learned routes
    lispctl bgp clear NEIGHBOR        give back a neighbour cut off by max-prefix
Every command takes --json; --api URL selects the controller (default http://127.0.0.1:8080).
Exit status: 0 done, 1 the command failed (the API unreachable or refusing, a file unreadable),
2 the command line is wrong.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from urllib.parse import urlsplit

from .. import __version__
from .client import ApiRefused, ApiUnavailable, LispClient


def format_mapping(m: dict) -> list[str]:
    iid = f" [iid {m['instance_id']}]" if m["instance_id"] else ""
    expires = "never" if m["expires_in"] is None else f"{int(m['expires_in'])}s"
    flags = [m["source"], f"ttl {m['ttl']} min", f"expires {expires}"]
    if m["authoritative"]:
        flags.append("authoritative")
    if m["negative"]:
        flags.append(f"negative, action {m['action']}")
    lines = [f"{m['eid']}{iid}  " + ", ".join(flags)]
    for i, loc in enumerate(m["locators"], 1):
        probe = loc.get("probe")
        if probe is None:  # not probed (probing off, or a local locator): the R bit says
            state = "up" if loc["reachable"] else "down"
        else:
            state = probe["state"]
            if probe["since"] is not None:
                state += f" for {probe['since']:.0f}s"
            if probe["rtt_ms"] is not None:
                state += f", rtt {probe['rtt_ms']:.1f} ms"
        if loc["local"]:  # one of this xTR's RLOCs
            local = ", this xTR"
        elif loc.get("l_bit"):  # the replying ETR's L bit: its own locator, not ours
            local = ", local to the replying ETR"
        else:
            local = ""
        lines.append(f"    RLOC {i}: {loc['rloc']:<16} priority {loc['priority']:>3}  "
                     f"weight {loc['weight']:>3}  {state}{local}")
    return lines


def format_locators(data: dict) -> list[str]:
    if not data["locators"]:
        return ["no probed locators (probing off, or no mapping in the map-cache)"]
    lines = []
    for loc in data["locators"]:
        since = "" if loc["since"] is None else f" for {loc['since']:.0f}s"
        rtt = "" if loc["rtt_ms"] is None else f", rtt {loc['rtt_ms']:.1f} ms"
        misses = f", {loc['misses']} missed" if loc["misses"] else ""
        lines.append(f"{loc['rloc']:<24} {loc['state']}{since}{rtt}{misses}; "
                     f"{loc['mapping_count']} mapping(s): {', '.join(loc['mappings'][:4])}"
                     + (" ..." if loc["mapping_count"] > 4 else ""))
    return lines


def format_map_list(data: dict) -> list[str]:
    lines = ["Local database:"]
    for m in data["database"]:
        lines += ["  " + l for l in format_mapping(m)]
    if not data["database"]:
        lines.append("  (empty)")
    lines.append("Map-cache:")
    for m in data["cache"]:
        lines += ["  " + l for l in format_mapping(m)]
    if not data["cache"]:
        lines.append("  (empty)")
    return lines


MAPSTAT_LABELS = [
    ("received", "LISP packets received (decapsulated)"),
    ("delivered", "packets delivered to site hosts"),
    ("sent", "packets encapsulated and sent"),
    ("dropped_negative", "packets dropped by negative map-cache entries (or mappings with no "
     "usable locator)"),
    ("dropped_policy", "packets dropped by explicit drop rules (multicast, broadcast, "
     "link-local, not for a local EID, ALT ports)"),
    ("too_big_dropped", "too-big packets dropped without ICMP (no gateway address of their "
     "family)"),
    ("dropped", "packets dropped in all (the three above)"),
    ("bad_header", "packets with a bad header"),
    ("classic_received", "RFC 9300 (classic) packets received"),
    ("classic_dropped", "UDP 4341 packets dropped (not a valid LISP packet)"),
    ("classic_sent", "packets sent with an RFC 9300 (classic) header"),
    ("misses", "map-cache misses"),
    ("requests_sent", "Map-Requests sent"),
    ("requests_retransmitted", "Map-Requests retransmitted"),
    ("requests_answered", "Map-Requests answered"),
    ("requests_timed_out", "Map-Requests timed out"),
    ("replies_rejected", "Map-Replies rejected (bad nonce or EID)"),
    ("negative_replies", "negative Map-Replies"),
    ("buffered", "packets held while waiting for a mapping"),
    ("buffer_overflow", "packets not held (buffer full)"),
    ("buffer_dropped", "held packets dropped"),
    ("reinjected", "held packets sent on"),
    ("data_probes_sent", "data probes sent"),
    ("probes_sent", "RLOC-probes sent"),
    ("probe_replies", "RLOC-probes answered by the probed locator"),
    ("probes_unanswered", "RLOC-probes unanswered (misses)"),
    ("probes_deferred", "RLOC-probes delayed by the probing rate cap"),
    ("probe_replies_unknown", "RLOC-probe replies with an unknown nonce (ignored)"),
    ("locators_went_down", "locators marked down by probing"),
    ("locators_came_up", "locators back up after being down"),
    ("smrs_received", "Solicit-Map-Requests received"),
    ("smrs_ignored", "Solicit-Map-Requests ignored (no such mapping, or too soon)"),
    ("requests_refused_source", "misses not asked for (their host had its share of requests)"),
    ("requests_refused_full", "misses not asked for (requests table full, no heavier host)"),
    ("requests_evicted", "Map-Requests dropped for a host with fewer outstanding"),
    ("requests_deferred", "Map-Requests delayed by the request rate caps"),
    ("buffer_source_full", "packets not held (their host had its share of the buffer)"),
    ("buffer_evicted", "held packets dropped for a host holding fewer"),
    ("misses_held_down", "misses for EIDs held down after unanswered requests"),
    ("holddowns_lifted", "hold-downs lifted by a valid answer"),
    ("late_replies", "Map-Replies accepted after their request was given up"),
    ("smrs_sent", "Solicit-Map-Requests sent (a local mapping changed)"),
    ("smrs_dropped", "Solicit-Map-Requests not sent (queue full)"),
    ("requests_received", "Map-Requests received"),
    ("requests_not_ours", "Map-Requests for EIDs not ours"),
    ("replies_sent", "Map-Replies sent"),
    ("probes_answered", "RLOC-probes answered"),
    ("data_probes_received", "data probes answered and delivered"),
    ("data_probes_relayed", "data probes relayed to a registered ETR (packet dropped)"),
    ("control_malformed", "malformed control messages"),
    ("control_unexpected", "unexpected control messages"),
    ("control_lenient", "control messages accepted despite a deviation from the RFC"),
    ("control_send_failed", "control messages that could not be sent"),
    ("too_big", "ICMP too-big sent"),
    ("alt_no_route", "Map-Requests with no ALT route"),
    ("registers_sent", "Map-Registers sent"),
    ("registrations_confirmed", "Map-Notifies received (registrations confirmed)"),
    ("handler_errors", "controller event handlers that failed"),
]


def format_mapstat(data: dict) -> list[str]:
    c = data["counters"]
    age = data.get("counts_age_seconds")
    lines = ["lisp:", "\tdata-plane counts " + ("not read from the switch yet" if age is None
                                                 else f"read {age:.1f} s ago")]
    lines += [f"\t{c.get(key, 0)} {label}" for key, label in MAPSTAT_LABELS]
    lines.append(f"\t{data['cache_entries']} map-cache entries, "
                 f"{data['pending_requests']} Map-Requests pending")
    for role in ("map_server", "map_resolver"):
        if role in data:
            lines.append(role.replace("_", "-") + ":")
            lines += [f"\t{v} {k.replace('_', ' ')}" for k, v in data[role].items()]
    for reg in data.get("registrations", []):
        lines.append(f"\tregistered {reg['prefix']} by {reg['etr']} (site {reg['site']}, "
                     f"expires in {int(reg['expires_in'])}s)")
    return lines


def format_flows(data: dict) -> list[str]:
    """Each bridge's flows as ``ovs-ofctl -O OpenFlow13 --no-names dump-flows`` writes them (a
    line can be compared with, or pasted into, ovs-ofctl), then its groups as ``dump-groups``
    and their counters as ``dump-group-stats`` write them."""
    lines = []
    for bridge, content in data.items():
        lines.append(f"{bridge} bridge: flows")
        lines += [" " + f["ofctl"] for f in content["flows"]]
        if content["groups"]:
            lines.append(f"{bridge} bridge: groups")
            lines += [" " + g["ofctl"] for g in content["groups"] if g.get("ofctl")]
            lines.append(f"{bridge} bridge: group counters")
            lines += [" " + g["ofctl_stats"] for g in content["groups"]]
    return lines


def up_down(seconds: float | None) -> str:
    """A session's Up/Down time as FRR writes it: hh:mm:ss, then 1d02h03m, then 2w3d04h."""
    if seconds is None:
        return "never"
    s = int(seconds)
    days, rest = divmod(s, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days == 0:
        return f"{hours:02d}:{minutes:02d}:{secs:02d}"
    if days < 7:
        return f"{days}d{hours:02d}h{minutes:02d}m"
    return f"{days // 7:02d}w{days % 7}d{hours:02d}h"


def format_bgp(data: dict) -> list[str]:
    """Like FRR's ``show bgp summary``: per neighbour the messages received and sent, how long
    the session has been up or down, and the prefixes received when Established, else the BGP
    FSM state."""
    lines = [f"BGP router identifier {data['router_id']}, local AS number {data['local_as']}, "
             f"ALT address {data['address']}", "",
             f"{'Neighbor':<16} {'AS':>10} {'MsgRcvd':>8} {'MsgSent':>8} {'Up/Down':>9} "
             f"{'State/PfxRcd':>18} {'PfxFlt':>7} {'MaxPfx':>7}"]
    for n in data["neighbors"]:
        if n["state"] == "max-prefix-exceeded":
            state = f"{n['fsm']} (max-prefix)"
        elif n["fsm"] == "Established":
            state = str(n["prefixes_received"])
        else:
            state = n["fsm"]
        lines.append(f"{n['address']:<16} {n['remote_as']:>10} {n['messages_received']:>8} "
                     f"{n['messages_sent']:>8} {up_down(n['up_down']):>9} {state:>18} "
                     f"{n['rejected']:>7} {n['max_prefix'] or '-':>7}")
    cut = [n["address"] for n in data["neighbors"] if n["state"] == "max-prefix-exceeded"]
    if cut:
        lines.append(f"Cut off by max-prefix: {', '.join(cut)} (lispctl bgp clear NEIGHBOR "
                     "brings it back)")
    lines += ["", "Routes:"]
    for r in data["routes"]:
        path = " ".join(map(str, r["as_path"])) or "(empty)"
        lines.append(f"  {r['prefix']:<20} via {r['next_hop']:<16} path {path}")
    lines.append("Announced: " + (", ".join(data["announced"]) or "nothing"))
    return lines


def parse_locator(text: str) -> dict:
    parts = text.split("/")
    if not 1 <= len(parts) <= 3:
        raise argparse.ArgumentTypeError(f"{text!r}: expected RLOC[/PRIORITY/WEIGHT]")
    loc = {"rloc": parts[0]}
    try:
        if len(parts) > 1:
            loc["priority"] = int(parts[1])
        if len(parts) > 2:
            loc["weight"] = int(parts[2])
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: priority and weight are numbers") from None
    return loc


class MappingFileError(ValueError):
    """A line of a mapping file that cannot be read (the message names file and line)."""


def read_mapping_file(path: str) -> list[dict]:
    """``PREFIX RLOC[/PRIORITY/WEIGHT] ...`` per line -> the API's mapping objects."""
    return read_mapping_lines(path)[0]


def read_mapping_lines(path: str) -> tuple[list[dict], list[int]]:
    """The mappings of a file (see :func:`read_mapping_file`) and the line each came from."""
    try:
        if path == "-":
            raw = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as f:
                raw = f.read()
    except OSError as exc:
        raise MappingFileError(f"{path}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise MappingFileError(f"{path}:{line}: not UTF-8 text (byte 0x{raw[exc.start]:02x} "
                               f"at column {column})") from None
    mappings, lines = [], []
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if len(words) < 2:
            raise MappingFileError(f"{path}:{number}: a prefix and at least one locator needed")
        try:
            locators = [parse_locator(w) for w in words[1:]]
        except (argparse.ArgumentTypeError, ValueError) as exc:
            raise MappingFileError(f"{path}:{number}: {exc}") from None
        mappings.append({"prefix": words[0], "locators": locators})
        lines.append(number)
    return mappings, lines


_ENTRY = re.compile(r"^mappings\[(\d+)\](?:\.locators\[(\d+)\])?: ?")


def refusal_by_line(error: str, path: str, lines: list[int]) -> str | None:
    """The API's refusal of one entry of a bulk load (``mappings[3]: ...``, or
    ``mappings[3].locators[1]: ...``) with the file's line instead of the list index (None: the
    refusal names no entry)."""
    m = _ENTRY.match(error)
    if m is None or int(m.group(1)) >= len(lines):
        return None
    where = f"{path}:{lines[int(m.group(1))]}"
    if m.group(2) is not None:
        where += f": locator {int(m.group(2)) + 1}"
    return f"{where}: {error[m.end():]}"


def api_url(text: str) -> str:
    """--api's value: an http(s) URL with a host (and a valid port)."""
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 (raises ValueError for a bad port)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"{text!r}: expected http://HOST[:PORT], e.g. "
                                         "http://127.0.0.1:8080")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lispctl", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"lisp_app {__version__}")
    parser.add_argument("--api", default="http://127.0.0.1:8080", type=api_url,
                        help="the controller's API")
    parser.add_argument("--token", default=os.environ.get("LISP_API_TOKEN"), type=token_text,
                        help="the API's token, when its config sets one (default: "
                             "$LISP_API_TOKEN)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    # --json may also follow the command ("lispctl map list --json")
    leaf = argparse.ArgumentParser(add_help=False)
    leaf.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                      help="print JSON")
    sub = parser.add_subparsers(dest="command", required=True)
    mp = sub.add_parser("map", help="mappings").add_subparsers(dest="verb", required=True)
    get = mp.add_parser("get", help="the mapping an EID uses", parents=[leaf])
    get.add_argument("eid", help="[IID]EID, e.g. [1000]10.2.0.10")
    mp.add_parser("list", help="local database and map-cache", parents=[leaf])
    add = mp.add_parser("add", help="add a static map-cache entry", parents=[leaf])
    add.add_argument("prefix", help="[IID]PREFIX, e.g. [1000]10.2.0.0/24")
    add.add_argument("locators", nargs="+", type=parse_locator, help="RLOC[/PRIORITY/WEIGHT]")
    load = mp.add_parser("load", help="add many static entries from a file, one per line as for "
                         "'map add' (# starts a comment), installed in one bundle",
                         parents=[leaf])
    load.add_argument("file", help="the file ('-': standard input)")
    delete = mp.add_parser("del", help="remove a map-cache entry", parents=[leaf])
    delete.add_argument("prefix")
    db = sub.add_parser("database", help="the site's own EID prefixes").add_subparsers(
        dest="verb", required=True)
    dset = db.add_parser("set", help="new locators for one of the site's EID prefixes "
                         "(re-registers it and sends SMRs to the ITRs that asked for it)",
                         parents=[leaf])
    dset.add_argument("prefix", help="[IID]PREFIX, as in the config")
    dset.add_argument("locators", nargs="+", type=parse_locator, help="RLOC[/PRIORITY/WEIGHT]")
    dset.add_argument("--ttl", type=int, help="record TTL in minutes (default: unchanged)")
    mapstat = sub.add_parser("mapstat", help="counters", parents=[leaf])
    mapstat.add_argument("--fresh", action="store_true",
                         help="read the switch's flow counters before answering (else they "
                         "are up to a poll interval old)")
    sub.add_parser("locators", help="RLOC probing: the probed locators, up or down",
                   parents=[leaf])
    sub.add_parser("flows", help="our flows and groups", parents=[leaf])
    bgp = sub.add_parser("bgp", help="the ALT: BGP neighbours (like FRR's show bgp summary) "
                         "and routes", parents=[leaf])
    bgp_verbs = bgp.add_subparsers(dest="verb")
    clear = bgp_verbs.add_parser("clear", help="give back a neighbour cut off by max-prefix "
                                 "(or reset its session)", parents=[leaf])
    clear.add_argument("neighbor", help="the neighbour's address")
    return parser


def token_text(text: str) -> str:
    """--token's value: what an HTTP header can carry (printable ASCII)."""
    if not (text.isascii() and text.isprintable()):
        raise argparse.ArgumentTypeError("the token must be printable ASCII")
    return text


def main(argv=None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    for arg in argv:  # bytes that are not UTF-8 reach Python as lone surrogates
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            parser.error(f"argument {arg.encode('utf-8', 'replace').decode()!r} is not "
                         "UTF-8 text")
    args = parser.parse_args(argv)
    client = LispClient(args.api, token=args.token)
    try:
        if args.command == "map":
            if args.verb == "get":
                data = client.map_get(args.eid)
                lines = (format_mapping(data["mapping"]) if data["found"]
                         else [f"{args.eid}: no mapping"])
            elif args.verb == "list":
                data = client.map_list()
                lines = format_map_list(data)
            elif args.verb == "add":
                data = client.map_add(args.prefix, args.locators)
                lines = [f"added {data['added']}"]
            elif args.verb == "load":
                mappings, lines = read_mapping_lines(args.file)
                try:
                    data = client.map_add_many(mappings)
                except ApiRefused as exc:
                    by_line = refusal_by_line(exc.error or "", args.file, lines)
                    if by_line is None:
                        raise
                    raise MappingFileError(by_line) from None
                lines = [f"added {data['added']} mappings ({data['flows']} flows in "
                         f"{data['bundles']} bundle(s), {data['groups']} groups)"]
            else:
                data = client.map_del(args.prefix)
                lines = [f"removed {data['removed']}"]
        elif args.command == "database":
            data = client.database_set(args.prefix, args.locators, args.ttl)
            lines = [f"changed {data['changed']} ({data['smrs_pending']} SMR(s) still "
                     "queued)"]
        elif args.command == "mapstat":
            data = client.mapstat(fresh=args.fresh)
            lines = format_mapstat(data)
        elif args.command == "bgp" and args.verb == "clear":
            data = client.bgp_clear(args.neighbor)
            lines = [f"cleared {data['cleared']} (it was {data['was']})"]
        elif args.command == "bgp":
            data = client.bgp()
            lines = format_bgp(data)
        elif args.command == "locators":
            data = client.locators()
            lines = format_locators(data)
        else:
            data = client.flows()
            lines = format_flows(data)
    except (ApiUnavailable, ApiRefused, MappingFileError) as exc:
        print(f"lispctl: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(data, indent=1) if args.json else "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
