// The CometD JS client against interop/channels_server.py: channels as objects on the server
// (broadcast-to-publisher per channel and per session, a listener that drops, an authorizer that
// refuses subscriptions, per-message lazy, batches, subscriber counts). One JSON line per scenario.
// Usage: node cometd_channels.mjs single <transport> <url> <quietUrl>
//        node cometd_channels.mjs deployment <transport> <urlA> <urlB>
// (quietUrl: the same application on a server with broadcast-to-publisher off; urlA and urlB:
// two processes of one deployment on Redis.)
import { adapt } from "cometd-nodejs-client";
import { CometD } from "cometd";
import { check, runAndExit, sleep, waitFor, within } from "../scenarios/harness.js";

adapt();
const [suite, transport, firstUrl, secondUrl] = process.argv.slice(2);

// The lazy timeouts of channels_server.py, in ms.
const CHANNEL_LAZY = 300;
const SERVER_LAZY = 1200;
// A message "at once" arrives well before the shortest lazy timeout could have passed.
const AT_ONCE = 250;
// How long a message that should not arrive is waited for.
const SILENCE = 600;

// A client on `url` using `transport` only. `packets` records what each HTTP response
// (long-polling) or WebSocket frame carried, as the transport handed it to the client.
function newClient(url) {
  const cometd = new CometD();
  for (const type of cometd.getTransportTypes()) {
    if (type !== transport) cometd.unregisterTransport(type);
  }
  cometd.configure({ url, logLevel: "warn" });
  cometd.packets = [];
  const record = (messages) => cometd.packets.push({ at: Date.now(), messages });
  const wire = cometd.findTransport(transport);
  if (transport === "long-polling") {
    const xhrSend = wire.xhrSend.bind(wire);
    wire.xhrSend = (packet) => {
      const onSuccess = packet.onSuccess;
      packet.onSuccess = (text) => {
        try { record(JSON.parse(text)); } catch (_) { /* the client reports it */ }
        onSuccess(text);
      };
      return xhrSend(packet);
    };
  } else {
    const notify = wire._notifySuccess.bind(wire);
    wire._notifySuccess = (fn, messages) => { record(messages); notify(fn, messages); };
  }
  return cometd;
}

// Every client a scenario made, disconnected after it whatever happened: one failing must not
// leave subscribers behind for the next (the servers are shared).
const made = [];

async function connected(url) {
  const c = newClient(url);
  made.push(c);
  const reply = await within(new Promise((resolve) => c.handshake(resolve)), "handshake");
  check(reply.successful, `handshake ${JSON.stringify(reply)}`);
  return c;
}

// Subscribes `c` to `channel`; `got` collects the data of what arrives, `at` when.
async function listen(c, channel) {
  const got = [];
  const at = [];
  let handle;
  const reply = await within(new Promise((resolve) => {
    handle = c.subscribe(channel, (m) => { got.push(m.data); at.push(Date.now()); }, resolve);
  }), `subscribe ${channel}`);
  check(reply.successful, `subscribe ${channel}: ${JSON.stringify(reply)}`);
  return { got, at, handle };
}

const publish = (c, channel, data) => within(
  new Promise((resolve) => c.publish(channel, data, resolve)), `publish ${channel}`);

async function call(c, target, data) {
  const reply = await within(
    new Promise((resolve) => c.remoteCall(`channels/${target}`, data, 5000, resolve)),
    `remoteCall ${target}`);
  check(reply.successful, `remoteCall ${target}: ${JSON.stringify(reply)}`);
  return reply.data;
}

const disconnect = (c) => within(new Promise((resolve) => c.disconnect(resolve)), "disconnect");

async function disconnectAll(...clients) {
  for (const c of clients) await disconnect(c);
}

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

// The packets of `c` that carried messages on `channel`, as the list of their `n`s.
function packetsOn(c, channel) {
  return c.packets
    .map((p) => ({ ...p, on: p.messages.filter((m) => m.channel === channel) }))
    .filter((p) => p.on.length > 0);
}

