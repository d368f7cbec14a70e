"""The Journey map, Channel flows and Attribution pages through AppTest: options, URLs and empty stores."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.apptest import figures as _figures
from tests.apptest import open_page as _page
from tests.journey_factories import attribution_store

JOURNEY_MAP, CHANNEL_FLOWS, ATTRIBUTION = "pages/journey_map.py", "pages/channel_flows.py", "pages/attribution.py"
PAGES = (JOURNEY_MAP, CHANNEL_FLOWS, ATTRIBUTION)


@pytest.fixture(scope="module")
def store_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("journey_pages") / "journeys.duckdb"
    attribution_store(path).close()
    return path


def _sankey_labels(at: AppTest) -> list[str]:
    return _figures(at)[0]["data"][0]["node"]["label"]


def _assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]


@pytest.mark.parametrize(("page", "charts"), [(JOURNEY_MAP, 1), (CHANNEL_FLOWS, 5), (ATTRIBUTION, 1)])
def test_pages_render(store_path, monkeypatch, page, charts):
    at = _page(store_path, page, monkeypatch)
    _assert_clean(at)
    assert len(at.get("plotly_chart")) == charts


def test_journey_map_default_is_forward_and_collapsed(store_path, monkeypatch):
    at = _page(store_path, JOURNEY_MAP, monkeypatch)
    assert _figures(at)[0]["data"][0]["type"] == "sankey"
    # A: web, email → store; B: app → app; C: web, web, store → store (collapsed: web, store); D: email.
    assert set(_sankey_labels(at)) == {
        "1 · web · 2", "1 · app · 1", "1 · email · 1", "2 · email · 1", "2 · store · 1",
        "purchase (store) · 2", "purchase (app) · 1", "drop-off · 1",
    }
    paths = at.dataframe[0].value
    assert set(paths["path"]) == {"web>email", "app", "web>store", "email"}


def test_journey_map_options_from_the_url(store_path, monkeypatch):
    # Bound widgets take their URL value as the option label the widget shows.
    at = _page(store_path, JOURNEY_MAP, monkeypatch, direction="Backward", steps="2", collapse="false",
               buy_in="store")
    _assert_clean(at)
    assert at.button_group(key="direction").value == "backward"
    assert set(_sankey_labels(at)) == {
        "−2 · web · 2", "−1 · email · 1", "−1 · store · 1", "purchase (store) · 2", "⋯ earlier touches · 1",
    }


def test_journey_map_widgets(store_path, monkeypatch):
    at = _page(store_path, JOURNEY_MAP, monkeypatch)
    at.selectbox(key="start").set_value("event:email_click").run()
    _assert_clean(at)
    assert set(_sankey_labels(at)) == {"1 · email · 1", "purchase (store) · 1"}  # A from its email click
    at.selectbox(key="start").set_value("").run()
    at.slider(key="nodes").set_value(2).run()
    assert "1 · other · 1" in _sankey_labels(at)  # the least busy first channel joins "other"
    at.selectbox(key="sort").set_value("revenue").run()
    assert at.dataframe[0].value["path"][0] == "web>email"  # A's 100
    at.selectbox(key="path").set_value("web>store").run()
    _assert_clean(at)
    customers = at.dataframe[1].value
    assert list(customers["customer_id"]) == ["C"]
    assert any("1 journeys followed web → store" in caption.value for caption in at.caption)


def test_channel_flows_options(store_path, monkeypatch):
    at = _page(store_path, CHANNEL_FLOWS, monkeypatch)
    _assert_clean(at)
    heatmap = _figures(at)[0]["data"][0]
    assert heatmap["type"] == "heatmap"
    assert heatmap["y"] == ["start", "app", "email", "store", "web"]
    assert heatmap["x"] == ["app", "email", "store", "web", "purchase", "drop-off"]
    at.toggle(key="flow_collapse").set_value(False).run()
    at.button_group(key="cells").set_value("count").run()
    web_row = _figures(at)[0]["data"][0]["z"][4]
    assert web_row[3] == 1  # C: web → web, counted without collapsing
    at.button_group(key="basis").set_value("most_frequent").run()
    at.selectbox(key="research_in").set_value("store").run()
    at.number_input(key="research_days").set_value(10).run()
    _assert_clean(at)
    assert "100.0%" in [metric.value for metric in at.metric]  # both store purchases had web within 10 days
    at.button_group(key="convert_by").set_value("first_channel").run()
    _assert_clean(at)


def test_attribution_options(store_path, monkeypatch):
    at = _page(store_path, ATTRIBUTION, monkeypatch, resamples="0")
    _assert_clean(at)
    bars = _figures(at)[0]["data"]
    assert [bar["name"] for bar in bars] == ["first", "last", "linear", "position", "time-decay", "markov",
                                             "shapley"]
    table = at.dataframe[0].value
    assert list(table.columns[:3]) == ["channel", "first", "first %"]
    assert any("3 conversions" in caption.value for caption in at.caption)
    at.button_group(key="credit").set_value("revenue").run()
    _assert_clean(at)
    assert at.dataframe[0].value.set_index("channel").loc["web", "shapley"] == pytest.approx(80.0)
    at.selectbox(key="resamples").set_value(100).run()
    _assert_clean(at)
    assert len(at.dataframe) == 2  # the intervals table appears
    assert any("**markov**" in m.value and "**shapley**" in m.value for m in at.markdown)


@pytest.mark.parametrize("page", PAGES)
def test_pages_with_no_journey_in_the_period(store_path, monkeypatch, page):
    at = _page(store_path, page, monkeypatch)
    # Touches happen from 6 March, but the first journey ends on 18 March.
    at.date_input(key="dates").set_value((date(2026, 3, 6), date(2026, 3, 10))).run()
    _assert_clean(at)
    assert at.info, "the page says there is nothing to show"


def test_pages_render_on_the_demo_store(demo_store, monkeypatch):
    for page in PAGES:
        at = _page(demo_store, page, monkeypatch)
        _assert_clean(at)
        assert at.get("plotly_chart")
