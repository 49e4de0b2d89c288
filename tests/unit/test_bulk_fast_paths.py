"""The bulk install's fast paths give exactly what the general ones give: the API's prefix
parser (lisp_app.api.server._parse_prefix) against EidPrefix.parse, same prefix or same error,
and ofwire's address encoder against ipaddress."""

from __future__ import annotations

import random
from ipaddress import ip_address

import pytest

from lisp_app.api.server import _parse_prefix
from lisp_app.dataplane.ofwire import _ip
from lisp_app.protocol.addresses import EidPrefix

ODD = ["[1000]10.1.0.0/24", "10.1.0.0/24", "[0]10.0.0.0/8", "[1000]0.0.0.0/0", "0.0.0.0/0",
       "[16777215]255.255.255.255/32", "[16777216]10.0.0.0/8", "[1000]10.1.0.1/24",
       "[1000]10.1.0.0/024", "[1000]10.1.0.0/33", "[1000]10.1.0.0/", "[1000]10.1.0.0",
       "[1000]010.1.0.0/24", "[1000]10.1.0/24", "[1000]10.1.0.256/32", " [1000]10.1.0.0/24",
       "[1000]10.1.0.0/24 ", "[ 1000]10.1.0.0/24", "[+1000]10.1.0.0/24", "[1_000]10.1.0.0/24",
       "[1000 10.1.0.0/24", "[]10.1.0.0/24", "[x]10.1.0.0/24", "[1000]10.1.0.0/255.255.255.0",
       "[1000]2001:db8::/32", "2001:db8::1/128", "[1000]2001:db8::1/64", "[1000]/24", "",
       "[1000]10.1.0.0/٢٤", "[١٠٠٠]10.1.0.0/24", "[1000]10.1.0.0/+24", "[1000]1.2.3.4/0",
       "[1000]10.1.0.0//24", "[1000]10.1.0.0/24/", "[1000]::ffff:10.1.0.0/120"]


def outcome(parse, text):
    try:
        return parse(text, 1000)
    except ValueError as exc:
        return f"error: {exc}"


@pytest.mark.parametrize("text", ODD)
def test_the_fast_prefix_parser_agrees_on_odd_input(text):
    assert outcome(_parse_prefix, text) == outcome(EidPrefix.parse, text)


def test_the_fast_prefix_parser_agrees_on_many_prefixes():
    rng = random.Random(16)
    for _ in range(5000):
        plen = rng.randrange(33)
        value = rng.getrandbits(32) & ~(0xFFFFFFFF >> plen) if rng.random() < 0.8 \
            else rng.getrandbits(32)
        iid = rng.choice(["", "[0]", f"[{rng.randrange(1 << 24)}]", f"[{rng.randrange(1 << 30)}]"])
        text = f"{iid}{ip_address(value)}/{plen}"
        got = outcome(_parse_prefix, text)
        assert got == outcome(EidPrefix.parse, text), text
        if not isinstance(got, str):
            assert type(got.network) is type(EidPrefix.parse(text, 1000).network)


@pytest.mark.parametrize("text", ["10.1.2.3", "0.0.0.0", "255.255.255.255", "2001:db8::1", "::",
                                  "::ffff:10.1.2.3", "fe80::1%eth0", "ff:ff::ff"])
def test_the_address_encoder_agrees_with_ipaddress(text):
    assert _ip(text) == ip_address(text).packed
    assert _ip(ip_address(text)) == ip_address(text).packed


@pytest.mark.parametrize("text", ["10.1.2", "010.1.2.3", "10.1.2.256", "2001:db8::g", "", "x"])
def test_the_address_encoder_refuses_what_ipaddress_refuses(text):
    with pytest.raises(ValueError):
        ip_address(text)
    with pytest.raises(ValueError):
        _ip(text)
