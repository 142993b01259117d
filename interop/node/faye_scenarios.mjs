// Drives the Faye client (npm `faye`) against a Bayeux server; one JSON line per scenario.
// Usage: node faye_scenarios.mjs <url> <long-polling|websocket>
import faye from "faye";

const [url, transport = "long-polling"] = process.argv.slice(2);
const STEP_MS = 10000;

function newClient() {
  const client = new faye.Client(url, { timeout: 20 });
  if (transport === "long-polling") client.disable("websocket");
  client.disable("eventsource");
  return client;
}

function within(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), STEP_MS);
  });
  return Promise.race([Promise.resolve(promise), timeout]).finally(() => clearTimeout(timer));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const check = (cond, what) => { if (!cond) throw new Error(what); };

function collector(count) {
  const messages = [];
  let done;
  const finished = new Promise((resolve) => { done = resolve; });
  return { messages, finished: within(finished, `${count} messages`),
           onMessage: (m) => { messages.push(m); if (messages.length >= count) done(messages); } };
}

async function transportUsed(client) {
  // Faye exposes the negotiated transport through the dispatcher once connected.
  return client._dispatcher && client._dispatcher._transport && client._dispatcher._transport.connectionType;
}

const scenarios = {
  async publish_between_two_clients() {
    const a = newClient(); const b = newClient();
    const got = collector(1);
    await within(b.subscribe("/interop/faye/chat", got.onMessage), "subscribe");
    await within(a.publish("/interop/faye/chat", { text: "hello" }), "publish");
    const [m] = await got.finished;
    check(m.text === "hello", JSON.stringify(m));
    const used = await transportUsed(b);
    check(used === transport, `transport used: ${used}`);
    await a.disconnect(); await b.disconnect();
  },
  async wildcard_subscriptions() {
    const a = newClient();
    const got = collector(2);
    await within(a.subscribe("/interop/faye/deep/**", got.onMessage), "subscribe");
    await within(a.publish("/interop/faye/deep/x", { n: 1 }), "publish");
    await within(a.publish("/interop/faye/deep/x/y", { n: 2 }), "publish");
    const ms = await got.finished;
    check(ms.map((m) => m.n).sort().join() === "1,2", JSON.stringify(ms));
    await a.disconnect();
  },
  async unsubscribe_stops_delivery() {
    const a = newClient();
    const got = collector(1);
    const sub = a.subscribe("/interop/faye/unsub", got.onMessage);
    await within(sub, "subscribe");
    await within(a.publish("/interop/faye/unsub", { n: 1 }), "publish");
    await got.finished;
    await within(sub.cancel(), "unsubscribe");
    await within(a.publish("/interop/faye/unsub", { n: 2 }), "publish");
    await sleep(500);
    check(got.messages.length === 1, `got ${got.messages.length}`);
    await a.disconnect();
  },
  async two_hundred_messages_in_order() {
    const a = newClient(); const b = newClient();
    const got = collector(200);
    await within(b.subscribe("/interop/faye/order", got.onMessage), "subscribe");
    // Faye splits a burst of publishes into several HTTP requests in flight at once, so a burst
    // has no order to keep; each publish is acknowledged before the next one is sent.
    for (let i = 0; i < 200; i++) await within(a.publish("/interop/faye/order", { i }), "publish");
    const ms = await got.finished;
    check(ms.every((m, i) => m.i === i), "out of order: " + ms.map((m) => m.i).join());
    await a.disconnect(); await b.disconnect();
  },
};

let failed = 0;
for (const [name, run] of Object.entries(scenarios)) {
  const started = Date.now();
  try {
    await run();
    console.log(JSON.stringify({ name, transport, ok: true, ms: Date.now() - started }));
  } catch (err) {
    failed++;
    console.log(JSON.stringify({ name, transport, ok: false, error: String(err && err.message || err) }));
  }
}
process.exit(failed ? 1 : 0);
