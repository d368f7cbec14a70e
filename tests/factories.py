"""Tiny hand-written stores for metric tests: a few customers whose numbers a reader can check."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl

from data_access.derived import build_derived_tables
from data_access.schema import CUSTOMERS, EVENTS, IDENTITIES
from data_access.store import Store, writable_store
from metrics.clv import store_scores


def customer(customer_id: str, first_seen_at: str, acquisition_channel: str, region: str,
             segment: str | None = None) -> dict:
    return {
        "customer_id": customer_id,
        "first_seen_at": datetime.fromisoformat(first_seen_at),
        "acquisition_channel": acquisition_channel,
        "region": region,
        "segment": segment,
    }


def event(event_id: str, customer_id: str, occurred_at: str, channel: str, event_type: str, *,
          revenue: float | None = None, order_id: str | None = None, csat: int | None = None,
          nps: int | None = None, campaign: str | None = None, category: str | None = None) -> dict:
    return {
        "event_id": event_id,
        "customer_id": customer_id,
        "occurred_at": datetime.fromisoformat(occurred_at),
        "channel": channel,
        "event_type": event_type,
        "order_id": order_id,
        "revenue": revenue,
        "csat_score": csat,
        "nps_score": nps,
        "campaign": campaign,
        "product_category": category,
        "source_system": f"test_{channel}",
    }


def _frame(rows: list[dict], schema) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=schema.to_polars(), orient="row") if rows else pl.DataFrame(
        schema=schema.to_polars()
    )


def build_store(path: Path, *, customers: list[dict], events: list[dict],
                identities: list[dict] | None = None) -> Store:
    """Write the rows into a fresh store, build the derived tables (CLV scores too), and open it read-only."""
    with writable_store(path, fresh=True) as store:
        for name, rows, schema in (
            ("customers", customers, CUSTOMERS),
            ("events", events, EVENTS),
            ("identities", identities or [], IDENTITIES),
        ):
            store.backend.insert(name, _frame(rows, schema))
        build_derived_tables(store.backend, progress=lambda _: None, score_clv=store_scores)
    return Store(path)


def four_customers_store(path: Path) -> Store:
    """A (web → store buyer, rates support 5/10), B (store, partly refunded), C (bought in February,
    emailed in March), D (February browse and a poor 2/3 survey): the KPI test data."""
    customers = [
        customer("A", "2026-03-02 09:00", "web", "North", "gold"),
        customer("B", "2026-03-05 12:00", "store", "South"),
        customer("C", "2026-02-15 08:00", "web", "North", "silver"),
        customer("D", "2026-02-10 10:00", "app", "South", "gold"),
    ]
    events = [
        # A: browses on the web, buys on the web and in store, rates support 5 / 10 (all March).
        event("a1", "A", "2026-03-02 09:00", "web", "page_view"),
        event("a2", "A", "2026-03-02 09:05", "web", "purchase", revenue=100.0, order_id="oa1"),
        event("a3", "A", "2026-03-10 15:00", "store", "purchase", revenue=50.0, order_id="oa2"),
        event("a4", "A", "2026-03-11 10:00", "support", "support_contact"),
        event("a5", "A", "2026-03-12 10:00", "support", "survey_response", csat=5, nps=10),
        # B: one store order of 80 in March, 20 of it refunded later in March.
        event("b1", "B", "2026-03-05 12:00", "store", "purchase", revenue=80.0, order_id="ob1"),
        event("b2", "B", "2026-03-20 12:00", "store", "refund", revenue=-20.0, order_id="ob1"),
        # C: bought 40 on the web in February, only opened an email in March.
        event("c1", "C", "2026-02-15 08:00", "web", "purchase", revenue=40.0, order_id="oc1"),
        event("c2", "C", "2026-03-03 07:00", "email", "email_open", campaign="spring"),
        # D: February only: app browse and a poor survey (CSAT 2, NPS 3).
        event("d1", "D", "2026-02-10 10:00", "app", "page_view"),
        event("d2", "D", "2026-02-11 10:00", "support", "survey_response", csat=2, nps=3),
    ]
    return build_store(path, customers=customers, events=events)
