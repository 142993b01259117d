// The CometD JS client against interop/feature_server.py: security policy, authorizer, message
// listener, remoteCall (answered, failed, timed out), timesync, and ack redelivery after a lost
// connect reply. One JSON line per scenario. Usage: node cometd_features.mjs <url> <transport>
import { adapt } from "cometd-nodejs-client";
import { AckExtension, CometD, TimeSyncExtension } from "cometd";
import { check, runAndExit, sleep, waitFor, within } from "../scenarios/harness.js";

adapt();
const [url, transport = "long-polling"] = process.argv.slice(2);

function newClient(extensions = {}) {
  const cometd = new CometD();
  for (const type of cometd.getTransportTypes()) {
    if (type !== transport) cometd.unregisterTransport(type);
  }
  for (const [name, ext] of Object.entries(extensions)) cometd.registerExtension(name, ext);
  cometd.configure({ url, logLevel: "warn" });
  return cometd;
}

const handshake = (c, props = {}) => within(new Promise((resolve) => c.handshake(props, resolve)), "handshake");
const subscribe = (c, channel, onMessage) => within(new Promise((resolve) => {
  c.subscribe(channel, onMessage, (reply) => resolve(reply));
}), `subscribe ${channel}`);
const publish = (c, channel, data) => within(new Promise((resolve) => c.publish(channel, data, resolve)), "publish");
const remoteCall = (c, target, data, timeout) => within(new Promise((resolve) => {
  c.remoteCall(target, data, timeout, resolve);
}), `remoteCall ${target}`);
const disconnect = (c) => within(new Promise((resolve) => c.disconnect(resolve)), "disconnect");

// Publishes two messages to a client that asked the server to lose its next connect reply, and
// returns what that client received within `waitMs` (or as soon as both arrived).
async function lostReplyRun(withAck, waitMs) {
  const receiver = newClient(withAck ? { ack: new AckExtension() } : {});
  const sender = newClient();
  await handshake(receiver); await handshake(sender);
  const channel = `/interop/ack/${withAck ? "on" : "off"}`;
  const got = [];
  const sub = await subscribe(receiver, channel, (m) => got.push(m.data.n));
  check(sub.successful, JSON.stringify(sub));
  const armed = await remoteCall(receiver, "test/lose-next-reply", {}, 5000);
  check(armed.successful && armed.data === "armed", JSON.stringify(armed));
  await sleep(300); // the receiver's connect is held again
  const started = Date.now();
  // One batch, one request: both messages land in the same connect reply, which is then lost.
  const acks = [];
  sender.batch(() => {
    for (const n of [1, 2]) sender.publish(channel, { n }, (reply) => acks.push(reply.successful));
  });
  await waitFor(() => acks.length === 2, 5000, "publish replies");
  check(acks.every(Boolean), `publish replies ${JSON.stringify(acks)}`);
  // The client notices the loss, backs off and connects again (in Node both clients share a
  // cookie jar, so the server may also have advised one of them to poll every 2 s).
  try { await waitFor(() => got.length >= 2, waitMs, "redelivery"); } catch (_) { /* reported */ }
  const elapsed = Date.now() - started;
  await disconnect(receiver); await disconnect(sender);
  return { got, elapsed };
}

