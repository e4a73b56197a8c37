"""Mail through a real SMTP server on loopback: content, outages, retries, and no double sending."""

import ssl
import subprocess
import threading
import time
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy import select

from registration import clock
from registration.extensions import db
from registration.models import OutboxMessage
from registration.services import mail, registrations
from tests.conftest import ROOT, VENV_BIN, SMTPSink, free_port, run_flask


def deliver(app, url: str) -> mail.DeliveryReport:
    with app.app_context():
        return mail.deliver_due(mail.SMTPTransport(url, timeout=5))


def outbox_rows(app) -> list[OutboxMessage]:
    with app.app_context():
        rows = db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
        db.session.expunge_all()
        return rows


class TestContent:
    def test_confirmation_in_each_language_with_absolute_link(self, app, make_registrant, smtp_server):
        taro = make_registrant(locale="ja", email="taro@example.jp", attend_closing=True)
        jane = make_registrant(locale="en", email="jane@example.com", family_name="Doe", given_name="Jane")
        report = deliver(app, smtp_server.url)
        assert (report.sent, report.deferred, report.failed) == (2, 0, 0)
        by_rcpt = {m["To"]: m for m in smtp_server.messages}
        ja, en = by_rcpt["taro@example.jp"], by_rcpt["jane@example.com"]
        assert en.get_content_type() == "multipart/alternative"
        assert ja.get_content_type() == "multipart/mixed"  # Taro holds a seat: ticket QR inline, calendar entry
        [ics] = [part for part in ja.iter_attachments() if part.get_content_type() == "text/calendar"]
        assert "DTSTART;VALUE=DATE:20230914" in ics.get_content()
        for message, registrant in ((ja, taro), (en, jane)):
            link = f"http://codt.test/me/{registrant.secret}"
            assert link in message.get_body(("plain",)).get_content()
            assert f'href="{link}"' in message.get_body(("html",)).get_content()
            assert message["Message-ID"]
        assert "参加登録" in ja["Subject"]
        assert "registration" in en["Subject"].lower()
        assert "様" in ja.get_body(("plain",)).get_content()
        assert "Dear Jane" in en.get_body(("plain",)).get_content().replace("Doe ", "")
        assert "2023年9月14日(木)" in ja.get_body(("plain",)).get_content()
        assert smtp_server.envelopes[0].mail_from == "noreply@cloudopsdays.example"

    def test_mail_renders_outside_a_request_with_csrf_on(self, make_app, make_details):
        # The CLI and the mail worker have no request: nothing a mail template uses may need one (CSRF is on in
        # production, and the page header's language switch would need the visitor's session for its token).
        app = make_app()  # CSRF on, as in every test
        with app.app_context():
            registrations.register(make_details(attend_closing=True), locale="ja")
            registrations.register(make_details(email="jane@example.com"), locale="en")
            db.session.commit()
        rows = outbox_rows(app)
        assert len(rows) == 2
        for row in rows:
            message = message_from_bytes(row.message, policy=policy.default)
            html = message.get_body(("html",)).get_content()
            assert "csrf" not in html.lower() and "<html lang=" in html

    def test_delivered_message_is_marked_and_not_sent_again(self, app, make_registrant, smtp_server):
        make_registrant()
        assert deliver(app, smtp_server.url).sent == 1
        assert deliver(app, smtp_server.url).sent == 0
        assert len(smtp_server.messages) == 1
        [row] = outbox_rows(app)
        assert row.sent_at is not None and row.attempts == 1


