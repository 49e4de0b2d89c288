"""A deterministic mutation fuzzer for the LISP codec, in plain Python.

Valid messages (the named vectors and seeded random ones) are mutated (bit flips, byte and word
replacements, insertions, deletions, truncations, splices, duplicated ranges, changed type nibbles,
random bytes, and mutated messages re-wrapped in a valid ECM envelope so the inner decoder is
reached) and fed to ``decode_control`` and ``decode_data_header``. The only exception allowed out is
DecodeError, with an offset inside the input; whenever decoding succeeds, encoding the result and
decoding again must give an equal object.

Why no per-input timeout: every decoder loop consumes at least two bytes per iteration or stops
with an error, counts are bounded by the input's length, and recursion is bounded by
MAX_LCAF_DEPTH and the ECM-in-ECM refusal, so decoding is linear in the input (the inputs here are
at most a few kilobytes); the slowest input's time is reported all the same.

``LISP_CODEC_FUZZ_INPUTS`` changes the number of inputs (default 200,000);
``python -m tests.unit.test_codec_fuzz [inputs] [seed]`` runs it outside pytest.
"""

from __future__ import annotations

import os
import random
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass, field, replace

from lisp_app.protocol import DecodeError, decode_control, decode_data_header
from tests.codec_vectors import (CONTROL_VECTORS, DATA_HEADER_VECTORS, ecm_bytes,
                                 random_control_message, random_data_header, random_ip)

FUZZ_SEED = 0x4C495350  # "LISP"
FUZZ_INPUTS = int(os.environ.get("LISP_CODEC_FUZZ_INPUTS", "200000"))
RANDOM_CORPUS_SIZE = 400
DATA_HEADER_SHARE = 0.1  # of the inputs, this share are data-header-shaped

INTERESTING_BYTES = (0x00, 0x01, 0x02, 0x03, 0x05, 0x06, 0x08, 0x0A, 0x10, 0x18, 0x1F, 0x20, 0x21,
                     0x40, 0x45, 0x7F, 0x80, 0x81, 0xFE, 0xFF)
INTERESTING_WORDS = (0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 16, 17, 0x4003, 0x7FFF, 0x8000, 0xFFFF)
CONTROL_TYPES = (1, 2, 3, 4, 5, 8)


@dataclass
class FuzzReport:
    """What a fuzz run saw."""

    inputs: int = 0
    control_inputs: int = 0
    header_inputs: int = 0
    control_decoded: int = 0
    header_decoded: int = 0
    decoded_types: Counter = field(default_factory=Counter)
    error_kinds: Counter = field(default_factory=Counter)
    failures: list = field(default_factory=list)
    slowest: float = 0.0
    seconds: float = 0.0

    def summary(self) -> str:
        return (f"codec fuzz: {self.inputs} inputs in {self.seconds:.1f} s "
                f"({self.control_inputs} control, {self.control_decoded} decoded; "
                f"{self.header_inputs} data-header, {self.header_decoded} decoded); "
                f"{len(self.error_kinds)} distinct DecodeError kinds; slowest input "
                f"{self.slowest * 1e3:.2f} ms; decoded by type: "
                + ", ".join(f"{name} {count}"
                            for name, count in sorted(self.decoded_types.items())))


