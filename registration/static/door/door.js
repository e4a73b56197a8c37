// The door page: camera scanning (the standard BarcodeDetector where the browser has one for QR codes, else
// zxing-wasm served from /static), a scanner field that keeps focus for keyboard-wedge scanners, manual search,
// the answer on the whole screen with a sound, undo (of the last check-in, or of the one an "already checked in"
// answer names), the gate and a live counter. A server error or a timeout is never shown as a refusal: the scan is
// sent again with the same nonce (the server gives a retried nonce its first answer) until an answer comes.
// Every text comes from the page (#door-messages), translated on the server.

const SAME_CODE_QUIET_MS = 3000; // a code the camera keeps seeing is sent once, then ignored until out of view this long
const SCAN_INTERVAL_MS = 100; // camera frames decoded 10 times a second, never queued
const STATS_INTERVAL_MS = 4000;
const REQUEST_TIMEOUT_MS = 8000;
const RETRY_DELAYS_MS = [500, 1000, 2000, 3000]; // before the 2nd, 3rd, ... attempt; then every 3 s
const REFUSAL_REASONS = new Set(["cancelled", "waitlisted", "no_ticket", "replaced"]); // each has its own text
const MAX_LATENCY_MS = 3_599_999;
const CODE_PROBLEMS = new Set(["too_short", "too_long", "bad_characters"]); // why a text cannot be a ticket code

const $ = (id) => document.getElementById(id);
const root = $("door");
const T = JSON.parse($("door-messages").textContent);
const CODE_LENGTH = Number(root.dataset.codeLength);
const ticketCode = new RegExp(`^(?:${root.dataset.codePattern})$`);
const csrfToken = document.querySelector('meta[name="csrf-token"]').content;
const urls = {
  checkins: root.dataset.checkinsUrl,
  stats: root.dataset.statsUrl,
  search: root.dataset.searchUrl,
  login: root.dataset.loginUrl,
  zxingModule: new URL(root.dataset.zxingModule, location.href).href,
  zxingWasm: new URL(root.dataset.zxingWasm, location.href).href,
};

const codeForm = $("door-code-form");
const codeInput = $("door-code");
const searchForm = $("door-search-form");
const searchInput = $("door-search-input");
const gateInput = $("door-gate");
const resultBox = $("door-result");
const undoDialog = $("door-undo-dialog");
const video = $("door-video");
// No picture-in-picture button over the camera (set here: the attribute is not in the HTML standard vnu checks).
video.disablePictureInPicture = true;

/** Fill {name} placeholders (the server-side translations keep them for us). */
function fmt(text, values = {}) {
  return text.replace(/\{(\w+)\}/g, (whole, key) => (key in values ? String(values[key]) : whole));
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

/** A code exactly as a scanner types it (trimmed, in upper case): how a scan is told from search text. */
function scannerCode(raw) {
  return String(raw || "").trim().toUpperCase();
}

// A code however it was typed, as the server reads it too (registration/tickets.py): width folded (NFKC), spaces,
// hyphens, dashes and dots between groups left out (ー and ・ are what the minus and slash keys type under a Japanese
// input method), lower case, and 0, 1, 8 for O, I, B, which base32 does not have. Anything else is left for the
// server to name.
const CODE_SEPARATORS = /[\s\-\u2010-\u2015\u2212\u30fc\u30fb.\u00b7\u3002]+/gu;
const CONFUSIONS = { 0: "O", 1: "I", 8: "B" };

function cleanCode(raw) {
  return String(raw || "").normalize("NFKC").replace(CODE_SEPARATORS, "")
    .replace(/[a-z018]/g, (char) => CONFUSIONS[char] || char.toUpperCase());
}

/** "2HTJ JPRJ YPJX ...": a code in groups of four, as the ticket prints it. */
function groupCode(code) {
  return Array.from(code).reduce((text, char, index) => text + (index && index % 4 === 0 ? " " : "") + char, "");
}

function newNonce() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16)); // pages served without HTTPS have no randomUUID
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** "13:02" from the API's ISO time, which is already in Japan time. */
function clockTime(iso) {
  const match = /T(\d\d:\d\d)/.exec(iso || "");
  return match ? match[1] : "";
}

function storage(key, fallback) {
  try {
    return localStorage.getItem(key) ?? fallback;
  } catch {
    return fallback;
  }
}

