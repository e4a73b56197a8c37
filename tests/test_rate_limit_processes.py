"""Rate limits hold across processes, in every way the README starts the app."""

import os
import signal
import subprocess

from tests.conftest import (
    REDIS_URL,
    ROOT,
    Browserless,
    at_once,
    free_port,
    run_flask,
    wait_for_port,
)

LIMIT = {"LOST_LINK_RATE_LIMIT": "5 per minute"}


def lost_link_statuses(urls: list[str], requests: int) -> list[int]:
    """POST the lost-link form `requests` times from one client address, spread over the servers, all at once."""
    visitors = [Browserless(urls[n % len(urls)]) for n in range(requests)]
    tokens = [visitor.csrf_token("/lost-link") for visitor in visitors]
    return at_once([lambda n=n: visitors[n].post("/lost-link", {"email": f"p{n}@example.jp", "csrf_token": tokens[n]})
                    for n in range(requests)])


def test_two_servers_sharing_redis_enforce_one_limit(live_server, redis_prefix):
    env = {**LIMIT, "RATELIMIT_STORAGE_URI": REDIS_URL, "RATELIMIT_KEY_PREFIX": redis_prefix}
    servers = [live_server(workers=2, **env), live_server(workers=2, **env)]
    statuses = lost_link_statuses([server.url for server in servers], 12)
    assert sorted(statuses) == [200] * 5 + [429] * 7, servers[0].errors()[-3000:]


def test_without_shared_storage_each_process_counts_alone(live_server):
    # The failure the README's setups avoid: two processes with memory:// let the limit through twice. This shows
    # the test above can fail.
    servers = [live_server(workers=1, **LIMIT), live_server(workers=1, **LIMIT)]
    statuses = lost_link_statuses([server.url for server in servers], 12)
    assert statuses.count(200) == 10


def test_scripts_serve_keeps_one_count(tmp_path):
    """`scripts/serve` as the README starts it (memory:// limits): one process with threads, so one count."""
    port = free_port()
    env = {**os.environ, "PORT": str(port), "DATABASE_URL": f"sqlite:///{tmp_path / 'serve.sqlite'}",
           "MAIL_URL": f"file://{tmp_path / 'outbox'}", "SECRET_KEY": "serve-test-secret", **LIMIT}
    env.pop("RATELIMIT_STORAGE_URI", None)
    log = tmp_path / "serve.log"
    with log.open("wb") as log_file:
        process = subprocess.Popen([str(ROOT / "scripts" / "serve")], cwd=ROOT, env=env, stdout=log_file,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_port(port, process, log, timeout=120)
        statuses = lost_link_statuses([f"http://127.0.0.1:{port}"], 12)
        assert sorted(statuses) == [200] * 5 + [429] * 7, log.read_text()[-3000:]
        gunicorns = subprocess.run(["pgrep", "-g", str(process.pid), "-f", "bin/gunicorn"],
                                   capture_output=True, text=True).stdout.split()
        assert len(gunicorns) == 2  # the arbiter and one worker process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def test_production_says_where_limits_count(make_app, database_url):
    make_app()  # the schema, for the command that does start
    env = {"APP_ENV": "production", "SECRET_KEY": "s" * 64, "DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"}
    refused = run_flask(env, "seats", "check")
    assert refused.returncode != 0 and "RATELIMIT_STORAGE_URI is not set" in refused.stdout + refused.stderr
    assert run_flask({**env, "RATELIMIT_STORAGE_URI": REDIS_URL}, "seats", "check").returncode == 0
