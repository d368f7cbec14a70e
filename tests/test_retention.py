"""Retention, lifecycle and churn on the five hand-written customers of tests/retention_factories.py.

Data ends on Wednesday 15 April 2026, so April and the week of 13 April are incomplete. Each
expected number names the customers behind it.
"""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from data_access.derived_retention import period_end, period_number, period_start
from metrics import retention as ret
from metrics.filters import Filters
from tests.retention_factories import five_customers_store

EVERYTHING = Filters()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return five_customers_store(tmp_path_factory.mktemp("retention") / "retention.duckdb")


def _cohort(group: str, cohort: date, size: int, retained: list[int], complete: list[bool]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "group": group,
            "cohort": cohort,
            "period_index": range(len(retained)),
            "cohort_size": size,
            "retained": retained,
            "retention_pct": [n / size * 100 for n in retained],
            "complete": complete,
        },
        schema=ret.CELL_SCHEMA,
    )


ALL = ret.ALL_CUSTOMERS
JAN, FEB, MAR, APR = (date(2026, m, 1) for m in (1, 2, 3, 4))
# Months January to March are over on 15 April; April is not.
MONTHS_DONE = {JAN: [True, True, True, False], FEB: [True, True, False], MAR: [True, False], APR: [False]}


def test_first_time_on_monthly(store):
    result = ret.retention(store, EVERYTHING, period="month")
    expected = pl.concat(
        [
            # January: A (31 Jan), B, D. February: A. March: B and D. April (not over): A.
            _cohort(ALL, JAN, 3, [3, 1, 2, 1], MONTHS_DONE[JAN]),
            # February: C alone, never back.
            _cohort(ALL, FEB, 1, [1, 0, 0], MONTHS_DONE[FEB]),
            # April: E, first seen on the last day with data.
            _cohort(ALL, APR, 1, [1], MONTHS_DONE[APR]),
        ]
    )
    assert_frame_equal(result, expected)


def test_first_time_on_or_after_monthly(store):
    result = ret.retention(store, EVERYTHING, period="month", returning="on-or-after")
    expected = pl.concat(
        [
            # Last active months: A April (3), B March (2), D March (2).
            _cohort(ALL, JAN, 3, [3, 3, 3, 1], MONTHS_DONE[JAN]),
            _cohort(ALL, FEB, 1, [1, 0, 0], MONTHS_DONE[FEB]),
            _cohort(ALL, APR, 1, [1], MONTHS_DONE[APR]),
        ]
    )
    assert_frame_equal(result, expected)


def test_recurring_on_and_on_or_after_monthly(store):
    on = ret.retention(store, EVERYTHING, period="month", cohort_type="recurring")
    expected_on = pl.concat(
        [
            _cohort(ALL, JAN, 3, [3, 1, 2, 1], MONTHS_DONE[JAN]),  # A, B, D as in first-time
            _cohort(ALL, FEB, 2, [2, 0, 1], MONTHS_DONE[FEB]),  # A and C; A again in April
            _cohort(ALL, MAR, 2, [2, 0], MONTHS_DONE[MAR]),  # B and D, neither in April
            _cohort(ALL, APR, 2, [2], MONTHS_DONE[APR]),  # A and E
        ]
    )
    assert_frame_equal(on, expected_on)
    after = ret.retention(store, EVERYTHING, period="month", cohort_type="recurring", returning="on-or-after")
    expected_after = pl.concat(
        [
            _cohort(ALL, JAN, 3, [3, 3, 3, 1], MONTHS_DONE[JAN]),
            _cohort(ALL, FEB, 2, [2, 1, 1], MONTHS_DONE[FEB]),  # A's last month is April, C's February
            _cohort(ALL, MAR, 2, [2, 0], MONTHS_DONE[MAR]),
            _cohort(ALL, APR, 2, [2], MONTHS_DONE[APR]),
        ]
    )
    assert_frame_equal(after, expected_after)


def test_purchases_only(store):
    result = ret.retention(store, EVERYTHING, period="month", activity="purchase")
    expected = pl.concat(
        [
            _cohort(ALL, JAN, 1, [1, 0, 1, 0], MONTHS_DONE[JAN]),  # B buys in January and March
            _cohort(ALL, FEB, 2, [2, 0, 1], MONTHS_DONE[FEB]),  # A (first buys 2 Feb, again April) and C
        ]
    )
    assert_frame_equal(result, expected)


