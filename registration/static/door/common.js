// What every part of the door page shares: its elements, its texts (#door-messages, translated on the server),
// small helpers, and the few facts about scans that the camera, the scanner field and undo all need.

export const $ = (id) => document.getElementById(id);
export const root = $("door");
export const T = JSON.parse($("door-messages").textContent);
export const urls = {
  checkins: root.dataset.checkinsUrl,
  stats: root.dataset.statsUrl,
  search: root.dataset.searchUrl,
  dataset: root.dataset.datasetUrl,
  login: root.dataset.loginUrl,
  page: root.dataset.pageUrl,
  serviceWorker: root.dataset.swUrl,
  zxingModule: new URL(root.dataset.zxingModule, location.href).href,
  zxingWasm: new URL(root.dataset.zxingWasm, location.href).href,
};

export const lastSeen = new Map(); // code -> when the camera last saw it or its answer came
export const inflight = new Map(); // code (or "id:<registrant>") -> its scan's number: one request at a time each

/** Fill {name} placeholders (the server-side translations keep them for us). */
export function fmt(text, values = {}) {
  return text.replace(/\{(\w+)\}/g, (whole, key) => (key in values ? String(values[key]) : whole));
}

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

/** "13:02" from the API's ISO time, which is already in Japan time. */
export function clockTime(iso) {
  const match = /T(\d\d:\d\d)/.exec(iso || "");
  return match ? match[1] : "";
}

const tokyo = new Intl.DateTimeFormat("en-GB", { timeZone: "Asia/Tokyo", hour: "2-digit", minute: "2-digit",
                                                 second: "2-digit", hourCycle: "h23" });

/** "13:02:03" in Japan time, from a moment in milliseconds. */
export function tokyoTime(ms) {
  return tokyo.format(new Date(ms));
}

/** "2023-09-14T10:02:03+09:00": a moment in milliseconds as the API writes it, Japan time. */
export function tokyoIso(ms) {
  const shifted = new Date(ms + 9 * 3600_000).toISOString().slice(0, 23); // Japan keeps no summer time
  return `${shifted}+09:00`;
}

export function newNonce() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16)); // pages served without HTTPS have no randomUUID
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export function storage(key, fallback) {
  try {
    return localStorage.getItem(key) ?? fallback;
  } catch {
    return fallback;
  }
}

export function store(key, value) {
  try {
    localStorage.setItem(key, value);
  } catch {
    /* private mode: the setting lasts for this page only */
  }
}

/** Tell the page that this page admitted someone or undid a check-in: the counter and the search list follow. */
export function checkinsChanged() {
  document.dispatchEvent(new CustomEvent("door:checkins"));
}

export function onCheckinsChanged(listener) {
  document.addEventListener("door:checkins", listener);
}
