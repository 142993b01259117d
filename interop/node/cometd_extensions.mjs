// The CometD JS client (npm `cometd` through `cometd-nodejs-client`) in Node against the servers
// of interop/extensions_server.py: interop/scenarios/extensions.js, one JSON line per scenario.
// Usage: node cometd_extensions.mjs <transport> <mainUrl> <clientModeUrl> <clientServerModeUrl>
import { adapt } from "cometd-nodejs-client";
import { BinaryExtension, CometD, TimeStampExtension } from "cometd";
import { runExtensionScenarios } from "../scenarios/extensions.js";

adapt();
const [transport, main, client, clientServer] = process.argv.slice(2);
const results = await runExtensionScenarios(
  { CometD, BinaryExtension, TimeStampExtension },
  { main, client, clientServer },
  transport,
  (r) => console.log(JSON.stringify(r)),
);
process.exit(results.every((r) => r.ok) ? 0 : 1);
