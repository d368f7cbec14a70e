"""What a metric needs from the data layer: something that runs an Ibis expression.

Metrics build expressions over the unbound contract and derived tables and hand them to an
:class:`Engine`; the DuckDB store is one, a Spark-backed one would be another.
"""

from __future__ import annotations

from typing import Protocol

import ibis.expr.types as ir
import polars as pl


class Engine(Protocol):
    def to_polars(self, expr: ir.Expr) -> pl.DataFrame: ...
