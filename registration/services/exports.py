"""The organisers' exports: each one a generator of plain database rows, and the CSV encoder that streams them.

Rows come from Core statements run with `yield_per` (a server-side cursor on PostgreSQL, SQLite's own stepping), so
an export holds a thousand rows at a time, never every registrant nor an ORM object per row.
"""

import codecs
import csv
import io
import json
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from sqlalchemy import and_, distinct, func, literal, or_, select, union_all

from registration import formatting
from registration.extensions import db
from registration.models import (CheckIn, DeviceToken, ProgramSession, Registrant, Scan, SessionView, Staff,
                                 ViewingSignup)
from registration.services import viewing
from registration.services.registrations import code_hint

#: What `?encoding=` accepts, by the name the export is then written in. UTF-8 (with a BOM) is the default.
ENCODINGS = {"utf-8": "utf-8", "utf8": "utf-8", "cp932": "cp932", "shift_jis": "cp932", "sjis": "cp932",
             "windows-31j": "cp932"}
#: Content-Type charset per encoding written.
CHARSETS = {"utf-8": "utf-8", "cp932": "shift_jis"}
#: What stands for a character Shift_JIS cannot hold, when the organiser asked for it (the "geta" mark).
GETA = "\u3013"
#: How many problems a check lists; the rest are only counted.
PROBLEM_LIMIT = 200
#: Rows fetched from the database at a time.
BATCH = 1000
#: Characters of CSV text gathered before a chunk is sent.
CHUNK_CHARS = 32 * 1024

# The same characters as JIS X 0208 and Microsoft's code page 932 map them to different code points: text typed on a
# Mac or taken from a web page holds the JIS ones (〜 WAVE DASH), Windows holds cp932's (～ FULLWIDTH TILDE). They
# are the same character to a reader, so they are written as cp932's, never reported nor replaced.
_JIS_TO_CP932 = str.maketrans({
    "\u301c": "\uff5e",  # 〜 → ～
    "\u2016": "\u2225",  # ‖ → ∥
    "\u2212": "\uff0d",  # − → －
    "\u00a2": "\uffe0",  # ¢ → ￠
    "\u00a3": "\uffe1",  # £ → ￡
    "\u00ac": "\uffe2",  # ¬ → ￢
    "\u2014": "\u2015",  # — → ―
})


def _geta(error: UnicodeEncodeError) -> tuple[str, int]:
    return GETA * (error.end - error.start), error.end


codecs.register_error("codt-geta", _geta)

#: A row of an export: the registrant it is about (None when unknown) and its cells.
ExportRow = tuple[int | None, list]


@dataclass(frozen=True)
class Export:
    """One CSV the organisers can download."""

    key: str
    endpoint: str
    filename: str
    header: tuple[str, ...]
    rows: Callable[[], Iterator[ExportRow]] = field(repr=False)


# --- the rows --------------------------------------------------------------------------------------------

_registrants, _checkins, _scans = Registrant.__table__, CheckIn.__table__, Scan.__table__
_signups, _views, _sessions = ViewingSignup.__table__, SessionView.__table__, ProgramSession.__table__
_staff, _devices = Staff.__table__, DeviceToken.__table__
_PERSON = (_registrants.c.family_name, _registrants.c.given_name, _registrants.c.email, _registrants.c.organization,
           _registrants.c.anonymised_at)


def _stream(statement) -> Iterator:
    """The statement's rows, a batch at a time; the cursor is closed when the caller stops early too."""
    if db.session.get_bind().dialect.name == "postgresql":
        # An export's estimated cost is high only because of its per-row index lookups, which makes PostgreSQL
        # compile the plan (JIT) first: half a second before the first row, for nothing. For this transaction only.
        db.session.execute(select(func.set_config("jit", "off", True)))
    result = db.session.execute(statement, execution_options={"yield_per": BATCH})
    try:
        yield from result
    finally:
        result.close()


def _when(moment) -> str:
    return formatting.iso_tokyo(moment) if moment else ""


def _email(row) -> str:
    # An erased registration keeps a placeholder address only to stay unique; it is nobody's to write to.
    return "" if row.anonymised_at is not None else row.email


