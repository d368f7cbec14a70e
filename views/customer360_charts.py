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


def timeline_figure(events: pl.DataFrame, *, currency: str, last_journey: dict | None = None,
                    open_cart: pl.DataFrame | None = None) -> go.Figure:
    """Markers per event: y = channel, shape = event type, size grows with the order value.

    The last journey is a shaded band (what led to the latest purchase or drop-off) and each item
    still in the cart gets a ring, so a store associate sees at once what the customer was after.
    """
    fig = go.Figure()
    if last_journey is not None:
        outcome = (f"purchase ({last_journey['conversion_channel']})" if last_journey["converted"]
                   else "no purchase yet")
        fig.add_vrect(x0=last_journey["started_at"], x1=last_journey["ended_at"], fillcolor="#f2c14e",
                      opacity=0.18, line_width=0, layer="below",
                      annotation_text=f"last journey → {outcome}", annotation_position="top left",
                      annotation_font={"size": 11, "color": "#8a6d1d"})
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
    if open_cart is not None and not open_cart.is_empty():
        fig.add_trace(go.Scatter(
            x=open_cart["occurred_at"].to_list(), y=open_cart["channel"].to_list(), mode="markers",
            name="open cart", marker={"symbol": "circle-open", "size": 22, "color": "#d62728",
                                      "line": {"width": 2.5}},
            hovertext=[f"still in the cart: {category or 'item'}" for category in open_cart["product_category"]],
            hoverinfo="text",
        ))
    fig = base_layout(fig, title="Every touch across channels", y_title="", height=140 + 46 * max(len(channels), 1))
    fig.update_layout(hovermode="closest", showlegend=False)
    fig.update_yaxes(categoryorder="array", categoryarray=channels[::-1])
    return fig
