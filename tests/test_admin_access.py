"""Every page and action of the admin console, found from the URL map (so a route added later is covered too):
a `door` account gets 403, a visitor is sent to sign in, and nothing changes either way."""

import re

import pytest
from sqlalchemy import func, select

from registration.extensions import db
from registration.models import AuditEntry, OutboxMessage, Registrant


def admin_routes(app) -> list[tuple[str, str]]:
    """(method, path) of every /admin rule, with 1 for each id in the path."""
    routes = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/admin"):
            continue
        path = re.sub(r"<[^>]+>", "1", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            routes.append((method, path))
    return routes


def test_the_console_has_the_pages_the_organisers_need(app):
    paths = {path for _method, path in admin_routes(app)}
    assert {"/admin", "/admin/registrants", "/admin/registrants/1", "/admin/audit", "/admin/exports",
            "/admin/reminders", "/admin/registrants.csv", "/admin/conflicts", "/admin/conflicts/1/resolve"} <= paths


def state(app) -> tuple:
    with app.app_context():
        return (db.session.scalar(select(func.count()).select_from(AuditEntry)),
                db.session.scalar(select(func.count()).select_from(OutboxMessage)),
                tuple(db.session.execute(select(Registrant.id, Registrant.cancelled_at, Registrant.seat_status,
                                                Registrant.ticket_code, Registrant.anonymised_at)).all()))


def test_door_staff_get_403_on_every_admin_page_and_action(app, client, make_staff, make_attendee):
    make_attendee()  # registrant 1, with a seat: every action would have something to act on
    name, password = make_staff("door")
    client.post("/login", data={"name": name, "password": password})
    assert client.get("/door").status_code == 200
    before = state(app)
    routes = admin_routes(app)
    assert len(routes) > 10
    for method, path in routes:
        if method == "GET":
            response = client.get(path)
        else:
            response = client.post(path, data={"csrf_token": client.csrf_token(), "confirm": "y", "reason": "x"})
        assert response.status_code == 403, (method, path, response.status_code)
    assert state(app) == before


def test_visitors_are_sent_to_sign_in(app, client, make_attendee):
    make_attendee()
    before = state(app)
    for method, path in admin_routes(app):
        response = client.open(path, method=method, data={"csrf_token": client.csrf_token()})
        assert response.status_code in (302, 303), (method, path, response.status_code)
        assert "/login" in response.headers["Location"], (method, path)
    assert state(app) == before


@pytest.mark.parametrize("method", ["POST"])
def test_admin_actions_need_the_csrf_token(app, client, make_staff, make_attendee, method):
    make_attendee()
    name, password = make_staff("admin")
    client.post("/login", data={"name": name, "password": password})
    before = state(app)
    for route_method, path in admin_routes(app):
        if route_method != method:
            continue
        response = client.post(path, data={"confirm": "y", "reason": "x"}, without_csrf=True)
        assert response.status_code == 400, (path, response.status_code)
    assert state(app) == before
