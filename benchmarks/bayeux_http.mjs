// What the Node load generators share: POSTing Bayeux messages on a keep-alive agent.
import http from "node:http";

// A function posting `messages` to `path` at `url`'s host through `agent`; it resolves with
// the reply's messages, and rejects on anything but a 200.
export function poster(url, agent) {
  const target = new URL(url);
  return (path, messages) => {
    const body = JSON.stringify(messages);
    return new Promise((resolve, reject) => {
      const request = http.request(
        {
          host: target.hostname,
          port: target.port,
          path,
          method: "POST",
          agent,
          headers: { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) },
        },
        (response) => {
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
