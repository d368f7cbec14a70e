"""Customer lifetime value: the per-customer summary on hand-written histories, history curves,
payback, uplift statistics, the holdout check against the demo generator's known truth, and the
CLI reports. Each expected number names the customer (and purchases) behind it."""

from __future__ import annotations

import json
import math
from datetime import date, datetime, time, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from scipy import stats

from data_access.derived import derived
from data_access.derived_clv import sum_over_channels
from data_access.store import Store
from journeylens.cli import main
from metrics import clv, uplift
from metrics.clv_models import probability_alive
from metrics.filters import Filters
from tests.factories import build_store, customer, event
from views import clv_charts

MARCH_2 = date(2026, 3, 2)
SUMMARY_SCHEMA = {"customer_id": pl.String, "first_purchase": pl.Date, "last_purchase": pl.Date,
                  "frequency": pl.Int64, "recency": pl.Float64, "T": pl.Float64, "monetary_value": pl.Float64,
                  "historical_revenue": pl.Float64}


def _histories_store(path: Path) -> Store:
    """A: two purchases on one day, two later days and a refund. B: one-time buyer. C: a second
    purchase after 2 March. D: never buys. E: buys on web and in store on the same day."""
    customers = [
        customer("A", "2026-01-05 09:00", "web", "North", "gold"),
        customer("B", "2026-02-01 11:00", "store", "South"),
        customer("C", "2026-02-20 12:00", "web", "North"),
        customer("D", "2026-02-01 08:00", "app", "South"),
        customer("E", "2026-01-10 10:00", "web", "North", "silver"),
    ]
    events = [
        event("a1", "A", "2026-01-05 09:00", "web", "purchase", revenue=10.0, order_id="oa1"),
        event("a2", "A", "2026-01-05 18:00", "web", "purchase", revenue=20.0, order_id="oa2"),
        event("a3", "A", "2026-01-19 10:00", "store", "purchase", revenue=30.0, order_id="oa3"),
        event("a4", "A", "2026-02-01 10:00", "web", "page_view"),
        event("a5", "A", "2026-02-02 10:00", "web", "purchase", revenue=40.0, order_id="oa4"),
        event("a6", "A", "2026-02-10 10:00", "web", "refund", revenue=-10.0, order_id="oa4"),
        event("b1", "B", "2026-02-01 11:00", "store", "purchase", revenue=50.0, order_id="ob1"),
        event("c1", "C", "2026-02-20 12:00", "web", "purchase", revenue=15.0, order_id="oc1"),
        event("c2", "C", "2026-03-10 12:00", "web", "purchase", revenue=25.0, order_id="oc2"),
        event("d1", "D", "2026-02-01 08:00", "app", "page_view"),
        event("e1", "E", "2026-01-10 10:00", "web", "purchase", revenue=5.0, order_id="oe1"),
        event("e2", "E", "2026-01-10 16:00", "store", "purchase", revenue=7.0, order_id="oe2"),
        event("e3", "E", "2026-01-24 16:00", "store", "purchase", revenue=8.0, order_id="oe3"),
        event("e4", "E", "2026-02-07 10:00", "web", "purchase", revenue=12.0, order_id="oe4"),
    ]
    return build_store(path, customers=customers, events=events)


@pytest.fixture(scope="module")
def histories(tmp_path_factory) -> Store:
    return _histories_store(tmp_path_factory.mktemp("clv") / "histories.duckdb")


def _expected(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=SUMMARY_SCHEMA, orient="row")


