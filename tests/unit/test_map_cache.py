"""The map-cache: longest-prefix match per instance-id and family, replacement, expiry."""

from ipaddress import ip_address, ip_network

import pytest

from lisp_app.mapping.cache import SOURCE_STATIC, CacheEntry, MapCache
from lisp_app.protocol import Action, EidPrefix, Locator


def entry(text, expires_at=None, rloc="192.0.2.1", **kw):
    return CacheEntry(EidPrefix.parse(text), (Locator(ip_address(rloc)),), expires_at=expires_at,
                      **kw)


def test_longest_prefix_wins_and_falls_back():
    cache = MapCache()
    cache.insert(entry("10.0.0.0/8", rloc="192.0.2.8"))
    cache.insert(entry("10.1.0.0/16", rloc="192.0.2.16"))
    cache.insert(entry("10.1.2.0/24", rloc="192.0.2.24"))
    assert cache.lookup(0, ip_address("10.1.2.3")).prefix == EidPrefix.parse("10.1.2.0/24")
    assert cache.lookup(0, ip_address("10.1.3.3")).prefix == EidPrefix.parse("10.1.0.0/16")
    assert cache.lookup(0, ip_address("10.9.9.9")).prefix == EidPrefix.parse("10.0.0.0/8")
    assert cache.lookup(0, ip_address("11.0.0.1")) is None
    cache.remove(EidPrefix.parse("10.1.2.0/24"))
    assert cache.lookup(0, ip_address("10.1.2.3")).prefix == EidPrefix.parse("10.1.0.0/16")
    assert len(cache) == 2


def test_instance_ids_keep_overlapping_prefixes_apart():
    cache = MapCache()
    cache.insert(entry("[100]10.2.0.0/24", rloc="192.0.2.100"))
    cache.insert(entry("[200]10.2.0.0/24", rloc="192.0.2.200"))
    a = cache.lookup(100, ip_address("10.2.0.5"))
    b = cache.lookup(200, ip_address("10.2.0.5"))
    assert a.locators[0].address == ip_address("192.0.2.100")
    assert b.locators[0].address == ip_address("192.0.2.200")
    assert cache.lookup(0, ip_address("10.2.0.5")) is None


def test_ipv6_and_default_route_entries():
    cache = MapCache()
    cache.insert(entry("2001:db8:2::/48"))
    cache.insert(entry("0.0.0.0/0", rloc="192.0.2.254"))
    assert cache.lookup(0, ip_address("2001:db8:2::10")).prefix.network.prefixlen == 48
    assert cache.lookup(0, ip_address("2001:db8:3::10")) is None
    assert cache.lookup(0, ip_address("8.8.8.8")).prefix == EidPrefix.parse("0.0.0.0/0")


def test_replace_returns_old_entry_and_keeps_count():
    cache = MapCache()
    assert cache.insert(entry("10.2.0.0/24", rloc="192.0.2.1")) is None
    old = cache.insert(entry("10.2.0.0/24", rloc="192.0.2.2"))
    assert old.locators[0].address == ip_address("192.0.2.1")
    assert len(cache) == 1
    assert cache.get(EidPrefix.parse("10.2.0.0/24")).locators[0].address == ip_address("192.0.2.2")
    assert cache.stats.replaced == 1


def test_expiry_removes_only_due_entries_and_ignores_superseded_deadlines():
    cache = MapCache()
    cache.insert(entry("10.1.0.0/24", expires_at=60.0))
    cache.insert(entry("10.2.0.0/24", expires_at=120.0))
    cache.insert(entry("10.3.0.0/24", source=SOURCE_STATIC))
    # refreshed before its deadline: the old deadline must not remove it
    cache.insert(entry("10.1.0.0/24", expires_at=200.0))
    assert cache.next_expiry() == 120.0
    assert cache.expire(119.9) == []
    gone = cache.expire(120.0)
    assert [e.prefix for e in gone] == [EidPrefix.parse("10.2.0.0/24")]
    assert cache.next_expiry() == 200.0
    assert [str(e.prefix) for e in cache.expire(1e9)] == ["10.1.0.0/24"]
    assert [str(e.prefix) for e in cache] == ["10.3.0.0/24"]
    assert cache.next_expiry() is None
    assert cache.stats.expired == 2


def test_removed_entry_does_not_expire_later():
    cache = MapCache()
    cache.insert(entry("10.1.0.0/24", expires_at=10.0))
    cache.remove(EidPrefix.parse("10.1.0.0/24"))
    assert cache.expire(100.0) == []
    assert len(cache) == 0


def test_negative_entry():
    e = CacheEntry(EidPrefix.parse("10.9.0.0/16"), (), Action.NATIVELY_FORWARD, ttl=15,
                   expires_at=900.0)
    assert e.negative
    assert e.remaining(300.0) == 600.0
    assert entry("10.1.0.0/24").remaining(5.0) is None


def test_eid_prefix_parse_errors():
    with pytest.raises(ValueError, match="host bits"):
        EidPrefix.parse("10.1.0.1/24")
    with pytest.raises(ValueError, match="without"):
        EidPrefix.parse("[12 10.0.0.0/8")
    with pytest.raises(ValueError, match="24-bit"):
        EidPrefix.parse("[16777216]10.0.0.0/8")
    assert str(EidPrefix.parse("[7]10.0.0.0/8")) == "[7]10.0.0.0/8"


