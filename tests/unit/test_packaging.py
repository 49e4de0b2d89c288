"""How the controller is installed and started: a console script (``lisp-controller``),
``python -m lisp_app`` and ``run_controller.py`` start the same thing and print the version; the
REST API's port belongs to one controller (a second one on it refuses to start and says why);
the license and the example configurations ship with the package."""

from __future__ import annotations

import configparser
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from lisp_app import __version__

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

XTR = """
role: xtr
instance_id: 1000
eid_prefixes: [{{prefix: 10.1.0.0/24}}]
lisp_bridge: {{datapath_id: 1, site_ports: [{{name: site}}]}}
underlay: {{datapath_id: 2, rloc: 192.0.2.1, next_hop: 192.0.2.254, classic_decap: false,
            uplink_port: nosuch0}}
map_request_targets: [198.51.100.1]
api: {{port: {port}}}
"""


def run(argv, **kw):
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60, **kw)


@pytest.mark.parametrize("argv", [
    [str(BIN / "lisp-controller"), "--version"],
    [sys.executable, "-m", "lisp_app", "--version"],
    [sys.executable, str(ROOT / "run_controller.py"), "--version"],
    [str(BIN / "lispctl"), "--version"],
])
def test_every_entry_point_prints_the_version(argv):
    done = run(argv)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"lisp_app {__version__}"
    assert "Warning" not in done.stderr


@pytest.mark.parametrize("command", [
    [str(BIN / "lisp-controller")], [sys.executable, "-m", "lisp_app"],
    [sys.executable, str(ROOT / "run_controller.py")]])
def test_a_taken_api_port_stops_the_controller_before_anything_starts(tmp_path, command):
    with socket.socket() as taken:  # another controller's API, as far as we can tell
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "site.yaml"
        config.write_text(XTR.format(port=port))
        done = run([*command, "--config", str(config)])
    assert done.returncode == 4, done.stderr
    assert f"cannot serve the REST API on 127.0.0.1 port {port}" in done.stderr
    assert "another controller on this port" in done.stderr


def test_a_bad_config_still_exits_2_through_the_console_script(tmp_path):
    config = tmp_path / "site.yaml"
    config.write_text("role: nosuch\n")
    done = run([str(BIN / "lisp-controller"), "--config", str(config)])
    assert done.returncode == 2 and f"{config}: role:" in done.stderr


def test_the_license_and_the_examples_ship():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    assert cfg["metadata"]["license_files"].strip() == "LICENSE"
    assert "Apache License" in (ROOT / "LICENSE").read_text()
    assert "Version 2.0" in (ROOT / "LICENSE").read_text()
    shipped = cfg["options.data_files"]["share/lisp_app/examples"].strip()
    assert sorted(ROOT.glob(shipped)) == sorted((ROOT / "examples").glob("*.yaml"))
    assert "lisp-controller = lisp_app.controller:main" in cfg["options.entry_points"][
        "console_scripts"]


def test_a_switchless_server_on_a_taken_api_port_refuses_too(tmp_path):
    with socket.socket() as taken, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        udp.bind(("127.0.0.1", 0))
        free_udp = udp.getsockname()[1]
        udp.close()
        port = taken.getsockname()[1]
        config = tmp_path / "ms.yaml"
        config.write_text(f"""role: ms-mr
map_server: {{sites: [{{name: s, key: k, eid_prefixes: [10.0.0.0/8]}}]}}
server: {{addresses: [127.0.0.1], port: {free_udp}}}
api: {{port: {port}}}
""")
        done = run([str(BIN / "lisp-controller"), "--config", str(config)])
    assert done.returncode == 1, done.stderr
    assert f"cannot serve the REST API on 127.0.0.1 port {port}" in done.stderr


def test_every_log_line_has_time_level_and_logger(tmp_path):
    """The controller's own log (no switch connects): timestamps, levels and logger names on
    every line, the API's address, and the warning that natively-forward traffic will drop."""
    import re
    import time
    import urllib.request
    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    api, of_port = ports
    config = tmp_path / "site.yaml"
    config.write_text(XTR.format(port=api))
    proc = subprocess.Popen([str(BIN / "lisp-controller"), "--config", str(config),
                             "--ofp-tcp-listen-port", str(of_port), "--ofp-listen-host",
                             "127.0.0.1"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{api}/mapstat", timeout=1)
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read()
                time.sleep(0.2)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    lines = [l for l in out.splitlines() if l.strip()]
    stamped = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|"
                         r"CRITICAL) [\w.]+: ")
    assert lines and all(stamped.match(l) for l in lines), lines
    assert any(f"REST API on http://127.0.0.1:{api}/" in l for l in lines)
    assert any(" WARNING lisp_app.node.assembly: natively-forward mappings will drop" in l
               for l in lines)


def test_switch_errors_are_named():
    from lisp_app.shell.translate import error_name
    assert error_name(4, 6) == "OFPET_BAD_MATCH/OFPBMC_BAD_FIELD"
    assert error_name(5, 6) == "OFPET_FLOW_MOD_FAILED/OFPFMFC_BAD_COMMAND"
    assert error_name(99, 1) == "type 99 code 1"