// ms from a remote call publishing on `channel` (lazily or not) to the message's arrival at a
// client whose connect is held meanwhile.
async function arrival(url, channel, lazy) {
  const watcher = await connected(url);
  const caller = await connected(url);
  const seen = await listen(watcher, channel);
  await sleep(300); // the watcher's connect is held again
  const started = Date.now();
  const reached = await call(caller, "publish", { channel, data: { lazy }, lazy });
  check(reached === 1, `reached ${reached}`);
  await waitFor(() => seen.got.length === 1, 5000, `the message on ${channel}`);
  const elapsed = seen.at[0] - started;
  await disconnectAll(watcher, caller);
  return elapsed;
}

function checkAtOnce(elapsed, what) {
  check(elapsed < AT_ONCE, `${what} arrived after ${elapsed} ms, not at once`);
}

function checkWaited(elapsed, ms, what) {
  // From the call's start: the lazy timer starts a little later, never earlier.
  check(elapsed >= ms - 20 && elapsed < ms + 600,
        `${what} arrived after ${elapsed} ms, expected about ${ms} ms`);
}

// A watcher gets `count` messages the server publishes `gapMs` apart, inside server.batch()
// or not; returns the packets that carried them.
async function burst(url, batched, gapMs) {
  const channel = `/interop/burst/${batched ? "batched" : "loose"}`;
  const watcher = await connected(url);
  const caller = await connected(url);
  const seen = await listen(watcher, channel);
  await sleep(300);
  const count = await call(caller, "burst", { channel, count: 3, gap_ms: gapMs, batched });
  check(count === 3, `burst answered ${count}`);
  await waitFor(() => seen.got.length === 3, 5000, "the burst");
  await sleep(200);
  check(same(seen.got.map((d) => d.n), [0, 1, 2]), `got ${JSON.stringify(seen.got)}`);
  const packets = packetsOn(watcher, channel);
  await disconnectAll(watcher, caller);
  return packets;
}

