"""Packet-ins taken off os-ken's receive path before its parser and event queue.

os-ken's receive loop (one green thread per switch connection) cuts the byte stream into
messages, parses each into an object tree (``os_ken.ofproto.ofproto_parser.msg``) and queues an
event for each application, whose own green thread runs the handler later. For a packet-in that
costs a parse of the match and a switch of thread before the xTR core sees it, on every trip of
a cold-cache miss through a controller (three per miss).

:class:`PacketInTap` wraps that parser function: an OpenFlow 1.3 packet-in from a datapath
attached to the tap goes, as bytes, to the tap's callback in the receiving thread, and os-ken
dispatches nothing for it; every other message, and packet-ins of other datapaths, take
os-ken's path unchanged. The callback must not wait for the switch (that thread is the one
that would read the answer) and must not raise; the tap logs and swallows anything it raises so
that the connection survives.
"""

from __future__ import annotations

import logging
import socket
import ssl

from os_ken.ofproto import ofproto_parser

LOG = logging.getLogger("lisp_app")

OFP13 = 0x04
OFPT_PACKET_IN = 10


class PacketInTap:
    """Routes the packet-ins of attached datapaths to callbacks (``callback(bytes_of_message)``).

    ``install`` wraps os-ken's message parser (once per process: taps stack if several apps
    install one) and ``uninstall`` puts back what it found."""

    def __init__(self, module=ofproto_parser):
        self._module = module
        self._original = None
        self._callbacks = {}  # datapath -> callback

    def install(self) -> None:
        if self._original is not None:
            return
        self._original = original = self._module.msg
        self._callbacks = callbacks = dict(self._callbacks)  # an older wrapper keeps its own

        def msg(datapath, version, msg_type, msg_len, xid, buf):
            if msg_type == OFPT_PACKET_IN and version == OFP13:
                callback = callbacks.get(datapath)
                if callback is not None and len(buf) >= msg_len:
                    try:
                        callback(bytes(buf[:msg_len]))
                    except Exception:  # the callback guards itself; this is the last resort
                        LOG.exception("packet-in tap: callback failed")
                    return None
            return original(datapath, version, msg_type, msg_len, xid, buf)

        self._module.msg = msg
        self._wrapper = msg

    def uninstall(self) -> None:
        if self._original is None:
            return
        if self._module.msg is self._wrapper:
            self._module.msg = self._original
        else:  # another wrapper went on top of ours: stay in its chain, but pass everything on
            self._callbacks.clear()
        self._original = None

    def attach(self, datapath, callback) -> None:
        self._callbacks[datapath] = callback

    def detach(self, datapath) -> None:
        self._callbacks.pop(datapath, None)

    @property
    def installed(self) -> bool:
        return self._original is not None


def send_now(dp, data: bytes) -> None:
    """Send ``data`` to a datapath, written to its socket here and now if nothing else is being
    sent to it, else (and whatever the socket does not take at once) through os-ken's send queue.

    ``Datapath.send`` queues the bytes for the connection's send thread, which runs only once
    the caller's thread yields: one more trip through the hub before a packet-out reaches the
    switch. Writing directly is safe when that thread is idle, waiting on an empty queue (it is
    then not in the middle of a write whose bytes ours could split); the write does not block
    (eventlet keeps the socket non-blocking underneath) and does not yield, and what it leaves goes to the queue, which is empty,
    so the bytes stay in order."""
    queue = getattr(dp, "send_q", None)
    raw = getattr(getattr(dp, "socket", None), "fd", None)  # under eventlet's green socket
    if (queue is None or not isinstance(raw, socket.socket)
            or isinstance(raw, ssl.SSLSocket)  # TLS: os-ken's path only
            or queue.qsize() or not queue.getting()):
        dp.send(data)
        return
    try:
        sent = raw.send(data)
    except BlockingIOError:
        sent = 0
    except OSError:  # os-ken's threads see the broken connection and close it
        dp.send(data)
        return
    if sent < len(data):
        dp.send(data[sent:])
