"""The configuration reference (``docs/configuration.rst``), generated from the schema.

The schema is the dataclass tree under :class:`lisp_app.config.Config`: each field's type says how
the reader takes a value, its metadata holds ``doc``, ``min``, ``max``, ``choices`` and
``pattern``. This module walks that tree and writes one entry per key path (``alt.neighbors[].
remote_as``) with its type, default, allowed values and text, after a hand-written introduction.
Regenerate the page with::

    .venv/bin/python -m lisp_app.config_doc > docs/configuration.rst

``tests/unit/test_config_doc.py`` fails when the page and this output differ.
"""

from __future__ import annotations

import dataclasses
import re
import sys
import types
import typing
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from .config import Config
from .protocol.addresses import EidPrefix

REGENERATE = ".venv/bin/python -m lisp_app.config_doc > docs/configuration.rst"


@dataclass(frozen=True)
class KeyDoc:
    """One documented key."""

    path: str            # e.g. "eid_prefixes[].locators[].priority"
    type: str            # how the reader takes the value, in words
    default: str         # rst text: "required", a literal, or words
    allowed: str         # rst text: a range, a choice, a pattern, or ""
    doc: str             # the field's doc text (rst)
    section: type | None  # the dataclass of the keys under it (a mapping or a list of them)


def _optional(hint) -> tuple[object, bool]:
    """(the hint without None, whether None was allowed)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if type(None) in args:
            rest = tuple(a for a in args if a is not type(None))
            return (rest[0] if len(rest) == 1 else typing.Union[rest]), True
    return hint, False


def _words(hint, meta: dict, plural: bool = False) -> str:
    """How the reader (lisp_app.config_reader.Reader) takes a value of this type, in words."""
    hint, _ = _optional(hint)
    origin = typing.get_origin(hint)
    if origin is tuple:
        return "list of " + _words(typing.get_args(hint)[0], {}, plural=True)
    if origin in (typing.Union, types.UnionType):
        families = typing.get_args(hint)
        if set(families) == {IPv4Address, IPv6Address}:
            return "IPv4 or IPv6 addresses" if plural else "IPv4 or IPv6 address"
        raise TypeError(f"config_doc: no words for {hint!r}")
    if hint is EidPrefix:  # a dataclass, but read from a string (as the reader does)
        return "EID prefixes" if plural else "EID prefix"
    if dataclasses.is_dataclass(hint):
        return "mappings" if plural else "mapping"
    if hint is IPv4Address:
        return "IPv4 addresses" if plural else "IPv4 address"
    if hint is IPv6Address:
        return "IPv6 addresses" if plural else "IPv6 address"
    if hint is bool:
        return "booleans" if plural else "boolean (``true`` or ``false``)"
    if hint is int:
        if meta.get("max") == 2**64 - 1:  # the reader's rule: such a string is read as hex
            return "integer, or a string of hex digits"
        return "integers" if plural else "integer"
    if hint is float:
        return "numbers" if plural else "number"
    if hint is str:
        return "strings" if plural else "string"
    raise TypeError(f"config_doc: no words for {hint!r}")


def _literal(value) -> str:
    """A default value as YAML would write it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    if isinstance(value, (IPv4Address, IPv6Address, EidPrefix)):
        return str(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if dataclasses.is_dataclass(value):
        items = []
        for f in dataclasses.fields(value):
            v = getattr(value, f.name)
            if f.default is not dataclasses.MISSING and v == f.default:
                continue  # written as the reader would need it: only what differs
            items.append(f"{f.name}: {_literal(v)}")
        return "{" + ", ".join(items) + "}"
    raise TypeError(f"config_doc: no literal for {value!r}")


def _default(f: dataclasses.Field, section: type | None) -> str:
    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
        return "required"
    if f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
        if dataclasses.is_dataclass(value):
            return "every key below at its default"
        return f"``{_literal(value)}``"
    if f.default is None:
        return "not set" + (" (the section is absent)" if section is not None else "")
    return f"``{_literal(f.default)}``"


def _allowed(meta: dict) -> str:
    parts = []
    if "min" in meta or "max" in meta:
        lo, hi = meta.get("min"), meta.get("max")
        parts.append(f"{'' if lo is None else lo}..{'' if hi is None else hi}")
    if "choices" in meta:
        parts.append("one of " + ", ".join(f"``{c}``" for c in meta["choices"]))
    if "pattern" in meta:
        parts.append(f"matches ``{meta['pattern']}``")
    return "; ".join(parts)


_SINGLE_BACKTICKS = re.compile(r"(?<!`)`([^`]+)`(?!`)")


def _sentence(text: str) -> str:
    """The schema's doc text as an rst sentence: `x` becomes a literal, a capital first letter and
    a full stop."""
    text = _SINGLE_BACKTICKS.sub(r"``\1``", text.strip())
    if text and text[0].isalpha():
        text = text[0].upper() + text[1:]
    if text and not text.endswith("."):
        text += "."
    return text


def _section_of(hint) -> type | None:
    """The dataclass whose keys lie under a field: its own type, or its list's item type."""
    hint, _ = _optional(hint)
    if typing.get_origin(hint) is tuple:
        hint = typing.get_args(hint)[0]
    if hint is EidPrefix or not (isinstance(hint, type) and dataclasses.is_dataclass(hint)):
        return None
    return hint


def _child_prefix(path: str, hint) -> str:
    hint, _ = _optional(hint)
    return f"{path}[]." if typing.get_origin(hint) is tuple else f"{path}."


def keys(cls: type = Config, prefix: str = "") -> list[KeyDoc]:
    """Every key of the schema, depth first, each followed by the keys under it."""
    out = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        section = _section_of(hint)
        path = prefix + f.name
        out.append(KeyDoc(path, _words(hint, dict(f.metadata)), _default(f, section),
                          _allowed(dict(f.metadata)), _sentence(f.metadata.get("doc", "")),
                          section))
    for f in dataclasses.fields(cls):  # sub-sections after the section's own keys
        hint = hints[f.name]
        section = _section_of(hint)
        if section is not None:
            out.extend(keys(section, _child_prefix(prefix + f.name, hint)))
    return out


def _groups(cls: type = Config, prefix: str = "", title: str = "Top level") -> list:
    """(title, dataclass, keys) per section, depth first."""
    hints = typing.get_type_hints(cls)
    own = [k for k in keys(cls, prefix) if "." not in k.path[len(prefix):]]
    groups = [(title, cls, own)]
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        section = _section_of(hint)
        if section is not None:
            child = _child_prefix(prefix + f.name, hint)
            groups += _groups(section, child, child[:-1])
    return groups


INTRO = """\
.. This page is generated by lisp_app/config_doc.py from the schema in lisp_app/config.py.
   Do not edit it by hand: change the schema (or the generator's introduction) and run
   {regenerate}

Configuration reference
=======================

One controller process serves one LISP site, and one YAML file configures it::

    .venv/bin/python run_controller.py --config site.yaml --ofp-tcp-listen-port 6653

Two commented examples ship with the code: ``examples/site1.yaml`` (an xTR with IPv4 and IPv6
EID prefixes and most top-level keys written out) and ``examples/alt-site.yaml`` (the seed's site
on LISP+ALT). The reference below lists every key the reader accepts; it is generated from the
schema (the dataclasses in ``lisp_app/config.py``), so it cannot list a key that does not exist
or miss one that does.

A minimal xTR that asks a Map-Resolver for its mappings:

.. code-block:: yaml

    role: xtr
    instance_id: 1000
    eid_prefixes:
      - prefix: 10.1.0.0/24
    lisp_bridge:
      datapath_id: "0000000000000001"
    underlay:
      datapath_id: "0000000000000002"
      rloc: 192.0.2.1
      next_hop: 192.0.2.254
    site_gateway:
      ipv4: 10.1.0.1
    map_resolvers: [198.51.100.10]

Errors
------

The whole file is checked before anything starts. The first problem found stops the controller
with exit status 2 and one line naming the file, the key path and the reason::

    lisp_app: site.yaml: eid_prefixes[0].locators[0].priority: 300 is outside 0..255
    lisp_app: site.yaml: eid_prefixes[0].locators[0].priorty: unknown key (known: priority, rloc, weight)
    lisp_app: site.yaml: underlay: required key is missing
    lisp_app: site.yaml: (top level): not valid YAML: line 3, column 1: ...

Unknown keys are errors, never ignored: a misspelt key must not fall back to a default
silently; so is a key given twice in one mapping (plain YAML would keep the last one), and a file
that is not UTF-8 text. ``lisp-controller --check --config FILE`` (or ``run_controller.py
--check``) validates a file offline with the same messages: exit status 0 when it is valid, 2 when
it is not. The running controller re-reads its file on SIGHUP (``kill -HUP PID``, ``systemctl
reload``): an invalid file is refused with the same message in the log and the running
configuration kept; a valid one is applied live where it changes ``eid_prefixes``,
``map_servers``, ``alt.neighbors``, ``alt.eid_space``, ``map_resolvers``,
``map_request_targets``, ``timers``, ``buffer`` or ``data_probes``, and refused whole, naming
each key, when it changes anything else (that needs a restart). `Deploying
<deploying.rst>`__ ("Reloading the configuration") says what each change does. Key paths are written as the messages write them: ``a.b`` is key ``b`` inside the
mapping ``a``; ``a[]`` stands for every item of the list ``a`` (``a[0]`` in a message is its
first item).

Writing values
--------------

- A ``datapath_id`` written as a number is decimal; written as a string it is hexadecimal, as
  ``ovs-vsctl`` shows it (``"0000000000000010"`` is 16). Quote it: YAML reads an unquoted
  ``0000000000000010`` as the octal number 8.
- Quote IPv6 addresses and prefixes (``"2001:db8:1::/48"``): YAML reads some colon-separated
  strings of digits as numbers.
- EID prefixes are written ``10.1.0.0/24`` or ``[1000]10.1.0.0/24`` (instance-id in brackets);
  host bits must be zero. A local prefix written without an instance-id takes the top-level
  ``instance_id``; ``[0]10.1.0.0/24`` names instance-id 0 whatever the site's.
- A whole number is accepted where a number is expected, and a number where a string is
  expected (it is taken as its text); only ``true`` or ``false`` is accepted where a boolean is
  expected. NaN and infinity (``.nan``, ``.inf``) are refused.
- Authentication keys and passwords must be YAML strings, and not empty: YAML reads ``0123`` as
  83, ``0x1F`` as 31 and ``12:30`` as 750, so such a value is refused with a hint to quote it
  (``key: "0123"``).

Rules that span keys
--------------------

Besides each key's own type and range, the reader enforces:

- the ``etr`` and ``xtr`` roles need at least one entry in ``eid_prefixes``; local EID prefixes
  must not overlap;
- the ``itr`` and ``xtr`` roles need somewhere to send Map-Requests: ``map_resolvers``,
  ``map_request_targets`` or ``alt``. With ``alt`` set, Map-Requests travel the ALT and the other
  two are not used; otherwise a Map-Request goes, in an ECM, to every Map-Resolver listed, or else
  plainly to every target listed;
- ``map_resolver: true`` needs ``alt`` or ``map_server``: on the ALT it resolves over it, without
  an ALT through the co-located Map-Server's registrations; the ``ms-mr`` role needs
  ``map_server``, ``map_resolver: true`` or both;
- ``lisp_bridge`` and ``underlay`` are required, except for an ``ms-mr`` without ``alt``: without
  ``underlay`` (and then without ``lisp_bridge``) it needs no switch and serves UDP on the
  ``server`` sockets itself; with ``underlay`` it serves through the switch as on the ALT;
- ``underlay.rloc_ipv6`` and ``underlay.next_hop_ipv6`` go together; without them
  ``map_resolvers``, ``map_request_targets``, ``map_servers`` and ``natively_forward.petrs`` take
  IPv4 addresses only;
- the two bridges need datapath ids of their own; ``api.host`` is an IP address;
- ``lisp_bridge.native_port`` and ``underlay.native_port`` go together;
  ``natively_forward.mode: petr`` needs at least one proxy ETR;
- every role but ``ms-mr`` needs at least one site port; site port names must differ from each
  other and from ``lisp_bridge.gpe_port``;
- ``alt.eid_space`` items and the import filter prefixes must be valid IP prefixes (host bits
  zero); an import filter entry needs prefix length <= ``ge`` <= ``le`` <= 32 (128 for IPv6);
  neighbour addresses must differ from each other and from ``alt.address``, and each neighbour
  has a GRE port of its own.

When the switch connects, the controller also checks that the bridges hold the ports the file
names (site ports, the GPE port for the ``itr``, ``etr`` and ``xtr`` roles, ``alt.port`` and the
neighbours' GRE ports, the uplink); it logs the missing ones and leaves that bridge unprogrammed.

Reference
---------

Each entry gives the key's type, its default (or "required"), the values allowed, and what it
does.
"""


def reference_rst() -> str:
    """The whole page."""
    out = [INTRO.format(regenerate=REGENERATE)]
    for title, cls, group in _groups():
        heading = "Top level" if title == "Top level" else f"Keys under ``{title}``"
        out += ["", heading, "~" * len(heading), ""]
        out += [_sentence((cls.__doc__ or "").strip().splitlines()[0]), ""]
        for key in group:
            out.append(f"``{key.path}``")
            kind = key.type
            if key.section is not None:
                under = key.path + ("[]" if kind.startswith("list") else "")
                kind += f" (keys under ``{under}``)"
            out.append(f"    :Type: {kind}")
            out.append(f"    :Default: {key.default}")
            if key.allowed:
                out.append(f"    :Allowed: {key.allowed}")
            if key.doc:
                out += ["", f"    {key.doc}"]
            out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def main() -> int:
    sys.stdout.write(reference_rst())
    return 0


if __name__ == "__main__":
    sys.exit(main())
