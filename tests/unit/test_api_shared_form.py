"""POST /map's compact bulk form (``{"prefixes", "locator_sets", "sets"}``, what
LispClient.map_add_many sends) is the object form written shorter: the same mappings give the
same answer, the same errors (``mappings[i]: ...``) and the same map-cache; its own mistakes are
refused with a 400 that says what is wrong, and nothing changes."""

from __future__ import annotations

import json
import random

import pytest

from lisp_app.api.client import shared_form
from lisp_app.api.server import Api
from tests.apikit import FakeApp, call

RLOCS = ["198.51.100.1", "198.51.100.2", "203.0.113.7", "2001:db8:ff::1"]


def locators(rng: random.Random) -> list:
    out = [{"rloc": rng.choice(RLOCS[:3])}]  # (one the xTR can reach: IPv4)
    for _ in range(rng.randrange(8)):
        loc = {"rloc": rng.choice(RLOCS)}
        if rng.random() < 0.5:
            loc["priority"] = rng.choice([1, 2, 254])
        if rng.random() < 0.5:
            loc["weight"] = rng.choice([0, 30, 70, 100, 255])
        out.append(loc)
    return out


SPOILERS = [  # (what is wrong, how to spoil a mapping so)
    lambda m: m.update(prefix="[1000]10.300.0.0/16"),
    lambda m: m.update(prefix="[1000]10.1.2.3/16"),               # host bits
    lambda m: m.update(prefix=17),
    lambda m: m.update(prefix="[2000]10.7.0.0/16"),               # not the site's instance-id
    lambda m: m["locators"][0].update(rloc="no-address"),
    lambda m: m["locators"][0].update(priority=300),
    lambda m: m["locators"][0].update(weight=True),
    lambda m: m["locators"][0].update(rloc="192.0.2.1"),          # our own RLOC
    lambda m: m["locators"][0].update(extra=1),
    lambda m: m.update(locators=[]),
    lambda m: m.update(locators=[{"rloc": "198.51.100.1", "priority": 255}]),
]


def mappings(rng: random.Random, n: int, spoil: bool) -> list:
    shared = [locators(rng) for _ in range(rng.randrange(1, 5))]
    out = []
    for i in range(n):
        if rng.random() < 0.3:
            net = f"2001:db8:{rng.randrange(1, 0xFFFF):x}::/48"
        else:
            net = f"10.{i >> 8 & 255}.{i & 255}.0/24"
        iid = rng.choice(["[1000]", "", "[1000]"])
        locs = [dict(loc) for loc in rng.choice(shared)]  # equal sets, written anew
        out.append({"prefix": iid + net, "locators": locs})
    if spoil:
        rng.choice(SPOILERS)(out[rng.randrange(n)])
    return out


def naive_form(items) -> dict:
    """The compact form of any mappings, whatever they hold (sets told apart by their JSON)."""
    known, sets, index = {}, [], []
    for m in items:
        j = known.setdefault(json.dumps(m["locators"], sort_keys=True), len(known))
        if j == len(sets):
            sets.append(m["locators"])
        index.append(j)
    return {"prefixes": [m["prefix"] for m in items], "locator_sets": sets, "sets": index}


def outcome(body):
    api = Api(FakeApp())
    code, answer = call(api, "POST", "/map", body)
    cache = sorted((str(e.prefix), repr(e.locators)) for e in api.app.xtr.cache)
    return code, answer, cache, len(api.app.bulk)


@pytest.mark.parametrize("seed", range(60))
def test_the_compact_form_is_the_object_form(seed):
    rng = random.Random(seed)
    items = mappings(rng, rng.randrange(1, 40), spoil=seed % 2 == 1)
    objects = outcome({"mappings": items})
    assert outcome(naive_form(items)) == objects  # whatever the mappings hold
    compact = shared_form(items)  # the client's: None for what is not plainly written
    if compact is not None:
        assert len(compact["locator_sets"]) <= 5 and len(compact["prefixes"]) == len(items)
        assert ("sets" in compact) == (len(compact["locator_sets"]) > 1)
        assert outcome(compact) == objects
    else:
        assert seed % 2 == 1
    if seed % 2 == 0:
        assert objects[0] == 200 and objects[1]["added"] == len(items)
    else:  # (a spoiled mapping: the same refusal, nothing installed)
        assert objects[0] == 400 and objects[1]["error"].startswith("mappings[")
        assert objects[2] == [] and objects[3] == 0


