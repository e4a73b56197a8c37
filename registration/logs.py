"""Request ids and JSON-line logs: one line per request, and every other log line as JSON too.

Standard library only: deploy/gunicorn.conf.py loads this file into gunicorn's master process for its formatter, and
the master must not import the app (a HUP would then start new workers on the old code).
"""

import json
import logging
import re
import sys
import time
import traceback
from contextvars import ContextVar
from secrets import token_hex

#: Where the request id lives in the WSGI environ, for error pages and API errors.
ENVIRON_KEY = "codt.request_id"
#: Where the app's request class leaves the matched URL rule when Flask closes the request.
RULE_ENVIRON_KEY = "codt.url_rule"
#: A proxy's id is kept if it looks like one (nginx's $request_id is 32 hex digits, a UUID has hyphens); anything
#: else, too long, with line breaks, outside ASCII or shaped like an address (@, +), is replaced: it goes into a
#: response header and into every log line.
_acceptable_id = re.compile(r"[A-Za-z0-9._:-]{1,128}").fullmatch

#: The id of the request this thread is serving, for every log line written meanwhile.
current_request_id: ContextVar[str | None] = ContextVar("current_request_id", default=None)

request_log = logging.getLogger("registration.request")

#: Marks the handler configure_logging installs, so that a second app in the same process adds no second one.
_HANDLER_MARK = "_codt_handler"


class RequestLog:
    """WSGI middleware, the outermost layer: gives each request an id (the proxy's X-Request-ID, or a new one),
    echoes it in the answer, and logs one JSON line when the response is closed."""

    def __init__(self, wsgi_app) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        exchange = _Exchange(environ, start_response)
        try:
            exchange.body = self.wsgi_app(environ, exchange.start)
        except BaseException:
            exchange.status = "500"
            exchange.log()
            raise
        if type(exchange.body) is environ.get("wsgi.file_wrapper"):
            # A file the server sends with sendfile(): wrapping it would make the server copy it through Python.
            exchange.log()
            return exchange.body
        return exchange


class _Exchange:
    """One request's id, timing and status; the response body handed back to the server, logged when closed."""

    __slots__ = ("environ", "start_response", "request_id", "started", "status", "body")

    def __init__(self, environ, start_response) -> None:
        self.started = time.perf_counter()
        request_id = environ.get("HTTP_X_REQUEST_ID")
        if request_id is None or _acceptable_id(request_id) is None:
            request_id = token_hex(16)
        environ[ENVIRON_KEY] = self.request_id = request_id
        current_request_id.set(request_id)
        self.environ, self.start_response, self.status, self.body = environ, start_response, None, ()

    def start(self, status, headers, exc_info=None):
        self.status = status
        headers.append(("X-Request-ID", self.request_id))
        return self.start_response(status, headers, exc_info)

    def __iter__(self):
        return iter(self.body)

    def close(self) -> None:
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        finally:
            self.log()

    def log(self) -> None:
        # Only the rule's template ("/me/<secret>"), never the path itself, which can hold a personal link's token.
        rule = self.environ.get(RULE_ENVIRON_KEY)
        request_log.info("request", extra={"fields": {
            "method": self.environ.get("REQUEST_METHOD"),
            "route": rule.rule if rule is not None else None,
            "endpoint": rule.endpoint if rule is not None else None,
            "status": int(self.status[:3]) if self.status else None,
            "duration_ms": round((time.perf_counter() - self.started) * 1000, 3),
        }})
        current_request_id.set(None)


#: One encoder for every line: json.dumps with any option set builds a new encoder per call.
_encode = json.JSONEncoder(default=str).encode


class RedactingFormatter(logging.Formatter):
    """Tracebacks without the exceptions' messages, which can carry personal data: PostgreSQL's DETAIL names the
    values of a failed constraint, an SMTP server's reply the recipient."""

    def formatException(self, ei) -> str:
        """The frames of each exception in the chain, and its class."""
        parts, exc, seen = [], ei[1], set()
        while exc is not None and id(exc) not in seen:
            seen.add(id(exc))
            kind = type(exc)
            parts.append("Traceback (most recent call last):\n" + "".join(traceback.format_tb(exc.__traceback__))
                         + f"{kind.__module__}.{kind.__qualname__} (message not logged)")
            exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
        return "\n\nThe above exception was followed by:\n".join(reversed(parts))


class JsonFormatter(RedactingFormatter):
    """A log record as one JSON line: time (UTC), level, logger, message, request_id inside a request, pid,
    exception (the traceback) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = current_request_id.get()
        if request_id is not None:
            entry["request_id"] = request_id
        fields = getattr(record, "fields", None)
        if fields:
            entry.update(fields)
        entry["pid"] = record.process
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return _encode(entry)


class GunicornRedaction(logging.Filter):
    """Gunicorn writes the client's address, or the raw request line (with a personal link's token or a query), into
    two of its messages: keep what happened, drop those."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.msg if isinstance(record.msg, str) else ""
        if message.startswith("Invalid request from ip="):
            record.msg, record.args = "Invalid request refused", ()
        elif message.startswith("Error handling request %s"):
            record.msg, record.args = "Error handling request", ()
        return True


def make_formatter(log_format: str) -> logging.Formatter:
    """The formatter for LOG_FORMAT: json (JSON lines), or text for reading on a terminal."""
    if log_format == "text":
        return RedactingFormatter("%(asctime)s %(levelname)s [%(name)s] %(message)s")
    if log_format != "json":
        raise ValueError(f"LOG_FORMAT must be json or text (got {log_format!r})")
    return JsonFormatter()


def configure_logging(log_format: str, level: str) -> None:
    """Log the app's lines (registration.*) at `level` to stderr in `log_format`; once per process.

    The lines go to the root logger's handlers: one of our own on stderr, added by the first app of the process and
    kept by the later ones (tests build many), unless something else already handles the root logger (pytest).
    """
    formatter = make_formatter(log_format)
    logging.getLogger("registration").setLevel(level.upper())
    root = logging.getLogger()
    ours = [handler for handler in root.handlers if getattr(handler, _HANDLER_MARK, False)]
    if ours:
        ours[0].setFormatter(formatter)
    elif not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(formatter)
        setattr(handler, _HANDLER_MARK, True)
        root.addHandler(handler)
