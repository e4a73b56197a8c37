"""Races between real processes: simultaneous submissions through a multi-worker gunicorn."""

from sqlalchemy import create_engine, text

from tests.conftest import form_data, register_simultaneously


def test_fifty_simultaneous_submissions_of_one_address_leave_one_registration(live_server, database_url):
    server = live_server(workers=4)
    # Every spelling is the same address after NFKC and lower-casing.
    spellings = ["race@example.jp", "RACE@example.jp", "ｒａｃｅ＠ｅｘａｍｐｌｅ．ｊｐ"]
    statuses = register_simultaneously(
        server, [form_data(email=spellings[n % 3], given_name=f"花子{n}") for n in range(50)])

    assert sorted(statuses) == [200] * 49 + [303], server.errors()[-5000:]  # one registered, 49 told "already registered"
    engine = create_engine(database_url)
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM registrants")) == 1
        # The confirmation, and the link re-sent once: repeats within LINK_RESEND_INTERVAL send nothing more.
        assert conn.scalar(text("SELECT count(*) FROM outbox")) == 2
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
