"""Pure figure builders for journeys, channel flows and attribution (frame in, Plotly figure out)."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl

from metrics.flows import DROP_OFF, PURCHASE, START, state_order
from views.charts import base_layout
from views.theme import FONT, channel_color

NEUTRAL = "#BAB0AC"
DROP_OFF_COLOR = "#8C8C8C"
MORE_COLOR = "#D9D9D9"
INNER_WIDTH = 0.68
# Models are told apart by colour while channels sit on the axis, so they need their own palette.
MODEL_COLORS = {
    "first": "#9ecae1", "last": "#3182bd", "linear": "#a1d99b", "position": "#31a354",
    "time-decay": "#fdae6b", "markov": "#756bb1", "shapley": "#de2d26",
}


def _rgba(hex_color: str, alpha: float) -> str:
    red, green, blue = (int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},{alpha})"


def _node_color(channel: str | None, kind: str) -> str:
    if kind == "outcome":
        return DROP_OFF_COLOR if channel is None else channel_color(channel)
    if channel is None:
        return MORE_COLOR
    return NEUTRAL if channel == "other" else channel_color(channel)


def _nodes(links: pl.DataFrame) -> pl.DataFrame:
    """One row per node: label, column (step), channel, kind and volume (journeys through it)."""
    sources = links.select(label="source", step="source_step", channel="source_channel",
                           kind=pl.when(pl.col("source_channel").is_null()).then(pl.lit("more"))
                           .otherwise(pl.lit("step")), out=pl.col("journeys"), into=pl.lit(0, pl.Int64))
    targets = links.select(label="target", step="target_step", channel="target_channel", kind="target_kind",
                           out=pl.lit(0, pl.Int64), into=pl.col("journeys"))
    nodes = pl.concat([sources, targets]).group_by("label", "step", "channel", "kind").agg(
        pl.col("out").sum(), pl.col("into").sum()
    )
    return nodes.with_columns(volume=pl.max_horizontal("out", "into"))


def _positions(nodes: pl.DataFrame, channel_rank: dict[str, int]) -> pl.DataFrame:
    """x by column; y stacked in a fixed channel order so a channel keeps its height across columns."""
    steps = sorted(nodes["step"].unique().to_list())
    outcome_steps = set(nodes.filter(pl.col("kind") == "outcome")["step"].to_list())
    inner = [s for s in steps if s not in outcome_steps]
    # The outcome column's labels sit to the left of its nodes, so it keeps a wide gap to the
    # column before; the other columns share the rest of the width evenly.
    x_of = {s: 0.001 + INNER_WIDTH * i / max(len(inner) - 1, 1) for i, s in enumerate(inner)}
    x_of.update(dict.fromkeys(outcome_steps, 0.999))
    rows = []
    for step in steps:
        column = nodes.filter(pl.col("step") == step).with_columns(
            order=pl.col("channel").replace_strict(channel_rank, default=len(channel_rank)),
            last=(pl.col("kind") == "outcome") & pl.col("channel").is_null(),
        ).sort(["last", "order", "label"])
        total = float(column["volume"].sum()) or 1.0
        gap = 0.04 * total
        span = total + gap * max(len(column) - 1, 0)
        top = 0.0
        for row in column.iter_rows(named=True):
            centre = (top + row["volume"] / 2) / span
            rows.append({"label": row["label"], "x": x_of[step], "y": min(max(centre, 0.001), 0.999)})
            top += row["volume"] + gap
    return pl.DataFrame(rows, schema={"label": pl.String, "x": pl.Float64, "y": pl.Float64})


def sankey_figure(links: pl.DataFrame, *, title: str, height: int = 560) -> go.Figure:
    """Sankey of journey links (journeys.journey_flows): nodes labelled with their journeys.

    >>> frame = pl.DataFrame({"source": ["1 · web"], "target": ["drop-off"], "journeys": [3],
    ...     "source_step": [1], "target_step": [3], "source_channel": ["web"], "target_channel": [None],
    ...     "target_kind": ["outcome"]})
    >>> sankey_figure(frame, title="t").data[0].node.label
    ('1 · web · 3', 'drop-off · 3')
    """
    if links.is_empty():
        fig = go.Figure()
        fig.add_annotation(text="No journeys with these options", showarrow=False, font={"size": 15})
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False)
        return base_layout(fig, title=title, y_title="", height=240)
    nodes = _nodes(links)
    busiest = (nodes.filter(pl.col("kind") == "step").group_by("channel").agg(pl.col("volume").sum())
               .sort(["volume", "channel"], descending=[True, False]))
    rank = {channel: i for i, channel in enumerate(busiest["channel"].to_list()) if channel != "other"}
    rank["other"] = len(rank)
    nodes = nodes.join(_positions(nodes, rank), on="label").sort(["x", "y"])
    index = {label: i for i, label in enumerate(nodes["label"].to_list())}
    node_colors = [_node_color(r["channel"], r["kind"]) for r in nodes.iter_rows(named=True)]
    color_of = dict(zip(nodes["label"].to_list(), node_colors, strict=True))
    # Every journey shown ends in exactly one outcome.
    total = int(links.filter(pl.col("target_kind") == "outcome")["journeys"].sum())
    fig = go.Figure(
        go.Sankey(
            arrangement="snap",
            valueformat=",d",
            node={
                "label": [f"{label} · {int(v):,}"
                          for label, v in zip(nodes["label"], nodes["volume"], strict=True)],
                "x": nodes["x"].to_list(),
                "y": nodes["y"].to_list(),
                "color": node_colors,
                "pad": 14,
                "thickness": 16,
                "line": {"width": 0},
                "customdata": [v / total * 100 if total else 0 for v in nodes["volume"].to_list()],
                "hovertemplate": "%{label}<br>%{customdata:.1f}% of the journeys shown<extra></extra>",
            },
            link={
                "source": [index[s] for s in links["source"].to_list()],
                "target": [index[t] for t in links["target"].to_list()],
                "value": links["journeys"].to_list(),
                "color": [_rgba(color_of[s], 0.35) for s in links["source"].to_list()],
                "hovertemplate": "%{source.label} → %{target.label}<br>%{value:,} journeys<extra></extra>",
            },
            textfont={"family": FONT, "size": 12, "color": "#222222"},
        )
    )
    fig = base_layout(fig, title=title, y_title="", height=height)
    fig.update_layout(margin={"l": 10, "r": 10, "t": 50, "b": 10})
    return fig


def matrix_heatmap(frame: pl.DataFrame, *, rows: str, columns: str, value: str, counts: str,
                   row_order: list[str], column_order: list[str], title: str, value_suffix: str = "",
                   row_title: str = "", column_title: str = "") -> go.Figure:
    """A heatmap of ``value`` with each cell also showing ``counts``; missing cells are empty.

    The column title goes into the hover text only: above the column labels it would collide with
    the chart title, so the titles say what the columns are.
    """
    lookup = {(r[rows], r[columns]): (r[value], r[counts]) for r in frame.iter_rows(named=True)}
    z, text = [], []
    for row in row_order:
        z.append([lookup.get((row, column), (None, None))[0] for column in column_order])
        text.append([_cell_text(lookup.get((row, column)), suffix=value_suffix, with_value=value != counts)
                     for column in column_order])
    fig = go.Figure(
        go.Heatmap(
            z=z, x=column_order, y=row_order, text=text, texttemplate="%{text}", colorscale="Blues",
            hoverongaps=False, xgap=2, ygap=2,
            colorbar={"title": {"text": value_suffix.strip() or value}, "thickness": 12},
            hovertemplate=f"{row_title or rows} %{{y}} → {column_title or columns} %{{x}}<br>%{{text}}"
            "<extra></extra>",
        )
    )
    fig = base_layout(fig, title=title, y_title=row_title, height=120 + 42 * max(len(row_order), 1))
    # Column labels sit on top, under the title: leave room for both.
    fig.update_layout(hovermode="closest", plot_bgcolor="white", margin={"l": 10, "r": 10, "t": 110, "b": 10})
    fig.update_yaxes(autorange="reversed", rangemode="normal", gridcolor="white", type="category")
    fig.update_xaxes(side="top", type="category", gridcolor="white")
    return fig


def _cell_text(cell: tuple[float, int] | None, *, suffix: str, with_value: bool) -> str:
    """"35%<br>2,284": the rounded value (under 0.5 shown as "<1") over the count."""
    if cell is None:
        return ""
    value, count = cell
    if not with_value:
        return f"{int(count):,}"
    shown = "<1" if 0 < value < 0.5 else f"{value:.0f}"
    return f"{shown}{suffix}<br>{int(count):,}"


def distribution_figure(frame: pl.DataFrame, *, title: str, buckets: list[str], unit: str) -> go.Figure:
    """100% stacked bars per channel across time buckets (columns channel, bucket, share, count,
    median_hours); the median is written next to each channel."""
    channels = frame.select("channel", "median_hours").unique().sort("median_hours")
    labels = [f"{c} (median {_duration(h)})" for c, h in zip(channels["channel"], channels["median_hours"],
                                                               strict=True)]
    palette = ["#08519c", "#3182bd", "#6baed6", "#9ecae1", "#c6dbef", "#e6550d", "#fdae6b"]
    present = set(frame["bucket"].to_list())
    fig = go.Figure()
    for position, bucket in enumerate(buckets):
        if bucket not in present:
            continue
        rows = frame.filter(pl.col("bucket") == bucket)
        share = dict(zip(rows["channel"].to_list(), rows["share"].to_list(), strict=True))
        count = dict(zip(rows["channel"].to_list(), rows["count"].to_list(), strict=True))
        fig.add_trace(go.Bar(
            y=labels, x=[share.get(c, 0.0) for c in channels["channel"]], name=bucket, orientation="h",
            marker_color=palette[position % len(palette)],
            customdata=[count.get(c, 0) for c in channels["channel"]],
            hovertemplate=f"%{{y}}<br>{bucket}: %{{x:.1f}}% (%{{customdata:,}} {unit})<extra></extra>",
        ))
    fig.update_layout(barmode="stack")
    fig = base_layout(fig, title=title, y_title="", height=150 + 38 * max(len(labels), 1))
    fig.update_layout(hovermode="closest", margin={"l": 10, "r": 10, "t": 90, "b": 10},
                      legend={"orientation": "h", "traceorder": "normal", "yanchor": "bottom", "y": 1.02,
                              "xanchor": "left", "x": 0})
    fig.update_xaxes(title=f"% of {unit}", ticksuffix="%", range=[0, 100])
    return fig


def _duration(hours: float | None) -> str:
    if hours is None:
        return "–"
    if hours < 1:
        return f"{hours * 60:.0f} min"
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24:.1f} d"


def online_offline_figure(monthly: pl.DataFrame) -> go.Figure:
    """Monthly online → offline and offline → online shares (columns from flows.online_offline)."""
    rows = monthly.filter(pl.col("month").is_not_null()).sort("month")
    fig = go.Figure()
    for column, name, color, counts in (
        ("online_to_offline_share", "online → offline (of store purchases)", channel_color("store"),
         "offline_purchases"),
        ("offline_to_online_share", "offline → online (of online purchases)", channel_color("web"),
         "online_purchases"),
    ):
        fig.add_trace(go.Scatter(
            x=rows["month"].to_list(), y=rows[column].to_list(), name=name,
            mode="lines+markers" if len(rows) < 40 else "lines", line={"color": color, "width": 2.5},
            customdata=rows[counts].to_list(),
            hovertemplate=f"{name}: %{{y:.1f}}% of %{{customdata:,}}<extra></extra>",
        ))
    fig = base_layout(fig, title="Cross-channel purchases per month", y_title="% of purchases", height=340)
    fig.update_yaxes(ticksuffix="%")
    fig.update_xaxes(dtick="M1", tickformat="%b %Y")
    return fig


def attribution_figure(result: pl.DataFrame, *, value: str, title: str) -> go.Figure:
    """Grouped bars: channels on the axis, one bar per model; 95% intervals where the frame has them."""
    order = (result.group_by("channel").agg(pl.col("share").mean())
             .sort(["share", "channel"], descending=[True, False], nulls_last=True)["channel"].to_list())
    fig = go.Figure()
    for model in result["model"].unique(maintain_order=True).to_list():
        rows = result.filter(pl.col("model") == model)
        by_channel = {r["channel"]: r for r in rows.iter_rows(named=True)}
        ys = [by_channel.get(c, {}).get(value) or 0.0 for c in order]
        error = None
        if value in ("conversions", "share") and rows[f"{value}_low"].is_not_null().any():
            rows_in_order = [by_channel.get(c) for c in order]
            high = [r[f"{value}_high"] - r[value] if r else 0 for r in rows_in_order]
            low = [r[value] - r[f"{value}_low"] if r else 0 for r in rows_in_order]
            error = {"type": "data", "array": high, "arrayminus": low, "thickness": 1.2, "width": 3}
        fig.add_trace(go.Bar(
            x=order, y=ys, name=model, marker_color=MODEL_COLORS.get(model, NEUTRAL), error_y=error,
            hovertemplate=f"{model} · %{{x}}: %{{y:,.1f}}{'%' if value == 'share' else ''}<extra></extra>",
        ))
    fig.update_layout(barmode="group", bargap=0.18, bargroupgap=0.05)
    y_title = {"conversions": "credited conversions", "revenue": "credited revenue",
               "share": "% of conversions"}
    fig = base_layout(fig, title=title, y_title=y_title.get(value, value), height=420)
    fig.update_layout(hovermode="closest")
    if value == "share":
        fig.update_yaxes(ticksuffix="%")
    return fig


def transition_heatmap(matrix: pl.DataFrame, *, values: str) -> go.Figure:
    """Channel-to-channel transitions (flows.transitions): row % or counts, every cell with its count."""
    states = state_order(matrix["from_state"].to_list() + matrix["to_state"].to_list())
    rows = [s for s in states if s not in (PURCHASE, DROP_OFF)]
    columns = [s for s in states if s != START]
    probability = values == "probability"
    return matrix_heatmap(
        matrix, rows="from_state", columns="to_state",
        value="row_probability" if probability else "transitions", counts="transitions",
        row_order=rows, column_order=columns, value_suffix="%" if probability else "",
        title="From each row to the next state (column)"
        + (": row %, count below" if probability else ": transitions"),
        row_title="from", column_title="to",
    )


def cross_channel_heatmap(matrix: pl.DataFrame, *, basis_label: str) -> go.Figure:
    """Journey channel × purchase channel (flows.cross_channel) as row % with counts."""
    rows = sorted(set(matrix["journey_channel"].to_list()))
    columns = sorted(set(matrix["purchase_channel"].to_list()))
    return matrix_heatmap(
        matrix, rows="journey_channel", columns="purchase_channel", value="row_share", counts="conversions",
        row_order=rows, column_order=columns, value_suffix="%",
        title=f"Rows: {basis_label.lower()} channel; columns: purchase channel (row %, conversions below)",
        row_title=basis_label.lower(), column_title="purchase in",
    )
