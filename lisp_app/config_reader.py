"""Reading plain YAML data into frozen dataclasses, following their field types: the reader behind
:mod:`lisp_app.config`. A value that does not fit raises :class:`ConfigError` naming the file,
the key path and the reason; unknown keys are errors too."""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from ipaddress import IPv4Address, IPv6Address, ip_address

from .protocol.addresses import EidPrefix


class ConfigError(ValueError):
    """A configuration problem: ``source`` (the file), ``path`` (the key) and ``reason``."""

    def __init__(self, source: str, path: str, reason: str):
        super().__init__(f"{source}: {path or '(top level)'}: {reason}")
        self.source = source
        self.path = path
        self.reason = reason


class Reader:
    """Builds a dataclass from plain YAML data, following the field types."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, path: str, reason: str):
        raise ConfigError(self.source, path, reason)

    def read(self, cls, raw, path: str):
        if not isinstance(raw, dict):
            self.fail(path, f"expected a mapping of keys, got {_kind(raw)}")
        hints = typing.get_type_hints(cls)
        names = {f.name for f in dataclasses.fields(cls)}
        for key in raw:
            if key not in names:
                self.fail(_join(path, str(key)), f"unknown key (known: {', '.join(sorted(names))})")
        values = {}
        for f in dataclasses.fields(cls):
            sub = _join(path, f.name)
            if f.name not in raw:
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    self.fail(sub, "required key is missing")
                continue
            values[f.name] = self.value(hints[f.name], raw[f.name], sub, f.metadata)
        return cls(**values)

    def value(self, hint, raw, path: str, meta):
        origin = typing.get_origin(hint)
        if origin in (typing.Union, types.UnionType):
            options = typing.get_args(hint)
            if raw is None and type(None) in options:
                return None
            if all(o in (IPv4Address, IPv6Address, type(None)) for o in options):
                return self.address(raw, path, tuple(o for o in options if o is not type(None)))
            return self.value(next(o for o in options if o is not type(None)), raw, path, meta)
        if hint is str and meta.get("secret"):  # keys, passwords: exactly as written, or refused
            if not isinstance(raw, str):
                self.fail(path, f"YAML read this as {_kind(raw)}, not as text (0123 becomes 83, "
                          "12:30 becomes 750): quote it, e.g. key: \"0123\"")
            if not raw:
                self.fail(path, "must not be empty")
        if hint is str and isinstance(raw, (int, float)) and not isinstance(raw, bool):
            raw = str(raw)
        if origin is tuple:
            item = typing.get_args(hint)[0]
            if not isinstance(raw, list):
                self.fail(path, f"expected a list, got {_kind(raw)}")
            return tuple(self.value(item, r, f"{path}[{i}]", {}) for i, r in enumerate(raw))
        if hint is EidPrefix:
            if not isinstance(raw, str):
                self.fail(path, f"expected a prefix such as 10.1.0.0/24, got {_kind(raw)}")
            try:
                return EidPrefix.parse(raw)
            except ValueError as exc:
                self.fail(path, str(exc))
        if dataclasses.is_dataclass(hint):
            return self.read(hint, raw, path)
        if hint is bool:
            if not isinstance(raw, bool):
                self.fail(path, f"expected true or false, got {_kind(raw)}")
            return raw
        if hint is int:
            if isinstance(raw, str) and meta.get("max") == 2**64 - 1:
                try:
                    raw = int(raw, 16)
                except ValueError:
                    self.fail(path, f"{raw!r} is not a hex number")
            if isinstance(raw, bool) or not isinstance(raw, int):
                self.fail(path, f"expected a whole number, got {_kind(raw)}")
            return self.ranged(raw, path, meta)
        if hint is float:
            if isinstance(raw, bool) or not isinstance(raw, (int, float)):
                self.fail(path, f"expected a number, got {_kind(raw)}")
            if not math.isfinite(raw):
                self.fail(path, f"expected a finite number, got {raw}")
            return self.ranged(float(raw), path, meta)
        if hint is str:
            if not isinstance(raw, str):
                self.fail(path, f"expected a string, got {_kind(raw)}")
            if "choices" in meta and raw not in meta["choices"]:
                self.fail(path, f"{raw!r} is not one of {', '.join(meta['choices'])}")
            if "pattern" in meta and not re.match(meta["pattern"], raw):
                self.fail(path, f"{raw!r} is not well-formed")
            return raw
        if hint in (IPv4Address, IPv6Address):
            return self.address(raw, path, (hint,))
        raise TypeError(f"config schema: no reader for {hint!r}")  # a bug in the schema

    def ranged(self, value, path: str, meta):
        lo, hi = meta.get("min"), meta.get("max")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            self.fail(path, f"{value} is outside {lo}..{hi}")
        return value

    def address(self, raw, path: str, families: tuple):
        if not isinstance(raw, str):
            self.fail(path, f"expected an IP address, got {_kind(raw)}")
        try:
            addr = ip_address(raw)
        except ValueError:
            self.fail(path, f"{raw!r} is not an IP address")
        if type(addr) not in families:
            want = " or ".join("IPv4" if f is IPv4Address else "IPv6" for f in families)
            self.fail(path, f"{raw} is not an {want} address")
        return addr


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _kind(raw) -> str:
    if raw is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: f"the string {raw!r}", bool: f"{raw}"}.get(
        type(raw), f"{raw!r}")


