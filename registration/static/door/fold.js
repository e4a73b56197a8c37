// Search text folded as the server folds it (registration/text.py fold_for_search): width and compatibility forms
// (NFKC: ﾔﾏﾀﾞ is ヤマダ, ｓｍｉｔｈ is smith), hiragana as katakana, and case. DOM-free: tests run it under node.
//
// Case: Python's casefold() is lower case plus the few full foldings a European name can meet (ß and ẞ are "ss",
// the final sigma ς is σ), which are done here. Left out on purpose (tests/test_door_modules.py lists them):
// Cherokee, the Greek letters with iota subscript and a few precomposed letters that casefold decomposes, and
// characters newer than the server's Unicode version. A search for one of them may find less offline.

// Hiragana U+3041..U+3096 and the iteration marks sit exactly 0x60 below their katakana.
const HIRAGANA = /[\u3041-\u3096\u309d\u309e]/gu;
const FULL_FOLDS = /[ßς]/gu;
const FOLDED = { "ß": "ss", "ς": "σ" };

const toKatakana = (char) => String.fromCharCode(char.charCodeAt(0) + 0x60);

/** Text as search compares it: ヤマダ = やまだ = ﾔﾏﾀﾞ, ｓｍｉｔｈ = Smith. */
export function foldForSearch(text) {
  return String(text ?? "").normalize("NFKC").replace(HIRAGANA, toKatakana).toLowerCase()
    .replace(FULL_FOLDS, (char) => FOLDED[char]);
}

/**
 * What offline search matches a person of the local copy against, folded: the name in both orders (as the
 * server's search key has it: "山田 太郎" and "太郎 山田"), kana and organisation. The copy has no e-mail addresses.
 */
export function searchKey({ name, kana, organization }) {
  const parts = String(name || "").split(/\s+/u);
  const reversed = parts.length > 1 ? parts.slice().reverse().join(" ") : "";
  return foldForSearch([name, reversed, kana, organization].join("\n"));
}
