// Uses the login example (examples/login) as people would: alice and bob log in through the
// app's own form in two browsers (two cookie jars); the push channel follows the app's login.
// One JSON line per check. Usage: node login_ui.mjs <base-url> [screenshot.png]
import { withChromium } from "./chromium.mjs";

const [base, screenshot] = process.argv.slice(2);
const results = [];
async function step(name, run) {
  try { await run(); results.push({ name, ok: true }); }
  catch (err) { results.push({ name, ok: false, error: String((err && err.message) || err) }); }
}
async function logIn(page, user, password) {
  await page.goto(base + "/");
  await page.fill("input[name=username]", user);
  await page.fill("input[name=password]", password);
  await page.click("form button");
}
const HANDSHAKE = JSON.stringify([{
  channel: "/meta/handshake", version: "1.0", supportedConnectionTypes: ["long-polling"],
}]);

await withChromium(async (aliceBrowser) => {
  await withChromium(async (bobBrowser) => {
    const alice = await aliceBrowser.newPage();
    const bob = await bobBrowser.newPage();

    await step("the_page_sends_strangers_to_the_login_form", async () => {
      await bob.goto(base + "/");
      if (!bob.url().endsWith("/login?next=%2F")) throw new Error("not redirected: " + bob.url());
    });
    await step("a_handshake_without_the_login_cookie_is_refused", async () => {
      const reply = await bob.evaluate(async (body) => {
        const answer = await fetch("/cometd", {
          method: "POST", body, headers: { "Content-Type": "application/json" },
        });
        return (await answer.json())[0];
      }, HANDSHAKE);
      if (reply.successful !== false || reply.error !== "403::Handshake denied") {
        throw new Error("handshake not refused: " + JSON.stringify(reply));
      }
    });
    await step("a_wrong_password_is_refused", async () => {
      await logIn(bob, "bob", "alice-pw");
      await bob.locator("#error").getByText("Wrong user name or password").waitFor({ timeout: 10000 });
    });
    await step("alice_logs_in_and_listens_to_her_channel", async () => {
      await logIn(alice, "alice", "alice-pw");
      await alice.locator("#status").getByText("listening to /user/alice").waitFor({ timeout: 10000 });
    });
    await step("bob_logs_in_and_listens_to_his_channel", async () => {
      await logIn(bob, "bob", "bob-pw");
      await bob.locator("#status").getByText("listening to /user/bob").waitFor({ timeout: 10000 });
    });
    await step("a_server_publish_to_user_alice_reaches_alices_page", async () => {
      await bob.fill("#text", "hello alice");
      await bob.click("#send button");
      await bob.locator("#log").getByText("sent", { exact: true }).waitFor({ timeout: 10000 });
      await alice.locator("#log").getByText("bob: hello alice", { exact: true })
        .waitFor({ timeout: 10000 });
      if (await bob.locator("#log").getByText("bob: hello alice").count()) {
        throw new Error("bob got alice's note");
      }
    });
    await step("alice_may_not_listen_to_bobs_channel", async () => {
      await alice.click("#peek");
      await alice.locator("#log").getByText("refused: 403:/user/bob:Subscription denied")
        .waitFor({ timeout: 10000 });
    });
    if (screenshot) await alice.screenshot({ path: screenshot });
  });
});
for (const r of results) console.log(JSON.stringify(r));
process.exit(results.every((r) => r.ok) ? 0 : 1);