def test_summary_counts_purchase_days_in_weeks(histories):
    result = clv.summary(histories, Filters(), as_of=MARCH_2)
    expected = _expected([
        # A: 10 + 20 on 5 Jan are one occasion, then 19 Jan and 2 Feb: 2 repeat days, 28 days after the
        # first; 56 days to 2 March; repeat spend (30 + 40) / 2; net 10 + 20 + 30 + 40 - 10 refund.
        ("A", date(2026, 1, 5), date(2026, 2, 2), 2, 4.0, 8.0, 35.0, 90.0),
        # B: one purchase of 50 on 1 Feb, 29 days before 2 March; no repeat spend.
        ("B", date(2026, 2, 1), date(2026, 2, 1), 0, 0.0, 29 / 7, None, 50.0),
        # C: only the 15 of 20 Feb; the 25 of 10 March is after the as-of date.
        ("C", date(2026, 2, 20), date(2026, 2, 20), 0, 0.0, 10 / 7, None, 15.0),
        # D never bought, so has no row. E: web 5 + store 7 on 10 Jan are one occasion, then 8 and 12.
        ("E", date(2026, 1, 10), date(2026, 2, 7), 2, 4.0, 51 / 7, 10.0, 32.0),
    ])
    assert_frame_equal(result, expected)


def test_a_later_as_of_date_takes_in_later_purchases(histories):
    result = clv.summary(histories, Filters(), as_of=date(2026, 3, 31)).filter(pl.col("customer_id") == "C")
    # C: 15 on 20 Feb, 25 on 10 March (18 days later), 39 days to 31 March.
    assert_frame_equal(result, _expected([("C", date(2026, 2, 20), date(2026, 3, 10), 1, 18 / 7, 39 / 7, 25.0, 40.0)]))


def test_the_date_range_end_is_the_default_as_of(histories):
    result = clv.summary(histories, Filters(start=date(2026, 3, 1), end=MARCH_2))
    # The start of the range does not cut history: A's January purchases still count.
    assert result.filter(pl.col("customer_id") == "A")["frequency"].item() == 2
    assert clv.resolve_as_of(histories, Filters(end=MARCH_2)) == MARCH_2
    assert clv.resolve_as_of(histories, Filters()) == date(2026, 3, 10)  # C's last purchase is the last event


def test_channel_filter_decides_which_purchases_count(histories):
    result = clv.summary(histories, Filters(channels=("store",)), as_of=MARCH_2)
    expected = _expected([
        ("A", date(2026, 1, 19), date(2026, 1, 19), 0, 0.0, 6.0, None, 30.0),  # A's 30 in store on 19 Jan only
        ("B", date(2026, 2, 1), date(2026, 2, 1), 0, 0.0, 29 / 7, None, 50.0),
        ("E", date(2026, 1, 10), date(2026, 1, 24), 1, 2.0, 51 / 7, 8.0, 15.0),  # E's store 7, then 8
    ])
    assert_frame_equal(result, expected)


def test_every_channel_selected_gives_the_all_channels_summary(histories):
    # No channel filter reads the roll-up over channels; naming every channel regroups the
    # per-channel rows (E's web 5 and store 7 on 10 Jan become one occasion both ways).
    every_channel = Filters(channels=("app", "store", "web"))
    assert_frame_equal(clv.summary(histories, every_channel, as_of=MARCH_2), clv.summary(histories, Filters(), as_of=MARCH_2))


def test_region_and_segment_filters_restrict_customers(histories):
    north = clv.summary(histories, Filters(regions=("North",)), as_of=MARCH_2)
    assert north["customer_id"].to_list() == ["A", "C", "E"]
    gold = clv.summary(histories, Filters(segments=("gold",)), as_of=MARCH_2)
    assert gold["customer_id"].to_list() == ["A"]


def test_too_few_repeat_buyers_is_a_problem_not_a_crash(histories):
    fit = clv.fit_models(histories, Filters(), as_of=MARCH_2)
    assert not fit.ok
    assert "at least 20 repeat buyers" in fit.problem and "2 of 4 customers" in fit.problem  # A and E repeat
    with pytest.raises(clv.InsufficientData):
        clv.customer_scores(histories, Filters(), as_of=MARCH_2, models=fit)
    check = clv.holdout(histories, Filters(), as_of=MARCH_2, weeks=4)
    assert check.problem and check.table.is_empty()


