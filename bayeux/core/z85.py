"""Z85 (ZeroMQ RFC 32) as CometD's clients and servers use it for binary data in JSON: every four
bytes become five characters of an 85-character alphabet, big-endian; a last group of one to
three bytes becomes two to four characters (CometD's extension of the RFC, which wants a
multiple of four: the group is padded with zero bytes and only the characters that carry them
are kept).

Both directions work on whole buffers with big-integer arithmetic instead of a Python loop per
group: each group gets a fixed-width field of one big integer, so that multiplying it by 85
multiplies every group at once, with no carry between fields (the figures are in
docs/extensions.md).
"""

from __future__ import annotations

import re

ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
_TO_TEXT = bytes.maketrans(bytes(range(85)), ALPHABET.encode())
_TO_DIGITS = bytes.maketrans(ALPHABET.encode(), bytes(range(85)))
_TEXT = re.compile("[" + re.escape(ALPHABET) + "]*")
# Encoding divides each group's value by 85 five times. It multiplies instead: a fraction of
# _FRACTION_BITS bits holds value / 85**5 (rounded up), and each multiplication by 85 moves the
# next digit into the byte above it. After m multiplications the rounding error is below
# 2**32 * 85**m, under the smallest step between two fractions there (2**72 / 85**(5 - m)):
# every digit is exact.
_FRACTION_BITS = 72
_FIELD = _FRACTION_BITS // 8 + 1  # bytes per group: the digit's byte, then the fraction
_SCALE = -(-(1 << _FRACTION_BITS) // 85**5)


class Z85Error(ValueError):
    """Text that is not Z85: a character outside the alphabet, a length no encoding has (one
    character past a multiple of five), or a group worth more than four bytes."""


def encode(data: bytes | bytearray | memoryview) -> str:
    """`data` as Z85 text: `len(data) * 5 / 4` characters, rounded up."""
    raw = bytes(data)
    padding = -len(raw) % 4
    if padding:
        raw += bytes(padding)
    groups = len(raw) // 4
    if not groups:
        return ""
    # Each group's four bytes at the bottom of its field, then scaled into the fraction.
    fields = bytearray(_FIELD * groups)
    for k in range(4):
        fields[_FIELD - 4 + k :: _FIELD] = raw[k::4]
    value = int.from_bytes(fields, "big") * _SCALE
    fractions = int.from_bytes((b"\0" + b"\xff" * (_FIELD - 1)) * groups, "big")
    digits = bytearray(5 * groups)
    size = _FIELD * groups
    for k in range(5):
        value *= 85
        digits[k::5] = value.to_bytes(size, "big")[0::_FIELD]
        value &= fractions
    text = digits.translate(_TO_TEXT)
    return text[: len(text) - padding].decode("ascii")


def decode(text: str) -> bytes:
    """The bytes `text` encodes.

    Raises:
        Z85Error: `text` is not Z85."""
    if not isinstance(text, str):
        raise Z85Error(f"Z85 is text, not {type(text).__name__}")
    if len(text) % 5 == 1:
        raise Z85Error(f"no Z85 text is {len(text)} characters long")
    if _TEXT.fullmatch(text) is None:
        raise Z85Error("a character outside the Z85 alphabet")
    padding = -len(text) % 5
    # A short last group is padded with the largest digit, as CometD's decoders do: what
    # it adds stays below the bytes that are kept.
    digits = text.encode("ascii").translate(_TO_DIGITS) + b"\x54" * padding
    groups = len(digits) // 5
    if not groups:
        return b""
    # Five bytes per group: 85**5 needs 33 bits, so a top byte that is not zero is a group
    # worth more than four bytes.
    fields = bytearray(5 * groups)
    value = 0
    for k in range(5):
        fields[4::5] = digits[k::5]
        value = value * 85 + int.from_bytes(fields, "big")
    spread = value.to_bytes(5 * groups, "big")
    if spread[0::5].count(0) != groups:
        raise Z85Error("a group worth more than four bytes")
    out = bytearray(4 * groups)
    for k in range(4):
        out[k::4] = spread[k + 1 :: 5]
    return bytes(out[: len(out) - padding])