function store(key, value) {
  try {
    localStorage.setItem(key, value);
  } catch {
    /* private mode: the setting lasts for this page only */
  }
}

// --- talking to the API ----------------------------------------------------------------------------------

class NetworkError extends Error {}

/** One JSON request; resolves to {status, data}, throws NetworkError when the server could not be reached. */
async function api(method, url, body) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
  const headers = { Accept: "application/json" };
  if (method !== "GET") {
    headers["Content-Type"] = "application/json";
    headers["X-CSRFToken"] = csrfToken;
  }
  let response;
  try {
    response = await fetch(url, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin", cache: "no-store", redirect: "manual", signal: controller.signal,
    });
  } catch (error) {
    throw new NetworkError(error && error.name === "AbortError" ? "timeout" : "network");
  } finally {
    clearTimeout(timer);
  }
  if (response.type === "opaqueredirect") {
    return { status: 401, data: { result: "unauthorized" } }; // sent to a sign-in page by something in between
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null; // not JSON: a proxy's error page, say
  }
  return { status: response.status, data };
}

// --- notices: session expired, no connection -------------------------------------------------------------

const notice = $("door-notice");

function showNotice(kind) {
  notice.replaceChildren();
  notice.dataset.kind = kind;
  if (kind === "unauthorized") {
    notice.append(el("span", null, T.unauthorized + " "));
    const link = el("a", null, T.sign_in);
    link.href = urls.login;
    notice.append(link);
  } else {
    notice.textContent = T.network;
  }
  notice.hidden = false;
}

function clearNotice(kind) {
  if (!notice.hidden && (!kind || notice.dataset.kind === kind)) notice.hidden = true;
}

// --- the live counter ------------------------------------------------------------------------------------

const checkedInEl = root.querySelector("[data-testid=checked-in]");
const confirmedEl = root.querySelector("[data-testid=confirmed]");
const withoutSeatNote = root.querySelector("[data-testid=without-seat-note]");
const withoutSeatEl = root.querySelector("[data-testid=without-seat]");
let statsRunning = false;
let statsAgain = false;

async function refreshStats() {
  if (statsRunning) {
    statsAgain = true; // a request already on its way may have left before the change: ask once more after it
    return;
  }
  statsRunning = true;
  statsAgain = false;
  try {
    const { status, data } = await api("GET", urls.stats);
    if (status === 200 && data) {
      if (checkedInEl.textContent !== String(data.checked_in)) checkedInEl.textContent = data.checked_in;
      if (confirmedEl.textContent !== String(data.confirmed)) confirmedEl.textContent = data.confirmed;
      // People checked in who cancelled since are not among the seat holders, but they are not lost either.
      withoutSeatEl.textContent = data.checked_in_without_seat;
      withoutSeatNote.hidden = !data.checked_in_without_seat;
      clearNotice("network");
    } else if (status === 401) {
      showNotice("unauthorized");
    }
  } catch {
    showNotice("network");
  } finally {
    statsRunning = false;
    if (statsAgain) refreshStats();
  }
}

setInterval(() => {
  if (!document.hidden) refreshStats();
}, STATS_INTERVAL_MS);
document.addEventListener("visibilitychange", () => {
  if (!document.hidden) refreshStats();
});

// --- the gate --------------------------------------------------------------------------------------------

const DEFAULT_GATE = "door-1";
gateInput.value = storage("door.gate", DEFAULT_GATE);

