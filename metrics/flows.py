"""Channel flows: transitions between channels, cross-channel conversion and time between touches.

Definitions (journeys as in ``metrics.journeys``; the same global filters select whole journeys):

- transition matrix: from "start" to a journey's first channel, from each touch to the next touch
  of the same journey, and from the last touch to "purchase" or "drop-off"; with ``collapse`` a
  channel never moves to itself. A purchase with no touch in its window is start → purchase.
  Row probability = transitions / all transitions out of that row.
- cross-channel conversion: converting journeys by the channel of their first touch (or of their
  most frequent touch, ties going to the channel touched last) and the channel of the purchase.
- online → offline: share of offline (store) purchases whose journey channel (as above) is an
  online one; offline → online: share of online purchases whose journey channel is offline.
- research before purchase: share of purchases in one channel preceded by a touch of the same
  customer in another channel (of the given event types) at most N whole days before, in this
  journey or an earlier one: the window, not the journey, defines it.
- time between touches: from a touch to the next touch of its journey, by the earlier touch's
  channel (with ``collapse``, only where the channel changes); time to convert: from the journey's
  first touch to the purchase.
"""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from typing import Literal

import ibis
import ibis.expr.types as ir
import polars as pl

from data_access.derived import derived
from metrics.engine import Engine
from metrics.filters import Filters, restrict_times
from metrics.journeys import (
    DROP_OFF,
    journeys_in_view,
    mask_keys,
    of_selected_channels,
    selected_bits,
    touches_of,
)

Basis = Literal["first", "most_frequent"]
ConvertBy = Literal["conversion_channel", "first_channel"]

START = "start"
PURCHASE = "purchase"
BASES: tuple[str, ...] = ("first", "most_frequent")
ONLINE_CHANNELS = ("web", "app", "email", "social", "sms")
OFFLINE_CHANNELS = ("store",)
# Upper bounds in hours; a touch's next touch in the same journey is never more than the
# lookback window away, so the last bucket is open-ended only for unusual windows.
TIME_BUCKETS: tuple[tuple[str, float | None], ...] = (
    ("< 1 h", 1.0), ("1–24 h", 24.0), ("1–3 d", 72.0), ("3–7 d", 168.0), ("7–14 d", 336.0),
    ("14–30 d", 720.0), ("> 30 d", None),
)


def transitions_expr(filters: Filters, *, collapse: bool = True, per_journey_channels: bool = False) -> ir.Table:
    """Transition counts between states: start, channels, purchase and drop-off; per journey
    channel mask too with ``per_journey_channels`` (see ``of_selected_channels``)."""
    masks = mask_keys(per_journey_channels)
    journeys = journeys_in_view(filters)
    touched = journeys.filter(journeys.touches > 0)
    starts = journeys.group_by(
        *masks,
        from_state=ibis.literal(START),
        to_state=ibis.ifelse(journeys.touches > 0, journeys.first_channel, ibis.literal(PURCHASE)),
    ).agg(transitions=ibis._.count())
    touches = touches_of(filters)
    moves = touches.filter(touches.next_channel.notnull())
    if collapse:
        moves = moves.filter(moves.next_channel != moves.channel)
    # The touch table's channel is non-null, the other parts' states are not: a union needs one type.
    between = moves.group_by(*masks, from_state=moves.channel.cast("string"), to_state=moves.next_channel).agg(
        transitions=ibis._.count()
    )
    ends = touched.group_by(
        *masks,
        from_state=touched.last_channel,
        to_state=ibis.ifelse(touched.converted, ibis.literal(PURCHASE), ibis.literal(DROP_OFF)),
    ).agg(transitions=ibis._.count())
    return starts.union(between).union(ends)


