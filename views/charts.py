"""Pure figure builders: a small Polars frame in, a Plotly figure out (no Streamlit here)."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl

from views.formatting import CURRENCY_SYMBOLS
from views.theme import FONT, channel_color


def base_layout(fig: go.Figure, *, title: str, y_title: str, height: int = 380) -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0, "xanchor": "left", "font": {"size": 16}},
        font={"family": FONT, "size": 13},
        height=height,
        margin={"l": 10, "r": 10, "t": 60, "b": 10},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right", "x": 1},
        hovermode="x unified",
        plot_bgcolor="white",
        yaxis={"title": y_title, "gridcolor": "#eeeeee", "rangemode": "tozero"},
        xaxis={"gridcolor": "#f5f5f5"},
    )
    return fig


def _money_format(currency: str) -> tuple[str, str]:
    """Plotly tick prefix/suffix for the store's currency."""
    symbol = CURRENCY_SYMBOLS.get(currency)
    return (symbol, "") if symbol else ("", f" {currency}")


def revenue_trend_figure(trend: pl.DataFrame, *, currency: str, grain: str) -> go.Figure:
    """Stacked net revenue per period by channel (columns period, channel, revenue).

    >>> import datetime as dt
    >>> frame = pl.DataFrame({"period": [dt.date(2026, 1, 1)] * 2, "channel": ["web", "store"],
    ...                       "revenue": [10.0, 5.0]})
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
                marker_color=channel_color(channel, position=position),
                hovertemplate=f"{channel}: {prefix}%{{y:,.0f}}{suffix}<extra></extra>",
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
                hovertemplate=f"{'all channels' if is_total else channel}: %{{y:,}} customers<extra></extra>",
            )
        )
    return base_layout(fig, title=f"Active customers per {grain}", y_title="customers")


def channel_mix_figure(mix: pl.DataFrame) -> go.Figure:
    """Share of revenue and share of touches per channel, side by side (columns in %)."""
    rows = mix.sort("revenue_share", descending=False, nulls_last=False)
    fig = go.Figure()
    for column, name, opacity in (("revenue_share", "share of net revenue", 1.0), ("touch_share", "share of touches", 0.45)):
        fig.add_trace(
            go.Bar(
                y=rows["channel"].to_list(),
                x=rows[column].fill_null(0).to_list(),
                name=name,
                orientation="h",
                marker={"color": [channel_color(c, position=i) for i, c in enumerate(rows["channel"].to_list())],
                        "opacity": opacity},
                text=[f"{v:.1f}%" for v in rows[column].fill_null(0).to_list()],
                textposition="outside",
                hovertemplate=f"%{{y}}: %{{x:.1f}}% {name}<extra></extra>",
            )
        )
    fig.update_layout(barmode="group", bargap=0.25)
    fig = base_layout(fig, title="Channel mix: revenue vs touches", y_title="", height=60 + 56 * max(len(rows), 1))
    fig.update_layout(hovermode="closest")
    fig.update_xaxes(title="% of total", ticksuffix="%", rangemode="tozero")
    return fig
