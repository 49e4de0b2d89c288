"""Map-Server and Map-Resolver engines: authentication, prefixes, expiry, proxy replies,
forwarding, and negative replies for space the ALT does not cover."""

import hashlib
import hmac
from ipaddress import ip_address, ip_network

from lisp_app.alt.rib import AltRib, AltRoute
from lisp_app.control.actions import SendControl
from lisp_app.control.map_resolver import ForwardOverAlt, MapResolverEngine
from lisp_app.control.map_server import (Announce, MapServerEngine, MsSite, Withdraw)
from lisp_app.protocol import (Action, EidPrefix, EidRecord, EncapsulatedControlMessage, Locator,
                               MappingRecord, MapNotify, MapRegister, MapReply, MapRequest,
                               decode_control, sign)

ETR = ip_address("198.51.100.1")
ITR = ip_address("192.0.2.1")
SITE = MsSite("site-36", "s3cret", (EidPrefix.parse("153.16.36.0/24"),))
AGG = MsSite("site-agg", "k2", (EidPrefix.parse("153.16.40.0/22"),),
             announce=(EidPrefix.parse("153.16.40.0/22"),))


def register(prefix="153.16.36.0/24", key="s3cret", key_id=1, notify=True, proxy=False):
    rec = MappingRecord.for_prefix(EidPrefix.parse(prefix), locators=(Locator(ETR),), ttl=1440,
                                   authoritative=True)
    msg = sign(MapRegister(0x77, (rec,), proxy_reply=proxy, want_map_notify=notify), key, key_id)
    return msg.encode(), msg


def request(eid="153.16.36.10/32"):
    return MapRequest(0x99, (EidRecord.for_prefix(EidPrefix.parse(eid)),), (ITR,))


def test_good_register_is_accepted_announced_and_notified_with_the_same_algorithm():
    ms = MapServerEngine((SITE, AGG))
    for key_id, digest in ((1, hashlib.sha1), (2, hashlib.sha256)):
        raw, msg = register(key_id=key_id)
        actions = ms.on_map_register(raw, msg, ETR, 4342, 0.0)
        (notify_send,) = [a for a in actions if isinstance(a, SendControl)]
        notify = decode_control(notify_send.payload)
        assert isinstance(notify, MapNotify) and notify.nonce == 0x77
        assert notify.key_id == key_id and notify.records == msg.records
        blank = notify_send.payload[:16] + bytes(len(notify.auth_data)) + \
            notify_send.payload[16 + len(notify.auth_data):]
        assert notify.auth_data == hmac.new(b"s3cret", blank, digest).digest()
    assert ms.stats.registers_accepted == 2 and ms.stats.notifies_sent == 2


def test_first_registration_announces_and_expiry_withdraws():
    ms = MapServerEngine((SITE,))
    raw, msg = register(notify=False)
    assert ms.on_map_register(raw, msg, ETR, 4342, 0.0) == [Announce(SITE.eid_prefixes[0])]
    assert ms.on_map_register(raw, msg, ETR, 4342, 60.0) == []  # refresh: nothing new
    assert ms.next_deadline() == 240.0
    assert ms.on_timer(239.0) == []
    assert ms.on_timer(240.0) == [Withdraw(SITE.eid_prefixes[0])]
    assert ms.stats.registrations_expired == 1


def test_aggregates_are_announced_instead_of_registrations():
    ms = MapServerEngine((AGG,))
    raw, msg = register("153.16.41.0/24", key="k2", notify=False)
    assert ms.on_map_register(raw, msg, ETR, 4342, 0.0) == [Announce(AGG.announce[0])]
    raw, msg = register("153.16.42.0/24", key="k2", notify=False)
    assert ms.on_map_register(raw, msg, ETR, 4342, 0.0) == []


def test_wrong_key_tampering_key_id_0_and_foreign_prefixes_are_refused():
    ms = MapServerEngine((SITE,))
    raw, msg = register(key="wrong")
    assert ms.on_map_register(raw, msg, ETR, 4342, 0.0) == []
    raw, msg = register()
    tampered = bytearray(raw)
    tampered[-1] ^= 1
    assert ms.on_map_register(bytes(tampered), decode_control(bytes(tampered)), ETR, 4342,
                              0.0) == []
    unsigned = MapRegister(1, msg.records)
    assert ms.on_map_register(unsigned.encode(), unsigned, ETR, 4342, 0.0) == []
    assert ms.stats.registers_bad_auth == 3
    raw, msg = register("10.0.0.0/8")
    assert ms.on_map_register(raw, msg, ETR, 4342, 0.0) == []
    assert ms.stats.registers_bad_prefix == 1
    assert ms.registrations == {}


