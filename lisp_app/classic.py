"""Classic LISP (RFC 9300) data packets in the fast path: attaching the eBPF programs on the uplink.

Open vSwitch's VXLAN-GPE port decapsulates only LISP-GPE (``0c 00 00 01|IID 00``) and drops the
classic headers every deployed LISP router sends (docs/architecture.rst). Two small eBPF programs
on the underlay uplink, shipped as C in ``lisp_app/dataplane/bpf/`` and compiled here with clang
when they are attached, close that gap without any packet passing through the controller:

- ``lisp_decap.c``, XDP (it runs before OVS's AF_PACKET socket reads the frame; in the driver's
  native mode where the interface supports it, else in generic mode, ``underlay.xdp_mode``):
  rewrites a classic header on a UDP 4341 packet to one of our RLOCs into OVS's GPE header,
  drops (and counts) the UDP 4341 packets no valid LISP packet looks like;
- ``lisp_encap.c``, tc cls_bpf on the uplink's egress (``underlay.encapsulation: lisp``):
  rewrites OVS's GPE header into a strict RFC 9300 one on the way out.

This module is the top floor's I/O (``ip``, ``tc``, ``bpftool`` and ``clang`` subprocesses): the
command lines and the readers of bpftool's JSON are pure functions, unit-tested;
:class:`ClassicPath` runs them. ``run_controller.py`` attaches at start (and refuses to run when it
cannot) and detaches on exit; the app reads the counters into mapstat. Where the controller does
not run in the xTR's network namespace, the same steps are a command on the xTR host::

    python -m lisp_app.classic attach --config site.yaml   # and: detach, show
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

from .config import Config, ConfigError, load_config, local_rlocs

LOG = logging.getLogger("lisp_app.classic")

SOURCES = Path(__file__).resolve().parent / "dataplane" / "bpf"
DECAP, ENCAP = "lisp_decap", "lisp_encap"
TC_PREF = 4341          # our tc filter's preference on the uplink's egress hook
DECAP_COUNTERS = ("rewritten", "gpe", "dropped", "other")   # lisp_dstats, in index order
ENCAP_COUNTERS = ("rewritten", "other")                     # lisp_estats
PACKAGES = "clang llvm libbpf-dev bpftool (scripts/setup.sh installs them)"
GPE_ONLY_HINT = "set underlay.classic_decap: false to accept LISP-GPE only"


class ClassicError(RuntimeError):
    """The classic path cannot be set up; the message names the interface and the reason."""


XDP_MODES = {"native": "xdpdrv", "generic": "xdpgeneric"}   # underlay.xdp_mode -> ip's word
BPFTOOL_XDP_MODES = {"driver": "native", "generic": "generic"}  # bpftool net show's -> ours


@dataclass(frozen=True)
class Plan:
    """What to attach where: ``decap`` (XDP) and ``encap`` (tc egress) on ``interface``;
    ``rlocs`` are this xTR's addresses (only packets to them are rewritten); ``xdp_mode`` is
    auto (native, else generic), native or generic."""

    interface: str
    decap: bool
    encap: bool
    rlocs: tuple[IPv4Address | IPv6Address, ...]
    xdp_mode: str = "auto"

    def xdp_modes(self) -> tuple[str, ...]:
        """The XDP modes to try, in order."""
        return ("native", "generic") if self.xdp_mode == "auto" else (self.xdp_mode,)


def plan_for(config: Config) -> Plan | None:
    """The programs a site needs, or None: an ETR decapsulates classic packets unless
    ``classic_decap`` is false; an ITR rewrites its headers when ``encapsulation`` is lisp."""
    u = config.underlay
    decap = u.classic_decap and config.role in ("etr", "xtr")
    encap = u.encapsulation == "lisp" and config.role in ("itr", "xtr")
    if not (decap or encap):
        return None
    return Plan(u.uplink_interface or u.uplink_port, decap, encap, local_rlocs(config),
                u.xdp_mode)




def rloc_key(address: IPv4Address | IPv6Address) -> bytes:
    """The lisp_rlocs map key (struct rloc_key): family byte, 3 pad bytes, 16 address bytes."""
    raw = address.packed
    return bytes((address.version, 0, 0, 0)) + raw + bytes(16 - len(raw))


# -- command lines (pure) ---------------------------------------------------------------------


def include_dirs() -> list[str]:
    """clang -I paths for ``asm/types.h`` (Debian keeps it under the multiarch directory)."""
    machine = os.uname().machine
    triplet = {"x86_64": "x86_64-linux-gnu", "aarch64": "aarch64-linux-gnu"}.get(
        machine, f"{machine}-linux-gnu")
    return [f"/usr/include/{triplet}"]


def compile_command(name: str, out_dir: Path) -> list[str]:
    return ["clang", "-O2", "-g", "-target", "bpf", *(f"-I{d}" for d in include_dirs()),
            "-c", str(SOURCES / f"{name}.c"), "-o", str(out_dir / f"{name}.o")]


def attach_decap_command(interface: str, obj: Path, mode: str = "generic") -> list[str]:
    return ["ip", "link", "set", "dev", interface, XDP_MODES[mode], "obj", str(obj), "sec",
            "xdp"]


def detach_decap_command(interface: str, mode: str = "generic") -> list[str]:
    return ["ip", "link", "set", "dev", interface, XDP_MODES[mode], "off"]


def clsact_command(interface: str, add: bool) -> list[str]:
    return ["tc", "qdisc", "add" if add else "del", "dev", interface, "clsact"]


def attach_encap_command(interface: str, obj: Path) -> list[str]:
    return ["tc", "filter", "add", "dev", interface, "egress", "pref", str(TC_PREF), "handle", "1",
            "bpf", "da", "obj", str(obj), "sec", "tc"]


def detach_encap_command(interface: str) -> list[str]:
    return ["tc", "filter", "del", "dev", interface, "egress", "pref", str(TC_PREF)]


def map_update_command(map_id: int, key: bytes, value: bytes) -> list[str]:
    return ["bpftool", "map", "update", "id", str(map_id), "key", "hex", *(f"{b:02x}" for b in key),
            "value", "hex", *(f"{b:02x}" for b in value)]


# -- bpftool's JSON (pure) --------------------------------------------------------------------


def program_ids(net_show: list, interface: str) -> dict[str, int]:
    """``bpftool net show -j`` -> {"decap": XDP program id, "encap": our tc egress program id}."""
    found = {}
    for section in net_show:
        for entry in section.get("xdp", ()):
            if entry.get("devname") == interface and entry.get("mode") in BPFTOOL_XDP_MODES:
                found["decap"] = int(entry["id"])
        for entry in section.get("tc", ()):
            if (entry.get("devname") == interface and entry.get("kind") == "clsact/egress"
                    and str(entry.get("name", "")).startswith(ENCAP)):
                found["encap"] = int(entry["id"])
    return found


def map_value_int(raw: list) -> int:
    """A little-endian map value as bpftool lists it (``["0x2a", "0x00", ...]``)."""
    return int.from_bytes(bytes(int(b, 16) for b in raw), "little")


def read_counters(dump: list, names: tuple[str, ...]) -> dict[str, int]:
    """``bpftool map dump -j`` of an array of u64 counters -> {name: value}."""
    out = dict.fromkeys(names, 0)
    for entry in dump:
        if "formatted" in entry:
            index, value = int(entry["formatted"]["key"]), int(entry["formatted"]["value"])
        else:
            index, value = map_value_int(entry["key"]), map_value_int(entry["value"])
        if 0 <= index < len(names):
            out[names[index]] = value
    return out


def mapstat_values(decap: dict[str, int] | None, encap: dict[str, int] | None) -> dict[str, int]:
    """The mapstat fields (lisp_app.control.mapstat) for the programs' counters."""
    values = {}
    if decap is not None:
        values["classic_received"] = decap["rewritten"]
        values["classic_dropped"] = decap["dropped"]
    if encap is not None:
        values["classic_sent"] = encap["rewritten"]
    return values


