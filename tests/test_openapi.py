"""The API's OpenAPI document: it names every route under /api/v1, and Schemathesis fuzzes every operation against
a real app and database (CSRF and rate limits on, as in production) without a 5xx or an answer it does not name."""

import re

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from registration.api.openapi import DOCUMENT, MAX_CODE, PRINTABLE
from registration.services import checkins, door_data, registrations
from tests.test_api import api_error

PATH = "/api/v1/openapi.json"
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
#: Flask answers HEAD for every GET rule and OPTIONS for every rule by itself; HTTP says what they mean (HEAD is
#: GET without the body), so the document leaves them out.
AUTOMATIC_METHODS = {"HEAD", "OPTIONS"}
#: Every documented operation but the document's own, as (method, path).
OPERATIONS = [(method, path) for path, item in DOCUMENT["paths"].items() for method in item
              if method in HTTP_METHODS and path != PATH]
#: Whole numbers in a check-in body.
INTEGER_MEMBERS = ("registrant_id", "previous_latency_ms")


def printable(text: str) -> bool:
    """What the API takes as text: after trimming, non-empty and printable (registration/api/views.py `_text`)."""
    trimmed = text.strip()
    return bool(trimmed) and trimmed.isprintable()


# The document's own string format, so that Schemathesis generates the text the API must accept; it keeps to each
# member's maxLength by itself.
schemathesis.openapi.format(PRINTABLE, st.text(min_size=1, max_size=MAX_CODE).filter(printable))

CONFIG = schemathesis.Config.from_dict({
    # Every check Schemathesis has stays on. A well-formed scan whose nonce another scan used is refused with 422
    # (nonce_reused): generated nonces repeat, so that documented refusal of valid data is expected too.
    "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "401", "403", "404", "409", "422"]}},
    # The tests sign every request with real credentials; made-up ones for another scheme (a bearer token next to
    # the session) would only get it refused. ignored_auth still sends requests without any, and with made-up ones.
    "generation": {"with-security-parameters": False},
})
# The document itself, not the served copy: pytest collects one test per operation before any app exists
# (test_the_document_is_public_and_valid checks that the app serves this very document).
schema = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG)


def openapi_path(rule: str) -> str:
    """A Werkzeug rule in OpenAPI's spelling: /checkins/<id:checkin_id>/undo -> /checkins/{checkin_id}/undo."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def as_json_integers(case) -> None:
    """Send whole numbers in the check-in body as JSON integers (2, not 2.0), as the document asks."""
    # JSON Schema counts 2.0 as an integer, and Schemathesis sends it to see whether the API agrees; this API refuses
    # it on purpose (tests/test_api.py), and its document says so in words, which no generator reads.
    if isinstance(case.body, dict):
        for name in INTEGER_MEMBERS:
            value = case.body.get(name)
            if isinstance(value, float) and value.is_integer():
                case.body[name] = int(value)


def assert_described(response, method: str, path: str) -> None:
    """The answer is one the document names for this operation: its status, JSON, and a body of its schema."""
    responses = DOCUMENT["paths"][path][method]["responses"]
    status = str(response.status_code)
    assert status in responses or f"{status[0]}XX" in responses, (status, response.get_data())
    assert response.mimetype == "application/json"
    schema[path][method.upper()].validate_response(response)


def door_page_token(client) -> str:
    """The CSRF token the door page holds for the signed-in session, which it sends as X-CSRFToken."""
    page = client.get("/door").get_data(as_text=True)
    return re.search(r'<meta name="csrf-token" content="([^"]+)">', page).group(1)


def signed_in(app, make_staff):
    """A test client holding a door staff member's session, and the door page's CSRF token for it."""
    name, password = make_staff("door")
    client = app.test_client()
    assert client.post("/login", data={"name": name, "password": password}).status_code == 303
    return client, door_page_token(client)


@pytest.fixture
def seeded(app, make_attendee, make_registrant, make_device) -> None:
    """Someone to admit (registrant 1), someone without a ticket (2) and a standing check-in (1) to undo, so that the
    document's examples reach those answers."""
    make_attendee()
    make_registrant(attend_closing=False)
    checked_in = make_attendee()
    assert app.test_client().post("/api/v1/checkins", json={"code": checked_in.ticket_code},
                                  headers=make_device("seed")).status_code == 201


@pytest.fixture(params=["device", "session"])
def credentials(request, app, make_device, make_staff) -> dict:
    """How the fuzzer signs its requests: a scanner's bearer token, or a door staff session with the door page's
    CSRF token (keyword arguments for Case.call_and_validate)."""
    if request.param == "device":
        return {"headers": make_device("door-1")}
    client, token = signed_in(app, make_staff)
    # Schemathesis's WSGI transport does not report cookies passed to call() as the caller's, so ignored_auth would
    # take the session for credentials it made up and the API wrongly accepted. The device run keeps that check, and
    # TestRareAnswers covers the session's refusals.
    return {"headers": {"X-CSRFToken": token}, "cookies": {"session": client.get_cookie("session").value},
            "excluded_checks": [schemathesis.checks.ignored_auth]}


