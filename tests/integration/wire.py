"""Wire-level test tooling for the integration tests: a tshark capture on the underlay router
of a topology, and readers of tshark's JSON (layers, the outer IP header, malformed/expert items).
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path


class Capture:
    """tshark on the underlay router's two interfaces, LISP ports only."""

    def __init__(self, topo, path: Path, bpf: str = "udp port 4341 or udp port 4342"):
        self.path = path
        self.proc = topo.host("r").popen(
            ["tshark", "-q", "-i", topo.intf("r1"), "-i", topo.intf("r2"), "-f", bpf,
             "-w", str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 15
        line = b""
        while time.monotonic() < deadline and b"Capturing on" not in line:
            line = self.proc.stderr.readline()
        time.sleep(0.5)

    def stop(self) -> list[dict]:
        time.sleep(0.5)
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(10)
        out = subprocess.run(["tshark", "-r", str(self.path), "-T", "json", "--no-duplicate-keys"],
                             capture_output=True, text=True, check=True).stdout
        return json.loads(out or "[]")


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
