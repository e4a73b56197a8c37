"""Races between real processes: simultaneous submissions through a multi-worker gunicorn."""

from sqlalchemy import create_engine, func, select, text

from registration.extensions import db
from registration.models import OutboxMessage
from registration.services import seats
from tests.conftest import REDIS_URL, at_once, form_data, register_simultaneously, run_flask


def test_fifty_simultaneous_submissions_of_one_address_leave_one_registration(live_server, database_url,
                                                                              redis_prefix):
    # Four workers share their limits in Redis, as in production.
    server = live_server(workers=4, RATELIMIT_STORAGE_URI=REDIS_URL, RATELIMIT_KEY_PREFIX=redis_prefix)
    # Every spelling is the same address after NFKC and lower-casing.
    spellings = ["race@example.jp", "RACE@example.jp", "ｒａｃｅ＠ｅｘａｍｐｌｅ．ｊｐ"]
    statuses = register_simultaneously(
        server, [form_data(email=spellings[n % 3], given_name=f"花子{n}") for n in range(50)])

    # REGISTER_ADDRESS_RATE_LIMIT (5 an hour) lets five of them race to the database: one registered, four told
    # "already registered"; the rest are refused before.
    assert sorted(statuses) == [200] * 4 + [303] + [429] * 45, server.errors()[-5000:]
    engine = create_engine(database_url)
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM registrants")) == 1
        # The confirmation; the four repeats only recorded a link request each.
        assert conn.scalar(text("SELECT count(*) FROM outbox")) == 1
        assert conn.scalar(text("SELECT count(*) FROM link_requests")) == 4
    # Two mail senders at once, as on two hosts: the link goes out once (repeats within LINK_RESEND_INTERVAL send
    # nothing more), and every request is dealt with.
    senders = at_once([lambda: run_flask(server.env, "mail", "send") for _ in range(2)])
    assert [sender.returncode for sender in senders] == [0, 0], [sender.stderr for sender in senders]
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM outbox")) == 2
        assert conn.scalar(text("SELECT count(*) FROM link_requests")) == 0
    engine.dispose()


def test_simultaneous_registrations_on_the_rehearsal_clock_all_succeed(live_server, database_url):
    # Every request reads the shared rehearsal clock while holding the write lock: it must never wait for it.
    server = live_server(workers=4, REHEARSAL_CLOCK="2023-09-01T10:00:00+09:00")
    statuses = register_simultaneously(server, [form_data(email=f"p{n}@example.jp") for n in range(40)])

    assert statuses == [303] * 40, server.errors()[-5000:]
    engine = create_engine(database_url)
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM registrants")) == 40
        assert conn.scalar(text("SELECT count(*) FROM outbox")) == 40
    engine.dispose()


def test_simultaneous_registrations_for_the_closing_event_never_oversell(live_server, make_app):
    # The servers' CLOSING_CAPACITY reaches the database through `event load` (live_server runs it).
    server = live_server(workers=4, CLOSING_CAPACITY="5")
    statuses = register_simultaneously(server, [form_data(email=f"seat{n}@example.jp", attend_closing="y")
                                                for n in range(30)])

    assert statuses == [303] * 30, server.errors()[-5000:]
    with make_app(CLOSING_CAPACITY=5).app_context():
        assert seats.invariant_problems() == []
        summary = seats.summary()
        assert (summary.confirmed, summary.waitlisted) == (5, 25)
        waiting = seats.waiting_list()
        assert [seats.waitlist_position(person) for person in waiting] == list(range(1, 26))
        # One mail each: the confirmation, carrying the ticket or the waiting-list place.
        assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 30
