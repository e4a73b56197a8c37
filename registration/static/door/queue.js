// The queue (outbox) of scans, in IndexedDB: every scan is written to it as it is sent, and leaves it only when the
// server has answered it. A scan decided on this device carries its nonce, the device's scan time and what the door
// decided (offline_result); the sender sends them in order, one at a time, with their nonces, so the server answers
// a resent scan as it did the first time. Web Locks keep two tabs from sending at once. A scan the server refuses
// as a request (400 invalid_request, 422 nonce_reused) is not an answer about the ticket: it stays in the queue,
// marked "refused" (not sent again), and the page lists it until staff dismiss it (status.js), so that no scan the
// door decided vanishes unrecorded. (Kept in the queue store: a new store would need a database upgrade, which an
// older door tab still open would block.)
import { answered, api, NetworkError, staleToken } from "./api.js";
import { urls } from "./common.js";
import { setOnline, setRefused, setWaiting } from "./connection.js";
import { noteAnswer, syncCopy } from "./dataset.js";
import { localDb } from "./localdb.js";

const SEND_TIMEOUT_MS = 10_000;
// A scan with no decision is one being sent by a page right now; if it is still there this much later, its page
// was closed before an answer came: it is sent as it is (the server answers a nonce it saw as it did then).
const ORPHAN_MS = 60_000;
const LOCK = "codt-door-queue";
const channel = "BroadcastChannel" in window ? new BroadcastChannel("codt-door-queue") : null;
const listeners = { answered: [], unauthorized: [] };
const NOT_ACCEPTED = new Set(["invalid_request", "nonce_reused"]); // the request, not the ticket, was refused

/** Call `listener(item, answer)` when the server answered a queued scan; "unauthorized" when it said sign in. */
export function onQueue(kind, listener) {
  listeners[kind].push(listener);
}

function toSend(item) {
  if (item.refused) return false;
  return item.offline_result !== null || Date.now() - item.created > ORPHAN_MS;
}

/** Count the decided scans still waiting (shown as "N scans waiting"), after a change here or in another tab. */
export async function countWaiting() {
  const db = await localDb();
  if (!db) return 0;
  const items = await db.getAll("queue");
  const count = items.filter(toSend).length;
  setWaiting(count);
  setRefused(items.filter((item) => item.refused).length);
  return count;
}

/** The scans the server refused as requests, oldest first: {body, scanned_at, offline_result, refused}. */
export async function refusedScans() {
  const db = await localDb();
  return db ? (await db.getAll("queue")).filter((item) => item.refused) : [];
}

/** Staff saw the refused scans (and told the desk): forget them. */
export async function dismissRefused() {
  const db = await localDb();
  if (!db) return;
  const tx = db.transaction("queue", "readwrite");
  for (const item of await tx.store.getAll()) if (item.refused) await tx.store.delete(item.id);
  await tx.done;
  announce();
}

function announce() {
  countWaiting();
  if (channel) channel.postMessage("changed");
}

if (channel) channel.onmessage = () => countWaiting();

/** Keep a scan before (or while) it is sent: {body, scanned_at, offline_result, name?}. Resolves to its id, or null. */
export async function enqueue(item) {
  const db = await localDb();
  if (!db) return null;
  const id = await db.add("queue", { ...item, created: Date.now() });
  if (item.offline_result !== null) announce();
  return id;
}

/** The page decided a scan it had sent (no answer came): keep it with that decision, to be sent again. */
export async function decided(id, offlineResult, name = null) {
  const db = await localDb();
  if (!db || id === null) return;
  const tx = db.transaction("queue", "readwrite");
  const item = await tx.store.get(id);
  if (item) await tx.store.put({ ...item, offline_result: offlineResult, name });
  await tx.done;
  announce();
}

/** The server answered the scan: it leaves the queue. */
export async function done(id) {
  const db = await localDb();
  if (!db || id === null) return;
  await db.delete("queue", id);
  announce();
}

/** Send the waiting scans, oldest first, while the server answers. Only one tab sends (a Web Lock). */
export function sendQueued() {
  if (!navigator.locks) return sendLocked(true);
  return navigator.locks.request(LOCK, { ifAvailable: true }, (lock) => sendLocked(lock !== null));
}

let sendingHere = false; // where there are no Web Locks: at least one sender per tab

async function sendLocked(mine) {
  const db = await localDb();
  if (!mine || !db || sendingHere) return;
  sendingHere = true;
  try {
    for (;;) {
      const next = (await db.getAll("queue")).find(toSend);
      if (!next) break;
      if (!(await sendOne(db, next))) break;
    }
  } finally {
    sendingHere = false;
    countWaiting();
  }
}

/** POST one queued scan. True when it was answered (and so left the queue), false to stop and try later. */
async function sendOne(db, item) {
  const body = { ...item.body, scanned_at: item.scanned_at };
  if (item.offline_result) body.offline_result = item.offline_result;
  let answer;
  try {
    answer = await api("POST", urls.checkins, body, { timeout: SEND_TIMEOUT_MS });
  } catch (error) {
    if (!(error instanceof NetworkError)) throw error;
    setOnline(false);
    return false;
  }
  if (staleToken(answer)) {
    await syncCopy(); // brings a fresh token: sent again at the next try
    return false;
  }
  if (answer.status === 401) {
    for (const listener of listeners.unauthorized) listener();
    return false; // kept: sent after the next sign-in
  }
  if (!answered(answer)) {
    setOnline(false);
    return false;
  }
  setOnline(true);
  if (answer.status >= 400 && NOT_ACCEPTED.has(answer.data.result)) {
    // Kept and shown; the local copy keeps what the door decided (the person stays admitted here).
    const { result, field = null } = answer.data;
    await db.put("queue", { ...item, refused: { status: answer.status, result, field, at: Date.now() } });
    announce();
    return true;
  }
  await db.delete("queue", item.id);
  announce();
  const scan = item.body.code !== undefined ? { code: item.body.code } : { registrant_id: item.body.registrant_id };
  await noteAnswer(scan, answer.data);
  for (const listener of listeners.answered) listener(item, answer);
  return true;
}
