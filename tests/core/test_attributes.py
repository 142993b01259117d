"""Session attributes: JSON values under string names, bounded in bytes per session, each
change reported (an engine writes it to the session's record)."""

from __future__ import annotations

import pytest

from bayeux import BayeuxServer, Settings
from bayeux.core.attributes import SessionAttributes


def test_values_must_be_json_and_names_strings() -> None:
    attributes = SessionAttributes()
    attributes["user"] = {"name": "alice", "roles": ["admin"]}
    assert attributes["user"]["roles"] == ["admin"] and dict(attributes) == attributes
    with pytest.raises(TypeError, match="JSON"):
        attributes["socket"] = object()
    with pytest.raises(TypeError, match="JSON"):
        attributes["big"] = 2**70
    with pytest.raises(TypeError, match="names"):
        attributes[3] = "x"  # type: ignore[index]
    with pytest.raises(TypeError, match="names"):
        attributes[""] = "x"
    assert list(attributes) == ["user"]


def test_attributes_are_bounded_in_bytes() -> None:
    attributes = SessionAttributes(limit=40)
    attributes["a"] = "x" * 20  # 1 + 22 bytes
    with pytest.raises(ValueError, match="max-session-attribute-bytes"):
        attributes["b"] = "y" * 20
    assert "b" not in attributes and attributes.size == 23
    attributes["a"] = "z"  # replacing frees what the old value took
    attributes["b"] = "y" * 10
    del attributes["a"]
    assert attributes.size == 13
    attributes.limit = -1
    attributes["c"] = "w" * 1000


def test_every_change_is_reported_and_applied_changes_are_not() -> None:
    changes: list[dict] = []
    attributes = SessionAttributes(owner="s")
    attributes.on_change = lambda owner, change: changes.append({"owner": owner, **change})
    attributes["n"] = 1
    del attributes["n"]
    attributes.apply({"m": b"[1,2]", "bad": b"{not json", "gone": None})
    assert changes == [{"owner": "s", "n": b"1"}, {"owner": "s", "n": None}]
    assert dict(attributes) == {"m": [1, 2]} and attributes.size == len("m") + 5


def test_the_servers_setting_bounds_every_session() -> None:
    server = BayeuxServer(Settings(max_session_attribute_bytes=64))
    session = server.create_session()
    with pytest.raises(ValueError):
        session.attributes["blob"] = "x" * 100
    with pytest.raises(ValueError):
        Settings(max_session_attribute_bytes=0)