def registrant_rows() -> Iterator[ExportRow]:
    """One row per registration, cancelled and erased ones included, with its admission and viewing counts."""
    admission = _checkins.alias("admission")
    signed_up = (select(func.count()).select_from(_signups)
                 .where(_signups.c.registrant_id == _registrants.c.id, _signups.c.withdrawn_at.is_(None))
                 .scalar_subquery())
    watched = (select(func.count(distinct(_views.c.session_id))).select_from(_views)
               .where(_views.c.registrant_id == _registrants.c.id).scalar_subquery())
    r = _registrants.c
    statement = (
        select(r.id, r.registered_at, r.cancelled_at, r.anonymised_at, r.family_name, r.given_name,
               r.family_name_kana, r.given_name_kana, r.email, r.organization, r.job_title, r.locale, r.seat_status,
               r.seat_confirmed_at, r.on_site, admission.c.at.label("checked_in_at"), admission.c.gate,
               signed_up.label("signed_up"), watched.label("watched"))
        # At most one standing admission per person (uq_checkins_active_registrant): the join adds no rows.
        .select_from(_registrants.outerjoin(admission, and_(admission.c.registrant_id == r.id,
                                                            admission.c.undone_at.is_(None))))
        .order_by(r.registered_at, r.id))
    for row in _stream(statement):
        yield row.id, [row.id, _when(row.registered_at), _when(row.cancelled_at), _when(row.anonymised_at),
                       row.family_name, row.given_name, row.family_name_kana, row.given_name_kana, _email(row),
                       row.organization, row.job_title, row.locale, row.seat_status, _when(row.seat_confirmed_at),
                       "yes" if row.on_site else "", _when(row.checked_in_at), row.gate or "", row.signed_up,
                       row.watched]


def checkin_rows() -> Iterator[ExportRow]:
    """Every admission at the door in time order, undone ones included, with who made and who undid it, and when the
    server received it (later than the admission for a scan queued while the door was offline)."""
    by, device, undoer = _staff.alias("by_staff"), _devices.alias("by_device"), _staff.alias("undone_by")
    c = _checkins.c
    statement = (
        select(c.id, c.at, c.gate, by.c.name.label("staff"), device.c.name.label("device"), c.undone_at,
               undoer.c.name.label("undone_by"), c.registrant_id, *_PERSON, c.received_at)
        .select_from(_checkins.join(_registrants, _registrants.c.id == c.registrant_id)
                     .outerjoin(by, by.c.id == c.staff_id).outerjoin(device, device.c.id == c.device_id)
                     .outerjoin(undoer, undoer.c.id == c.undone_by_id))
        .order_by(c.at, c.id))
    for row in _stream(statement):
        yield row.registrant_id, [row.id, _when(row.at), row.gate, row.staff or "", row.device or "",
                                  _when(row.undone_at), row.undone_by or "", row.registrant_id, row.family_name,
                                  row.given_name, _email(row), row.organization, _when(row.received_at)]


def refused_scan_rows() -> Iterator[ExportRow]:
    """Every scan the door did not admit (unknown code, turned away, already in), in time order (the door's scan
    time), with when the server received it, what the door decided offline and the conflict that made, if any."""
    by, device = _staff.alias("by_staff"), _devices.alias("by_device")
    s = _scans.c
    statement = (
        select(s.id, s.at, s.gate, by.c.name.label("staff"), device.c.name.label("device"), s.result, s.reason,
               s.code, s.response, s.registrant_id, *_PERSON, s.received_at, s.offline_result, s.conflict,
               s.conflict_resolved_at)
        .select_from(_scans.outerjoin(_registrants, _registrants.c.id == s.registrant_id)
                     .outerjoin(by, by.c.id == s.staff_id).outerjoin(device, device.c.id == s.device_id))
        # A scan the server admitted but the door had turned away offline (its check-in then taken back) is here too.
        .where(or_(s.result != "ok", s.conflict.is_not(None)))
        .order_by(s.at, s.id))
    for row in _stream(statement):
        person = [row.family_name or "", row.given_name or "", _email(row) if row.email else "",
                  row.organization or ""]
        yield row.registrant_id, [row.id, _when(row.at), row.gate, row.staff or "", row.device or "", row.result,
                                  row.reason or "", _problem(row), _scanned(row), row.registrant_id or "", *person,
                                  _when(row.received_at), row.offline_result or "", row.conflict or "",
                                  _when(row.conflict_resolved_at)]


def _scanned(row) -> str:
    """What was scanned, by its first four characters only ("#<id>" from the manual button whole): a known code
    admits again after an undo, and an unknown text may hold a valid code (twice over, in a URL, one character off),
    so the console never shows more of a scan than the door's own hint."""
    if not row.code or row.code.startswith("#") or len(row.code) <= 4:
        return row.code or ""
    return code_hint(row.code)


def _problem(row) -> str:
    """Why a scanned text could not be a ticket code (too_short, bad_characters...), as the door was told."""
    if row.result != "unknown_code" or not row.response:
        return ""
    try:
        problem = json.loads(row.response).get("problem") or {}
    except (ValueError, AttributeError):
        return ""
    return str(problem.get("kind", "")) if isinstance(problem, dict) else ""