class TestOutage:
    def test_registration_succeeds_while_smtp_is_down_and_mail_goes_out_later(
        self, app, client, smtp_server, frozen_clock
    ):
        smtp_server.stop()
        from tests.conftest import form_data
        assert client.post("/register", data=form_data()).status_code == 303
        report = deliver(app, smtp_server.url)
        assert (report.sent, report.deferred) == (0, 1)
        [row] = outbox_rows(app)
        assert row.sent_at is None and row.attempts == 1 and "Connection refused" in row.last_error
        first_retry = row.next_attempt_at

        smtp_server.start()
        assert deliver(app, smtp_server.url).sent == 0  # not due yet: back off
        frozen_clock(first_retry)
        assert deliver(app, smtp_server.url).sent == 1
        assert len(smtp_server.messages) == 1
        [row] = outbox_rows(app)
        assert row.sent_at is not None and row.attempts == 2

    def test_backoff_doubles_up_to_the_cap(self, app_ctx):
        assert [mail.backoff(n).total_seconds() for n in range(1, 8)] == [30, 60, 120, 240, 480, 900, 900]

    def test_refused_recipient_fails_for_good(self, app, make_registrant, smtp_server):
        async def refuse(server, session, envelope, address, rcpt_options):
            return "550 5.1.1 no such user"

        smtp_server.handle_RCPT = refuse
        make_registrant()
        report = deliver(app, smtp_server.url)
        assert report.failed == 1
        [row] = outbox_rows(app)
        assert row.failed_at is not None and "no such user" in row.last_error
        assert deliver(app, smtp_server.url).failed == 0  # not retried

    def test_a_recipient_refused_for_now_waits_while_the_rest_of_the_round_goes_out(
        self, app, make_registrant, smtp_server, frozen_clock
    ):
        async def busy_mailbox(server, session, envelope, address, rcpt_options):
            if address == "busy@example.jp":
                return "450 4.2.1 mailbox busy, try again later"
            envelope.rcpt_tos.append(address)
            return "250 OK"

        smtp_server.handle_RCPT = busy_mailbox
        for email in ("first@example.jp", "busy@example.jp", "third@example.jp", "fourth@example.jp"):
            make_registrant(email=email)
        report = deliver(app, smtp_server.url)
        assert (report.sent, report.deferred, report.failed) == (3, 1, 0)
        assert sorted(m["To"] for m in smtp_server.messages) == ["first@example.jp", "fourth@example.jp",
                                                                 "third@example.jp"]
        busy = next(row for row in outbox_rows(app) if row.recipient == "busy@example.jp")
        assert busy.sent_at is None and busy.failed_at is None and busy.claimed_by is None
        assert busy.attempts == 1 and "450" in busy.last_error
        assert busy.next_attempt_at > clock.real_now()

        del smtp_server.handle_RCPT  # the mailbox has room again
        frozen_clock(busy.next_attempt_at)
        assert deliver(app, smtp_server.url).sent == 1
        assert smtp_server.messages[-1]["To"] == "busy@example.jp"

    def test_a_server_closing_the_connection_ends_the_round(self, app, make_registrant, smtp_server):
        async def closing(server, session, envelope, address, rcpt_options):
            if address == "second@example.jp":
                return "421 4.3.2 shutting down"
            envelope.rcpt_tos.append(address)
            return "250 OK"

        smtp_server.handle_RCPT = closing
        for email in ("first@example.jp", "second@example.jp", "third@example.jp"):
            make_registrant(email=email)
        report = deliver(app, smtp_server.url)
        assert (report.sent, report.deferred) == (1, 1)
        assert [(row.recipient, row.attempts) for row in outbox_rows(app)] == [
            ("first@example.jp", 1), ("second@example.jp", 1), ("third@example.jp", 0)]

    def test_an_unreachable_server_ends_the_round_after_one_attempt(self, app, make_registrant, smtp_server):
        smtp_server.stop()
        for _ in range(3):
            make_registrant()
        report = deliver(app, smtp_server.url)
        assert (report.sent, report.deferred) == (0, 1)
        assert [row.attempts for row in outbox_rows(app)] == [1, 0, 0]

    def test_claimed_message_is_skipped_by_another_sender(self, app, make_registrant, smtp_server):
        make_registrant()
        with app.app_context():
            row = db.session.scalar(select(OutboxMessage))
            row.claimed_until = clock.now().replace(year=2099)
            row.claimed_by = "other-sender"
            db.session.commit()
        assert deliver(app, smtp_server.url).sent == 0
        assert smtp_server.messages == []


