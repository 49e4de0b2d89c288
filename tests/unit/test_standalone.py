"""The switchless Map-Server/Map-Resolver as users run it: ``run_controller.py`` with an ms-mr
config that has neither ``alt:`` nor ``underlay:``, real UDP sockets on loopback (IPv4 and IPv6),
the REST API and a clean SIGTERM. An ETR registers and gets its Map-Notify; an ITR's ECM
Map-Request reaches the ETR; an unknown EID gets a negative reply that covers no site."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from ipaddress import ip_address
from pathlib import Path

import pytest

from lisp_app.protocol import (Action, EidPrefix, EidRecord, EncapsulatedControlMessage, Locator,
                               MapNotify, MappingRecord, MapRegister, MapReply, MapRequest,
                               decode_control, sign, verify_authentication)

ROOT = Path(__file__).resolve().parents[2]


def free_port(kind=socket.SOCK_DGRAM, family=socket.AF_INET, host="127.0.0.1") -> int:
    with socket.socket(family, kind) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    port, api = free_port(), free_port(socket.SOCK_STREAM)
    config = tmp_path / "ms.yaml"
    config.write_text(f"""
role: ms-mr
map_resolver: true
map_server:
  sites: [{{name: site-40, key: s3cret, eid_prefixes: [153.16.40.0/24, "2001:db8:40::/48"]}}]
