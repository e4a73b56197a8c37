"""Every validation rule of the registration form, through the page: a clear message, nothing stored, no 500."""

import re

import pytest
from sqlalchemy import func, select

from registration.extensions import db
from registration.models import Registrant
from tests.conftest import form_data


def field_errors(response) -> dict[str, str]:
    """The field-level messages, keyed by field id."""
    return dict(re.findall(r'<p class="error" id="([a-z_]+)-error">([^<]+)</p>', response.get_data(as_text=True)))


def stored(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Registrant))


REFUSED = [
    # (field, value, Japanese message fragment)
    ("family_name", "", "入力してください"),
    ("given_name", "   ", "入力してください"),
    ("organization", "", "入力してください"),
    ("email", "", "入力してください"),
    ("family_name", "山" * 51, "50"),
    ("given_name", "x" * 51, "50"),
    ("organization", "o" * 101, "100"),
    ("job_title", "j" * 101, "100"),
    ("family_name_kana", "ア" * 51, "50"),
    ("email", "taro@" + ".".join(["d" * 60] * 5) + ".jp", "254"),
    ("email", "a" * 65 + "@example.jp", "64"),
    ("email", "not-an-address", "メールアドレス"),
    ("email", "taro@", "メールアドレス"),
    ("email", "taro@example", "メールアドレス"),
    ("email", "taro example@example.jp", "メールアドレス"),
    ("email", "taro@exa_mple.jp", "メールアドレス"),
    ("family_name_kana", "Yamada", "カタカナ"),
    ("given_name_kana", "太郎", "カタカナ"),
    ("given_name_kana", "タロウ1", "カタカナ"),
    ("family_name", "山\x00田", "制御文字"),
    ("given_name", "太\x1b[31m郎", "制御文字"),
    ("organization", "会社\u2028名", "制御文字"),
    ("job_title", "SRE\x7f", "制御文字"),
    ("given_name", "太\u202e郎", "制御文字"),
    ("email", "taro\x01@example.jp", "制御文字"),
    ("given_name", "太\u2066郎", "制御文字"),
    ("family_name", "\u200e山田", "制御文字"),
    ("organization", "会社\u061c", "制御文字"),
    ("family_name", "\u200b", "入力してください"),
    ("given_name", "\u3164\u3164", "入力してください"),
    ("organization", "\ufeff\u200b", "入力してください"),
    ("family_name", "\u3000\u3000", "入力してください"),
]


@pytest.mark.parametrize(("field", "value", "message"), REFUSED)
def test_refused_with_a_field_message_and_nothing_stored(app, client, field, value, message):
    response = client.post("/register", data=form_data(**{field: value}))
    assert response.status_code == 422
    errors = field_errors(response)
    assert field in errors, errors
    assert message in errors[field]
    assert stored(app) == 0


def test_consent_is_required(app, client):
    response = client.post("/register", data=form_data(consent=None))
    assert response.status_code == 422
    assert "同意" in field_errors(response)["consent"]
    assert stored(app) == 0


def test_messages_in_english_when_chosen(client):
    client.set_cookie("lang", "en")
    errors = field_errors(client.post("/register", data=form_data(family_name="", family_name_kana="abc")))
    assert errors["family_name"] == "Please fill in this field."
    assert "katakana or hiragana" in errors["family_name_kana"]


@pytest.mark.parametrize("value", ["ヤマダ", "やまだ", "ｶﾀｶﾅ", "ヴァン・デル", "タロー", "やまだ　たろう"])
def test_kana_accepts_katakana_hiragana_and_half_width(app, client, value):
    response = client.post("/register", data=form_data(family_name_kana=value))
    assert response.status_code == 303, field_errors(response)


@pytest.mark.parametrize("name", ["髙橋", "Ōtani", "Nguyễn", "김", "Иванов", "👩‍💻", "O'Brien-Smith", "ﾃｽﾄ"])
def test_names_in_any_script_and_emoji(app, client, name):
    response = client.post("/register", data=form_data(family_name=name, given_name=name))
    assert response.status_code == 303, field_errors(response)
    with app.app_context():
        assert db.session.scalar(select(Registrant.family_name)) == name


def test_full_width_address_is_normalised(app, client):
    assert client.post("/register", data=form_data(email="ｈａｎａｋｏ＠ｅｘａｍｐｌｅ．ｊｐ")).status_code == 303
    with app.app_context():
        assert db.session.scalar(select(Registrant.email)) == "hanako@example.jp"


def test_internationalised_address_is_accepted(app, client):
    assert client.post("/register", data=form_data(email="山田@例え.jp")).status_code == 303


def test_surrounding_spaces_are_trimmed(app, client):
    client.post("/register", data=form_data(family_name="  山田  ", organization=" 会社 "))
    with app.app_context():
        registrant = db.session.scalar(select(Registrant))
        assert (registrant.family_name, registrant.organization) == ("山田", "会社")


def test_input_is_kept_when_refused(client):
    response = client.post("/register", data=form_data(email="bad", organization="残る組織", given_name="<i>花子</i>"))
    body = response.get_data(as_text=True)
    assert 'value="残る組織"' in body
    assert 'value="&lt;i&gt;花子&lt;/i&gt;"' in body


@pytest.mark.parametrize("data", [
    {},
    {"family_name": ["a", "b"]},
    {"attend_closing": "maybe", **form_data()},
    {"consent": "\x00"},
])
def test_odd_posts_never_500(client, data):
    assert client.post("/register", data=data).status_code in (303, 422)


@pytest.mark.parametrize("body", [
    b"\xff\xfe\x00garbage", b"family_name=%ZZ&email=%", b"a" * 60_000, b"email=%ED%B3%BF&family_name=%C0%AF",
])
def test_malformed_bodies_never_500(client, body):
    response = client.post("/register", data=body, content_type="application/x-www-form-urlencoded")
    assert response.status_code in (400, 422)


def test_multipart_and_json_bodies_never_500(client):
    assert client.post("/register", json={"email": "x"}).status_code == 415  # pages take forms; the API takes JSON
    assert client.post("/register", data={"file": (__import__("io").BytesIO(b"x" * 10), "a.txt")},
                       content_type="multipart/form-data").status_code == 422


def test_the_longest_addresses_fit_their_column(app, client):
    # Lower-casing may lengthen an address (İ becomes i and a combining dot); email-validator's limit of 254
    # UTF-8 bytes keeps even that within the 254-character column, which PostgreSQL enforces.
    email = "\u0130" * 32 + "@" + "a" * 63 + "." + "b" * 63 + "." + "c" * 50 + ".jp"
    response = client.post("/register", data=form_data(email=email))
    assert response.status_code == 303, field_errors(response)
