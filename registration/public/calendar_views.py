"""The closing event's calendar entry for a seat holder: /me/<secret>/closing-event.ics.

A module of its own, registered on the public blueprint when registration.public imports it.
"""

from flask import Response, abort

from registration.public.views import bp, current_event
from registration.services import registrations
from registration.services.calendar import closing_event_ics


@bp.get("/me/<secret>/closing-event.ics")
def personal_calendar(secret: str):
    """The .ics of the closing event, with this person's personal link; only a confirmed seat holder gets one."""
    registrant = registrations.find_by_secret(secret)
    # Waiting, not attending, cancelled or erased: there is no seat to put in a calendar.
    if (registrant is None or registrant.seat_status != "confirmed" or registrant.is_cancelled
            or registrant.anonymised_at is not None):
        abort(404)
    filename, _, data = closing_event_ics(current_event(), registrant)
    return Response(data, headers={
        # The mail part's method=PUBLISH means nothing to a download; the charset keeps Japanese readable.
        "Content-Type": "text/calendar; charset=utf-8",
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Cache-Control": "no-store",  # it carries the personal link
    })
