// Faye's Node server (npm `faye`, pinned in interop/package-lock.json) on 127.0.0.1, for the
// side-by-side conformance run (spec_tests/peers.py). Usage: node faye_server.cjs <port> <timeout-s>
const http = require("http");
const faye = require("faye");

const [port, timeout = "3"] = process.argv.slice(2);
const bayeux = new faye.NodeAdapter({ mount: "/cometd", timeout: Number(timeout) });
const server = http.createServer();
bayeux.attach(server);
server.listen(Number(port), "127.0.0.1", () => console.log(`faye listening on ${port}`));
