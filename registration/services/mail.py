"""The outbox: mail is written in the caller's transaction and delivered later, at most once per message."""

import os
import secrets
import smtplib
import ssl
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from flask import current_app, render_template
from flask_babel import force_locale
from sqlalchemy import or_, select, update
from sqlalchemy.exc import OperationalError

from registration import clock
from registration.extensions import db
from registration.models import OutboxMessage

#: A sender owns a claimed message this long; far longer than one SMTP exchange (MAIL_TIMEOUT_SECONDS).
CLAIM_LEASE = timedelta(minutes=5)
RECORD_ATTEMPTS = 5
FIRST_RETRY = timedelta(seconds=30)


def enqueue_template(*, recipient: str, subject: str, template: str, locale: str, registrant_id: int | None = None,
                     inline_images: dict[str, bytes] | None = None,
                     attachments: list[tuple[str, str, bytes]] | None = None, **context) -> OutboxMessage:
    """Render mail/<template>.txt and .html in `locale` and add the message to the outbox, about the registration
    `registrant_id` if given."""
    with force_locale(locale):
        text = render_template(f"mail/{template}.txt", locale=locale, **context)
        html = render_template(f"mail/{template}.html", locale=locale, subject=subject, **context)
    return enqueue(recipient=recipient, subject=subject, text=text, html=html, registrant_id=registrant_id,
                   inline_images=inline_images, attachments=attachments)


def enqueue(*, recipient: str, subject: str, text: str, html: str, registrant_id: int | None = None,
            inline_images: dict[str, bytes] | None = None,
            attachments: list[tuple[str, str, bytes]] | None = None) -> OutboxMessage:
    """Add a multipart message (text and HTML, PNG images the HTML shows as cid:NAME, attachments given as
    (filename, content type with any parameters, bytes)) to the outbox, in the caller's transaction."""
    message = EmailMessage()
    message["From"] = current_app.config["MAIL_FROM"]
    message["To"] = recipient
    message["Subject"] = subject
    message["Date"] = format_datetime(clock.now())
    message["Message-ID"] = make_msgid(domain=_sender_domain())
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    html_part = message.get_payload()[1]
    for name, png in (inline_images or {}).items():
        html_part.add_related(png, "image", "png", cid=f"<{name}>", filename=f"{name}.png")
    for filename, content_type, data in attachments or []:
        maintype, subtype, params = _split_content_type(content_type)
        # Bytes travel base64-encoded as given: a calendar entry keeps its CRLFs and folded lines exactly.
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename, params=params)
    # Internationalised addresses need SMTPUTF8; plain ones keep the most widely understood encoding.
    mail_policy = policy.SMTP if recipient.isascii() else policy.SMTPUTF8
    row = OutboxMessage(recipient=recipient, subject=subject, message=message.as_bytes(policy=mail_policy),
                        registrant_id=registrant_id)
    db.session.add(row)
    return row


def _split_content_type(content_type: str) -> tuple[str, str, dict[str, str]]:
    """'text/calendar; charset=utf-8; method=PUBLISH' as ('text', 'calendar', {'charset': 'utf-8', 'method':
    'PUBLISH'}), read by the email package's own header parser."""
    header = EmailMessage()
    header["Content-Type"] = content_type
    return header.get_content_maintype(), header.get_content_subtype(), dict(header["Content-Type"].params)


def _sender_domain() -> str:
    address = current_app.config["MAIL_FROM"]
    return address.rsplit("@", 1)[-1].strip(" >") or "localhost"


class PermanentFailure(Exception):
    """The server refused the message for good (5xx for the recipient): retrying cannot help."""


class TemporaryFailure(Exception):
    """The server refused this one message for now (4xx): it waits for its retry, the others go on."""


class SenderRefused(Exception):
    """The server refuses our sender address (MAIL FROM): a fault of the configuration or the relay, the same for
    every message, so the message waits for its retry and the round stops instead of failing the whole queue."""


