// Faye's Node server with the faye-redis engine (npm `faye-redis`, pinned in
// interop/package-lock.json): several of these on one Redis make one deployment, the way Faye
// scales out. Usage: node faye_redis_server.cjs <port> <timeout-s> <redis-port> [namespace]
const http = require("http");
const faye = require("faye");
const fayeRedis = require("faye-redis");

const [port, timeout = "30", redisPort = "6379", namespace = "faye"] = process.argv.slice(2);
const bayeux = new faye.NodeAdapter({
  mount: "/cometd",
  timeout: Number(timeout),
  engine: { type: fayeRedis, host: "127.0.0.1", port: Number(redisPort), namespace },
});
const server = http.createServer();
bayeux.attach(server);
server.listen(Number(port), "127.0.0.1", () => console.log(`faye-redis listening on ${port}`));
