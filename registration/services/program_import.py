"""Importing the organisers' program file (CSV or YAML): all or nothing, every problem reported by line."""

import csv
import io
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import yaml
from flask import current_app
from sqlalchemy import exists, select
from werkzeug.urls import iri_to_uri

from registration import clock
from registration.extensions import db
from registration.models import (
    Category,
    Event,
    ProgramSession,
    SessionView,
    ViewingSignup,
)
from registration.text import BIDI_CONTROLS, has_visible_character, is_single_line

COLUMNS = ("key", "category", "title", "speaker_organization", "speakers", "language", "abstract", "video_url")
#: Columns that may be left empty: the speakers' names and the abstract, and the video until the organisers have it.
OPTIONAL = frozenset({"speakers", "abstract", "video_url"})
#: Columns a file may leave out altogether: files made before the speakers' names were asked for stay valid.
OMISSIBLE_COLUMNS = frozenset({"speakers"})
LANGUAGES = ("ja", "en")
SESSION_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,79}")
LIMITS = {"title": 300, "speaker_organization": 200, "speakers": 300, "abstract": 5000, "video_url": 500}
#: The real program has 49 sessions. Reading stops at the first session past this many: a file of 200,000 short
#: rows fits in PROGRAM_IMPORT_MAX_BYTES, but parsing and checking it whole took 400 MB.
MAX_SESSIONS = 1000
#: YAML is checked event by event (a few bytes each, streamed) before it is built into nodes (hundreds of bytes
#: each): a session is 16 events with its 7 fields, so this leaves room for extra columns but not for a flood.
MAX_YAML_EVENTS = MAX_SESSIONS * 50
#: A refused file lists at most this many problems, then how many more there are: a generated file with a
#: mistake on every row must not bury the terminal (and the first problems are the ones to fix first).
REPORTED_PROBLEMS = 100


@dataclass(frozen=True)
class Problem:
    """Something wrong with the file; `line` is where the row (or the header) starts, if known."""

    line: int | None
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


