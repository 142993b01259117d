// Drives the official CometD JavaScript client (npm `cometd`, in Node through
// `cometd-nodejs-client`) against a Bayeux server and prints one JSON line per scenario.
// Usage: node cometd_scenarios.mjs <url> <transport>
import { adapt } from "cometd-nodejs-client";
import { CometD } from "cometd";
import { runScenarios } from "../scenarios/cometd.js";

adapt();

const [url, transport = "long-polling"] = process.argv.slice(2);
const results = await runScenarios(CometD, url, transport, (r) => console.log(JSON.stringify(r)));
process.exit(results.every((r) => r.ok) ? 0 : 1);