function gate() {
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

// --- sound -----------------------------------------------------------------------------------------------

let audio = null;

function audioContext() {
  const Context = window.AudioContext || window.webkitAudioContext;
  if (!Context) return null;
  if (!audio) audio = new Context();
  if (audio.state === "suspended") audio.resume().catch(() => {});
  return audio;
}

// Browsers start sound only after a gesture: the first tap or key (a wedge scanner types) unlocks it.
for (const type of ["pointerdown", "keydown"]) {
  document.addEventListener(type, () => audioContext(), { passive: true });
}

function tone(ctx, frequency, start, duration, type) {
  const oscillator = ctx.createOscillator();
  const gain = ctx.createGain();
  oscillator.type = type;
  oscillator.frequency.value = frequency;
  const t = ctx.currentTime + start;
  gain.gain.setValueAtTime(0.0001, t);
  gain.gain.exponentialRampToValueAtTime(0.35, t + 0.01);
  gain.gain.setValueAtTime(0.35, t + duration - 0.02);
  gain.gain.exponentialRampToValueAtTime(0.0001, t + duration);
  oscillator.connect(gain).connect(ctx.destination);
  oscillator.start(t);
  oscillator.stop(t + duration + 0.02);
}

function beep(ok) {
  try {
    const ctx = audioContext();
    if (!ctx) return;
    if (ok) {
      tone(ctx, 1760, 0, 0.12, "sine"); // short and high: come in
    } else {
      tone(ctx, 220, 0, 0.16, "square"); // double and low: stop
      tone(ctx, 220, 0.24, 0.16, "square");
    }
    root.dataset.lastBeep = ok ? "ok" : "refused";
  } catch {
    /* no sound is no reason to fail */
  }
}

// --- the answer on the whole screen ----------------------------------------------------------------------

let shownSeq = 0; // the scan whose answer is on screen: an older answer arriving late never covers a newer one

function showResult(kind, { headline, detail, name, organization, tag, code, link, action, hint, checkinId }) {
  const symbols = { ok: "✓", already: "!", refused: "✕", error: "!", pending: "…", retrying: "↻" };
  const box = el("div", "door-answer");
  box.append(el("p", "door-answer-symbol", symbols[kind]));
  box.lastChild.setAttribute("aria-hidden", "true");
  box.append(el("p", "door-answer-headline", headline));
  if (detail) box.append(el("p", "door-answer-detail", detail));
  if (name) box.append(el("p", "door-answer-name", name));
  if (organization) box.append(el("p", "door-answer-org", organization));
  if (tag) box.append(el("p", "door-answer-tag", tag));
  if (code) box.append(el("p", "door-answer-code", code));
  if (link) {
    const p = el("p", "door-answer-link");
    const a = el("a", null, link.text);
    a.href = link.href;
    p.append(a);
    box.append(p);
  }
  if (action) {
    const p = el("p", "door-answer-action");
    const button = el("button", "door-button door-answer-button", action.text);
    button.type = "button";
    button.addEventListener("click", action.run);
    p.append(button);
    box.append(p);
  }
  if (kind !== "pending") {
    const line = el("p", "door-answer-hint", hint || T.dismiss);
    line.setAttribute("aria-hidden", "true");
    box.append(line);
  }
  resultBox.dataset.kind = kind;
  resultBox.dataset.checkinId = checkinId || "";
  resultBox.replaceChildren(box);
}

function dismissResult() {
  if (!resultBox.dataset.kind) return;
  if (resultBox.dataset.kind === "retrying") stopRetrying();
  resultBox.dataset.kind = "";
  resultBox.dataset.checkinId = "";
  resultBox.replaceChildren();
  refocus();
}

resultBox.addEventListener("click", (event) => {
  if (event.target.closest("a, button")) return;
  dismissResult();
});

/** A character a code cannot have, as the answer names it: itself, or its code point when it cannot be seen. */
function shownCharacter(char) {
  return /^[\p{L}\p{N}\p{P}\p{S}]$/u.test(char)
    ? char : `U+${char.codePointAt(0).toString(16).toUpperCase().padStart(4, "0")}`;
}

/** Show what the API answered, and whether the door may let the person in. */
function renderAnswer(status, data, scan) {
  const body = data || {};
  const person = body.attendee || {};
  const who = { name: person.name || scan.name, organization: person.organization,
                tag: person.on_site ? T.on_site : null };
  switch (status === 0 ? "network" : body.result) {
    case "ok":
      showResult("ok", { headline: T.ok, ...who });
      beep(true);
      setLastCheckin({ id: body.checkin_id, name: who.name, code: scan.code });
      return;
    case "already_checked_in": {
      const by = body.by || body.device;
      const detail = fmt(by ? T.already_detail_by : T.already_detail,
                         { time: clockTime(body.checked_in_at), gate: body.gate || "", by: by || "" });
      // The answer names the standing check-in: whoever admitted the person (another door, an earlier shift),
      // this door can take it back, after a confirmation.
      const standing = body.checkin_id ? { id: body.checkin_id, name: who.name, code: scan.code } : null;
      const action = standing && { text: T.undo_this, run: () => askUndo(standing) };
      showResult("already", { headline: T.already, detail, action, checkinId: body.checkin_id, ...who });
      break;
    }
    case "unknown_code": {
      // A text that cannot be any ticket's code (typed short, long or wrong) is told apart from a code nobody has.
      const problem = body.problem && CODE_PROBLEMS.has(body.problem.kind) ? body.problem : null;
      if (problem) {
        const values = { length: problem.length, expected: problem.expected_length,
                         characters: (problem.characters || []).map(shownCharacter).join(" ") };
        showResult("refused", { headline: fmt(T[`code_${problem.kind}`], values), detail: T.code_problem_detail,
                                code: groupCode(scan.code) });
      } else {
        showResult("refused", { headline: T.unknown_code, detail: T.unknown_code_detail, code: scan.code });
      }
      break;
    }
    case "not_admitted": {
      const reason = REFUSAL_REASONS.has(body.reason) ? T[body.reason] : null;
      showResult("refused", { headline: reason || T.not_admitted, detail: reason ? T.not_admitted : null, ...who });
      break;
    }
    case "nonce_reused":
      // Not about the ticket (nothing was decided): the page sends every scan with a new nonce, so this is a fault.
      showResult("error", { headline: T.nonce_reused, detail: T.nonce_reused_detail, code: scan.code, ...who });
      break;
    case "invalid_request":
      showResult("refused", { headline: T.invalid_request, code: scan.code });
      break;
    case "unauthorized":
      showResult("error", { headline: T.unauthorized, link: { text: T.sign_in, href: urls.login } });
      showNotice("unauthorized");
      break;
    case "network":
      showResult("error", { headline: T.network, detail: T.network_detail, code: scan.code, ...who });
      showNotice("network");
      break;
    default:
      showResult("error", { headline: T.server_error, detail: T.network_detail, code: scan.code });
  }
  beep(false);
}

// --- checking in -----------------------------------------------------------------------------------------

const inflight = new Map(); // code (or person) -> its scan's number: never two requests at once for one code
const lastSeen = new Map(); // code -> when the camera last saw it or its answer came
let previousLatency = null; // of the last scan: code in frame (or Enter) -> answer on screen, sent with the next
let scanSeq = 0;
let stoppedSeq = 0; // scans up to this number were given up by staff (they dismissed "retrying")
const working = $("door-working");

function setWorking() {
  working.textContent = inflight.size ? T.checking : "";
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function givenUp(seq) {
  return seq !== scanSeq || seq <= stoppedSeq;
}

function showRetrying(scan, attempt) {
  showResult("retrying", { headline: T.retrying, detail: fmt(T.retrying_detail, { count: attempt }),
                           name: scan.name, code: scan.code, hint: T.retry_stop });
}

/** Dismissing "retrying" gives that scan up: its code can be scanned again at once (with a new nonce). */
function stopRetrying() {
  stoppedSeq = scanSeq;
  for (const [key, seq] of inflight) {
    if (seq <= stoppedSeq) inflight.delete(key);
  }
  setWorking();
}

/**
 * POST one scan until it gets an answer: {status, data}. A 5xx or a timeout is no answer about the ticket, so the
 * same body (the same nonce) is sent again, with "retrying" on screen; the server answers a retried nonce as it did
 * the first time, so nothing is decided twice. A lost connection is retried once, quietly, then said (status 0).
 * Null when the scan was given up: a newer scan came, or staff dismissed "retrying".
 */
async function send(scan, body, seq) {
  let networkRetried = false;
  for (let attempt = 1; ; attempt++) {
    let failure = null;
    try {
      const answer = await api("POST", urls.checkins, body);
      if (seq <= stoppedSeq) return null; // staff gave it up: a late answer would surprise them
      if (answer.status < 500) return answer;
    } catch (error) {
      failure = error instanceof NetworkError ? error.message : "network";
      if (failure === "network") {
        if (networkRetried) return { status: 0, data: null };
        networkRetried = true;
      }
    }
    if (givenUp(seq)) return null;
    if (failure !== "network") showRetrying(scan, attempt + 1);
    await sleep(failure === "network" ? 400 : RETRY_DELAYS_MS[Math.min(attempt, RETRY_DELAYS_MS.length) - 1]);
    if (givenUp(seq)) return null;
  }
}

/** Send one check-in: {code} from the camera or the scanner field, or {registrant_id, name} from search. */
async function checkIn(scan, startedAt) {
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
  let answer = null;
  try {
    answer = await send(scan, body, seq);
  } finally {
    if (inflight.get(key) === seq) inflight.delete(key);
    setWorking();
  }
  if (scan.code !== undefined) lastSeen.set(scan.code, performance.now());
  if (answer === null) return; // given up: the screen belongs to a newer scan, or to nobody
  const { status, data } = answer;
  if (status !== 0 && status !== 401) clearNotice();
  if (seq > shownSeq) {
    shownSeq = seq;
    renderAnswer(status, data, scan);
    // The answer is on screen after the next paint: measure then, and send it with the next scan.
    requestAnimationFrame(() => setTimeout(() => {
      previousLatency = Math.max(0, Math.min(MAX_LATENCY_MS, Math.round(performance.now() - startedAt)));
    }, 0));
  }
  refocus();
  refreshStats();
  if (scan.registrant_id !== undefined && searchInput.value.trim()) runSearch();
}

// --- undo ------------------------------------------------------------------------------------------------

let lastCheckin = null; // this page's last admission, for the undo button under the scanner field
let undoing = null; // the check-in the confirmation dialog asks about
const undoBox = $("door-undo");
const undone = $("door-undone");

function setLastCheckin(checkin) {
  lastCheckin = checkin && checkin.id ? checkin : null;
  undoBox.hidden = !lastCheckin;
  $("door-undo-who").textContent = lastCheckin ? fmt(T.undo_who, { name: lastCheckin.name || "" }) : "";
  if (lastCheckin) undone.textContent = "";
}

/** Ask before undoing a check-in: {id, name, code}, this page's last admission or one an amber answer named. */
function askUndo(checkin) {
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
      if (resultBox.dataset.checkinId === String(checkin.id)) dismissResult(); // its amber answer is history now
    } else if (status === 401) {
      showNotice("unauthorized");
    } else if (status === 404) {
      undone.textContent = T.undo_failed;
      if (isLast) setLastCheckin(null);
    } else {
      undone.textContent = T.server_error; // undecided: the button stays for another try
    }
  } catch {
    showNotice("network");
  }
  refreshStats();
  if (searchInput.value.trim()) runSearch();
  refocus();
});