def test_historical_curves_average_customers_observed_that_long(histories):
    result = clv.historical_curves(histories, Filters(), as_of=date(2026, 3, 31), breakdown="acquisition-channel",
                                   min_customers=1)
    expected = pl.DataFrame(
        [
            ("app", 1, 1, 0.0, 0.0),  # D, acquired 1 Feb (one whole month to 31 March), never bought
            ("store", 1, 1, 50.0, 50.0),  # B's 50 on its first day
            # web, first month: A 10 + 20 + 30 + 40 (2 Feb is day 28), E 5 + 7 + 8 + 12, C 15 + 25 (day 18).
            ("web", 1, 3, 172.0, 172.0 / 3),
            # web, two months: only A and E (acquired in January) are observed; A's refund of 10 on day 36.
            ("web", 2, 2, 122.0, 61.0),
        ],
        schema=["group", "month", "customers", "cumulative_revenue", "revenue_per_customer"], orient="row",
    )
    assert_frame_equal(result, expected)
    payback = clv.payback(result, costs=(("app", 10.0), ("store", 60.0), ("web", 60.0)))
    assert payback.to_dicts() == [
        {"acquisition_channel": "app", "acquisition_cost": 10.0, "payback_month": None, "months_observed": 1,
         "revenue_per_customer": 0.0},
        {"acquisition_channel": "store", "acquisition_cost": 60.0, "payback_month": None, "months_observed": 1,
         "revenue_per_customer": 50.0},  # B's 50 has not covered 60 yet
        {"acquisition_channel": "web", "acquisition_cost": 60.0, "payback_month": 2, "months_observed": 2,
         "revenue_per_customer": 61.0},  # 57.33 after one month, 61 after two
    ]


def test_cohort_curves_are_labelled_by_acquisition_quarter(histories):
    result = clv.historical_curves(histories, Filters(), as_of=date(2026, 3, 31), breakdown="cohort", min_customers=1)
    assert result["group"].unique().sort().to_list() == ["2026 Q1"]


# ---------------------------------------------------------------------------------------------
# Uplift statistics