def test_requests_are_forwarded_to_the_etr_in_an_ecm_or_proxied():
    ms = MapServerEngine((SITE,))
    raw, msg = register(notify=False)
    ms.on_map_register(raw, msg, ETR, 4342, 0.0)
    (fwd,) = ms.on_map_request(request(), 4342, ITR, 1.0)
    ecm = decode_control(fwd.payload)
    assert fwd.destination == ETR and isinstance(ecm, EncapsulatedControlMessage)
    assert ecm.to_etr and ecm.destination == ip_address("153.16.36.10")
    assert ecm.message == request()
    raw, msg = register(notify=False, proxy=True)
    ms.on_map_register(raw, msg, ETR, 4342, 2.0)
    (reply_send,) = ms.on_map_request(request(), 61000, ITR, 3.0)
    reply = decode_control(reply_send.payload)
    assert (reply_send.destination, reply_send.dest_port) == (ITR, 61000)
    assert isinstance(reply, MapReply) and reply.nonce == 0x99
    assert not reply.records[0].authoritative and reply.records[0].locators[0].address == ETR


def test_unregistered_site_gets_a_negative_reply_and_unknown_space_nothing():
    ms = MapServerEngine((SITE,))
    (send,) = ms.on_map_request(request(), 4342, ITR, 0.0)
    reply = decode_control(send.payload)
    assert reply.records[0].action == Action.NATIVELY_FORWARD and reply.records[0].ttl == 1
    assert ms.on_map_request(request("8.8.8.8/32"), 4342, ITR, 0.0) == []


def test_map_resolver_forwards_covered_eids_over_the_alt():
    rib = AltRib()
    rib.update(AltRoute(ip_network("153.16.0.0/16"), "100.64.254.168", "100.64.254.168"))
    mr = MapResolverEngine(rib)
    ecm = EncapsulatedControlMessage(ITR, ip_address("153.16.36.10"), request(), source_port=61000)
    (fwd,) = mr.on_ecm(decode_control(ecm.encode()))
    assert isinstance(fwd, ForwardOverAlt) and fwd.neighbor == "100.64.254.168"
    assert (fwd.destination, fwd.source_port) == (ip_address("153.16.36.10"), 61000)
    assert decode_control(fwd.payload) == request()


def test_map_resolver_answers_uncovered_eids_negatively():
    rib = AltRib()
    rib.update(AltRoute(ip_network("153.16.0.0/16"), "100.64.254.168", "100.64.254.168"))
    mr = MapResolverEngine(rib)
    ecm = EncapsulatedControlMessage(ITR, ip_address("10.9.9.9"), request("10.9.9.9/32"),
                                     source_port=61000)
    (send,) = mr.on_ecm(ecm)
    reply = decode_control(send.payload)
    assert (send.destination, send.dest_port) == (ITR, 61000)
    (rec,) = reply.records
    assert (rec.action, rec.ttl, rec.locators) == (Action.NATIVELY_FORWARD, 15, ())
    assert rec.prefix == EidPrefix(0, ip_network("0.0.0.0/1"))
    assert mr.stats.negative_replies == 1


def test_proxy_replies_carry_each_request_nonce_and_follow_re_registration():
    ms = MapServerEngine((SITE,))
    raw, msg = register(notify=False, proxy=True)
    ms.on_map_register(raw, msg, ETR, 4342, 0.0)
    for nonce in (1, 0x99, 2**64 - 1):
        (send,) = ms.on_map_request(MapRequest(nonce, request().records, (ITR,)), 4342, ITR, 1.0)
        reply = decode_control(send.payload)
        assert reply.nonce == nonce and reply.records[0].locators[0].address == ETR
    other = ip_address("198.51.100.2")
    rec = MappingRecord.for_prefix(EidPrefix.parse("153.16.36.0/24"),
                                   locators=(Locator(other),), ttl=60, authoritative=True)
    msg = sign(MapRegister(0x78, (rec,), proxy_reply=True), "s3cret", 1)
    ms.on_map_register(msg.encode(), msg, other, 4342, 2.0)
    (send,) = ms.on_map_request(request(), 4342, ITR, 3.0)
    reply = decode_control(send.payload)
    assert reply.records[0].locators[0].address == other and reply.records[0].ttl == 60
    assert send.payload == MapReply(0x99, (MappingRecord(rec.eid, rec.mask_len, rec.locators,
                                                         60, rec.action, False),)).encode()


