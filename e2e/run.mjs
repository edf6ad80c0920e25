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

const code = await new Promise((resolve) => {
  child = spawn(process.execPath, ["--test", "--test-concurrency=1", "--test-reporter=spec", ...tests], {
    cwd: ROOT,
    stdio: "inherit",
    env: { ...process.env, E2E_SITES: JSON.stringify(sites) },
  });
  child.on("exit", (c, signal) => resolve(c ?? (signal ? 1 : 0)));
});
await stop();
process.exit(code);
