"""The REST API and lispctl, over a real Xtr (no switch: effects are collected, not sent)."""

from __future__ import annotations

import io
import json
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from lisp_app.api import cli
from lisp_app.api.server import Api
from lisp_app.dataplane.effects import FlowChange
from tests.apikit import FakeApp, call
from tests.xtrkit import make_xtr


@pytest.fixture
def api():
    return Api(FakeApp())


def test_add_lookup_list_and_delete_a_static_mapping(api):
    code, body = call(api, "POST", "/map", {"prefix": "[1000]10.9.0.0/16", "locators": [
        {"rloc": "198.51.100.1", "priority": 1, "weight": 70},
        {"rloc": "198.51.100.2", "priority": 1, "weight": 30}]})
    assert (code, body) == (200, {"added": "[1000]10.9.0.0/16"})
    changes = [e for e in api.app.effects if isinstance(e, FlowChange)]
    assert changes and changes[0].groups  # two locators: a select group went to the switch
    code, body = call(api, "GET", "/map/lookup?eid=[1000]10.9.1.1")
    assert code == 200 and body["found"]
    assert [l["weight"] for l in body["mapping"]["locators"]] == [70, 30]
    assert body["mapping"]["expires_in"] is None and body["mapping"]["source"] == "static"
    code, body = call(api, "GET", "/map")
    assert [m["prefix"] for m in body["cache"]] == ["[1000]10.9.0.0/16"]
    assert {m["prefix"] for m in body["database"]} == {"[1000]10.1.0.0/24",
                                                       "[1000]2001:db8:1::/48"}
    assert call(api, "DELETE", "/map?prefix=[1000]10.9.0.0/16")[0] == 200
    assert call(api, "GET", "/map/lookup?eid=[1000]10.9.1.1")[1]["found"] is False


def test_local_eids_are_found_in_the_database(api):
    code, body = call(api, "GET", "/map/lookup?eid=[1000]10.1.0.7")
    assert body["found"] and body["mapping"]["source"] == "local"


@pytest.mark.parametrize("method, path, body, status, message", [
    ("POST", "/map", {"prefix": "10.9.0.1/16", "locators": [{"rloc": "192.0.2.9"}]}, 400,
     "host bits"),
    ("POST", "/map", {"prefix": "10.9.0.0/16", "locators": []}, 400, "at least one locator"),
    ("POST", "/map", {"prefix": "10.9.0.0/16", "locators": [{"rloc": "x"}]}, 400, "bad mapping"),
    ("POST", "/map", {"prefix": "10.9.0.0/16", "locators": [{"rloc": "192.0.2.9",
                                                             "priority": 300}]}, 400, "0..255"),
    ("POST", "/map", ["not", "an", "object"], 400, "must be an object"),
    ("DELETE", "/map?prefix=[1000]10.77.0.0/16", None, 404, "no cached mapping"),
    ("GET", "/map/lookup", None, 400, "missing query parameter"),
    ("GET", "/map/lookup?eid=nonsense", None, 400, "not an IP address"),
    ("GET", "/nowhere", None, 404, "no such resource"),
    ("GET", "/echo?bridge=lisp", None, 404, "not connected"),
])
def test_bad_requests_get_clear_errors_and_change_nothing(api, method, path, body, status,
                                                          message):
    code, answer = call(api, method, path, body)
    assert code == status and message in answer["error"]
    assert len(api.app.xtr.cache) == 0 and api.app.effects == []


