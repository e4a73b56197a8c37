// Manual search, for people without their code: the server's search while it answers (everyone registered, with
// why they may not enter), else the local copy (seat holders, matched with the same kana- and width-folding).
// A keyboard-wedge scanner that fires while the search box has the focus still checks the ticket in.
import { api, answered, NetworkError } from "./api.js";
import { scannerCode, TICKET_CODE } from "./code.js";
import { $, clockTime, el, fmt, onCheckinsChanged, T, urls } from "./common.js";
import { connection, setOnline } from "./connection.js";
import { canDecide, searchCopy } from "./dataset.js";
import { codeInput } from "./focus.js";
import { showNotice } from "./status.js";

const SEARCH_TIMEOUT_MS = 3000;
const SCANNER_MS_PER_CHAR = 40;
const REASON_STATUS = { cancelled: "cancelled", waitlisted: "waitlisted", no_ticket: "none" };

const searchForm = $("door-search-form");
export const searchInput = $("door-search-input");
const results = $("door-results");
const searchStatus = $("door-search-status");
let searchSeq = 0;
let searchTimer = null;
let checkIn = () => {}; // set by main: the check-in flow, for the buttons and for codes scanned into the box

export function setCheckIn(flow) {
  checkIn = flow;
}

/** [badge kind, label]: whether the person may enter (reason: why not) and is inside. */
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

function showFound(people, offline) {
  renderPeople(people);
  results.dataset.offline = offline ? "true" : "false";
  if (!people.length) searchStatus.textContent = offline ? T.search_none_offline : T.search_none;
  else searchStatus.textContent = fmt(offline ? T.search_count_offline : T.search_count, { count: people.length });
}

/** Ask the server, or (no server, or no answer) look in the local copy. */
export async function runSearch() {
  const query = searchInput.value.trim();
  const seq = ++searchSeq;
  if (query.length < 2) {
    results.replaceChildren();
    searchStatus.textContent = query ? T.search_short : "";
    return;
  }
  if (!connection.online && canDecide()) {
    showFound(searchCopy(query), true);
    return;
  }
  try {
    const answer = await api("GET", `${urls.search}?q=${encodeURIComponent(query)}`, undefined,
                             { timeout: SEARCH_TIMEOUT_MS });
    if (seq !== searchSeq) return; // a newer search is on its way
    if (answer.status === 401) {
      showNotice("unauthorized");
      return;
    }
    if (answered(answer) || !canDecide()) {
      showFound((answer.status === 200 && answer.data && answer.data.results) || [], false);
      return;
    }
    setOnline(false);
  } catch (error) {
    if (!(error instanceof NetworkError)) throw error;
    if (seq !== searchSeq) return;
    setOnline(false);
    if (!canDecide()) {
      searchStatus.textContent = T.network;
      return;
    }
  }
  showFound(searchCopy(query), true);
}

const searchKeys = []; // when the last characters came into the search box: a scanner types far faster than people

/** A ticket code a scanner typed at the end of the search box (maybe after someone's search text), or null. */
function scannedIntoSearch() {
  const value = searchInput.value.trim();
  for (let length = Math.min(value.length, 64); length > 0; length--) {
    const code = scannerCode(value.slice(-length));
    if (!TICKET_CODE.test(code)) continue;
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

// After an admission or an undo the list shows who is inside now.
onCheckinsChanged(() => {
  if (searchInput.value.trim()) runSearch();
});
