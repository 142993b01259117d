// The official cometd-nodejs-server (pinned in interop/package-lock.json) on 127.0.0.1, for the
// side-by-side conformance run (spec_tests/peers.py).
// Usage: node cometd_nodejs_server.cjs <port> <timeout-ms> <max-interval-ms>
const http = require("http");
const cometd = require("cometd-nodejs-server");

const [port, timeout = "3000", maxInterval = "2000"] = process.argv.slice(2);
const cometdServer = cometd.createCometDServer({
  timeout: Number(timeout),
  maxInterval: Number(maxInterval),
});
const server = http.createServer(cometdServer.handle);
server.listen(Number(port), "127.0.0.1", () => console.log(`cometd-nodejs-server listening on ${port}`));
