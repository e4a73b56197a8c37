"""Configuration classes. Environment variables override every default; no secrets live here."""

import os
import unicodedata
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from urllib.parse import urlsplit


def _instant(name: str, default: str | None) -> datetime | None:
    """Read an ISO-8601 instant with an explicit offset from the environment."""
    raw = os.environ.get(name, default)
    if not raw:
        return None
    value = datetime.fromisoformat(raw)
    if value.tzinfo is None:
        raise ValueError(f"{name} must carry a UTC offset, e.g. 2023-09-14T10:00:00+09:00 (got {raw!r})")
    return value


def _flag(name: str, default: str) -> bool:
    """Read an on/off setting: 1, true or yes is on."""
    return os.environ.get(name, default).strip().lower() in ("1", "true", "yes")


def _count(name: str, default: str) -> int:
    """Read a whole number >= 0 from the environment."""
    raw = os.environ.get(name, default).strip()
    if not raw.isdigit() or not raw.isascii():
        raise ValueError(f"{name} must be a whole number, 0 or more (got {raw!r})")
    return int(raw)


#: The venue's street address is a line on the ticket; a longer text is a mistake in the setting.
VENUE_ADDRESS_MAX = 300


def check_closing_event(settings: Mapping) -> None:
    """Refuse closing-event settings that would tell attendees something wrong: an end without a start or not after
    it, a time without a UTC offset, a map link that is not a web address."""
    starts, ends = settings.get("CLOSING_STARTS_AT"), settings.get("CLOSING_ENDS_AT")
    for name, value in (("CLOSING_STARTS_AT", starts), ("CLOSING_ENDS_AT", ends)):
        if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
            raise ValueError(f"{name} must be a moment with a UTC offset, e.g. 2023-09-14T13:00:00+09:00 "
                             f"(got {value!r})")
    if ends is not None and starts is None:
        raise ValueError("CLOSING_ENDS_AT is set but CLOSING_STARTS_AT is not: set the start too, or neither "
                         "(unset means 'to be announced')")
    if starts is not None and ends is not None and ends <= starts:
        raise ValueError(f"CLOSING_ENDS_AT ({ends.isoformat()}) must be later than CLOSING_STARTS_AT "
                         f"({starts.isoformat()})")
    address = settings.get("VENUE_ADDRESS") or ""
    # One line of plain text: it goes into page, mail and calendar text as it is (a line break would start a new line
    # of the text mail; a direction override would make it read as something else).
    if len(address) > VENUE_ADDRESS_MAX or any(
            unicodedata.category(char) in ("Cc", "Zl", "Zp") or "\u202a" <= char <= "\u202e"
            or "\u2066" <= char <= "\u2069" for char in address):
        raise ValueError(f"VENUE_ADDRESS must be one line of at most {VENUE_ADDRESS_MAX} characters, without control "
                         f"characters (got {address[:80]!r})")
    map_url = settings.get("VENUE_MAP_URL") or ""
    if map_url:
        parts = urlsplit(map_url)
        # Only a web address may become a link on the ticket: javascript: or data: would run in our pages.
        if parts.scheme not in ("http", "https") or not parts.netloc or any(c.isspace() for c in map_url):
            raise ValueError(f"VENUE_MAP_URL must be an http:// or https:// address (got {map_url!r})")


