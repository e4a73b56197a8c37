// Ticket codes read as the server reads them (registration/tickets.py), DOM-free so that tests run it under node:
// width folded (NFKC), spaces, hyphens, dashes and dots between groups left out (ー and ・ are what the minus and
// slash keys type under a Japanese input method), lower case, and 0, 1, 8 for O, I, B, which base32 does not have.
// Anything else is left for the server (or, offline, codeProblem) to name.

export const CODE_LENGTH = 26;
/** 26 characters of base32 (A-Z, 2-7): tickets.TICKET_CODE. */
export const TICKET_CODE = /^[A-Z2-7]{26}$/u;
const ALPHABET = /^[A-Z2-7]$/u;
// Whitespace exactly as Python's \s has it (JavaScript's \s also has U+FEFF, and lacks U+001C..U+001F and U+0085).
const SPACE = "\\t-\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const SEPARATORS = new RegExp(`[${SPACE}\\-\\u2010-\\u2015\\u2212\\u30fc\\u30fb.\\u00b7\\u3002]+`, "gu");
const CONFUSIONS = { 0: "O", 1: "I", 8: "B" };
const MAX_REPORTED_CHARACTERS = 10;

/** A code exactly as a scanner types it (trimmed, in upper case): how a scan is told from search text. */
export function scannerCode(raw) {
  return String(raw || "").trim().toUpperCase();
}

/** The characters of a typed code: tickets._clean. */
export function cleanCode(raw) {
  return String(raw || "").normalize("NFKC").replace(SEPARATORS, "")
    .replace(/[a-z018]/g, (char) => CONFUSIONS[char] || char.toUpperCase());
}

/** The code however it was typed, or null if it cannot be one: tickets.normalise_code. */
export function normaliseCode(raw) {
  const code = cleanCode(raw);
  return TICKET_CODE.test(code) ? code : null;
}

/** Why a text cannot be a ticket code ({kind, length, expected_length, characters} as the API says), or null. */
export function codeProblem(raw) {
  const code = cleanCode(raw);
  if (TICKET_CODE.test(code)) return null;
  const chars = Array.from(code);
  const wrong = [...new Set(chars.filter((char) => !ALPHABET.test(char)))];
  let kind = "bad_characters";
  if (!wrong.length) kind = chars.length < CODE_LENGTH ? "too_short" : "too_long";
  return { kind, length: chars.length, expected_length: CODE_LENGTH,
           characters: wrong.slice(0, MAX_REPORTED_CHARACTERS) };
}

/** "2HTJ JPRJ YPJX ...": a code in groups of four, as the ticket prints it. */
export function groupCode(code) {
  return Array.from(code).reduce((text, char, index) => text + (index && index % 4 === 0 ? " " : "") + char, "");
}

// --- the gate's name, as the server keeps it -------------------------------------------------------------

export const DEFAULT_GATE = "door-1";
export const MAX_GATE = 40;
// What Python's str.isprintable() refuses: controls, format characters (U+200B), lone surrogates, private use,
// unassigned, and every separator but the ASCII space (line and paragraph separators, no-break spaces).
const UNPRINTABLE = /(?! )[\p{C}\p{Z}]/gu;

/** The gate as the server stores it: unprintable characters left out, trimmed, at most 40 characters (code points,
 * so that an emoji is never cut in half), "door-1" when nothing is left. */
export function cleanGate(raw) {
  const kept = String(raw ?? "").replace(UNPRINTABLE, "").trim();
  return Array.from(kept).slice(0, MAX_GATE).join("").trim() || DEFAULT_GATE;
}
