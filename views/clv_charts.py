"""Pure figure builders and sentences for the customer value page (no Streamlit here)."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots

from metrics.uplift import BASELINE
from views.charts import _money_format, base_layout
from views.formatting import format_value
from views.retention_charts import group_colors

TIER_COLORS = {"top 10%": "#08519c", "next 40%": "#6baed6", "rest": "#c6dbef"}
CHANNEL_GROUP_COLORS = {"1 channel": "#BAB0AC", "2 channels": "#72B7B2", "3+ channels": "#4C78A8"}
ACTUAL_COLOR, PREDICTED_COLOR = "#F58518", "#4C78A8"
SCATTER_FLOOR = 1.0


def _legend_on_top(fig: go.Figure) -> None:
    # The shared layout puts the legend under the plot, where it would cover an x-axis title.
    fig.update_layout(legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right", "x": 1.0})


def _money_axis(fig: go.Figure, currency: str, *, axis: str = "y") -> None:
    prefix, suffix = _money_format(currency)
    (fig.update_yaxes if axis == "y" else fig.update_xaxes)(tickprefix=prefix, ticksuffix=suffix)


def _palette(groups: list[str], *, sequential: bool) -> dict[str, str]:
    """Channel colours for channels; for ordered groups (cohorts) a light-to-dark scale, oldest darkest."""
    if not sequential or len(groups) < 2:
        return group_colors(groups)
    shades = sample_colorscale("Viridis", [i / (len(groups) - 1) * 0.9 for i in range(len(groups))])
    return dict(zip(groups, shades, strict=True))


def cumulative_revenue_figure(curves: pl.DataFrame, *, currency: str, title: str,
                              costs: dict[str, float] | None = None, sequential: bool = False) -> go.Figure:
    """Cumulative net revenue per acquired customer by month since acquisition, one line per group.

    With ``costs`` (group → acquisition cost) each group gets its cost as a dashed line in its
    colour and a marker where the curve first reaches it (the payback month).

    >>> frame = pl.DataFrame({"group": ["web", "web"], "month": [1, 2], "customers": [50, 40],
    ...                       "cumulative_revenue": [500.0, 800.0], "revenue_per_customer": [10.0, 20.0]})
    >>> len(cumulative_revenue_figure(frame, currency="USD", title="t", costs={"web": 15.0}).data)
    2
    """
    prefix, suffix = _money_format(currency)
    groups = curves["group"].unique(maintain_order=True).to_list()
    palette = _palette(groups, sequential=sequential)
    fig = go.Figure()
    for name in groups:
        rows = curves.filter(pl.col("group") == name).sort("month")
        fig.add_trace(go.Scatter(
            x=rows["month"].to_list(), y=rows["revenue_per_customer"].to_list(), name=name, legendgroup=name,
            mode="lines+markers" if len(rows) <= 30 else "lines", line={"color": palette[name], "width": 2.2},
            customdata=rows["customers"].to_list(),
            hovertemplate=f"{name}, month %{{x}}: {prefix}%{{y:,.0f}}{suffix} per customer "
            "(%{customdata:,} customers)<extra></extra>",
        ))
        if costs and name in costs:
            cost = costs[name]
            fig.add_hline(y=cost, line={"color": palette[name], "dash": "dash", "width": 1.2})
            reached = rows.filter(pl.col("revenue_per_customer") >= cost).head(1)
            if not reached.is_empty():
                fig.add_trace(go.Scatter(
                    x=reached["month"].to_list(), y=reached["revenue_per_customer"].to_list(), mode="markers",
                    marker={"symbol": "star", "size": 14, "color": palette[name],
                            "line": {"color": "white", "width": 1}},
                    name=f"{name} pays back", legendgroup=name, showlegend=False,
                    hovertemplate=f"{name} pays back its {prefix}{cost:,.0f}{suffix} in month %{{x}}<extra></extra>",
                ))
    fig = base_layout(fig, title=title, y_title=f"net revenue per acquired customer ({currency})", height=440)
    fig.update_layout(hovermode="closest")
    _legend_on_top(fig)
    fig.update_xaxes(title="months since acquisition", rangemode="tozero", dtick=3)
    _money_axis(fig, currency)
    return fig


def clv_distribution_figure(bins: pl.DataFrame, tiers: pl.DataFrame, *, currency: str,
                            horizon_months: int) -> go.Figure:
    """Customers per predicted-CLTV bin; dotted lines where the top 10% and the next 40% begin."""
    prefix, suffix = _money_format(currency)
    labels = [
        f"{prefix}{start:,.0f}{suffix}+" if open_ended else f"{prefix}{start:,.0f}–{end:,.0f}{suffix}"
        for start, end, open_ended in bins.select("bin_start", "bin_end", "open_ended").iter_rows()
    ]
    centres = [(start + end) / 2 for start, end in bins.select("bin_start", "bin_end").iter_rows()]
    fig = go.Figure(go.Bar(
        x=centres, y=bins["customers"].to_list(), customdata=labels, marker_color="#4C78A8",
        width=[end - start for start, end in bins.select("bin_start", "bin_end").iter_rows()],
        hovertemplate="%{customdata}: %{y:,} customers<extra></extra>",
    ))
    top = float(bins["bin_end"].max()) if not bins.is_empty() else 0.0
    thresholds = tiers.filter(pl.col("tier") != tiers["tier"][-1]) if not tiers.is_empty() else tiers
    for level, row in enumerate(thresholds.iter_rows(named=True)):
        threshold = row["min_predicted_clv"]
        if threshold is None or threshold > top:
            continue
        color = TIER_COLORS.get(row["tier"], "#333333")
        fig.add_vline(x=threshold, line={"dash": "dot", "color": color, "width": 2})
        # Staggered heights: the thresholds can sit close together.
        fig.add_annotation(x=threshold, y=1.0 - 0.09 * level, yref="paper", xanchor="left", showarrow=False,
                           text=f" {row['tier']} from {format_value(threshold, 'currency', currency=currency)}",
                           font={"color": color, "size": 12}, bgcolor="rgba(255,255,255,0.8)")
    fig = base_layout(fig, title=f"Predicted CLTV over the next {horizon_months} months", y_title="customers")
    fig.update_layout(bargap=0.05, hovermode="closest", showlegend=False)
    fig.update_xaxes(title=f"predicted CLTV per customer ({currency}; the last bar is open-ended)")
    _money_axis(fig, currency, axis="x")
    return fig


def tier_share_figure(tiers: pl.DataFrame) -> go.Figure:
    """Each tier's share of customers next to its share of predicted value (100% bars)."""
    fig = go.Figure()
    for row in tiers.iter_rows(named=True):
        fig.add_trace(go.Bar(
            y=["customers", "predicted value"], x=[row["customers_pct"], row["value_pct"]], orientation="h",
            name=row["tier"], marker_color=TIER_COLORS.get(row["tier"], "#999999"),
            text=[f"{row['customers_pct']:.0f}%", f"{row['value_pct']:.0f}%"], textposition="inside",
            hovertemplate=f"{row['tier']}: %{{x:.1f}}% of %{{y}}<extra></extra>",
        ))
    fig = base_layout(fig, title="CLTV tiers: share of customers and of predicted value", y_title="", height=260)
    fig.update_layout(barmode="stack", hovermode="closest", legend={"traceorder": "normal", "y": -0.22})
    fig.update_xaxes(ticksuffix="%", range=[0, 100])
    fig.update_yaxes(autorange="reversed")
    return fig


