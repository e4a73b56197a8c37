"""With CSRF protection on, as in production: every state-changing POST without a token is refused."""

import re

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from registration.extensions import db
from registration.models import OutboxMessage, Registrant
from tests.conftest import form_data


@pytest.fixture
def csrf_app(make_app):
    """The app as every test gets it (CSRF on); its clients here send no token unless a test puts one in."""
    app = make_app()
    app.test_client_class = FlaskClient
    return app


def count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def token_from(response) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', response.get_data(as_text=True)).group(1)


def register_with_token(client) -> str:
    token = token_from(client.get("/register"))
    response = client.post("/register", data={**form_data(), "csrf_token": token})
    assert response.status_code == 303
    return re.search(r"/me/([^/]+)/welcome", response.headers["Location"]).group(1)


def test_registration_without_token_stores_nothing_and_keeps_the_input(csrf_app):
    client = csrf_app.test_client()
    response = client.post("/register", data=form_data(organization="入力が残る"))
    assert response.status_code == 422
    assert 'value="入力が残る"' in response.get_data(as_text=True)
    assert count(csrf_app, Registrant) == 0
    # The re-shown form carries a fresh token: sending it again works.
    response = client.post("/register", data={**form_data(), "csrf_token": token_from(response)})
    assert response.status_code == 303
    assert count(csrf_app, Registrant) == 1


def test_forged_token_is_refused(csrf_app):
    client = csrf_app.test_client()
    client.get("/register")
    response = client.post("/register", data={**form_data(), "csrf_token": "forged"})
    assert response.status_code == 422
    assert count(csrf_app, Registrant) == 0


def test_personal_page_edit_without_token_changes_nothing(csrf_app):
    client = csrf_app.test_client()
    secret = register_with_token(client)
    other = csrf_app.test_client()  # an attacker's page posting with the victim's link but no token
    response = other.post(f"/me/{secret}", data=form_data(organization="攻撃者"))
    assert response.status_code == 422
    with csrf_app.app_context():
        assert db.session.scalar(select(Registrant.organization)) == "例示株式会社"


def test_cancel_without_token_is_refused(csrf_app):
    client = csrf_app.test_client()
    secret = register_with_token(client)
    response = csrf_app.test_client().post(f"/me/{secret}/cancel")
    assert response.status_code == 400
    assert "有効期限" in response.get_data(as_text=True) and "expired" in response.get_data(as_text=True)
    with csrf_app.app_context():
        assert db.session.scalar(select(Registrant.cancelled_at)) is None


def test_lost_link_without_token_sends_nothing(csrf_app):
    client = csrf_app.test_client()
    register_with_token(client)
    before = count(csrf_app, OutboxMessage)
    response = csrf_app.test_client().post("/lost-link", data={"email": "hanako@example.jp"})
    assert response.status_code == 422
    assert count(csrf_app, OutboxMessage) == before


def test_language_switch_without_token_is_refused(csrf_app):
    response = csrf_app.test_client().post("/language", data={"lang": "en", "next": "/"})
    assert response.status_code == 400
    assert "lang=" not in response.headers.get("Set-Cookie", "")
