"""Request headers as the transports read them, from the (name, value) byte pairs that ASGI
hosts and aiohttp hand over: names lower case, a repeated name's values joined."""

from __future__ import annotations

from collections.abc import Iterable

Lines = tuple[tuple[str, str], ...]

# Names as the transports read them, by the bytes the host gave: clients send few.
_NAMES: dict[bytes, str] = {}


def headers_from(raw: Iterable[tuple[bytes, bytes]]) -> tuple[dict[str, str], Lines]:
    """The headers by name, and every line as received when a name repeats (when none does,
    the request context reads its lines from the headers themselves: no lines are made)."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in raw:
        name = _NAMES.get(raw_name) or _name(raw_name)
        if name in headers:
            return _repeated(raw)
        headers[name] = raw_value.decode("latin-1")
    return headers, ()


def _name(raw: bytes) -> str:
    name = raw.decode("latin-1").lower()
    if len(_NAMES) < 256:
        _NAMES[raw] = name
    return name


def _repeated(raw: Iterable[tuple[bytes, bytes]]) -> tuple[dict[str, str], Lines]:
    """Each line as received, and each name's values joined: cookies with "; " (RFC 6265,
    5.4), others with ", " (RFC 9110, 5.3)."""
    lines = tuple((name.decode("latin-1").lower(), value.decode("latin-1")) for name, value in raw)
    values: dict[str, list[str]] = {}
    for name, value in lines:
        values.setdefault(name, []).append(value)
    joined = {
        name: ("; " if name == "cookie" else ", ").join(each) for name, each in values.items()
    }
    return joined, lines
