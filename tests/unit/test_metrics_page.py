"""The Prometheus page (lisp_app.api.metrics through the REST API), read back with
prometheus_client's own parser: HELP on every metric, the right types, counters ending _total,
units in names, the build info, the data-plane counters' names and age, the content type."""

from __future__ import annotations

import io
from types import SimpleNamespace

from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from lisp_app import __version__
from lisp_app.api.metrics import counter_help
from lisp_app.api.server import Api
from lisp_app.dataplane.pipeline import K_DECAP, K_DROP, K_ENCAP, K_HOST, K_NEGATIVE
from tests.xtrkit import make_xtr, msmr


class App:
    def __init__(self, xtr, alt=None):
        self.xtr, self.alt, self.datapaths = xtr, alt, {"lisp": object()}


def scrape(app, now: float = 0.0) -> tuple[str, str]:
    """(content type, page) of GET /metrics."""
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/metrics", "QUERY_STRING": "",
               "wsgi.input": io.BytesIO(b""), "HTTP_HOST": "127.0.0.1"}
    started = []
    body = b"".join(Api(app, clock=lambda: now)(environ,
                                                lambda s, h: started.append((s, dict(h)))))
    (status, headers), = started
    assert status == "200 OK"
    return headers["Content-Type"], body.decode()


def families(text: str) -> dict:
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_every_metric_has_help_and_the_right_type():
    content_type, text = scrape(App(make_xtr()))
    assert content_type == CONTENT_TYPE_LATEST
    found = families(text)
    for family in found.values():
        assert family.documentation and family.documentation != family.name, family.name
        if family.type == "counter":
            assert all(s.name == family.name + "_total" for s in family.samples), family.name
    lisp = {name: f for name, f in found.items() if name.startswith("lisp_")}
    assert lisp["lisp_misses"].type == "counter"
    assert lisp["lisp_map_cache_entries"].type == "gauge"
    assert lisp["lisp_bridge_connected"].type == "gauge"
    # every counter of mapstat is a counter, and has written HELP (not one made from its name)
    helps = counter_help()
    for name in make_xtr().queries.counters():
        assert name in helps, name
    assert "process_cpu_seconds" in found  # the process's own metrics come along


def test_build_info_says_the_version():
    found = families(scrape(App(make_xtr()))[1])
    (sample,) = found["lisp_build_info"].samples
    assert sample.value == 1 and sample.labels["version"] == __version__
    assert set(sample.labels) == {"version", "python", "os_ken"}


def test_data_plane_counters_are_packets_split_by_why_they_were_dropped():
    xtr = make_xtr()
    counts = xtr.flow_counts
    counts.new_epoch()
    kinds = (K_ENCAP, K_DECAP, K_HOST, K_NEGATIVE, K_DROP)
    counts.ask(dict(enumerate(kinds, 1)), 10.0)
    for xid, packets in zip(range(1, 6), (3, 4, 5, 6, 7)):
        counts.answered(xid, packets)  # the baseline: counting starts here
    counts.ask(dict(enumerate(kinds, 11)), 20.0)
    for xid, packets in zip(range(11, 16), (6, 8, 10, 12, 14)):
        counts.answered(xid, packets)
    xtr.stats.too_big_dropped = 1
    found = families(scrape(App(xtr), now=22.5)[1])
    values = {name: f.samples[0].value for name, f in found.items() if f.samples}
    assert (values["lisp_packets_sent"], values["lisp_packets_received"],
            values["lisp_packets_delivered"], values["lisp_packets_dropped_negative"],
            values["lisp_packets_dropped_policy"], values["lisp_too_big_dropped"]) == \
        (3, 4, 5, 6, 7, 1)
    assert "negative map-cache" in found["lisp_packets_dropped_negative"].documentation
    assert "multicast" in found["lisp_packets_dropped_policy"].documentation
    assert "lisp_dropped" not in found  # the old sum would count every drop twice
    assert found["lisp_dataplane_counts_age_seconds"].type == "gauge"
    assert values["lisp_dataplane_counts_age_seconds"] == 2.5


def test_counts_never_read_have_no_age_metric():
    found = families(scrape(App(make_xtr()))[1])
    assert "lisp_dataplane_counts_age_seconds" not in found
    assert found["lisp_packets_sent"].samples[0].value == 0


def test_servers_and_the_alt_have_help_too():
    node, _alt = msmr()
    node.ms.stats.registers_accepted = 2
    view = {"neighbors": [{"address": "100.64.254.172", "state": "established"}],
            "routes": 2}
    found = families(scrape(App(node, alt=SimpleNamespace(
        view=lambda routes=True: view if not routes else None)))[1])
    assert found["lisp_ms_registers_accepted"].samples[0].value == 2
    assert found["lisp_mr_forwarded"].type == "counter"
    helps = counter_help()
    for name in node.queries.counters():  # written HELP for every server counter too
        assert name in helps, name
    (neighbor,) = found["lisp_alt_neighbor_established"].samples
    assert neighbor.labels == {"neighbor": "100.64.254.172"} and neighbor.value == 1
    assert found["lisp_alt_routes"].samples[0].value == 2
