"""The contract check finds each kind of violation and says where it is."""

from __future__ import annotations

import duckdb

from data_access.schema import check_contract
from data_access.settings import DEFAULT_CHANNELS
from data_access.store import Store
from tests.factories import build_store, customer, event


def test_a_clean_store_honours_the_contract(tmp_path):
    store = build_store(
        tmp_path / "clean.duckdb",
        customers=[customer("A", "2026-03-01 10:00", "web", "North")],
        events=[event("a1", "A", "2026-03-01 10:00", "web", "page_view")],
    )
    assert check_contract(store.backend, channels=DEFAULT_CHANNELS) == []


def test_every_violation_is_reported(tmp_path):
    store = build_store(
        tmp_path / "broken.duckdb",
        customers=[customer("A", "2026-03-01 10:00", "web", "North")],
        events=[
            event("a1", "A", "2026-03-01 10:00", "web", "page_view"),
            event("a1", "A", "2026-03-02 10:00", "web", "page_view"),  # duplicated event_id
            event("a2", "A", "2026-03-03 10:00", "fax", "page_view"),  # unknown channel
            event("a3", "A", "2026-03-04 10:00", "web", "teleport"),  # unknown event type
            event("a4", "A", "2026-03-05 10:00", "support", "survey_response", csat=7, nps=11),
            event("z1", "Z", "2026-03-06 10:00", "web", "page_view"),  # customer Z does not exist
        ],
    )
    problems = check_contract(store.backend, channels=DEFAULT_CHANNELS)
    assert problems == [
        "events.event_id has 1 duplicated values",
        "events.channel has 1 values outside web, app, email, social, sms, store, support",
        "events.event_type has 1 values outside page_view, product_view, add_to_cart, checkout, purchase, "
        "refund, email_open, email_click, social_engagement, store_visit, support_contact, survey_response",
        "events.csat_score has 1 values outside 1–5",
        "events.nps_score has 1 values outside 0–10",
        "events has 1 rows whose customer_id is not in customers",
    ]


def test_a_store_missing_a_table_says_which(tmp_path):
    store = build_store(tmp_path / "partial.duckdb", customers=[], events=[])
    store.close()
    with duckdb.connect(str(tmp_path / "partial.duckdb")) as con:
        con.execute("DROP TABLE identities")
    assert check_contract(Store(tmp_path / "partial.duckdb").backend, channels=DEFAULT_CHANNELS) == [
        "table identities is missing"
    ]
