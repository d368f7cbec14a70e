"""A channel filter gives the same figures whether the Filters carry the store's channel bits (the
masks are numbers in the SQL) or not (the engine looks the masks up in channel_bits)."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest
from polars.testing import assert_frame_equal

from data_access.store import Store
from metrics import clv, flows, kpis
from metrics import journeys as jm
from metrics import retention as ret
from metrics.catalog import catalog, channel_bits
from metrics.filters import Filters

# Two channels of the demo's seven and a range that starts mid-period: cohorts, lifecycle states
# and churn all depend on periods before the range and on the channels left out.
FILTERS = Filters(start=date(2025, 11, 12), end=date(2026, 2, 20), channels=("store", "web"))


@pytest.fixture(scope="module")
def store(demo_store):
    store = Store(demo_store)
    yield store
    store.close()


def _customers(engine, filters):
    as_of = clv.resolve_as_of(engine, filters)
    return engine.to_polars(clv.customers_expr(filters, as_of=as_of)).sort("customer_id")


METRICS = {
    "retention, first-time": lambda e, f: ret.retention(e, f, period="week"),
    "retention, first-time on or after": lambda e, f: ret.retention(e, f, period="month", returning="on-or-after"),
    "retention, recurring": lambda e, f: ret.retention(e, f, period="month", cohort_type="recurring"),
    "retention, purchases in one channel": lambda e, f: ret.retention(e, f, activity="purchase", channel="web"),
    "lifecycle": lambda e, f: ret.lifecycle(e, f, period="week"),
    "lifecycle, purchases": lambda e, f: ret.lifecycle(e, f, period="month", activity="purchase"),
    "churn": lambda e, f: ret.churn_by_channel(e, f, threshold_days=60),
    "kpis": kpis.kpis,
    "trend": kpis.trend,
    "journey flows": jm.journey_flows,
    "top paths": jm.top_paths,
    "transitions": flows.transitions,
    "value per customer": _customers,
}


def test_channel_bits_are_the_catalog_channels_each_with_its_own_bit(store):
    bits = channel_bits(store)
    assert tuple(channel for channel, _ in bits) == catalog(store).channels
    assert sorted(bit for _, bit in bits) == [1 << position for position in range(len(bits))]


@pytest.mark.parametrize("name", METRICS)
def test_a_channel_filter_with_resolved_bits_gives_the_same_result(store, name):
    metric = METRICS[name]
    resolved = dataclasses.replace(FILTERS, channel_bits=channel_bits(store))
    expected = metric(store, FILTERS)
    result = metric(store, resolved)
    assert not expected.is_empty()
    assert_frame_equal(result, expected)