server: {{addresses: [127.0.0.1, "::1"], port: {port}}}
api: {{port: {api}}}
""")
    proc = subprocess.Popen([sys.executable, str(ROOT / "run_controller.py"), "--config",
                             str(config)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{api}/mapstat", timeout=1)
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"the server exited: {proc.stdout.read()}")
            time.sleep(0.2)
    yield port, api, proc
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


def udp(family=socket.AF_INET, host="127.0.0.1", port=0):
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.bind((host, port))
    s.settimeout(5)
    return s


def test_registration_resolution_and_negative_replies_over_ipv4_and_ipv6(server):
    port, api, proc = server
    for family, etr_host, itr_host, ms_host, eid in (
            (socket.AF_INET, "127.0.0.2", "127.0.0.3", "127.0.0.1", "153.16.40.10"),
            (socket.AF_INET6, "::1", "::1", "::1", "2001:db8:40::10")):
        etr_sock = udp(family, etr_host, 4342)  # the ETR's control port: where ECMs come
        itr_sock = udp(family, itr_host)
        with etr_sock, itr_sock:
            etr, itr = ip_address(etr_host), ip_address(itr_host)
            prefix = EidPrefix.parse("153.16.40.0/24" if family == socket.AF_INET
                                     else "2001:db8:40::/48")
            rec = MappingRecord.for_prefix(prefix, locators=(Locator(etr),), ttl=1440)
            register = sign(MapRegister(0x51, (rec,), want_map_notify=True), "s3cret", 1)
            etr_sock.sendto(register.encode(), (ms_host, port))
            data, peer = etr_sock.recvfrom(65535)
            notify = decode_control(data)
            assert isinstance(notify, MapNotify) and notify.nonce == 0x51
            assert verify_authentication(data, "s3cret") and peer[1] == port

            host_len = 128 if ":" in eid else 32
            request = MapRequest(0x52, (EidRecord.for_prefix(EidPrefix.parse(
                f"{eid}/{host_len}")),), (itr,))
            sport = itr_sock.getsockname()[1]
            ecm = EncapsulatedControlMessage(itr, ip_address(eid), request, source_port=sport)
            itr_sock.sendto(ecm.encode(), (ms_host, port))
            data, _ = etr_sock.recvfrom(65535)
            forwarded = decode_control(data)
            assert isinstance(forwarded, EncapsulatedControlMessage) and forwarded.to_etr
            assert forwarded.message == request and forwarded.source_port == sport

            unknown = "10.9.9.9" if family == socket.AF_INET else "2001:db8:99::1"
            request = MapRequest(0x53, (EidRecord.for_prefix(EidPrefix.parse(
                f"{unknown}/{128 if ':' in unknown else 32}")),), (itr,))
            itr_sock.sendto(EncapsulatedControlMessage(itr, ip_address(unknown), request,
                                                       source_port=sport).encode(),
                            (ms_host, port))
            reply = decode_control(itr_sock.recvfrom(65535)[0])
            (negative,) = reply.records
            assert isinstance(reply, MapReply) and reply.nonce == 0x53
            assert negative.action == Action.NATIVELY_FORWARD
            assert not negative.prefix.contains(prefix) and negative.prefix.network.prefixlen > 0
    stat = json.load(urllib.request.urlopen(f"http://127.0.0.1:{api}/mapstat", timeout=5))
    assert stat["map_server"]["registers_accepted"] == 2
    assert stat["map_server"]["requests_forwarded"] == 2
    assert stat["map_resolver"]["to_map_server"] == 2
    assert stat["map_resolver"]["negative_replies"] == 2
    assert {r["prefix"] for r in stat["registrations"]} == {"153.16.40.0/24", "2001:db8:40::/48"}
    assert stat["bridges"] == [] and stat["counters"]["control_send_failed"] == 0
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{api}/metrics", timeout=5).read()
    assert b"lisp_ms_registers_accepted_total 2" in metrics


def test_a_burst_is_answered_whole_and_the_api_stays_responsive(server):
    """2,000 ECM Map-Requests sent in bursts of 100 (the socket loops read the datagrams
    waiting in a row, yielding to the other green threads every few dozen): every one gets its
    negative reply, and the API answers while they flow and after."""
    port, api, _proc = server
    n = 2000
    with udp() as itr_sock:
        itr_sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        itr, sport = ip_address("127.0.0.1"), itr_sock.getsockname()[1]
        eids = [f"10.9.{i >> 8}.{i & 255}" for i in range(n)]
        requests = [EncapsulatedControlMessage(
            itr, ip_address(eid), MapRequest(0x1000 + i, (EidRecord.for_prefix(
                EidPrefix.parse(f"{eid}/32")),), (itr,)), source_port=sport).encode()
            for i, eid in enumerate(eids)]
        nonces = set()
        for start in range(0, n, 100):  # in bursts of 100, read back between them
            for payload in requests[start:start + 100]:
                itr_sock.sendto(payload, ("127.0.0.1", port))
            if start == 1000:
                urllib.request.urlopen(f"http://127.0.0.1:{api}/mapstat", timeout=5)
            while len(nonces) < start + 100:
                reply = decode_control(itr_sock.recvfrom(65535)[0])
                assert isinstance(reply, MapReply)
                nonces.add(reply.nonce)
    assert nonces == {0x1000 + i for i in range(n)}
    stat = json.load(urllib.request.urlopen(f"http://127.0.0.1:{api}/mapstat", timeout=5))
    assert stat["map_resolver"]["negative_replies"] == n
    assert stat["counters"]["control_send_failed"] == 0


def test_the_socket_loops_find_the_real_socket_inside_a_green_one():
    from eventlet.green import socket as green

    from lisp_app.standalone import _raw
    with green.socket(socket.AF_INET, socket.SOCK_DGRAM) as g, udp() as plain:
        raw = _raw(g)
        assert raw is not None and raw is not g and raw.fileno() == g.fileno()
        assert raw.gettimeout() == 0.0 and _raw(plain) is None


def test_garbage_is_counted_and_sigterm_stops_the_server(server):
    port, api, proc = server
    with udp() as s:
        s.sendto(b"\x10\x00", ("127.0.0.1", port))
        s.sendto(b"", ("127.0.0.1", port))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        stat = json.load(urllib.request.urlopen(f"http://127.0.0.1:{api}/mapstat", timeout=5))
        if stat["counters"]["control_malformed"] == 2:
            break
        time.sleep(0.1)
    assert stat["counters"]["control_malformed"] == 2
    proc.terminate()
    assert proc.wait(10) == 0


def test_a_port_in_use_is_refused_with_the_address(tmp_path):
    with udp() as taken:
        port = taken.getsockname()[1]
        config = tmp_path / "ms.yaml"
        config.write_text(f"role: ms-mr\nmap_server: {{sites: []}}\napi: {{port: 0}}\n"
                          f"server: {{addresses: [127.0.0.1], port: {port}}}\n")
        done = subprocess.run([sys.executable, str(ROOT / "run_controller.py"), "--config",
                               str(config)], cwd=ROOT, capture_output=True, text=True,
                              timeout=30)
    assert done.returncode == 1
    assert f"cannot bind UDP 127.0.0.1 port {port}" in done.stdout + done.stderr


def test_address_texts_are_made_once_per_address_object_and_bounded():
    from lisp_app.standalone import AddressTexts
    texts = AddressTexts(limit=2)
    a, b = ip_address("192.0.2.1"), ip_address("2001:db8::1")
    assert texts.text(a) == "192.0.2.1" and texts.text(b) == "2001:db8::1"
    assert texts.text(a) is texts.text(a)  # the same str: made once
    c = ip_address("192.0.2.1")  # equal but another object: its own entry, the same text
    assert texts.text(c) == "192.0.2.1" and len(texts._texts) <= 2