class DirectoryTransport:
    """Writes each message as an .eml file: the local default, readable in any mail program."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def send(self, row: OutboxMessage) -> None:
        """Write the message atomically, named after its outbox id."""
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = clock.to_tokyo(row.created_at).strftime("%Y%m%d-%H%M%S")
        final = self.directory / f"{stamp}-{row.id:06d}.eml"
        partial = final.with_suffix(".eml.part")
        partial.write_bytes(row.message)
        os.replace(partial, final)

    def close(self) -> None:
        """Nothing to release."""


@dataclass
class SMTPTransport:
    """Delivers over SMTP: smtp:// (plain), smtp+starttls:// or smtps:// (TLS from the start)."""

    url: str
    timeout: float
    #: A CA bundle to verify the server's certificate against (an internal relay); the system's by default.
    ca_file: str | None = None
    _connection: smtplib.SMTP | None = field(default=None, init=False)

    def send(self, row: OutboxMessage) -> None:
        """Send one message over the (reused) connection."""
        connection = self._connection or self._connect()
        options = () if row.recipient.isascii() else ("SMTPUTF8",)
        try:
            refused = connection.sendmail(
                _envelope_sender(current_app.config["MAIL_FROM"]), [row.recipient], row.message,
                mail_options=options,
            )
        except smtplib.SMTPRecipientsRefused as exc:
            code = next(iter(exc.recipients.values()))[0]
            if 500 <= code < 600:
                raise PermanentFailure(f"recipient refused: {exc.recipients}") from exc
            if code == 421:  # the server is closing the connection (smtplib has closed it): not this message's fault
                self.close()
                raise
            raise TemporaryFailure(f"recipient refused for now: {exc.recipients}") from exc
        except smtplib.SMTPSenderRefused as exc:
            if exc.smtp_code == 421:
                self.close()
                raise
            raise SenderRefused(f"sender refused: {exc.smtp_code} {exc.smtp_error!r}") from exc
        except smtplib.SMTPDataError as exc:
            if 500 <= exc.smtp_code < 600:
                raise PermanentFailure(f"refused: {exc.smtp_code} {exc.smtp_error!r}") from exc
            if exc.smtp_code == 421:
                self.close()
                raise
            raise TemporaryFailure(f"refused for now: {exc.smtp_code} {exc.smtp_error!r}") from exc
        except smtplib.SMTPNotSupportedError as exc:
            # An internationalised address through a server without SMTPUTF8 will never get through.
            raise PermanentFailure(str(exc)) from exc
        except (smtplib.SMTPServerDisconnected, OSError):
            self.close()
            raise
        if refused:
            raise PermanentFailure(f"recipient refused: {refused}")

    def _connect(self) -> smtplib.SMTP:
        parts = urlsplit(self.url)
        query = parse_qs(parts.query)
        host = parts.hostname or "127.0.0.1"
        context = ssl.create_default_context(cafile=self.ca_file)
        if parts.scheme == "smtps":
            connection = smtplib.SMTP_SSL(host, parts.port or 465, timeout=self.timeout, context=context)
        else:
            connection = smtplib.SMTP(host, parts.port or 25, timeout=self.timeout)
        try:
            if parts.scheme == "smtp+starttls" or query.get("starttls") == ["1"]:
                connection.starttls(context=context)
            if parts.username:
                connection.login(unquote(parts.username), unquote(parts.password or ""))
        except BaseException:
            connection.close()
            raise
        self._connection = connection
        return connection

    def close(self) -> None:
        """Say QUIT if the connection is still up."""
        if self._connection is not None:
            try:
                self._connection.quit()
            except (smtplib.SMTPException, OSError):
                pass
            self._connection = None


def _envelope_sender(from_header: str) -> str:
    return from_header.rsplit("<", 1)[-1].rstrip(">").strip()


def transport_from_config() -> DirectoryTransport | SMTPTransport:
    """The transport MAIL_URL names; .eml files in instance/outbox/ when it is unset."""
    url = current_app.config["MAIL_URL"]
    if not url:
        return DirectoryTransport(Path(current_app.instance_path) / "outbox")
    parts = urlsplit(url)
    scheme = parts.scheme
    try:
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        raise ValueError(f"MAIL_URL has an invalid port: {url!r}") from None
    if scheme == "file":
        return DirectoryTransport(Path(unquote(urlsplit(url).path)))
    if scheme not in ("smtp", "smtps", "smtp+starttls"):
        raise ValueError(f"MAIL_URL must start with smtp://, smtp+starttls://, smtps:// or file:// (got {scheme}://)")
    return SMTPTransport(url, timeout=current_app.config["MAIL_TIMEOUT_SECONDS"],
                         ca_file=current_app.config["MAIL_CA_FILE"])


@dataclass
class DeliveryReport:
    """What one delivery round did."""

    sent: int = 0
    deferred: int = 0
    failed: int = 0
    #: The round took as many messages as it may: more may be due at once.
    full: bool = False


