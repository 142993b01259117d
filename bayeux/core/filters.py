"""Data filters, as CometD's `DataFilter`s: what clients publish on a channel is checked and
rewritten (markup escaped, text normalized) or refused before anyone receives it.

A filter is called as `filter(session, channel, data)` and returns the data to publish, or
raises `DataRefused`; a `DataFilterListener` runs several in order, as the channel's message
listener (`server.channel("/chat/**").add_listener(DataFilterListener(...))`), and a refused
message's publisher is answered `404:<channel>:Message deleted`. The ready ones walk the whole
data, objects and arrays at any depth, and see every string, object keys included; numbers,
booleans, null and bytes pass as they are. Their work is linear in the size of the data (no
pattern of theirs backtracks), and the data is never changed in place: what a filter changes is
a new object.
"""

from __future__ import annotations

import functools
import html
import re
import unicodedata
from collections.abc import Callable
from typing import Any, Literal

from .message import Message
from .session import ServerSession

Filter = Callable[[ServerSession | None, str, Any], Any]

# What HTML gives a meaning to in text or in a quoted attribute value, and, written as numeric
# references, the characters whose compatibility forms are one of them (U+FF1C FULLWIDTH
# LESS-THAN SIGN is `<` once normalized with NFKC, U+226E NOT LESS-THAN is `<` and a combining
# mark with NFKD): text that something downstream normalizes must not become markup there.
# tests/core/test_filters.py checks this list against the running Python's Unicode tables.
_HTML_SPECIAL = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;"}
_LOOKALIKES = (0x226E, 0x226F, 0xFE60, 0xFE64, 0xFE65, 0xFF02, 0xFF06, 0xFF07, 0xFF1C, 0xFF1E)
_ESCAPES = {
    **{ord(c): escaped for c, escaped in _HTML_SPECIAL.items()},
    **{c: f"&#x{c:X};" for c in _LOOKALIKES},
}
# What opens or closes a tag, and the lookalikes of `<` and `>`.
_TAG_MARK = re.compile("[<>\u226e\u226f\ufe64\ufe65\uff1c\uff1e]")

# Script in markup, searched for in text that was normalized (NFKC), had its character
# references decoded and its tabs and line breaks taken out (URL parsers drop them anywhere),
# then lowercased: script elements; event-handler attributes in a tag; javascript:, vbscript:
# and HTML or SVG data: URLs. Possessive quantifiers: no backtracking, linear in the text.
_SCRIPT = re.compile(
    r"<\s*+(?:/\s*+)?script"
    r"|<[a-z!/?][^<>]*?[\s/\"'`]on[a-z]++\s*+="
    r"|(?:java|vb)script:"
    r"|data:[^,]{0,100}?(?:html|svg|xml)"
)
_URL_INVISIBLE = {ord("\t"): None, ord("\n"): None, ord("\r"): None}


class DataRefused(Exception):
    """Raised by a data filter that refuses a message: its publisher is answered
    `404:<channel>:Message deleted`, and no one receives it.

    Examples:
        >>> def no_empty_text(session, channel, data):
        ...     if data == "":
        ...         raise DataRefused("empty text")
        ...     return data
        >>> no_empty_text(None, "/chat/room", "hello")
        'hello'

    Added in version 0.3.0."""


class DataFilter:
    """A filter that walks a message's data: `string(text)` sees every string (object keys
    included) and returns it, changed or not; `value(value)` sees the numbers, booleans,
    nulls and bytes. Either may raise `DataRefused`. Override one or both; the instance is
    the filter (`filter(session, channel, data)`). Two keys of one object that a filter makes
    equal refuse the message.

    Examples:
        >>> class NoShouting(DataFilter):
        ...     def string(self, text):
        ...         return text.lower() if text.isupper() else text
        >>> NoShouting()(None, "/chat/room", {"text": "HELLO", "to": ["BOB", 42]})
        {'text': 'hello', 'to': ['bob', 42]}

    Added in version 0.3.0."""

    def string(self, text: str) -> str:
        """`text` as it goes on: this one keeps it.

        Examples:
            >>> DataFilter().string("<b>as it is</b>")
            '<b>as it is</b>'
        """
        return text

    def value(self, value: Any) -> Any:
        """A value that is not text (a number, a boolean, None, bytes) as it goes on: this one
        keeps it.

        Examples:
            >>> DataFilter().value(3.5)
            3.5
        """
        return value

    def __call__(self, session: ServerSession | None, channel: str, data: Any) -> Any:
        return walk(data, self.string, self.value)


