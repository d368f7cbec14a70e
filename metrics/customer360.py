"""Customer 360: find one customer by unified id or identifier, then their facts, timeline and identities.

Typed identifiers are turned into their stored forms (hashed where personal) before they become
Ibis literals, so a clear e-mail or phone number is never sent to the engine.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir
import polars as pl

from data_access.derived import derived
from data_access.identifiers import lookup_values, stored_forms
from data_access.schema import unified
from metrics.engine import Engine
from metrics.segments import facts_expr

MAX_MATCHES = 20
TIMELINE_COLUMNS = ("occurred_at", "channel", "event_type", "revenue", "csat_score", "nps_score", "order_id",
                    "campaign", "product_category", "source_system", "event_id")


def find_expr(query: str, *, identifier_type: str | None = None) -> ir.Table:
    """Customers whose unified id is ``query`` or who carry it as an identifier (of the given type)."""
    forms = {identifier_type: stored_forms(identifier_type, query)} if identifier_type else lookup_values(query)
    ids = unified("identities")
    matches = [
        ids.filter((ids.identifier_type == ibis.literal(kind)) & ids.identifier_value.isin(values))
        .select("customer_id", matched_by=ibis.literal(kind))
        for kind, values in forms.items() if values
    ]
    if identifier_type is None and query.strip():
        customers = unified("customers")
        matches.append(customers.filter(customers.customer_id == ibis.literal(query.strip()))
                       .select("customer_id", matched_by=ibis.literal("customer_id")))
    if not matches:
        matches = [ids.filter(ibis.literal(False)).select("customer_id", matched_by=ibis.literal("nothing"))]
    return ibis.union(*matches, distinct=True).order_by("customer_id").limit(MAX_MATCHES)


def find(engine: Engine, *, query: str, identifier_type: str | None = None) -> pl.DataFrame:
    """Up to 20 (customer_id, matched_by) rows; empty when nothing matches."""
    return engine.to_polars(find_expr(query, identifier_type=identifier_type))


def profile_expr(customer_id: str) -> ir.Table:
    facts = facts_expr()
    return facts.filter(facts.customer_id == ibis.literal(customer_id))


def profile(engine: Engine, *, customer_id: str) -> dict | None:
    """The customer's lifetime facts (with recency and RFM segment), or None for an unknown id."""
    rows = engine.to_polars(profile_expr(customer_id))
    return rows.row(0, named=True) if len(rows) else None


def channels_expr(customer_id: str) -> ir.Table:
    used = derived("customer_channels")
    return used.filter(used.customer_id == ibis.literal(customer_id)).order_by("first_at")


def channels(engine: Engine, *, customer_id: str) -> pl.DataFrame:
    """Each channel the customer used: events, first and last touch, orders, net revenue."""
    return engine.to_polars(channels_expr(customer_id))


def timeline_expr(customer_id: str, *, channels: tuple[str, ...] = ()) -> ir.Table:
    events = unified("events")
    events = events.filter(events.customer_id == ibis.literal(customer_id))
    if channels:
        events = events.filter(events.channel.isin(channels))
    return events.select(*TIMELINE_COLUMNS).order_by(["occurred_at", "event_id"])


def timeline(engine: Engine, *, customer_id: str, channels: tuple[str, ...] = ()) -> pl.DataFrame:
    """Every event of the customer, oldest first (optionally only some channels)."""
    return engine.to_polars(timeline_expr(customer_id, channels=channels))


def open_cart_expr(customer_id: str) -> ir.Table:
    """The customer's add_to_cart events after their last purchase (in any channel): the open cart."""
    events = unified("events")
    mine = events.filter(events.customer_id == ibis.literal(customer_id))
    last_purchase = mine.filter(mine.event_type == "purchase").occurred_at.max()
    carts = mine.filter(mine.event_type == "add_to_cart")
    # Never bought: every cart add is still open.
    carts = carts.filter(carts.occurred_at > last_purchase.fill_null(ibis.timestamp("1900-01-01 00:00:00")))
    return carts.select("occurred_at", "channel", "product_category", "event_id").order_by(
        ["occurred_at", "event_id"])


def open_cart(engine: Engine, *, customer_id: str) -> pl.DataFrame:
    """Items added to a cart since the customer's last purchase, oldest first (empty: no open cart)."""
    return engine.to_polars(open_cart_expr(customer_id))


def last_journey_expr(customer_id: str) -> ir.Table:
    journeys = derived("journeys")
    mine = journeys.filter(journeys.customer_id == ibis.literal(customer_id))
    return mine.select("journey_id", "started_at", "ended_at", "converted", "conversion_channel", "path",
                       "revenue").order_by([ibis.desc("ended_at"), ibis.desc("journey_id")]).limit(1)


def last_journey(engine: Engine, *, customer_id: str) -> dict | None:
    """The customer's latest journey (touches up to a purchase or a drop-off), or None."""
    rows = engine.to_polars(last_journey_expr(customer_id))
    return rows.row(0, named=True) if len(rows) else None


def identities_expr(customer_id: str) -> ir.Table:
    ids = unified("identities")
    return (ids.filter(ids.customer_id == ibis.literal(customer_id))
            .select("identifier_type", "identifier_value", "source_system")
            .order_by(["identifier_type", "source_system"]))


def identities(engine: Engine, *, customer_id: str) -> pl.DataFrame:
    """The identifiers stitched into this customer and the systems they came from (stored form)."""
    return engine.to_polars(identities_expr(customer_id))


def portable_expressions() -> dict[str, ir.Expr]:
    return {
        "customer360.find": find_expr("someone@example.com"),
        "customer360.profile": profile_expr("C1"),
        "customer360.channels": channels_expr("C1"),
        "customer360.timeline": timeline_expr("C1", channels=("web", "store")),
        "customer360.identities": identities_expr("C1"),
        "customer360.open_cart": open_cart_expr("C1"),
        "customer360.last_journey": last_journey_expr("C1"),
    }