class Mutator:
    """Seeded byte-level mutations of a corpus of valid encodings."""

    def __init__(self, rng: random.Random, corpus: list[bytes]):
        self.rng = rng
        self.corpus = corpus
        self.operations = (self.flip_bits, self.replace_bytes, self.replace_word, self.insert,
                           self.delete, self.truncate, self.splice, self.duplicate,
                           self.change_type)

    def mutate(self, data: bytes) -> bytes:
        rng = self.rng
        if rng.random() < 0.03:
            return self.random_bytes()
        buf = bytearray(data)
        for _ in range(rng.choice((1, 1, 1, 2, 2, 3))):
            buf = rng.choice(self.operations)(buf)
        if rng.random() < 0.08 and len(buf) < 60000:
            # Mostly one family, as a valid ECM needs; now and then a mismatch, which is skipped.
            src = random_ip(rng)
            dst = random_ip(rng) if rng.random() < 0.1 else \
                type(src)(rng.getrandbits(src.max_prefixlen))
            if src.version == dst.version:
                buf = bytearray(ecm_bytes(bytes(buf), src, dst, udp_checksum=rng.random() < 0.5))
        return bytes(buf)

    def position(self, buf: bytearray) -> int:
        return self.rng.randrange(len(buf)) if buf else 0

    def flip_bits(self, buf: bytearray) -> bytearray:
        for _ in range(self.rng.randint(1, 4)):
            if buf:
                buf[self.position(buf)] ^= 1 << self.rng.randrange(8)
        return buf

    def replace_bytes(self, buf: bytearray) -> bytearray:
        for _ in range(self.rng.randint(1, 3)):
            if buf:
                buf[self.position(buf)] = (self.rng.choice(INTERESTING_BYTES)
                                           if self.rng.random() < 0.6 else self.rng.getrandbits(8))
        return buf

    def replace_word(self, buf: bytearray) -> bytearray:
        if len(buf) < 2:
            return buf
        at = self.rng.randrange(len(buf) - 1)
        choices = INTERESTING_WORDS + (len(buf) - at, len(buf) - at - 6, len(buf), len(buf) - 4)
        word = self.rng.choice(choices) & 0xFFFF
        buf[at:at + 2] = word.to_bytes(2, "big")
        return buf

    def insert(self, buf: bytearray) -> bytearray:
        at = self.rng.randint(0, len(buf))
        buf[at:at] = self.rng.randbytes(self.rng.choice((1, 1, 2, 4, 6, 16)))
        return buf

    def delete(self, buf: bytearray) -> bytearray:
        if buf:
            at = self.position(buf)
            del buf[at:at + self.rng.choice((1, 1, 2, 4, 6, 16))]
        return buf

    def truncate(self, buf: bytearray) -> bytearray:
        return buf[:self.rng.randint(0, len(buf))]

    def splice(self, buf: bytearray) -> bytearray:
        other = self.rng.choice(self.corpus)
        return buf[:self.rng.randint(0, len(buf))] + other[self.rng.randint(0, len(other)):]

    def duplicate(self, buf: bytearray) -> bytearray:
        if buf:
            start = self.position(buf)
            chunk = buf[start:start + self.rng.randint(1, 24)]
            at = self.rng.randint(0, len(buf))
            buf[at:at] = chunk
        return buf

    def change_type(self, buf: bytearray) -> bytearray:
        if buf:
            buf[0] = self.rng.choice(CONTROL_TYPES) << 4 | buf[0] & 0x0F
        return buf

    def random_bytes(self) -> bytes:
        data = bytearray(self.rng.randbytes(self.rng.randrange(80)))
        if data and self.rng.random() < 0.8:
            data[0] = self.rng.choice(CONTROL_TYPES) << 4 | data[0] & 0x0F
        return bytes(data)


NUMBERS = re.compile(r"\d+")


def check_control(data: bytes, report: FuzzReport, decode=decode_control) -> None:
    """Decode one input; record anything but a well-formed DecodeError or a stable decode."""
    report.control_inputs += 1
    started = time.perf_counter()
    try:
        message = decode(data)
    except DecodeError as error:
        if not 0 <= error.offset <= len(data) or f"(at byte {error.offset})" not in str(error):
            report.failures.append((data, f"bad DecodeError offset: {error}"))
        report.error_kinds[NUMBERS.sub("N", error.what)] += 1
        return
    except Exception as error:  # noqa: BLE001 - any other exception is what we hunt for
        report.failures.append((data, f"{type(error).__name__}: {error}"))
        return
    finally:
        report.slowest = max(report.slowest, time.perf_counter() - started)
    report.control_decoded += 1
    report.decoded_types[type(message).__name__] += 1
    try:
        again = decode(message.encode())
    except Exception as error:  # noqa: BLE001
        report.failures.append((data, f"re-encoding the decoded message: "
                                      f"{type(error).__name__}: {error}"))
        return
    if again != message:
        report.failures.append((data, f"decode(encode(decode(x))) != decode(x): {message!r}"))


def check_data_header(data: bytes, offset: int, report: FuzzReport,
                      decode=decode_data_header) -> None:
    """The same contract for the data header, at ``offset`` into ``data``."""
    report.header_inputs += 1
    try:
        header, after = decode(data, offset)
    except DecodeError as error:
        if not 0 <= error.offset <= len(data):
            report.failures.append((data, f"bad DecodeError offset: {error}"))
        report.error_kinds["data header: " + NUMBERS.sub("N", error.what)] += 1
        return
    except Exception as error:  # noqa: BLE001
        report.failures.append((data, f"data header at {offset}: {type(error).__name__}: {error}"))
        return
    report.header_decoded += 1
    if after != offset + 8:
        report.failures.append((data, f"data header at {offset}: inner packet at {after}"))
        return
    try:
        again, _ = decode(header.encode())
    except Exception as error:  # noqa: BLE001
        report.failures.append((data, f"re-encoding data header {header!r}: {error!r}"))
        return
    if again != header:
        report.failures.append((data, f"data header {header!r} re-decodes as {again!r}"))


