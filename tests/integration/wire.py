"""Wire-level test tooling for the integration tests: a tshark capture on the underlay router
of a topology, and readers of tshark's JSON (layers, the outer IP header, malformed/expert items).
"""

from __future__ import annotations

from pathlib import Path

from topologies.capture import LISP_PORTS, start_capture, stop_capture


class Capture:
    """tshark on the underlay router's two interfaces, LISP ports only."""

    def __init__(self, topo, path: Path, bpf: str = LISP_PORTS):
        self.path = path
        self.proc = start_capture(topo.host("r").popen, [topo.intf("r1"), topo.intf("r2")],
                                  path, bpf)

    def stop(self) -> list[dict]:
        return stop_capture(self.proc, self.path)


def layers(packets, name):
    return [p["_source"]["layers"] for p in packets if name in p["_source"]["layers"]]


def outer_ip(layer: dict) -> dict:
    """The outer IPv4 header of an encapsulated packet (tshark lists both IP layers)."""
    ip = layer["ip"]
    return ip[0] if isinstance(ip, list) else ip


def find_problems(obj, path=""):
    """Every _ws.malformed / _ws.expert item in a tshark JSON tree."""
    found = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k.startswith("_ws.malformed") or k.startswith("_ws.expert"):
                found.append(f"{path}/{k}: {v}")
            found += find_problems(v, f"{path}/{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            found += find_problems(v, f"{path}[{i}]")
    return found
