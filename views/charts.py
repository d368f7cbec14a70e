"""Pure figure builders: a small Polars frame in, a Plotly figure out (no Streamlit here)."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from views.formatting import CURRENCY_SYMBOLS
from views.theme import FONT, channel_color


def base_layout(fig: go.Figure, *, title: str, y_title: str, height: int = 380) -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0, "xanchor": "left", "font": {"size": 16}},
        font={"family": FONT, "size": 13},
        height=height,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        legend={"orientation": "h", "yanchor": "top", "y": -0.12, "xanchor": "left", "x": 0},
        hovermode="x unified",
        plot_bgcolor="white",
        yaxis={"title": y_title, "gridcolor": "#eeeeee", "rangemode": "tozero"},
        xaxis={"gridcolor": "#f5f5f5"},
    )
    return fig


def _partial_note(complete: bool) -> str:
    return "" if complete else " (partial period: the date range cuts it)"


def _money_format(currency: str) -> tuple[str, str]:
    """Plotly tick prefix/suffix for the store's currency."""
    symbol = CURRENCY_SYMBOLS.get(currency)
    return (symbol, "") if symbol else ("", f" {currency}")


def revenue_trend_figure(trend: pl.DataFrame, *, currency: str, grain: str) -> go.Figure:
    """Stacked net revenue per period by channel (columns period, channel, revenue, complete).

    Periods the date range cuts (``complete`` false) are drawn faded and say so on hover.

    >>> import datetime as dt
    >>> frame = pl.DataFrame({"period": [dt.date(2026, 1, 1)] * 2, "channel": ["web", "store"],
    ...                       "revenue": [10.0, 5.0], "complete": [True, True]})
    >>> len(revenue_trend_figure(frame, currency="USD", grain="month").data)
    2
    """
    prefix, suffix = _money_format(currency)
    fig = go.Figure()
    channels = trend.group_by("channel").agg(pl.col("revenue").sum()).sort("revenue", descending=True)
    for position, channel in enumerate(channels["channel"].to_list()):
        rows = trend.filter(pl.col("channel") == channel).sort("period")
        fig.add_trace(
            go.Bar(
                x=rows["period"].to_list(),
                y=rows["revenue"].to_list(),
                name=channel,
                marker={"color": channel_color(channel, position=position),
                        "opacity": [1.0 if done else 0.4 for done in rows["complete"].to_list()]},
                customdata=[_partial_note(done) for done in rows["complete"].to_list()],
                hovertemplate=f"{channel}: {prefix}%{{y:,.0f}}{suffix}%{{customdata}}<extra></extra>",
            )
        )
    fig.update_layout(barmode="relative")
    fig = base_layout(fig, title=f"Net revenue per {grain} by channel", y_title=f"net revenue ({currency})")
    fig.update_yaxes(tickprefix=prefix, ticksuffix=suffix, tickformat="~s")
    return fig


def active_customers_figure(trend: pl.DataFrame, *, grain: str) -> go.Figure:
    """Distinct active customers per period: one line per channel and a bold line for all."""
    fig = go.Figure()
    channels = [c for c in trend["channel"].unique(maintain_order=True).to_list() if c != "all"]
    for position, channel in enumerate(["all", *sorted(channels)]):
        rows = trend.filter(pl.col("channel") == channel).sort("period")
        if rows.is_empty():
            continue
        is_total = channel == "all"
        fig.add_trace(
            go.Scatter(
                x=rows["period"].to_list(),
                y=rows["active_customers"].to_list(),
                name="all channels (distinct)" if is_total else channel,
                mode="lines+markers" if len(rows) < 40 else "lines",
                line={"color": channel_color(channel, position=position), "width": 3.5 if is_total else 1.8},
                customdata=[_partial_note(done) for done in rows["complete"].to_list()],
                hovertemplate=f"{'all channels' if is_total else channel}: %{{y:,}} customers"
                "%{customdata}<extra></extra>",
            )
        )
    partial = trend.filter(~pl.col("complete") & (pl.col("channel") == "all"))
    for period in partial["period"].to_list():
        fig.add_vrect(x0=period, x1=period, line={"color": "#bbbbbb", "dash": "dot", "width": 1})
    return base_layout(fig, title=f"Active customers per {grain}", y_title="customers")


def channel_mix_figure(mix: pl.DataFrame) -> go.Figure:
    """Each channel's share of net revenue next to its share of touches (columns in %).

    Two panels on one channel axis: a channel that is long on the right and short on the left
    assists journeys without closing them.
    """
    rows = mix.sort("revenue_share", descending=False, nulls_last=False)
    channels = rows["channel"].to_list()
    colors = [channel_color(c, position=i) for i, c in enumerate(channels)]
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.08,
                        subplot_titles=("Share of net revenue", "Share of touches"))
    for col, (column, name) in enumerate((("revenue_share", "net revenue"), ("touch_share", "touches")), start=1):
        shares = rows[column].fill_null(0).to_list()
        fig.add_trace(
            go.Bar(
                y=channels, x=shares, orientation="h", marker_color=colors, showlegend=False,
                text=[f"{v:.1f}%" for v in shares], textposition="outside", cliponaxis=False,
                hovertemplate=f"%{{y}}: %{{x:.1f}}% of {name}<extra></extra>",
            ),
            row=1, col=col,
        )
    top = max([*rows["revenue_share"].fill_null(0).to_list(), *rows["touch_share"].fill_null(0).to_list(), 1.0])
    fig = base_layout(fig, title="Channel mix: who closes and who assists", y_title="",
                      height=110 + 34 * max(len(rows), 1))
    fig.update_layout(hovermode="closest")
    fig.update_xaxes(ticksuffix="%", range=[0, top * 1.18], gridcolor="#f0f0f0")
    return fig
