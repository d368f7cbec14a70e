"""Pure figure builders for comparing two segments (no Streamlit here)."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl

from views.charts import _money_format, base_layout

# Two colours no channel uses, so a segment is never read as a channel; the tones are the nearest
# Markdown colours, for marking the segments' cards.
SEGMENT_COLORS = ("#1B6CA8", "#D1495B")
SEGMENT_TONES = ("blue", "red")


def segment_colors(labels: list[str]) -> dict[str, str]:
    """Segment A's and segment B's colour, shared by every comparison chart."""
    return dict(zip(labels, SEGMENT_COLORS, strict=False))


def clv_comparison_figure(distribution: pl.DataFrame, *, currency: str, horizon_months: int,
                          colors: dict[str, str]) -> go.Figure:
    """Side-by-side bars per range of predicted CLTV: % of each segment's scored customers.

    ``distribution`` comes from :func:`metrics.segment_comparison.clv_distribution`.

    >>> frame = pl.DataFrame({"group": ["A", "B"], "bin_start": [0.0, 0.0], "bin_end": [50.0, 50.0],
    ...                       "open_ended": [True, True], "customers": [3, 1], "share_pct": [100.0, 100.0]})
    >>> [trace.name for trace in clv_comparison_figure(frame, currency="USD", horizon_months=12,
    ...                                                colors={"A": "#000000", "B": "#ffffff"}).data]
    ['A', 'B']
    """
    prefix, suffix = _money_format(currency)
    fig = go.Figure()
    for group in distribution["group"].unique(maintain_order=True).to_list():
        rows = distribution.filter(pl.col("group") == group).sort("bin_start")
        labels = [
            f"{prefix}{start:,.0f}{suffix}+" if open_ended else f"{prefix}{start:,.0f}–{end:,.0f}{suffix}"
            for start, end, open_ended in rows.select("bin_start", "bin_end", "open_ended").iter_rows()
        ]
        shares = [share or 0.0 for share in rows["share_pct"].to_list()]
        fig.add_trace(go.Bar(
            x=labels, y=shares, name=group, marker_color=colors.get(group),
            customdata=rows["customers"].to_list(),
            hovertemplate=f"{group}<br>%{{x}}: %{{y:.1f}}% (%{{customdata:,}} customers)<extra></extra>",
        ))
    fig = base_layout(fig, title=f"Predicted CLTV over the next {horizon_months} months",
                      y_title="% of the segment's scored customers")
    fig.update_layout(barmode="group", bargap=0.15, hovermode="closest")
    fig.update_yaxes(ticksuffix="%")
    fig.update_xaxes(title=f"predicted CLTV per customer ({currency}; the last range is open-ended)",
                     type="category", tickangle=-45)
    return fig
