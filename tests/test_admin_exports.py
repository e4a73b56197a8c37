"""The organisers' export of every registration: who registered, for what, and who came."""

import csv
import io

from registration.extensions import db
from registration.models import Registrant
from registration.services import checkins, registrations, viewing
from registration.services import staff as staff_service
from tests.test_staff import login


def read_csv(response) -> list[dict]:
    body = response.get_data(as_text=True)
    assert body.startswith("\ufeff") and "\r\n" in body
    return list(csv.DictReader(io.StringIO(body.lstrip("\ufeff"))))


def test_the_registrations_export_says_who_registered_for_what_and_who_came(app, client, make_staff,
                                                                             make_registrant, make_attendee):
    came = make_attendee(family_name="来場", organization="@SUM(A1)")
    stayed_home = make_registrant(family_name="在宅")
    gone = make_registrant(family_name="取消")
    door_name, door_password = make_staff("door")
    with app.app_context():
        viewing.change_signups(db.session.get(Registrant, stayed_home.id), ["ntt-east-aws-tagging", "openinfra-loki-stack"])
        door = staff_service.find_staff(door_name)
        checkins.check_in(code=db.session.get(Registrant, came.id).ticket_code, gate="door-2", staff_id=door.id)
        registrations.cancel(db.session.get(Registrant, gone.id))
        db.session.commit()

    login(client, door_name, door_password)
    assert client.get("/admin/registrants.csv").status_code == 403
    client.post("/logout")
    login(client, *make_staff("admin"))
    response = client.get("/admin/registrants.csv")
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == "attachment; filename=codt2023-registrants.csv"
    rows = {row["family_name"]: row for row in read_csv(response)}
    assert set(rows) == {"来場", "在宅", "取消"}
    assert (rows["来場"]["closing_event"], rows["来場"]["gate"], rows["来場"]["organization"]) == (
        "confirmed", "door-2", "'@SUM(A1)")
    assert rows["来場"]["checked_in_at_jst"] == "2023-08-25T10:00:00.000+09:00"
    assert (rows["在宅"]["closing_event"], rows["在宅"]["checked_in_at_jst"], rows["在宅"]["sessions_signed_up"]) == (
        "none", "", "2")
    assert rows["取消"]["cancelled_at_jst"] == "2023-08-25T10:00:00.000+09:00"
    assert rows["取消"]["sessions_signed_up"] == "0"
