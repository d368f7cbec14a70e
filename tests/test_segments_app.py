"""The Segments and Customer 360 pages through AppTest: building (with groups), saving, reloading and
comparing segments, and a saved segment as the global filter."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from data_access.schema import IDENTITIES
from data_access.segment_store import SegmentStore
from data_access.store import writable_store
from metrics import segments
from tests.apptest import app as _app
from tests.apptest import figures as _figures
from tests.factories import four_customers_store
from tests.test_segments import HAND_SCORES

EMAIL = "Ann.Archer@Example.com"


@pytest.fixture
def tiny_store(tmp_path) -> Path:
    """The four customers, with A's e-mail (hashed as the demo does) and loyalty id stitched in."""
    path = tmp_path / "tiny.duckdb"
    four_customers_store(path).close()
    digest = duckdb.sql(f"SELECT sha256(lower(trim('  {EMAIL} ')))").fetchone()[0]
    rows = [("A", "email", digest, "shopify_web"), ("A", "loyalty_id", "LY0000000001", "crm"),
            ("B", "pos_card", "f" * 64, "pos")]
    with writable_store(path) as store:
        store.backend.insert("identities", pl.DataFrame(rows, schema=IDENTITIES.to_polars(), orient="row"))
    return path


def _metrics(at: AppTest) -> dict[str, str]:
    return {metric.label: metric.value for metric in at.metric}


def test_segment_page_builds_and_saves_a_segment(tiny_store, monkeypatch):
    at = _app(tiny_store, monkeypatch).run()
    at.switch_page("pages/segments.py").run()
    assert not at.exception
    assert _metrics(at)["Members"] == "4"  # no condition yet: everyone
    at.selectbox(key="cond_0_field").set_value("region").run()
    at.multiselect(key="cond_0_list").set_value(["North"]).run()
    assert not at.exception and not at.error
    shown = _metrics(at)
    assert (shown["Members"], shown["Share of customers"], shown["Net revenue"]) == ("2", "50.0%", "$190")
    assert len(at.get("plotly_chart")) == 1
    assert {button.label for button in at.get("download_button")} >= {"CSV", "Parquet"}

    at.text_input(key="segment_new_name").set_value("Northerners")
    next(b for b in at.button if b.label == "Save as new segment").click().run()
    assert not at.exception
    saved = SegmentStore.beside(tiny_store).get("Northerners")
    assert saved is not None and saved.version == 1
    assert segments.parse(saved.definition)["rules"][0]["value"] == ["North"]
    assert any("Saved “Northerners”" in s.value for s in at.success)


def test_applying_a_saved_segment_changes_the_overview(tiny_store, monkeypatch):
    before = _metrics(_app(tiny_store, monkeypatch).run())
    SegmentStore.beside(tiny_store).save("Northerners", segments.canonical(
        {"op": "and", "rules": [{"field": "region", "operator": "in", "value": ["North"]}]}))
    at = _app(tiny_store, monkeypatch)
    at.query_params["saved_segment"] = "Northerners"
    at.run()
    assert not at.exception
    after = _metrics(at)
    assert (before["Revenue"], after["Revenue"]) == ("$250", "$190")  # B's 60 leaves with the South
    assert (before["Active customers"], after["Active customers"]) == ("4", "2")
    assert at.selectbox(key="saved_segment").value == "Northerners"


def test_unknown_saved_segment_in_the_url_falls_back_to_everyone(tiny_store, monkeypatch):
    at = _app(tiny_store, monkeypatch)
    at.query_params["saved_segment"] = "Deleted long ago"
    at.run()
    assert not at.exception and not at.error
    assert any("no longer exists" in notice.value for notice in at.info)
    assert _metrics(at)["Revenue"] == "$250"


