"""Overview KPIs, their change against the previous period, trends and channel mix.

Definitions (shown in the UI next to the numbers):

- revenue: net revenue, purchases minus refunds, in the store's currency;
- orders: purchase events; AOV: gross purchase revenue / orders;
- active customers: customers with at least one event in the period (in the selected channels);
- historical CLTV: mean net revenue to date per customer with a purchase by the period's last day
  (the Customer value page's "Historical CLTV" as of that day);
- retention: share of the previous period's active customers who are active again in this one;
- repeat rate (repeat purchase rate): share of the period's purchasers with two or more orders in it;
- omnichannel share: share of active customers with events in two or more channels;
- CSAT: share of 4–5 ratings among 1–5 survey responses; NPS: % promoters (9–10) − % detractors (0–6).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

import ibis
import ibis.expr.types as ir
import polars as pl
import polars.selectors as cs

from data_access.derived import derived
from data_access.derived_retention import (
    all_channels_period_table,
    bit_or,
    channel_mask,
    period_end,
    period_number,
    period_start,
    period_table,
)
from metrics.clv import resolve_as_of, stored_totals
from metrics.engine import Engine
from metrics.filters import (
    Filters,
    apply_filters,
    keep_channels,
    restrict_channels,
    restrict_customers,
    restrict_days,
)

Grain = Literal["day", "week", "month"]

ADDITIVE = (
    "orders", "gross_revenue", "refunds", "csat_responses", "csat_positive",
    "nps_responses", "nps_promoters", "nps_detractors",
)


@dataclass(frozen=True)
class Kpi:
    key: str
    label: str
    unit: Literal["currency", "count", "percent", "points"]
    definition: str


# The executive six first (DESIGN.md: revenue, active customers, CLTV, retention, CSAT,
# omnichannel share), then the figures behind them.
KPIS = (
    Kpi("revenue", "Revenue", "currency", "Net revenue: purchases minus refunds."),
    Kpi("active_customers", "Active customers", "count", "Customers with at least one event."),
    Kpi("historical_clv", "Historical CLTV", "currency",
        "Mean net revenue to date (purchases minus refunds, whole history up to the period's last day) "
        "per customer with a purchase by then."),
    Kpi("retention", "Retention", "percent",
        "Share of the previous period's active customers who were active again in this period."),
    Kpi("csat", "CSAT", "percent", "Share of 4–5 ratings among 1–5 survey responses."),
    Kpi("omnichannel_share", "Omnichannel share", "percent",
        "Share of active customers with events in two or more channels."),
    Kpi("orders", "Orders", "count", "Number of purchases."),
    Kpi("aov", "Average order value", "currency", "Gross purchase revenue divided by orders."),
    Kpi("repeat_rate", "Repeat rate", "percent",
        "Share of the period's purchasers who placed two or more orders in it."),
    Kpi("nps", "NPS", "points", "% promoters (9–10) minus % detractors (0–6), from −100 to 100."),
)

# The count queries name the period before the filtered one's counts with this in front.
PREVIOUS = "previous_"


def channel_sums_expr(filters: Filters) -> ir.Table:
    """The additive totals (ADDITIVE) of the filtered period, one row per channel."""
    activity = apply_filters(derived("daily_activity"), filters, day_column="day")
    return activity.group_by("channel").agg(**{column: activity[column].sum() for column in ADDITIVE})


def _periods(filters: Filters) -> list[Filters]:
    """The filtered period and, with a date range, the two equally long periods before it."""
    if filters.days is None:
        return [filters]
    return [filters, filters.previous_period(), filters.previous_period().previous_period()]


def _prefix(offset: int) -> str:
    return PREVIOUS if offset else ""


def customer_counts_expr(filters: Filters) -> ir.Table:
    """One row of distinct customer counts for the filtered period and, with a date range, the
    period before it (the same names with PREVIOUS in front): ``active_customers``,
    ``omnichannel_customers``, ``earlier_customers`` (active in the period before) and
    ``returning_customers`` (active in both); the last two are null without a date range.

    The three periods' rows are grouped by customer once, into a mask of the periods they were
    active in and the channel masks of the first two: at a million customers, 90 days, with or
    without a channel filter, 0.36 s, where counting each period's customers and the returning
    ones apart took 0.53–0.60 s.
    """
    periods = _periods(filters)
    rows = None
    for offset, period in enumerate(periods):
        tagged = _active_rows(period).mutate(offset=ibis.literal(offset, "int8"))
        rows = tagged if rows is None else rows.union(tagged)
    shown = range(min(len(periods), 2))
    # Distinct counts come from grouping by customer: exact on every engine (ClickHouse's nunique
    # is not). A customer used two or more channels exactly when their channel mask has two bits.
    customers = rows.group_by("customer_id").agg(
        periods=bit_or(ibis.literal(1, "int64") << rows.offset.cast("int64")),
        **{f"channels_{k}": bit_or(ibis.ifelse(rows.offset == k, rows.channels, 0)) for k in shown},
    )

    def active_in(*offsets: int) -> ir.IntegerScalar:
        mask = sum(1 << offset for offset in offsets)
        return ((customers.periods & mask) == mask).cast("int64").sum()

    counts = {}
    for k in shown:
        channels = customers[f"channels_{k}"]
        earlier = k + 1 < len(periods)
        counts |= {
            f"{_prefix(k)}active_customers": active_in(k),
            f"{_prefix(k)}omnichannel_customers": ((channels & (channels - 1)) != 0).cast("int64").sum(),
            f"{_prefix(k)}returning_customers": active_in(k, k + 1) if earlier else ibis.null("int64"),
            f"{_prefix(k)}earlier_customers": active_in(k + 1) if earlier else ibis.null("int64"),
        }
    return customers.agg(**counts)


def _purchase_days(filters: Filters) -> ir.Table:
    """Purchase-day rows (customer_id, day, orders, net …) of the selected customers and channels:
    one per customer and day without a channel filter, per customer, day and channel with one."""
    days = derived("customer_purchase_days" if filters.channels else "customer_purchase_days_all_channels")
    return restrict_customers(restrict_channels(days, filters), filters)


def purchaser_counts_expr(filters: Filters) -> ir.Table:
    """One row: ``purchasers`` and ``repeat_purchasers`` (two or more orders) of the filtered
    period and, with a date range, of the period before it (PREVIOUS in front), from the purchase
    days (a tenth of the activity rows)."""
    days = _purchase_days(filters)
    if filters.days is None:
        days = restrict_days(days, filters)
        in_period = [ibis.literal(True)]
    else:
        in_period = [days.day.between(ibis.literal(p.start), ibis.literal(p.end)) for p in _periods(filters)[:2]]
        days = days.filter(ibis.or_(*in_period))
    customers = days.group_by("customer_id").agg(
        **{f"orders_{k}": ibis.ifelse(where, days.orders, 0).sum() for k, where in enumerate(in_period)})
    counts = {}
    for k in range(len(in_period)):
        orders = customers[f"orders_{k}"]
        counts[f"{_prefix(k)}purchasers"] = (orders > 0).cast("int64").sum()
        counts[f"{_prefix(k)}repeat_purchasers"] = (orders >= 2).cast("int64").sum()
    return customers.agg(**counts)


def historical_clv_expr(filters: Filters) -> ir.Table:
    """One row: ``buyers`` (customers with a purchase by the period's last day, in the selected
    channels) and their ``historical_revenue`` (net, whole history to that day), as the Customer
    value page counts them (:func:`metrics.clv.summary_expr`); with a date range, the same as of
    the previous period's last day, PREVIOUS in front. The start of a range does not narrow them.

    A buyer's revenue to a day is their stored all-history total less what came after that day,
    so only the purchase days after the earlier last day are grouped: at a million customers,
    90 days with one channel removed, 0.1 s for both days, where the page's summary as of the
    earlier day alone regroups the whole history of everyone who bought since (0.19 s).
    """
    if filters.end is None:
        raise ValueError("historical CLTV is measured as of a last day: give the range an end")
    ends = [period.end for period in _periods(filters)[:2]]
    buyers = stored_totals(filters, columns=["customer_id", "first_purchase", "historical_revenue"])
    buyers = buyers.filter(buyers.first_purchase.notnull())
    days = _purchase_days(filters)
    days = days.filter(days.day > ibis.literal(min(ends)))
    later = days.group_by("customer_id").agg(
        **{f"after_{k}": days.net.sum(where=days.day > ibis.literal(end)) for k, end in enumerate(ends)})
    joined = buyers.left_join(later, "customer_id")
    value = {}
    for k, end in enumerate(ends):
        bought = joined.first_purchase <= ibis.literal(end)
        to_date = joined.historical_revenue - joined[f"after_{k}"].fill_null(0)
        value[f"{_prefix(k)}buyers"] = bought.cast("int64").sum()
        value[f"{_prefix(k)}historical_revenue"] = to_date.sum(where=bought)
    return joined.agg(**value)


def _active_rows(filters: Filters) -> ir.Table:
    """customer_id and channel mask rows that, ORed per customer, give each customer active in the
    period the mask of the selected channels they used.

    Whole weeks come from the all-channels weekly roll-up (a channel filter narrows each week's
    mask) and only the days around them from the daily roll-up: at a million customers, 90 days
    over all channels read 1.7 million rows instead of 4.7 million.
    """
    activity = restrict_customers(restrict_days(derived("daily_activity"), filters), filters)
    activity = activity.join(restrict_channels(derived("channel_bits"), filters), "channel")
    # The daily roll-up declares customer_id non-null and the weekly one does not: every period's
    # rows get one type, so that periods with and without whole weeks can be stacked.
    days = activity.select("day", customer_id=activity.customer_id.cast("string"), channels=activity.bit)
    weeks = derived(all_channels_period_table("week"))
    if filters.channels:
        selected = channel_mask(filters.channels, bits=filters.bits)
        weeks = weeks.filter((weeks.channels & selected) != 0).mutate(channels=weeks.channels & selected)
    split = _at_whole_weeks(filters, days, weeks)
    if split is None:
        return days.select("customer_id", "channels")
    weeks, days = split
    return weeks.select("customer_id", "channels").union(days.select("customer_id", "channels"))


def _at_whole_weeks(filters: Filters, activity: ir.Table, weeks: ir.Table) -> tuple[ir.Table, ir.Table] | None:
    """The rows of a weekly roll-up (already narrowed to the selected channels) for the weeks
    wholly inside the range, and the daily activity of the days around them; None when no whole
    week is inside."""
    first, last = _whole_periods(filters, "week")
    if first is None or last is None or first > last:
        return None
    weeks = restrict_customers(weeks, filters)
    weeks = weeks.filter((weeks.period >= ibis.literal(first)) & (weeks.period <= ibis.literal(last)))
    days = activity.filter((activity.day < ibis.literal(first)) | (activity.day > ibis.literal(last + timedelta(days=6))))
    return weeks, days


def _ratio(numerator: pl.Expr, denominator: pl.Expr) -> pl.Expr:
    return pl.when(denominator > 0).then(numerator / denominator).otherwise(None)


def _kpi_values(totals: pl.DataFrame) -> pl.DataFrame:
    """Turn the totals row into one value per KPI (null where the base is empty)."""
    t = totals.with_columns(pl.all().fill_null(0))
    values = t.select(
        revenue=pl.col("gross_revenue") + pl.col("refunds"),
        active_customers=pl.col("active_customers").cast(pl.Float64),
        historical_clv=_ratio(pl.col("historical_revenue"), pl.col("buyers")),
        retention=_ratio(pl.col("returning_customers"), pl.col("earlier_customers")) * 100,
        csat=_ratio(pl.col("csat_positive"), pl.col("csat_responses")) * 100,
        omnichannel_share=_ratio(pl.col("omnichannel_customers"), pl.col("active_customers")) * 100,
        orders=pl.col("orders").cast(pl.Float64),
        aov=_ratio(pl.col("gross_revenue"), pl.col("orders")),
        repeat_rate=_ratio(pl.col("repeat_purchasers"), pl.col("purchasers")) * 100,
        nps=_ratio(pl.col("nps_promoters") - pl.col("nps_detractors"), pl.col("nps_responses")) * 100,
    )
    return values.unpivot(variable_name="kpi", value_name="value")


def _period_totals(engine: Engine, filters: Filters, counts: pl.DataFrame) -> pl.DataFrame:
    """One row of additive totals for the filtered period, next to its ``counts`` (distinct
    customers and the historical CLTV's sums)."""
    # A channel's sums do not depend on the other channels selected: one result over every
    # channel serves every selection (data_access.cached keeps it), narrowed here.
    sums = keep_channels(engine.to_polars(channel_sums_expr(filters.every_channel())), filters)
    return pl.concat([counts, sums.select(pl.col(ADDITIVE).sum())], how="horizontal")


def kpis(engine: Engine, filters: Filters) -> pl.DataFrame:
    """KPI values for the period and the equally long previous period, with their change.

    Returns one row per KPI in display order: kpi, label, unit, value, previous, change
    (value − previous) and change_pct (relative change in %, null when previous is 0 or null).
    Without a date range there is no previous period: those columns and the retention are null,
    and the historical CLTV is as of the last day with data.
    """
    if filters.end is None:
        # An empty store has no last day: nobody has bought by the first day there is.
        filters = dataclasses.replace(filters, end=resolve_as_of(engine, filters) or date.min)
    queries = (customer_counts_expr(filters), purchaser_counts_expr(filters), historical_clv_expr(filters))
    counts = pl.concat([engine.to_polars(query) for query in queries], how="horizontal")
    current = _kpi_values(_period_totals(engine, filters, counts.select(~cs.starts_with(PREVIOUS))))
    if filters.days is not None:
        earlier = counts.select(cs.starts_with(PREVIOUS)).rename(lambda name: name.removeprefix(PREVIOUS))
        previous = _kpi_values(_period_totals(engine, filters.previous_period(), earlier))
    else:
        previous = current.with_columns(value=pl.lit(None, pl.Float64))
    catalogue = pl.DataFrame(
        {
            "kpi": [k.key for k in KPIS],
            "label": [k.label for k in KPIS],
            "unit": [k.unit for k in KPIS],
            "definition": [k.definition for k in KPIS],
        }
    )
    return (
        catalogue.join(current, on="kpi", how="left", maintain_order="left")
        .join(previous.rename({"value": "previous"}), on="kpi", how="left", maintain_order="left")
        .with_columns(change=pl.col("value") - pl.col("previous"))
        .with_columns(
            change_pct=pl.when(pl.col("previous").abs() > 0)
            .then(pl.col("change") / pl.col("previous").abs() * 100)
            .otherwise(None)
        )
        .select("kpi", "label", "unit", "value", "previous", "change", "change_pct", "definition")
    )


def grain_for(filters: Filters) -> Grain:
    """A readable number of points: days up to ~6 weeks, weeks up to ~1 year, then months."""
    if filters.days is not None and filters.days <= 45:
        return "day"
    if filters.days is not None and filters.days <= 370:
        return "week"
    return "month"


def _period_start(day: ir.DateValue, grain: Grain) -> ir.DateValue:
    return day if grain == "day" else day.truncate({"week": "W", "month": "M"}[grain])


def _activity(filters: Filters, *, grain: Grain | None = None) -> ir.Table:
    activity = apply_filters(derived("daily_activity"), filters, day_column="day")
    if grain is not None:
        activity = activity.mutate(period=_period_start(activity.day, grain))
    return activity


def _whole_periods(filters: Filters, grain: Grain) -> tuple[date | None, date | None]:
    """First days of the first and last weeks or months wholly inside the date range (None: the
    range is open on that side). The first can come after the last: no whole period."""
    first = last = None
    if filters.start is not None:
        number = period_number(filters.start, grain)
        first = period_start(number if period_start(number, grain) == filters.start else number + 1, grain)
    if filters.end is not None:
        number = period_number(filters.end, grain)
        last = period_start(number if period_end(number, grain) == filters.end else number - 1, grain)
    return first, last


def _count_customers(rows: ir.Table, by: list[str], *, distinct: bool = True) -> ir.Table:
    if distinct:
        rows = rows.select(*by, "customer_id").distinct()
    return rows.group_by(by).agg(active_customers=rows.count())


def active_customers_expr(filters: Filters, *, grain: Grain, by_channel: bool) -> ir.Table:
    """Distinct active customers per period (and channel), period = its first day.

    The customer-period roll-ups hold one row per customer and week or month (and channel), so a
    period wholly inside the date range is a row count there; only the periods the range cuts at
    either end group the days of the daily roll-up by customer. At a million customers, 90 days
    by week, the trend's two queries take 0.8–1.0 s instead of 2.5 s.
    """
    by = ["period", "channel"] if by_channel else ["period"]
    activity = _activity(filters, grain=grain)
    if grain == "day":  # at most ~45 days (grain_for), and no roll-up by day
        return _count_customers(activity, by, distinct=not by_channel)
    first, last = _whole_periods(filters, grain)
    if first is not None and last is not None and first > last:
        return _count_customers(activity, by)
    if by_channel:
        rolled = restrict_channels(derived(period_table(grain)), filters)
    else:
        # One row per customer and period; a channel filter is a test of the period's channel mask.
        rolled = derived(all_channels_period_table(grain))
        if filters.channels:
            rolled = rolled.filter((rolled.channels & channel_mask(filters.channels, bits=filters.bits)) != 0)
    rolled = restrict_customers(rolled, filters)
    cut = ibis.literal(False)
    if first is not None:
        rolled = rolled.filter(rolled.period >= ibis.literal(first))
        cut |= activity.period < ibis.literal(first)
    if last is not None:
        rolled = rolled.filter(rolled.period <= ibis.literal(last))
        cut |= activity.period > ibis.literal(last)
    # Both roll-ups hold one row per customer and period (and channel): a row is a customer.
    whole = _count_customers(rolled, by, distinct=False)
    return whole.union(_count_customers(activity.filter(cut), by))


def _totals(activity: ir.Table, by: list[str]) -> ir.Table:
    return activity.group_by(by).agg(
        revenue=(activity.gross_revenue + activity.refunds).sum(),
        orders=activity.orders.sum(),
        touches=activity.touches.sum(),
    )


def trend_expr(filters: Filters, *, grain: Grain) -> ir.Table:
    """Revenue, orders and active customers per period and channel (period = its first day)."""
    by = ["period", "channel"]
    totals = _totals(_activity(filters, grain=grain), by)
    return totals.join(active_customers_expr(filters, grain=grain, by_channel=True), by).order_by(by)


def active_total_expr(filters: Filters, *, grain: Grain) -> ir.Table:
    """Distinct active customers per period over all selected channels (not a sum of channels)."""
    return active_customers_expr(filters, grain=grain, by_channel=False).order_by("period")


def _period_end(period: pl.Expr, grain: Grain) -> pl.Expr:
    if grain == "day":
        return period
    if grain == "week":
        return period + pl.duration(days=6)
    return period.dt.month_end()


def trend(engine: Engine, filters: Filters, *, grain: Grain | None = None) -> pl.DataFrame:
    """Per period and channel, plus a channel "all" row holding the distinct total.

    ``complete`` is false for a period the date range cuts (a first or last partial week or
    month), so charts do not show a cut period as a drop.
    """
    grain = grain or grain_for(filters)
    # A channel's rows do not depend on the other channels selected (see _period_totals).
    by_channel = keep_channels(engine.to_polars(trend_expr(filters.every_channel(), grain=grain)), filters)
    revenue = by_channel.group_by("period").agg(pl.col("revenue").sum())
    total = engine.to_polars(active_total_expr(filters, grain=grain)).join(revenue, on="period", how="left")
    total = total.with_columns(channel=pl.lit("all"), orders=pl.lit(None, pl.Int64))
    columns = ["period", "channel", "revenue", "orders", "active_customers"]
    types = {"orders": pl.Int64, "active_customers": pl.Int64}
    result = pl.concat([by_channel.select(columns).cast(types), total.select(columns).cast(types)])
    start_ok = pl.lit(True) if filters.start is None else pl.col("period") >= pl.lit(filters.start)
    end_ok = pl.lit(True) if filters.end is None else _period_end(pl.col("period"), grain) <= pl.lit(filters.end)
    return result.with_columns(complete=start_ok & end_ok).sort(["period", "channel"])


def channel_mix_expr(filters: Filters) -> ir.Table:
    """Revenue, touches and customers per channel in the period."""
    activity = _activity(filters)
    split = _at_whole_weeks(filters, activity, restrict_channels(derived(period_table("week")), filters))
    # Customers per channel from the weekly rows of whole weeks and the days around them.
    seen = activity if split is None else split[0].select("customer_id", "channel").union(
        split[1].select("customer_id", "channel"))
    mix = _totals(activity, ["channel"]).join(_count_customers(seen, ["channel"]), "channel")
    return mix.rename(customers="active_customers").order_by("channel")


def channel_mix(engine: Engine, filters: Filters) -> pl.DataFrame:
    """Revenue and touches per channel with each channel's share of the total, in %."""
    # A channel's revenue, touches and customers do not depend on the other channels selected.
    mix = keep_channels(engine.to_polars(channel_mix_expr(filters.every_channel())), filters)
    return mix.with_columns(
        revenue_share=_ratio(pl.col("revenue"), pl.col("revenue").sum()) * 100,
        touch_share=_ratio(pl.col("touches").cast(pl.Float64), pl.col("touches").sum()) * 100,
    ).sort("revenue", descending=True)


def portable_expressions() -> dict[str, ir.Expr]:
    """Every expression this module runs, with every filter set, for the dialect compile test."""
    f = Filters(start=date(2026, 1, 1), end=date(2026, 3, 31), channels=("web", "store"),
                regions=("North",), segments=("gold",))
    return {
        "kpis.channel_sums": channel_sums_expr(f),
        "kpis.customer_counts": customer_counts_expr(f),
        "kpis.customer_counts_all_time": customer_counts_expr(Filters(channels=f.channels)),
        "kpis.purchaser_counts": purchaser_counts_expr(f),
        "kpis.purchaser_counts_all_time": purchaser_counts_expr(Filters(regions=f.regions)),
        "kpis.historical_clv": historical_clv_expr(f),
        "kpis.trend": trend_expr(f, grain="week"),
        "kpis.trend_month": trend_expr(f, grain="month"),
        "kpis.active_total": active_total_expr(f, grain="day"),
        "kpis.active_total_week": active_total_expr(f, grain="week"),
        "kpis.active_total_all_channels": active_total_expr(Filters(start=f.start, end=f.end), grain="month"),
        "kpis.channel_mix": channel_mix_expr(f),
    }

