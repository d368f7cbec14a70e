"""Segment rules on the four hand-checkable customers, saved segments, and the segment filter.

A: web-acquired, North, gold; 2 orders (web 100, store 50) = 150; web, store, support; a support
   contact, CSAT 5; last purchase 10 days before the store's last day (20 March).
B: store, South; 1 order 80 − 20 refunded = 60; store only; last purchase 15 days before.
C: web, North, silver; 1 order 40; web and email; last purchase 33 days before.
D: app, South, gold; never bought; app and support (a survey, CSAT 2, no support contact).

Four customers are too few to fit the CLV models, so they have no stored scores; the ``scored``
store gives them hand-set ones. The ``carts`` store has its own customers for carts and journeys.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import plotly.graph_objects as go
import polars as pl
import pytest

from data_access.segment_store import SegmentConflict, SegmentError, SegmentStore, sidecar_path
from data_access.store import Store, writable_store
from metrics import kpis, segment_comparison, segments
from metrics.filters import Filters
from tests.factories import build_store, customer, event, four_customers_store
from views.segment_charts import SEGMENT_COLORS, clv_comparison_figure, segment_colors

# Hand-set scores: A 0.7 (a band's lower bound), B 0.3 (likewise), C 0.1; D never bought, no score.
HAND_SCORES = pl.DataFrame({"customer_id": ["A", "B", "C"], "p_alive": [0.7, 0.3, 0.1],
                            "predicted_clv": [300.0, 60.0, 20.0], "clv_tier": ["top 10%", "next 40%", "rest"]})


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return four_customers_store(tmp_path_factory.mktemp("segments") / "four.duckdb")


def with_scores(path: Path, scores: pl.DataFrame) -> Store:
    """The four customers with ``scores`` in place of the (empty) ones the build stored."""
    four_customers_store(path).close()
    with writable_store(path) as writable:
        writable.backend.create_table("customer_clv_scores", scores, overwrite=True)
    return Store(path)


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    return with_scores(tmp_path_factory.mktemp("segments") / "scored.duckdb", HAND_SCORES)


@pytest.fixture(scope="module")
def carts(tmp_path_factory):
    """E adds to cart on 18 March, 2 days before the last day (20 March), and never buys. F adds to
    cart on the web on 10 March and buys in store the next day. G adds to cart in the app on 1 March
    (19 days before the last day) and only browses later. H browses the web on 5 March and buys in
    store on 12 March. I browsed the web on 1 January and bought in store on 15 March, 73 days later:
    beyond the 30-day journey lookback."""
    customers = [customer(c, "2026-01-01 09:00", "web", "North") for c in "EFGHI"]
    events = [
        event("e1", "E", "2026-03-18 10:00", "web", "add_to_cart"),
        event("f1", "F", "2026-03-10 10:00", "web", "add_to_cart"),
        event("f2", "F", "2026-03-11 10:00", "store", "purchase", revenue=30.0, order_id="of1"),
        event("g1", "G", "2026-03-01 10:00", "app", "add_to_cart"),
        event("g2", "G", "2026-03-20 18:00", "app", "page_view"),
        event("h1", "H", "2026-03-05 10:00", "web", "page_view"),
        event("h2", "H", "2026-03-12 15:00", "store", "purchase", revenue=80.0, order_id="oh1"),
        event("i1", "I", "2026-01-01 10:00", "web", "page_view"),
        event("i2", "I", "2026-03-15 12:00", "store", "purchase", revenue=60.0, order_id="oi1"),
    ]
    return build_store(tmp_path_factory.mktemp("segments") / "carts.duckdb", customers=customers, events=events)


def _members(store, rule: dict) -> list[str]:
    return sorted(store.to_polars(segments.member_ids_expr(segments.canonical(rule)))["customer_id"].to_list())


def _one(field: str, operator: str, value) -> dict:
    return {"op": "and", "rules": [{"field": field, "operator": operator, "value": value}]}


@pytest.mark.parametrize(("field", "operator", "value", "expected"), [
    ("region", "in", ["North"], ["A", "C"]),
    ("segment", "not in", ["gold"], ["B", "C"]),  # no segment is "not gold"
    ("acquisition_channel", "in", ["web"], ["A", "C"]),
    ("channels_used", ">=", 2, ["A", "C", "D"]),
    ("orders", "=", 1, ["B", "C"]),
    ("orders", "between", [1, 2], ["A", "B", "C"]),
    ("net_revenue", ">=", 60, ["A", "B"]),
    ("days_since_last_purchase", "<=", 15, ["A", "B"]),  # D never bought: no recency
    ("days_since_last_purchase", ">=", 30, ["C"]),
    ("first_event_at", "on or after", "2026-03-01", ["A", "B"]),
    ("last_event_at", "on or before", "2026-02-28", ["D"]),
    ("last_event_at", "between", ["2026-03-01", "2026-03-05"], ["C"]),
    ("latest_csat_band", "in", ["1-2"], ["D"]),
    ("latest_csat_band", "in", ["4-5"], ["A"]),
    ("contacted_support", "is", True, ["A"]),
    ("contacted_support", "is", False, ["B", "C", "D"]),
    ("channel", "any of", ["email", "app"], ["C", "D"]),
    ("channel", "all of", ["web", "store"], ["A"]),
    ("channel", "all of", ["web"], ["A", "C"]),
    ("rfm_segment", "in", ["new"], ["A", "B"]),  # first purchase within 30 days, under 3 orders
    ("rfm_segment", "in", ["others"], ["C", "D"]),
    # RFM score: A 5 (10 days) + 2 (2 orders) + 2 ($150) = 9; B 5 + 1 + 1 ($60) = 7; C 4 (33 days) + 1 + 1 = 6.
    ("rfm_score", ">=", 9, ["A"]),
    ("rfm_score", "between", [6, 7], ["B", "C"]),
    ("rfm_score", "=", 3, ["D"]),  # never bought: 1 + 1 + 1
    # A's web browsing led to the web order; the store order came with no touch since it.
    ("store_after_online", "is", True, []),
    ("abandoned_cart", "in the last", 365, []),  # nobody added to a cart
    # Too few repeat buyers to fit the models: no scores, so no match either way.
    ("clv_tier", "in", ["top 10%", "next 40%", "rest"], []),
    ("clv_tier", "not in", ["top 10%"], []),
    ("p_alive_band", "not in", ["below 30%"], []),
])
def test_each_condition(store, field, operator, value, expected):
    assert _members(store, _one(field, operator, value)) == expected


@pytest.mark.parametrize(("field", "operator", "value", "expected"), [
    ("clv_tier", "in", ["top 10%"], ["A"]),
    ("clv_tier", "not in", ["top 10%"], ["B", "C"]),  # D has no score: not "not top 10%" either
    ("p_alive_band", "in", ["below 30%"], ["C"]),  # 0.1
    ("p_alive_band", "in", ["30-70%"], ["B"]),  # 0.3 opens the band
    ("p_alive_band", "in", ["70% or more"], ["A"]),  # 0.7 opens the band
    ("p_alive_band", "not in", ["below 30%"], ["A", "B"]),
])
def test_score_conditions(scored, field, operator, value, expected):
    assert _members(scored, _one(field, operator, value)) == expected


@pytest.mark.parametrize(("field", "operator", "value", "expected"), [
    ("abandoned_cart", "in the last", 3, ["E"]),  # E's cart was 2 days before the last day: days 0-2
    ("abandoned_cart", "in the last", 2, []),  # days 0-1 only
    ("abandoned_cart", "in the last", 30, ["E", "G"]),  # F bought (in store) after the cart
    ("store_after_online", "is", True, ["F", "H"]),  # F's web cart and H's web visit; I's was too long ago
    ("store_after_online", "is", False, ["E", "G", "I"]),
])
def test_cart_and_journey_conditions(carts, field, operator, value, expected):
    assert _members(carts, _one(field, operator, value)) == expected


def test_rfm_scores_and_stored_scores_in_the_export(scored):
    frame = segments.members(scored, rule=segments.EVERYONE,
                             columns=("r_score", "f_score", "m_score", "rfm_score", "clv_tier", "p_alive"))
    assert frame.rows() == [("A", 5, 2, 2, 9, "top 10%", 0.7), ("B", 5, 1, 1, 7, "next 40%", 0.3),
                            ("C", 4, 1, 1, 6, "rest", 0.1), ("D", 1, 1, 1, 3, None, None)]


def test_definitions_state_the_thresholds_with_units():
    text = segments.definitions(lambda amount: f"${amount:,.0f}")
    assert "M, net revenue: 5 for ≥ $1,000, 4 for ≥ $500" in text
    assert "R, days since the last purchase: 5 for ≤ 30" in text
    assert "below 30%, 30-70%, 70% or more" in text


def test_and_or_nesting(store):
    north_repeat = {"op": "and", "rules": [
        {"field": "region", "operator": "in", "value": ["North"]},
        {"field": "orders", "operator": ">=", "value": 2},
    ]}
    assert _members(store, north_repeat) == ["A"]
    assert _members(store, {"op": "or", "rules": [
        north_repeat, {"field": "channel", "operator": "any of", "value": ["app"]}]}) == ["A", "D"]
    assert _members(store, {"op": "and", "rules": [
        {"op": "or", "rules": [_one("region", "in", ["South"]), _one("orders", "=", 1)]},
        _one("net_revenue", "<=", 50)]}) == ["C", "D"]


def test_empty_result_and_empty_rule(store):
    assert _members(store, _one("region", "in", ["Nowhere"])) == []
    assert _members(store, segments.EMPTY_RULE) == ["A", "B", "C", "D"]
    result = segments.summary(store, rule=segments.canonical(_one("region", "in", ["Nowhere"])))
    assert result["customers"].to_list() == [0, 4]


def test_summary_averages_predicted_cltv_over_scored_members(store, scored):
    north = segments.canonical(_one("region", "in", ["North"]))
    result = segments.summary(scored, rule=north)
    assert result["avg_predicted_clv"].to_list() == [160.0, 380.0 / 3]  # (A 300 + C 20) / 2; D has no score
    assert segments.summary(store, rule=north)["avg_predicted_clv"].to_list() == [None, None]


def test_summary_and_channel_mix_compare_with_all(store):
    rule = segments.canonical(_one("region", "in", ["North"]))
    result = segments.summary(store, rule=rule)
    segment, everyone = result.row(0, named=True), result.row(1, named=True)
    assert (segment["customers"], segment["share_of_customers"], segment["net_revenue"]) == (2, 0.5, 190.0)
    assert segment["avg_net_revenue"] == 95.0
    assert (everyone["customers"], everyone["net_revenue"]) == (4, 250.0)
    mix = {(row["group"], row["channel"]): row["share"] for row in segments.channel_mix(store, rule=rule).to_dicts()}
    assert mix[("segment", "web")] == 1.0 and mix[("segment", "email")] == 0.5
    assert mix[("all customers", "store")] == 0.5


def test_members_export_chosen_facts(store):
    frame = segments.members(store, rule=segments.canonical(_one("region", "in", ["North"])),
                             columns=("orders", "net_revenue"))
    assert frame.columns == ["customer_id", "orders", "net_revenue"]
    assert frame.rows() == [("A", 2, 150.0), ("C", 1, 40.0)]
    with pytest.raises(ValueError, match="unknown export column email"):
        segments.members(store, rule=segments.canonical(segments.EMPTY_RULE), columns=("email",))


@pytest.mark.parametrize(("rule", "message"), [
    (_one("favourite_colour", "in", ["red"]), "unknown field 'favourite_colour'; choose from acquisition_channel"),
    (_one("orders", "in", [1]), "unknown operator 'in' for orders; choose from >=, <=, =, between"),
    ({"op": "xor", "rules": []}, "unknown combinator 'xor'"),
    (_one("rfm_segment", "in", ["vip"]), "unknown rfm_segment value vip"),
    (_one("orders", "between", [5, 1]), "lower bound first"),
    (_one("first_event_at", "on or after", "last tuesday"), "needs ISO dates"),
    (_one("region", "in", []), "needs a non-empty list"),
    (_one("contacted_support", "is", "yes"), "needs true or false"),
    (_one("abandoned_cart", "in the last", 0), "needs a whole number of days, at least 1"),
    (_one("abandoned_cart", "in the last", 2.5), "needs a whole number of days"),
    (_one("abandoned_cart", "in the last", "7"), "needs a whole number of days"),
    (_one("abandoned_cart", "within", 7), "unknown operator 'within' for abandoned_cart"),
    (_one("clv_tier", "in", ["gold"]), "unknown clv_tier value gold; choose from top 10%, next 40%, rest"),
    (_one("p_alive_band", "in", ["high"]), "unknown p_alive_band value high"),
    (_one("rfm_score", "between", [15, 3]), "lower bound first"),
])
def test_invalid_rules_say_what_is_wrong(rule, message):
    with pytest.raises(ValueError, match=message):
        segments.canonical(rule)


def test_canonical_rules_are_equal_whatever_the_order():
    a = segments.canonical(_one("region", "in", ["South", "North"]))
    b = segments.canonical(json.dumps({"rules": [{"value": ["North", "South"], "operator": "in", "field": "region"}],
                                       "op": "and"}))
    assert a == b


def test_saved_segment_filter_restricts_every_metric(store):
    march = Filters(start=date(2026, 3, 1), end=date(2026, 3, 31))
    north = Filters(start=march.start, end=march.end, segment_name="North",
                    segment_rule=segments.canonical(_one("region", "in", ["North"])))
    revenue = lambda filters: kpis.kpis(store, filters).filter(kpi="revenue")["value"][0]  # noqa: E731
    assert revenue(march) == 210.0  # A 150 + B 60
    assert revenue(north) == 150.0  # A only: C bought in February
    assert "saved segment: North" in north.describe()
    assert north != march and hash(north) != hash(march)


# --- saved segments -------------------------------------------------------------------------------------

RULE = segments.canonical(_one("region", "in", ["North"]))
OTHER = segments.canonical(_one("region", "in", ["South"]))


def test_save_load_and_survive_restart(tmp_path):
    first = SegmentStore.beside(tmp_path / "store.duckdb")
    saved = first.save("  North   buyers ", RULE)
    assert (saved.name, saved.version, saved.definition) == ("North buyers", 1, RULE)
    assert sidecar_path(tmp_path / "store.duckdb").name == "store.duckdb.segments.json"
    again = SegmentStore.beside(tmp_path / "store.duckdb")  # a new process reads the same file
    assert again.get("North buyers") == saved
    assert again.names() == ["North buyers"]


def test_version_conflicts_are_refused(tmp_path):
    alice, bob = SegmentStore(tmp_path / "s.json"), SegmentStore(tmp_path / "s.json")
    v1 = alice.save("North", RULE)
    with pytest.raises(SegmentConflict, match="already exists"):
        bob.save("North", OTHER)  # creating over an existing name
    v2 = alice.save("North", OTHER, expected_version=v1.version)
    assert (v2.version, v2.created_at) == (2, v1.created_at)
    with pytest.raises(SegmentConflict, match="changed by someone else.*version 2.*version 1"):
        bob.save("North", RULE, expected_version=1)
    with pytest.raises(SegmentConflict, match="changed by someone else"):
        bob.delete("North", expected_version=1)
    assert alice.get("North").definition == OTHER  # nothing was overwritten


def test_rename_and_delete(tmp_path):
    segments_file = SegmentStore(tmp_path / "s.json")
    v1 = segments_file.save("North", RULE)
    segments_file.save("South", OTHER)
    with pytest.raises(SegmentConflict, match="'South' already exists"):
        segments_file.rename("North", "South", expected_version=v1.version)
    renamed = segments_file.rename("North", "Northerners", expected_version=v1.version)
    assert (renamed.version, segments_file.names()) == (2, ["Northerners", "South"])
    segments_file.delete("Northerners", expected_version=2)
    with pytest.raises(SegmentConflict, match="no longer exists"):
        segments_file.delete("Northerners", expected_version=2)
    assert segments_file.names() == ["South"]


def test_bad_names_and_unreadable_file(tmp_path):
    segments_file = SegmentStore(tmp_path / "s.json")
    with pytest.raises(SegmentError, match="needs a name"):
        segments_file.save("   ", RULE)
    (tmp_path / "s.json").write_text("{not json")
    with pytest.raises(SegmentError, match="cannot read saved segments"):
        segments_file.list()


# --- comparing two segments -------------------------------------------------------------------------

NORTH = ("North", segments.canonical(_one("region", "in", ["North"])))  # A and C
SOUTH = ("South", segments.canonical(_one("region", "in", ["South"])))  # B and D


def test_comparison_kpis(scored):
    rows = segment_comparison.kpis(scored, pair=(SOUTH, NORTH)).rows(named=True)
    assert [row["group"] for row in rows] == ["South", "North"]  # in the order asked
    south, north = rows
    assert (north["customers"], north["net_revenue"], north["avg_net_revenue"]) == (2, 190.0, 95.0)
    assert (south["customers"], south["net_revenue"], south["avg_net_revenue"]) == (2, 60.0, 30.0)  # B 80 - 20
    assert (north["omnichannel_share"], south["omnichannel_share"]) == (1.0, 0.5)  # A, C; D but not B
    assert (north["avg_predicted_clv"], south["avg_predicted_clv"]) == (160.0, 60.0)  # (300 + 20) / 2; B only


def test_comparison_retention_curves(store):
    curves = segment_comparison.retention_curves(store, pair=(NORTH, SOUTH))
    # C's February cohort of first purchases is the only complete month (the data ends on 20 March);
    # A's and B's March cohorts are still running, and D never bought.
    assert curves.select("group", "period_index", "cohort_size", "retained").rows() == [("North", 0, 1, 1)]
    everyone = (segment_comparison.ALL_CUSTOMERS, segments.EVERYONE)
    assert segment_comparison.segment_filters(*NORTH).segment_rule == NORTH[1]
    assert segment_comparison.retention_curves(store, pair=(everyone, SOUTH))["group"].to_list() == ["All customers"]


def test_comparison_clv_distribution(store, scored):
    frame = segment_comparison.clv_distribution(scored, pair=(NORTH, SOUTH), bins=2)
    # The ranges end near the 99th percentile of 20, 60 and 300: A's 300 falls in the open last range,
    # B's 60 and C's 20 in the first.
    assert frame.select("group", "customers", "share_pct", "open_ended").rows() == [
        ("North", 1, 50.0, False), ("North", 1, 50.0, True), ("South", 1, 100.0, False), ("South", 0, 0.0, True)]
    assert frame["bin_start"][0] == 0.0 and frame["bin_end"][0] == frame["bin_start"][1]
    assert segment_comparison.clv_distribution(store, pair=(NORTH, SOUTH)).is_empty()  # nobody scored
    with pytest.raises(ValueError, match="different names"):
        segment_comparison.kpis(store, pair=(NORTH, NORTH))


def test_clv_comparison_figure():
    frame = pl.DataFrame({
        "group": ["North", "North", "South", "South"], "bin_start": [0.0, 150.0] * 2, "bin_end": [150.0, 300.0] * 2,
        "open_ended": [False, True] * 2, "customers": [1, 1, 1, 0], "share_pct": [50.0, 50.0, 100.0, 0.0]})
    colors = segment_colors(["North", "South"])
    fig = clv_comparison_figure(frame, currency="USD", horizon_months=12, colors=colors)
    assert isinstance(fig, go.Figure)
    assert [trace.name for trace in fig.data] == ["North", "South"]
    assert [trace.marker.color for trace in fig.data] == list(SEGMENT_COLORS)
    assert list(fig.data[0].x) == ["$0–150", "$150+"]  # the last range is open-ended
    assert list(fig.data[1].y) == [100.0, 0.0]
    assert fig.layout.yaxis.ticksuffix == "%"
    assert fig.layout.title.text == "Predicted CLTV over the next 12 months"


def test_a_saved_segment_takes_in_customers_of_a_later_load(tmp_path):
    from journeylens.cli import main

    path = tmp_path / "store.duckdb"
    four_customers_store(path).close()
    SegmentStore.beside(path).save("North", RULE)
    before = tmp_path / "before.csv"
    assert main(["segment", "export", "North", "--db", str(path), "--format", "csv", "--output", str(before)]) == 0
    assert sorted(pl.read_csv(before)["customer_id"]) == ["A", "C"]
    # E, a new North customer, arrives with the next load; the segment stores its rule, not its members.
    (tmp_path / "customers.csv").write_text(
        "customer_id,first_seen_at,acquisition_channel,region,segment\nE,2026-03-10 10:00:00,app,North,\n")
    (tmp_path / "events.csv").write_text(
        "event_id,customer_id,occurred_at,channel,event_type,order_id,revenue,csat_score,nps_score,campaign,"
        "product_category,source_system\ne1,E,2026-03-10 10:00:00,app,page_view,,,,,,,mobile_app\n")
    assert main(["load", "--customers", str(tmp_path / "customers.csv"), "--events", str(tmp_path / "events.csv"),
                 "--db", str(path)]) == 0
    after = tmp_path / "after.csv"
    assert main(["segment", "export", "North", "--db", str(path), "--format", "csv", "--output", str(after)]) == 0
    assert sorted(pl.read_csv(after)["customer_id"]) == ["A", "C", "E"]
    assert SegmentStore.beside(path).get("North").version == 1  # the saved definition itself is unchanged
