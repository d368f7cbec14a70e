"""Derived tables on the four hand-written customers of tests/factories.py."""

from __future__ import annotations

from datetime import date, datetime

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from data_access.derived import derived
from tests.factories import four_customers_store


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return four_customers_store(tmp_path_factory.mktemp("derived") / "derived.duckdb")


def test_customer_facts(store):
    columns = ["customer_id", "orders", "purchase_days", "channels_used", "net_revenue", "gross_revenue",
               "support_contacts", "latest_csat", "last_purchase_at"]
    result = store.to_polars(derived("customer_facts").order_by("customer_id")).select(columns)
    expected = pl.DataFrame(
        {
            "customer_id": ["A", "B", "C", "D"],
            "orders": [2, 1, 1, 0],  # A web + store; B store; C web; D none
            "purchase_days": [2, 1, 1, 0],
            "channels_used": [3, 1, 2, 2],  # A web, store, support; C web, email; D app, support
            "net_revenue": [150.0, 60.0, 40.0, 0.0],  # B: 80 − 20 refund
            "gross_revenue": [150.0, 80.0, 40.0, 0.0],
            "support_contacts": [1, 0, 0, 0],
            "latest_csat": [5, None, None, 2],
            "last_purchase_at": [datetime(2026, 3, 10, 15), datetime(2026, 3, 5, 12), datetime(2026, 2, 15, 8), None],
        },
        schema_overrides={"latest_csat": pl.Int8},
    )
    assert_frame_equal(result, expected, check_dtypes=False)


def test_daily_activity_is_additive(store):
    result = store.to_polars(
        derived("daily_activity").filter(lambda t: t.customer_id == "B").order_by("day")
    ).select("day", "channel", "events", "touches", "orders", "gross_revenue", "refunds")
    expected = pl.DataFrame(
        {
            "day": [date(2026, 3, 5), date(2026, 3, 20)],
            "channel": ["store", "store"],
            "events": [1, 1],
            "touches": [0, 0],  # purchases and refunds are outcomes, not touches
            "orders": [1, 0],
            "gross_revenue": [80.0, 0.0],
            "refunds": [0.0, -20.0],
        }
    )
    assert_frame_equal(result, expected, check_dtypes=False)
