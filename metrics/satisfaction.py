"""CSAT and NPS trends, score distributions, and satisfaction joined to retention, churn and value.

Definitions (shown in the UI next to each chart):

- CSAT = share of 4–5 ratings among 1–5 survey answers, with the response count and a 95% Wilson
  interval. A cell with fewer answers than the ``min_sample`` setting is not given a rate.
- NPS = % promoters (9–10) minus % detractors (0–6) among 0–10 answers, from −100 to 100.
- The channel of an answer is the channel the survey response was recorded on (the contact's
  channel). The date range picks the answers; regions and segments pick the customers.
- CSAT band of a customer = the band (1-2, 3, 4-5) of their latest answer.
"""

from __future__ import annotations

from datetime import date

import ibis
import ibis.expr.types as ir
import polars as pl

from data_access.derived import derived
from data_access.derived_retention import period_start_expr
from metrics import retention as ret
from metrics.engine import Engine
from metrics.filters import Filters, apply_filters, restrict_customers
from metrics.stats import compare_proportions, mean_bounds, with_wilson

CSAT_SCORES = (1, 2, 3, 4, 5)
NO_CONTACT, CONTACT = "no support contact", "support contact"
# The retention comparison is read at about one quarter after the first purchase.
HEADLINE_INDEX = {"week": 13, "month": 3}


def responses_expr() -> ir.Table:
    feedback = derived("feedback_events")
    return feedback.filter(feedback.csat_score.notnull() | feedback.nps_score.notnull())


def has_survey_data(engine: Engine) -> bool:
    """True when the store holds any CSAT or NPS answer at all (in any date range)."""
    return int(engine.to_polars(responses_expr().agg(n=ibis._.count()))["n"][0]) > 0


def _answers(filters: Filters) -> ir.Table:
    return apply_filters(responses_expr(), filters, day_column="day")


def csat_counts_expr(filters: Filters, *, period: ret.Period) -> ir.Table:
    answers = _answers(filters)
    answers = answers.filter(answers.csat_score.notnull())
    return answers.group_by(period=period_start_expr(answers.day, period), channel=answers.channel).agg(
        responses=ibis._.count(), positive=(answers.csat_score >= 4).cast("int64").sum()
    )


def _hide_small(frame: pl.DataFrame, *, columns: list[str], min_sample: int) -> pl.DataFrame:
    shown = pl.col("responses") >= min_sample
    return frame.with_columns(shown=shown).with_columns(
        [pl.when(shown).then(pl.col(c)).otherwise(None).alias(c) for c in columns]
    )


def csat_trend(
    engine: Engine, filters: Filters, *, period: ret.Period = "month", min_sample: int = 30
) -> pl.DataFrame:
    """Per period and channel, plus channel "all": responses, positive, csat_pct/low/high, shown.

    Rates and bounds are null where ``shown`` is false (fewer than ``min_sample`` answers).
    """
    ret.check_option("period", period, ret.PERIODS)
    schema = {"period": pl.Date, "channel": pl.String, "responses": pl.Int64, "positive": pl.Int64}
    counts = engine.to_polars(csat_counts_expr(filters, period=period)).cast(schema)
    total = counts.group_by("period").agg(
        channel=pl.lit("all"), responses=pl.col("responses").sum(), positive=pl.col("positive").sum()
    )
    frame = pl.concat([counts, total.select(counts.columns)]).sort(["period", "channel"])
    frame = with_wilson(frame, successes="positive", trials="responses", prefix="csat")
    return _hide_small(frame, columns=["csat_pct", "csat_low", "csat_high"], min_sample=min_sample)


def nps_counts_expr(filters: Filters, *, period: ret.Period) -> ir.Table:
    answers = _answers(filters)
    answers = answers.filter(answers.nps_score.notnull())
    score = answers.nps_score
    return answers.group_by(period=period_start_expr(answers.day, period)).agg(
        responses=ibis._.count(),
        promoters=(score >= 9).cast("int64").sum(),
        passives=score.between(7, 8).cast("int64").sum(),
        detractors=(score <= 6).cast("int64").sum(),
    )


def nps_trend(
    engine: Engine, filters: Filters, *, period: ret.Period = "month", min_sample: int = 30
) -> pl.DataFrame:
    """Per period: responses, promoters, passives, detractors, nps (null under ``min_sample``), shown."""
    ret.check_option("period", period, ret.PERIODS)
    counts = engine.to_polars(nps_counts_expr(filters, period=period)).sort("period")
    counts = counts.cast({c: pl.Int64 for c in ("responses", "promoters", "passives", "detractors")})
    frame = counts.with_columns(nps=(pl.col("promoters") - pl.col("detractors")) / pl.col("responses") * 100)
    return _hide_small(frame, columns=["nps"], min_sample=min_sample)


def score_counts_expr(filters: Filters) -> ir.Table:
    answers = _answers(filters)
    answers = answers.filter(answers.csat_score.notnull())
    return answers.group_by(["channel", "csat_score"]).agg(responses=ibis._.count())


