// The gate this device stands at ("door-1" unless set), kept on the device.
import { $, store, storage } from "./common.js";
import { codeInput } from "./focus.js";

const DEFAULT_GATE = "door-1";
const gateInput = $("door-gate");
gateInput.value = storage("door.gate", DEFAULT_GATE);

export function gate() {
  return gateInput.value.trim().slice(0, 40) || DEFAULT_GATE;
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
