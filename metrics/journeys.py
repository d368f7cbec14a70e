"""Journey map: flows of the first (or last) N steps, top paths and the customers behind a path.

Definitions (DESIGN.md §3; the journey tables are built by ``data_access.derived_journeys``):

- a journey is shown when it ends (purchase, or last touch of a drop-off) in the date range and
  its customer is in the selected regions and segments; with channels selected, journeys that
  touch or convert in one of them are shown whole (dropping touches would invent transitions);
- steps are touches, or with ``collapse`` runs of one channel ("web, web, store" is two steps);
- forward from the journey's first touch, or from its first touch in a given channel or of a given
  event type (the anchor); backward, the last N steps before a purchase;
- counts are journeys, exact.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

import ibis
import ibis.expr.types as ir
import polars as pl

from data_access.derived import derived
from data_access.derived_retention import channel_mask
from metrics.catalog import channel_bits
from metrics.engine import Engine
from metrics.filters import Filters, restrict_customers, restrict_days

Direction = Literal["forward", "backward"]
PathSort = Literal["journeys", "conversions", "conversion_rate", "revenue"]

MIN_STEPS, MAX_STEPS = 2, 8
DEFAULT_STEPS = 4
DEFAULT_MAX_NODES = 6
JOURNEY_START = ""
ANCHOR_KINDS = ("channel", "event")
DROP_OFF = "drop-off"
OTHER = "other"
MORE = "⋯ more touches"
EARLIER = "⋯ earlier touches"
PATH_SORTS: tuple[str, ...] = ("journeys", "conversions", "conversion_rate", "revenue")


def purchase_label(channel: str) -> str:
    return f"purchase ({channel})"


def step_label(step: int, channel: str) -> str:
    """``2 · store``; backward steps count down to the purchase: ``−1 · store`` is the last touch."""
    return f"{step} · {channel}" if step > 0 else f"−{-step} · {channel}"


def anchor(kind: str, value: str) -> str:
    """The ``start`` option for journeys from their first touch of a channel or event type."""
    return f"{kind}:{value}"


def _parse_anchor(start: str) -> tuple[str, str] | None:
    if start == JOURNEY_START:
        return None
    kind, _, value = start.partition(":")
    if kind not in ANCHOR_KINDS or not value:
        raise ValueError(f"start must be empty, 'channel:NAME' or 'event:TYPE', not {start!r}")
    return kind, value


def _check_steps(steps: int) -> None:
    if not MIN_STEPS <= steps <= MAX_STEPS:
        raise ValueError(f"steps must be between {MIN_STEPS} and {MAX_STEPS}, not {steps}")


def journeys_in_view(filters: Filters) -> ir.Table:
    """The journey table restricted by the global filters (see the module docstring)."""
    journeys = restrict_days(derived("journeys"), filters, column="day")
    return restrict_customers(in_selected_channels(journeys, filters), filters)


def selects_customers(filters: Filters) -> bool:
    """Whether the filters pick journeys by their customer (regions, segments, a saved segment)."""
    return bool(filters.regions or filters.segments or filters.segment_rule)


def in_selected_channels(rows: ir.Table, filters: Filters) -> ir.Table:
    """Rows (of the journey, touch or credit table) of journeys that touched or converted in a selected
    channel, by a bit test on their ``journey_channels`` mask."""
    if not filters.channels:
        return rows
    return rows.filter((rows.journey_channels & channel_mask(filters.channels, bits=filters.bits)) != 0)


def selected_bits(engine: Engine, filters: Filters) -> int | None:
    """The mask of the selected channels (bits from channel_bits), None without a channel filter."""
    if not filters.channels:
        return None
    bits = dict(channel_bits(engine))
    return sum(bits.get(channel, 0) for channel in filters.channels)


def mask_keys(per_journey_channels: bool) -> list[str]:
    """The grouping key a result needs for :func:`of_selected_channels` to narrow it, if asked."""
    return ["journey_channels"] if per_journey_channels else []


def of_selected_channels(rows: pl.DataFrame, selected: int | None, *, by: list[str]) -> pl.DataFrame:
    """A result over every channel, grouped by ``by`` and ``journey_channels``, for the journeys
    in the ``selected`` channels (:func:`selected_bits`): its rows whose mask has a selected bit,
    added up per ``by`` (into one row without ``by``).

    Every other column must add up over journeys (counts, sums). A journey's mask decides whether
    it is in view whatever else is selected, so one result serves every channel selection; the
    app keeps it (data_access.cached), and a channel change needs no query.

    >>> rows = pl.DataFrame({"channel": ["web", "web"], "journey_channels": [1, 3], "journeys": [5, 2]})
    >>> of_selected_channels(rows, 2, by=["channel"])["journeys"].to_list()  # bit 2 in 3, not in 1
    [2]
    """
    if selected is not None:
        rows = rows.filter((pl.col("journey_channels") & selected) != 0)
    measures = pl.exclude(*by, "journey_channels").sum()
    return rows.group_by(by).agg(measures) if by else rows.select(measures)


def touches_of(filters: Filters, journeys: ir.Table | None = None) -> ir.Table:
    """The touch rows of ``journeys``, a selection of the journeys in view (default: all of them).

    A touch carries its journey's day and channel mask, so the journeys in view need no join:
    the date range is a plain filter (which reads only its days' row groups), a channel filter a
    bit test, and regions or segments the customer semi-join. At a million customers a channel
    filter's semi-join on journey_id added about 0.2 s to each touch query of 90 days. An explicit
    selection of ``journeys`` is semi-joined on journey_id, after the date range.
    """
    touches = restrict_days(derived("journey_touches"), filters, column="day")
    if journeys is not None:
        return touches.semi_join(journeys.select("journey_id"), "journey_id")
    return restrict_customers(in_selected_channels(touches, filters), filters)


def _in_flow_view(rows: ir.Table, *, direction: Direction, purchase_channel: str) -> ir.Table:
    """Rows of the journey or touch table (both have converted and conversion_channel) of the
    journeys a flow view shows: only converting ones backward, only those bought in
    ``purchase_channel`` when one is chosen."""
    if direction == "backward":
        rows = rows.filter(rows.converted)
    if purchase_channel:
        rows = rows.filter(rows.conversion_channel == purchase_channel)
    return rows


def _selected_touches(filters: Filters, *, direction: Direction, purchase_channel: str) -> ir.Table:
    """The touches of :func:`_selected_journeys`' journeys, picked by their own columns."""
    return _in_flow_view(touches_of(filters), direction=direction, purchase_channel=purchase_channel)


def _selected_journeys(filters: Filters, *, direction: Direction, purchase_channel: str) -> ir.Table:
    j = _in_flow_view(journeys_in_view(filters), direction=direction, purchase_channel=purchase_channel)
    return j.filter(j.touches > 0)


def _positions(touches: ir.Table, *, collapse: bool) -> ir.Table:
    """One row per step: its number, the journey's step count and the next step's channel."""
    if collapse:
        steps = touches.filter(touches.is_step_end)
        return steps.mutate(position=steps.step, length=steps.steps)
    return touches.mutate(position=touches.touch_number, length=touches.touches)


def _anchor_touches(touches: ir.Table, start: tuple[str, str]) -> ir.Table:
    kind, value = start
    column = touches.channel if kind == "channel" else touches.event_type
    return touches.filter(column == value)


def _anchored(rows: ir.Table, touches: ir.Table, start: tuple[str, str], *, collapse: bool) -> ir.Table:
    """Keep each journey from its first step holding the anchor touch; renumber from 1 there."""
    anchors = _anchor_touches(touches, start)
    position = anchors.step if collapse else anchors.touch_number
    first = anchors.group_by("journey_id").agg(anchor_position=position.min())
    rows = rows.join(first, "journey_id")
    rows = rows.filter(rows.position >= rows.anchor_position)
    return rows.mutate(position=rows.position - rows.anchor_position + 1,
                       length=rows.length - rows.anchor_position + 1)


def flows_expr(filters: Filters, *, steps: int = DEFAULT_STEPS, direction: Direction = "forward",
               start: str = JOURNEY_START, purchase_channel: str = "", collapse: bool = False) -> ir.Table:
    """Journeys per (position, channel, next channel, outcome) for the first or last ``steps`` steps.

    ``position`` counts from 1 forward, or from 1 at the last step backward. ``next_channel`` is
    null where the journey ends (``ends``) or leaves the window of ``steps`` steps.
    """
    _check_steps(steps)
    touches = _selected_touches(filters, direction=direction, purchase_channel=purchase_channel)
    rows = _positions(touches, collapse=collapse)
    anchor_at = _parse_anchor(start) if direction == "forward" else None
    if anchor_at is not None:
        rows = _anchored(rows, touches, anchor_at, collapse=collapse)
    if direction == "backward":
        rows = rows.mutate(position=rows.length - rows.position + 1)
        # Position 1 is the last touch; "cut" marks journeys with touches before the window.
        rows = rows.mutate(ends=rows.position == 1, cut=(rows.position == steps) & (rows.length > steps))
        stops = rows.ends
    else:
        rows = rows.mutate(ends=rows.position == rows.length)
        rows = rows.mutate(cut=(rows.position == steps) & ~rows.ends)
        stops = rows.ends | rows.cut
    rows = rows.mutate(next_channel=ibis.ifelse(stops, ibis.null("string"), rows.next_channel))
    rows = rows.filter(rows.position <= steps)
    return (
        rows.group_by("position", "channel", "next_channel", "ends", "cut", "conversion_channel")
        .agg(journeys=ibis._.count())
        .order_by(["position", "channel", "next_channel", "conversion_channel"])
    )


def _outcome(conversion_channel: pl.Expr) -> pl.Expr:
    return pl.when(conversion_channel.is_null()).then(pl.lit(DROP_OFF)).otherwise(
        pl.lit("purchase (") + conversion_channel + pl.lit(")")
    )


_EDGE_SCHEMA = {"source_step": pl.Int64, "source_channel": pl.String, "target_step": pl.Int64,
                "target_channel": pl.String, "target_kind": pl.String, "journeys": pl.Int64}


def _edges(rows: pl.DataFrame, *, steps: int, direction: Direction) -> pl.DataFrame:
    """Sankey links between (column, channel) nodes from the grouped step rows.

    A null channel is the "more touches" (forward) or "earlier touches" (backward) node; target_kind
    says whether a target is a step, that node, or an outcome.
    """
    step = pl.col("position") * (1 if direction == "forward" else -1)
    outcome_step = steps + 2 if direction == "forward" else 1
    no_channel = pl.lit(None, pl.String)
    source = {"source_step": step, "source_channel": pl.col("channel")}

    def links(frame: pl.DataFrame, **columns: pl.Expr) -> pl.DataFrame:
        return frame.select(**columns, journeys=pl.col("journeys")).cast(_EDGE_SCHEMA)

    cut = rows.filter(pl.col("cut"))
    parts = [
        links(rows.filter(pl.col("next_channel").is_not_null()), **source, target_step=step + 1,
              target_channel=pl.col("next_channel"), target_kind=pl.lit("step")),
        links(rows.filter(pl.col("ends")), **source, target_step=pl.lit(outcome_step),
              target_channel=pl.col("conversion_channel"), target_kind=pl.lit("outcome")),
    ]
    if direction == "forward":
        parts += [
            links(cut, **source, target_step=pl.lit(steps + 1), target_channel=no_channel,
                  target_kind=pl.lit("more")),
            links(cut, source_step=pl.lit(steps + 1), source_channel=no_channel,
                  target_step=pl.lit(outcome_step),
                  target_channel=pl.col("conversion_channel"), target_kind=pl.lit("outcome")),
        ]
    else:
        parts.append(links(cut, source_step=pl.lit(-steps - 1), source_channel=no_channel,
                           target_step=pl.lit(-steps), target_channel=pl.col("channel"),
                           target_kind=pl.lit("step")))
    keys = [c for c in _EDGE_SCHEMA if c != "journeys"]
    return pl.concat(parts).group_by(keys).agg(pl.col("journeys").sum())


def _group_rare_nodes(edges: pl.DataFrame, *, max_nodes: int) -> pl.DataFrame:
    """Per column, channels beyond the ``max_nodes`` busiest become one "other" node.

    Merging nodes (not dropping links) keeps every journey in the picture: each node still sends on
    exactly the journeys it receives.
    """
    outflow = (edges.filter(pl.col("source_channel").is_not_null())
               .group_by(step="source_step", channel="source_channel").agg(pl.col("journeys").sum()))
    inflow = (edges.filter(pl.col("target_kind") == "step")
              .group_by(step="target_step", channel="target_channel").agg(pl.col("journeys").sum()))
    volume = pl.concat([outflow, inflow]).group_by("step", "channel").agg(pl.col("journeys").max())
    ranked = volume.sort(["step", "journeys", "channel"], descending=[False, True, False]).with_columns(
        rank=pl.int_range(1, pl.len() + 1).over("step")
    )
    rare = ranked.filter(pl.col("rank") > max_nodes).select("step", "channel", rare=pl.lit(True))
    source_rare = rare.rename({"step": "source_step", "channel": "source_channel", "rare": "source_rare"})
    target_rare = rare.rename({"step": "target_step", "channel": "target_channel", "rare": "target_rare"})
    merged = (
        edges.join(source_rare, on=["source_step", "source_channel"], how="left")
        .join(target_rare, on=["target_step", "target_channel"], how="left")
        .with_columns(
            source_channel=pl.when(pl.col("source_rare").fill_null(False)).then(pl.lit(OTHER))
            .otherwise(pl.col("source_channel")),
            target_channel=pl.when(pl.col("target_rare").fill_null(False) & (pl.col("target_kind") == "step"))
            .then(pl.lit(OTHER)).otherwise(pl.col("target_channel")),
        )
    )
    keys = [c for c in _EDGE_SCHEMA if c != "journeys"]
    return merged.group_by(keys).agg(pl.col("journeys").sum())


def _node_label(step: pl.Expr, channel: pl.Expr, kind: pl.Expr, *, direction: Direction) -> pl.Expr:
    more = MORE if direction == "forward" else EARLIER
    prefix = step.cast(pl.String).str.replace("^-", "−")
    return (
        pl.when(kind == "outcome").then(_outcome(channel))
        .when(channel.is_null()).then(pl.lit(more))
        .otherwise(prefix + pl.lit(" · ") + channel)
    )


def journey_flows(engine: Engine, filters: Filters, *, steps: int = DEFAULT_STEPS,
                  direction: Direction = "forward", start: str = JOURNEY_START, purchase_channel: str = "",
                  collapse: bool = False, max_nodes: int = DEFAULT_MAX_NODES) -> pl.DataFrame:
    """Sankey links: source, target (labels), their columns and channels, and journeys.

    Forward columns are 1..steps, then "more touches" (steps + 1) for longer journeys, then the
    outcome (steps + 2). Backward columns are −steps..−1 after "earlier touches", then the purchase.
    """
    rows = engine.to_polars(flows_expr(filters, steps=steps, direction=direction, start=start,
                                       purchase_channel=purchase_channel, collapse=collapse))
    edges = _group_rare_nodes(_edges(rows, steps=steps, direction=direction), max_nodes=max_nodes)
    source_kind = pl.when(pl.col("source_channel").is_null()).then(pl.lit("more")).otherwise(pl.lit("step"))
    return (
        edges.with_columns(
            source=_node_label(pl.col("source_step"), pl.col("source_channel"), source_kind,
                               direction=direction),
            target=_node_label(pl.col("target_step"), pl.col("target_channel"), pl.col("target_kind"),
                               direction=direction),
        )
        .select("source", "target", "journeys", "source_step", "target_step", "source_channel",
                "target_channel",
                "target_kind")
        # Ties broken by label: the same view draws (and exports) its links in the same order.
        .sort(["source_step", "journeys", "source", "target"], descending=[False, True, False, False])
    )


def _journeys_with_anchor(filters: Filters, *, direction: Direction, start: str, purchase_channel: str
                          ) -> ir.Table:
    """The journeys a flow view shows, as journey rows (for paths and customer lists); whether
    repeats are collapsed does not change which journeys hold the anchor."""
    selected = _selected_journeys(filters, direction=direction, purchase_channel=purchase_channel)
    anchor_at = _parse_anchor(start) if direction == "forward" else None
    if anchor_at is None:
        return selected
    anchors = _anchor_touches(restrict_days(derived("journey_touches"), filters, column="day"), anchor_at)
    return selected.semi_join(anchors.select("journey_id"), "journey_id")


def _path_column(journeys: ir.Table, *, collapse: bool) -> ir.StringValue:
    return journeys.collapsed_path if collapse else journeys.path


def top_paths_expr(filters: Filters, *, direction: Direction = "forward", start: str = JOURNEY_START,
                   purchase_channel: str = "", collapse: bool = False, sort_by: PathSort = "journeys",
                   top: int = 20) -> ir.Table:
    """Whole-journey paths with journeys, conversions, rate, time to convert and revenue."""
    if sort_by not in PATH_SORTS:
        raise ValueError(f"sort_by must be one of {', '.join(PATH_SORTS)}")
    j = _journeys_with_anchor(filters, direction=direction, start=start, purchase_channel=purchase_channel)
    grouped = j.group_by(path=_path_column(j, collapse=collapse)).agg(
        journeys=ibis._.count(),
        conversions=j.converted.cast("int64").sum(),
        median_days_to_convert=j.days_to_convert.median(),
        p90_days_to_convert=j.days_to_convert.quantile(0.9),
        revenue=j.revenue.sum(),
    )
    rate = grouped.conversions.cast("float64") / grouped.journeys.cast("float64")
    grouped = grouped.mutate(conversion_rate=rate)
    return grouped.order_by([ibis.desc(sort_by), "path"]).limit(top)


def top_paths(engine: Engine, filters: Filters, *, direction: Direction = "forward",
              start: str = JOURNEY_START,
              purchase_channel: str = "", collapse: bool = False, sort_by: PathSort = "journeys",
              top: int = 20) -> pl.DataFrame:
    """The ``top`` paths by ``sort_by``; conversion_rate in %, times in days."""
    frame = engine.to_polars(top_paths_expr(filters, direction=direction, start=start,
                                            purchase_channel=purchase_channel, collapse=collapse,
                                            sort_by=sort_by, top=top))
    return frame.with_columns(conversion_rate=pl.col("conversion_rate") * 100).select(
        "path", "journeys", "conversions", "conversion_rate", "median_days_to_convert", "p90_days_to_convert",
        "revenue",
    )


def path_customers_expr(filters: Filters, *, path: str, direction: Direction = "forward",
                        start: str = JOURNEY_START, purchase_channel: str = "", collapse: bool = False,
                        limit: int = 100_000) -> ir.Table:
    j = _journeys_with_anchor(filters, direction=direction, start=start, purchase_channel=purchase_channel)
    j = j.filter(_path_column(j, collapse=collapse) == path)
    return j.select(
        "customer_id", "journey_id", "started_at", "ended_at", "converted", "conversion_channel", "order_id",
        "revenue", "touches",
    ).order_by([ibis.desc("ended_at"), "journey_id"]).limit(limit)


def path_customers(engine: Engine, filters: Filters, *, path: str, direction: Direction = "forward",
                   start: str = JOURNEY_START, purchase_channel: str = "", collapse: bool = False,
                   limit: int = 100_000) -> pl.DataFrame:
    """The journeys (with their customer) that followed ``path``, latest first, at most ``limit``."""
    return engine.to_polars(path_customers_expr(filters, path=path, direction=direction, start=start,
                                                purchase_channel=purchase_channel, collapse=collapse,
                                                limit=limit))


def portable_expressions() -> dict[str, ir.Expr]:
    f = Filters(start=date(2026, 1, 1), end=date(2026, 3, 31), channels=("web", "store"),
                regions=("North",), segments=("gold",))
    return {
        "journeys.flows": flows_expr(f, steps=5),
        "journeys.flows_anchor": flows_expr(f, steps=3, start=anchor("event", "email_click"), collapse=True),
        "journeys.flows_backward": flows_expr(f, steps=4, direction="backward", purchase_channel="store"),
        "journeys.top_paths": top_paths_expr(f, collapse=True, sort_by="conversion_rate"),
        "journeys.top_paths_anchor": top_paths_expr(f, start=anchor("channel", "email")),
        "journeys.path_customers": path_customers_expr(f, path="web>store"),
    }
