"""Ticket codes and their QR codes. Pure functions: no database."""

import base64
import io
import re
import secrets
import unicodedata

import qrcode
from qrcode.constants import ERROR_CORRECT_M

#: 26 characters of base32 (A-Z, 2-7): QR alphanumeric mode, version 2 at error correction M.
TICKET_CODE = re.compile(r"[A-Z2-7]{26}")


def new_ticket_code() -> str:
    """A ticket code: 128 random bits, derived from nothing, carrying no personal data."""
    return base64.b32encode(secrets.token_bytes(16)).decode("ascii").rstrip("=")


def normalise_code(raw: str) -> str | None:
    """The code as typed or scanned (case, width and surrounding spaces forgiven), or None if it cannot be one."""
    # NFKC: a scanner typing through a Japanese input method sends full-width letters and digits.
    code = unicodedata.normalize("NFKC", raw).strip().upper()
    return code if TICKET_CODE.fullmatch(code) else None


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
