"""`journeylens report retention|lifecycle|csat|nps` on the stores of tests/retention_factories.py."""

from __future__ import annotations

import io
import json
from datetime import date

import polars as pl
import pytest

from journeylens.cli import main as cli
from tests.retention_factories import five_customers_store, satisfaction_store


@pytest.fixture(scope="module")
def five(tmp_path_factory):
    path = tmp_path_factory.mktemp("reports") / "five.duckdb"
    five_customers_store(path).close()
    return path


@pytest.fixture(scope="module")
def surveys(tmp_path_factory):
    path = tmp_path_factory.mktemp("reports") / "surveys.duckdb"
    satisfaction_store(path).close()
    return path


def _csv(capsys, *args: str) -> pl.DataFrame:
    assert cli(["report", *args, "--format", "csv"]) == 0
    return pl.read_csv(io.StringIO(capsys.readouterr().out), try_parse_dates=True)


def test_retention_report_has_one_row_per_group_cohort_and_period(five, capsys):
    result = _csv(
        capsys,
        "retention",
        "--db",
        str(five),
        "--from",
        "2026-01-01",
        "--to",
        "2026-04-15",
        "--period",
        "month",
        "--breakdown",
        "region",
        "--returning",
        "on-or-after",
    )
    assert result.columns == [
        "breakdown",
        "breakdown_value",
        "cohort",
        "period_index",
        "cohort_size",
        "retained",
        "retention_pct",
        "complete",
    ]
    south = result.filter(pl.col("breakdown_value") == "South")
    # B and D (South, January) were both last active in March: retained on or after months 0-2, not 3.
    assert south["retained"].to_list() == [2, 2, 2, 0]
    assert south["complete"].to_list() == [True, True, True, False]  # April is not over on 15 April
    assert set(result["breakdown"]) == {"region"}


def test_retention_report_recurring_purchases_in_one_channel(five, capsys):
    result = _csv(
        capsys,
        "retention",
        "--db",
        str(five),
        "--from",
        "2026-01-01",
        "--to",
        "2026-04-15",
        "--period",
        "month",
        "--cohort-type",
        "recurring",
        "--activity",
        "purchase",
        "--activity-channel",
        "store",
    )
    # Store purchases: B in January and March, A in February.
    jan, feb, mar = date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1)
    assert result.select("cohort", "period_index", "cohort_size", "retained").rows() == [
        (jan, 0, 1, 1),
        (jan, 1, 1, 0),
        (jan, 2, 1, 1),
        (jan, 3, 1, 0),  # B: back in March
        (feb, 0, 1, 1),
        (feb, 1, 1, 0),
        (feb, 2, 1, 0),  # A: April's purchase was on the web
        (mar, 0, 1, 1),
        (mar, 1, 1, 0),  # B
    ]


def test_lifecycle_report(five, capsys):
    result = _csv(
        capsys,
        "lifecycle",
        "--db",
        str(five),
        "--from",
        "2026-02-01",
        "--to",
        "2026-02-28",
        "--period",
        "month",
    )
    # February: new C, returning A, dormant B and D.
    assert dict(zip(result["state"], result["customers"], strict=True)) == {
        "new": 1,
        "returning": 1,
        "resurrecting": 0,
        "dormant": 2,
    }


def test_csat_and_nps_reports(surveys, capsys):
    csat = _csv(
        capsys,
        "csat",
        "--db",
        str(surveys),
        "--from",
        "2026-03-01",
        "--to",
        "2026-06-30",
        "--period",
        "month",
        "--min-sample",
        "6",
    )
    march_support = csat.filter((pl.col("channel") == "support") & (pl.col("period").dt.month() == 3)).row(
        0, named=True
    )
    assert (march_support["responses"], march_support["positive"], march_support["csat_pct"]) == (10, 7, 70.0)
    assert csat.filter(pl.col("channel") == "app")["csat_pct"].to_list() == [None]  # 2 answers < 6
    assert (
        cli(
            [
                "report",
                "nps",
                "--db",
                str(surveys),
                "--from",
                "2026-03-01",
                "--to",
                "2026-06-30",
                "--period",
                "month",
                "--min-sample",
                "6",
                "--format",
                "json",
            ]
        )
        == 0
    )
    nps = json.loads(capsys.readouterr().out)
    assert [row["responses"] for row in nps] == [12, 6]
    assert nps[0]["nps"] == pytest.approx(100 / 12)


def test_csat_report_says_when_there_are_no_surveys(five, capsys):
    assert cli(["report", "csat", "--db", str(five), "--format", "csv"]) == 0
    captured = capsys.readouterr()
    assert "no survey data" in captured.err
    assert captured.out.startswith("period,channel,responses")


@pytest.mark.parametrize(
    "bad", [["--breakdown", "customer_id"], ["--activity-channel", "fax"], ["--period", "day"]]
)
def test_bad_options_are_one_line_not_a_traceback(five, capsys, bad):
    assert cli(["report", "retention", "--db", str(five), *bad]) == 2
    err = capsys.readouterr().err
    assert "invalid choice" in err and "Traceback" not in err