def transitions(engine: Engine, filters: Filters, *, collapse: bool = True) -> pl.DataFrame:
    """from_state, to_state, transitions and row_probability (in %), every state pair observed."""
    # Counted once over every channel per journey mask and narrowed here: a channel change runs
    # no query.
    frame = engine.to_polars(transitions_expr(filters.every_channel(), collapse=collapse, per_journey_channels=True))
    frame = of_selected_channels(frame, selected_bits(engine, filters), by=["from_state", "to_state"])
    return frame.with_columns(
        row_probability=pl.col("transitions") / pl.col("transitions").sum().over("from_state") * 100
    ).sort(["from_state", "to_state"])


def state_order(states: list[str]) -> list[str]:
    """start first, then channels alphabetically, then purchase and drop-off."""
    ends = [PURCHASE, DROP_OFF]
    channels = sorted(s for s in set(states) if s not in (START, *ends))
    return [s for s in (START, *channels, *ends) if s in states]


def _journey_channel(journeys: ir.Table, touches: ir.Table, *, basis: Basis) -> ir.Table:
    """journey_id and the channel that characterises the journey (first or most frequent touch)."""
    if basis == "first":
        return journeys.select("journey_id", journey_channel=journeys.first_channel)
    if basis != "most_frequent":
        raise ValueError(f"basis must be one of {', '.join(BASES)}")
    per_channel = touches.group_by("journey_id", "channel").agg(
        touches=ibis._.count(), last_at=touches.occurred_at.max()
    )
    best_first = ibis.window(
        group_by=per_channel.journey_id,
        order_by=[ibis.desc(per_channel.touches), ibis.desc(per_channel.last_at), per_channel.channel],
    )
    ranked = per_channel.mutate(rank=ibis.row_number().over(best_first))
    return ranked.filter(ranked.rank == 0).select("journey_id", journey_channel=ranked.channel)


def cross_channel_expr(filters: Filters, *, basis: Basis = "first", per_journey_channels: bool = False) -> ir.Table:
    """Converting journeys per month, journey channel and purchase channel, with revenue; per
    journey channel mask too with ``per_journey_channels``."""
    journeys = journeys_in_view(filters)
    converting = journeys.filter(journeys.converted & (journeys.touches > 0))
    touches = touches_of(filters, converting)
    labelled = converting.join(_journey_channel(converting, touches, basis=basis), "journey_id")
    return labelled.group_by(
        *mask_keys(per_journey_channels),
        month=labelled.day.truncate("M"),
        journey_channel=labelled.journey_channel,
        purchase_channel=labelled.conversion_channel,
    ).agg(conversions=ibis._.count(), revenue=labelled.revenue.sum())


def cross_channel_monthly(engine: Engine, filters: Filters, *, basis: Basis = "first") -> pl.DataFrame:
    """:func:`cross_channel_expr`'s rows: what both the matrix and the online/offline shares read."""
    rows = engine.to_polars(cross_channel_expr(filters.every_channel(), basis=basis, per_journey_channels=True))
    return of_selected_channels(rows, selected_bits(engine, filters),
                                by=["month", "journey_channel", "purchase_channel"])


def cross_channel(engine: Engine, filters: Filters, *, basis: Basis = "first") -> pl.DataFrame:
    """journey_channel × purchase_channel: conversions, revenue, row share (in %) and share of all."""
    return cross_channel_matrix(cross_channel_monthly(engine, filters, basis=basis))


def cross_channel_matrix(monthly: pl.DataFrame) -> pl.DataFrame:
    """:func:`cross_channel` from :func:`cross_channel_monthly`'s rows."""
    matrix = monthly.group_by("journey_channel", "purchase_channel").agg(
        pl.col("conversions").sum(), pl.col("revenue").sum()
    )
    return matrix.with_columns(
        row_share=pl.col("conversions") / pl.col("conversions").sum().over("journey_channel") * 100,
        share=pl.col("conversions") / pl.col("conversions").sum() * 100,
    ).sort(["journey_channel", "purchase_channel"])


def _share(part: pl.Expr, whole: pl.Expr) -> pl.Expr:
    return pl.when(whole > 0).then(part / whole * 100).otherwise(None)


