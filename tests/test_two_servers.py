"""Two app servers behind one load balancer: two gunicorns (deploy/gunicorn.conf.py, two workers each) on one
database and one Redis, and two mail workers on one SMTP server. Registrations, seat changes, check-ins, sign-ups
and link requests split across both servers at the same moments stay exact: the seat invariants hold, every
address has one live registration, every ticket one admission, every mail goes out once, and the rate limits count
once for both servers."""

import json
import subprocess
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlalchemy import create_engine, event, func, select, text

from registration.extensions import db
from registration.models import OutboxMessage
from registration.services.registrations import answer_link_requests, register, request_link

from tests.conftest import (
    GUNICORN_CONF,
    REDIS_URL,
    ROOT,
    VENV_BIN,
    Browserless,
    SMTPSink,
    at_once,
    form_data,
    free_port,
    run_flask,
    server_env,
    spawn_gunicorn,
)

CAPACITY = 5
#: Stated here rather than taken from config.py's defaults, so that the expected counts below follow from them.
LIMITS = {"REGISTER_ADDRESS_RATE_LIMIT": "5 per hour", "LOST_LINK_RATE_LIMIT": "5 per minute"}
SESSIONS = ["openinfra-loki-stack", "yahoo-nonstop-architecture", "pepabo-multicloud-kubernetes"]


@dataclass
class Cluster:
    """Two app servers and two mail workers on one database, one Redis prefix and one SMTP server."""

    urls: list[str]
    env: dict
    logs: list[Path]
    workers: list[subprocess.Popen]
    smtp: SMTPSink
    #: The Authorization header of a door scanner's device token.
    device: dict

    def rows(self, sql: str, **params) -> list:
        """Rows from the shared database."""
        engine = create_engine(self.env["DATABASE_URL"])
        try:
            with engine.connect() as conn:
                return conn.execute(text(sql), params).all()
        finally:
            engine.dispose()

    def errors(self) -> str:
        """What the servers and workers wrote to stderr but their one line per request, for assertion messages."""
        return "\n".join(f"--- {log.name}\n" + "\n".join(
            line for line in log.read_text(errors="replace").splitlines()
            if '"logger": "registration.request"' not in line or '"status": 5' in line)[-3000:] for log in self.logs)

    def tracebacks(self) -> list[str]:
        """The logs that hold a traceback (a JSON line's "exception" too): none, when nothing failed."""
        return [log.name for log in self.logs if "Traceback" in log.read_text(errors="replace")]


@pytest.fixture
def cluster(database_url, tmp_path, make_app, make_device, smtp_server, redis_prefix) -> Iterator[Cluster]:
    """Two gunicorns on their own ports and two `flask mail send --worker` processes, all with one environment
    (the closing event's capacity reaches the database through `event load`, as on a deploy)."""
    device = make_device("door-two-servers")
    make_app(CLOSING_CAPACITY=CAPACITY)  # after make_device's app, which loads the event with the default capacity
    ports = [free_port(), free_port()]
    env = server_env(database_url, ports[0], tmp_path / "outbox", MAIL_URL=smtp_server.url,
                     RATELIMIT_STORAGE_URI=REDIS_URL, RATELIMIT_KEY_PREFIX=redis_prefix,
                     CLOSING_CAPACITY=str(CAPACITY), **LIMITS)
    logs = [tmp_path / f"server-{n}.log" for n in range(2)] + [tmp_path / f"mail-{n}.log" for n in range(2)]
    servers, workers = [], []
    try:
        for port, log in zip(ports, logs):
            servers.append(spawn_gunicorn(port, 2, env, log, conf=GUNICORN_CONF))
        for log in logs[2:]:
            with log.open("ab") as log_file:
                workers.append(subprocess.Popen(
                    [str(VENV_BIN / "flask"), "--app", "registration", "mail", "send", "--worker", "--interval", "0.2"],
                    cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log_file))
        yield Cluster([f"http://127.0.0.1:{port}" for port in ports], env, logs, workers, smtp_server, device)
    finally:
        for process in servers + workers:
            if process.poll() is None:
                process.terminate()
        for process in servers + workers:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def tab(url: str, path: str) -> tuple[Browserless, str]:
    """A browser tab with the page loaded from one server: the visitor and the CSRF token of its forms."""
    visitor = Browserless(url)
    return visitor, visitor.csrf_token(path)


