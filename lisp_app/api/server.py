"""The REST API (JSON over HTTP, localhost by default) and the Prometheus ``/metrics`` page.

    GET    /map                  map-cache and local database
    GET    /map/lookup?eid=E     longest match for an EID ("[iid]address" or "address")
    POST   /map                  {"prefix": "[iid]p", "locators": [{"rloc", "priority", "weight"}]}
                                 or {"mappings": [such objects]}: all or none, one OpenFlow bundle
    DELETE /map?prefix=P         remove a static (or any cached) mapping
    GET    /mapstat              counters
    GET    /flows                our flows and groups as the switch reports them
    GET    /bgp                  the ALT: BGP neighbours, learned routes, announced prefixes
    GET    /echo?bridge=B&count=N OpenFlow echo round trips to a bridge (seconds)
    GET    /metrics              Prometheus text format
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from ipaddress import ip_address
from urllib.parse import parse_qs

from ..protocol.addresses import EidPrefix
from ..protocol.records import Locator
from .views import entry_view, local_view

LOG = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status = status


class Api:
    """Request handling over an object with ``xtr``, ``execute``, ``flow_rows``, ``group_rows``
    and ``datapaths`` (the os-ken app)."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO", "/").rstrip("/") or "/"
        query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        try:
            if path == "/metrics" and method == "GET":
                body = self.metrics().encode()
                start_response("200 OK", [("Content-Type", "text/plain; version=0.0.4")])
                return [body]
            result = self.route(method, path, query, environ)
            status = "200 OK"
        except ApiError as exc:
            status, result = exc.status, {"error": str(exc)}
        except Exception as exc:  # the API must answer, whatever went wrong
            LOG.exception("API request %s %s failed", method, path)
            status, result = "500 Internal Server Error", {"error": str(exc)}
        body = json.dumps(result, indent=1).encode()
        start_response(status, [("Content-Type", "application/json")])
        return [body]

    def route(self, method: str, path: str, query: dict, environ) -> object:
        if path == "/map" and method == "GET":
            return self.map_list()
        if path == "/map/lookup" and method == "GET":
            return self.map_get(_required(query, "eid"))
        if path == "/map" and method == "POST":
            return self.map_add(_read_json(environ))
        if path == "/map" and method == "DELETE":
            return self.map_del(_required(query, "prefix"))
        if path == "/mapstat" and method == "GET":
            return self.mapstat()
        if path == "/flows" and method == "GET":
            return self.flows()
        if path == "/bgp" and method == "GET":
            return self.bgp()
        if path == "/echo" and method == "GET":
            bridge = query.get("bridge", "lisp")
            if bridge not in self.app.datapaths:
                raise ApiError("404 Not Found", f"bridge {bridge!r} is not connected")
            try:
                count = min(max(int(query.get("count", 10)), 1), 1000)
            except ValueError:
                raise ApiError("400 Bad Request", "count must be a number") from None
            return {"bridge": bridge, "rtt": self.app.echo_rtt(bridge, count)}
        raise ApiError("404 Not Found", f"no such resource: {method} {path}")

    # -- operations -----------------------------------------------------------------------------

    def map_list(self) -> dict:
        now = time.monotonic()
        xtr = self.app.xtr
        return {"cache": [entry_view(e, now) for e in xtr.cache],
                "database": [local_view(m) for m in xtr.database]}

    def map_get(self, text: str) -> dict:
        iid, addr = _parse_eid(text)
        xtr = self.app.xtr
        for mapping in xtr.database:
            if mapping.prefix.instance_id == iid and addr in mapping.prefix.network:
                return {"eid": text, "found": True, "mapping": local_view(mapping)}
        entry = xtr.cache.lookup(iid, addr)
        if entry is None:
            return {"eid": text, "found": False, "mapping": None}
        return {"eid": text, "found": True, "mapping": entry_view(entry, time.monotonic())}

    def map_add(self, body: dict) -> dict:
        if isinstance(body, dict) and "mappings" in body:
            return self.map_add_many(body["mappings"])
        prefix, locators = _parse_mapping(body, "body")
        try:
            effects = self.app.xtr.add_static(prefix, locators, time.monotonic())
        except ValueError as exc:
            raise ApiError("409 Conflict", str(exc)) from None
        self.app.execute(effects)
        return {"added": str(prefix)}

    def map_add_many(self, items) -> dict:
        """Many static mappings at once: all are checked before any is installed; the switch
        gets their flows in one atomic bundle and the reply comes once it holds them."""
        if not isinstance(items, list):
            raise ApiError("400 Bad Request", "'mappings' must be a list")
        parsed = [_parse_mapping(item, f"mappings[{i}]") for i, item in enumerate(items)]
        try:
            effects = self.app.xtr.add_static_many(parsed, time.monotonic())
        except ValueError as exc:
            raise ApiError("409 Conflict", str(exc)) from None
        try:
            counts = self.app.execute_bulk(effects)
        except RuntimeError as exc:
            raise ApiError("502 Bad Gateway", str(exc)) from None
        return {"added": len(parsed), **counts}

    def map_del(self, text: str) -> dict:
        try:
            prefix = EidPrefix.parse(text)
        except ValueError as exc:
            raise ApiError("400 Bad Request", str(exc)) from None
        effects = self.app.xtr.remove_mapping(prefix, time.monotonic())
        if not effects and self.app.xtr.cache.get(prefix) is None:
            raise ApiError("404 Not Found", f"no cached mapping for {prefix}")
        self.app.execute(effects)
        return {"removed": str(prefix)}

    def mapstat(self) -> dict:
        xtr = self.app.xtr
        out = {"counters": xtr.stats.as_dict(), "cache_entries": len(xtr.cache),
               "pending_requests": len(xtr.itr.pending) if xtr.itr else 0,
               "bridges": sorted(self.app.datapaths)}
        if xtr.ms is not None:
            out["map_server"] = asdict(xtr.ms.stats)
            out["registrations"] = [
                {"prefix": str(p), "site": r.site, "etr": str(r.etr), "proxy_reply": r.proxy_reply,
                 "expires_in": round(r.expires_at - time.monotonic(), 1)}
                for p, r in sorted(xtr.ms.registrations.items(), key=lambda i: str(i[0]))]
        if xtr.mr is not None:
            out["map_resolver"] = asdict(xtr.mr.stats)
        return out

    def flows(self) -> dict:
        """Our flows and groups per connected bridge (rows: lisp_app.shell.translate's views)."""
        return {bridge: {"flows": self.app.flow_rows(bridge), "groups": self.app.group_rows(bridge)}
                for bridge in sorted(self.app.datapaths)}

    def bgp(self) -> dict:
        alt = getattr(self.app, "alt", None)
        if alt is None:
            raise ApiError("404 Not Found", "this controller is not on the ALT (no alt: section)")
        state = alt.state
        return {
            "local_as": alt.alt.local_as, "router_id": str(alt.alt.router_id),
            "address": str(alt.alt.address),
            "neighbors": [{"address": n.address, "remote_as": n.remote_as, "state": n.state,
                           "accepted": len(n.accepted), "rejected": n.rejected,
                           "max_prefix": n.max_prefix} for n in state.neighbors.values()],
            "routes": [{"prefix": str(r.prefix), "neighbor": r.neighbor,
                        "next_hop": r.next_hop, "as_path": list(r.as_path)}
                       for r in state.rib.all_routes()],
            "announced": sorted(state.applied), "intended": sorted(state.intended)}

    def metrics(self) -> str:
        xtr = self.app.xtr
        lines = []
        counters = dict(xtr.stats.as_dict())
        for role, engine in (("ms", xtr.ms), ("mr", xtr.mr)):
            if engine is not None:
                counters.update({f"{role}_{k}": v for k, v in asdict(engine.stats).items()})
        for name, value in counters.items():
            metric = f"lisp_{name}_total"
            lines += [f"# TYPE {metric} counter", f"{metric} {value}"]
        gauges = {"lisp_map_cache_entries": len(xtr.cache),
                  "lisp_pending_map_requests": len(xtr.itr.pending) if xtr.itr else 0,
                  "lisp_site_hosts": len(xtr.hosts)}
        for metric, value in gauges.items():
            lines += [f"# TYPE {metric} gauge", f"{metric} {value}"]
        alt = getattr(self.app, "alt", None)
        if alt is not None:
            lines.append("# TYPE lisp_alt_neighbor_established gauge")
            for n in alt.state.neighbors.values():
                lines.append(f'lisp_alt_neighbor_established{{neighbor="{n.address}"}} '
                             f'{int(n.state == "established")}')
            lines += ["# TYPE lisp_alt_routes gauge",
                      f"lisp_alt_routes {len(alt.state.rib.all_routes())}"]
        lines.append("# TYPE lisp_bridge_connected gauge")
        for bridge in ("lisp", "underlay"):
            lines.append(f'lisp_bridge_connected{{bridge="{bridge}"}} '
                         f'{int(bridge in self.app.datapaths)}')
        return "\n".join(lines) + "\n"


