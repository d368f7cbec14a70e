"""Pure figure builders for retention: cohort heatmap, retention curves, lifecycle, rate bars."""

from __future__ import annotations

from datetime import date

import plotly.graph_objects as go
import polars as pl

from views.charts import base_layout
from views.theme import channel_color

INCOMPLETE_COLOR = "#e6e6e6"
HEATMAP_SCALE = [[0.0, "#f7fbff"], [0.25, "#c6dbef"], [0.5, "#6baed6"], [0.75, "#2171b5"], [1.0, "#08306b"]]
LIFECYCLE_COLORS = {"new": "#54A24B", "returning": "#4C78A8", "resurrecting": "#72B7B2", "dormant": "#E45756"}
# Most cells need no label beyond this many columns; hover still has every number.
MAX_LABELLED_COLUMNS = 26


def rgba(hex_color: str, alpha: float) -> str:
    red, green, blue = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},{alpha})"


def group_colors(groups: list[str], overrides: dict[str, str] | None = None) -> dict[str, str]:
    """Channel colours for channel names, the caller's colours for known groups, a palette otherwise."""
    overrides = overrides or {}
    return {
        group: overrides.get(group) or channel_color(group, position=position)
        for position, group in enumerate(groups)
    }


def cohort_label(cohort: date, period: str) -> str:
    """``Mar 2026`` for a month cohort, ``wk 2026-03-02`` for the week starting that Monday.

    >>> cohort_label(date(2026, 3, 1), "month"), cohort_label(date(2026, 3, 2), "week")
    ('Mar 2026', 'wk 2026-03-02')
    """
    return cohort.strftime("%b %Y") if period == "month" else f"wk {cohort.isoformat()}"


def cohort_heatmap_figure(
    cells: pl.DataFrame, *, period: str, group: str | None = None, title: str = "Retention by cohort"
) -> go.Figure:
    """Cohorts (rows, oldest on top) × periods since start (columns), coloured by % of the cohort.

    ``cells`` is :func:`metrics.retention.retention`'s table; ``group`` picks one breakdown value
    (the first one by default). Periods not over yet are grey with the partial count on hover,
    never coloured as a drop.
    """
    groups = cells["group"].unique(maintain_order=True).to_list()
    rows = cells.filter(pl.col("group") == (group if group in groups else groups[0])) if groups else cells
    cohorts = rows.select("cohort", "cohort_size").unique().sort("cohort")
    labels = [f"{cohort_label(c, period)} · {n:,}" for c, n in cohorts.iter_rows()]
    width = int(rows["period_index"].max()) + 1 if not rows.is_empty() else 0
    index = {c: i for i, c in enumerate(cohorts["cohort"].to_list())}
    rate = [[None] * width for _ in labels]
    pending = [[None] * width for _ in labels]
    hover = [[""] * width for _ in labels]
    text = [[""] * width for _ in labels]
    unit = period
    for cell in rows.iter_rows(named=True):
        i, j = index[cell["cohort"]], cell["period_index"]
        counts = f"{cell['retained']:,} of {cell['cohort_size']:,} customers"
        if cell["complete"]:
            rate[i][j] = cell["retention_pct"]
            text[i][j] = f"{cell['retention_pct']:.0f}%"
            hover[i][j] = f"{labels[i]}<br>{unit} {j}: <b>{cell['retention_pct']:.1f}%</b><br>{counts}"
        else:
            pending[i][j] = 1
            hover[i][j] = (
                f"{labels[i]}<br>{unit} {j}: not over yet<br>so far {cell['retention_pct']:.1f}% ({counts})"
            )
    later = rows.filter(pl.col("complete") & (pl.col("period_index") > 0))["retention_pct"]
    top = max(float(later.max()), 1.0) if len(later) else 100.0
    show_text = width <= MAX_LABELLED_COLUMNS
    x = list(range(width))
    fig = go.Figure()
    fig.add_trace(
        go.Heatmap(
            z=pending,
            x=x,
            y=labels,
            colorscale=[[0, INCOMPLETE_COLOR], [1, INCOMPLETE_COLOR]],
            showscale=False,
            hoverinfo="text",
            hovertext=hover,
            xgap=1,
            ygap=1,
            name="not over yet",
        )
    )
    fig.add_trace(
        go.Heatmap(
            z=rate,
            x=x,
            y=labels,
            colorscale=HEATMAP_SCALE,
            zmin=0,
            zmax=top,
            xgap=1,
            ygap=1,
            hoverinfo="text",
            hovertext=hover,
            text=text if show_text else None,
            texttemplate="%{text}" if show_text else None,
            textfont={"size": 10},
            colorbar={"title": {"text": "% of cohort"}, "ticksuffix": "%", "thickness": 12},
            name="retention",
        )
    )
    fig = base_layout(
        fig, title=title, y_title="cohort · customers", height=min(160 + 24 * len(labels), 1400)
    )
    fig.update_layout(hovermode="closest", plot_bgcolor="white")
    fig.update_yaxes(autorange="reversed", type="category", gridcolor="white", rangemode=None)
    fig.update_xaxes(
        title=f"{period}s since the cohort's {period}",
        dtick=1 if width <= 30 else None,
        gridcolor="white",
        side="top",
    )
    return fig


