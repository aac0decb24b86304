"""The few pieces of the WebAssembly binary format the host writes itself: unsigned LEB128 numbers, names
and sections. The component meter (component/meter.py) wraps components with them; test modules
(devtools/synthetic.py) carry custom sections made with them."""

from __future__ import annotations

CUSTOM_SECTION = 0


def leb128(value: int) -> bytes:
    """`value` (0 or more) as unsigned LEB128."""
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def name(text: bytes) -> bytes:
    """A name: its length, then its bytes."""
    return leb128(len(text)) + text


def section(section_id: int, body: bytes) -> bytes:
    """A section: its id, its body's length, then the body."""
    return bytes([section_id]) + leb128(len(body)) + body
