"""Customer lifetime value: per-customer summary, model fits, scores, history, payback and holdout.

Definitions (shown in the UI next to each chart):

- *Purchases* are purchase events in the selected channels, of customers in the selected regions
  and segments, up to and including the *as-of* date (default: the last day of the date range).
  The start of the date range is not used: CLV needs each customer's whole history.
- A *purchase day* is one purchase occasion: several purchases on one day count once, with their
  revenue added up.
- Per customer (time in weeks, from whole days): frequency = purchase days − 1; recency = days
  from the first to the last purchase day / 7; T = days from the first purchase day to the as-of
  date / 7; monetary_value = mean gross purchase revenue of the repeat purchase days (the first
  excluded; null without a repeat); historical_revenue = net revenue (purchases minus refunds) up
  to the as-of date. Only customers with a purchase up to the as-of date have a summary.
- *Predicted CLTV* = BG/NBD expected purchase days per month × Gamma-Gamma expected spend per
  purchase day, discounted monthly over the horizon (:mod:`metrics.clv_models`); a month is
  ``WEEKS_PER_MONTH`` weeks. It values gross purchases: refunds are not modelled.
- *Tiers*: customers ranked by predicted CLTV: top 10%, next 40%, the rest.
- *Stored scores* (``customer_clv_scores``, written by the build for segment conditions): P(alive),
  predicted CLTV and tier of every buyer over all customers and channels, as of the last day with
  data, with the default horizon and discount; null when the models cannot be fitted.
- *Historical CLTV curves*: cumulative net revenue per acquired customer (first touch,
  ``first_seen_at``) by months since acquisition. The value at month N averages the customers
  acquired at least N whole months before the as-of date, so every point is fully observed.
- *Holdout check*: the models are fitted on the history up to a calibration date ``weeks`` before
  the as-of date; the expected repeat purchase days in the weeks after it are compared with the
  actual ones, per calibration frequency and in total.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from fractions import Fraction

import ibis
import ibis.expr.types as ir
import numpy as np
import polars as pl

from data_access.derived import derived
from data_access.derived_clv import CUSTOMER_ATTRIBUTES, purchase_totals, sum_over_channels
from data_access.derived_retention import channel_mask
from data_access.schema import unified
from metrics import uplift
from metrics.catalog import bounds_expr
from metrics.clv_models import (
    DEFAULT_HORIZON_MONTHS,
    DEFAULT_MONTHLY_DISCOUNT,
    TIERS,
    WEEKS_PER_MONTH,
    BgNbdFit,
    GammaGammaFit,
    InsufficientData,
    assign_tiers,
    conditional_expected_purchases,
    fit_bgnbd,
    fit_gamma_gamma,
    score_customers,
)
from metrics.engine import Engine
from metrics.filters import Filters, restrict_channels, restrict_customers
from metrics.retention import check_option
from metrics.stats import Z95

TIME_UNIT = "week"
DEFAULT_HOLDOUT_WEEKS = 26
# A month of WEEKS_PER_MONTH weeks is 30.415 days = 6083 / 200: month numbers stay integer arithmetic,
# identical on every engine.
_MONTH_DAYS_NUM, _MONTH_DAYS_DEN = Fraction(str(round(WEEKS_PER_MONTH * 7, 6))).as_integer_ratio()
CURVE_BREAKDOWNS = {
    "cohort": "Acquisition quarter",
    "acquisition-channel": "Acquisition channel",
    "region": "Region",
    "segment": "Segment",
}
DIMENSIONS = {
    "acquisition-channel": ("acquisition_channel", "Acquisition channel"),
    "region": ("region", "Region"),
    "segment": ("segment", "Segment"),
}
NO_SEGMENT = "no segment"
HOLDOUT_TOP_BUCKET = 7

SCORE_COLUMNS = (
    "customer_id", "acquisition_channel", "region", "segment", "channels_used", "first_purchase", "last_purchase",
    "frequency", "recency", "T", "monetary_value", "historical_revenue", "csat_responses", "csat_positive",
    "p_alive", "expected_purchases", "expected_avg_spend", "predicted_clv", "tier",
)


def resolve_as_of(engine: Engine, filters: Filters, as_of: date | None = None) -> date | None:
    """The as-of date: the one given, else the end of the date range, else the last day with data
    (None in an empty store)."""
    if as_of is not None:
        return as_of
    if filters.end is not None:
        return filters.end
    return engine.to_polars(bounds_expr())["last_day"][0]


# ---------------------------------------------------------------------------------------------
# Expressions

_DAY_COLUMNS = ("customer_id", "day", "orders", "spend", "net")


def purchase_days_expr(filters: Filters, *, as_of: date, after: date | None = None,
                       customers: ir.Table | None = None) -> ir.Table:
    """One row per customer and day with a purchase or refund in the selected channels, up to ``as_of``.

    orders (purchases that day), spend (their gross revenue) and net (purchases minus refunds).
    ``after`` keeps only days after it (a holdout period); ``customers`` (customer_id rows) only
    their days.

    With a channel filter, a day whose channels are all selected keeps its stored totals and only
    the days mixing selected and other channels are added up again from their channel rows: at a
    million customers, a few thousand days instead of 2.3 million.
    """
    def in_period(rows: ir.Table) -> ir.Table:
        rows = rows.filter(rows.day <= ibis.literal(as_of))
        if after is not None:
            rows = rows.filter(rows.day > ibis.literal(after))
        if customers is not None:
            rows = rows.semi_join(customers, "customer_id")
        return restrict_customers(rows, filters)

    days = in_period(derived("customer_purchase_days_all_channels"))
    if not filters.channels:
        return days.select(*_DAY_COLUMNS)
    selected = channel_mask(filters.channels, bits=filters.bits)
    whole_days = days.filter((days.channels | selected) == selected)
    channel_rows = restrict_channels(in_period(derived("customer_purchase_days")), filters)
    mixed_days = sum_over_channels(channel_rows.filter((channel_rows.day_channels | selected) != selected))
    return whole_days.select(*_DAY_COLUMNS).union(mixed_days.select(*_DAY_COLUMNS))


def _weeks(days: ir.IntegerValue) -> ir.FloatingValue:
    # Cast before dividing by an integer: a float literal would be a decimal in Spark SQL.
    return days.cast("float64") / 7


def stored_totals(filters: Filters, *, columns: list[str], settled_by: date | None = None) -> ir.Table:
    """The stored all-history purchase totals (``columns`` of customer_purchase_totals) of each
    customer over the selected channels: their own row when every channel of theirs is selected,
    else the row of the subset of their channels that is (customer_purchase_subsets); none when
    no channel of theirs is. ``settled_by`` keeps only customers with nothing after that day."""
    selected = channel_mask(filters.channels or None, bits=filters.bits)
    totals = restrict_customers(derived("customer_purchase_totals"), filters)
    subsets = restrict_customers(derived("customer_purchase_subsets"), filters)
    totals = totals.filter((totals.channels | selected) == selected)
    subsets = subsets.filter(subsets.subset == (subsets.channels & selected))
    if settled_by is not None:
        totals = totals.filter(totals.last_day <= ibis.literal(settled_by))
        subsets = subsets.filter(subsets.customer_last_day <= ibis.literal(settled_by))
    whole = totals.select(columns)
    return whole.union(subsets.select(columns).cast(whole.schema()))


def summary_expr(filters: Filters, *, as_of: date, carry: tuple[str, ...] = ()) -> ir.Table:
    """The per-customer summary the models read (see the module docstring), one row per buyer,
    with the ``carry`` columns of customer_purchase_totals (CUSTOMER_ATTRIBUTES)."""
    # A customer with nothing after as_of keeps a stored row: their all-history totals when every
    # channel of their purchase days is selected, else their totals over the selected ones
    # (customer_purchase_subsets). Only customers active after as_of are regrouped from their
    # purchase days: as of the last day, nobody, whatever the channels.
    totals = restrict_customers(derived("customer_purchase_totals"), filters)
    selected = channel_mask(filters.channels or None, bits=filters.bits)
    regroup = totals.filter((totals.last_day > ibis.literal(as_of)) & ((totals.channels & selected) != 0))
    regroup = regroup.select("customer_id", *carry)
    # The few customers to regroup narrow the day rows before the mixed days are added up.
    regrouped = purchase_totals(purchase_days_expr(filters, as_of=as_of, customers=regroup.select("customer_id")))
    columns = [*regrouped.columns, *carry]
    stored = stored_totals(filters, columns=columns, settled_by=as_of)
    per = stored.union(regrouped.join(regroup, "customer_id").select(columns).cast(stored.schema()))
    per = per.filter(per.purchase_days > 0)
    frequency = per.purchase_days - 1
    return per.select(
        "customer_id",
        "first_purchase",
        "last_purchase",
        *carry,
        frequency=frequency,
        recency=_weeks(per.last_purchase.delta(per.first_purchase, unit="day")),
        T=_weeks(ibis.literal(as_of).delta(per.first_purchase, unit="day")),
        # Null for one-time buyers: dividing by NULL rather than by zero.
        monetary_value=(per.spend - per.first_spend) / frequency.cast("float64").nullif(0),
        historical_revenue=per.historical_revenue,
    )


def customers_expr(filters: Filters, *, as_of: date) -> ir.Table:
    """The summary with each buyer's attributes, channels used and CSAT answers up to ``as_of``."""
    summary = summary_expr(filters, as_of=as_of, carry=CUSTOMER_ATTRIBUTES)
    joined = summary.left_join(uplift.later_channels_expr(filters, as_of=as_of), "customer_id").left_join(
        uplift.csat_answers_expr(filters, as_of=as_of), "customer_id")
    return joined.select(
        "customer_id", "acquisition_channel", "region",
        segment=joined.segment.fill_null(NO_SEGMENT),
        channels_used=uplift.channels_used(joined.used_channels, joined.later, filters),
        first_purchase=joined.first_purchase, last_purchase=joined.last_purchase,
        frequency=joined.frequency, recency=joined.recency, T=joined["T"],
        monetary_value=joined.monetary_value, historical_revenue=joined.historical_revenue,
        csat_responses=joined.csat_responses.fill_null(0), csat_positive=joined.csat_positive.fill_null(0),
    )