def retention_curves_figure(
    curves: pl.DataFrame,
    *,
    period: str,
    title: str = "Average retention curve",
    colors: dict[str, str] | None = None,
) -> go.Figure:
    """One line per group (weighted average over complete cohorts) with its 95% band.

    ``curves`` comes from :func:`metrics.retention.average_curves`.

    >>> frame = pl.DataFrame({"group": ["all"] * 2, "period_index": [0, 1], "retention_pct": [100.0, 40.0],
    ...                       "retention_low": [99.0, 35.0], "retention_high": [100.0, 45.0],
    ...                       "retained": [10, 4], "cohort_size": [10, 10], "cohorts": [2, 1]})
    >>> len(retention_curves_figure(frame, period="month").data)  # band edges + line
    3
    """
    groups = curves["group"].unique(maintain_order=True).to_list()
    palette = group_colors(groups, colors)
    fig = go.Figure()
    for name in groups:
        rows = curves.filter(pl.col("group") == name).sort("period_index")
        x = rows["period_index"].to_list()
        color = palette[name]
        fig.add_trace(
            go.Scatter(
                x=x,
                y=rows["retention_high"].to_list(),
                mode="lines",
                line={"width": 0},
                hoverinfo="skip",
                showlegend=False,
                legendgroup=name,
            )
        )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=rows["retention_low"].to_list(),
                mode="lines",
                line={"width": 0},
                fill="tonexty",
                fillcolor=rgba(color, 0.15),
                hoverinfo="skip",
                showlegend=False,
                legendgroup=name,
            )
        )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=rows["retention_pct"].to_list(),
                name=name,
                legendgroup=name,
                mode="lines+markers" if len(x) <= 30 else "lines",
                line={"color": color, "width": 2.5},
                customdata=list(
                    zip(
                        rows["retained"].to_list(),
                        rows["cohort_size"].to_list(),
                        rows["retention_low"].to_list(),
                        rows["retention_high"].to_list(),
                        rows["cohorts"].to_list(),
                        strict=True,
                    )
                ),
                hovertemplate=f"{name}: %{{y:.1f}}% (95%: %{{customdata[2]:.1f}}–%{{customdata[3]:.1f}}%)"
                "<br>%{customdata[0]:,} of %{customdata[1]:,} customers "
                "in %{customdata[4]} cohorts<extra></extra>",
            )
        )
    fig = base_layout(fig, title=title, y_title="% of cohort")
    fig.update_yaxes(ticksuffix="%", range=[0, 102])
    # Ticks name the period ("month 3") instead of an axis title, which the legend below would cover.
    fig.update_xaxes(
        tickprefix=f"{period} ",
        rangemode="tozero",
        dtick=1 if curves["period_index"].max() <= 12 else None,
    )
    return fig


