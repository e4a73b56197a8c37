// The answer on the whole screen: green (come in), amber (already in), red (not admitted) or dark (no answer about
// the ticket), with the person, the reason and a sound. An answer the page decided itself is marked "offline".
// A tap, a click, Escape or the next scan dismisses it.
import { $, clockTime, el, fmt, T, urls } from "./common.js";
import { groupCode } from "./code.js";
import { refocus } from "./focus.js";
import { beep } from "./sound.js";

const REFUSAL_REASONS = new Set(["cancelled", "waitlisted", "no_ticket", "replaced"]); // each has its own text
const CODE_PROBLEMS = new Set(["too_short", "too_long", "bad_characters"]); // why a text cannot be a ticket code
const SYMBOLS = { ok: "✓", already: "!", refused: "✕", error: "!", pending: "…" };

export const resultBox = $("door-result");

/** Put one answer on the screen; `offline` marks one the page decided itself. */
export function showResult(kind, { headline, detail, name, organization, tag, code, link, action, checkinId,
                                   offline }) {
  const box = el("div", "door-answer");
  box.append(el("p", "door-answer-symbol", SYMBOLS[kind]));
  box.lastChild.setAttribute("aria-hidden", "true");
  if (offline) box.append(el("p", "door-answer-offline", T.offline_mark));
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
    const line = el("p", "door-answer-hint", T.dismiss);
    line.setAttribute("aria-hidden", "true");
    box.append(line);
  }
  resultBox.dataset.kind = kind;
  resultBox.dataset.checkinId = checkinId || "";
  if (offline) resultBox.dataset.offline = "true";
  else delete resultBox.dataset.offline;
  resultBox.replaceChildren(box);
}

export function dismissResult() {
  if (!resultBox.dataset.kind) return;
  resultBox.dataset.kind = "";
  resultBox.dataset.checkinId = "";
  delete resultBox.dataset.offline;
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

function refusedCode(body, scan, offline) {
  // A text that cannot be any ticket's code (typed short, long or wrong) is told apart from a code nobody has.
  const problem = body.problem && CODE_PROBLEMS.has(body.problem.kind) ? body.problem : null;
  if (problem) {
    const values = { length: problem.length, expected: problem.expected_length,
                     characters: (problem.characters || []).map(shownCharacter).join(" ") };
    return { headline: fmt(T[`code_${problem.kind}`], values), detail: T.code_problem_detail,
             code: groupCode(scan.code) };
  }
  return { headline: T.unknown_code, detail: offline ? T.unknown_code_offline_detail : T.unknown_code_detail,
           code: scan.code };
}

/**
 * Show what the API answered (status 0: no connection), or what the page decided itself (offline: the same body
 * shape, made from the local copy), and whether the door may let the person in. `onUndo(checkin)` asks to undo.
 */
export function renderAnswer(status, data, scan, { offline = false, onUndo } = {}) {
  const body = data || {};
  const person = body.attendee || {};
  const who = { name: person.name || scan.name, organization: person.organization,
                tag: person.on_site ? T.on_site : null, offline };
  switch (status === 0 ? "network" : body.result) {
    case "ok":
      showResult("ok", { headline: T.ok, checkinId: body.checkin_id, ...who });
      beep(true);
      return;
    case "already_checked_in": {
      const by = body.by || body.device;
      const detail = fmt(by ? T.already_detail_by : T.already_detail,
                         { time: clockTime(body.checked_in_at), gate: body.gate || "", by: by || "" });
      // The answer names the standing check-in: whoever admitted the person (another door, an earlier shift),
      // this door can take it back, after a confirmation.
      const standing = body.checkin_id ? { id: body.checkin_id, name: who.name, code: scan.code } : null;
      const action = standing && onUndo && { text: T.undo_this, run: () => onUndo(standing) };
      showResult("already", { headline: T.already, detail, action, checkinId: body.checkin_id, ...who });
      break;
    }
    case "unknown_code":
      showResult("refused", { ...refusedCode(body, scan, offline), offline });
      break;
    case "not_admitted": {
      const reason = REFUSAL_REASONS.has(body.reason) ? T[body.reason] : null;
      const detail = reason ? T.not_admitted : offline ? T.not_admitted_offline_detail : null;
      showResult("refused", { headline: reason || T.not_admitted, detail, ...who });
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
      break;
    case "network":
      showResult("error", { headline: T.network, detail: T.network_detail, code: scan.code, ...who });
      break;
    default:
      showResult("error", { headline: T.server_error, detail: T.network_detail, code: scan.code });
  }
  beep(false);
}
