// Uses the admin page (bayeux/admin) as an operator would, in headless Chromium, against a
// server under a known load: without the token it shows nothing, with it the figures follow
// the load, and its buttons disconnect a session and publish a test message. One JSON line per
// check; the Python side (interop/test_admin_page.py) checks what the clients saw.
// Usage: node admin_ui.mjs <page-url> <token> <sessions> <rate> <subscribers> <channel>
//          <victim-clientId> [screenshot.png]
import { withChromium } from "./chromium.mjs";

const [pageUrl, token, sessionsText, rateText, subscribersText, channel, victim, screenshot] =
  process.argv.slice(2);
const sessions = Number(sessionsText);
const rate = Number(rateText);
const subscribers = Number(subscribersText);
const TIMEOUT = 30000;
const results = [];
async function step(name, run) {
  try { await run(); results.push({ name, ok: true }); }
  catch (err) { results.push({ name, ok: false, error: String((err && err.message) || err) }); }
}
function check(condition, message) { if (!condition) throw new Error(message); }

// The figures the page shows: { name: value } for every data-metric outside the tables.
const figures = (page) => page.evaluate(() => Object.fromEntries(
  [...document.querySelectorAll("[data-metric]")].filter((n) => !n.closest("table"))
    .map((n) => [n.dataset.metric, n.dataset.value === undefined ? n.textContent : n.dataset.value])));
const figure = (page, name) => page.locator(`[data-metric="${name}"]`).first()
  .evaluate((n) => (n.dataset.value === "" || n.dataset.value === undefined ? null : Number(n.dataset.value)));
async function figureUntil(page, name, test, what) {
  const deadline = Date.now() + TIMEOUT;
  let value = null;
  while (Date.now() < deadline) {
    value = await figure(page, name);
    if (value !== null && test(value)) return value;
    await page.waitForTimeout(250);
  }
  throw new Error(`${name} is ${value}, not ${what}`);
}
const near = (value, expected) => value >= expected * 0.6 && value <= expected * 1.4;

