"""Template channels (core/templates.py): `{name}` segments bound by `match`, served by a
wildcard pattern that covers exactly or more than the template, never a channel themselves."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bayeux import BayeuxServer, ChannelTemplate
from bayeux.core import channel as ch

from ..helpers.core import client, one, run

LITERALS = st.sampled_from(["a", "b", "service", "x.y", "1"])
NAMES = st.sampled_from(["id", "room", "engine_id", "_x", "Sym2"])
VALUES = st.sampled_from(["a", "b", "e42", "x.y", "service", "-"])
WILD = st.sampled_from(["", "*", "**"])


@st.composite
def templates(draw: st.DrawFn) -> tuple[list[str | None], list[str], str]:
    """(segments: a literal or None for a variable, the variables' names, the wildcard)."""
    shape = draw(st.lists(st.booleans(), min_size=1, max_size=5))
    names = draw(st.lists(NAMES, min_size=len(shape), max_size=len(shape), unique=True))
    segments = [None if variable else draw(LITERALS) for variable in shape]
    used = [name for name, segment in zip(names, segments, strict=True) if segment is None]
    return segments, used, draw(WILD)


def text(segments: list[str | None], names: list[str], wild: str) -> str:
    it = iter(names)
    parts = [f"{{{next(it)}}}" if s is None else s for s in segments]
    return "/" + "/".join(parts + ([wild] if wild else []))


def oracle(template: str, channel: str) -> dict[str, str] | None:
    """The meaning of a template, as a regular expression."""
    pattern = re.escape(template)
    pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", pattern)
    if pattern.endswith(r"/\*\*"):
        pattern = pattern[: -len(r"\*\*")] + r"[^/]+(?:/[^/]+)*"
    elif pattern.endswith(r"/\*"):
        pattern = pattern[: -len(r"\*")] + r"[^/]+"
    found = re.fullmatch(pattern, channel)
    return None if found is None else found.groupdict()


@given(templates(), st.data())
def test_a_channel_made_from_the_template_binds_its_values(shape, data) -> None:
    segments, names, wild = shape
    template = ChannelTemplate(text(segments, names, wild))
    assert template.names == tuple(names)
    values = {name: data.draw(VALUES) for name in names}
    it = iter(names)
    parts = [values[next(it)] if s is None else s for s in segments]
    if wild == "*":
        parts.append(data.draw(VALUES))
    elif wild == "**":
        parts.extend(data.draw(st.lists(VALUES, min_size=1, max_size=3)))
    channel = "/" + "/".join(parts)
    assert template.match(channel) == values
    assert ch.matches(template.pattern, channel)  # the pattern serves every channel it matches


@given(templates(), st.lists(VALUES | LITERALS, min_size=1, max_size=7))
def test_match_is_the_templates_meaning_and_within_its_pattern(shape, parts) -> None:
    template_text = text(*shape)
    template = ChannelTemplate(template_text)
    channel = "/" + "/".join(parts)
    bound = template.match(channel)
    assert bound == oracle(template_text, channel)
    if bound is not None:
        assert ch.matches(template.pattern, channel)
    if template.precise:
        assert (bound is not None) == ch.matches(template.pattern, channel)


@given(templates())
def test_the_pattern_is_valid_and_the_template_is_no_channel(shape) -> None:
    segments, names, wild = shape
    template = ChannelTemplate(text(segments, names, wild))
    assert ch.is_valid_subscription(template.pattern)
    if names:
        assert not ch.is_valid_name(template.template)
        assert not ch.is_valid_subscription(template.template)
    else:
        assert template.pattern == template.template


def test_patterns_of_some_templates() -> None:
    cases = {
        "/service/engines/{engine_id}": ("/service/engines/*", True),
        "/service/engines/{engine_id}/status": ("/service/engines/**", False),
        "/chat/{room}/**": ("/chat/**", False),
        "/chat/{room}/*": ("/chat/**", False),
        "/{a}/{b}": ("/**", False),
        "/news": ("/news", True),
        "/news/*": ("/news/*", True),
        "/**": ("/**", True),
    }
    for template, (pattern, precise) in cases.items():
        assert (ChannelTemplate(template).pattern, ChannelTemplate(template).precise) == (
            pattern,
            precise,
        )


@pytest.mark.parametrize(
    "bad",
    [
        "chat/{room}",  # not a channel
        "/chat/x{room}",  # part of a segment
        "/chat/{room}{user}",
        "/chat/{1room}",  # not an identifier
        "/chat/{}",
        "/chat/{class}",  # a keyword: not a keyword argument
        "/chat/{room}/{room}",
        "/chat/*/{room}",  # a wildcard before the end
        "/chat/**/x",
        "/chat//{room}",
        "/",
        "/chat/{room",
        "/chat/room}",
        "/" + "/a" * 40,  # past the segment limit
    ],
)
def test_what_is_not_a_template_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        ChannelTemplate(bad)


def test_a_template_published_or_subscribed_to_literally_is_refused() -> None:
    async def scenario() -> None:
        server = BayeuxServer()

        @server.service("/service/engines/{engine_id}")
        def engine(session, message, engine_id):
            return engine_id

        client_id = await client(server)
        reply = await one(
            server, channel="/service/engines/{engine_id}", clientId=client_id, data=1
        )
        assert reply["successful"] is False
        assert reply["error"].startswith("405:")
        reply = await one(
            server, channel="/meta/subscribe", clientId=client_id, subscription="/chat/{room}"
        )
        assert reply["successful"] is False
        assert not server.tree.has("/chat/{room}")

    run(scenario())