def test_two_sender_processes_never_send_a_message_twice(app, make_details, smtp_server, database_url):
    with app.app_context():
        for n in range(40):
            registrations.register(make_details(email=f"p{n}@example.jp"), locale="ja")
        db.session.commit()
    env = {"DATABASE_URL": database_url, "SECRET_KEY": "x", "MAIL_URL": smtp_server.url,
           "PATH": "/usr/bin:/bin", "REHEARSAL_CLOCK": ""}
    results = []
    senders = [threading.Thread(target=lambda: results.append(run_flask(env, "mail", "send"))) for _ in range(3)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    ids = [m["Message-ID"] for m in smtp_server.messages]
    assert len(ids) == 40 and len(set(ids)) == 40
    assert sorted(m["To"] for m in smtp_server.messages) == sorted(f"p{n}@example.jp" for n in range(40))


def test_default_transport_writes_eml_files_to_instance_outbox(app, make_registrant, runner):
    registrant = make_registrant()
    result = runner.invoke(args=["mail", "send"])
    assert "sent 1" in result.output
    files = list((__import__("pathlib").Path(app.instance_path) / "outbox").glob("*.eml"))
    assert len(files) == 1
    message = message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert message["To"] == registrant.email
    assert registrant.secret in message.get_body(("plain",)).get_content()


def test_one_send_delivers_a_backlog_larger_than_a_round_and_stops_when_smtp_is_down(app, runner, smtp_server):
    """Rounds take 100 messages: a full round goes straight on to the next, a round with trouble stops."""
    with app.app_context():
        for n in range(230):
            mail.enqueue(recipient=f"b{n}@example.jp", subject="s", text="t", html="<p>t</p>")
        db.session.commit()
    app.config["MAIL_URL"] = smtp_server.url
    result = runner.invoke(args=["mail", "send"])
    assert result.output.splitlines() == ["sent 100, deferred 0, failed 0", "sent 100, deferred 0, failed 0",
                                          "sent 30, deferred 0, failed 0"]
    assert len(smtp_server.messages) == 230
    with app.app_context():
        for n in range(150):
            mail.enqueue(recipient=f"c{n}@example.jp", subject="s", text="t", html="<p>t</p>")
        db.session.commit()
    app.config["MAIL_URL"] = f"smtp://127.0.0.1:{free_port()}"  # nothing listens: one round, then it stops
    result = runner.invoke(args=["mail", "send"])
    assert result.output.splitlines() == ["sent 0, deferred 1, failed 0"]


def test_mail_url_must_be_smtp_or_file(make_app):
    app = make_app(MAIL_URL="http://example.com")
    with app.app_context(), pytest.raises(ValueError, match="MAIL_URL"):
        mail.transport_from_config()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1, standing in for a relay's certificate and its CA."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return str(cert), str(key)


class Credentials:
    """An authenticator accepting one user, as a relay would."""

    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"codt", b"p@ss word")
        return AuthResult(success=ok)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
@pytest.mark.parametrize("scheme", ["smtp+starttls", "smtps"])
def test_tls_and_credentials(app, make_registrant, certificate, scheme):
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    sink = SMTPSink(port=free_port())
    # aiosmtpd only counts STARTTLS as TLS for AUTH; with implicit TLS the whole session is encrypted anyway.
    tls = ({"tls_context": context, "require_starttls": True} if scheme == "smtp+starttls"
           else {"ssl_context": context, "auth_require_tls": False})
    sink.controller = Controller(sink, hostname="127.0.0.1", port=sink.port, authenticator=Credentials(),
                                 auth_required=True, **tls)
    sink.controller.start()
    try:
        make_registrant()
        url = f"{scheme}://codt:p%40ss%20word@127.0.0.1:{sink.port}"
        with app.app_context():
            report = mail.deliver_due(mail.SMTPTransport(url, timeout=5, ca_file=cert))
            assert report.sent == 1, db.session.scalar(select(OutboxMessage.last_error))
        assert len(sink.messages) == 1
        make_registrant()
        wrong = f"{scheme}://codt:wrong@127.0.0.1:{sink.port}"
        with app.app_context():
            assert mail.deliver_due(mail.SMTPTransport(wrong, timeout=5, ca_file=cert)).deferred == 1
        assert len(sink.messages) == 1
    finally:
        sink.stop()


def test_untrusted_certificate_is_not_accepted(app, make_registrant, certificate):
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    sink = SMTPSink(port=free_port())
    sink.controller = Controller(sink, hostname="127.0.0.1", port=sink.port, ssl_context=context)
    sink.controller.start()
    try:
        make_registrant()
        with app.app_context():
            report = mail.deliver_due(mail.SMTPTransport(f"smtps://127.0.0.1:{sink.port}", timeout=5))
        assert report.deferred == 1 and sink.messages == []
    finally:
        sink.stop()


class ExplodingTransport:
    """A transport whose send fails in an unforeseen way."""

    def send(self, row):
        raise RuntimeError("unforeseen")

    def close(self):
        pass


def test_an_unforeseen_send_error_defers_the_message(app, make_registrant):
    make_registrant()
    with app.app_context():
        report = mail.deliver_due(ExplodingTransport())
    assert report.deferred == 1
    [row] = outbox_rows(app)
    assert row.sent_at is None and row.claimed_by is None and "unforeseen" in row.last_error


