"""Retention cohorts, lifecycle states and churn (DESIGN.md §3), from the customer-period roll-ups.

Definitions (shown in the UI next to each chart):

- A customer's *qualifying activity* is any event, or purchases only, in the selected channels
  (the global channel filter, narrowed further by the page's own channel choice).
- *Cohort*: "first-time" puts each customer in the calendar period (ISO week from Monday, or
  month) of their first qualifying activity ever; "recurring" puts them in every period with a
  qualifying activity, so one customer can start many cohorts.
- *Returned in period N*: "on" means active in exactly the N-th period after the cohort's;
  "on or after" means active in period N or any later one. Rates are % of the cohort's size.
- A period is *complete* when its last day is on or before the last day with data; incomplete
  cells are flagged, never shown as a drop.
- The *date range* picks the cohorts: those whose period overlaps the range. Each cohort is then
  followed up to the last day with data. Regions and segments restrict the customers.
- *Lifecycle* per period: new (first qualifying period ever), returning (also active the period
  before), resurrecting (active again after one or more inactive periods), dormant (active the
  period before, not in this one).
- *Churned*: no qualifying activity in the last N days with data. The base is the customers with
  qualifying activity in the date range up to N days before the last day with data, so every one
  of them has had N days to come back.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Literal

import ibis
import ibis.expr.types as ir
import polars as pl

from data_access.derived import derived
from data_access.derived_retention import (
    WEEK_ORIGIN,
    all_channels_period_table,
    channel_mask,
    period_end,
    period_number,
)
from metrics.catalog import bounds_expr
from metrics.engine import Engine
from metrics.filters import Filters, restrict_channels, restrict_customers
from metrics.stats import with_wilson

Period = Literal["week", "month"]
CohortType = Literal["first-time", "recurring"]
Returning = Literal["on", "on-or-after"]
Activity = Literal["any", "purchase"]

PERIODS: tuple[str, ...] = ("week", "month")
COHORT_TYPES: tuple[str, ...] = ("first-time", "recurring")
RETURNING: tuple[str, ...] = ("on", "on-or-after")
ACTIVITIES: tuple[str, ...] = ("any", "purchase")
# Customer attributes a retention table can be split by (the allow-list for UI and CLI choices).
BREAKDOWNS: dict[str, str] = {
    "none": "None",
    "acquisition-channel": "Acquisition channel",
    "region": "Region",
    "segment": "Segment",
    "channels-used": "Number of channels used",
}
# The CSAT page splits by the band of each customer's latest survey answer.
CSAT_BAND = "csat-band"
CSAT_BANDS: tuple[str, ...] = ("1-2", "3", "4-5")
ALL_CUSTOMERS = "all customers"
LIFECYCLE_STATES: tuple[str, ...] = ("new", "returning", "resurrecting", "dormant")
CHURN_THRESHOLDS: tuple[int, ...] = (30, 60, 90, 180, 365)

CELL_SCHEMA = {
    "group": pl.String,
    "cohort": pl.Date,
    "period_index": pl.Int64,
    "cohort_size": pl.Int64,
    "retained": pl.Int64,
    "retention_pct": pl.Float64,
    "complete": pl.Boolean,
}


def check_option(name: str, value: object, allowed: tuple | dict) -> None:
    """Refuse a value outside the allow-list with a message that lists the choices."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(str, allowed))}, not {value!r}")


def _check(
    *,
    period: str,
    activity: str,
    cohort_type: str = "first-time",
    returning: str = "on",
    breakdown: str = "none",
) -> None:
    check_option("period", period, PERIODS)
    check_option("activity", activity, ACTIVITIES)
    check_option("cohort type", cohort_type, COHORT_TYPES)
    check_option("returning", returning, RETURNING)
    check_option("breakdown", breakdown, (*BREAKDOWNS, CSAT_BAND))


def selected_channels(filters: Filters, channel: str | None = None) -> tuple[str, ...] | None:
    """The channels whose activity counts: the filter's, narrowed to ``channel``; None for all.

    >>> selected_channels(Filters(channels=("web", "app")), "app"), selected_channels(Filters())
    (('app',), None)
    """
    if channel is None:
        return filters.channels or None
    return (channel,) if not filters.channels or channel in filters.channels else ()