// --- the scanner field: keeps focus for keyboard-wedge scanners ------------------------------------------

function dialogOpen() {
  return undoDialog.open;
}

function typingElsewhere() {
  const active = document.activeElement;
  return active && active !== codeInput && active !== document.body
    && active.matches("input, select, textarea, [contenteditable], dialog *");
}

/** Give the scanner field its focus back, unless someone is typing elsewhere (search, gate) or deciding. */
function refocus() {
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

// What has been typed, in groups of four and counted, under the field: a code typed by hand is checked by eye
// against the ticket, group by group, before Enter.
const typedPreview = $("door-code-preview");
const typedGroups = $("door-code-groups");
const typedCount = $("door-code-count");

function showTyped() {
  const code = cleanCode(codeInput.value);
  typedPreview.hidden = !code;
  typedGroups.textContent = groupCode(code);
  typedCount.textContent = code ? `${Array.from(code).length}/${CODE_LENGTH}` : "";
  typedPreview.dataset.complete = ticketCode.test(code) ? "true" : "false";
}

codeInput.addEventListener("input", showTyped);

// On a phone the field takes no on-screen keyboard (it would hide half the screen) until asked for.
$("door-type-code").addEventListener("click", () => {
  codeInput.inputMode = "text";
  codeInput.blur();
  codeInput.focus();
});

// --- manual search ---------------------------------------------------------------------------------------

const results = $("door-results");
const searchStatus = $("door-search-status");
let searchSeq = 0;
let searchTimer = null;

const REASON_STATUS = { cancelled: "cancelled", waitlisted: "waitlisted", no_ticket: "none" };

/** [badge kind, label] from the search API: whether the person may enter (reason: why not) and is inside. */
function personStatus(person) {
  if (person.checked_in && person.reason) {
    // Inside, but no longer a ticket holder: not the same as a checked-in attendee.
    const kind = person.reason === "cancelled" ? "checked_in_cancelled" : "checked_in_no_ticket";
    return [kind, T[`status_${kind}`]];
  }
  if (person.checked_in) return ["checked_in", T.status_checked_in];
  if (person.reason) {
    const status = REASON_STATUS[person.reason] || "none";
    return [status, T[`status_${status}`]];
  }
  return ["confirmed", T.status_confirmed];
}

function renderPeople(people) {
  results.replaceChildren();
  for (const person of people) {
    const item = el("li", "door-person");
    const text = el("div", "door-person-text");
    const nameLine = el("p", "door-person-name");
    nameLine.append(el("strong", null, person.name));
    if (person.kana) nameLine.append(" ", el("span", "door-person-kana", person.kana));
    text.append(nameLine);
    if (person.organization) text.append(el("p", "door-person-org", person.organization));
    if (person.email) text.append(el("p", "door-person-email", person.email));
    const [status, label] = personStatus(person);
    const badge = el("p", `door-badge door-badge-${status}`, label);
    badge.dataset.testid = "person-status";
    text.append(badge);
    if (person.checked_in_at) {
      const when = fmt(T.already_detail, { time: clockTime(person.checked_in_at), gate: person.gate || "" });
      text.append(el("p", "door-person-when", when));
    }
    item.append(text);
    if (person.admissible) {
      // Only a ticket holder gets the button (the answer says if they are inside already); whoever may not
      // enter is told so by the badge, with no button that looks like a way in.
      const button = el("button", person.checked_in ? "door-button" : "door-button primary", T.check_in);
      button.type = "button";
      button.setAttribute("aria-label", fmt(T.check_in_person, { name: person.name }));
      button.addEventListener("click", () => {
        checkIn({ registrant_id: person.registrant_id, name: person.name }, performance.now());
      });
      item.append(button);
    }
    results.append(item);
  }
}

async function runSearch() {
  const query = searchInput.value.trim();
  const seq = ++searchSeq;
  if (query.length < 2) {
    results.replaceChildren();
    searchStatus.textContent = query ? T.search_short : "";
    return;
  }
  try {
    const { status, data } = await api("GET", `${urls.search}?q=${encodeURIComponent(query)}`);
    if (seq !== searchSeq) return; // a newer search is on its way
    if (status === 401) {
      showNotice("unauthorized");
      return;
    }
    const people = (status === 200 && data && data.results) || [];
    renderPeople(people);
    searchStatus.textContent = people.length ? fmt(T.search_count, { count: people.length }) : T.search_none;
  } catch {
    if (seq === searchSeq) searchStatus.textContent = T.network;
  }
}

const searchKeys = []; // when the last characters came into the search box: a scanner types far faster than people
const SCANNER_MS_PER_CHAR = 40;

/** A ticket code a scanner typed at the end of the search box (maybe after someone's search text), or null. */
function scannedIntoSearch() {
  const value = searchInput.value.trim();
  for (let length = Math.min(value.length, 64); length > 0; length--) {
    const code = scannerCode(value.slice(-length));
    if (!ticketCode.test(code)) continue;
    const typedFrom = searchKeys[searchKeys.length - length];
    const fast = typedFrom !== undefined && performance.now() - typedFrom < length * SCANNER_MS_PER_CHAR + 300;
    return length === value.length || fast ? { code, rest: value.slice(0, -length) } : null;
  }
  return null;
}

searchForm.addEventListener("submit", (event) => {
  event.preventDefault();
  clearTimeout(searchTimer);
  const scanned = scannedIntoSearch();
  if (scanned) {
    // A scanner typed a ticket into the search box: check it in, and give the scanner its field back.
    const startedAt = performance.now();
    searchInput.value = scanned.rest;
    codeInput.focus({ preventScroll: true });
    checkIn({ code: scanned.code }, startedAt);
  }
  runSearch();
});

searchInput.addEventListener("beforeinput", () => {
  searchKeys.push(performance.now());
  if (searchKeys.length > 64) searchKeys.shift();
});

searchInput.addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(runSearch, 250);
});