def scan(url: str, code: str, device: dict) -> int:
    """Send a ticket code to a server's check-in API as a door's scanner does; the answer's status."""
    request = urllib.request.Request(f"{url}/api/v1/checkins", data=json.dumps({"code": code}).encode(),
                                     method="POST", headers={"Content-Type": "application/json", **device})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def people(cluster: Cluster) -> dict[str, object]:
    """Every registration by its address as typed, with its seat and ticket."""
    return {row.email: row for row in cluster.rows(
        "SELECT id, email, email_key, secret, seat_status, ticket_code, waitlisted_at, cancelled_at"
        " FROM registrants ORDER BY id")}


def details(email: str, *, attend_closing: bool) -> dict:
    """The personal page's details form as its owner sends it back (the form_data they registered with)."""
    fields = {key: value for key, value in form_data(email=email).items() if key != "consent"}
    return {**fields, **({"attend_closing": "y"} if attend_closing else {})}


def test_two_servers_on_one_database_stay_exact(cluster):
    both, device = cluster.urls, cluster.device

    # --- 1. The opening rush: everyone registers at once, every other visitor through the other server. Ten ask
    # for one of the five seats; one address is sent eight times in three spellings (one NFKC key) and takes no
    # further part, so that its link mail cannot meet a change of the registration.
    seat_emails = [f"seat{n}@example.jp" for n in range(10)]
    plain_emails = [f"plain{n}@example.jp" for n in range(4)]
    spellings = ["same@example.jp", "SAME@example.jp", "ｓａｍｅ＠ｅｘａｍｐｌｅ．ｊｐ"]
    forms = ([form_data(email=email, attend_closing="y") for email in seat_emails]
             + [form_data(email=spellings[n % 3], given_name=f"花子{n}") for n in range(8)]
             + [form_data(email=email) for email in plain_emails])
    tabs = [tab(both[n % 2], "/register") for n in range(len(forms))]
    statuses = at_once([lambda n=n: tabs[n][0].post("/register", {**forms[n], "csrf_token": tabs[n][1]})
                        for n in range(len(forms))])

    assert statuses[:10] + statuses[18:] == [303] * 14, cluster.errors()
    # REGISTER_ADDRESS_RATE_LIMIT counts the address once for both servers: five of the eight reach the database,
    # which keeps one registration (303) and tells the other four it exists (200); three are refused (429).
    assert sorted(statuses[10:18]) == [200] * 4 + [303] + [429] * 3, cluster.errors()
    registered = people(cluster)
    assert len(registered) == 15
    (same,) = (p for p in registered.values() if p.email_key == "same@example.jp")
    seated = [p for p in registered.values() if p.seat_status == "confirmed"]
    waiting = sorted((p for p in registered.values() if p.seat_status == "waitlisted"),
                     key=lambda p: (p.waitlisted_at, p.id))
    assert (len(seated), len(waiting)) == (CAPACITY, 5)

    # --- 2. Seat changes, scans, sign-ups and lost links, all at once, each through both servers: two holders
    # cancel and one unticks the closing event (each tapping twice, once per server), two holders are scanned at
    # two doors, a registrant ticks the closing event twice, two save their sessions in two tabs, seven ask for
    # their link.
    cancelling, unticking, scanned = seated[:2], seated[2], seated[3:]
    ticking, same_choice, other_choices = (registered[email] for email in plain_emails[:3])
    lost = [p.email for p in [*waiting[3:], *scanned]] + plain_emails[1:]
    actions = []
    for person in cancelling:
        for url in both:
            visitor, token = tab(url, f"/me/{person.secret}/cancel")
            actions.append(lambda v=visitor, t=token, s=person.secret: v.post(f"/me/{s}/cancel", {"csrf_token": t}))
    for person, attend in ((unticking, False), (ticking, True)):
        for url in both:
            visitor, token = tab(url, f"/me/{person.secret}")
            fields = {**details(person.email, attend_closing=attend), "csrf_token": token}
            actions.append(lambda v=visitor, f=fields, s=person.secret: v.post(f"/me/{s}", f))
    choices = {same_choice.id: [SESSIONS[:2], SESSIONS[:2]], other_choices.id: [SESSIONS[:1], SESSIONS[1:]]}
    for person in (same_choice, other_choices):
        for url, chosen in zip(both, choices[person.id]):
            visitor, token = tab(url, f"/me/{person.secret}")
            fields = [*(("sessions", key) for key in chosen), ("csrf_token", token)]
            actions.append(lambda v=visitor, f=fields, s=person.secret: v.post(f"/me/{s}/sessions", f))
    changes = len(actions)
    for person in scanned:
        for url in both:
            actions.append(lambda u=url, c=person.ticket_code: scan(u, c, device))
    scans = len(actions)
    lost_tabs = [tab(both[n % 2], "/lost-link") for n in range(len(lost))]
    actions += [lambda v=v, t=t, e=email: v.post("/lost-link", {"email": e, "csrf_token": t})
                for (v, t), email in zip(lost_tabs, lost)]
    statuses = at_once(actions)

    assert statuses[:changes] == [303] * changes, cluster.errors()
    assert [sorted(statuses[n:n + 2]) for n in range(changes, scans, 2)] == [[201, 409]] * 2, cluster.errors()
    # LOST_LINK_RATE_LIMIT: five for both servers together, not five each.
    assert sorted(statuses[scans:]) == [200] * 5 + [429] * 2, cluster.errors()
    now = people(cluster)
    # Three seats were given back, each exactly once: the first three in line moved up, the ticker joined the end.
    promoted = waiting[:3]
    assert {p.email for p in now.values() if p.seat_status == "confirmed"} == {
        p.email for p in [*scanned, *promoted]}
    still_waiting = sorted((p for p in now.values() if p.seat_status == "waitlisted"),
                           key=lambda p: (p.waitlisted_at, p.id))
    assert [p.email for p in still_waiting] == [p.email for p in waiting[3:]] + [ticking.email]
    assert all(now[p.email].cancelled_at is not None for p in cancelling)
    signed_up = Counter(cluster.rows(
        "SELECT s.registrant_id, p.key FROM viewing_signups s JOIN program_sessions p ON p.id = s.session_id"
        " WHERE s.withdrawn_at IS NULL"))
    assert all(count == 1 for count in signed_up.values())
    mine = {person_id: sorted(key for (who, key) in signed_up if who == person_id) for person_id in choices}
    assert mine[same_choice.id] == sorted(SESSIONS[:2])
    assert mine[other_choices.id] in [sorted(chosen) for chosen in choices[other_choices.id]]  # one save or the other

    # --- 3. The doors scan every ticket now valid, and a cancelled holder's old one, at both doors at once.
    codes = [now[p.email].ticket_code for p in [*scanned, *promoted]] + [cancelling[0].ticket_code]
    answers = at_once([lambda u=url, c=code: scan(u, c, device) for code in codes for url in both])
    assert [sorted(answers[n:n + 2]) for n in range(0, len(answers), 2)] == (
        [[409, 409]] * 2 + [[201, 409]] * 3 + [[403, 403]]), cluster.errors()
    admitted = Counter(cluster.rows("SELECT registrant_id FROM checkins WHERE undone_at IS NULL"))
    assert sorted(who for (who,) in admitted) == sorted(now[p.email].id for p in [*scanned, *promoted])
    assert set(admitted.values()) == {1}

    # --- 4. The mail workers drain the outbox: each message reaches the SMTP server exactly once.
    outbox = wait_for_the_outbox(cluster)
    for worker in cluster.workers:
        worker.terminate()  # a round in progress ends first, so a second delivery would show below
        assert worker.wait(timeout=30) == 0, cluster.errors()
    queued = Counter(message_from_bytes(row.message, policy=policy.default)["Message-ID"] for row in outbox)
    delivered = Counter(message["Message-ID"] for message in cluster.smtp.messages)
    assert set(queued.values()) == {1} and delivered == queued
    # What each registration was mailed: its confirmation; a cancellation, a promotion, a waiting-list place or a
    # link, once each. Of the seven lost-link requests the five let through were answered.
    mailed = Counter(row.registrant_id for row in outbox)
    expected = Counter({p.id: 1 for p in registered.values()})
    expected.update([p.id for p in cancelling] + [p.id for p in promoted] + [ticking.id, same.id])
    link_mails = {now[email].id: mailed[now[email].id] - expected[now[email].id] for email in lost}
    assert sorted(link_mails.values()) == [0, 0, 1, 1, 1, 1, 1], (mailed, expected)
    assert {who: n for who, n in mailed.items() if who not in link_mails} == {
        who: n for who, n in expected.items() if who not in link_mails}

    # --- 5. Everything the organisers' check looks at holds; nobody holds two live registrations.
    check = run_flask(cluster.env, "seats", "check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert cluster.rows("SELECT email_key FROM registrants WHERE cancelled_at IS NULL"
                        " GROUP BY email_key HAVING count(*) > 1") == []
    assert cluster.tracebacks() == [], cluster.errors()


