"""The organisers' exports: CSV files for spreadsheets."""

import csv
import io
from collections.abc import Iterable

from flask import Response, render_template

from registration import formatting
from registration.auth import role_required
from registration.models import Registrant
from registration.services import registrations, viewing
from registration.staffarea.views import bp


@bp.get("/admin/registrants.csv")
@role_required("admin")
def registrants_csv():
    """Who registered, for what, and who came: one row per registration, cancelled ones included."""
    viewing_counts = viewing.counts_per_registrant()

    def row(person: Registrant) -> list:
        admission = next((checkin for checkin in person.checkins if checkin.undone_at is None), None)
        signed_up, watched = viewing_counts.get(person.id, (0, 0))
        return [_when(person.registered_at), _when(person.cancelled_at), person.family_name, person.given_name,
                person.family_name_kana, person.given_name_kana, person.email, person.organization,
                person.job_title, person.locale, person.seat_status, _when(person.seat_confirmed_at),
                "yes" if person.on_site else "", _when(admission.at if admission else None),
                admission.gate if admission else "", signed_up, watched]

    return _csv_response("codt2023-registrants.csv", [
        "registered_at_jst", "cancelled_at_jst", "family_name", "given_name", "family_name_kana",
        "given_name_kana", "email", "organization", "job_title", "language", "closing_event",
        "seat_confirmed_at_jst", "on_site", "checked_in_at_jst", "gate", "sessions_signed_up", "sessions_watched"],
        (row(person) for person in registrations.everyone()))


def _when(moment) -> str:
    return formatting.iso_tokyo(moment) if moment else ""


@bp.get("/admin/attendance")
@role_required("admin")
def attendance():
    """Online attendance: sign-ups, watchers, views and watchers without a sign-up, by category and session."""
    categories, total = viewing.attendance()
    return render_template("admin/attendance.html", categories=categories, total=total)


@bp.get("/admin/attendance.csv")
@role_required("admin")
def attendance_csv():
    """The attendance figures per session, as a spreadsheet."""
    categories, _total = viewing.attendance()
    rows = ([entry.category.key, entry.category.name_ja, entry.category.name_en, row.session.key, row.session.title,
             row.session.speaker_organization, row.session.language, "withdrawn" if row.session.is_withdrawn else "",
             row.attendance.signups, row.attendance.watchers, row.attendance.views,
             row.attendance.watched_without_signup]
            for entry in categories for row in entry.sessions)
    return _csv_response("codt2023-attendance.csv", [
        "category", "category_ja", "category_en", "session", "title", "speaker_organization", "language", "status",
        "signups", "watchers", "views", "watched_without_signup"], rows)


@bp.get("/admin/attendance/records.csv")
@role_required("admin")
def attendance_records_csv():
    """Every sign-up, withdrawal and view with its time and the person: who signed up for what, who watched."""
    rows = ([formatting.iso_tokyo(record.at), record.kind, record.registrant.email, record.registrant.full_name,
             record.registrant.organization, record.session.key, record.session.title, record.window or ""]
            for record in viewing.records())
    return _csv_response("codt2023-viewing-records.csv", [
        "at_jst", "record", "email", "name", "organization", "session", "title", "window"], rows)


def _csv_response(filename: str, header: list[str], rows: Iterable[list]) -> Response:
    """UTF-8 with a byte order mark and CRLF, as Excel opens it; cells that a spreadsheet would run are defused."""
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([_cell(value) for value in row] for row in rows)
    return Response(buffer.getvalue(), mimetype="text/csv", headers={
        "Content-Disposition": f"attachment; filename={filename}", "Cache-Control": "no-store"})


def _cell(value):
    # A cell starting with = + - @ (or a tab or CR) is a formula to Excel: a title must not run as one.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
