"""The purchase-day roll-up that customer lifetime value reads, built with the other derived tables.

Purchases and refunds are a small share of the events (a few in a hundred in the demo), yet the
CLV summary, its holdout check and the historical CLTV curves all start from them: one row per
customer, day and channel with just those facts keeps a million-customer summary to seconds.
"""

from __future__ import annotations

import ibis.expr.types as ir

from data_access.schema import unified


def customer_purchase_days_expr() -> ir.Table:
    """One row per customer, day and channel with a purchase or refund.

    orders: purchase events; spend: their gross revenue; net: purchases minus refunds.
    """
    e = unified("events")
    rows = e.filter(e.event_type.isin(("purchase", "refund")))
    is_purchase = rows.event_type == "purchase"
    return rows.group_by(["customer_id", rows.occurred_at.date().name("day"), "channel"]).agg(
        orders=is_purchase.cast("int64").sum(),
        spend=rows.revenue.sum(where=is_purchase).fill_null(0).cast("float64"),
        net=rows.revenue.sum().fill_null(0).cast("float64"),
    )


CLV_TABLES = {"customer_purchase_days": customer_purchase_days_expr}