def test_entries_share_equal_locators_and_ttls():
    """A big map-cache mostly points at a few xTRs: equal locator tuples (and TTLs) are held once,
    each entry still reading as the mapping it was given. The map-cache owns the pools."""
    cache = MapCache()
    a = CacheEntry(EidPrefix.parse("10.1.0.0/24"), (Locator(ip_address("192.0.2.1")),), ttl=1440)
    b = CacheEntry(EidPrefix.parse("10.2.0.0/24"), (Locator(ip_address("192.0.2.1")),), ttl=1440)
    c = CacheEntry(EidPrefix.parse("10.3.0.0/24"), (Locator(ip_address("192.0.2.2")),), ttl=1441)
    for e in (a, b, c):
        cache.insert(e)
    assert cache.get(a.prefix) is a and cache.get(b.prefix) is b
    assert a.locators is b.locators and a.ttl is b.ttl
    assert c.locators != a.locators and c.locators[0].address == ip_address("192.0.2.2")
    assert (a.ttl, c.ttl) == (1440, 1441)
    assert CacheEntry(EidPrefix.parse("10.4.0.0/24"), ()).locators == ()


def test_entries_share_instance_ids_and_the_pools_are_bounded_and_per_cache():
    """Entries of one instance-id share one int object; each cache has its own pools, each
    holding at most shared_pool_limit values."""
    def fresh(iid, rloc="192.0.2.1", ttl=1440):
        # ints built at run time, as decoding builds them: equal, not the same objects
        iid, ttl = int(str(iid)), int(str(ttl))
        return CacheEntry(EidPrefix(iid, ip_network(f"10.{iid % 256}.{ttl % 256}.0/24")),
                          (Locator(ip_address(rloc)),), ttl=ttl)
    cache, other = MapCache(), MapCache()
    a, b, c = fresh(1000), fresh(1000, ttl=1441), fresh(1000)
    assert a.prefix.instance_id is not b.prefix.instance_id
    cache.insert(a)
    cache.insert(b)
    other.insert(c)
    assert a.prefix.instance_id is b.prefix.instance_id
    assert a.locators is b.locators
    assert c.prefix.instance_id is not a.prefix.instance_id and c.locators is not a.locators
    assert (a.prefix.instance_id, c.prefix.instance_id) == (1000, 1000)
    small = MapCache(shared_pool_limit=3)
    for i in range(10):
        small.insert(fresh(i, rloc=f"192.0.2.{i + 1}", ttl=1440 + i))
    assert all(len(pool) <= 3 for pool in (small._locators, small._ttls, small._instance_ids))
    assert len(small) == 10


def test_lookup_at_every_prefix_length():
    cache = MapCache()
    base = int(ip_address("10.128.0.0"))
    for plen in range(0, 33, 4):
        cache.insert(entry(str(ip_network((base, plen), strict=False)), rloc=f"192.0.2.{plen}"))
    assert cache.lookup(0, ip_address(base)).prefix.network.prefixlen == 32
    for plen in range(0, 29, 4):  # inside /plen, outside the next longer prefix
        hit = cache.lookup(0, ip_address(base ^ 1 << (28 - plen)))
        assert hit.prefix.network.prefixlen == plen
    cache.remove(EidPrefix.parse("10.128.0.0/32"))
    assert cache.lookup(0, ip_address(base)).prefix.network.prefixlen == 28


def test_expiring_by_finds_exactly_the_current_entries_due_by_then():
    import random
    rng = random.Random(7)
    cache = MapCache()
    expiry = {}
    for n in range(2000):
        prefix = EidPrefix.parse(f"[1]10.{n // 250}.{n % 250}.0/24")
        when = rng.uniform(0, 1000)
        cache.insert(CacheEntry(prefix, (), expires_at=when))
        expiry[prefix] = when
    for n in range(0, 2000, 3):  # superseded deadlines: only the new one counts
        prefix = EidPrefix.parse(f"[1]10.{n // 250}.{n % 250}.0/24")
        cache.insert(CacheEntry(prefix, (), expires_at=expiry[prefix] + 500))
        expiry[prefix] += 500
    for n in range(1, 2000, 7):
        prefix = EidPrefix.parse(f"[1]10.{n // 250}.{n % 250}.0/24")
        cache.remove(prefix)
        del expiry[prefix]
    cache.insert(CacheEntry(EidPrefix.parse("[1]172.16.0.0/12"), ()))  # static: never
    for when in (-1, 0.5, 100, 400, 999, 2000):
        got = {e.prefix for e in cache.expiring_by(when)}
        assert got == {p for p, t in expiry.items() if t <= when}, when
    assert len(cache.expiring_by(2000)) == len(expiry)


def test_shared_pool_gives_the_pooled_object_for_a_value_asked_again():
    """SharedPool remembers the last value it was asked for: asking with that same object again
    (a bulk load's locator tuple) still gives the pooled equal object, also after the pool was
    emptied at its limit."""
    from lisp_app.mapping.cache import SharedPool
    pool = SharedPool(limit=2)
    first = tuple([1, 2])
    assert pool.share(first) is first
    second = tuple([1, 2])
    assert pool.share(second) is first and pool.share(second) is first
    for n in range(3, 6):  # fills the pool past its limit: emptied on the way
        pool.share((n,))
    assert len(pool) <= 2
    third = tuple([1, 2])
    assert pool.share(third) is third and pool.share(third) is third