@pytest.mark.parametrize("items", [
    [{"prefix": "10.1.0.0/16"}],                                       # no locators
    [{"prefix": "10.1.0.0/16", "locators": [], "ttl": 5}],             # a key too many
    [{"prefix": b"10.1.0.0/16", "locators": [{"rloc": "198.51.100.1"}]}],
    [{"prefix": "10.1.0.0/16", "locators": [{"rloc": "198.51.100.1", "priority": True}]}],
    [{"prefix": "10.1.0.0/16", "locators": [{"rloc": "198.51.100.1", "prio": 1}]}],
    [{"prefix": "10.1.0.0/16", "locators": ({"rloc": "198.51.100.1"},)}],
    ["10.1.0.0/16"], [],
])
def test_what_is_not_plainly_written_goes_as_objects(items):
    assert shared_form(items) is None


@pytest.mark.parametrize("body, message", [
    ({"prefixes": "10.1.0.0/16", "locator_sets": [[{"rloc": "198.51.100.1"}]]},
     "'prefixes' must be a list"),
    ({"prefixes": ["10.1.0.0/16"]}, "'locator_sets' must be a list of locator lists"),
    ({"prefixes": ["10.1.0.0/16"], "locator_sets": []}, "'locator_sets' must be a list"),
    ({"prefixes": ["10.1.0.0/16"], "locator_sets": [[{"rloc": "198.51.100.1"}]] * 2},
     "'sets' (the locator set of each prefix) is needed"),
    ({"prefixes": ["10.1.0.0/16"], "locator_sets": [[{"rloc": "198.51.100.1"}]],
      "sets": [0, 0]}, "'sets' must be a list as long as 'prefixes'"),
    ({"prefixes": ["10.1.0.0/16", "10.2.0.0/16"], "locator_sets": [[{"rloc": "198.51.100.1"}]],
      "sets": [0, 1]}, "sets[1]: must be the index of one of the 1 locator sets, not 1"),
    ({"prefixes": ["10.1.0.0/16"], "locator_sets": [[{"rloc": "198.51.100.1"}]],
      "sets": [False]}, "sets[0]: must be the index"),
    ({"prefixes": ["10.1.0.0/16"], "locator_sets": [[{"rloc": "198.51.100.1"}]], "x": 1},
     "body: unknown key(s) x"),
    ({"prefixes": ["10.1.0.0/16"], "locator_sets": [{"rloc": "198.51.100.1"}]},
     "mappings[0]: bad mapping: locators must be a list"),
    ({"prefixes": ["10.1.0.0/16", "10.2.0.0/33"], "locator_sets": [[{"rloc": "198.51.100.1"}]]},
     "mappings[1]: bad mapping: "),
    ({"prefixes": ["10.1.0.0/16", None], "locator_sets": [[{"rloc": "198.51.100.1"}]]},
     "mappings[1]: bad mapping: prefix must be a string"),
])
def test_mistakes_of_the_compact_form_are_refused_and_change_nothing(body, message):
    code, answer, cache, bundles = outcome(body)
    assert code == 400 and answer["error"].startswith(message), answer
    assert cache == [] and bundles == 0


def test_a_compact_bulk_change_is_logged_as_its_mappings(caplog):
    items = [{"prefix": f"[1000]10.{n}.0.0/16", "locators": [{"rloc": "198.51.100.1"}]}
             for n in range(5)]
    items[1]["locators"] = [{"rloc": "198.51.100.2", "weight": 30}]
    with caplog.at_level("INFO", logger="lisp_app.api.server"):
        assert call(Api(FakeApp()), "POST", "/map", shared_form(items))[0] == 200
    assert ("added 5 static mapping(s) (5 flows in 1 bundle(s)): [1000]10.0.0.0/16 -> "
            "198.51.100.1 priority 1 weight 100; [1000]10.1.0.0/16 -> 198.51.100.2 priority 1 "
            "weight 30; [1000]10.2.0.0/16 -> 198.51.100.1 priority 1 weight 100; and 2 more"
            ) in caplog.text