// --- the camera ------------------------------------------------------------------------------------------

const cameraStatus = $("door-camera-status");
const cameraToggle = $("door-camera-toggle");
let stream = null;
let scanTimer = null;
let decoding = false;

/** The QR decoder, loaded and warmed up at page load (before the camera is asked for). */
async function loadDecoder() {
  if ("BarcodeDetector" in window) {
    try {
      const formats = await window.BarcodeDetector.getSupportedFormats();
      if (formats.includes("qr_code")) {
        const detector = new window.BarcodeDetector({ formats: ["qr_code"] });
        const blank = document.createElement("canvas");
        blank.width = blank.height = 64;
        await detector.detect(blank);
        root.dataset.decoder = "native";
        return async (source) => (await detector.detect(source)).map((code) => code.rawValue);
      }
    } catch {
      /* fall through to zxing-wasm */
    }
  }
  const zxing = await import(urls.zxingModule);
  // The .wasm comes from our own server, never from the library's default CDN.
  zxing.setZXingModuleOverrides({
    locateFile: (path, prefix) => (path.endsWith(".wasm") ? urls.zxingWasm : prefix + path),
  });
  const options = { formats: ["QRCode"], maxNumberOfSymbols: 1 };
  await zxing.readBarcodes(new ImageData(64, 64), options); // compile and instantiate now, not at the first ticket
  const canvas = document.createElement("canvas");
  const context = canvas.getContext("2d", { willReadFrequently: true });
  root.dataset.decoder = "zxing";
  return async (source) => {
    const scale = Math.min(1, 640 / Math.max(source.videoWidth, source.videoHeight));
    const width = Math.round(source.videoWidth * scale);
    const height = Math.round(source.videoHeight * scale);
    if (!width || !height) return [];
    if (canvas.width !== width || canvas.height !== height) {
      canvas.width = width;
      canvas.height = height;
    }
    context.drawImage(source, 0, 0, width, height);
    const found = await zxing.readBarcodes(context.getImageData(0, 0, width, height), options);
    return found.filter((code) => code.isValid && code.text).map((code) => code.text);
  };
}

