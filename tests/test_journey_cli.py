"""`journeylens report journeys|paths|transitions|cross-channel|attribution` on hand-written journeys."""

from __future__ import annotations

import io
from pathlib import Path

import polars as pl
import pytest

from journeylens.cli import main
from tests.journey_factories import attribution_store

PERIOD = ["--from", "2026-03-01", "--to", "2026-03-31"]


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("journey_cli") / "journeys.duckdb"
    attribution_store(path).close()
    return path


def _csv(capsys, db: Path, *args: str) -> pl.DataFrame:
    assert main(["report", *args, "--db", str(db), "--format", "csv", *PERIOD]) == 0
    return pl.read_csv(io.StringIO(capsys.readouterr().out))


def test_attribution_report_columns_and_models(capsys, db):
    rows = _csv(capsys, db, "attribution", "--model", "markov")
    assert rows.columns == ["model", "channel", "conversions", "revenue", "share", "removal_effect"]
    markov = dict(zip(rows["channel"], rows["removal_effect"], strict=True))
    assert markov == pytest.approx({"app": 1 / 3, "email": 1 / 3, "store": 1 / 3, "web": 0.5})
    everything = _csv(capsys, db, "attribution")
    assert everything["model"].unique(maintain_order=True).to_list() == [
        "first", "last", "linear", "position", "time-decay", "markov", "shapley"]
    assert everything.filter(pl.col("model") == "first")["removal_effect"].null_count() == 4
    linear = everything.filter(pl.col("model") == "linear")
    assert linear["conversions"].sum() == pytest.approx(3.0)


def test_journeys_report_follows_the_options(capsys, db):
    links = _csv(capsys, db, "journeys", "--steps", "2", "--direction", "backward", "--purchase-channel", "store",
                 "--no-collapse-repeats")
    assert ("⋯ earlier touches", "−2 · web", 1) in links.select("source", "target", "journeys").rows()
    links = _csv(capsys, db, "journeys", "--steps", "2", "--start", "event:email_click")
    assert links.select("source", "target").rows() == [("1 · email", "purchase (store)")]


def test_paths_transitions_and_cross_channel_reports(capsys, db):
    paths = _csv(capsys, db, "paths", "--top-paths", "2", "--path-sort", "revenue")
    assert paths["path"].to_list() == ["web>email", "web>store"]
    transitions = _csv(capsys, db, "transitions")
    assert ("start", "web", 2) in transitions.select("from_state", "to_state", "transitions").rows()
    cross = _csv(capsys, db, "cross-channel", "--basis", "most-frequent")
    assert ("email", "store", 1) in cross.select("journey_channel", "purchase_channel", "conversions").rows()


@pytest.mark.parametrize("arguments", [
    ["attribution", "--model", "u-shaped"], ["journeys", "--steps", "12"], ["journeys", "--start", "web"],
])
def test_bad_options_are_one_line(capsys, db, arguments):
    assert main(["report", *arguments, "--db", str(db)]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "Traceback" not in error
