// The vault's manage page as the e2e tests read and drive it (shell/manage.html): whether it loaded its vault,
// the identity it shows, and its name field.

/** Resolves once the manage page shows its vault's identity. */
export const loaded = (page, timeout = 10000) =>
  page.waitForFunction(() => document.getElementById("identity")?.dataset.loaded === "yes", null, { timeout });

/** Name and identity key as the manage page shows them. */
export const identity = (page) =>
  page.evaluate(() => {
    const rows = [...document.querySelectorAll("#identity .kv")].map((r) => [r.querySelector("dt")?.textContent, r.querySelector("dd")?.textContent]);
    return Object.fromEntries(rows);
  });

/** Sets the vault's name on the page and waits until the page shows it. */
export async function setName(page, name) {
  await page.fill("#name-input", name);
  await page.click("#name-save");
  await page.locator("#identity dd", { hasText: name }).first().waitFor({ timeout: 10000 });
}

/** Resolves once the page shows `name` (written through another page, say). */
export const showsName = (page, name, timeout = 10000) => page.locator("#identity dd", { hasText: name }).first().waitFor({ timeout });
