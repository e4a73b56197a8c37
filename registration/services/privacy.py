"""Erasing personal data: by its owner from the personal page, or for everyone after RETENTION_UNTIL.

The rows stay, without names, addresses or anything else that points at a person, so that the counts and
statistics (registrations, seats, sign-ups, views, check-ins) remain true. Services flush; the caller commits.
"""

import json
from datetime import date, datetime

from flask import current_app
from sqlalchemy import delete, or_, select, true, update

from registration import clock
from registration.errors import PrivacyError
from registration.extensions import db
from registration.services import audit
from registration.models import AuditEntry, LinkRequest, OutboxMessage, Registrant, Scan, Staff

#: What an erased registration's address and organisation read, everywhere they are shown.
ERASED = ""


def _erased_values(registrant_id: int, secret: str) -> dict:
    # The address keeps its uniqueness without meaning anything; the new secret kills every link ever mailed.
    return {
        "family_name": ERASED, "given_name": ERASED, "family_name_kana": ERASED, "given_name_kana": ERASED,
        "email": f"erased-{registrant_id}@invalid", "email_key": f"erased-{registrant_id}@invalid",
        "organization": ERASED, "job_title": ERASED, "pending_email": None, "pending_email_token": None,
        "pending_email_requested_at": None, "search_key": "", "secret": secret,
    }


def erase(registrant: Registrant, *, at: datetime | None = None, by: Staff | None = None, reason: str = "") -> bool:
    """Erase one registration's personal data (its owner asked, or an admin `by` on the owner's request); False if
    it already was. The caller has cancelled the registration first."""
    from registration.services.registrations import new_secret

    at = at or clock.now()
    # Conditional, so that of two taps on "delete" only one goes on (and writes the audit entry).
    erased = db.session.execute(
        update(Registrant).where(Registrant.id == registrant.id, Registrant.anonymised_at.is_(None))
        .values(anonymised_at=at, updated_at=at, **_erased_values(registrant.id, new_secret()))
        .execution_options(synchronize_session="fetch")).rowcount == 1
    if not erased:
        return False
    # Its mail by the registration it is about, whatever address it went to (an earlier one, a pending one), and
    # never the mail of another registration of the same address. Link requests naming the address are left: they
    # are gone within the mail sender's next round, and after the erasure no mail answers them.
    _forget_mail(OutboxMessage.registrant_id == registrant.id)
    _forget_scan_answers(Scan.registrant_id == registrant.id)
    _forget_audit_values(AuditEntry.registrant_id == registrant.id)
    # The request as the admin wrote it down is kept with the entry (who asked, how) until the purge, which drops it.
    audit.record("registrant.erase", registrant_id=registrant.id, by=by, actor="registrant", at=at,
                 after={"request": reason} if reason else None,
                 details="personal data erased at the owner's request" + (f" (by {by.name})" if by is not None else ""))
    db.session.flush()
    return True


def retention_reached(at: datetime) -> bool:
    """Whether the day (in Tokyo) of `at` is on or after RETENTION_UNTIL, the day the privacy policy names."""
    until: date = current_app.config["RETENTION_UNTIL"]
    return clock.to_tokyo(at).date() >= until


def purge(*, force: bool = False, by: Staff | None = None, at: datetime | None = None) -> int:
    """Erase the personal data of every registration, as the privacy policy promises from RETENTION_UNTIL on;
    refused before that day unless forced. Returns how many registrations were erased (already erased ones are
    left as they are)."""
    from registration.services.registrations import new_secret

    at = at or clock.now()
    if not retention_reached(at) and not force:
        raise PrivacyError("too_early")
    ids = db.session.scalars(select(Registrant.id).where(Registrant.anonymised_at.is_(None))
                             .order_by(Registrant.id)).all()
    # One executemany per thousand rows: each row gets its own secret and placeholder address.
    for start in range(0, len(ids), 1000):
        db.session.execute(update(Registrant), [
            {"id": registrant_id, "anonymised_at": at, **_erased_values(registrant_id, new_secret())}
            for registrant_id in ids[start:start + 1000]])
    _forget_mail(true())
    db.session.execute(delete(LinkRequest))
    _forget_scan_answers(Scan.registrant_id.is_not(None))
    _forget_audit_values(AuditEntry.registrant_id.is_not(None))
    audit.record("privacy.purge", by=by, actor="cli", at=at,
                 details=f"personal data of {len(ids)} registrations erased"
                         + ("" if retention_reached(at) else " (forced before RETENTION_UNTIL)"))
    db.session.flush()
    return len(ids)


def _forget_mail(which) -> None:
    """The messages matching `which`: unsent ones go, sent and failed ones keep only that they were sent."""
    db.session.execute(delete(OutboxMessage).where(which, OutboxMessage.sent_at.is_(None),
                                                   OutboxMessage.failed_at.is_(None))
                       .execution_options(synchronize_session=False))
    db.session.execute(update(OutboxMessage).where(which, or_(OutboxMessage.message != b"",
                                                                OutboxMessage.recipient != ERASED))
                       .values(recipient=ERASED, message=b"", last_error=None)
                       .execution_options(synchronize_session=False))


def _forget_audit_values(condition) -> None:
    """The audit log keeps who did what and when; the values before and after (names, addresses) go."""
    db.session.execute(update(AuditEntry).where(condition, or_(AuditEntry.before.is_not(None),
                                                               AuditEntry.after.is_not(None)))
                       .values(before=None, after=None).execution_options(synchronize_session=False))


def _forget_scan_answers(condition) -> None:
    """The door's recorded answers name the person: keep the result and reason, drop the rest."""
    for scan in db.session.scalars(select(Scan).where(condition)):
        body = json.loads(scan.response)
        scan.response = json.dumps({key: body[key] for key in ("result", "reason") if key in body})
