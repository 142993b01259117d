// The CometD JS client (npm `cometd` in Node) with a small replay extension, as Salesforce's
// EMP connector adds one to CometD: `ext.replay: true` on the handshake, `ext.replay:
// {channel: id}` on subscribes, and the last `data.event.replayId` seen per channel.
// Prints one JSON result line. Usage: node cometd_replay.mjs <url> <transport>
import { adapt } from "cometd-nodejs-client";
import { CometD } from "cometd";
import { check, collector, within } from "../scenarios/harness.js";

adapt();

const [url, transport = "long-polling"] = process.argv.slice(2);
// A channel per transport: the runs share one server, and its history.
const CHANNEL = `/event/Interop_Replay_${transport.replace("-", "_")}__e`;

function replayExtension(replayIds) {
  return {
    outgoing(message) {
      if (message.channel === "/meta/handshake") {
        message.ext = { ...(message.ext || {}), replay: true };
      } else if (message.channel === "/meta/subscribe" && message.subscription in replayIds) {
        message.ext = { ...(message.ext || {}), replay: { [message.subscription]: replayIds[message.subscription] } };
      }
      return message;
    },
    incoming(message) {
      if (message.channel === "/meta/handshake") this.offered = message.ext?.replay === true;
      const id = message.data?.event?.replayId;
      if (typeof id === "number" && message.channel in replayIds) replayIds[message.channel] = id;
      return message;
    },
  };
}

function client(replayIds) {
  const cometd = new CometD();
  for (const type of cometd.getTransportTypes()) if (type !== transport) cometd.unregisterTransport(type);
  cometd.configure({ url, logLevel: "warn" });
  const extension = replayIds ? replayExtension(replayIds) : null;
  if (extension) cometd.registerExtension("replay", extension);
  return { cometd, extension };
}

const call = (what, fn) => within(new Promise((resolve, reject) =>
  fn((reply) => (reply.successful ? resolve(reply) : reject(new Error(JSON.stringify(reply)))))), what);

async function run() {
  const publisher = client(null).cometd;
  await call("handshake", (cb) => publisher.handshake(cb));
  const publish = (n) => call(`publish ${n}`, (cb) => publisher.publish(CHANNEL, { n }, cb));
  for (const n of [1, 2, 3]) await publish(n);

  // Everything retained (-2), in order, shaped as Salesforce shapes events.
  const ids = { [CHANNEL]: -2 };
  const first = client(ids);
  await call("handshake", (cb) => first.cometd.handshake(cb));
  check(first.extension.offered, "the handshake reply did not say ext.replay: true");
  const retained = collector(3);
  await call("subscribe", (cb) => first.cometd.subscribe(CHANNEL, retained.onMessage, cb));
  const got = await retained.finished;
  check(got.map((m) => m.data.payload.n).join() === "1,2,3", JSON.stringify(got.map((m) => m.data)));
  check(got.every((m) => /Z$/.test(m.data.event.createdDate)), "createdDate");
  await within(new Promise((resolve) => first.cometd.disconnect(resolve)), "disconnect");

  // Away while 4 and 5 are published; back with the last replay id seen: exactly those.
  for (const n of [4, 5]) await publish(n);
  const back = client(ids);
  await call("handshake", (cb) => back.cometd.handshake(cb));
  const missed = collector(3);
  await call("subscribe", (cb) => back.cometd.subscribe(CHANNEL, missed.onMessage, cb));
  await publish(6);
  const rest = await missed.finished;
  check(rest.map((m) => m.data.payload.n).join() === "4,5,6", JSON.stringify(rest.map((m) => m.data)));
  await within(new Promise((resolve) => back.cometd.disconnect(resolve)), "disconnect");
  await within(new Promise((resolve) => publisher.disconnect(resolve)), "disconnect");
}

try {
  await run();
  console.log(JSON.stringify({ name: "replay_resume", transport, ok: true }));
  process.exit(0);
} catch (error) {
  console.log(JSON.stringify({ name: "replay_resume", transport, ok: false, error: String(error) }));
  process.exit(1);
}
