"""Journey construction (derived tables) and the journey-map metrics on hand-written customers."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest
from polars.testing import assert_frame_equal, assert_series_equal

from data_access.derived import derived
from metrics import journeys as jm
from metrics.filters import Filters
from tests.journey_factories import journey_edge_cases_store, rebuild

EVERYTHING = Filters()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return journey_edge_cases_store(tmp_path_factory.mktemp("journeys") / "journeys.duckdb")


def _journeys(store) -> pl.DataFrame:
    columns = ["journey_id", "converted", "conversion_channel", "revenue", "touches", "steps", "path",
               "collapsed_path", "channel_set"]
    return store.to_polars(derived("journeys").order_by("journey_id")).select(columns)


def test_journeys_follow_the_definition(store):
    expected = pl.DataFrame(
        [
            # M: the first purchase closes web, app; the second only what came after the first.
            ("M/0/c", True, "web", 100.0, 2, 2, "web>app", "web>app", "app,web"),
            ("M/1/c", True, "store", 40.0, 2, 2, "email>store", "email>store", "email,store"),
            # After the last purchase: 9 days apart is one journey, 50 silent days end it.
            ("M/2/d1", False, None, 0.0, 2, 1, "web>web", "web", "web"),
            ("M/2/d2", False, None, 0.0, 1, 1, "social", "social", "social"),
            # Same instant: ordered by event id, t1 before the purchase t2, t3 after it.
            ("T/0/c", True, "web", 30.0, 1, 1, "web", "web", "web"),
            ("T/1/c", True, "app", 20.0, 1, 1, "app", "app", "app"),
            # Exactly 30 days before the purchase is inside the window, one second more is not.
            ("W/0/c", True, "store", 50.0, 1, 1, "web", "web", "web"),
            ("W/0/d1", False, None, 0.0, 1, 1, "email", "email", "email"),
            # A purchase with nothing before it is a journey without touches.
            ("Z/0/c", True, "store", 70.0, 0, 0, "", "", ""),
        ],
        schema=["journey_id", "converted", "conversion_channel", "revenue", "touches", "steps", "path",
                "collapsed_path", "channel_set"],
        orient="row",
    )
    assert_frame_equal(_journeys(store), expected, check_dtypes=False)


def test_every_purchase_is_one_conversion(store):
    journeys = store.to_polars(derived("journeys"))
    assert journeys["converted"].sum() == 6  # m3, m6, t2, t4, w2, z1
    assert journeys["revenue"].sum() == pytest.approx(310.0)  # refunds are not conversions


def test_touch_positions_and_times(store):
    touches = store.to_polars(
        derived("journey_touches").filter(lambda t: t.customer_id == "M").order_by(["occurred_at", "event_id"])
    )
    assert touches["event_id"].to_list() == ["m1", "m2", "m4", "m5", "m7", "m8", "m9"]  # no refund, no survey
    assert touches["journey_id"].to_list() == ["M/0/c", "M/0/c", "M/1/c", "M/1/c", "M/2/d1", "M/2/d1", "M/2/d2"]
    assert touches["touch_number"].to_list() == [1, 2, 1, 2, 1, 2, 1]
    assert touches["step"].to_list() == [1, 2, 1, 2, 1, 1, 1]
    assert touches["is_step_end"].to_list() == [True, True, True, True, False, True, True]
    assert touches["next_channel"].to_list() == ["app", None, "store", None, "web", None, None]
    assert touches["hours_to_next"][4] == pytest.approx(9 * 24)
    # Days to the purchase for converting touches, to the journey's last touch for drop-offs.
    assert touches["days_to_end"].to_list()[:4] == pytest.approx([2 + 2 / 24, 1 + 2 / 24, 1 + 2 / 24, 2 / 24])
    assert touches["days_to_end"].to_list()[4:] == pytest.approx([9.0, 0.0, 0.0])


def test_touches_carry_their_journeys_channels(store):
    # Bits by channel name: app 1, email 2, social 4, store 8, support 16, web 32 (every channel
    # in the events: support only has M's survey answer).
    touches = store.to_polars(derived("journey_touches"))
    masks = touches.group_by("journey_id").agg(pl.col("journey_channels").unique()).sort("journey_id")
    assert dict(zip(masks["journey_id"], masks["journey_channels"].to_list(), strict=True)) == {
        "M/0/c": [1 | 32],  # web, app → web purchase
        "M/1/c": [2 | 8],  # email, store visit → store purchase
        "M/2/d1": [32],
        "M/2/d2": [4],
        "T/0/c": [32],  # t1 web → t2 web purchase at the same instant
        "T/1/c": [1],  # t3 app, after t2 by event id → t4 app purchase
        "W/0/c": [32 | 8],  # web → store purchase: the purchase's channel counts
        "W/0/d1": [2],  # email, a second too early: a drop-off, the purchase is not its own
    }
    # The journey table holds the same masks; a purchase without touches, only its channel's bit.
    journeys = store.to_polars(derived("journeys"))
    stored = dict(zip(journeys["journey_id"], journeys["journey_channels"], strict=True))
    assert {journey: stored[journey] for journey in masks["journey_id"]} == {
        journey: mask[0] for journey, mask in zip(masks["journey_id"], masks["journey_channels"], strict=True)}
    untouched = journeys.filter(pl.col("touches") == 0)
    assert not untouched.is_empty()
    bits = dict(store.to_polars(derived("channel_bits")).iter_rows())
    assert untouched["journey_channels"].to_list() == [bits[c] for c in untouched["conversion_channel"]]
    # Each touch also names its journey's purchase channel, as the journey table does.
    per_journey = touches.select("journey_id", "conversion_channel").unique()
    journeys = store.to_polars(derived("journeys").filter(lambda j: j.touches > 0))
    expected = journeys.select("journey_id", "conversion_channel")
    assert_frame_equal(per_journey.sort("journey_id"), expected.sort("journey_id"))


@pytest.mark.parametrize("filters", [
    Filters(channels=("store",)),  # W/0/c by its purchase only, M/1/c by its touches too
    Filters(channels=("app", "social")),
    Filters(channels=("email",), regions=("South",)),  # M/1/c only (W is in the North)
    Filters(start=date(2026, 3, 1), end=date(2026, 3, 31), channels=("web",)),
])
def test_touches_of_the_journeys_in_view(store, filters):
    in_view = jm.journeys_in_view(filters).select("journey_id")
    expected = store.to_polars(jm.touches_of(filters, in_view).select("event_id").order_by("event_id"))
    result = store.to_polars(jm.touches_of(filters).select("event_id").order_by("event_id"))
    assert not expected.is_empty()
    assert_frame_equal(result, expected)


@pytest.mark.parametrize("channels", [("store",), ("app", "social"), ("support",), ("email", "web")])
def test_journeys_in_view_touched_or_converted_in_a_selected_channel(store, channels):
    # The definition, from the journeys' channel lists: the mask must select the same journeys,
    # including W/0/c for store by its purchase alone.
    journeys = store.to_polars(derived("journeys"))
    touched = pl.col("channel_set").str.split(",").list.eval(pl.element().is_in(channels)).list.any()
    expected = journeys.filter(touched | pl.col("conversion_channel").is_in(channels))["journey_id"].sort()
    result = store.to_polars(jm.journeys_in_view(Filters(channels=channels)))["journey_id"].sort()
    assert_series_equal(result, expected)


def test_days_to_convert(store):
    journeys = store.to_polars(derived("journeys").order_by("journey_id"))
    days = dict(zip(journeys["journey_id"], journeys["days_to_convert"], strict=True))
    assert days["M/0/c"] == pytest.approx(2 + 2 / 24)  # 5 Jan 10:00 to 7 Jan 12:00
    assert days["W/0/c"] == pytest.approx(30.0)
    assert days["T/0/c"] == 0.0
    assert days["M/2/d1"] is None


def test_lookback_is_a_build_setting(tmp_path):
    store = journey_edge_cases_store(tmp_path / "short.duckdb")
    store.close()
    short = rebuild(tmp_path / "short.duckdb", lookback_days=1)
    journeys = _journeys(short).filter(pl.col("journey_id").str.starts_with("M"))
    # A one-day window: only touches at most 24 h before a purchase convert; the rest split into
    # drop-offs wherever more than a day passes between touches.
    assert journeys.select("journey_id", "path").rows() == [
        ("M/0/c", ""), ("M/0/d1", "web>app"), ("M/1/c", "store"), ("M/1/d1", "email"),
        ("M/2/d1", "web"), ("M/2/d2", "web"), ("M/2/d3", "social"),
    ]
    lookback = short.to_polars(derived("journeys").select("lookback_days").distinct())["lookback_days"]
    assert lookback.to_list() == [1]


# ---------------------------------------------------------------------------------------------
# Journey map metrics


def _links(frame: pl.DataFrame) -> dict[tuple[str, str], int]:
    return {(row["source"], row["target"]): row["journeys"] for row in frame.iter_rows(named=True)}


def test_forward_flows_count_journeys(store):
    links = _links(jm.journey_flows(store, EVERYTHING, steps=2))
    assert links == {
        ("1 · web", "2 · app"): 1,  # M/0/c
        ("2 · app", "purchase (web)"): 1,
        ("1 · email", "2 · store"): 1,  # M/1/c
        ("2 · store", "purchase (store)"): 1,
        ("1 · web", "2 · web"): 1,  # M/2/d1
        ("2 · web", "drop-off"): 1,
        ("1 · social", "drop-off"): 1,  # M/2/d2
        ("1 · web", "purchase (web)"): 1,  # T/0/c
        ("1 · app", "purchase (app)"): 1,  # T/1/c
        ("1 · web", "purchase (store)"): 1,  # W/0/c
        ("1 · email", "drop-off"): 1,  # W/0/d1 (Z has no touch to show)
    }


def test_longer_journeys_pass_through_more(store):
    links = _links(jm.journey_flows(store, EVERYTHING, steps=2, collapse=True,
                                    purchase_channel="store"))
    assert links == {("1 · email", "2 · store"): 1, ("2 · store", "purchase (store)"): 1,
                     ("1 · web", "purchase (store)"): 1}
    # Anchored at the app product view, journeys start there; one step shown, the rest "more".
    links = _links(jm.journey_flows(store, EVERYTHING, steps=2, start=jm.anchor("event", "product_view")))
    assert links == {("1 · app", "purchase (web)"): 1}
    links = _links(jm.journey_flows(store, EVERYTHING, steps=2, start=jm.anchor("channel", "web")))
    assert links[("1 · web", "2 · app")] == 1
    assert links[("2 · web", "drop-off")] == 1


def test_steps_are_limited(store):
    with pytest.raises(ValueError):
        jm.journey_flows(store, EVERYTHING, steps=9)
    with pytest.raises(ValueError):
        jm.journey_flows(store, EVERYTHING, start="page:web")


def test_backward_flows_end_at_the_purchase(store):
    links = _links(jm.journey_flows(store, EVERYTHING, steps=2, direction="backward"))
    assert links == {
        ("−2 · web", "−1 · app"): 1, ("−1 · app", "purchase (web)"): 1,
        ("−2 · email", "−1 · store"): 1, ("−1 · store", "purchase (store)"): 1,
        ("−1 · web", "purchase (web)"): 1, ("−1 · app", "purchase (app)"): 1,
        ("−1 · web", "purchase (store)"): 1,
    }
    links = _links(jm.journey_flows(store, EVERYTHING, steps=2, direction="backward", purchase_channel="web"))
    assert links == {("−2 · web", "−1 · app"): 1, ("−1 · app", "purchase (web)"): 1,
                     ("−1 · web", "purchase (web)"): 1}


def test_rare_nodes_merge_into_other(store):
    # One node per column: step 1 keeps web (4 journeys); step 2 ties at 1 and keeps app (by name).
    links = _links(jm.journey_flows(store, EVERYTHING, steps=2, max_nodes=1))
    assert links[("1 · web", "2 · app")] == 1  # M/0/c
    assert links[("1 · web", "2 · other")] == 1  # M/2/d1 web → web
    assert links[("1 · other", "2 · other")] == 1  # M/1/c email → store
    assert links[("1 · other", "drop-off")] == 2  # social and email drop-offs
    # Merging nodes never loses a journey: the same 11 journey-steps as without the cap.
    assert sum(links.values()) == sum(_links(jm.journey_flows(store, EVERYTHING, steps=2)).values()) == 11


def test_filters_select_whole_journeys(store):
    north = Filters(regions=("North",))
    assert {r["source"] for r in jm.journey_flows(store, north, steps=2).iter_rows(named=True)} == {
        "1 · web", "1 · app", "1 · email"}
    # Channel "store": journeys touching or converting in store, shown whole.
    paths = jm.top_paths(store, Filters(channels=("store",)))
    assert sorted(paths["path"].to_list()) == ["email>store", "web"]  # and Z, which has no path


def test_top_paths(store):
    paths = jm.top_paths(store, EVERYTHING, collapse=True, top=3, sort_by="journeys")
    web = paths.row(0, named=True)
    assert web["path"] == "web"  # T/0/c, W/0/c, M/2/d1 (collapsed)
    assert (web["journeys"], web["conversions"], web["revenue"]) == (3, 2, 80.0)
    assert web["conversion_rate"] == pytest.approx(200 / 3)
    assert web["median_days_to_convert"] == pytest.approx(15.0)  # 0 and 30 days
    by_revenue = jm.top_paths(store, EVERYTHING, sort_by="revenue", top=1)
    assert by_revenue["path"].to_list() == ["web>app"]


def test_customers_behind_a_path(store):
    rows = jm.path_customers(store, EVERYTHING, path="web", collapse=True)
    assert rows["journey_id"].to_list() == ["W/0/c", "T/0/c", "M/2/d1"]  # latest first
    assert rows["customer_id"].to_list() == ["W", "T", "M"]
