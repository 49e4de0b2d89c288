"""SIGHUP asks the controller to re-read its configuration file: the signal handler only counts
the request (a signal handler runs between two bytecodes of whatever green thread was running,
so it must not do the work); a green thread of the app takes the requests, every
:data:`RELOAD_POLL` seconds, and runs the reload (:mod:`lisp_app.node.reload`) on the hub."""

from __future__ import annotations

RELOAD_POLL = 0.2  # seconds between two looks at the request count


class ReloadRequests:
    """Reloads asked for and not yet taken. Only the signal handler writes ``asked`` and only
    the taker writes ``taken``, so no request is lost between the two."""

    def __init__(self) -> None:
        self.asked = 0
        self.taken = 0

    def ask(self, _signum=None, _frame=None) -> None:
        """The signal handler (``signal.signal(signal.SIGHUP, requests.ask)``)."""
        self.asked += 1

    def take(self) -> bool:
        """Whether a reload was asked for since the last take (several count as one)."""
        asked = self.asked
        if asked == self.taken:
            return False
        self.taken = asked
        return True
