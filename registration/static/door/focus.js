// The scanner field keeps the focus, for keyboard-wedge scanners: a scanner types wherever the focus is, so the
// page gives it back after every answer, tap and dismissal, unless someone is typing elsewhere or deciding.
import { $ } from "./common.js";

export const codeInput = $("door-code");
const undoDialog = $("door-undo-dialog");

export function dialogOpen() {
  return undoDialog.open;
}

export function typingElsewhere() {
  const active = document.activeElement;
  return active && active !== codeInput && active !== document.body
    && active.matches("input, select, textarea, [contenteditable], dialog *");
}

/** Give the scanner field its focus back, unless someone is typing elsewhere (search, gate) or deciding. */
export function refocus() {
  if (dialogOpen() || typingElsewhere()) return;
  if (document.activeElement !== codeInput) codeInput.focus({ preventScroll: true });
}

codeInput.addEventListener("blur", () => {
  codeInput.inputMode = "none";
  setTimeout(() => {
    const active = document.activeElement;
    if (!active || active === document.body) refocus(); // focus went nowhere (a tap on the page): take it back
  }, 0);
});