def qualifying_expr(filters: Filters, *, period: Period, activity: Activity, channel: str | None,
                    ends: tuple[str, ...] = ("first", "last"), neighbours: bool = False,
                    since: int | None = None) -> ir.Table:
    """Distinct (customer_id, period_number) with qualifying activity, over all of history, with the
    customer's first and last such period (first_period, last_period, as named in ``ends``) or,
    with ``neighbours``, whether this is the customer's first such period (is_first) and whether
    the periods just before and after have such activity too (after_active, before_active).

    History is not cut to the date range: a customer first seen two years ago is not "new" today.
    One roll-up row per customer and period serves every channel selection through its channel
    masks (``data_access.derived_retention``), so a channel filter regroups nothing; only the
    first and last periods of a channel selection are joined from the rows that are first or last.

    ``since`` is the first period whose rows the caller needs: the roll-up is stored in period
    order, so the engine skips the earlier ones.
    """
    selected = selected_channels(filters, channel)
    mask = channel_mask(selected, bits=filters.bits)
    kind = "purchase_" if activity == "purchase" else ""
    rows = restrict_customers(derived(all_channels_period_table(period)), filters)
    rows = rows.filter((rows[f"{kind}channels"] & mask) != 0)
    if since is not None:
        rows = rows.filter(rows.period_number >= since)

    def any_selected(when: str) -> ir.BooleanColumn:
        return (rows[f"{when}_{kind}channels"] & mask) != 0

    if neighbours:
        return rows.select("customer_id", "period_number", is_first=~any_selected("earlier"),
                           after_active=any_selected("previous"), before_active=any_selected("next"))
    if selected is None:
        return rows.select("customer_id", "period_number",
                           **{f"{end}_period": rows[f"{end}_{kind}period"] for end in ends})
    result = rows.select("customer_id", "period_number")
    for end, beyond in (("first", "earlier"), ("last", "later")):
        if end in ends:
            result = result.join(
                rows.filter(~any_selected(beyond)).select("customer_id", **{f"{end}_period": "period_number"}),
                "customer_id")
    return result


def _period_bounds(filters: Filters, period: Period) -> tuple[int | None, int | None]:
    """Numbers of the first and last periods that overlap the date range."""
    low = period_number(filters.start, period) if filters.start else None
    high = period_number(filters.end, period) if filters.end else None
    return low, high


def _within(table: ir.Table, column: str, low: int | None, high: int | None) -> ir.Table:
    if low is not None:
        table = table.filter(table[column] >= low)
    if high is not None:
        table = table.filter(table[column] <= high)
    return table


def csat_band_expr(score: ir.IntegerValue) -> ir.StringValue:
    return ibis.cases((score <= 2, CSAT_BANDS[0]), (score == 3, CSAT_BANDS[1]), else_=CSAT_BANDS[2])


def breakdown_expr(breakdown: str) -> ir.Table:
    """customer_id and ``group``, the customer's value of the breakdown attribute."""
    facts = derived("customer_facts")
    if breakdown == "acquisition-channel":
        value = facts.acquisition_channel
    elif breakdown == "region":
        value = facts.region
    elif breakdown == "segment":
        value = facts.segment.fill_null("no segment")
    elif breakdown == "channels-used":
        used = facts.channels_used
        value = ibis.cases(
            (used <= 1, "1 channel"),
            (used == 2, "2 channels"),
            (used == 3, "3 channels"),
            else_="4+ channels",
        )
    elif breakdown == CSAT_BAND:
        facts = facts.filter(facts.latest_csat.notnull())
        value = csat_band_expr(facts.latest_csat)
    else:
        raise ValueError(f"unknown breakdown {breakdown!r}")
    return facts.select("customer_id", group=value)


def _with_group(rows: ir.Table, breakdown: str) -> ir.Table:
    if breakdown == "none":
        return rows.mutate(group=ibis.literal(ALL_CUSTOMERS))
    return rows.join(breakdown_expr(breakdown), "customer_id")


