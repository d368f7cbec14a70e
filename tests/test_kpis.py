"""KPIs on four hand-written customers; each expected number names the customers behind it."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from data_access.store import Store
from metrics.clv import summary
from metrics.filters import Filters
from metrics.kpis import (
    channel_mix,
    channel_mix_expr,
    channel_sums_expr,
    customer_counts_expr,
    kpis,
    purchaser_counts_expr,
    trend,
    trend_expr,
)
from tests.factories import four_customers_store

MARCH = Filters(start=date(2026, 3, 1), end=date(2026, 3, 31))


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return four_customers_store(tmp_path_factory.mktemp("kpis") / "kpis.duckdb")


def _values(frame: pl.DataFrame, column: str = "value") -> dict[str, float | None]:
    return dict(zip(frame["kpi"], frame[column], strict=True))


def test_march_kpis_and_previous_period(store):
    result = kpis(store, MARCH)
    values, previous = _values(result), _values(result, "previous")
    # March: A 100 + 50, B 80 − 20 refund.
    assert values["revenue"] == pytest.approx(210.0)
    assert values["orders"] == 3  # A twice, B once
    assert values["aov"] == pytest.approx(230.0 / 3)  # gross 100 + 50 + 80 over 3 orders
    assert values["active_customers"] == 3  # A, B, C (D is February only)
    assert values["repeat_rate"] == pytest.approx(50.0)  # A of purchasers A, B
    assert values["omnichannel_share"] == pytest.approx(100 / 3)  # A (web, store, support) of A, B, C
    assert values["csat"] == pytest.approx(100.0)  # A's single 5
    assert values["nps"] == pytest.approx(100.0)  # A's single 10
    # Previous period (29 Jan – 28 Feb, equally long): C's 40 order, D's browse and poor survey.
    assert previous["revenue"] == pytest.approx(40.0)
    assert previous["active_customers"] == 2  # C, D
    assert previous["repeat_rate"] == pytest.approx(0.0)  # C bought once
    assert previous["omnichannel_share"] == pytest.approx(50.0)  # D (app, support) of C, D
    assert previous["csat"] == pytest.approx(0.0)  # D's 2
    assert previous["nps"] == pytest.approx(-100.0)  # D's 3
    changes = _values(result, "change_pct")
    assert changes["revenue"] == pytest.approx(425.0)  # 210 vs 40
    assert changes["active_customers"] == pytest.approx(50.0)  # 3 vs 2


def test_channel_filter_keeps_only_those_touches(store):
    values = _values(kpis(store, Filters(start=MARCH.start, end=MARCH.end, channels=("store",))))
    assert values["revenue"] == pytest.approx(110.0)  # A 50, B 80 − 20
    assert values["orders"] == 2  # A's store order, B's order
    assert values["active_customers"] == 2  # A, B
    assert values["omnichannel_share"] == pytest.approx(0.0)  # within store only, nobody has two
    assert values["csat"] is None  # no survey in store


def test_region_filter_restricts_customers(store):
    values = _values(kpis(store, Filters(start=MARCH.start, end=MARCH.end, regions=("North",))))
    assert values["revenue"] == pytest.approx(150.0)  # A only (C did not buy in March)
    assert values["active_customers"] == 2  # A, C


def test_segment_filter_and_empty_period(store):
    values = _values(kpis(store, Filters(start=date(2025, 1, 1), end=date(2025, 1, 31), segments=("gold",))))
    assert values["active_customers"] == 0
    assert values["revenue"] == 0
    assert values["aov"] is None


def test_retention_and_historical_clv_with_their_previous_period(store):
    result = kpis(store, MARCH)
    values, previous = _values(result), _values(result, "previous")
    # Of February's active C and D, C came back in March (an email open).
    assert values["retention"] == pytest.approx(50.0)
    # Nobody was active from 29 Dec to 28 Jan: no base for February's retention.
    assert previous["retention"] is None
    # Buyers by 31 March: A 150, B 80 − 20, C 40 (February, counted: CLTV is to date).
    assert values["historical_clv"] == pytest.approx(250 / 3)
    assert previous["historical_clv"] == pytest.approx(40.0)  # C alone had bought by 28 February
    assert _values(result, "change_pct")["historical_clv"] == pytest.approx((250 / 3 - 40) / 40 * 100)


def test_retention_and_historical_clv_follow_the_filters(store):
    north = _values(kpis(store, Filters(start=MARCH.start, end=MARCH.end, regions=("North",))))
    assert north["retention"] == pytest.approx(100.0)  # C, February's only North customer, came back
    assert north["historical_clv"] == pytest.approx(95.0)  # A 150, C 40
    in_store = _values(kpis(store, Filters(start=MARCH.start, end=MARCH.end, channels=("store",))))
    assert in_store["retention"] is None  # nobody used the store in February
    assert in_store["historical_clv"] == pytest.approx(55.0)  # A's store 50, B 80 − 20


def test_all_time_kpis_have_no_retention_and_clv_as_of_the_last_day(store):
    result = kpis(store, Filters())
    values = _values(result)
    assert values["retention"] is None
    assert values["historical_clv"] == pytest.approx(250 / 3)  # A, B, C as of 20 March
    assert result["previous"].is_null().all()


@pytest.mark.parametrize("channels", [(), ("store", "web"), ("email",), ("app", "email", "sms", "social", "store")])
def test_historical_clv_equals_the_customer_value_pages_headline(demo, channels):
    # The KPI subtracts what came after each day from stored totals; the page sums each buyer's days.
    filters = Filters(start=date(2025, 7, 1), end=date(2025, 9, 30), channels=channels)
    result = kpis(demo, filters)
    for column, as_of in (("value", filters.end), ("previous", filters.previous_period().end)):
        headline = summary(demo, filters, as_of=as_of)["historical_revenue"].mean()
        assert _values(result, column)["historical_clv"] == pytest.approx(headline)


def test_trend_has_distinct_total_per_period(store):
    result = trend(store, MARCH, grain="month").filter(pl.col("period") == date(2026, 3, 1))
    expected = pl.DataFrame(
        {
            "period": [date(2026, 3, 1)] * 5,
            "channel": ["all", "email", "store", "support", "web"],
            "revenue": [210.0, 0.0, 110.0, 0.0, 100.0],
            "orders": [None, 0, 2, 0, 1],
            # all: A, B, C once each although A appears in three channels
            "active_customers": [3, 1, 2, 1, 1],
            "complete": [True] * 5,  # March is wholly inside the range
        },
        schema_overrides={"orders": pl.Int64, "active_customers": pl.Int64},
    )
    assert_frame_equal(result, expected)


def test_trend_marks_periods_the_range_cuts(store):
    result = trend(store, Filters(start=date(2026, 2, 11), end=date(2026, 3, 31)), grain="month")
    complete = dict(zip(result["period"], result["complete"], strict=False))
    assert complete == {date(2026, 2, 1): False, date(2026, 3, 1): True}  # February starts on the 11th


def test_channel_mix_shares(store):
    result = channel_mix(store, MARCH)
    revenue_share = dict(zip(result["channel"], result["revenue_share"], strict=True))
    touch_share = dict(zip(result["channel"], result["touch_share"], strict=True))
    assert revenue_share["store"] == pytest.approx(110 / 210 * 100)
    assert revenue_share["web"] == pytest.approx(100 / 210 * 100)
    # touches exclude purchases, refunds and surveys: A's page view and support contact, C's email open
    assert touch_share == pytest.approx({"web": 100 / 3, "store": 0.0, "support": 100 / 3, "email": 100 / 3})


@pytest.fixture(scope="module")
def demo(demo_store) -> Store:
    return Store(demo_store)


def _active_customers_directly(store, filters: Filters, grain: str) -> pl.DataFrame:
    """Distinct customers per period and channel, and per period, from every event: no roll-up."""
    events = store.connection.sql("SELECT customer_id, channel, CAST(occurred_at AS DATE) AS day FROM events").pl()
    events = events.filter(pl.col("day").is_between(filters.start, filters.end))
    if filters.channels:
        events = events.filter(pl.col("channel").is_in(filters.channels))
    period = pl.col("day").dt.truncate({"day": "1d", "week": "1w", "month": "1mo"}[grain]).alias("period")
    events = events.with_columns(period)
    by_channel = events.group_by("period", "channel").agg(active_customers=pl.col("customer_id").n_unique())
    total = events.group_by("period").agg(active_customers=pl.col("customer_id").n_unique())
    return pl.concat([by_channel, total.with_columns(channel=pl.lit("all")).select(by_channel.columns)])


@pytest.mark.parametrize("grain", ["day", "week", "month"])
@pytest.mark.parametrize(
    ("start", "end", "channels"),
    [
        (date(2025, 7, 1), date(2025, 9, 30), ()),  # whole months; weeks cut at both ends
        (date(2025, 7, 7), date(2025, 8, 3), ()),  # whole weeks (Monday to Sunday); months cut
        (date(2025, 7, 9), date(2025, 7, 12), ()),  # inside one week: no whole period
        (date(2025, 6, 18), date(2025, 9, 2), ("store", "web")),  # a channel filter, every end cut
    ],
)
def test_trend_active_customers_equal_a_direct_distinct_count(demo, grain, start, end, channels):
    # Whole periods are counted from the customer-period roll-ups and cut ones from the daily one;
    # every combination must give what counting distinct customers in the raw events gives.
    filters = Filters(start=start, end=end, channels=channels)
    result = trend(demo, filters, grain=grain).select("period", "channel", "active_customers")
    expected = _active_customers_directly(demo, filters, grain)
    keys = ["period", "channel"]
    assert_frame_equal(result.sort(keys), expected.sort(keys).cast({"active_customers": pl.Int64}))


@pytest.mark.parametrize(
    ("start", "end", "channels"),
    [
        (date(2025, 7, 1), date(2025, 9, 30), ()),  # whole weeks from the weekly roll-up, cut days around
        (date(2025, 7, 7), date(2025, 8, 3), ()),  # whole weeks only
        (date(2025, 7, 9), date(2025, 7, 12), ()),  # inside one week: days only
        (date(2025, 7, 6), date(2025, 7, 13), ()),  # a whole week, the periods before have none
        (date(2025, 6, 18), date(2025, 9, 2), ("store", "web")),  # the channels' own weeks
    ],
)
def test_kpi_customer_counts_equal_counts_from_every_event(demo, start, end, channels):
    filters = Filters(start=start, end=end, channels=channels)
    every_event = demo.connection.sql(
        "SELECT customer_id, channel, event_type, CAST(occurred_at AS DATE) AS day FROM events").pl()
    if channels:
        every_event = every_event.filter(pl.col("channel").is_in(channels))

    def active(period: Filters) -> pl.DataFrame:
        return every_event.filter(pl.col("day").is_between(period.start, period.end))

    def counts(period: Filters, before: Filters) -> dict[str, int]:
        per_customer = active(period).group_by("customer_id").agg(
            orders=(pl.col("event_type") == "purchase").sum(), channels=pl.col("channel").n_unique())
        earlier = set(active(before)["customer_id"])
        return {
            "active_customers": len(per_customer),
            "purchasers": per_customer.filter(pl.col("orders") > 0).height,
            "repeat_purchasers": per_customer.filter(pl.col("orders") >= 2).height,
            "omnichannel_customers": per_customer.filter(pl.col("channels") >= 2).height,
            "returning_customers": len(set(per_customer["customer_id"]) & earlier),
            "earlier_customers": len(earlier),
        }

    previous = filters.previous_period()
    expected = counts(filters, previous) | {
        f"previous_{name}": value for name, value in counts(previous, previous.previous_period()).items()}
    result = demo.to_polars(customer_counts_expr(filters)).hstack(demo.to_polars(purchaser_counts_expr(filters)))
    assert result.select(list(expected)).row(0, named=True) == expected
    events = active(filters)
    per_channel = events.group_by("channel").agg(customers=pl.col("customer_id").n_unique())
    mix = channel_mix(demo, filters).select("channel", "customers")
    assert_frame_equal(mix.sort("channel"), per_channel.sort("channel"), check_dtypes=False)


@pytest.mark.parametrize("channels", [("store",), ("app", "email", "web"), ("email", "sms")])
def test_per_channel_figures_narrowed_from_every_channel_equal_the_selections_own(demo, channels):
    # The metrics narrow one result over every channel instead of querying per selection; that is
    # only right if no channel's figures depend on the other channels selected.
    filters = Filters(start=date(2025, 6, 18), end=date(2025, 9, 2), channels=channels)
    own_mix = demo.to_polars(channel_mix_expr(filters)).sort("channel")
    assert_frame_equal(channel_mix(demo, filters).select(own_mix.columns).sort("channel"), own_mix)
    columns = ["period", "channel", "revenue", "orders", "active_customers"]
    own_trend = demo.to_polars(trend_expr(filters, grain="week")).select(columns).sort("period", "channel")
    result = trend(demo, filters, grain="week").filter(pl.col("channel") != "all").select(columns)
    assert_frame_equal(result, own_trend, check_dtypes=False)
    own_sums = demo.to_polars(channel_sums_expr(filters))
    values = _values(kpis(demo, filters))
    assert values["orders"] == own_sums["orders"].sum()
    assert values["revenue"] == pytest.approx(own_sums["gross_revenue"].sum() + own_sums["refunds"].sum())
