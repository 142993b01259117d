// Uses the stock ticker example (examples/stock_ticker) as people would, in headless Chromium:
// watch a symbol (a remote call, then its template channel /stock/<symbol>), refresh the quote
// the server-side subscription keeps, ask for a symbol nobody trades, switch symbols, try to
// publish a price. One JSON line per check.
// Usage: node stock_ticker_ui.mjs <page-url> <transport> [screenshot.png]
import { withChromium } from "./chromium.mjs";

const [pageUrl, transport, screenshot] = process.argv.slice(2);
const TIMEOUT = 10000;
const results = [];
async function step(name, run) {
  try { await run(); results.push({ name, transport, ok: true }); }
  catch (err) { results.push({ name, transport, ok: false, error: String((err && err.message) || err) }); }
}
function check(condition, message) { if (!condition) throw new Error(message); }

// The rows the page shows, newest first: [{ symbol, tick }].
const rowsOf = (page) => page.locator("#ticks li").evaluateAll(
  (rows) => rows.map((r) => ({ symbol: r.dataset.symbol, tick: Number(r.dataset.tick) })));
const rowsAtLeast = (page, count) => page.waitForFunction(
  (n) => document.querySelectorAll("#ticks li").length >= n, count, { timeout: TIMEOUT });
const repliesOf = (page) => page.locator("#quote").evaluate((q) => Number(q.dataset.replies || 0));
// Clicks `button` and waits for the quote's next reply; its dataset and text.
async function quoteAfter(page, button) {
  const before = await repliesOf(page);
  await page.click(button);
  await page.waitForFunction((n) => Number(document.querySelector("#quote").dataset.replies || 0) > n,
    before, { timeout: TIMEOUT });
  return page.locator("#quote").evaluate((q) => ({
    tick: q.dataset.tick === undefined ? null : Number(q.dataset.tick),
    seen: q.dataset.seen === undefined ? null : Number(q.dataset.seen),
    text: q.textContent, error: q.className === "error",
  }));
}
const WATCH = "#watch button:not(#ask)";
const ASK = "#ask";

await withChromium(async (context) => {
  const page = await context.newPage();
  const requested = [];
  page.on("request", (request) => requested.push(request.url()));
  page.on("websocket", (socket) => requested.push(socket.url()));
  page.on("pageerror", (err) => console.error("page error:", err.message));
  await page.goto(pageUrl);

  await step("connects_over_the_requested_transport", async () => {
    await page.locator("#status").getByText(`connected (${transport})`, { exact: true })
      .waitFor({ timeout: TIMEOUT });
  });
  await step("watching_a_symbol_shows_its_quote_then_its_ticks", async () => {
    await page.fill("#symbol", "acme");
    const quote = await quoteAfter(page, WATCH);
    check(!quote.error && quote.text.startsWith("ACME "), `quote shown: ${quote.text}`);
    await page.locator("#watching").getByText("ACME", { exact: true }).waitFor({ timeout: TIMEOUT });
    await rowsAtLeast(page, 4);
    const rows = await rowsOf(page);
    check(rows.every((r) => r.symbol === "ACME"), `rows of ${rows.map((r) => r.symbol)}`);
    for (let i = 1; i < rows.length; i++) {
      check(rows[i - 1].tick === rows[i].tick + 1, `ticks not one after another: ${rows.map((r) => r.tick)}`);
    }
  });
  await step("the_quote_desk_subscription_saw_every_published_tick", async () => {
    const newest = (await rowsOf(page))[0].tick;
    const quote = await quoteAfter(page, ASK);
    check(quote.tick >= newest, `the desk is at tick ${quote.tick}, the page saw ${newest}`);
    check(quote.seen === quote.tick, `the desk saw ${quote.seen} of ${quote.tick} ticks`);
    check(quote.text.includes(`at tick ${quote.tick} (the desk has seen ${quote.seen} ticks)`), quote.text);
  });
  await step("an_unknown_symbol_gets_the_service_error", async () => {
    await page.fill("#symbol", "NOPE");
    const quote = await quoteAfter(page, WATCH);
    check(quote.error && quote.tick === null, `not a failure: ${JSON.stringify(quote)}`);
    check(quote.text === "No quote for NOPE: 400:/service/quote/NOPE:Unknown symbol", quote.text);
    const newest = (await rowsOf(page))[0].tick;
    await page.waitForFunction((t) => Number(document.querySelector("#ticks li").dataset.tick) > t,
      newest, { timeout: TIMEOUT });
    check(await page.locator("#watching").textContent() === "ACME", "no longer watching ACME");
    check((await rowsOf(page)).every((r) => r.symbol === "ACME"), "rows of another symbol");
  });
  await step("a_malformed_symbol_is_not_asked_for", async () => {
    const before = await repliesOf(page);
    await page.fill("#symbol", "A/B");
    await page.click(WATCH);
    await page.locator("#quote").getByText("A symbol is 1 to 10 letters, digits or dots", { exact: true })
      .waitFor({ timeout: TIMEOUT });
    check(await repliesOf(page) === before, "a quote was asked for");
  });
  await step("switching_symbols_moves_the_subscription", async () => {
    await page.fill("#symbol", "INIT");
    const quote = await quoteAfter(page, WATCH);
    check(quote.text.startsWith("INIT "), quote.text);
    await rowsAtLeast(page, 3);
    const first = (await rowsOf(page))[0].tick;
    await page.waitForFunction((t) => Number(document.querySelector("#ticks li").dataset.tick) >= t + 3,
      first, { timeout: TIMEOUT });
    const rows = await rowsOf(page);
    check(rows.every((r) => r.symbol === "INIT"), `rows after switching: ${rows.map((r) => r.symbol)}`);
  });
  await step("a_client_cannot_publish_a_price", async () => {
    const reply = await page.evaluate(() => new Promise((resolve) => {
      window.cometd.publish("/stock/INIT", { price: 0.01, tick: 1e9 }, resolve);
    }));
    check(reply.successful === false && reply.error === "404:/stock/INIT:Message deleted",
      `publish answered ${JSON.stringify(reply)}`);
    const quote = await quoteAfter(page, ASK);
    check(quote.tick < 1e9 && quote.seen === quote.tick, `the desk took it: ${quote.text}`);
  });
  await step("the_page_loads_everything_from_the_app", async () => {
    const origin = new URL(pageUrl);
    const network = requested.filter((url) => !/^(blob|data):/.test(url)); // blob: the client's timer worker
    const elsewhere = network.filter((url) => new URL(url).host !== origin.host);
    check(elsewhere.length === 0, `requests elsewhere: ${elsewhere}`);
    const paths = network.map((url) => new URL(url).pathname);
    check(paths.includes("/cometd-js/cometd.js") && paths.includes("/ticker.js"),
      `the client came from elsewhere: ${paths}`);
  });
  if (screenshot) await page.screenshot({ path: screenshot });
});
for (const r of results) console.log(JSON.stringify(r));
process.exit(results.every((r) => r.ok) ? 0 : 1);
