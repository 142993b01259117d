"""The bugs: each a single edit to one file of the `bayeux` package, as a developer might make
it. `find` must occur exactly once in its file (tests/system/test_mutation.py keeps the list current)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mutant:
    id: str
    file: str  # relative to the bayeux package
    find: str
    replace: str
    what: str


MUTANTS = [
    Mutant(
        "browser-binding-ignored",
        "core/server.py",
        '        return None if allowed is None or allowed == session.browser else "other-browser"\n',
        "        return None\n",
        "a session's clientId works from any browser",
    ),
    Mutant(
        "subscription-array-first-only",
        "core/meta.py",
        "        for pattern in patterns:\n            if subscribe:\n",
        "        for pattern in patterns[:1]:\n            if subscribe:\n",
        "a subscription array subscribes to its first channel only",
    ),
    Mutant(
        "unsubscribe-ends-everyones",
        "core/tree.py",
        "        slot.discard(subscriber)\n",
        "        slot.clear()\n",
        "one session's unsubscribe removes every session's subscription to that channel",
    ),
    Mutant(
        "star-matches-any-depth",
        "core/tree.py",
        "            if node.deep:\n                found |= node.deep\n            children",
        "            if node.deep:\n                found |= node.deep\n            if node.star:\n"
        "                found |= node.star\n            children",
        "/a/* matches /a/b/c",
    ),
    Mutant(
        "deep-matches-one-level",
        "core/tree.py",
        "            if node.deep:\n",
        "            if node.deep and depth == last:\n",
        "/a/** matches only one level below /a",
    ),
    Mutant(
        "delivered-twice",
        "core/session.py",
        "        was_empty = not self.queue or self.lazy_pending\n        self.queue.append(delivery)\n",
        "        was_empty = not self.queue or self.lazy_pending\n"
        "        self.queue.extend((delivery, delivery))\n",
        "each message queued twice",
    ),
    Mutant(
        "second-connect-keeps-first",
        "core/session.py",
        "            previous.displace()",
        "            pass",
        "a second connect does not release the held one",
    ),
    Mutant(
        "disconnect-keeps-session",
        "core/meta.py",
        "        self.remove_session(session, Ended.DISCONNECTED)",
        "        pass",
        "disconnect answers but keeps the session",
    ),
    Mutant(
        "ids-not-echoed",
        "core/message.py",
        '        reply["id"] = message_id',
        "        pass",
        "replies without the request's id",
    ),
    Mutant(
        "order-reversed",
        "core/session.py",
        "        items = self.queue\n",
        "        items = self.queue[::-1]\n",
        "queued messages delivered newest first",
    ),
    Mutant(
        "never-expires",
        "core/state.py",
        "s.deadline is not None and s.deadline <= now",
        "s.deadline is not None and s.deadline < 0",
        "sessions never expire",
    ),
    Mutant(
        "handshake-without-connection-types",
        "core/meta.py",
        "            supportedConnectionTypes=list(allowed),\n",
        "",
        "handshake reply lacks supportedConnectionTypes",
    ),
    Mutant(
        "service-broadcast",
        "core/publishing.py",
        "        if ch.is_broadcast(channel):",
        "        if not ch.is_meta(channel):",
        "/service/** messages broadcast to subscribers",
    ),
    Mutant(
        "websocket-not-pushed",
        "transports/websocket.py",
        "            self.socket.schedule_flush()",
        "            pass",
        "WebSocket deliveries wait for the client's next request",
    ),
    Mutant(
        "long-poll-not-woken",
        "transports/waiting.py",
        "        self._resolve(Wakeup.MESSAGES)",
        "        pass",
        "a held long-poll is not answered when a message arrives",
    ),
    Mutant(
        "unknown-client-retry-advice",
        "core/replies.py",
        'HANDSHAKE_AGAIN = {"reconnect": "handshake", "interval": 0}',
        'HANDSHAKE_AGAIN = {"reconnect": "retry", "interval": 0}',
        "an unknown client is told to retry, not to handshake",
    ),
    Mutant(
        "first-connect-held",
        "core/meta.py",
        '        hold_ms = 0 if first else reply["advice"]["timeout"]',
        '        hold_ms = reply["advice"]["timeout"]',
        "the first connect after a handshake is held",
    ),
    Mutant(
        "client-timeout-ignored",
        "core/meta.py",
        '            hold_ms = min(hold_ms, int(advice["timeout"]))',
        "            pass",
        "advice.timeout from the client ignored",
    ),
    Mutant(
        "subscribe-reply-without-subscription",
        "core/meta.py",
        "        reply.update(clientId=session.id, subscription=subscription)",
        "        reply.update(clientId=session.id)",
        "subscribe reply does not echo the subscription",
    ),
    Mutant(
        "unsubscribe-noop",
        "core/meta.py",
        "                self._unsubscribe_here(session, pattern)",
        "                pass",
        "unsubscribe answers but keeps the subscription",
    ),
    Mutant(
        "publish-to-wildcard",
        "core/publishing.py",
        '        if not self.channels.valid_name(channel):\n            return failure(message, error(405, channel, "Invalid channel"))\n        if "data" not in message:',
        '        if not self.channels.valid_subscription(channel):\n            return failure(message, error(405, channel, "Invalid channel"))\n        if "data" not in message:',
        "publishing to /a/* accepted",
    ),
    Mutant(
        "meta-prefix-match",
        "core/server.py",
        "        if channel == ch.META_SUBSCRIBE:",
        "        if channel.startswith(ch.META_SUBSCRIBE):",
        "/meta/subscribe/x handled as /meta/subscribe (Faye's old auth bypass)",
    ),
    Mutant(
        "jsonp-not-wrapped",
        "transports/polling.py",
        '        return HttpResponse(200, headers, b"/**/" + callback.encode() + b"(" + body + b");")',
        "        return HttpResponse(200, headers, body)",
        "callback-polling replies are bare JSON",
    ),
    Mutant(
        "wrong-content-type",
        "transports/http.py",
        'JSON_TYPE = "application/json;charset=utf-8"',
        'JSON_TYPE = "text/html;charset=utf-8"',
        "long-polling replies as text/html",
    ),
    Mutant(
        "handshake-batch-processed",
        "core/server.py",
        "                messages = [handshake]",
        "                pass",
        "messages batched with a handshake are processed",
    ),
    Mutant(
        "ack-not-numbered",
        "core/meta.py",
        '            reply.setdefault("ext", {})["ack"] = session.record_batch(deliveries)',
        "            session.record_batch(deliveries)",
        "ack batches not numbered in connect replies",
    ),
    Mutant(
        "timesync-not-answered",
        "core/meta.py",
        "        if not self.settings.timesync_extension:\n            return\n        now_ms",
        "        if True:\n            return\n        now_ms",
        "timesync requests not answered",
    ),
    Mutant(
        "publisher-id-leaked",
        "core/publishing.py",
        '            outgoing: Message = {"channel": channel, "data": message["data"]}',
        '            outgoing: Message = {"channel": channel, "data": message["data"], "clientId": session.id}',
        "deliveries carry the publisher's clientId",
    ),
    Mutant(
        "displaced-connect-expires-new-one",
        "core/meta.py",
        "        if session.held is hold or session.held is None:",
        "        if True:",
        "a displaced connect starts the expiry of the one that displaced it",
    ),
    Mutant(
        "long-names-accepted",
        "core/channel.py",
        '        return len(channel) <= self.max_length and channel.count("/") <= self.max_segments',
        "        return True",
        "channel names of any length",
    ),
    Mutant(
        "name-prefix-match",
        "core/channel.py",
        "            and _NAME_RE.fullmatch(channel) is not None\n        )",
        "            and _NAME_RE.match(channel) is not None\n        )",
        "a valid prefix makes a channel name valid (trailing newlines, spaces)",
    ),
    Mutant(
        "error-args-raw",
        "core/message.py",
        "    return arg.translate(_ESCAPED)",
        "    return arg",
        "error arguments echoed raw",
    ),
    Mutant(
        "timeout-advice-unchecked",
        "core/replies.py",
        "        if name in advice and not number_in(advice[name], 0, MAX_MS):",
        "        if False:",
        "advice.timeout and interval not validated",
    ),
    Mutant(
        "oversized-body-read",
        "transports/polling.py",
        "        if declared_length is not None and declared_length > settings.max_message_size:",
        "        if False:",
        "an oversized declared body is read before it is refused",
    ),
    Mutant(
        "replay-ignores-subscribe-id",
        "core/meta.py",
        "        if refusal is None and subscribe and self.replay is not None:\n",
        "        if False:\n",
        "a subscribe's ext.replay is ignored: nothing missed is replayed",
    ),
    Mutant(
        "replay-seam-duplicates",
        "core/replay.py",
        "        return [e for e in retained if e.replay_id > replay_id]",
        "        return [e for e in retained if e.replay_id >= replay_id]",
        "resuming from an id replays that event again",
    ),
]
