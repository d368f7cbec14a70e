"""Pure figure builders and sentences for the satisfaction page (CSAT, NPS, score mix, CSAT bands)."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from views.charts import _money_format, base_layout
from views.retention_charts import group_colors, interval_bars_figure, rgba

BAND_COLORS = {
    "1-2": "#E45756",
    "3": "#EECA3B",
    "4-5": "#54A24B",
    "no support contact": "#9D9D9D",
    "support contact": "#4C78A8",
}
SCORE_COLORS = {1: "#d7301f", 2: "#fc8d59", 3: "#e0d36a", 4: "#91cf60", 5: "#1a9850"}
NPS_COLORS = {"promoters": "#1a9850", "passives": "#BAB0AC", "detractors": "#d7301f"}


def _trend_layout(fig: go.Figure, *, title: str, period: str, height: int = 480) -> go.Figure:
    fig = base_layout(fig, title=title, y_title="", height=height)
    fig.update_layout(yaxis2={"gridcolor": "#eeeeee"}, bargap=0.2)
    # Ticks on period starts, labelled as periods, not on Plotly's fortnightly default.
    if period == "month":
        months = len({point for trace in fig.data for point in (trace.x or ())})
        fig.update_xaxes(tickformat="%b %Y", dtick="M1" if months <= 12 else "M3")
    else:
        fig.update_xaxes(tickformat="%d %b", hoverformat="week of %d %b %Y")
    return fig


def _no_rate_note(fig: go.Figure, text: str) -> None:
    """Say in the empty upper panel why it is empty (the counts below are still drawn)."""
    fig.add_annotation(
        text=text,
        xref="x domain",
        yref="y domain",
        x=0.5,
        y=0.5,
        showarrow=False,
        font={"size": 13, "color": "#666666"},
        row=1,
        col=1,
    )


def csat_trend_figure(trend: pl.DataFrame, *, period: str, min_sample: int) -> go.Figure:
    """CSAT % per period by channel with 95% bands (top) and the response counts (bottom).

    Cells under ``min_sample`` have no rate (a gap in the line) and a pale response bar. The
    "all" line is drawn only when there is more than one channel.
    """
    channels = sorted(c for c in trend["channel"].unique().to_list() if c != "all")
    lines = channels if len(channels) <= 1 else ["all", *channels]
    palette = group_colors(lines, {"all": "#333333"})
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.68, 0.32], vertical_spacing=0.1)
    for name in lines:
        rows = trend.filter(pl.col("channel") == name).sort("period")
        x, color = rows["period"].to_list(), palette[name]
        pct, low, high = (rows[c].to_list() for c in ("csat_pct", "csat_low", "csat_high"))
        # Whiskers rather than a filled band: a filled band would bridge the hidden cells.
        whiskers = {
            "type": "data",
            "symmetric": False,
            "color": rgba(color, 0.55),
            "thickness": 1.5,
            "width": 3,
            "array": [h - v if v is not None else None for v, h in zip(pct, high, strict=True)],
            "arrayminus": [v - lo if v is not None else None for v, lo in zip(pct, low, strict=True)],
        }
        fig.add_trace(
            go.Scatter(
                x=x,
                y=pct,
                name=f"CSAT {name}",
                legendgroup=name,
                mode="lines+markers",
                error_y=whiskers,
                line={"color": color, "width": 3 if name == "all" else 2},
                customdata=list(
                    zip(
                        rows["responses"].to_list(),
                        rows["csat_low"].to_list(),
                        rows["csat_high"].to_list(),
                        strict=True,
                    )
                ),
                hovertemplate=f"{name}: %{{y:.1f}}% (95%: %{{customdata[1]:.1f}}–%{{customdata[2]:.1f}}%), "
                "%{customdata[0]:,} answers<extra></extra>",
            ),
            row=1,
            col=1,
        )
    for name in channels:
        rows = trend.filter(pl.col("channel") == name).sort("period")
        fig.add_trace(
            go.Bar(
                x=rows["period"].to_list(),
                y=rows["responses"].to_list(),
                name=f"answers {name}",
                marker={
                    "color": palette.get(name) or group_colors([name])[name],
                    "opacity": [1.0 if shown else 0.35 for shown in rows["shown"].to_list()],
                },
                showlegend=False,
                legendgroup=name,
                hovertemplate=f"{name}: %{{y:,}} answers<extra></extra>",
            ),
            row=2,
            col=1,
        )
    fig.add_hline(
        y=min_sample,
        line={"dash": "dot", "color": "#888888", "width": 1},
        row=2,
        col=1,
        annotation_text=f"minimum {min_sample} answers",
        annotation_position="top right",
        annotation_font_size=11,
        annotation_bgcolor="rgba(255, 255, 255, 0.85)",  # readable where it crosses a bar
    )
    fig.update_layout(barmode="stack")
    if not trend["shown"].any():
        _no_rate_note(fig, f"No {period} has {min_sample} answers in one channel: no CSAT to show")
    fig = _trend_layout(fig, title=f"CSAT per {period} by channel of the contact", period=period)
    fig.update_yaxes(title="CSAT (% 4–5)", ticksuffix="%", range=[0, 100], row=1, col=1)
    fig.update_yaxes(title="answers", rangemode="tozero", row=2, col=1)
    return fig


def nps_trend_figure(nps: pl.DataFrame, *, period: str) -> go.Figure:
    """NPS per period (top, −100 to 100) over the promoter/passive/detractor counts (bottom)."""
    rows = nps.sort("period")
    x = rows["period"].to_list()
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.6, 0.4], vertical_spacing=0.1)
    fig.add_trace(
        go.Scatter(
            x=x,
            y=rows["nps"].to_list(),
            name="NPS",
            mode="lines+markers",
            line={"color": "#333333", "width": 2.5},
            customdata=rows["responses"].to_list(),
            hovertemplate="NPS %{y:+.0f} from %{customdata:,} answers<extra></extra>",
        ),
        row=1,
        col=1,
    )
    for column, color in NPS_COLORS.items():
        fig.add_trace(
            go.Bar(
                x=x,
                y=rows[column].to_list(),
                name=column,
                marker_color=color,
                hovertemplate=f"{column}: %{{y:,}}<extra></extra>",
            ),
            row=2,
            col=1,
        )
    fig.update_layout(barmode="stack")
    if not rows["shown"].any():
        _no_rate_note(fig, f"No {period} has enough answers for an NPS")
    fig = _trend_layout(fig, title=f"NPS per {period}", period=period)
    fig.update_yaxes(title="NPS", range=[-100, 100], zeroline=True, zerolinecolor="#888888", row=1, col=1)
    fig.update_yaxes(title="answers", rangemode="tozero", row=2, col=1)
    return fig


def score_distribution_figure(distribution: pl.DataFrame) -> go.Figure:
    """One 100% bar per channel split by CSAT score 1 (red) to 5 (green)."""
    channels = sorted(distribution["channel"].unique().to_list())
    fig = go.Figure()
    for score, color in SCORE_COLORS.items():
        rows = distribution.filter(pl.col("csat_score") == score)
        shares = dict(zip(rows["channel"].to_list(), rows["share_pct"].to_list(), strict=True))
        counts = dict(zip(rows["channel"].to_list(), rows["responses"].to_list(), strict=True))
        fig.add_trace(
            go.Bar(
                y=channels,
                x=[shares.get(c, 0.0) for c in channels],
                name=str(score),
                orientation="h",
                marker_color=color,
                text=[f"{shares.get(c, 0.0):.0f}%" for c in channels],
                textposition="inside",
                customdata=[counts.get(c, 0) for c in channels],
                hovertemplate=f"%{{y}}: score {score} in %{{x:.1f}}% of answers "
                "(%{customdata:,})<extra></extra>",
            )
        )
    fig.update_layout(barmode="stack", legend_title_text="score")
    fig = base_layout(
        fig, title="CSAT score distribution by channel", y_title="", height=230 + 50 * max(len(channels), 1)
    )
    fig.update_layout(hovermode="closest", legend={"traceorder": "normal", "y": 1.08})
    fig.update_xaxes(title="% of the channel's answers", ticksuffix="%", range=[0, 100])
    return fig


def hidden_note(trend: pl.DataFrame, *, min_sample: int) -> str | None:
    """The sentence under the CSAT trend when some cells have too few answers for a rate."""
    cells = trend.filter(pl.col("channel") != "all")
    hidden = cells.filter(~pl.col("shown"))
    if hidden.is_empty():
        return None
    return (
        f"{len(hidden)} of {len(cells)} period × channel cells have fewer than {min_sample} answers: "
        "their CSAT is not shown (pale bars below), because a rate on so few answers is mostly noise."
    )


def _verdict(row: dict) -> str:
    if row["p_value"] is None:
        return "too few customers in one of the groups to compare"
    word = "significant" if row["significant"] else "not significant"
    interval = f"95% CI {row['diff_low_pp']:+.1f} to {row['diff_high_pp']:+.1f}"
    p_value = "p < 0.001" if row["p_value"] < 0.001 else f"p = {row['p_value']:.3f}"
    return f"{row['diff_pp']:+.1f} pp ({interval}; {p_value}, {word})"


def band_difference_sentence(difference: pl.DataFrame, *, period: str, index: int, min_sample: int) -> str:
    """One sentence: retention of CSAT 4-5 vs 1-2 customers ``index`` periods after their first purchase.

    Falls back to the latest period both bands reach when ``index`` is not available yet.
    """
    rows = difference.filter(pl.col("period_index") == index)
    if rows.is_empty():
        rows = difference.filter(pl.col("period_index") > 0).tail(1)
    if rows.is_empty():
        return (
            f"Too few customers to compare the CSAT bands: each band needs at least {min_sample} customers "
            f"in complete {period}s (setting min_sample). Widen the date range."
        )
    row = rows.row(0, named=True)
    good = f"{row['retention_high_pct']:.1f}% of CSAT 4-5 customers (n={row['customers_high']:,})"
    poor = f"{row['retention_low_pct']:.1f}% of CSAT 1-2 customers (n={row['customers_low']:,})"
    return (
        f"{row['period_index']} {period}s after the first purchase, {good} had bought again vs {poor}: "
        f"{_verdict(row)}."
    )


def churn_difference_sentences(differences: pl.DataFrame) -> list[str]:
    """One line per comparison: the churn difference in points, its interval and significance."""
    lines = []
    for row in differences.to_dicts():
        first, second = row["comparison"].split(" vs ")
        lines.append(f"Churn of **{first}** minus **{second}**: {_verdict(row)}.")
    return lines


def churn_comparison_figure(churn: pl.DataFrame, *, threshold_days: int, min_sample: int) -> go.Figure:
    """Churn % with 95% whiskers: with vs without a support contact, then by CSAT band."""
    labels = churn.with_columns(
        label=pl.when(pl.col("comparison") == "CSAT band")
        .then("latest CSAT " + pl.col("group"))
        .otherwise(pl.col("group"))
    )
    colors = {f"latest CSAT {band}": color for band, color in BAND_COLORS.items()} | BAND_COLORS
    return interval_bars_figure(
        labels,
        label="label",
        value="churn_pct",
        low="churn_low",
        high="churn_high",
        count="customers",
        title=f"Churned (no activity in the last {threshold_days} days) after a support contact and by CSAT",
        x_title="% of customers",
        colors=colors,
        min_count=min_sample,
    )


def value_by_band_figure(value: pl.DataFrame, *, currency: str, min_sample: int) -> go.Figure:
    """Mean CLTV to date per CSAT band with 95% whiskers."""
    prefix, suffix = _money_format(currency)
    labels = value.with_columns(label="CSAT " + pl.col("band"))
    return interval_bars_figure(
        labels,
        label="label",
        value="mean_value",
        low="mean_low",
        high="mean_high",
        count="customers",
        title="Mean CLTV to date by CSAT band",
        x_title=f"net revenue per customer ({currency})",
        prefix=prefix,
        suffix=suffix,
        colors={f"CSAT {band}": color for band, color in BAND_COLORS.items()},
        decimals=0,
        min_count=min_sample,
    )
