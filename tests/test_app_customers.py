"""The Retention and Satisfaction pages in AppTest: every option, a URL, stores without surveys or data."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from journeylens.cli import main as cli
from tests.apptest import figures as _figures
from tests.apptest import open_page as _page

RETENTION, SATISFACTION = "pages/retention.py", "pages/satisfaction.py"


def _titles(at: AppTest) -> list[str]:
    return [figure["layout"]["title"]["text"] for figure in _figures(at)]


def _assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]


@pytest.fixture(scope="module")
def transactions_store(tmp_path_factory) -> Path:
    """A store holding only store purchases, loaded from a plain export the way a user would."""
    folder = tmp_path_factory.mktemp("transactions")
    export = folder / "orders.csv"
    rows = ["customer,date,amount"]
    for n in range(60):
        customer = f"c{n % 20}"
        rows.append(f"{customer},2026-{1 + n % 5:02d}-{1 + n % 27:02d},{10 + n}.50")
    export.write_text("\n".join(rows) + "\n")
    path = folder / "orders.duckdb"
    assert (
        cli(
            [
                "load-transactions",
                str(export),
                "--customer-col",
                "customer",
                "--date-col",
                "date",
                "--amount-col",
                "amount",
                "--db",
                str(path),
            ]
        )
        == 0
    )
    return path


def test_retention_page_shows_heatmap_curves_lifecycle_and_churn(demo_store, monkeypatch):
    at = _page(demo_store, RETENTION, monkeypatch)
    _assert_clean(at)
    assert at.title[0].value == "Retention"
    assert _titles(at) == [
        "Retention by week cohort",
        "Average retention curve",
        "Customer lifecycle per week",
        "Churned: no activity in the last 30 days",
    ]
    heatmap = _figures(at)[0]
    assert [trace["type"] for trace in heatmap["data"]] == ["heatmap", "heatmap"]
    assert heatmap["data"][1]["colorbar"]["ticksuffix"] == "%"
    assert any("not over yet" in caption.value for caption in at.caption)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("period", "month"),
        ("cohort", "recurring"),
        ("returning", "on-or-after"),
        ("activity", "purchase"),
    ],
)
def test_retention_page_segmented_options(demo_store, monkeypatch, key, value):
    at = _page(demo_store, RETENTION, monkeypatch)
    at.button_group(key=key).set_value(value).run()
    _assert_clean(at)
    assert len(at.get("plotly_chart")) == 4
    if key == "period":
        assert _titles(at)[0] == "Retention by month cohort"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("via", "web"),
        ("breakdown", "acquisition-channel"),
        ("breakdown", "region"),
        ("breakdown", "segment"),
        ("breakdown", "channels-used"),
        ("inactive", 90),
    ],
)
def test_retention_page_select_options(demo_store, monkeypatch, key, value):
    at = _page(demo_store, RETENTION, monkeypatch, dates=["2025-06-01", "2026-10-31"])
    at.selectbox(key=key).set_value(value).run()
    _assert_clean(at)
    assert len(at.get("plotly_chart")) == 4
    if key == "breakdown":
        group = at.selectbox(key="group").value
        assert _titles(at)[0] == f"Retention by week cohort: {group}"
        curve_names = {trace.get("name") for trace in _figures(at)[1]["data"] if trace.get("name")}
        assert group in curve_names and len(curve_names) >= 2
    if key == "inactive":
        assert _titles(at)[3] == "Churned: no activity in the last 90 days"


def test_retention_options_come_from_the_url(demo_store, monkeypatch):
    # The URL holds the options as their labels, as the widgets write them.
    at = _page(
        demo_store,
        RETENTION,
        monkeypatch,
        period="Month",
        breakdown="Region",
        cohort="Recurring",
        group="South",
    )
    _assert_clean(at)
    assert at.button_group(key="period").value == "month"
    assert _titles(at)[0] == "Retention by month cohort: South"
    assert any("every month with a" in caption.value for caption in at.caption)


def test_satisfaction_page_shows_csat_nps_and_the_joins(demo_store, monkeypatch):
    at = _page(demo_store, SATISFACTION, monkeypatch, dates=["2024-11-01", "2026-10-31"])
    _assert_clean(at)
    assert at.title[0].value == "Customer satisfaction"
    titles = _titles(at)
    assert titles[:3] == [
        "CSAT per month by channel of the contact",
        "NPS per month",
        "CSAT score distribution by channel",
    ]
    assert "Repeat purchase by CSAT band" in titles
    assert "Mean CLTV to date by CSAT band" in titles
    assert any(title.startswith("Churned (no activity in the last 30 days)") for title in titles)
    # 2,000 customers answer too rarely for 30 answers in most months: those cells are hidden with a note.
    assert any("fewer than 30 answers" in warning.value for warning in at.warning)


@pytest.mark.parametrize(("key", "value"), [("csat_period", "week"), ("csat_inactive", 90)])
def test_satisfaction_page_options(demo_store, monkeypatch, key, value):
    at = _page(demo_store, SATISFACTION, monkeypatch, dates=["2025-01-01", "2026-10-31"])
    widget = at.button_group(key=key) if key == "csat_period" else at.selectbox(key=key)
    widget.set_value(value).run()
    _assert_clean(at)
    titles = _titles(at)
    if key == "csat_period":
        assert titles[0] == "CSAT per week by channel of the contact"
    else:
        assert any("last 90 days" in title for title in titles)


def test_pages_on_a_store_with_only_purchases(transactions_store, monkeypatch):
    at = _page(
        transactions_store,
        RETENTION,
        monkeypatch,
        dates=["2026-01-01", "2026-05-31"],
        activity="Purchases only",
    )
    _assert_clean(at)
    assert at.button_group(key="activity").value == "purchase"
    assert len(at.get("plotly_chart")) >= 3  # heatmap, curve and lifecycle; churn needs an older range
    assert _titles(at)[0] == "Retention by week cohort"
    at = _page(transactions_store, SATISFACTION, monkeypatch)
    _assert_clean(at)
    assert "no survey data" in at.info[0].value
    assert not at.get("plotly_chart")