def test_customer_360_finds_a_customer_by_a_hashed_email(tiny_store, monkeypatch):
    at = _app(tiny_store, monkeypatch).run()
    at.switch_page("pages/customer_360.py").run()
    assert not at.exception
    at.text_input(key="c360_query").set_value(EMAIL.upper()).run()
    assert not at.exception and not at.error
    shown = _metrics(at)
    assert (shown["Orders"], shown["Net revenue"], shown["Acquisition channel"]) == ("2", "$150", "web")
    assert (shown["Latest CSAT"], shown["Channels used"]) == ("5/5", "3")
    timeline = at.get("plotly_chart")[0].proto.spec
    assert {trace["name"] for trace in json.loads(timeline)["data"]} == {"web", "store", "support"}
    identities = at.dataframe[-1].value
    assert EMAIL.lower() not in identities.to_string().lower()  # only a hash prefix is shown
    assert "LY0000000001" in identities.to_string()


def test_customer_360_by_unified_id_and_unknown_identifier(tiny_store, monkeypatch):
    at = _app(tiny_store, monkeypatch).run()
    at.switch_page("pages/customer_360.py").run()
    at.text_input(key="c360_query").set_value("B").run()
    assert _metrics(at)["Net revenue"] == "$60"
    at.text_input(key="c360_query").set_value("nobody@example.com").run()
    assert not at.exception
    assert any("No customer" in w.value for w in at.warning)


def test_customer_360_lookup_comes_from_the_link(tiny_store, monkeypatch):
    at = _app(tiny_store, monkeypatch)
    at.query_params["c360_query"] = "B"
    at.run()
    at.switch_page("pages/customer_360.py").run()
    assert not at.exception
    shown = _metrics(at)
    assert shown["Net revenue"] == "$60"
    # Four customers are too few to fit the CLV models: no prediction rather than a made-up one.
    assert (shown["Predicted CLTV"], shown["P(alive)"]) == ("–", "–")


def _rule(op: str, *rules: dict) -> str:
    return segments.canonical({"op": op, "rules": list(rules)})


def _condition(field: str, operator: str, value) -> dict:
    return {"field": field, "operator": operator, "value": value}


def test_building_a_nested_rule_and_loading_it_back(tiny_store, monkeypatch):
    at = _app(tiny_store, monkeypatch).run()
    at.switch_page("pages/segments.py").run()
    at.selectbox(key="cond_0_field").set_value("region").run()
    at.multiselect(key="cond_0_list").set_value(["North"]).run()
    at.button(key="rule_add_group").click().run()
    at.selectbox(key="rule_g0_0_field").set_value("orders").run()
    at.number_input(key="rule_g0_0_num").set_value(2.0).run()
    at.button(key="rule_g0_add").click().run()
    at.selectbox(key="rule_g0_1_field").set_value("channel").run()
    at.multiselect(key="rule_g0_1_list").set_value(["app"]).run()
    assert not at.exception
    assert _metrics(at)["Members"] == "0"  # North and 2+ orders and the app: nobody
    at.radio(key="rule_g0_op").set_value("any").run()
    assert _metrics(at)["Members"] == "1"  # North and (2+ orders or the app): A; D used the app but is South
    for tab in ("Compare segments", "Build a segment"):  # the rule survives a visit to the other tab
        at.session_state["segments_tab"] = tab
        at.run()
    assert at.selectbox(key="rule_g0_1_field").value == "channel" and _metrics(at)["Members"] == "1"
    at.text_input(key="segment_new_name").set_value("North repeat or app")
    next(b for b in at.button if b.label == "Save as new segment").click().run()
    assert not at.exception
    expected = _rule("and", _condition("region", "in", ["North"]), {"op": "or", "rules": [
        _condition("orders", ">=", 2.0), _condition("channel", "any of", ["app"])]})
    assert SegmentStore.beside(tiny_store).get("North repeat or app").definition == expected

    again = _app(tiny_store, monkeypatch).run()  # a new session starts from empty rows
    again.switch_page("pages/segments.py").run()
    again.selectbox(key="edit_segment").set_value("North repeat or app").run()
    assert not again.exception
    assert (again.selectbox(key="cond_0_field").value, again.multiselect(key="cond_0_list").value) == (
        "region", ["North"])
    assert again.radio(key="rule_g0_op").value == "any"
    assert (again.selectbox(key="rule_g0_0_field").value, again.number_input(key="rule_g0_0_num").value) == (
        "orders", 2.0)
    assert (again.selectbox(key="rule_g0_1_field").value, again.multiselect(key="rule_g0_1_list").value) == (
        "channel", ["app"])
    assert _metrics(again)["Members"] == "1"


