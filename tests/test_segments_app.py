"""The Segments and Customer 360 pages through AppTest, and a saved segment as the global filter."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from data_access.schema import IDENTITIES
from data_access.segment_store import SegmentStore
from data_access.store import writable_store
from metrics import segments
from tests.factories import four_customers_store

APP = str(Path(__file__).resolve().parent.parent / "app.py")
EMAIL = "Ann.Archer@Example.com"


@pytest.fixture
def tiny_store(tmp_path) -> Path:
    """The four customers, with A's e-mail (hashed as the demo does) and loyalty id stitched in."""
    path = tmp_path / "tiny.duckdb"
    four_customers_store(path).close()
    digest = duckdb.sql(f"SELECT sha256(lower(trim('  {EMAIL} ')))").fetchone()[0]
    rows = [("A", "email", digest, "shopify_web"), ("A", "loyalty_id", "LY0000000001", "crm"),
            ("B", "pos_card", "f" * 64, "pos")]
    with writable_store(path) as store:
        store.backend.insert("identities", pl.DataFrame(rows, schema=IDENTITIES.to_polars(), orient="row"))
    return path


def _app(store_path: Path, monkeypatch) -> AppTest:
    monkeypatch.setenv("JOURNEYLENS_STORE_PATH", str(store_path))
    return AppTest.from_file(APP, default_timeout=60)


def _metrics(at: AppTest) -> dict[str, str]:
    return {metric.label: metric.value for metric in at.metric}


def test_segment_page_builds_and_saves_a_segment(tiny_store, monkeypatch):
    at = _app(tiny_store, monkeypatch).run()
    at.switch_page("pages/segments.py").run()
    assert not at.exception
    assert _metrics(at)["Members"] == "4"  # no condition yet: everyone
    at.selectbox(key="cond_0_field").set_value("region").run()
    at.multiselect(key="cond_0_list").set_value(["North"]).run()
    assert not at.exception and not at.error
    shown = _metrics(at)
    assert (shown["Members"], shown["Share of customers"], shown["Net revenue"]) == ("2", "50.0%", "$190")
    assert len(at.get("plotly_chart")) == 1
    assert {button.label for button in at.get("download_button")} >= {"CSV", "Parquet"}

    at.text_input(key="segment_new_name").set_value("Northerners")
    next(b for b in at.button if b.label == "Save as new segment").click().run()
    assert not at.exception
    saved = SegmentStore.beside(tiny_store).get("Northerners")
    assert saved is not None and saved.version == 1
    assert segments.parse(saved.definition)["rules"][0]["value"] == ["North"]
    assert any("Saved “Northerners”" in s.value for s in at.success)


def test_applying_a_saved_segment_changes_the_overview(tiny_store, monkeypatch):
    before = _metrics(_app(tiny_store, monkeypatch).run())
    SegmentStore.beside(tiny_store).save("Northerners", segments.canonical(
        {"op": "and", "rules": [{"field": "region", "operator": "in", "value": ["North"]}]}))
    at = _app(tiny_store, monkeypatch)
    at.query_params["saved_segment"] = "Northerners"
    at.run()
    assert not at.exception
    after = _metrics(at)
    assert (before["Revenue"], after["Revenue"]) == ("$250", "$190")  # B's 60 leaves with the South
    assert (before["Active customers"], after["Active customers"]) == ("4", "2")
    assert at.selectbox(key="saved_segment").value == "Northerners"


def test_unknown_saved_segment_in_the_url_falls_back_to_everyone(tiny_store, monkeypatch):
    at = _app(tiny_store, monkeypatch)
    at.query_params["saved_segment"] = "Deleted long ago"
    at.run()
    assert not at.exception and not at.error
    assert any("no longer exists" in notice.value for notice in at.info)
    assert _metrics(at)["Revenue"] == "$250"


def test_customer_360_finds_a_customer_by_a_hashed_email(tiny_store, monkeypatch):
    at = _app(tiny_store, monkeypatch).run()
    at.switch_page("pages/customer_360.py").run()
    assert not at.exception
    at.text_input(key="c360_query").set_value(EMAIL.upper()).run()
    assert not at.exception and not at.error
    shown = _metrics(at)
    assert (shown["Orders"], shown["Net revenue"], shown["Acquisition channel"]) == ("2", "$150", "web")
    assert (shown["Latest CSAT"], shown["Channels used"]) == ("5/5", "3")
    timeline = at.get("plotly_chart")[0].proto.spec
    assert {trace["name"] for trace in __import__("json").loads(timeline)["data"]} == {"web", "store", "support"}
    identities = at.dataframe[-1].value
    assert EMAIL.lower() not in identities.to_string().lower()  # only a hash prefix is shown
    assert "LY0000000001" in identities.to_string()


def test_customer_360_by_unified_id_and_unknown_identifier(tiny_store, monkeypatch):
    at = _app(tiny_store, monkeypatch).run()
    at.switch_page("pages/customer_360.py").run()
    at.text_input(key="c360_query").set_value("B").run()
    assert _metrics(at)["Net revenue"] == "$60"
    at.text_input(key="c360_query").set_value("nobody@example.com").run()
    assert not at.exception
    assert any("No customer" in w.value for w in at.warning)
