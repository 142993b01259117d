// What the Node load generators share: POSTing Bayeux messages on a keep-alive agent.
import http from "node:http";

// A function posting `messages` to `path` at `url`'s host through `agent`; it resolves with
// the reply's messages, and rejects on anything but a 200. With a `jar` (an object), cookies
// the server sets are kept there and sent back, as a browser would (cometd-nodejs-server ties
// a session's concurrent requests to its BAYEUX_BROWSER cookie).
export function poster(url, agent) {
  const target = new URL(url);
  return (path, messages, jar = null) => {
    const body = JSON.stringify(messages);
    const headers = { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) };
    if (jar && Object.keys(jar).length) {
      headers.Cookie = Object.entries(jar).map(([k, v]) => `${k}=${v}`).join("; ");
    }
    return new Promise((resolve, reject) => {
      const request = http.request(
        {
          host: target.hostname,
          port: target.port,
          path,
          method: "POST",
          agent,
          headers,
        },
        (response) => {
          if (jar) {
            for (const cookie of response.headers["set-cookie"] || []) {
              const [pair] = cookie.split(";");
              const at = pair.indexOf("=");
              jar[pair.slice(0, at).trim()] = pair.slice(at + 1).trim();
            }
          }
          const chunks = [];
          response.on("data", (chunk) => chunks.push(chunk));
          response.on("end", () =>
            response.statusCode === 200
              ? resolve(JSON.parse(Buffer.concat(chunks).toString()))
              : reject(new Error(`HTTP ${response.statusCode}`)),
          );
        },
      );
      request.on("error", reject);
      request.end(body);
    });
  };
}