def alive_scatter_figure(sample: pl.DataFrame, *, currency: str, customers: int) -> go.Figure:
    """P(alive) against predicted CLTV for a sample of customers, coloured by tier (log value axis)."""
    prefix, suffix = _money_format(currency)
    fig = go.Figure()
    for tier, color in TIER_COLORS.items():
        rows = sample.filter(pl.col("tier") == tier)
        if rows.is_empty():
            continue
        # Near-zero values (lapsed customers) would stretch the log axis over many empty decades.
        # Arrays, not lists: Plotly checks a list element by element (0.1 s for 3,000 points).
        fig.add_trace(go.Scatter(
            x=rows["p_alive"].to_numpy(), y=rows["predicted_clv"].clip(lower_bound=SCATTER_FLOOR).to_numpy(),
            mode="markers", name=tier,
            marker={"color": color, "size": 5, "opacity": 0.75, "line": {"width": 0.3, "color": "#555555"}},
            customdata=rows.select("customer_id", "frequency", "historical_revenue", "predicted_clv").to_numpy(),
            hovertemplate=f"%{{customdata[0]}}: P(alive) %{{x:.2f}}, "
            f"predicted {prefix}%{{customdata[3]:,.2f}}{suffix}<br>"
            f"%{{customdata[1]}} repeat purchase days, {prefix}%{{customdata[2]:,.0f}}{suffix} to date<extra></extra>",
        ))
    shown = "" if len(sample) >= customers else f" (random sample of {len(sample):,} of {customers:,})"
    fig = base_layout(fig, title=f"P(alive) vs predicted CLTV{shown}",
                      y_title=f"predicted CLTV ({currency}, log scale; "
                      f"below {SCATTER_FLOOR:g} drawn at {SCATTER_FLOOR:g})",
                      height=440)
    fig.update_layout(hovermode="closest")
    _legend_on_top(fig)
    fig.update_yaxes(type="log", rangemode="normal")
    _money_axis(fig, currency)
    fig.update_xaxes(title="P(alive): probability the customer is still active", range=[-0.02, 1.02])
    return fig


