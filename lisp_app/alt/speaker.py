"""The one adapter around os-ken's BGPSpeaker: it joins the ALT, reports what neighbours send into
:class:`~lisp_app.alt.state.AltState`, applies our announcements and enforces max-prefix.

os-ken facts this relies on (measured with os-ken 4.2.2; docs/architecture.rst, "The ALT side"): one speaker per
process (one AS); 4-byte ASNs and long AS paths of 10-digit ASNs work; ``peer_up_handler`` reports
the peer's router-id and AS_TRANS, so sessions are tracked by polling the neighbour summary keyed by
the configured address; updates can arrive twice; ``prefix_del`` right after ``prefix_add`` can be
lost, hence the intended/applied reconciliation; the speaker's own max-prefix setting only logs,
so the limit is enforced here by removing the neighbour (``clear`` adds it back). The neighbour
summary (``neighbor_state_get``) gives each session's FSM state, its uptime once Established and
its counts of UPDATE messages and of all messages, which os-ken counts as UPDATE, NOTIFICATION and
ROUTE-REFRESH (not OPEN or KEEPALIVE).
"""

from __future__ import annotations

import gc
import json
import logging
import time
from dataclasses import replace

from ..config import AltConfig
from .effects import AddNeighbor, Announce, RemoveNeighbor, Withdraw
from .filters import import_filter
from .state import (MAX_PREFIX_EXCEEDED, AltState, NeighborState, RestartNeighbor,
                    ShutDownNeighbor)

LOG = logging.getLogger(__name__)

BGP_ATTR_TYPE_AS_PATH = 2
# os-ken's summary counters -> ours
SUMMARY_COUNTERS = {"total_message_in": "messages_received", "total_message_out": "messages_sent",
                    "update_message_in": "updates_received", "update_message_out": "updates_sent",
                    "fsm_established_transitions": "established_transitions"}


def queue_by_identity() -> bool:
    """Make os-ken's route-processing queue test membership by identity; True once it does.

    Every route learned is queued (``BgpProcessor.enqueue``) after a check that its destination
    is not queued already (``CircularListType.node_is_on_list``: ``next == node``). A
    destination's ``==`` compares ``str()`` of both sides, and that string renders the table
    and the NLRI through os-ken's reflective stringify: about 0.2 ms per comparison, some 3/4
    of os-ken's time learning 100,000 routes (measured by cProfile on a bare BGPSpeaker,
    bench/alt.py --profile-floor). A node is on no list when it links to itself, which is a
    question of identity: the replacement asks that and changes nothing else. Left alone when
    os-ken's list type does not look as expected (another os-ken version)."""
    try:
        from os_ken.services.protocols.bgp.utils.circlist import CircularListType
    except ImportError:
        return False
    current = CircularListType.node_is_on_list
    if getattr(current, "lisp_app_identity", False):
        return True
    if not all(hasattr(CircularListType, a) for a in ("node_next", "node_prev")):
        return False

    def node_is_on_list(self, node):
        following = self.node_next(node)
        if following is node or following is None:
            assert self.node_prev(node) is following
            return False
        return True

    node_is_on_list.lisp_app_identity = True
    node_is_on_list.__doc__ = current.__doc__
    CircularListType.node_is_on_list = node_is_on_list
    return True


class CollectionPause:
    """Automatic garbage collection off while routes pour in, back on once they stop.

    A table of 100,000 routes leaves some 10 objects per route behind (os-ken's paths and
    destinations, our routes); while they pile up the cyclic collector keeps scanning them,
    young and then old, again and again: about a quarter of the CPU a bare os-ken speaker
    spends learning such a table (measured). Reference counting still frees everything that is
    not cyclic meanwhile. :meth:`route` is called for every route received; :meth:`settle`
    every few seconds (the reconciliation): collection comes back on when no route came for
    ``quiet`` seconds, or after ``longest`` seconds in one go (then stays on until a quiet
    spell, so that a neighbour flapping for ever cannot keep it off). Leaves collection alone
    if something else had turned it off."""

    def __init__(self, collector=gc, quiet: float = 1.0, longest: float = 30.0):
        self.gc, self.quiet, self.longest = collector, quiet, longest
        self.since: float | None = None  # when we turned collection off (None: we did not)
        self.last = 0.0                  # when the last route came
        self.held_back = False           # turned back on by ``longest``: wait for a quiet spell

    def route(self, now: float) -> None:
        self.last = now
        if self.since is None and not self.held_back and self.gc.isenabled():
            self.gc.disable()
            self.since = now

    def settle(self, now: float) -> None:
        quiet = now - self.last >= self.quiet
        if quiet:
            self.held_back = False
        if self.since is not None and (quiet or now - self.since >= self.longest):
            self.held_back = not quiet
            self.resume()

    def resume(self) -> None:
        if self.since is not None:
            self.since = None
            self.gc.enable()


