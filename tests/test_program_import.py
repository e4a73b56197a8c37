"""`flask program import`: the organisers' program from CSV or YAML, all or nothing, problems listed by line."""

import csv
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from registration.extensions import db
from registration.models import Event, ProgramSession, SessionView, ViewingSignup
from registration.services import event as event_service
from registration.services import program_import, viewing
from registration.services.program_import import ProgramFileError
from tests.conftest import ROOT, jst

PROGRAM_49 = ROOT / "tests" / "data" / "program-49.csv"
HEADER = ["key", "category", "title", "speaker_organization", "language", "abstract", "video_url"]


def read_rows(path: Path = PROGRAM_49) -> list[dict]:
    with path.open(encoding="utf-8-sig", newline="") as file:
        return list(csv.DictReader(file))


def write_csv(path: Path, rows: list[dict], *, header=HEADER, bom: bool = True) -> Path:
    with path.open("w", encoding="utf-8-sig" if bom else "utf-8", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=header, lineterminator="\r\n", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def session_row(key: str, category: str = "automation", **overrides) -> dict:
    return {"key": key, "category": category, "title": f"Title {key}", "speaker_organization": "Org",
            "language": "ja", "abstract": "", "video_url": f"https://video.example/{key}", **overrides}


def program_state() -> dict[str, tuple]:
    return {s.key: (s.title, s.category.key, s.withdrawn_at is not None, s.video_url)
            for s in db.session.scalars(select(ProgramSession))}


def import_file(path: Path) -> program_import.ImportReport:
    report = program_import.import_program(program_import.read_program_file(path))
    db.session.commit()
    return report


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ProgramFileError) as refused:
        program_import.import_program(program_import.read_program_file(path))
    db.session.rollback()
    return [str(problem) for problem in refused.value.problems]


def test_the_shipped_data_names_only_the_articles_ten_sessions(app_ctx):
    assert db.session.scalar(select(func.count()).select_from(ProgramSession)) == 10
    assert db.session.scalar(select(Event.program_imported_at)) is None


def test_the_49_session_file_from_excel_imports_with_counts_per_category(app_ctx):
    assert PROGRAM_49.read_bytes().startswith(b"\xef\xbb\xbf")  # Excel's "CSV UTF-8" BOM, and CRLF lines
    report = import_file(PROGRAM_49)
    assert (len(report.added), len(report.updated), report.withdrawn, report.deleted) == (39, 10, [], [])
    counts = {entry.category.key: len(entry.sessions) for entry in viewing.program()}
    assert counts == {"troubleshooting": 9, "automation": 15, "observability": 10, "openstack": 4, "cost": 1,
                      "public-cloud": 10}
    first = viewing.find_session("test-troubleshooting-01")
    assert first.abstract == "テスト用の概要です。\n二行目もあります。"  # a quoted cell spanning two lines
    assert viewing.find_session("openinfra-loki-stack").language == "en"


def test_the_same_program_as_yaml_imports_alike(app_ctx, tmp_path):
    path = tmp_path / "program.yaml"
    path.write_text(yaml.safe_dump({"sessions": read_rows()}, allow_unicode=True), encoding="utf-8")
    report = import_file(path)
    assert len(report.added) + len(report.updated) == 49


def test_reimporting_a_corrected_file_changes_titles_and_keeps_sign_ups(app_ctx, make_registrant, tmp_path):
    import_file(PROGRAM_49)
    registrant = make_registrant()
    viewing.change_signups(registrant, ["test-automation-01", "ntt-east-aws-tagging"])
    db.session.commit()
    rows = read_rows()
    for row in rows:
        if row["key"] == "test-automation-01":
            row["title"] = "Corrected title"
    report = import_file(write_csv(tmp_path / "fixed.csv", rows))
    assert report.updated == ["test-automation-01"] and len(report.unchanged) == 48
    assert viewing.find_session("test-automation-01").title == "Corrected title"
    assert {s.key for s in viewing.signed_up_sessions(registrant)} == {"test-automation-01", "ntt-east-aws-tagging"}


