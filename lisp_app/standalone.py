"""The switchless Map-Server/Map-Resolver's I/O: its UDP sockets, its timer and the REST API.

Run by ``run_controller.py`` for an ``ms-mr`` with neither ``alt:`` nor ``underlay:`` (RFC 9301
section 8: no ALT, no switch). It binds UDP 4342 on every ``server.addresses`` entry (IPv4 and
IPv6; ``::`` serves IPv6 only, so that ``0.0.0.0`` and ``::`` can both be bound), hands every
datagram to :class:`~lisp_app.node.server.MapServerNode` and sends what it answers from the
socket of the destination's family. Under eventlet: ``run_controller.py`` monkey-patches first.
"""

from __future__ import annotations

import logging
import signal
import socket
import time
from ipaddress import ip_address

import eventlet
from eventlet.hubs import trampoline

from .config import Config
from .logs import Summary, flush_due
from .node.control_plane import Received
from .node.server import MapServerNode

LOG = logging.getLogger("lisp_app.standalone")
UNHANDLED = Summary(LOG, "datagrams that could not be handled", logging.ERROR)
UNSENT = Summary(LOG, "messages that could not be sent", logging.WARNING)
TIMER_TICK = 0.5  # seconds at most between two timer runs (registrations expire)
MAX_DATAGRAM = 65535
PEER_CACHE = 4096  # peer addresses kept parsed (and as text) by the socket loops
BURST = 64  # datagrams a socket loop handles in a row before the other green threads run


class AddressTexts:
    """Each destination address's text, for ``sendto``, made once: by the address object's
    identity (the request decoder hands the same ITR-RLOC objects again, and an address hashes
    in Python); an entry holds its address, so that the id stays its own. Bounded."""

    __slots__ = ("_texts", "limit")

    def __init__(self, limit: int = PEER_CACHE):
        self._texts: dict[int, tuple] = {}
        self.limit = limit

    def text(self, address) -> str:
        seen = self._texts.get(id(address))
        if seen is None or seen[0] is not address:
            if len(self._texts) >= self.limit:
                self._texts.clear()
            seen = self._texts[id(address)] = (address, str(address))
        return seen[1]


