"""The attacks a public registration site meets, each repeated as it was found (issue 10), each now refused:
invisible text, overlong addresses, oversized and chunked bodies, a weak production key, cached personal data,
forged client addresses, and a program file of 200,000 rows."""

import json
import http.client
import io
import re
import socket
import tracemalloc
from urllib.parse import urlencode, urlsplit

import pytest
from flask import url_for
from sqlalchemy import func, select

import config
from registration import CACHEABLE_ENDPOINTS, create_app
from registration.extensions import db
from registration.models import ProgramSession, Registrant
from registration.services import program_import
from registration.services.program_import import MAX_SESSIONS, ProgramFileError
from registration.text import has_visible_character
from tests.conftest import form_data, jst, run_flask
from tests.test_program_import import session_row, write_csv
from tests.test_validation import field_errors
from tests.test_api import api_error

#: Strings that show nothing, each a way it was tried: blank glyphs that are letters or symbols by category,
#: zero-width and format characters, spaces of every width, marks with nothing to sit on, and mixtures.
INVISIBLE = [
    "\u2800", "\u115f", "\u1160", "\uffa0", "\u3164", "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad",
    "\u3000", "\u00a0 \u2003", "\u0301\u0308", "\ufe0f", "\U000e0041\U000e0042", "\u180e", "\U0001d159",
    "\u2800\u3164\u200b\u3000", "\u115f\u1160\uffa0",
]
VISIBLE = ["山田", "O'Brien", "👩\u200d💻", "ｱ", "\u1100", "a\u200b", "\u2800x", "-", "1", "\u00e9", "e\u0301"]
REQUIRED_TEXT = ["family_name", "given_name", "organization"]
OPTIONAL_TEXT = ["family_name_kana", "given_name_kana", "job_title"]
MIB = 1024 * 1024


def registrants(app) -> list[Registrant]:
    """Everyone stored, cancelled or not."""
    with app.app_context():
        return list(db.session.scalars(select(Registrant)))


# --- 1. invisible text -----------------------------------------------------------------------------------

@pytest.mark.parametrize("text", INVISIBLE)
def test_invisible_strings_show_nothing(text):
    assert not has_visible_character(text)


@pytest.mark.parametrize("text", VISIBLE)
def test_any_visible_character_counts(text):
    assert has_visible_character(text)


@pytest.mark.parametrize("field", REQUIRED_TEXT)
@pytest.mark.parametrize("text", INVISIBLE)
def test_registration_refuses_required_fields_that_show_nothing(app, client, field, text):
    response = client.post("/register", data=form_data(**{field: text}))
    assert response.status_code == 422
    assert field_errors(response)[field] == "この項目を入力してください。"
    assert registrants(app) == []


def test_the_message_is_english_when_chosen(app, client):
    client.set_cookie("lang", "en")
    response = client.post("/register", data=form_data(family_name="\u2800", organization="\u3164"))
    errors = field_errors(response)
    assert errors["family_name"] == errors["organization"] == "Please fill in this field."


@pytest.mark.parametrize("field", OPTIONAL_TEXT)
@pytest.mark.parametrize("text", ["\u2800", "\u3164\u200b", "\ufeff", "\u00ad\u3000"])
def test_optional_fields_that_show_nothing_are_stored_empty(app, client, field, text):
    # The field looks empty on screen, so it is saved empty: a message about characters nobody can see would
    # leave the person nothing to correct.
    response = client.post("/register", data=form_data(**{field: text}))
    assert response.status_code == 303, field_errors(response)
    (person,) = registrants(app)
    assert getattr(person, field) == ""


def test_the_personal_page_refuses_a_name_that_shows_nothing(app, client, make_registrant):
    person = make_registrant()
    details = form_data(email=person.email, family_name="\u115f\u1160", job_title="\u2800")
    response = client.post(f"/me/{person.secret}", data=details)
    assert response.status_code == 422
    assert field_errors(response)["family_name"] == "この項目を入力してください。"
    (stored,) = registrants(app)
    assert (stored.family_name, stored.job_title) == (person.family_name, person.job_title)
    # The optional field alone is saved empty.
    response = client.post(f"/me/{person.secret}", data=form_data(email=person.email, job_title="\u2800"))
    assert response.status_code == 303, field_errors(response)
    assert registrants(app)[0].job_title == ""


