"""The REST API (JSON over HTTP, localhost by default) and the Prometheus ``/metrics`` page.

    GET    /map?limit=N&after=C  one page of the map-cache (the first page also holds the local
                                 database) and ``next``: the ``after`` of the following page
    GET    /map/lookup?eid=E     longest match for an EID ("[iid]address" or "address")
    (a prefix or EID without "[iid]" has the site's instance_id; "[0]..." names instance-id 0)
    POST   /map                  {"prefix": "[iid]p", "locators": [{"rloc", "priority", "weight"}]}
                                 or {"mappings": [such objects]}: all or none, one OpenFlow bundle;
                                 or the same compactly: {"prefixes": [...], "locator_sets":
                                 [[locators], ...], "sets": [index of each prefix's set]}
    DELETE /map?prefix=P         remove a static (or any cached) mapping
    POST   /database             {"prefix": "[iid]p", "locators": [...], "ttl": minutes}: new
                                 locators for one of the site's EID prefixes (re-registered,
                                 SMRs to the ITRs that asked for it)
    GET    /mapstat[?fresh=1]    counters (fresh=1: read the switch's flow counters first)
    GET    /locators             RLOC probing: each probed locator's state, RTT and mappings
    GET    /flows                our flows and groups as the switch reports them
    GET    /bgp                  the ALT: BGP neighbours, learned routes, announced prefixes
    POST   /bgp/clear            {"neighbor": "a.b.c.d"}: give back a neighbour cut off by
                                 max-prefix (or reset its session)
    GET    /echo?bridge=B&count=N OpenFlow echo round trips to a bridge (seconds)
    GET    /metrics              Prometheus text format (lisp_app.api.metrics)
"""

from __future__ import annotations

import errno
import gc
import hmac
import json
import logging
import time
from ipaddress import ip_address
from itertools import chain
from socket import AF_INET, inet_pton
from urllib.parse import parse_qs

from . import metrics
from ..protocol.addresses import EidPrefix
from ..protocol.records import Locator

LOG = logging.getLogger(__name__)
BULK_SLICE = 256  # mappings of a bulk POST /map put into the map-cache at a time
LOCATOR_KEYS = frozenset(("rloc", "priority", "weight"))
LOCATOR_SETS = 4096  # distinct locator sets kept parsed (bulk loads share a few among many)
#: GET /map's page size when the request gives none, and the largest it takes: at a million
#: entries a page of 1000 took 27 ms of CPU (median), 51 ms at worst; 500 keep well inside
#: 50 ms (docs/benchmarks.rst, "The map-cache API")
MAP_PAGE = 500
MAP_PAGE_MAX = 500


class ApiError(Exception):
    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status = status


