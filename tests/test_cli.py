"""The command line as a user types it: one-line errors, reports in every format, reproducible demo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from polars.testing import assert_frame_equal

from data_access.schema import unified
from data_access.store import Store
from journeylens.cli import main
from tests.factories import four_customers_store


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "tiny.duckdb"
    four_customers_store(path).close()
    return path


def test_report_kpis_json(tiny_store, capsys):
    code = main(["report", "kpis", "--db", str(tiny_store), "--from", "2026-03-01", "--to", "2026-03-31",
                 "--format", "json"])
    assert code == 0
    rows = {row["kpi"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["revenue"]["value"] == pytest.approx(210.0)  # see tests/test_kpis.py
    assert rows["revenue"]["previous"] == pytest.approx(40.0)
    assert rows["revenue"]["previous_start"] == "2026-01-29"


def test_report_csv_with_filters_to_file(tiny_store, tmp_path, capsys):
    output = tmp_path / "kpis.csv"
    code = main(["report", "kpis", "--db", str(tiny_store), "--from", "2026-03-01", "--to", "2026-03-31",
                 "--channel", "store", "--format", "csv", "--output", str(output)])
    assert code == 0
    lines = output.read_text().splitlines()
    assert lines[0].startswith("kpi,label,unit,value,previous")
    assert lines[1].startswith("revenue,Revenue,currency,110.0")  # A 50 + B 80 − 20 in store


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["report", "nonsense"], "invalid choice: 'nonsense' (choose from "),
        (["report", "kpis", "--format", "xml"], "invalid choice: 'xml'"),
        (["report", "kpis", "--from", "yesterday"], "'yesterday' is not a date"),
        (["report", "kpis", "--from", "2026-03-31", "--to", "2026-03-01"], "starts (2026-03-31) after it ends"),
        (["report", "kpis", "--channel", "fax"], "unknown channel fax; choose from web, app"),
        (["demo", "--customers", "-3"], "-3 must be greater than 0"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_mistakes_are_one_line_and_exit_2(argv, message, tiny_store, capsys):
    if argv[0] == "report":
        argv = [*argv, "--db", str(tiny_store)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1
    assert "Traceback" not in err


def test_missing_store_says_how_to_create_one(tmp_path, capsys):
    assert main(["report", "kpis", "--db", str(tmp_path / "none.duckdb")]) == 2
    assert "journeylens demo --db" in capsys.readouterr().err


def test_bad_setting_is_one_line(monkeypatch, capsys):
    monkeypatch.setenv("JOURNEYLENS_BACKEND", "oracle")
    assert main(["report", "kpis"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("invalid setting: JOURNEYLENS_BACKEND")
    assert len(err.splitlines()) == 1


def test_more_channels_than_a_mask_holds_is_a_bad_setting(monkeypatch, capsys):
    # The roll-ups keep a set of channels as the bits of one int64.
    monkeypatch.setenv("JOURNEYLENS_CHANNELS", json.dumps([f"channel{i}" for i in range(64)]))
    assert main(["report", "kpis"]) == 2
    assert capsys.readouterr().err.strip() == (
        "invalid setting: JOURNEYLENS_CHANNELS: Tuple should have at most 63 items after validation, not 64")


def test_demo_is_reproducible_and_reports(tmp_path, capsys):
    first, second = tmp_path / "a.duckdb", tmp_path / "b.duckdb"
    for path in (first, second):
        assert main(["demo", "--customers", "300", "--seed", "7", "--months", "6", "--db", str(path)]) == 0
    for table, key in (("customers", "customer_id"), ("events", "event_id"), ("identities", "identifier_value")):
        a, b = (Store(p).to_polars(unified(table).order_by(key)) for p in (first, second))
        assert_frame_equal(a, b)
    assert main(["report", "kpis", "--db", str(first), "--format", "json"]) == 0
    from_first = capsys.readouterr().out
    assert main(["report", "kpis", "--db", str(second), "--format", "json"]) == 0
    assert capsys.readouterr().out == from_first
    assert json.loads(from_first)[0]["value"] > 0
