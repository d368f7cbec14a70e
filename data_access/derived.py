"""Derived tables, rebuilt by ``journeylens build`` after every load and never by a page.

Each derived table is an Ibis expression over the contract tables, so the build runs in the
engine and compiles for Spark and ClickHouse as well. Pages read these small roll-ups instead of
scanning every event. The one exception is customer_clv_scores: its expression gives the columns
and the buyers, and a model fit on a small per-customer summary fills in the scores.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import time
from collections.abc import Callable
from pathlib import Path

import ibis
import ibis.expr.types as ir
import polars as pl

from data_access.derived_clv import CLV_SCORES, CLV_TABLES
from data_access.derived_journeys import DEFAULT_LOOKBACK_DAYS, JOURNEY_TABLES
from data_access.derived_retention import RETENTION_TABLES, bit_or, channel_bits_expr, channel_bits_table
from data_access.schema import NON_TOUCH_EVENT_TYPES, unified
from data_access.store import Store


def _is_touch(events: ir.Table) -> ir.BooleanValue:
    return ~events.event_type.isin(NON_TOUCH_EVENT_TYPES)


def daily_activity_expr() -> ir.Table:
    """One row per customer, day and channel with the additive facts the KPIs need.

    Counts here are sums, so any date range or channel subset is a plain re-aggregation; only
    distinct-customer counts need the customer_id kept. Stored in day order, so a date range
    reads only its days' row groups: at a million customers, the KPI query's scan of 90 days took
    0.32 s and takes 0.11 s.
    """
    e = unified("events")
    is_purchase = e.event_type == "purchase"
    is_refund = e.event_type == "refund"
    csat, nps = e.csat_score, e.nps_score
    return (
        e.mutate(day=e.occurred_at.date())
        .group_by(["customer_id", "day", "channel"])
        .agg(
            events=ibis._.count(),
            touches=_is_touch(e).cast("int64").sum(),
            orders=is_purchase.cast("int64").sum(),
            gross_revenue=e.revenue.sum(where=is_purchase).fill_null(0).cast("float64"),
            refunds=e.revenue.sum(where=is_refund).fill_null(0).cast("float64"),
            csat_responses=csat.notnull().cast("int64").sum(),
            csat_positive=(csat >= 4).cast("int64").sum(),
            nps_responses=nps.notnull().cast("int64").sum(),
            nps_promoters=(nps >= 9).cast("int64").sum(),
            nps_detractors=(nps <= 6).cast("int64").sum(),
        )
        .order_by("day")
    )


def store_bounds_expr() -> ir.Table:
    """One row: the first and last day with an event and the number of events.

    Every page asks for the last day with data, some several times; one stored row answers what
    a scan of the daily roll-up took 0.1 s for at a million customers.
    """
    e = unified("events")
    day = e.occurred_at.date()
    return e.agg(first_day=day.min(), last_day=day.max(), events=e.count().cast("int64"))


def customer_channels_expr() -> ir.Table:
    """One row per customer and channel used: how often, since when, and what was bought there."""
    e = unified("events")
    is_purchase = e.event_type == "purchase"
    return e.group_by(["customer_id", "channel"]).agg(
        events=ibis._.count(),
        first_at=e.occurred_at.min(),
        last_at=e.occurred_at.max(),
        orders=is_purchase.cast("int64").sum(),
        net_revenue=e.revenue.sum().fill_null(0).cast("float64"),
    )


def customer_facts_expr() -> ir.Table:
    """One row per unified customer with lifetime facts (segments, CLTV and 360 read these).

    Distinct counts (channels, purchase days) are counted over pre-grouped rows, which is exact on
    every engine (ClickHouse compiles ``nunique`` to an approximation). ``channels`` is the mask
    of the channels used (bits from channel_bits), so the channels used among any selection are a
    bit count, not a grouping of the customer-channel rows.
    """
    e = unified("events")
    c = unified("customers")
    is_purchase = e.event_type == "purchase"
    per_customer = e.group_by("customer_id").agg(
        first_event_at=e.occurred_at.min(),
        last_event_at=e.occurred_at.max(),
        first_purchase_at=e.occurred_at.min(where=is_purchase),
        last_purchase_at=e.occurred_at.max(where=is_purchase),
        last_cart_at=e.occurred_at.max(where=e.event_type == "add_to_cart"),
        events=ibis._.count(),
        orders=is_purchase.cast("int64").sum(),
        gross_revenue=e.revenue.sum(where=is_purchase).fill_null(0).cast("float64"),
        net_revenue=e.revenue.sum().fill_null(0).cast("float64"),
        support_contacts=(e.event_type == "support_contact").cast("int64").sum(),
        latest_csat=e.csat_score.argmax(e.occurred_at, where=e.csat_score.notnull()),
        latest_nps=e.nps_score.argmax(e.occurred_at, where=e.nps_score.notnull()),
    )
    purchases = e.filter(is_purchase)
    purchase_days = (
        purchases.select("customer_id", day=purchases.occurred_at.date())
        .distinct()
        .group_by("customer_id")
        .agg(purchase_days=ibis._.count())
    )
    used = customer_channels_expr().join(channel_bits_table(), "channel")
    channels = used.group_by("customer_id").agg(channels_used=ibis._.count(), channels=bit_or(used.bit))
    facts = (
        c.left_join(per_customer, "customer_id")
        .left_join(purchase_days, "customer_id")
        .left_join(channels, "customer_id")
    )
    zero_when_missing = ("events", "orders", "gross_revenue", "net_revenue", "support_contacts",
                         "purchase_days", "channels_used", "channels")
    return facts.select(
        "customer_id", "first_seen_at", "acquisition_channel", "region", "segment",
        "first_event_at", "last_event_at", "first_purchase_at", "last_purchase_at", "last_cart_at",
        *[facts[name].fill_null(0).name(name) for name in zero_when_missing],
        "latest_csat", "latest_nps",
    )


DERIVED_TABLES: dict[str, Callable[[], ir.Table]] = {
    "daily_activity": daily_activity_expr,
    "store_bounds": store_bounds_expr,
    "customer_channels": customer_channels_expr,
    # The customer facts, the journey and the all-channels tables read the channel bits.
    "channel_bits": channel_bits_expr,
    "customer_facts": customer_facts_expr,
    **JOURNEY_TABLES,
    **RETENTION_TABLES,
    **CLV_TABLES,
}


@functools.cache
def _derived_schema(name: str) -> ibis.Schema:
    # Building a derived expression only to read its schema costs up to a second; every metric
    # call asks for it again.
    return DERIVED_TABLES[name]().schema()


BUILD_RECORD = "derived_build"
"""Written by each build: the code fingerprint and every derived table's columns."""