class Config:
    """Defaults for local use: SQLite in instance/, mail as .eml files in instance/outbox/."""

    SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL", "sqlite:///registration.sqlite")
    SECRET_KEY = os.environ.get("SECRET_KEY")
    #: Refuse to start without SECRET_KEY, or with one shorter than SECRET_KEY_MIN_BYTES, instead of generating one
    #: into instance/.
    REQUIRE_SECRET_KEY = False
    #: A shorter key can be guessed offline from one signed session cookie, and then sessions and CSRF tokens forged:
    #: 32 random bytes, e.g. `python -c 'import secrets; print(secrets.token_hex(32))'` (64 characters).
    SECRET_KEY_MIN_BYTES = 32

    #: The article says "late July 2023" without a day; the press release went out on 24 July.
    REGISTRATION_OPENS_AT = _instant("REGISTRATION_OPENS_AT", "2023-07-24T00:00:00+09:00")
    REGISTRATION_DEADLINE = _instant("REGISTRATION_DEADLINE", "2023-09-14T10:00:00+09:00")
    #: Seats at the closing event; the article states no capacity, so this is the organisers' number to set.
    CLOSING_CAPACITY = int(os.environ.get("CLOSING_CAPACITY", "100"))
    #: On-demand streaming: "two weeks from 21 August" (the article), i.e. until 4 September 00:00 JST.
    ON_DEMAND_STARTS_AT = _instant("ON_DEMAND_STARTS_AT", "2023-08-21T00:00:00+09:00")
    ON_DEMAND_ENDS_AT = _instant("ON_DEMAND_ENDS_AT", "2023-09-04T00:00:00+09:00")
    #: The archive: the article says "from October" without a day, nor an end; unset ARCHIVE_ENDS_AT = open-ended.
    ARCHIVE_STARTS_AT = _instant("ARCHIVE_STARTS_AT", "2023-10-01T00:00:00+09:00")
    ARCHIVE_ENDS_AT = _instant("ARCHIVE_ENDS_AT", None)
    #: The closing event's hours, street address and map link (e.g. a Google Maps or OpenStreetMap address): the
    #: article states the day and the venue's name, none of these. Unset, pages, mails and the calendar entry say
    #: "to be announced" (the calendar entry is then an all-day one on the closing day). Times are ISO-8601 with an
    #: offset, e.g. 2023-09-14T13:00:00+09:00; an end needs a start.
    CLOSING_STARTS_AT = _instant("CLOSING_STARTS_AT", None)
    CLOSING_ENDS_AT = _instant("CLOSING_ENDS_AT", None)
    VENUE_ADDRESS = os.environ.get("VENUE_ADDRESS", "").strip()
    VENUE_MAP_URL = os.environ.get("VENUE_MAP_URL", "").strip()
    #: ISO-8601 instant with offset; the app clock starts there and runs forward in real time.
    REHEARSAL_CLOCK = os.environ.get("REHEARSAL_CLOCK") or None

    #: smtp://, smtp+starttls:// or smtps://[user:password@]host[:port]; unset: .eml files in instance/outbox/.
    MAIL_URL = os.environ.get("MAIL_URL") or None
    MAIL_FROM = os.environ.get("MAIL_FROM", "CODT2023 <noreply@cloudopsdays.example>")
    MAIL_CA_FILE = os.environ.get("MAIL_CA_FILE") or None
    MAIL_TIMEOUT_SECONDS = float(os.environ.get("MAIL_TIMEOUT_SECONDS", "10"))
    #: Retries back off exponentially from 30 s up to this many seconds between attempts.
    MAIL_MAX_BACKOFF_SECONDS = int(os.environ.get("MAIL_MAX_BACKOFF_SECONDS", "900"))
    PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:5000").rstrip("/")
    CONTACT_EMAIL = os.environ.get("CONTACT_EMAIL", "codt-privacy@cloudopsdays.example")
    #: The privacy policy promises deletion of personal data by this day (six months after the closing event).
    RETENTION_UNTIL = date.fromisoformat(os.environ.get("RETENTION_UNTIL", "2024-03-14"))

    #: Form posts are small; anything bigger is refused with 413 before it is parsed, whether the client declares
    #: its length (Content-Length) or streams it (Transfer-Encoding: chunked).
    MAX_CONTENT_LENGTH = 64 * 1024
    #: How many reverse proxies (nginx, a load balancer) stand in front of the app and set X-Forwarded-For, -Proto
    #: and -Host. 0 trusts none: a client could otherwise forge X-Forwarded-For and escape its rate limits. With 1
    #: behind nginx, rate limits count the client's address instead of the proxy's (the same for everyone).
    PROXY_COUNT = _count("PROXY_COUNT", "0")
    #: Strict-Transport-Security: browsers then use only https for this site, for two years. Off locally, where the
    #: site runs on plain http; on in production.
    HSTS = _flag("HSTS", "0")
    HSTS_HEADER = "max-age=63072000; includeSubDomains"
    #: `flask program import` refuses larger files before reading them: the real program of 49 sessions is about
    #: 10 KB (with full abstracts well under 1 MB), and a file of 200,000 rows must not take the host's memory.
    PROGRAM_IMPORT_MAX_BYTES = _count("PROGRAM_IMPORT_MAX_BYTES", str(2 * 1024 * 1024))
    WTF_CSRF_TIME_LIMIT = None  # a form left open for hours must still submit; the token lives with the session
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = os.environ.get("SESSION_COOKIE_SECURE", "").lower() in ("1", "true", "yes")

    BABEL_DEFAULT_LOCALE = "ja"
    BABEL_DEFAULT_TIMEZONE = "Asia/Tokyo"
    LANGUAGES = ("ja", "en")

    #: memory:// for one process; redis://127.0.0.1:6379 when several processes share the limits.
    RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI", "memory://")
    #: Deployments (or test runs) that share one Redis keep their counts apart with their own prefix.
    RATELIMIT_KEY_PREFIX = os.environ.get("RATELIMIT_KEY_PREFIX", "")
    RATELIMIT_HEADERS_ENABLED = True
    #: Staff sign-in attempts per client address, whatever the name: slows guessing across many names. Generous,
    #: because door staff at the venue share its one address.
    LOGIN_RATE_LIMIT = os.environ.get("LOGIN_RATE_LIMIT", "60 per 10 minutes;300 per day")
    #: Sign-in attempts per (staff name, client address): each window is longer than the last, so the wait grows
    #: with the attempts (a minute after 5, a quarter of an hour after 10, a day after 20). Keyed by the address
    #: too, so that attempts elsewhere never lock the owner of the name out.
    LOGIN_ACCOUNT_RATE_LIMIT = os.environ.get("LOGIN_ACCOUNT_RATE_LIMIT",
                                              "5 per minute;10 per 15 minutes;20 per day")
    #: A staff session unused this long ends; the person signs in again.
    STAFF_IDLE_TIMEOUT = timedelta(minutes=int(os.environ.get("STAFF_IDLE_MINUTES", "120")))
    LOST_LINK_RATE_LIMIT = os.environ.get("LOST_LINK_RATE_LIMIT", "5 per minute;30 per hour")
    #: Registration posts per address (each mails it; register-cancel cycles must not flood a mailbox).
    REGISTER_ADDRESS_RATE_LIMIT = os.environ.get("REGISTER_ADDRESS_RATE_LIMIT", "5 per hour")
    #: Address changes (each mails a confirmation to the new address) per registration and per new address.
    EMAIL_CHANGE_RATE_LIMIT = os.environ.get("EMAIL_CHANGE_RATE_LIMIT", "5 per hour")
    #: Generous: on the event day many people register from behind the venue's one address.
    REGISTER_RATE_LIMIT = os.environ.get("REGISTER_RATE_LIMIT", "60 per minute")
    #: A registered address gets at most one unrequested link mail (repeat registration, lost link) this often.
    LINK_RESEND_INTERVAL = timedelta(minutes=int(os.environ.get("LINK_RESEND_INTERVAL_MINUTES", "10")))
    #: How long the confirmation link of an address change stays valid.
    EMAIL_CHANGE_VALID_FOR = timedelta(hours=24)
    #: Each app process remembers a scanner's token this long instead of asking the database on every scan; so a
    #: revoked token, or the token of a disabled staff member, is refused at most this many seconds later.
    DEVICE_TOKEN_CACHE_SECONDS = float(os.environ.get("DEVICE_TOKEN_CACHE_SECONDS", "5"))
    #: How often the admin dashboard's event-day panel refreshes itself, in seconds.
    DASHBOARD_REFRESH_SECONDS = max(1, _count("DASHBOARD_REFRESH_SECONDS", "15"))
    #: Off in production: a stray REHEARSAL_CLOCK there would move the real deadline.
    ALLOW_REHEARSAL_CLOCK = True
    #: Log lines on stderr: json (one JSON object a line, for a log collector) or text (for reading in a terminal).
    LOG_FORMAT = os.environ.get("LOG_FORMAT", "json").strip().lower()
    LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO").strip().upper()


check_closing_event(vars(Config))


class ProductionConfig(Config):
    """Several processes or hosts behind a load balancer, PostgreSQL, real SMTP."""

    REQUIRE_SECRET_KEY = True
    ALLOW_REHEARSAL_CLOCK = False
    SESSION_COOKIE_SECURE = os.environ.get("SESSION_COOKIE_SECURE", "1").lower() in ("1", "true", "yes")
    HSTS = _flag("HSTS", "1")
    #: No default: with several processes or hosts, limits counted in each process's memory would let the limit
    #: through once per process. Say redis://... (shared), or memory:// for a single process with threads.
    RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI") or None


CONFIGS = {"development": Config, "production": ProductionConfig}


def config_class() -> type[Config]:
    """The configuration chosen by APP_ENV (development by default)."""
    name = os.environ.get("APP_ENV", "development")
    try:
        return CONFIGS[name]
    except KeyError:
        raise ValueError(f"APP_ENV must be one of {', '.join(CONFIGS)} (got {name!r})") from None
