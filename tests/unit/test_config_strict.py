"""Configs that cannot be misread (issue 14's findings): a key given twice, keys and passwords
that YAML would turn into other strings, empty ones, NaN and infinity, a file that is not UTF-8,
and cross-field mistakes are refused, each naming the file, the key and the reason; and
``lisp-controller --check`` says the same offline."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lisp_app.config import (ConfigError, exposure_warning, load_config, parse_config,
                             secret_fields)

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = """role: xtr
lisp_bridge: {datapath_id: 1}
underlay: {datapath_id: 2, rloc: 192.0.2.1, next_hop: 192.0.2.254}
eid_prefixes: [{prefix: 10.1.0.0/24}]
map_request_targets: [198.51.100.1]
"""
ALT = """alt:
  local_as: 2147483677
  router_id: 153.16.36.254
  address: 100.64.254.169
  neighbors:
    - {address: 100.64.254.168, remote_as: 2147483671, gre_port: gre0}
"""


def refused(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        parse_config(text, "site.yaml")
    assert str(err.value).startswith("site.yaml: ")
    return err.value


def test_a_key_given_twice_is_refused_with_both_lines():
    err = refused(MINIMAL + "role: etr\n")
    assert "key 'role' is given twice (first on line 1)" in err.reason and "line 6" in err.reason


@pytest.mark.parametrize("written, read_as", [("0123", "83"), ("0x1F", "31"), ("12:30", "750"),
                                              ("1.5", "1.5")])
def test_a_key_yaml_would_read_as_a_number_must_be_quoted(written, read_as):
    text = MINIMAL + f"map_servers: [{{address: 203.0.113.20, key: {written}}}]\n"
    err = refused(text)
    assert err.path == "map_servers[0].key" and "quote it" in err.reason
    quoted = parse_config(MINIMAL + f'map_servers: [{{address: 203.0.113.20, key: "{written}"}}]\n')
    assert quoted.map_servers[0].key == written


def test_empty_keys_and_numeric_passwords_are_refused():
    assert refused(MINIMAL + "map_servers: [{address: 203.0.113.20, key: ''}]\n").reason \
        == "must not be empty"
    text = MINIMAL.replace("map_request_targets: [198.51.100.1]\n", "") + ALT.replace(
        "gre_port: gre0}", "gre_port: gre0, password: 012345}")
    assert refused(text).path == "alt.neighbors[0].password"
    ms = ("role: ms-mr\nmap_server: {sites: [{name: s, key: 0123, eid_prefixes: "
          "[10.0.0.0/8]}]}\n")
    assert refused(ms).path == "map_server.sites[0].key"


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
def test_nan_and_infinity_are_refused(value):
    err = refused(MINIMAL + f"timers: {{request_timeout: {value}}}\n")
    assert err.path == "timers.request_timeout" and "finite" in err.reason


def test_a_file_that_is_not_utf8_is_named(tmp_path):
    path = tmp_path / "site.yaml"
    path.write_bytes(MINIMAL.encode() + b"# caf\xe9\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value) and "not UTF-8" in err.value.reason


@pytest.mark.parametrize("text, where, words", [
    (MINIMAL.replace("datapath_id: 2", "datapath_id: 1"), "underlay.datapath_id",
     "datapath ids of their own"),
    (MINIMAL + "api: {host: localhost.example}\n", "api.host", "not an IP address"),
    (MINIMAL.replace("map_request_targets: [198.51.100.1]\n", "")
     + ALT.replace("address: 100.64.254.168", "address: 100.64.254.169"),
     "alt.neighbors[0].address", "our own ALT address"),
    (MINIMAL.replace("map_request_targets: [198.51.100.1]\n", "") + ALT
     + "    - {address: 100.64.254.170, remote_as: 2147483672, gre_port: gre0}\n",
     "alt.neighbors[1].gre_port", "one GRE port per neighbour"),
])
def test_cross_field_mistakes_are_refused_by_name(text, where, words):
    err = refused(text)
    assert err.path == where and words in err.reason


def test_check_validates_offline_with_the_same_messages(tmp_path):
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(MINIMAL)
    bad.write_text(MINIMAL + "role: etr\n")
    controller = [sys.executable, str(ROOT / "run_controller.py"), "--check", "--config"]
    ok = subprocess.run([*controller, str(good)], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "valid (xtr)" in ok.stdout
    no = subprocess.run([*controller, str(bad)], capture_output=True, text=True, timeout=60)
    assert no.returncode == 2 and f"lisp_app: {bad}: (top level): not valid YAML" in no.stderr


def test_secrets_are_found_by_their_schema_marking():
    config = parse_config(MINIMAL + 'map_servers: [{address: 198.51.100.7, key: "s3cret"}]\n'
                          'api: {token: "t0ken"}\n')
    assert secret_fields(config) == ["api.token", "map_servers[0].key"]
    assert secret_fields(parse_config(MINIMAL)) == []


@pytest.mark.parametrize("mode, warned", [(0o100600, False), (0o100400, False),
                                          (0o100640, True), (0o100644, True), (0o100606, True)])
def test_a_config_with_secrets_readable_by_others_is_warned_about(mode, warned):
    message = exposure_warning("/etc/lisp/site.yaml", mode, ["map_servers[0].key"])
    assert (message is not None) == warned
    if warned:
        assert "chmod 600 /etc/lisp/site.yaml" in message and "map_servers[0].key" in message
    assert exposure_warning("/etc/lisp/site.yaml", 0o100644, []) is None  # nothing to hide


def test_check_warns_about_an_exposed_key_file(tmp_path):
    site = tmp_path / "site.yaml"
    site.write_text(MINIMAL + 'map_servers: [{address: 198.51.100.7, key: "s3cret"}]\n')
    controller = [sys.executable, str(ROOT / "run_controller.py"), "--check", "--config", str(site)]
    site.chmod(0o644)
    loose = subprocess.run(controller, capture_output=True, text=True, timeout=60)
    assert loose.returncode == 0 and "WARNING" in loose.stderr and "chmod 600" in loose.stderr
    site.chmod(0o600)
    tight = subprocess.run(controller, capture_output=True, text=True, timeout=60)
    assert tight.returncode == 0 and "WARNING" not in tight.stderr


def test_secrets_stay_out_of_the_configs_printed_form():
    config = parse_config(MINIMAL + 'map_servers: [{address: 198.51.100.7, key: "s3cret"}]\n'
                          'api: {token: "t0ken"}\n' + ALT.replace(
                              "gre_port: gre0}", 'gre_port: gre0, password: "md5pw"}'))
    printed = repr(config)
    assert "198.51.100.7" in printed  # the rest is there
    for secret in ("s3cret", "t0ken", "md5pw"):
        assert secret not in printed
    assert config.map_servers[0].key == "s3cret" and config.api.token == "t0ken"
