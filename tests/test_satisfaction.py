"""CSAT, NPS and CSAT joined to churn and value, on the answers of tests/retention_factories.py."""

from __future__ import annotations

import math
from datetime import date

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from metrics import satisfaction as sat
from metrics.filters import Filters
from metrics.stats import compare_proportions, with_wilson
from tests.retention_factories import five_customers_store, satisfaction_store

SPRING = Filters(start=date(2026, 3, 1), end=date(2026, 6, 30))
MAR, APR = date(2026, 3, 1), date(2026, 4, 1)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return satisfaction_store(tmp_path_factory.mktemp("satisfaction") / "satisfaction.duckdb")


def _wilson_by_hand(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    # Wilson score interval, written out as in the textbook: (p + z²/2n ± z·√(p(1−p)/n + z²/4n²)) / (1 + z²/n)
    p = successes / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - spread) / (1 + z * z / n) * 100, (centre + spread) / (1 + z * z / n) * 100


def test_wilson_interval_matches_a_hand_computation():
    result = with_wilson(
        pl.DataFrame({"x": [7, 0, 10], "n": [10, 10, 10]}), successes="x", trials="n", prefix="r"
    )
    for row, (x, n) in zip(result.iter_rows(named=True), [(7, 10), (0, 10), (10, 10)], strict=True):
        low, high = _wilson_by_hand(x, n)
        assert (row["r_low"], row["r_high"]) == pytest.approx((low, high))
    # 7 of 10: 39.68% to 89.22% (computed by hand: centre 0.6445, half-width 0.2477).
    assert result.row(0, named=True)["r_low"] == pytest.approx(39.677, abs=1e-3)
    assert result.row(0, named=True)["r_high"] == pytest.approx(89.221, abs=1e-3)


def test_two_proportions_difference_and_p_value():
    result = compare_proportions(
        pl.DataFrame({"a": [30], "n": [100], "b": [15], "m": [100]}), x1="a", n1="n", x2="b", n2="m"
    ).row(0, named=True)
    pooled_se = math.sqrt(0.225 * 0.775 * (2 / 100))  # pooled rate (30 + 15) / 200
    assert result["diff_pp"] == pytest.approx(15.0)
    assert result["p_value"] == pytest.approx(math.erfc(0.15 / pooled_se / math.sqrt(2)))
    assert result["significant"]


def test_csat_trend_counts_4_and_5_and_hides_small_cells(store):
    # min_sample 6: April on support has exactly 6 answers (shown); March in the app has 2 (hidden).
    result = sat.csat_trend(store, SPRING, period="month", min_sample=6)
    expected = pl.DataFrame(
        {
            "period": [MAR, MAR, MAR, APR, APR],
            "channel": ["all", "app", "support", "all", "support"],
            # March support: S1..S10 rate 5 5 4 4 4 3 2 1 5 4 → 7 of 10 are 4-5; app: P1 5, P2 3 → 1 of 2.
            # April support: Q1..Q5 4 4 3 3 5 and S5's 2 → 3 of 6.
            "responses": [12, 2, 10, 6, 6],
            "positive": [8, 1, 7, 3, 3],
            "shown": [True, False, True, True, True],
        }
    )
    assert_frame_equal(result.select(expected.columns), expected, check_dtypes=False)
    rates = dict(zip(zip(result["period"], result["channel"], strict=True), result["csat_pct"], strict=True))
    assert rates[(MAR, "support")] == pytest.approx(70.0)
    assert rates[(MAR, "all")] == pytest.approx(800 / 12)
    assert rates[(APR, "support")] == pytest.approx(50.0)
    assert rates[(MAR, "app")] is None  # 2 answers: not shown as a rate
    support = result.filter((pl.col("period") == MAR) & (pl.col("channel") == "support")).row(0, named=True)
    assert (support["csat_low"], support["csat_high"]) == pytest.approx(_wilson_by_hand(7, 10))


def test_csat_trend_weekly_keeps_every_answer(store):
    result = sat.csat_trend(store, SPRING, period="week", min_sample=1)
    assert result.filter(pl.col("channel") == "all")["responses"].sum() == 18  # 12 in March + 6 in April
    assert result["period"].dt.weekday().unique().to_list() == [1]  # weeks start on Monday


