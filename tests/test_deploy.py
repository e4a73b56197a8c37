"""The deployment in deploy/, tried for real: the nginx site passes `nginx -t` and runs in front of two gunicorns
started as the systemd unit starts them, the units pass `systemd-analyze verify`, and on PostgreSQL a backup made by
deploy/backup.sh is restored with pg_restore into a new database, where the app runs and the event day is rehearsed."""

import http.client
import json
import os
import re
import shlex
import shutil
import ssl
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

import config
from registration import create_app
from registration.extensions import db
from registration.models import Registrant
from registration.services import checkins, viewing
from registration.services.registrations import register
from tests.conftest import REDIS_URL, ROOT, TEST_DATABASE_URL, free_port, run_flask, wait_for_port

DEPLOY = ROOT / "deploy"
SITE = DEPLOY / "nginx" / "codt2023.conf"
UNITS = DEPLOY / "systemd"
NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
#: The checkout and its settings as the units name them; the tests put this repository in their place.
SRV = "/srv/codt2023"
#: A production secret of the required length (64 hex characters).
SECRET = "5" * 64


def exec_lines(unit: str, key: str = "ExecStart") -> list[list[str]]:
    """The commands of a unit's ExecStart= lines, with this checkout in place of /srv/codt2023."""
    lines = re.findall(rf"^{key}=(.+)$", (UNITS / unit).read_text(), re.M)
    return [shlex.split(line.replace(SRV, str(ROOT))) for line in lines]


def sub(text_: str, old: str, new: str, count: int = 1) -> str:
    """Replace `old` exactly `count` times: a sample that changed shape fails here instead of going unrewritten."""
    assert text_.count(old) == count, f"expected {count} x {old!r} in the sample"
    return text_.replace(old, new)


# --- nginx -------------------------------------------------------------------------------------------------