const single = {
  async channel_without_broadcast_to_publisher() {
    // The server echoes (its default): /interop/noecho/* turns it off for its channels.
    const [a, b] = [await connected(firstUrl), await connected(firstUrl)];
    const aPlain = await listen(a, "/interop/plain/room");
    const bPlain = await listen(b, "/interop/plain/room");
    const aQuiet = await listen(a, "/interop/noecho/room");
    const bQuiet = await listen(b, "/interop/noecho/room");
    check((await publish(a, "/interop/plain/room", { n: 1 })).successful, "publish plain");
    await waitFor(() => aPlain.got.length === 1 && bPlain.got.length === 1, 5000, "the echo");
    const reply = await publish(a, "/interop/noecho/room", { n: 2 });
    check(reply.successful, JSON.stringify(reply));
    await waitFor(() => bQuiet.got.length === 1, 5000, "the other subscriber's copy");
    await sleep(SILENCE);
    check(aQuiet.got.length === 0, `the publisher got its own: ${JSON.stringify(aQuiet.got)}`);
  },
  async server_side_publish_and_deliver_as_the_caller() {
    // channel.publish(data, sender=session) and session.deliver(..., sender=session).
    const [a, b] = [await connected(firstUrl), await connected(firstUrl)];
    const aQuiet = await listen(a, "/interop/noecho/as-me");
    const bQuiet = await listen(b, "/interop/noecho/as-me");
    const aPlain = await listen(a, "/interop/plain/as-me");
    const bPlain = await listen(b, "/interop/plain/as-me");
    const quiet = await call(a, "publish", { channel: "/interop/noecho/as-me", data: 1, as_me: true });
    const plain = await call(a, "publish", { channel: "/interop/plain/as-me", data: 2, as_me: true });
    check(quiet === 1 && plain === 2, `reached ${quiet} and ${plain}`);
    const delivered = [];
    a.addListener("/interop/noecho/direct", (m) => delivered.push(m.data));
    a.addListener("/interop/plain/direct", (m) => delivered.push(m.data));
    await call(a, "deliver", { channel: "/interop/noecho/direct", data: "dropped" });
    await call(a, "deliver", { channel: "/interop/plain/direct", data: "delivered" });
    await waitFor(() => bQuiet.got.length === 1 && bPlain.got.length === 1, 5000, "b's copies");
    await waitFor(() => aPlain.got.length === 1 && delivered.length === 1, 5000, "a's echo");
    await sleep(SILENCE);
    check(aQuiet.got.length === 0, `a got ${JSON.stringify(aQuiet.got)} on /interop/noecho`);
    check(same(delivered, ["delivered"]), `a was delivered ${JSON.stringify(delivered)}`);
  },
  async channel_with_broadcast_to_publisher_on_a_quiet_server() {
    // The server does not echo: /interop/echo/* turns it on for its channels.
    const [a, b] = [await connected(secondUrl), await connected(secondUrl)];
    const aPlain = await listen(a, "/interop/plain/room");
    const bPlain = await listen(b, "/interop/plain/room");
    const aLoud = await listen(a, "/interop/echo/room");
    const bLoud = await listen(b, "/interop/echo/room");
    check((await publish(a, "/interop/plain/room", { n: 1 })).successful, "publish plain");
    check((await publish(a, "/interop/echo/room", { n: 2 })).successful, "publish echo");
    await waitFor(() => aLoud.got.length === 1 && bLoud.got.length === 1, 5000, "the echo");
    await waitFor(() => bPlain.got.length === 1, 5000, "the plain copy");
    await sleep(SILENCE);
    check(aPlain.got.length === 0, `the server echoed anyway: ${JSON.stringify(aPlain.got)}`);
  },
  async session_without_broadcast_to_publisher() {
    // Set by a session-added listener for the client that handshook with ?echo=no: it holds
    // on a plain channel and against a channel that allows echoes.
    const [a, b] = [await connected(`${firstUrl}?echo=no`), await connected(firstUrl)];
    const aPlain = await listen(a, "/interop/plain/session");
    const bPlain = await listen(b, "/interop/plain/session");
    const aLoud = await listen(a, "/interop/echo/session");
    const bLoud = await listen(b, "/interop/echo/session");
    check((await publish(a, "/interop/plain/session", { from: "a" })).successful, "publish");
    check((await publish(a, "/interop/echo/session", { from: "a" })).successful, "publish");
    check((await publish(b, "/interop/plain/session", { from: "b" })).successful, "publish");
    await waitFor(() => bPlain.got.length === 2 && bLoud.got.length === 1, 5000, "b's copies");
    await waitFor(() => aPlain.got.length === 1, 5000, "b's message at a");
    await sleep(SILENCE);
    check(same(aPlain.got, [{ from: "b" }]), `a got ${JSON.stringify(aPlain.got)}`);
    check(aLoud.got.length === 0, `a got its own on /interop/echo: ${JSON.stringify(aLoud.got)}`);
  },
  async listener_drops_a_message() {
    const [a, b] = [await connected(firstUrl), await connected(firstUrl)];
    const aSeen = await listen(a, "/interop/filtered/room");
    const bSeen = await listen(b, "/interop/filtered/room");
    const dropped = await publish(a, "/interop/filtered/room", { drop: true, n: 1 });
    check(dropped.successful === false, JSON.stringify(dropped));
    check(dropped.error === "404:/interop/filtered/room:Message deleted", dropped.error);
    const kept = await publish(a, "/interop/filtered/room", { n: 2 });
    check(kept.successful === true, JSON.stringify(kept));
    await waitFor(() => aSeen.got.length >= 1 && bSeen.got.length >= 1, 5000, "the kept one");
    await sleep(SILENCE);
    check(same(bSeen.got, [{ n: 2 }]) && same(aSeen.got, [{ n: 2 }]),
          `got ${JSON.stringify(aSeen.got)} and ${JSON.stringify(bSeen.got)}`);
  },
  async authorizer_denies_subscribe() {
    const c = await connected(firstUrl);
    const reply = await within(new Promise((resolve) => {
      c.subscribe("/interop/guarded/room", () => {}, resolve);
    }), "subscribe");
    check(reply.successful === false, JSON.stringify(reply));
    check(reply.error === "403:/interop/guarded/room:Subscription denied", reply.error);
    const pub = await publish(c, "/interop/guarded/room", { n: 1 }); // publishing is granted
    check(pub.successful === true, JSON.stringify(pub));
    await listen(c, "/interop/plain/guarded"); // and other channels are not guarded
  },
  async server_batch_arrives_in_one_packet() {
    // Three publishes 150 ms apart inside one server.batch(): one connect reply, one frame.
    const packets = await burst(firstUrl, true, 150);
    check(packets.length === 1, `${packets.length} packets: ${JSON.stringify(packets.map((p) => p.messages))}`);
    check(same(packets[0].on.map((m) => m.data.n), [0, 1, 2]), JSON.stringify(packets[0].on));
    if (transport === "long-polling") {
      check(packets[0].messages.some((m) => m.channel === "/meta/connect"),
            `not a connect reply: ${JSON.stringify(packets[0].messages)}`);
    }
  },
  async without_a_batch_the_same_publishes_arrive_apart() {
    const packets = await burst(firstUrl, false, 150);
    check(packets.length === 3 && packets.every((p) => p.on.length === 1),
          `${packets.length} packets: ${JSON.stringify(packets.map((p) => p.on))}`);
  },
  async lazy_publish_waits_for_the_channels_own_timeout() {
    // /interop/lazy/timed is not lazy, with a lazy timeout of its own.
    checkAtOnce(await arrival(firstUrl, "/interop/lazy/timed", false), "a prompt message");
    checkWaited(await arrival(firstUrl, "/interop/lazy/timed", true), CHANNEL_LAZY, "a lazy message");
  },
  async lazy_publish_on_a_plain_channel_waits_for_the_servers_timeout() {
    checkAtOnce(await arrival(firstUrl, "/interop/lazy/plain", false), "a prompt message");
    checkWaited(await arrival(firstUrl, "/interop/lazy/plain", true), SERVER_LAZY, "a lazy message");
  },
  async lazy_channel_holds_every_message_for_its_timeout() {
    checkWaited(await arrival(firstUrl, "/interop/lazy/channel", false), CHANNEL_LAZY, "a message");
    checkWaited(await arrival(firstUrl, "/interop/lazy/channel", true), CHANNEL_LAZY, "a lazy message");
  },
  async channels_own_lazy_timeout_comes_before_its_patterns() {
    // /interop/ticks/* is lazy (the server's timeout), /interop/ticks/fast has its own; the
    // pattern was configured first.
    checkWaited(await arrival(firstUrl, "/interop/ticks/slow", false), SERVER_LAZY, "on the pattern");
    checkWaited(await arrival(firstUrl, "/interop/ticks/fast", false), CHANNEL_LAZY, "on its channel");
  },
  async subscriber_count_follows_the_clients() {
    const channel = "/interop/count/room";
    const clients = [await connected(firstUrl), await connected(firstUrl), await connected(firstUrl)];
    const asker = await connected(firstUrl);
    const subscriptions = [];
    for (const c of clients) subscriptions.push(await listen(c, channel));
    const ids = clients.map((c) => c.getClientId()).sort();
    let found = await call(asker, "count", { channel });
    check(found.local === 3 && found.deployment === 3, JSON.stringify(found));
    check(same(found.listed, ids) && same(found.deployment_ids, ids), JSON.stringify(found));
    const gone = await within(new Promise((resolve) => {
      clients[0].unsubscribe(subscriptions[0].handle, resolve);
    }), "unsubscribe");
    check(gone.successful, JSON.stringify(gone));
    found = await call(asker, "count", { channel });
    check(found.local === 2 && same(found.listed, ids.filter((id) => id !== clients[0].getClientId())),
          JSON.stringify(found));
    await disconnect(clients[1]);
    found = await call(asker, "count", { channel });
    check(found.local === 1 && same(found.listed, [clients[2].getClientId()]), JSON.stringify(found));
  },
};

