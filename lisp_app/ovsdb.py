"""The bridges' controller records in OVSDB: how fast they come back to a restarted controller.

When its controller goes away, an OVS bridge tries again after 1, 2, 4, then every 8 seconds
(``max_backoff``); a controller restarted after ten seconds may then wait eight more before the
switch calls. So the controller sets ``max_backoff`` (and the inactivity probe) on the
Controller records of its two bridges, found by datapath id, when ``ovsdb.remote`` names the
switch's database.

When it matters, measured on OVS 3.1 (Debian 12) and read in its source (ofproto/connmgr.c):
the setting reaches a bridge's connection only when the record changes *while the bridge is
connected*; a change made while it is disconnected, or a value already in the record when it
connects, is ignored until the next change (fixed in OVS 3.3, commit 155f632e7). So the
controller writes the record once at start (enough on OVS 3.3 and later) and again each time a
bridge connects, with a fresh ``external_ids:lisp-app-connected`` stamp so that the write is a
change. A controller killed after that comes back to a switch that calls every ``max_backoff``
seconds: measured, 1.09 s from listening to connected after 25 s away, against 5.6-6.9 s with
OVS's default.

The commands are built by pure functions (tested); :func:`configure` runs them with
``ovs-vsctl``.
"""

from __future__ import annotations

import subprocess

TIMEOUT = 5  # seconds: ovs-vsctl's own --timeout, and ours around it


class OvsdbError(Exception):
    """The switch's database could not be read or changed (the message says why)."""


def vsctl(remote: str, *args: str) -> list[str]:
    return ["ovs-vsctl", f"--db={remote}", f"--timeout={TIMEOUT}", *args]


def find_bridge(remote: str, datapath_id: int) -> list[str]:
    """The command printing the name of the bridge with this datapath id (OVSDB keeps it as 16
    hex digits)."""
    return vsctl(remote, "--bare", "--columns=name", "find", "Bridge",
                 f"datapath_id={datapath_id:016x}")


def set_reconnect(remote: str, bridges: list[str], max_backoff: int,
                  inactivity_probe: int, stamp: str | None = None) -> list[str]:
    """One ovs-vsctl transaction setting every listed bridge's controller records (with
    ``stamp``: also ``external_ids:lisp-app-connected``, which makes the write a change)."""
    args: list[str] = []
    for bridge in bridges:
        if args:
            args.append("--")
        args += ["set", "controller", bridge, f"max_backoff={max_backoff * 1000}",
                 f"inactivity_probe={inactivity_probe * 1000}"]
        if stamp is not None:
            args.append(f"external_ids:lisp-app-connected={stamp}")
    return vsctl(remote, *args)


def _run(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT + 2)
    except FileNotFoundError:
        raise OvsdbError("ovs-vsctl is not installed") from None
    except subprocess.TimeoutExpired:
        raise OvsdbError(f"{argv[1][5:]} did not answer in {TIMEOUT} s") from None
    if done.returncode != 0:
        raise OvsdbError(done.stderr.strip() or f"ovs-vsctl exited with {done.returncode}")
    return done.stdout


def configure(remote: str, datapath_ids: list[int], max_backoff: int,
              inactivity_probe: int, stamp: str | None = None, run=_run) -> str:
    """Set the reconnection timing of the bridges with these datapath ids; what was done, as a
    sentence for the log. OvsdbError when a bridge is missing or the database refuses."""
    bridges = []
    for dpid in datapath_ids:
        name = run(find_bridge(remote, dpid)).strip()
        if not name:
            raise OvsdbError(f"no bridge with datapath id {dpid:016x} in {remote}")
        bridges.append(name)
    run(set_reconnect(remote, bridges, max_backoff, inactivity_probe, stamp))
    return (f"bridges {', '.join(bridges)}: reconnect to the controller within {max_backoff} s, "
            f"inactivity probe {inactivity_probe or 'off'}"
            f"{' s' if inactivity_probe else ''} (set in {remote})")