def test_the_walk_in_form_refuses_a_name_that_shows_nothing(app, client, make_staff, frozen_clock):
    frozen_clock(jst(2023, 9, 14, 13))  # walk-ins are registered after the deadline
    name, password = make_staff("admin")
    client.post("/login", data={"name": name, "password": password})
    response = client.post("/admin/walk-ins", data=form_data(email="walkin@example.jp", given_name="\u3164",
                                                              organization="\u200b\u200b"))
    assert response.status_code == 422
    errors = field_errors(response)
    assert errors["given_name"] == errors["organization"] == "この項目を入力してください。"
    assert registrants(app) == []


@pytest.mark.parametrize("column", ["title", "speaker_organization", "key", "category", "language"])
@pytest.mark.parametrize("text", ["\u2800", "\u115f\u1160", "\u200b\ufeff"])
def test_the_importer_refuses_required_cells_that_show_nothing(app_ctx, tmp_path, column, text):
    path = write_csv(tmp_path / "p.csv", [{**session_row("a"), column: text}])
    with pytest.raises(ProgramFileError) as refused:
        program_import.import_program(program_import.read_program_file(path))
    assert str(refused.value.problems[0]) == f"line 2: {column}: missing (the cell shows only invisible characters)"


def test_the_importer_stores_an_abstract_that_shows_nothing_as_empty(app_ctx, tmp_path):
    program_import.import_program(program_import.read_program_file(
        write_csv(tmp_path / "p.csv", [session_row("a", abstract="\u2800\u200b")])))
    assert db.session.scalar(select(ProgramSession.abstract).where(ProgramSession.key == "a")) == ""


# --- 2. e-mail length limits ------------------------------------------------------------------------------

LONG_LOCAL = "a" * 65 + "@example.jp"
LONG_ADDRESS = "taro@" + ".".join(["d" * 60] * 5) + ".jp"
#: 133 characters, but 255 bytes in UTF-8: SMTP counts bytes.
LONG_IN_BYTES = "taro@" + "山" * 61 + "." + "d" * 63 + ".jp"
LOCAL_MESSAGE = "メールアドレスの@より前の部分は64文字以内で入力してください（半角英数字・記号以外の文字は1文字を2〜4文字として数えます）。"
#: 22 characters before the @, but 66 octets: RFC 5321 counts octets.
LONG_LOCAL_IN_BYTES = "あ" * 22 + "@example.jp"
ADDRESS_MESSAGE = "メールアドレスは254文字以内で入力してください（半角英数字・記号以外の文字は1文字を2〜4文字として数えます）。"


def post_address(client, make_registrant, form: str, email: str):
    """Submit `email` through one of the forms that take an address."""
    if form == "register":
        return client.post("/register", data=form_data(email=email))
    if form == "address change":
        person = make_registrant()
        return client.post(f"/me/{person.secret}", data=form_data(email=email))
    return client.post("/lost-link", data={"email": email})


@pytest.mark.parametrize("form", ["register", "address change", "lost link"])
@pytest.mark.parametrize(("email", "message"), [
    (LONG_LOCAL, LOCAL_MESSAGE), (LONG_LOCAL_IN_BYTES, LOCAL_MESSAGE), (LONG_ADDRESS, ADDRESS_MESSAGE),
    (LONG_IN_BYTES, ADDRESS_MESSAGE)])
def test_overlong_addresses_are_refused_with_the_limit(app, client, make_registrant, form, email, message):
    assert len(LONG_LOCAL) == 76 and len(LONG_ADDRESS) == 312 and len(LONG_IN_BYTES.encode()) == 255
    response = post_address(client, make_registrant, form, email)
    assert response.status_code == 422
    assert field_errors(response)["email"] == message
    assert all(person.email != email and person.pending_email != email for person in registrants(app))


@pytest.mark.parametrize("form", ["register", "address change", "lost link"])
def test_addresses_at_the_limits_are_accepted(app, client, make_registrant, form):
    email = "a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 58 + ".jp"
    assert len(email) == 254
    response = post_address(client, make_registrant, form, email)
    assert response.status_code in (200, 303), field_errors(response)