def samples(text: str) -> dict:
    """(sample name, sorted labels) -> value, from a Prometheus page."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_are_prometheus_text(api):
    api.app.xtr.stats.misses = 3
    code, text = call(api, "GET", "/metrics")
    assert code == 200
    values = samples(text)
    assert values[("lisp_misses_total", ())] == 3
    assert values[("lisp_map_cache_entries", ())] == 0
    assert values[("lisp_bridge_connected", (("bridge", "lisp"),))] == 0


def test_mapstat_fresh_reads_the_switch_first_and_says_how_old_the_counts_are():
    from lisp_app.dataplane.pipeline import K_ENCAP
    from lisp_app.control.counting import COUNTED
    app = FakeApp()
    now = [100.0]
    api = Api(app, clock=lambda: now[0])
    code, body = call(api, "GET", "/mapstat")
    assert code == 200 and body["counts_age_seconds"] is None and body["counts_read_at"] is None
    assert "not read from the switch yet" in "\n".join(cli.format_mapstat(body))
    code, body = call(api, "GET", "/mapstat?fresh=1")  # no switch to ask
    assert code == 503 and "not connected" in body["error"]
    polls = []

    def poll_counters():  # the shell's poll: ask every counted kind, the switch answers
        counts = app.xtr.flow_counts
        if not polls:
            counts.new_epoch()
        requests = {len(polls) * 10 + n: kind for n, kind in enumerate(COUNTED)}
        counts.ask(requests, now[0])
        for xid, kind in requests.items():
            counts.answered(xid, 3 * len(polls) if kind == K_ENCAP else 0)
        polls.append(now[0])
        return True

    app.poll_counters = poll_counters
    call(api, "GET", "/mapstat?fresh=1")  # the baseline
    now[0] = 130.0
    code, body = call(api, "GET", "/mapstat?fresh=1")
    assert code == 200 and polls == [100.0, 130.0]
    assert body["counters"]["sent"] == 3 and body["counts_age_seconds"] == 0.0
    assert abs(body["counts_read_at"] - time.time()) < 5
    now[0] = 137.5
    code, body = call(api, "GET", "/mapstat")  # not fresh: the last counts, 7.5 s old
    assert len(polls) == 2 and body["counts_age_seconds"] == 7.5
    assert "data-plane counts read 7.5 s ago" in "\n".join(cli.format_mapstat(body))
    code, body = call(api, "GET", "/mapstat?fresh=maybe")
    assert code == 400 and "fresh must be 1 or 0" in body["error"] and len(polls) == 2
    app.poll_counters = lambda: False  # the switch did not answer in time
    code, body = call(api, "GET", "/mapstat?fresh=1")
    assert code == 503 and "did not answer" in body["error"]


def test_lispctl_mapstat_fresh_asks_for_fresh_counts(monkeypatch, capsys):
    asked = []
    monkeypatch.setattr(cli.LispClient, "_call",
                        lambda self, method, path, body=None, timeout=None: asked.append(path)
                        or {"counters": {}, "cache_entries": 0, "pending_requests": 0,
                            "counts_age_seconds": 0.01})
    assert cli.main(["mapstat", "--fresh"]) == 0 and cli.main(["mapstat"]) == 0
    assert asked == ["/mapstat?fresh=1", "/mapstat"]
    assert "data-plane counts read 0.0 s ago" in capsys.readouterr().out


def test_mapstat_and_its_human_form(api):
    api.app.xtr.stats.requests_sent = 4
    code, body = call(api, "GET", "/mapstat")
    assert body["counters"]["requests_sent"] == 4
    text = "\n".join(cli.format_mapstat(body))
    assert "\t4 Map-Requests sent" in text
    assert set(body["counters"]) == {key for key, _label in cli.MAPSTAT_LABELS}


def test_lispctl_human_output_for_a_mapping(api):
    call(api, "POST", "/map", {"prefix": "[1000]10.9.0.0/16",
                               "locators": [{"rloc": "198.51.100.1"}]})
    _code, body = call(api, "GET", "/map/lookup?eid=[1000]10.9.0.1")
    lines = cli.format_mapping(body["mapping"])
    assert lines[0].startswith("10.9.0.0/16 [iid 1000]  static")
    assert "RLOC 1: 198.51.100.1" in lines[1] and "priority   1" in lines[1]


def test_lispctl_reports_an_unreachable_api(capsys):
    assert cli.main(["--api", "http://127.0.0.1:9", "mapstat"]) == 1
    assert "cannot reach the lisp_app API" in capsys.readouterr().err


def test_lispctl_parses_locators():
    assert cli.parse_locator("192.0.2.1/2/30") == {"rloc": "192.0.2.1", "priority": 2,
                                                   "weight": 30}
    with pytest.raises(Exception, match="numbers"):
        cli.parse_locator("192.0.2.1/x")


def test_bulk_add_installs_every_mapping_in_one_batch():
    api = Api(FakeApp())
    mappings = [{"prefix": f"[1000]10.{n}.0.0/16", "locators": [{"rloc": "198.51.100.1"}]}
                for n in range(20, 25)]
    code, body = call(api, "POST", "/map", {"mappings": mappings})
    assert code == 200 and body == {"added": 5, "flows": 5, "groups": 0, "bundles": 1}
    assert len(api.app.bulk) == 1 and not api.app.effects
    listed = {m["prefix"] for m in call(api, "GET", "/map")[1]["cache"]}
    assert listed == {m["prefix"] for m in mappings}


@pytest.mark.parametrize("bad, message", [
    ({"prefix": "10.9.0.1/16", "locators": [{"rloc": "192.0.2.9"}]}, "mappings[1]: bad mapping"),
    ({"prefix": "10.9.0.0/16", "locators": []}, "mappings[1]: a static mapping needs"),
    ("10.9.0.0/16", "mappings[1]: must be an object"),
    ({"prefix": "10.9.0.0/16", "locators": [{"rloc": "192.0.2.9", "weight": 256}]},
     "must be 0..255"),
])
def test_a_bad_bulk_item_is_named_and_nothing_is_installed(bad, message):
    api = Api(FakeApp())
    good = {"prefix": "[1000]10.20.0.0/16", "locators": [{"rloc": "198.51.100.1"}]}
    code, body = call(api, "POST", "/map", {"mappings": [good, bad]})
    assert code == 400 and message in body["error"]
    assert not api.app.bulk and call(api, "GET", "/map")[1]["cache"] == []


def test_bulk_add_needs_a_list():
    code, body = call(Api(FakeApp()), "POST", "/map", {"mappings": {"prefix": "10.0.0.0/8"}})
    assert code == 400 and "must be a list" in body["error"]


def test_mapping_file_lines_become_api_objects(tmp_path):
    path = tmp_path / "maps.txt"
    path.write_text("# static mappings\n[1000]10.9.0.0/16 198.51.100.1/1/70 198.51.100.2/1/30\n"
                    "\n10.8.0.0/24 198.51.100.3   # one locator\n")
    assert cli.read_mapping_file(str(path)) == [
        {"prefix": "[1000]10.9.0.0/16", "locators": [
            {"rloc": "198.51.100.1", "priority": 1, "weight": 70},
            {"rloc": "198.51.100.2", "priority": 1, "weight": 30}]},
        {"prefix": "10.8.0.0/24", "locators": [{"rloc": "198.51.100.3"}]}]


@pytest.mark.parametrize("text, message", [
    ("10.9.0.0/16 198.51.100.1\n10.8.0.0/16\n", "maps.txt:2: a prefix and at least one locator"),
    ("10.9.0.0/16 198.51.100.1/x\n", "maps.txt:1: '198.51.100.1/x': priority and weight"),
])
def test_a_bad_mapping_file_line_is_named(tmp_path, capsys, text, message):
    path = tmp_path / "maps.txt"
    path.write_text(text)
    assert cli.main(["--api", "http://127.0.0.1:9", "map", "load", str(path)]) == 1
    assert message in capsys.readouterr().err


def test_json_may_come_before_or_after_the_command():
    parser = cli.build_parser()
    for argv in (["--json", "map", "list"], ["map", "list", "--json"], ["mapstat", "--json"],
                 ["--json", "bgp"]):
        assert parser.parse_args(argv).json is True, argv
    assert parser.parse_args(["map", "list"]).json is False


def test_probed_locators_show_their_state_in_the_api_lispctl_and_metrics():
    from lisp_app.protocol import MapReply, decode_control
    from tests.xtrkit import CONFIG
    app = FakeApp()
    app.xtr = make_xtr(CONFIG.replace("probing: {enabled: false}",
                                      "probing: {interval: 1, timeout: 0.5}"))
    now = [0.0]
    api = Api(app, clock=lambda: now[0])
    call(api, "POST", "/map", {"prefix": "[1000]10.9.0.0/16", "locators": [
        {"rloc": "198.51.100.1", "priority": 1}, {"rloc": "198.51.100.2", "priority": 2}]})
    probes, _changes = app.xtr.prober.on_timer(0.0)
    (first,) = [p for p in probes if str(p.destination) == "198.51.100.1"]
    app.xtr.prober.on_probe_reply(MapReply(decode_control(first.payload).nonce, (), probe=True),
                                  first.destination, 0.025)
    for t in (0.5, 1.0, 1.5):  # 198.51.100.2 never answers
        app.xtr.prober.on_timer(t)
    now[0] = 3.0
    code, body = call(api, "GET", "/locators")
    assert code == 200
    by_rloc = {l["rloc"]: l for l in body["locators"]}
    assert by_rloc["198.51.100.1"]["state"] == "up" and by_rloc["198.51.100.1"]["rtt_ms"] == 25.0
    assert by_rloc["198.51.100.2"]["state"] == "down" and by_rloc["198.51.100.2"]["since"] == 1.5
    assert by_rloc["198.51.100.2"]["mappings"] == ["[1000]10.9.0.0/16"]
    text = "\n".join(cli.format_locators(body))
    assert "198.51.100.2             down for 2s, 3 missed" in text
    _code, body = call(api, "GET", "/map/lookup?eid=[1000]10.9.0.1")
    lines = cli.format_mapping(body["mapping"])
    assert "up for 3s, rtt 25.0 ms" in lines[1] and "down for 2s" in lines[2]
    _code, text = call(api, "GET", "/metrics")
    values = samples(text)
    assert values[("lisp_locators_up", ())] == 1 and values[("lisp_locators_down", ())] == 1
    assert values[("lisp_locators_went_down_total", ())] == 1
    assert values[("lisp_locator_up", (("rloc", "198.51.100.1"),))] == 1
    assert values[("lisp_locator_up", (("rloc", "198.51.100.2"),))] == 0
    assert values[("lisp_locator_rtt_seconds", (("rloc", "198.51.100.1"),))] == 0.025
    assert values[("lisp_probes_sent_total", ())] == app.xtr.stats.probes_sent


def raw_call(api, method, path, body=b"", **environ):
    env = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "",
           "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body),
           "HTTP_HOST": "127.0.0.1:8080", "CONTENT_TYPE": "application/json", **environ}
    seen = {}
    out = b"".join(api(env, lambda s, headers: seen.update(status=s, headers=dict(headers))))
    return int(seen["status"].split()[0]), seen["headers"], json.loads(out)


MAPPING = json.dumps({"prefix": "[1000]10.9.0.0/16",
                      "locators": [{"rloc": "198.51.100.1"}]}).encode()


@pytest.mark.parametrize("environ, status, words", [
    ({"HTTP_HOST": "evil.example"}, 403, "Host"),           # DNS rebinding: the page's own name
    ({"HTTP_ORIGIN": "http://evil.example"}, 403, "web page"),
    ({"CONTENT_TYPE": "text/plain"}, 415, "application/json"),  # a browser's simple request
    ({"CONTENT_TYPE": ""}, 415, "application/json"),
])
def test_changes_from_web_pages_are_refused_and_change_nothing(api, environ, status, words):
    code, _headers, body = raw_call(api, "POST", "/map", MAPPING, **environ)
    assert code == status and words in body["error"]
    assert call(api, "GET", "/map")[1]["cache"] == []


def test_an_allowed_host_with_a_port_and_ipv6_loopback_may_change(api):
    for host in ("localhost:8080", "[::1]:8080", "127.0.0.1"):
        assert raw_call(api, "POST", "/map", MAPPING, HTTP_HOST=host)[0] == 200


def test_a_wrong_method_gets_405_with_allow(api):
    code, headers, body = raw_call(api, "PUT", "/map")
    assert code == 405 and headers["Allow"] == "DELETE, GET, POST"
    assert raw_call(api, "GET", "/nosuch")[0] == 404


@pytest.mark.parametrize("mapping, words", [
    ({"prefix": "[1000]10.9.0.0/16", "locators": [{"rloc": "198.51.100.1"}], "ttl": 5},
     "unknown key(s) ttl"),
    ({"prefix": "[1000]10.9.0.0/16", "locators": [{"rloc": "198.51.100.1", "prio": 1}]},
     "unknown key(s) prio"),
    ({"prefix": "[1000]10.9.0.0/16", "locators": [{"rloc": "198.51.100.1", "priority": 1.9}]},
     "priority must be a whole number"),
    ({"prefix": "[1000]10.9.0.0/16", "locators": [{"rloc": "198.51.100.1", "weight": True}]},
     "weight must be a whole number"),
    ({"prefix": 10, "locators": [{"rloc": "198.51.100.1"}]}, "prefix must be a string"),
])
def test_bodies_are_read_strictly(api, mapping, words):
    code, body = call(api, "POST", "/map", mapping)
    assert code == 400 and words in body["error"]
    assert call(api, "GET", "/map")[1]["cache"] == []


def test_a_token_guards_changes_but_not_reads():
    from tests.xtrkit import CONFIG
    app = FakeApp()
    app.xtr = make_xtr(CONFIG + 'api: {token: "s3cret-token"}\n')
    api = Api(app)
    assert raw_call(api, "POST", "/map", MAPPING)[0] == 401
    assert raw_call(api, "POST", "/map", MAPPING, HTTP_AUTHORIZATION="Bearer nope")[0] == 401
    assert raw_call(api, "POST", "/map", MAPPING,
                    HTTP_AUTHORIZATION="Bearer s3cret-token")[0] == 200
    assert call(api, "GET", "/map")[0] == 200


def test_a_failure_inside_answers_500_without_internals(api, monkeypatch):
    def broken():
        raise RuntimeError("secret internals")
    monkeypatch.setattr(api, "map_list", broken)
    code, body = call(api, "GET", "/map")
    assert code == 500 and "secret" not in body["error"] and "log" in body["error"]


def test_a_learned_locators_l_bit_is_not_shown_as_ours(api):
    """The L bit of a Map-Reply's locator says it is local to the ETR that replied; only the
    local database's locators on this xTR's RLOC are ours."""
    from ipaddress import ip_address as ip

    from lisp_app.mapping.cache import CacheEntry
    from lisp_app.protocol.addresses import EidPrefix
    from lisp_app.protocol.records import Locator
    api.app.xtr.cache.insert(CacheEntry(EidPrefix.parse("[1000]10.2.0.0/24"), (
        Locator(ip("198.51.100.1"), 1, 50, local=True), Locator(ip("198.51.100.2"), 1, 50)),
        expires_at=600.0))
    _code, body = call(api, "GET", "/map")
    (remote,) = body["cache"]
    assert [(l["local"], l["l_bit"]) for l in remote["locators"]] == [(False, True),
                                                                       (False, False)]
    ours = {m["prefix"]: m for m in body["database"]}["[1000]10.1.0.0/24"]["locators"]
    assert [(l["rloc"], l["local"], l["l_bit"]) for l in ours] == [("192.0.2.1", True, True)]
    text = "\n".join(cli.format_map_list(body))
    assert "RLOC 1: 192.0.2.1        priority   1  weight 100  up, this xTR" in text
    assert "198.51.100.1     priority   1  weight  50  up, local to the replying ETR" in text
    assert "198.51.100.2     priority   1  weight  50  up\n" in text + "\n"
    assert "this xTR" not in "\n".join(cli.format_mapping(remote))


def test_a_bare_prefix_or_eid_takes_the_sites_instance_id(api):
    """The site (tests/xtrkit.py's config) has instance_id 1000: a prefix or EID without [iid]
    is in it, as in the config; [0] still names instance-id 0 (which this site's ports do not
    carry, so a mapping there is refused, naming it)."""
    assert api.app.xtr.config.instance_id == 1000
    loc = [{"rloc": "198.51.100.1"}]
    assert call(api, "POST", "/map", {"prefix": "10.9.0.0/16", "locators": loc}) == \
        (200, {"added": "[1000]10.9.0.0/16"})
    code, body = call(api, "POST", "/map", {"prefix": "[0]10.9.0.0/16", "locators": loc})
    assert code == 400 and "instance-id 0 carries none" in body["error"], body
    api.app.execute_bulk = lambda effects: api.app.execute(effects) or {}
    assert call(api, "POST", "/map", {"mappings": [{"prefix": "10.7.0.0/16", "locators": loc}]}
                )[0] == 200
    cached = {m["prefix"] for m in call(api, "GET", "/map")[1]["cache"]}
    assert cached == {"[1000]10.9.0.0/16", "[1000]10.7.0.0/16"}
    code, body = call(api, "GET", "/map/lookup?eid=10.9.1.1")
    assert body["found"] and body["mapping"]["prefix"] == "[1000]10.9.0.0/16"
    assert call(api, "GET", "/map/lookup?eid=[0]10.9.1.1")[1]["found"] is False
    assert call(api, "GET", "/map/lookup?eid=10.1.0.7")[1]["mapping"]["source"] == "local"
    assert call(api, "DELETE", "/map?prefix=[0]10.9.0.0/16")[0] == 404
    assert call(api, "DELETE", "/map?prefix=10.9.0.0/16") == (200, {"removed": "[1000]10.9.0.0/16"})
    assert {m["prefix"] for m in call(api, "GET", "/map")[1]["cache"]} == {"[1000]10.7.0.0/16"}
    code, body = call(api, "POST", "/database", {"prefix": "10.1.0.0/24", "locators": [
        {"rloc": "192.0.2.1", "priority": 2}]})
    assert (code, body["changed"]) == (200, "[1000]10.1.0.0/24")
    code, body = call(api, "POST", "/database", {"prefix": "[0]10.1.0.0/24", "locators": loc})
    assert code == 404, body



@pytest.mark.parametrize("raw", [
    b'{"prefix": "[1000]10.9.0.0/16", "locators": [{"rloc": "198.51.100.1", "priority": 1e400}]}',
    b'{"prefix": "[1000]10.9.0.0/16", "locators": [{"rloc": "198.51.100.1", "weight": NaN}]}',
    b'{"prefix": "[1000]10.9.0.0/16", "locators": [{"rloc": "198.51.100.1"}], "x": 1e400}',
])
def test_huge_and_non_numbers_are_a_400_not_a_500(api, raw):
    """The finding: ``1e400`` was answered with a 500 carrying the exception's text."""
    code, _headers, body = raw_call(api, "POST", "/map", raw)
    assert code == 400, body
    assert call(api, "GET", "/map")[1]["cache"] == []
