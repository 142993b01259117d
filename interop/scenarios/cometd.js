// The CometD JS client scenarios, shared by the Node run (cometd_scenarios.mjs) and the browser
// run (browser/index.html): each gets the CometD class of its environment, the server URL and the
// transport to force, and reports one result object per scenario.
import { check, collector, runAll, sleep, within } from "./harness.js";

let CometDClass, url, transport;

function newClient() {
  const cometd = new CometDClass();
  for (const type of cometd.getTransportTypes()) {
    if (type !== transport) cometd.unregisterTransport(type);
  }
  cometd.configure({ url, logLevel: "warn" });
  return cometd;
}

function handshake(cometd) {
  return within(new Promise((resolve, reject) => {
    cometd.handshake((reply) => (reply.successful ? resolve(reply) : reject(new Error(JSON.stringify(reply)))));
  }), "handshake");
}

function subscribe(cometd, channel, onMessage) {
  return within(new Promise((resolve, reject) => {
    const handle = cometd.subscribe(channel, onMessage, (reply) =>
      reply.successful ? resolve(handle) : reject(new Error(JSON.stringify(reply))));
  }), `subscribe ${channel}`);
}

function unsubscribe(cometd, handle) {
  return within(new Promise((resolve, reject) => {
    cometd.unsubscribe(handle, (reply) => (reply.successful ? resolve(reply) : reject(new Error(JSON.stringify(reply)))));
  }), "unsubscribe");
}

function publish(cometd, channel, data) {
  return within(new Promise((resolve, reject) => {
    cometd.publish(channel, data, (reply) => (reply.successful ? resolve(reply) : reject(new Error(JSON.stringify(reply)))));
  }), `publish ${channel}`);
}

function disconnect(cometd) {
  return within(new Promise((resolve) => cometd.disconnect(resolve)), "disconnect");
}

const scenarios = {
  async handshake_uses_requested_transport() {
    const c = newClient();
    const reply = await handshake(c);
    check(typeof reply.clientId === "string" && reply.clientId.length >= 20, "clientId");
    check(c.getTransport().type === transport, `transport is ${c.getTransport().type}`);
    await disconnect(c);
  },
  async publish_between_two_clients() {
    const a = newClient(); const b = newClient();
    await handshake(a); await handshake(b);
    const got = collector(1);
    await subscribe(b, "/interop/chat", got.onMessage);
    await publish(a, "/interop/chat", { text: "hello" });
    const [m] = await got.finished;
    check(m.channel === "/interop/chat" && m.data.text === "hello", JSON.stringify(m));
    check(m.clientId === undefined, "delivery carries the publisher's clientId");
    await disconnect(a); await disconnect(b);
  },
  async wildcard_subscriptions() {
    const a = newClient(); await handshake(a);
    const one = collector(1); const deep = collector(2);
    await subscribe(a, "/interop/wild/*", one.onMessage);
    await subscribe(a, "/interop/deep/**", deep.onMessage);
    await publish(a, "/interop/wild/x/y", { n: 0 });   // too deep for /*: not delivered to `one`
    await publish(a, "/interop/wild/x", { n: 1 });
    await publish(a, "/interop/deep/a", { n: 2 });
    await publish(a, "/interop/deep/a/b/c", { n: 3 });
    const [m1] = await one.finished; const d = await deep.finished;
    check(m1.channel === "/interop/wild/x" && m1.data.n === 1, JSON.stringify(m1));
    check(d.map((m) => m.data.n).join() === "2,3", JSON.stringify(d));
    await sleep(200);
    check(one.messages.length === 1, `one-segment wildcard got ${one.messages.length}`);
    await disconnect(a);
  },
  async unsubscribe_stops_delivery() {
    const a = newClient(); await handshake(a);
    const got = collector(1);
    const handle = await subscribe(a, "/interop/unsub", got.onMessage);
    await publish(a, "/interop/unsub", { n: 1 });
    await got.finished;
    await unsubscribe(a, handle);
    await publish(a, "/interop/unsub", { n: 2 });
    await sleep(500);
    check(got.messages.length === 1, `got ${got.messages.length} messages after unsubscribe`);
    await disconnect(a);
  },
  async five_hundred_messages_in_order() {
    const a = newClient(); const b = newClient();
    await handshake(a); await handshake(b);
    const got = collector(500);
    await subscribe(b, "/interop/order", got.onMessage);
    a.batch(() => { for (let i = 0; i < 500; i++) a.publish("/interop/order", { i }); });
    const ms = await got.finished;
    check(ms.every((m, i) => m.data.i === i), "out of order");
    await disconnect(a); await disconnect(b);
  },
  async disconnect_ends_session() {
    const a = newClient(); await handshake(a);
    await disconnect(a);
    check(a.isDisconnected(), `status ${a.getStatus()}`);
  },
};


export function runScenarios(CometD, serverUrl, transportName, report) {
  CometDClass = CometD; url = serverUrl; transport = transportName;
  return runAll(scenarios, transport, report);
}