def holdout_figure(table: pl.DataFrame, *, weeks: int) -> go.Figure:
    """Actual vs predicted repeat purchase days per customer in the holdout weeks, by calibration frequency."""
    buckets = table.filter(pl.col("bucket") != "all")
    total = table.filter(pl.col("bucket") == "all")
    x = buckets["bucket"].to_list()
    fig = go.Figure()
    for column, name, color in (("actual_per_customer", "actual", ACTUAL_COLOR),
                                ("predicted_per_customer", "predicted (BG/NBD)", PREDICTED_COLOR)):
        total_column = column.removesuffix("_per_customer")
        fig.add_trace(go.Bar(
            x=x, y=buckets[column].to_list(), name=name, marker_color=color,
            customdata=list(zip(buckets["customers"].to_list(), buckets[total_column].to_list(), strict=True)),
            hovertemplate=f"%{{x}} repeat purchase days before: {name} %{{y:.2f}} per customer "
            "(%{customdata[1]:,.0f} in total, %{customdata[0]:,} customers)<extra></extra>",
        ))
    title = f"Holdout check: repeat purchase days in the {weeks} weeks after calibration"
    if not total.is_empty():
        row = total.row(0, named=True)
        title += f"<br><sup>In total: predicted {row['predicted']:,.0f}, actual {row['actual']:,.0f}"
        if row["difference_pct"] is not None:
            title += f" ({row['difference_pct']:+.1f}%)"
        title += f" over {row['customers']:,} customers</sup>"
    fig = base_layout(fig, title=title, y_title="purchase days per customer", height=420)
    fig.update_layout(barmode="group", hovermode="closest", margin={"t": 90})
    _legend_on_top(fig)
    fig.update_xaxes(title="repeat purchase days up to the calibration date (frequency)", type="category")
    return fig


def holdout_sentence(table: pl.DataFrame, *, weeks: int) -> str:
    """One line on the total prediction error of the holdout check."""
    total = table.filter(pl.col("bucket") == "all")
    if total.is_empty():
        return ""
    row = total.row(0, named=True)
    gap = "" if row["difference_pct"] is None else f" ({row['difference_pct']:+.1f}%)"
    return (f"Fitted without the last {weeks} weeks, the model expected **{row['predicted']:,.0f}** repeat purchase "
            f"days from these {row['customers']:,} customers in those weeks; they made **{row['actual']:,.0f}**{gap}.")


def uplift_figure(comparison: pl.DataFrame, *, currency: str) -> go.Figure:
    """One panel per measure: each channel-count group's value with its 95% interval."""
    measures = comparison.select("metric", "label", "unit").unique(maintain_order=True)
    fig = make_subplots(rows=1, cols=max(len(measures), 1), subplot_titles=measures["label"].to_list(),
                        horizontal_spacing=0.06)
    prefix, suffix = _money_format(currency)
    for col, (metric, _, unit) in enumerate(measures.iter_rows(), start=1):
        rows = comparison.filter(pl.col("metric") == metric)
        values = rows["value"].to_list()
        pre, post = (prefix, suffix) if unit == "currency" else ("", "%")
        fig.add_trace(go.Bar(
            # "1", "2", "3+": the full group names do not fit under five narrow panels.
            x=[group.split(" ")[0] for group in rows["group"].to_list()], y=values, showlegend=False,
            marker_color=[CHANNEL_GROUP_COLORS.get(g, "#999999") for g in rows["group"].to_list()],
            error_y={"type": "data", "symmetric": False, "color": "#333333", "thickness": 1.2,
                     "array": [(h - v) if h is not None and v is not None else 0
                               for h, v in zip(rows["high"].to_list(), values, strict=True)],
                     "arrayminus": [(v - lo) if lo is not None and v is not None else 0
                                    for lo, v in zip(rows["low"].to_list(), values, strict=True)]},
            customdata=list(zip(rows["low"].to_list(), rows["high"].to_list(), rows["customers"].to_list(),
                                strict=True)),
            hovertemplate=f"%{{x}} channels: {pre}%{{y:,.1f}}{post} (95%: {pre}%{{customdata[0]:,.1f}}–"
            f"{pre}%{{customdata[1]:,.1f}}{post}), n=%{{customdata[2]:,}}<extra></extra>",
        ), row=1, col=col)
        fig.update_yaxes(tickprefix=pre, ticksuffix=post, rangemode="tozero", gridcolor="#eeeeee", row=1, col=col)
    fig = base_layout(fig, title="Customers by number of channels used", y_title="", height=420)
    fig.update_layout(hovermode="closest", margin={"t": 80})
    fig.update_xaxes(tickangle=0, type="category", title_text="channels used", title_font={"size": 12})
    fig.update_annotations(font={"size": 13})
    return fig


