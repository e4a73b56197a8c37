// The scanner field: a keyboard-wedge scanner types the code and Enter; a code typed by hand is shown under the
// field in the ticket's groups of four and counted, to be checked by eye against the ticket before Enter.
import { $ } from "./common.js";
import { CODE_LENGTH, cleanCode, groupCode, TICKET_CODE } from "./code.js";
import { codeInput, dialogOpen, refocus, typingElsewhere } from "./focus.js";
import { dismissResult } from "./screen.js";

const codeForm = $("door-code-form");
const typedPreview = $("door-code-preview");
const typedGroups = $("door-code-groups");
const typedCount = $("door-code-count");
let checkIn = () => {}; // set by main: the check-in flow

export function setCheckIn(flow) {
  checkIn = flow;
}

// A scanner that types while a button has the focus still lands in the field (the key goes where focus is).
document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey || dialogOpen()) return;
  if (event.key === "Escape") {
    dismissResult();
    return;
  }
  if (event.key.length === 1 && /[0-9A-Za-z]/.test(event.key) && !typingElsewhere()
      && document.activeElement !== codeInput) {
    codeInput.focus({ preventScroll: true });
  }
}, true);

codeForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const startedAt = performance.now(); // the Enter key
  // Sent as read (a typed "2htj-jprj ..." is the code itself); a text that is still no code is sent too, so that the
  // server records the scan and says what is wrong with it.
  const code = cleanCode(codeInput.value);
  codeInput.value = "";
  showTyped();
  codeInput.inputMode = "none";
  if (code) checkIn({ code }, startedAt);
  refocus();
});

function showTyped() {
  const code = cleanCode(codeInput.value);
  typedPreview.hidden = !code;
  typedGroups.textContent = groupCode(code);
  typedCount.textContent = code ? `${Array.from(code).length}/${CODE_LENGTH}` : "";
  typedPreview.dataset.complete = TICKET_CODE.test(code) ? "true" : "false";
}

codeInput.addEventListener("input", showTyped);

// On a phone the field takes no on-screen keyboard (it would hide half the screen) until asked for.
$("door-type-code").addEventListener("click", () => {
  codeInput.inputMode = "text";
  codeInput.blur();
  codeInput.focus();
});
