// The local copy: the current seat holders (a keyed hash of each ticket code, never the codes; name, kana,
// organisation, check-in), refreshed from GET /api/v1/door/dataset (?since= the last version: only the changes).
// With it the page decides a scan on its own when the server cannot (decide), and searches by name (search).
// Wiped on sign-out and when the server says the session ended; gone after the event day (expires_at).
// Each door tab holds the copy in memory; a change one tab makes (an admission, an answer, a wipe) is told to the
// others at once (BroadcastChannel): a ticket admitted in one tab is amber in the next.
import { api, answered, NetworkError, setCsrfToken } from "./api.js";
import { codeProblem } from "./code.js";
import { root, tokyoIso, urls } from "./common.js";
import { connection } from "./connection.js";
import { foldForSearch, searchKey } from "./fold.js";
import { localDb } from "./localdb.js";

const SYNC_TIMEOUT_MS = 10_000;
const SEARCH_LIMIT = 20;

let db = null;
let meta = null; // {version, key_id, key, expires_at, offset_ms, updated_at, conflicts, conflicts_open}: "dataset"
let hmacKey = null; // the CryptoKey for meta.key
let status = "none"; // none | ready | expired
let syncing = null;
const people = new Map(); // id -> person, as the data set gives them (checkin may be this device's own, pending)
const byHash = new Map(); // ticket code hash -> person
const searchKeys = new Map(); // id -> folded text search matches against
const listeners = [];
const channel = "BroadcastChannel" in window ? new BroadcastChannel("codt-door-copy") : null;

/** Call `listener()` whenever the copy changed (a refresh, a local admission, a wipe). */
export function onCopy(listener) {
  listeners.push(listener);
}

function publish() {
  root.dataset.dataset = status;
  root.dataset.datasetCount = String(people.size);
  for (const listener of listeners) listener();
}

/** Read the copy this browser kept (a reload, or a page opened from the service worker's cache without network). */
export async function loadCopy() {
  db = await localDb();
  if (!db) {
    publish();
    return false;
  }
  const stored = await db.get("meta", "dataset");
  if (stored) {
    meta = stored;
    hmacKey = await importKey(meta.key);
    for (const person of await db.getAll("people")) index(person);
    status = "ready";
    expireIfOver();
  }
  publish();
  return true;
}

/** The server's clock as this device best knows it, in ms: the scan time queued scans carry. */
export function serverNow() {
  return Date.now() + (meta ? meta.offset_ms : 0);
}

export function datasetState() {
  return { status, count: people.size, updatedAt: meta ? meta.updated_at : null, available: Boolean(db) };
}

export function conflicts() {
  return (meta && meta.conflicts) || [];
}

/** How many conflicts are open in all: the data set lists only the newest few. */
export function conflictsOpen() {
  return Number.isInteger(meta && meta.conflicts_open) ? meta.conflicts_open : conflicts().length;
}

/** Checked in / seat holders, as the local copy counts them (the counter while the server is away). */
export function localCounts() {
  let checkedIn = 0;
  for (const person of people.values()) if (person.checkin) checkedIn += 1;
  return { checked_in: checkedIn, confirmed: people.size };
}

/**
 * Bring the copy up to date. Resolves to "online" (it is), "offline" (no answer: network, 5xx, timeout),
 * "unauthorized" (the session ended: the copy is wiped) or "unavailable" (this browser keeps no copy).
 */
export function syncCopy() {
  if (!db) return Promise.resolve("unavailable");
  syncing ||= runSync().finally(() => {
    syncing = null;
  });
  return syncing;
}

async function runSync() {
  const url = meta ? `${urls.dataset}?since=${encodeURIComponent(meta.version)}` : urls.dataset;
  const sentAt = Date.now();
  let answer;
  try {
    answer = await api("GET", url, undefined, { timeout: SYNC_TIMEOUT_MS });
  } catch (error) {
    if (!(error instanceof NetworkError)) throw error;
    return "offline";
  }
  if (answer.status === 401) {
    await wipeCopy();
    return "unauthorized";
  }
  if (!answered(answer)) return "offline";
  if (answer.status !== 200) return "online"; // refused (403: no door role): keep what there is
  await apply(answer.data, (sentAt + Date.now()) / 2);
  return "online";
}

async function apply(data, receivedAt) {
  if (data.csrf_token) setCsrfToken(data.csrf_token);
  if (data.expired) {
    await wipeCopy("expired");
    return;
  }
  const serverTime = Date.parse(data.server_time);
  const next = {
    version: data.version, key_id: data.key_id, key: data.key, expires_at: data.expires_at,
    offset_ms: Number.isFinite(serverTime) ? Math.round(serverTime - receivedAt) : 0,
    updated_at: Number.isFinite(serverTime) ? serverTime : Date.now(), conflicts: data.conflicts || [],
    conflicts_open: data.conflicts_open ?? null,
  };
  if (!meta || meta.key !== next.key) hmacKey = await importKey(next.key);
  // This device's own admissions the server has not seen yet are kept while scans still wait to be sent, or were
  // refused as requests (the door let the person in; staff see the refused scan until they dismiss it).
  const keep = connection.waiting || connection.refused;
  const pending = new Map();
  for (const person of people.values()) if (keep && person.checkin?.pending) pending.set(person.id, person);
  if (data.full) {
    people.clear();
    byHash.clear();
    searchKeys.clear();
  }
  const tx = db.transaction(["people", "meta"], "readwrite");
  const store = tx.objectStore("people");
  if (data.full) store.clear();
  for (const person of data.people || []) {
    if (!person.checkin && pending.has(person.id)) person.checkin = pending.get(person.id).checkin;
    forget(person.id);
    index(person);
    store.put(person);
  }
  for (const id of data.removed || []) {
    forget(id);
    store.delete(id);
  }
  tx.objectStore("meta").put(next, "dataset");
  await tx.done;
  meta = next;
  status = "ready";
  expireIfOver();
  publish();
}

