// Checking in: a code (camera, scanner field) or a person (search) becomes one scan with its own nonce.
// Online, it is sent at once and kept in the queue until answered. When the server cannot answer (no network, an
// error, no answer within REQUEST_TIMEOUT_MS) the page decides from its local copy at once, shows that answer
// marked "offline", and the scan stays queued with its decision. While the server is away or older scans still
// wait, new scans are decided here at once, without waiting for the network.
import { answered, api, NetworkError, staleToken } from "./api.js";
import { $, checkinsChanged, inflight, lastSeen, newNonce, T, tokyoIso, urls } from "./common.js";
import { decideLocally, setOnline } from "./connection.js";
import { canDecide, decide, noteAnswer, serverNow, syncCopy } from "./dataset.js";
import { refocus } from "./focus.js";
import { gate } from "./gate.js";
import { decided, done, enqueue, sendQueued } from "./queue.js";
import { renderAnswer, resultBox, showResult } from "./screen.js";
import { clearNotice, showNotice } from "./status.js";
import { askUndo, setLastCheckin } from "./undo.js";

const REQUEST_TIMEOUT_MS = 1500; // longer than a slow answer, short enough that nobody waits at the door
const MAX_LATENCY_MS = 3_599_999;

let previousLatency = null; // of the last scan: code in frame (or Enter) -> answer on screen, sent with the next
let scanSeq = 0;
let shownSeq = 0; // the scan whose answer is on screen: an older answer arriving late never covers a newer one
const working = $("door-working");

function setWorking() {
  working.textContent = inflight.size ? T.checking : "";
}

/** Send one check-in: {code} (cleaned) from the camera or the scanner field, or {registrant_id, name} from search. */
export async function checkIn(scan, startedAt) {
  const key = scan.code !== undefined ? scan.code : `id:${scan.registrant_id}`;
  if (inflight.has(key)) return;
  const seq = ++scanSeq;
  inflight.set(key, seq);
  if (resultBox.dataset.kind && resultBox.dataset.kind !== "pending") {
    // The next scan dismisses the last answer at once, so nobody reads it as this one's.
    showResult("pending", { headline: T.checking });
  }
  setWorking();
  const body = scan.code !== undefined ? { code: scan.code } : { registrant_id: scan.registrant_id };
  body.gate = gate();
  body.nonce = newNonce();
  if (previousLatency !== null) {
    body.previous_latency_ms = previousLatency;
    previousLatency = null;
  }
  const scannedAt = tokyoIso(serverNow());
  let shown = null;
  try {
    shown = canDecide() && decideLocally()
      ? await decideHere(scan, body, scannedAt, null)
      : await sendNow(scan, body, scannedAt);
  } finally {
    if (inflight.get(key) === seq) inflight.delete(key);
    setWorking();
  }
  if (scan.code !== undefined) lastSeen.set(scan.code, performance.now());
  if (seq > shownSeq) {
    shownSeq = seq;
    shown();
    // The answer is on screen after the next paint: measure then, and send it with the next scan.
    requestAnimationFrame(() => setTimeout(() => {
      const now = performance.now();
      previousLatency = Math.max(0, Math.min(MAX_LATENCY_MS, Math.round(now - startedAt)));
      performance.measure("door-answer", { start: startedAt, end: now });
    }, 0));
  }
  refocus();
  checkinsChanged();
}

/** Decide on this device; the scan is queued with that decision (or, if queued already, given it). */
async function decideHere(scan, body, scannedAt, queuedId) {
  const decision = await decide(scan, body.gate);
  const name = (decision.person && decision.person.name) || null; // shown if the server refuses the scan
  const keep = queuedId === null
    ? enqueue({ body, scanned_at: scannedAt, offline_result: decision.result, name })
    : decided(queuedId, decision.result, name);
  keep.then(() => sendQueued()).catch((error) => console.warn("could not queue a scan", error));
  const person = decision.person || {};
  const standing = decision.checkin || {};
  const data = {
    result: decision.result, problem: decision.problem, checkin_id: standing.id,
    checked_in_at: standing.at, gate: standing.gate, by: standing.by,
    attendee: { name: person.name, organization: person.organization, on_site: person.on_site },
  };
  return () => {
    renderAnswer(200, data, scan, { offline: true, onUndo: askUndo });
    if (decision.result === "ok") setLastCheckin(null); // nothing to undo until the server has it
  };
}

/** Send at once; on no answer, decide here (or, with no local copy, say so as before). */
async function sendNow(scan, body, scannedAt) {
  const local = canDecide();
  // Kept while on its way: a page closed before the answer loses nothing. Not awaited: the answer comes first.
  const queued = local ? enqueue({ body, scanned_at: scannedAt, offline_result: null }).catch(() => null) : null;
  let answer;
  try {
    answer = await api("POST", urls.checkins, body, { timeout: REQUEST_TIMEOUT_MS });
  } catch (error) {
    if (!(error instanceof NetworkError)) throw error;
    answer = null;
  }
  if (answer && staleToken(answer) && queued) {
    syncCopy(); // a page from the service worker's cache: the data set brings a fresh token for the queued scan
    answer = null;
  }
  if (answer && (answered(answer) || answer.status === 401)) {
    if (queued) queued.then((id) => done(id));
    setOnline(true);
    if (answer.status === 401) {
      showNotice("unauthorized");
      syncCopy(); // asks too: a 401 there wipes the local copy
    } else {
      clearNotice();
      noteAnswer(scan, answer.data);
    }
    return () => {
      renderAnswer(answer.status, answer.data, scan, { onUndo: askUndo });
      if (answer.data && answer.data.result === "ok") {
        setLastCheckin({ id: answer.data.checkin_id, name: (answer.data.attendee || {}).name, code: scan.code });
      }
    };
  }
  setOnline(false);
  if (queued) return decideHere(scan, body, scannedAt, await queued);
  // No local copy (offline mode unavailable, expired, not loaded yet): nothing can be decided here.
  return () => {
    renderAnswer(answer ? answer.status : 0, answer ? answer.data : null, scan);
    if (!answer) showNotice("network");
  };
}
