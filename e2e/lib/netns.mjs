// A network namespace that has only `lo`, for anything that runs WebRTC: inside it the only ICE candidates
// are host candidates on 127.0.0.1, so no traffic can leave the machine (the project's network rule).
// `unshare --net` needs root (the project's machines and CI run as root).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";

/** Set in the environment of a process started by `runInLoopbackNamespace`. */
export const NETNS_ENV = "ECHO_LOOPBACK_NETNS";

/** Whether this process runs inside a namespace made by `runInLoopbackNamespace`. */
export const inLoopbackNamespace = () => process.env[NETNS_ENV] === "1";

/** Network interfaces here other than `lo`. */
export function otherInterfaces() {
  const r = spawnSync("ip", ["-o", "link", "show"], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`ip link show failed (is iproute2 installed?): ${r.stderr}`);
  return r.stdout
    .split("\n")
    .map((line) => line.split(":")[1]?.trim().split("@")[0])
    .filter((name) => name && name !== "lo");
}

/** Throws unless `lo` is the only network interface (call it inside the namespace, before any browser starts). */
export function assertLoopbackOnly(what = "WebRTC") {
  const others = otherInterfaces();
  if (others.length) throw new Error(`refusing to run ${what} with network interfaces other than lo: ${others.join(", ")}`);
}

/**
 * Runs `node [nodeArgs] file [args]` in a new network namespace with only `lo` (brought up), as a fresh
 * process with `NETNS_ENV=1`. `stdio: "pipe"` returns the output (spawnSync's result); "inherit" streams it.
 */
export function runInLoopbackNamespace({ file, args = [], nodeArgs = [], env = process.env, cwd, timeoutMs, stdio = "pipe" }) {
  if (process.getuid?.() !== 0) {
    throw new Error("this makes a network namespace with `unshare --net`: run it as root (the project's machines and CI are)");
  }
  const quote = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;
  const command = [process.execPath, ...nodeArgs, file, ...args].map(quote).join(" ");
  return spawnSync("unshare", ["--net", "--fork", "--", "sh", "-c", `ip link set lo up && exec ${command}`], {
    cwd,
    encoding: "utf8",
    env: { ...env, [NETNS_ENV]: "1" },
    timeout: timeoutMs,
    stdio,
    maxBuffer: 64 * 1024 * 1024,
  });
}

/**
 * Runs the test file `file` again inside a new loopback-only namespace — a fresh test run, not a nested one (which
 * node would skip) — echoes its output indented (so the outer runner's summary stays the last one), and asserts it
 * ended without failures. Returns its output, for the caller's counts of what ran.
 */
export function runTestsInLoopbackNamespace({ file, env = {}, cwd, timeoutMs }) {
  const childEnv = { ...process.env, E2E_SITES: "", ...env };
  delete childEnv.NODE_TEST_CONTEXT;
  const r = runInLoopbackNamespace({ file, nodeArgs: ["--test", "--test-reporter=spec"], env: childEnv, cwd, timeoutMs });
  const indent = (text) => (text ?? "").replace(/^(?=.)/gm, "  │ ");
  process.stdout.write(indent(r.stdout));
  process.stderr.write(indent(r.stderr));
  assert.equal(r.status, 0, `the tests in the namespace failed (status ${r.status}, ${r.error ?? "no spawn error"})`);
  assert.match(r.stdout ?? "", /ℹ fail 0\b/);
  return r.stdout ?? "";
}
