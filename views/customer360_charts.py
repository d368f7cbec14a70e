"""The Customer 360 timeline: every event of one customer on one time axis, a row per channel."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl

from views.charts import base_layout
from views.formatting import CURRENCY_SYMBOLS
from views.theme import channel_color

# Shapes carry the event type so colour can stay the channel's, as on every other page.
SYMBOLS = {"purchase": "circle", "refund": "x", "survey_response": "star", "support_contact": "diamond",
           "store_visit": "square", "email_open": "triangle-up", "email_click": "triangle-right"}


def _hover(row: dict, symbol: str) -> str:
    parts = [f"<b>{row['event_type'].replace('_', ' ')}</b> · {row['channel']}", f"{row['occurred_at']:%Y-%m-%d %H:%M}"]
    if row["revenue"] is not None:
        parts.append(f"order value {symbol}{row['revenue']:,.2f}")
    if row["csat_score"] is not None:
        parts.append(f"CSAT {row['csat_score']}/5 · NPS {row['nps_score']}/10")
    parts += [f"{label} {row[key]}" for key, label in (("campaign", "campaign"), ("product_category", "category"))
              if row[key]]
    return "<br>".join(parts)


def timeline_figure(events: pl.DataFrame, *, currency: str) -> go.Figure:
    """Markers per event: y = channel, shape = event type, size grows with the order value."""
    fig = go.Figure()
    symbol = CURRENCY_SYMBOLS.get(currency, "")
    channels = sorted(events["channel"].unique().to_list())
    for position, channel in enumerate(channels):
        rows = events.filter(pl.col("channel") == channel).to_dicts()
        fig.add_trace(go.Scatter(
            x=[row["occurred_at"] for row in rows], y=[channel] * len(rows), mode="markers", name=channel,
            marker={
                "color": channel_color(channel, position=position),
                "symbol": [SYMBOLS.get(row["event_type"], "circle-open") for row in rows],
                "size": [8 + min(abs(row["revenue"] or 0) / 10, 18) for row in rows],
                "line": {"width": 0.5, "color": "white"},
            },
            hovertext=[_hover(row, symbol) for row in rows], hoverinfo="text",
        ))
    fig = base_layout(fig, title="Every touch across channels", y_title="", height=140 + 46 * max(len(channels), 1))
    fig.update_layout(hovermode="closest", showlegend=False)
    fig.update_yaxes(categoryorder="array", categoryarray=channels[::-1])
    return fig