await withChromium(async (context) => {
  const page = await context.newPage();
  const requested = [];
  page.on("request", (request) => requested.push(request.url()));
  page.on("pageerror", (err) => console.error("page error:", err.message));
  page.on("dialog", (dialog) => dialog.accept());

  await step("without_the_token_the_page_shows_nothing", async () => {
    await page.goto(pageUrl);
    await page.locator("#login").waitFor({ state: "visible", timeout: TIMEOUT });
    check(await page.locator("#main").isHidden(), "the figures are visible");
    const shown = Object.entries(await figures(page)).filter(([, v]) => v !== "" && v !== null);
    check(shown.length === 0, `figures shown: ${JSON.stringify(shown)}`);
    const status = await page.evaluate(async (base) => (await fetch(`${base}/api/overview`)).status,
      new URL(pageUrl).pathname.replace(/\/$/, ""));
    check(status === 401, `the API answered ${status} without the token`);
  });

  await step("a_wrong_token_is_refused", async () => {
    await page.fill("#token", `${token}-wrong`);
    await page.click("#login-form button");
    await page.locator("#login-error").getByText("the token was refused").waitFor({ timeout: TIMEOUT });
    check(await page.locator("#main").isHidden(), "the figures are visible");
    check((await figure(page, "sessions")) === null, "a figure was filled");
  });

  await step("the_token_in_the_fragment_opens_the_page_and_leaves_the_address_bar", async () => {
    await page.goto(`${pageUrl}#token=${encodeURIComponent(token)}`);
    await page.locator("#main").waitFor({ state: "visible", timeout: TIMEOUT });
    check(!page.url().includes("token"), `the token is still in ${page.url()}`);
    check(await page.locator("#login").isHidden(), "the form is still shown");
  });

  await step("the_session_count_follows_the_load", async () => {
    await figureUntil(page, "sessions", (v) => v === sessions, sessions);
    const websocket = await figureUntil(page, "sessions-websocket", (v) => v === sessions, sessions);
    check(websocket === sessions, `websocket sessions: ${websocket}`);
    const perProcess = await page.locator('[data-metric="process-sessions"]').evaluateAll(
      (cells) => cells.map((c) => Number(c.dataset.value)));
    check(perProcess.reduce((a, b) => a + b, 0) === sessions, `by process: ${perProcess}`);
  });

  await step("the_publish_and_delivery_rates_show", async () => {
    await figureUntil(page, "publishes-rate", (v) => near(v, rate), `about ${rate}/s`);
    await figureUntil(page, "deliveries-rate", (v) => near(v, rate * subscribers),
      `about ${rate * subscribers}/s`);
    await page.waitForFunction(() => {
      const line = document.querySelector('#chart polyline[data-series="publishes"]');
      return line && line.getAttribute("points").split(" ").length >= 3;
    }, null, { timeout: TIMEOUT });
  });

  await step("channels_show_their_subscribers_and_rates", async () => {
    const row = page.locator(`#channels tr[data-channel="${channel}"]`);
    await row.waitFor({ timeout: TIMEOUT });
    const deadline = Date.now() + TIMEOUT;
    let seen = null;
    while (Date.now() < deadline) {
      seen = await row.evaluate((r) => ({
        subscribers: Number(r.querySelector('[data-metric="channel-subscribers"]').dataset.value),
        rate: Number(r.querySelector('[data-metric="channel-rate"]').dataset.value),
      }));
      if (seen.subscribers === subscribers && near(seen.rate, rate)) break;
      await page.waitForTimeout(250);
    }
    check(seen.subscribers === subscribers && near(seen.rate, rate), `channel row: ${JSON.stringify(seen)}`);
    await page.fill("#channel-search", "no-such-channel-here");
    await page.waitForFunction(() => document.querySelectorAll("#channels tbody tr").length === 0,
      null, { timeout: TIMEOUT });
    await page.fill("#channel-search", channel);
    await row.waitFor({ timeout: TIMEOUT });
  });

  await step("sessions_page_through", async () => {
    await page.locator("#sessions tbody tr").first().waitFor({ timeout: TIMEOUT });
    const first = await page.locator("#sessions tbody tr").evaluateAll((rows) => rows.map((r) => r.dataset.clientId));
    check(first.length === 25, `${first.length} rows on the first page`);
    await page.click("#sessions-next");
    await page.waitForFunction((ids) => {
      const now = [...document.querySelectorAll("#sessions tbody tr")].map((r) => r.dataset.clientId);
      return now.length === 25 && now.every((id) => !ids.includes(id));
    }, first, { timeout: TIMEOUT });
    await page.click("#sessions-first");
    await page.locator("#sessions-first:disabled").waitFor({ timeout: TIMEOUT });
  });

  await step("disconnecting_a_session_from_the_page", async () => {
    await page.fill("#session-search", victim);
    const row = page.locator(`#sessions tr[data-client-id="${victim}"]`);
    await row.waitFor({ timeout: TIMEOUT });
    check(await page.locator("#sessions tbody tr").count() === 1, "the search found more than the victim");
    await row.locator('button[data-action="disconnect"]').click();
    await page.locator("#action-result").getByText(`${victim} disconnected`).waitFor({ timeout: TIMEOUT });
    await figureUntil(page, "sessions", (v) => v === sessions - 1, sessions - 1);
  });

  await step("publishing_a_test_message_from_the_page", async () => {
    await page.fill("#publish-channel", "/admin/test");
    await page.fill("#publish-data", '{"text": "from the admin page"}');
    await page.click("#publish-form button");
    await page.locator("#publish-result").getByText("published").waitFor({ timeout: TIMEOUT });
  });

  await step("the_page_loads_everything_from_its_server_and_never_puts_the_token_in_a_url", async () => {
    const origin = new URL(pageUrl);
    const elsewhere = requested.filter((url) => new URL(url).host !== origin.host);
    check(elsewhere.length === 0, `requests elsewhere: ${elsewhere}`);
    const leaked = requested.filter((url) => url.includes(token) || url.includes(encodeURIComponent(token)));
    check(leaked.length === 0, `the token in: ${leaked}`);
    check(requested.some((url) => url.endsWith("/admin.js")), "the script came from elsewhere");
  });
  if (screenshot) {
    // As an operator finds it: no search typed, a little history in the chart.
    await page.fill("#session-search", "");
    await page.fill("#channel-search", "");
    await page.waitForFunction(() => {
      const line = document.querySelector('#chart polyline[data-series="deliveries"]');
      return line && line.getAttribute("points").split(" ").length >= 20;
    }, null, { timeout: 60000 }).catch(() => {});
    await page.screenshot({ path: screenshot, fullPage: true });
  }
});
for (const r of results) console.log(JSON.stringify(r));
process.exit(results.every((r) => r.ok) ? 0 : 1);
