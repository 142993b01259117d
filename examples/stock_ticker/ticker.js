// The stock ticker's page: asks the server's quote desk with remoteCall("quote/<symbol>") and,
// when the symbol is known, watches it on its template channel /stock/<symbol>.
// ?transport=long-polling (or websocket, callback-polling) keeps only that transport.
import { CometD } from "/cometd-js/cometd.js";

const $ = (id) => document.getElementById(id);
const SHOWN_TICKS = 20;
const QUOTE_TIMEOUT_MS = 5000;

const cometd = new CometD();
const only = new URLSearchParams(location.search).get("transport");
if (only) {
  for (const type of cometd.getTransportTypes()) {
    if (type !== only) cometd.unregisterTransport(type);
  }
}
cometd.configure({ url: new URL("/cometd", location.href).href, logLevel: "warn" });
window.cometd = cometd; // to try it from the browser's console

let watched = null; // { symbol, subscription, last }

cometd.addListener("/meta/connect", (reply) => {
  $("status").textContent = reply.successful
    ? "connected (" + cometd.getTransport().type + ")"
    : "reconnecting…";
});
cometd.handshake((reply) => {
  if (!reply.successful) $("status").textContent = "could not connect: " + reply.error;
});

function askQuote(symbol, then) {
  cometd.remoteCall("quote/" + symbol, {}, QUOTE_TIMEOUT_MS, (reply) => {
    const shown = $("quote");
    shown.dataset.replies = String(Number(shown.dataset.replies || 0) + 1);
    if (reply.successful) {
      const q = reply.data;
      shown.className = "";
      shown.dataset.tick = q.tick;
      shown.dataset.seen = q.seen;
      shown.textContent = `${q.symbol} ${q.price.toFixed(2)} at tick ${q.tick} ` +
        `(the desk has seen ${q.seen} ticks)`;
    } else {
      shown.className = "error";
      delete shown.dataset.tick;
      delete shown.dataset.seen;
      shown.textContent = `No quote for ${symbol}: ${reply.error}`;
    }
    if (then) then(reply);
  });
}

function showTick(symbol, tick) {
  const row = document.createElement("li");
  row.dataset.symbol = symbol;
  row.dataset.tick = tick.tick;
  row.textContent = `#${tick.tick} ${symbol} ${tick.price.toFixed(2)}`;
  if (watched.last !== undefined) row.className = tick.price >= watched.last ? "up" : "down";
  watched.last = tick.price;
  $("price").textContent = tick.price.toFixed(2);
  $("ticks").prepend(row);
  while ($("ticks").children.length > SHOWN_TICKS) $("ticks").lastElementChild.remove();
}

function symbolAsked() {
  const symbol = $("symbol").value.trim().toUpperCase();
  if (/^[A-Z0-9.]{1,10}$/.test(symbol)) return symbol;
  $("quote").className = "error";
  $("quote").textContent = "A symbol is 1 to 10 letters, digits or dots";
  return null;
}

function watch(symbol) {
  if (watched && watched.symbol === symbol) return;
  if (watched) cometd.unsubscribe(watched.subscription);
  $("ticks").replaceChildren();
  $("price").textContent = "";
  $("watching").textContent = symbol;
  watched = { symbol };
  watched.subscription = cometd.subscribe("/stock/" + symbol, (m) => showTick(symbol, m.data));
}

$("watch").addEventListener("submit", (event) => {
  event.preventDefault();
  const symbol = symbolAsked();
  if (symbol) askQuote(symbol, (reply) => { if (reply.successful) watch(symbol); });
});
$("ask").addEventListener("click", () => {
  const symbol = symbolAsked();
  if (symbol) askQuote(symbol);
});
