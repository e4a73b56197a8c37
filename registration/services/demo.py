"""Generated, clearly fake data for trying and measuring the organisers' console (`flask demo-data`).

Everything is written with bulk Core INSERTs in chunks (an ORM object per row would take minutes for 100,000
people), then checked by the same seat invariants as real data. The people are simulated in time order through the
seat rule (a seat while any is free, else the waiting list; a seat given up before the deadline goes to the next in
line), so that the result is a state the real services could have reached. Names, organisations and addresses are
visibly fake (デモ株式会社, Demo Corp, demo-<n>@example.invalid, which no mail server accepts) and their mail is
marked sent, so that the mail sender never tries to deliver it.
"""

import hashlib
import json
import random
import secrets
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from flask import current_app
from sqlalchemy import bindparam, func, insert, select, text, update

from registration import clock
from registration.extensions import db
from registration.models import (AuditEntry, CheckIn, DeviceToken, OutboxMessage, Registrant, Scan, SeatCounter,
                                 SessionView, Staff, Ticket, ViewingSignup)
from registration.services import checkins, registrations, seats, viewing
from registration.services import staff as staff_service
from registration.tickets import code_problem, new_ticket_code

DEFAULT_SEED = 2023
#: Rows per INSERT statement batch: large enough to be fast, small enough for the drivers' parameter limits.
CHUNK = 5000
#: The domain RFC 2606 reserves as invalid: no mail to these addresses can ever be delivered.
EMAIL_DOMAIN = "example.invalid"
EVENT_DAY = (2023, 9, 14)
STAFF_NAMES = ("demo-door", "demo-admin")
GATES = ("door-1", "door-2")

#: (family name, its reading in katakana)
FAMILY_NAMES = (
    ("山田", "ヤマダ"), ("佐藤", "サトウ"), ("鈴木", "スズキ"), ("高橋", "タカハシ"), ("田中", "タナカ"),
    ("伊藤", "イトウ"), ("渡辺", "ワタナベ"), ("山本", "ヤマモト"), ("中村", "ナカムラ"), ("小林", "コバヤシ"),
    ("加藤", "カトウ"), ("吉田", "ヨシダ"), ("山口", "ヤマグチ"), ("松本", "マツモト"), ("井上", "イノウエ"),
    ("木村", "キムラ"), ("林", "ハヤシ"), ("斎藤", "サイトウ"), ("清水", "シミズ"), ("森", "モリ"),
    ("池田", "イケダ"), ("橋本", "ハシモト"), ("石川", "イシカワ"), ("前田", "マエダ"), ("藤田", "フジタ"),
)
GIVEN_NAMES = (
    ("太郎", "タロウ"), ("花子", "ハナコ"), ("一郎", "イチロウ"), ("次郎", "ジロウ"), ("健太", "ケンタ"),
    ("翔太", "ショウタ"), ("大輔", "ダイスケ"), ("直樹", "ナオキ"), ("拓也", "タクヤ"), ("陽子", "ヨウコ"),
    ("美咲", "ミサキ"), ("愛", "アイ"), ("彩", "アヤ"), ("由美", "ユミ"), ("恵", "メグミ"),
    ("誠", "マコト"), ("亮", "リョウ"), ("智子", "トモコ"), ("裕子", "ユウコ"), ("和也", "カズヤ"),
)
ENGLISH_FAMILY_NAMES = ("Smith", "Johnson", "Brown", "Taylor", "Miller", "Wilson", "Moore", "Clark", "Lewis",
                        "Walker", "Young", "King", "Wright", "Scott", "Green")
ENGLISH_GIVEN_NAMES = ("John", "Jane", "Alex", "Emily", "Michael", "Sarah", "David", "Laura", "Chris", "Anna",
                       "James", "Olivia", "Daniel", "Sophie", "Tom")
JAPANESE_ORGANIZATIONS = ("デモ株式会社", "株式会社デモ", "デモ合同会社", "デモ大学")
ENGLISH_ORGANIZATIONS = ("Demo Corp", "Demo Inc.", "Demo Labs")
JAPANESE_JOB_TITLES = ("SRE", "インフラエンジニア", "ソフトウェアエンジニア", "プロダクトマネージャー", "運用担当",
                       "テックリード", "エンジニアリングマネージャー", "情報システム部", "CTO", "")