def uplift_sentences(comparison: pl.DataFrame, *, currency: str) -> list[str]:
    """One line per measure and multichannel group: the difference from single-channel customers.

    A measure without a single-channel figure (too few such customers have one) says so instead.
    """
    lines = []
    for (label,), rows in comparison.group_by("label", maintain_order=True):
        baseline = rows.filter(pl.col("group") == BASELINE)
        if baseline["value"].is_null().all():  # also when there is no single-channel customer at all
            lines.append(f"{label}: no comparison, too few single-channel customers have a figure.")
            continue
        for row in rows.filter(pl.col("difference").is_not_null()).iter_rows(named=True):
            lines.append(_difference_line(row, currency=currency))
    return lines


def _signed(value: float, unit: str, *, currency: str) -> str:
    if unit == "percent":
        return f"{value:+.1f} pp"
    return f"{'+' if value >= 0 else '-'}{format_value(abs(value), 'currency', currency=currency)}"


def _difference_line(row: dict, *, currency: str) -> str:
    unit = row["unit"]
    relative = "" if row["relative_pct"] is None or unit == "percent" else f" ({row['relative_pct']:+.0f}%)"
    clear = row["difference_low"] > 0 or row["difference_high"] < 0
    return (f"{row['label']}, {row['group']}: **{_signed(row['difference'], unit, currency=currency)}**{relative} vs "
            f"1 channel, 95% interval {_signed(row['difference_low'], unit, currency=currency)} to "
            f"{_signed(row['difference_high'], unit, currency=currency)}"
            + ("" if clear else " (the interval includes no difference)"))


def dimension_figure(frame: pl.DataFrame, *, currency: str, label: str, horizon_months: int) -> go.Figure:
    """Mean historical and predicted CLTV per group with 95% whiskers (horizontal bars)."""
    groups = frame["group"].to_list()
    fig = go.Figure()
    for column, name, color in (("historical_revenue", "historical (to date)", "#BAB0AC"),
                                ("predicted_clv", f"predicted (next {horizon_months} months)", "#4C78A8")):
        means = frame[f"{column}_mean"].to_list()
        fig.add_trace(go.Bar(
            y=groups, x=means, orientation="h", name=name, marker_color=color,
            error_x={"type": "data", "symmetric": False, "color": "#333333", "thickness": 1.1,
                     "array": [(h - m) if h is not None and m is not None else 0
                               for h, m in zip(frame[f"{column}_high"].to_list(), means, strict=True)],
                     "arrayminus": [(m - lo) if lo is not None and m is not None else 0
                                    for lo, m in zip(frame[f"{column}_low"].to_list(), means, strict=True)]},
            customdata=frame["customers"].to_list(),
            hovertemplate=f"%{{y}}: {name} %{{x:,.0f}} {currency} per customer (%{{customdata:,}} customers)"
            "<extra></extra>",
        ))
    fig = base_layout(fig, title=f"CLTV per customer by {label.lower()}", y_title="",
                      height=130 + 52 * max(len(groups), 1))
    fig.update_layout(barmode="group", hovermode="closest")
    _legend_on_top(fig)
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(title=f"mean per customer ({currency}); whiskers: 95% interval", rangemode="tozero")
    _money_axis(fig, currency, axis="x")
    return fig



def payback_sentences(payback: pl.DataFrame, *, currency: str) -> list[str]:
    """Per acquisition channel: the month its cost is earned back, or how far it has come."""
    lines = []
    for row in payback.iter_rows(named=True):
        cost = format_value(row["acquisition_cost"], "currency", currency=currency)
        if row["months_observed"] is None:
            lines.append(f"**{row['acquisition_channel']}**: too few customers to draw a curve.")
        elif row["payback_month"] is not None:
            lines.append(f"**{row['acquisition_channel']}** pays back {cost} per customer in month "
                         f"**{row['payback_month']}**.")
        else:
            earned = format_value(row["revenue_per_customer"], "currency", currency=currency)
            lines.append(f"**{row['acquisition_channel']}** has not paid back {cost} within the "
                         f"{row['months_observed']} months observed ({earned} per customer so far).")
    return lines
