// CometD's own Z85 codec (npm `cometd`, Z85.js), the one its BinaryExtension uses, on inputs the
// Python test gives: encodes each byte string and decodes each text, and prints one JSON line.
// Usage: node z85_check.mjs <cases.json>, where cases.json is {"bytes": [hex...], "texts": [...]}.
import { readFileSync } from "node:fs";
import { Z85 } from "cometd/Z85.js";

const cases = JSON.parse(readFileSync(process.argv[2], "utf8"));
const fromHex = (hex) => new Uint8Array(hex.match(/../g)?.map((b) => parseInt(b, 16)) ?? []);
const toHex = (buffer) => Buffer.from(new Uint8Array(buffer)).toString("hex");
let result;
try {
  const encoded = cases.bytes.map((hex) => Z85.encode(fromHex(hex)));
  // An ArrayBuffer and a plain array of numbers, as publishBinary may be given, encode alike.
  const alike = cases.bytes.every((hex, i) =>
    Z85.encode(fromHex(hex).buffer) === encoded[i] && Z85.encode(Array.from(fromHex(hex))) === encoded[i]);
  const decoded = cases.texts.map((text) => toHex(Z85.decode(text)));
  result = { name: "z85", ok: true, encoded, decoded, alike };
} catch (err) {
  result = { name: "z85", ok: false, error: String((err && err.message) || err) };
}
console.log(JSON.stringify(result));
