"""Configuration classes. Environment variables override every default; no secrets live here."""

import os
from datetime import date, datetime, timedelta


def _instant(name: str, default: str | None) -> datetime | None:
    """Read an ISO-8601 instant with an explicit offset from the environment."""
    raw = os.environ.get(name, default)
    if not raw:
        return None
    value = datetime.fromisoformat(raw)
    if value.tzinfo is None:
        raise ValueError(f"{name} must carry a UTC offset, e.g. 2023-09-14T10:00:00+09:00 (got {raw!r})")
    return value


class Config:
    """Defaults for local use: SQLite in instance/, mail as .eml files in instance/outbox/."""

    SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL", "sqlite:///registration.sqlite")
    SECRET_KEY = os.environ.get("SECRET_KEY")
    #: Refuse to start without SECRET_KEY instead of generating one into instance/.
    REQUIRE_SECRET_KEY = False

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

    #: Form posts are small; anything bigger is refused with 413 before it is parsed.
    MAX_CONTENT_LENGTH = 64 * 1024
    WTF_CSRF_TIME_LIMIT = None  # a form left open for hours must still submit; the token lives with the session
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = os.environ.get("SESSION_COOKIE_SECURE", "").lower() in ("1", "true", "yes")

    BABEL_DEFAULT_LOCALE = "ja"
    BABEL_DEFAULT_TIMEZONE = "Asia/Tokyo"
    LANGUAGES = ("ja", "en")

    #: memory:// for one process; redis://127.0.0.1:6379 when several processes share the limits.
    RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI", "memory://")
    RATELIMIT_HEADERS_ENABLED = True
    #: Failed staff sign-ins, per client address and per staff name.
    LOGIN_RATE_LIMIT = os.environ.get("LOGIN_RATE_LIMIT", "10 per 5 minutes")
    LOST_LINK_RATE_LIMIT = os.environ.get("LOST_LINK_RATE_LIMIT", "5 per minute;30 per hour")
    #: Generous: on the event day many people register from behind the venue's one address.
    REGISTER_RATE_LIMIT = os.environ.get("REGISTER_RATE_LIMIT", "60 per minute")
    #: A registered address gets at most one unrequested link mail (repeat registration, lost link) this often.
    LINK_RESEND_INTERVAL = timedelta(minutes=int(os.environ.get("LINK_RESEND_INTERVAL_MINUTES", "10")))
    #: How long the confirmation link of an address change stays valid.
    EMAIL_CHANGE_VALID_FOR = timedelta(hours=24)
    #: Each app process remembers a scanner's token this long instead of asking the database on every scan; so a
    #: revoked token, or the token of a disabled staff member, is refused at most this many seconds later.
    DEVICE_TOKEN_CACHE_SECONDS = float(os.environ.get("DEVICE_TOKEN_CACHE_SECONDS", "5"))
    #: Off in production: a stray REHEARSAL_CLOCK there would move the real deadline.
    ALLOW_REHEARSAL_CLOCK = True


class ProductionConfig(Config):
    """Several processes or hosts behind a load balancer, PostgreSQL, real SMTP."""

    REQUIRE_SECRET_KEY = True
    ALLOW_REHEARSAL_CLOCK = False
    SESSION_COOKIE_SECURE = os.environ.get("SESSION_COOKIE_SECURE", "1").lower() in ("1", "true", "yes")


CONFIGS = {"development": Config, "production": ProductionConfig}


def config_class() -> type[Config]:
    """The configuration chosen by APP_ENV (development by default)."""
    name = os.environ.get("APP_ENV", "development")
    try:
        return CONFIGS[name]
    except KeyError:
        raise ValueError(f"APP_ENV must be one of {', '.join(CONFIGS)} (got {name!r})") from None