/** Forget the copy (kept: the queue of scans, sent after the next sign-in). "expired" says why it is gone. */
export async function wipeCopy(reason = "none") {
  forgetAll(reason);
  if (channel) channel.postMessage({ wiped: reason });
  if (db) {
    const tx = db.transaction(["people", "meta"], "readwrite");
    await Promise.all([tx.objectStore("people").clear(), tx.objectStore("meta").clear(), tx.done]);
  }
  publish();
}

function forgetAll(reason) {
  meta = null;
  hmacKey = null;
  people.clear();
  byHash.clear();
  searchKeys.clear();
  status = reason === "expired" ? "expired" : "none";
}

function expireIfOver() {
  const end = meta && Date.parse(meta.expires_at);
  if (end && serverNow() >= end) wipeCopy("expired");
}

function index(person) {
  people.set(person.id, person);
  byHash.set(unpadded(person.hash), person);
  searchKeys.set(person.id, searchKey(person));
}

function forget(id) {
  const old = people.get(id);
  if (!old) return;
  people.delete(id);
  byHash.delete(unpadded(old.hash));
  searchKeys.delete(id);
}

function save(person) {
  if (channel) channel.postMessage({ person });
  if (db) db.put("people", person).catch((error) => console.warn("could not keep a check-in locally", error));
}

// Another tab changed the copy (it wrote IndexedDB itself): the same change here, in memory.
if (channel) {
  channel.onmessage = ({ data }) => {
    if (data.wiped) forgetAll(data.wiped);
    else if (data.person && status === "ready" && people.has(data.person.id)) {
      forget(data.person.id);
      index(data.person);
    } else return;
    publish();
  };
}

// --- the keyed hash of a ticket code ------------------------------------------------------------------

const unpadded = (text) => String(text || "").replace(/=+$/u, "");

function fromBase64url(text) {
  const base64 = unpadded(text).replace(/-/g, "+").replace(/_/g, "/");
  return Uint8Array.from(atob(base64.padEnd(Math.ceil(base64.length / 4) * 4, "=")), (c) => c.charCodeAt(0));
}

function toBase64url(bytes) {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/u, "");
}

function importKey(key) {
  return crypto.subtle.importKey("raw", fromBase64url(key), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
}

/** base64url of the first 16 bytes of HMAC-SHA256(key, code): how the data set names a ticket. */
async function codeHash(code) {
  const mac = await crypto.subtle.sign("HMAC", hmacKey, new TextEncoder().encode(code));
  return toBase64url(new Uint8Array(mac, 0, 16));
}

// --- deciding and searching on this device --------------------------------------------------------------

/** Whether the page can decide scans itself: a copy that has not expired. */
export function canDecide() {
  expireIfOver();
  return status === "ready" && hmacKey !== null;
}

/**
 * Decide a scan ({code}, cleaned, or {registrant_id}) as the server would with this copy: {result, person,
 * checkin, problem}. An admission is noted at once, so that the same ticket is "already checked in" next time.
 */
export async function decide(scan, gate) {
  let person;
  if (scan.code !== undefined) {
    const problem = codeProblem(scan.code);
    if (problem) return { result: "unknown_code", problem };
    person = byHash.get(await codeHash(scan.code));
    if (!person) return { result: "unknown_code" }; // unknown, cancelled or replaced: the copy cannot tell
  } else {
    person = people.get(scan.registrant_id);
    if (!person) return { result: "not_admitted", person: { name: scan.name } };
  }
  if (person.checkin) return { result: "already_checked_in", person, checkin: person.checkin };
  person.checkin = { id: null, at: tokyoIso(serverNow()), gate, pending: true };
  save(person);
  publish();
  return { result: "ok", person };
}

/** What the server answered about a scan, into the copy: its admission, or that a local one did not stand. */
export async function noteAnswer(scan, data) {
  if (status !== "ready" || !data) return;
  let person = null;
  if (scan.registrant_id !== undefined) person = people.get(scan.registrant_id);
  else if (!codeProblem(scan.code)) person = byHash.get(await codeHash(scan.code));
  if (!person) return;
  if ((data.result === "ok" || data.result === "already_checked_in") && data.checkin_id) {
    person.checkin = { id: data.checkin_id, at: data.checked_in_at, gate: data.gate, by: data.by || data.device };
  } else if (person.checkin && person.checkin.pending) {
    person.checkin = null; // refused by the server: the next data set says what stands
  } else {
    return;
  }
  save(person);
  publish();
}

/** People of the copy whose name, kana or organisation contain `query`, folded as the server folds. */
export function searchCopy(query) {
  const needle = foldForSearch(query.trim());
  if (Array.from(needle).length < 2) return [];
  const found = [];
  for (const [id, key] of searchKeys) if (key.includes(needle)) found.push(people.get(id));
  found.sort((a, b) => String(a.kana).localeCompare(String(b.kana), "ja") || a.id - b.id);
  return found.slice(0, SEARCH_LIMIT).map((person) => ({
    registrant_id: person.id, name: person.name, kana: person.kana, organization: person.organization,
    checked_in: Boolean(person.checkin), checked_in_at: person.checkin ? person.checkin.at : null,
    gate: person.checkin ? person.checkin.gate : null, admissible: true, reason: null, on_site: person.on_site,
  }));
}
