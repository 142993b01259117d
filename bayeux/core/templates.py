"""Template channels: `/service/engines/{engine_id}`, CometD's channel templates.

A template is a channel name in which whole segments may be named variables, `{name}` (a Python
identifier, each name once), matched like `*` in that segment; its last segment may be `*` or
`**`, matched as in a subscription, binding nothing. `match` binds the names of a channel; the
template is served by the wildcard pattern `pattern`, which the existing hooks and the
subscription tree understand, and the names are bound where the handler is called.

A template is never a channel: `{` is not a channel character (`channel.py`), so a client
publishing or subscribing to `/service/engines/{x}` literally is refused as before (405).
"""

from __future__ import annotations

import keyword
import re

from . import channel as ch

__all__ = ["ChannelTemplate", "is_template"]

_VARIABLE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_LITERAL = re.compile(r"[A-Za-z0-9\-_!~()$@.]+")  # channel.py's segment


def is_template(channel: str) -> bool:
    """Whether `channel` has a `{...}` in it (and is meant as a template, valid or not).

    Added in version 0.3.0."""
    return "{" in channel or "}" in channel


class ChannelTemplate:
    """A channel name whose whole segments may be variables: `/chat/{room}`,
    `/service/engines/{engine_id}/status`, `/stock/{market}/**`.

    Raises:
        ValueError: not a template: a `{...}` that is not a whole segment or whose name is not
            an identifier (or is a keyword), a name used twice, a `*` or `**` anywhere but in
            the last segment, an empty or invalid segment, or past the default channel limits.

    Examples:
        >>> template = ChannelTemplate("/service/engines/{engine_id}")
        >>> template.pattern
        '/service/engines/*'
        >>> template.match("/service/engines/e42")
        {'engine_id': 'e42'}
        >>> template.match("/service/engines/e42/more") is None
        True

    Added in version 0.3.0."""

    __slots__ = ("template", "names", "pattern", "_segments", "_wild")

    def __init__(self, template: str) -> None:
        if not isinstance(template, str) or not template.startswith("/"):
            raise ValueError(f"a template is a channel name starting with '/': {template!r}")
        limits = ch.DEFAULT_LIMITS
        if len(template) > limits.max_length or template.count("/") > limits.max_segments:
            raise ValueError(f"template longer than a channel may be: {template[:64]!r}...")
        segments = template[1:].split("/")
        wild = ""
        if segments[-1] in ("*", "**"):
            wild = segments.pop()
        parsed: list[str | None] = []  # a literal segment, or None for a variable
        names: list[str] = []
        for segment in segments:
            variable = _VARIABLE.fullmatch(segment)
            if variable is not None:
                name = variable.group(1)
                if keyword.iskeyword(name):
                    raise ValueError(f"{{{name}}} in {template!r}: a keyword cannot be a name")
                if name in names:
                    raise ValueError(f"{{{name}}} appears twice in {template!r}")
                names.append(name)
                parsed.append(None)
            elif _LITERAL.fullmatch(segment) is not None:
                parsed.append(segment)
            elif segment in ("*", "**"):
                raise ValueError(f"only the last segment may be a wildcard: {template!r}")
            else:
                raise ValueError(
                    f"segment {segment!r} of {template!r} is neither a channel segment nor a"
                    " whole-segment variable such as {name}"
                )
        self.template = template
        self.names: tuple[str, ...] = tuple(names)
        self._segments = tuple(parsed)
        self._wild = wild
        self.pattern = self._pattern()

    def _pattern(self) -> str:
        """The narrowest wildcard pattern of the existing grammar covering the template:
        only a last segment may be a wildcard, so a variable before the last segment (or a
        variable followed by a wildcard) widens it to `**` after the literal prefix."""
        segments = self._segments
        first = next((i for i, s in enumerate(segments) if s is None), None)
        if first is None:
            return self.template  # no variable: the template is its own pattern
        prefix = "".join(f"/{s}" for s in segments[:first])
        if first == len(segments) - 1 and not self._wild:
            return f"{prefix}/*"
        return f"{prefix}/**"

    @property
    def precise(self) -> bool:
        """Whether `pattern` matches exactly the template's channels (then `match` never
        returns None for a channel the pattern matches).

        Examples:
            >>> ChannelTemplate("/chat/{room}").precise
            True
            >>> template = ChannelTemplate("/chat/{room}/typing")
            >>> template.pattern, template.precise  # /chat/** matches /chat/x/y/z too
            ('/chat/**', False)

        Added in version 0.3.0."""
        segments = self._segments
        if None not in segments:
            return True
        return segments.index(None) == len(segments) - 1 and not self._wild

    def match(self, channel: str) -> dict[str, str] | None:
        """The names bound by `channel` (a concrete channel), or None if it does not match.

        Examples:
            >>> template = ChannelTemplate("/stock/{market}/{symbol}")
            >>> template.match("/stock/nyse/ACME")
            {'market': 'nyse', 'symbol': 'ACME'}
            >>> print(template.match("/stock/nyse"))
            None

        Added in version 0.3.0."""
        parts = channel[1:].split("/") if channel.startswith("/") else None
        if parts is None:
            return None
        fixed = len(self._segments)
        if self._wild == "":
            if len(parts) != fixed:
                return None
        elif self._wild == "*":
            if len(parts) != fixed + 1 or not parts[-1]:
                return None
        elif len(parts) <= fixed or not all(parts[fixed:]):
            return None
        bound: dict[str, str] = {}
        names = iter(self.names)
        for expected, part in zip(self._segments, parts, strict=False):
            if not part:
                return None
            if expected is None:
                bound[next(names)] = part
            elif expected != part:
                return None
        return bound

    def __repr__(self) -> str:
        return f"ChannelTemplate({self.template!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ChannelTemplate) and other.template == self.template

    def __hash__(self) -> int:
        return hash(self.template)
