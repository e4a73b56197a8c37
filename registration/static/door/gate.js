// The gate this device stands at ("door-1" unless set), kept on the device, always as the server will keep it
// (cleanGate): a pasted zero-width space or a name cut inside an emoji would otherwise make every scan invalid.
import { cleanGate } from "./code.js";
import { $, store, storage } from "./common.js";
import { codeInput } from "./focus.js";

const gateInput = $("door-gate");
gateInput.value = cleanGate(storage("door.gate", ""));

/** The gate each scan is sent with. */
export function gate() {
  return cleanGate(gateInput.value);
}

function saveGate() {
  gateInput.value = gate();
  store("door.gate", gateInput.value);
}

gateInput.addEventListener("change", saveGate);
$("door-gate-form").addEventListener("submit", (event) => {
  event.preventDefault();
  saveGate();
  codeInput.focus({ preventScroll: true }); // the gate is set: back to scanning
});