def test_a_dropped_session_with_sign_ups_is_withdrawn_and_one_without_is_deleted(app_ctx, make_registrant, tmp_path):
    import_file(PROGRAM_49)
    registrant = make_registrant()
    viewing.change_signups(registrant, ["test-automation-01"])
    db.session.commit()
    rows = [row for row in read_rows() if row["key"] not in ("test-automation-01", "test-automation-02")]
    report = import_file(write_csv(tmp_path / "fewer.csv", rows))
    assert report.withdrawn == ["test-automation-01"] and report.deleted == ["test-automation-02"]
    withdrawn = viewing.find_session("test-automation-01")
    assert withdrawn.is_withdrawn and viewing.find_session("test-automation-02") is None
    assert "test-automation-01" not in {s.key for entry in viewing.program() for s in entry.sessions}
    assert db.session.scalar(select(func.count()).select_from(ViewingSignup)) == 1  # the record stays

    report = import_file(PROGRAM_49)  # it comes back: restored, with its sign-up
    assert report.restored == ["test-automation-01"] and report.added == ["test-automation-02"]
    assert [s.key for s in viewing.signed_up_sessions(registrant)] == ["test-automation-01"]


def test_a_session_that_was_watched_is_withdrawn_not_deleted(app_ctx, make_registrant, frozen_clock, tmp_path):
    import_file(PROGRAM_49)
    registrant = make_registrant()
    viewing.watch(registrant, "ntt-east-aws-tagging")
    db.session.commit()
    report = import_file(write_csv(tmp_path / "no-cost.csv",
                                   [row for row in read_rows() if row["key"] != "ntt-east-aws-tagging"]))
    assert report.withdrawn == ["ntt-east-aws-tagging"]
    assert db.session.scalar(select(func.count()).select_from(SessionView)) == 1


def test_event_load_after_an_import_leaves_the_organisers_program_alone(app_ctx, tmp_path):
    rows = [row for row in read_rows() if row["key"] != "yahoo-nonstop-architecture"]
    import_file(write_csv(tmp_path / "theirs.csv", rows))
    before = program_state()
    event_service.load_event(event_service.read_event_data())
    db.session.commit()
    assert program_state() == before and "yahoo-nonstop-architecture" not in before


def test_a_bad_file_is_refused_whole_with_every_problem_by_line(app_ctx, tmp_path):
    import_file(PROGRAM_49)
    before = program_state()
    rows = read_rows()
    rows[0]["title"] = "Would be changed"
    rows[2]["abstract"] = "one line"  # so that each row is one line below
    rows[3]["category"] = "networking"                                 # line 5
    rows[5]["key"] = rows[4]["key"]                                    # line 7: duplicate of line 6
    rows[7]["video_url"] = "javascript:alert(1)"                       # line 9
    rows[8]["video_url"] = "http://video.example/plain"                # line 10
    rows[9]["language"] = "fr"                                         # line 11
    rows[10]["title"] = ""                                             # line 12
    rows[11]["key"] = "has space"                                      # line 13
    problems = problems_of(write_csv(tmp_path / "bad.csv", rows))
    assert problems == [
        "line 5: category 'networking' is unknown (known: automation, cost, observability, openstack, "
        "public-cloud, troubleshooting)",
        "line 7: key 'test-troubleshooting-03' is already used on line 6",
        "line 9: video_url 'javascript:alert(1)': must be an https:// address",
        "line 10: video_url 'http://video.example/plain': must be an https:// address",
        "line 11: language 'fr': use ja or en",
        "line 12: title: missing",
        "line 13: key 'has space': use 1 to 80 letters, digits, - or _ (starting with a letter or digit)",
    ]  # the header is line 1
    assert program_state() == before


def test_line_numbers_follow_cells_that_span_lines(app_ctx, tmp_path):
    rows = [session_row("a", abstract="one\ntwo\nthree"), session_row("a")]
    assert problems_of(write_csv(tmp_path / "multi.csv", rows)) == ["line 5: key 'a' is already used on line 2"]


