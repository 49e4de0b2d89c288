"""BGP sessions on the ALT as an operator sees them: the FSM states, uptime and message counts
the speaker reports (like FRR's ``show bgp summary``), and ``clear`` for a neighbour cut off by
max-prefix. The os-ken speaker is replaced by a fake that answers as os-ken does."""

from __future__ import annotations

import io
import json
from ipaddress import ip_address, ip_network

import pytest

from lisp_app.alt.rib import PrefixList
from lisp_app.alt.speaker import AltSpeaker, CollectionPause, read_summary
from lisp_app.alt.state import (ESTABLISHED, FSM_STATES, IDLE, MAX_PREFIX_EXCEEDED, AltState,
                                NeighborState, RestartNeighbor)
from lisp_app.api import cli
from lisp_app.api.server import Api
from lisp_app.config import AltConfig, AltNeighborConfig

N1, N2 = "100.64.254.168", "100.64.254.170"


def state(max_prefix=0):
    plist = PrefixList.default_import((ip_network("153.16.0.0/16"),))
    return AltState([NeighborState(N1, 2147483671, plist, max_prefix),
                     NeighborState(N2, 2147483672, plist, 0)])


def counts(n):
    return {"messages_received": n, "messages_sent": n + 1}


def test_every_fsm_state_is_kept_and_up_down_are_reported_once():
    s = state()
    changes = [s.observe(N1, fsm, counts(i), now=10.0 + i)
               for i, fsm in enumerate(FSM_STATES)]
    assert changes == [None, None, None, None, None, "up"]
    n = s.neighbors[N1]
    assert (n.fsm, n.state, n.since, n.counters) == ("Established", ESTABLISHED, 15.0, counts(5))
    assert s.observe(N1, "Established", counts(6), now=20.0, uptime=7.5) is None
    assert n.since == 12.5  # the speaker's uptime is exact, our polling is not
    s.route_event(N1, "153.16.38.0/24", N1, (2147483671,), False)
    assert s.observe(N1, "Active", counts(7), now=30.0) == "down"
    assert (n.fsm, n.state, n.since, n.accepted) == ("Active", IDLE, 30.0, set())
    assert s.rib.lookup(ip_address("153.16.38.1")) is None
    assert s.observe(N1, "Connect", counts(7), now=31.0) is None
    assert (n.fsm, n.since) == ("Connect", 30.0)
    assert s.observe(N1, "Bogus", {}, now=32.0) is None and n.fsm == "Idle"


def test_a_neighbour_cut_off_by_max_prefix_stays_off_until_cleared():
    s = state(max_prefix=1)
    s.observe(N1, "Established", {}, now=1.0)
    s.route_event(N1, "153.16.1.0/24", N1, (2147483671,), False, now=2.0)
    (cut,) = s.route_event(N1, "153.16.2.0/24", N1, (2147483671,), False, now=3.0)
    n = s.neighbors[N1]
    assert (n.state, n.fsm, n.since, n.cut_offs) == (MAX_PREFIX_EXCEEDED, "Idle", 3.0, 1)
    assert "lispctl bgp clear 100.64.254.168" in cut.reason
    assert s.observe(N1, "Established", {}, now=4.0) is None  # stale: the speaker dropped it
    assert n.state == MAX_PREFIX_EXCEEDED
    assert s.clear(N1, now=5.0) == [RestartNeighbor(N1)]
    assert (n.state, n.fsm, n.since, n.rejected, n.cut_offs) == (IDLE, "Idle", 5.0, 0, 1)
    assert s.observe(N1, "Established", {}, now=6.0) == "up"
    with pytest.raises(KeyError):
        s.clear("192.0.2.1", now=7.0)


