"""The installer, sans I/O: it owns the flows and select groups that program the map-cache into the
LISP bridge, and the group ids.

Every change of a map-cache entry becomes one :class:`~lisp_app.dataplane.effects.FlowChange`
at once, so the cache and the switch never disagree. Group ids rise and are not reused until the
sequence wraps: OVS loses a packet-out sent through a group re-added under the id of one just
deleted (measured: the held packet re-injected after a Map-Reply, in 3 of 5 tries right after a
controller restart).

Per mapping the installer keeps only what compiles its flows again, shared between the mappings
that have it in common: the bridge compiled for, the locators' shares, whether the mapping has a
select group (its id is the group-id table's) and the entry's action. The flows themselves are
compiled again when asked for (a change of the mapping, reconciliation, traffic watching): a
million mappings do not keep a million flows, groups and matches (bench/scale.py).
"""

from __future__ import annotations

from ipaddress import ip_address, ip_network

from ..dataplane.effects import LISP, FlowChange
from ..dataplane.flows import Flow, Group
from ..dataplane.pipeline import FlowRun, LispBridge
from ..mapping.cache import SHARED_POOL_LIMIT, CacheEntry
from ..mapping.locators import UNUSABLE_PRIORITY, select_shares, tunnel_address
from ..protocol.addresses import EidPrefix
from ..protocol.records import Action

FIRST_GROUP_ID = 1
LAST_GROUP_ID = 0xFFFFFF00  # OFPG_MAX


class GroupIds:
    """Select-group ids of the mappings that share traffic among several locators."""

    def __init__(self) -> None:
        self._of: dict[EidPrefix, int] = {}
        self._in_use: set[int] = set()
        self._next = FIRST_GROUP_ID

    def of(self, prefix: EidPrefix) -> int:
        """The mapping's group id, allocated on first use from the rising sequence."""
        gid = self._of.get(prefix)
        if gid is None:
            gid = self._next
            while gid in self._in_use:
                gid = _after(gid)
            self._next = _after(gid)
            self._of[prefix] = gid
            self._in_use.add(gid)
        return gid

    def get(self, prefix: EidPrefix) -> int | None:
        """The mapping's group id, if it has one."""
        return self._of.get(prefix)

    def release(self, prefix: EidPrefix) -> int:
        gid = self._of.pop(prefix)
        self._in_use.discard(gid)
        return gid

    def avoid(self, ids) -> None:
        """Ids the switch holds from before (a previous controller's): new groups take ids above
        them, so that none is deleted and re-added under the same id."""
        top = max((i for i in ids if FIRST_GROUP_ID <= i <= LAST_GROUP_ID), default=None)
        if top is not None and top >= self._next:
            self._next = _after(top)

    def owners(self) -> dict[EidPrefix, int]:
        return dict(self._of)


def _after(gid: int) -> int:
    return gid + 1 if gid < LAST_GROUP_ID else FIRST_GROUP_ID


