// The event-loop stall probe of benchmarks/stallprobe.py for the Node peers, loaded with
// `node --require benchmarks/stallprobe.cjs server.cjs ...` when BAYEUX_STALL_DIR is set: a timer
// every 5 ms records how late it fired and the process's CPU time between two firings, the
// longest of each per 100 ms window, written every second to $BAYEUX_STALL_DIR/<pid>.json as
// [[window start (s since the epoch), longest lateness in ms, longest CPU in ms], ...].
const fs = require("fs");
const path = require("path");

const directory = process.env.BAYEUX_STALL_DIR;
if (directory) {
  const PERIOD = 5;
  const WINDOW = 100;
  const HISTORY = 3000;
  const file = path.join(directory, `${process.pid}.json`);
  const windows = [];
  let windowStart = Date.now();
  let longest = 0;
  let busiest = 0;
  let written = Date.now();
  let before = performance.now();
  let cpu = process.cpuUsage();
  const tick = () => {
    const late = performance.now() - before - PERIOD;
    const used = process.cpuUsage(cpu);
    longest = Math.max(longest, late);
    busiest = Math.max(busiest, (used.user + used.system) / 1000);
    const now = Date.now();
    if (now - windowStart >= WINDOW) {
      windows.push([windowStart / 1000, Math.round(longest * 100) / 100, Math.round(busiest * 100) / 100]);
      windowStart = now;
      longest = 0;
      busiest = 0;
      if (windows.length > HISTORY) windows.splice(0, windows.length - HISTORY);
    }
    if (now - written >= 1000) {
      written = now;
      fs.writeFileSync(file + ".tmp", JSON.stringify(windows));
      fs.renameSync(file + ".tmp", file);
    }
    before = performance.now();
    cpu = process.cpuUsage();
    setTimeout(tick, PERIOD).unref();
  };
  setTimeout(tick, PERIOD).unref();
}