const scenarios = {
  async handshake_denied_by_policy() {
    const c = newClient();
    const reply = await handshake(c, { ext: { token: "bad" } });
    check(reply.successful === false, JSON.stringify(reply));
    check(reply.error === "403::Handshake denied", reply.error);
    await sleep(300);
    check(c.isDisconnected(), `status ${c.getStatus()}`); // advice reconnect: none
  },
  async subscribe_denied_by_authorizer() {
    const c = newClient();
    check((await handshake(c, { ext: { token: "good" } })).successful, "handshake");
    const reply = await subscribe(c, "/interop/secret/plans", () => {});
    check(reply.successful === false && reply.error.startsWith("403:"), JSON.stringify(reply));
    const pub = await publish(c, "/interop/secret/plans", { ok: 1 }); // publishing is granted
    check(pub.successful === true, JSON.stringify(pub));
    await disconnect(c);
  },
  async message_listener_rewrites() {
    const c = newClient();
    await handshake(c);
    const got = [];
    await subscribe(c, "/interop/censored", (m) => got.push(m.data.text));
    await publish(c, "/interop/censored", { text: "darn it" });
    await waitFor(() => got.length === 1, 5000, "rewritten message");
    check(got[0] === "**** it", got[0]);
    await disconnect(c);
  },
  async remote_call_answered() {
    const c = newClient();
    await handshake(c);
    const reply = await remoteCall(c, "echo", { x: 1 }, 5000);
    check(reply.successful === true && reply.data.echo.x === 1, JSON.stringify(reply));
    await disconnect(c);
  },
  async remote_call_failed() {
    const c = newClient();
    await handshake(c);
    const reply = await remoteCall(c, "fail", {}, 5000);
    check(reply.successful === false && reply.data.reason === "test", JSON.stringify(reply));
    await disconnect(c);
  },
  async remote_call_timed_out() {
    const c = newClient();
    await handshake(c);
    const reply = await remoteCall(c, "slow", {}, 500);
    check(reply.successful === false && reply.error === "406::timeout", JSON.stringify(reply));
    await disconnect(c);
  },
  async kicked_by_the_server_stops() {
    // The server disconnects the client (BayeuxServer.disconnect): its held connect is answered
    // with reconnect: none, and the client stops without handshaking again.
    const c = newClient();
    let handshakes = 0;
    c.addListener("/meta/handshake", () => { handshakes += 1; });
    check((await handshake(c)).successful, "handshake");
    const reply = await remoteCall(c, "test/kick-me", {}, 5000);
    check(reply.successful && reply.data === "kicking", JSON.stringify(reply));
    await waitFor(() => c.isDisconnected(), 5000, "the client to stop");
    await sleep(1500);
    check(c.isDisconnected() && handshakes === 1, `status ${c.getStatus()}, ${handshakes} handshakes`);
  },
  async timesync_answered() {
    const sync = new TimeSyncExtension();
    const c = newClient({ timesync: sync });
    let serverSync;
    c.addListener("/meta/handshake", (m) => { serverSync = m.ext && m.ext.timesync; });
    await handshake(c);
    check(serverSync && ["tc", "ts", "p", "a"].every((k) => typeof serverSync[k] === "number"),
          JSON.stringify(serverSync));
    await sleep(300);
    // Same machine, same clock: the client's estimate of the offset must converge near zero.
    check(Math.abs(sync.getTimeOffset()) < 50, `offset ${sync.getTimeOffset()}`);
    check(sync.getNetworkLag() >= 0 && sync.getNetworkLag() < 50, `lag ${sync.getNetworkLag()}`);
    await disconnect(c);
  },
};

if (transport === "websocket") {
  scenarios.dropped_socket_loses_nothing = async () => {
    // The server drops the receiver's socket; messages published meanwhile wait in its session
    // and arrive, in order, once the client has reconnected on a new socket.
    const receiver = newClient();
    const sender = newClient();
    await handshake(receiver); await handshake(sender);
    const got = [];
    const sub = await subscribe(receiver, "/interop/drop", (m) => got.push(m.data.n));
    check(sub.successful, JSON.stringify(sub));
    const closes = [];
    receiver.addListener("/meta/connect", (m) => { if (!m.successful) closes.push(m); });
    const armed = await remoteCall(receiver, "test/drop-socket", {}, 5000);
    check(armed.successful && armed.data === "dropping", JSON.stringify(armed));
    await sleep(300); // the socket is gone now
    for (let n = 1; n <= 20; n++) {
      const reply = await publish(sender, "/interop/drop", { n });
      check(reply.successful, JSON.stringify(reply));
    }
    await waitFor(() => got.length >= 20, 15000, "messages after the drop");
    await sleep(200);
    check(JSON.stringify(got) === JSON.stringify([...Array(20).keys()].map((i) => i + 1)),
          `got ${JSON.stringify(got)}`);
    check(closes.length > 0, "the client never noticed the drop: the test proves nothing");
    await disconnect(receiver); await disconnect(sender);
  };
}

if (transport === "long-polling") {
  scenarios.ack_redelivers_after_lost_connect_reply = async () => {
    // With ack the lost reply's messages come again, in order. The control then waits twice as
    // long without ack and gets nothing: proof that the fault injection really loses them.
    const withAck = await lostReplyRun(true, 12000);
    check(JSON.stringify(withAck.got) === "[1,2]", `with ack got ${JSON.stringify(withAck.got)}`);
    const without = await lostReplyRun(false, Math.max(3000, 2 * withAck.elapsed));
    check(without.got.length === 0, `without ack got ${JSON.stringify(without.got)}: nothing lost`);
  };
}

await runAndExit(scenarios, transport);
