// Fan-out over long-polling for benchmarks/fanout.py --transport long-polling: N subscribers,
// each on its own keep-alive connection, hold /meta/connect on one channel; one publisher
// sends M messages at R per second, each carrying its send time. Node's own http module.
// Prints {"phase":"start"} when publishing starts, then the figures as one JSON line.
// Usage: node lp_fanout.mjs <url> <subscribers> <messages> <rate> <deadline-seconds>
import http from "node:http";

import { poster } from "./bayeux_http.mjs";

const [url, subsArg = "1000", messagesArg = "1000", rateArg = "100", deadlineArg = "60"] =
  process.argv.slice(2);
const subscribers = Number(subsArg);
const messages = Number(messagesArg);
const rate = Number(rateArg);
const deadline = Number(deadlineArg) * 1000;
const target = new URL(url);
const agent = new http.Agent({ keepAlive: true, maxSockets: subscribers + 200 });
const channel = "/bench/fanout";

const post = poster(url, agent);

const base = target.pathname;
const latencies = [];
let running = true;
const errors = [];

// Each client is a browser of its own, with its own cookies.
async function join(subscribe = true) {
  const jar = {};
  const [reply] = await post(
    `${base}/handshake`,
    [{ channel: "/meta/handshake", version: "1.0", supportedConnectionTypes: ["long-polling"] }],
    jar,
  );
  const clientId = reply.clientId;
  await post(
    `${base}/connect`,
    [{ channel: "/meta/connect", clientId, connectionType: "long-polling", advice: { timeout: 0 } }],
    jar,
  );
  if (subscribe) {
    await post(base, [{ channel: "/meta/subscribe", clientId, subscription: channel }], jar);
  }
  return { clientId, jar };
}

async function subscribe({ clientId, jar }) {
  while (running) {
    let replies;
    try {
      replies = await post(
        `${base}/connect`,
        [{ channel: "/meta/connect", clientId, connectionType: "long-polling" }],
        jar,
      );
    } catch (error) {
      errors.push(String(error));
      continue;
    }
    const now = Date.now();
    for (const m of replies) {
      if (m.channel === channel && m.data) latencies.push(now - m.data.sent);
    }
  }
}

const ids = [];
for (let i = 0; i < subscribers; i += 50) {
  const batch = Array.from({ length: Math.min(50, subscribers - i) }, () => join());
  ids.push(...(await Promise.all(batch)));
}
// The publisher long-polls too: a session that never connects expires after maxInterval.
const publisher = await join(false);
const loops = [...ids, publisher].map(subscribe);
await new Promise((r) => setTimeout(r, 500)); // every connect held
console.log(JSON.stringify({ phase: "start" }));
const started = Date.now();
const cpuStart = process.cpuUsage();
// Publishes leave on schedule whatever the server's pace (each on a connection of its own if
// need be), so a server that falls behind shows it in latency rather than slowing the publisher.
let published = 0;
const publishes = [];
for (let n = 0; n < messages; n++) {
  const message = [{ channel, clientId: publisher.clientId, data: { n, sent: Date.now() } }];
  publishes.push(
    post(base, message, publisher.jar).then(
      ([ack]) => {
        if (ack && ack.successful) published += 1;
        else if (!errors.length) errors.push(JSON.stringify(ack));
      },
      (error) => errors.push(String(error)),
    ),
  );
  const wait = started + ((n + 1) * 1000) / rate - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
}
await Promise.race([
  Promise.allSettled(publishes),
  new Promise((r) => setTimeout(r, Math.max(0, deadline - (Date.now() - started)))),
]);
const expected = subscribers * messages;
while (latencies.length < expected && Date.now() - started < deadline) {
  await new Promise((r) => setTimeout(r, 20));
}
const seconds = (Date.now() - started) / 1000;
const cpu = process.cpuUsage(cpuStart);
running = false;
latencies.sort((a, b) => a - b);
const at = (q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
console.log(
  JSON.stringify({
    phase: "done",
    delivered: latencies.length,
    expected,
    seconds,
    p50_ms: at(0.5),
    p99_ms: at(0.99),
    max_ms: latencies[latencies.length - 1],
    loadgen_cpu_seconds: (cpu.user + cpu.system) / 1e6,
    published,
    errors: errors.length,
    first_error: errors[0],
  }),
);
agent.destroy();
setTimeout(() => process.exit(0), 100);
