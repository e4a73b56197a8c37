"""Checks on free text that people type or organisers import: one line, no tricks, something visible."""

import unicodedata

#: Direction overrides and isolates can make a text display as something else.
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def is_single_line(text: str) -> bool:
    """No control characters, line or paragraph separators, or bidi controls; any script and emoji are fine."""
    return not any(unicodedata.category(char) in ("Cc", "Zl", "Zp", "Cs", "Co", "Cn") or char in BIDI_CONTROLS
                   for char in text)


#: Letters and symbols by category that fonts draw as nothing: the Hangul fillers (U+115F, U+1160, U+3164 and
#: half-width U+FFA0) are letters made to pad incomplete syllables, U+2800 is the empty Braille cell, U+1D159 the
#: null notehead; each is a known way to make a "name" that looks blank but passes a letters-only check.
BLANK_GLYPHS = frozenset("\u115f\u1160\u3164\uffa0\u2800\U0001d159")


def has_visible_character(text: str) -> bool:
    """Whether at least one character draws something: a letter, digit, punctuation or symbol that is not blank."""
    # Only letters (L*), numbers (N*), punctuation (P*) and symbols (S*) count. That leaves out whitespace and
    # separators (Zs, Zl, Zp), format characters (Cf: zero-width spaces and joiners U+200B..U+200D, U+2060,
    # U+FEFF, the soft hyphen U+00AD, bidi and tag characters), controls (Cc), private-use (Co), unassigned
    # (Cn) and surrogate (Cs) code points, and marks (M*): a combining mark or variation selector alone has
    # nothing to sit on, so it draws nothing or a dotted circle.
    return any(unicodedata.category(char)[0] in "LNPS" and char not in BLANK_GLYPHS for char in text)


# Hiragana U+3041..U+3096 and the iteration marks sit exactly 0x60 below their katakana.
_HIRAGANA_TO_KATAKANA = {code: code + 0x60 for code in [*range(0x3041, 0x3097), 0x309D, 0x309E]}


def to_katakana(text: str) -> str:
    """Kana in one script: NFKC (half-width ﾔﾏﾀﾞ becomes ヤマダ), then hiragana to katakana."""
    return unicodedata.normalize("NFKC", text).translate(_HIRAGANA_TO_KATAKANA)


def fold_for_search(text: str) -> str:
    """Text as search compares it: width, case and kana script ignored (ヤマダ = やまだ = ﾔﾏﾀﾞ, ｓｍｉｔｈ = Smith)."""
    return to_katakana(text).casefold()