def test_os_kens_summary_is_read_and_oddities_are_ignored():
    text = json.dumps({N1: {"conf": {}, "info": {
        "bgp_state": "Established", "uptime": 42.5, "total_message_in": 9,
        "total_message_out": 4, "update_message_in": 8, "update_message_out": 3,
        "fsm_established_transitions": 1, "last_error": None}},
        N2: {"conf": {}, "info": {"bgp_state": "Active", "uptime": -1}}, "odd": 5})
    assert read_summary(text) == {
        N1: ("Established", {"messages_received": 9, "messages_sent": 4, "updates_received": 8,
                             "updates_sent": 3, "established_transitions": 1}, 42.5),
        N2: ("Active", {}, None)}
    assert read_summary("not json") == {} and read_summary("[1]") == {}


class FakeSpeaker:
    """Answers as os-ken's BGPSpeaker does; records what it was told."""

    def __init__(self):
        self.neighbors = {}  # address -> summary info
        self.calls = []

    def neighbor_add(self, address, remote_as, **kw):
        self.calls.append(("add", address))
        self.neighbors[address] = {"bgp_state": "Idle", "uptime": -1}

    def neighbor_del(self, address):
        self.calls.append(("del", address))
        del self.neighbors[address]

    def neighbor_state_get(self):
        return json.dumps({a: {"conf": {}, "info": info} for a, info in self.neighbors.items()})

    def prefix_add(self, prefix):
        pass

    def prefix_del(self, prefix):
        pass


class FakeCollector:
    """Stands in for the gc module: tests must not switch the real collector off."""

    def __init__(self, enabled=True):
        self.enabled = enabled

    def isenabled(self):
        return self.enabled

    def disable(self):
        self.enabled = False

    def enable(self):
        self.enabled = True


def alt_speaker(max_prefix=2):
    config = AltConfig(local_as=2147483677, router_id=ip_address("153.16.36.254"),
                       address=ip_address("100.64.254.169"), eid_space=("153.16.0.0/16",),
                       neighbors=(AltNeighborConfig(ip_address(N1), 2147483671, "gre1",
                                                    max_prefix=max_prefix),))
    alt = AltSpeaker(config)
    alt.pause = CollectionPause(FakeCollector())
    alt.speaker = FakeSpeaker()
    alt._modes = {"active": "active"}
    alt._add_neighbor(config.neighbors[0])
    return alt


def test_the_speaker_adapter_polls_states_cuts_off_and_clears():
    alt = alt_speaker(max_prefix=2)
    fake = alt.speaker
    fake.neighbors[N1] = {"bgp_state": "OpenSent", "uptime": -1, "total_message_in": 0}
    alt.reconcile()
    (n,) = alt.view()["neighbors"]
    assert (n["fsm"], n["state"], n["messages_received"]) == ("OpenSent", "idle", 0)
    fake.neighbors[N1] = {"bgp_state": "Established", "uptime": 61, "total_message_in": 5,
                          "total_message_out": 3, "update_message_in": 3}
    alt.reconcile()
    (n,) = alt.view()["neighbors"]
    assert (n["fsm"], n["state"], n["messages_received"], n["messages_sent"]) == \
        ("Established", "established", 5, 3)
    assert 61 <= n["up_down"] < 63
    for i in range(3):  # one more than max-prefix
        alt._carry_out(alt.state.route_event(N1, f"153.16.{i}.0/24", N1, (2147483671,), False))
    assert fake.calls[-1] == ("del", N1) and N1 not in fake.neighbors
    alt.reconcile()
    (n,) = alt.view()["neighbors"]
    assert (n["fsm"], n["state"], n["cut_offs"]) == ("Idle", "max-prefix-exceeded", 1)
    assert alt.clear(N1) == {"cleared": N1, "was": "max-prefix-exceeded"}
    assert fake.calls[-1] == ("add", N1)  # given back to the speaker, nothing to delete first
    fake.neighbors[N1] = {"bgp_state": "Established", "uptime": 0}
    alt.reconcile()
    assert alt.view()["neighbors"][0]["state"] == "established"
    fake.calls.clear()
    alt.clear(N1)  # an established session is reset
    assert fake.calls == [("del", N1), ("add", N1)]


