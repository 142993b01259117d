"""Data filters (core/filters.py) on a channel: what each lets through, rewrites or refuses, in
nested data, among values that are not text, in huge strings and under Unicode disguises; how
they compose; and what the publisher and the subscribers see through the server."""

from __future__ import annotations

import copy
import logging
import time
import unicodedata
from typing import Any

import pytest

from bayeux import (
    BayeuxServer,
    DataFilter,
    DataFilterListener,
    DataRefused,
    NoMarkup,
    NormalizeText,
    NoScripts,
    RegexFilter,
)
from bayeux.core import filters

from ..helpers.core import client, one, run

NESTED = {
    "text": "<b>hi</b>",
    "list": ["a & b", ["deep 'quote'", {"x": '"q"'}]],
    "n": 3,
    "f": 2.5,
    "yes": True,
    "none": None,
    "<key>": "value",
}


def apply(data_filter: Any, data: Any) -> Any:
    return data_filter(None, "/chat/room", data)


# ---------------------------------------------------------------------------------- walking


def test_every_string_at_every_depth_is_seen_keys_included_others_untouched() -> None:
    original = copy.deepcopy(NESTED)
    out = apply(NoMarkup(), NESTED)
    assert out == {
        "text": "&lt;b&gt;hi&lt;/b&gt;",
        "list": ["a &amp; b", ["deep &#x27;quote&#x27;", {"x": "&quot;q&quot;"}]],
        "n": 3,
        "f": 2.5,
        "yes": True,
        "none": None,
        "&lt;key&gt;": "value",
    }
    assert NESTED == original  # never changed in place
    assert list(out) == ["text", "list", "n", "f", "yes", "none", "&lt;key&gt;"]  # order kept


@pytest.mark.parametrize("value", [0, -1, 2**63, 1.5e300, True, False, None, b"<\x00>"])
def test_values_that_are_not_text_pass_as_they_are(value: Any) -> None:
    for data_filter in (NoMarkup(), NoMarkup(refuse=True), NoScripts(), NormalizeText()):
        assert apply(data_filter, value) is value
        assert apply(data_filter, [value, {"v": value}]) == [value, {"v": value}]


def test_two_keys_that_become_one_refuse_the_message() -> None:
    with pytest.raises(DataRefused, match="two keys"):
        apply(RegexFilter(r"\s+", " "), {"a  b": 1, "a b": 2})
    # Escaping never makes two keys one: it can be undone.
    assert apply(NoMarkup(), {"<a>": 1, "&lt;a&gt;": 2}) == {"&lt;a&gt;": 1, "&amp;lt;a&amp;gt;": 2}
    with pytest.raises(DataRefused, match="two keys"):
        apply(NormalizeText(), {"ｎａｍｅ": 1, "name": 2})


def test_depth_is_no_problem() -> None:
    """An explicit stack: data nested deeper than Python's recursion limit (JSON decoders
    allow 1024 levels, msgpack more) is walked like any other."""
    deep: Any = "<x>"
    for level in range(5000):
        deep = [deep] if level % 2 else {"k": deep}
    out = apply(NoMarkup(), deep)
    for level in reversed(range(5000)):
        out = out[0] if level % 2 else out["k"]
    assert out == "&lt;x&gt;"


def test_a_filter_of_your_own_is_a_function_or_a_datafilter() -> None:
    def no_empty(session: Any, channel: str, data: Any) -> Any:
        if data in ("", {}, []):
            raise DataRefused("empty")
        return data

    class MaxLength(DataFilter):
        def string(self, text: str) -> str:
            if len(text) > 10:
                raise DataRefused("too long")
            return text

    listener = DataFilterListener(no_empty, MaxLength())
    assert listener(None, "/c", {"channel": "/c", "data": {"t": "short"}})
    assert not listener(None, "/c", {"channel": "/c", "data": ""})
    assert not listener(None, "/c", {"channel": "/c", "data": {"t": "far too long"}})


# --------------------------------------------------------------------------------- markup


def test_the_lookalikes_are_every_character_that_normalizes_to_a_special_one() -> None:
    """The list in core/filters.py, against this Python's Unicode tables: NFKD (a superset of
    NFKC's here) of each is, or holds, one of & < > " '."""
    found = [
        c
        for c in range(0x80, 0x110000)
        if any(s in unicodedata.normalize("NFKD", chr(c)) for s in "&<>\"'")
    ]
    assert tuple(found) == filters._LOOKALIKES


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
        ("＜script＞", "&#xFF1C;script&#xFF1E;"),
        ("﹤b﹥", "&#xFE64;b&#xFE65;"),
        ("≮b≯", "&#x226E;b&#x226F;"),
        ("＂＇＆", "&#xFF02;&#xFF07;&#xFF06;"),
        ("&lt;", "&amp;lt;"),  # shown as typed: a reference is not decoded later
        ("plain text, é ü 日本", "plain text, é ü 日本"),
    ],
)
def test_no_markup_escapes_the_specials_and_their_lookalikes(text: str, escaped: str) -> None:
    assert apply(NoMarkup(), text) == escaped
    # What is escaped cannot turn into markup through normalization downstream.
    assert "<" not in unicodedata.normalize("NFKC", escaped)