class ProgramFileError(Exception):
    """The file is refused as a whole; `problems` lists everything found, in line order."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda problem: problem.line or 0)
        super().__init__("\n".join(self.report()))

    def report(self, limit: int = REPORTED_PROBLEMS) -> list[str]:
        """The first `limit` problems as lines, then "... and N more problems" if there are more."""
        lines = [str(problem) for problem in self.problems[:limit]]
        if len(self.problems) > limit:
            more = len(self.problems) - limit
            lines.append(f"... and {more} more problem{'s' if more > 1 else ''}")
        return lines


@dataclass(frozen=True)
class Row:
    """One session as the file states it, with the line its row starts on."""

    line: int
    values: dict[str, str]


@dataclass
class ImportReport:
    """What an import changed (or, for a dry run, would change)."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    withdrawn: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def read_program_file(path: str | Path, *, max_bytes: int | None = None) -> list[Row]:
    """The rows of a .csv, .yaml or .yml program file of at most `max_bytes` (PROGRAM_IMPORT_MAX_BYTES by
    default); ProgramFileError if it cannot be read as one."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".yaml", ".yml"):
        raise ProgramFileError([Problem(None, f"{path.name}: use a .csv or a .yaml file")])
    if max_bytes is None:
        max_bytes = current_app.config["PROGRAM_IMPORT_MAX_BYTES"]
    try:
        # The size is checked before the file is read whole; reading at most one byte more catches what stat()
        # cannot size (a pipe, a device) and a file that grew in between.
        too_large = path.stat().st_size > max_bytes
        if not too_large:
            with path.open("rb") as file:
                raw = file.read(max_bytes + 1)
            too_large = len(raw) > max_bytes
    except OSError as error:
        raise ProgramFileError([Problem(None, f"{path}: {error.strerror}")]) from None
    if too_large:
        raise ProgramFileError([Problem(None, f"the file is larger than {max_bytes:,} bytes, the most a program "
                                              "file may have (PROGRAM_IMPORT_MAX_BYTES): is it the right file?")])
    try:
        text = raw.decode("utf-8-sig")  # Excel's "CSV UTF-8" starts with a byte order mark
    except UnicodeDecodeError as error:
        line = raw[:error.start].count(b"\n") + 1
        raise ProgramFileError([Problem(line, "the file is not UTF-8 (in Excel, save it as \"CSV UTF-8\")")]) from None
    return parse_csv(text) if suffix == ".csv" else parse_yaml(text)


def parse_csv(text: str) -> list[Row]:
    """Rows of CSV text with a header line naming the columns, in any order."""
    # strict: a quote left open must be an error, not a cell that swallows the rest of the file.
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    start = 1
    try:
        header = next(reader, None)
        if header is None:
            raise ProgramFileError([Problem(None, "the file is empty")])
        names = [unicodedata.normalize("NFKC", name).strip().lower() for name in header]
        problems = [Problem(1, f"column {name!r} appears twice") for name in sorted(set(names))
                    if name and names.count(name) > 1]
        missing = [name for name in COLUMNS if name not in names and name not in OMISSIBLE_COLUMNS]
        if missing:
            hint = " (the file seems to use ; between columns: save it with commas)" if ";" in "".join(header[:1]) else ""
            needed = ", ".join(name for name in COLUMNS if name not in OMISSIBLE_COLUMNS)
            problems.append(Problem(1, f"missing column(s): {', '.join(missing)} (the header must name {needed}){hint}"))
        if problems:
            raise ProgramFileError(problems)
        rows = []
        start = reader.line_num + 1
        sessions = 0
        for cells in reader:
            if any(cell.strip() for cell in cells):
                sessions += 1
                if sessions > MAX_SESSIONS:
                    raise ProgramFileError([*problems, _too_many_sessions(start)])
            if len(cells) > len(names) and any(cell.strip() for cell in cells[len(names):]):
                problems.append(Problem(start, f"{len(cells)} cells, but the header names {len(names)} columns "
                                               "(a comma in a value needs quotes around the value)"))
            elif any(cell.strip() for cell in cells):  # Excel leaves empty rows at the end
                rows.append(Row(start, {name: cells[index] if index < len(cells) else ""
                                        for index, name in enumerate(names)}))
            start = reader.line_num + 1
    except csv.Error as error:
        raise ProgramFileError([Problem(start, f"not readable as CSV: {error} (a quote is left open)")]) from None
    if problems:
        raise ProgramFileError(problems)
    return rows


def parse_yaml(text: str) -> list[Row]:
    """Rows of a YAML list of sessions, or of a mapping whose `sessions` is that list."""
    try:
        _check_yaml_size(text)
        document = yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:
        # PyYAML builds nested collections recursively: thousands of `[` deep exhaust the stack.
        raise ProgramFileError([Problem(None, "not readable as YAML: nested far deeper than a program "
                                              "(a list of sessions) is")]) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        raise ProgramFileError([Problem(mark.line + 1 if mark else None,
                                        f"not readable as YAML: {getattr(error, 'problem', error)}")]) from None
    if isinstance(document, yaml.MappingNode):
        document = next((value for key, value in document.value if key.value == "sessions"), None)
    if not isinstance(document, yaml.SequenceNode):
        raise ProgramFileError([Problem(None, "the YAML file must be a list of sessions, or have a `sessions:` list")])
    if len(document.value) > MAX_SESSIONS:
        raise ProgramFileError([_too_many_sessions(document.value[MAX_SESSIONS].start_mark.line + 1)])
    rows, problems = [], []
    for item in document.value:
        line = item.start_mark.line + 1
        if not isinstance(item, yaml.MappingNode):
            problems.append(Problem(line, "each session must be a mapping of field: value"))
            continue
        values = {}
        for key, value in item.value:
            field_line = key.start_mark.line + 1
            if not isinstance(key, yaml.ScalarNode) or key.value == "<<":
                problems.append(Problem(field_line, "each field must be written out as name: value "
                                                    "(no merge keys or complex names)"))
                continue
            name = str(key.value).strip().lower()
            if name in values:
                problems.append(Problem(field_line, f"{name}: given twice for the same session"))
            elif not isinstance(value, yaml.ScalarNode):
                problems.append(Problem(value.start_mark.line + 1, f"{name}: must be a single value"))
            else:
                values[name] = "" if value.tag == "tag:yaml.org,2002:null" else value.value
        rows.append(Row(line, values))
    if problems:
        raise ProgramFileError(problems)
    return rows


def _too_many_sessions(line: int) -> Problem:
    return Problem(line, f"more than {MAX_SESSIONS} sessions (the program has tens): is it the right file? "
                         "Reading stopped here.")


def _check_yaml_size(text: str) -> None:
    """Refuse YAML with more sessions or values than a program has, while streaming, before building it."""
    mappings, allowed = 0, None
    for count, event in enumerate(yaml.parse(text, Loader=yaml.SafeLoader), start=1):
        if isinstance(event, yaml.CollectionStartEvent) and allowed is None:
            # One mapping more when the document is a mapping with a `sessions:` list.
            allowed = MAX_SESSIONS + isinstance(event, yaml.MappingStartEvent)
        mappings += isinstance(event, yaml.MappingStartEvent)
        if allowed is not None and mappings > allowed:
            raise ProgramFileError([_too_many_sessions(event.start_mark.line + 1)])
        if count > MAX_YAML_EVENTS:
            raise ProgramFileError([Problem(event.start_mark.line + 1, f"more than {MAX_YAML_EVENTS} values: "
                                            "far more than a program has; is it the right file? Reading stopped here.")])


def validate(rows: list[Row], category_keys: set[str]) -> tuple[list[Row], list[str]]:
    """The rows with cleaned values, and notes; ProgramFileError listing every problem of every row."""
    problems, notes, seen = [], [], {}
    if not rows:
        problems.append(Problem(None, "the file lists no sessions (refused: importing it would withdraw them all)"))
    extra = sorted({name for row in rows for name in row.values} - set(COLUMNS) - {""})
    if extra:
        notes.append(f"ignored column(s): {', '.join(extra)}")
    cleaned = []
    for row in rows:
        values = {name: _clean(name, row.values.get(name)) for name in COLUMNS}
        for name in COLUMNS:
            if name not in OPTIONAL and not values[name]:
                # A cell of zero-width characters or Hangul fillers looks empty in Excel too: say why it counts so.
                shown = " (the cell shows only invisible characters)" if (row.values.get(name) or "").strip() else ""
                problems.append(Problem(row.line, f"{name}: missing{shown}"))
        problems.extend(Problem(row.line, message) for message in _field_problems(values, category_keys))
        key = values["key"]
        if key and key in seen:
            problems.append(Problem(row.line, f"key {key!r} is already used on line {seen[key]}"))
        seen.setdefault(key, row.line)
        cleaned.append(Row(row.line, values))
    if problems:
        raise ProgramFileError(problems)
    return cleaned, notes


def _clean(name: str, value: str | None) -> str:
    value = (value or "").strip()
    if not has_visible_character(value):
        return ""  # only invisible characters: as empty as a blank cell, in required and optional columns alike
    if name == "abstract":
        value = value.replace("\r\n", "\n").replace("\r", "\n")  # a lone CR (old Mac files) is a line break too
    return value.lower() if name in ("language", "category") else value


def _field_problems(values: dict[str, str], category_keys: set[str]) -> list[str]:
    problems = []
    if values["key"] and not SESSION_KEY.fullmatch(values["key"]):
        problems.append(f"key {values['key']!r}: use 1 to 80 letters, digits, - or _ (starting with a letter or digit)")
    if values["category"] and values["category"] not in category_keys:
        problems.append(f"category {values['category']!r} is unknown (known: {', '.join(sorted(category_keys))})")
    if values["language"] and values["language"] not in LANGUAGES:
        problems.append(f"language {values['language']!r}: use ja or en")
    for name, limit in LIMITS.items():
        if len(values[name]) > limit:
            problems.append(f"{name}: longer than {limit} characters")
    for name in ("key", "category", "title", "speaker_organization", "speakers", "language", "video_url"):
        if not is_single_line(values[name]):
            problems.append(f"{name}: must be a single line without control characters")
    if values["abstract"] and any((unicodedata.category(char) == "Cc" and char not in "\n\r\t")
                                  or char in BIDI_CONTROLS for char in values["abstract"]):
        problems.append("abstract: contains control characters")
    if values["video_url"] and not _is_video_url(values["video_url"]):
        problems.append(f"video_url {values['video_url']!r}: must be an https:// address")
    return problems


def _is_video_url(value: str) -> bool:
    """An https address with a host, no credentials, that a redirect can carry (Location: must encode it)."""
    if any(char.isspace() for char in value) or "\\" in value:
        return False
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
        iri_to_uri(value)  # raises for a host IDNA cannot encode, as the watch redirect would
    except (ValueError, UnicodeError):
        return False
    return parts.scheme == "https" and bool(parts.hostname) and not (parts.username or parts.password)


def import_program(rows: list[Row], *, at: datetime | None = None) -> ImportReport:
    """Make the program exactly the file's: upsert by key, restore, withdraw or delete. Flushes, never commits."""
    at = at or clock.now()
    event = db.session.scalar(select(Event).limit(1))
    if event is None:
        raise ProgramFileError([Problem(None, "the event is not loaded yet: run `flask event load` first")])
    categories = {c.key: c for c in db.session.scalars(select(Category))}
    rows, notes = validate(rows, set(categories))
    report = ImportReport(notes=notes)
    existing = {s.key: s for s in db.session.scalars(select(ProgramSession))}
    positions: dict[str, int] = {}
    for row in rows:
        values = row.values
        position = positions[values["category"]] = positions.get(values["category"], 0) + 1
        session = existing.get(values["key"])
        wanted = {"title": values["title"], "speaker_organization": values["speaker_organization"],
                  "speakers": values["speakers"], "language": values["language"], "abstract": values["abstract"],
                  "video_url": values["video_url"] or None, "position": position,
                  "category_id": categories[values["category"]].id}
        if session is None:
            db.session.add(ProgramSession(key=values["key"], **wanted))
            report.added.append(values["key"])
            continue
        if session.is_withdrawn:
            session.withdrawn_at = None
            report.restored.append(session.key)
        elif any(getattr(session, name) != value for name, value in wanted.items() if name != "position"):
            report.updated.append(session.key)
        else:
            report.unchanged.append(session.key)
        for name, value in wanted.items():
            setattr(session, name, value)

    listed = {row.values["key"] for row in rows}
    for session in existing.values():
        if session.key in listed or session.is_withdrawn:
            continue
        if _has_records(session):
            session.withdrawn_at = at  # hidden, kept with its sign-ups and views
            report.withdrawn.append(session.key)
        else:
            db.session.delete(session)
            report.deleted.append(session.key)
    event.program_imported_at = at
    db.session.flush()
    return report


def _has_records(session: ProgramSession) -> bool:
    return bool(db.session.scalar(select(
        exists().where(ViewingSignup.session_id == session.id) | exists().where(SessionView.session_id == session.id))))
