"""Every metric and derived-table expression compiles for Spark and ClickHouse (compile only).

This keeps DuckDB-only functions out of the metric layer: a user who outgrows one machine points
the settings at a cluster and nothing else changes.
"""

from __future__ import annotations

import functools

import ibis
import pytest

from data_access.derived import DERIVED_TABLES
from metrics import registry

DIALECTS = ("pyspark", "clickhouse")


def _register_pyspark_options() -> None:
    # Ibis reads pyspark compiler options from its backend, which imports pyspark itself; the
    # compiler alone needs only the option, so register it without a Spark installation.
    if getattr(ibis.options, "pyspark", None) is None:
        class PySparkOptions(ibis.config.Config):
            treat_nan_as_null: bool = False

        ibis.options.pyspark = PySparkOptions()


@functools.cache  # parametrised tests would otherwise rebuild every expression per test
def _expressions() -> dict[str, ibis.Expr]:
    derived = {f"derived.{name}": make() for name, make in DERIVED_TABLES.items()}
    return {**derived, **registry.portable_expressions()}


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("name", sorted(_expressions()))
def test_expression_compiles(name: str, dialect: str) -> None:
    _register_pyspark_options()
    sql = ibis.to_sql(_expressions()[name], dialect=dialect)
    assert "SELECT" in sql.upper()


def test_clickhouse_distinct_counts_are_exact() -> None:
    # ibis compiles nunique() to ClickHouse's approximate uniq(); exact counts are part of the contract.
    for name, expr in _expressions().items():
        sql = ibis.to_sql(expr, dialect="clickhouse")
        assert "uniq(" not in sql, f"{name} uses approximate uniq() on ClickHouse"