def read_summary(text: str) -> dict[str, tuple[str, dict, float | None]]:
    """os-ken's neighbour summary (``neighbor_state_get()``'s JSON: ``{"<address>": {"conf": ..,
    "info": {"bgp_state": "Established", "uptime": s or -1, "total_message_in": n, ..}}}``) ->
    address -> (FSM state, our counters, uptime in seconds or None)."""
    try:
        rows = json.loads(text)
    except (TypeError, ValueError):
        return {}
    out = {}
    for address, row in rows.items() if isinstance(rows, dict) else ():
        info = row.get("info") if isinstance(row, dict) else None
        if not isinstance(info, dict):
            continue
        counters = {ours: info[theirs] for theirs, ours in SUMMARY_COUNTERS.items()
                    if isinstance(info.get(theirs), int)}
        uptime = info.get("uptime")
        uptime = uptime if isinstance(uptime, (int, float)) and uptime >= 0 else None
        out[address] = (str(info.get("bgp_state", "")), counters, uptime)
    return out


class AltSpeaker:
    def __init__(self, alt: AltConfig):
        self.alt = alt
        self.state = AltState([NeighborState(str(n.address), n.remote_as,
                                             import_filter(alt, n), n.max_prefix)
                               for n in alt.neighbors])
        self.speaker = None
        self._modes = {}
        self._last_as_path = (None, ())  # (os-ken's AS_PATH attribute, our tuple of it)
        self.pause = CollectionPause()

    def start(self) -> None:
        from os_ken.services.protocols.bgp.bgpspeaker import BGPSpeaker
        from os_ken.services.protocols.bgp.rtconf import neighbors as conf

        if not queue_by_identity():
            LOG.warning("ALT: os-ken's route queue could not be sped up (os-ken changed?): "
                        "learning a large table will be slow")

        # os-ken compares the mode by identity: pass its own constants
        modes = {"active": conf.CONNECT_MODE_ACTIVE, "passive": conf.CONNECT_MODE_PASSIVE,
                 "both": conf.CONNECT_MODE_BOTH}

        self.speaker = BGPSpeaker(as_number=self.alt.local_as,
                                  router_id=str(self.alt.router_id),
                                  bgp_server_hosts=(str(self.alt.address),),
                                  adj_rib_in_change_handler=self._adj_rib_in,
                                  peer_down_handler=self._peer_down)
        self._modes = modes
        for n in self.alt.neighbors:
            self._add_neighbor(n)
        LOG.info("ALT: BGP speaker AS %d router-id %s on %s, %d neighbour(s)",
                 self.alt.local_as, self.alt.router_id, self.alt.address, len(self.alt.neighbors))

    def _add_neighbor(self, n) -> None:
        self.speaker.neighbor_add(str(n.address), n.remote_as, enable_ipv4=True,
                                  password=n.password, local_address=str(self.alt.address),
                                  connect_mode=self._modes[n.connect_mode])

    def stop(self) -> None:
        self.pause.resume()
        if self.speaker is None:
            return
        for prefix in sorted(self.state.applied):
            self._call(self.speaker.prefix_del, prefix)
            self.state.mark_withdrawn(prefix)
        self.speaker.shutdown()
        self.speaker = None

    # -- effects from the core -----------------------------------------------------------------

    def apply(self, effect) -> None:
        """An ``Announce`` or ``Withdraw`` effect: change what we intend to announce (the next
        :meth:`reconcile` tells the speaker); an ``AddNeighbor`` or ``RemoveNeighbor`` (a
        configuration reload): open or close that session at once."""
        if isinstance(effect, AddNeighbor):
            return self.add_neighbor(effect.alt, effect.neighbor)
        if isinstance(effect, RemoveNeighbor):
            return self.remove_neighbor(effect.address)
        prefix = str(effect.prefix.network)
        if isinstance(effect, Announce):
            self.state.announce(prefix)
        elif isinstance(effect, Withdraw):
            self.state.withdraw(prefix)
        else:
            raise TypeError(f"not an ALT effect: {effect!r}")

    def add_neighbor(self, alt: AltConfig, n) -> None:
        """A neighbour the reloaded configuration lists (``n``: its AltNeighborConfig)."""
        self.alt = alt
        self.state.add_neighbor(NeighborState(str(n.address), n.remote_as, import_filter(alt, n),
                                              n.max_prefix))
        if self.speaker is not None:  # else: start() opens it with the others
            from os_ken.services.protocols.bgp.rtconf import neighbors as conf
            modes = {"active": conf.CONNECT_MODE_ACTIVE, "passive": conf.CONNECT_MODE_PASSIVE,
                     "both": conf.CONNECT_MODE_BOTH}
            try:
                self.speaker.neighbor_add(str(n.address), n.remote_as, enable_ipv4=True,
                                          password=n.password, local_address=str(alt.address),
                                          connect_mode=modes[n.connect_mode])
            except Exception as exc:  # os-ken raises for e.g. a neighbour it still holds
                LOG.warning("ALT: adding neighbour %s failed: %s", n.address, exc)
        LOG.info("ALT: neighbour %s (AS %d) added", n.address, n.remote_as)

    def remove_neighbor(self, address: str) -> None:
        """A neighbour the reloaded configuration no longer lists: its session closes and its
        routes leave the ALT RIB."""
        dropped = self.state.remove_neighbor(address)
        self.alt = replace(self.alt, neighbors=tuple(n for n in self.alt.neighbors
                                                     if str(n.address) != address))
        if self.speaker is not None:
            self._call(self.speaker.neighbor_del, address)
        LOG.info("ALT: neighbour %s removed (%d routes dropped)", address, dropped)

    def view(self, now: float | None = None, routes: bool = True) -> dict:
        """What the ALT side knows, JSON-able: our identity, the neighbours and their sessions,
        the routes learned, the prefixes announced and those we mean to announce. A neighbour's
        ``state`` is the controller's (idle, established, max-prefix-exceeded), ``fsm`` the BGP
        FSM state; ``up_down`` is for how long the session has been up (Established) or not.
        ``routes=False``: ``routes`` is only their number (GET /metrics, polled while a table
        of 100,000 routes loads, needs no more)."""
        now = time.monotonic() if now is None else now
        self._observe_sessions(now)  # the speaker's counts now, not as of the last poll
        state = self.state
        return {
            "local_as": self.alt.local_as, "router_id": str(self.alt.router_id),
            "address": str(self.alt.address),
            "neighbors": [neighbor_view(n, now) for n in state.neighbors.values()],
            "routes": [{"prefix": str(r.prefix), "neighbor": r.neighbor,
                        "next_hop": r.next_hop, "as_path": list(r.as_path)}
                       for r in state.rib.all_routes()] if routes else state.rib.route_count(),
            "announced": sorted(state.applied), "intended": sorted(state.intended)}

    def clear(self, address: str) -> dict:
        """The operator's clear: a neighbour cut off by max-prefix is given back to the speaker
        (its session starts again), any other's session is reset. KeyError: not a neighbour."""
        before = self.state.neighbors[address].state
        self._carry_out(self.state.clear(address, time.monotonic()))
        LOG.warning("ALT: neighbour %s cleared (it was %s)", address, before)
        return {"cleared": address, "was": before}

    # -- events from the speaker (run in its threads) -------------------------------------------

    def _adj_rib_in(self, event, peer_ip: str, peer_as: int) -> None:
        try:
            path = event.path
            as_path = ()
            attr = path.get_pattr(BGP_ATTR_TYPE_AS_PATH)
            if attr is not None:
                # the routes of one UPDATE share its attribute objects: read each AS_PATH once
                # (and its segments in place: os-ken's path_seg_list deep-copies them)
                last_attr, last_path = self._last_as_path
                if attr is last_attr:
                    as_path = last_path
                else:
                    as_path = tuple(asn for segment in attr.value for asn in segment)
                    self._last_as_path = (attr, as_path)
            now = time.monotonic()
            self.pause.route(now)
            actions = self.state.route_event(peer_ip, path.nlri.formatted_nlri_str,
                                             str(path.nexthop), as_path, event.is_withdraw,
                                             now)
        except Exception:  # a strange update must not kill the speaker's thread
            LOG.exception("ALT: update from %s could not be read", peer_ip)
            return
        self._carry_out(actions)

    def _peer_down(self, remote_ip: str, remote_as: int) -> None:
        LOG.warning("ALT: session with %s (AS %d) went down", remote_ip, remote_as)
        self.state.session_down(remote_ip, time.monotonic())

    def _carry_out(self, actions) -> None:
        for act in actions:
            if self.speaker is None:
                return
            if isinstance(act, ShutDownNeighbor):
                self._call(self.speaker.neighbor_del, act.address)
            elif isinstance(act, RestartNeighbor):
                config = next(n for n in self.alt.neighbors if str(n.address) == act.address)
                if act.address in self.sessions():  # not cut off: reset its session
                    self._call(self.speaker.neighbor_del, act.address)
                self._call(self._add_neighbor, config)

    # -- periodic work --------------------------------------------------------------------------

    def reconcile(self) -> None:
        """Apply intended announcements and refresh the session states (call every few s)."""
        self.pause.settle(time.monotonic())
        if self.speaker is None:
            return
        add, delete = self.state.to_apply()
        for prefix in add:
            if self._call(self.speaker.prefix_add, prefix):
                self.state.mark_applied(prefix)
        for prefix in delete:
            self._call(self.speaker.prefix_del, prefix)
            self.state.mark_withdrawn(prefix)
        self._observe_sessions(time.monotonic())

    def _observe_sessions(self, now: float) -> None:
        if self.speaker is None:
            return
        for address, (fsm, counters, uptime) in self.sessions().items():
            n = self.state.neighbors.get(address)
            if n is None or n.state == MAX_PREFIX_EXCEEDED:
                continue
            change = self.state.observe(address, fsm, counters, now, uptime)
            if change == "up":
                LOG.info("ALT: session with %s established", address)

    def sessions(self) -> dict[str, tuple[str, dict, float | None]]:
        """Neighbour address -> (FSM state, message counts, uptime) (see read_summary)."""
        try:
            return read_summary(self.speaker.neighbor_state_get())
        except Exception:  # a speaker without neighbours answers oddly; treat as no sessions
            return {}

    @staticmethod
    def _call(fn, *args) -> bool:
        try:
            fn(*args)
            return True
        except Exception as exc:  # os-ken raises for e.g. deleting an unknown prefix
            LOG.warning("ALT: %s%s failed: %s", fn.__name__, args, exc)
            return False


def neighbor_view(n: NeighborState, now: float) -> dict:
    """One neighbour as GET /bgp shows it."""
    return {"address": n.address, "remote_as": n.remote_as, "state": n.state, "fsm": n.fsm,
            "up_down": None if n.since is None else round(max(0.0, now - n.since), 1),
            "messages_received": n.counters.get("messages_received", 0),
            "messages_sent": n.counters.get("messages_sent", 0),
            "updates_received": n.counters.get("updates_received", 0),
            "updates_sent": n.counters.get("updates_sent", 0),
            "prefixes_received": len(n.accepted), "accepted": len(n.accepted),
            "rejected": n.rejected, "max_prefix": n.max_prefix, "cut_offs": n.cut_offs}
