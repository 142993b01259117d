// The Faye client (npm `faye`) kicked from the server side (interop/feature_server.py's
// /service/test/kick-me): it must stop, neither connecting nor handshaking again.
// Usage: node faye_kicked.mjs <url> <long-polling|websocket>. One JSON line.
import faye from "faye";
import { check, sleep, waitFor, within } from "../scenarios/harness.js";

const [url, transport = "long-polling"] = process.argv.slice(2);
const result = { name: "kicked_by_the_server_stops", ok: true };
try {
  const client = new faye.Client(url);
  if (transport === "long-polling") client.disable("websocket");
  client.disable("eventsource");
  let handshakes = 0;
  let stopped = false;
  let connectsAfter = 0;
  client.addExtension({
    incoming(message, callback) {
      if (message.channel === "/meta/connect" && message.advice && message.advice.reconnect === "none") {
        stopped = true;
      }
      callback(message);
    },
    outgoing(message, callback) {
      if (message.channel === "/meta/handshake") handshakes += 1;
      if (message.channel === "/meta/connect" && stopped) connectsAfter += 1;
      callback(message);
    },
  });
  await within(client.subscribe("/interop/kick/x", () => {}), "subscribe");
  await within(client.publish("/service/test/kick-me", {}), "publish");
  await waitFor(() => stopped, 5000, "reconnect: none");
  await sleep(2000);
  check(handshakes === 1, `${handshakes} handshakes`);
  check(connectsAfter === 0, `${connectsAfter} connects after being told to stop`);
} catch (error) {
  result.ok = false;
  result.error = String(error && error.message || error);
}
console.log(JSON.stringify(result));
process.exit(result.ok ? 0 : 1);