def online_offline(engine: Engine, filters: Filters, *, basis: Basis = "first") -> pl.DataFrame:
    """Per month and for the whole period (month null): online → offline and offline → online shares.

    Columns: month, offline_purchases, online_to_offline (those with an online journey channel),
    online_to_offline_share (%), online_purchases, offline_to_online, offline_to_online_share (%).
    """
    return online_offline_shares(cross_channel_monthly(engine, filters, basis=basis))


def online_offline_shares(monthly: pl.DataFrame) -> pl.DataFrame:
    """:func:`online_offline` from :func:`cross_channel_monthly`'s rows."""
    flagged = monthly.with_columns(
        bought_offline=pl.col("purchase_channel").is_in(OFFLINE_CHANNELS),
        bought_online=pl.col("purchase_channel").is_in(ONLINE_CHANNELS),
        from_online=pl.col("journey_channel").is_in(ONLINE_CHANNELS),
        from_offline=pl.col("journey_channel").is_in(OFFLINE_CHANNELS),
    )
    sums = [
        pl.col("conversions").filter(pl.col("bought_offline")).sum().alias("offline_purchases"),
        pl.col("conversions").filter(pl.col("bought_offline") & pl.col("from_online")).sum()
        .alias("online_to_offline"),
        pl.col("conversions").filter(pl.col("bought_online")).sum().alias("online_purchases"),
        pl.col("conversions").filter(pl.col("bought_online") & pl.col("from_offline")).sum()
        .alias("offline_to_online"),
    ]
    by_month = flagged.group_by("month").agg(sums).sort("month")
    total = flagged.select(sums).with_columns(month=pl.lit(None, pl.Date))
    both = pl.concat([by_month, total.select(by_month.columns)])
    return both.with_columns(
        online_to_offline_share=_share(pl.col("online_to_offline"), pl.col("offline_purchases")),
        offline_to_online_share=_share(pl.col("offline_to_online"), pl.col("online_purchases")),
    ).select("month", "offline_purchases", "online_to_offline", "online_to_offline_share",
             "online_purchases", "offline_to_online", "offline_to_online_share")


def research_expr(filters: Filters, *, purchase_channel: str, touch_channel: str, within_days: int,
                  event_types: tuple[str, ...] = ()) -> ir.Table:
    journeys = journeys_in_view(filters)
    purchases = journeys.filter(journeys.converted & (journeys.conversion_channel == purchase_channel))
    # Touches of any journey count, so the range is widened by the window, not read from touch days.
    widened = filters if filters.start is None else dataclasses.replace(
        filters, start=filters.start - timedelta(days=within_days))
    touches = restrict_times(derived("journey_touches"), widened)
    touches = touches.filter(touches.channel == touch_channel)
    if event_types:
        touches = touches.filter(touches.event_type.isin(event_types))
    touches = touches.select(touch_customer=touches.customer_id, touched_at=touches.occurred_at)
    window = ibis.interval(days=within_days)
    researched = purchases.join(
        touches,
        [purchases.customer_id == touches.touch_customer,
         touches.touched_at <= purchases.ended_at,
         touches.touched_at >= purchases.ended_at - window],
    )
    # Distinct purchases counted over distinct rows: exact on every engine. Per journey channel
    # mask, for research_share to narrow to any channel selection.
    researched = researched.select("journey_id", "journey_channels").distinct()
    researched = researched.group_by("journey_channels").agg(researched=ibis._.count())
    counts = purchases.group_by("journey_channels").agg(purchases=ibis._.count()).left_join(
        researched, "journey_channels")
    return counts.select("journey_channels", "purchases", researched=counts.researched.fill_null(0))


def research_share(engine: Engine, filters: Filters, *, purchase_channel: str = "store",
                   touch_channel: str = "web", within_days: int = 7, event_types: tuple[str, ...] = ()
                   ) -> pl.DataFrame:
    """One row: purchases in ``purchase_channel``, how many had a ``touch_channel`` touch within
    ``within_days`` days before, and that share (%)."""
    rows = engine.to_polars(research_expr(filters.every_channel(), purchase_channel=purchase_channel,
                                          touch_channel=touch_channel,
                                          within_days=within_days, event_types=event_types))
    frame = of_selected_channels(rows, selected_bits(engine, filters), by=[])
    return frame.with_columns(share=_share(pl.col("researched"), pl.col("purchases")))


