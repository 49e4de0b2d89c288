"""Log lines that a flood cannot multiply: repeated problems are summarised, never one per packet.

A malformed control message, a refused Map-Register or a handler error is worth a log line; a
stream of them at 150,000 packets per second is not worth 150,000. A :class:`Summary` stands for
one kind of problem (``"malformed control messages"``). In each window (10 s by default) it logs
the first ``burst`` occurrences as they come, each with its detail; the rest it only counts, per
source, and at the end of the window it writes one line::

    8,028 more malformed control messages in the last 10 s: 8,020 from 203.0.113.1, 8 from
    203.0.113.7 (last: truncated Map-Request: 3 bytes)

So one kind of problem costs at most ``burst + 1`` lines per window, whatever the rate. Sources
are counted up to ``max_sources`` per window (a flood from spoofed addresses would otherwise grow
the table); the others are counted together ("1,733 from other sources").

Summaries are written when an occurrence arrives after its window ended, and by :func:`flush_due`,
which the controller's loops call about once a second so that the last window of a burst is not
left unsaid. Every :class:`Summary` registers itself for that. The clock is a parameter for the
tests; the controller uses ``time.monotonic``.

This module sits below every other floor (no imports from lisp_app), so any engine can use it.
"""

from __future__ import annotations

import logging
import sys
import time
import weakref
from typing import Callable

WINDOW = 10.0   # seconds
BURST = 3       # occurrences logged in full per window
MAX_SOURCES = 32

_ALL: "weakref.WeakSet[Summary]" = weakref.WeakSet()


class Summary:
    """One kind of repeated problem, logged by ``logger`` at ``level``."""

    def __init__(self, logger: logging.Logger, what: str, level: int = logging.INFO, *,
                 window: float = WINDOW, burst: int = BURST, max_sources: int = MAX_SOURCES,
                 clock: Callable[[], float] = time.monotonic):
        self.logger, self.what, self.level = logger, what, level
        self.window, self.burst, self.max_sources = window, burst, max_sources
        self.clock = clock
        self._start: float | None = None  # the current window's start (None: no window open)
        self._logged = 0                  # lines written in full in this window
        self._counts: dict[str, int] = {}  # source -> occurrences counted, not logged
        self._others = 0                  # ... from sources beyond max_sources
        self._last = ""                   # the last counted occurrence's detail
        self.total = 0                    # every occurrence since the start
        _ALL.add(self)

    def __call__(self, source, message: str, *args, exc_info=False) -> None:
        """One occurrence from ``source``: ``message % args`` is its line (logged in full while
        the window's burst lasts, else counted)."""
        now = self.clock()
        self.total += 1
        if self._start is None or now - self._start >= self.window:
            self._flush()
            self._start = now
        if self._logged < self.burst:
            self._logged += 1
            self.logger.log(self.level, message, *args, exc_info=exc_info)
            return
        key = str(source)
        if key in self._counts:
            self._counts[key] += 1
        elif len(self._counts) < self.max_sources:
            self._counts[key] = 1
        else:
            self._others += 1
        self._last = message % args if args else message
        if exc_info and sys.exc_info()[1] is not None:
            self._last += f" ({type(sys.exc_info()[1]).__name__}: {sys.exc_info()[1]})"

    def flush_if_due(self) -> None:
        if self._start is not None and self.clock() - self._start >= self.window:
            self._flush()

    def _flush(self) -> None:
        counted = sum(self._counts.values()) + self._others
        if counted:
            ranked = sorted(self._counts.items(), key=lambda kv: (-kv[1], kv[0]))
            parts = [f"{n:,} from {source}" for source, n in ranked]
            if self._others:
                parts.append(f"{self._others:,} from other sources")
            self.logger.log(self.level, "%s more %s in the last %s s: %s (last: %s)",
                            f"{counted:,}", self.what, f"{self.window:g}", ", ".join(parts),
                            self._last)
        self._start = None
        self._logged = 0
        self._counts = {}
        self._others = 0
        self._last = ""


def flush_due() -> None:
    """Write the summaries of every window that has ended (called about once a second)."""
    for summary in list(_ALL):
        summary.flush_if_due()