def test_week_boundaries_and_incomplete_week(store):
    # The date range 26 Jan - 1 Feb overlaps one week: A's, who starts on Saturday 31 January.
    result = ret.retention(store, Filters(start=date(2026, 1, 26), end=date(2026, 2, 1)), period="week")
    retained = [0] * 12
    retained[0] = retained[1] = retained[10] = 1  # 31 Jan, Monday 2 Feb (next week), 10 Apr (week of 6 Apr)
    # Week 11 (13-19 April) is not over on Wednesday 15 April.
    expected = _cohort(ALL, date(2026, 1, 26), 1, retained, [True] * 11 + [False])
    assert_frame_equal(result, expected)


def test_month_cohort_of_the_last_day_of_a_month(store):
    # The range is 31 January only; the cohort is the whole month that overlaps it (A, B and D).
    result = ret.retention(store, Filters(start=date(2026, 1, 31), end=date(2026, 1, 31)), period="month")
    assert_frame_equal(result, _cohort(ALL, JAN, 3, [3, 1, 2, 1], MONTHS_DONE[JAN]))


def test_breakdown_by_region(store):
    result = ret.retention(store, EVERYTHING, period="month", breakdown="region")
    expected = pl.concat(
        [
            _cohort("North", JAN, 1, [1, 1, 0, 1], MONTHS_DONE[JAN]),  # A
            _cohort("North", FEB, 1, [1, 0, 0], MONTHS_DONE[FEB]),  # C
            _cohort("North", APR, 1, [1], MONTHS_DONE[APR]),  # E
            _cohort("South", JAN, 2, [2, 0, 2, 0], MONTHS_DONE[JAN]),  # B and D, both back in March
        ]
    )
    assert_frame_equal(result, expected)


def test_channel_filter_and_activity_channel(store):
    # Global filter "store": only A's February purchase and B's purchases count.
    in_store = ret.retention(store, Filters(channels=("store",)), period="month")
    assert_frame_equal(
        in_store,
        pl.concat(
            [
                _cohort(ALL, JAN, 1, [1, 0, 1, 0], MONTHS_DONE[JAN]),  # B
                _cohort(ALL, FEB, 1, [1, 0, 0], MONTHS_DONE[FEB]),  # A
            ]
        ),
    )
    # The page's own channel choice "web": A (Jan, Apr), D (Jan, Mar), E (Apr).
    on_web = ret.retention(store, EVERYTHING, period="month", channel="web")
    assert_frame_equal(
        on_web,
        pl.concat(
            [
                _cohort(ALL, JAN, 2, [2, 0, 1, 1], MONTHS_DONE[JAN]),
                _cohort(ALL, APR, 1, [1], MONTHS_DONE[APR]),
            ]
        ),
    )


@pytest.mark.parametrize("period", ["week", "month"])
@pytest.mark.parametrize("activity", ["any", "purchase"])
@pytest.mark.parametrize("cohort_type", ["first-time", "recurring"])
@pytest.mark.parametrize("returning", ["on", "on-or-after"])
def test_every_channel_selected_gives_the_all_channels_tables(store, period, activity, cohort_type, returning):
    # No channel filter reads the first and last periods stored per customer; naming every channel
    # finds them from the channel masks instead.
    every_channel = Filters(channels=("app", "email", "social", "store", "support", "web"))
    options = {"period": period, "activity": activity, "cohort_type": cohort_type, "returning": returning}
    assert_frame_equal(ret.retention(store, every_channel, **options), ret.retention(store, EVERYTHING, **options))
    assert_frame_equal(ret.lifecycle(store, every_channel, period=period, activity=activity),
                       ret.lifecycle(store, EVERYTHING, period=period, activity=activity))


def test_average_curves_weight_by_cohort_size_over_complete_periods(store):
    cells = ret.retention(store, EVERYTHING, period="month", cohort_type="recurring")
    result = ret.average_curves(cells).select(
        "period_index", "cohorts", "cohort_size", "retained", "retention_pct"
    )
    expected = pl.DataFrame(
        {
            "period_index": [0, 1, 2],
            # Complete cells only: index 0 of Jan, Feb, Mar (April is not over); index 1 of Jan and Feb
            # (March's index 1 is April); index 2 of January alone.
            "cohorts": [3, 2, 1],
            "cohort_size": [7, 5, 3],  # 3 + 2 + 2; 3 + 2; 3
            "retained": [7, 1, 2],  # index 1: A in Feb (nobody of Feb's in March); index 2: B and D in March
            "retention_pct": [100.0, 20.0, 200 / 3],
        },
        schema_overrides={"cohorts": pl.Int64, "cohort_size": pl.Int64, "retained": pl.Int64},
    )
    assert_frame_equal(result, expected)


