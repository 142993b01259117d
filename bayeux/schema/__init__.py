"""JSON Schemas (draft 2020-12) of every Bayeux 1.0 message kind, and a checker for what a server
sends. Used by spec_tests; available to anyone validating Bayeux traffic."""

from __future__ import annotations

import json
from functools import cache, lru_cache
from importlib import resources
from typing import Any

import jsonschema

SCHEMA_FILE = "bayeux-1.0.schema.json"

REQUEST_KINDS = {
    "/meta/handshake": "handshakeRequest",
    "/meta/connect": "connectRequest",
    "/meta/disconnect": "disconnectRequest",
    "/meta/subscribe": "subscribeRequest",
    "/meta/unsubscribe": "subscribeRequest",
}
REPLY_KINDS = {
    "/meta/handshake": "handshakeReply",
    "/meta/connect": "connectReply",
    "/meta/disconnect": "disconnectReply",
    "/meta/subscribe": "subscribeReply",
    "/meta/unsubscribe": "subscribeReply",
}


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(
        resources.files(__package__).joinpath(SCHEMA_FILE).read_text()
    )
    return schema


@cache
def validator(kind: str) -> jsonschema.protocols.Validator:
    """A validator for one kind, e.g. "handshakeReply" (the names of the schema's $defs)."""
    root = schema()
    if kind not in root["$defs"]:
        raise KeyError(f"no schema for {kind!r}; known: {sorted(root['$defs'])}")
    cls = jsonschema.validators.validator_for(root)
    return cls({**root, "$ref": f"#/$defs/{kind}"})


def kind_of_server_message(message: Any) -> str:
    """Which schema a message sent by a server must satisfy."""
    channel = message.get("channel") if isinstance(message, dict) else None
    if channel in REPLY_KINDS:
        return REPLY_KINDS[channel]
    if isinstance(message, dict) and "successful" in message:
        return "publishReply"
    return "delivery"


def server_message_errors(message: Any) -> list[str]:
    """Human-readable schema violations of a message a server sent; empty when it conforms."""
    if not isinstance(message, dict):
        return [f"not a JSON object: {message!r}"]
    kind = kind_of_server_message(message)
    return [
        f"{kind}: {'/'.join(map(str, e.absolute_path)) or '(message)'}: {e.message}"
        for e in validator(kind).iter_errors(message)
    ]