def test_every_route_is_described(app):
    routes = {}
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/"):
            routes.setdefault(openapi_path(rule.rule), set()).update(
                method.lower() for method in rule.methods - AUTOMATIC_METHODS)
    assert routes == {path: set(item) & HTTP_METHODS for path, item in DOCUMENT["paths"].items()}


def test_the_document_is_public_and_valid(app):
    response = app.test_client().get(PATH, headers={"Authorization": "Bearer not-a-token"})
    assert (response.status_code, response.mimetype) == (200, "application/json")
    assert response.json == DOCUMENT
    served = schemathesis.openapi.from_wsgi(PATH, app, config=CONFIG)
    served.validate()  # against the OpenAPI 3.1 meta-schema
    # Schemathesis fuzzes every operation but the one that serves the document it reads.
    assert {result.ok().label for result in served.get_all_operations()} == {
        f"{method.upper()} {path}" for method, path in OPERATIONS}


def test_the_document_is_not_rate_limited(app):
    # Production's limits are on; the largest is 60 requests a minute from one address.
    client = app.test_client()
    assert {client.get(PATH).status_code for _ in range(100)} == {200}


class TestRareAnswers:
    """Answers the fuzzer rarely or never provokes (it signs every request, keeps its bodies small and searches for
    random text) keep to the document too."""

    @pytest.mark.parametrize(("method", "path"), OPERATIONS)
    def test_without_credentials_or_csrf(self, app, make_staff, method, path):
        url, body = path.replace("{checkin_id}", "1"), {"code": "A"} if method == "post" else None
        anonymous = app.test_client()
        for headers in ({}, {"Authorization": "Bearer not-a-token"}):
            response = anonymous.open(url, method=method, json=body, headers=headers, without_csrf=True)
            assert api_error(response) == {"result": "unauthorized"}
            assert_described(response, method, path)
        client, _ = signed_in(app, make_staff)
        response = client.open(url, method=method, json=body, without_csrf=True)
        if method == "post":
            assert api_error(response) == {"result": "unauthorized", "reason": "csrf"}
        assert_described(response, method, path)

    @pytest.mark.parametrize(("method", "path"), [("get", PATH), *OPERATIONS])
    def test_a_body_too_long(self, client, make_device, method, path):
        # Refused before the credentials are looked at, on every operation (GETs too: it is the declared length).
        for headers in ({}, make_device()):
            response = client.open(path.replace("{checkin_id}", "1"), method=method, headers=headers,
                                   data='{"code": "' + "A" * 100_000 + '"}', content_type="application/json",
                                   without_csrf=True)
            assert response.status_code == 413
            assert_described(response, method, path)

    def test_search_results(self, client, seeded, make_device):
        response = client.get("/api/v1/registrants?q=山田", headers=make_device())
        assert {person["checked_in"] for person in response.json["results"]} == {True, False}
        assert_described(response, "get", "/api/v1/registrants")

    @pytest.mark.parametrize(("method", "path", "service", "name"), [
        ("post", "/api/v1/checkins", checkins, "check_in"),
        ("post", "/api/v1/checkins/{checkin_id}/undo", checkins, "undo"),
        ("get", "/api/v1/stats", checkins, "stats"),
        ("get", "/api/v1/registrants", registrations, "search"),
        ("get", "/api/v1/door/dataset", door_data, "door_dataset"),
    ])
    def test_a_server_error(self, client, make_device, monkeypatch, method, path, service, name):
        def broken(*args, **kwargs):
            raise RuntimeError("broken on purpose")

        monkeypatch.setattr(service, name, broken)
        response = client.open(path.replace("{checkin_id}", "1"), method=method,
                               json={"code": "A"} if method == "post" else None, headers=make_device())
        assert response.status_code == 500
        assert_described(response, method, path)


@schema.parametrize()
@settings(max_examples=50, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_every_answer_is_described(case, app, seeded, credentials):
    # The schema exists before any app does; Schemathesis's own probes (ignored_auth sends the request again without
    # credentials) go through the schema, so the operation and the schema both learn this test's app.
    case.operation.app = case.operation.schema.app = app
    as_json_integers(case)
    case.call_and_validate(**credentials)



@pytest.mark.parametrize("path", ["/api/v1/checkins", "/api/v1/openapi.json", "/api/v1/stats"])
def test_options_answers_json_405_with_allow(client, make_device, path):
    response = client.open(path, method="OPTIONS", headers=make_device())
    assert response.status_code == 405 and response.is_json
    assert response.json["result"] == "method_not_allowed" and "OPTIONS" not in response.headers["Allow"]