def score_distribution(engine: Engine, filters: Filters) -> pl.DataFrame:
    """Per channel and CSAT score 1–5: responses and share of the channel's answers (%)."""
    counts = engine.to_polars(score_counts_expr(filters)).cast(
        {"csat_score": pl.Int64, "responses": pl.Int64}
    )
    if counts.is_empty():
        return pl.DataFrame(
            schema={
                "channel": pl.String,
                "csat_score": pl.Int64,
                "responses": pl.Int64,
                "share_pct": pl.Float64,
            }
        )
    grid = counts.select("channel").unique().join(pl.DataFrame({"csat_score": CSAT_SCORES}), how="cross")
    frame = grid.join(counts, on=["channel", "csat_score"], how="left").with_columns(
        pl.col("responses").fill_null(0)
    )
    return frame.with_columns(
        share_pct=pl.col("responses") / pl.col("responses").sum().over("channel") * 100
    ).sort(["channel", "csat_score"])


def band_retention(engine: Engine, filters: Filters, *, period: ret.Period = "month") -> pl.DataFrame:
    """Retention cells by CSAT band of the latest answer: first-time purchase cohorts, "on or after"."""
    return ret.retention(
        engine,
        filters,
        period=period,
        cohort_type="first-time",
        returning="on-or-after",
        activity="purchase",
        breakdown=ret.CSAT_BAND,
    )


def band_difference(curves: pl.DataFrame) -> pl.DataFrame:
    """Per period index: retention of band 4-5 minus band 1-2 (pp) with interval and p-value.

    >>> curves = pl.DataFrame({"group": ["1-2", "4-5"], "period_index": [3, 3],
    ...                        "retained": [15, 30], "cohort_size": [100, 100]})
    >>> row = band_difference(curves).row(0, named=True)
    >>> row["diff_pp"], row["significant"]
    (15.0, True)
    """
    low_band, high_band = ret.CSAT_BANDS[0], ret.CSAT_BANDS[-1]

    def band(name: str, suffix: str) -> pl.DataFrame:
        rows = curves.filter(pl.col("shown")) if "shown" in curves.columns else curves
        return rows.filter(pl.col("group") == name).select(
            "period_index", **{f"retained_{suffix}": "retained", f"customers_{suffix}": "cohort_size"}
        )

    paired = (
        band(high_band, "high")
        .join(band(low_band, "low"), on="period_index", how="inner")
        .sort("period_index")
    )
    compared = compare_proportions(
        paired, x1="retained_high", n1="customers_high", x2="retained_low", n2="customers_low"
    )
    return compared.with_columns(
        retention_high_pct=pl.col("retained_high") / pl.col("customers_high") * 100,
        retention_low_pct=pl.col("retained_low") / pl.col("customers_low") * 100,
    )


def churn_by_contact_expr(filters: Filters, *, threshold_days: int, last_day: date) -> ir.Table:
    """Churn counts per comparison group: support contact or not, and CSAT band of the latest answer.

    Contacts and answers are those in the churn base window, so each one is at least N days old.
    """
    base = ret.churn_base_expr(filters, activity="any", threshold_days=threshold_days, last_day=last_day)
    feedback = restrict_customers(derived("feedback_events"), filters)
    feedback = feedback.filter(
        ret.in_observation_window(feedback.day, filters, last_day=last_day, threshold_days=threshold_days)
    )
    contacted = feedback.filter(feedback.event_type == "support_contact").select("customer_id").distinct()
    answers = feedback.filter(feedback.csat_score.notnull())
    latest = answers.group_by("customer_id").agg(score=answers.csat_score.argmax(answers.occurred_at))
    by_contact = base.left_join(contacted.mutate(contact=ibis.literal(True)), "customer_id").select(
        comparison=ibis.literal("support contact"),
        group=ibis.cases((ibis._.contact.notnull(), CONTACT), else_=NO_CONTACT),
        churned=ibis._.churned,
    )
    by_band = base.join(latest, "customer_id").select(
        comparison=ibis.literal("CSAT band"), group=ret.csat_band_expr(ibis._.score), churned=ibis._.churned
    )
    rows = by_contact.union(by_band)
    return rows.group_by(["comparison", "group"]).agg(
        customers=ibis._.count(), churned=rows.churned.cast("int64").sum()
    )


def churn_by_contact(engine: Engine, filters: Filters, *, threshold_days: int = 90) -> pl.DataFrame:
    """comparison, group, customers, churned and churn_pct/low/high (%), in display order."""
    last_day = ret.last_day_with_data(engine)
    schema = {"comparison": pl.String, "group": pl.String, "customers": pl.Int64, "churned": pl.Int64}
    counts = pl.DataFrame(schema=schema)
    if last_day is not None:
        counts = engine.to_polars(
            churn_by_contact_expr(filters, threshold_days=threshold_days, last_day=last_day)
        ).cast(schema)
    order = {name: i for i, name in enumerate((NO_CONTACT, CONTACT, *ret.CSAT_BANDS))}
    counts = counts.sort(pl.col("group").replace_strict(order, default=len(order)))
    return with_wilson(counts, successes="churned", trials="customers", prefix="churn")


