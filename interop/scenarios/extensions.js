// The CometD JS client with the server's extensions (interop/extensions_server.py), shared by the
// Node run (node/cometd_extensions.mjs) and the browser run (browser/extensions.html): the
// timestamp extension on every message, binary data with the client's BinaryExtension both ways
// (publishBinary, remoteCallBinary, ArrayBuffers received), refusals of what is not Z85 or too
// large, and, given the servers with the activity extension, idle sessions disconnected.
import { check, collector, runAll, sleep, waitFor, within } from "./harness.js";

// Java's `EEE MMM dd HH:mm:ss zzz yyyy`, as CometD's server TimestampExtension writes it.
const COMETD_TIMESTAMP =
  /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-3]\d [0-2]\d:[0-5]\d:[0-6]\d \S+ \d{4}$/;
// The server's --max-binary-bytes, and its activity limit in ms (extensions_server.py).
const MAX_BINARY = 65536;
const INACTIVITY = 1500;

let lib, urls, transport;

function newClient(url, ...extensions) {
  const cometd = new lib.CometD();
  for (const type of cometd.getTransportTypes()) {
    if (type !== transport) cometd.unregisterTransport(type);
  }
  // CometD JS refuses to send a message past 8192 characters unless told otherwise.
  cometd.configure({ url, logLevel: "warn", maxSendBayeuxMessageSize: 1 << 20 });
  // Every message the client receives, as the server sent it: registered first, it sees
  // incoming messages before the other extensions (CometD JS runs them in that order).
  cometd.received = [];
  cometd.registerExtension("record", {
    incoming: (m) => { cometd.received.push(structuredClone(m)); return m; },
  });
  for (const [name, extension] of extensions) cometd.registerExtension(name, extension);
  return cometd;
}

// A collector (its wait starts only when a scenario reads `finished`, so one that fails before
// it leaves no timer to reject unhandled).
function collect(count) {
  return collector(count);
}

// A reply in a failure's text, cut short (binary data makes long ones).
const shown = (value) => JSON.stringify(value).slice(0, 300);

const binaryClient = (url = urls.main) => newClient(url, ["binary", new lib.BinaryExtension()]);

function handshake(cometd) {
  return within(new Promise((resolve, reject) => {
    cometd.handshake((reply) => (reply.successful ? resolve(reply) : reject(new Error(shown(reply)))));
  }), "handshake");
}

function subscribe(cometd, channel, onMessage) {
  return within(new Promise((resolve, reject) => {
    cometd.subscribe(channel, onMessage, (reply) =>
      reply.successful ? resolve(reply) : reject(new Error(shown(reply))));
  }), `subscribe ${channel}`);
}

// The reply, successful or not.
const publish = (cometd, channel, data, props) => within(
  new Promise((resolve) => cometd.publish(channel, data, props, resolve)), `publish ${channel}`);

const publishBinary = (cometd, channel, bytes, last, meta) => within(
  new Promise((resolve) => cometd.publishBinary(channel, bytes, last, meta, resolve)),
  `publishBinary ${channel}`);

function remoteCall(cometd, target, data) {
  return within(new Promise((resolve) => cometd.remoteCall(target, data, 5000, resolve)),
    `remoteCall ${target}`);
}

function remoteCallBinary(cometd, target, bytes, last, meta) {
  return within(new Promise((resolve) =>
    cometd.remoteCallBinary(target, bytes, last, meta, 5000, resolve)), `remoteCallBinary ${target}`);
}

const disconnect = (cometd) => within(new Promise((resolve) => cometd.disconnect(resolve)), "disconnect");

function randomBytes(length, seed) {
  const bytes = new Uint8Array(length);
  let x = seed;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    bytes[i] = x >> 16;
  }
  return bytes;
}

const hex = (buffer) => Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");

function sameBytes(buffer, bytes) {
  check(buffer instanceof ArrayBuffer, `an ArrayBuffer, not ${Object.prototype.toString.call(buffer)}`);
  check(hex(buffer) === hex(bytes), `bytes differ: ${hex(buffer).slice(0, 40)}... vs ${hex(bytes).slice(0, 40)}...`);
}