def retention_counts_expr(
    filters: Filters,
    *,
    period: Period = "month",
    cohort_type: CohortType = "first-time",
    returning: Returning = "on",
    activity: Activity = "any",
    channel: str | None = None,
    breakdown: str = "none",
) -> ir.Table:
    """Customers per (group, cohort, period_index), cohort and index as period numbers.

    For "on" the index is a period the customer was active in; for "on or after" it is the
    customer's *last* active period, so "returned on or after N" is the sum over indices >= N.
    """
    ends = {("first-time", "on"): ("first",), ("first-time", "on-or-after"): ("first", "last"),
            ("recurring", "on"): (), ("recurring", "on-or-after"): ("last",)}[cohort_type, returning]
    low, high = _period_bounds(filters, period)
    # Every row counted is in a cohort's period or later, so none before the first cohort.
    act = qualifying_expr(filters, period=period, activity=activity, channel=channel, ends=ends, since=low)
    if cohort_type == "first-time":
        members = _within(act, "first_period", low, high)
        if returning == "on":
            rows = members.select("customer_id", cohort=members.first_period,
                                  period_index=members.period_number - members.first_period)
        else:
            firsts = members.filter(members.period_number == members.first_period)
            rows = firsts.select("customer_id", cohort=firsts.first_period,
                                 period_index=firsts.last_period - firsts.first_period)
    else:
        members = _within(act, "period_number", low, high)
        if returning == "on":
            later = act.select(later_customer=act.customer_id, later=act.period_number)
            rows = members.join(
                later, [members.customer_id == later.later_customer, later.later >= members.period_number]
            ).select("customer_id", cohort=members.period_number, period_index=later.later - members.period_number)
        else:
            rows = members.select("customer_id", cohort=members.period_number,
                                  period_index=members.last_period - members.period_number)
    rows = _with_group(rows, breakdown)
    return rows.group_by(["group", "cohort", "period_index"]).agg(customers=ibis._.count())


def last_day_with_data(engine: Engine) -> date | None:
    return engine.to_polars(bounds_expr())["last_day"][0]


