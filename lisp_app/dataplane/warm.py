"""Keeping the packet-in path's code warm between packet-ins.

A cold-cache miss comes after the controller has idled, and the first Python that runs then is
several times slower than the same code run in a loop (measured here: the three handlers of a
miss took 50 us each in a loop, 250-350 us each after 0.3 s of sleep, the CPU's caches having
been given to other processes). :class:`Warmer` keeps the last packet-in of each kind the shell
saw and, when the shell's timer ticks (every 0.1 s), reads it again through the same pure
decoders a real one goes through, and writes it out again through the same encoders: the
OpenFlow packet-in, the Ethernet/IP/UDP frame, the LISP control message and its encoding, a UDP
frame and a packet-out around it. The results are thrown away: nothing in the node changes.
After 0.1 s ticks with this exercise the three handlers took 180-250 us each.
"""

from __future__ import annotations

from ..protocol import decode_control
from ..protocol.errors import DecodeError
from ..protocol.numbers import LISP_CONTROL_PORT
from . import frames, ofread, ofwire

MAX_SAMPLE = 2048  # bytes: longer packet-ins are not kept
MAX_KINDS = 16


class Warmer:
    def __init__(self) -> None:
        self._samples: dict[int, bytes] = {}  # packet-in kind -> the last packet-in, raw
        self.exercised = 0  # packet-ins read again, for tests

    def remember(self, kind: int, message: bytes) -> None:
        """Keep ``message`` (a whole OpenFlow packet-in) as the sample of its ``kind``."""
        if len(message) <= MAX_SAMPLE and (kind in self._samples
                                           or len(self._samples) < MAX_KINDS):
            self._samples[kind] = message

    def exercise(self) -> None:
        """Read every sample again and write its frame out again, keeping nothing."""
        for message in tuple(self._samples.values()):
            try:
                _exercise(message)
            except ValueError:  # a sample the decoders refuse warms them as far as they read
                pass
            self.exercised += 1


def _exercise(message: bytes) -> None:
    pin = ofread.decode_packet_in(message)
    frame = frames.parse_frame(pin.data)
    if frame.payload_offset is None or frame.ip_src is None or frame.ip_dst is None:
        return
    payload = pin.data[frame.payload_offset:frame.ip_offset + frame.ip_length]
    if LISP_CONTROL_PORT in (frame.sport, frame.dport):
        try:
            payload = decode_control(payload).encode()
        except DecodeError:
            pass
    data = frames.udp_frame(frame.eth_src, frame.eth_dst, frame.ip_src, frame.ip_dst,
                            frame.sport or 0, frame.dport or 0, payload)
    ofwire.encode_packet_out(0, pin.in_port, pin.in_port, data)
