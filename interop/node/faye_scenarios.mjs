// Drives the Faye client (npm `faye`) in Node against a Bayeux server; one JSON line per scenario.
// Usage: node faye_scenarios.mjs <url> <long-polling|websocket>
import faye from "faye";
import { runScenarios } from "../scenarios/faye.js";

const [url, transport = "long-polling"] = process.argv.slice(2);
const results = await runScenarios(faye, url, transport, (r) => console.log(JSON.stringify(r)));
process.exit(results.every((r) => r.ok) ? 0 : 1);
