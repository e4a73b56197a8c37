// Undo: of this page's last admission (the button under the scanner field) or of the check-in an amber answer
// names, always after a confirmation. It needs the server: an admission decided offline has nothing to undo yet.
import { api, NetworkError } from "./api.js";
import { $, checkinsChanged, fmt, lastSeen, T, urls } from "./common.js";
import { syncCopy } from "./dataset.js";
import { refocus } from "./focus.js";
import { dismissResult, resultBox } from "./screen.js";
import { showNotice } from "./status.js";

let lastCheckin = null; // this page's last admission, for the undo button under the scanner field
let undoing = null; // the check-in the confirmation dialog asks about
const undoBox = $("door-undo");
const undone = $("door-undone");
const undoDialog = $("door-undo-dialog");

/** The check-in the undo button takes back ({id, name, code}), or null for none (an offline admission). */
export function setLastCheckin(checkin) {
  lastCheckin = checkin && checkin.id ? checkin : null;
  undoBox.hidden = !lastCheckin;
  $("door-undo-who").textContent = lastCheckin ? fmt(T.undo_who, { name: lastCheckin.name || "" }) : "";
  if (lastCheckin) undone.textContent = "";
}

/** Ask before undoing a check-in: {id, name, code}, this page's last admission or one an amber answer named. */
export function askUndo(checkin) {
  undoing = checkin;
  $("door-undo-question").textContent = fmt(T.undo_question, { name: checkin.name || "" });
  undoDialog.returnValue = "";
  undoDialog.showModal();
}

$("door-undo-button").addEventListener("click", () => {
  if (lastCheckin) askUndo(lastCheckin);
});

undoDialog.addEventListener("close", async () => {
  const checkin = undoing;
  undoing = null;
  if (undoDialog.returnValue !== "undo" || !checkin) {
    refocus();
    return;
  }
  const isLast = lastCheckin && lastCheckin.id === checkin.id;
  try {
    const { status } = await api("POST", `${urls.checkins}/${checkin.id}/undo`, {});
    if (status === 200) {
      undone.textContent = fmt(T.undone, { name: checkin.name || "" });
      if (isLast) setLastCheckin(null);
      if (checkin.code) lastSeen.set(checkin.code, performance.now()); // a ticket still held up is not re-admitted
      if (resultBox.dataset.checkinId === String(checkin.id)) dismissResult(); // its answer is history now
      syncCopy(); // the local copy learns it now, not at its next refresh
    } else if (status === 401) {
      showNotice("unauthorized");
    } else if (status === 404) {
      undone.textContent = T.undo_failed;
      if (isLast) setLastCheckin(null);
    } else {
      undone.textContent = T.server_error; // undecided: the button stays for another try
    }
  } catch (error) {
    if (!(error instanceof NetworkError)) throw error;
    undone.textContent = T.undo_offline; // the button stays for when the server answers again
  }
  checkinsChanged(); // the counter and the search list follow
  refocus();
});
