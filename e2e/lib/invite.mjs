// An invitation between two vaults, as a person does it: A's invitation page makes the code, B's opens
// it, A's page shows the 6-digit code, B types it. Used by e2e/12-two-vaults.test.mjs and the WebRTC
// benchmark (bench/browser/webrtc/echo.mjs).
import { until } from "./util.mjs";

/** The `data-state` of element `id` on an invitation page. */
export const state = (page, id) => page.evaluate((el) => document.getElementById(el)?.dataset.state ?? "", id);

/** A's invitation page (in `context`) for `space`, waiting: the page and the code. */
export async function invite(context, vault, space) {
  const host = await context.newPage();
  await host.goto(`${vault}/invite.html?space=${space}`);
  await host.waitForFunction(() => document.getElementById("invite-code")?.value.startsWith("echo-invite-"), null, { timeout: 15000 });
  const code = await host.inputValue("#invite-code");
  const now = await state(host, "host-state");
  if (now !== "waiting") throw new Error(`the new invitation is ${now}, not waiting`);
  return { host, code };
}

/** The 6-digit code the host's page shows once a guest arrived. */
export async function authCode(host) {
  return (await host.waitForFunction(() => document.getElementById("auth-code")?.textContent?.match(/^\d{6}$/)?.[0], null, { timeout: 10000 })).jsonValue();
}

/**
 * A (`hosts`, a browser context) invites B (`guests`) to `space`; B types the right code. Returns once both
 * pages say success, with B's invitation page still open when `keepGuest` (it may lead B's WebRTC), else null.
 */
export async function admit(hosts, guests, vault, space, { keepGuest = false } = {}) {
  const { host, code } = await invite(hosts, vault, space);
  const guest = await guests.newPage();
  await guest.goto(`${vault}/invite.html#${code}`);
  await until(async () => (await state(guest, "guest-state")) === "ready_for_code", { timeoutMs: 15000, what: "B connected to A" });
  await guest.fill("#code-input", await authCode(host));
  await guest.click("#code-button");
  await until(async () => (await state(guest, "guest-state")) === "success", { timeoutMs: 15000, what: "B admitted" });
  await until(async () => (await state(host, "host-state")) === "success", { timeoutMs: 5000, what: "A sees success" });
  await host.close();
  if (keepGuest) return guest;
  await guest.close();
  return null;
}