def signup_rows() -> Iterator[ExportRow]:
    """Every sign-up for a session in time order, with its withdrawal if it was withdrawn."""
    v = _signups.c
    statement = (
        select(v.id, v.signed_up_at, v.withdrawn_at, v.registrant_id, *_PERSON, _sessions.c.key, _sessions.c.title)
        .select_from(_signups.join(_registrants, _registrants.c.id == v.registrant_id)
                     .join(_sessions, _sessions.c.id == v.session_id))
        .order_by(v.signed_up_at, v.id))
    for row in _stream(statement):
        yield row.registrant_id, [_when(row.signed_up_at), _when(row.withdrawn_at), row.registrant_id,
                                  row.family_name, row.given_name, _email(row), row.organization, row.key, row.title]


def view_rows() -> Iterator[ExportRow]:
    """Every counted view (one per person, session and quarter of an hour) in time order."""
    v = _views.c
    statement = (
        select(v.id, v.at, v.window, v.registrant_id, *_PERSON, _sessions.c.key, _sessions.c.title)
        .select_from(_views.join(_registrants, _registrants.c.id == v.registrant_id)
                     .join(_sessions, _sessions.c.id == v.session_id))
        .order_by(v.at, v.id))
    for row in _stream(statement):
        yield row.registrant_id, [_when(row.at), row.window, row.registrant_id, row.family_name, row.given_name,
                                  _email(row), row.organization, row.key, row.title]


def record_rows() -> Iterator[ExportRow]:
    """Sign-ups, withdrawals and views together, in time order (the viewing history)."""
    v, w = _signups.c, _views.c
    history = union_all(
        select(v.signed_up_at.label("at"), literal("signup").label("kind"), v.registrant_id, v.session_id,
               literal("").label("window"), v.id.label("row_id")),
        select(v.withdrawn_at, literal("withdrawal"), v.registrant_id, v.session_id, literal(""), v.id)
        .where(v.withdrawn_at.is_not(None)),
        select(w.at, literal("view"), w.registrant_id, w.session_id, w.window, w.id),
    ).subquery("history")
    statement = (
        select(history.c.at, history.c.kind, history.c.registrant_id, history.c.window, *_PERSON,
               _sessions.c.key, _sessions.c.title)
        .select_from(history.join(_registrants, _registrants.c.id == history.c.registrant_id)
                     .join(_sessions, _sessions.c.id == history.c.session_id))
        .order_by(history.c.at, history.c.kind, history.c.row_id))
    for row in _stream(statement):
        name = f"{row.family_name} {row.given_name}".strip()
        yield row.registrant_id, [_when(row.at), row.kind, _email(row), name, row.organization, row.key, row.title,
                                  row.window or "", row.registrant_id]


def attendance_rows() -> Iterator[ExportRow]:
    """The attendance figures per session (a few hundred rows at most: the program's size, not the audience's)."""
    categories, _total = viewing.attendance()
    for entry in categories:
        for row in entry.sessions:
            session, figures = row.session, row.attendance
            yield None, [entry.category.key, entry.category.name_ja, entry.category.name_en, session.key,
                         session.title, session.speaker_organization, session.language,
                         "withdrawn" if session.is_withdrawn else "", figures.signups, figures.watchers,
                         figures.views, figures.watched_without_signup]


_PERSON_HEADER = ("registrant_id", "family_name", "given_name", "email", "organization")

EXPORTS: dict[str, Export] = {export.key: export for export in (
    Export("registrants", "staff.registrants_csv", "codt2023-registrants.csv", (
        "registrant_id", "registered_at_jst", "cancelled_at_jst", "erased_at_jst", "family_name", "given_name",
        "family_name_kana", "given_name_kana", "email", "organization", "job_title", "language", "closing_event",
        "seat_confirmed_at_jst", "on_site", "checked_in_at_jst", "gate", "sessions_signed_up", "sessions_watched"),
        registrant_rows),
    Export("checkins", "staff.checkins_csv", "codt2023-checkins.csv", (
        "checkin_id", "checked_in_at_jst", "gate", "staff", "device", "undone_at_jst", "undone_by",
        *_PERSON_HEADER, "received_at_jst"), checkin_rows),
    Export("refused_scans", "staff.refused_scans_csv", "codt2023-refused-scans.csv", (
        "scan_id", "scanned_at_jst", "gate", "staff", "device", "result", "reason", "code_problem", "scanned",
        *_PERSON_HEADER, "received_at_jst", "offline_result", "conflict", "conflict_dealt_with_at_jst"),
        refused_scan_rows),
    Export("signups", "staff.signups_csv", "codt2023-signups.csv", (
        "signed_up_at_jst", "withdrawn_at_jst", *_PERSON_HEADER, "session", "title"), signup_rows),
    Export("views", "staff.views_csv", "codt2023-views.csv", (
        "viewed_at_jst", "window", *_PERSON_HEADER, "session", "title"), view_rows),
    Export("records", "staff.attendance_records_csv", "codt2023-viewing-records.csv", (
        "at_jst", "record", "email", "name", "organization", "session", "title", "window", "registrant_id"),
        record_rows),
    Export("attendance", "staff.attendance_csv", "codt2023-attendance.csv", (
        "category", "category_ja", "category_en", "session", "title", "speaker_organization", "language", "status",
        "signups", "watchers", "views", "watched_without_signup"), attendance_rows),
)}