class Api:
    """Request handling over an object with ``xtr``, ``execute``, ``flow_rows``, ``group_rows``
    and ``datapaths`` (the os-ken app). It reads the node through ``xtr.queries`` (the node's
    query interface), the ALT through the adapter's ``view()``, and changes the node only through
    its operator commands (``add_static``, ``add_static_many``, ``remove_mapping``)."""

    def __init__(self, app, clock=time.monotonic):
        self.app = app
        self.clock = clock
        self._locator_sets: dict = {}  # parsed locator sets, shared by the mappings that use them
        self._metrics = None  # the Prometheus registry, made at the first scrape

    def __call__(self, environ, start_response):
        # No garbage collection while GET /map or /locators builds its answer: the answer's
        # objects live until it is encoded, so a collection in between would move them to the
        # oldest generation, and every few pages would then set off a full collection, which
        # scans the whole map-cache (150 ms at 50,000 entries, seconds at a million). Freed by
        # reference counting once answered, they never get there. (These handlers do not
        # yield: nothing else runs meanwhile.)
        # A bulk POST /map likewise: it allocates several objects per mapping (the map-cache
        # entry, its flow, its bytes), and every collection meanwhile would scan the growing
        # map-cache again (a quarter of the time of a 100,000-mapping load). (It yields while
        # its flows are sent: what runs in those moments runs without collections too.)
        if (environ.get("REQUEST_METHOD"), environ.get("PATH_INFO")) not in NO_GC:
            return self._answer(environ, start_response)
        enabled = gc.isenabled()
        gc.disable()
        try:
            return self._answer(environ, start_response)
        finally:
            if enabled:
                gc.enable()

    def _answer(self, environ, start_response):
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO", "/").rstrip("/") or "/"
        query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        headers = [("Content-Type", "application/json")]
        try:
            allowed = ROUTES.get(path)
            if allowed is None:
                raise ApiError("404 Not Found", f"no such resource: {path}")
            if method not in allowed:
                headers.append(("Allow", ", ".join(sorted(allowed))))
                raise ApiError("405 Method Not Allowed", f"{path} takes "
                               f"{' or '.join(sorted(allowed))}, not {method}")
            if method in CHANGES:
                self._check_change(environ, method, path)
            if path == "/metrics":
                body = self.metrics()
                start_response("200 OK", [("Content-Type", metrics.CONTENT_TYPE)])
                return [body]
            result = self.route(method, path, query, environ)
            status = "200 OK"
            if method in CHANGES:
                LOG.info("API change from %s: %s %s: %s", _client(environ), method, path,
                         _describe_change(method, path, environ.get(BODY), result))
        except ApiError as exc:
            status, result = exc.status, {"error": str(exc)}
        except Exception:  # the API must answer, whatever went wrong; internals go to the log
            LOG.exception("API request %s %s failed", method, path)
            status, result = "500 Internal Server Error", {
                "error": "internal error: the controller's log says what went wrong"}
        # answers that grow with the map-cache go out compact: the indenting encoder is pure
        # Python, about 20 times slower than the C one, and this runs on the controller's loop
        body = json.dumps(result, indent=None if path in BULKY else 1).encode()
        start_response(status, headers)
        return [body]

    def _check_change(self, environ, method: str, path: str) -> None:
        """A change must come from a client that means it: a Host on the allowed list (a web
        page's request, or a DNS-rebinding one, names another host), no foreign Origin, a JSON
        body (a browser's "simple" cross-site request cannot send one), and the token when the
        config sets one."""
        allowed = self._allowed_hosts()
        host = _host_of(environ.get("HTTP_HOST", ""))
        if host not in allowed:
            raise ApiError("403 Forbidden", f"changes are accepted for Host "
                           f"{' or '.join(sorted(allowed))} only, not {host or 'none'!r}")
        origin = environ.get("HTTP_ORIGIN")
        if origin is not None and _host_of(origin.partition("://")[2]) not in allowed:
            raise ApiError("403 Forbidden", f"changes from a web page ({origin}) are refused")
        token = self._token()
        if token is not None and not hmac.compare_digest(
                environ.get("HTTP_AUTHORIZATION", "").encode(), f"Bearer {token}".encode()):
            raise ApiError("401 Unauthorized", "this API needs its token (Authorization: "
                           "Bearer ...; lispctl --token or LISP_API_TOKEN)")
        if method == "POST":
            kind = environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
            if kind != "application/json":
                raise ApiError("415 Unsupported Media Type", f"{path} takes a JSON body "
                               f"(Content-Type: application/json), not {kind or 'none'!r}")

    def _api_config(self):
        return getattr(getattr(self.app.xtr, "config", None), "api", None)

    def _allowed_hosts(self) -> set[str]:
        config = self._api_config()
        hosts = {"127.0.0.1", "localhost", "::1"}
        if config is not None:
            hosts.add(config.host)
            hosts.update(config.allowed_hosts)
        return hosts

    def _site_instance_id(self) -> int:
        """The instance-id of a prefix or EID written without ``[iid]``: the site's, as in the
        config (``[0]`` names instance-id 0 explicitly)."""
        return getattr(getattr(self.app.xtr, "config", None), "instance_id", 0) or 0

    def _token(self) -> str | None:
        config = self._api_config()
        return config.token if config is not None else None

    def route(self, method: str, path: str, query: dict, environ) -> object:
        if path == "/map" and method == "GET":
            return self.map_list(_page_size(query.get("limit")), query.get("after"))
        if path == "/map/lookup" and method == "GET":
            return self.map_get(_required(query, "eid"))
        if path == "/map" and method == "POST":
            return self.map_add(_read_json(environ))
        if path == "/map" and method == "DELETE":
            return self.map_del(_required(query, "prefix"))
        if path == "/database" and method == "POST":
            return self.database_set(_read_json(environ))
        if path == "/mapstat" and method == "GET":
            return self.mapstat(_flag(query, "fresh"))
        if path == "/locators" and method == "GET":
            return {"locators": self.app.xtr.queries.locators(self.clock())}
        if path == "/flows" and method == "GET":
            return self.flows()
        if path == "/bgp" and method == "GET":
            return self.bgp()
        if path == "/bgp/clear" and method == "POST":
            return self.bgp_clear(_read_json(environ))
        if path == "/echo" and method == "GET":
            bridge = query.get("bridge", "lisp")
            if bridge not in self.app.datapaths:
                raise ApiError("404 Not Found", f"bridge {bridge!r} is not connected")
            try:
                count = min(max(int(query.get("count", 10)), 1), 1000)
            except ValueError:
                raise ApiError("400 Bad Request", "count must be a number") from None
            return {"bridge": bridge, "rtt": self.app.echo_rtt(bridge, count)}
        raise ApiError("404 Not Found", f"no such resource: {method} {path}")  # (ROUTES says)

    def _parse_mapping(self, body, where: str, extra_keys: tuple = ()):
        """``{"prefix": ..., "locators": [{"rloc", "priority", "weight"}, ...]}`` -> (prefix,
        locators), or a 400 naming ``where`` and the problem. Strict: unknown keys, and numbers
        that are not whole (``1.9``, ``true``), are refused."""
        if not isinstance(body, dict) or "prefix" not in body:
            raise ApiError("400 Bad Request", f"{where}: must be an object with 'prefix' and "
                           "'locators'")
        _known(body, ("prefix", "locators", *extra_keys), where)
        try:
            if not isinstance(body["prefix"], str):
                raise ValueError("prefix must be a string such as \"[1000]10.2.0.0/24\"")
            prefix = _parse_prefix(body["prefix"], self._site_instance_id())
            items = body.get("locators", ())
            if not isinstance(items, list):
                raise ValueError("locators must be a list")
            for i, l in enumerate(items):
                if type(l) is not dict or not l.keys() <= LOCATOR_KEYS:
                    _known(l, ("rloc", "priority", "weight"), f"{where}.locators[{i}]")
            raw = tuple((_text(l["rloc"], "rloc"), _whole(l.get("priority", 1), "priority"),
                         _whole(l.get("weight", 100), "weight")) for l in items)
            locators = self._locator_sets.get(raw)
            if locators is None:  # many mappings share their locators: parse each set once
                locators = tuple(Locator(ip_address(r), p, w) for r, p, w in raw)
                for loc in locators:
                    if not (0 <= loc.priority <= 255 and 0 <= loc.weight <= 255):
                        raise ValueError(f"priority and weight of {loc.address} must be 0..255")
                if len(self._locator_sets) >= LOCATOR_SETS:
                    self._locator_sets.clear()
                self._locator_sets[raw] = locators
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ApiError("400 Bad Request", f"{where}: bad mapping: {exc}") from None
        if not locators:
            raise ApiError("400 Bad Request",
                           f"{where}: a static mapping needs at least one locator")
        return prefix, locators

    def _check_forwards(self, prefix, locators, where: str) -> None:
        """A static mapping that could never carry traffic is refused (400, with why)."""
        problem = self.app.xtr.queries.static_problem(prefix, locators)
        if problem is not None:
            raise ApiError("400 Bad Request", f"{where}: {prefix} can never forward: {problem}")

    # -- operations -----------------------------------------------------------------------------

    def map_list(self, limit: int = MAP_PAGE, after: str | None = None) -> dict:
        """One page of the map-cache: a whole list of a million entries would hold the
        controller's loop for seconds."""
        try:
            return self.app.xtr.queries.mappings(self.clock(), limit, after)
        except ValueError as exc:
            raise ApiError("400 Bad Request", f"after: {exc}") from None

    def map_get(self, text: str) -> dict:
        iid, addr = _parse_eid(text, self._site_instance_id())
        mapping = self.app.xtr.queries.lookup(iid, addr, self.clock())
        return {"eid": text, "found": mapping is not None, "mapping": mapping}

    def map_add(self, body: dict) -> dict:
        if isinstance(body, dict) and "mappings" in body:
            return self.map_add_many(body["mappings"])
        if isinstance(body, dict) and "prefixes" in body:
            return self.map_add_many(None, self._parse_shared(body))
        prefix, locators = self._parse_mapping(body, "body")
        self._check_forwards(prefix, locators, "body")
        try:
            effects = self.app.xtr.add_static(prefix, locators, self.clock())
        except ValueError as exc:
            raise ApiError("409 Conflict", str(exc)) from None
        self.app.execute(effects)
        return {"added": str(prefix)}

    def database_set(self, body) -> dict:
        prefix, locators = self._parse_mapping(body, "body", extra_keys=("ttl",))
        ttl = body.get("ttl")
        if ttl is not None and (not isinstance(ttl, int) or isinstance(ttl, bool)
                                or not 1 <= ttl <= 0xFFFFFFFF):
            raise ApiError("400 Bad Request", "body: ttl must be a whole number of minutes, "
                           "1..4294967295")
        try:
            effects = self.app.xtr.set_local_locators(prefix, locators, ttl, self.clock())
        except LookupError as exc:
            raise ApiError("404 Not Found", str(exc)) from None
        except ValueError as exc:
            raise ApiError("409 Conflict", str(exc)) from None
        self.app.execute(effects)
        return {"changed": str(prefix), "smrs_pending": self.app.xtr.queries.smrs_pending()}

    def _parse_shared(self, body: dict) -> list:
        """The compact bulk form ``{"prefixes": [P, ...], "locator_sets": [[locator, ...],
        ...], "sets": [j, ...]}`` (mapping i: prefixes[i] with locator_sets[sets[i]]; without
        ``sets`` there must be one locator set, which every prefix has) -> (prefix, locators)
        pairs. Every check and every error is the one of the same mappings written as objects
        (``mappings[i]: ...``): each locator set is checked with the first mapping that uses
        it."""
        _known(body, ("prefixes", "locator_sets", "sets"), "body")
        prefixes, sets, index = body["prefixes"], body.get("locator_sets"), body.get("sets")
        if not isinstance(prefixes, list):
            raise ApiError("400 Bad Request", "'prefixes' must be a list")
        if not isinstance(sets, list) or not sets:
            raise ApiError("400 Bad Request", "'locator_sets' must be a list of locator lists")
        if index is None and len(sets) != 1:
            raise ApiError("400 Bad Request", "'sets' (the locator set of each prefix) is "
                           "needed when there are several locator sets")
        if index is not None and (not isinstance(index, list) or len(index) != len(prefixes)):
            raise ApiError("400 Bad Request", "'sets' must be a list as long as 'prefixes'")
        site, count = self._site_instance_id(), len(sets)
        done: list = [None] * count  # each set's parsed locators, once checked
        out = []
        for i, text in enumerate(prefixes):
            j = 0 if index is None else index[i]
            if type(j) is not int or not 0 <= j < count:
                raise ApiError("400 Bad Request", f"sets[{i}]: must be the index of one of the "
                               f"{count} locator sets, not {j!r}")
            locators = done[j]
            if locators is None:  # its first mapping: every check of the object form
                out.append(self._parse_mapping({"prefix": text, "locators": sets[j]},
                                               f"mappings[{i}]"))
                done[j] = out[-1][1]
                continue
            try:
                if type(text) is not str:
                    raise ValueError("prefix must be a string such as \"[1000]10.2.0.0/24\"")
                out.append((_parse_prefix(text, site), locators))
            except ValueError as exc:
                raise ApiError("400 Bad Request", f"mappings[{i}]: bad mapping: {exc}") from None
        return out

    def map_add_many(self, items, parsed: list | None = None) -> dict:
        """Many static mappings at once (``items``, objects; or ``parsed``, from the compact
        form): all are checked before any is installed; the switch gets their flows in one
        atomic bundle and the reply comes once it holds them."""
        if parsed is None:
            if not isinstance(items, list):
                raise ApiError("400 Bad Request", "'mappings' must be a list")
            parsed = [self._parse_mapping(item, f"mappings[{i}]")
                      for i, item in enumerate(items)]
        # whether a mapping can forward depends on its instance-id and locators only: asked
        # once per pair (the mappings share their parsed locator sets: see _parse_mapping)
        fine = set()
        for i, (prefix, locators) in enumerate(parsed):
            key = (prefix.instance_id, id(locators))  # (parsed holds the locators meanwhile)
            if key not in fine:
                self._check_forwards(prefix, locators, f"mappings[{i}]")
                fine.add(key)
        # the mappings go into the map-cache BULK_SLICE at a time, as the app takes their
        # effects: the switch gets the first flows of the bundle while later ones are compiled
        xtr, now = self.app.xtr, self.clock()
        try:
            first = xtr.add_static_many(parsed[:BULK_SLICE], now)
        except ValueError as exc:
            raise ApiError("409 Conflict", str(exc)) from None
        effects = chain(first, chain.from_iterable(
            xtr.add_static_many(parsed[i:i + BULK_SLICE], now)
            for i in range(BULK_SLICE, len(parsed), BULK_SLICE)))
        try:
            counts = self.app.execute_bulk(effects)
        except RuntimeError as exc:
            raise ApiError("502 Bad Gateway", str(exc)) from None
        return {"added": len(parsed), **counts}

    def map_del(self, text: str) -> dict:
        try:
            prefix = EidPrefix.parse(text, self._site_instance_id())
        except ValueError as exc:
            raise ApiError("400 Bad Request", str(exc)) from None
        effects = self.app.xtr.remove_mapping(prefix, self.clock())
        if not effects and not self.app.xtr.queries.is_cached(prefix):
            raise ApiError("404 Not Found", f"no cached mapping for {prefix}")
        self.app.execute(effects)
        return {"removed": str(prefix)}

    def mapstat(self, fresh: bool = False) -> dict:
        """The counters; ``fresh``: read the switch's flow counters first (503 if it cannot
        answer). ``counts_read_at`` (Unix time) and ``counts_age_seconds`` say when the
        data-plane counts were read (null: not yet)."""
        if fresh:
            poll = getattr(self.app, "poll_counters", None)
            if poll is None or not poll():
                raise ApiError("503 Service Unavailable", "cannot read the switch's flow "
                               "counters now (the lisp bridge is not connected, or did not "
                               "answer); GET /mapstat without fresh=1 gives the last ones read")
        out = self.app.xtr.queries.mapstat(self.clock())
        age = out.get("counts_age_seconds")
        out["counts_read_at"] = None if age is None else round(time.time() - age, 3)
        out["bridges"] = sorted(self.app.datapaths)
        return out

    def flows(self) -> dict:
        """Our flows and groups per connected bridge (rows: lisp_app.shell.translate's views)."""
        return {bridge: {"flows": self.app.flow_rows(bridge), "groups": self.app.group_rows(bridge)}
                for bridge in sorted(self.app.datapaths)}

    def bgp(self) -> dict:
        return self._alt().view()

    def bgp_clear(self, body) -> dict:
        alt = self._alt()
        _known(body, ("neighbor",), "body")
        text = body.get("neighbor")
        if not isinstance(text, str):
            raise ApiError("400 Bad Request", "body: 'neighbor' must be a string such as "
                           "\"100.64.254.168\"")
        try:
            address = str(ip_address(text.strip()))
        except ValueError:
            raise ApiError("400 Bad Request", f"{text!r} is not an IP address") from None
        try:
            return alt.clear(address)
        except KeyError:
            known = ", ".join(n["address"] for n in alt.view()["neighbors"]) or "none"
            raise ApiError("404 Not Found", f"{address} is not an ALT neighbour (neighbours: "
                           f"{known})") from None

    def _alt(self):
        alt = getattr(self.app, "alt", None)
        if alt is None:
            raise ApiError("404 Not Found", "this controller is not on the ALT (no alt: section)")
        return alt

    def metrics(self) -> bytes:
        """The Prometheus page (lisp_app.api.metrics), read from the node now."""
        if self._metrics is None:
            self._metrics = metrics.registry_for(self.app, self.clock)
        return metrics.exposition(self._metrics)