def test_a_missing_column_is_refused_before_any_row(app_ctx, tmp_path):
    path = write_csv(tmp_path / "cols.csv", [session_row("a")], header=[h for h in HEADER if h != "video_url"])
    assert problems_of(path) == [
        "line 1: missing column(s): video_url (the header must name key, category, title, speaker_organization, "
        "language, abstract, video_url)"]


def test_columns_in_any_order_and_extra_ones_are_noted(app_ctx, tmp_path):
    header = ["title", "notes", *[h for h in HEADER if h != "title"]]
    report = import_file(write_csv(tmp_path / "order.csv", [session_row("a", notes="x")], header=header))
    assert report.added == ["a"] and report.notes == ["ignored column(s): notes"]


def test_without_bom_and_with_blank_trailing_rows(app_ctx, tmp_path):
    path = write_csv(tmp_path / "plain.csv", [session_row("a")], bom=False)
    path.write_text(path.read_text(encoding="utf-8") + ",,,,,,\r\n\r\n", encoding="utf-8")
    assert import_file(path).added == ["a"]


@pytest.mark.parametrize("content, expected", [
    (b"key,category\r\n\x93\xfa\x96\x7b,cost\r\n", "line 2: the file is not UTF-8"),   # Shift_JIS from old Excel
    (b"", "the file is empty"),
    (b"key,category,title,speaker_organization,language,abstract,video_url\r\n",
     "the file lists no sessions (refused: importing it would withdraw them all)"),
])
def test_unreadable_or_empty_files_are_refused(app_ctx, tmp_path, content, expected):
    path = tmp_path / "odd.csv"
    path.write_bytes(content)
    assert problems_of(path)[0].startswith(expected)


@pytest.mark.parametrize("text, expected", [
    ("sessions: [\n  {key: a\n", "line 3: not readable as YAML"),
    ("title: nothing here\n", "the YAML file must be a list of sessions"),
    ("- key: a\n  category: cost\n  title: [x, y]\n- plain text\n",
     ["line 3: title: must be a single value", "line 4: each session must be a mapping of field: value"]),
    ("- key: a\n  category: cost\n  title: T\n  language: ja\n",
     ["line 1: speaker_organization: missing"]),
])
def test_bad_yaml_is_refused_by_line(app_ctx, tmp_path, text, expected):
    path = tmp_path / "program.yml"
    path.write_text(text, encoding="utf-8")
    problems = problems_of(path)
    if isinstance(expected, list):
        assert problems == expected
    else:
        assert problems[0].startswith(expected)


def test_the_cli_lists_problems_and_changes_nothing(app, runner, tmp_path):
    path = write_csv(tmp_path / "bad.csv", [session_row("a", category="nope"), session_row("a")])
    result = runner.invoke(args=["program", "import", str(path)])
    assert result.exit_code == 1
    assert f"{path}: line 2: category 'nope' is unknown" in result.output
    assert f"{path}: line 3: key 'a' is already used on line 2" in result.output
    assert "2 problem(s) found; the program is unchanged." in result.output
    with app.app_context():
        assert len(program_state()) == 10


def test_the_cli_dry_run_reports_and_changes_nothing(app, runner):
    result = runner.invoke(args=["program", "import", "--dry-run", str(PROGRAM_49)])
    assert result.exit_code == 0, result.output
    assert "Dry run: 49 sessions checked; nothing was changed." in result.output
    with app.app_context():
        assert len(program_state()) == 10
        assert db.session.scalar(select(Event.program_imported_at)) is None
    result = runner.invoke(args=["program", "import", str(PROGRAM_49)])
    assert "Imported 49 sessions: 39 added, 10 updated, 0 restored, 0 unchanged, 0 withdrawn, 0 deleted." in result.output
    with app.app_context():
        assert len(program_state()) == 49
        assert db.session.scalar(select(Event.program_imported_at)) == jst(2023, 8, 25, 10)


