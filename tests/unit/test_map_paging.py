"""GET /map in pages: the map-cache's resumable walk (MapCache.walk), the API's cursor paging,
and the client and lispctl following the pages (issue 14: a whole list of 100,000 entries held
the controller's loop for 4.2 s)."""

from __future__ import annotations

import json
import random
from ipaddress import ip_network

import pytest

from lisp_app.api import cli, server
from lisp_app.api.client import LispClient
from lisp_app.api.server import Api
from lisp_app.mapping.cache import SOURCE_STATIC, CacheEntry, CachePosition, MapCache
from lisp_app.protocol.addresses import EidPrefix
from lisp_app.protocol.records import Locator
from tests.apikit import FakeApp, call
from tests.xtrkit import make_xtr

LOCATORS = (Locator(ip_network("198.51.100.1/32").network_address, 1, 100),)


def entry(text: str) -> CacheEntry:
    return CacheEntry(EidPrefix.parse(text), LOCATORS, source=SOURCE_STATIC)


def mixed_prefixes(n: int) -> list[str]:
    """Prefixes in three tables (two instance-ids, both families) and several lengths."""
    out = []
    for i in range(n):
        kind = i % 4
        if kind == 0:
            out.append(f"[1000]10.{i // 256 % 256}.{i % 256}.0/24")
        elif kind == 1:
            out.append(f"[1000]11.{i % 256}.0.0/16")
        elif kind == 2:
            out.append(f"[7]10.{i // 256 % 256}.{i % 256}.0/24")
        else:
            out.append(f"[1000]2001:db8:{i:x}::/48")
    return list(dict.fromkeys(out))


def walk_all(cache: MapCache, limit: int, between=None) -> list[CacheEntry]:
    seen, after = [], None
    while True:
        got, after = cache.walk(after, limit)
        assert len(got) <= limit
        seen += got
        if after is None:
            return seen
        assert got, "a page that is not the last holds entries"
        after = CachePosition.parse(after.text())  # the cursor goes through its text form
        if between is not None:
            between(cache)


@pytest.mark.parametrize("limit", [1, 3, 7, 50, 10_000])
def test_a_walk_gives_every_entry_once_in_iteration_order(limit):
    cache = MapCache()
    for text in mixed_prefixes(200):
        cache.insert(entry(text))
    assert walk_all(cache, limit) == list(cache) and len(list(cache)) == len(cache)


def test_an_empty_cache_is_one_empty_page():
    assert MapCache().walk(None, 10) == ([], None)


def test_replacing_and_adding_between_pages_skips_nothing():
    cache = MapCache()
    texts = mixed_prefixes(120)
    for text in texts:
        cache.insert(entry(text))
    added = iter(f"[1000]12.{i}.0.0/16" for i in range(1000))

    def churn(c):
        c.insert(entry(random.choice(texts)))  # a replaced entry keeps its place
        c.insert(entry(next(added)))           # a new one goes last in its table

    seen = walk_all(cache, 5, churn)
    prefixes = [str(e.prefix) for e in seen]
    assert set(texts) <= set(prefixes)
    assert len(prefixes) == len(set(prefixes))  # with no removal, nothing comes twice


@pytest.mark.parametrize("seed", range(8))
def test_removals_between_pages_skip_no_entry_that_stays(seed):
    rng = random.Random(seed)
    cache = MapCache()
    texts = mixed_prefixes(300)
    for text in texts:
        cache.insert(entry(text))
    removed = set()

    def churn(c):
        for _ in range(rng.randrange(4)):  # any entry: before, at or after the page boundary
            text = rng.choice(texts)
            if c.remove(EidPrefix.parse(text)) is not None:
                removed.add(text)
        if rng.random() < 0.3 and removed:  # removed, then back (it goes last)
            text = rng.choice(sorted(removed))
            c.insert(entry(text))

    seen = {str(e.prefix) for e in walk_all(cache, rng.choice([1, 4, 9]), churn)}
    stayed = set(texts) - removed
    assert stayed <= seen


def test_the_last_entry_of_a_page_removed_with_others_before_it_skips_nothing():
    cache = MapCache()
    texts = [f"[1000]10.0.{i}.0/24" for i in range(10)]
    for text in texts:
        cache.insert(entry(text))
    first, after = cache.walk(None, 3)
    assert [str(e.prefix) for e in first] == texts[:3]
    for text in texts[:3]:  # the page's last entry and the two before it
        cache.remove(EidPrefix.parse(text))
    rest, after = cache.walk(after, 3)
    assert [str(e.prefix) for e in rest] == texts[3:6]


@pytest.mark.parametrize("text", ["", "1000", "1000.5.24.0.0.0", "1000.4.33.0.0.0",
                                  "1000.4.24.0.0.4294967296", "-1.4", "1000.4.x.0.0.0",
                                  "1000.4.24.0.0", "4294967296.4", "1000.4." + "9" * 50])
def test_a_cursor_that_is_no_position_is_refused(text):
    with pytest.raises(ValueError, match="not a map-cache position"):
        CachePosition.parse(text)


def test_a_cursor_of_no_table_is_refused():
    cache = MapCache()
    cache.insert(entry("[1000]10.0.0.0/24"))
    with pytest.raises(ValueError, match="no such map-cache position"):
        cache.walk(CachePosition.parse("99.4"), 5)


# -- the API -------------------------------------------------------------------------------------

