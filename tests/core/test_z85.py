"""The Z85 codec (core/z85.py): the RFC's test vector, every length's round trip, agreement
with an independent encoding (the standard library's base-85, same arithmetic, another
alphabet), and refusals of what is not Z85. Agreement with CometD's own JavaScript codec, run
in Node, is interop/test_z85_node.py's."""

from __future__ import annotations

import base64
import random
import time

import pytest

from bayeux.core import z85

# ZeroMQ RFC 32's test vector.
RFC_BYTES = bytes([0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B])
# Python's base-85 (RFC 1924) alphabet, digit for digit against Z85's.
RFC1924 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz!#$%&()*+-;<=>?@^_`{|}~"
TO_Z85 = str.maketrans(RFC1924, z85.ALPHABET)


def reference(data: bytes) -> str:
    """The same big-endian base-85 with the last group cut short, by another implementation:
    base64.b85encode pads a short group with zero bytes and drops the characters of the
    padding, as CometD's encoders do."""
    return base64.b85encode(data).decode().translate(TO_Z85)


def test_the_rfc_vector() -> None:
    assert z85.encode(RFC_BYTES) == "HelloWorld"
    assert z85.decode("HelloWorld") == RFC_BYTES


def test_the_alphabet_is_85_distinct_json_safe_characters() -> None:
    assert len(set(z85.ALPHABET)) == 85
    assert all(33 <= ord(c) <= 126 and c not in "\"\\'" for c in z85.ALPHABET)


@pytest.mark.parametrize("length", [*range(0, 41), 255, 256, 257, 1000, 4093, 65_537])
def test_every_length_round_trips_and_agrees_with_the_reference(length: int) -> None:
    rng = random.Random(length)
    for _ in range(5):
        data = rng.randbytes(length)
        text = z85.encode(data)
        assert text == reference(data)
        assert len(text) == length // 4 * 5 + (length % 4 + 1 if length % 4 else 0)
        assert z85.decode(text) == data


@pytest.mark.parametrize(
    "data", [b"", b"\x00", b"\xff", b"\x00" * 7, b"\xff" * 9, bytes(range(256)) * 3]
)
def test_extremes_round_trip(data: bytes) -> None:
    assert z85.encode(data) == reference(data)
    assert z85.decode(z85.encode(data)) == data


def test_bytes_like_objects_encode_as_their_bytes() -> None:
    data = bytes(range(50))
    assert z85.encode(bytearray(data)) == z85.encode(memoryview(data)) == z85.encode(data)


@pytest.mark.parametrize("length", [1, 6, 11, 1001])
def test_a_length_no_encoding_has_is_refused(length: int) -> None:
    with pytest.raises(z85.Z85Error, match="characters long"):
        z85.decode("0" * length)


@pytest.mark.parametrize(
    "text",
    [
        "Hello Worl",  # a space
        'Hell"',  # JSON's quote: not in the alphabet
        "Hell\\",
        "Hell,",
        "Hell;",
        "Hell_",
        "Hell`",
        "Hell|",
        "Hell~",  # in RFC 1924's alphabet, not in Z85's
        "Hell\x00",
        "Hellé",  # not ASCII
        "Ｈello",  # fullwidth
        "Hell\u200b",  # zero-width space
    ],
)
def test_a_character_outside_the_alphabet_is_refused(text: str) -> None:
    with pytest.raises(z85.Z85Error, match="alphabet"):
        z85.decode(text)


@pytest.mark.parametrize("text", ["#####", "%%%%%", "00000#####", "##", "####"])
def test_a_group_worth_more_than_four_bytes_is_refused(text: str) -> None:
    # 85**5 - 1 > 2**32 - 1: five characters can say more than four bytes hold.
    with pytest.raises(z85.Z85Error, match="more than four bytes"):
        z85.decode(text)


def test_the_largest_group_decodes() -> None:
    assert z85.decode(z85.encode(b"\xff\xff\xff\xff")) == b"\xff\xff\xff\xff"
    assert z85.encode(b"\xff\xff\xff\xff") == "%nSc0"


def test_what_is_not_text_is_refused() -> None:
    for value in (b"HelloWorld", None, 12345, ["Hello"]):
        with pytest.raises(z85.Z85Error):
            z85.decode(value)  # type: ignore[arg-type]


def test_a_megabyte_takes_a_fraction_of_a_second_each_way() -> None:
    """Linear: no Python loop per group (a loop per group took 0.25 s to decode a MB and
    0.4 s to encode one on the machine the figures in docs/extensions.md come from)."""
    data = random.Random(1).randbytes(1 << 20)
    started = time.perf_counter()
    text = z85.encode(data)
    encoded = time.perf_counter() - started
    started = time.perf_counter()
    assert z85.decode(text) == data
    decoded = time.perf_counter() - started
    assert encoded < 1.0 and decoded < 1.0, (encoded, decoded)
