// Looks at the built documentation site as a reader would: screenshots of the home page and of
// one API reference page, and every internal link of every page followed (the page loads, and
// the #anchor it names exists there). One JSON line per check.
// Usage: node docs_site.mjs <base-url> <screenshot-dir>
import { withChromium } from "./chromium.mjs";

const [base, shots] = process.argv.slice(2);
const results = [];
async function step(name, run) {
  try { await run(); results.push({ name, ok: true }); }
  catch (err) { results.push({ name, ok: false, error: String((err && err.message) || err) }); }
}

await withChromium(async (browser) => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });

  await step("home_page_renders", async () => {
    const response = await page.goto(base + "/");
    if (!response.ok()) throw new Error("home page status " + response.status());
    const title = await page.textContent("article h1");
    if (!title.includes("bayeux")) throw new Error("home page title: " + title);
    await page.screenshot({ path: shots + "/home.png", fullPage: false });
  });

  await step("api_page_renders", async () => {
    const response = await page.goto(base + "/reference/server/");
    if (!response.ok()) throw new Error("API page status " + response.status());
    const text = await page.textContent("article");
    for (const expected of ["Endpoint", "BayeuxServer", "Added in version"]) {
      if (!text.includes(expected)) throw new Error("API page lacks " + expected);
    }
    await page.screenshot({ path: shots + "/api.png", fullPage: false });
  });

  await step("internal_links_resolve", async () => {
    const origin = new URL(base).origin;
    const ids = new Map(); // page URL -> the ids it has
    const queue = [base + "/"];
    const anchors = [];
    const broken = [];
    while (queue.length && ids.size < 300) {
      const url = queue.shift();
      if (ids.has(url)) continue;
      const response = await page.goto(url, { waitUntil: "domcontentloaded" });
      if (!response.ok()) { broken.push(`${url}: ${response.status()}`); ids.set(url, new Set()); continue; }
      const found = await page.evaluate(() => ({
        links: Array.from(document.querySelectorAll("a[href]"), (a) => a.href),
        ids: Array.from(document.querySelectorAll("[id]"), (e) => e.id),
      }));
      ids.set(url, new Set(found.ids));
      for (const link of found.links) {
        const target = new URL(link);
        if (target.origin !== origin) continue;
        const pageUrl = target.origin + target.pathname;
        if (pageUrl.match(/\.(png|svg|css|js|xml|gz|inv|json)$/)) continue;
        if (target.hash) anchors.push([url, pageUrl, decodeURIComponent(target.hash.slice(1))]);
        if (!ids.has(pageUrl)) queue.push(pageUrl);
      }
    }
    for (const [from, pageUrl, id] of anchors) {
      const known = ids.get(pageUrl);
      if (known && !known.has(id)) broken.push(`${from} -> ${pageUrl}#${id}`);
    }
    if (broken.length) throw new Error("broken: " + broken.slice(0, 20).join("; "));
    if (ids.size < 20) throw new Error("only " + ids.size + " pages reached");
    results.push({ name: "pages_crawled", ok: true, pages: ids.size, anchors: anchors.length });
  });
});

for (const r of results) console.log(JSON.stringify(r));