// Two processes of one deployment on Redis: each client talks to one of them.
const deployment = {
  async subscribers_are_counted_on_both_processes() {
    const channel = "/interop/count/spread";
    const onA = [await connected(firstUrl), await connected(firstUrl)];
    const onB = [await connected(secondUrl), await connected(secondUrl), await connected(secondUrl)];
    const subscriptions = [];
    for (const c of [...onA, ...onB]) subscriptions.push(await listen(c, channel));
    const ids = (clients) => clients.map((c) => c.getClientId()).sort();
    const everyone = ids([...onA, ...onB]);
    const askA = await connected(firstUrl);
    const askB = await connected(secondUrl);
    let fromA = await call(askA, "count", { channel });
    let fromB = await call(askB, "count", { channel });
    check(fromA.local === 2 && same(fromA.listed, ids(onA)), `from a ${JSON.stringify(fromA)}`);
    check(fromB.local === 3 && same(fromB.listed, ids(onB)), `from b ${JSON.stringify(fromB)}`);
    for (const found of [fromA, fromB]) {
      check(found.deployment === 5 && same(found.deployment_ids, everyone), JSON.stringify(found));
    }
    // An unsubscribe on one process counts on the other as soon as it is answered.
    const gone = await within(new Promise((resolve) => {
      onB[0].unsubscribe(subscriptions[2].handle, resolve);
    }), "unsubscribe");
    check(gone.successful, JSON.stringify(gone));
    fromA = await call(askA, "count", { channel });
    const left = ids([...onA, ...onB.slice(1)]);
    check(fromA.deployment === 4 && same(fromA.deployment_ids, left), JSON.stringify(fromA));
    // A disconnect is recorded in Redis after its reply: the other process sees it shortly.
    await disconnect(onA[0]);
    for (const until = Date.now() + 2000; ; await sleep(50)) {
      fromB = await call(askB, "count", { channel });
      if (fromB.deployment === 3 || Date.now() > until) break;
    }
    check(fromB.deployment === 3 && same(fromB.deployment_ids, ids([onA[1], ...onB.slice(1)])),
          JSON.stringify(fromB));
    check(fromB.local === 2, JSON.stringify(fromB));
  },
  async broadcast_to_publisher_settings_hold_across_processes() {
    // The channel's setting (every process has it) and the session's (set where it is served).
    const a = await connected(firstUrl);
    const quietA = await connected(`${firstUrl}?echo=no`);
    const b = await connected(secondUrl);
    const aSeen = await listen(a, "/interop/noecho/spread");
    const bSeen = await listen(b, "/interop/noecho/spread");
    const aPlain = await listen(a, "/interop/plain/spread");
    const quietSeen = await listen(quietA, "/interop/plain/spread");
    const bPlain = await listen(b, "/interop/plain/spread");
    check((await publish(a, "/interop/noecho/spread", { n: 1 })).successful, "publish");
    check((await publish(quietA, "/interop/plain/spread", { n: 2 })).successful, "publish");
    check((await publish(a, "/interop/plain/spread", { n: 3 })).successful, "publish");
    await waitFor(() => bSeen.got.length === 1 && bPlain.got.length === 2, 5000, "b's copies");
    // The control: the deployment echoes otherwise.
    await waitFor(() => aPlain.got.length === 2, 5000, "a's copies on the plain channel");
    await sleep(SILENCE);
    check(same(quietSeen.got, [{ n: 3 }]), `the quiet session got ${JSON.stringify(quietSeen.got)}`);
    check(aSeen.got.length === 0, `a got its own: ${JSON.stringify(aSeen.got)}`);
  },
};

const suites = { single, deployment };
if (!suites[suite]) throw new Error(`unknown suite ${suite}`);
const cleaned = Object.fromEntries(Object.entries(suites[suite]).map(([name, run]) => [
  name,
  async () => {
    try {
      await run();
    } finally {
      for (const c of made.splice(0)) {
        if (!c.isDisconnected()) await disconnect(c).catch(() => {});
      }
    }
  },
]));
await runAndExit(cleaned, transport);