def tls_pair(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, made with openssl."""
    if not shutil.which("openssl"):
        pytest.skip("openssl is needed to make the test's certificate")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def nginx_conf(folder: Path, app_ports: list[int], http_port: int, https_port: int) -> Path:
    """A whole nginx.conf around a copy of the sample site: files under `folder`, high ports, the test's
    certificate and app servers, this checkout's static files."""
    cert, key = tls_pair(folder)
    site = SITE.read_text()
    site = sub(site, "listen 80;", f"listen 127.0.0.1:{http_port};")
    site = sub(site, "listen 80 default_server;", f"listen 127.0.0.1:{http_port} default_server;")
    site = sub(site, "/var/log/nginx/", f"{folder}/", count=5)
    site = sub(site, "listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;")
    site = re.sub(r"^\s*listen \[::\].*\n", "", site, flags=re.M)  # the machine may have no IPv6
    site = sub(site, "/etc/ssl/codt2023/fullchain.pem", str(cert))
    site = sub(site, "/etc/ssl/codt2023/privkey.pem", str(key))
    servers = re.findall(r"^\s*server (\S+:\d+) ", site, re.M)
    assert len(servers) == 2
    for address, port in zip(servers, app_ports):
        site = sub(site, f"server {address} ", f"server 127.0.0.1:{port} ")
    site = sub(site, SRV, str(ROOT))
    # On 443 $host is what a browser sends as Host; on the test's high port the port must stay in it, or the app's
    # same-origin check of https form posts compares the Referer's port with none.
    site = sub(site, "$host;", "$http_host;", count=2)
    (folder / "site.conf").write_text(site)
    temp = "\n".join(f"    {kind}_temp_path {folder / kind};" for kind in ("client_body", "proxy", "fastcgi",
                                                                              "uwsgi", "scgi"))
    conf = folder / "nginx.conf"
    conf.write_text(f"""{"user root;" if os.geteuid() == 0 else ""}
pid {folder / "nginx.pid"};
error_log {folder / "error.log"} warn;
worker_processes 1;
events {{ worker_connections 128; }}
http {{
    {"include /etc/nginx/mime.types;" if Path("/etc/nginx/mime.types").exists() else ""}
    access_log {folder / "access.log"};
{temp}
    include {folder / "site.conf"};
}}
""")
    return conf


def nginx_test(conf: Path) -> subprocess.CompletedProcess:
    """`nginx -t` on a configuration."""
    return subprocess.run([NGINX, "-t", "-c", str(conf), "-p", str(conf.parent)], capture_output=True, text=True)


needs_nginx = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (scripts/test installs it)")


@needs_nginx
def test_sample_site_passes_nginx_t_and_a_broken_one_fails(tmp_path):
    conf = nginx_conf(tmp_path, [free_port(), free_port()], free_port(), free_port())
    result = nginx_test(conf)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr
    # The check can fail: a directive without its semicolon.
    site = tmp_path / "site.conf"
    site.write_text(site.read_text().replace("client_max_body_size 64k;", "client_max_body_size 64k"))
    assert nginx_test(conf).returncode != 0
    # nginx refuses what the app would refuse anyway: the same body limit.
    size = re.search(r"client_max_body_size (\d+)k;", SITE.read_text()).group(1)
    assert int(size) * 1024 == config.Config.MAX_CONTENT_LENGTH


class Visitor:
    """One client of the site over https from its own loopback address, keeping its cookies."""

    def __init__(self, port: int, cert: Path, source: str = "127.0.0.1") -> None:
        self.port, self.source, self.cookies = port, source, {}
        self.context = ssl.create_default_context(cafile=str(cert))

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict | None = None) -> tuple[http.client.HTTPResponse, bytes]:
        connection = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context, timeout=30,
                                                 source_address=(self.source, 0))
        try:
            sent = {**(headers or {})}
            if self.cookies:
                sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            data = response.read()
            for header in response.headers.get_all("Set-Cookie") or []:
                name, _, rest = header.partition("=")
                self.cookies[name] = rest.split(";", 1)[0]
            return response, data
        finally:
            connection.close()

    def sign_in_attempt(self, headers: dict | None = None) -> int:
        """A wrong password on the staff sign-in form, sent as a browser sends it; the status."""
        _, page = self.request("GET", "/login", headers=headers)
        token = re.search(rb'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1).decode()
        form = f"name=door-x&password=wrong&csrf_token={token}".encode()
        response, _ = self.request("POST", "/login", form, {
            **(headers or {}), "Content-Type": "application/x-www-form-urlencoded",
            "Referer": f"https://127.0.0.1:{self.port}/login"})
        return response.status


def answered_by(logs: list[Path], request_id: str, timeout: float = 10) -> int | None:
    """Which app server's log has the request line with this id (written when the answer is closed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for n, log in enumerate(logs):
            for line in log.read_text(errors="replace").splitlines():
                try:
                    if json.loads(line).get("request_id") == request_id:
                        return n
                except ValueError:  # gunicorn's other lines, or a line still being written
                    continue
        time.sleep(0.05)
    return None


@needs_nginx
@pytest.mark.real_clock
def test_nginx_in_front_of_two_app_servers(tmp_path, redis_prefix):
    # The database as a deploy leaves it: the migrate unit's commands on a new SQLite file.
    env = {**os.environ, "APP_ENV": "production", "DATABASE_URL": f"sqlite:///{tmp_path / 'site.sqlite'}",
           "SECRET_KEY": SECRET, "RATELIMIT_STORAGE_URI": REDIS_URL, "RATELIMIT_KEY_PREFIX": redis_prefix,
           "PROXY_COUNT": "1", "LOGIN_RATE_LIMIT": "2 per minute", "REHEARSAL_CLOCK": "", "WORKERS": "1",
           "MAIL_URL": f"file://{tmp_path / 'outbox'}", "PUBLIC_BASE_URL": "https://127.0.0.1"}
    for command in exec_lines("codt2023-migrate.service"):
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    # Two app servers, each started as codt2023-web.service starts it.
    [web] = exec_lines("codt2023-web.service")
    app_ports, processes, logs = [free_port(), free_port()], [], []
    http_port, https_port = free_port(), free_port()
    conf = nginx_conf(tmp_path, app_ports, http_port, https_port)
    try:
        for port in app_ports:
            logs.append(tmp_path / f"app-{port}.log")
            with logs[-1].open("ab") as log:
                processes.append(subprocess.Popen(web, cwd=ROOT, env={**env, "GUNICORN_BIND": f"127.0.0.1:{port}"},
                                                  stdout=subprocess.DEVNULL, stderr=log))
        with (tmp_path / "nginx.out").open("ab") as out:
            processes.append(subprocess.Popen([NGINX, "-c", str(conf), "-p", str(tmp_path), "-g", "daemon off;"],
                                              stdout=out, stderr=out))
        for port, process, log in zip([*app_ports, https_port], processes, [*logs, tmp_path / "nginx.out"]):
            wait_for_port(port, process, log)
        visitor = Visitor(https_port, tmp_path / "cert.pem")

        response, body = visitor.request("GET", "/readyz")
        assert response.status == 200, body
        assert json.loads(body)["status"] == "ready"
        response, _ = visitor.request("GET", "/healthz")
        assert response.status == 200

        # nginx makes the request id, the app logs it, the client gets it back; a client's own id is replaced.
        ids = []
        for _ in range(4):
            response, _ = visitor.request("GET", "/")
            assert response.status == 200
            ids.append(response.headers["X-Request-ID"])
            assert re.fullmatch(r"[0-9a-f]{32}", ids[-1])
        assert {answered_by(logs, id_) for id_ in ids} == {0, 1}  # round robin: both servers answer
        for chosen in ("lb-7f3a.42", "victim@example.com", "not an id"):
            response, _ = visitor.request("GET", "/program", headers={"X-Request-ID": chosen})
            assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])
            assert answered_by(logs, response.headers["X-Request-ID"]) is not None

        # nginx's own log lines hold nothing personal: no path (a personal link), query, address or Referer.
        Visitor(https_port, tmp_path / "cert.pem", "127.0.0.4").request(
            "GET", "/me/PERSONALTOKEN0123456789abcdef?email=victim%40example.com",
                        headers={"Referer": "https://codt2023.example.jp/me/PERSONALTOKEN0123456789abcdef"})
        access_log = (tmp_path / "codt2023.access.log").read_text()
        assert access_log.count('"logger": "nginx"') >= 8
        assert all(json.loads(line) for line in access_log.splitlines())
        for personal in ("PERSONALTOKEN", "victim", "/me/", "127.0.0.4", "/program"):
            assert personal not in access_log

        # PROXY_COUNT=1: the app counts sign-in attempts per client address, not per nginx, and a forged
        # X-Forwarded-For does not make a new address.
        guesser, colleague = Visitor(https_port, tmp_path / "cert.pem", "127.0.0.2"), \
            Visitor(https_port, tmp_path / "cert.pem", "127.0.0.3")
        assert [guesser.sign_in_attempt() for _ in range(3)] == [401, 401, 429]
        assert guesser.sign_in_attempt({"X-Forwarded-For": "198.51.100.7"}) == 429
        assert colleague.sign_in_attempt() == 401
        # Health answers are for the load balancer and monitoring on the private network only.
        assert colleague.request("GET", "/readyz")[0].status == 403

        # Static files from the checkout, with the headers the app would send; the body limit; plain http.
        response, body = visitor.request("GET", "/static/style.css")
        assert (response.status, body) == (200, (ROOT / "registration/static/style.css").read_bytes())
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Cache-Control"] == "max-age=300"
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])
        response, _ = visitor.request("POST", "/register", b"x" * (config.Config.MAX_CONTENT_LENGTH + 1),
                                      {"Content-Type": "application/x-www-form-urlencoded"})
        assert response.status == 413 and response.headers["X-Request-ID"]
        plain = http.client.HTTPConnection("127.0.0.1", http_port, timeout=10)
        plain.request("GET", "/register?lang=en", headers={"Host": "codt2023.example.jp"})
        response = plain.getresponse()
        assert response.status == 301
        assert response.headers["Location"] == "https://codt2023.example.jp/register?lang=en"
        plain.close()
        # Another name gets no answer at all, let alone a redirect to a host the client chose.
        forged = http.client.HTTPConnection("127.0.0.1", http_port, timeout=10)
        forged.request("GET", "/me/x", headers={"Host": "evil.example"})
        with pytest.raises(http.client.RemoteDisconnected):
            forged.getresponse()
        forged.close()
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
    assert "Traceback" not in "".join(log.read_text(errors="replace") for log in logs)


# --- systemd -----------------------------------------------------------------------------------------------

def verify(folder: Path, names: list[str]) -> subprocess.CompletedProcess:
    """`systemd-analyze verify` on unit files in a folder."""
    return subprocess.run([SYSTEMD_ANALYZE, "verify", *names], cwd=folder, capture_output=True, text=True,
                          timeout=60)


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")
def test_systemd_units_pass_verify_and_a_broken_one_fails(tmp_path):
    names = sorted(path.name for path in UNITS.iterdir())
    assert {"codt2023-web.service", "codt2023-mail.service", "codt2023-migrate.service",
            "codt2023-backup.service", "codt2023-backup.timer"} <= set(names)
    for name in names:
        # This checkout and its .venv stand in for /srv/codt2023: verify checks that each command exists.
        (tmp_path / name).write_text((UNITS / name).read_text().replace(SRV, str(ROOT)))
    result = verify(tmp_path, names)
    # systemd 252 reports a misspelt key or a bad value on stderr but exits 0: both must stay silent.
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    web = (tmp_path / "codt2023-web.service").read_text()
    (tmp_path / "codt2023-web.service").write_text(web.replace("Restart=on-failure", "Restrat=on-failure"))
    assert "Unknown key" in verify(tmp_path, ["codt2023-web.service"]).stderr
    (tmp_path / "codt2023-web.service").write_text(web.replace(".venv/bin/gunicorn", ".venv/bin/gunicorn-missing"))
    assert verify(tmp_path, ["codt2023-web.service"]).returncode != 0


def test_environment_example_names_only_settings_the_app_reads():
    names = re.findall(r"^#?([A-Z][A-Z0-9_]+)=", (DEPLOY / "codt2023.env.example").read_text(), re.M)
    read = "".join(path.read_text() for path in [ROOT / "config.py", DEPLOY / "gunicorn.conf.py",
                                                  DEPLOY / "backup.sh"])
    assert {"APP_ENV", "DATABASE_URL", "SECRET_KEY", "RATELIMIT_STORAGE_URI", "PROXY_COUNT", "MAIL_URL",
            "PUBLIC_BASE_URL", "WORKERS", "GUNICORN_BIND"} <= set(names)
    assert [name for name in names if not re.search(rf"\b{name}\b", read)] == []


# --- backup, restore, rehearsal (PostgreSQL) -----------------------------------------------------------------

def database(name: str) -> str:
    """The URL of another database on the PostgreSQL server of TEST_DATABASE_URL (libpq spelling)."""
    return make_url(TEST_DATABASE_URL).set(database=name).render_as_string(hide_password=False)


def counts(url: str) -> dict[str, int]:
    """Rows per table."""
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            tables = conn.scalars(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).all()
            return {table: conn.scalar(text(f'SELECT count(*) FROM "{table}"')) for table in sorted(tables)}
    finally:
        engine.dispose()


def populate(url: str, tmp_path: Path, make_details) -> None:
    """Registrants through the services, as the site makes them: with and without a seat, a check-in, a sign-up;
    their mail waits in the outbox."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": url.replace("postgresql://", "postgresql+psycopg://", 1),
                      "SECRET_KEY": SECRET, "REHEARSAL_CLOCK": None, "MAIL_URL": None},
                     instance_path=str(tmp_path / "instance"))
    with app.app_context():
        seated = [register(make_details(attend_closing=True), locale="ja").registrant for _ in range(3)]
        online = [register(make_details(), locale=locale).registrant for locale in ("ja", "en")]
        db.session.commit()
        assert checkins.check_in(code=seated[0].ticket_code, gate="door-1").body["result"] == "ok"
        viewing.change_signups(db.session.get(Registrant, online[0].id), ["ntt-east-aws-tagging"])
        db.session.commit()
        db.engine.dispose()


