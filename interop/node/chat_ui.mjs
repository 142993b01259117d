// Uses the chat demo (examples/chat) as people would: two pages in headless Chromium join,
// talk (a second tab of bob is not announced again: presence), and ask who is here; a third is
// refused without a name. One JSON line per check.
// Usage: node chat_ui.mjs <page-url> [screenshot.png]
import { withChromium } from "./chromium.mjs";

const [pageUrl, screenshot] = process.argv.slice(2);
const results = [];
async function step(name, run) {
  try { await run(); results.push({ name, ok: true }); }
  catch (err) { results.push({ name, ok: false, error: String((err && err.message) || err) }); }
}
const logOf = (page) => page.locator("#log");

await withChromium(async (context) => {
  const alice = await context.newPage();
  const bob = await context.newPage();
  const stranger = await context.newPage();
  for (const page of [alice, bob, stranger]) await page.goto(pageUrl);

  await step("join_with_a_name", async () => {
    await alice.fill("#name", "alice");
    await alice.click("#join button");
    await alice.locator("#room").waitFor({ state: "visible", timeout: 10000 });
    if (await alice.locator("#join").isVisible()) throw new Error("join form still shown after joining");
  });
  await step("others_see_a_join_announced_by_the_server", async () => {
    await bob.fill("#name", "bob");
    await bob.click("#join button");
    await bob.locator("#room").waitFor({ state: "visible", timeout: 10000 });
    await logOf(alice).getByText("bob joined").waitFor({ timeout: 10000 });
  });
  await step("messages_arrive_stamped_with_the_sender", async () => {
    await bob.fill("#text", "  hello alice  ");
    await bob.click("#say button");
    await logOf(alice).getByText("bob: hello alice", { exact: true }).waitFor({ timeout: 10000 });
  });
  await step("a_second_tab_of_a_user_is_not_announced_again", async () => {
    const bob2 = await context.newPage();
    await bob2.goto(pageUrl);
    await bob2.fill("#name", "bob");
    await bob2.click("#join button");
    await bob2.locator("#room").waitFor({ state: "visible", timeout: 10000 });
    await bob2.fill("#text", "from my phone");
    await bob2.click("#say button");
    await logOf(alice).getByText("bob: from my phone").waitFor({ timeout: 10000 });
    const joins = await logOf(alice).getByText("bob joined").count();
    if (joins !== 1) throw new Error(`bob announced ${joins} times`);
  });
  await step("remote_call_lists_members", async () => {
    await alice.click("#members");
    await logOf(alice).getByText("Here: alice, bob").waitFor({ timeout: 10000 });
  });
  await step("handshake_without_a_name_is_refused", async () => {
    await stranger.click("#join button");
    await stranger.locator("#notice").getByText("Could not join: 403::Handshake denied")
      .waitFor({ timeout: 10000 });
    if (await stranger.locator("#room").isVisible()) throw new Error("room shown to a refused user");
  });
  if (screenshot) await alice.screenshot({ path: screenshot });
});
for (const r of results) console.log(JSON.stringify(r));
process.exit(results.every((r) => r.ok) ? 0 : 1);
