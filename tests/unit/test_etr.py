"""The ETR engine: authoritative replies for local prefixes, probes, requests that are not ours."""

from ipaddress import ip_address

from lisp_app.control.etr import EtrEngine
from lisp_app.control.mapstat import MapStat
from lisp_app.mapping.database import LocalDatabase, LocalMapping
from lisp_app.protocol import (EidPrefix, EidRecord, Locator, MapReply, MapRequest,
                               decode_control)

RLOC1, RLOC2 = ip_address("198.51.100.1"), ip_address("198.51.100.2")
ITR = ip_address("192.0.2.1")


def etr():
    db = LocalDatabase([LocalMapping(EidPrefix.parse("[1000]10.2.0.0/24"),
                                     (Locator(RLOC1, 1, 70, local=True),
                                      Locator(RLOC2, 1, 30)), ttl=5)])
    return EtrEngine(db, MapStat())


def request(eid="[1000]10.2.0.10/32", probe=False, rlocs=(ITR,)):
    return MapRequest(nonce=0xABCDEF, records=(EidRecord.for_prefix(EidPrefix.parse(eid)),),
                      itr_rlocs=rlocs, probe=probe)


def test_answers_with_an_authoritative_record_to_the_itr_rloc_and_port():
    e = etr()
    (send,) = e.on_map_request(request(), reply_port=61000)
    assert send.destination == ITR and send.dest_port == 61000 and send.source_port == 4342
    reply = decode_control(send.payload)
    assert isinstance(reply, MapReply) and reply.nonce == 0xABCDEF and not reply.probe
    (rec,) = reply.records
    assert rec.prefix == EidPrefix.parse("[1000]10.2.0.0/24")
    assert rec.authoritative and rec.ttl == 5
    assert [(l.address, l.priority, l.weight) for l in rec.locators] == [(RLOC1, 1, 70),
                                                                         (RLOC2, 1, 30)]
    assert e.stats.replies_sent == 1


def test_rloc_probe_gets_a_probe_reply_with_the_probed_locator_marked():
    e = etr()
    (send,) = e.on_map_request(request(probe=True), 4342, probed_rloc=RLOC2)
    reply = decode_control(send.payload)
    assert reply.probe
    assert [l.probed for l in reply.records[0].locators] == [False, True]
    assert e.stats.probes_answered == 1


def test_requests_for_other_space_or_instance_are_ignored_and_counted():
    e = etr()
    assert e.on_map_request(request("[1000]10.3.0.1/32"), 4342) == []
    assert e.on_map_request(request("[2000]10.2.0.10/32"), 4342) == []
    assert e.on_map_request(request("[1000]10.0.0.0/8"), 4342) == []  # wider than ours
    assert e.stats.requests_not_ours == 3 and e.stats.replies_sent == 0


def test_first_usable_itr_rloc():
    e = etr()
    (send,) = e.on_map_request(request(rlocs=(ip_address("2001:db8::1"), ITR)), 4342)
    assert send.destination == ITR
    assert e.on_map_request(request(rlocs=(ip_address("2001:db8::1"),)), 4342) == []
