"""gunicorn settings for every deployment: `gunicorn -c deploy/gunicorn.conf.py "registration:create_app()"`.

Read from the environment, so that one file serves scripts/serve, systemd, the tests and the benchmarks; a flag on
the command line (--workers, --bind, ...) overrides the file.
  GUNICORN_BIND        address to listen on (default 127.0.0.1:8000)
  WORKERS              worker processes (default 2 x CPUs + 1); with memory:// rate limits, use 1 and THREADS
  THREADS              threads per worker (default 1; more switches to the gthread worker)
  GUNICORN_ACCESS_LOG  "-" (stdout) or a file for gunicorn's own access lines; off by default, since the app writes
                       a JSON line per request itself
  LOG_FORMAT           json (default) or text, for gunicorn's lines as for the app's
  LOG_LEVEL            INFO by default
"""

import importlib.util
import multiprocessing
import os
from pathlib import Path

from gunicorn import glogging

bind = [os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")]
workers = int(os.environ.get("WORKERS") or 2 * multiprocessing.cpu_count() + 1)
threads = int(os.environ.get("THREADS") or 1)
wsgi_app = "registration:create_app()"

# A request running longer than this is stuck: its worker is killed and replaced.
timeout = 60
# On HUP or TERM, workers finish the requests they hold for this long.
graceful_timeout = 30
# nginx keeps upstream connections open (keepalive in deploy/nginx); a little longer than a page's follow-ups take.
keepalive = 5
# Renew each worker after this many requests (spread, so that they never all restart at once): a slow leak stays small.
max_requests = 5000
max_requests_jitter = 500
# The app is loaded by each worker, not by the master: `kill -HUP <master>` (systemd's reload) starts workers on the
# code now on disk, then lets the old ones finish gracefully.
preload_app = False
# gunicorn's control socket (gunicornc) sits at one path per user: a second server on the host (two app servers, the
# tests) would take it over. Signals do what we need: HUP reloads, TERM stops gracefully.
control_socket_disable = True

loglevel = os.environ.get("LOG_LEVEL", "info").lower()
errorlog = "-"
# Off unless asked: the app logs each request itself (registration/logs.py), and gunicorn would otherwise assemble
# every request's access-log fields even with nothing to write them to. When on, a JSON line without the path, the
# query string or the client's address, all of which can be personal.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
access_log_format = ('{"time": "%(t)s", "level": "info", "logger": "gunicorn.access", "message": "request", '
                     '"request_id": "%({x-request-id}o)s", "method": "%(m)s", "status": %(s)s, '
                     '"duration_ms": %(M)s, "bytes": "%(b)s", "pid": "%(p)s"}')

# The formatter is read from the file rather than imported: importing `registration.logs` would import the app
# package into the master, and workers started on HUP would then run the old code.
_spec = importlib.util.spec_from_file_location(
    "codt2023_gunicorn_logs", Path(__file__).resolve().parent.parent / "registration" / "logs.py")
_logs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_logs)
_log_format = os.environ.get("LOG_FORMAT", "json").lower()


class JsonLogger(glogging.Logger):
    """gunicorn's own lines (boot, workers, errors) in the app's format, without client addresses or paths."""

    def setup(self, cfg):
        """Set gunicorn's handlers up as usual, then give its error log our formatter and redaction."""
        super().setup(cfg)
        for handler in self.error_log.handlers:
            handler.setFormatter(_logs.make_formatter(_log_format))
            handler.addFilter(_logs.GunicornRedaction())


# A logger class rather than logconfig_dict: with logconfig_dict gunicorn builds the access-log fields of every
# request even when no access log is written, which costs a door scan a measurable share of its time.
logger_class = JsonLogger
