"""Ticket codes and their QR codes. Pure functions: no database."""

import base64
import io
import re
import secrets
import string
import unicodedata
from dataclasses import dataclass

import qrcode
from qrcode.constants import ERROR_CORRECT_M

#: How many characters a ticket code has.
CODE_LENGTH = 26
#: The characters of a ticket code: base32 (RFC 4648), which has no 0, 1, 8 or 9.
CODE_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
#: 26 characters of base32 (A-Z, 2-7): QR alphanumeric mode, version 2 at error correction M.
TICKET_CODE = re.compile(rf"[A-Z2-7]{{{CODE_LENGTH}}}")

# What may stand between the groups of a typed code (after NFKC, which has already made full-width and no-break
# spaces, full-width hyphens and dots ASCII): spaces of every kind, hyphens and dashes (U+2010-2015, the minus sign),
# dots, the middle dot and the ideographic full stop. ー (the katakana long vowel mark) is what the minus key types
# while a Japanese input method is on; ・ is what it types for the slash. No code has a katakana character, so each
# can only have been meant as a separator.
_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015\u2212\u30fc\u30fb.\u00b7\u3002]+")
# Lower case, and the digits base32 leaves out for the letters they are read for: 0 for O, 1 for I, 8 for B. There
# is no safe reading of 9 (g? q?), so a 9 is left to say the code is wrong. ASCII only: "ß".upper() is "SS".
_FOLD = str.maketrans(string.ascii_lowercase + "018", string.ascii_uppercase + "OIB")
#: At most this many different wrong characters are named in a CodeProblem.
MAX_REPORTED_CHARACTERS = 10


def new_ticket_code() -> str:
    """A ticket code: 128 random bits, derived from nothing, carrying no personal data."""
    return base64.b32encode(secrets.token_bytes(16)).decode("ascii").rstrip("=")


def _clean(raw: str) -> str:
    """The characters of a typed code: width folded (NFKC), separators left out, letters in upper case, 0/1/8 read."""
    # NFKC: a scanner typing through a Japanese input method sends full-width letters and digits.
    return _SEPARATORS.sub("", unicodedata.normalize("NFKC", raw)).translate(_FOLD)


def normalise_code(raw: str) -> str | None:
    """The code however it was scanned or typed, or None if it cannot be one.

    Forgiven: width, case, spaces of any kind anywhere (a scanner's trailing tab or line break too), hyphens, dashes
    and dots between groups (`2htj-jprj ypjx ...`), and 0, 1, 8 typed for O, I, B. Nothing else: a character
    missing, extra or wrong is never guessed at.
    """
    if TICKET_CODE.fullmatch(raw):
        return raw  # a scan, exactly as the QR code holds it: the common case, kept as cheap as a match
    code = _clean(raw)
    return code if TICKET_CODE.fullmatch(code) else None


@dataclass(frozen=True)
class CodeProblem:
    """Why a text is not a ticket code, counted as normalise_code reads it (separators left out)."""

    #: "too_short", "too_long" or "bad_characters".
    kind: str
    #: How many characters the text has once separators are left out.
    length: int
    #: For bad_characters: the characters no code has, each once, in the order they come (at most
    #: MAX_REPORTED_CHARACTERS), after NFKC and upper-casing; empty otherwise.
    characters: tuple[str, ...] = ()

    def as_json(self) -> dict:
        """The problem as the API states it."""
        return {"kind": self.kind, "length": self.length, "expected_length": CODE_LENGTH,
                "characters": list(self.characters)}


def code_problem(raw: str) -> CodeProblem | None:
    """Why `raw` cannot be a ticket code, or None if it can (normalise_code gives the code).

    Characters no code has come first: with one of them, the count says nothing useful.
    """
    if normalise_code(raw) is not None:
        return None
    code = _clean(raw)
    wrong = tuple(dict.fromkeys(char for char in code if char not in CODE_ALPHABET))
    if wrong:
        return CodeProblem("bad_characters", len(code), wrong[:MAX_REPORTED_CHARACTERS])
    return CodeProblem("too_short" if len(code) < CODE_LENGTH else "too_long", len(code))


def qr_code(code: str) -> qrcode.QRCode:
    """The QR code of a ticket: exactly the code, error correction M, the smallest version that holds it."""
    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=10, border=4)
    qr.add_data(code)
    qr.make(fit=True)
    return qr


def qr_png(code: str, *, box_size: int = 10) -> bytes:
    """The ticket's QR code as PNG bytes."""
    qr = qr_code(code)
    qr.box_size = box_size
    buffer = io.BytesIO()
    qr.make_image(fill_color="black", back_color="white").save(buffer, format="PNG")
    return buffer.getvalue()
