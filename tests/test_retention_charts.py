"""The pure figure builders of the Retention and Satisfaction pages, on small literal frames."""

from __future__ import annotations

from datetime import date

import polars as pl

from metrics import retention as ret
from views import retention_charts as rc
from views import satisfaction_charts as sc

JAN, FEB = date(2026, 1, 1), date(2026, 2, 1)


def _cells() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "group": ["all"] * 3,
            "cohort": [JAN, JAN, FEB],
            "period_index": [0, 1, 0],
            "cohort_size": [10, 10, 4],
            "retained": [10, 3, 4],
            "retention_pct": [100.0, 30.0, 100.0],
            "complete": [True, False, True],
        },
        schema=ret.CELL_SCHEMA,
    )


def test_heatmap_leaves_unfinished_periods_uncoloured():
    fig = rc.cohort_heatmap_figure(_cells(), period="month")
    pending, rate = fig.data
    assert list(rate.y) == ["Jan 2026 · 10", "Feb 2026 · 4"]
    # January's month 1 is not over: no colour on the rate layer, grey on the pending layer.
    assert rate.z[0][1] is None and pending.z[0][1] == 1
    assert rate.z[0][0] == 100.0 and rate.text[0][0] == "100%"
    assert "not over yet" in pending.hovertext[0][1] and "3 of 10" in pending.hovertext[0][1]
    # Feb has no month 1 cell at all (blank, not 0%).
    assert rate.z[1][1] is None and pending.z[1][1] is None
    assert fig.layout.yaxis.autorange == "reversed"


def test_heatmap_picks_one_group():
    cells = pl.concat(
        [
            _cells(),
            _cells().with_columns(
                group=pl.lit("web"), retained=pl.lit(1, pl.Int64), retention_pct=pl.lit(10.0)
            ),
        ]
    )
    fig = rc.cohort_heatmap_figure(cells, period="week", group="web")
    assert fig.data[1].z[1][0] == 10.0
    assert fig.data[1].y[0] == "wk 2026-01-01 · 10"


def test_curves_draw_a_band_and_a_line_per_group():
    curves = ret.average_curves(pl.concat([_cells(), _cells().with_columns(group=pl.lit("web"))]))
    fig = rc.retention_curves_figure(curves, period="month", colors={"all": "#333333"})
    lines = [trace for trace in fig.data if trace.name]
    assert [trace.name for trace in lines] == ["all", "web"]
    assert lines[0].line.color == "#333333"
    assert fig.data[1].fill == "tonexty"
    assert fig.layout.yaxis.ticksuffix == "%"


def test_lifecycle_draws_dormant_below_zero_and_hatches_unfinished_periods():
    frame = pl.DataFrame(
        {
            "period": [JAN] * 4 + [FEB] * 4,
            "state": list(ret.LIFECYCLE_STATES) * 2,
            "customers": [3, 0, 0, 0, 1, 1, 0, 2],
            "complete": [True] * 4 + [False] * 4,
        }
    )
    fig = rc.lifecycle_figure(frame, period="month")
    dormant = next(trace for trace in fig.data if trace.name == "dormant")
    assert list(dormant.y) == [0, -2]
    assert list(dormant.marker.pattern.shape) == ["", "/"]
    assert fig.layout.barmode == "relative"


def test_interval_bars_hide_rates_of_small_groups():
    frame = pl.DataFrame(
        {
            "name": ["web", "app"],
            "rate": [40.0, 90.0],
            "low": [30.0, 50.0],
            "high": [50.0, 99.0],
            "n": [100, 3],
        }
    )
    fig = rc.interval_bars_figure(
        frame,
        label="name",
        value="rate",
        low="low",
        high="high",
        count="n",
        title="t",
        x_title="%",
        min_count=30,
    )
    bars, labels = fig.data
    assert list(bars.x) == [40.0, None]
    assert labels.text[1].strip() == "n=3: too few for a rate"
    assert list(bars.error_x.array) == [10.0, 0]


def test_csat_trend_hides_small_cells_and_notes_them():
    trend = pl.DataFrame(
        {
            "period": [JAN, JAN, FEB, FEB],
            "channel": ["all", "support", "all", "support"],
            "responses": [40, 40, 5, 5],
            "positive": [30, 30, 1, 1],
            "csat_pct": [75.0, 75.0, None, None],
            "csat_low": [60.0, 60.0, None, None],
            "csat_high": [85.0, 85.0, None, None],
            "shown": [True, True, False, False],
        }
    )
    fig = sc.csat_trend_figure(trend, period="month", min_sample=30)
    line = next(trace for trace in fig.data if trace.name == "CSAT support")
    assert list(line.y) == [75.0, None]  # one channel: no separate "all" line
    bars = next(trace for trace in fig.data if trace.type == "bar")
    assert list(bars.marker.opacity) == [1.0, 0.35]
    assert sc.hidden_note(trend, min_sample=30).startswith("1 of 2 period × channel cells have fewer than 30")
    assert sc.hidden_note(trend.filter(pl.col("shown")), min_sample=30) is None


def test_score_distribution_stacks_scores_in_order():
    distribution = pl.DataFrame(
        {
            "channel": ["support"] * 5,
            "csat_score": [1, 2, 3, 4, 5],
            "responses": [1, 1, 2, 3, 3],
            "share_pct": [10.0, 10.0, 20.0, 30.0, 30.0],
        }
    )
    fig = sc.score_distribution_figure(distribution)
    assert [trace.name for trace in fig.data] == ["1", "2", "3", "4", "5"]
    assert sum(trace.x[0] for trace in fig.data) == 100.0


def test_sentences_say_when_there_is_too_little_to_compare():
    difference = pl.DataFrame(schema={"period_index": pl.Int64})
    assert sc.band_difference_sentence(difference, period="month", index=3, min_sample=30).startswith(
        "Too few"
    )
    rows = pl.DataFrame(
        {
            "comparison": ["1-2 vs 4-5"],
            "diff_pp": [None],
            "diff_low_pp": [None],
            "diff_high_pp": [None],
            "p_value": [None],
            "significant": [None],
        }
    )
    assert "too few customers" in sc.churn_difference_sentences(rows)[0]


def test_csat_trend_says_why_it_has_no_line_when_every_cell_is_small():
    trend = pl.DataFrame(
        {
            "period": [JAN, JAN],
            "channel": ["all", "support"],
            "responses": [5, 5],
            "positive": [4, 4],
            "csat_pct": [None, None],
            "csat_low": [None, None],
            "csat_high": [None, None],
            "shown": [False, False],
        },
        schema_overrides={"csat_pct": pl.Float64, "csat_low": pl.Float64, "csat_high": pl.Float64},
    )
    fig = sc.csat_trend_figure(trend, period="month", min_sample=30)
    assert any("no CSAT to show" in note.text for note in fig.layout.annotations)