def churn_differences(churn: pl.DataFrame, *, min_sample: int = 1) -> pl.DataFrame:
    """Support contact vs none, and CSAT 1-2 vs 4-5: difference in churn (pp), interval, p-value.

    A comparison with a group under ``min_sample`` customers keeps its counts but gets no result.
    """
    pairs = ((CONTACT, NO_CONTACT), (ret.CSAT_BANDS[0], ret.CSAT_BANDS[-1]))
    counts = {row["group"]: row for row in churn.to_dicts()}
    rows = [
        {
            "comparison": f"{first} vs {second}",
            "churned_1": counts[first]["churned"],
            "customers_1": counts[first]["customers"],
            "churned_2": counts[second]["churned"],
            "customers_2": counts[second]["customers"],
        }
        for first, second in pairs
        if first in counts and second in counts
    ]
    schema = {
        "comparison": pl.String,
        "churned_1": pl.Int64,
        "customers_1": pl.Int64,
        "churned_2": pl.Int64,
        "customers_2": pl.Int64,
    }
    compared = compare_proportions(
        pl.DataFrame(rows, schema=schema), x1="churned_1", n1="customers_1", x2="churned_2", n2="customers_2"
    )
    enough = pl.min_horizontal("customers_1", "customers_2") >= min_sample
    results = ("diff_pp", "diff_low_pp", "diff_high_pp", "p_value", "significant")
    return compared.with_columns([pl.when(enough).then(pl.col(c)).otherwise(None).alias(c) for c in results])


def value_by_band_expr(filters: Filters) -> ir.Table:
    """CLTV to date (net revenue) of customers who answered in the date range, by latest band."""
    answered = _answers(filters)
    answered = answered.filter(answered.csat_score.notnull()).select("customer_id").distinct()
    facts = derived("customer_facts")
    facts = facts.filter(facts.latest_csat.notnull()).semi_join(answered, "customer_id")
    banded = facts.select(band=ret.csat_band_expr(facts.latest_csat), value=facts.net_revenue)
    return banded.group_by("band").agg(
        customers=ibis._.count(), mean_value=banded.value.mean(), std_value=banded.value.std()
    )


def value_by_band(engine: Engine, filters: Filters) -> pl.DataFrame:
    """band, customers, mean CLTV to date and its 95% interval (normal approximation)."""
    frame = engine.to_polars(value_by_band_expr(filters)).cast({"customers": pl.Int64})
    low, high = mean_bounds("mean_value", "std_value", "customers")
    order = {band: i for i, band in enumerate(ret.CSAT_BANDS)}
    return frame.with_columns(mean_low=low, mean_high=high).sort(
        pl.col("band").replace_strict(order, default=9)
    )


def portable_expressions() -> dict[str, ir.Expr]:
    f = Filters(
        start=date(2026, 1, 1),
        end=date(2026, 3, 31),
        channels=("support",),
        regions=("North",),
        segments=("gold",),
    )
    return {
        "satisfaction.surveys": responses_expr().agg(n=ibis._.count()),
        "satisfaction.csat": csat_counts_expr(f, period="week"),
        "satisfaction.nps": nps_counts_expr(f, period="month"),
        "satisfaction.scores": score_counts_expr(f),
        "satisfaction.churn": churn_by_contact_expr(f, threshold_days=60, last_day=date(2026, 6, 30)),
        "satisfaction.value": value_by_band_expr(f),
    }


# What each chart of the Satisfaction page shows, beside the chart (placeholders: period, min_sample, days,
# currency).
DEFINITIONS = {
    "csat": (
        "CSAT = share of 4–5 ratings among 1–5 answers per {period}, by the channel the answer was "
        "recorded on (the contact's channel); whiskers: 95% Wilson interval. A {period} × channel cell "
        "with fewer than {min_sample} answers (setting min_sample) gets no rate."
    ),
    "nps": (
        "NPS = % promoters (9–10) minus % detractors (0–6) among 0–10 answers, from −100 to 100. Bars: "
        "the answers behind it. No NPS for a {period} with fewer than {min_sample} answers."
    ),
    "scores": ("How each channel's 1–5 answers split by score, in % of that channel's answers."),
    "band_retention": (
        "Customers who answered a survey, by the band of their latest answer. Cohort = the {period} of "
        "the first purchase (overlapping the date range); retained in {period} N = a purchase N or more "
        "{period}s later; cohort-size-weighted over complete {period}s, 95% Wilson bands. The data holds "
        "the 4-5 minus 1-2 difference per {period} with its interval and p-value (two-proportion z-test)."
    ),
    "churn": (
        "Churned = no event at all in the last {days} days with data. Base: customers active in the date "
        "range up to {days} days before the last day with data; “support contact” = a support_contact "
        "event in that window; CSAT band = the latest answer in that window. Whiskers: 95% Wilson "
        "interval."
    ),
    "value": (
        "Historical CLTV = net revenue to date ({currency}) per customer, averaged over the customers who"
        " answered a survey in the date range, by the band of their latest answer. Whiskers: 95% interval"
        " of the mean (normal approximation)."
    ),
}