def _bucket_order(hours: ir.FloatingValue) -> ir.IntegerValue:
    """The number of the TIME_BUCKETS bucket holding ``hours``."""
    return ibis.cases(*[(hours < ibis.literal(bound).cast("float64"), i) for i, (_, bound) in
                        enumerate(TIME_BUCKETS) if bound is not None], else_=len(TIME_BUCKETS) - 1)


def _distribution(table: ir.Table, *, channel: ir.StringValue, hours: ir.FloatingValue) -> ir.Table:
    # Grouped by the bucket's number, labelled afterwards: a string per gap cost 0.6 s of 1.5 s
    # for 10 million gaps.
    counts = table.group_by(channel=channel, bucket_order=_bucket_order(hours)).agg(count=ibis._.count())
    medians = table.group_by(channel=channel).agg(median_hours=hours.median())
    return counts.join(medians, "channel")


def time_between_expr(filters: Filters, *, collapse: bool = False) -> ir.Table:
    touches = touches_of(filters)
    gaps = touches.filter(touches.next_channel.notnull())
    if collapse:
        gaps = gaps.filter(gaps.next_channel != gaps.channel)
    return _distribution(gaps, channel=gaps.channel, hours=gaps.hours_to_next)


def time_to_convert_expr(filters: Filters, *, by: ConvertBy = "conversion_channel") -> ir.Table:
    if by not in ("conversion_channel", "first_channel"):
        raise ValueError("by must be conversion_channel or first_channel")
    journeys = journeys_in_view(filters)
    converting = journeys.filter(journeys.converted & (journeys.touches > 0))
    return _distribution(converting, channel=converting[by], hours=converting.days_to_convert * 24)


_BUCKET_LABELS = pl.DataFrame({"bucket_order": range(len(TIME_BUCKETS)), "bucket": [b for b, _ in TIME_BUCKETS]},
                              schema={"bucket_order": pl.Int64, "bucket": pl.String})


def _shares(frame: pl.DataFrame) -> pl.DataFrame:
    """Label the buckets and add each one's share (%) of its channel's count."""
    labelled = frame.cast({"bucket_order": pl.Int64}).join(_BUCKET_LABELS, on="bucket_order", how="left")
    return labelled.select(
        "channel", "bucket", "bucket_order", "count", "median_hours",
        share=pl.col("count") / pl.col("count").sum().over("channel") * 100,
    ).sort(["channel", "bucket_order"])


def time_between_touches(engine: Engine, filters: Filters, *, collapse: bool = False) -> pl.DataFrame:
    """channel, bucket, count, share (% of the channel's gaps) and median_hours per channel."""
    return _shares(engine.to_polars(time_between_expr(filters, collapse=collapse)))


def time_to_convert(engine: Engine, filters: Filters, *,
                    by: ConvertBy = "conversion_channel") -> pl.DataFrame:
    """Converting journeys by ``by`` channel and time bucket, with shares and median hours."""
    return _shares(engine.to_polars(time_to_convert_expr(filters, by=by)))


def portable_expressions() -> dict[str, ir.Expr]:
    f = Filters(start=date(2026, 1, 1), end=date(2026, 3, 31), channels=("web", "store"),
                regions=("North",), segments=("gold",))
    return {
        "flows.transitions": transitions_expr(f),
        "flows.transitions_raw": transitions_expr(f, collapse=False),
        "flows.cross_channel": cross_channel_expr(f),
        "flows.cross_channel_most": cross_channel_expr(f, basis="most_frequent"),
        "flows.research": research_expr(f, purchase_channel="store", touch_channel="web", within_days=7,
                                        event_types=("page_view", "product_view")),
        "flows.time_between": time_between_expr(f, collapse=True),
        "flows.time_to_convert": time_to_convert_expr(f, by="first_channel"),
    }
