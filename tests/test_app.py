"""Every page renders through AppTest: with data, with the global filters set, and without a store."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from data_access.derived import build_derived_tables
from data_access.store import writable_store
from tests.apptest import app as _app
from tests.factories import four_customers_store

PAGES = ("pages/overview.py",)
# Every page app.py registers: each must explain an empty store rather than fail.
ALL_PAGES = tuple(f"pages/{name}.py" for name in (
    "overview", "retention", "satisfaction", "journey_map", "channel_flows", "attribution", "clv", "segments",
    "customer_360", "data"))


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("app") / "tiny.duckdb"
    four_customers_store(path).close()
    return path


def _metrics(at: AppTest) -> dict[str, str]:
    return {metric.label: metric.value for metric in at.metric}


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_with_data(page, tiny_store, monkeypatch):
    at = _app(tiny_store, monkeypatch).run()
    at.switch_page(page).run()
    assert not at.exception
    assert not at.error


def test_overview_shows_kpis_and_charts(tiny_store, monkeypatch):
    at = _app(tiny_store, monkeypatch).run()
    assert not at.exception
    assert [metric.label for metric in at.metric] == [
        "Revenue", "Active customers", "Historical CLTV", "Retention", "CSAT", "Omnichannel share",
        "Orders", "Average order value", "Repeat rate", "NPS",
    ]
    assert len(at.get("plotly_chart")) == 3


def test_overview_obeys_every_global_filter(tiny_store, monkeypatch):
    at = _app(tiny_store, monkeypatch)
    at.query_params["channel"] = "store"
    at.query_params["region"] = "South"
    at.run()
    at.date_input(key="dates").set_value((date(2026, 3, 1), date(2026, 3, 31))).run()
    assert not at.exception
    # South customers B and D; in store in March only B's order of 80 with 20 refunded.
    assert _metrics(at)["Revenue"] == "$60"
    assert _metrics(at)["Active customers"] == "1"
    assert _metrics(at)["Historical CLTV"] == "$60"  # B, the only South store buyer by 31 March
    at.multiselect(key="segment").set_value(["gold"]).run()
    # D is the only South gold customer and was not active in March.
    assert _metrics(at)["Active customers"] == "0"
    assert any("No activity" in info.value for info in at.info)


def test_unknown_link_values_are_dropped_with_a_notice(tiny_store, monkeypatch):
    at = _app(tiny_store, monkeypatch)
    at.query_params["channel"] = ["store", "fax"]
    at.run()
    assert not at.exception
    assert "The link asks for channel fax, which this store does not have; ignored." in [i.value for i in at.info]
    assert at.multiselect(key="channel").value == ["store"]  # the known value stays


@pytest.mark.parametrize("page", ALL_PAGES)
def test_page_explains_an_empty_store(page, tmp_path, monkeypatch):
    with writable_store(tmp_path / "empty.duckdb", fresh=True):
        pass
    at = _app(tmp_path / "empty.duckdb", monkeypatch).run()
    at.switch_page(page).run()
    assert not at.exception
    assert "journeylens demo" in at.info[0].value


def test_a_rebuild_is_picked_up_by_the_running_app(tmp_path, monkeypatch):
    # A store whose derived tables are of an older shape asks for `journeylens build`; once the
    # build swaps in the new file, the same app process shows the pages without a restart.
    path = tmp_path / "older.duckdb"
    four_customers_store(path).close()
    with writable_store(path) as store:
        store.connection.execute("ALTER TABLE journey_touches DROP COLUMN day")
    at = _app(path, monkeypatch).run()
    assert not at.exception
    assert "journey_touches" in at.warning[0].value and f"journeylens build --db {path}" in at.warning[0].value
    with writable_store(path) as store:
        build_derived_tables(store.backend, progress=lambda _: None)
    at.run()
    assert not at.exception and not at.warning
    assert _metrics(at)["Active customers"] == "4"  # A, B, C and D: the default 90 days hold February and March


def test_missing_store_explains_how_to_create_it(tmp_path, monkeypatch):
    at = _app(tmp_path / "nowhere.duckdb", monkeypatch).run()
    assert not at.exception
    assert f"journeylens demo --db {tmp_path / 'nowhere.duckdb'}" in at.info[0].value


def test_bad_setting_is_one_clear_line(tiny_store, monkeypatch):
    monkeypatch.setenv("JOURNEYLENS_CACHE_TTL_SECONDS", "-5")
    at = _app(tiny_store, monkeypatch).run()
    assert not at.exception
    assert "JOURNEYLENS_CACHE_TTL_SECONDS" in at.error[0].value