@pytest.mark.parametrize("text", ["3 < 4", "a>b", "＜b＞", "≮", "﹤"])
def test_no_markup_refusing_refuses_any_tag_mark(text: str) -> None:
    with pytest.raises(DataRefused):
        apply(NoMarkup(refuse=True), {"deep": [text]})
    with pytest.raises(DataRefused):
        apply(NoMarkup(refuse=True), {text: "as a key"})


@pytest.mark.parametrize("text", ["Tom & Jerry", 'it\'s "quoted"', "=> no", "", "日本語"])
def test_no_markup_refusing_lets_plain_text_through_unchanged(text: str) -> None:
    if ">" in text:
        with pytest.raises(DataRefused):
            apply(NoMarkup(refuse=True), text)
    else:
        assert apply(NoMarkup(refuse=True), text) is text


# -------------------------------------------------------------------------------- scripts

SCRIPTS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "< script>",
    "</script >",
    "<scr<script>ipt>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<img src=x OnError = 'alert(1)'>",
    '<img src="x"onerror=alert(1)>',
    "<svg/onload=alert(1)>",
    "<body onload=alert(1)>",
    "<a href='javascript:alert(1)'>x</a>",
    "<a href='JaVaScRiPt:alert(1)'>x</a>",
    "<a href='jav\tascript:alert(1)'>x</a>",
    "<a href='java\nscript:alert(1)'>x</a>",
    "<a href='&#106;avascript:alert(1)'>x</a>",
    "<a href='&#x6A;avascript&colon;alert(1)'>x</a>",
    "<a href='jav&#x09;ascript:alert(1)'>x</a>",
    "<a href='ｊａｖａｓｃｒｉｐｔ：alert(1)'>x</a>",
    "＜script＞alert(1)＜/script＞",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "<iframe srcdoc='&lt;script&gt;alert(1)&lt;/script&gt;'>",
    "<a href=vbscript:msgbox(1)>x</a>",
    "<iframe src='data:text/html;base64,PHNjcmlwdD4='>",
    "<object data='data:image/svg+xml,<svg onload=alert(1)>'>",
    "<meta http-equiv=refresh content='0;url=javascript:alert(1)'>",
    "<ſcript>alert(1)</ſcript>",  # the long s is an s once normalized
]

HARMLESS = [
    "<b>bold</b> and <i>italic</i>",
    "<a href='https://example.org/faq'>the FAQ</a>",
    "I <3 you",
    "x < y and y > z",
    "java script: the language",
    "an onion = 3 vegetables",
    "the description of onload events",
    "data: 42, text/html is a media type",
    "typescript: yes",
    "",
]


@pytest.mark.parametrize("text", SCRIPTS)
def test_no_scripts_refuses_script_however_it_is_disguised(text: str) -> None:
    with pytest.raises(DataRefused, match="script in"):
        apply(NoScripts(), {"a": [1, {"b": text}]})


@pytest.mark.parametrize("text", HARMLESS)
def test_no_scripts_lets_other_markup_and_text_through(text: str) -> None:
    assert apply(NoScripts(), text) is text


# ---------------------------------------------------------------------------------- regex


def test_regex_replaces_or_refuses() -> None:
    cards = RegexFilter(r"\b\d{4}(?:[ -]?\d{4}){3}\b", "[card]")
    assert apply(cards, {"t": ["pay 1234 5678 9012 3456 now", 1234]}) == {
        "t": ["pay [card] now", 1234]
    }
    banned = RegexFilter(r"(?i)\bspam\b")
    assert apply(banned, "spammy is fine") == "spammy is fine"
    with pytest.raises(DataRefused):
        apply(banned, {"deep": ["buy SPAM now"]})
    with pytest.raises(DataRefused):
        apply(banned, {"spam": "as a key"})


def test_regex_refuses_on_a_match_anywhere_unlike_cometds_whole_string_match() -> None:
    with pytest.raises(DataRefused):
        apply(RegexFilter("bad"), "not so bad")
    anchored = RegexFilter(r"\Abad\Z")
    assert apply(anchored, "not so bad") == "not so bad"
    with pytest.raises(DataRefused):
        apply(anchored, "bad")


# ---------------------------------------------------------------------------- unicode tricks