@functools.cache
def code_fingerprint() -> str:
    """A hash of the modules that define the derived tables and the contract they read."""
    here = Path(__file__).parent
    digest = hashlib.sha256()
    for path in sorted([*here.glob("derived*.py"), here / "schema.py"]):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def _table_columns(store: Store, rows: ir.Table) -> dict[str, set[str]]:
    """{table_name: its column_name values} of catalogue-like rows."""
    rows = store.to_polars(rows)
    grouped = rows.group_by("table_name").agg(pl.col("column_name"))
    return {name: set(columns) for name, columns in zip(grouped["table_name"], grouped["column_name"], strict=True)}


def missing_derived_tables(store: Store) -> list[str]:
    """Derived tables this version needs that the store lacks, or holds without a column this
    version reads (both: built by an older version).

    The columns this version reads come from the build record when this code wrote it, else from
    the derived expressions: building all of them took 0.14-0.18 s of each page's first run.
    """
    # One catalogue query: a schema lookup per table costs 80 ms, over a second for every table.
    present = _table_columns(store, store.backend.sql("SELECT table_name, column_name FROM information_schema.columns"))
    recorded = {}
    if BUILD_RECORD in present:
        record = store.backend.table(BUILD_RECORD)
        recorded = _table_columns(store, record.filter(record.fingerprint == code_fingerprint()))
    wanted = recorded if recorded.keys() == DERIVED_TABLES.keys() else {
        name: set(_derived_schema(name).names) for name in DERIVED_TABLES}
    return [name for name in DERIVED_TABLES if not wanted[name] <= present.get(name, set())]


def store_readiness(store: Store) -> tuple[bool, tuple[str, ...]]:
    """Whether the store has events, and the derived tables it lacks: what every page checks first.

    One function so the app can cache both answers per store version instead of asking on each run.
    """
    return store.has_data(), tuple(missing_derived_tables(store))


def derived(name: str) -> ir.Table:
    """The unbound derived table ``name`` (with the schema its expression produces)."""
    return ibis.table(_derived_schema(name), name=name)


def build_derived_tables(backend: ibis.BaseBackend, *, progress: Callable[[str], None] = print,
                         lookback_days: int = DEFAULT_LOOKBACK_DAYS,
                         score_clv: Callable[[ibis.BaseBackend], pl.DataFrame] | None = None) -> dict[str, int]:
    """(Re)create every derived table on a writable backend; return their row counts.

    ``score_clv`` fits the CLV models on the tables built before it and returns the rows of
    customer_clv_scores (``metrics.clv.store_scores``); without it the scores stay null.
    """
    settings = {"lookback_days": lookback_days}
    # Dropping every old table first lets the new ones reuse its space: DuckDB keeps freed blocks
    # in the file, so replacing them one by one left a rebuilt 1M store at twice its size.
    for name in (BUILD_RECORD, *DERIVED_TABLES):
        backend.drop_table(name, force=True)
    if backend.name == "duckdb":
        backend.raw_sql("CHECKPOINT")
    counts: dict[str, int] = {}
    for name, make in DERIVED_TABLES.items():
        started = time.perf_counter()
        # A builder names the settings it depends on as keyword arguments; it gets only those.
        wanted = {key: value for key, value in settings.items() if key in inspect.signature(make).parameters}
        if name == CLV_SCORES and score_clv is not None:
            schema = _derived_schema(name)
            table = score_clv(backend).select(schema.names).cast(schema.to_polars())
            if table["predicted_clv"].null_count() == len(table) > 0:
                progress(f"{name}: the CLV models cannot be fitted on this data; every score is empty")
        else:
            table = make(**wanted)
        backend.create_table(name, table, overwrite=True)
        counts[name] = int(backend.execute(backend.table(name).count()))
        progress(f"built {name}: {counts[name]:,} rows in {time.perf_counter() - started:.1f} s")
    record = [(code_fingerprint(), name, column) for name in DERIVED_TABLES for column in _derived_schema(name).names]
    backend.create_table(BUILD_RECORD, pl.DataFrame(record, schema=["fingerprint", "table_name", "column_name"],
                                                    orient="row"), overwrite=True)
    return counts
