"""Every metric module's expressions, gathered for the portability test and the benchmark."""

from __future__ import annotations

import ibis.expr.types as ir

from metrics import (
    attribution,
    catalog,
    clv,
    customer360,
    data_health,
    flows,
    journeys,
    kpis,
    retention,
    satisfaction,
    segment_comparison,
    segments,
    uplift,
)

MODULES = (catalog, kpis, data_health, journeys, flows, attribution, retention, satisfaction, clv, uplift,
           segments, segment_comparison, customer360)


def portable_expressions() -> dict[str, ir.Expr]:
    expressions: dict[str, ir.Expr] = {}
    for module in MODULES:
        expressions.update(module.portable_expressions())
    return expressions