def test_permanent_refusal_of_the_message_fails_for_good_until_queued_again(app, make_registrant, smtp_server, runner):
    async def refuse(*args):
        return "554 5.7.1 rejected by policy"

    smtp_server.handle_DATA = refuse
    make_registrant()
    assert deliver(app, smtp_server.url).failed == 1
    [row] = outbox_rows(app)
    assert row.failed_at is not None and "554" in row.last_error
    assert deliver(app, smtp_server.url).failed == 0  # failed for good: not tried again by itself

    # The relay was wrong, not the recipient: the operator queues the failed mail again once it is fixed.
    del smtp_server.handle_DATA
    for since, message in (("yesterday", "not an ISO 8601 instant"), ("2023-09-01T09:00:00", "give the offset")):
        result = runner.invoke(args=["mail", "retry-failed", "--since", since])
        assert result.exit_code == 2 and message in result.output
    assert runner.invoke(args=["mail", "retry-failed", "--since", "2999-01-01T00:00:00+09:00"]).output == (
        "0 failed messages queued again\n")
    assert runner.invoke(args=["mail", "retry-failed"]).output == "1 failed messages queued again\n"
    assert deliver(app, smtp_server.url).sent == 1
    [row] = outbox_rows(app)
    assert row.sent_at is not None and row.failed_at is None and len(smtp_server.messages) == 1


def test_a_refused_sender_address_defers_and_stops_the_round_instead_of_failing_the_queue(
        app, make_registrant, smtp_server):
    """553 to MAIL FROM is the relay refusing our MAIL_FROM: every message would meet it, none is to blame."""
    async def refuse(*args):
        return "553 5.7.1 sender not permitted"

    smtp_server.handle_MAIL = refuse
    for n in range(3):
        make_registrant(email=f"s{n}@example.jp")
    report = deliver(app, smtp_server.url)
    assert (report.sent, report.deferred, report.failed) == (0, 1, 0)
    rows = outbox_rows(app)
    assert [row.failed_at for row in rows] == [None] * 3
    assert "553" in rows[0].last_error and rows[0].next_attempt_at > rows[0].created_at


def test_international_address_through_a_server_without_smtputf8_fails_for_good(app, make_details):
    sink = SMTPSink(port=free_port())
    sink.controller = Controller(sink, hostname="127.0.0.1", port=sink.port, enable_SMTPUTF8=False)
    sink.controller.start()
    try:
        with app.app_context():
            registrations.register(make_details(email="山田@例え.jp"), locale="ja")
            db.session.commit()
        assert deliver(app, sink.url).failed == 1
    finally:
        sink.stop()


def test_mail_keeps_flowing_when_a_rehearsal_jumps_in_time(app, make_registrant, smtp_server, monkeypatch):
    make_registrant()  # queued on 2023-08-25 (frozen)
    # A new rehearsal makes the event clock jump back a month; delivery runs on real time and is not stranded.
    monkeypatch.setattr(clock, "now", lambda: clock.real_now().replace(month=7))
    assert deliver(app, smtp_server.url).sent == 1


def test_worker_delivers_until_stopped(app, make_details, database_url, tmp_path):
    outbox = tmp_path / "worker-outbox"
    env = {"DATABASE_URL": database_url, "SECRET_KEY": "x", "MAIL_URL": f"file://{outbox}",
           "PATH": "/usr/bin:/bin", "REHEARSAL_CLOCK": ""}
    worker = subprocess.Popen([str(VENV_BIN / "flask"), "--app", "registration", "mail", "send", "--worker",
                               "--interval", "0.2"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for n in range(3):
            with app.app_context():
                registrations.register(make_details(email=f"w{n}@example.jp"), locale="ja")
                db.session.commit()
            deadline = time.monotonic() + 20
            while len(list(outbox.glob("*.eml"))) <= n and time.monotonic() < deadline:
                time.sleep(0.1)
            assert len(list(outbox.glob("*.eml"))) == n + 1
    finally:
        worker.terminate()
        stdout, stderr = worker.communicate(timeout=20)
    assert worker.returncode == 0, stderr.decode()[-2000:]


def test_a_wrong_mail_url_stops_the_sender_at_once(make_app, database_url):
    make_app()
    env = {"DATABASE_URL": database_url, "SECRET_KEY": "x", "PATH": "/usr/bin:/bin", "REHEARSAL_CLOCK": ""}
    for url in ("smtp://127.0.0.1:notaport", "http://example.com"):
        result = run_flask({**env, "MAIL_URL": url}, "mail", "send", "--worker")
        assert result.returncode != 0 and "MAIL_URL" in result.stderr and "Traceback" not in result.stderr