ENGLISH_JOB_TITLES = ("SRE", "Platform Engineer", "Software Engineer", "Engineering Manager", "DevOps Lead", "")


class DemoError(Exception):
    """Demo data cannot be written here; the message says why and what to do."""


@dataclass
class Person:
    """One generated registrant as the simulation moves them."""

    id: int
    n: int
    family_name: str
    given_name: str
    family_name_kana: str
    given_name_kana: str
    organization: str
    job_title: str
    locale: str
    registered_at: datetime
    asks: bool
    on_site: bool = False
    cancel_at: datetime | None = None
    cancelled_at: datetime | None = None
    seat_status: str = "none"
    waitlisted_at: datetime | None = None
    seat_confirmed_at: datetime | None = None
    ticket_code: str | None = None
    reminder_sent_at: datetime | None = None
    reminder_answer: str | None = None
    reminder_answered_at: datetime | None = None
    sessions: list[int] = field(default_factory=list)

    @property
    def email(self) -> str:
        return f"demo-{self.n}@{EMAIL_DOMAIN}"

    @property
    def holds_seat(self) -> bool:
        return self.seat_status == "confirmed" and self.cancelled_at is None


@dataclass
class Report:
    """What was written: rows per table, and seconds taken."""

    counts: Counter
    seconds: float = 0.0


def refusal() -> str | None:
    """Why demo data may not be written into this app's database (production), or None."""
    if current_app.config["REQUIRE_SECRET_KEY"]:
        return ("Refused: this is the production configuration (APP_ENV=production). Demo data would mix fake "
                "people into real registrations; use a development database.")
    return None


def generate(count: int, *, seed: int = DEFAULT_SEED, add: bool = False) -> Report:
    """Write `count` fake registrants with their seats, sign-ups, views, check-ins, scans and history (flushes,
    the caller commits). Raises DemoError in production, without the seat counter, or on a database that holds
    registrants already unless `add`."""
    reason = refusal()
    if reason:
        raise DemoError(reason)
    if db.session.get(SeatCounter, seats.COUNTER) is None:
        raise DemoError("The seat counter is missing: run `flask --app registration event load` first.")
    seats.lock()  # the seats are decided below from the counter as it is now; nobody else moves it meanwhile
    existing = db.session.scalar(select(func.count()).select_from(Registrant))
    if existing and not add:
        raise DemoError(f"The database already holds {existing} registrant(s): demo data goes into an empty "
                        "database. Give --add to add to them anyway.")
    return _Generator(random.Random(seed), count).run()


