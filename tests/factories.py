"""Tiny hand-written stores for metric tests: a few customers whose numbers a reader can check."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl

from data_access.derived import build_derived_tables
from data_access.schema import CUSTOMERS, EVENTS, IDENTITIES
from data_access.store import Store, writable_store


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
    """Write the rows into a fresh store, build the derived tables, and open it read-only."""
    with writable_store(path, fresh=True) as store:
        for name, rows, schema in (
            ("customers", customers, CUSTOMERS),
            ("events", events, EVENTS),
            ("identities", identities or [], IDENTITIES),
        ):
            store.backend.insert(name, _frame(rows, schema))
        build_derived_tables(store.backend, progress=lambda _: None)
    return Store(path)
