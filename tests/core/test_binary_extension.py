"""The binary extension (--binary-extension): what clients send with `ext.binary` reaches the
policy, authorizers, message listeners and services as bytes, `last` and `meta` kept; bytes
the server sends go out as Z85 with `ext.binary`, a broadcast encoded once; what is not Z85,
or too large, gets a Bayeux error reply, never a 500; off by default."""

from __future__ import annotations

from typing import Any

import pytest

from bayeux import Authorization, BayeuxServer, BinaryExtension, SecurityPolicy, Settings
from bayeux.__main__ import build_parser, settings_from
from bayeux.core import z85
from bayeux.core.server import NotRepresentable

from ..helpers.core import client, held, one, run

PAYLOAD = bytes(range(256)) + b"\x00\xff\x10"  # a short last group too
TEXT = z85.encode(PAYLOAD)


def binary_server(**settings: Any) -> BayeuxServer:
    return BayeuxServer(Settings(binary_extension=True, **settings))


def binary_message(cid: str, channel: str = "/files", text: Any = TEXT) -> dict[str, Any]:
    """As CometD's publishBinary sends it."""
    return {
        "channel": channel,
        "clientId": cid,
        "data": {"data": text, "last": True, "meta": {"name": "a.bin"}},
        "ext": {"binary": {}},
    }


def test_off_by_default_and_on_with_its_options() -> None:
    assert Settings().binary_extension is False
    assert BayeuxServer().extensions == []
    args = build_parser().parse_args(["--binary-extension", "--max-binary-bytes", "4096"])
    (binary,) = BayeuxServer(settings_from(args)).extensions
    assert isinstance(binary, BinaryExtension) and binary.max_bytes == 4096
    with pytest.raises(ValueError, match="max_binary_bytes"):
        Settings(max_binary_bytes=0)


def test_without_it_binary_data_stays_text_and_bytes_are_refused() -> None:
    async def scenario() -> None:
        server = BayeuxServer()
        seen: list[Any] = []
        server.channel("/files").add_listener(lambda s, c, m: seen.append(m["data"]["data"]))
        cid = await client(server)
        assert (await one(server, **binary_message(cid)))["successful"] is True
        assert seen == [TEXT]
        with pytest.raises(NotRepresentable):
            server.publish("/files", {"data": b"\x00"})

    run(scenario())


def test_hooks_see_bytes_with_last_and_meta_kept() -> None:
    async def scenario() -> None:
        seen: dict[str, Any] = {}

        class Policy(SecurityPolicy):
            def can_publish(self, session, channel, message):
                seen["policy"] = message["data"]["data"]
                return True

        server = BayeuxServer(Settings(binary_extension=True), policy=Policy())

        def authorizer(operation, channel, session, message):
            seen["authorizer"] = message["data"]["data"]
            return Authorization.GRANT

        def listener(session, channel, message):
            seen["listener"] = dict(message["data"])
            seen["ext"] = message.get("ext")

        def service(request):
            seen["service"] = request.data["data"]
            return {"size": len(request.data["data"])}

        server.channel("/files").add_authorizer(authorizer)
        server.channel("/files").add_listener(listener)
        server.add_service("/service/upload", service)
        cid = await client(server)
        assert (await one(server, **binary_message(cid)))["successful"] is True
        assert seen["policy"] == seen["authorizer"] == PAYLOAD
        assert seen["listener"] == {"data": PAYLOAD, "last": True, "meta": {"name": "a.bin"}}
        assert seen["ext"] is None  # taken away, as CometD's server does
        await one(server, **binary_message(cid, "/service/upload"))
        assert seen["service"] == PAYLOAD

    run(scenario())


def test_a_client_binary_broadcast_goes_out_as_z85_encoded_once() -> None:
    async def scenario() -> None:
        server = binary_server()
        publisher = await client(server)
        subscribers = [await client(server) for _ in range(5)]
        for cid in subscribers:
            await one(server, channel="/meta/subscribe", clientId=cid, subscription="/files")
        message = binary_message(publisher)
        message["ext"]["app"] = "kept"
        assert (await one(server, **message))["successful"] is True
        queued = [server.sessions[cid].queue[0] for cid in subscribers]
        assert all(d is queued[0] for d in queued)  # one Delivery: one encoding
        sent = queued[0].message
        assert sent["data"] == {"data": TEXT, "last": True, "meta": {"name": "a.bin"}}
        assert sent["ext"] == {"app": "kept", "binary": {}}

    run(scenario())


