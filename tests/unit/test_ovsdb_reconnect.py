"""The controller shortens the bridges' reconnect backoff (issue 15, item 4): the commands it
runs, what it says, its errors, and the configuration's limits. The integration test
(tests/integration/test_controller_restart.py) runs them against a real OVS."""

from __future__ import annotations

import pytest

from lisp_app.config import ConfigError, parse_config
from lisp_app.ovsdb import OvsdbError, configure, find_bridge, set_reconnect

REMOTE = "unix:/run/ovs/db.sock"
MINIMAL = """role: xtr
lisp_bridge: {datapath_id: 1}
underlay: {datapath_id: 0x2a, rloc: 192.0.2.1, next_hop: 192.0.2.254}
eid_prefixes: [{prefix: 10.1.0.0/24}]
map_request_targets: [198.51.100.1]
"""


def test_bridges_are_found_by_datapath_id_and_set_in_one_transaction():
    assert find_bridge(REMOTE, 0x2A) == [
        "ovs-vsctl", f"--db={REMOTE}", "--timeout=5", "--bare", "--columns=name", "find",
        "Bridge", "datapath_id=000000000000002a"]
    assert set_reconnect(REMOTE, ["br-lisp", "br-u"], 1, 5)[3:] == [
        "set", "controller", "br-lisp", "max_backoff=1000", "inactivity_probe=5000", "--",
        "set", "controller", "br-u", "max_backoff=1000", "inactivity_probe=5000"]


def test_configure_runs_the_commands_and_says_what_it_did():
    ran = []

    def run(argv):
        ran.append(argv)
        return {"0000000000000001": "br-lisp\n", "000000000000002a": "br-u\n"}.get(
            argv[-1].split("=")[-1], "")

    said = configure(REMOTE, [1, 0x2A], 1, 0, run=run)
    assert ran[-1] == set_reconnect(REMOTE, ["br-lisp", "br-u"], 1, 0)
    assert said == (f"bridges br-lisp, br-u: reconnect to the controller within 1 s, "
                    f"inactivity probe off (set in {REMOTE})")


def test_a_missing_bridge_changes_nothing_and_is_named():
    ran = []

    def run(argv):
        ran.append(argv)
        return "br-lisp\n" if argv[-1].endswith("1") else ""

    with pytest.raises(OvsdbError, match="no bridge with datapath id 000000000000002a"):
        configure(REMOTE, [1, 0x2A], 1, 5, run=run)
    assert not any("set" in argv for argv in ran)


def test_the_config_takes_the_remote_and_refuses_probes_ovs_would_not_honour():
    config = parse_config(MINIMAL + f"ovsdb: {{remote: '{REMOTE}', max_backoff: 2}}\n")
    assert (config.ovsdb.remote, config.ovsdb.max_backoff, config.ovsdb.inactivity_probe) == (
        REMOTE, 2, 5)
    assert parse_config(MINIMAL).ovsdb.remote is None  # default: leave OVS alone
    with pytest.raises(ConfigError) as err:
        parse_config(MINIMAL + "ovsdb: {inactivity_probe: 2}\n")
    assert err.value.path == "ovsdb.inactivity_probe" and "at least 5" in err.value.reason
    with pytest.raises(ConfigError) as err:
        parse_config(MINIMAL + "ovsdb: {max_backoff: 0}\n")
    assert err.value.path == "ovsdb.max_backoff"


def test_a_stamp_makes_each_write_a_change():
    """OVS before 3.3 applies max_backoff only when the record changes while connected."""
    argv = set_reconnect(REMOTE, ["br-u"], 1, 5, stamp="1765108800.123")
    assert argv[-1] == "external_ids:lisp-app-connected=1765108800.123"
    assert "external_ids:lisp-app-connected" not in " ".join(set_reconnect(REMOTE, ["br-u"], 1, 5))