class _Generator:
    def __init__(self, rng: random.Random, count: int) -> None:
        self.rng = rng
        self.count = count
        self.config = current_app.config
        self.counts: Counter = Counter()
        self.dialect = db.session.get_bind().dialect.name
        self.opens = self.config["REGISTRATION_OPENS_AT"].astimezone(UTC)
        self.deadline = self.config["REGISTRATION_DEADLINE"].astimezone(UTC)
        self.audit: list[tuple] = []  # (at, order, row): sorted by time before insertion, so ids follow time
        self.tickets: list[dict] = []

    # --- the people --------------------------------------------------------------------------------------------

    def run(self) -> Report:
        started = clock.real_now()
        self.staff = self._staff()
        self.devices = self._devices()
        first_id = (db.session.scalar(select(func.max(Registrant.id))) or 0) + 1
        numbers = self._first_number()
        self.people = self._people(first_id, numbers)
        self.sessions = [session.id for entry in viewing.program() for session in entry.sessions]
        self._simulate_seats()
        self._walk_ins()
        self._rotations()
        self._reminders()
        self._insert(Registrant, (self._registrant_row(person) for person in self.people))
        self._sync_sequence(Registrant)
        self._insert(Ticket, self.tickets)
        self._signups_and_views()
        self._event_day()
        self._sync_sequence(CheckIn)
        self._move_counter()
        self._seat_mail()
        for person in self.people:
            if not person.on_site:  # a walk-in's entry is registrant.walk_in, as register_walk_in writes
                self.audit.append((person.registered_at, 0, person, "register"))
        self.audit.sort(key=lambda entry: (entry[0], entry[1]))
        self._insert(AuditEntry, (self._audit_row(entry) for entry in self.audit))
        db.session.flush()
        return Report(self.counts, (clock.real_now() - started).total_seconds())

    def _first_number(self) -> int:
        """The next demo-<n> number: above every id and every demo address already there (with --add)."""
        highest = db.session.scalar(select(func.max(Registrant.id))) or 0
        for (email,) in db.session.execute(select(Registrant.email).where(Registrant.email.like(f"demo-%@{EMAIL_DOMAIN}"))):
            number = email[len("demo-"):-len(EMAIL_DOMAIN) - 1]
            if number.isdigit():
                highest = max(highest, int(number))
        return highest + 1

    def _people(self, first_id: int, first_number: int) -> list[Person]:
        rng = self.rng
        times = sorted(self._registration_time() for _ in range(self.count))
        organisations = max(10, self.count // 25)
        people = []
        for index, at in enumerate(times):
            english = rng.random() < 0.10
            if english:
                family, given = rng.choice(ENGLISH_FAMILY_NAMES), rng.choice(ENGLISH_GIVEN_NAMES)
                family_kana = given_kana = ""
                organization = f"{rng.choice(ENGLISH_ORGANIZATIONS)} {rng.randint(1, organisations)}"
                job, locale = rng.choice(ENGLISH_JOB_TITLES), "en"
            else:
                (family, family_kana), (given, given_kana) = rng.choice(FAMILY_NAMES), rng.choice(GIVEN_NAMES)
                organization = f"{rng.choice(JAPANESE_ORGANIZATIONS)} {rng.randint(1, organisations)}"
                # A few Japanese registrants read their pages in English.
                job, locale = rng.choice(JAPANESE_JOB_TITLES), "en" if rng.random() < 0.03 else "ja"
            person = Person(id=first_id + index, n=first_number + index, family_name=family, given_name=given,
                            family_name_kana=family_kana, given_name_kana=given_kana, organization=organization,
                            job_title=job, locale=locale, registered_at=at, asks=rng.random() < 0.60)
            if rng.random() < 0.05:
                # Cancelled later, before the deadline.
                person.cancel_at = at + (self.deadline - at) * rng.random()
            person.sessions = rng.sample(range(10_000), rng.choice((0, 1, 2, 2, 3, 3, 4, 5, 6, 8)))
            people.append(person)
        return people

    def _registration_time(self) -> datetime:
        """A moment in the registration window: many right after it opens, many just before the deadline."""
        rng = self.rng
        span = (self.deadline - self.opens).total_seconds()
        kind = rng.random()
        if kind < 0.30:
            offset = rng.expovariate(1 / (2 * 86400))
        elif kind < 0.60:
            offset = span - rng.expovariate(1 / (3 * 86400))
        else:
            offset = rng.random() * span
        if not 0 <= offset < span:
            offset = rng.random() * span
        return self.opens + timedelta(seconds=int(offset))

    # --- seats ---------------------------------------------------------------------------------------------------

    def _simulate_seats(self) -> None:
        """Registrations and cancellations in time order through the seat rule (seats.request_seat, release_seat,
        promote_waiting), writing the seat history as the rule would."""
        counter = db.session.get(SeatCounter, seats.COUNTER)
        self.free = max(0, counter.capacity - counter.taken)
        self.new_holders = 0
        events = [(person.registered_at, 0, person) for person in self.people]
        events += [(person.cancel_at, 1, person) for person in self.people if person.cancel_at]
        # A few seat holders cancel on the event morning: the seats they free go to walk-ins, not the waiting list.
        events.sort(key=lambda event: (event[0], event[1], event[2].id))
        self.waiting: deque[Person] = deque()
        for at, kind, person in events:
            if kind == 0 and person.asks:
                self._request_seat(person, at)
            elif kind == 1:
                self._cancel(person, at)
        holders = [person for person in self.people if person.holds_seat]
        morning = self._event_time(10, 30)
        for person in self.rng.sample(holders, min(len(holders), self._walk_in_count())):
            self._cancel(person, morning + timedelta(minutes=self.rng.randint(0, 90)))

    def _walk_in_count(self) -> int:
        return min(5, max(1, self.count // 100))

    def _request_seat(self, person: Person, at: datetime) -> None:
        if self.free > 0:
            self.free -= 1
            self._confirm(person, at, "seat.confirmed", "none")
        else:
            person.seat_status, person.waitlisted_at = "waitlisted", at
            self.waiting.append(person)
            self._seat_audit(person, "seat.waitlisted", "none", "waitlisted", at)

    def _confirm(self, person: Person, at: datetime, action: str, before: str, details: str = "") -> None:
        person.seat_status, person.seat_confirmed_at, person.waitlisted_at = "confirmed", at, None
        person.ticket_code = new_ticket_code()
        self.tickets.append({"code": person.ticket_code, "registrant_id": person.id, "issued_at": at,
                             "retired_at": None, "retired_reason": None})
        self.new_holders += 1
        self._seat_audit(person, action, before, "confirmed", at, details)

    def _cancel(self, person: Person, at: datetime) -> None:
        before = person.seat_status
        person.cancelled_at = at
        self.audit.append((at, 1, person, "cancel", {"cancelled": False, "seat_status": before},
                           {"cancelled": True, "seat_status": "none"}))
        if before != "none":
            self._seat_audit(person, "seat.released", before, "none", at, "cancelled")
        if before == "confirmed":
            self._retire(person, at, "cancelled")
            self.new_holders -= 1
            self.free += 1
        person.seat_status, person.waitlisted_at, person.seat_confirmed_at = "none", None, None
        if before == "confirmed" and at < self.deadline:
            self._promote_waiting(at)

    def _retire(self, person: Person, at: datetime, reason: str) -> None:
        for ticket in self.tickets:
            if ticket["registrant_id"] == person.id and ticket["retired_at"] is None:
                ticket["retired_at"], ticket["retired_reason"] = at, reason
        person.ticket_code = None

    def _promote_waiting(self, at: datetime) -> None:
        while self.free > 0 and self.waiting:
            candidate = self.waiting.popleft()
            if candidate.seat_status != "waitlisted" or candidate.cancelled_at is not None:
                continue  # left the waiting list since
            self.free -= 1
            self._confirm(candidate, at, "seat.promoted", "waitlisted", "a seat came free")

    def _seat_audit(self, person: Person, action: str, before: str, after: str, at: datetime,
                    details: str = "") -> None:
        self.audit.append((at, 1, person, action, {"seat_status": before}, {"seat_status": after}, details))

    def _walk_ins(self) -> None:
        """A few people registered at the door after the deadline, each with a seat that came free."""
        rng = self.rng
        self.walk_ins = []
        next_id = self.people[-1].id + 1 if self.people else 1
        next_number = self.people[-1].n + 1 if self.people else 1
        at = self._event_time(12, 40)
        for index in range(min(self._walk_in_count(), self.free)):
            at += timedelta(minutes=rng.randint(3, 40))
            (family, family_kana), (given, given_kana) = rng.choice(FAMILY_NAMES), rng.choice(GIVEN_NAMES)
            person = Person(id=next_id + index, n=next_number + index, family_name=family, given_name=given,
                            family_name_kana=family_kana, given_name_kana=given_kana,
                            organization=f"{JAPANESE_ORGANIZATIONS[0]} {rng.randint(1, 50)}",
                            job_title=rng.choice(JAPANESE_JOB_TITLES), locale="ja", registered_at=at, asks=True,
                            on_site=True)
            self.free -= 1
            self._confirm(person, at, "seat.confirmed", "none")
            self.audit.append((at, 0, person, "walk_in"))  # before its seat, as the service writes them
            self.walk_ins.append(person)
        self.people.extend(self.walk_ins)

    def _rotations(self) -> None:
        """Two leaked codes replaced by an admin: the old ones answer "replaced" at the door."""
        self.replaced_codes = []
        holders = [person for person in self.people if person.holds_seat and not person.on_site]
        for person in self.rng.sample(holders, min(2, len(holders))):
            at = max(person.seat_confirmed_at, self.deadline - timedelta(days=2)) + timedelta(hours=1)
            old = person.ticket_code
            self._retire(person, at, "replaced")
            person.ticket_code = new_ticket_code()
            self.tickets.append({"code": person.ticket_code, "registrant_id": person.id, "issued_at": at,
                                 "retired_at": None, "retired_reason": None})
            self.replaced_codes.append((person, old))
            self.audit.append((at, 1, person, "rotate", old))

    def _reminders(self) -> None:
        """The closing-event reminder went to the seat holders a week before; most answered they are coming."""
        sent = self._event_time(10, 0) - timedelta(days=7)
        for person in self.people:
            if person.holds_seat and not person.on_site and person.seat_confirmed_at < sent:
                person.reminder_sent_at = sent
                if self.rng.random() < 0.6:
                    person.reminder_answer = "coming"
                    person.reminder_answered_at = sent + timedelta(minutes=self.rng.randint(5, 4 * 24 * 60))
                    self.audit.append((person.reminder_answered_at, 1, person, "reminder"))

    def _move_counter(self) -> None:
        db.session.execute(update(SeatCounter).where(SeatCounter.key == seats.COUNTER)
                           .values(taken=SeatCounter.taken + self.new_holders)
                           .execution_options(synchronize_session=False))

    def _event_time(self, hour: int, minute: int) -> datetime:
        return datetime(*EVENT_DAY, hour, minute, tzinfo=clock.TOKYO).astimezone(UTC)

    # --- rows ----------------------------------------------------------------------------------------------------

    def _registrant_row(self, person: Person) -> dict:
        values = {
            "id": person.id, "secret": registrations.new_secret(), "email": person.email,
            "email_key": registrations.email_key(person.email), "family_name": person.family_name,
            "given_name": person.given_name, "family_name_kana": person.family_name_kana,
            "given_name_kana": person.given_name_kana, "organization": person.organization,
            "job_title": person.job_title, "attend_closing": person.seat_status != "none", "locale": person.locale,
            "consented_at": person.registered_at, "registered_at": person.registered_at,
            "updated_at": person.cancelled_at or person.registered_at, "cancelled_at": person.cancelled_at,
            "link_resent_at": None, "pending_email": None, "pending_email_token": None,
            "pending_email_requested_at": None, "seat_status": person.seat_status,
            "waitlisted_at": person.waitlisted_at, "seat_confirmed_at": person.seat_confirmed_at,
            "ticket_code": person.ticket_code, "on_site": person.on_site, "anonymised_at": None,
            "reminder_sent_at": person.reminder_sent_at, "reminder_answer": person.reminder_answer,
            "reminder_answered_at": person.reminder_answered_at,
        }
        # The model's own method on the row's values: search finds demo people exactly as it finds real ones.
        values["search_key"] = Registrant.searchable_text(SimpleNamespace(**values))
        return values

    def _snapshot(self, person: Person, attend_closing: bool) -> dict:
        """registrations.snapshot of the person as they registered."""
        return {"family_name": person.family_name, "given_name": person.given_name,
                "family_name_kana": person.family_name_kana, "given_name_kana": person.given_name_kana,
                "email": person.email, "organization": person.organization, "job_title": person.job_title,
                "locale": person.locale, "attend_closing": attend_closing, "pending_email": None}

    def _audit_row(self, entry: tuple) -> dict:
        at, _, person, kind, *rest = entry
        row = {"at": at, "staff_id": None, "actor": "system", "action": kind, "registrant_id": person.id,
               "details": "", "before": None, "after": None}
        if kind == "register":
            row.update(actor="registrant", action="registrant.register",
                       after=_json(self._snapshot(person, False)))
        elif kind == "walk_in":
            row.update(actor="staff", staff_id=self.staff["demo-admin"].id, action="registrant.walk_in",
                       after=_json(self._snapshot(person, True)), details="registered at the door by demo-admin")
        elif kind == "cancel":
            row.update(actor="registrant", action="registrant.cancel", before=_json(rest[0]), after=_json(rest[1]))
        elif kind == "rotate":
            row.update(actor="staff", staff_id=self.staff["demo-admin"].id, action="ticket.rotate",
                       before=_json({"ticket": registrations.code_hint(rest[0])}),
                       after=_json({"ticket": registrations.code_hint(person.ticket_code)}),
                       details="ticket code replaced by demo-admin")
        elif kind == "reminder":
            row.update(actor="registrant", action="reminder.answer", before=_json({"reminder_answer": None}),
                       after=_json({"reminder_answer": "coming"}))
        elif kind == "undo":
            row.update(actor="staff", staff_id=self.staff["demo-door"].id, action="checkin.undo", details=rest[0],
                       before=rest[1], after=json.dumps({"checked_in_at": None}))
        else:  # a seat decision
            row.update(before=_json(rest[0]), after=_json(rest[1]), details=rest[2] if len(rest) > 2 else "")
        return row

    # --- sign-ups and views --------------------------------------------------------------------------------------

    def _signups_and_views(self) -> None:
        if not self.sessions:
            return
        on_demand = next(window for window in viewing.windows() if window.name == "on_demand")
        starts, ends = on_demand.starts_at.astimezone(UTC), on_demand.ends_at.astimezone(UTC)
        rng = self.rng

        def signups():
            for person in self.people:
                for choice in person.sessions:
                    session = self.sessions[choice % len(self.sessions)]
                    withdrawn = person.cancelled_at
                    if withdrawn is None and rng.random() < 0.03:
                        withdrawn = person.registered_at + timedelta(minutes=rng.randint(1, 20 * 24 * 60))
                    yield {"registrant_id": person.id, "session_id": session, "signed_up_at": person.registered_at,
                           "withdrawn_at": withdrawn}

        def views():
            for person in self.people:
                first = max(starts, person.registered_at)
                if person.cancelled_at is not None or first >= ends or rng.random() < 0.5:
                    continue
                seen = set()
                for choice in person.sessions[:rng.randint(1, 4)] or [rng.randrange(10_000)]:
                    session = self.sessions[choice % len(self.sessions)]
                    at = first + (ends - first) * rng.random()
                    slot = int(at.timestamp()) // viewing.VIEW_SLOT_SECONDS
                    if (session, slot) not in seen:
                        seen.add((session, slot))
                        yield {"registrant_id": person.id, "session_id": session, "at": at,
                               "window": "on_demand", "slot": slot}

        for person in self.people:  # distinct sessions for each person: one current sign-up per session
            person.sessions = list(dict.fromkeys(choice % len(self.sessions) for choice in person.sessions))
        self._insert(ViewingSignup, signups())
        self._insert(SessionView, views())

    # --- the event day -------------------------------------------------------------------------------------------

    def _staff(self) -> dict[str, Staff]:
        """The demo door and admin accounts, created with a random password nobody is told (sign in with your own
        admin account; `staff password` gives them one if wanted)."""
        accounts = {}
        for name in STAFF_NAMES:
            staff = staff_service.find_staff(name)
            if staff is None:
                staff = staff_service.add_staff(name, role="admin" if name == "demo-admin" else "door",
                                                password=secrets.token_urlsafe(24))
                self.counts["staff"] += 1
            accounts[name] = staff
        return accounts

    def _devices(self) -> dict[str, DeviceToken]:
        door = self.staff["demo-door"]
        devices = {}
        for gate in GATES:
            name = f"demo-{gate}"
            device = db.session.scalar(select(DeviceToken).where(DeviceToken.staff_id == door.id,
                                                                 DeviceToken.name == name,
                                                                 DeviceToken.revoked_at.is_(None)))
            if device is None:
                # The token itself is thrown away: only its hash is stored, so no scanner can use this device.
                device = DeviceToken(name=name, staff_id=door.id,
                                     token_hash=hashlib.sha256(secrets.token_bytes(32)).hexdigest())
                db.session.add(device)
                self.counts["device_tokens"] += 1
            devices[gate] = device
        db.session.flush()
        return devices

    def _event_day(self) -> None:
        """Three quarters of the seat holders admitted at two gates, with refused scans, repeats and two undos."""
        rng = self.rng
        next_checkin = (db.session.scalar(select(func.max(CheckIn.id))) or 0) + 1
        opening = (self.config.get("CLOSING_STARTS_AT") or datetime(*EVENT_DAY, 13, 0, tzinfo=clock.TOKYO))
        doors_open = opening.astimezone(UTC) - timedelta(minutes=30)
        evening = self._event_time(19, 0)
        holders = [person for person in self.people if person.holds_seat]
        coming = [person for person in holders if person.on_site or rng.random() < 0.75]
        checkin_rows, scans = [], []
        door = self.staff["demo-door"]

        def scan(at, code, body, person=None, gate=None):
            gate = gate or rng.choice(GATES)
            scans.append({"at": at, "received_at": at, "nonce": secrets.token_hex(16), "code": code,
                          "result": body["result"],
                          "reason": body.get("reason"), "registrant_id": person.id if person else None,
                          "gate": gate, "staff_id": door.id, "device_id": self.devices[gate].id,
                          "status_code": checkins.STATUS[body["result"]],
                          "response": json.dumps(body, ensure_ascii=False),
                          "previous_latency_ms": rng.randint(60, 400)})

        def admit(person, at):
            nonlocal next_checkin
            gate = rng.choice(GATES)
            checkin = {"id": next_checkin, "registrant_id": person.id, "at": at, "received_at": at, "gate": gate,
                       "staff_id": door.id, "device_id": self.devices[gate].id, "undone_at": None,
                       "undone_by_id": None}
            next_checkin += 1
            checkin_rows.append(checkin)
            scan(at, person.ticket_code, {"result": "ok", "checkin_id": checkin["id"],
                                          "attendee": checkins.attendee_json(person),
                                          "checked_in_at": _iso(at), "gate": gate}, person, gate)
            return checkin

        span = (evening - doors_open).total_seconds()
        for person in coming:
            if person.on_site:
                at = person.registered_at + timedelta(seconds=rng.randint(60, 180))
            else:  # most arrive around the opening
                at = doors_open + timedelta(seconds=int(min(span - 1, rng.expovariate(1 / 2400))))
            admit(person, at)
        admitted = sorted(checkin_rows, key=lambda row: row["at"])
        # Two admissions taken back (a wrong person let in); the first of them is admitted again later.
        for number, checkin in enumerate(admitted[:: max(1, len(admitted) // 2)][:2]):
            undone_at = checkin["at"] + timedelta(minutes=rng.randint(1, 5))
            checkin.update(undone_at=undone_at, undone_by_id=door.id)
            before = json.dumps({"checked_in_at": _iso(checkin["at"]), "gate": checkin["gate"]})
            person = next(p for p in holders if p.id == checkin["registrant_id"])
            self.audit.append((undone_at, 1, person, "undo",
                               f"check-in {checkin['id']} at {_iso(checkin['at'])}, gate {checkin['gate']}", before))
            if number == 0:
                admit(person, undone_at + timedelta(minutes=rng.randint(5, 30)))
        active = {row["registrant_id"]: row for row in checkin_rows if row["undone_at"] is None}
        by_id = {person.id: person for person in holders}
        # Repeats: the same ticket shown again a little later.
        for registrant_id in rng.sample(sorted(active), min(len(active), max(1, len(active) // 30))):
            standing, person = active[registrant_id], by_id[registrant_id]
            scan(standing["at"] + timedelta(seconds=rng.randint(20, 1200)), person.ticket_code,
                 {"result": "already_checked_in", "checkin_id": standing["id"],
                  "attendee": checkins.attendee_json(person), "checked_in_at": _iso(standing["at"]),
                  "gate": standing["gate"], "by": door.name, "device": self.devices[standing["gate"]].name}, person)

        def refused_at():
            return doors_open + timedelta(seconds=rng.randint(0, int(span) - 1))

        # Codes nobody was given: a photo of something else, a typo, a code from another event.
        for _ in range(max(2, len(coming) // 40)):
            code = new_ticket_code() if rng.random() < 0.6 else rng.choice(("HELLO-WORLD", "ABCD EFGH", "12345"))
            problem = code_problem(code)
            scan(refused_at(), code, {"result": "unknown_code", "problem": problem.as_json()} if problem
                 else {"result": "unknown_code"})
        # Refusals with a reason, each from a real person in the data.
        cancelled_codes = [ticket for ticket in self.tickets if ticket["retired_reason"] == "cancelled"]
        people_by_id = {person.id: person for person in self.people}
        for ticket in cancelled_codes[:3]:
            self._refuse(scan, refused_at(), ticket["code"], people_by_id[ticket["registrant_id"]], "cancelled")
        for person, old in self.replaced_codes:
            self._refuse(scan, refused_at(), old, person, "replaced")
        waiting = [person for person in self.people if person.seat_status == "waitlisted"][:2]
        unseated = [person for person in self.people if person.seat_status == "none" and not person.cancelled_at][:2]
        for person in waiting:
            self._refuse(scan, refused_at(), f"#{person.id}", person, "waitlisted")
        for person in unseated:
            self._refuse(scan, refused_at(), f"#{person.id}", person, "no_ticket")
        scans.sort(key=lambda row: row["at"])
        self._insert(CheckIn, checkin_rows)
        self._insert(Scan, scans)

    @staticmethod
    def _refuse(scan, at: datetime, code: str, person: Person, reason: str) -> None:
        scan(at, code, {"result": "not_admitted", "reason": reason, "attendee": checkins.attendee_json(person)},
             person)

    # --- mail ----------------------------------------------------------------------------------------------------

    def _seat_mail(self) -> None:
        """Every valid code reached its holder in a mail (a seat invariant): the real seat mail, written for each
        holder (at most the capacity) and marked sent, so the mail sender never tries example.invalid."""
        holder_ids = [person.id for person in self.people if person.holds_seat]
        confirmed = {person.id: person.seat_confirmed_at for person in self.people if person.holds_seat}
        for start in range(0, len(holder_ids), 500):
            batch = holder_ids[start:start + 500]
            for registrant in db.session.scalars(select(Registrant).where(Registrant.id.in_(batch))):
                registrations.enqueue_mail(registrant, "seat")
            db.session.flush()
        pending = []
        for start in range(0, len(holder_ids), 500):  # bounded IN lists, on every database
            pending += db.session.execute(select(OutboxMessage.id, OutboxMessage.registrant_id).where(
                OutboxMessage.registrant_id.in_(holder_ids[start:start + 500]),
                OutboxMessage.sent_at.is_(None))).all()
        if pending:
            table = OutboxMessage.__table__
            db.session.execute(
                update(table).where(table.c.id == bindparam("message_id"))
                .values(created_at=bindparam("written"), sent_at=bindparam("sent"), attempts=1),
                [{"message_id": message_id, "written": confirmed.get(registrant_id, self.deadline),
                  "sent": confirmed.get(registrant_id, self.deadline) + timedelta(seconds=30)}
                 for message_id, registrant_id in pending])
        self.counts["outbox"] += len(pending)

    # --- bulk writing --------------------------------------------------------------------------------------------

    def _insert(self, model, rows) -> None:
        """INSERT the rows in chunks of CHUNK, counting them under the table's name."""
        table = model.__table__
        batch = []
        for row in rows:
            batch.append(row)
            if len(batch) >= CHUNK:
                db.session.execute(insert(table), batch)
                self.counts[table.name] += len(batch)
                batch = []
        if batch:
            db.session.execute(insert(table), batch)
            self.counts[table.name] += len(batch)

    def _sync_sequence(self, model) -> None:
        """PostgreSQL: move the id sequence past the ids given explicitly, so later inserts get fresh ones."""
        if self.dialect == "postgresql":
            name = model.__tablename__
            db.session.execute(text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                                    f"(SELECT coalesce(max(id), 1) FROM {name}))"))


def _json(value: dict | None) -> str | None:
    """JSON as audit.record writes it."""
    if not value:
        return None
    return json.dumps(value, ensure_ascii=False, sort_keys=True,
                      default=lambda moment: clock.to_tokyo(moment).isoformat(timespec="seconds"))


def _iso(moment: datetime) -> str:
    return clock.to_tokyo(moment).isoformat(timespec="seconds")
