"""Roll-ups for retention, lifecycle and satisfaction, built with the other derived tables.

Cohorts straight from events are several times slower than from a customer-period roll-up at
millions of customers (PLATFORM_NOTES), so the build writes one row per customer, calendar period
and channel, with the facts a cohort needs: was there any event, was there a purchase, and the
last day of each. Survey answers and support contacts are a tiny share of the events; they get a
table of their own so the satisfaction page never scans every event.

Periods are calendar periods: ISO weeks starting on Monday and calendar months. ``period`` is the
first day of the period and ``period_number`` counts periods, so "N periods later" is a
subtraction on every engine (weeks since Monday 1970-01-05, months since January of year 0).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import date, timedelta

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from data_access.schema import unified

GRAINS = ("week", "month")
_TRUNCATE_UNIT = {"week": "W", "month": "M"}
# A Monday, so every week start is a whole number of weeks after it.
WEEK_ORIGIN = date(1970, 1, 5)


def period_start_expr(day: ir.DateValue, grain: str) -> ir.DateValue:
    """First day of the calendar period (Monday-start week or month) holding ``day``."""
    return day.truncate(_TRUNCATE_UNIT[grain])


def period_number_expr(period: ir.DateValue, grain: str) -> ir.IntegerValue:
    """The period's ordinal: consecutive periods differ by exactly one."""
    if grain == "week":
        return (period.delta(ibis.literal(WEEK_ORIGIN), unit="day") // 7).cast("int64")
    return (period.year() * 12 + period.month() - 1).cast("int64")


def customer_periods_expr(*, grain: str) -> ir.Table:
    """One row per customer, period (``grain``) and channel with any activity there.

    ``last_purchase_day`` is null when the customer only browsed, opened mail, etc. in that
    period and channel.
    """
    if grain not in GRAINS:
        raise ValueError(f"grain must be one of {', '.join(GRAINS)}, not {grain!r}")
    e = unified("events")
    day = e.occurred_at.date()
    is_purchase = e.event_type == "purchase"
    rows = e.mutate(day=day, period=period_start_expr(day, grain))
    rolled = rows.group_by(["customer_id", "period", "channel"]).agg(
        events=ibis._.count(),
        purchases=is_purchase.cast("int64").sum(),
        last_day=rows.day.max(),
        last_purchase_day=rows.day.max(where=is_purchase),
    )
    return rolled.mutate(period_number=period_number_expr(rolled.period, grain))


def customer_weeks_expr() -> ir.Table:
    return customer_periods_expr(grain="week")


def customer_months_expr() -> ir.Table:
    return customer_periods_expr(grain="month")


def feedback_events_expr() -> ir.Table:
    """Support contacts and survey answers: one row per event, with the scores as given."""
    e = unified("events")
    is_feedback = (
        e.event_type.isin(("support_contact", "survey_response"))
        | e.csat_score.notnull()
        | e.nps_score.notnull()
    )
    rows = e.filter(is_feedback)
    return rows.select(
        "customer_id",
        "occurred_at",
        "channel",
        "event_type",
        "csat_score",
        "nps_score",
        day=rows.occurred_at.date(),
    )


@ibis.udf.agg.builtin(name="bit_or")
def bit_or(value: dt.int64) -> dt.int64:
    """The OR of the values' bits: built into DuckDB and Spark under this name (Ibis' own
    ``bit_or`` has no PySpark rule)."""


@ibis.udf.scalar.builtin(name="bit_count")
def _bit_count(value: dt.int64) -> dt.int8:
    """DuckDB's and Spark's bit count (ClickHouse names it bitCount)."""


def bit_count(mask: ir.IntegerValue) -> ir.IntegerValue:
    """The number of bits set in a channel mask."""
    return _bit_count(mask).cast("int64")


def channel_bits_expr() -> ir.Table:
    """One row per channel in the events with its bit in the channel masks (1, 2, 4, … by name).

    The contract check holds the events to the configured channels, at most MAX_CHANNELS (63) of
    them, so every bit fits an int64.
    """
    e = unified("events")
    channels = e.select("channel").distinct()
    # Ibis numbers rows from 0.
    numbered = channels.mutate(position=ibis.row_number().over(order_by=channels.channel))
    return numbered.select("channel", bit=ibis.literal(1, "int64") << numbered.position)


def channel_bits_table() -> ir.Table:
    return ibis.table(_schema_of("channel_bits"), name="channel_bits")


def channel_mask(channels: tuple[str, ...] | None, *, bits: Mapping[str, int] | None = None) -> ir.IntegerScalar:
    """The mask of ``channels`` (None: every channel).

    Given the store's ``bits`` (channel_bits as a mapping), a literal: the engine tests it inside
    its scans. Without them, a scalar query over channel_bits, which DuckDB joins to every row it
    tests (0.09 s for the 13 million weekly rows of a million customers).
    """
    if channels is None:
        return ibis.literal(-1, "int64")  # every bit set
    if bits is not None:
        return ibis.literal(sum(bits.get(channel, 0) for channel in channels), "int64")
    bits = channel_bits_table()
    return bits.filter(bits.channel.isin(channels)).bit.sum().fill_null(0).as_scalar()


@functools.cache
def _schema_of(name: str) -> ibis.Schema:
    return {"channel_bits": channel_bits_expr, "customer_months": customer_months_expr}[name]().schema()


def customer_periods_all_channels_expr(*, grain: str) -> ir.Table:
    """One row per customer and period with any activity, all channels together, in period order.

    period and period_number as in the per-channel roll-up; purchases: purchase events in the
    period. Per customer, over all history: first_period and last_period with any activity,
    first_purchase_period and last_purchase_period (null for customers who never bought).

    Channel masks (bits from channel_bits) answer the same questions for any set of channels S
    without regrouping: ``channels`` and ``purchase_channels`` are the channels with activity
    and with a purchase in this period; ``earlier_*`` and ``later_*`` the channels in all earlier
    and all later periods; ``previous_*`` and ``next_*`` the channels in the period just before
    and just after (0 when the customer had no activity there). With S as a mask, the period
    qualifies when ``channels & S != 0``, it is the customer's first when ``earlier_channels & S
    == 0``, and the customer was active the period before when ``previous_channels & S != 0``.
    """
    rolled = ibis.table(_schema_of("customer_months"), name=period_table(grain))
    tagged = rolled.join(channel_bits_table(), "channel")
    per = tagged.group_by(["customer_id", "period", "period_number"]).agg(
        purchases=tagged.purchases.sum().cast("int64"),
        channels=bit_or(tagged.bit),
        purchase_channels=bit_or(tagged.bit, where=tagged.purchases > 0).fill_null(0),
    )
    bought = per.purchases > 0
    span = per.group_by("customer_id").agg(
        first_period=per.period_number.min(),
        last_period=per.period_number.max(),
        first_purchase_period=per.period_number.min(where=bought),
        last_purchase_period=per.period_number.max(where=bought),
    )
    in_order = {"group_by": "customer_id", "order_by": "period_number"}
    before = ibis.window(**in_order, rows=(None, -1))
    after = ibis.window(**in_order, rows=(1, None))
    adjacent = ibis.window(**in_order)
    masks = {}
    for prefix, mask in (("", per.channels), ("purchase_", per.purchase_channels)):
        masks[f"earlier_{prefix}channels"] = bit_or(mask).over(before).fill_null(0)
        masks[f"later_{prefix}channels"] = bit_or(mask).over(after).fill_null(0)
        masks[f"previous_{prefix}channels"] = ibis.cases(
            (per.period_number.lag().over(adjacent) == per.period_number - 1, mask.lag().over(adjacent)), else_=0)
        masks[f"next_{prefix}channels"] = ibis.cases(
            (per.period_number.lead().over(adjacent) == per.period_number + 1, mask.lead().over(adjacent)), else_=0)
    rows = per.mutate(**masks).join(span, "customer_id")
    # In period order: a date range reads only its periods and the ones after (zone maps), and
    # every page that shows one reads this table.
    return rows.order_by(["period_number", "customer_id"])


def customer_weeks_all_channels_expr() -> ir.Table:
    return customer_periods_all_channels_expr(grain="week")


def customer_months_all_channels_expr() -> ir.Table:
    return customer_periods_all_channels_expr(grain="month")


# Built in this order: the all-channels tables read the per-channel ones and the channel bits
# (built before them, with the journey tables, which read them too).
RETENTION_TABLES = {
    "customer_weeks": customer_weeks_expr,
    "customer_months": customer_months_expr,
    "customer_weeks_all_channels": customer_weeks_all_channels_expr,
    "customer_months_all_channels": customer_months_all_channels_expr,
    "feedback_events": feedback_events_expr,
}


def period_table(grain: str) -> str:
    """The roll-up that holds ``grain`` periods.

    >>> period_table("month")
    'customer_months'
    """
    if grain not in GRAINS:
        raise ValueError(f"grain must be one of {', '.join(GRAINS)}, not {grain!r}")
    return f"customer_{grain}s"


def all_channels_period_table(grain: str) -> str:
    """The roll-up that holds ``grain`` periods with all channels together.

    >>> all_channels_period_table("week")
    'customer_weeks_all_channels'
    """
    return f"{period_table(grain)}_all_channels"


def period_number(day: date, grain: str) -> int:
    """The number of the period holding ``day``, as :func:`period_number_expr` computes it.

    >>> period_number(date(2026, 3, 31), "month") - period_number(date(2026, 2, 1), "month")
    1
    >>> period_number(date(2026, 3, 1), "week") - period_number(date(2026, 2, 23), "week")  # Sun, Mon
    0
    """
    if grain == "week":
        return (day - WEEK_ORIGIN).days // 7
    return day.year * 12 + day.month - 1


def period_start(number: int, grain: str) -> date:
    """First day of period ``number``: a Monday for weeks, the 1st for months."""
    if grain == "week":
        return WEEK_ORIGIN + timedelta(weeks=number)
    year, month = divmod(number, 12)
    return date(year, month + 1, 1)


def period_end(number: int, grain: str) -> date:
    """Last day of period ``number`` (a Sunday for weeks)."""
    return period_start(number + 1, grain) - timedelta(days=1)
