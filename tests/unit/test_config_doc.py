"""docs/configuration.rst against the schema it documents.

(a) the page is exactly the generator's output; (b) the keys the page documents and the keys of
the schema are the same set, each side computed independently of the generator (the page's
definition-list terms; the dataclasses walked with dataclasses.fields); (c) every key used in
examples/*.yaml is documented; (d) the parity check itself notices a missing and an extra key.
"""

from __future__ import annotations

import dataclasses
import re
import textwrap
import types
import typing
from pathlib import Path

import pytest
import yaml

from lisp_app.config import Config, parse_config
from lisp_app.config_doc import REGENERATE, reference_rst
from lisp_app.protocol.addresses import EidPrefix

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "configuration.rst"
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))

# A documented key is a definition-list term: a line holding nothing but one literal.
TERM = re.compile(r"^``([A-Za-z_][A-Za-z0-9_\[\].]*)``$")


def documented_keys(text: str) -> set[str]:
    return {m.group(1) for line in text.splitlines() if (m := TERM.match(line))}


def schema_keys(cls: type = Config, prefix: str = "") -> set[str]:
    """Every key path of the schema: nested mappings add ``.``, lists of mappings ``[].``."""
    out = set()
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        path = prefix + f.name
        out.add(path)
        hint = hints[f.name]
        if typing.get_origin(hint) in (typing.Union, types.UnionType):
            hint = next(a for a in typing.get_args(hint) if a is not type(None))
        child = path + "."
        if typing.get_origin(hint) is tuple:
            hint, child = typing.get_args(hint)[0], path + "[]."
        if dataclasses.is_dataclass(hint) and hint is not EidPrefix:  # EidPrefix: a string
            out |= schema_keys(hint, child)
    return out


def parity(text: str) -> tuple[set[str], set[str]]:
    """(schema keys the page misses, keys the page has that the schema does not)."""
    documented, schema = documented_keys(text), schema_keys()
    return schema - documented, documented - schema


def yaml_keys(node, prefix: str = "") -> set[str]:
    """The key paths a YAML document uses, in the page's notation."""
    out = set()
    if isinstance(node, dict):
        for key, value in node.items():
            path = prefix + str(key)
            out.add(path)
            out |= yaml_keys(value, path + ".")
    elif isinstance(node, list):
        for item in node:
            out |= yaml_keys(item, prefix[:-1] + "[].")
    return out


def test_page_is_the_generators_output():
    assert PAGE.exists(), f"docs/configuration.rst is missing: run {REGENERATE}"
    assert PAGE.read_text() == reference_rst(), (
        f"docs/configuration.rst is out of date with lisp_app/config.py: run {REGENERATE}")


def test_every_schema_key_is_documented_and_nothing_else():
    missing, extra = parity(PAGE.read_text())
    assert not missing, f"schema keys not documented: {sorted(missing)}"
    assert not extra, f"documented keys the schema lacks: {sorted(extra)}"


def test_the_schema_walk_sees_the_deep_keys():
    keys = schema_keys()
    assert {"role", "eid_prefixes[].locators[].priority", "alt.neighbors[].remote_as",
            "alt.neighbors[].import_filter[].le", "lisp_bridge.site_ports[].instance_id",
            "map_server.sites[].eid_prefixes", "underlay.mtu"} <= keys
    assert not any(k.startswith("eid_prefixes[].prefix.") for k in keys)  # no EidPrefix fields
    assert len(keys) > 60


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_every_key_of_the_examples_is_documented(example):
    used = yaml_keys(yaml.safe_load(example.read_text()))
    assert used, f"{example.name}: no keys found"
    undocumented = used - documented_keys(PAGE.read_text())
    assert not undocumented, f"{example.name} uses undocumented keys: {sorted(undocumented)}"


def test_the_examples_on_the_page_are_valid_configurations():
    text = PAGE.read_text()
    blocks = re.findall(r"^\.\. code-block:: yaml\n\n((?:    .*\n|\n)+)", text, re.M)
    assert blocks
    for block in blocks:
        parse_config(textwrap.dedent(block), "docs/configuration.rst")


def test_parity_notices_a_missing_and_an_extra_key():
    text = PAGE.read_text()
    assert parity(text) == (set(), set())
    without_mtu = text.replace("\n``underlay.mtu``\n", "\n")
    assert without_mtu != text
    assert parity(without_mtu) == ({"underlay.mtu"}, set())
    with_typo = text.replace("\n``underlay.mtu``\n", "\n``underlay.mtuu``\n")
    assert parity(with_typo) == ({"underlay.mtu"}, {"underlay.mtuu"})
    with_extra = text + "\n``alt.neighbors[].hold_time``\n    :Type: integer\n"
    assert parity(with_extra) == (set(), {"alt.neighbors[].hold_time"})


def test_example_key_check_notices_an_undocumented_key():
    used = yaml_keys(yaml.safe_load("alt: {neighbors: [{address: 1.2.3.4, holdtime: 9}]}"))
    assert used == {"alt", "alt.neighbors", "alt.neighbors[].address", "alt.neighbors[].holdtime"}
    assert used - documented_keys(PAGE.read_text()) == {"alt.neighbors[].holdtime"}