def _required(query: dict, name: str) -> str:
    if name not in query:
        raise ApiError("400 Bad Request", f"missing query parameter {name!r}")
    return query[name]


def _flag(query: dict, name: str) -> bool:
    """A yes/no query parameter: 1, true or yes; 0, false, no or absent."""
    value = query.get(name, "0").strip().lower()
    if value in ("1", "true", "yes"):
        return True
    if value in ("0", "false", "no", ""):
        return False
    raise ApiError("400 Bad Request", f"{name} must be 1 or 0, not {query[name]!r}")


# path -> the methods it takes; POST and DELETE change the node (CHANGES)
ROUTES = {"/map": {"GET", "POST", "DELETE"}, "/map/lookup": {"GET"}, "/database": {"POST"},
          "/mapstat": {"GET"}, "/locators": {"GET"}, "/flows": {"GET"}, "/bgp": {"GET"},
          "/bgp/clear": {"POST"}, "/echo": {"GET"}, "/metrics": {"GET"}}
CHANGES = {"POST", "DELETE"}
BULKY = {"/map", "/locators", "/flows"}  # answers as long as the map-cache (or the flow table)
#: requests that build big answers, or many map-cache entries, without yielding (Api.__call__)
NO_GC = {("GET", "/map"), ("GET", "/locators"), ("POST", "/map")}


