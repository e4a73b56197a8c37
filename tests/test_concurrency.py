"""Races between real processes: simultaneous submissions through a multi-worker gunicorn."""

import re
import threading

from sqlalchemy import create_engine, text

from tests.conftest import Browserless, form_data


def test_fifty_simultaneous_submissions_of_one_address_leave_one_registration(live_server, database_url):
    server = live_server(workers=4)
    visitors = [Browserless(server.url) for _ in range(50)]
    tokens = [re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', v.get("/register")).group(1)
              for v in visitors]
    start = threading.Barrier(len(visitors))
    statuses: list[int] = []

    def submit(visitor: Browserless, token: str, n: int) -> None:
        # Every spelling is the same address after NFKC and case folding.
        email = ["race@example.jp", "RACE@example.jp", "ｒａｃｅ＠ｅｘａｍｐｌｅ．ｊｐ"][n % 3]
        data = {**form_data(email=email, given_name=f"花子{n}"), "csrf_token": token}
        start.wait()
        statuses.append(visitor.post("/register", data))

    threads = [threading.Thread(target=submit, args=(v, t, n)) for n, (v, t) in enumerate(zip(visitors, tokens))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

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
    visitors = [Browserless(server.url) for _ in range(40)]
    tokens = [re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', v.get("/register")).group(1)
              for v in visitors]
    start = threading.Barrier(len(visitors))
    statuses: list[int] = []

    def submit(visitor: Browserless, token: str, n: int) -> None:
        start.wait()
        statuses.append(visitor.post("/register", {**form_data(email=f"p{n}@example.jp"), "csrf_token": token}))

    threads = [threading.Thread(target=submit, args=(v, t, n)) for n, (v, t) in enumerate(zip(visitors, tokens))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [303] * 40, server.errors()[-5000:]
    engine = create_engine(database_url)
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM registrants")) == 40
        assert conn.scalar(text("SELECT count(*) FROM outbox")) == 40
    engine.dispose()