@pytest.mark.parametrize(
    "disguised",
    [
        "ｓｐａｍ",  # fullwidth
        "sp\u200bam",  # zero-width space
        "s\u200dpam",  # zero-width joiner
        "sp\u00adam",  # soft hyphen
        "sp\u202eam",  # a right-to-left override inside
        "ｓ\u200bｐ\ufeffａｍ",
        "𝐬𝐩𝐚𝐦",  # mathematical bold
    ],
)
def test_normalizing_first_makes_disguised_words_match(disguised: str) -> None:
    banned = RegexFilter(r"(?i)\bspam\b")
    assert apply(banned, disguised) == disguised  # alone, the disguise gets through
    with pytest.raises(DataRefused):
        apply(banned, apply(NormalizeText(), disguised))
    listener = DataFilterListener(NormalizeText(), banned)
    assert listener(None, "/c", {"channel": "/c", "data": {"t": disguised}}) is False


def test_normalize_text_keeps_ascii_and_normal_text_as_it_is() -> None:
    clean = NormalizeText()
    for text in ("plain ascii", "déjà vu", "日本語", "Ελληνικά"):
        assert apply(clean, text) == text
    assert apply(NormalizeText(strip_format=False), "a\u200bb") == "a\u200bb"
    assert apply(NormalizeText("NFC"), "ｓ") == "ｓ"
    with pytest.raises(ValueError):
        NormalizeText("NFX")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- huge input

HUGE = 1 << 20


@pytest.mark.parametrize(
    "text",
    [
        "<" * HUGE,
        "<" + " " * HUGE,
        "<a" + " on" * (HUGE // 3),
        "<a on" + "a" * HUGE,
        "<a" + " ona" * (HUGE // 4),
        "<" + " /" * (HUGE // 2),
        "&#" * (HUGE // 2),
        "ｓ" * HUGE,
        "data:" + "x" * HUGE,
    ],
    ids=[
        "brackets",
        "spaces",
        "attributes",
        "one-long-name",
        "names",
        "slashes",
        "references",
        "fullwidth",
        "data-url",
    ],
)
def test_a_megabyte_string_takes_linear_time_in_every_ready_filter(text: str) -> None:
    for data_filter in (NoMarkup(), NoMarkup(refuse=True), NoScripts(), NormalizeText()):
        started = time.perf_counter()
        try:
            apply(data_filter, {"t": text})
        except DataRefused:
            pass
        elapsed = time.perf_counter() - started
        assert elapsed < 1.0, (type(data_filter).__name__, elapsed)


def test_escaping_grows_text_at_most_eightfold() -> None:
    """What a megabyte of markup becomes, for whoever bounds what subscribers receive."""
    worst = "".join(map(chr, filters._LOOKALIKES)) * 1000
    assert len(apply(NoMarkup(), worst)) <= 8 * len(worst)


# ----------------------------------------------------------------------- through the server


def test_composed_filters_on_a_channel_through_the_server() -> None:
    async def scenario() -> None:
        server = BayeuxServer()
        chat = server.channel("/chat/*")
        chat.add_listener(
            DataFilterListener(NormalizeText(), NoScripts(), NoMarkup(), RegexFilter("ｘ|x", "y"))
        )
        publisher, subscriber = await client(server), await client(server)
        await one(server, channel="/meta/subscribe", clientId=subscriber, subscription="/chat/*")
        reply = await one(
            server, channel="/chat/room", clientId=publisher, data={"t": ["ｘ <b>", 1]}
        )
        assert reply["successful"] is True
        reply = await one(
            server, channel="/chat/room", clientId=publisher, data="<img src=x onerror=alert(1)>"
        )
        assert reply["successful"] is False
        assert reply["error"] == "404:/chat/room:Message deleted"
        # The server's own publish is not filtered (as CometD's message listeners).
        server.publish("/chat/room", "<b>from the server</b>")
        queued = [d.message["data"] for d in server.sessions[subscriber].queue]
        assert queued == [{"t": ["y &lt;b&gt;", 1]}, "<b>from the server</b>"]
        # Other channels are not filtered.
        await one(server, channel="/meta/subscribe", clientId=subscriber, subscription="/raw")
        await one(server, channel="/raw", clientId=publisher, data="<b>")
        assert server.sessions[subscriber].queue[-1].message["data"] == "<b>"

    run(scenario())


def test_a_filter_that_fails_costs_its_message_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        server = BayeuxServer()

        def broken(session: Any, channel: str, data: Any) -> Any:
            raise KeyError("a bug")

        server.channel("/chat").add_listener(DataFilterListener(broken))
        cid = await client(server)
        with caplog.at_level(logging.ERROR):
            reply = await one(server, channel="/chat", clientId=cid, data="x")
        assert reply["error"] == "404:/chat:Message deleted"
        assert any("message listener" in r.getMessage() for r in caplog.records)

    run(scenario())
