"""Checks on free text that people type or organisers import: one line, no tricks, something visible."""

import unicodedata

#: Direction overrides and isolates can make a text display as something else.
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def is_single_line(text: str) -> bool:
    """No control characters, line or paragraph separators, or bidi controls; any script and emoji are fine."""
    return not any(unicodedata.category(char) in ("Cc", "Zl", "Zp", "Cs", "Co", "Cn") or char in BIDI_CONTROLS
                   for char in text)


def is_visible(text: str) -> bool:
    """Whether the text shows something: not only spaces or invisible characters."""
    return any(unicodedata.category(char)[0] in "LNPS" and char != "\u3164" for char in text)


# Hiragana U+3041..U+3096 and the iteration marks sit exactly 0x60 below their katakana.
_HIRAGANA_TO_KATAKANA = {code: code + 0x60 for code in [*range(0x3041, 0x3097), 0x309D, 0x309E]}


def to_katakana(text: str) -> str:
    """Kana in one script: NFKC (half-width ﾔﾏﾀﾞ becomes ヤマダ), then hiragana to katakana."""
    return unicodedata.normalize("NFKC", text).translate(_HIRAGANA_TO_KATAKANA)


def fold_for_search(text: str) -> str:
    """Text as search compares it: width, case and kana script ignored (ヤマダ = やまだ = ﾔﾏﾀﾞ, ｓｍｉｔｈ = Smith)."""
    return to_katakana(text).casefold()