def test_average_curves_hide_small_samples(store):
    cells = ret.retention(store, EVERYTHING, period="month", cohort_type="recurring")
    result = ret.average_curves(cells, min_sample=5)
    assert result["shown"].to_list() == [True, True, False]  # index 2 pools January's 3 customers only
    assert result["retention_pct"][2] is None and result["retained"][2] == 2


def test_lifecycle_states(store):
    result = ret.lifecycle(store, EVERYTHING, period="month")
    counts = {
        JAN: [3, 0, 0, 0],  # new: A, B, D
        FEB: [1, 1, 0, 2],  # new C, returning A, dormant B and D
        MAR: [0, 0, 2, 2],  # resurrecting B and D, dormant A and C
        APR: [1, 0, 1, 2],  # new E, resurrecting A, dormant B and D (April not over)
    }
    expected = pl.DataFrame(
        {
            "period": [month for month in counts for _ in range(4)],
            "state": list(ret.LIFECYCLE_STATES) * 4,
            "customers": [n for values in counts.values() for n in values],
            "complete": [month != APR for month in counts for _ in range(4)],
        },
        schema={"period": pl.Date, "state": pl.String, "customers": pl.Int64, "complete": pl.Boolean},
    )
    assert_frame_equal(result, expected)
    only_feb_mar = ret.lifecycle(
        store, Filters(start=date(2026, 2, 10), end=date(2026, 3, 5)), period="month"
    )
    assert_frame_equal(only_feb_mar, expected.filter(pl.col("period").is_in([FEB, MAR])))


def test_lifecycle_states_of_one_channel(store):
    # Web activity only: A in January and April, D in January and March, E in April.
    result = ret.lifecycle(store, Filters(channels=("web", "sms")), period="month", channel="web")
    counts = {
        JAN: [2, 0, 0, 0],  # new: A and D
        FEB: [0, 0, 0, 2],  # dormant A and D (A's February purchase was in the store)
        MAR: [0, 0, 1, 0],  # resurrecting D
        APR: [1, 0, 1, 1],  # new E, resurrecting A, dormant D
    }
    assert result["customers"].to_list() == [n for values in counts.values() for n in values]
    assert result["period"].unique(maintain_order=True).to_list() == list(counts)
    # A channel the global filter leaves out has no activity.
    assert ret.lifecycle(store, Filters(channels=("store",)), period="month", channel="web").is_empty()


def test_churn_by_acquisition_channel(store):
    # Threshold 30 days before 15 April = 16 March. Base: activity 1 Jan - 16 Mar: A, B, C, D (not E).
    result = ret.churn_by_channel(
        store, Filters(start=date(2026, 1, 1), end=date(2026, 4, 15)), threshold_days=30
    )
    expected = pl.DataFrame(
        {
            # web: A (back 10 Apr) and D (back 20 Mar): nobody churned; store: B (last 3 Mar); app: C.
            "acquisition_channel": ["web", "app", "store", ALL],
            "customers": [2, 1, 1, 4],
            "churned": [0, 1, 1, 2],
        }
    )
    assert_frame_equal(result.select(expected.columns), expected, check_dtypes=False, check_row_order=False)
    assert result.filter(pl.col("acquisition_channel") == ALL)["churn_pct"][0] == pytest.approx(50.0)


def test_churn_base_is_empty_when_the_range_is_too_recent(store):
    result = ret.churn_by_channel(
        store, Filters(start=date(2026, 4, 1), end=date(2026, 4, 15)), threshold_days=30
    )
    assert result.is_empty()


def test_options_outside_the_allow_list_are_refused(store):
    with pytest.raises(ValueError, match="breakdown must be one of"):
        ret.retention(store, EVERYTHING, breakdown="customer_id; drop table events")
    with pytest.raises(ValueError, match="period must be one of"):
        ret.retention(store, EVERYTHING, period="day")


@pytest.mark.parametrize("day", [date(2026, 1, 31), date(2026, 2, 1), date(2026, 3, 1), date(2026, 4, 15)])
@pytest.mark.parametrize("period", ["week", "month"])
def test_period_numbers_round_trip(day, period):
    number = period_number(day, period)
    assert period_start(number, period) <= day <= period_end(number, period)
    assert period_start(number + 1, period) == period_end(number, period).fromordinal(
        period_end(number, period).toordinal() + 1
    )