def api_with(n: int) -> Api:
    api = Api(FakeApp())
    mappings = [{"prefix": p, "locators": [{"rloc": "198.51.100.1"}]}
                for p in mixed_prefixes(n) if p.startswith("[1000]")]
    for m in mappings:
        assert call(api, "POST", "/map", m)[0] == 200
    return api


def test_get_map_pages_with_a_cursor_and_the_first_page_holds_the_database():
    api = api_with(40)
    _code, whole = call(api, "GET", "/map?limit=500")
    assert whole["next"] is None and len(whole["cache"]) == len(api.app.xtr.cache) == 30
    pages, after = [], None
    while True:
        code, page = call(api, "GET", "/map?limit=7" + (f"&after={after}" if after else ""))
        assert code == 200
        pages.append(page)
        after = page["next"]
        if after is None:
            break
    assert [len(p["cache"]) for p in pages] == [7, 7, 7, 7, 2]
    assert "database" in pages[0] and all("database" not in p for p in pages[1:])
    assert pages[0]["database"] == whole["database"]
    assert [m for p in pages for m in p["cache"]] == whole["cache"]


def test_get_map_without_a_limit_gives_the_default_page(monkeypatch):
    monkeypatch.setattr(server, "MAP_PAGE", 4)
    api = api_with(40)
    _code, page = call(api, "GET", "/map")
    assert len(page["cache"]) == 4 and page["next"]


@pytest.mark.parametrize("query, words", [
    ("limit=0", "limit must be a whole number 1..500"),
    ("limit=501", "limit must be a whole number 1..500"),
    ("limit=ten", "limit must be a whole number"),
    ("limit=-1", "limit must be a whole number"),
    ("after=nonsense", "after: 'nonsense' is not a map-cache position"),
    ("after=5.4", "after: no such map-cache position"),
])
def test_bad_paging_parameters_are_refused_clearly(query, words):
    code, body = call(api_with(8), "GET", "/map?" + query)
    assert code == 400 and words in body["error"]


def in_process(monkeypatch, api: Api) -> list[str]:
    """LispClient talking to ``api`` in this process; the paths it asked for."""
    asked = []

    def answer(self, method, path, body=None, timeout=None):
        asked.append(path)
        code, data = call(api, method, path, body)
        assert code == 200, data
        return data
    monkeypatch.setattr(LispClient, "_call", answer)
    return asked


def test_the_client_and_lispctl_follow_the_pages(monkeypatch, capsys):
    monkeypatch.setattr(server, "MAP_PAGE", 4)
    api = api_with(40)
    asked = in_process(monkeypatch, api)
    whole = call(api, "GET", "/map?limit=500")[1]
    listed = LispClient().map_list()
    assert listed == {"cache": whole["cache"], "database": whole["database"]}
    assert len(asked) == 8 and asked[0] == "/map" and asked[1].startswith("/map?after=")
    assert cli.main(["map", "list"]) == 0
    out = capsys.readouterr().out
    assert out == "\n".join(cli.format_map_list(listed)) + "\n"
    assert out.count("198.51.100.1") == 30
    assert cli.main(["map", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == listed


def test_the_client_lists_a_mapping_given_twice_once(monkeypatch):
    pages = iter([{"cache": [{"prefix": "a", "v": 1}, {"prefix": "b", "v": 1}], "next": "x",
                   "database": []},
                  {"cache": [{"prefix": "b", "v": 2}, {"prefix": "c", "v": 1}], "next": None}])
    monkeypatch.setattr(LispClient, "_call", lambda self, method, path: next(pages))
    assert LispClient().map_list()["cache"] == [
        {"prefix": "a", "v": 1}, {"prefix": "b", "v": 2}, {"prefix": "c", "v": 1}]


def test_locators_count_their_mappings_and_name_a_few():
    from tests.xtrkit import CONFIG
    app = FakeApp()
    app.xtr = make_xtr(CONFIG.replace("probing: {enabled: false}", "probing: {interval: 1}"))
    api = Api(app)
    for i in range(6):
        assert call(api, "POST", "/map", {"prefix": f"[1000]10.{i}.0.0/16",
                                          "locators": [{"rloc": "198.51.100.1"}]})[0] == 200
    (loc,) = call(api, "GET", "/locators")[1]["locators"]
    assert loc["mapping_count"] == 6 and len(loc["mappings"]) == 4
    assert loc["mappings"] == sorted(loc["mappings"])
    assert set(loc["mappings"]) <= {f"[1000]10.{i}.0.0/16" for i in range(6)}
    (line,) = cli.format_locators({"locators": [loc]})
    assert "6 mapping(s): " in line and line.endswith(" ...")


def test_no_garbage_collection_runs_while_a_page_is_built(monkeypatch):
    """A collection while a page's objects are alive would age them into the oldest generation
    and set off full collections, which scan the whole map-cache (bench/maplist.py)."""
    import gc
    api = api_with(8)
    seen = []
    real = api.app.xtr.queries.mappings

    def spy(*args):
        seen.append(gc.isenabled())
        return real(*args)
    monkeypatch.setattr(api.app.xtr.queries, "mappings", spy)
    assert gc.isenabled()
    assert call(api, "GET", "/map")[0] == 200
    assert seen == [False] and gc.isenabled()
    gc.disable()  # a collector turned off by someone else stays off
    try:
        assert call(api, "GET", "/map")[0] == 200
        assert not gc.isenabled()
    finally:
        gc.enable()
