"""The organisers' exports: CSV files for spreadsheets, streamed, in UTF-8 or Shift_JIS, and the attendance page."""

from flask import Response, render_template, request, stream_with_context

from registration.auth import role_required
from registration.services import exports, viewing
from registration.staffarea.views import bp


@bp.get("/admin/exports", endpoint="exports")
@role_required("admin")
def exports_page():
    """Every export, each in UTF-8 and in Shift_JIS, with what it holds."""
    return render_template("admin/exports.html", exports=exports.EXPORTS.values())


@bp.get("/admin/registrants.csv")
@role_required("admin")
def registrants_csv():
    """Who registered, for what, and who came: one row per registration, cancelled and erased ones included."""
    return _download("registrants")


@bp.get("/admin/checkins.csv")
@role_required("admin")
def checkins_csv():
    """Every admission at the door, undone ones included: when, where, by whom, whom."""
    return _download("checkins")


@bp.get("/admin/refused-scans.csv")
@role_required("admin")
def refused_scans_csv():
    """Every scan the door did not admit, with the reason and what was scanned."""
    return _download("refused_scans")


@bp.get("/admin/signups.csv")
@role_required("admin")
def signups_csv():
    """Every sign-up for a session, with its withdrawal."""
    return _download("signups")


@bp.get("/admin/views.csv")
@role_required("admin")
def views_csv():
    """Every counted view of a session."""
    return _download("views")


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
    return _download("attendance")


@bp.get("/admin/attendance/records.csv")
@role_required("admin")
def attendance_records_csv():
    """Every sign-up, withdrawal and view with its time and the person: who signed up for what, who watched."""
    return _download("records")


def _download(key: str):
    """The export as a streamed CSV; in Shift_JIS, first the list of what it could not hold, if anything."""
    export = exports.EXPORTS[key]
    asked = request.args.get("encoding", "utf-8")
    encoding = exports.ENCODINGS.get(asked.strip().lower()[:20])
    unrepresentable = request.args.get("unrepresentable", "")
    if encoding is None or unrepresentable not in ("", "replace"):
        return render_template("admin/exports.html", exports=exports.EXPORTS.values(), bad_request=True,
                               asked=asked[:40]), 400
    if encoding == "cp932" and unrepresentable != "replace":
        # Read through once before answering: a file that silently lost characters would be worse than none.
        found = exports.problems(export)
        if found.count:
            return render_template("admin/export_problems.html", export=export, problems=found)
    body = stream_with_context(exports.encode(export, encoding))
    return Response(body, content_type=f"text/csv; charset={exports.CHARSETS[encoding]}", headers={
        "Content-Disposition": f"attachment; filename={exports.filename(export, encoding)}",
        "Cache-Control": "no-store"})
