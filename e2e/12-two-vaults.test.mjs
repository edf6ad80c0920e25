// 12. Two people share a space: two browser profiles (two vaults, two identities). A's vault makes an
// invitation on its invitation page; B opens the link in its vault, types the 6-digit code A's page shows,
// and is admitted as an editor; the vaults then find each other on signaling and replicate the space over a
// WebRTC data channel, both ways and live. Three wrong codes end an invitation on both sides.
//
// WebRTC traffic stays on loopback: this file runs inside a network namespace that has only `lo` (it
// re-executes itself under `unshare --net` as root, and refuses to run where another interface exists), so
// the only ICE candidates are host candidates on 127.0.0.1. `--allow-loopback-in-peer-connection` lets
// Chromium use them; that switch is test configuration, not something the product asks for.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { admit as admitIn, authCode, invite as inviteIn, state } from "./lib/invite.mjs";
import { assertLoopbackOnly, inLoopbackNamespace, runTestsInLoopbackNamespace } from "./lib/netns.mjs";
import { launchRegime } from "./lib/regimes.mjs";
import { ROOT, startSites } from "./lib/sites.mjs";
import { allowDemo, allowInPopup, openProbe, sleep, timing, until, waitState } from "./lib/util.mjs";

const SELF = fileURLToPath(import.meta.url);