def _period_start_expr(numbers: pl.Expr, period: Period) -> pl.Expr:
    if period == "week":
        return pl.lit(WEEK_ORIGIN) + pl.duration(weeks=numbers)
    return pl.date(numbers // 12, numbers % 12 + 1, 1)


def complete_expr(numbers: pl.Expr, *, period: Period, last_day: date) -> pl.Expr:
    """True for periods whose last day is on or before ``last_day``."""
    last = period_number(last_day, period)
    last_is_whole = period_end(last, period) <= last_day
    return (numbers < last) | ((numbers == last) & pl.lit(last_is_whole))


def retention_table(
    counts: pl.DataFrame, *, period: Period, returning: Returning, last_day: date | None
) -> pl.DataFrame:
    """The full cohort grid from :func:`retention_counts_expr`'s counts (pure Polars).

    Every cohort gets every period index up to the period holding ``last_day``; a period where
    nobody returned is a 0, not a missing cell.
    """
    if counts.is_empty() or last_day is None:
        return pl.DataFrame(schema=CELL_SCHEMA)
    counts = counts.cast({"cohort": pl.Int64, "period_index": pl.Int64, "customers": pl.Int64})
    keys = ["group", "cohort"]
    if returning == "on":
        sizes = counts.filter(pl.col("period_index") == 0).select(*keys, cohort_size="customers")
    else:
        sizes = counts.group_by(keys).agg(cohort_size=pl.col("customers").sum())
    last = period_number(last_day, period)
    grid = sizes.with_columns(period_index=pl.int_ranges(0, last - pl.col("cohort") + 1)).explode(
        "period_index"
    )
    cells = (
        grid.join(counts, on=[*keys, "period_index"], how="left")
        .with_columns(pl.col("customers").fill_null(0))
        .sort([*keys, "period_index"])
    )
    if returning == "on":
        retained = pl.col("customers")
    else:
        retained = pl.col("customers").cum_sum(reverse=True).over(keys)
    cells = cells.with_columns(retained=retained)
    return (
        cells.select(
            "group",
            cohort=_period_start_expr(pl.col("cohort"), period),
            period_index="period_index",
            cohort_size="cohort_size",
            retained="retained",
            retention_pct=pl.col("retained") / pl.col("cohort_size") * 100,
            complete=complete_expr(
                pl.col("cohort") + pl.col("period_index"), period=period, last_day=last_day
            ),
        )
        .cast({"cohort_size": pl.Int64, "retained": pl.Int64})
        .sort(["group", "cohort", "period_index"])
    )


def retention(
    engine: Engine,
    filters: Filters,
    *,
    period: Period = "month",
    cohort_type: CohortType = "first-time",
    returning: Returning = "on",
    activity: Activity = "any",
    channel: str | None = None,
    breakdown: str = "none",
) -> pl.DataFrame:
    """One row per (group, cohort, period_index): cohort_size, retained, retention_pct, complete.

    ``group`` is the breakdown value ("all customers" without one); ``cohort`` is the first day of
    the cohort's period. Rates of incomplete periods are partial counts: show them as such.
    """
    _check(
        period=period, activity=activity, cohort_type=cohort_type, returning=returning, breakdown=breakdown
    )
    counts = engine.to_polars(
        retention_counts_expr(
            filters,
            period=period,
            cohort_type=cohort_type,
            returning=returning,
            activity=activity,
            channel=channel,
            breakdown=breakdown,
        )
    )
    return retention_table(counts, period=period, returning=returning, last_day=last_day_with_data(engine))


def average_curves(cells: pl.DataFrame, *, min_sample: int = 1) -> pl.DataFrame:
    """Per group and period index: the cohort-size-weighted retention over complete cells.

    Weighting by size is pooling: retained customers over cohort customers, which is also the
    base of the 95% Wilson interval (``retention_low`` / ``retention_high``, in %). Points pooled
    from fewer than ``min_sample`` customers get no rate (``shown`` is false).

    >>> cells = pl.DataFrame({"group": ["all"] * 2, "period_index": [1, 1], "cohort_size": [10, 30],
    ...                       "retained": [5, 3], "complete": [True, True]})
    >>> average_curves(cells)["retention_pct"].to_list()  # (5 + 3) / (10 + 30)
    [20.0]
    """
    pooled = (
        cells.filter(pl.col("complete"))
        .group_by(["group", "period_index"])
        .agg(
            cohorts=pl.len().cast(pl.Int64),
            cohort_size=pl.col("cohort_size").sum(),
            retained=pl.col("retained").sum(),
        )
        .sort(["group", "period_index"])
    )
    curves = with_wilson(pooled, successes="retained", trials="cohort_size", prefix="retention")
    shown = pl.col("cohort_size") >= min_sample
    rates = ("retention_pct", "retention_low", "retention_high")
    return curves.with_columns(shown=shown).with_columns(
        [pl.when(shown).then(pl.col(c)).otherwise(None).alias(c) for c in rates]
    )


def lifecycle_expr(
    filters: Filters,
    *,
    period: Period = "month",
    activity: Activity = "any",
    channel: str | None = None,
    last_period: int,
) -> ir.Table:
    """Customers per (period_number, state) for the periods that overlap the date range."""
    low, high = _period_bounds(filters, period)
    # The first period's dormant customers lapsed from the period before it.
    marked = qualifying_expr(filters, period=period, activity=activity, channel=channel, neighbours=True,
                             since=None if low is None else low - 1)
    state = ibis.cases((marked.is_first, "new"), (marked.after_active, "returning"), else_="resurrecting")
    active = marked.select("period_number", state=state)
    lapsed = marked.filter(~marked.before_active)
    dormant = lapsed.select(period_number=lapsed.period_number + 1, state=ibis.literal("dormant"))
    # Nobody can be seen as dormant in a period that has not started yet.
    high = last_period if high is None else min(high, last_period)
    states = _within(active.union(dormant), "period_number", low, high)
    return states.group_by(["period_number", "state"]).agg(customers=ibis._.count())


def lifecycle(
    engine: Engine,
    filters: Filters,
    *,
    period: Period = "month",
    activity: Activity = "any",
    channel: str | None = None,
) -> pl.DataFrame:
    """Per period (its first day) and state: customers (dormant counted positive) and completeness."""
    _check(period=period, activity=activity)
    schema = {"period": pl.Date, "state": pl.String, "customers": pl.Int64, "complete": pl.Boolean}
    last_day = last_day_with_data(engine)
    if last_day is None:
        return pl.DataFrame(schema=schema)
    counts = engine.to_polars(
        lifecycle_expr(
            filters,
            period=period,
            activity=activity,
            channel=channel,
            last_period=period_number(last_day, period),
        )
    )
    if counts.is_empty():
        return pl.DataFrame(schema=schema)
    periods = counts.select(pl.col("period_number").cast(pl.Int64)).unique()
    states = pl.DataFrame({"state": LIFECYCLE_STATES, "order": range(len(LIFECYCLE_STATES))})
    grid = periods.join(states, how="cross").join(
        counts.cast({"period_number": pl.Int64, "customers": pl.Int64}),
        on=["period_number", "state"],
        how="left",
    )
    return grid.sort(["period_number", "order"]).select(
        period=_period_start_expr(pl.col("period_number"), period),
        state="state",
        customers=pl.col("customers").fill_null(0),
        complete=complete_expr(pl.col("period_number"), period=period, last_day=last_day),
    )


def observation_end(filters: Filters, *, last_day: date, threshold_days: int) -> date:
    """Last day of the churn base window: the range end, but at least N days before the data ends."""
    cutoff = last_day - timedelta(days=threshold_days)
    return min(filters.end, cutoff) if filters.end else cutoff


def in_observation_window(
    day: ir.DateValue, filters: Filters, *, last_day: date, threshold_days: int
) -> ir.BooleanValue:
    """True for days in the churn base window: the date range, ending N days before the data ends."""
    inside = day <= ibis.literal(observation_end(filters, last_day=last_day, threshold_days=threshold_days))
    if filters.start is not None:
        inside &= day >= ibis.literal(filters.start)
    return inside


def churn_base_expr(
    filters: Filters,
    *,
    activity: Activity = "any",
    channel: str | None = None,
    threshold_days: int,
    last_day: date,
) -> ir.Table:
    """customer_id and ``churned`` for every customer with qualifying activity in the base window."""
    daily = derived("daily_activity")
    if activity == "purchase":
        daily = daily.filter(daily.orders > 0)
    if channel is not None:
        daily = daily.filter(daily.channel == channel)
    daily = restrict_customers(restrict_channels(daily, filters), filters)
    if filters.start is not None:
        # A base customer was active in the window, so their last day is in it or later: earlier
        # days change nobody's answer, and skipping them spares most of the grouping.
        daily = daily.filter(daily.day >= ibis.literal(filters.start))
    cutoff = last_day - timedelta(days=threshold_days)
    in_window = in_observation_window(daily.day, filters, last_day=last_day, threshold_days=threshold_days)
    per_customer = daily.group_by("customer_id").agg(
        in_window=in_window.cast("int64").max(), last_active=daily.day.max()
    )
    base = per_customer.filter(per_customer.in_window == 1)
    return base.select("customer_id", churned=base.last_active <= ibis.literal(cutoff))


def churn_by_channel_expr(
    filters: Filters,
    *,
    activity: Activity = "any",
    channel: str | None = None,
    threshold_days: int,
    last_day: date,
) -> ir.Table:
    base = churn_base_expr(
        filters, activity=activity, channel=channel, threshold_days=threshold_days, last_day=last_day
    )
    facts = derived("customer_facts")
    joined = base.join(facts.select("customer_id", "acquisition_channel"), "customer_id")
    return joined.group_by("acquisition_channel").agg(
        customers=ibis._.count(), churned=joined.churned.cast("int64").sum()
    )


def churn_by_channel(
    engine: Engine,
    filters: Filters,
    *,
    activity: Activity = "any",
    channel: str | None = None,
    threshold_days: int = 90,
) -> pl.DataFrame:
    """Churn per acquisition channel plus an "all customers" row, with 95% Wilson bounds in %."""
    _check(period="month", activity=activity)
    if threshold_days < 1:
        raise ValueError("the inactivity threshold must be at least 1 day")
    schema = {"acquisition_channel": pl.String, "customers": pl.Int64, "churned": pl.Int64}
    last_day = last_day_with_data(engine)
    counts = pl.DataFrame(schema=schema)
    if last_day is not None:
        counts = engine.to_polars(
            churn_by_channel_expr(
                filters, activity=activity, channel=channel, threshold_days=threshold_days, last_day=last_day
            )
        )
        counts = counts.cast(schema)
    if not counts.is_empty():
        total = counts.select(
            acquisition_channel=pl.lit(ALL_CUSTOMERS),
            customers=pl.col("customers").sum(),
            churned=pl.col("churned").sum(),
        )
        counts = pl.concat([counts.sort("customers", descending=True), total])
    return with_wilson(counts, successes="churned", trials="customers", prefix="churn")


def portable_expressions() -> dict[str, ir.Expr]:
    """Every expression this module runs, with every option and filter, for the dialect test."""
    f = Filters(
        start=date(2026, 1, 1),
        end=date(2026, 3, 31),
        channels=("web", "store"),
        regions=("North",),
        segments=("gold",),
    )
    expressions: dict[str, ir.Expr] = {}
    for cohort_type in COHORT_TYPES:
        for returning in RETURNING:
            expressions[f"retention.{cohort_type}.{returning}"] = retention_counts_expr(
                f,
                period="week",
                cohort_type=cohort_type,
                returning=returning,
                activity="purchase",
                channel="web",
                breakdown="segment",
            )
    for breakdown in (*BREAKDOWNS, CSAT_BAND):
        expressions[f"retention.breakdown.{breakdown}"] = retention_counts_expr(f, breakdown=breakdown)
    expressions["retention.lifecycle"] = lifecycle_expr(
        f, period="week", activity="purchase", channel="web", last_period=3000
    )
    expressions["retention.churn"] = churn_by_channel_expr(
        f, activity="purchase", channel="store", threshold_days=60, last_day=date(2026, 6, 30)
    )
    return expressions


def describe(
    *,
    period: Period,
    cohort_type: CohortType,
    returning: Returning,
    activity: Activity,
    channel: str | None = None,
    **_: object,
) -> str:
    """The retention definition for these options, in one or two sentences for a caption.

    >>> describe(period="month", cohort_type="first-time", returning="on", activity="purchase")[:56]
    'Cohort = the month of the customer’s first purchase ever'
    """
    what = "purchase" if activity == "purchase" else "activity (any event)"
    a_what = f"a {what}" if activity == "purchase" else f"an {what}"
    where = f" in {channel}" if channel else ""
    if cohort_type == "first-time":
        cohort = f"Cohort = the {period} of the customer’s first {what}{where} ever"
    else:
        cohort = f"Cohort = every {period} with {a_what}{where}: one customer can start several cohorts"
    back = (
        f"retained in {period} N = {a_what}{where} exactly N {period}s after the cohort’s {period}"
        if returning == "on"
        else f"retained in {period} N = {a_what}{where} N or more {period}s after the cohort’s {period}"
    )
    return f"{cohort}; {back}. Rates are % of the cohort’s size in {period} 0."


# What each chart of the Retention page shows, beside the chart (placeholders: period, min_sample, days).
DEFINITIONS = {
    "heatmap": (
        "Rows are cohorts with their size; grey cells are {period}s that are not over yet (hover shows "
        "the count so far), never a drop to zero."
    ),
    "curves": (
        "For each {period} since the start: retained customers over cohort customers, summed over the "
        "cohorts whose {period} N is complete (a cohort-size-weighted average). The band is the 95% "
        "Wilson interval of that rate; a point pooled from fewer than {min_sample} customers is not "
        "drawn."
    ),
    "lifecycle": (
        "Customers per {period}, by state: new (first qualifying {period} ever), returning (also active "
        "the {period} before), resurrecting (back after one or more inactive {period}s) and dormant "
        "(active the {period} before, not in this one; drawn below zero). Hatched bars: the {period} is "
        "not over yet."
    ),
    "churn": (
        "Share of customers with no qualifying activity in the last {days} days with data, among the "
        "customers with qualifying activity in the date range up to {days} days before the last day with "
        "data (so each has had that long to come back). Whiskers: 95% Wilson interval; groups under "
        "{min_sample} customers get no rate."
    ),
}