def lifecycle_figure(frame: pl.DataFrame, *, period: str) -> go.Figure:
    """Stacked customers per period by state; dormant below zero, unfinished periods hatched."""
    fig = go.Figure()
    for state, color in LIFECYCLE_COLORS.items():
        rows = frame.filter(pl.col("state") == state).sort("period")
        sign = -1 if state == "dormant" else 1
        customers = rows["customers"].to_list()
        fig.add_trace(
            go.Bar(
                x=rows["period"].to_list(),
                y=[sign * n for n in customers],
                name=state,
                marker_color=color,
                marker_pattern_shape=["" if done else "/" for done in rows["complete"].to_list()],
                customdata=[
                    [n, "" if done else " (period not over yet)"]
                    for n, done in zip(customers, rows["complete"].to_list(), strict=True)
                ],
                hovertemplate=f"{state}: %{{customdata[0]:,}}%{{customdata[1]}}<extra></extra>",
            )
        )
    fig.update_layout(barmode="relative", bargap=0.15)
    fig = base_layout(fig, title=f"Customer lifecycle per {period}", y_title="customers (dormant below 0)")
    fig.update_yaxes(rangemode="normal", zeroline=True, zerolinecolor="#888888")
    return fig


def interval_bars_figure(
    frame: pl.DataFrame,
    *,
    label: str,
    value: str,
    low: str,
    high: str,
    count: str,
    title: str,
    x_title: str,
    suffix: str = "%",
    prefix: str = "",
    colors: dict[str, str] | None = None,
    count_noun: str = "customers",
    decimals: int = 1,
    min_count: int = 1,
) -> go.Figure:
    """Horizontal bars with 95% interval whiskers, one per row of ``frame`` (top row first).

    Rows counting fewer than ``min_count`` get no bar, only their count: a rate on so few is noise.
    """
    def number(field: str) -> str:
        return f"{prefix}%{{{field}:,.{decimals}f}}{suffix}"

    labels = frame[label].to_list()
    palette = group_colors(labels, colors)
    counts = frame[count].to_list()
    shown = [n >= min_count for n in counts]
    values = [v if ok else None for v, ok in zip(frame[value].to_list(), shown, strict=True)]
    lows = [lo if ok else None for lo, ok in zip(frame[low].to_list(), shown, strict=True)]
    highs = [hi if ok else None for hi, ok in zip(frame[high].to_list(), shown, strict=True)]
    fig = go.Figure(
        go.Bar(
            y=labels,
            x=values,
            orientation="h",
            marker_color=[palette[name] for name in labels],
            error_x={
                "type": "data",
                "symmetric": False,
                "color": "#444444",
                "thickness": 1.2,
                "array": [
                    (h - v) if h is not None and v is not None else 0
                    for h, v in zip(highs, values, strict=True)
                ],
                "arrayminus": [
                    (v - lo) if lo is not None and v is not None else 0
                    for lo, v in zip(lows, values, strict=True)
                ],
            },
            customdata=list(zip(lows, highs, counts, strict=True)),
            hovertemplate=f"%{{y}}: {number('x')} (95%: {number('customdata[0]')}–{number('customdata[1]')})"
            f"<br>%{{customdata[2]:,}} {count_noun}<extra></extra>",
        )
    )
    # Labels sit right of the whisker so they never collide with it.
    fig.add_trace(
        go.Scatter(
            y=labels,
            x=[max(v for v in (hi, val, 0) if v is not None) for hi, val in zip(highs, values, strict=True)],
            mode="text",
            textposition="middle right",
            hoverinfo="skip",
            cliponaxis=False,
            text=[
                f"  {prefix}{v:,.{decimals}f}{suffix} · n={n:,}"
                if v is not None
                else f"  n={n:,}: too few for a rate"
                for v, n in zip(values, counts, strict=True)
            ],
            textfont={"color": "#444444", "size": 12},
        )
    )
    fig = base_layout(fig, title=title, y_title="", height=110 + 46 * max(len(labels), 1))
    fig.update_layout(hovermode="closest", showlegend=False, margin={"r": 150})
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(title=x_title, ticksuffix=suffix, tickprefix=prefix, rangemode="tozero")
    return fig


def churn_figure(churn: pl.DataFrame, *, threshold_days: int, min_sample: int) -> go.Figure:
    """Churn % per acquisition channel (and all customers) with 95% whiskers."""
    return interval_bars_figure(
        churn,
        label="acquisition_channel",
        value="churn_pct",
        low="churn_low",
        high="churn_high",
        count="customers",
        title=f"Churned: no activity in the last {threshold_days} days",
        x_title="% of customers",
        colors={"all customers": "#333333"},
        min_count=min_sample,
    )