def backoff(attempts: int) -> timedelta:
    """Wait before the next attempt: 30 s doubling per attempt, capped at MAIL_MAX_BACKOFF_SECONDS."""
    cap = timedelta(seconds=current_app.config["MAIL_MAX_BACKOFF_SECONDS"])
    return min(FIRST_RETRY * 2 ** min(attempts - 1, 20), cap)


def _due(moment: datetime):
    return (
        OutboxMessage.sent_at.is_(None),
        OutboxMessage.failed_at.is_(None),
        or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until < moment),
    )


def deliver_due(transport, *, limit: int = 100) -> DeliveryReport:
    """Deliver the messages that are due. Commits per message: a claim must be visible before sending.

    Scheduling runs on real time (clock.real_now), not the rehearsal clock: retries and claims are plumbing.
    """
    report = DeliveryReport()
    sender_id = secrets.token_hex(8)
    moment = clock.real_now()
    due_ids = db.session.scalars(
        select(OutboxMessage.id)
        .where(*_due(moment), OutboxMessage.next_attempt_at <= moment)
        .order_by(OutboxMessage.id)
        .limit(limit)
    ).all()
    db.session.commit()
    report.full = len(due_ids) == limit
    try:
        for message_id in due_ids:
            moment = clock.real_now()
            # The conditional UPDATE decides which of several senders owns the message.
            claimed = db.session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == message_id, *_due(moment))
                .values(claimed_until=moment + CLAIM_LEASE, claimed_by=sender_id)
            ).rowcount
            db.session.commit()
            if claimed != 1:
                continue
            row = db.session.get(OutboxMessage, message_id)
            attempts = row.attempts + 1
            try:
                transport.send(row)
            except PermanentFailure as exc:
                _finish(message_id, sender_id, attempts, failed_at=clock.real_now(), error=str(exc))
                report.failed += 1
            except Exception as exc:  # noqa: BLE001 - whatever went wrong, the message waits for another try
                # The log gets the kind of failure only: an SMTP server's text often names the recipient (the
                # whole text stays in the outbox row, beside the address it concerns).
                current_app.logger.warning("mail %s deferred: %s", message_id, failure_kind(exc))
                _finish(message_id, sender_id, attempts, next_attempt_at=clock.real_now() + backoff(attempts),
                        error=repr(exc))
                report.deferred += 1
                # smtplib's errors are OSErrors too, but a refusal of one message arrives as TemporaryFailure: what
                # is left (no connection, a dropped or closing one, TLS, login, our sender refused) would fail the
                # rest of the batch alike.
                if isinstance(exc, (OSError, SenderRefused)):
                    break
            else:
                _finish(message_id, sender_id, attempts, sent_at=clock.real_now())
                report.sent += 1
    finally:
        transport.close()
    return report


def retry_failed(since: datetime | None = None) -> int:
    """Put messages marked failed (since `since`, if given) back in the queue, due now; returns how many.

    For a relay that refused everything for a while (a sandboxed account, a quota, a wrong SPF record): the 5xx
    marked each message failed, and none of them was the recipient's fault.
    """
    conditions = [OutboxMessage.failed_at.is_not(None), OutboxMessage.sent_at.is_(None)]
    if since is not None:
        conditions.append(OutboxMessage.failed_at >= since)
    return db.session.execute(
        update(OutboxMessage).where(*conditions)
        .values(failed_at=None, next_attempt_at=clock.real_now(), claimed_until=None, claimed_by=None)
    ).rowcount


def failure_kind(exc: BaseException) -> str:
    """A delivery failure as the log may show it: its class, the class behind it and the SMTP reply code."""
    kind = [type(exc).__name__]
    if exc.__cause__ is not None:
        kind.append(f"from {type(exc.__cause__).__name__}")
    code = getattr(exc.__cause__ or exc, "smtp_code", None)
    if isinstance(code, int):
        kind.append(f"SMTP {code}")
    return " ".join(kind)


def _finish(message_id: int, sender_id: str, attempts: int, *, error: str | None = None, **values) -> None:
    """Record the outcome of an attempt, trying hard: after a successful send, losing it means sending twice."""
    statement = (
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.claimed_by == sender_id)
        .values(attempts=attempts, last_error=error[:2000] if error else None, claimed_until=None,
                claimed_by=None, **values)
    )
    for attempt in range(1, RECORD_ATTEMPTS + 1):
        try:
            db.session.execute(statement)
            db.session.commit()
            return
        except OperationalError:
            db.session.rollback()
            if attempt == RECORD_ATTEMPTS:
                raise
            time.sleep(attempt)