const decoderReady = loadDecoder();
decoderReady.catch(() => {
  root.dataset.decoder = "unavailable";
});

function setCameraStatus(text) {
  cameraStatus.textContent = text;
}

function onCameraCode(text, seenAt) {
  const code = cleanCode(text);
  if (!code) return;
  const now = performance.now();
  const last = lastSeen.get(code);
  lastSeen.set(code, now);
  if (inflight.has(code) || (last !== undefined && now - last < SAME_CODE_QUIET_MS)) return; // still in view
  checkIn({ code }, seenAt);
  if (lastSeen.size > 200) lastSeen.clear();
}

async function scanFrame(decode) {
  if (!stream) return;
  const started = performance.now();
  if (!document.hidden && !decoding && video.readyState >= 2) {
    decoding = true;
    try {
      for (const text of await decode(video)) onCameraCode(text, started);
    } catch (error) {
      console.warn("QR decode failed", error);
    } finally {
      decoding = false;
    }
  }
  if (stream) {
    scanTimer = setTimeout(() => scanFrame(decode), Math.max(0, SCAN_INTERVAL_MS - (performance.now() - started)));
  }
}

async function startCamera() {
  store("door.camera", "on");
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    setCameraStatus(window.isSecureContext ? T.camera_unavailable : T.camera_insecure);
    return;
  }
  setCameraStatus(T.camera_starting);
  cameraToggle.disabled = true;
  try {
    const [decode, media] = await Promise.all([
      decoderReady.catch(() => null),
      navigator.mediaDevices.getUserMedia({
        audio: false,
        video: { facingMode: { ideal: "environment" }, width: { ideal: 640 }, height: { ideal: 480 } },
      }),
    ]);
    if (!decode) {
      media.getTracks().forEach((track) => track.stop());
      setCameraStatus(T.decoder_unavailable);
      return;
    }
    stream = media;
    video.srcObject = stream;
    await video.play().catch(() => {});
    root.dataset.camera = "on";
    cameraToggle.textContent = T.camera_stop;
    cameraToggle.setAttribute("aria-pressed", "true");
    setCameraStatus(T.camera_on);
    scanFrame(decode);
  } catch {
    setCameraStatus(T.camera_unavailable);
  } finally {
    cameraToggle.disabled = false;
    refocus();
  }
}

function stopCamera() {
  store("door.camera", "off");
  clearTimeout(scanTimer);
  if (stream) stream.getTracks().forEach((track) => track.stop());
  stream = null;
  video.srcObject = null;
  root.dataset.camera = "off";
  cameraToggle.textContent = T.camera_start;
  cameraToggle.setAttribute("aria-pressed", "false");
  setCameraStatus(T.camera_off);
}

cameraToggle.addEventListener("click", () => {
  if (stream) stopCamera();
  else startCamera();
  refocus();
});

// --- start -----------------------------------------------------------------------------------------------

refocus();
if (storage("door.camera", "on") === "on") startCamera();
root.dataset.ready = "true";