def build_corpus(rng: random.Random) -> tuple[list[bytes], list[bytes]]:
    control = [m.encode() for m in CONTROL_VECTORS.values()]
    control += [random_control_message(rng).encode() for _ in range(RANDOM_CORPUS_SIZE)]
    headers = [h.encode() for h in DATA_HEADER_VECTORS.values()]
    headers += [random_data_header(rng).encode() + rng.randbytes(rng.randrange(4))
                for _ in range(RANDOM_CORPUS_SIZE // 4)]
    return control, headers


def run_fuzz(inputs: int = FUZZ_INPUTS, seed: int = FUZZ_SEED, decode=decode_control,
             decode_header=decode_data_header) -> FuzzReport:
    """Run ``inputs`` mutated inputs; the same seed always gives the same inputs."""
    rng = random.Random(seed)
    control, headers = build_corpus(rng)
    control_mutator = Mutator(rng, control)
    header_mutator = Mutator(rng, headers)
    report = FuzzReport()
    started = time.perf_counter()
    for _ in range(inputs):
        if rng.random() < DATA_HEADER_SHARE:
            data = header_mutator.mutate(rng.choice(headers))
            offset = min(rng.choice((0, 0, 0, 1, 8)), len(data))  # offsets inside the buffer
            check_data_header(data, offset, report, decode_header)
        else:
            data = control_mutator.mutate(rng.choice(control))
            check_control(data, report, decode)
            # The data-header decoder sees the control inputs too (any 8 bytes are a candidate).
            if rng.random() < 0.2:
                check_data_header(data, 0, report, decode_header)
        report.inputs += 1
    report.seconds = time.perf_counter() - started
    return report


def describe_failures(report: FuzzReport, limit: int = 5) -> str:
    lines = [f"{len(report.failures)} failures; first {min(limit, len(report.failures))}:"]
    lines += [f"  {problem}\n    input: {data.hex()}" for data, problem in report.failures[:limit]]
    return "\n".join(lines)


def test_fuzz_only_decode_errors_escape_and_decoding_is_stable():
    report = run_fuzz()
    print(report.summary())
    assert not report.failures, describe_failures(report)
    assert report.inputs == FUZZ_INPUTS
    if FUZZ_INPUTS >= 100_000:
        # The mutations must reach deep enough that every type still decodes now and then and
        # the decoders' checks are exercised broadly, or the run proves little.
        assert set(report.decoded_types) == {"MapRequest", "MapReply", "MapRegister",
                                             "MapNotify", "MapNotifyAck",
                                             "EncapsulatedControlMessage"}
        assert min(report.decoded_types.values()) >= 100
        assert report.header_decoded >= 1000
        assert len(report.error_kinds) >= 60, sorted(report.error_kinds)


def test_fuzz_is_deterministic():
    first, second = run_fuzz(2000), run_fuzz(2000)
    assert (first.control_decoded, first.header_decoded, first.error_kinds) == \
        (second.control_decoded, second.header_decoded, second.error_kinds)


def test_fuzz_harness_catches_an_escaping_exception():
    def leaky_decode(data: bytes):
        if len(data) % 7 == 3:
            raise IndexError("index out of range")
        return decode_control(data)

    report = run_fuzz(500, decode=leaky_decode)
    assert report.failures
    assert all("IndexError" in problem for _, problem in report.failures)


def test_fuzz_harness_catches_an_unstable_decode():
    calls = Counter()

    def drifting_decode(data: bytes):
        message = decode_control(data)
        calls["decodes"] += 1
        if hasattr(message, "nonce") and calls["decodes"] % 2 == 0:
            return replace(message, nonce=message.nonce ^ 1)
        return message

    report = run_fuzz(300, decode=drifting_decode)
    assert any("!= decode(x)" in problem for _, problem in report.failures)


def test_fuzz_harness_catches_a_bad_offset():
    def misplaced_decode(data: bytes):
        try:
            return decode_control(data)
        except DecodeError as error:
            raise DecodeError(error.what, len(data) + 1) from None

    report = run_fuzz(300, decode=misplaced_decode)
    assert report.failures
    assert all("bad DecodeError offset" in problem for _, problem in report.failures)


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else FUZZ_INPUTS
    result = run_fuzz(count, int(sys.argv[2]) if len(sys.argv) > 2 else FUZZ_SEED)
    print(result.summary())
    if result.failures:
        print(describe_failures(result, 20))
        sys.exit(1)
