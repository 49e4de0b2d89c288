"""The codec's two exceptions: DecodeError for bad bytes, EncodeError for unencodable objects."""


class DecodeError(ValueError):
    """Malformed LISP input. ``offset`` is the byte offset (within the buffer handed to the
    decoder) at which the problem was found; the message says what is wrong there."""

    def __init__(self, what: str, offset: int):
        super().__init__(f"{what} (at byte {offset})")
        self.what = what
        self.offset = offset


class EncodeError(ValueError):
    """A message object that cannot be put on the wire (a field out of range, too many items)."""


def check_range(name: str, value: int, bits: int) -> None:
    """Refuse a field value that does not fit in ``bits`` unsigned bits."""
    if not isinstance(value, int) or value < 0 or value >> bits:
        raise EncodeError(f"{name}={value!r} does not fit in {bits} bits")
