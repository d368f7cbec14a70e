"""The purchase-day roll-up that customer lifetime value reads, and the stored per-customer scores.

Purchases and refunds are a small share of the events (a few in a hundred in the demo), yet the
CLV summary, its holdout check and the historical CLTV curves all start from them: one row per
customer, day and channel with just those facts keeps a million-customer summary to seconds.

``customer_purchase_days_all_channels`` adds the channels of a day together: every view that
keeps all channels (the default, and the build's own scores) reads one row per customer and day
without regrouping three million rows at a million customers.

``customer_clv_scores`` holds each buyer's P(alive), predicted CLTV and tier so that segment
conditions can use them inside the engine. Fitting the models is the metric layer's job, above
this one: the build gets the scores from a scorer its caller passes in. Without one (or when the
models cannot be fitted) the table still exists, one row per buyer with null scores.
"""

from __future__ import annotations

import functools

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.operations as ops
import ibis.expr.types as ir

from data_access.derived_retention import bit_or, channel_bits_table
from data_access.schema import unified

CLV_SCORES = "customer_clv_scores"
# What the purchase totals carry of their customer (customer_purchase_totals_expr).
CUSTOMER_ATTRIBUTES = ("acquisition_channel", "region", "segment", "used_channels")


def customer_purchase_days_expr() -> ir.Table:
    """One row per customer, day and channel with a purchase or refund.

    orders: purchase events; spend: their gross revenue; net: purchases minus refunds;
    day_channels: the mask (channel_bits) of every channel with a purchase or refund that day.
    """
    e = unified("events")
    rows = e.filter(e.event_type.isin(("purchase", "refund")))
    is_purchase = rows.event_type == "purchase"
    days = rows.group_by(["customer_id", rows.occurred_at.date().name("day"), "channel"]).agg(
        orders=is_purchase.cast("int64").sum(),
        spend=rows.revenue.sum(where=is_purchase).fill_null(0).cast("float64"),
        net=rows.revenue.sum().fill_null(0).cast("float64"),
    )
    tagged = days.join(channel_bits_table(), "channel")
    return tagged.select(
        "customer_id", "day", "channel", "orders", "spend", "net",
        day_channels=bit_or(tagged.bit).over(ibis.window(group_by=["customer_id", "day"])),
    )


def _day_sums(rows: ir.Table) -> dict[str, ir.Value]:
    # DuckDB sums BIGINT into HUGEINT, which makes every later `orders > 0` three times slower.
    # Ibis already types the sum as int64 and drops a cast to it, so the Cast node is built here.
    orders = ops.Cast(rows.orders.sum(), to=dt.int64).to_expr()
    return {"orders": orders, "spend": rows.spend.sum(), "net": rows.net.sum()}


def sum_over_channels(rows: ir.Table) -> ir.Table:
    """Purchase-day rows (customer_id, day, channel, orders, spend, net) added up per customer and day."""
    return rows.group_by(["customer_id", "day"]).agg(**_day_sums(rows))


@functools.cache
def _purchase_days_schema() -> ibis.Schema:
    return customer_purchase_days_expr().schema()


def customer_purchase_days_all_channels_expr() -> ir.Table:
    """One row per customer and day with a purchase or refund in any channel (same measures, and
    the day's channel mask as ``channels``).

    Stored in customer order: the per-customer summary that reads it groups and sorts by customer.
    With the masks, a channel filter takes a day's totals from here when every channel of the day
    is selected, and adds up channel rows only for the few days that mix selected and other
    channels (see ``metrics.clv.purchase_days_expr``).
    """
    rows = ibis.table(_purchase_days_schema(), name="customer_purchase_days")
    days = rows.group_by(["customer_id", "day"]).agg(**_day_sums(rows), channels=rows.day_channels.max())
    return days.order_by(["customer_id", "day"])


def purchase_totals(days: ir.Table, *, by: tuple[str, ...] = ("customer_id",), **more: ir.Value) -> ir.Table:
    """Per customer (or per ``by``), from purchase-day rows (customer_id, day, orders, spend, net):
    the first and last purchase day, the number of purchase days, their spend and the first
    one's, net revenue (historical_revenue), the last day with a purchase or refund (last_day),
    and the aggregates ``more``."""
    bought = days.orders > 0
    return days.group_by(list(by)).agg(
        first_purchase=days.day.min(where=bought),
        last_purchase=days.day.max(where=bought),
        purchase_days=bought.cast("int64").sum().cast("int64"),
        spend=days.spend.sum(where=bought),
        first_spend=days.spend.argmin(days.day, where=bought),
        historical_revenue=days.net.sum(),
        last_day=days.day.max(),
        **more,
    )


@functools.cache
def _all_channels_schema() -> ibis.Schema:
    return customer_purchase_days_all_channels_expr().schema()


