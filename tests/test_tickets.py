"""Ticket codes read however they are typed or scanned, and told apart when they cannot be codes (pure: no database)."""

import string
import unicodedata

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from registration import tickets
from registration.tickets import (CODE_ALPHABET, CODE_LENGTH, TICKET_CODE, CodeProblem, code_problem,
                                  new_ticket_code, normalise_code)

BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
CODES = st.text(st.sampled_from(BASE32), min_size=CODE_LENGTH, max_size=CODE_LENGTH)
SEPARATORS = [" ", "  ", "-", "\u00a0", "\u3000", "\u2010", "\u2011", "\u2013", "\u2014", "\u2212", "ー", "ｰ", "－",
              ".", "．", "・", "。", "\t", "\u2009"]
#: How each character of a code may be typed: itself, in lower case, in full width, and 0/1/8 for O/I/B.
CONFUSED = {"O": "0", "I": "1", "B": "8"}


def variants(char: str) -> set[str]:
    """Every way one character of a code may be typed and still be read as itself."""
    forms = {char, char.lower(), chr(ord(char) + 0xFEE0), chr(ord(char.lower()) + 0xFEE0)}
    if char in CONFUSED:
        forms |= {CONFUSED[char], chr(ord(CONFUSED[char]) + 0xFEE0)}
    return forms


@st.composite
def typed(draw, code: str) -> str:
    """`code` as a person might type it: each character in one of its forms, separators anywhere, and a scanner's
    line ending after it."""
    parts = [draw(st.sampled_from(SEPARATORS)) if draw(st.booleans()) else ""]
    for char in code:
        parts.append(draw(st.sampled_from(sorted(variants(char)))))
        if draw(st.integers(0, 3)) == 0:
            parts.append(draw(st.sampled_from(SEPARATORS)))
    parts.append(draw(st.sampled_from(["", "\t", "\r\n", "\n", " "])))
    return "".join(parts)


def test_a_new_code_is_a_code():
    for _ in range(100):
        code = new_ticket_code()
        assert normalise_code(code) == code and code_problem(code) is None


def test_an_exact_scan_takes_the_fast_path(monkeypatch):
    # Every scan at the door calls normalise_code: a code exactly as the QR code holds it costs one match.
    code = new_ticket_code()
    monkeypatch.setattr(tickets, "_clean", lambda raw: pytest.fail("the slow path ran"))
    assert normalise_code(code) is code


@pytest.mark.parametrize("raw", [
    "2htj jprj ypjx q7ab cdef ghkl mn",
    "2HTJ-JPRJ-YPJX-Q7AB-CDEF-GHKL-MN",
    "2HTJ.JPRJ.YPJX.Q7AB.CDEF.GHKL.MN",
    "２ＨＴＪ　ＪＰＲＪ　ＹＰＪＸ　Ｑ７ＡＢ　ＣＤＥＦ　ＧＨＫＬ　ＭＮ",
    "2HTJーJPRJーYPJXーQ7ABーCDEFーGHKLーMN",
    "2HTJ\u2013JPRJ\u2014YPJX\u2212Q7AB\u2010CDEF\u00a0GHKL\u3000MN",
    "2HTJ・JPRJ。YPJX·Q7AB－CDEF\u2009GHKL  MN",
    "2HTJJPRJYPJXQ7A8CDEFGHKLMN\t",
    " 2HTJJPRJYPJXQ7ABCDEFGHKLMN\r\n",
])
def test_typed_forms_of_one_code(raw):
    assert normalise_code(raw) == "2HTJJPRJYPJXQ7ABCDEFGHKLMN"


def test_confusions_are_read_as_the_letters_base32_has():
    assert normalise_code("0" * 26) == "O" * 26
    assert normalise_code("1" * 26) == "I" * 26
    assert normalise_code("8" * 26) == "B" * 26
    assert normalise_code("oil" + "A" * 23) == "OIL" + "A" * 23  # lower-case o, i and l are the letters themselves


