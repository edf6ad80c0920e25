// The help page (/help.html): fills in this vault's address and points at the
// section of the browser it is read in (the refusals link `#<browser>`).
import { detectBrowser } from "./advice";
import { refuseFraming } from "./page";

refuseFraming();
for (const el of document.querySelectorAll<HTMLElement>(".vault-host")) el.textContent = location.hostname;
const browser = detectBrowser();
const section = document.getElementById(browser);
if (section) {
  section.classList.add("yours");
  const note = document.createElement("p");
  note.className = "small muted";
  note.textContent = "This is the browser you are using.";
  section.querySelector("h3")?.after(note);
}