@pytest.mark.skipif(not TEST_DATABASE_URL, reason="backup and restore use pg_dump and pg_restore: PostgreSQL only "
                                                  "(set TEST_DATABASE_URL)")
def test_backup_restores_into_a_new_database_that_serves_and_rehearses(tmp_path, make_details):
    tools = {tool: shutil.which(tool) for tool in ("pg_dump", "pg_restore", "createdb", "dropdb")}
    if not all(tools.values()):
        pytest.skip(f"PostgreSQL client programs missing: {[t for t, path in tools.items() if not path]}")
    suffix = uuid.uuid4().hex[:8]
    source_name, copy_name = f"{make_url(TEST_DATABASE_URL).database}_src_{suffix}", f"restore_{suffix}"
    source, copy = database(source_name), database(copy_name)
    maintenance = f"--maintenance-db={database(make_url(TEST_DATABASE_URL).database)}"
    try:
        subprocess.run(["createdb", maintenance, source_name], check=True, capture_output=True)
        live = {**os.environ, "DATABASE_URL": source, "SECRET_KEY": SECRET, "REHEARSAL_CLOCK": "",
                "MAIL_URL": f"file://{tmp_path / 'unused'}"}
        for command in exec_lines("codt2023-migrate.service"):
            done = subprocess.run(command, cwd=ROOT, env=live, capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stderr
        populate(source, tmp_path, make_details)
        before = counts(source)
        assert before["registrants"] == 5 and before["checkins"] == 1 and before["viewing_signups"] == 1
        assert before["outbox"] >= 5

        # The backup as the timer makes it: deploy/backup.sh (the unit's command), old dumps expiring.
        backups = tmp_path / "backups"
        backups.mkdir()
        stale = backups / "codt2023-20230801T030000Z.dump"
        stale.write_bytes(b"old")
        os.utime(stale, (time.time() - 30 * 86400,) * 2)
        [backup] = exec_lines("codt2023-backup.service")
        made = subprocess.run(backup, env={**live, "DATABASE_URL": source.replace("postgresql://",
                                                                                   "postgresql+psycopg://", 1),
                                           "BACKUP_DIR": str(backups), "BACKUP_KEEP_DAYS": "14"},
                              capture_output=True, text=True, timeout=120)
        assert made.returncode == 0, made.stderr
        dump = Path(made.stdout.strip())
        assert re.fullmatch(r"codt2023-\d{8}T\d{6}Z\.dump", dump.name)
        assert [path.name for path in backups.iterdir()] == [dump.name]  # the stale one gone, no .partial left

        # The restore, exactly as the README gives it.
        subprocess.run(["createdb", maintenance, copy_name], check=True, capture_output=True)
        restored = subprocess.run(["pg_restore", "--no-owner", "--exit-on-error", f"--dbname={copy}", str(dump)],
                                  capture_output=True, text=True, timeout=120)
        assert restored.returncode == 0, restored.stderr
        assert counts(copy) == before

        # The copy serves: migrated to the head, seats consistent.
        staging = {**os.environ, "APP_ENV": "development", "DATABASE_URL": copy, "SECRET_KEY": SECRET,
                   "MAIL_URL": f"file://{tmp_path / 'rehearsal-outbox'}",
                   "REHEARSAL_CLOCK": "2023-09-14T09:30:00+09:00"}
        checked = run_flask(staging, "seats", "check")
        assert checked.returncode == 0, checked.stdout + checked.stderr
        app = create_app({"SQLALCHEMY_DATABASE_URI": copy.replace("postgresql://", "postgresql+psycopg://", 1),
                          "SECRET_KEY": SECRET, "REHEARSAL_CLOCK": None, "MAIL_URL": None},
                         instance_path=str(tmp_path / "instance"))
        ready = app.test_client().get("/readyz")
        assert (ready.status_code, ready.get_json()["status"]) == (200, "ready")
        with app.app_context():
            db.engine.dispose()

        # The event day rehearsed on the copy: the clock starts at 09:30 on the closing day, and the mail waiting
        # in the restored outbox goes to files, never to the attendees.
        for command in (("rehearsal", "restart"), ("rehearsal", "status")):
            done = run_flask(staging, *command)
            assert done.returncode == 0, done.stderr
            assert re.search(r"Thu 14 Sep 2023, 09:3\d:\d\d JST", done.stdout), done.stdout
        sent = run_flask(staging, "mail", "send")
        assert sent.returncode == 0, sent.stderr
        assert len(list((tmp_path / "rehearsal-outbox").glob("*.eml"))) == before["outbox"]
    finally:
        for name in (source_name, copy_name):
            subprocess.run(["dropdb", maintenance, "--if-exists", "--force", name], capture_output=True)
