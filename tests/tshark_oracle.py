"""tshark as an independent wire-format oracle: frames, a pcap file and tshark's JSON of it."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path

import pytest

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
LINKTYPE_ETHERNET = 1
PCAP_MAGIC = 0xA1B2C3D4
MAC_SRC = bytes.fromhex("020000000001")
MAC_DST = bytes.fromhex("020000000002")

#: Ask tshark to verify IPv4 header and UDP checksums; a bad one becomes an expert item.
TSHARK_OPTIONS = ("-n", "-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE")

#: Keys whose presence anywhere in tshark's tree means it found something wrong.
PROBLEM_KEY_PREFIXES = ("_ws.malformed", "_ws.expert")


def tshark_path() -> str:
    """tshark's path; without it skip, unless CI is set, where these tests must run."""
    path = shutil.which("tshark")
    if path is None:
        if "CI" in os.environ:
            pytest.fail("tshark is not on PATH, and CI is set: the wire-format oracle tests must "
                        "run in CI (install the tshark package)", pytrace=False)
        pytest.skip(reason="tshark not installed: the LISP wire-format oracle tests need it")
    return path


def ones_complement_checksum(data: bytes) -> int:
    """RFC 1071 checksum, summed pair by pair (written here, not taken from the codec)."""
    if len(data) % 2:
        data += b"\0"
    total = 0
    for i in range(0, len(data), 2):
        total += data[i] << 8 | data[i + 1]
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ip_udp_packet(src: str, dst: str, sport: int, dport: int, payload: bytes,
                  ident: int = 1, ttl: int = 64) -> bytes:
    """An IPv4 or IPv6 packet carrying one UDP datagram, with every checksum filled in."""
    source, destination = ip_address(src), ip_address(dst)
    udp_len = 8 + len(payload)
    if type(source) is IPv4Address:
        pseudo = source.packed + destination.packed + struct.pack("!BBH", 0, 17, udp_len)
    else:
        pseudo = source.packed + destination.packed + struct.pack("!I3xB", udp_len, 17)
    udp = struct.pack("!HHHH", sport, dport, udp_len, 0) + payload
    udp_sum = ones_complement_checksum(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", udp_sum) + udp[8:]
    if type(source) is IPv4Address:
        header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, ident, 0, ttl, 17, 0,
                             source.packed, destination.packed)
        header = header[:10] + struct.pack("!H", ones_complement_checksum(header)) + header[12:]
        return header + udp
    assert type(source) is IPv6Address and type(destination) is IPv6Address
    return struct.pack("!IHBB16s16s", 6 << 28, udp_len, 17, ttl, source.packed,
                       destination.packed) + udp


def ethernet_frame(packet: bytes) -> bytes:
    """``packet`` (IPv4 or IPv6, by its version nibble) in an Ethernet II frame."""
    ethertype = ETHERTYPE_IPV4 if packet[0] >> 4 == 4 else ETHERTYPE_IPV6
    return MAC_DST + MAC_SRC + struct.pack("!H", ethertype) + packet


def write_pcap(path: Path, frames: list[bytes]) -> None:
    """A classic libpcap file (microsecond timestamps, link type Ethernet) holding ``frames``."""
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", PCAP_MAGIC, 2, 4, 0, 0, 65535, LINKTYPE_ETHERNET))
        for number, frame in enumerate(frames):
            out.write(struct.pack("<IIII", 1_700_000_000 + number, 0, len(frame), len(frame)))
            out.write(frame)


def dissect(tshark: str, pcap: Path, config_dir: Path) -> list[dict]:
    """tshark's layers for each packet of ``pcap``, from ``-T json --no-duplicate-keys``.

    With that flag a key repeated at one level (two ``lisp.loc`` in a record, the outer and the
    inner ``ip`` of an ECM) becomes one key whose value is a list. ``config_dir`` stands in for the
    user's Wireshark profile, so personal preferences cannot change what tshark shows."""
    env = dict(os.environ, WIRESHARK_CONFIG_DIR=str(config_dir))
    result = subprocess.run([tshark, *TSHARK_OPTIONS, "-r", str(pcap), "-T", "json",
                             "--no-duplicate-keys"],
                            capture_output=True, text=True, timeout=120, env=env)
    if result.returncode != 0:
        raise AssertionError(f"tshark exited with {result.returncode}: {result.stderr.strip()}")
    return [packet["_source"]["layers"] for packet in json.loads(result.stdout)]


def problem_items(node, path: str = "") -> list[str]:
    """Paths of every ``_ws.malformed*`` or ``_ws.expert*`` key anywhere under ``node``."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{path}/{key}"
            if key.startswith(PROBLEM_KEY_PREFIXES):
                found.append(f"{here} = {json.dumps(value)}")
            found.extend(problem_items(value, here))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            found.extend(problem_items(item, f"{path}[{index}]"))
    return found


def as_list(value) -> list:
    """A ``--no-duplicate-keys`` value as a list: a repeated key's list, else the one value."""
    return value if isinstance(value, list) else [value]


def flatten(node, prefix: str = "") -> dict[str, str]:
    """``{path: leaf}`` for a tree of dicts, lists and strings, a list of one item written like
    the item itself, so a tree built with lists compares equal to tshark's."""
    flat = {}
    for key, value in node.items():
        items = as_list(value)
        for index, item in enumerate(items):
            path = f"{prefix}{key}" if len(items) == 1 else f"{prefix}{key}[{index}]"
            if isinstance(item, dict):
                flat.update(flatten(item, path + "/"))
            else:
                flat[path] = item
    return flat


def colon_hex(data: bytes) -> str:
    """Bytes as tshark writes a byte field: ``01:02:ab``."""
    return ":".join(f"{byte:02x}" for byte in data)


def from_colon_hex(text: str) -> bytes:
    """The bytes of a tshark byte field."""
    return bytes.fromhex(text.replace(":", ""))
