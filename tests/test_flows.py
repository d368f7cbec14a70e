"""Channel flows and the longer-journey Sankey nodes on hand-written journeys (see journey_factories)."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from data_access.store import Store
from metrics import flows
from metrics import journeys as jm
from metrics.filters import Filters
from tests.journey_factories import DEMO_CHANNEL_SELECTIONS, attribution_store, journey_edge_cases_store

EVERYTHING = Filters()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return attribution_store(tmp_path_factory.mktemp("flows") / "flows.duckdb")


@pytest.fixture(scope="module")
def edge_store(tmp_path_factory):
    return journey_edge_cases_store(tmp_path_factory.mktemp("flows_edge") / "edge.duckdb")


def _pairs(frame: pl.DataFrame, key: tuple[str, str], value: str) -> dict[tuple[str, str], float]:
    return {(row[key[0]], row[key[1]]): row[value] for row in frame.iter_rows(named=True)}


def test_more_and_earlier_touches(store):
    forward = _pairs(jm.journey_flows(store, EVERYTHING, steps=2), ("source", "target"), "journeys")
    assert forward == {
        ("1 · web", "2 · email"): 1, ("2 · email", "purchase (store)"): 1,  # A
        ("1 · app", "purchase (app)"): 1,  # B
        ("1 · web", "2 · web"): 1, ("2 · web", jm.MORE): 1, (jm.MORE, "purchase (store)"): 1,  # C
        ("1 · email", "drop-off"): 1,  # D
    }
    backward = _pairs(jm.journey_flows(store, EVERYTHING, steps=2, direction="backward", purchase_channel="store"),
                      ("source", "target"), "journeys")
    assert backward == {
        ("−2 · web", "−1 · email"): 1, ("−1 · email", "purchase (store)"): 1,  # A
        (jm.EARLIER, "−2 · web"): 1, ("−2 · web", "−1 · store"): 1, ("−1 · store", "purchase (store)"): 1,  # C
    }


def test_transitions(store):
    collapsed = flows.transitions(store, EVERYTHING)
    counts = _pairs(collapsed, ("from_state", "to_state"), "transitions")
    assert counts == {
        ("start", "web"): 2, ("start", "app"): 1, ("start", "email"): 1,
        ("web", "email"): 1, ("web", "store"): 1,
        ("email", "purchase"): 1, ("email", "drop-off"): 1, ("app", "purchase"): 1, ("store", "purchase"): 1,
    }
    probabilities = _pairs(collapsed, ("from_state", "to_state"), "row_probability")
    assert probabilities[("start", "web")] == pytest.approx(50.0)
    assert probabilities[("email", "drop-off")] == pytest.approx(50.0)
    raw = _pairs(flows.transitions(store, EVERYTHING, collapse=False), ("from_state", "to_state"), "transitions")
    assert raw[("web", "web")] == 1  # C's two web touches
    assert flows.state_order(["store", "purchase", "start", "drop-off", "app"]) == [
        "start", "app", "store", "purchase", "drop-off"]


def test_zero_touch_purchase_goes_from_start_to_purchase(edge_store):
    counts = _pairs(flows.transitions(edge_store, EVERYTHING), ("from_state", "to_state"), "transitions")
    assert counts[("start", "purchase")] == 1  # Z


def test_cross_channel(store):
    first = _pairs(flows.cross_channel(store, EVERYTHING), ("journey_channel", "purchase_channel"), "conversions")
    assert first == {("web", "store"): 2, ("app", "app"): 1}  # A and C start on the web
    # Most frequent touch: A's web and email tie and go to the later one, email; C is web twice.
    most = _pairs(flows.cross_channel(store, EVERYTHING, basis="most_frequent"),
                  ("journey_channel", "purchase_channel"), "conversions")
    assert most == {("email", "store"): 1, ("web", "store"): 1, ("app", "app"): 1}


def test_online_offline(store):
    total = flows.online_offline(store, EVERYTHING).filter(pl.col("month").is_null()).row(0, named=True)
    assert (total["offline_purchases"], total["online_to_offline"]) == (2, 2)  # A, C researched on the web
    assert total["online_to_offline_share"] == pytest.approx(100.0)
    assert (total["online_purchases"], total["offline_to_online"]) == (1, 0)  # B
    months = flows.online_offline(store, EVERYTHING).filter(pl.col("month").is_not_null())
    assert months["month"].to_list() == [date(2026, 3, 1)]


def test_research_before_purchase(store, edge_store):
    def share(s, **options):
        return flows.research_share(s, EVERYTHING, **options).row(0, named=True)

    # C's web view 7 days before counts (inclusive), A's 10 days before does not.
    assert share(store, within_days=7) == {"purchases": 2, "researched": 1, "share": 50.0}
    assert share(store, within_days=10)["researched"] == 2
    # Page views only: A's, 10 days before; C's page view is 14 days before, its 7-day touch a product view.
    assert share(store, within_days=10, event_types=("page_view",))["researched"] == 1
    assert share(store, within_days=7, event_types=("page_view",))["researched"] == 0
    # The window, not the journey, decides: T's web touch belongs to the journey before its app
    # purchase, two days earlier.
    assert share(edge_store, purchase_channel="app", touch_channel="web", within_days=7)["share"] == 100.0


def test_time_between_touches_and_to_convert(store):
    gaps = flows.time_between_touches(store, EVERYTHING)
    web = gaps.filter(pl.col("channel") == "web")
    assert web.select("bucket", "count").rows() == [("7–14 d", 3)]  # A web→email, C web→web, web→store
    assert web["median_hours"][0] == pytest.approx(168.0)
    assert gaps.filter(pl.col("channel") == "email").is_empty()  # A's email is its last touch
    switches = flows.time_between_touches(store, EVERYTHING, collapse=True)
    assert switches.filter(pl.col("channel") == "web")["count"].sum() == 2
    convert = flows.time_to_convert(store, EVERYTHING)
    store_rows = convert.filter(pl.col("channel") == "store")
    assert store_rows.select("bucket", "count", "share").rows() == [("7–14 d", 1, 50.0), ("14–30 d", 1, 50.0)]
    assert store_rows["median_hours"][0] == pytest.approx(12 * 24)  # 10 and 14 days
    by_first = flows.time_to_convert(store, EVERYTHING, by="first_channel")
    assert by_first.filter(pl.col("channel") == "app").select("bucket").to_series().to_list() == ["1–3 d"]


@pytest.mark.parametrize("filters", DEMO_CHANNEL_SELECTIONS)
def test_flows_narrowed_from_every_channel_equal_the_selections_own_queries(demo_store, filters):
    # Transitions, cross-channel conversions and research are counted once over every channel per
    # journey channel mask and narrowed to the selection: the same as querying its journeys.
    demo = Store(demo_store)
    keys = ["from_state", "to_state"]
    own = demo.to_polars(flows.transitions_expr(filters)).group_by(keys).agg(pl.col("transitions").sum())
    result = flows.transitions(demo, filters).select(*keys, "transitions")
    assert own["transitions"].sum() > 100
    assert_frame_equal(result.sort(keys), own.sort(keys), check_dtypes=False)
    keys = ["month", "journey_channel", "purchase_channel"]
    own = demo.to_polars(flows.cross_channel_expr(filters)).sort(keys)
    result = flows.cross_channel_monthly(demo, filters).select(own.columns).sort(keys)
    assert_frame_equal(result, own, check_dtypes=False)
    options = {"purchase_channel": "store", "touch_channel": "web", "within_days": 7}
    own = demo.to_polars(flows.research_expr(filters, **options)).select(pl.col("purchases", "researched").sum())
    result = flows.research_share(demo, filters, **options).select("purchases", "researched")
    assert_frame_equal(result, own, check_dtypes=False)
