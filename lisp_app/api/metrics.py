"""The Prometheus page (``GET /metrics``), written by prometheus_client.

:class:`NodeCollector` reads the node through its query interface at scrape time (there is no
second copy of the counters to keep in step) and yields metric families: every counter of
mapstat as a ``lisp_<name>_total`` counter (a Map-Server's and a Map-Resolver's as
``lisp_ms_<name>_total`` and ``lisp_mr_<name>_total``), the gauges, the per-locator and ALT
gauges, ``lisp_build_info`` and the process's own metrics (prometheus_client's
ProcessCollector). Each has HELP text. :func:`exposition` renders a private registry with
``generate_latest``; the page's content type is :data:`CONTENT_TYPE`.
"""

from __future__ import annotations

import platform
from importlib import metadata

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.process_collector import ProcessCollector

from .. import __version__
from .cli import MAPSTAT_LABELS

CONTENT_TYPE = CONTENT_TYPE_LATEST

#: mapstat counters whose metric names say what they count (packets); the others are named
#: after the counter itself
METRIC_NAMES = {"sent": "packets_sent", "received": "packets_received",
                "delivered": "packets_delivered",
                "dropped_negative": "packets_dropped_negative",
                "dropped_policy": "packets_dropped_policy",
                "classic_received": "classic_packets_received",
                "classic_dropped": "classic_packets_dropped",
                "classic_sent": "classic_packets_sent"}

#: mapstat keys that are not counters of their own (``dropped``: the sum of the drop counters,
#: kept in GET /mapstat for older scripts; as a metric it would count every drop twice)
NOT_EXPORTED = frozenset({"dropped"})

SERVER_HELP = {
    "ms_registers_accepted": "Map-Registers accepted (authenticated, for a configured prefix)",
    "ms_registers_bad_auth": "Map-Registers refused: bad authentication data",
    "ms_registers_bad_prefix": "Map-Registers refused: a prefix no configured site holds",
    "ms_notifies_sent": "Map-Notifies sent",
    "ms_registrations_expired": "registrations that expired (not refreshed in time)",
    "ms_requests_forwarded": "Map-Requests forwarded to the registered ETR",
    "ms_proxy_replies": "Map-Requests answered by the Map-Server for the ETR (proxy reply)",
    "ms_negative_replies": "negative Map-Replies sent for configured space no ETR registered",
    "ms_requests_unknown": "Map-Requests neither forwarded nor answered (an unknown EID)",
    "mr_ecm_received": "Encapsulated Control Messages (Map-Requests) received from ITRs",
    "mr_forwarded": "Map-Requests forwarded onto the ALT",
    "mr_to_map_server": "Map-Requests handed to the co-located Map-Server (no ALT)",
    "mr_negative_replies": "negative Map-Replies sent",
    "mr_unusable": "Encapsulated Control Messages not usable (not a Map-Request, no EID or no "
                   "ITR-RLOC of a known family)",
}

GAUGE_HELP = {
    "map_cache_entries": "map-cache entries",
    "pending_map_requests": "Map-Requests waiting for an answer",
    "site_hosts": "site hosts whose MAC address the controller knows",
    "locators_up": "probed locators that answer RLOC-probes",
    "locators_down": "probed locators marked down (missed RLOC-probes)",
    "locators_unprobed": "locators not probed yet",
}


def counter_help() -> dict[str, str]:
    """Counter name (as :meth:`NodeQueries.counters` names it) -> HELP text."""
    return {**dict(MAPSTAT_LABELS), **SERVER_HELP}


def _os_ken_version() -> str:
    try:
        return metadata.version("os-ken")
    except metadata.PackageNotFoundError:
        return "unknown"


class NodeCollector:
    """The node's metrics, read at each scrape. ``app``: the os-ken app (or the switchless
    server) as the API sees it; ``clock``: the monotonic clock the node's times are on."""

    def __init__(self, app, clock):
        self.app = app
        self.clock = clock

    def collect(self):
        queries = self.app.xtr.queries
        now = self.clock()
        helps = counter_help()
        for name, value in queries.counters().items():
            if name in NOT_EXPORTED:
                continue
            yield CounterMetricFamily(f"lisp_{METRIC_NAMES.get(name, name)}",
                                      helps.get(name, name.replace("_", " ")), value=value)
        for name, value in queries.gauges().items():
            yield GaugeMetricFamily(f"lisp_{name}", GAUGE_HELP.get(name, name.replace("_", " ")),
                                    value=value)
        age = queries.mapstat(now).get("counts_age_seconds")
        if age is not None:
            yield GaugeMetricFamily(
                "lisp_dataplane_counts_age_seconds",
                "seconds since the switch's flow counters (lisp_packets_*) were last read",
                value=age)
        yield from self._locators(queries.locators(now))
        yield from self._alt()
        connected = GaugeMetricFamily("lisp_bridge_connected",
                                      "1 when the bridge is connected and programmed",
                                      labels=["bridge"])
        for bridge in ("lisp", "underlay"):
            connected.add_metric([bridge], int(bridge in self.app.datapaths))
        yield connected
        info = GaugeMetricFamily("lisp_build_info", "the versions of lisp_app and what it runs "
                                 "on (always 1)", labels=["version", "python", "os_ken"])
        info.add_metric([__version__, platform.python_version(), _os_ken_version()], 1)
        yield info

    @staticmethod
    def _locators(locators):
        if not locators:
            return
        up = GaugeMetricFamily("lisp_locator_up", "1 when RLOC probing finds the locator up",
                               labels=["rloc"])
        rtt = GaugeMetricFamily("lisp_locator_rtt_seconds",
                                "the round trip of the locator's last answered RLOC-probe",
                                labels=["rloc"])
        for loc in locators:
            up.add_metric([loc["rloc"]], int(loc["state"] == "up"))
            if loc["rtt_ms"] is not None:
                rtt.add_metric([loc["rloc"]], loc["rtt_ms"] / 1000)
        yield up
        yield rtt

    def _alt(self):
        alt = getattr(self.app, "alt", None)
        if alt is None:
            return
        view = alt.view(routes=False)  # the routes' number, not 100k dicts on every scrape
        established = GaugeMetricFamily("lisp_alt_neighbor_established",
                                        "1 when the BGP session with the ALT neighbour is "
                                        "established", labels=["neighbor"])
        for n in view["neighbors"]:
            established.add_metric([n["address"]], int(n["state"] == "established"))
        yield established
        yield GaugeMetricFamily("lisp_alt_routes", "routes learned from the ALT",
                                value=view["routes"])


def registry_for(app, clock) -> CollectorRegistry:
    """A private registry with the node's collector and the process's."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(app, clock))
    ProcessCollector(registry=registry)
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    """The page in the Prometheus text format (:data:`CONTENT_TYPE`)."""
    return generate_latest(registry)