def test_the_limit_messages_in_english(client):
    client.set_cookie("lang", "en")
    assert field_errors(client.post("/lost-link", data={"email": LONG_LOCAL}))["email"] == (
        "The part before the @ may have at most 64 characters (a character outside ASCII counts as two to four).")
    assert field_errors(client.post("/lost-link", data={"email": LONG_ADDRESS}))["email"] == (
        "An email address may have at most 254 characters (a character outside ASCII counts as two to four).")


# --- 3. 413 however the body is sent ----------------------------------------------------------------------

def post_streamed(client, path: str, body: bytes, content_type: str, **kwargs):
    """POST `body` as a chunked request: no Content-Length, a stream the server says it has terminated."""
    return client.post(path, input_stream=io.BytesIO(body), content_type=content_type,
                       headers={"Transfer-Encoding": "chunked", **kwargs.pop("headers", {})},
                       environ_overrides={"wsgi.input_terminated": True}, **kwargs)


PAGES = ["/register", "/lost-link", "/login", "/language", "/me/unknown-secret"]


@pytest.mark.parametrize("path", PAGES)
@pytest.mark.parametrize("streamed", [False, True], ids=["content-length", "chunked"])
def test_a_10_mib_form_gets_413_on_pages(client, path, streamed):
    body = b"family_name=" + b"a" * (10 * MIB)
    if streamed:
        response = post_streamed(client, path, body, "application/x-www-form-urlencoded", without_csrf=True)
    else:
        response = client.post(path, data=body, content_type="application/x-www-form-urlencoded", without_csrf=True)
    assert response.status_code == 413
    assert "大きすぎます" in response.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/api/v1/checkins", "/api/v1/checkins/1/undo"])
