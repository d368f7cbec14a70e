"""The customer value page through AppTest: every tab on the demo store, options from the URL,
too little data, and an empty store."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from data_access.store import writable_store
from tests.apptest import figures as _figures
from tests.apptest import open_page
from tests.test_clv import _histories_store
from views.clv_widgets import TABS

PAGE = "pages/clv.py"


def _page(store_path: Path, monkeypatch, **params: str) -> AppTest:
    return open_page(store_path, PAGE, monkeypatch, **params)


def _titles(at: AppTest) -> list[str]:
    return [figure["layout"]["title"]["text"] for figure in _figures(at)]


def _cards(at: AppTest) -> dict[str, str]:
    return {metric.label: metric.value for metric in at.metric}


@pytest.mark.parametrize(
    ("tab", "titles"),
    [
        (TABS[0], ["Predicted CLTV over the next 12 months", "CLTV tiers: share of customers and of predicted value",
                   "P(alive) vs predicted CLTV", "CLTV per customer by acquisition channel"]),
        (TABS[1], ["Historical CLTV by acquisition quarter", "Payback: revenue per customer against acquisition cost"]),
        (TABS[2], ["Customers by number of channels used"]),
        (TABS[3], ["Holdout check: repeat purchase days in the 26 weeks after calibration"]),
    ],
)
def test_every_tab_renders_its_charts(tab, titles, demo_store, monkeypatch):
    at = _page(demo_store, monkeypatch, clv_tab=tab)
    assert not at.exception, at.exception
    assert not at.error
    shown = _titles(at)
    assert len(shown) == len(titles)
    for title, expected in zip(shown, titles, strict=True):
        assert title.startswith(expected), (title, expected)
    assert list(_cards(at)) == ["Customers", "Repeat buyers", "Historical CLTV", "Predicted CLTV", "Total predicted",
                                "P(alive)"]
    assert _cards(at)["Predicted CLTV"].startswith("$")


def test_options_come_from_the_url(demo_store, monkeypatch):
    at = _page(demo_store, monkeypatch)
    default = _cards(at)
    at = _page(demo_store, monkeypatch, clv_as_of="2026-06-30", clv_horizon="24 months", clv_discount="0.5")
    assert not at.exception
    assert "As of **2026-06-30**" in at.caption[0].value
    cards = _cards(at)
    assert int(cards["Customers"].replace(",", "")) < int(default["Customers"].replace(",", ""))
    assert _titles(at)[0] == "Predicted CLTV over the next 24 months"


def test_the_sidebar_filters_apply(demo_store, monkeypatch):
    everyone = _cards(_page(demo_store, monkeypatch))
    north = _cards(_page(demo_store, monkeypatch, region="North"))
    assert int(north["Customers"].replace(",", "")) < int(everyone["Customers"].replace(",", ""))


def test_payback_costs_are_options(demo_store, monkeypatch):
    at = _page(demo_store, monkeypatch, clv_tab=TABS[1], clv_by="Acquisition channel", clv_cac_web="1000")
    assert not at.exception
    assert _titles(at)[0] == "Historical CLTV by acquisition channel"
    payback = _figures(at)[1]
    assert any(shape.get("y0") == 1000 for shape in payback["layout"]["shapes"])  # web's cost line
    lines = [item.value for item in at.markdown if "paid back" in item.value or "pays back" in item.value]
    assert any("**web** has not paid back $1.0k" in line for line in lines), lines


def test_too_little_history_gives_a_clear_warning(tmp_path, monkeypatch):
    _histories_store(tmp_path / "tiny.duckdb").close()
    at = _page(tmp_path / "tiny.duckdb", monkeypatch)
    assert not at.exception
    assert "No predictive CLTV for this selection" in at.warning[0].value
    assert "at least 20 repeat buyers" in at.warning[0].value


def test_an_empty_store_says_how_to_fill_it(tmp_path, monkeypatch):
    with writable_store(tmp_path / "empty.duckdb", fresh=True):
        pass
    at = _page(tmp_path / "empty.duckdb", monkeypatch)
    assert not at.exception
    assert "journeylens demo" in at.info[0].value