class StandaloneServer:
    """The sockets and the API around one :class:`MapServerNode`. For the API it looks like the
    os-ken app: ``xtr`` (the node), ``datapaths`` (none), ``alt`` (none), ``execute``."""

    def __init__(self, config: Config):
        self.config = config
        self.xtr = MapServerNode(config)
        self.datapaths: dict = {}
        self.alt = None
        self.sockets: dict[int, socket.socket] = {}  # IP version -> the socket that sends
        self._all: list[socket.socket] = []
        self._workers: list = []
        self._texts = AddressTexts()
        self._raws: dict[int, object] = {}  # IP version -> the real socket in the green one

    def bind(self) -> None:
        """Open every configured socket, or raise OSError naming the address that failed."""
        port = self.config.server.port
        for address in self.config.server.addresses:
            family = socket.AF_INET if address.version == 4 else socket.AF_INET6
            sock = socket.socket(family, socket.SOCK_DGRAM)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind((str(address), port))
            except OSError as exc:
                sock.close()
                self.close()
                raise OSError(exc.errno, f"cannot bind UDP {address} port {port}: "
                                         f"{exc.strerror}") from None
            self._all.append(sock)
            if self.sockets.setdefault(address.version, sock) is sock:
                self._raws[address.version] = _raw(sock)
            LOG.info("Map-Server/Map-Resolver on UDP %s port %d", address, port)

    def start(self) -> None:
        self.bind()
        self._workers = [eventlet.spawn(self._receive, s) for s in self._all]
        self._workers.append(eventlet.spawn(self._timer))
        if self.config.api.port:
            from .api.server import listen, serve
            try:
                api_socket = listen(self.config.api.host, self.config.api.port)
            except OSError:
                self.close()
                raise
            self._workers.append(eventlet.spawn(serve, self, api_socket))

    def close(self) -> None:
        for worker in self._workers:
            worker.kill()
        self._workers = []
        for sock in self._all:
            sock.close()
        self._all, self.sockets, self._raws = [], {}, {}

    def execute(self, effects) -> None:
        """The API hands operator effects here; this node produces none (no map-cache)."""
        for effect in effects:
            LOG.debug("no switch: %r ignored", effect)

    def _receive(self, sock: socket.socket) -> None:
        """Handle the socket's datagrams. Under eventlet, the datagrams waiting are read from
        the real (non-blocking) socket, BURST in a row at most before the other green threads
        run, and the loop sleeps in the hub only when none is waiting: the green socket's
        wrapper around each read costs about as much as the read."""
        addresses: dict[str, object] = {}  # peer address text -> its address object, bounded
        raw = _raw(sock)
        recvfrom = (raw or sock).recvfrom
        handle, clock = self.xtr.on_datagram, time.monotonic
        burst = 0
        while True:
            try:  # (only the real socket raises: the green one waits in the hub itself)
                data, peer = recvfrom(MAX_DATAGRAM)
            except BlockingIOError:  # nothing waiting: wait in the hub
                burst = 0
                trampoline(raw, read=True)
                continue
            burst += 1
            if burst >= BURST:
                burst = 0
                eventlet.sleep(0)
            try:
                source = addresses.get(peer[0])
                if source is None:
                    if len(addresses) >= PEER_CACHE:
                        addresses.clear()
                    source = addresses[peer[0]] = ip_address(peer[0].split("%")[0])
                sends = handle(data, Received(source, peer[1]), clock())
            except Exception:  # one bad datagram must never stop the server
                self.xtr.stats.handler_errors += 1
                UNHANDLED(peer[0], "datagram from %s could not be handled", peer, exc_info=True)
                continue
            self._send(sends)

    def _timer(self) -> None:
        while True:
            now = time.monotonic()
            try:
                self._send(self.xtr.on_timer(now))
            except Exception:
                self.xtr.stats.handler_errors += 1
                LOG.exception("timer work failed")
            flush_due()  # the summaries of repeated problems (lisp_app.logs)
            deadline = self.xtr.next_deadline()
            eventlet.sleep(TIMER_TICK if deadline is None
                           else min(TIMER_TICK, max(0.01, deadline - now)))

    def _send(self, sends) -> None:
        """Send from the socket of each destination's family: on the real socket first, and
        through the green one (which waits) only if the real one's buffer is full."""
        for send in sends:
            sock = self.sockets.get(send.destination.version)
            try:
                if sock is None:
                    raise OSError(f"no IPv{send.destination.version} socket")
                text = self._texts.text(send.destination)
                raw = self._raws.get(send.destination.version)
                if raw is None:
                    sock.sendto(send.payload, (text, send.dest_port))
                    continue
                try:
                    raw.sendto(send.payload, (text, send.dest_port))
                except BlockingIOError:
                    sock.sendto(send.payload, (text, send.dest_port))
            except OSError as exc:
                self.xtr.stats.control_send_failed += 1
                UNSENT(send.destination, "could not send to %s port %d: %s", send.destination,
                       send.dest_port, exc)


def _raw(sock):
    """The real socket inside an eventlet green socket, if it is one and non-blocking (as
    eventlet keeps it); else None."""
    raw = getattr(sock, "fd", None)  # (a plain socket has no such attribute)
    if raw is not None and hasattr(raw, "recvfrom") and hasattr(raw, "gettimeout") \
            and raw.gettimeout() == 0.0:
        return raw
    return None


def run(config: Config) -> int:
    """Serve until SIGTERM or SIGINT; 1 if a socket cannot be bound."""
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    server = StandaloneServer(config)
    try:
        server.start()
    except OSError as exc:
        LOG.error("%s", exc.strerror or exc)
        return 1
    stopping, hangups = [], []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.append(True))
    signal.signal(signal.SIGHUP, lambda *_: hangups.append(True))
    while not stopping:
        eventlet.sleep(0.2)
        if hangups:
            hangups.clear()
            LOG.error("reload refused: a Map-Server/Map-Resolver without a switch cannot "
                      "reload its configuration; restart it to apply a new one")
    server.close()
    LOG.info("stopped")
    return 0
