// Long-polling request load for benchmarks/requests.py: N clients, each on its own keep-alive
// connection, handshake and subscribe to a channel of their own, then loop one-message POSTs
// until the time is up: a publish to that channel, then a connect (which the queued message
// answers at once on every server, without relying on a client-side timeout advice).
// Node's own http module, no dependencies. Prints JSON lines: {"phase":"start"} when the
// measured window opens, then the figures.
// Usage: node http_load.mjs <url> <clients> <seconds> [warmup-seconds]
import http from "node:http";

import { poster } from "./bayeux_http.mjs";

const [url, clientsArg = "100", secondsArg = "10", warmupArg = "2"] = process.argv.slice(2);
const clients = Number(clientsArg);
const seconds = Number(secondsArg);
const warmup = Number(warmupArg);
const target = new URL(url);
const agent = new http.Agent({ keepAlive: true, maxSockets: clients, maxFreeSockets: clients });

const post = poster(url, agent);

let measuring = false;
let stopped = false;
let requests = 0;
let errors = 0;
const latencies = [];

async function timed(path, messages) {
  const started = process.hrtime.bigint();
  const reply = await post(path, messages);
  if (measuring) {
    requests += 1;
    latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  return reply;
}

async function client(index) {
  const base = target.pathname;
  const [handshake] = await post(`${base}/handshake`, [
    { channel: "/meta/handshake", version: "1.0", supportedConnectionTypes: ["long-polling"] },
  ]);
  if (!handshake.successful) throw new Error(`handshake refused: ${JSON.stringify(handshake)}`);
  const clientId = handshake.clientId;
  const channel = `/bench/${index}`;
  await post(`${base}/connect`, [
    { channel: "/meta/connect", clientId, connectionType: "long-polling", advice: { timeout: 0 } },
  ]);
  await post(base, [{ channel: "/meta/subscribe", clientId, subscription: channel }]);
  let n = 0;
  while (!stopped) {
    try {
      await timed(base, [{ channel, clientId, data: { n: n++ } }]);
      await timed(`${base}/connect`, [
        { channel: "/meta/connect", clientId, connectionType: "long-polling" },
      ]);
    } catch (error) {
      errors += 1;
      if (errors > 100) throw error;
    }
  }
}

const runs = Array.from({ length: clients }, (_, i) => client(i));
setTimeout(() => {
  measuring = true;
  const cpuStart = process.cpuUsage();
  const wallStart = process.hrtime.bigint();
  console.log(JSON.stringify({ phase: "start" }));
  setTimeout(() => {
    measuring = false;
    const wall = Number(process.hrtime.bigint() - wallStart) / 1e9;
    const cpu = process.cpuUsage(cpuStart);
    stopped = true;
    latencies.sort((a, b) => a - b);
    const at = (q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
    console.log(
      JSON.stringify({
        phase: "done",
        requests,
        errors,
        seconds: wall,
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        loadgen_cpu_seconds: (cpu.user + cpu.system) / 1e6,
      }),
    );
    Promise.allSettled(runs).then(() => process.exit(0));
    setTimeout(() => process.exit(0), 5000).unref();
  }, seconds * 1000);
}, warmup * 1000);
