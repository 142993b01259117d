// The Faye client scenarios, shared by the Node run (faye_scenarios.mjs) and the browser run
// (browser/faye.html): each passes the Faye module of its environment.
import { check, collector, runAll, sleep, within } from "./harness.js";

let Faye, url, transport;

// Faye has no switch to force one transport: it uses the first usable one of its list, so every
// transport ahead of the wanted one is disabled.
const FAYE_ORDER = ["websocket", "eventsource", "long-polling", "cross-origin-long-polling",
                    "callback-polling"];

function newClient() {
  const client = new Faye.Client(url, { timeout: 20 });
  for (const type of FAYE_ORDER.slice(0, FAYE_ORDER.indexOf(transport))) client.disable(type);
  return client;
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


export function runScenarios(faye, serverUrl, transportName, report) {
  Faye = faye; url = serverUrl; transport = transportName;
  return runAll(scenarios, transport, report);
}
