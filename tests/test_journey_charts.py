"""The journey figure builders: frames in, figures out, checked without a browser."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from views import journey_charts as charts
from views.theme import channel_color


def _links() -> pl.DataFrame:
    rows = [
        ("1 · web", "2 · store", 5, 1, 2, "web", "store", "step"),
        ("1 · web", "purchase (web)", 3, 1, 4, "web", "web", "outcome"),
        ("2 · store", "⋯ more touches", 4, 2, 3, "store", None, "more"),
        ("2 · store", "drop-off", 1, 2, 4, "store", None, "outcome"),
        ("⋯ more touches", "purchase (store)", 4, 3, 4, None, "store", "outcome"),
    ]
    return pl.DataFrame(rows, schema=["source", "target", "journeys", "source_step", "target_step",
                                      "source_channel", "target_channel", "target_kind"], orient="row")


def test_sankey_nodes_links_and_colours():
    sankey = charts.sankey_figure(_links(), title="t").data[0]
    labels = list(sankey.node.label)
    assert set(labels) == {"1 · web · 8", "2 · store · 5", "⋯ more touches · 4", "purchase (web) · 3",
                           "drop-off · 1", "purchase (store) · 4"}
    colour = dict(zip(labels, sankey.node.color, strict=True))
    assert colour["1 · web · 8"] == channel_color("web")
    assert colour["purchase (store) · 4"] == channel_color("store")
    assert colour["drop-off · 1"] == charts.DROP_OFF_COLOR
    x = dict(zip(labels, sankey.node.x, strict=True))
    # Outcomes sit at the right edge, with a wide gap to the columns before.
    assert x["purchase (web) · 3"] == x["drop-off · 1"] == 0.999
    assert x["1 · web · 8"] < x["2 · store · 5"] < x["⋯ more touches · 4"] <= charts.INNER_WIDTH + 0.001
    assert sum(sankey.link.value) == 17
    # Hover shares are of the 8 journeys shown (the outcomes add up to them).
    share = dict(zip(labels, sankey.node.customdata, strict=True))
    assert share["purchase (store) · 4"] == 50.0


def test_empty_sankey_says_so():
    empty = _links().clear()
    fig = charts.sankey_figure(empty, title="t")
    assert fig.layout.annotations[0].text == "No journeys with these options"


def test_transition_heatmap_orders_states():
    matrix = pl.DataFrame({
        "from_state": ["start", "web", "store", "web"], "to_state": ["web", "store", "purchase", "drop-off"],
        "transitions": [4, 2, 2, 2], "row_probability": [100.0, 50.0, 100.0, 50.0],
    })
    heatmap = charts.transition_heatmap(matrix, values="probability").data[0]
    assert list(heatmap.y) == ["start", "store", "web"]
    assert list(heatmap.x) == ["store", "web", "purchase", "drop-off"]
    assert heatmap.text[2][0] == "50%<br>2"  # web → store
    counts = charts.transition_heatmap(matrix, values="count").data[0]
    assert counts.text[0][1] == "4"


def test_attribution_bars_with_intervals():
    result = pl.DataFrame({
        "model": ["first", "first", "markov", "markov"], "channel": ["web", "store"] * 2,
        "conversions": [2.0, 1.0, 1.5, 1.5], "revenue": [20.0, 10.0, 15.0, 15.0], "share": [66.7, 33.3, 50.0, 50.0],
        "removal_effect": [None, None, 0.5, 0.5], "conversions_low": [None, None, 1.0, 1.2],
        "conversions_high": [None, None, 2.0, 1.8], "share_low": [None, None, 40.0, 45.0],
        "share_high": [None, None, 60.0, 55.0],
    })
    fig = charts.attribution_figure(result, value="conversions", title="t")
    assert [bar.name for bar in fig.data] == ["first", "markov"]
    assert fig.data[0].error_y.array is None
    assert list(fig.data[1].error_y.array) == pytest.approx([0.5, 0.3])
    assert list(fig.data[0].x) == ["web", "store"]  # by mean share


def test_distribution_and_trend_figures():
    frame = pl.DataFrame({
        "channel": ["web", "web", "app"], "bucket": ["< 1 h", "1–24 h", "< 1 h"], "bucket_order": [0, 1, 0],
        "count": [3, 1, 2], "median_hours": [0.5, 0.5, 30.0], "share": [75.0, 25.0, 100.0],
    })
    fig = charts.distribution_figure(frame, title="t", buckets=["< 1 h", "1–24 h", "1–3 d"], unit="gaps")
    assert [bar.name for bar in fig.data] == ["< 1 h", "1–24 h"]  # empty buckets are left out
    assert list(fig.data[0].y) == ["web (median 30 min)", "app (median 30.0 h)"]
    monthly = pl.DataFrame({
        "month": [date(2026, 1, 1), None], "offline_purchases": [4, 4], "online_to_offline": [1, 1],
        "online_to_offline_share": [25.0, 25.0], "online_purchases": [10, 10], "offline_to_online": [2, 2],
        "offline_to_online_share": [20.0, 20.0],
    })
    trend = charts.online_offline_figure(monthly)
    assert [list(trace.y) for trace in trend.data] == [[25.0], [20.0]]  # the whole-period row is not a point
