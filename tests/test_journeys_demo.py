"""Journeys on the demo store: they reconcile with the orders, and the cross-channel view recovers
the planted "web browse before store purchase" share."""

from __future__ import annotations

import math

import polars as pl
import pytest

from data_access import demo
from data_access.derived import derived
from data_access.store import Store
from metrics import attribution as am
from metrics import flows
from metrics.filters import Filters

EVERYTHING = Filters()


@pytest.fixture(scope="module")
def store(demo_store):
    store = Store(demo_store)
    yield store
    store.close()


def test_every_order_is_one_conversion_journey(store):
    journeys = store.to_polars(derived("journeys").filter(lambda j: j.converted).agg(
        journeys=lambda j: j.count(), revenue=lambda j: j.revenue.sum()))
    events = store.to_polars(derived("daily_activity").agg(
        orders=lambda a: a.orders.sum(), revenue=lambda a: a.gross_revenue.sum()))
    assert journeys["journeys"][0] == events["orders"][0]
    assert journeys["revenue"][0] == pytest.approx(events["revenue"][0])


def test_touches_are_in_exactly_one_journey(store):
    touches = store.to_polars(derived("journey_touches").agg(n=lambda t: t.count()))["n"][0]
    events = store.to_polars(derived("daily_activity").agg(n=lambda a: a.touches.sum()))["n"][0]
    assert touches == events


def test_planted_web_before_store_share_is_recovered(store):
    result = flows.research_share(
        store, EVERYTHING, purchase_channel="store", touch_channel="web",
        within_days=demo.WEB_BEFORE_STORE_DAYS, event_types=("page_view", "product_view"),
    ).row(0, named=True)
    share = result["share"] / 100
    # Planted 35%; the generator aims at the expected share, so allow its binomial error (3 SE).
    standard_error = math.sqrt(demo.WEB_BEFORE_STORE_SHARE * (1 - demo.WEB_BEFORE_STORE_SHARE) / result["purchases"])
    assert share == pytest.approx(demo.WEB_BEFORE_STORE_SHARE, abs=3 * standard_error)


def test_attribution_on_the_demo_sums_to_the_conversions(store):
    result = am.attribution(store, EVERYTHING, bootstrap_replicates=20)
    totals = am.totals(store, EVERYTHING).row(0, named=True)
    credited = totals["conversions"] - totals["conversions_without_touch"]
    per_model = result.group_by("model").agg(pl.col("conversions").sum())
    assert per_model["conversions"].to_list() == pytest.approx([credited] * len(am.MODELS))