def attach_error(plan: Plan, what: str, reason: str) -> ClassicError:
    hint = GPE_ONLY_HINT if what == "decap" else "set underlay.encapsulation: gpe"
    modes = " or ".join(plan.xdp_modes())
    program = (f"the classic-LISP decapsulation program (XDP, {modes} mode)" if what == "decap"
               else "the RFC 9300 encapsulation program (tc egress)")
    return ClassicError(f"cannot attach {program} to interface {plan.interface}: {reason}; "
                        f"{hint}")


# -- running them -----------------------------------------------------------------------------


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30)


def _has_interface(name: str) -> bool:
    return Path(f"/sys/class/net/{name}").exists()


def _why(proc: subprocess.CompletedProcess) -> str:
    text = (proc.stderr or proc.stdout or "").strip().splitlines()
    return " / ".join(text[-3:]) or f"exit status {proc.returncode}"


class ClassicPath:
    """Attaches, reads and detaches the programs of one :class:`Plan`."""

    def __init__(self, plan: Plan, run=_run, which=shutil.which, has_interface=_has_interface):
        self.plan = plan
        self.run = run
        self.which = which
        self.has_interface = has_interface
        self.own_clsact = False
        self.maps: dict[str, int] = {}  # map name -> id, found after attaching
        self.xdp_mode: str | None = None  # the mode the decapsulation program runs in

    @classmethod
    def for_config(cls, config: Config) -> "ClassicPath | None":
        plan = plan_for(config)
        return cls(plan) if plan else None

    def attach(self) -> None:
        """Compile and attach; raise :class:`ClassicError` naming the interface and the reason."""
        p = self.plan
        what = "decap" if p.decap else "encap"
        for tool in ("clang", "ip", "tc", "bpftool"):
            if self.which(tool) is None:
                raise attach_error(p, what, f"{tool} is not installed (needs {PACKAGES})")
        if not self.has_interface(p.interface):
            raise attach_error(p, what, "no such interface in this network namespace (run the "
                               "controller where the uplink is, or attach there with `python "
                               "-m lisp_app.classic attach --config ...`)")
        self.detach(quiet=True)  # leftovers of a controller that was killed
        with tempfile.TemporaryDirectory(prefix="lisp_app-bpf-") as tmp:
            out = Path(tmp)
            for name, wanted in ((DECAP, p.decap), (ENCAP, p.encap)):
                if not wanted:
                    continue
                proc = self.run(compile_command(name, out))
                if proc.returncode:
                    raise attach_error(p, "decap" if name == DECAP else "encap",
                                       f"clang failed on {name}.c: {_why(proc)}")
            if p.decap:
                failures = []
                for mode in p.xdp_modes():
                    proc = self.run(attach_decap_command(p.interface, out / f"{DECAP}.o", mode))
                    if proc.returncode == 0:
                        self.xdp_mode = mode
                        break
                    failures.append(f"{mode}: {_why(proc)}")
                if self.xdp_mode is None:
                    raise attach_error(p, "decap", "; ".join(failures))
            if p.encap:
                shown = self.run(["tc", "qdisc", "show", "dev", p.interface])
                if "clsact" not in shown.stdout:
                    proc = self.run(clsact_command(p.interface, add=True))
                    if proc.returncode:
                        self.detach(quiet=True)
                        raise attach_error(p, "encap", _why(proc))
                    self.own_clsact = True
                proc = self.run(attach_encap_command(p.interface, out / f"{ENCAP}.o"))
                if proc.returncode:
                    self.detach(quiet=True)
                    raise attach_error(p, "encap", _why(proc))
        try:
            self.find_maps()
            if p.decap:
                for rloc in p.rlocs:
                    proc = self.run(map_update_command(self.maps["lisp_rlocs"], rloc_key(rloc),
                                                       b"\x01"))
                    if proc.returncode:
                        raise ClassicError(f"bpftool map update: {_why(proc)}")
        except (ClassicError, KeyError, ValueError) as exc:
            self.detach(quiet=True)
            raise attach_error(p, what, f"attached, but its maps cannot be set up: {exc}") \
                from None
        LOG.info("%s", self.summary())

    def summary(self) -> str:
        """What is attached where, in a line: ``classic LISP on x1-up: ...``."""
        p = self.plan
        return f"classic LISP on {p.interface}: " + ", ".join(
            s for s, on in ((f"decapsulation (XDP, {self.xdp_mode} mode)", p.decap),
                            ("RFC 9300 encapsulation (tc egress)", p.encap)) if on)

    def _json(self, cmd: list[str]):
        proc = self.run(cmd)
        if proc.returncode:
            raise ClassicError(f"{' '.join(cmd)}: {_why(proc)}")
        return json.loads(proc.stdout or "null")

    def find_maps(self) -> dict[str, int]:
        """Our programs' map ids by name (lisp_rlocs, lisp_dstats, lisp_estats)."""
        ids = program_ids(self._json(["bpftool", "net", "show", "dev", self.plan.interface,
                                      "-j"]), self.plan.interface)
        maps = {}
        for what in ("decap", "encap"):
            if not getattr(self.plan, what):
                continue
            if what not in ids:
                raise ClassicError(f"the {what} program is not attached")
            prog = self._json(["bpftool", "prog", "show", "id", str(ids[what]), "-j"])
            for map_id in prog.get("map_ids", ()):
                info = self._json(["bpftool", "map", "show", "id", str(map_id), "-j"])
                maps[info["name"]] = int(map_id)
        self.maps = maps
        return maps

    def counters(self) -> dict[str, int]:
        """The mapstat fields from the programs' counters (finding the maps again if the
        programs were replaced)."""
        try:
            return self._counters()
        except (ClassicError, KeyError, ValueError):
            self.find_maps()
            return self._counters()

    def _counters(self) -> dict[str, int]:
        decap = encap = None
        if self.plan.decap:
            decap = read_counters(self._json(["bpftool", "map", "dump", "id",
                                              str(self.maps["lisp_dstats"]), "-j"]),
                                  DECAP_COUNTERS)
        if self.plan.encap:
            encap = read_counters(self._json(["bpftool", "map", "dump", "id",
                                              str(self.maps["lisp_estats"]), "-j"]),
                                  ENCAP_COUNTERS)
        return mapstat_values(decap, encap)

    def raw_counters(self) -> dict[str, dict[str, int]]:
        """Every counter of both programs (``python -m lisp_app.classic show``)."""
        if not self.maps:
            self.find_maps()
        out = {}
        for what, name, names in (("decap", "lisp_dstats", DECAP_COUNTERS),
                                  ("encap", "lisp_estats", ENCAP_COUNTERS)):
            if getattr(self.plan, what) and name in self.maps:
                out[what] = read_counters(self._json(["bpftool", "map", "dump", "id",
                                                      str(self.maps[name]), "-j"]), names)
        return out

    def detach(self, quiet: bool = False) -> None:
        """Remove what :meth:`attach` put on the interface (errors only logged)."""
        p = self.plan
        cmds = []
        if p.decap:  # whichever mode it was attached in (a killed controller's, too)
            cmds += [detach_decap_command(p.interface, mode) for mode in p.xdp_modes()]
        if p.encap:
            cmds.append(detach_encap_command(p.interface))
            if self.own_clsact:
                cmds.append(clsact_command(p.interface, add=False))
        for cmd in cmds:
            try:
                proc = self.run(cmd)
            except (OSError, subprocess.SubprocessError) as exc:
                if not quiet:
                    LOG.warning("%s: %s", " ".join(cmd), exc)
                continue
            if proc.returncode and not quiet:
                LOG.warning("%s: %s", " ".join(cmd), _why(proc))
        self.own_clsact = False
        self.maps = {}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="attach, show or detach lisp_app's classic-LISP programs on a site's uplink")
    parser.add_argument("action", choices=("attach", "detach", "show"))
    parser.add_argument("--config", required=True, help="the site configuration (YAML)")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"lisp_app: {exc}", file=sys.stderr)
        return 2
    plan = plan_for(config)
    if plan is None:
        print("lisp_app: this site's config needs no classic-LISP program (LISP-GPE only)")
        return 0
    path = ClassicPath(plan)
    try:
        if args.action == "attach":
            path.attach()
            print(f"lisp_app: {path.summary()}")
        elif args.action == "detach":
            path.detach()
        else:
            print(json.dumps(path.raw_counters(), indent=2))
    except ClassicError as exc:
        print(f"lisp_app: {exc}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
