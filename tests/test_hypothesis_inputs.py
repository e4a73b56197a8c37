"""Hypothesis sends the registration form and the program importer what people and scripts might: any Unicode
(controls, NUL, bidi, combining marks, full width, invisible characters), very long values, repeated and forged
fields. Every input ends in a field error or a stored record: never a 500, never half a record."""

import csv
import io
import unicodedata

import pytest
import yaml
from email_validator import validate_email
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from registration.extensions import db
from registration.models import OutboxMessage, ProgramSession, Registrant, ViewingSignup
from registration.services import program_import
from registration.text import has_visible_character, to_katakana
from tests.test_program_import import HEADER

#: Bounded, reproducible runs; the app and its database are shared by the examples of one test on purpose: each
#: example is checked by what it added, as a stream of visitors would leave it.
BOUNDED = settings(max_examples=150, deadline=None, database=None, derandomize=True,
                   suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

#: Characters that break naive handling: NUL and controls, bidi overrides, zero-width and filler characters,
#: combining marks, full-width forms, separators, a BOM. Surrogates cannot be sent in a form post (not UTF-8).
TRICKY = ("\x00\x01\x1b\x7f\t\n\r\u0085\u00a0\u00ad\u0301\u0308\u061c\u115f\u1160\u180e\u200b\u200c\u200d\u200e"
          "\u200f\u2028\u2029\u202a\u202e\u2060\u2066\u2069\u2800\u3000\u3164\ufeff\uffa0\uff21\uff41\uff10\uff20"
          "\uff0e\uff71\uff9e\ufdfd\U0001d159\U000e0041\U0001f469\U0001f4bb\u30a2\u3042山田@.- '\"<>&%;=+")
ANY_CHAR = st.characters(exclude_categories=("Cs",))
TEXT = st.one_of(
    st.text(ANY_CHAR, max_size=60),
    st.text(st.sampled_from(TRICKY), max_size=30),
    st.text(st.one_of(ANY_CHAR, st.sampled_from(TRICKY)), min_size=45, max_size=400),  # around and over limits
    st.sampled_from(["山田", "ヤマダ", "やまだ", "ﾔﾏﾀﾞ", "Smith", "例示株式会社", "", " ", "\u3000"]),
    # Very long: up to tens of kilobytes once percent-encoded, over the body limit too (413).
    st.builds(lambda char, count: char * count, st.sampled_from(TRICKY), st.integers(1000, 8000)),
)


def emails(words: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Addresses valid, nearly valid and not at all, over every length limit."""
    local = st.one_of(st.from_regex(r"[a-z0-9._+-]{1,70}", fullmatch=True), words)
    domain = st.one_of(st.sampled_from(["example.jp", "例え.jp", "ｅｘａｍｐｌｅ．ｊｐ", "x", "a" * 250 + ".jp"]), words)
    return st.one_of(st.emails(), st.builds(lambda a, b: f"{a}@{b}", local, domain), words)


#: Text a person might well type: any script, symbols and emoji, without controls; it may still show nothing.
PRINTABLE = st.text(st.characters(exclude_categories=("Cs", "Cc", "Cf", "Zl", "Zp", "Co", "Cn")), min_size=1,
                    max_size=40)
FUZZED = {
    "family_name": TEXT, "given_name": TEXT, "family_name_kana": TEXT, "given_name_kana": TEXT,
    "organization": TEXT, "job_title": TEXT, "email": emails(TEXT),
    "attend_closing": st.one_of(st.sampled_from(["", "y", "on", "false", "\x00", "maybe"]), TEXT),
    "consent": st.one_of(st.sampled_from(["", "\u200b", "n"]), TEXT),
}


@st.composite
def registration_posts(draw, session_keys: list[str]) -> list[tuple[str, str]]:
    """A registration form post as (name, value) pairs: a plausible form with some fields replaced by anything,
    some left out, one sent twice, and session keys offered or forged."""
    fields = {
        "family_name": draw(st.one_of(st.sampled_from(["山田", "Smith", "髙橋", "O'Brien"]), PRINTABLE)),
        "given_name": draw(st.one_of(st.sampled_from(["太郎", "Jane", "👩\u200d💻"]), PRINTABLE)),
        "family_name_kana": draw(st.sampled_from(["", "ヤマダ", "やまだ", "ﾔﾏﾀﾞ", "ヴァン・デル"])),
        "given_name_kana": draw(st.sampled_from(["", "タロウ", "たろう"])),
        "email": draw(st.one_of(st.emails(), st.from_regex(r"[a-z0-9]{1,30}@example\.jp", fullmatch=True))),
        "organization": draw(st.one_of(st.sampled_from(["例示株式会社", "ACME"]), PRINTABLE)),
        "job_title": draw(st.one_of(st.just(""), PRINTABLE)),
        "attend_closing": draw(st.sampled_from(["", "y"])),
        "consent": "y",
    }
    for name in draw(st.lists(st.sampled_from(sorted(FUZZED)), max_size=3, unique=True)):
        fields[name] = draw(FUZZED[name])
    left_out = draw(st.lists(st.sampled_from(sorted(fields)), max_size=1))
    pairs = [(name, value) for name, value in fields.items() if name not in left_out]
    pairs += [("sessions", key) for key in draw(st.lists(
        st.one_of(st.sampled_from(session_keys), st.sampled_from(session_keys), TEXT), max_size=5))]
    if draw(st.booleans()):
        pairs.append(draw(st.sampled_from(pairs)))  # a field sent twice: the form reads the first
    return pairs


def expected_text(value: str, *, kana: bool = False) -> str:
    """What is stored for a text the form accepted: trimmed, empty when nothing shows; kana in katakana."""
    value = (unicodedata.normalize("NFKC", value) if kana else value).strip()
    value = value if has_visible_character(value) else ""
    return to_katakana(value) if kana else value


def counts(app) -> tuple[int, int, int]:
    """How many registrants, mails and sign-ups are stored."""
    with app.app_context():
        return tuple(db.session.scalar(select(func.count()).select_from(model))
                     for model in (Registrant, OutboxMessage, ViewingSignup))


def test_registration_posts_end_in_a_field_error_or_a_whole_registration(make_app):
    # Rate limits stay on; a stream of examples from one address needs a higher allowance.
    app = make_app(REGISTER_RATE_LIMIT="100000 per minute")
    with app.app_context():
        keys = list(db.session.scalars(select(ProgramSession.key).where(ProgramSession.withdrawn_at.is_(None))))
    client = app.test_client()
    outcomes = {}

    @BOUNDED
    @given(registration_posts(keys))
    def post(pairs):
        before = counts(app)
        # The session's real CSRF token, added here so that repeated fields survive (a MultiDict).
        response = client.post("/register", data=MultiDict([*pairs, ("csrf_token", client.csrf_token())]))
        page = response.get_data(as_text=True)
        outcomes[response.status_code] = outcomes.get(response.status_code, 0) + 1
        # 429: the same address sent more often than REGISTER_ADDRESS_RATE_LIMIT allows, refused like a bad field.
        assert response.status_code in (200, 303, 413, 422, 429), (response.status_code, pairs)
        after = counts(app)
        if response.status_code != 303:
            # Refused (422, or 413 for a body over the limit), or an address already registered (200, which mails
            # its owner at most once): no record.
            assert after[0] == before[0] and after[2] == before[2], pairs
            assert after[1] - before[1] in ((0, 1) if response.status_code == 200 else (0,)), pairs
            if response.status_code in (422, 429):
                assert 'class="error"' in page
            return
        assert after[0] == before[0] + 1 and after[1] == before[1] + 1, pairs  # one registrant, with its mail
        values = {}
        for name, value in pairs:
            values.setdefault(name, value)  # the first of a repeated field is the one a form reads
        with app.app_context():
            person = db.session.scalar(select(Registrant).order_by(Registrant.id.desc()).limit(1))
            stored = {name: getattr(person, name) for name in ("family_name", "given_name", "organization",
                                                               "job_title", "family_name_kana", "given_name_kana")}
            signed_up = set(db.session.scalars(select(ProgramSession.key).join(ViewingSignup).where(
                ViewingSignup.registrant_id == person.id)))
            mail_to = db.session.scalar(select(OutboxMessage.recipient).order_by(OutboxMessage.id.desc()).limit(1))
            email, seat, code = person.email, person.seat_status, person.ticket_code
        assert stored == {
            "family_name": expected_text(values["family_name"]), "given_name": expected_text(values["given_name"]),
            "organization": expected_text(values["organization"]),
            "job_title": expected_text(values.get("job_title", "")),
            "family_name_kana": expected_text(values.get("family_name_kana", ""), kana=True),
            "given_name_kana": expected_text(values.get("given_name_kana", ""), kana=True)}
        assert all(stored[name] for name in ("family_name", "given_name", "organization"))
        normalised = unicodedata.normalize("NFKC", values["email"]).strip()
        assert email == mail_to == validate_email(normalised, check_deliverability=False, strict=True).normalized
        assert signed_up == {value for name, value in pairs if name == "sessions"}
        attending = values.get("attend_closing", "") not in ("", "false")
        assert (seat, code is not None) in ({("confirmed", True), ("waitlisted", False)} if attending
                                            else {("none", False)}), (seat, code)

    post()
    # The run must have reached both ends, or it proved little.
    assert outcomes.get(303, 0) >= 10 and outcomes.get(422, 0) >= 10, outcomes


CATEGORIES = ["troubleshooting", "automation", "observability", "openstack", "cost", "public-cloud"]
FUZZED_COLUMNS = {
    "key": TEXT, "category": st.one_of(st.sampled_from(["ＣＯＳＴ", " Cost ", "kubernetes"]), TEXT), "title": TEXT,
    "speaker_organization": TEXT, "language": st.one_of(st.sampled_from(["EN", "jp", " ja "]), TEXT),
    "abstract": st.one_of(TEXT, st.text(ANY_CHAR, min_size=4990, max_size=5010)),
    "video_url": st.one_of(st.sampled_from(["http://x", "https://例え.jp/動画", "https://u:p@v.example/"]),
                           st.builds(lambda tail: "https://video.example/" + tail, TEXT), TEXT),
}


@st.composite
def program_row(draw) -> dict:
    """A plausible session row, with up to two of its cells replaced by anything."""
    row = {
        "key": draw(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,20}", fullmatch=True)),
        "category": draw(st.sampled_from(CATEGORIES)), "title": draw(PRINTABLE),
        "speaker_organization": draw(PRINTABLE), "language": draw(st.sampled_from(["ja", "en"])),
        "abstract": draw(st.one_of(st.just(""), st.text(ANY_CHAR, max_size=300))),
        "video_url": draw(st.sampled_from(["", "https://video.example/a", "https://v.example/b?t=1"])),
    }
    for name in draw(st.lists(st.sampled_from(sorted(FUZZED_COLUMNS)), max_size=2, unique=True)):
        row[name] = draw(FUZZED_COLUMNS[name])
    return row


PROGRAM_ROWS = st.lists(program_row(), max_size=6)


def csv_file(rows: list[dict]) -> bytes:
    """The rows as Excel would save them: a header, quoted cells where needed, CRLF."""
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, fieldnames=HEADER, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def yaml_file(rows: list[dict]) -> bytes:
    """The rows as a YAML list of sessions."""
    return yaml.safe_dump(rows, allow_unicode=True).encode("utf-8")


PROGRAM_FILES = st.one_of(
    st.tuples(st.just(".csv"), PROGRAM_ROWS.map(csv_file)),
    st.tuples(st.just(".yaml"), PROGRAM_ROWS.map(yaml_file)),
    st.tuples(st.sampled_from([".csv", ".yaml"]), st.binary(max_size=2000)),
    st.tuples(st.sampled_from([".csv", ".yaml"]), st.text(ANY_CHAR, max_size=500).map(str.encode)),
)


def program_state() -> dict[str, tuple]:
    """Every stored session by key, with what an import sets."""
    return {s.key: (s.title, s.speaker_organization, s.language, s.abstract, s.video_url, s.category.key,
                    s.withdrawn_at is not None) for s in db.session.scalars(select(ProgramSession))}


def test_program_files_are_imported_whole_or_refused_whole(make_app, tmp_path):
    app = make_app()
    runner = app.test_cli_runner()
    outcomes = {}

    @BOUNDED
    @given(PROGRAM_FILES)
    def import_file(file):
        suffix, content = file
        path = tmp_path / f"program{suffix}"
        path.write_bytes(content)
        with app.app_context():
            before = program_state()
        result = runner.invoke(args=["program", "import", str(path)])
        outcomes[result.exit_code] = outcomes.get(result.exit_code, 0) + 1
        assert result.exit_code in (0, 1), (result.exit_code, result.output, content)
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        assert "Traceback" not in result.output
        with app.app_context():
            after = program_state()
            if result.exit_code == 1:
                assert "the program is unchanged" in result.output
                assert after == before  # nothing of a refused file is stored
                assert len(result.output.splitlines()) <= 102
                return
            rows = [{name: program_import._clean(name, row.values.get(name)) for name in HEADER}
                    for row in program_import.read_program_file(path)]
        current = {key: state for key, state in after.items() if not state[-1]}
        assert set(current) == {values["key"] for values in rows}  # the program is exactly the file's
        for values in rows:
            assert current[values["key"]][:6] == (
                values["title"], values["speaker_organization"], values["language"], values["abstract"],
                values["video_url"] or None, values["category"])
            assert all(has_visible_character(values[name]) for name in ("title", "speaker_organization"))

    import_file()
    assert outcomes.get(0, 0) >= 5 and outcomes.get(1, 0) >= 20, outcomes


@pytest.mark.parametrize("suffix", [".csv", ".yaml"])
def test_random_bytes_never_escape_as_another_error(app_ctx, tmp_path, suffix):
    path = tmp_path / f"p{suffix}"

    @BOUNDED
    @given(st.binary(max_size=3000))
    def read(content):
        path.write_bytes(content)
        try:
            rows = program_import.read_program_file(path)
        except program_import.ProgramFileError:
            return
        try:
            program_import.validate(rows, {"cost", "automation"})
        except program_import.ProgramFileError:
            pass

    read()
