"""Bare-stack ceiling: the smallest honest door check-in on Flask + Flask-SQLAlchemy + PostgreSQL.

Copied from ../shared/bench/ceiling/app.py for issue 14, with one addition: POST /register, the smallest honest
registration (a form's name and e-mail address inserted into a table with a unique address: 201, or 409 for an
address already there), the baseline of bench/registration_burst.py. `python app.py create-registrations`
(re)creates its table.
"""
import os
import secrets
import sys

from flask import Flask, jsonify, request
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from datetime import datetime


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
TOKEN = os.environ.get("CEILING_TOKEN", "bench-ceiling-token")


class Ticket(db.Model):
    __tablename__ = "tickets"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(db.String(32), unique=True)
    checked_in_at: Mapped[datetime | None] = mapped_column(db.DateTime(timezone=True))


class Registration(db.Model):
    __tablename__ = "registrations"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(db.String(200))
    email: Mapped[str] = mapped_column(db.String(320), unique=True)
    created_at: Mapped[datetime] = mapped_column(db.DateTime(timezone=True), server_default=func.now())


def create_app():
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = os.environ.get(
        "CEILING_DB", "postgresql+psycopg2:///ceiling_bench")
    db.init_app(app)

    @app.post("/api/v1/checkins")
    def checkin():
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return jsonify(status="unauthorized"), 401
        code = (request.get_json(silent=True) or {}).get("code")
        if not isinstance(code, str):
            return jsonify(status="bad_request"), 400
        row = db.session.execute(
            update(Ticket).where(Ticket.code == code, Ticket.checked_in_at.is_(None))
            .values(checked_in_at=func.now()).returning(Ticket.id, Ticket.checked_in_at)).first()
        if row:
            db.session.commit()
            return jsonify(status="ok", ticket=row.id, checked_in_at=row.checked_in_at.isoformat()), 201
        prev = db.session.execute(
            select(Ticket.id, Ticket.checked_in_at).where(Ticket.code == code)).first()
        db.session.rollback()
        if prev:
            return jsonify(status="already_checked_in", ticket=prev.id,
                           checked_in_at=prev.checked_in_at.isoformat()), 409
        return jsonify(status="unknown"), 404

    @app.post("/register")
    def register():
        name, email = request.form.get("name", "").strip(), request.form.get("email", "").strip().lower()
        if not name or not email or "@" not in email:
            return jsonify(status="bad_request"), 400
        new_id = db.session.execute(
            insert(Registration).values(name=name, email=email)
            .on_conflict_do_nothing(index_elements=["email"]).returning(Registration.id)).scalar()
        db.session.commit()
        if new_id is None:
            return jsonify(status="already_registered"), 409
        return jsonify(status="registered", id=new_id), 201

    return app


app = create_app()

if __name__ == "__main__" and sys.argv[1:2] == ["create-registrations"]:  # python app.py create-registrations
    with app.app_context():
        Registration.__table__.drop(db.engine, checkfirst=True)
        Registration.__table__.create(db.engine)
    print("table registrations created")

if __name__ == "__main__" and sys.argv[1:2] == ["seed"]:  # python app.py seed N OUTFILE
    n, out = int(sys.argv[2]), sys.argv[3]
    with app.app_context():
        db.drop_all()
        db.create_all()
        codes = [secrets.token_hex(16) for _ in range(n)]  # 128-bit random codes
        db.session.execute(Ticket.__table__.insert(), [{"code": c} for c in codes])
        db.session.commit()
    with open(out, "w") as f:
        f.write("\n".join(codes) + "\n")
    print(f"seeded {n} tickets -> {out}")