def test_negative_replies_carry_each_request_nonce_and_follow_the_rib():
    rib = AltRib()
    rib.update(AltRoute(ip_network("153.16.36.0/24"), "100.64.254.168", "100.64.254.168"))
    mr = MapResolverEngine(rib)

    def ask(nonce, eid="153.16.37.10"):
        ecm = EncapsulatedControlMessage(ITR, ip_address(eid), MapRequest(
            nonce, (EidRecord.for_prefix(EidPrefix.parse(f"{eid}/32")),), (ITR,)))
        (send,) = mr.on_ecm(decode_control(ecm.encode()))
        return decode_control(send.payload)

    for nonce in (5, 6):
        reply = ask(nonce)
        assert reply.nonce == nonce
        assert reply.records[0].prefix == EidPrefix.parse("153.16.37.0/24")
        assert reply.records[0].action == Action.NATIVELY_FORWARD and reply.records[0].ttl == 15
    rib.withdraw("100.64.254.168", ip_network("153.16.36.0/24"))
    assert ask(7).records[0].prefix == EidPrefix.parse("0.0.0.0/0")
    assert mr.stats.negative_replies == 3


def test_the_negative_reply_memo_is_bounded_by_a_constructor_parameter():
    from lisp_app.control.map_resolver import NEGATIVE_CACHE
    assert MapResolverEngine(AltRib()).negative_cache_limit == NEGATIVE_CACHE == 4096
    rib = AltRib()
    for i in range(8):  # eight covered /24s: the negative prefixes between them differ
        rib.update(AltRoute(ip_network(f"153.16.{2 * i}.0/24"), "100.64.254.168",
                            "100.64.254.168"))
    mr = MapResolverEngine(rib, negative_cache_limit=2)
    for i in range(8):
        eid = f"153.16.{2 * i + 1}.10"
        ecm = EncapsulatedControlMessage(ITR, ip_address(eid), request(f"{eid}/32"))
        (send,) = mr.on_ecm(ecm)
        assert decode_control(send.payload).records[0].action == Action.NATIVELY_FORWARD
        assert len(mr._negative) <= 2
    assert mr.stats.negative_replies == 8


# -- without an ALT: the Map-Resolver resolves through the co-located Map-Server (RFC 9301 §8) --

WIDE = MsSite("site-wide", "k3", (EidPrefix.parse("153.16.0.0/16"),))


def resolver(*sites):
    ms = MapServerEngine(sites)
    return ms, MapResolverEngine(map_server=ms)


def ecm_for(eid: str, nonce: int = 0x99):
    inner = MapRequest(nonce, (EidRecord.for_prefix(EidPrefix.parse(f"{eid}/32")),), (ITR,))
    return EncapsulatedControlMessage(ITR, ip_address(eid.split("]")[-1]), inner,
                                      source_port=61000)


def test_without_an_alt_registered_eids_go_to_their_etr_or_are_proxied():
    ms, mr = resolver(SITE)
    raw, msg = register(notify=False)
    ms.on_map_register(raw, msg, ETR, 4342, 0.0)
    (fwd,) = mr.on_ecm(ecm_for("153.16.36.10"), 1.0)
    inner = decode_control(fwd.payload)
    assert fwd.destination == ETR and inner.to_etr and inner.source_port == 61000
    assert inner.message.nonce == 0x99 and mr.stats.to_map_server == 1
    raw, msg = register(notify=False, proxy=True)
    ms.on_map_register(raw, msg, ETR, 4342, 2.0)
    (reply,) = mr.on_ecm(ecm_for("153.16.36.10"), 3.0)
    assert (reply.destination, reply.dest_port) == (ITR, 61000)
    assert decode_control(reply.payload).records[0].locators[0].address == ETR


def test_without_an_alt_unknown_eids_get_the_largest_free_prefix_never_the_whole_space():
    ms, mr = resolver(SITE)
    (send,) = mr.on_ecm(ecm_for("10.9.9.9"), 0.0)
    (rec,) = decode_control(send.payload).records
    assert (rec.action, rec.ttl) == (Action.NATIVELY_FORWARD, 15)
    assert rec.prefix == EidPrefix.parse("0.0.0.0/1")  # 153.16.36.0/24 sits in 128.0.0.0/1
    (send,) = mr.on_ecm(ecm_for("153.16.37.9"), 0.0)
    assert decode_control(send.payload).records[0].prefix == EidPrefix.parse("153.16.37.0/24")
    (send,) = mr.on_ecm(ecm_for("[7]153.16.36.10"), 0.0)  # another instance-id: nothing known
    assert decode_control(send.payload).records[0].prefix == EidPrefix.parse("[7]0.0.0.0/0")
    assert mr.stats.negative_replies == 3 and mr.stats.to_map_server == 0