def walk(data: Any, string: Callable[[str], str], value: Callable[[Any], Any]) -> Any:
    """A copy of `data` with `string` applied to every string (keys too) and `value` to every
    other scalar, at any depth (an explicit stack: no recursion limit). Raises DataRefused
    when two keys of one object become one."""
    if isinstance(data, str):
        return string(data)
    if not isinstance(data, dict | list):
        return value(data)
    root: dict[str, Any] | list[Any] = {} if isinstance(data, dict) else []
    stack: list[tuple[Any, dict[str, Any] | list[Any]]] = [
        (iter(data.items()) if isinstance(data, dict) else iter(data), root)
    ]
    while stack:
        items, out = stack[-1]
        for item in items:
            if isinstance(out, dict):
                key, child = item
                key = string(key)
                if key in out:
                    raise DataRefused(f"two keys become {key[:64]!r}")
            else:
                child = item
            if isinstance(child, dict | list):
                made: dict[str, Any] | list[Any] = {} if isinstance(child, dict) else []
                if isinstance(out, dict):
                    out[key] = made
                else:
                    out.append(made)
                stack.append(
                    (iter(child.items()) if isinstance(child, dict) else iter(child), made)
                )
                break
            changed = string(child) if isinstance(child, str) else value(child)
            if isinstance(out, dict):
                out[key] = changed
            else:
                out.append(changed)
        else:
            stack.pop()
    return root


class NoMarkup(DataFilter):
    """No markup in any string: `&`, `<`, `>`, `"` and `'` become HTML character references
    (and so do the compatibility forms of these, such as the fullwidth `＜`), so that the text
    shows as it was typed wherever it is put in HTML, in an element or a quoted attribute.
    With `refuse=True`, a string holding `<` or `>` (or a lookalike) refuses the message
    instead, and nothing is rewritten. CometD's `NoMarkupFilter` escapes `<` and `>` only.

    Examples:
        >>> NoMarkup()(None, "/chat/room", {"text": "<b>hi</b> & bye"})
        {'text': '&lt;b&gt;hi&lt;/b&gt; &amp; bye'}
        >>> NoMarkup(refuse=True)(None, "/chat/room", "3 < 4")
        Traceback (most recent call last):
        ...
        bayeux.core.filters.DataRefused: markup in '3 < 4'

    Added in version 0.3.0."""

    def __init__(self, *, refuse: bool = False) -> None:
        self.refuse = refuse

    def string(self, text: str) -> str:
        """`text` escaped (or, refusing, checked).

        Examples:
            >>> NoMarkup().string('say "hi"')
            'say &quot;hi&quot;'
        """
        if self.refuse:
            if _TAG_MARK.search(text) is not None:
                raise DataRefused(f"markup in {text[:64]!r}")
            return text
        return text.translate(_ESCAPES)


class NoScripts(DataFilter):
    """Refuses a message any string of which carries script in markup: a `<script>` element,
    an event-handler attribute in a tag (`<img onerror=...>`), a `javascript:` or
    `vbscript:` URL, an HTML or SVG `data:` URL; also when disguised by case, fullwidth
    forms, character references (`&#106;avascript:`) or tabs and line breaks inside. A
    blocklist, not a sanitizer: to show a client's text as HTML, `NoMarkup` leaves no markup
    at all. (CometD's `NoScriptsFilter` rewrites `<script` to `<span` instead.)

    Examples:
        >>> NoScripts()(None, "/chat/room", {"text": "see <a href='/faq'>the FAQ</a>"})
        {'text': "see <a href='/faq'>the FAQ</a>"}
        >>> NoScripts()(None, "/chat/room", "<img src=x onerror=alert(1)>")
        Traceback (most recent call last):
        ...
        bayeux.core.filters.DataRefused: script in '<img src=x onerror=alert(1)>'

    Added in version 0.3.0."""

    def string(self, text: str) -> str:
        """`text`, checked.

        Examples:
            >>> NoScripts().string("java script: the language")
            'java script: the language'
        """
        probe = text if text.isascii() else unicodedata.normalize("NFKC", text)
        if "&" in probe:
            probe = html.unescape(probe)
            if not probe.isascii():
                probe = unicodedata.normalize("NFKC", probe)
        probe = probe.translate(_URL_INVISIBLE).lower()
        if _SCRIPT.search(probe) is not None:
            raise DataRefused(f"script in {text[:64]!r}")
        return text


