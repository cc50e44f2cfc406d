"""``daylight import technologies FILE.csv``: all rows or none, bad rows named by line."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from registry.technologies.models import Technology

SAMPLE = Path(__file__).parents[2] / "docs" / "sample-inventory.csv"


@pytest.fixture
def departments(department):
    for slug, name in (("police", "Police Department"),
                       ("transportation", "Department of Transportation"),
                       ("public-works", "Public Works")):
        department(slug, name)


def technologies(app) -> list[Technology]:
    from registry.database import transaction

    with app.app_context(), transaction(app) as session:
        return list(session.execute(select(Technology).order_by(Technology.name)).scalars())


def count(app) -> int:
    from registry.database import transaction

    with app.app_context(), transaction(app) as session:
        return session.execute(select(func.count()).select_from(Technology)).scalar_one()


def test_the_sample_inventory_imports_cleanly_as_drafts(app, runner, departments, client):
    result = runner.invoke(args=["import", "technologies", str(SAMPLE)])
    assert result.exit_code == 0, result.output
    assert "Imported 4 technologies, saved as drafts." in result.output
    loaded = {t.name: t for t in technologies(app)}
    assert set(loaded) == {"Body-worn cameras", "Parking enforcement plate readers",
                           "Emergency dispatch call recordings", "Air-quality sensors"}
    cameras = loaded["Body-worn cameras"]
    assert cameras.status == "draft" and cameras.in_use is True
    assert cameras.data_collected == ["video", "audio"]
    assert float(cameras.annual_cost) == 250000.0 and cameras.retention_days == 180
    assert cameras.documents == [{"title": "Use policy",
                                  "url": "https://daylight.example.gov/documents/bwc-policy.pdf"}]
    assert loaded["Parking enforcement plate readers"].deployment_areas == [
        "Downtown meter zone", "Harbor District"]
    recordings = loaded["Emergency dispatch call recordings"]
    assert recordings.retention_days is None and recordings.annual_cost is None
    assert len(loaded["Air-quality sensors"].documents) == 2
    # Drafts stay private.
    assert client.get("/technologies").get_data(as_text=True).count("<h3><a href") == 0


def test_with_submit_the_rows_are_public_and_assessed(app, runner, departments, client):
    result = runner.invoke(args=["import", "technologies", "--submit", str(SAMPLE)])
    assert result.exit_code == 0, result.output
    assert all(t.status == "submitted" and t.risk_tier for t in technologies(app))
    assert "Body-worn cameras" in client.get("/technologies").get_data(as_text=True)


def test_bad_rows_are_reported_by_line_and_field_and_nothing_is_written(app, runner,
                                                                         departments,
                                                                         tmp_path):
    path = tmp_path / "inventory.csv"
    path.write_text(
        "name,department,data_collected,retention_days,in_use,documents,description\n"
        "Good one,police,video,30,yes,,\n"
        "Bad data,police,video;thoughts,forever,maybe,,\n"
        "\n"
        ",nowhere,,,,,\n"
        "Bad link,police,,,,Report javascript:alert(1),\"two\nlines\"\n"
        "Multi-line,police,,,,,\"first\nsecond\"\n"
        "Also bad,police,,-5,,,\n"
        "Part of a day,police,,1.9,,,\n"
        "Good one,police,,,,,\n",
        encoding="utf-8")
    result = runner.invoke(args=["import", "technologies", str(path)])
    assert result.exit_code != 0
    output = result.output
    assert "line 3, data_collected.1: Not a value of the data_collected vocabulary" in output
    assert "line 3, retention_days: Not a valid integer." in output
    assert "line 11, retention_days: Not a valid integer." in output  # 1.9, not cut to 1
    assert "line 3, in_use: Not a valid boolean." in output
    assert "line 5, name:" in output
    assert "line 6, documents.0.url: Not a valid URL." in output
    assert "line 10, retention_days:" in output  # after a value spanning two lines
    assert "line 12, name: Police Department already has a technology named 'Good one'" \
        in output
    assert "Nothing was imported" in output
    assert "line 2" not in output and "line 8" not in output
    assert count(app) == 0


def test_an_unknown_department_is_an_error_for_that_row(app, runner, departments, tmp_path):
    path = tmp_path / "inventory.csv"
    path.write_text("name,department\nDrones,fire\nCameras,police\n", encoding="utf-8")
    result = runner.invoke(args=["import", "technologies", str(path)])
    assert result.exit_code != 0
    assert "line 2, department: No department with the slug 'fire'" in result.output
    assert count(app) == 0


def test_unknown_and_missing_columns_are_refused_before_any_row(app, runner, departments,
                                                                tmp_path):
    path = tmp_path / "inventory.csv"
    path.write_text("name,retention,vendor\nCameras,30,Acme\n", encoding="utf-8")
    result = runner.invoke(args=["import", "technologies", str(path)])
    assert result.exit_code != 0
    assert "line 1, retention: Unknown column." in result.output
    assert "line 1, department: This column is required." in result.output
    assert count(app) == 0


def test_importing_the_same_file_twice_adds_nothing_the_second_time(app, runner, departments):
    assert runner.invoke(args=["import", "technologies", str(SAMPLE)]).exit_code == 0
    again = runner.invoke(args=["import", "technologies", str(SAMPLE)])
    assert again.exit_code != 0 and "already has a technology" in again.output
    assert count(app) == 4


def test_a_nul_in_a_cell_is_an_error_for_that_row_on_either_database(app, runner, departments,
                                                                      tmp_path):
    path = tmp_path / "inventory.csv"
    path.write_text("name,department,purpose\nCameras,police,Watch\x00 the lots\n"
                    "Drones,police,Fly\n", encoding="utf-8")
    result = runner.invoke(args=["import", "technologies", str(path)])
    assert result.exit_code != 0
    assert "line 2, purpose: Must not contain the NUL character (U+0000)." in result.output
    assert "Nothing was imported" in result.output
    assert count(app) == 0


def test_a_file_that_is_not_utf8_says_how_to_save_it(app, runner, departments, tmp_path):
    # A spreadsheet's plain "CSV" on Windows is Windows-1252: "é" and curly quotes are bytes
    # UTF-8 cannot read. It was a traceback; now a line and what to do.
    path = tmp_path / "inventory.csv"
    path.write_bytes("name,department,purpose\nCaméras,police,“Watch” the lots\n"
                     .encode("cp1252"))
    result = runner.invoke(args=["import", "technologies", str(path)])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert 'save it as "CSV UTF-8"' in result.output
    assert "Nothing was imported" in result.output
    assert count(app) == 0


def test_a_column_named_twice_is_refused_before_any_row(app, runner, departments, tmp_path):
    path = tmp_path / "inventory.csv"
    path.write_text("name,department,name\nCameras,police,Drones\n", encoding="utf-8")
    result = runner.invoke(args=["import", "technologies", str(path)])
    assert result.exit_code != 0
    assert "line 1, name: This column appears more than once." in result.output
    assert count(app) == 0


def test_a_row_with_too_many_values_is_one_problem_among_the_others(app, runner, departments,
                                                                     tmp_path):
    path = tmp_path / "inventory.csv"
    path.write_text("name,department\nDrones,fire\nCameras,police\nCameras,police\n"
                    "Sensors,police,extra\nBad again,nowhere\n", encoding="utf-8")
    result = runner.invoke(args=["import", "technologies", str(path)])
    assert result.exit_code != 0
    for expected in ("line 2, department: No department with the slug 'fire'",
                     "line 4, name: Police Department already has a technology named",
                     "line 5, row: 3 values for 2 columns.",
                     "line 6, department: No department with the slug 'nowhere'"):
        assert expected in result.output
    assert count(app) == 0


def test_a_name_differing_only_in_the_case_of_an_accented_letter_is_the_same(
        app, runner, departments, tmp_path):
    # SQLite's lower() folds only ASCII letters: "École" and "école" were two names.
    path = tmp_path / "inventory.csv"
    path.write_text("name,department\nÉcole cameras,police\n", encoding="utf-8")
    assert runner.invoke(args=["import", "technologies", str(path)]).exit_code == 0
    path.write_text("name,department\nécole cameras,police\n", encoding="utf-8")
    again = runner.invoke(args=["import", "technologies", str(path)])
    assert again.exit_code != 0
    assert "already has a technology named 'école cameras'" in again.output
    assert count(app) == 1
