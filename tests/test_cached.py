"""The query results the app keeps: bounded, per store file, and shared by channel selections."""

from __future__ import annotations

import dataclasses
from datetime import date

import polars as pl
import pytest

from data_access import cached
from data_access.store import Store
from metrics import kpis
from metrics.filters import Filters


def _frame(rows: int) -> pl.DataFrame:
    return pl.DataFrame({"x": range(rows)}, schema={"x": pl.Int64})  # 8 bytes a row


def test_query_results_keep_the_most_recently_used_within_their_budget():
    results = cached._QueryResults(budget=2_500, largest=1_000)
    results.put("a", _frame(100))
    results.put("b", _frame(100))
    assert results.get("a") is not None  # a is now the most recently used
    results.put("c", _frame(100))  # 2,400 bytes: all three fit
    results.put("d", _frame(100))  # over the budget: b, the least recently used, goes
    assert [key for key in "abcd" if results.get(key) is not None] == ["a", "c", "d"]
    results.put("too large", _frame(200))  # 1,600 bytes > largest
    assert results.get("too large") is None


def test_a_channel_change_runs_only_the_queries_that_count_customers_across_channels(demo_store, monkeypatch):
    monkeypatch.setenv("JOURNEYLENS_STORE_PATH", str(demo_store))
    run: list[str] = []
    to_polars = Store.to_polars

    def recording(store, expr, **options):
        run.append(cached.query_text(expr))
        return to_polars(store, expr, **options)

    monkeypatch.setattr(Store, "to_polars", recording)
    every = Filters(start=date(2025, 7, 1), end=date(2025, 9, 28))
    for metric in (kpis.kpis, kpis.trend, kpis.channel_mix):
        cached.compute(metric, every)
    first_run = len(run)
    run.clear()
    some = dataclasses.replace(every, channels=("store", "web"))
    result = cached.compute(kpis.channel_mix, some)
    assert run == []  # every channel's mix is kept: the selection is narrowed from it
    assert set(result["channel"]) == {"store", "web"}
    assert result["revenue_share"].sum() == pytest.approx(100)
    cached.compute(kpis.kpis, some)
    cached.compute(kpis.trend, some)
    # Only the customer and purchaser counts and the historical CLTV (both periods in each) and
    # the distinct active total per week.
    expected = {cached.query_text(query) for query in (
        kpis.customer_counts_expr(some), kpis.purchaser_counts_expr(some), kpis.historical_clv_expr(some),
        kpis.active_total_expr(some, grain="week"))}
    assert set(run) == expected and len(run) == 4 < first_run