def test_bytes_the_server_sends_go_out_as_z85() -> None:
    async def scenario() -> None:
        server = binary_server()
        server.add_service("/service/file", lambda request: {"data": PAYLOAD, "last": True})
        cid = await client(server)
        await one(server, channel="/meta/subscribe", clientId=cid, subscription="/files")
        session = server.sessions[cid]
        data = {"data": bytearray(PAYLOAD), "meta": {"n": 1}}
        assert server.publish("/files", data) == 1
        assert isinstance(data["data"], bytearray)  # the application's object is not changed
        server.deliver(session, "/direct", {"data": memoryview(PAYLOAD)})
        await one(server, channel="/service/file", clientId=cid, data=None, id="1")
        connect = {"channel": "/meta/connect", "clientId": cid, "connectionType": "long-polling"}
        deliveries, _ = server.finish_connect(held(await server.handle([connect])))
        sent = [d.message for d in deliveries]
        assert [m["channel"] for m in sent] == ["/files", "/direct", "/service/file"]
        for message in sent:
            assert message["data"]["data"] == TEXT
            assert message["ext"] == {"binary": {}}
            assert z85.decode(message["data"]["data"]) == PAYLOAD
        assert sent[0]["data"]["meta"] == {"n": 1}

    run(scenario())


@pytest.mark.parametrize(
    "text",
    [
        TEXT[:321],  # one character past a multiple of five
        "Hello World",  # a space
        'Hel"o',
        "Hellé",
        "#####",  # more than four bytes
        None,
        12345,
        ["HelloWorld"],
        {"data": "HelloWorld"},
    ],
)
def test_what_is_not_z85_gets_an_error_reply(text: Any) -> None:
    async def scenario() -> None:
        server = binary_server()
        seen: list[Any] = []
        server.channel("/files").add_listener(lambda s, c, m: seen.append(m))
        publisher, subscriber = await client(server), await client(server)
        await one(server, channel="/meta/subscribe", clientId=subscriber, subscription="/files")
        reply = await one(server, **binary_message(publisher, text=text))
        assert reply["successful"] is False
        assert reply["error"] == "404:/files:Message deleted"
        assert seen == [] and server.sessions[subscriber].queue == []
        assert server.stats.errors == {}  # refused, not failed

    run(scenario())


@pytest.mark.parametrize("data", ["HelloWorld", None, ["HelloWorld"], {"last": True}])
def test_binary_without_a_data_object_holding_text_is_refused(data: Any) -> None:
    async def scenario() -> None:
        server = binary_server()
        cid = await client(server)
        message = {"channel": "/files", "clientId": cid, "data": data, "ext": {"binary": {}}}
        reply = await one(server, **message)
        assert reply["error"] == "404:/files:Message deleted"

    run(scenario())


def test_huge_binary_data_is_refused_before_it_is_decoded() -> None:
    async def scenario() -> None:
        server = binary_server(max_binary_bytes=1024)
        cid = await client(server)
        fits = z85.encode(bytes(1024))
        assert (await one(server, **binary_message(cid, text=fits)))["successful"] is True
        over = z85.encode(bytes(1025))
        reply = await one(server, **binary_message(cid, text=over))
        assert reply["error"] == "404:/files:Message deleted"
        # Far over: refused by its length, whatever its characters (not even looked at).
        reply = await one(server, **binary_message(cid, text="\x00" * 10_000_000))
        assert reply["error"] == "404:/files:Message deleted"

    run(scenario())


def test_meta_messages_are_left_alone() -> None:
    async def scenario() -> None:
        server = binary_server()
        cid = await client(server)
        reply = await one(
            server,
            channel="/meta/subscribe",
            clientId=cid,
            subscription="/files",
            ext={"binary": {}},
        )
        assert reply["successful"] is True

    run(scenario())


def test_a_message_without_binary_data_is_untouched() -> None:
    async def scenario() -> None:
        server = binary_server()
        seen: list[Any] = []
        server.channel("/chat").add_listener(lambda s, c, m: seen.append(m["data"]))
        cid = await client(server)
        await one(server, channel="/chat", clientId=cid, data={"data": "HelloWorld"})
        assert seen == [{"data": "HelloWorld"}]
        session = server.create_session()
        server.subscribe(session, "/chat")
        server.publish("/chat", {"data": "text", "n": 1})
        assert session.queue[0].message == {"channel": "/chat", "data": {"data": "text", "n": 1}}

    run(scenario())