@pytest.mark.parametrize("streamed", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("authorised", [False, True], ids=["anonymous", "device"])
def test_a_10_mib_body_gets_413_on_the_api(client, make_device, path, streamed, authorised):
    headers = make_device() if authorised else {}
    body = b'{"code": "' + b"A" * (10 * MIB) + b'"}'
    if streamed:
        response = post_streamed(client, path, body, "application/json", headers=headers, without_csrf=True)
    else:
        response = client.post(path, data=body, content_type="application/json", headers=headers,
                               without_csrf=True)
    assert (response.status_code, api_error(response)) == (413, {"result": "too_large"})


def padded_registration(client, size: int) -> bytes:
    """A valid urlencoded registration with its CSRF token, padded with an ignored field to exactly `size` bytes."""
    body = urlencode({**form_data(), "csrf_token": client.csrf_token(), "pad": ""}).encode()
    return body + b"x" * (size - len(body))


def test_a_chunked_registration_up_to_the_limit_is_stored(app, client):
    limit = app.config["MAX_CONTENT_LENGTH"]
    response = post_streamed(client, "/register", padded_registration(client, limit),
                             "application/x-www-form-urlencoded", without_csrf=True)
    assert response.status_code == 303
    assert len(registrants(app)) == 1
    response = post_streamed(client, "/register", padded_registration(client, limit + 1),
                             "application/x-www-form-urlencoded", without_csrf=True)
    assert response.status_code == 413
    assert len(registrants(app)) == 1


def raw_post(url: str, path: str, body_size: int, *, chunked: bool, content_type: str,
             headers: dict | None = None, prefix: bytes = b"") -> tuple[int, bytes]:
    """POST `prefix` plus filler to a real server over a plain socket, as an attacker's client would; the server
    may answer and close before the whole body is sent, so a send that fails is not an error here."""
    parts = urlsplit(url)
    head = [f"POST {path} HTTP/1.1", f"Host: {parts.netloc}", f"Content-Type: {content_type}", "Connection: close"]
    head += [f"{name}: {value}" for name, value in (headers or {}).items()]
    head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {body_size}")
    with socket.create_connection((parts.hostname, parts.port), timeout=60) as sock:
        try:
            sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
            remaining, first = body_size, prefix
            while remaining > 0:
                piece = (first + b"a" * 65536)[:min(65536, remaining)]
                first = b""
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                remaining -= len(piece)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered early and closed: what it answered is in the socket
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
    response = http.client.HTTPResponse(_Replay(answer))
    response.begin()
    return response.status, response.read()


class _Replay:
    """A socket stand-in that replays recorded bytes, for http.client to parse."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def makefile(self, mode: str):
        return io.BytesIO(self.data)


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
def test_gunicorn_answers_413_to_10_mib_on_pages_and_the_api(live_server, chunked):
    server = live_server(workers=1)
    status, body = raw_post(server.url, "/register", 10 * MIB, chunked=chunked,
                            content_type="application/x-www-form-urlencoded", prefix=b"family_name=")
    assert status == 413 and "大きすぎます".encode() in body
    status, body = raw_post(server.url, "/api/v1/checkins", 10 * MIB, chunked=chunked,
                            content_type="application/json", prefix=b'{"code": "')
    assert status == 413 and json.loads(body)["result"] == "too_large" and set(json.loads(body)) == {"result", "request_id"}
    assert "Traceback" not in server.errors()


def test_gunicorn_takes_a_chunked_registration_within_the_limit(live_server):
    server = live_server(workers=1)
    conn = http.client.HTTPConnection(urlsplit(server.url).hostname, urlsplit(server.url).port, timeout=60)
    conn.request("GET", "/register")
    page = conn.getresponse()
    cookie = page.getheader("Set-Cookie").split(";")[0]
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.read().decode()).group(1)
    body = urlencode({**form_data(email="chunked@example.jp"), "csrf_token": token}).encode()
    conn.request("POST", "/register", body=iter([body[:100], body[100:]]), encode_chunked=True,
                 headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie})
    assert conn.getresponse().status == 303
    assert server.query("SELECT email FROM registrants") == [("chunked@example.jp",)]


# --- 4. production refuses a weak SECRET_KEY --------------------------------------------------------------

@pytest.mark.parametrize("key", ["x", "test-secret-key", "a" * 31, "鍵" * 10])  # 鍵 is 3 bytes: 30 bytes
def test_production_refuses_a_short_secret_key(monkeypatch, tmp_path, key):
    monkeypatch.setenv("APP_ENV", "production")
    with pytest.raises(RuntimeError, match=r"SECRET_KEY is too short \(\d+ bytes\): production refuses to start "
                                           r"with fewer than 32 bytes"):
        create_app({"SECRET_KEY": key}, instance_path=str(tmp_path))


def test_production_starts_with_32_bytes_and_development_with_any_key(monkeypatch, tmp_path):
    assert create_app({"SECRET_KEY": "short"}, instance_path=str(tmp_path)).config["SECRET_KEY"] == "short"
    monkeypatch.setenv("APP_ENV", "production")
    assert create_app({"SECRET_KEY": "k" * 32, "RATELIMIT_STORAGE_URI": "memory://"},
                      instance_path=str(tmp_path)).config["REQUIRE_SECRET_KEY"]


def test_a_production_process_with_a_short_key_says_why_it_does_not_start(database_url):
    result = run_flask({"APP_ENV": "production", "SECRET_KEY": "changeme", "DATABASE_URL": database_url,
                        "PATH": "/usr/bin:/bin"}, "seats", "check")
    assert result.returncode != 0
    assert "SECRET_KEY is too short (8 bytes)" in result.stdout + result.stderr
    assert "changeme" not in result.stdout + result.stderr


# --- 5. Cache-Control: no-store ---------------------------------------------------------------------------

@pytest.fixture
def every_url(app, make_attendee, make_staff):
    """Every rule of the URL map as a URL with real arguments (a seated registrant, a session), plus an admin."""
    person = make_attendee()
    with app.app_context():
        session = db.session.scalar(select(ProgramSession).limit(1))
        values = {"secret": person.secret, "token": "not-a-token", "checkin_id": 1, "registrant_id": person.id,
                  "category": session.category.key, "key": session.key, "filename": "style.css"}
    urls = []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            # An argument this fixture does not know yet gets "1": the rule is still visited.
            url = url_for(rule.endpoint, **{name: values.get(name, 1) for name in rule.arguments})
            urls.extend((rule.endpoint, method, url) for method in ("GET", "POST") if method in rule.methods)
    return urls, make_staff("admin"), person


def test_no_store_on_everything_but_the_public_pages(app, every_url):
    urls, (name, password), person = every_url
    admin = app.test_client()
    assert admin.post("/login", data={"name": name, "password": password}).status_code == 303
    statuses = {}
    # Reads first, as a signed-in admin so staff pages are the real pages; then posts from a stranger.
    for endpoint, method, url in sorted(urls, key=lambda item: item[1]):
        client = admin if method == "GET" else app.test_client()
        with client.open(url, method=method) as response:  # closed: a static file's response holds the file open
            statuses[method, url] = response.status_code
            cache = response.headers.get("Cache-Control", "")
        if endpoint in CACHEABLE_ENDPOINTS:
            assert "no-store" not in cache, (method, url)
        else:
            assert cache == "no-store", (method, url, response.status_code)
    secret = person.secret
    shown = {f"/me/{secret}", f"/me/{secret}/welcome", f"/me/{secret}/ticket", f"/me/{secret}/ticket.png",
             f"/me/{secret}/cancel", "/admin", "/admin/attendance", "/admin/registrants.csv",
             "/admin/attendance.csv", "/admin/attendance/records.csv", "/door", "/login", "/api/v1/registrants"}
    assert {statuses["GET", url] for url in shown} == {200}, statuses  # the real pages, not redirects


def test_public_pages_stay_cacheable(client):
    for path in ("/", "/privacy", "/program", "/static/style.css"):
        with client.get(path) as response:
            assert response.status_code == 200
            assert "no-store" not in response.headers.get("Cache-Control", ""), path
            if not path.startswith("/static/"):
                # The page holds a CSRF token of this visitor's session: kept by the browser, never by a shared cache.
                assert response.headers["Cache-Control"] == "private", path


# --- 6. HSTS and the proxy -------------------------------------------------------------------------------

HSTS = "max-age=63072000; includeSubDomains"


def test_no_hsts_locally(client):
    assert "Strict-Transport-Security" not in client.get("/").headers


def test_hsts_when_configured(make_app):
    response = make_app(HSTS=True).test_client().get("/")
    assert response.headers["Strict-Transport-Security"] == HSTS


def test_hsts_is_on_in_production_by_default(monkeypatch, tmp_path):
    assert config.ProductionConfig.HSTS and not config.Config.HSTS
    monkeypatch.setenv("APP_ENV", "production")
    app = create_app({"SECRET_KEY": "k" * 32, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'p.sqlite'}",
                      "RATELIMIT_STORAGE_URI": "memory://"},
                     instance_path=str(tmp_path))
    assert app.test_client().get("/nowhere").headers["Strict-Transport-Security"] == HSTS


def lost_link_statuses(client, addresses: list[str]) -> list[int]:
    """Ask for a lost link once per X-Forwarded-For value, as requests relayed by a proxy would."""
    return [client.post("/lost-link", data={"email": "someone@example.jp"},
                        headers={"X-Forwarded-For": address}).status_code for address in addresses]


def test_behind_one_proxy_each_client_has_its_own_rate_limit(make_app):
    client = make_app(PROXY_COUNT=1, LOST_LINK_RATE_LIMIT="2 per minute").test_client()
    assert lost_link_statuses(client, ["203.0.113.1"] * 3) == [200, 200, 429]
    assert lost_link_statuses(client, ["203.0.113.2"] * 2) == [200, 200]  # another visitor behind the same nginx
    # nginx appends the address it saw: a value the client put in front is not trusted.
    assert lost_link_statuses(client, ["198.51.100.9, 203.0.113.1"]) == [429]


def test_without_a_proxy_a_forged_forwarded_for_is_ignored(make_app):
    client = make_app(LOST_LINK_RATE_LIMIT="2 per minute").test_client()
    assert lost_link_statuses(client, ["203.0.113.1", "203.0.113.2", "203.0.113.3"]) == [200, 200, 429]


def test_proxy_count_must_be_a_number(monkeypatch):
    monkeypatch.setenv("PROXY_COUNT", "one")
    with pytest.raises(ValueError, match="PROXY_COUNT must be a whole number"):
        config._count("PROXY_COUNT", "0")


# --- 7. the program importer ------------------------------------------------------------------------------

def generated_program(path, rows: int, *, category: str = "cost"):
    """A program file with `rows` short sessions, as a script would write one."""
    lines = ["key,category,title,speaker_organization,language,abstract,video_url"]
    lines += [f"k{n},{category},T,O,ja,," for n in range(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_the_200000_row_file_is_refused_in_two_lines(app, runner, tmp_path):
    path = generated_program(tmp_path / "huge.csv", 200_000, category="nope")
    assert path.stat().st_size > app.config["PROGRAM_IMPORT_MAX_BYTES"]
    result = runner.invoke(args=["program", "import", str(path)])
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        (f"{path}: the file is larger than 2,097,152 bytes, the most a program file may have "
         "(PROGRAM_IMPORT_MAX_BYTES): is it the right file?"),
        "Error: 1 problem(s) found; the program is unchanged."]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ProgramSession)) == 10


def test_the_size_is_checked_before_the_file_is_read(app_ctx, tmp_path):
    path = tmp_path / "sparse.csv"
    with path.open("wb") as file:
        file.truncate(1024 * MIB)  # a gigabyte on paper, nothing on disk
    tracemalloc.start()
    try:
        with pytest.raises(ProgramFileError, match="larger than"):
            program_import.read_program_file(path)
        assert tracemalloc.get_traced_memory()[1] < MIB
    finally:
        tracemalloc.stop()


def test_the_limit_is_configuration(make_app, tmp_path):
    app = make_app(PROGRAM_IMPORT_MAX_BYTES=100)
    path = write_csv(tmp_path / "p.csv", [session_row("a")])
    result = app.test_cli_runner().invoke(args=["program", "import", str(path)])
    assert result.exit_code == 1 and "larger than 100 bytes" in result.output


def test_small_rows_stop_at_the_session_limit(app_ctx, tmp_path):
    # 100,000 short rows fit in 2 MiB; reading stops at the 1,001st instead of checking them all.
    path = generated_program(tmp_path / "many.csv", 100_000)
    assert path.stat().st_size < 2 * MIB
    tracemalloc.start()
    try:
        with pytest.raises(ProgramFileError) as refused:
            program_import.read_program_file(path)
        assert tracemalloc.get_traced_memory()[1] < 30 * MIB
    finally:
        tracemalloc.stop()
    assert refused.value.report() == [(f"line {MAX_SESSIONS + 2}: more than 1000 sessions (the program has tens): "
                                       "is it the right file? Reading stopped here.")]


def test_small_yaml_items_stop_at_the_session_limit(app_ctx, tmp_path):
    path = tmp_path / "many.yaml"
    path.write_text("".join(f"- {{k: {n}}}\n" for n in range(150_000)), encoding="utf-8")
    assert path.stat().st_size < 2 * MIB
    with pytest.raises(ProgramFileError, match="line 1001: more than 1000 sessions"):
        program_import.read_program_file(path)
    path.write_text("- [" + ", ".join("1" for _ in range(200_000)) + "]\n", encoding="utf-8")
    with pytest.raises(ProgramFileError, match="more than 50000 values"):
        program_import.read_program_file(path)


def test_at_most_100_problems_are_listed(app, runner, tmp_path):
    path = generated_program(tmp_path / "bad.csv", 150, category="nope")
    result = runner.invoke(args=["program", "import", str(path)])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert len(lines) == 102
    assert lines[0].startswith(f"{path}: line 2: category 'nope' is unknown")
    assert lines[99].startswith(f"{path}: line 101: category 'nope' is unknown")
    assert lines[100:] == [f"{path}: ... and 50 more problems", "Error: 150 problem(s) found; the program is unchanged."]


def test_one_more_problem_is_named_in_the_singular():
    problems = [program_import.Problem(line, "x") for line in range(1, 103)]
    assert ProgramFileError(problems).report()[-1] == "... and 2 more problems"
    assert ProgramFileError(problems[:101]).report()[-1] == "... and 1 more problem"
    assert len(ProgramFileError(problems[:100]).report()) == 100


@pytest.mark.parametrize("text", ["[" * 20000 + "]" * 20000, "a: " + "[" * 5000 + "]" * 5000])
def test_yaml_nested_thousands_deep_is_a_problem_not_a_crash(app_ctx, tmp_path, text):
    path = tmp_path / "deep.yaml"
    path.write_text(text)
    with pytest.raises(program_import.ProgramFileError) as excinfo:
        program_import.read_program_file(path)
    assert "nested far deeper" in str(excinfo.value.problems[0])
