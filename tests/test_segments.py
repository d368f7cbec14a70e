"""Segment rules on the four hand-checkable customers, saved segments, and the segment filter.

A: web-acquired, North, gold; 2 orders (web 100, store 50) = 150; web, store, support; a support
   contact, CSAT 5; last purchase 10 days before the store's last day (20 March).
B: store, South; 1 order 80 − 20 refunded = 60; store only; last purchase 15 days before.
C: web, North, silver; 1 order 40; web and email; last purchase 33 days before.
D: app, South, gold; never bought; app and support (a survey, CSAT 2, no support contact).
"""

from __future__ import annotations

import json
from datetime import date

import pytest

from data_access.segment_store import SegmentConflict, SegmentError, SegmentStore, sidecar_path
from metrics import kpis, segments
from metrics.filters import Filters
from tests.factories import four_customers_store


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return four_customers_store(tmp_path_factory.mktemp("segments") / "four.duckdb")


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
])
def test_each_condition(store, field, operator, value, expected):
    assert _members(store, _one(field, operator, value)) == expected


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
