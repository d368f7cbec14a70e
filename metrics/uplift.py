"""Omnichannel uplift: customers using one, two, or three or more channels, compared (DESIGN.md §3).

Definitions (shown in the UI next to the numbers):

- *Channels used*: distinct channels (within the channel filter) with any event of the customer
  up to the as-of date. Support counts as a channel, as in the Overview's omnichannel share.
- The base is the customers of the CLV summary: at least one purchase up to the as-of date.
- Historical CLTV: net revenue per customer up to the as-of date. Predicted CLTV: the BG/NBD ×
  Gamma-Gamma value over the horizon. Repeat rate: % with a second purchase day. Retention: % who
  bought in the last ``retention_days`` days up to the as-of date, among customers whose first
  purchase was at least that long before it. CSAT: % of 4–5 answers among 1–5 answers up to the
  as-of date.
- Every figure is a ratio of per-customer sums (a mean when the denominator is one per
  customer), with a 95% normal interval whose variance treats the customer as the unit (the
  linearised ratio estimator), so a customer with many survey answers is not counted as many
  independent ones. Differences are against single-channel customers.

This is observational: customers who use more channels also differ in tenure, engagement and
needs, so the differences are associations, not the effect of adding a channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import ibis
import ibis.expr.types as ir
import polars as pl

from data_access.derived import derived
from data_access.derived_retention import bit_count, channel_mask
from metrics.filters import Filters, restrict_channels, restrict_customers
from metrics.stats import Z95

GROUPS = ("1 channel", "2 channels", "3+ channels")
BASELINE = GROUPS[0]
RETENTION_DAYS = 90
OBSERVATIONAL_NOTE = (
    "Observational comparison: customers who use more channels also differ in tenure, engagement and "
    "needs, so these differences are associations, not the effect of moving a customer to another channel."
)


@dataclass(frozen=True)
class Measure:
    key: str
    label: str
    unit: str  # "currency" or "percent", as views.formatting.format_value reads it
    numerator: pl.Expr
    denominator: pl.Expr


def _measures(*, as_of: date, retention_days: int) -> tuple[Measure, ...]:
    recent = as_of - timedelta(days=retention_days - 1)
    eligible = pl.col("first_purchase") < recent
    return (
        Measure("historical_clv", "Historical CLTV", "currency", pl.col("historical_revenue"), pl.lit(1.0)),
        Measure("predicted_clv", "Predicted CLTV", "currency", pl.col("predicted_clv"), pl.lit(1.0)),
        Measure("repeat_rate", "Repeat rate", "percent", (pl.col("frequency") > 0) * 100.0, pl.lit(1.0)),
        Measure("retention", f"Retention ({retention_days} days)", "percent",
                (eligible & (pl.col("last_purchase") >= recent)) * 100.0, eligible.cast(pl.Float64)),
        Measure("csat", "CSAT", "percent", pl.col("csat_positive") * 100.0, pl.col("csat_responses")),
    )


def engagement_expr(filters: Filters, *, as_of: date) -> ir.Table:
    """Per customer: channels_used up to ``as_of`` and CSAT answers (csat_responses, csat_positive).

    Customers who used no selected channel by then have no row; customers without a CSAT answer
    have zero responses.
    """
    used = channels_used_expr(filters, as_of=as_of)
    joined = used.filter(used.channels_used > 0).left_join(csat_answers_expr(filters, as_of=as_of), "customer_id")
    return joined.select(
        "customer_id", "channels_used",
        csat_responses=joined.csat_responses.fill_null(0), csat_positive=joined.csat_positive.fill_null(0),
    )


def channels_used_expr(filters: Filters, *, as_of: date) -> ir.Table:
    """customer_id and channels_used: the selected channels the customer used up to ``as_of`` (0 for
    none), one row per customer in the filters."""
    facts = restrict_customers(derived("customer_facts"), filters).left_join(
        later_channels_expr(filters, as_of=as_of), "customer_id")
    return facts.select("customer_id", channels_used=channels_used(facts.channels, facts.later, filters))


def later_channels_expr(filters: Filters, *, as_of: date) -> ir.Table:
    """customer_id and ``later``: how many selected channels the customer first used after ``as_of``
    (no row for none; none at all when as_of is the last day)."""
    end = datetime.combine(as_of + timedelta(days=1), time.min)
    later = restrict_channels(derived("customer_channels"), filters)
    later = later.filter(later.first_at >= ibis.literal(end))
    return later.group_by("customer_id").agg(later=ibis._.count())


def channels_used(used_channels: ir.IntegerValue, later: ir.IntegerValue, filters: Filters) -> ir.IntegerValue:
    """The selected channels used up to an as-of date, from the mask of every channel the customer
    ever used and their ``later`` count (null: 0) of :func:`later_channels_expr`.

    A bit count over the stored masks: at a million customers, a scan instead of grouping 2.4
    million customer-channel rows.
    """
    return bit_count(used_channels & channel_mask(filters.channels or None, bits=filters.bits)) - later.fill_null(0)


def csat_answers_expr(filters: Filters, *, as_of: date) -> ir.Table:
    """Per customer with an answer up to ``as_of``: csat_responses and csat_positive (4 or 5).

    From the feedback roll-up: a few hundred thousand rows at a million customers, where the daily
    roll-up has tens of millions.
    """
    answers = restrict_customers(restrict_channels(derived("feedback_events"), filters), filters)
    answers = answers.filter(answers.csat_score.notnull() & (answers.day <= ibis.literal(as_of)))
    return answers.group_by("customer_id").agg(
        csat_responses=answers.count(), csat_positive=(answers.csat_score >= 4).cast("int64").sum()
    )


def channel_group(channels_used: pl.Expr) -> pl.Expr:
    """``1 channel``, ``2 channels`` or ``3+ channels``."""
    return (
        pl.when(channels_used >= 3).then(pl.lit(GROUPS[2]))
        .when(channels_used == 2).then(pl.lit(GROUPS[1]))
        .otherwise(pl.lit(GROUPS[0]))
    )


def ratio_estimates(customers: pl.DataFrame, *, numerator: pl.Expr, denominator: pl.Expr) -> pl.DataFrame:
    """Per ``group``: n (customers with a positive denominator), value = Σ num / Σ den, and its standard error.

    With a denominator of one per customer the value is the mean and the error the usual s / √n.

    >>> frame = pl.DataFrame({"group": ["a"] * 4, "y": [1.0, 2.0, 3.0, 4.0]})
    >>> row = ratio_estimates(frame, numerator=pl.col("y"), denominator=pl.lit(1.0)).row(0, named=True)
    >>> row["n"], row["value"], round(row["se"], 4)  # s = 1.291, s / √4
    (4, 2.5, 0.6455)
    """
    rows = customers.select(
        group=pl.col("group"), y=numerator.cast(pl.Float64), x=denominator.cast(pl.Float64)
    ).filter(pl.col("x") > 0)
    totals = rows.group_by("group").agg(n=pl.len(), sy=pl.col("y").sum(), sx=pl.col("x").sum())
    totals = totals.with_columns(value=pl.col("sy") / pl.col("sx"))
    residuals = rows.join(totals.select("group", "value"), on="group").group_by("group").agg(
        ss=((pl.col("y") - pl.col("value") * pl.col("x")) ** 2).sum()
    )
    n = pl.col("n").cast(pl.Float64)
    return totals.join(residuals, on="group").select(
        "group", "n", "value",
        se=pl.when(n > 1).then((pl.col("ss") * n / (n - 1)).sqrt() / pl.col("sx")).otherwise(None),
    )


def compare(scores: pl.DataFrame, *, as_of: date, retention_days: int = RETENTION_DAYS,
            min_customers: int = 30) -> pl.DataFrame:
    """Every measure for every channel-count group, and its difference from single-channel customers.

    ``scores`` is :func:`metrics.clv.customer_scores`' frame. One row per measure and group:
    metric, label, unit, group, customers (n behind the figure), value, low, high (95%), and
    difference, difference_low, difference_high, relative_pct against ``1 channel`` (null for
    the baseline itself). Groups with fewer than ``min_customers`` customers behind a figure keep
    their count but get no figures: an interval from a handful of customers would mislead.
    """
    grouped = scores.with_columns(group=channel_group(pl.col("channels_used")))
    frames = []
    for position, measure in enumerate(_measures(as_of=as_of, retention_days=retention_days)):
        estimates = ratio_estimates(grouped, numerator=measure.numerator, denominator=measure.denominator)
        small = pl.col("n") < min_customers
        estimates = estimates.with_columns(pl.when(~small).then(pl.col(c)).alias(c) for c in ("value", "se"))
        baseline = estimates.filter(pl.col("group") == BASELINE).select(base=pl.col("value"), base_se=pl.col("se"))
        if baseline.is_empty():
            baseline = pl.DataFrame({"base": [None], "base_se": [None]}, schema={"base": pl.Float64,
                                                                                 "base_se": pl.Float64})
        diff_se = (pl.col("se") ** 2 + pl.col("base_se") ** 2).sqrt()
        is_base = pl.col("group") == BASELINE
        frames.append(
            estimates.join(baseline, how="cross").with_columns(
                order=pl.lit(position), metric=pl.lit(measure.key), label=pl.lit(measure.label),
                unit=pl.lit(measure.unit),
                low=pl.col("value") - Z95 * pl.col("se"), high=pl.col("value") + Z95 * pl.col("se"),
                difference=pl.when(~is_base).then(pl.col("value") - pl.col("base")),
                difference_low=pl.when(~is_base).then(pl.col("value") - pl.col("base") - Z95 * diff_se),
                difference_high=pl.when(~is_base).then(pl.col("value") - pl.col("base") + Z95 * diff_se),
                relative_pct=pl.when(~is_base & (pl.col("base").abs() > 0))
                .then((pl.col("value") - pl.col("base")) / pl.col("base").abs() * 100),
            )
        )
    schema = {"order": pl.Int32, "metric": pl.String, "label": pl.String, "unit": pl.String, "group": pl.String,
              "customers": pl.Int64, "value": pl.Float64, "low": pl.Float64, "high": pl.Float64,
              "difference": pl.Float64, "difference_low": pl.Float64, "difference_high": pl.Float64,
              "relative_pct": pl.Float64}
    if not frames:
        return pl.DataFrame(schema=schema).drop("order")
    result = pl.concat(frames, how="diagonal_relaxed").rename({"n": "customers"})
    group_order = {name: i for i, name in enumerate(GROUPS)}
    return (
        result.select(list(schema)).cast(schema)
        .sort(["order", pl.col("group").replace_strict(group_order, default=len(GROUPS))])
        .drop("order")
    )


def portable_expressions() -> dict[str, ir.Expr]:
    f = Filters(start=date(2026, 1, 1), end=date(2026, 3, 31), channels=("web", "store"), regions=("North",),
                segments=("gold",))
    return {"uplift.engagement": engagement_expr(f, as_of=date(2026, 3, 31))}