const mainScenarios = {
  async every_message_from_the_server_is_stamped() {
    const c = newClient(urls.main);
    await handshake(c);
    const got = collect(1);
    await subscribe(c, "/stamped/news", got.onMessage);
    const reply = await publish(c, "/stamped/news", { text: "hi" });
    check(reply.successful, shown(reply));
    await got.finished;
    await disconnect(c);
    await sleep(300); // the reply to the connect the disconnect ended, if the client reads it
    const channels = new Set(c.received.map((m) => m.channel));
    for (const channel of ["/meta/handshake", "/meta/connect", "/meta/subscribe", "/stamped/news"]) {
      check(channels.has(channel), `nothing received on ${channel}`);
    }
    for (const m of c.received) {
      check(COMETD_TIMESTAMP.test(m.timestamp), `${m.channel}: timestamp ${JSON.stringify(m.timestamp)}`);
      const skew = Math.abs(Date.parse(m.timestamp) - Date.now());
      check(skew < 60000, `${m.channel}: ${m.timestamp} is ${skew} ms from now`);
    }
  },
  async the_clients_timestamp_extension_is_accepted() {
    const stamping = newClient(urls.main, ["timestamp", new lib.TimeStampExtension()]);
    const listener = newClient(urls.main);
    await handshake(stamping); await handshake(listener);
    const got = collect(1);
    await subscribe(listener, "/stamped/client", got.onMessage);
    const reply = await publish(stamping, "/stamped/client", "from a stamping client");
    check(reply.successful, shown(reply));
    const [m] = await got.finished;
    // The server's own stamp, in CometD's server format (the client's is toUTCString's).
    check(COMETD_TIMESTAMP.test(m.timestamp), `timestamp ${m.timestamp}`);
    await disconnect(stamping); await disconnect(listener);
  },
  async publish_binary_arrives_as_an_array_buffer() {
    const sender = binaryClient(); const receiver = binaryClient();
    await handshake(sender); await handshake(receiver);
    const got = collect(3);
    await subscribe(receiver, "/binary/files", got.onMessage);
    const chunks = [randomBytes(1000, 1), randomBytes(3, 2), new Uint8Array(0)];
    for (const [i, chunk] of chunks.entries()) {
      const last = i === chunks.length - 1;
      // An ArrayBuffer, a typed array: publishBinary takes either.
      const given = i === 0 ? chunk.buffer : chunk;
      const reply = await publishBinary(sender, "/binary/files", given, last, { name: "f.bin", part: i });
      check(reply.successful, shown(reply));
    }
    const messages = await got.finished;
    for (const [i, m] of messages.entries()) {
      sameBytes(m.data.data, chunks[i]);
      check(m.data.last === (i === chunks.length - 1), `last ${m.data.last}`);
      check(m.data.meta.name === "f.bin" && m.data.meta.part === i, `meta ${JSON.stringify(m.data.meta)}`);
    }
    // On the wire: Z85 text in data.data, and ext.binary.
    const wire = receiver.received.filter((m) => m.channel === "/binary/files");
    check(wire.every((m) => typeof m.data.data === "string" && m.ext && m.ext.binary), "not Z85 with ext.binary");
    await disconnect(sender); await disconnect(receiver);
  },
  async the_server_hooks_see_bytes() {
    const c = binaryClient();
    await handshake(c);
    const bytes = randomBytes(777, 3);
    const reply = await publishBinary(c, "/binary/seen", bytes, false, { kind: "probe" });
    check(reply.successful, shown(reply));
    const seen = await remoteCall(c, "binary/seen", {});
    check(seen.successful, shown(seen));
    const d = seen.data;
    check(d.type === "bytes" && d.hex === hex(bytes), `the listener saw ${shown(d)}`);
    check(d.last === false && d.meta.kind === "probe", `last and meta ${shown(d)}`);
    await disconnect(c);
  },
  async remote_call_binary_answers_bytes() {
    const c = binaryClient();
    await handshake(c);
    const bytes = randomBytes(4097, 4);
    const reply = await remoteCallBinary(c, "binary/reverse", bytes, true, { n: 1 });
    check(reply.successful, shown(reply));
    sameBytes(reply.data.data, bytes.slice().reverse());
    check(reply.data.meta.n === 1 && reply.data.last === true, JSON.stringify(reply.data.meta));
    await disconnect(c);
  },
  async bytes_the_server_publishes_arrive_as_an_array_buffer() {
    const c = binaryClient();
    await handshake(c);
    const got = collect(1);
    await subscribe(c, "/binary/server", got.onMessage);
    const bytes = randomBytes(50, 5);
    const reply = await remoteCall(c, "binary/publish", { channel: "/binary/server", hex: hex(bytes) });
    check(reply.successful, shown(reply));
    const [m] = await got.finished;
    sameBytes(m.data.data, bytes);
    await disconnect(c);
  },
  async what_is_not_z85_is_refused() {
    const c = newClient(urls.main);
    await handshake(c);
    for (const text of ["Hello World", "#####", "abcdef", "é"]) {
      const reply = await publish(c, "/binary/bad", { data: text }, { ext: { binary: {} } });
      check(!reply.successful && reply.error === "404:/binary/bad:Message deleted", shown(reply));
    }
    const reply = await publish(c, "/binary/bad", "no object", { ext: { binary: {} } });
    check(!reply.successful, shown(reply));
    await disconnect(c);
  },
  async binary_data_over_the_limit_is_refused() {
    const c = binaryClient();
    await handshake(c);
    const fits = await publishBinary(c, "/binary/big", randomBytes(MAX_BINARY, 6), true);
    check(fits.successful, shown(fits));
    const over = await publishBinary(c, "/binary/big", randomBytes(MAX_BINARY + 1, 7), true);
    check(!over.successful && over.error === "404:/binary/big:Message deleted", shown(over));
    await disconnect(c);
  },
};

