"""API changes (issue 14): a static mapping that could never forward is refused with 400 and
the reason, and changes nothing (POST /map, bulk, lispctl map add and load); every accepted
change is logged with what changed and the client it came from."""

from __future__ import annotations

import logging

import pytest

from lisp_app.api import cli
from lisp_app.api.client import LispClient
from lisp_app.api.server import Api
from tests.apikit import FakeApp, call
from tests.xtrkit import CONFIG

DUAL_STACK = CONFIG.replace("mtu: 1500}", 'mtu: 1500, rloc_ipv6: "2001:db8:ff::1", '
                                         'next_hop_ipv6: "2001:db8:ff::fe"}')
assert DUAL_STACK != CONFIG


def locs(*specs):
    """"rloc" or ("rloc", priority, weight) -> the API's locator objects."""
    return [{"rloc": s} if isinstance(s, str) else
            {"rloc": s[0], "priority": s[1], "weight": s[2]} for s in specs]


def unchanged(app) -> bool:
    return len(app.xtr.cache) == 0 and app.effects == [] and app.bulk == []


@pytest.mark.parametrize("prefix, locators, words", [
    ("[1000]10.9.0.0/16", locs("2001:db8::9"),
     "2001:db8::9 is an IPv6 address and this xTR has no IPv6 RLOC (underlay.rloc_ipv6)"),
    ("[1000]2001:db8:9::/48", locs("2001:db8::9", "2001:db8::a"), "no locator can carry"),
    ("[1000]10.9.0.0/16", locs(("198.51.100.1", 255, 100)),
     "198.51.100.1 has priority 255 (RFC 9300: not to be used for unicast forwarding)"),
    ("[1000]10.9.0.0/16", locs(("198.51.100.1", 255, 0), "2001:db8::9"),
     "no locator can carry traffic: 198.51.100.1 has priority 255 (RFC 9300: not to be used "
     "for unicast forwarding); 2001:db8::9 is an IPv6 address"),
    ("[1000]10.9.0.0/16", locs("192.0.2.1"),
     "locator 192.0.2.1 is this xTR's own RLOC: the traffic would come back"),
    ("[1000]10.9.0.0/16", locs("198.51.100.1", "192.0.2.1"), "192.0.2.1 is this xTR's own"),
    ("[0]10.9.0.0/16", locs("198.51.100.1"),
     "instance-id 0 carries none of this site's traffic (its site ports are in instance-id "
     "1000)"),
    ("[7]10.9.0.0/16", locs("198.51.100.1"), "instance-id 7 carries none"),
])
def test_a_mapping_that_can_never_forward_is_refused_with_the_reason(prefix, locators, words):
    app = FakeApp()
    code, body = call(Api(app), "POST", "/map", {"prefix": prefix, "locators": locators})
    assert code == 400, body
    assert body["error"].startswith("body: ") and "can never forward" in body["error"]
    assert words in body["error"]
    assert unchanged(app)


@pytest.mark.parametrize("config, prefix, locators", [
    (CONFIG, "[1000]10.9.0.0/16", locs("198.51.100.1", "2001:db8::9")),  # one usable: IPv4
    (CONFIG, "[1000]10.9.0.0/16", locs(("198.51.100.1", 1, 0), ("198.51.100.2", 1, 0))),
    (CONFIG, "[1000]10.9.0.0/16", locs(("198.51.100.1", 255, 0), ("198.51.100.2", 2, 100))),
    (CONFIG, "[1000]2001:db8:9::/48", locs("198.51.100.1")),  # IPv6 EIDs over IPv4 RLOCs
    (DUAL_STACK, "[1000]10.9.0.0/16", locs("2001:db8::9")),
])
def test_mappings_that_can_forward_are_accepted(config, prefix, locators):
    app = FakeApp(config)
    code, body = call(Api(app), "POST", "/map", {"prefix": prefix, "locators": locators})
    assert (code, body) == (200, {"added": prefix})
    assert len(app.xtr.cache) == 1