def _scores(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(rows, orient="row", schema={
        "customer_id": pl.String, "channels_used": pl.Int64, "historical_revenue": pl.Float64,
        "predicted_clv": pl.Float64, "frequency": pl.Int64, "first_purchase": pl.Date, "last_purchase": pl.Date,
        "csat_responses": pl.Int64, "csat_positive": pl.Int64,
    })


def test_uplift_means_rates_and_their_intervals():
    old, recent = date(2026, 1, 1), date(2026, 6, 1)
    scores = _scores([
        # One channel: historical 10, 20, 30 (mean 20, s = 10); repeat: u2 only; retained: u2 of u1, u2.
        ("u1", 1, 10.0, 5.0, 0, old, old, 2, 2),
        ("u2", 1, 20.0, 5.0, 3, old, recent, 0, 0),
        ("u3", 1, 30.0, 5.0, 1, recent, recent, 2, 0),  # first bought in the last 90 days: no retention figure
        # Three channels: historical 40 and 60 (mean 50, s = 14.14).
        ("m1", 3, 40.0, 9.0, 2, old, recent, 1, 1),
        ("m2", 4, 60.0, 11.0, 2, old, recent, 1, 1),
    ])
    result = uplift.compare(scores, as_of=date(2026, 6, 30), min_customers=1)
    rows = {(r["metric"], r["group"]): r for r in result.to_dicts()}
    one, multi = rows[("historical_clv", "1 channel")], rows[("historical_clv", "3+ channels")]
    assert (one["customers"], one["value"]) == (3, pytest.approx(20.0))
    assert one["high"] - one["value"] == pytest.approx(uplift.Z95 * 10 / math.sqrt(3))
    assert multi["value"] == pytest.approx(50.0)
    assert multi["difference"] == pytest.approx(30.0)
    se = math.sqrt(10**2 / 3 + 200 / 2)  # s² / n of each group
    assert (multi["difference_low"], multi["difference_high"]) == (pytest.approx(30 - uplift.Z95 * se),
                                                                   pytest.approx(30 + uplift.Z95 * se))
    assert multi["relative_pct"] == pytest.approx(150.0)
    assert rows[("repeat_rate", "1 channel")]["value"] == pytest.approx(200 / 3)  # u2, u3 of three
    assert rows[("retention", "1 channel")]["customers"] == 2  # u1, u2
    assert rows[("retention", "1 channel")]["value"] == pytest.approx(50.0)  # u2
    assert rows[("csat", "1 channel")]["value"] == pytest.approx(50.0)  # 2 positive of u1's 2 and u3's 2 answers
    assert rows[("csat", "1 channel")]["customers"] == 2
    assert ("historical_clv", "2 channels") not in rows  # nobody uses exactly two channels
    assert rows[("predicted_clv", "1 channel")]["difference"] is None  # the baseline has no difference


def test_uplift_hides_groups_below_the_minimum_sample():
    scores = _scores([("u1", 1, 10.0, 1.0, 0, date(2026, 1, 1), date(2026, 1, 1), 0, 0)] * 3
                     + [("m1", 2, 30.0, 1.0, 0, date(2026, 1, 1), date(2026, 1, 1), 0, 0)])
    result = uplift.compare(scores, as_of=date(2026, 6, 30), min_customers=2)
    two = result.filter((pl.col("metric") == "historical_clv") & (pl.col("group") == "2 channels")).row(0, named=True)
    assert two["customers"] == 1 and two["value"] is None and two["difference"] is None


# ---------------------------------------------------------------------------------------------
# The demo store, whose latent rates are known (demo_truth)


@pytest.fixture(scope="module")
def demo(demo_store) -> Store:
    return Store(demo_store)


@pytest.fixture(scope="module")
def check(demo) -> clv.HoldoutCheck:
    return clv.holdout(demo, Filters(), as_of=date(2026, 10, 31), weeks=26)


def _truth(demo: Store) -> pl.DataFrame:
    return demo.connection.sql("SELECT * FROM demo_truth").pl()


def test_holdout_actuals_recount_the_raw_purchases(demo, check):
    events = demo.connection.sql("SELECT customer_id, occurred_at FROM events WHERE event_type = 'purchase'").pl()
    days = events.with_columns(day=pl.col("occurred_at").dt.date()).select("customer_id", "day").unique()
    calibration = days.filter(pl.col("day") <= check.calibration_end)
    holdout = days.filter((pl.col("day") > check.calibration_end) & (pl.col("day") <= check.as_of))
    first = calibration.group_by("customer_id").agg(x=pl.len() - 1)
    actual = first.join(holdout.group_by("customer_id").agg(n=pl.len()), on="customer_id", how="left")
    assert check.calibration_end == date(2026, 5, 2)  # 26 weeks before 31 October
    total = check.table.filter(pl.col("bucket") == "all").row(0, named=True)
    assert total["customers"] == len(first)
    assert total["actual"] == actual["n"].fill_null(0).sum()
    seven_plus = check.table.filter(pl.col("bucket") == "7+").row(0, named=True)
    assert seven_plus["actual"] == actual.filter(pl.col("x") >= 7)["n"].fill_null(0).sum()


def test_holdout_predictions_track_actual_purchases(check):
    rows = {r["bucket"]: r for r in check.table.to_dicts()}
    assert list(rows) == ["0", "1", "2", "3", "4", "5", "6", "7+", "all"]
    assert rows["all"]["predicted"] == pytest.approx(rows["all"]["actual"], rel=0.10)
    for bucket in ("0", "1", "2", "7+"):  # the buckets with about a hundred customers or more
        assert rows[bucket]["predicted"] == pytest.approx(rows[bucket]["actual"], rel=0.20), bucket
    # More past purchases, more future ones: the model's ordering holds at the ends.
    assert rows["7+"]["predicted_per_customer"] > 2 * rows["1"]["predicted_per_customer"]


def test_holdout_fit_recovers_the_generators_latent_rates(demo, check):
    truth = _truth(demo)
    calibrated = clv.summary(demo, Filters(), as_of=check.calibration_end).join(truth, on="customer_id")
    bg = check.bgnbd
    # Mean purchase rate r / α against the latent weekly rates of the same customers.
    assert bg.r / bg.alpha == pytest.approx(calibrated["purchase_rate_per_week"].mean(), rel=0.2)
    # Mean dropout per repeat purchase a / (a + b) against the latent dropout probabilities. A poor
    # support contact multiplies a customer's dropout (a planted effect), so the effective rate the
    # model sees is somewhat above the latent base: 0.16 against 0.13 here, 0.13 against 0.125 at 200k.
    assert bg.a / (bg.a + bg.b) == pytest.approx(calibrated["dropout_probability"].mean(), rel=0.35)


def test_p_alive_and_expected_purchases_follow_the_truth(demo, check):
    truth = _truth(demo)
    d = clv.summary(demo, Filters(), as_of=check.calibration_end).join(truth, on="customer_id")
    p_alive = probability_alive(check.bgnbd, d["frequency"].to_numpy().astype(float), d["recency"].to_numpy(),
                                d["T"].to_numpy())
    churned_at = d["churned_at"].to_numpy()
    cut = np.datetime64(check.calibration_end + timedelta(days=1))
    dead = ~np.isnat(churned_at) & (churned_at < cut)
    # The latent alive customers rank above the dropped-out ones most of the time (area under the ROC curve).
    auc = stats.mannwhitneyu(p_alive[~dead], p_alive[dead]).statistic / ((~dead).sum() * dead.sum())
    assert auc > 0.8
    # An alive customer with weekly rate λ and dropout p makes (1 − e^{−λpt}) / p repeat purchases in t weeks.
    lam, p = d["purchase_rate_per_week"].to_numpy(), d["dropout_probability"].to_numpy()
    oracle = np.where(dead, 0.0, (1 - np.exp(-lam * p * check.weeks)) / p).sum()
    predicted = check.table.filter(pl.col("bucket") == "all")["predicted"].item()
    assert predicted == pytest.approx(oracle, rel=0.15)


def test_customer_scores_on_the_demo_store(demo):
    filters = Filters(end=date(2026, 10, 31))
    fit = clv.fit_models(demo, filters)
    assert fit.ok and fit.bgnbd.converged and fit.gamma_gamma.converged
    scores = clv.customer_scores(demo, filters, models=fit, horizon_months=12, monthly_discount=0.01)
    assert scores.columns == list(clv.SCORE_COLUMNS)
    assert len(scores) == fit.customers and scores["customer_id"].is_unique().all()
    assert scores["p_alive"].is_between(0, 1).all() and (scores["predicted_clv"] >= 0).all()
    tiers = clv.tier_summary(scores)
    assert tiers["tier"].to_list() == ["top 10%", "next 40%", "rest"]
    assert tiers["customers_pct"].to_list() == pytest.approx([10, 40, 50], abs=0.1)
    assert tiers["value_pct"][0] > 25  # value is concentrated: the top tenth holds over a quarter
    assert tiers["min_predicted_clv"][0] >= tiers["min_predicted_clv"][1]
    longer = clv.customer_scores(demo, filters, models=fit, horizon_months=24, monthly_discount=0.01)
    assert longer["predicted_clv"].sum() > scores["predicted_clv"].sum()
    by_region = clv.by_dimension(scores, by="region")
    assert by_region["customers"].sum() == len(scores)
    assert by_region["value_pct"].sum() == pytest.approx(100)
    bins = clv.distribution(scores)
    assert bins["customers"].sum() == len(scores)
    # The page's one-query path: the same fit from the buyers' rows with attributes, the same scores.
    scored = clv.scored_customers(demo, filters, horizon_months=12, monthly_discount=0.01)
    assert scored.fit == fit
    assert_frame_equal(scored.scores, scores)


def test_demo_omnichannel_customers_are_worth_more(demo):
    filters = Filters(end=date(2026, 10, 31))
    scores = clv.customer_scores(demo, filters)
    comparison = uplift.compare(scores, as_of=date(2026, 10, 31))
    repeat = comparison.filter(pl.col("metric") == "repeat_rate")
    multi = repeat.filter(pl.col("group") == "3+ channels").row(0, named=True)
    # The generator gives omnichannel customers a 1.8 times higher purchase rate.
    assert multi["difference_low"] > 0


# ---------------------------------------------------------------------------------------------
# Figures and sentences


def test_holdout_figure_and_sentence(check):
    fig = clv_charts.holdout_figure(check.table, weeks=26)
    assert [trace.name for trace in fig.data] == ["actual", "predicted (BG/NBD)"]
    assert list(fig.data[0].x) == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    total = check.table.filter(pl.col("bucket") == "all").row(0, named=True)
    assert f"actual {total['actual']:,.0f}" in fig.layout.title.text
    assert f"they made **{total['actual']:,.0f}**" in clv_charts.holdout_sentence(check.table, weeks=26)


def test_uplift_sentences_say_when_there_is_no_baseline():
    comparison = pl.DataFrame({
        "metric": ["csat", "csat"], "label": ["CSAT", "CSAT"], "unit": ["percent"] * 2,
        "group": ["1 channel", "3+ channels"], "customers": [3, 80], "value": [None, 60.0], "low": [None, 50.0],
        "high": [None, 70.0], "difference": [None, None], "difference_low": [None, None],
        "difference_high": [None, None], "relative_pct": [None, None],
    }, schema_overrides={"value": pl.Float64, "low": pl.Float64, "high": pl.Float64, "difference": pl.Float64,
                         "difference_low": pl.Float64, "difference_high": pl.Float64, "relative_pct": pl.Float64})
    assert clv_charts.uplift_sentences(comparison, currency="USD") == [
        "CSAT: no comparison, too few single-channel customers have a figure."]
    assert len(clv_charts.uplift_figure(comparison, currency="USD").data) == 1


def test_payback_figure_marks_the_payback_month(histories):
    curves = clv.historical_curves(histories, Filters(), as_of=date(2026, 3, 31), breakdown="acquisition-channel",
                                   min_customers=1)
    fig = clv_charts.cumulative_revenue_figure(curves, currency="EUR", title="t", costs={"web": 60.0})
    stars = [trace for trace in fig.data if trace.marker.symbol == "star"]
    assert len(stars) == 1 and list(stars[0].x) == [2]  # web pays back in month 2
    assert fig.layout.yaxis.ticksuffix == "" and fig.layout.yaxis.tickprefix == "€"


# ---------------------------------------------------------------------------------------------
# Command line


def test_clv_model_json_has_exactly_the_documented_shape(demo_store, capsys):
    assert main(["report", "clv-model", "--db", str(demo_store), "--as-of", "2026-10-31", "--format", "json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert list(printed) == ["time_unit", "as_of", "customers", "repeat_buyers", "bgnbd", "gamma_gamma"]
    assert (printed["time_unit"], printed["as_of"]) == ("week", "2026-10-31")
    assert list(printed["bgnbd"]) == ["r", "alpha", "a", "b", "log_likelihood"]
    assert list(printed["gamma_gamma"]) == ["p", "q", "gamma"]
    fit = clv.fit_models(Store(demo_store), Filters(), as_of=date(2026, 10, 31))
    assert printed["customers"] == fit.customers and printed["repeat_buyers"] == fit.repeat_buyers
    assert printed["bgnbd"]["r"] == pytest.approx(fit.bgnbd.r, abs=1e-6)


def test_clv_report_has_one_row_per_customer(demo_store, tmp_path, capsys):
    output = tmp_path / "clv.csv"
    assert main(["report", "clv", "--db", str(demo_store), "--to", "2026-09-30", "--horizon-months", "6",
                 "--discount", "0.02", "--region", "North", "--format", "csv", "--output", str(output)]) == 0
    frame = pl.read_csv(output)
    assert frame.columns == ["customer_id", "frequency", "recency", "T", "monetary_value", "p_alive",
                             "expected_purchases", "predicted_clv", "historical_revenue", "tier"]
    north = clv.summary(Store(demo_store), Filters(regions=("North",)), as_of=date(2026, 9, 30))
    assert frame["customer_id"].to_list() == north["customer_id"].to_list()  # --to is the default as-of


def test_holdout_and_uplift_reports(demo_store, capsys):
    assert main(["report", "clv-holdout", "--db", str(demo_store), "--holdout-weeks", "13", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[-1]["bucket"] == "all" and rows[-1]["calibration_end"] == "2026-08-01"
    assert main(["report", "uplift", "--db", str(demo_store), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {row["metric"] for row in rows} == {"historical_clv", "predicted_clv", "repeat_rate", "retention", "csat"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--as-of", "someday"], "'someday' is not a date"),
        (["--discount", "5"], "is not a monthly rate"),
        (["--horizon-months", "0"], "0 must be greater than 0"),
        (["--segment", "gold", "--region", "Online", "--channel", "app"], "BG/NBD needs at least 20 repeat buyers"),
    ],
)
def test_clv_mistakes_are_one_line(argv, message, demo_store, capsys):
    assert main(["report", "clv-model", "--db", str(demo_store), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1] and not any("Traceback" in line for line in err)


def test_portable_expressions_cover_every_breakdown():
    names = set(clv.portable_expressions())
    assert {f"clv.revenue_by_month.{b}" for b in clv.CURVE_BREAKDOWNS} <= names


CHANNEL_SETS = [(), ("store",), ("web", "app"), ("email", "social", "store", "support", "web")]


@pytest.mark.parametrize("channels", CHANNEL_SETS)
@pytest.mark.parametrize("as_of", [date(2025, 3, 31), date(2026, 10, 31)])
def test_channels_used_from_the_channel_masks_equal_counting_the_customer_channel_rows(demo, as_of, channels):
    # The masks in customer_facts give every channel ever used; the count must equal counting the
    # customer's selected channels first used by as_of.
    used = demo.connection.sql("SELECT customer_id, channel, first_at FROM customer_channels").pl()
    used = used.filter(pl.col("first_at") < datetime.combine(as_of + timedelta(days=1), time.min))
    if channels:
        used = used.filter(pl.col("channel").is_in(channels))
    expected = used.group_by("customer_id").agg(channels_used=pl.len()).sort("customer_id")
    result = demo.to_polars(uplift.engagement_expr(Filters(channels=channels), as_of=as_of)).sort("customer_id")
    assert len(result) > 100
    assert_frame_equal(result.select(expected.columns), expected, check_dtypes=False)


def _summary_from_every_purchase_day(store, channels: tuple[str, ...], as_of: date) -> pl.DataFrame:
    """The CLV summary straight from the per-channel purchase-day rows, without stored totals."""
    days = store.connection.sql("SELECT * FROM customer_purchase_days").pl().filter(pl.col("day") <= as_of)
    if channels:
        days = days.filter(pl.col("channel").is_in(channels))
    days = days.group_by("customer_id", "day").agg(pl.col("orders", "spend", "net").sum()).sort("customer_id", "day")
    bought = pl.col("orders") > 0
    per = days.group_by("customer_id").agg(
        first_purchase=pl.col("day").filter(bought).min(),
        last_purchase=pl.col("day").filter(bought).max(),
        purchase_days=bought.sum(),
        spend=pl.col("spend").filter(bought).sum(),
        first_spend=pl.col("spend").filter(bought).first(),
        historical_revenue=pl.col("net").sum(),
    ).filter(pl.col("purchase_days") > 0)
    frequency = pl.col("purchase_days") - 1
    return per.select(
        "customer_id", "first_purchase", "last_purchase",
        frequency=frequency,
        recency=(pl.col("last_purchase") - pl.col("first_purchase")).dt.total_days() / 7,
        T=(pl.lit(as_of) - pl.col("first_purchase")).dt.total_days() / 7,
        monetary_value=pl.when(frequency > 0).then((pl.col("spend") - pl.col("first_spend")) / frequency),
        historical_revenue="historical_revenue",
    ).sort("customer_id")


@pytest.mark.parametrize("channels", CHANNEL_SETS)
@pytest.mark.parametrize("as_of", [date(2025, 6, 30), date(2026, 10, 31)])
def test_summary_from_stored_totals_equals_the_summary_of_every_purchase_day(demo, as_of, channels):
    # Customers with nothing after as_of whose purchase channels are all selected come from the
    # stored totals and only the others are regrouped: the same summary as regrouping everyone.
    result = clv.summary(demo, Filters(channels=channels), as_of=as_of)
    expected = _summary_from_every_purchase_day(demo, channels, as_of)
    assert len(result) > 100
    assert_frame_equal(result, expected, check_dtypes=False)


@pytest.mark.parametrize("channels", [("store",), ("web", "app"), ("email", "social", "store", "support", "web")])
def test_purchase_days_of_some_channels_equal_their_channel_rows_added_up(demo, channels):
    # Days whose channels are all selected keep their stored totals, mixed days are added up again
    # from their channel rows: the same rows as adding up every selected channel row.
    filters = Filters(channels=channels)
    as_of = date(2026, 10, 31)
    rows = derived("customer_purchase_days")
    rows = rows.filter((rows.day <= as_of) & rows.channel.isin(channels))
    expected = demo.to_polars(sum_over_channels(rows)).sort("customer_id", "day")
    result = demo.to_polars(clv.purchase_days_expr(filters, as_of=as_of)).sort("customer_id", "day")
    assert len(result) > 100
    assert_frame_equal(result, expected, check_dtypes=False)
    # The demo has days mixing selected and other channels, so both paths are exercised.
    bits = dict(demo.to_polars(derived("channel_bits")).iter_rows())
    selected = sum(bits[channel] for channel in channels)
    days = demo.to_polars(derived("customer_purchase_days_all_channels"))
    mixed = days.filter((pl.col("channels") & selected != 0) & (pl.col("channels") | selected != selected))
    assert not mixed.is_empty()


def test_value_by_dimension_on_three_customers():
    # North: two customers with historical 10 and 30 (mean 20, s = 14.14, s/√2 = 10), predicted 20
    # and 40; South: one customer, whose group of one has no interval.
    scores = pl.DataFrame({
        "region": ["North", "North", "South"],
        "historical_revenue": [10.0, 30.0, 5.0],
        "predicted_clv": [20.0, 40.0, 90.0],
        "p_alive": [0.5, 1.0, 0.9],
    })
    result = clv.by_dimension(scores, by="region")
    expected = pl.DataFrame({
        "group": ["South", "North"],
        "customers": [1, 2],
        "predicted_clv_total": [90.0, 60.0],
        "mean_p_alive": [0.9, 0.75],
        "historical_revenue_mean": [5.0, 20.0],
        "historical_revenue_low": [None, 20.0 - clv.Z95 * 10],
        "historical_revenue_high": [None, 20.0 + clv.Z95 * 10],
        "predicted_clv_mean": [90.0, 30.0],
        "predicted_clv_low": [None, 30.0 - clv.Z95 * 10],
        "predicted_clv_high": [None, 30.0 + clv.Z95 * 10],
        "value_pct": [60.0, 40.0],
    }, schema_overrides={"customers": pl.UInt32})
    assert_frame_equal(result, expected, check_dtypes=False)
