"""Hand-written customers for journey, flow and attribution tests; each comment says the journeys."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

from data_access.derived import build_derived_tables
from data_access.store import Store, writable_store
from metrics.filters import Filters
from tests.factories import build_store, customer, event

# Channel selections of the demo store whose journeys a narrowed result must reproduce: one
# channel, several with a region, and two without purchases in a date range.
DEMO_CHANNEL_SELECTIONS = (
    Filters(channels=("store",)),
    Filters(channels=("app", "email", "web"), regions=("North",)),
    Filters(start=date(2025, 7, 1), end=date(2025, 9, 30), channels=("email", "sms")),
)


def journey_edge_cases_store(path: Path) -> Store:
    """Customers whose journeys test the definition (lookback 30 days).

    W: email 30 days + 1 s before a store purchase (a drop-off of its own), web exactly 30 days
       before it (converting): W/0/d1 = email, W/0/c = web → purchase (store) 50.
    M: web, app → web purchase 100; email, store visit → store purchase 40 (a refund and a survey
       in between are not touches); then web, web (9 days apart, one journey) and, after 50 silent
       days, social: M/0/c = web>app, M/1/c = email>store, M/2/d1 = web>web, M/2/d2 = social.
    T: a web touch, a web purchase and an app touch at the same instant, ordered by event id
       (t1 < t2 < t3), then an app purchase: T/0/c = web → purchase (web) 30,
       T/1/c = app → purchase (app) 20.
    Z: a store purchase with no touch before it: Z/0/c with no touches, revenue 70.
    """
    customers = [
        customer("W", "2026-03-01 09:59:59", "email", "North", "gold"),
        customer("M", "2026-01-05 10:00", "web", "South"),
        customer("T", "2026-03-10 12:00", "web", "North", "silver"),
        customer("Z", "2026-03-15 12:00", "store", "South"),
    ]
    events = [
        event("w0", "W", "2026-03-01 09:59:59", "email", "email_open"),
        event("w1", "W", "2026-03-01 10:00:00", "web", "page_view"),
        event("w2", "W", "2026-03-31 10:00:00", "store", "purchase", revenue=50.0, order_id="ow"),
        event("m1", "M", "2026-01-05 10:00", "web", "page_view"),
        event("m2", "M", "2026-01-06 10:00", "app", "product_view"),
        event("m3", "M", "2026-01-07 12:00", "web", "purchase", revenue=100.0, order_id="om1"),
        event("m4", "M", "2026-01-20 10:00", "email", "email_click"),
        event("m5", "M", "2026-01-21 10:00", "store", "store_visit"),
        event("m6", "M", "2026-01-21 12:00", "store", "purchase", revenue=40.0, order_id="om2"),
        event("m10", "M", "2026-01-25 10:00", "store", "refund", revenue=-10.0, order_id="om2"),
        event("m7", "M", "2026-02-01 10:00", "web", "page_view"),
        event("m11", "M", "2026-02-02 10:00", "support", "survey_response", csat=4, nps=8),
        event("m8", "M", "2026-02-10 10:00", "web", "page_view"),
        event("m9", "M", "2026-04-01 10:00", "social", "social_engagement"),
        event("t1", "T", "2026-03-10 12:00", "web", "page_view"),
        event("t2", "T", "2026-03-10 12:00", "web", "purchase", revenue=30.0, order_id="ot1"),
        event("t3", "T", "2026-03-10 12:00", "app", "page_view"),
        event("t4", "T", "2026-03-12 12:00", "app", "purchase", revenue=20.0, order_id="ot2"),
        event("z1", "Z", "2026-03-15 12:00", "store", "purchase", revenue=70.0, order_id="oz"),
    ]
    return build_store(path, customers=customers, events=events)


PURCHASE_DAY = datetime(2026, 3, 20, 12, 0)


def _at(days_before: float) -> str:
    return (PURCHASE_DAY - timedelta(days=days_before)).isoformat(sep=" ")


def attribution_store(path: Path) -> Store:
    """Four journeys ending on 20 March 2026 whose credit is computed by hand in the tests.

    A: web 10 days before, email 3 days before, store purchase 100.
    B: app 1 day before, app purchase 50.
    C: web 14 days before, web 7 days before, store visit at the purchase, store purchase 60.
    D: email 2 days before, no purchase (a drop-off: counts only for Markov).
    """
    customers = [customer(c, "2026-03-01 00:00", "web", "North") for c in "ABCD"]
    events = [
        event("a1", "A", _at(10), "web", "page_view"),
        event("a2", "A", _at(3), "email", "email_click"),
        event("a3", "A", _at(0), "store", "purchase", revenue=100.0, order_id="oa"),
        event("b1", "B", _at(1), "app", "page_view"),
        event("b2", "B", _at(0), "app", "purchase", revenue=50.0, order_id="ob"),
        event("c1", "C", _at(14), "web", "page_view"),
        event("c2", "C", _at(7), "web", "product_view"),
        event("c3", "C", _at(0), "store", "store_visit"),
        event("c4", "C", _at(0), "store", "purchase", revenue=60.0, order_id="oc"),
        event("d1", "D", _at(2), "email", "email_open"),
    ]
    return build_store(path, customers=customers, events=events)


def rebuild(path: Path, *, lookback_days: int) -> Store:
    """Rebuild the derived tables of a test store with another lookback window."""
    with writable_store(path) as store:
        build_derived_tables(store.backend, progress=lambda _: None, lookback_days=lookback_days)
    return Store(path)
