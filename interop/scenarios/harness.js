// Helpers shared by every interop scenario file, in Node and in the browser: bounded waits,
// checks, message collectors, and the loop that runs scenarios and reports one result each.

export const STEP_MS = 15000;

// `promise`, or a rejection naming `what` once STEP_MS have passed.
export function within(promise, what, ms = STEP_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms);
  });
  return Promise.race([Promise.resolve(promise), timeout]).finally(() => clearTimeout(timer));
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export function check(condition, what) {
  if (!condition) throw new Error(what);
}

export async function waitFor(predicate, ms, what) {
  const until = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > until) throw new Error(`timed out: ${what}`);
    await sleep(20);
  }
}

// Collects messages; `finished` resolves once `count` arrived. Its STEP_MS start when it is
// read (after the publishes), not when the collector is made: a long run of publishes on a
// loaded machine must not eat the wait for their deliveries.
export function collector(count) {
  const messages = [];
  let done;
  const arrived = new Promise((resolve) => { done = resolve; });
  return {
    messages,
    get finished() { return within(arrived, `${count} messages`); },
    onMessage: (m) => { messages.push(m); if (messages.length >= count) done(messages); },
  };
}

// Runs each scenario in turn; a failure is reported, never thrown.
export async function runAll(scenarios, transport, report) {
  const results = [];
  for (const [name, run] of Object.entries(scenarios)) {
    const started = Date.now();
    let result;
    try {
      await run();
      result = { name, transport, ok: true, ms: Date.now() - started };
    } catch (err) {
      result = { name, transport, ok: false, error: String((err && err.message) || err) };
    }
    results.push(result);
    if (report) report(result);
  }
  return results;
}

// Prints each result as a JSON line and exits 0 only when all passed (Node runners).
export async function runAndExit(scenarios, transport) {
  const results = await runAll(scenarios, transport, (r) => console.log(JSON.stringify(r)));
  process.exit(results.every((r) => r.ok) ? 0 : 1);
}
