"""A Python client for the REST API: the operations of ``lispctl``, importable.

    from lisp_app.api.client import LispClient
    client = LispClient("http://127.0.0.1:8080")
    client.map_get("[1000]10.2.0.10")["mapping"]["locators"]
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from urllib.parse import quote


class ApiUnavailable(ConnectionError):
    """The controller's API could not be reached."""


class ApiRefused(ValueError):
    """The API answered with an error (the message says why; ``status`` is the HTTP status,
    ``error`` the API's own message)."""

    def __init__(self, message: str, status: int | None = None, error: str | None = None):
        super().__init__(message)
        self.status = status
        self.error = error


class LispClient:
    def __init__(self, url: str = "http://127.0.0.1:8080", timeout: float = 10.0,
                 token: str | None = None):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.token = token  # the API's token (api.token), sent with every request when set

    def _call(self, method: str, path: str, body=None, timeout: float | None = None):
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout or self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read()).get("error", exc.reason)
            except ValueError:
                message = exc.reason
            raise ApiRefused(f"{method} {path}: {exc.code} {message}", exc.code,
                             str(message)) from None
        except ValueError as exc:  # a URL urllib cannot use
            raise ApiUnavailable(f"cannot reach the lisp_app API at {self.url}: {exc}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise ApiUnavailable(f"cannot reach the lisp_app API at {self.url}: "
                                 f"{getattr(exc, 'reason', exc)}") from None
        return raw.decode() if path == "/metrics" else json.loads(raw)

    def map_list(self) -> dict:
        """The local database and the whole map-cache, ``{"cache": [...], "database": [...]}``,
        read page by page (:meth:`map_pages`). A mapping given on two pages (entries were
        removed while paging) is listed once, at its first place, as given last."""
        cache: dict[str, dict] = {}
        database: list = []
        for page in self.map_pages():
            database = page.get("database", database)
            for mapping in page["cache"]:
                cache[mapping["prefix"]] = mapping
        return {"cache": list(cache.values()), "database": database}

    def map_pages(self, limit: int | None = None):
        """``GET /map`` page after page (``limit`` entries each; None: the server's default):
        yields each answer, ``{"cache": [...], "next": ...}``, the first with ``"database"``."""
        after = None
        while True:
            query = [f"limit={limit}"] if limit is not None else []
            if after is not None:
                query.append("after=" + quote(after))
            page = self._call("GET", "/map" + ("?" + "&".join(query) if query else ""))
            yield page
            after = page.get("next")
            if after is None:
                return

    def map_get(self, eid: str) -> dict:
        return self._call("GET", "/map/lookup?eid=" + quote(eid))

    def map_add(self, prefix: str, locators: list[dict]) -> dict:
        return self._call("POST", "/map", {"prefix": prefix, "locators": locators})

    def map_add_many(self, mappings: list[dict]) -> dict:
        """``[{"prefix", "locators"}, ...]``: all checked first, installed in one bundle; the
        answer (added, flows, groups, bundles) comes once the switch holds them. Sent in the
        compact form (each distinct locator set once: :func:`shared_form`) when it can be."""
        body = shared_form(mappings)
        # the switch installs about 100,000 flows a second; allow for big files
        return self._call("POST", "/map", body if body is not None else {"mappings": mappings},
                          timeout=max(self.timeout, 60.0 + len(mappings) / 1000))

    def map_del(self, prefix: str) -> dict:
        return self._call("DELETE", "/map?prefix=" + quote(prefix))

    def mapstat(self, fresh: bool = False) -> dict:
        """The counters; ``fresh``: the controller reads the switch's flow counters first."""
        return self._call("GET", "/mapstat?fresh=1" if fresh else "/mapstat")

    def flows(self) -> dict:
        return self._call("GET", "/flows")

    def database_set(self, prefix: str, locators: list[dict], ttl: int | None = None) -> dict:
        body = {"prefix": prefix, "locators": locators}
        if ttl is not None:
            body["ttl"] = ttl
        return self._call("POST", "/database", body)

    def locators(self) -> dict:
        return self._call("GET", "/locators")

    def bgp(self) -> dict:
        return self._call("GET", "/bgp")

    def bgp_clear(self, neighbor: str) -> dict:
        return self._call("POST", "/bgp/clear", {"neighbor": neighbor})

    def echo(self, bridge: str = "lisp", count: int = 10) -> dict:
        return self._call("GET", f"/echo?bridge={quote(bridge)}&count={count}")

    def metrics(self) -> str:
        return self._call("GET", "/metrics")


_LOCATOR_KEYS = frozenset(("rloc", "priority", "weight"))


def shared_form(mappings) -> dict | None:
    """``POST /map``'s compact bulk form of ``mappings`` (objects ``{"prefix", "locators"}``):
    ``{"prefixes": [...], "locator_sets": [[...], ...], "sets": [...]}``, each distinct
    locator set written once (``sets`` only when there are several). The API reads it as the
    very same mappings, with the same checks and errors; it is a third of the size and cheaper
    to decode and check. None when a mapping is not plainly written (the API is then given the
    objects, and names what is wrong with them)."""
    if not isinstance(mappings, list):
        return None
    prefixes, sets, index, known = [], [], [], {}
    for m in mappings:
        if type(m) is not dict or m.keys() != {"prefix", "locators"} or \
                type(m["prefix"]) is not str or type(m["locators"]) is not list:
            return None
        key = []
        for loc in m["locators"]:
            if type(loc) is not dict or not loc.keys() <= _LOCATOR_KEYS:
                return None
            rloc, priority, weight = loc.get("rloc"), loc.get("priority", 1), \
                loc.get("weight", 100)
            if type(rloc) is not str or type(priority) is not int or type(weight) is not int:
                return None
            key.append((rloc, priority, weight))
        key = tuple(key)
        j = known.get(key)
        if j is None:
            j = known[key] = len(sets)
            sets.append(m["locators"])
        prefixes.append(m["prefix"])
        index.append(j)
    if not sets:
        return None
    body = {"prefixes": prefixes, "locator_sets": sets}
    if len(sets) > 1:
        body["sets"] = index
    return body
