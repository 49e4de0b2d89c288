"""tshark captures for the topologies, the tests and the benchmarks: start one (and wait until it
really captures), stop it and read what it saw as tshark's JSON."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

LISP_PORTS = "udp port 4341 or udp port 4342"


def start_capture(popen, interfaces: list[str], path: Path,
                  bpf: str = LISP_PORTS) -> subprocess.Popen:
    """tshark writing ``path`` from ``interfaces``, started with ``popen`` (a Mininet host's
    ``popen``, or one that runs in a namespace); returns once tshark says it is capturing."""
    argv = ["tshark", "-q", *(f"-i{i}" for i in interfaces), "-f", bpf, "-w", str(path)]
    proc = popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 15
    line = b""
    while time.monotonic() < deadline and b"Capturing on" not in line:
        line = proc.stderr.readline()
    time.sleep(0.5)
    return proc


def stop_capture(proc: subprocess.Popen, path: Path | None = None) -> list[dict]:
    """Stop tshark (after a moment, so that the last packets are written); with ``path``, the
    packets it captured as tshark's JSON."""
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    proc.wait(10)
    if path is None:
        return []
    out = subprocess.run(["tshark", "-r", str(path), "-T", "json", "--no-duplicate-keys"],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out or "[]")