def _required(query: dict, name: str) -> str:
    if name not in query:
        raise ApiError("400 Bad Request", f"missing query parameter {name!r}")
    return query[name]


def _read_json(environ) -> object:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        return json.loads(environ["wsgi.input"].read(length) or b"null")
    except (ValueError, json.JSONDecodeError) as exc:
        raise ApiError("400 Bad Request", f"body is not JSON: {exc}") from None


_LOCATORS: dict = {}


def _parse_mapping(body, where: str):
    """``{"prefix": ..., "locators": [{"rloc", "priority", "weight"}, ...]}`` -> (prefix,
    locators), or a 400 naming ``where`` and the problem."""
    if not isinstance(body, dict) or "prefix" not in body:
        raise ApiError("400 Bad Request", f"{where}: must be an object with 'prefix' and "
                       "'locators'")
    try:
        prefix = EidPrefix.parse(str(body["prefix"]))
        raw = tuple((str(l["rloc"]), int(l.get("priority", 1)), int(l.get("weight", 100)))
                    for l in body.get("locators", ()))
        locators = _LOCATORS.get(raw)
        if locators is None:  # many mappings share their locators: parse each set once
            locators = tuple(Locator(ip_address(r), p, w) for r, p, w in raw)
            for loc in locators:
                if not (0 <= loc.priority <= 255 and 0 <= loc.weight <= 255):
                    raise ValueError(f"priority and weight of {loc.address} must be 0..255")
            if len(_LOCATORS) >= 4096:
                _LOCATORS.clear()
            _LOCATORS[raw] = locators
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ApiError("400 Bad Request", f"{where}: bad mapping: {exc}") from None
    if not locators:
        raise ApiError("400 Bad Request", f"{where}: a static mapping needs at least one locator")
    return prefix, locators


def _parse_eid(text: str):
    iid = 0
    raw = text.strip()
    if raw.startswith("["):
        close = raw.find("]")
        if close < 0:
            raise ApiError("400 Bad Request", f"EID {text!r}: '[' without ']'")
        try:
            iid = int(raw[1:close])
        except ValueError:
            raise ApiError("400 Bad Request", f"EID {text!r}: bad instance-id") from None
        raw = raw[close + 1:]
    try:
        return iid, ip_address(raw)
    except ValueError:
        raise ApiError("400 Bad Request", f"{raw!r} is not an IP address") from None


def serve(app, host: str, port: int) -> None:
    """Serve the API until the process ends (run in a hub thread)."""
    import eventlet
    from eventlet import wsgi

    sock = eventlet.listen((host, port))
    LOG.info("REST API on http://%s:%d/", host, port)
    wsgi.server(sock, Api(app), log=logging.getLogger("lisp_app.api.access"), log_output=False)
