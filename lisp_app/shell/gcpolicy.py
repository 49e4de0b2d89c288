"""Short garbage-collection pauses at any map-cache size: freeze what survives a full collection.

CPython's cyclic collector runs a full collection (its oldest generation) whenever the objects
that reached that generation since the last one outnumber a quarter of those there then; a full
collection looks at every container object the process holds, and runs in the controller's one
thread, holding the loop: packet-ins, timers, BGP and the API wait. A big map-cache is millions of
such objects (about 4 per mapping), so the pause grows with it (bench/maplist.py measures it).

The policy: right after each full collection, move everything that survived it to the
collector's permanent generation (``gc.freeze()``), which no later collection looks at. A full
collection then looks only at the objects that arrived since the previous one, however big the
map-cache. Frozen objects are still freed by reference counting the moment nothing refers to
them (which is how a removed or expired mapping goes: lisp_app's per-mapping state holds no
reference cycles). The cost: an object that was frozen and later becomes garbage only as part of
a reference cycle is not reclaimed; :meth:`GcPolicy.thaw` (at stop) gives everything back to the
collector.

Plain Python over an injected ``gc`` module (tests pass a stand-in); ``lisp_app.app`` installs
it at start and removes it at stop.
"""

from __future__ import annotations

import gc as _gc

OLDEST = 2  # the generation a full collection collects


class GcPolicy:
    """Freeze the survivors of every full collection (see the module's text)."""

    def __init__(self, gc_module=_gc) -> None:
        self.gc = gc_module
        self.installed = False
        self.freezes = 0  # full collections followed by a freeze

    def install(self) -> None:
        """From now on, every full collection freezes its survivors. Starts with one: what the
        process holds at start (modules, configuration) is frozen at once."""
        if self.installed:
            return
        self.gc.callbacks.append(self._after_collection)
        self.installed = True
        self.gc.collect()

    def remove(self) -> None:
        """Stop freezing and give the frozen objects back to the collector."""
        if not self.installed:
            return
        self.gc.callbacks.remove(self._after_collection)
        self.installed = False
        self.thaw()

    def thaw(self) -> None:
        """Give every frozen object back to the collector (the next full collection looks at
        all of them again, and reclaims any frozen cycle that became garbage)."""
        self.gc.unfreeze()

    def _after_collection(self, phase: str, info: dict) -> None:
        # called by the collector before ("start") and after ("stop") each collection; at the
        # stop of a full one, what is left is exactly what survived it
        if phase == "stop" and info.get("generation") == OLDEST:
            self.gc.freeze()
            self.freezes += 1

    def frozen(self) -> int:
        """How many objects are frozen now."""
        return self.gc.get_freeze_count()
