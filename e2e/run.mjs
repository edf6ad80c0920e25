#!/usr/bin/env node
// Runs the browser end-to-end tests:
//
//   node e2e/run.mjs [test files…]       (default: every e2e/*.test.mjs)
//
// Builds what is missing (target/debug/echo-signal, shell/dist + demo-app/dist), starts the sites once
// (e2e/lib/sites.mjs: vault + demo app, and the probe app on app.localhost and other.localhost, each on a free
// port unless E2E_*_PORT says otherwise), runs the files with node's test runner one at a time, stops the
// sites, and exits with the runner's status. Its last lines are node's test summary.
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { ROOT, startSites } from "./lib/sites.mjs";

const started = Date.now();
const files = process.argv.slice(2);
const tests = files.length ? files : readdirSync(join(ROOT, "e2e")).filter((f) => f.endsWith(".test.mjs")).sort().map((f) => join("e2e", f));

const { sites, stop } = await startSites();
console.log(`[e2e] sites up in ${Date.now() - started} ms: ${Object.entries(sites).map(([k, v]) => `${k} ${v}`).join(", ")}`);

let child;
const onSignal = (sig) => {
  child?.kill(sig);
};
process.on("SIGINT", onSignal);
process.on("SIGTERM", onSignal);

// Node 20's spec reporter prints its "failing tests" list (which includes failed `todo` tests: the known bugs)
// after the summary; it is moved before it, so that the summary closes the output.
const SUMMARY = /^ℹ (tests|suites|pass|fail|cancelled|skipped|todo|duration_ms) /;
let held = null; // lines from the summary on
const code = await new Promise((resolve) => {
  child = spawn(process.execPath, ["--test", "--test-concurrency=1", "--test-reporter=spec", ...tests], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, E2E_SITES: JSON.stringify(sites) },
  });
  let partial = "";
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (chunk) => {
    const lines = (partial + chunk).split("\n");
    partial = lines.pop();
    for (const line of lines) {
      if (held === null && /^ℹ tests \d+/.test(line)) held = [];
      if (held !== null) held.push(line);
      else process.stdout.write(line + "\n");
    }
  });
  child.on("close", (c, signal) => {
    if (partial) (held ?? (held = [])).push(partial);
    resolve(c ?? (signal ? 1 : 0));
  });
});
await stop();
if (held) {
  const summary = held.filter((l) => SUMMARY.test(l));
  const rest = held.filter((l) => !SUMMARY.test(l));
  while (rest.length && rest[rest.length - 1].trim() === "") rest.pop();
  if (rest.length) process.stdout.write(rest.join("\n") + "\n\n");
  process.stdout.write(`[e2e] whole run ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  process.stdout.write(summary.join("\n") + "\n");
}
process.exit(code);