def test_removing_a_group_keeps_the_other_groups_widgets(tiny_store, monkeypatch):
    saved = SegmentStore.beside(tiny_store)
    saved.save("Two groups", _rule("or", {"op": "and", "rules": [
        _condition("region", "in", ["South"]), _condition("orders", "=", 1)]},  # B
        {"op": "and", "rules": [_condition("contacted_support", "is", True)]}))  # A
    saved.save("Too deep", _rule("and", {"op": "or", "rules": [{"op": "and", "rules": [
        _condition("orders", ">=", 1)]}]}))
    at = _app(tiny_store, monkeypatch).run()
    at.switch_page("pages/segments.py").run()
    at.selectbox(key="edit_segment").set_value("Two groups").run()
    assert _metrics(at)["Members"] == "2"
    at.button(key="rule_g0_drop").click().run()
    assert not at.exception
    assert at.selectbox(key="rule_g1_0_field").value == "contacted_support"  # same key, same value
    assert not [box for box in at.selectbox if str(box.key).startswith("rule_g0_")]
    assert _metrics(at)["Members"] == "1"  # A
    at.selectbox(key="edit_segment").set_value("Too deep").run()
    assert not at.exception
    assert any("groups within groups" in notice.value for notice in at.success)


def test_comparing_two_saved_segments(tiny_store, monkeypatch):
    with writable_store(tiny_store) as store:
        store.backend.create_table("customer_clv_scores", HAND_SCORES, overwrite=True)
    saved = SegmentStore.beside(tiny_store)
    saved.save("Northerners", _rule("and", _condition("region", "in", ["North"])))  # A and C
    saved.save("Southerners", _rule("and", _condition("region", "in", ["South"])))  # B and D
    monkeypatch.setenv("JOURNEYLENS_MIN_SAMPLE", "1")  # C's February cohort of one makes the curve
    at = _app(tiny_store, monkeypatch)
    for key, value in (("segments_tab", "Compare segments"), ("compare_a", "Northerners"),
                       ("compare_b", "Southerners")):
        at.query_params[key] = value
    at.run()
    at.switch_page("pages/segments.py").run()
    assert not at.exception and not at.error
    shown = [(metric.label, metric.value) for metric in at.metric]
    assert shown == [
        # A 150 + C 40; A's 300 and C's 20 predicted; both used 2+ channels.
        ("Members", "2"), ("Net revenue", "$190"), ("Avg net revenue", "$95"), ("Avg predicted CLTV", "$160"),
        ("Omnichannel share", "100.0%"),
        # B 80 - 20 refunded, D nothing; only B has a score; D used the app and support, B only the store.
        ("Members", "2"), ("Net revenue", "$60"), ("Avg net revenue", "$30"), ("Avg predicted CLTV", "$60"),
        ("Omnichannel share", "50.0%"),
    ]
    figures = _figures(at)
    assert [figure["layout"]["title"]["text"] for figure in figures] == [
        "Purchase retention by segment", "Predicted CLTV over the next 12 months"]
    assert {trace["name"] for trace in figures[1]["data"]} == {"Northerners", "Southerners"}
    assert {button.label for button in at.get("download_button")} >= {"PNG", "CSV", "Parquet", "Excel"}

    at.selectbox(key="compare_b").set_value("Northerners").run()
    assert not at.exception
    assert any("two different segments" in notice.value for notice in at.info)
    at.selectbox(key="compare_b").set_value("All customers").run()
    assert [metric.value for metric in at.metric if metric.label == "Members"] == ["2", "4"]