class AltApp:
    def __init__(self, alt):
        from tests.xtrkit import make_xtr
        self.xtr = make_xtr()
        self.datapaths = {}
        self.alt = alt


def post(api, path, body, **headers):
    raw = json.dumps(body).encode()
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": path, "QUERY_STRING": "",
               "CONTENT_LENGTH": str(len(raw)), "wsgi.input": io.BytesIO(raw),
               "HTTP_HOST": "127.0.0.1:8080", "CONTENT_TYPE": "application/json",
               "REMOTE_ADDR": "127.0.0.1", **headers}
    status = []
    out = b"".join(api(environ, lambda s, h: status.append(s)))
    return int(status[0].split()[0]), json.loads(out)


def test_post_bgp_clear_goes_through_the_change_checks_and_is_logged(caplog):
    alt = alt_speaker(max_prefix=0)
    api = Api(AltApp(alt))
    assert post(api, "/bgp/clear", {"neighbor": N1}, HTTP_HOST="evil.example")[0] == 403
    assert post(api, "/bgp/clear", {"neighbor": N1}, CONTENT_TYPE="text/plain")[0] == 415
    assert post(api, "/bgp/clear", {"neighbor": N1}, HTTP_ORIGIN="http://evil.example")[0] \
        == 403
    assert alt.speaker.calls == [("add", N1)]  # nothing was cleared
    for body, code, message in (({"neighbour": N1}, 400, "unknown key"),
                                ({"neighbor": 5}, 400, "must be a string"),
                                ({"neighbor": "x"}, 400, "not an IP address"),
                                ({"neighbor": "192.0.2.1"}, 404, "not an ALT neighbour")):
        got, answer = post(api, "/bgp/clear", body)
        assert got == code and message in answer["error"], answer
    with caplog.at_level("INFO", logger="lisp_app.api.server"):
        assert post(api, "/bgp/clear", {"neighbor": N1}) == (
            200, {"cleared": N1, "was": "idle"})
    assert any("POST /bgp/clear" in r.getMessage() and "127.0.0.1" in r.getMessage()
               for r in caplog.records)


def test_post_bgp_clear_without_the_alt_is_404():
    api = Api(AltApp(None))
    code, body = post(api, "/bgp/clear", {"neighbor": N1})
    assert code == 404 and "not on the ALT" in body["error"]


def test_lispctl_bgp_reads_like_show_bgp_summary():
    data = {"local_as": 2147483677, "router_id": "153.16.36.254", "address": "100.64.254.169",
            "neighbors": [
                {"address": N1, "remote_as": 2147483671, "state": "established",
                 "fsm": "Established", "up_down": 3725.0, "messages_received": 12,
                 "messages_sent": 7, "prefixes_received": 2, "rejected": 1,
                 "max_prefix": 1000},
                {"address": N2, "remote_as": 2147483672, "state": "idle", "fsm": "Active",
                 "up_down": None, "messages_received": 0, "messages_sent": 0,
                 "prefixes_received": 0, "rejected": 0, "max_prefix": 0},
                {"address": "100.64.254.172", "remote_as": 2147483673,
                 "state": "max-prefix-exceeded", "fsm": "Idle", "up_down": 2 * 86400 + 3600 * 3,
                 "messages_received": 4, "messages_sent": 2, "prefixes_received": 0,
                 "rejected": 0, "max_prefix": 2}],
            "routes": [], "announced": ["153.16.36.0/24"]}
    text = cli.format_bgp(data)
    assert text[0] == ("BGP router identifier 153.16.36.254, local AS number 2147483677, "
                       "ALT address 100.64.254.169")
    header, one, two, three = text[2:6]
    assert header.split() == ["Neighbor", "AS", "MsgRcvd", "MsgSent", "Up/Down",
                              "State/PfxRcd", "PfxFlt", "MaxPfx"]
    assert one.split() == [N1, "2147483671", "12", "7", "01:02:05", "2", "1", "1000"]
    assert two.split() == [N2, "2147483672", "0", "0", "never", "Active", "0", "-"]
    assert three.split() == ["100.64.254.172", "2147483673", "4", "2", "2d03h00m", "Idle",
                             "(max-prefix)", "0", "2"]
    assert "lispctl bgp clear NEIGHBOR" in text[6]
    assert cli.up_down(15 * 86400 + 3600) == "02w1d01h"


