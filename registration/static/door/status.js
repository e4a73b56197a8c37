// What the top of the page says: the live counter, the connection line ("Online · list updated 10:02:03 · 312
// people" or "Offline: 3 scans waiting"), open conflicts from the data set, scans the server refused as requests
// (kept until staff dismiss them), and notices (session expired, signed out without network).
import { api, answered, NetworkError } from "./api.js";
import { groupCode } from "./code.js";
import { $, clockTime, el, fmt, root, T, tokyoTime, urls } from "./common.js";
import { connection, onConnection, setOnline } from "./connection.js";
import { conflicts, conflictsOpen, datasetState, localCounts } from "./dataset.js";
import { dismissRefused, refusedScans } from "./queue.js";

// --- notices ---------------------------------------------------------------------------------------------

const notice = $("door-notice");

export function showNotice(kind) {
  notice.replaceChildren();
  notice.dataset.kind = kind;
  if (kind === "unauthorized") {
    notice.append(el("span", null, T.unauthorized + " "));
    const link = el("a", null, T.sign_in);
    link.href = urls.login;
    notice.append(link);
  } else {
    notice.textContent = kind === "signing_out" ? T.sign_out_offline : T.network;
  }
  notice.hidden = false;
}

export function clearNotice(kind) {
  if (!notice.hidden && (!kind || notice.dataset.kind === kind)) notice.hidden = true;
}

// --- the live counter ------------------------------------------------------------------------------------

const checkedInEl = root.querySelector("[data-testid=checked-in]");
const confirmedEl = root.querySelector("[data-testid=confirmed]");
const withoutSeatNote = root.querySelector("[data-testid=without-seat-note]");
const withoutSeatEl = root.querySelector("[data-testid=without-seat]");
let statsRunning = false;
let statsAgain = false;

function showCounts(checkedIn, confirmed) {
  if (checkedInEl.textContent !== String(checkedIn)) checkedInEl.textContent = checkedIn;
  if (confirmedEl.textContent !== String(confirmed)) confirmedEl.textContent = confirmed;
}

/** Ask the server for the counter; while it cannot answer, count the local copy instead. */
export async function refreshStats() {
  if (statsRunning) {
    statsAgain = true; // a request already on its way may have left before the change: ask once more after it
    return;
  }
  statsRunning = true;
  statsAgain = false;
  try {
    const answer = await api("GET", urls.stats);
    if (answer.status === 200 && answered(answer)) {
      const { data } = answer;
      showCounts(data.checked_in, data.confirmed);
      // People checked in who cancelled since are not among the seat holders, but they are not lost either.
      withoutSeatEl.textContent = data.checked_in_without_seat;
      withoutSeatNote.hidden = !data.checked_in_without_seat;
      setOnline(true);
      clearNotice("network");
    } else if (answer.status === 401) {
      showNotice("unauthorized");
    } else if (!answered(answer)) {
      setOnline(false);
    }
  } catch (error) {
    if (!(error instanceof NetworkError)) throw error;
    setOnline(false);
  } finally {
    statsRunning = false;
    if (statsAgain) refreshStats();
  }
  if (!connection.online && datasetState().status === "ready") {
    const counts = localCounts();
    showCounts(counts.checked_in, counts.confirmed);
  }
}

// --- the connection line ---------------------------------------------------------------------------------

const line = root.querySelector("[data-testid=connection]");

/** The line under the counter: online or offline, scans waiting, how fresh the local copy is. */
export function showConnection() {
  const copy = datasetState();
  const parts = [];
  const waiting = connection.waiting;
  if (!connection.online) {
    parts.push(fmt(waiting === 1 ? T.offline_one : T.offline_many, { count: waiting }));
  } else {
    parts.push(T.online);
    if (waiting) parts.push(fmt(waiting === 1 ? T.sending_one : T.sending_many, { count: waiting }));
  }
  if (!copy.available) parts.push(T.offline_unavailable);
  else if (copy.status === "expired") parts.push(T.list_expired);
  else if (copy.status === "ready") {
    const time = tokyoTime(copy.updatedAt);
    parts.push(fmt(connection.online ? T.list_updated : T.list_from, { time }),
               fmt(T.list_people, { count: copy.count }));
  } else parts.push(T.list_none);
  line.textContent = parts.join(" · ");
  line.dataset.state = connection.online ? "online" : "offline";
}

onConnection(showConnection);

// --- conflicts: one ticket admitted twice, or an offline decision the server would not have made ----------

const conflictBox = $("door-conflicts");
const conflictList = $("door-conflict-list");

function conflictLine(label, part) {
  if (!part) return null;
  const values = { time: clockTime(part.at), gate: part.gate || "", by: part.by || "" };
  const line = el("p", "door-conflict-part");
  line.append(el("span", "door-conflict-label", label), " ",
              fmt(part.by ? T.already_detail_by : T.already_detail, values));
  return line;
}

/** List the open conflicts the data set brought (the console marks them dealt with). */
export function showConflicts() {
  const open = conflicts();
  conflictList.replaceChildren(...open.map((conflict) => {
    const item = el("li", "door-conflict");
    const head = el("p", "door-conflict-name");
    head.append(el("strong", null, conflict.name || "?"));
    if (conflict.organization) head.append(" ", el("span", "door-conflict-org", conflict.organization));
    item.append(el("p", "door-conflict-kind", T[`conflict_${conflict.kind}`] || conflict.kind), head);
    for (const part of [conflictLine(T.conflict_admission, conflict.admission),
                        conflictLine(T.conflict_scan, conflict.scan)]) if (part) item.append(part);
    return item;
  }));
  const total = Math.max(conflictsOpen(), open.length); // the data set lists the newest 20; the count is all
  $("door-conflict-count").textContent = `(${total})`;
  conflictBox.hidden = !total;
}

// --- scans the server refused as requests (not as tickets): the door decided them, nothing was recorded --------

const refusedBox = $("door-refused");
const refusedList = $("door-refused-list");
const DECISIONS = { ok: T.ok, already_checked_in: T.already, unknown_code: T.unknown_code,
                    not_admitted: T.not_admitted };
let refusedShown = 0;

/** List them (when, gate, who, what the door decided, why the server refused) until staff dismiss them. */
export async function showRefused() {
  const items = await refusedScans();
  refusedList.replaceChildren(...items.map((item) => {
    const who = item.name || (item.body.code ? groupCode(item.body.code) : `#${item.body.registrant_id}`);
    const parts = [clockTime(item.scanned_at), item.body.gate, who];
    if (item.offline_result) parts.push(DECISIONS[item.offline_result] || item.offline_result);
    parts.push(fmt(T.refused_reason, { result: item.refused.result, field: item.refused.field || "-" }));
    return el("li", "door-refused-item", parts.join(" · "));
  }));
  $("door-refused-count").textContent = `(${items.length})`;
  refusedBox.hidden = !items.length;
}

$("door-refused-dismiss").addEventListener("click", () => dismissRefused().then(showRefused));
onConnection((state) => {
  if (state.refused === refusedShown) return;
  refusedShown = state.refused;
  showRefused();
});