def _group_value(customers: ir.Table, breakdown: str, acquired: ir.DateValue) -> ir.StringValue:
    if breakdown == "cohort":
        return acquired.year().cast("string").concat(" Q", acquired.quarter().cast("string"))
    if breakdown == "acquisition-channel":
        return customers.acquisition_channel
    if breakdown == "region":
        return customers.region
    return customers.segment.fill_null(NO_SEGMENT)


def _months(days: ir.IntegerValue) -> ir.IntegerValue:
    return (days * _MONTH_DAYS_DEN // _MONTH_DAYS_NUM).cast("int64")


def acquired_expr(filters: Filters, *, as_of: date, breakdown: str) -> ir.Table:
    """Customers acquired up to ``as_of``: group, acquisition day, whole months observed."""
    check_option("breakdown", breakdown, CURVE_BREAKDOWNS)
    customers = restrict_customers(unified("customers"), filters)
    acquired = customers.first_seen_at.date()
    customers = customers.filter(acquired <= ibis.literal(as_of))
    return customers.select(
        "customer_id",
        group=_group_value(customers, breakdown, acquired),
        acquired=acquired,
        # The as-of day counts as observed: a customer acquired on it has one day.
        observed=_months(ibis.literal(as_of).delta(acquired, unit="day") + 1),
    )


def cohort_sizes_expr(filters: Filters, *, as_of: date, breakdown: str) -> ir.Table:
    acquired = acquired_expr(filters, as_of=as_of, breakdown=breakdown)
    return acquired.group_by(["group", "observed"]).agg(customers=ibis._.count())


def revenue_by_month_expr(filters: Filters, *, as_of: date, breakdown: str) -> ir.Table:
    """Net revenue per group, months observed and month since acquisition (0 = the first month)."""
    acquired = acquired_expr(filters, as_of=as_of, breakdown=breakdown)
    days = purchase_days_expr(filters, as_of=as_of)
    rows = days.join(acquired, "customer_id")
    rows = rows.mutate(month=_months(rows.day.delta(rows.acquired, unit="day")))
    return rows.group_by(["group", "observed", "month"]).agg(revenue=rows.net.sum())


def holdout_counts_expr(filters: Filters, *, calibration_end: date, as_of: date) -> ir.Table:
    """Purchase days per customer after ``calibration_end`` up to ``as_of``."""
    days = purchase_days_expr(filters, as_of=as_of, after=calibration_end)
    days = days.filter(days.orders > 0)
    return days.group_by("customer_id").agg(holdout_purchases=ibis._.count())


# ---------------------------------------------------------------------------------------------
# Summary and fits

_SUMMARY_TYPES = {"frequency": pl.Int64, "recency": pl.Float64, "T": pl.Float64, "monetary_value": pl.Float64,
                  "historical_revenue": pl.Float64, "first_purchase": pl.Date, "last_purchase": pl.Date}


def summary(engine: Engine, filters: Filters, *, as_of: date | None = None) -> pl.DataFrame:
    """customer_id, first/last purchase, frequency, recency, T, monetary_value, historical_revenue."""
    as_of = resolve_as_of(engine, filters, as_of)
    return engine.to_polars(summary_expr(filters, as_of=as_of).order_by("customer_id")).cast(_SUMMARY_TYPES)


@dataclass(frozen=True)
class ClvFit:
    """Both models fitted on one summary, with the counts behind them; ``problem`` says why not."""

    as_of: date
    customers: int
    repeat_buyers: int
    bgnbd: BgNbdFit | None = None
    gamma_gamma: GammaGammaFit | None = None
    spend_frequency_correlation: float | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.bgnbd is not None and self.gamma_gamma is not None

    def parameters(self) -> dict:
        """The fitted parameters as ``journeylens report clv-model --format json`` prints them."""
        if not self.ok:
            raise InsufficientData(self.problem or "no fit")
        bg, gg = self.bgnbd, self.gamma_gamma
        return {
            "time_unit": TIME_UNIT,
            "as_of": self.as_of.isoformat(),
            "customers": self.customers,
            "repeat_buyers": self.repeat_buyers,
            "bgnbd": {"r": bg.r, "alpha": bg.alpha, "a": bg.a, "b": bg.b, "log_likelihood": bg.log_likelihood},
            "gamma_gamma": {"p": gg.p, "q": gg.q, "gamma": gg.gamma},
        }

    def diagnostics(self) -> pl.DataFrame:
        """One row per model: parameters, log-likelihood, convergence and the customers it saw."""
        rows = []
        if self.bgnbd is not None:
            bg = self.bgnbd
            rows.append({"model": "BG/NBD (purchase days)", "parameters": f"r={bg.r:.4g}, α={bg.alpha:.4g} weeks, "
                         f"a={bg.a:.4g}, b={bg.b:.4g}", "log_likelihood": bg.log_likelihood,
                         "converged": bg.converged, "customers": bg.n_customers})
        if self.gamma_gamma is not None:
            gg = self.gamma_gamma
            rows.append({"model": "Gamma-Gamma (spend per purchase day)",
                         "parameters": f"p={gg.p:.4g}, q={gg.q:.4g}, γ={gg.gamma:.4g}",
                         "log_likelihood": gg.log_likelihood, "converged": gg.converged,
                         "customers": gg.n_customers})
        schema = {"model": pl.String, "parameters": pl.String, "log_likelihood": pl.Float64,
                  "converged": pl.Boolean, "customers": pl.Int64}
        return pl.DataFrame(rows, schema=schema)


def fit_summary(frame: pl.DataFrame, *, as_of: date) -> ClvFit:
    """Fit BG/NBD and Gamma-Gamma on a summary frame; too few repeat buyers give a ``problem``."""
    x = frame["frequency"].to_numpy().astype(np.float64)
    counts = {"as_of": as_of, "customers": len(frame), "repeat_buyers": int((x > 0).sum())}
    try:
        bgnbd = fit_bgnbd(x, frame["recency"].to_numpy(), frame["T"].to_numpy())
    except InsufficientData as exc:
        return ClvFit(**counts, problem=str(exc))
    spend = frame["monetary_value"].fill_null(0.0).to_numpy()
    try:
        gamma_gamma = fit_gamma_gamma(x, spend)
    except InsufficientData as exc:
        return ClvFit(**counts, bgnbd=bgnbd, problem=str(exc))
    # Gamma-Gamma assumes spend does not depend on frequency; a strong correlation warns otherwise.
    repeat = (x > 0) & (spend > 0)
    with np.errstate(invalid="ignore", divide="ignore"):  # a constant column has no correlation: nan
        correlation = float(np.corrcoef(x[repeat], spend[repeat])[0, 1]) if repeat.sum() > 2 else math.nan
    return ClvFit(**counts, bgnbd=bgnbd, gamma_gamma=gamma_gamma,
                  spend_frequency_correlation=None if math.isnan(correlation) else correlation)


def fit_models(engine: Engine, filters: Filters, *, as_of: date | None = None) -> ClvFit:
    """Summary as of ``as_of`` and both model fits (the model-fit diagnostics of the page)."""
    as_of = resolve_as_of(engine, filters, as_of)
    return fit_summary(summary(engine, filters, as_of=as_of), as_of=as_of)


# ---------------------------------------------------------------------------------------------
# Scores and what the page shows of them


# The top-customers view keeps this many; a page shows the first n of them.
TOP_CUSTOMERS_KEPT = 10_000


@dataclass(frozen=True)
class ValueViews:
    """What the Customer value page draws from the scores (:func:`value_views`)."""

    headline: pl.DataFrame
    tiers: pl.DataFrame
    bins: pl.DataFrame
    sample: pl.DataFrame
    top: pl.DataFrame


def value_views(scores: pl.DataFrame, *, horizon_months: int) -> ValueViews:
    """Headline, tiers, distribution, scatter sample and the TOP_CUSTOMERS_KEPT most valuable
    customers, from one set of scores. The breakdown the page shows, one dimension at a time, is
    :func:`by_dimension` (0.03 s at a million customers): grouping all three here took 0.05 s
    more of every filter change."""
    return ValueViews(
        headline=headline(scores, horizon_months=horizon_months),
        tiers=tier_summary(scores),
        bins=distribution(scores),
        sample=scatter_sample(scores),
        top=top_customers(scores, n=TOP_CUSTOMERS_KEPT),
    )


@dataclass(frozen=True)
class ScoredCustomers:
    """Both model fits and, when they succeeded, one row per buyer (SCORE_COLUMNS; else None),
    with the page's views of them when asked for."""

    fit: ClvFit
    scores: pl.DataFrame | None
    views: ValueViews | None = None


def _customers(engine: Engine, filters: Filters, *, as_of: date) -> pl.DataFrame:
    return engine.to_polars(customers_expr(filters, as_of=as_of)).cast(
        {**_SUMMARY_TYPES, "channels_used": pl.Int64, "csat_responses": pl.Int64, "csat_positive": pl.Int64}
    ).sort("customer_id")


def scored_customers(
    engine: Engine,
    filters: Filters,
    *,
    as_of: date | None = None,
    horizon_months: int = DEFAULT_HORIZON_MONTHS,
    monthly_discount: float = DEFAULT_MONTHLY_DISCOUNT,
    with_views: bool = False,
) -> ScoredCustomers:
    """The fits and the scores of :func:`customer_scores` from one query, and with ``with_views``
    their :func:`value_views`.

    The models are fitted on the summary columns of the buyers' rows, the same rows in the same
    order as :func:`summary`'s: one query instead of a summary for the fit and another with the
    attributes for the scores (1.3 s of the Customer value page's 3.7 s at a million customers).
    The views are computed once with the scores, so a rerun of the page does not go over every
    buyer again (0.3 s at a million customers).
    """
    as_of = resolve_as_of(engine, filters, as_of)
    frame = _customers(engine, filters, as_of=as_of)
    fit = fit_summary(frame, as_of=as_of)
    if not fit.ok:
        return ScoredCustomers(fit=fit, scores=None)
    scores = _tiered_scores(frame, fit, horizon_months=horizon_months, monthly_discount=monthly_discount)
    views = value_views(scores, horizon_months=horizon_months) if with_views else None
    return ScoredCustomers(fit=fit, scores=scores, views=views)


def customer_scores(
    engine: Engine,
    filters: Filters,
    *,
    as_of: date | None = None,
    horizon_months: int = DEFAULT_HORIZON_MONTHS,
    monthly_discount: float = DEFAULT_MONTHLY_DISCOUNT,
    models: ClvFit | None = None,
) -> pl.DataFrame:
    """One row per buyer (SCORE_COLUMNS): summary, attributes, P(alive), expected purchases over the
    horizon, expected spend, predicted CLTV and tier. ``models`` reuses a fit as of the same date.

    Raises InsufficientData when the models cannot be fitted.
    """
    as_of = resolve_as_of(engine, filters, as_of)
    if models is None:
        result = scored_customers(engine, filters, as_of=as_of, horizon_months=horizon_months,
                                  monthly_discount=monthly_discount)
        if result.scores is None:
            raise InsufficientData(result.fit.problem)
        return result.scores
    if models.as_of != as_of:
        raise ValueError(f"the models were fitted as of {models.as_of}, not {as_of}")
    if not models.ok:
        raise InsufficientData(models.problem)
    return _tiered_scores(_customers(engine, filters, as_of=as_of), models, horizon_months=horizon_months,
                          monthly_discount=monthly_discount)


def _tiered_scores(frame: pl.DataFrame, fit: ClvFit, *, horizon_months: int, monthly_discount: float) -> pl.DataFrame:
    scored = score_customers(frame, bgnbd=fit.bgnbd, gamma_gamma=fit.gamma_gamma,
                             horizon_months=horizon_months, monthly_discount=monthly_discount)
    return assign_tiers(scored).select(SCORE_COLUMNS)


def store_scores(engine: Engine) -> pl.DataFrame:
    """customer_clv_scores as the build writes it: customer_id, p_alive, predicted_clv, clv_tier.

    One row per buyer; the scores are null when the models cannot be fitted (too few repeat buyers),
    so a segment condition on them matches nobody instead of failing.
    """
    filters = Filters()
    as_of = resolve_as_of(engine, filters)
    if as_of is None:  # no purchase in the store yet
        return pl.DataFrame(schema={"customer_id": pl.String, "p_alive": pl.Float64, "predicted_clv": pl.Float64,
                                    "clv_tier": pl.String})
    frame = summary(engine, filters, as_of=as_of)
    models = fit_summary(frame, as_of=as_of)
    if not models.ok:
        return frame.select("customer_id", p_alive=pl.lit(None, pl.Float64), predicted_clv=pl.lit(None, pl.Float64),
                            clv_tier=pl.lit(None, pl.String))
    scored = assign_tiers(score_customers(frame, bgnbd=models.bgnbd, gamma_gamma=models.gamma_gamma))
    return scored.select("customer_id", "p_alive", "predicted_clv", clv_tier="tier")


def headline(scores: pl.DataFrame, *, horizon_months: int) -> pl.DataFrame:
    """The page's headline numbers: label, unit (as views.formatting reads it), value, help."""
    n = len(scores)
    rows = [
        ("Customers", "count", float(n),
         "Customers with at least one purchase up to the as-of date (the base of every figure here)."),
        ("Repeat buyers", "percent", float((scores["frequency"] > 0).mean() * 100) if n else None,
         "Share of them with a second purchase day."),
        ("Historical CLTV", "currency", scores["historical_revenue"].mean(),
         "Mean net revenue per customer up to the as-of date."),
        ("Predicted CLTV", "currency", scores["predicted_clv"].mean(),
         f"Mean predicted value per customer over the next {horizon_months} months, discounted."),
        ("Total predicted", "currency", scores["predicted_clv"].sum(),
         f"Predicted CLTV of all these customers together over the next {horizon_months} months."),
        ("P(alive)", "percent", scores["p_alive"].mean() * 100 if n else None,
         "Average probability that a customer is still active (BG/NBD)."),
    ]
    return pl.DataFrame(rows, schema={"label": pl.String, "unit": pl.String, "value": pl.Float64, "help": pl.String},
                        orient="row")


def tier_summary(scores: pl.DataFrame) -> pl.DataFrame:
    """Per tier: customers and their share, predicted CLTV (total, share, mean, lowest), P(alive), history."""
    order = {name: i for i, (name, _) in enumerate(TIERS)}
    per = scores.group_by("tier").agg(
        customers=pl.len(),
        predicted_clv=pl.col("predicted_clv").sum(),
        mean_predicted_clv=pl.col("predicted_clv").mean(),
        min_predicted_clv=pl.col("predicted_clv").min(),
        mean_p_alive=pl.col("p_alive").mean(),
        historical_revenue=pl.col("historical_revenue").sum(),
    )
    return per.with_columns(
        customers_pct=pl.col("customers") / pl.col("customers").sum() * 100,
        value_pct=pl.col("predicted_clv") / pl.col("predicted_clv").sum() * 100,
    ).sort(pl.col("tier").replace_strict(order)).select(
        "tier", "customers", "customers_pct", "predicted_clv", "value_pct", "mean_predicted_clv",
        "min_predicted_clv", "mean_p_alive", "historical_revenue",
    )


def distribution(scores: pl.DataFrame, *, bins: int = 40, upper_quantile: float = 0.99) -> pl.DataFrame:
    """Histogram of predicted CLTV: bin_start, bin_end, customers; the last bin is open-ended.

    Bins cover 0 to the ``upper_quantile`` of predicted CLTV, so a few very large values do not
    squash the rest into one bar; customers above it fall in the last, open bin.
    """
    values = scores["predicted_clv"].drop_nulls().to_numpy()
    schema = {"bin_start": pl.Float64, "bin_end": pl.Float64, "customers": pl.Int64, "open_ended": pl.Boolean}
    if values.size == 0:
        return pl.DataFrame(schema=schema)
    top = float(np.quantile(values, upper_quantile))
    top = top if top > 0 else float(values.max()) or 1.0
    edges = np.linspace(0.0, top, bins + 1)
    counts, _ = np.histogram(np.clip(values, 0.0, top), bins=edges)
    return pl.DataFrame({"bin_start": edges[:-1], "bin_end": edges[1:], "customers": counts,
                         "open_ended": [False] * (bins - 1) + [bool(values.max() > top)]}, schema=schema)


def scatter_sample(scores: pl.DataFrame, *, n: int = 3000, seed: int = 0) -> pl.DataFrame:
    """A reproducible random sample of customers for the P(alive) vs predicted CLTV scatter."""
    rows = scores.select("customer_id", "tier", "p_alive", "predicted_clv", "frequency", "historical_revenue")
    return rows.sample(n=min(n, len(rows)), seed=seed, shuffle=False) if len(rows) > n else rows


def top_customers(scores: pl.DataFrame, *, n: int = 100) -> pl.DataFrame:
    """The ``n`` customers with the highest predicted CLTV, most valuable first."""
    # top_k rather than a full sort: the table shows at most a few hundred of 700k customers.
    top = scores.filter(pl.col("predicted_clv").is_not_null()).top_k(
        n, by=["predicted_clv", "customer_id"], reverse=[False, True])
    return top.sort(["predicted_clv", "customer_id"], descending=[True, False]).select(
        "customer_id", "tier", "predicted_clv", "p_alive", "expected_purchases", "expected_avg_spend",
        "historical_revenue", "frequency", "recency", "T", "monetary_value", "acquisition_channel", "region",
        "segment", "channels_used",
    )


def by_dimension(scores: pl.DataFrame, *, by: str) -> pl.DataFrame:
    """Per value of ``by`` (DIMENSIONS): customers, mean historical and predicted CLTV with 95%
    intervals (mean ± 1.96 s/√n, none for a group of one), total predicted CLTV and its share,
    mean P(alive). Largest total first.

    One grouping for everything: at a million customers the page computes this for every
    dimension on each filter change, and a grouping per estimate took 0.09 s a dimension.

    >>> scores = pl.DataFrame({"region": ["n", "n", "s"], "historical_revenue": [10.0, 30.0, 5.0],
    ...                        "predicted_clv": [20.0, 40.0, 60.0], "p_alive": [0.5, 1.0, 0.9]})
    >>> by_dimension(scores, by="region").select("group", "customers", "predicted_clv_mean", "value_pct").rows()
    [('n', 2, 30.0, 50.0), ('s', 1, 60.0, 50.0)]
    """
    check_option("dimension", by, DIMENSIONS)
    root_n = pl.len().cast(pl.Float64).sqrt()

    def interval(column: str) -> list[pl.Expr]:
        mean, half_width = pl.col(column).mean(), Z95 * pl.col(column).std() / root_n
        return [mean.alias(f"{column}_mean"), (mean - half_width).alias(f"{column}_low"),
                (mean + half_width).alias(f"{column}_high")]

    result = scores.group_by(group=pl.col(DIMENSIONS[by][0])).agg(
        pl.len().alias("customers"), pl.col("predicted_clv").sum().alias("predicted_clv_total"),
        pl.col("p_alive").mean().alias("mean_p_alive"), *interval("historical_revenue"), *interval("predicted_clv"),
    )
    return result.with_columns(value_pct=pl.col("predicted_clv_total") / pl.col("predicted_clv_total").sum() * 100) \
        .sort(["predicted_clv_total", "group"], descending=[True, False])


# ---------------------------------------------------------------------------------------------
# Historical CLTV and payback


def historical_curves(engine: Engine, filters: Filters, *, as_of: date | None = None, breakdown: str = "cohort",
                      min_customers: int = 30) -> pl.DataFrame:
    """Cumulative net revenue per acquired customer by whole months since acquisition, per group.

    Rows: group, month (1 = the first month), customers (acquired at least that many months before
    the as-of date; the base of the point), cumulative_revenue and revenue_per_customer. Points
    with fewer than ``min_customers`` customers behind them are left out.
    """
    as_of = resolve_as_of(engine, filters, as_of)
    schema = {"group": pl.String, "month": pl.Int64, "customers": pl.Int64, "cumulative_revenue": pl.Float64,
              "revenue_per_customer": pl.Float64}
    sizes = engine.to_polars(cohort_sizes_expr(filters, as_of=as_of, breakdown=breakdown)).cast(
        {"observed": pl.Int64, "customers": pl.Int64})
    revenue = engine.to_polars(revenue_by_month_expr(filters, as_of=as_of, breakdown=breakdown)).cast(
        {"observed": pl.Int64, "month": pl.Int64, "revenue": pl.Float64})
    longest = int(sizes["observed"].max() or 0)
    if sizes.is_empty() or longest < 1:
        return pl.DataFrame(schema=schema)
    # Month index k (0-based) is complete for customers observed more than k months.
    grid = sizes.select("group").unique().join(pl.DataFrame({"k": list(range(longest))}), how="cross")
    base = grid.join(sizes, on="group").filter(pl.col("observed") > pl.col("k")) \
        .group_by(["group", "k"]).agg(customers=pl.col("customers").sum())
    in_window = (pl.col("observed") > pl.col("k")) & (pl.col("month") <= pl.col("k"))
    earned = grid.join(revenue, on="group").filter(in_window) \
        .group_by(["group", "k"]).agg(cumulative_revenue=pl.col("revenue").sum())
    curves = base.join(earned, on=["group", "k"], how="left").with_columns(
        month=pl.col("k") + 1, cumulative_revenue=pl.col("cumulative_revenue").fill_null(0.0))
    curves = curves.with_columns(revenue_per_customer=pl.col("cumulative_revenue") / pl.col("customers"))
    return curves.filter(pl.col("customers") >= min_customers).select(list(schema)).cast(schema) \
        .sort(["group", "month"])


def payback(curves: pl.DataFrame, *, costs: tuple[tuple[str, float], ...]) -> pl.DataFrame:
    """Months until cumulative net revenue per acquired customer reaches the acquisition cost.

    ``curves`` are :func:`historical_curves` by acquisition channel; ``costs`` pairs (channel,
    cost per acquired customer). payback_month is null when the cost is not reached within the
    months observed (months_observed), where revenue_per_customer is the last value.
    """
    cost_frame = pl.DataFrame(list(costs), schema={"group": pl.String, "acquisition_cost": pl.Float64}, orient="row")
    reached = curves.join(cost_frame, on="group").filter(pl.col("revenue_per_customer") >= pl.col("acquisition_cost")) \
        .group_by("group").agg(payback_month=pl.col("month").min())
    last = curves.sort("month").group_by("group").agg(months_observed=pl.col("month").last(),
                                                      revenue_per_customer=pl.col("revenue_per_customer").last())
    return cost_frame.join(last, on="group", how="left").join(reached, on="group", how="left").rename(
        {"group": "acquisition_channel"}).select(
        "acquisition_channel", "acquisition_cost", "payback_month", "months_observed", "revenue_per_customer"
    ).sort("acquisition_channel")


# ---------------------------------------------------------------------------------------------
# Holdout check


@dataclass(frozen=True)
class HoldoutCheck:
    """Predicted vs actual repeat purchase days after a calibration date; ``problem`` says why not."""

    calibration_end: date
    as_of: date
    weeks: int
    table: pl.DataFrame
    bgnbd: BgNbdFit | None = None
    problem: str | None = None


_HOLDOUT_SCHEMA = {"bucket": pl.String, "customers": pl.Int64, "actual": pl.Float64, "predicted": pl.Float64,
                   "actual_per_customer": pl.Float64, "predicted_per_customer": pl.Float64,
                   "difference_pct": pl.Float64}


def bucket_label(frequency: pl.Expr, *, top: int = HOLDOUT_TOP_BUCKET) -> pl.Expr:
    return pl.when(frequency >= top).then(pl.lit(f"{top}+")).otherwise(frequency.cast(pl.String))


def holdout(engine: Engine, filters: Filters, *, as_of: date | None = None,
            weeks: int = DEFAULT_HOLDOUT_WEEKS) -> HoldoutCheck:
    """Fit BG/NBD as of ``as_of`` − ``weeks`` and compare expected with actual repeat purchase days.

    The table has one row per calibration frequency (0, 1, …, 7+) and a last row ``all``:
    customers, actual and predicted purchase days in the holdout weeks (totals and per customer)
    and the relative difference of predicted from actual in %.
    """
    if weeks < 1:
        raise ValueError("the holdout period must be at least one week")
    as_of = resolve_as_of(engine, filters, as_of)
    calibration_end = as_of - timedelta(weeks=weeks)
    empty = pl.DataFrame(schema=_HOLDOUT_SCHEMA)
    calibration = summary(engine, filters, as_of=calibration_end)
    try:
        model = fit_bgnbd(calibration["frequency"].to_numpy().astype(np.float64), calibration["recency"].to_numpy(),
                          calibration["T"].to_numpy())
    except InsufficientData as exc:
        return HoldoutCheck(calibration_end, as_of, weeks, empty,
                            problem=f"No holdout check with a calibration date of {calibration_end}: {exc}")
    actual = engine.to_polars(holdout_counts_expr(filters, calibration_end=calibration_end, as_of=as_of))
    customers = calibration.join(actual, on="customer_id", how="left").with_columns(
        actual=pl.col("holdout_purchases").fill_null(0).cast(pl.Float64))
    # Customers with the same (x, t_x, T) have the same expectation: evaluate each history once.
    histories = customers.group_by(["frequency", "recency", "T"]).agg(customers=pl.len(), actual=pl.col("actual").sum())
    expected = conditional_expected_purchases(model, histories["frequency"].to_numpy().astype(np.float64),
                                              histories["recency"].to_numpy(), histories["T"].to_numpy(), t=weeks)
    histories = histories.with_columns(predicted=pl.Series(expected) * pl.col("customers"),
                                       bucket=bucket_label(pl.col("frequency")),
                                       order=pl.col("frequency").clip(upper_bound=HOLDOUT_TOP_BUCKET))
    per_bucket = histories.group_by(["order", "bucket"]).agg(pl.col("customers", "actual", "predicted").sum())
    total = per_bucket.select(order=pl.lit(HOLDOUT_TOP_BUCKET + 1, pl.Int64), bucket=pl.lit("all"),
                              customers=pl.col("customers").sum(), actual=pl.col("actual").sum(),
                              predicted=pl.col("predicted").sum())
    table = pl.concat([per_bucket.cast({"order": pl.Int64}), total], how="vertical_relaxed").sort("order").with_columns(
        actual_per_customer=pl.col("actual") / pl.col("customers"),
        predicted_per_customer=pl.col("predicted") / pl.col("customers"),
        difference_pct=pl.when(pl.col("actual") > 0).then((pl.col("predicted") / pl.col("actual") - 1) * 100),
    )
    return HoldoutCheck(calibration_end, as_of, weeks, table.select(list(_HOLDOUT_SCHEMA)).cast(_HOLDOUT_SCHEMA),
                        bgnbd=model)


def portable_expressions() -> dict[str, ir.Expr]:
    f = Filters(start=date(2026, 1, 1), end=date(2026, 3, 31), channels=("web", "store"), regions=("North",),
                segments=("gold",))
    as_of = date(2026, 3, 31)
    expressions = {
        "clv.summary": summary_expr(f, as_of=as_of),
        "clv.customers": customers_expr(f, as_of=as_of),
        "clv.holdout": holdout_counts_expr(f, calibration_end=date(2025, 9, 30), as_of=as_of),
    }
    for breakdown in CURVE_BREAKDOWNS:
        expressions[f"clv.cohort_sizes.{breakdown}"] = cohort_sizes_expr(f, as_of=as_of, breakdown=breakdown)
        expressions[f"clv.revenue_by_month.{breakdown}"] = revenue_by_month_expr(f, as_of=as_of, breakdown=breakdown)
    return expressions