def test_a_bulk_change_with_one_mapping_that_cannot_forward_changes_nothing():
    app = FakeApp()
    mappings = [{"prefix": "[1000]10.20.0.0/16", "locators": locs("198.51.100.1")},
                {"prefix": "[1000]10.21.0.0/16", "locators": locs("198.51.100.2")},
                {"prefix": "[1000]10.22.0.0/16", "locators": locs("2001:db8::9")}]
    code, body = call(Api(app), "POST", "/map", {"mappings": mappings})
    assert code == 400
    assert body["error"].startswith("mappings[2]: [1000]10.22.0.0/16 can never forward: ")
    assert "underlay.rloc_ipv6" in body["error"]
    assert unchanged(app)


def in_process(monkeypatch, api):
    def answer(self, method, path, body=None, timeout=None):
        from lisp_app.api.client import ApiRefused
        code, data = call(api, method, path, body)
        if code != 200:
            raise ApiRefused(f"{method} {path}: {code} {data['error']}")
        return data
    monkeypatch.setattr(LispClient, "_call", answer)


def test_lispctl_map_add_and_load_show_the_reason(monkeypatch, capsys, tmp_path):
    app = FakeApp()
    in_process(monkeypatch, Api(app))
    assert cli.main(["map", "add", "[1000]10.9.0.0/16", "2001:db8::9"]) == 1
    err = capsys.readouterr().err
    assert "400 body: [1000]10.9.0.0/16 can never forward" in err and "rloc_ipv6" in err
    path = tmp_path / "maps.txt"
    path.write_text("[1000]10.9.0.0/16 198.51.100.1\n[1000]10.8.0.0/16 198.51.100.2/255/100\n")
    assert cli.main(["map", "load", str(path)]) == 1
    err = capsys.readouterr().err
    assert "mappings[1]: [1000]10.8.0.0/16 can never forward" in err and "priority 255" in err
    assert unchanged(app)


# -- the log of changes ---------------------------------------------------------------------------

CLIENT = {"REMOTE_ADDR": "192.0.2.77", "REMOTE_PORT": "40001"}


def change_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "lisp_app.api.server" and r.getMessage().startswith("API change")]


def test_every_change_is_logged_with_what_changed_and_the_client(caplog):
    caplog.set_level(logging.INFO, logger="lisp_app.api.server")
    app = FakeApp()
    api = Api(app)
    assert call(api, "POST", "/map", {"prefix": "[1000]10.9.0.0/16", "locators": locs(
        ("198.51.100.1", 1, 70), ("198.51.100.2", 1, 30))}, **CLIENT)[0] == 200
    assert call(api, "DELETE", "/map?prefix=[1000]10.9.0.0/16", **CLIENT)[0] == 200
    bulk = [{"prefix": f"[1000]10.{n}.0.0/16", "locators": locs("198.51.100.1")}
            for n in range(20, 25)]
    assert call(api, "POST", "/map", {"mappings": bulk}, REMOTE_ADDR="::1")[0] == 200
    assert call(api, "POST", "/database", {"prefix": "[1000]10.1.0.0/24", "ttl": 60,
                                           "locators": locs("192.0.2.1")}, **CLIENT)[0] == 200
    assert change_lines(caplog) == [
        "API change from 192.0.2.77 port 40001: POST /map: added static mapping "
        "[1000]10.9.0.0/16 -> 198.51.100.1 priority 1 weight 70, 198.51.100.2 priority 1 "
        "weight 30",
        "API change from 192.0.2.77 port 40001: DELETE /map: removed [1000]10.9.0.0/16",
        "API change from ::1: POST /map: added 5 static mapping(s) (5 flows in 1 bundle(s)): "
        "[1000]10.20.0.0/16 -> 198.51.100.1 priority 1 weight 100; [1000]10.21.0.0/16 -> "
        "198.51.100.1 priority 1 weight 100; [1000]10.22.0.0/16 -> 198.51.100.1 priority 1 "
        "weight 100; and 2 more",
        "API change from 192.0.2.77 port 40001: POST /database: local mapping "
        "[1000]10.1.0.0/24 -> 192.0.2.1 priority 1 weight 100, ttl 60 min (0 SMR(s) queued)",
    ]


def test_refused_changes_and_reads_are_not_logged_as_changes(caplog):
    caplog.set_level(logging.INFO, logger="lisp_app.api.server")
    api = Api(FakeApp())
    assert call(api, "POST", "/map", {"prefix": "[1000]10.9.0.0/16",
                                      "locators": locs("2001:db8::9")}, **CLIENT)[0] == 400
    assert call(api, "GET", "/map", **CLIENT)[0] == 200
    assert change_lines(caplog) == []