def test_nps_trend(store):
    result = sat.nps_trend(store, SPRING, period="month", min_sample=7)
    expected = pl.DataFrame(
        {
            "period": [MAR, APR],
            # March: 10 9 9 8 7 6 3 0 10 8 (S1..S10) and 10 5 (P1, P2): promoters 5, passives 3, detractors 4.
            # April: 9 7 6 6 10 (Q1..Q5) and 4 (S5): promoters 2, passives 1, detractors 3.
            "responses": [12, 6],
            "promoters": [5, 2],
            "passives": [3, 1],
            "detractors": [4, 3],
            "nps": [100 / 12, None],  # (5 − 4) / 12; April's 6 answers are under min_sample 7
            "shown": [True, False],
        }
    )
    assert_frame_equal(result, expected, check_dtypes=False)


def test_score_distribution(store):
    result = sat.score_distribution(store, SPRING)
    expected = pl.DataFrame(
        {
            "channel": ["app"] * 5 + ["support"] * 5,
            "csat_score": [1, 2, 3, 4, 5] * 2,
            # app: P2's 3 and P1's 5. support: 1 S8; 2 S7, S5 (April); 3 S6, Q3, Q4;
            # 4 S3 S4 S5 S10 Q1 Q2; 5 S1 S2 S9 Q5.
            "responses": [0, 0, 1, 0, 1, 1, 2, 3, 6, 4],
            "share_pct": [0.0, 0.0, 50.0, 0.0, 50.0, 100 / 16, 200 / 16, 300 / 16, 600 / 16, 400 / 16],
        }
    )
    assert_frame_equal(result, expected, check_dtypes=False)


def test_churn_after_support_contact_and_by_csat_band(store):
    # Data ends 30 June; 30 days earlier is 31 May. Base: active 1 March - 31 May: the 17 respondents.
    # Still active in June: S1 (buys), S2 (buys), S7 (browses), Q1 (browses).
    result = sat.churn_by_contact(store, SPRING, threshold_days=30)
    expected = pl.DataFrame(
        {
            "comparison": ["support contact"] * 2 + ["CSAT band"] * 3,
            "group": ["no support contact", "support contact", "1-2", "3", "4-5"],
            # contact: S1..S4, of whom S3 and S4 churned; no contact: 13, all but S7 and Q1 churned.
            # Latest answer 1-2: S5 (April), S7, S8 → S5, S8 churned; 3: S6, P2, Q3, Q4 all churned;
            # 4-5: S1 S2 S3 S4 S9 S10 P1 Q1 Q2 Q5, all but S1, S2, Q1 churned.
            "customers": [13, 4, 3, 4, 10],
            "churned": [11, 2, 2, 4, 7],
        }
    )
    assert_frame_equal(result.select(expected.columns), expected, check_dtypes=False)
    differences = sat.churn_differences(result)
    assert differences["comparison"].to_list() == ["support contact vs no support contact", "1-2 vs 4-5"]
    assert differences["diff_pp"].to_list() == pytest.approx([50 - 1100 / 13, 200 / 3 - 70])
    assert sat.churn_differences(result, min_sample=5)["p_value"].to_list() == [None, None]  # 4 and 3 < 5


def test_mean_cltv_by_csat_band(store):
    result = sat.value_by_band(store, SPRING)
    assert result["band"].to_list() == ["1-2", "3", "4-5"]
    assert result["customers"].to_list() == [3, 4, 10]
    # 4-5: S1 spent 100, S2 60, the other eight nothing → 16; sample sd √((84² + 44² + 8·16²) / 9).
    assert result["mean_value"].to_list() == pytest.approx([0.0, 0.0, 16.0])
    assert result["std_value"][2] == pytest.approx(math.sqrt((84**2 + 44**2 + 8 * 16**2) / 9))


def test_store_without_surveys(store, tmp_path):
    assert sat.has_survey_data(store)
    plain = five_customers_store(tmp_path / "plain.duckdb")
    assert not sat.has_survey_data(plain)
    assert sat.csat_trend(plain, Filters(), period="month").is_empty()
    assert sat.nps_trend(plain, Filters(), period="week").is_empty()
    assert sat.score_distribution(plain, Filters()).is_empty()