// ms from `since` until `c` is disconnected by the server (told reconnect: none).
async function disconnectedAfter(c, since, ms) {
  await waitFor(() => c.isDisconnected(), ms, "the server to disconnect the idle client");
  const told = c.received.some((m) => m.channel === "/meta/connect" && m.advice && m.advice.reconnect === "none");
  check(told, "no /meta/connect reply said reconnect: none");
  return Date.now() - since;
}

// A client publishing on `channel` every 300 ms until stopped.
function ticker(c, channel) {
  let running = true;
  const done = (async () => {
    for (let n = 0; running; n++) {
      await publish(c, channel, n);
      await sleep(300);
    }
  })();
  return async () => { running = false; await done; };
}

const activityScenarios = {
  async a_client_that_only_heartbeats_is_disconnected() {
    const c = newClient(urls.client);
    const since = Date.now();
    await handshake(c);
    const after = await disconnectedAfter(c, since, INACTIVITY + 5000);
    check(after >= INACTIVITY, `disconnected after ${after} ms, before ${INACTIVITY}`);
  },
  async a_client_that_publishes_stays() {
    const c = newClient(urls.client);
    await handshake(c);
    const stop = ticker(c, "/activity/chatter");
    await sleep(INACTIVITY * 2.5);
    await stop();
    check(!c.isDisconnected(), "disconnected while publishing");
    await disconnect(c);
  },
  async a_client_that_only_receives_is_disconnected_in_client_mode() {
    const talker = newClient(urls.client); const reader = newClient(urls.client);
    await handshake(talker); await handshake(reader);
    const got = collect(1);
    await subscribe(reader, "/activity/ticks", got.onMessage);
    const since = Date.now();
    const stop = ticker(talker, "/activity/ticks");
    await got.finished;
    await disconnectedAfter(reader, since, INACTIVITY + 5000);
    await stop();
    check(!talker.isDisconnected(), "the publisher was disconnected");
    await disconnect(talker);
  },
  async a_client_that_only_receives_stays_in_client_server_mode() {
    const talker = newClient(urls.clientServer); const reader = newClient(urls.clientServer);
    await handshake(talker); await handshake(reader);
    const got = collect(5);
    await subscribe(reader, "/activity/ticks", got.onMessage);
    const stop = ticker(talker, "/activity/ticks");
    await got.finished;
    await sleep(INACTIVITY * 2);
    await stop();
    check(!reader.isDisconnected(), "the reader was disconnected while the server sent it ticks");
    await disconnect(reader); await disconnect(talker);
  },
  async a_silent_session_is_disconnected_in_client_server_mode() {
    const c = newClient(urls.clientServer);
    const since = Date.now();
    await handshake(c);
    await subscribe(c, "/activity/nothing", () => {});
    const after = await disconnectedAfter(c, since, INACTIVITY + 5000);
    check(after >= INACTIVITY, `disconnected after ${after} ms`);
  },
};

// Runs the scenarios the given servers allow (`urls.main`; `urls.client` and
// `urls.clientServer` for the activity ones) with the classes of `library` (CometD,
// BinaryExtension, TimeStampExtension), forcing `transportType`.
export function runExtensionScenarios(library, serverUrls, transportType, report) {
  lib = library;
  urls = serverUrls;
  transport = transportType;
  const scenarios = { ...(urls.main ? mainScenarios : {}), ...(urls.client ? activityScenarios : {}) };
  return runAll(scenarios, transport, report);
}
