"""What is in the store and how it got there: table sizes, loads, quarantined rows, the contract."""

from __future__ import annotations

from datetime import datetime

import ibis
import ibis.expr.types as ir
import polars as pl

from data_access.derived import DERIVED_TABLES, derived
from data_access.schema import BASE_TABLES, CONTRACT_CHECKS, check_contract, unified
from data_access.store import Store
from metrics.engine import Engine

TABLE_ROLES = {
    "customers": "unified customers (one row per stitched customer)",
    "events": "every touchpoint of every channel",
    "identities": "the identity graph behind each customer",
    "quarantine": "rejected input rows with their reason",
    "loads": "one row per loaded file with its reconciled counts",
}


def _summary(docstring: str | None) -> str:
    lines = (docstring or "").strip().splitlines()
    return lines[0] if lines else ""


def table_sizes(engine: Engine) -> pl.DataFrame:
    """Row count of every contract and derived table (derived tables are rebuilt by `build`)."""
    tables = [(name, "contract", TABLE_ROLES[name], unified(name)) for name in BASE_TABLES] + [
        (name, "derived", _summary(DERIVED_TABLES[name].__doc__), derived(name))
        for name in DERIVED_TABLES
    ]
    return pl.DataFrame(
        {
            "table": [name for name, *_ in tables],
            "kind": [kind for _, kind, *_ in tables],
            "rows": [int(engine.to_polars(t.agg(rows=t.count()))["rows"][0]) for *_, t in tables],
            "holds": [role for _, _, role, _ in tables],
        }
    )


def load_history_expr() -> ir.Table:
    return unified("loads").order_by(ibis.desc("loaded_at"))


def load_history(engine: Engine) -> pl.DataFrame:
    """Every load, newest first, with read = loaded + already present + quarantined checked."""
    loads = engine.to_polars(load_history_expr())
    return loads.with_columns(
        reconciles=pl.col("rows_read")
        == pl.col("rows_loaded") + pl.col("rows_already_present") + pl.col("rows_quarantined")
    )


def quarantine_reasons_expr() -> ir.Table:
    q = unified("quarantine")
    return (
        q.group_by(["source_file", "column_name", "reason"])
        .agg(rows=q.count(), first_row=q.row_number.min())
        .order_by([ibis.desc("rows"), "source_file", "first_row"])
    )


def quarantine_reasons(engine: Engine) -> pl.DataFrame:
    """Quarantined rows grouped by file, column and reason, most frequent first."""
    return engine.to_polars(quarantine_reasons_expr())


def quarantine_rows(engine: Engine, *, limit: int = 1_000) -> pl.DataFrame:
    """The latest quarantined rows with the raw input, for inspection and download."""
    q = unified("quarantine")
    expr = q.order_by([ibis.desc("quarantined_at"), "source_file", "row_number"]).limit(limit)
    return engine.to_polars(expr)


def contract_problems(store: Store, *, channels: tuple[str, ...]) -> tuple[str, ...]:
    """The contract check of DESIGN.md §1 on the live store: an empty tuple means it holds."""
    return tuple(check_contract(store.backend, channels=channels))


def recorded_contract_check(store: Store) -> tuple[datetime, tuple[str, ...]] | None:
    """When the last load or build checked the contract, and what it found (empty: it holds).

    None for a store no writer has checked yet (built by an older version, or by the tests'
    factories): the caller then runs :func:`contract_problems` on the live store.
    """
    if CONTRACT_CHECKS not in store.table_names():
        return None
    rows = store.to_polars(ibis.table({"checked_at": "timestamp", "problem": "string"}, name=CONTRACT_CHECKS))
    if rows.is_empty():
        return None
    return rows["checked_at"].max(), tuple(rows["problem"].drop_nulls().to_list())


def portable_expressions() -> dict[str, ir.Expr]:
    return {
        "data_health.loads": load_history_expr(),
        "data_health.quarantine_reasons": quarantine_reasons_expr(),
    }
