"""The audit log page (/admin/audit): newest first, paged, filtered by who, action, time and registrant."""

import re
from urllib.parse import quote

import pytest
from registration.extensions import db
from registration.models import Registrant
from registration.services import audit, privacy, registrations
from registration.services import staff as staff_service
from tests.conftest import jst

ENTRY = re.compile(r'data-testid="audit-entry" data-action="([a-z_.]+)"')


def actions_on(response) -> list[str]:
    assert response.status_code == 200, response.get_data(as_text=True)[-2000:]
    return ENTRY.findall(response.get_data(as_text=True))


@pytest.fixture
def log(app, client, make_staff, make_details, frozen_clock):
    """Alice (admin, signed in) and Bob act on two people at known moments."""
    alice, password = make_staff("admin", name="alice")
    make_staff("admin", name="bob")
    with app.app_context():
        frozen_clock(jst(2023, 8, 25, 9, 0))
        first = registrations.register(make_details(email="first@example.jp", organization="Old Co"),
                                       locale="ja").registrant          # registrant.register
        frozen_clock(jst(2023, 8, 26, 9, 0))
        second = registrations.register(make_details(email="second@example.jp"), locale="ja").registrant
        db.session.commit()
        frozen_clock(jst(2023, 8, 27, 23, 59))
        registrations.cancel(first, by=staff_service.find_staff("alice"))   # staff alice
        frozen_clock(jst(2023, 8, 28, 0, 0))
        registrations.resend_link(second, by=staff_service.find_staff("bob"))  # staff bob
        frozen_clock(jst(2023, 8, 28, 12, 0))
        audit.record("staff.password", actor="cli", details="bob: password changed")
        db.session.commit()
        ids = first.id, second.id
    client.post("/login", data={"name": alice, "password": password})
    client.set_cookie("lang", "en")
    return ids


def test_newest_first_with_who_and_values(client, log):
    response = client.get("/admin/audit")
    assert actions_on(response) == ["staff.password", "mail.resend_link", "registrant.cancel", "registrant.register",
                                    "registrant.register"]
    text = response.get_data(as_text=True)
    assert "by alice" in text and "by bob" in text and "by a server command" in text and "by the registrant" in text
    # Before → after, readably: the cancellation's values.
    cancel = text[text.index('data-action="registrant.cancel"'):]
    cancel = cancel[:cancel.index("</li>\n  \n</ul>")]
    assert "<del>no</del> → <ins>yes</ins>" in cancel and "<del>Seat confirmed</del>" not in cancel
    assert "Registration cancelled" in cancel


@pytest.mark.parametrize("query, expected", [
    ("who=alice", ["registrant.cancel"]),
    ("who=bob", ["mail.resend_link"]),
    ("who=registrant", ["registrant.register", "registrant.register"]),
    ("who=cli", ["staff.password"]),
    ("who=system", []),
    ("action=registrant.register", ["registrant.register", "registrant.register"]),
    ("action=mail.resend_link&who=alice", []),
    ("from=2023-08-26", ["staff.password", "mail.resend_link", "registrant.cancel", "registrant.register"]),
    ("to=2023-08-27", ["registrant.cancel", "registrant.register", "registrant.register"]),  # the whole day
    ("from=2023-08-27T23:59&to=2023-08-28T00:00", ["mail.resend_link", "registrant.cancel"]),  # minutes inclusive
    ("from=2023-08-28T00:01", ["staff.password"]),
    ("to=2023-08-25T08:59", []),
    ("REGISTRANT_FIRST", ["registrant.cancel", "registrant.register"]),
])
def test_filters(client, log, query, expected):
    first, _second = log
    query = query.replace("REGISTRANT_FIRST", f"registrant={first}")
    response = client.get(f"/admin/audit?{query}")
    assert actions_on(response) == expected
    assert 'data-testid="ignored-filters"' not in response.get_data(as_text=True)


@pytest.mark.parametrize("query", [
    "who=mallory", "who=%00", "action=drop.table", "action=%00", "from=yesterday", "from=2023-02-30",
    "from=0000-01-01", "to=9999-12-31T25:00", "from=%00", "registrant=abc", "registrant=0", "registrant=-1",
    f"registrant={10**30}", "registrant=%EF%BC%91", "page=0", "page=-1", "page=x", "who=" + "a" * 10_000,
])
def test_junk_never_500(client, log, query):
    response = client.get(f"/admin/audit?{query}")
    assert response.status_code == 200
    assert 'data-testid="ignored-filters"' in response.get_data(as_text=True)
    assert len(actions_on(response)) == 5  # the filter is ignored, not applied half


def test_pages(app, client, log):
    with app.app_context():
        for n in range(120):
            audit.record("staff.enable", actor="cli", details=f"entry {n}")
        db.session.commit()
    first = client.get("/admin/audit?who=cli").get_data(as_text=True)
    assert "Page 1 of 3" in first and first.count('data-testid="audit-entry"') == 50
    assert "entry 119" in first and "entry 69" not in first
    assert 'href="/admin/audit?page=2&amp;who=cli"' in first
    last = client.get("/admin/audit?who=cli&page=3").get_data(as_text=True)
    assert last.count('data-testid="audit-entry"') == 21 and "bob: password changed" in last
    past_the_end = client.get(f"/admin/audit?who=cli&page={10**30}").get_data(as_text=True)
    assert "Page 3 of 3" in past_the_end and past_the_end.count('data-testid="audit-entry"') == 21


def test_an_erased_persons_values_are_gone(app, client, log):
    first, _second = log
    with app.app_context():
        privacy.erase(db.session.get(Registrant, first))
        db.session.commit()
    text = client.get(f"/admin/audit?registrant={first}").get_data(as_text=True)
    assert "first@example.jp" not in text and "Old Co" not in text
    assert "Personal data erased" in text


def test_door_staff_and_visitors(app, make_staff):
    client = app.test_client()
    assert client.get("/admin/audit").headers["Location"].startswith("/login")
    name, password = make_staff("door")
    client.post("/login", data={"name": name, "password": password})
    assert client.get("/admin/audit").status_code == 403


def test_the_person_page_links_to_their_entries(client, log):
    first, _second = log
    page = client.get(f"/admin/registrants/{first}").get_data(as_text=True)
    assert f'href="/admin/audit?registrant={first}"' in page
    with_who = client.get("/admin/audit?who=" + quote("alice") + f"&registrant={first}")
    assert actions_on(with_who) == ["registrant.cancel"]


@pytest.mark.parametrize("query", ["from=0001-01-01", "to=0001-01-01T00:00", "from=0001-01-01T09:00",
                                   "to=9999-12-31", "from=1899-12-31T23:59"])
def test_dates_no_clock_can_hold_are_ignored_not_a_500(client, make_staff, query):
    name, password = make_staff("admin")
    client.post("/login", data={"name": name, "password": password})
    response = client.get(f"/admin/audit?{query}")
    assert response.status_code == 200
    assert 'data-testid="ignored-filters"' in response.get_data(as_text=True)


@pytest.mark.parametrize("reason", ["\u200b\u200b", "\u3164", " \u2800 "])
def test_an_erasure_needs_a_reason_one_can_read(app, client, make_staff, make_registrant, reason):
    person = make_registrant()
    name, password = make_staff("admin")
    client.post("/login", data={"name": name, "password": password})
    assert client.post(f"/admin/registrants/{person.id}/erase", data={"reason": reason}).status_code == 422
    with app.app_context():
        assert db.session.get(Registrant, person.id).anonymised_at is None