if (!inLoopbackNamespace()) {
  // Outside the namespace: run this very file inside a new one, as one test.
  test("two vaults in a loopback-only network namespace", () => {
    const out = runTestsInLoopbackNamespace({ file: SELF, cwd: ROOT, timeoutMs: 240_000 });
    // They ran, all of them.
    assert.match(out, /ℹ pass 9\b/, "every test ran and passed in the namespace");
  });
} else {
  assertLoopbackOnly("WebRTC tests");
  // Both vaults run the engine's test build: the release engine plus one hook through which B's vault writes
  // where its role does not allow it (vault-wasm/src/test_hooks.rs), for the reader test.
  const HOOKS = join(ROOT, "pkg", "echo-vault-test-hooks");
  if (!existsSync(join(HOOKS, "echo_vault_bg.wasm"))) throw new Error(`${HOOKS} is not built: make wasm-test-hooks`);
  process.env.E2E_VAULT_PKG = HOOKS;

  let sites;
  let stopSites;
  const browsers = [];
  /** Console lines of every page, per browser (printed when a test fails). */
  const logs = [[], []];
  before(async () => {
    ({ sites, stop: stopSites } = await startSites());
    for (let i = 0; i < 2; i++) {
      const b = await launchRegime("storage-access", { extraArgs: ["--allow-loopback-in-peer-connection", "--use-fake-ui-for-media-stream"] });
      b.context.on("page", (page) =>
        page.on("console", (m) => {
          const line = `${page.url().split("?")[0].split("#")[0]} ${m.type()}: ${m.text()}`;
          logs[i].push(line);
          // E2E_NET_LOG=1: the network log as it happens, stamped (for finding where time goes).
          if (process.env.E2E_NET_LOG && /echo-net/.test(line)) console.log(`${new Date().toISOString().slice(17, 23)} ${"AB"[i]} ${line}`);
        }),
      );
      browsers.push(b);
    }
  });

  /** What each vault's manage page says about `space`'s peers, and the pages' console lines. */
  async function diagnose(space) {
    const out = [];
    for (let i = 0; i < 2; i++) {
      const page = await browsers[i].context.newPage();
      await page.goto(`${sites.vault}/manage.html`);
      const peers = await page
        .waitForFunction((s) => document.querySelector(`tr:has([data-space="${s}"]) .peers`)?.textContent, space, { timeout: 5000 })
        .then((h) => h.jsonValue(), (e) => `no peers cell: ${e.message}`);
      out.push(`vault ${"AB"[i]}: ${peers}`);
      await page.close();
    }
    const status = await fetch(`${sites.vault.replace("vault.localhost", "127.0.0.1")}/signal/status`).then((r) => r.text(), (e) => e.message);
    out.push(`signaling: ${status}`);
    for (let i = 0; i < 2; i++) {
      for (const page of browsers[i].context.pages()) {
        const net = await page.evaluate(() => document.documentElement.dataset.net ?? "-").catch((e) => e.message);
        out.push(`${"AB"[i]} page ${page.url().split("#")[0]}: net ${net}`);
      }
    }
    for (let i = 0; i < 2; i++) out.push(`--- console of ${"AB"[i]}:`, ...logs[i].slice(-40));
    return out.join("\n");
  }
  after(async () => {
    for (const b of browsers) await b.close();
    await stopSites?.();
  });

  /** A probe app connected and allowed in browser `b`; `spaces` granted in the popup (asked again when given). */
  async function app(b, spaces = []) {
    const page = await openProbe(b.context, sites.probeA, { state: ["not_authorized", "connected"] });
    if ((await page.evaluate(() => window.probe.vault.state)) !== "connected" || spaces.length) {
      // Allowed before: the popup replaces that decision (with the spaces checked now).
      await page.evaluate(() => (window.probe.access = null));
      await allowInPopup(b.context, page, { spaces });
      await waitState(page, "connected");
    }
    return page;
  }

  /** A new space named `name` made by the app on `page` (with a note titled `note`, if given); its id. */
  const spaceWith = (page, name, note) =>
    page.evaluate(
      async ({ name, note }) => {
        const v = window.probe.vault;
        const s = await v.spaces.create({ name });
        if (note) await v.space(s.id).create("note", { title: note });
        return s.id;
      },
      { name, note },
    );

  /** Titles of the notes in `space`, sorted, as the app on `page` reads them. */
  const titles = (page, space) =>
    page.evaluate(async (s) => {
      const { vault, echo } = window.probe;
      const r = await vault.space(s).query(echo.query(echo.where.type("note")), { resolve: true });
      return r.objects.map((o) => o.fields.title).sort();
    }, space);


  /** A's invitation page for `space`: the page and the code. */
  const invite = (space) => inviteIn(browsers[0].context, sites.vault, space);

  /** A's invitation for `space`, accepted by B with the right code; returns when both pages say success. */
  const admit = (space) => admitIn(browsers[0].context, browsers[1].context, sites.vault, space);

  /** Closes the pages a previous test left open (a failed one), but the expiring invitation's. */
  async function fresh() {
    for (const b of browsers) {
      for (const p of b.context.pages()) if (p !== expiring?.host) await p.close().catch(() => {});
    }
  }

  /** Whether `page` leads its vault's WebRTC connections. */
  const drives = (page) => page.evaluate(() => document.documentElement.dataset.net === "driving").catch(() => false);

  /**
   * A new manage page of browser `i`, once a top-level vault page of that browser leads its WebRTC connections
   * (this one, or one opened before it, such as an invitation page still open).
   */
  async function lead(i) {
    const page = await browsers[i].context.newPage();
    await page.goto(`${sites.vault}/manage.html`);
    await until(
      async () => {
        for (const p of browsers[i].context.pages()) if (p.url().startsWith(sites.vault) && (await drives(p))) return true;
        return false;
      },
      { timeoutMs: 15000, what: `a vault page of ${"AB"[i]} leading` },
    );
    return page;
  }

  // An invitation with one minute to live, made first: the last test tries it once it expired.
  let expiring = null;
  test("A makes an invitation valid for one minute (tried by the last test)", async () => {
    const a = await app(browsers[0]);
    const space = await spaceWith(a, "Short-lived");
    const host = await browsers[0].context.newPage();
    await host.goto(`${sites.vault}/invite.html?space=${space}&ttl=1`);
    await host.waitForFunction(() => document.getElementById("invite-code")?.value.startsWith("echo-invite-"), null, { timeout: 15000 });
    expiring = { code: await host.inputValue("#invite-code"), made: Date.now(), host, space };
    await a.close();
  });

  test("A invites B with a code; both edit the space and see each other's writes live over WebRTC", async (t) => {
    await fresh();
    const a = await app(browsers[0]);
    const space = await spaceWith(a, "Groceries", "milk");

    let t0 = Date.now();
    const { host, code } = await invite(space);
    const guest = await browsers[1].context.newPage();
    await guest.goto(`${sites.vault}/invite.html#${code}`);
    await until(async () => (await state(guest, "guest-state")) === "ready_for_code", { timeoutMs: 15000, what: "B connected to A" });
    const digits = await authCode(host);
    assert.equal(await guest.locator("#auth-code").textContent(), "", "the code is shown only on the host's page");
    assert.equal(await guest.locator("#auth-box").isHidden(), true);
    await guest.fill("#code-input", digits);
    await guest.click("#code-button");
    await until(async () => (await state(guest, "guest-state")) === "success", { timeoutMs: 15000, what: "B admitted" });
    await until(async () => (await state(host, "host-state")) === "success", { timeoutMs: 5000, what: "A sees success" });
    timing(t, "invitation: open link → admitted", Date.now() - t0);

    // B's app, allowed the joined space, gets A's note over WebRTC.
    t0 = Date.now();
    const b = await app(browsers[1], [space]);
    await until(async () => (await titles(b, space)).includes("milk"), { timeoutMs: 30000, what: "A's note on B" }).catch(async (e) => {
      throw new Error(`${e.message}\n${await diagnose(space)}`);
    });
    timing(t, "first sync A → B", Date.now() - t0);

    // Both write; each sees the other's write live.
    t0 = Date.now();
    await b.evaluate(async (s) => window.probe.vault.space(s).create("note", { title: "bread" }), space);
    await until(async () => (await titles(a, space)).includes("bread"), { timeoutMs: 10000, what: "B's note on A" });
    timing(t, "B writes → visible on A", Date.now() - t0);
    t0 = Date.now();
    await a.evaluate(async (s) => window.probe.vault.space(s).create("note", { title: "eggs" }), space);
    await until(async () => (await titles(b, space)).includes("eggs"), { timeoutMs: 10000, what: "A's note on B" });
    timing(t, "A writes → visible on B", Date.now() - t0);
    assert.deepEqual(await titles(a, space), ["bread", "eggs", "milk"]);
    assert.deepEqual(await titles(b, space), ["bread", "eggs", "milk"]);

    // A's manage page lists B as an editor.
    const manage = await browsers[0].context.newPage();
    await manage.goto(`${sites.vault}/manage.html`);
    await manage.waitForFunction(
      (s) => document.querySelector(`[data-space="${s}"] .members`)?.children.length === 2,
      space,
      { timeout: 10000 },
    );
    for (const p of [host, guest, manage, a, b]) await p.close();
  });

  test("demo app: A shares the board, B joins it from its own demo app; a task added shows on both; both type in one note and converge", async (t) => {
    await fresh();
    const demo = async (i) => {
      const page = await browsers[i].context.newPage();
      await page.goto(`${sites.demo}/`);
      await page.waitForFunction(() => ["not_authorized", "connected"].includes(document.querySelector("[data-testid=state]")?.dataset.state), null, { timeout: 15000 });
      if ((await page.getByTestId("state").getAttribute("data-state")) === "not_authorized") {
        await allowDemo(browsers[i].context, page);
      }
      await page.waitForFunction(() => document.querySelector("[data-testid=board]")?.dataset.ready === "true", null, { timeout: 15000 });
      return page;
    };
    // A vault page of each person leads their WebRTC connections (on loopback, Chromium offers no candidates
    // to a cross-site iframe without media permission; a real network gives it mDNS/STUN candidates).
    const leads = [await lead(0), await lead(1)];
    const a = await demo(0);
    await a.getByTestId("new-list-name").fill("Household");
    await a.getByTestId("add-list").click();
    await a.getByTestId("list-Household").waitFor({ timeout: 5000 });

    let t0 = Date.now();
    const hostP = browsers[0].context.waitForEvent("page");
    await a.getByTestId("share-board").click();
    const host = await hostP;
    await host.waitForFunction(() => document.getElementById("invite-code")?.value.startsWith("echo-invite-"), null, { timeout: 15000 });
    const code = await host.inputValue("#invite-code");

    const b = await demo(1);
    const guestP = browsers[1].context.waitForEvent("page");
    await b.getByTestId("join-board").click();
    const guest = await guestP;
    await guest.waitForSelector("#accept-input", { timeout: 10000 });
    await guest.fill("#accept-input", code);
    await guest.click("#accept-button");
    await until(async () => (await state(guest, "guest-state")) === "ready_for_code", { timeoutMs: 15000, what: "B connected to A" });
    const digits = await authCode(host);
    await guest.fill("#code-input", digits);
    await guest.click("#code-button");
    // The invitation window reports to the demo app, which opens the shared board.
    await b.getByTestId("list-Household").waitFor({ timeout: 30000 }).catch(async (e) => {
      throw new Error(`${e.message}\n${await diagnose("")}`);
    });
    timing(t, "demo: Share → B sees A's list", Date.now() - t0);
    // Each demo app shows the other person's vault as here (the space's status, pushed by the vault).
    for (const page of [a, b]) {
      await page.waitForFunction(() => document.querySelector("[data-testid=peers]")?.dataset.peers === "1", null, { timeout: 10000 });
      assert.match(await page.getByTestId("peers").textContent(), /1 collaborator is here/);
    }

    t0 = Date.now();
    await b.getByTestId("list-Household").click();
    await b.getByTestId("new-task-title").fill("Buy milk");
    await b.getByTestId("add-task").click();
    await a.bringToFront();
    await a.getByTestId("list-Household").click();
    await a.getByTestId("task-title").getByText("Buy milk", { exact: true }).waitFor({ timeout: 10000 });
    timing(t, "demo: B's task → visible in A's app", Date.now() - t0);

    // Both type into the same task's note at once, at its two ends: each sees the other's typing, and the
    // notes converge with both people's words.
    const notes = [];
    for (const page of [a, b]) {
      const milk = page.getByTestId("task").filter({ hasText: "Buy milk" });
      await milk.getByTestId("task-edit").click();
      notes.push(milk.getByTestId("task-note"));
    }
    await notes[0].fill("2 litres");
    await until(async () => (await notes[1].inputValue()) === "2 litres", { timeoutMs: 10000, what: "A's note on B" });
    t0 = Date.now();
    await notes[0].focus();
    await a.keyboard.press("Home");
    await notes[1].focus();
    await b.keyboard.press("End");
    await Promise.all([notes[0].pressSequentially("Organic, ", { delay: 15 }), notes[1].pressSequentially(", from the farm", { delay: 15 })]);
    const both = "Organic, 2 litres, from the farm";
    await until(async () => (await Promise.all(notes.map((n) => n.inputValue()))).every((v) => v === both), {
      timeoutMs: 10000,
      what: "both notes equal with both people's words",
    }).catch(async (e) => {
      throw new Error(`${e.message}: ${JSON.stringify(await Promise.all(notes.map((n) => n.inputValue())))}`);
    });
    timing(t, "demo: both type in one note → converged", Date.now() - t0);
    for (const p of [host, guest, a, b, ...leads]) await p.close().catch(() => {});
  });

  test("three wrong codes end the invitation on both sides; a new attempt is refused", async () => {
    await fresh();
    const a = await app(browsers[0]);
    const space = await spaceWith(a, "Secret");
    const { host, code } = await invite(space);
    const guest = await browsers[1].context.newPage();
    await guest.goto(`${sites.vault}/invite.html#${code}`);
    await until(async () => (await state(guest, "guest-state")) === "ready_for_code", { timeoutMs: 15000, what: "B connected" });
    const digits = await authCode(host);
    const wrong = (k) => String((Number(digits) + 1 + k) % 1_000_000).padStart(6, "0");
    for (let k = 0; k < 3; k++) {
      await until(async () => (await state(guest, "guest-state")) === "ready_for_code", { timeoutMs: 10000, what: `ready for attempt ${k + 1}` });
      await guest.fill("#code-input", wrong(k));
      await guest.click("#code-button");
      await until(
        async () => {
          const text = await guest.locator("#guest-state").textContent();
          return k < 2 ? /invite\.wrong_code/.test(text ?? "") : (await state(guest, "guest-state")) === "failed";
        },
        { timeoutMs: 10000, what: `the verdict on wrong code ${k + 1}` },
      );
    }
    assert.match(await guest.locator("#guest-state").textContent(), /invite\.too_many_attempts/);
    await until(async () => (await state(host, "host-state")) === "failed", { timeoutMs: 5000, what: "A's page says it ended" });
    assert.equal(await host.locator("#auth-box").isHidden(), true, "no code is shown once it ended");

    // A fourth try, on a new connection (a fresh page): refused before any code is asked for.
    const again = await browsers[1].context.newPage();
    await again.goto(`${sites.vault}/invite.html#${code}`);
    await until(async () => (await state(again, "guest-state")) === "failed", { timeoutMs: 15000, what: "the fourth try refused" });
    assert.match(await again.locator("#guest-state").textContent(), /invite\.too_many_attempts/);
    for (const p of [host, guest, again, a]) await p.close();
  });

  test("a cancelled invitation ends on both sides; the code is refused afterwards", async () => {
    await fresh();
    const a = await app(browsers[0]);
    const space = await spaceWith(a, "Cancelled");
    const { host, code } = await invite(space);
    const guest = await browsers[1].context.newPage();
    await guest.goto(`${sites.vault}/invite.html#${code}`);
    await until(async () => (await state(guest, "guest-state")) === "ready_for_code", { timeoutMs: 15000, what: "B connected" });
    await host.click("#cancel-host");
    await until(async () => (await state(host, "host-state")) === "cancelled", { timeoutMs: 5000, what: "A's page says cancelled" });
    await until(async () => (await state(guest, "guest-state")) === "cancelled", { timeoutMs: 10000, what: "B's page says cancelled" });
    assert.equal(await guest.locator("#code-input").isVisible(), false, "no code is asked for once it ended");
    for (const p of [host, guest, a]) await p.close();
  });

  test("B's leading vault page closes: another takes over; with none open B is offline, writes anyway, and both converge", async (t) => {
    await fresh();
    const leadA = await lead(0);
    const a = await app(browsers[0]);
    const space = await spaceWith(a, "Trip", "tent");
    await admit(space);
    const first = await lead(1);
    assert.equal(await drives(first), true, "B has no other vault page open: this one leads");
    const second = await browsers[1].context.newPage();
    await second.goto(`${sites.vault}/manage.html`);
    await second.waitForFunction(() => document.readyState === "complete");
    await sleep(300);
    assert.notEqual(await second.evaluate(() => document.documentElement.dataset.net), "driving", "one leader at a time");
    const b = await app(browsers[1], [space]);
    await until(async () => (await titles(b, space)).includes("tent"), { timeoutMs: 20000, what: "A's note on B" }).catch(async (e) => {
      throw new Error(`${e.message}\n${await diagnose(space)}`);
    });

    // The leader goes; the other vault page takes over and the space keeps syncing.
    let t0 = Date.now();
    await first.close();
    await second.waitForFunction(() => document.documentElement.dataset.net === "driving", null, { timeout: 10000 });
    await a.evaluate(async (s) => window.probe.vault.space(s).create("note", { title: "stove" }), space);
    await until(async () => (await titles(b, space)).includes("stove"), { timeoutMs: 15000, what: "A's note on B after the takeover" }).catch(async (e) => {
      throw new Error(`${e.message}\n${await diagnose(space)}`);
    });
    timing(t, "leader closed → A's next write on B", Date.now() - t0);

    // No vault page of B's open: no replication (its app's iframe gets no ICE candidates on loopback).
    // Both write meanwhile, and every write is acknowledged.
    // B's app watches the space's status: a peer now; none once B is offline.
    const status = (page) => page.evaluate((s) => window.probe.vault.space(s).status(), space);
    assert.equal((await status(b)).peers, 1);
    await second.close();
    await until(async () => (await status(b)).peers === 0, { timeoutMs: 10000, what: "B's status: no peer" });
    await a.evaluate(async (s) => window.probe.vault.space(s).create("note", { title: "map" }), space);
    await b.evaluate(async (s) => window.probe.vault.space(s).create("note", { title: "boots" }), space);
    await sleep(1500);
    assert.deepEqual(await titles(b, space), ["boots", "stove", "tent"], "B is offline: A's write has not arrived");
    assert.deepEqual(await titles(a, space), ["map", "stove", "tent"]);

    // A vault page of B's opens again: both converge, nothing acknowledged is lost.
    t0 = Date.now();
    const again = await lead(1);
    const all = ["boots", "map", "stove", "tent"];
    await until(async () => JSON.stringify(await titles(b, space)) === JSON.stringify(all), { timeoutMs: 20000, what: "B converged" }).catch(async (e) => {
      throw new Error(`${e.message}\n${await diagnose(space)}`);
    });
    await until(async () => JSON.stringify(await titles(a, space)) === JSON.stringify(all), { timeoutMs: 10000, what: "A converged" });
    timing(t, "B back online → converged", Date.now() - t0);
    const back = await status(b);
    assert.equal(back.peers, 1, JSON.stringify(back));
    assert.equal(back.online && back.can_connect, true, JSON.stringify(back));
    // A's manage page shows B online for the space.
    await leadA.reload();
    await leadA.waitForFunction((s) => /online/.test(document.querySelector(`tr:has([data-space="${s}"]) .peers`)?.textContent ?? ""), space, { timeout: 10000 });
    for (const p of [again, a, b, leadA]) await p.close();
  });

  test("A makes B a reader: B's vault refuses B's writes, A refuses what B's vault forges anyway, reads go on", async () => {
    await fresh();
    const leadA = await lead(0);
    const leadB = await lead(1);
    const a = await app(browsers[0]);
    const space = await spaceWith(a, "Handbook");
    await admit(space);
    const b = await app(browsers[1], [space]);
    await b.evaluate(async (s) => window.probe.vault.space(s).create("note", { title: "by B as editor" }), space);
    await until(async () => (await titles(a, space)).includes("by B as editor"), { timeoutMs: 20000, what: "B's write on A" });

    // A's manage page: B's role → reader.
    await leadA.reload();
    // B's identity key, as B's own manage page shows it (apps only get a pseudonym: docs/privacy.md).
    await leadB.waitForSelector("#identity code.key", { timeout: 10000 });
    const bId = (await leadB.locator("#identity code.key").first().textContent()).trim();
    const select = leadA.locator(`[data-space="${space}"] [data-member="${bId}"] select`);
    await select.waitFor({ timeout: 10000 });
    await select.selectOption("reader");
    // B's vault learns it from A's control log over WebRTC and refuses B's writes.
    const refusal = await until(
      async () => {
        const r = await b.evaluate((s) => window.probe.settle(window.probe.vault.space(s).create("note", { title: "by B as reader" })), space);
        return r.ok ? null : r;
      },
      { timeoutMs: 20000, every: 300, what: "B's vault refusing B's writes" },
    ).catch(async (e) => {
      throw new Error(`${e.message}\n${await diagnose(space)}`);
    });
    assert.equal(refusal.code, "sync.write_refused", JSON.stringify(refusal));
    assert.match(refusal.message, /role reader/);
    await a.evaluate(async (s) => window.probe.vault.space(s).create("note", { title: "by A" }), space);
    await until(async () => (await titles(b, space)).includes("by A"), { timeoutMs: 15000, what: "A's write still reaches B" });
    // Writes B made while it was (still) an editor in its own view are on A only if A accepted them.
    const onA = await titles(a, space);
    assert.ok(onA.includes("by B as editor"));

    // B's vault writes anyway (the test build's hook: a modified vault, signing with B's real device key).
    // B's own copy has it; A refuses the bundle and never shows it.
    const refusedBefore = logs[0].filter((l) => /refused a peer's bundles/.test(l)).length;
    await b.evaluate(async (s) => {
      const conn = await window.probe.raw();
      await conn.connect();
      await conn.hello();
      conn.send({ test_write_unchecked: { space: s, title: "forged by B" } });
    }, space);
    await until(async () => (await titles(b, space)).includes("forged by B"), { timeoutMs: 10000, what: "the forged note in B's own vault" });
    await until(() => logs[0].filter((l) => /refused a peer's bundles/.test(l)).length > refusedBefore, { timeoutMs: 15000, what: "A refusing B's bundle" }).catch(
      async (e) => {
        throw new Error(`${e.message}\n${await diagnose(space)}`);
      },
    );
    assert.match(logs[0].filter((l) => /refused a peer's bundles/.test(l)).at(-1), /identity\.bundle\.read_only/);
    await a.evaluate(async (s) => window.probe.vault.space(s).create("note", { title: "after the forgery" }), space);
    await until(async () => (await titles(b, space)).includes("after the forgery"), { timeoutMs: 15000, what: "A's next write on B" });
    assert.ok(!(await titles(a, space)).includes("forged by B"), "A never shows the forged note");
    for (const p of [a, b, leadA, leadB]) await p.close();
  });

  test("a relay that tampers with the WebRTC descriptions gets no data through; honest again, the vaults sync", async (t) => {
    await fresh();
    const server = sites.vault.replace("vault.localhost", "127.0.0.1");
    const tamper = async (on) => {
      const r = await fetch(`${server}/signal/test/tamper`, { method: "POST", body: on ? "on" : "off" });
      assert.equal(r.status, 200, await r.text());
    };
    const tampered = async () => (await (await fetch(`${server}/signal/status`)).json()).tampered;
    const leadA = await lead(0);
    const a = await app(browsers[0]);
    const space = await spaceWith(a, "Ledger", "before");
    await admit(space);
    const b = await app(browsers[1], [space]);
    const leadB = await lead(1);
    await until(async () => (await titles(b, space)).includes("before"), { timeoutMs: 20000, what: "A's note on B" });
    const status = (page) => page.evaluate((s) => window.probe.vault.space(s).status(), space);

    // B goes offline; the relay turns attacker; A writes; B comes back through it.
    await leadB.close();
    await until(async () => (await status(b)).peers === 0, { timeoutMs: 10000, what: "B offline" });
    await tamper(true);
    try {
      const before = await tampered();
      await a.evaluate(async (s) => window.probe.vault.space(s).create("note", { title: "secret" }), space);
      const again = await lead(1);
      await until(async () => (await tampered()) >= before + 2, { timeoutMs: 15000, what: "the relay changing descriptions" });
      await sleep(2000);
      assert.deepEqual(await titles(b, space), ["before"], "no space data came through the tampering relay");
      assert.equal((await status(b)).peers, 0, "no peer authenticated");
      assert.equal((await status(a)).peers, 0);
      await tamper(false);
      // B's vault redials after its backoff; a vault page opening again (the person reloads) redials at once.
      const t0 = Date.now();
      await again.close();
      const third = await lead(1);
      await until(async () => (await titles(b, space)).includes("secret"), { timeoutMs: 30000, what: "A's note on B once the relay is honest" }).catch(async (e) => {
        throw new Error(`${e.message}\n${await diagnose(space)}`);
      });
      timing(t, "relay honest again, B's vault page reopened → synced", Date.now() - t0);
      for (const p of [third, a, b, leadA]) await p.close();
    } finally {
      await tamper(false);
    }
  });

  test("the one-minute invitation, tried after it expired, is refused at once", async () => {
    await fresh();
    assert.ok(expiring, "the first test made it");
    const wait = expiring.made + 61_000 - Date.now();
    if (wait > 0) await sleep(wait);
    await until(async () => (await state(expiring.host, "host-state")) === "expired", { timeoutMs: 10000, what: "A's page says expired" });
    const guest = await browsers[1].context.newPage();
    await guest.goto(`${sites.vault}/invite.html#${expiring.code}`);
    // A's vault still listens a while after the expiry, so B hears at once (not after its own timeout).
    await until(async () => (await state(guest, "guest-state")) === "expired", { timeoutMs: 10000, what: "B's page says expired" });
    for (const p of [guest, expiring.host]) await p.close();
  });
}