def customer_purchase_totals_expr() -> ir.Table:
    """:func:`purchase_totals` over all channels and all history, one row per customer with a
    purchase or refund.

    A customer with nothing after an as-of date has the same totals as of that date, so the CLV
    summary reads their row here and groups purchase days only for the others: as of the last
    day, none (the summary of 700,000 buyers: 0.6 s → about 0.1 s). ``channels`` is the mask of
    every channel of the customer's purchase days: with a channel filter, the row holds for a
    customer whose channels are all selected, and the days of the others are grouped again.

    The customer's attributes and ``used_channels``, the mask of every channel they used (from
    customer_facts, built before), ride along: the value page reads them with the totals
    instead of joining a million customers to its buyers.
    """
    days = ibis.table(_all_channels_schema(), name="customer_purchase_days_all_channels")
    totals = purchase_totals(days, channels=bit_or(days.channels))
    customers = unified("customers").select("customer_id", "acquisition_channel", "region", "segment")
    facts = ibis.table({"customer_id": "string", "channels": "int64"}, name="customer_facts")
    joined = totals.join(customers, "customer_id").join(facts.rename(used_channels="channels"), "customer_id")
    return joined.select(*totals.columns, *CUSTOMER_ATTRIBUTES)


@functools.cache
def _totals_schema() -> ibis.Schema:
    return customer_purchase_totals_expr().schema()


def customer_purchase_subsets_expr() -> ir.Table:
    """For each customer with purchase or refund days in two or more channels, their
    :func:`purchase_totals` over each smaller set of those channels (``subset``, a mask), with the
    columns of their customer_purchase_totals row (``channels`` and ``last_day`` are the
    customer's, over every channel).

    What a channel filter leaves of such a customer is one of these rows, so the value page reads
    it instead of adding up the customer's purchase days again: at a million customers, 190,000
    customers have 613,000 rows here. A customer with k channels has 2^k − 2 of them.
    """
    totals = ibis.table(_totals_schema(), name="customer_purchase_totals")
    several = totals.filter((totals.channels & (totals.channels - 1)) != 0)
    subsets = several.select("customer_id", "channels").join(proper_subsets(several.select("channels").distinct()),
                                                             "channels").select("customer_id", "subset")
    rows = ibis.table(_purchase_days_schema(), name="customer_purchase_days").join(channel_bits_table(), "channel")
    rows = rows.join(subsets, "customer_id")
    rows = rows.filter((rows.bit & rows.subset) != 0)
    days = rows.group_by(["customer_id", "subset", "day"]).agg(**_day_sums(rows))
    per = purchase_totals(days, by=("customer_id", "subset"))
    return per.join(several.select("customer_id", "channels", *CUSTOMER_ATTRIBUTES,
                                   customer_last_day=several.last_day), "customer_id")


def proper_subsets(masks: ir.Table) -> ir.Table:
    """channels and subset: every non-empty proper subset of each distinct mask in ``masks``.

    Subset number i of a mask with k channels takes the mask's j-th channel when bit j of i is
    set, for i from 1 to 2^k − 2: the work grows with the subsets, not with the mask's value
    (a mask holding channel 40 is over 2^40).
    """
    bits = channel_bits_table()
    channels = masks.join(bits, (masks.channels & bits.bit) != 0).select("channels", "bit")
    channels = channels.mutate(position=ibis.row_number().over(group_by="channels", order_by="bit"))
    sizes = channels.group_by("channels").agg(k=ibis._.count())
    numbers = sizes.select("channels", number=ibis.range(1, (ibis.literal(1, "int64") << sizes.k) - 1).unnest())
    picked = numbers.join(channels, "channels")
    taken = ((picked.number >> picked.position) & 1) == 1
    return picked.group_by(["channels", "number"]).agg(subset=ibis.ifelse(taken, picked.bit, 0).sum()).select(
        "channels", "subset")


def customer_clv_scores_expr() -> ir.Table:
    """One row per buyer: P(alive), predicted CLTV and tier from the CLV models (null until fitted).

    This expression gives the columns and the buyers with null scores, the rows before any fit; it
    reads the purchase-day roll-up, which the build creates first.
    """
    days = ibis.table(_purchase_days_schema(), name="customer_purchase_days")
    buyers = days.filter(days.orders > 0).select("customer_id").distinct()
    return buyers.select(
        "customer_id",
        p_alive=ibis.null("float64"),
        predicted_clv=ibis.null("float64"),
        clv_tier=ibis.null("string"),
    )


# Built in this order: each reads the one before.
CLV_TABLES = {
    "customer_purchase_days": customer_purchase_days_expr,
    "customer_purchase_days_all_channels": customer_purchase_days_all_channels_expr,
    "customer_purchase_totals": customer_purchase_totals_expr,
    "customer_purchase_subsets": customer_purchase_subsets_expr,
    CLV_SCORES: customer_clv_scores_expr,
}
