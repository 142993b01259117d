"""What an application hangs on a session (`ServerSession.attributes`): JSON values under
string names, bounded in bytes per session (--max-session-attribute-bytes). With an engine,
every change is written to the session's record, so the attributes follow the session to
whichever process serves it next, through a handoff or a crash; a process that only sees the
session for one request (a view) reads them from the record, and what it changes there reaches
the process serving it.

A value is checked and encoded when it is set: change a nested value in place and nothing
notices; set it again to save it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, MutableMapping
from typing import Any

from . import codec

# Changed names with their encoded values (None: removed).
Changes = dict[str, bytes | None]


# What an attribute-less session's attributes read: no dicts are made until one is set, as
# most sessions never get one (benchmarks/memory.py).
_NONE: dict[str, Any] = {}


class SessionAttributes(MutableMapping[str, Any]):
    """A session's attributes: a mapping of str to JSON-serializable values."""

    __slots__ = ("_values", "_encoded", "_bytes", "limit", "on_change", "owner")

    def __init__(self, limit: int = -1, owner: Any = None) -> None:
        self._values: dict[str, Any] = _NONE
        self._encoded: dict[str, bytes] = _NONE
        self._bytes = 0
        # Bytes of names and encoded values together; -1 for no limit.
        self.limit = limit
        # Told of every change, as on_change(owner, changes) (set by the server: it writes them
        # to the session's record): one callable for every session, not one made for each.
        self.on_change: Callable[[Any, Changes], None] | None = None
        self.owner = owner

    def _made(self) -> None:
        if self._values is _NONE:
            self._values, self._encoded = {}, {}

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __setitem__(self, name: str, value: Any) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"attribute names are non-empty strings, not {name!r}")
        try:
            encoded = codec.dumps(value)
        except TypeError as exc:
            raise TypeError(f"attribute {name!r} is not JSON-serializable: {exc}") from None
        total = self._bytes - _size(name, self._encoded.get(name)) + _size(name, encoded)
        if self.limit >= 0 and total > self.limit:
            raise ValueError(
                f"attribute {name!r}: the session's attributes would take {total} bytes, more"
                f" than --max-session-attribute-bytes ({self.limit})"
            )
        self._made()
        self._values[name] = value
        self._encoded[name] = encoded
        self._bytes = total
        if self.on_change is not None:
            self.on_change(self.owner, {name: encoded})

    def __delitem__(self, name: str) -> None:
        del self._values[name]
        self._bytes -= _size(name, self._encoded.pop(name))
        if self.on_change is not None:
            self.on_change(self.owner, {name: None})

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"SessionAttributes({self._values!r})"

    @property
    def size(self) -> int:
        """Bytes of names and encoded values, as the limit counts them."""
        return self._bytes

    def encoded(self) -> dict[str, bytes]:
        """Every attribute encoded as JSON, to write the whole record."""
        return dict(self._encoded)

    def apply(self, changes: Mapping[str, bytes | None]) -> None:
        """Takes changes read from the record or made by another process, without telling
        `on_change` (they are written already). Values that do not decode are left out."""
        for name, encoded in changes.items():
            if encoded is None:
                if name in self._values:
                    del self._values[name]
                    self._bytes -= _size(name, self._encoded.pop(name))
                continue
            try:
                value = codec.loads(encoded)
            except codec.DecodeError:
                continue
            self._made()
            self._bytes += _size(name, encoded) - _size(name, self._encoded.get(name))
            self._values[name] = value
            self._encoded[name] = encoded


def _size(name: str, encoded: bytes | None) -> int:
    return 0 if encoded is None else len(name.encode()) + len(encoded)