def test_lispctl_bgp_clear_parses_and_calls_the_api(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(cli.LispClient, "bgp_clear",
                        lambda self, n: calls.append(n) or {"cleared": n, "was": "idle"})
    assert cli.main(["bgp", "clear", N1]) == 0
    assert calls == [N1] and capsys.readouterr().out.strip() == f"cleared {N1} (it was idle)"
    assert cli.build_parser().parse_args(["bgp"]).verb is None


def test_the_view_reads_the_speakers_counts_now_not_at_the_last_poll():
    alt = alt_speaker()
    alt.reconcile()
    alt.speaker.neighbors[N1] = {"bgp_state": "Established", "uptime": 3,
                                 "total_message_in": 4, "update_message_in": 4}
    (n,) = alt.view()["neighbors"]
    assert (n["fsm"], n["updates_received"], n["messages_received"]) == ("Established", 4, 4)


def os_ken_event(prefix, as_path_attr, withdraw=False):
    """A received route as os-ken hands it to the adj-RIB-in handler."""
    from collections import OrderedDict

    from os_ken.lib.packet import bgp
    from os_ken.services.protocols.bgp.bgpspeaker import EventPrefix
    from os_ken.services.protocols.bgp.info_base.ipv4 import Ipv4Path
    address, plen = prefix.split("/")
    pattrs = OrderedDict([(bgp.BGP_ATTR_TYPE_ORIGIN, bgp.BGPPathAttributeOrigin(0))])
    if as_path_attr is not None:
        pattrs[bgp.BGP_ATTR_TYPE_AS_PATH] = as_path_attr
    path = Ipv4Path(None, bgp.IPAddrPrefix(int(plen), address), 0, pattrs=pattrs, nexthop=N1,
                    is_withdraw=withdraw)
    return EventPrefix(path, withdraw)


def test_routes_from_os_ken_keep_their_as_paths_when_an_update_shares_its_attributes():
    from os_ken.lib.packet import bgp
    alt = alt_speaker(max_prefix=0)
    shared = bgp.BGPPathAttributeAsPath([[2147483671, 4200000000], {65001, 65002}])
    other = bgp.BGPPathAttributeAsPath([[2147483671]])
    for prefix, attr in (("153.16.1.0/24", shared), ("153.16.2.0/24", shared),
                         ("153.16.3.0/24", other), ("153.16.4.0/24", None),
                         ("153.16.5.0/24", shared)):
        alt._adj_rib_in(os_ken_event(prefix, attr), N1, 2147483671)
    paths = {str(r.prefix): r.as_path for r in alt.state.rib.all_routes()}
    long = (2147483671, 4200000000, 65001, 65002)  # the AS_SET's members in its order
    assert paths == {"153.16.1.0/24": long, "153.16.2.0/24": long,
                     "153.16.3.0/24": (2147483671,), "153.16.4.0/24": (),
                     "153.16.5.0/24": long}
    assert shared.path_seg_list == [[2147483671, 4200000000], {65001, 65002}]  # untouched
    alt._adj_rib_in(os_ken_event("153.16.2.0/24", shared, withdraw=True), N1, 2147483671)
    assert sorted(str(r.prefix) for r in alt.state.rib.all_routes()) == \
        ["153.16.1.0/24", "153.16.3.0/24", "153.16.4.0/24", "153.16.5.0/24"]
    assert alt.state.rib.route_count() == 4


def test_the_view_without_routes_gives_their_number():
    alt = alt_speaker(max_prefix=0)
    alt.speaker.neighbors[N1] = {"bgp_state": "Established", "uptime": 3}
    for i in range(3):
        alt.state.route_event(N1, f"153.16.{i}.0/24", N1, (2147483671,), False)
    full, short = alt.view(), alt.view(routes=False)
    assert len(full["routes"]) == short["routes"] == 3
    assert {k: v for k, v in full.items() if k != "routes"} == \
        {k: v for k, v in short.items() if k != "routes"}


def test_os_kens_route_queue_tests_membership_by_identity_after_the_fix():
    from os_ken.services.protocols.bgp.utils.circlist import CircularListType

    from lisp_app.alt.speaker import queue_by_identity

    class Node:
        """Like os-ken's Destination, whose == renders both sides as strings."""

        compared = 0

        def __eq__(self, other):
            Node.compared += 1
            return NotImplemented

        __hash__ = object.__hash__

    Queue = CircularListType(next_attr_name="next_q", prev_attr_name="prev_q")
    assert queue_by_identity() and queue_by_identity()  # idempotent
    assert CircularListType.node_is_on_list.lisp_app_identity
    queue = Queue.create()
    a, b, c = Node(), Node(), Node()
    assert not queue.is_on_list(a)  # never linked
    queue.append(a)
    queue.append(b)
    assert queue.is_on_list(a) and queue.is_on_list(b) and not queue.is_on_list(c)
    assert queue.pop_first() is a
    assert not queue.is_on_list(a) and queue.is_on_list(b)  # unlinked: linked to itself
    queue.append(a)
    assert [n for n in queue] == [b, a]
    assert Node.compared == 0


def test_collection_pauses_while_routes_pour_in_and_resumes_once_they_stop():
    collector = FakeCollector()
    pause = CollectionPause(collector, quiet=1.0, longest=30.0)
    pause.settle(0.0)
    assert collector.enabled  # no routes: nothing to do
    for t in (1.0, 1.1, 1.5):
        pause.route(t)
    assert not collector.enabled
    pause.settle(2.0)  # the last route 0.5 s ago: still loading
    assert not collector.enabled
    pause.settle(2.6)
    assert collector.enabled and pause.since is None
    pause.route(3.0)  # the next burst pauses again
    assert not collector.enabled
    pause.resume()  # the speaker stops
    assert collector.enabled


def test_a_never_ending_stream_of_routes_keeps_collection_off_for_at_most_longest():
    collector = FakeCollector()
    pause = CollectionPause(collector, quiet=1.0, longest=30.0)
    t = 0.0
    while t < 29.0:
        pause.route(t)
        t += 0.5
        pause.settle(t)
        assert not collector.enabled
    pause.route(30.0)
    pause.settle(30.5)
    assert collector.enabled
    for t in (31.0, 31.5, 32.0):  # still flapping: collection stays on
        pause.route(t)
        pause.settle(t)
        assert collector.enabled
    pause.settle(33.5)  # a quiet spell: the next burst may pause it again
    pause.route(40.0)
    assert not collector.enabled


def test_collection_turned_off_by_someone_else_is_left_alone():
    collector = FakeCollector(enabled=False)
    pause = CollectionPause(collector)
    pause.route(1.0)
    pause.settle(10.0)
    pause.resume()
    assert not collector.enabled


def test_the_adapter_pauses_collection_while_learning_and_resumes_at_reconciliation():
    import gc
    alt = alt_speaker(max_prefix=0)
    alt.pause = CollectionPause(FakeCollector(), quiet=0.0)
    alt.speaker.neighbors[N1] = {"bgp_state": "Established", "uptime": 3}
    from os_ken.lib.packet import bgp
    alt._adj_rib_in(os_ken_event("153.16.1.0/24", bgp.BGPPathAttributeAsPath([[1]])), N1, 1)
    assert not alt.pause.gc.enabled and gc.isenabled()  # the real collector untouched here
    alt.reconcile()
    assert alt.pause.gc.enabled
    assert alt.state.rib.route_count() == 1