class FlowInstaller:
    """The map-cache's flows and groups on the LISP bridge. ``is_down(address)`` says whether
    RLOC probing found a locator down (its traffic then goes to the mapping's other locators)."""

    def __init__(self, rloc_families: tuple[int, ...] = (4,), is_down=None, petrs=()):
        self.rloc_families = rloc_families
        self.is_down = is_down
        self.petrs = tuple(petrs)  # Locators: where natively-forward traffic goes, encapsulated
        self.bridge: LispBridge | None = None
        # prefix -> (bridge, shares, grouped, action): what compiles its flows (_compile); equal
        # records are one object (_records, per bridge, bounded as the map-cache's pools are)
        self.installed: dict[EidPrefix, tuple] = {}
        self._records: dict[tuple, tuple] = {}
        self.groups = GroupIds()

    def attach(self, bridge: LispBridge) -> None:
        """The LISP bridge connected (or its ports changed)."""
        self.bridge = bridge
        self._records = {}

    def _record(self, shares, grouped: bool, action: Action) -> tuple:
        """The shared record of a mapping compiled now with these shares, group and action."""
        key = (shares, grouped, action)
        record = self._records.get(key)
        if record is None:
            if len(self._records) >= SHARED_POOL_LIMIT:
                self._records.clear()
            record = self._records[key] = (self.bridge, shares, grouped, action)
        return record

    def _compile(self, prefix: EidPrefix, record: tuple) -> tuple[list[Flow], Group | None]:
        """The flows and group a mapping was installed with (the same as then: same bridge,
        shares, group id and action; the compiler reads nothing else of the entry)."""
        bridge, shares, grouped, action = record
        return bridge.mapping_flows(CacheEntry(prefix, (), action), shares,
                                    self.groups.get(prefix) if grouped else None)

    def shares(self, entry: CacheEntry):
        """The locators that carry the entry's traffic, with the RLOC families we can reach."""
        return select_shares(self.locators_of(entry), self.is_down, families=self.rloc_families)

    def locators_of(self, entry: CacheEntry):
        """The entry's locators; for a natively-forward negative entry, the proxy ETRs (when
        the site sends such traffic to them)."""
        if self.petrs and entry.negative and entry.action == Action.NATIVELY_FORWARD:
            return self.petrs
        return entry.locators

    def probe_targets(self, entry: CacheEntry) -> list:
        """The addresses RLOC probing watches for the entry: each usable locator's tunnel
        address, down ones included (so that they can come back)."""
        out = []
        for loc in self.locators_of(entry):
            if loc.priority < UNUSABLE_PRIORITY:
                address = tunnel_address(loc, self.rloc_families)
                if address is not None:
                    out.append(address)
        return out

    def _place(self, entry: CacheEntry) -> tuple:
        """The entry's shares and its group id (None: no group), allocating the id."""
        shares = self.shares(entry)
        return shares, self.groups.of(entry.prefix) if self._grouped(entry, shares) else None

    def _grouped(self, entry: CacheEntry, shares) -> bool:
        """Whether the entry with these shares has a select group. A mapping whose locators
        share its traffic keeps its select group while one of them is left: a locator going
        down or up then modifies the group in place, not the flow."""
        return len(shares) > 1 or (
            len(shares) == 1 and self.is_down is not None and len(self.locators_of(entry)) > 1
            and len(select_shares(self.locators_of(entry), families=self.rloc_families)) > 1)

    def install(self, entry: CacheEntry) -> list[FlowChange]:
        if self.bridge is None:
            return []  # programmed with everything else when the bridge connects
        old = self.installed.get(entry.prefix)
        old_flows, old_group = ((), None) if old is None else self._compile(entry.prefix, old)
        shares, group_id = self._place(entry)
        flows, group = self.bridge.mapping_flows(entry, shares, group_id)
        self.installed[entry.prefix] = self._record(shares, group is not None, entry.action)
        if old_flows:
            # a flow whose key stays but whose kind changes (a negative mapping turned positive)
            # is deleted first, its final count going to its own kind's counter: OVS would carry
            # the old flow's counts over into the new one's kind (lisp_app.control.counting)
            new_cookies = {f.key: f.cookie for f in flows}
            stale = tuple(f for f in old_flows if new_cookies.get(f.key) != f.cookie)
            unchanged = set(old_flows)
            add = tuple(f for f in flows if f not in unchanged)  # identical ones are not re-sent
        else:  # a new mapping (a bulk load's hundred thousand): nothing to compare
            stale, add = (), tuple(flows)
        drop_group = ()
        if old_group is not None and group is None:
            drop_group = (self.groups.release(entry.prefix),)
        groups = (group,) if group is not None and group != old_group else ()
        if not (add or stale or groups or drop_group):
            return []
        return [FlowChange(LISP, add=add, delete=stale, groups=groups,
                           delete_groups=drop_group)]

    def install_new(self, entries) -> list[FlowChange]:
        """:meth:`install` of each of ``entries``: new mappings (their prefixes have no flows
        yet) that share one locators object and action, a bulk load's. They are placed once;
        without a select group they get one FlowChange whose flows are a
        :class:`~lisp_app.dataplane.pipeline.FlowRun`. Mappings with a group, and a prefix that
        has flows after all, go through :meth:`install`."""
        if self.bridge is None or not entries:
            return []
        first = entries[0]
        shares = self.shares(first)
        if self._grouped(first, shares):  # (each has a group of its own)
            return [change for entry in entries for change in self.install(entry)]
        record = self._record(shares, False, first.action)
        installed, out, prefixes = self.installed, [], []
        for entry in entries:
            if entry.prefix in installed:
                out += self.install(entry)
                continue
            installed[entry.prefix] = record
            prefixes.append(entry.prefix)
        if prefixes:
            out.append(FlowChange(LISP, add=FlowRun(record, prefixes)))
        return out

    def uninstall(self, prefix: EidPrefix) -> list[FlowChange]:
        old = self.installed.pop(prefix, None)
        old_flows, old_group = ((), None) if old is None else self._compile(prefix, old)
        drop_group = (self.groups.release(prefix),) if old_group is not None else ()
        if not old_flows and not drop_group:
            return []
        return [FlowChange(LISP, delete=old_flows, delete_groups=drop_group)]

    def reprogram(self, entries) -> None:
        """Recompile every entry (the bridge connected or its ports changed). Mappings keep their
        group ids, so a reconnect modifies those groups in place. (Only the records: the flows
        are compiled when asked for, by :meth:`everything` on connect.)"""
        self.installed.clear()
        if self.bridge is not None:  # else programmed with everything when the bridge connects
            for entry in entries:
                shares, group_id = self._place(entry)
                # a group exactly when grouped: a grouped mapping has a share (mapping_flows)
                self.installed[entry.prefix] = self._record(shares, group_id is not None,
                                                            entry.action)
        for prefix in [p for p in self.groups.owners()
                       if p not in self.installed or not self.installed[p][2]]:
            self.groups.release(prefix)

    def flows_of(self, prefix: EidPrefix) -> tuple[Flow, ...]:
        record = self.installed.get(prefix)
        return () if record is None else tuple(self._compile(prefix, record)[0])

    def everything(self) -> tuple[list[Flow], list[Group]]:
        """Every installed flow and group (for reconciliation on connect)."""
        flows: list[Flow] = []
        groups: list[Group] = []
        for prefix, record in self.installed.items():
            mflows, group = self._compile(prefix, record)
            flows.extend(mflows)
            if group is not None:
                groups.append(group)
        return flows, groups

    def owner_of(self, key: tuple) -> EidPrefix | None:
        """The mapping one of whose installed flows has this key (table, priority, match), or
        None. The prefix is read from the match (the mapping flows match on metadata, the
        instance-id, and the destination prefix as address and netmask) and checked against
        that mapping's flows."""
        fields = dict(key[2])
        meta = fields.get("metadata")
        dst = fields.get("ipv4_dst", fields.get("ipv6_dst"))
        if not (isinstance(meta, tuple) and isinstance(dst, tuple) and len(dst) == 2):
            return None
        try:
            plen = bin(int(ip_address(dst[1]))).count("1")
            prefix = EidPrefix(meta[0], ip_network((dst[0], plen)))
        except (TypeError, ValueError, IndexError):
            return None
        if prefix not in self.installed:
            return None
        return prefix if any(f.key == key for f in self.flows_of(prefix)) else None