def test_the_cli_refuses_a_missing_file_or_other_format(runner, tmp_path):
    result = runner.invoke(args=["program", "import", str(tmp_path / "nope.csv")])
    assert result.exit_code == 1 and "No such file or directory" in result.output
    (tmp_path / "program.xlsx").write_bytes(b"PK")
    result = runner.invoke(args=["program", "import", str(tmp_path / "program.xlsx")])
    assert result.exit_code == 1 and "program.xlsx: use a .csv or a .yaml file" in result.output


def test_a_quote_left_open_is_refused_not_swallowing_the_rest(app_ctx, tmp_path):
    import_file(PROGRAM_49)
    before = program_state()
    path = tmp_path / "stray.csv"
    text = PROGRAM_49.read_text(encoding="utf-8-sig").replace(
        "test-public-cloud-04,public-cloud,", 'test-public-cloud-04,public-cloud,"')
    path.write_text(text, encoding="utf-8-sig")
    problems = problems_of(path)
    assert len(problems) == 1 and "a quote is left open" in problems[0]
    assert program_state() == before


def test_more_cells_than_columns_and_repeated_columns_are_refused(app_ctx, tmp_path):
    path = tmp_path / "cells.csv"
    path.write_text(",".join(HEADER) + "\r\na,cost,T,O,ja,,https://v.example/a,surplus\r\n", encoding="utf-8")
    assert problems_of(path) == [
        "line 2: 8 cells, but the header names 7 columns (a comma in a value needs quotes around the value)"]
    path.write_text(",".join([*HEADER, "title"]) + "\r\na,cost,T,O,ja,,https://v.example/a,T2\r\n", encoding="utf-8")
    assert problems_of(path) == ["line 1: column 'title' appears twice"]
    path.write_text(";".join(HEADER) + "\r\n", encoding="utf-8")
    assert problems_of(path)[0].endswith("(the file seems to use ; between columns: save it with commas)")


def test_yaml_fields_given_twice_or_merged_are_refused(app_ctx, tmp_path):
    path = tmp_path / "program.yaml"
    path.write_text("- key: k1\n  key: k2\n  category: cost\n  title: T\n  speaker_organization: O\n"
                    "  language: ja\n- <<: {category: cost}\n  key: k3\n", encoding="utf-8")
    problems = problems_of(path)
    assert problems[:2] == ["line 2: key: given twice for the same session",
                            "line 7: each field must be written out as name: value (no merge keys or complex names)"]


@pytest.mark.parametrize("url", [
    "https://video..example/x", "https://" + "a" * 64 + ".example/x", "https://v.example:99999/x",
    "https://v.example:443x/", "https://user:pass@v.example/x", "https://v.example\\@evil.example/",
    "https:///no-host", "data:text/html,hi", "https://v.example/\u202ex",
])
def test_video_addresses_a_redirect_cannot_carry_are_refused(app_ctx, tmp_path, url):
    problems = problems_of(write_csv(tmp_path / "url.csv", [session_row("a", video_url=url)]))
    assert any("video_url" in problem for problem in problems), problems


def test_an_international_video_address_is_accepted(app_ctx, tmp_path):
    assert import_file(write_csv(tmp_path / "idn.csv", [session_row("a", video_url="https://例え.jp/動画")])).added


@pytest.mark.parametrize("title", ["\u200b", "\u3164", "Title \u202eevil"])
def test_invisible_or_bidi_titles_are_refused(app_ctx, tmp_path, title):
    assert problems_of(write_csv(tmp_path / "t.csv", [session_row("a", title=title)]))[0].startswith("line 2: title")


def test_a_new_order_alone_is_not_reported_as_updates(app_ctx, tmp_path):
    import_file(PROGRAM_49)
    rows = read_rows()
    rows[0], rows[1] = rows[1], rows[0]
    report = import_file(write_csv(tmp_path / "order.csv", rows))
    assert report.updated == [] and len(report.unchanged) == 49
    first = viewing.program()[0].sessions[0]
    assert first.key == "pepabo-multicloud-kubernetes"