@pytest.mark.parametrize(("raw", "problem"), [
    ("", CodeProblem("too_short", 0)),
    ("  - . ", CodeProblem("too_short", 0)),
    ("2HTJ JPRJ YPJX Q7AB CDEF G", CodeProblem("too_short", 21)),
    ("A" * 25, CodeProblem("too_short", 25)),
    ("A" * 27, CodeProblem("too_long", 27)),
    ("AAAA-" * 13, CodeProblem("too_long", 52)),  # two codes scanned one after the other
    ("A" * 25 + "9", CodeProblem("bad_characters", 26, ("9",))),
    ("A" * 20 + "9!?9", CodeProblem("bad_characters", 24, ("9", "!", "?"))),
    ("ＡＡ！" + "A" * 23, CodeProblem("bad_characters", 26, ("!",))),  # named as NFKC reads it
    ("A" * 25 + "ß", CodeProblem("bad_characters", 26, ("ß",))),  # not "SS": only ASCII letters change case
    ("やまだ", CodeProblem("bad_characters", 3, ("や", "ま", "だ"))),
    ("".join(chr(0x3041 + n) for n in range(30)), CodeProblem("bad_characters", 30,
                                                              tuple(chr(0x3041 + n) for n in range(10)))),
])
def test_why_a_text_is_not_a_code(raw, problem):
    assert normalise_code(raw) is None
    assert code_problem(raw) == problem
    assert problem.as_json() == {"kind": problem.kind, "length": problem.length, "expected_length": CODE_LENGTH,
                                 "characters": list(problem.characters)}


@given(CODES.flatmap(lambda code: st.tuples(st.just(code), typed(code))))
@example(("A" * 26, "a" * 26))
def test_every_code_typed_in_any_of_its_forms_reads_back(case):
    code, raw = case
    assert normalise_code(raw) == code
    assert code_problem(raw) is None


def reads_as(char: str, letter: str) -> bool:
    """Whether a typed character is one of `letter`'s forms: its compatibility form (NFKC: full width, a circled or
    mathematical letter) is the letter in either case, or the digit base32 leaves out for it."""
    plain = unicodedata.normalize("NFKC", char)
    return plain in (letter, letter.lower()) or plain == CONFUSED.get(letter)


@given(CODES, st.integers(0, CODE_LENGTH - 1), st.characters())
@example("A" * 26, 0, "9")
@example("A" * 26, 0, "Ⓐ")
@example("A" * 26, 0, "　")
@example("A" * 26, 0, "㎆")  # NFKC: "MB"
def test_one_character_changed_never_reads_as_the_code(code, position, char):
    raw = code[:position] + char + code[position + 1:]
    read = normalise_code(raw)
    if reads_as(char, code[position]):
        assert read == code
    else:
        # Another character of base32 (or one of its forms) is another code; anything else is no code at all.
        assert read != code
        assert read is None or (read[:position] + read[position + 1:] == code[:position] + code[position + 1:])
        assert (read is None) == (code_problem(raw) is not None)


@given(CODES, st.integers(0, CODE_LENGTH - 1))
def test_a_character_missing_or_extra_is_never_guessed(code, position):
    assert code_problem(code[:position] + code[position + 1:]) == CodeProblem("too_short", CODE_LENGTH - 1)
    assert code_problem(code[:position] + "A" + code[position:]) == CodeProblem("too_long", CODE_LENGTH + 1)


@given(st.text(max_size=300))
@example("\ud800" * 26)  # a lone surrogate, as JSON may carry one
@example("ﷺ" * 26)  # NFKC makes one character 18
@example("Ⅸ" * 13)  # ... and a Roman numeral two letters
def test_any_text_is_read_without_error_as_a_code_or_a_problem(raw):
    read = normalise_code(raw)
    problem = code_problem(raw)
    assert (read is None) != (problem is None)
    if read is not None:
        assert TICKET_CODE.fullmatch(read)
        return
    assert problem.kind in {"too_short", "too_long", "bad_characters"} and problem.length >= 0
    assert len(problem.characters) <= tickets.MAX_REPORTED_CHARACTERS
    assert len(set(problem.characters)) == len(problem.characters)
    if problem.kind == "bad_characters":
        assert problem.characters and not set(problem.characters) & CODE_ALPHABET
    else:
        assert not problem.characters and problem.length != CODE_LENGTH
        assert (problem.kind == "too_short") == (problem.length < CODE_LENGTH)


@given(st.text(string.ascii_letters + "234567", min_size=CODE_LENGTH, max_size=CODE_LENGTH))
def test_only_case_changes_in_a_code_of_ascii_letters_and_digits(raw):
    assert normalise_code(raw) == raw.upper()