# --- the encoder ----------------------------------------------------------------------------------------

#: What starts a formula in a spreadsheet: = + - @, tab and CR; compared after NFKC, which folds the full-width and
#: small forms (＝ ﹦ ＋ ﹢ － ﹣ ＠) that Excel in Japan reads alike.
FORMULA_STARTS = frozenset("=+-@\t\r")
#: The minus sign (U+2212, what a Mac's Japanese input types) is no hyphen to NFKC, but cp932 writes it as －.
_MINUS_SIGN = "\u2212"


def defuse(value):
    """A cell a spreadsheet would run as a formula (a leading = + - @ in any width, the minus sign, tab or CR) gets a '
    in front."""
    if isinstance(value, str) and value and (
            unicodedata.normalize("NFKC", value[0])[:1] in FORMULA_STARTS or value[0] == _MINUS_SIGN):
        return "'" + value
    return value


def filename(export: Export, encoding: str) -> str:
    """The download's name: the Shift_JIS file is named apart, so that both can sit in one folder."""
    return export.filename if encoding == "utf-8" else export.filename.replace(".csv", "-sjis.csv")


def encode(export: Export, encoding: str, rows: Iterable[ExportRow] | None = None) -> Iterator[bytes]:
    """The export as CSV bytes in chunks: UTF-8 with a byte order mark (as Excel expects), or cp932; CRLF lines.

    In cp932, the JIS variants of a few characters are written as cp932's, and a character it cannot hold at all
    becomes 〓: the caller checks first (problems()) unless the organiser asked for that, so 〓 appears only then, or
    for a row written between the check and the download.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def flush() -> bytes:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if encoding == "utf-8":
            return text.encode("utf-8")
        return text.translate(_JIS_TO_CP932).encode("cp932", errors="codt-geta")

    if encoding == "utf-8":
        buffer.write("\ufeff")
    writer.writerow(export.header)
    # The header goes out at once: the browser shows the download starting while the database is still reading.
    yield flush()
    for _registrant_id, cells in (export.rows() if rows is None else rows):
        writer.writerow([defuse(value) for value in cells])
        if buffer.tell() >= CHUNK_CHARS:
            yield flush()
    last = flush()
    if last:
        yield last


@dataclass(frozen=True)
class Problem:
    """A cell whose characters Shift_JIS (cp932) cannot hold."""

    row: int  # the spreadsheet's row number: the header is row 1
    registrant_id: int | None
    field: str
    value: str
    characters: str  # each character once, in the order they come

    @property
    def code_points(self) -> list[tuple[str, str]]:
        """Each character with its code point (U+20BB7), for characters that look alike or do not show."""
        return [(char, f"U+{ord(char):04X}") for char in self.characters]


@dataclass(frozen=True)
class Problems:
    """What a check found: the first PROBLEM_LIMIT problems, and how many there are in all."""

    items: list[Problem]
    count: int


def unrepresentable(text: str) -> str:
    """The characters of `text` cp932 cannot hold (after the JIS variants are mapped), each once; "" for none."""
    if text.isascii():
        return ""
    mapped = text.translate(_JIS_TO_CP932)
    try:
        mapped.encode("cp932")
    except UnicodeEncodeError:
        return "".join(char for char in dict.fromkeys(mapped) if not _encodable(char))
    return ""


def _encodable(char: str) -> bool:
    try:
        char.encode("cp932")
    except UnicodeEncodeError:
        return False
    return True


def problems(export: Export, *, limit: int = PROBLEM_LIMIT, rows: Iterable[ExportRow] | None = None) -> Problems:
    """Read the export through once (streamed, keeping at most `limit` problems) for cells cp932 cannot hold."""
    found: list[Problem] = []
    count = 0
    for number, (registrant_id, cells) in enumerate(export.rows() if rows is None else rows, start=2):
        texts = [value if isinstance(value, str) else "" for value in cells]
        if not unrepresentable("\x00".join(texts)):
            continue  # the common case, one encoding per row rather than one per cell
        for name, value in zip(export.header, texts):
            characters = unrepresentable(value)
            if characters:
                count += 1
                if len(found) < limit:
                    found.append(Problem(number, registrant_id, name, value[:200], characters))
    return Problems(found, count)