class RegexFilter(DataFilter):
    """Rewrites every match of `pattern` in each string with `replacement` (as `re.sub`
    does), or, with no replacement, refuses a message any string of which has a match
    (`search`, anywhere in it: anchor the pattern with `\\A...\\Z` for CometD's whole-string
    `matches`). The pattern is the application's: one that backtracks costs what it costs
    on every string (possessive quantifiers and atomic groups avoid it).

    Examples:
        >>> cards = RegexFilter(r"\\d{4}-\\d{4}-\\d{4}-\\d{4}", "[card]")
        >>> cards(None, "/chat", "mine: 1234-5678-9012-3456")
        'mine: [card]'
        >>> RegexFilter(r"(?i)\\bspam\\b")(None, "/chat", {"text": "SPAM offer"})
        Traceback (most recent call last):
        ...
        bayeux.core.filters.DataRefused: '(?i)\\\\bspam\\\\b' matched in 'SPAM offer'

    Added in version 0.3.0."""

    def __init__(self, pattern: str | re.Pattern[str], replacement: str | None = None) -> None:
        self.pattern = re.compile(pattern)
        self.replacement = replacement

    def string(self, text: str) -> str:
        """`text` with the matches replaced (or, without a replacement, checked).

        Examples:
            >>> RegexFilter(r"\\s+", " ").string("a   b\\t c")
            'a b c'
        """
        if self.replacement is None:
            if self.pattern.search(text) is not None:
                raise DataRefused(f"{self.pattern.pattern[:64]!r} matched in {text[:64]!r}")
            return text
        return self.pattern.sub(self.replacement, text)


@functools.cache
def _format_characters() -> dict[int, None]:
    """Every format character (Unicode category Cf) of this Python's tables, to delete."""
    return {c: None for c in range(0x110000) if unicodedata.category(chr(c)) == "Cf"}


class NormalizeText(DataFilter):
    """Every string in its Unicode normal `form` (NFKC by default: fullwidth and other
    compatibility forms become the plain ones, `ｓｐａｍ` becomes `spam`), with the invisible
    format characters taken out (zero-width spaces and joiners, bidirectional overrides,
    soft hyphens) unless `strip_format=False`: put before a `RegexFilter` or a word list, it
    makes lookalike spellings match. NFKC also turns `x²` into `x2` and `ﬁ` into `fi`; and
    emoji sequences lose their joiners (a family shows as its members).

    Examples:
        >>> clean = NormalizeText()
        >>> clean(None, "/chat/room", {"text": "ｓｐａ\\u200bｍ"})
        {'text': 'spam'}

    Added in version 0.3.0."""

    def __init__(
        self, form: Literal["NFC", "NFKC", "NFD", "NFKD"] = "NFKC", *, strip_format: bool = True
    ) -> None:
        if form not in ("NFC", "NFKC", "NFD", "NFKD"):
            raise ValueError(f"form must be NFC, NFKC, NFD or NFKD, not {form!r}")
        self.form: Literal["NFC", "NFKC", "NFD", "NFKD"] = form
        # Made when the filter is (once per process): a scan of the Unicode tables.
        self._strip = _format_characters() if strip_format else None

    def string(self, text: str) -> str:
        """`text` normalized.

        Examples:
            >>> NormalizeText().string("\\u202eevil")
            'evil'
        """
        if text.isascii():
            return text  # ASCII is in every normal form, and has no format character
        if self._strip is not None:
            text = text.translate(self._strip)
        return unicodedata.normalize(self.form, text)


class DataFilterListener:
    """A channel's message listener that runs `filters` in order on what clients publish:
    each gets the data the previous one returned, and the message goes on with the last
    one's. A filter raising `DataRefused` refuses the message (`404:<channel>:Message
    deleted` to its publisher); one raising anything else refuses it too, and is logged.
    CometD's `DataFilterMessageListener`. The server's own publishes are not filtered.

    Examples:
        >>> chat = server.channel("/chat/**")
        >>> _ = chat.add_listener(DataFilterListener(NoMarkup(), RegexFilter(r"(?i)\\bspam\\b")))
        >>> listener = chat.listeners[0]
        >>> message = {"channel": "/chat/room", "data": {"text": "<b>hi</b>"}}
        >>> listener(None, "/chat/room", message), message["data"]
        (True, {'text': '&lt;b&gt;hi&lt;/b&gt;'})
        >>> listener(None, "/chat/room", {"channel": "/chat/room", "data": "spam!"})
        False

    Added in version 0.3.0."""

    def __init__(self, *filters: Filter) -> None:
        self.filters = filters

    def __call__(self, session: ServerSession | None, channel: str, message: Message) -> bool:
        data = message.get("data")
        try:
            for data_filter in self.filters:
                data = data_filter(session, channel, data)
        except DataRefused:
            return False
        message["data"] = data
        return True
