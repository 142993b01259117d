// Debian's Chromium, headless, as every browser run here starts it: a fresh profile, no sandbox
// (tests run as root), and nothing that would reach out to the network on its own.
import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const CHROMIUM_ARGS = [
  "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--disable-quic",
];

// Runs `use(context)` in a fresh headless Chromium; always closes it and removes its profile.
export async function withChromium(use) {
  const profile = mkdtempSync(join(tmpdir(), "bayeux-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: CHROMIUM_ARGS,
  });
  try {
    return await use(context);
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}