def test_an_unregistered_part_of_a_site_never_hides_a_registration():
    """A site may register 153.16.0.0/16's /24s: a Map-Request for an unregistered one gets a
    negative reply for the largest part of the site that no registration touches, not the whole
    /16 (which would shadow the registered /24 in the ITR's map-cache)."""
    ms, mr = resolver(WIDE)
    raw, msg = register("153.16.40.0/24", key="k3", notify=False)
    ms.on_map_register(raw, msg, ETR, 4342, 0.0)
    (send,) = mr.on_ecm(ecm_for("153.16.200.1"), 1.0)
    (rec,) = decode_control(send.payload).records
    assert rec.prefix == EidPrefix.parse("153.16.128.0/17") and rec.ttl == 1
    (send,) = mr.on_ecm(ecm_for("153.16.41.1"), 1.0)
    assert decode_control(send.payload).records[0].prefix == EidPrefix.parse("153.16.41.0/24")
    ms.on_timer(1000.0)  # the registration expired: the whole site is free again
    (send,) = mr.on_ecm(ecm_for("153.16.41.1"), 1001.0)
    assert decode_control(send.payload).records[0].prefix == EidPrefix.parse("153.16.0.0/16")


def test_longest_registration_wins_and_expired_ones_are_skipped():
    ms = MapServerEngine((WIDE,))
    for prefix, etr, at in (("153.16.0.0/16", "198.51.100.16", 0.0),
                            ("153.16.40.0/24", "198.51.100.24", 100.0)):
        rec = MappingRecord.for_prefix(EidPrefix.parse(prefix),
                                       locators=(Locator(ip_address(etr)),))
        msg = sign(MapRegister(1, (rec,)), "k3", 1)
        ms.on_map_register(msg.encode(), msg, ip_address(etr), 4342, at)
    wanted = EidPrefix.parse("153.16.40.9/32")
    assert ms.registration_for(wanted, 150.0)[0] == EidPrefix.parse("153.16.40.0/24")
    assert ms.registration_for(EidPrefix.parse("153.16.0.0/16"), 150.0)[0] == \
        EidPrefix.parse("153.16.0.0/16")
    # the /16 expires at 180 s, the /24 at 280 s: between them the /24 still answers
    assert ms.registration_for(wanted, 200.0)[0] == EidPrefix.parse("153.16.40.0/24")
    assert ms.registration_for(EidPrefix.parse("153.16.1.1/32"), 200.0) == (None, None)
    assert ms.on_timer(200.0) == [Withdraw(EidPrefix.parse("153.16.0.0/16"))]
    assert len(ms.registrations) == 1
    assert ms.next_deadline() == 280.0


def test_many_registrations_cost_a_lookup_not_a_scan():
    site = MsSite("big", "k", (EidPrefix.parse("10.0.0.0/8"),))
    ms = MapServerEngine((site,))
    for n in range(5000):
        rec = MappingRecord.for_prefix(EidPrefix.parse(f"10.{n >> 8}.{n & 255}.0/24"),
                                       locators=(Locator(ETR),))
        msg = sign(MapRegister(n, (rec,)), "k", 1)
        ms.on_map_register(msg.encode(), msg, ETR, 4342, 0.0)
    assert len(ms.registrations) == 5000 and len(ms._expiry) == 5000
    assert ms.registration_for(EidPrefix.parse("10.19.135.7/32"), 1.0)[0] == \
        EidPrefix.parse("10.19.135.0/24")
    assert ms.free_space(EidPrefix.parse("11.0.0.1/32")) == EidPrefix.parse("11.0.0.0/8")
    assert len(ms.on_timer(181.0)) == 5000 and ms.registrations == {}  # each withdrawn


def test_without_an_alt_a_short_prefix_whose_address_lies_in_a_site_is_answered_for_the_site():
    """An ECM Map-Request for 153.16.36.0/22 when the site is 153.16.36.0/24: its address is in
    the site, so no negative reply may cover it; the lookup goes by the address (a negative
    reply for the unregistered site, then the proxy reply once it registers), and no error."""
    ms, mr = resolver(SITE)
    inner = MapRequest(0x42, (EidRecord.for_prefix(EidPrefix.parse("153.16.36.0/22")),), (ITR,))
    ecm = EncapsulatedControlMessage(ITR, ip_address("153.16.36.0"), inner, source_port=61000)
    (send,) = mr.on_ecm(ecm, 0.0)
    (rec,) = decode_control(send.payload).records
    assert rec.prefix == EidPrefix.parse("153.16.36.0/24") and rec.ttl == 1
    raw, msg = register(notify=False, proxy=True)
    ms.on_map_register(raw, msg, ETR, 4342, 1.0)
    (send,) = mr.on_ecm(ecm, 2.0)
    reply = decode_control(send.payload)
    assert reply.nonce == 0x42 and reply.records[0].locators[0].address == ETR
    assert mr.stats.to_map_server == 2 and mr.stats.negative_replies == 0