def wait_for_the_outbox(cluster: Cluster, timeout: float = 30) -> list:
    """Wait until every link request is answered and every queued mail is sent and received; the outbox rows."""
    deadline = time.monotonic() + timeout
    while True:
        # Requests first: a worker deletes a request and queues its mail in one transaction, so once none is left,
        # the outbox read after holds every mail they asked for.
        requests = cluster.rows("SELECT count(*) FROM link_requests")[0][0]
        outbox = cluster.rows("SELECT id, registrant_id, message, sent_at, failed_at FROM outbox")
        done = requests == 0 and all(row.sent_at is not None for row in outbox)
        if done and len(cluster.smtp.messages) >= len(outbox):
            assert all(row.failed_at is None for row in outbox)
            return outbox
        assert time.monotonic() < deadline, f"{requests} link requests, outbox not drained\n{cluster.errors()}"
        time.sleep(0.2)


def test_a_link_request_made_while_another_sender_answers_is_not_lost(make_app, make_details):
    # Two mail senders read the same pending requests; one answers them all, and a new request comes in before the
    # other one claims its first. SQLite gives the new row the id just freed: claiming by that id must not answer
    # the new request with the old one's address (the new address then never gets its link).
    this, other = make_app(), make_app()
    with this.app_context():
        late = register(make_details(email="late@example.jp"), locale="ja").registrant.id
        register(make_details(email="first@example.jp"), locale="ja")
        request_link("first@example.jp", "lost_link")
        db.session.commit()
        ran = []

        def other_sender_first(conn, cursor, statement, *args):
            if statement.startswith("DELETE FROM link_requests") and not ran:
                ran.append(True)
                with other.app_context():
                    answer_link_requests()
                    db.session.commit()
                    request_link("late@example.jp", "lost_link")
                    db.session.commit()

        event.listen(db.engine, "before_cursor_execute", other_sender_first)
        try:
            answer_link_requests()
            db.session.commit()
        finally:
            event.remove(db.engine, "before_cursor_execute", other_sender_first)
        answer_link_requests()  # the next round, for a request the first one left alone
        db.session.commit()
        assert ran
        assert db.session.scalar(select(func.count()).select_from(OutboxMessage)
                                 .where(OutboxMessage.registrant_id == late)) == 2  # registered, then the link