def _page_size(text: str | None) -> int:
    if text is None:
        return MAP_PAGE
    if not (text.isdigit() and text.isascii() and len(text) <= 6
            and 1 <= int(text) <= MAP_PAGE_MAX):
        raise ApiError("400 Bad Request", f"limit must be a whole number 1..{MAP_PAGE_MAX}, "
                       f"not {text[:40]!r}")
    return int(text)


def _host_of(host_header: str) -> str:
    """The host part of a Host header (or of an Origin's authority): no port, no brackets."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _known(obj, keys: tuple, where: str) -> None:
    if not isinstance(obj, dict):
        raise ApiError("400 Bad Request", f"{where}: must be an object")
    if obj.keys() <= _key_set(keys):  # (the common case, without building sets)
        return
    unknown = sorted(set(obj) - set(keys))
    if unknown:
        raise ApiError("400 Bad Request", f"{where}: unknown key(s) {', '.join(unknown)} "
                       f"(known: {', '.join(keys)})")


def _parse_prefix(text: str, default_instance_id: int) -> EidPrefix:
    """:meth:`EidPrefix.parse`, with a fast path for the common ``[iid]a.b.c.d/len`` (bulk
    loads parse 100,000s): anything else, or anything wrong, goes the general way, which
    gives the same prefix or the same error."""
    rest, iid = text, default_instance_id
    if rest[:1] == "[":
        close = rest.find("]")
        digits = rest[1:close]
        if close < 0 or not (digits.isdigit() and digits.isascii()):
            return EidPrefix.parse(text, default_instance_id)
        iid, rest = int(digits), rest[close + 1:]
    address, _slash, length = rest.partition("/")
    if (not length.isdigit() or not length.isascii() or len(length) > 2
            or length[0] == "0" and length != "0" or int(length) > 32):
        return EidPrefix.parse(text, default_instance_id)
    try:
        value = int.from_bytes(inet_pton(AF_INET, address), "big")
    except OSError:
        return EidPrefix.parse(text, default_instance_id)
    plen = int(length)
    if value & (0xFFFFFFFF >> plen) or not 0 <= iid < 1 << 24:
        return EidPrefix.parse(text, default_instance_id)  # host bits set: its error
    return EidPrefix.ipv4(iid, value, plen)


_KEY_SETS: dict = {}


def _key_set(keys: tuple) -> frozenset:
    known = _KEY_SETS.get(keys)
    if known is None:
        known = _KEY_SETS[keys] = frozenset(keys)
    return known


def _whole(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be a whole number, not {value!r}")
    return value


def _text(value, name: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, not {value!r}")
    return value


def _read_json(environ) -> object:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        environ[BODY] = body = json.loads(environ["wsgi.input"].read(length) or b"null")
    except (ValueError, json.JSONDecodeError) as exc:
        raise ApiError("400 Bad Request", f"body is not JSON: {exc}") from None
    return body


BODY = "lisp_app.body"  # the environ key that keeps a request's JSON body for the log
LOGGED_MAPPINGS = 3     # mappings of a bulk change named in the log line


def _client(environ) -> str:
    address, port = environ.get("REMOTE_ADDR") or "unknown", environ.get("REMOTE_PORT")
    return f"{address} port {port}" if port else address


def _mapping_text(prefix: str, locators: list) -> str:
    return f"{prefix} -> " + ", ".join(
        f"{l['rloc']} priority {l.get('priority', 1)} weight {l.get('weight', 100)}"
        for l in locators)


def _describe_change(method: str, path: str, body, result: dict) -> str:
    """What an accepted change did, for the log: the prefixes and their locators (a bulk
    change: how many, and the first few)."""
    try:
        return _describe(method, path, body, result)
    except (KeyError, TypeError, AttributeError):  # the change is made: log it, come what may
        return json.dumps(result)[:200]


def _describe(method: str, path: str, body, result: dict) -> str:
    if method == "DELETE":
        return f"removed {result['removed']}"
    if path == "/database":
        ttl = f", ttl {body['ttl']} min" if body.get("ttl") is not None else ""
        return (f"local mapping {_mapping_text(result['changed'], body['locators'])}{ttl} "
                f"({result['smrs_pending']} SMR(s) queued)")
    if "prefixes" in body:  # the compact form: named as the same mappings written as objects
        prefixes, sets = body["prefixes"], body["locator_sets"]
        index = body.get("sets") or [0] * min(len(prefixes), LOGGED_MAPPINGS)
        items = [{"prefix": p, "locators": sets[j]}
                 for p, j in zip(prefixes[:LOGGED_MAPPINGS], index)]
        total = len(prefixes)
    elif "mappings" in body:
        items = body["mappings"]
        total = len(items)
    else:
        return f"added static mapping {_mapping_text(result['added'], body['locators'])}"
    named = "; ".join(_mapping_text(m["prefix"], m["locators"]) for m in items[:LOGGED_MAPPINGS])
    more = f"; and {total - LOGGED_MAPPINGS} more" if total > LOGGED_MAPPINGS else ""
    return (f"added {result['added']} static mapping(s) ({result['flows']} flows in "
            f"{result['bundles']} bundle(s)): {named}{more}")


def _parse_eid(text: str, default_instance_id: int = 0):
    iid = default_instance_id
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


class ApiAddressInUse(OSError):
    """The API's address cannot be bound; the message names it and says why."""


def listen(host: str, port: int):
    """The API's listening socket, bound exclusively: without SO_REUSEPORT (which eventlet sets
    by default), a second controller on the same port would share it and take half of the
    requests meant for the first. Raises :class:`ApiAddressInUse`."""
    import socket

    import eventlet

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return eventlet.listen((host, port), family=family, reuse_port=False)
    except OSError as exc:
        hint = " (another controller on this port? set api.port, or 0 for no API)" \
            if exc.errno == errno.EADDRINUSE else ""
        raise ApiAddressInUse(exc.errno, f"cannot serve the REST API on {host} port {port}: "
                                         f"{exc.strerror}{hint}") from None


def serve(app, sock) -> None:
    """Serve the API on ``sock`` (from :func:`listen`) until the process ends (run in a hub
    thread)."""
    from eventlet import wsgi

    host, port = sock.getsockname()[:2]
    LOG.info("REST API on http://%s:%d/", host, port)
    wsgi.server(sock, Api(app), log=logging.getLogger("lisp_app.api.access"), log_output=False)
