"""An independent check: retention through the metric layer (Ibis over the derived roll-ups) equals a
plain Polars re-computation straight from the events, on generated demo data, for every option.

The re-computation follows DESIGN.md §3 literally (calendar periods, cohort members, "returned in
period N") without the roll-ups, period numbers or suffix sums the metric layer uses.
"""

from __future__ import annotations

import itertools
from datetime import date, timedelta

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from data_access.store import Store
from metrics import retention as ret
from metrics.filters import Filters

RANGE = Filters(start=date(2025, 5, 14), end=date(2026, 2, 27))
NARROW = Filters(
    start=date(2025, 9, 1),
    end=date(2026, 4, 30),
    channels=("web", "store", "email"),
    regions=("North", "South", "Online"),
    segments=("gold", "silver"),
)


@pytest.fixture(scope="module")
def demo(demo_store):
    store = Store(demo_store)
    with duckdb.connect(str(demo_store), read_only=True) as con:
        events = con.sql("SELECT customer_id, occurred_at, channel, event_type FROM events").pl()
        customers = con.sql("SELECT customer_id, acquisition_channel, region, segment FROM customers").pl()
    yield store, events, customers
    store.close()


def _start(day: pl.Expr, period: str) -> pl.Expr:
    return day.dt.truncate("1w" if period == "week" else "1mo")


def _shift(start: pl.Expr, periods: pl.Expr, period: str) -> pl.Expr:
    if period == "week":
        return start + pl.duration(weeks=periods)
    return start.dt.offset_by(pl.format("{}mo", periods))


def _end(start: pl.Expr, period: str) -> pl.Expr:
    return start + pl.duration(days=6) if period == "week" else start.dt.month_end()


def _groups(events: pl.DataFrame, customers: pl.DataFrame, breakdown: str) -> pl.DataFrame:
    if breakdown == "none":
        return customers.select("customer_id", group=pl.lit(ret.ALL_CUSTOMERS))
    if breakdown == "channels-used":
        used = events.group_by("customer_id").agg(n=pl.col("channel").n_unique())
        label = (
            pl.when(pl.col("n") >= 4)
            .then(pl.lit("4+ channels"))
            .when(pl.col("n") == 1)
            .then(pl.lit("1 channel"))
            .otherwise(pl.format("{} channels", pl.col("n")))
        )
        return used.select("customer_id", group=label)
    column = {"acquisition-channel": "acquisition_channel", "region": "region", "segment": "segment"}[
        breakdown
    ]
    return customers.select("customer_id", group=pl.col(column).fill_null("no segment"))


def _plain_retention(
    events: pl.DataFrame,
    customers: pl.DataFrame,
    filters: Filters,
    *,
    period: str,
    cohort_type: str,
    returning: str,
    activity: str,
    channel: str | None,
    breakdown: str,
) -> pl.DataFrame:
    last_day = events["occurred_at"].max().date()
    chosen = events
    if activity == "purchase":
        chosen = chosen.filter(pl.col("event_type") == "purchase")
    if filters.channels:
        chosen = chosen.filter(pl.col("channel").is_in(filters.channels))
    if channel:
        chosen = chosen.filter(pl.col("channel") == channel)
    allowed = customers
    if filters.regions:
        allowed = allowed.filter(pl.col("region").is_in(filters.regions))
    if filters.segments:
        allowed = allowed.filter(pl.col("segment").is_in(filters.segments))
    chosen = chosen.join(allowed.select("customer_id"), on="customer_id", how="semi")
    active = chosen.select("customer_id", start=_start(pl.col("occurred_at").dt.date(), period)).unique()

    if cohort_type == "first-time":
        members = active.group_by("customer_id").agg(cohort=pl.col("start").min())
    else:
        members = active.rename({"start": "cohort"})
    members = members.filter(
        (pl.col("cohort") <= filters.end) & (_end(pl.col("cohort"), period) >= filters.start)
    )
    members = members.join(_groups(events, customers, breakdown), on="customer_id", how="inner")

    # Every member is followed for each period from its cohort's to the one holding the last day.
    last_start = (
        date(last_day.year, last_day.month, 1)
        if period == "month"
        else last_day - timedelta(days=last_day.weekday())
    )
    horizon = (
        (pl.lit(last_start).dt.year() - pl.col("cohort").dt.year()) * 12
        + (pl.lit(last_start).dt.month() - pl.col("cohort").dt.month())
        if period == "month"
        else (pl.lit(last_start) - pl.col("cohort")).dt.total_days() // 7
    )
    grid = members.with_columns(period_index=pl.int_ranges(0, horizon + 1)).explode("period_index")
    grid = grid.with_columns(target=_shift(pl.col("cohort"), pl.col("period_index"), period))
    if returning == "on":
        seen = active.rename({"start": "target"}).with_columns(back=pl.lit(True))
        grid = grid.join(seen, on=["customer_id", "target"], how="left").with_columns(
            pl.col("back").fill_null(False)
        )
    else:
        last = active.group_by("customer_id").agg(last=pl.col("start").max())
        grid = grid.join(last, on="customer_id").with_columns(back=pl.col("last") >= pl.col("target"))
    cells = grid.group_by(["group", "cohort", "period_index", "target"]).agg(
        cohort_size=pl.len(), retained=pl.col("back").sum()
    )
    return (
        cells.select(
            "group",
            "cohort",
            "period_index",
            "cohort_size",
            "retained",
            retention_pct=pl.col("retained") / pl.col("cohort_size") * 100,
            complete=_end(pl.col("target"), period) <= last_day,
        )
        .cast(ret.CELL_SCHEMA)
        .sort(["group", "cohort", "period_index"])
    )


OPTIONS = list(
    itertools.product(ret.PERIODS, ret.COHORT_TYPES, ret.RETURNING, ret.ACTIVITIES, ret.BREAKDOWNS)
)


@pytest.mark.parametrize(("period", "cohort_type", "returning", "activity", "breakdown"), OPTIONS)
def test_retention_equals_a_plain_recomputation(demo, period, cohort_type, returning, activity, breakdown):
    store, events, customers = demo
    options = {
        "period": period,
        "cohort_type": cohort_type,
        "returning": returning,
        "activity": activity,
        "channel": None,
        "breakdown": breakdown,
    }
    result = ret.retention(store, RANGE, **options)
    expected = _plain_retention(events, customers, RANGE, **options)
    assert not expected.is_empty()
    assert_frame_equal(result, expected)


@pytest.mark.parametrize(
    ("period", "cohort_type", "returning", "activity"),
    list(itertools.product(ret.PERIODS, ret.COHORT_TYPES, ret.RETURNING, ret.ACTIVITIES)),
)
def test_retention_with_every_filter_and_a_channel_equals_a_plain_recomputation(
    demo, period, cohort_type, returning, activity
):
    store, events, customers = demo
    options = {
        "period": period,
        "cohort_type": cohort_type,
        "returning": returning,
        "activity": activity,
        "channel": "web",
        "breakdown": "region",
    }
    result = ret.retention(store, NARROW, **options)
    expected = _plain_retention(events, customers, NARROW, **options)
    assert not expected.is_empty()
    assert_frame_equal(result, expected)
