// Opens interop/browser/index.html in Debian's headless Chromium through playwright-core, runs the
// CometD JS scenarios there over each transport asked for, and prints one JSON line per scenario.
// Usage: node browser_run.mjs <page-url> <transport> [<transport> ...]
import { withChromium } from "./chromium.mjs";

const [pageUrl, ...transports] = process.argv.slice(2);
let failed = 0;
await withChromium(async (context) => {
  const page = await context.newPage();
  page.on("pageerror", (err) => console.error("page error:", err.message));
  page.on("console", (msg) => { if (msg.type() === "error") console.error("console:", msg.text()); });
  page.on("requestfailed", (req) => console.error("request failed:", req.url(), req.failure()?.errorText));
  await page.goto(pageUrl);
  await page.waitForFunction(() => window.scenariosReady === true, null, { timeout: 15000 });
  for (const transport of transports) {
    const results = await page.evaluate((t) => window.runScenarios(t), transport);
    for (const r of results) {
      console.log(JSON.stringify({ ...r, browser: "chromium" }));
      if (!r.ok) failed++;
    }
  }
});
process.exit(failed ? 1 : 0);
