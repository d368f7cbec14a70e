"""Every metric module's expressions, gathered for the portability test and the benchmark."""

from __future__ import annotations

import ibis.expr.types as ir

from metrics import catalog, kpis

MODULES = (catalog, kpis)


def portable_expressions() -> dict[str, ir.Expr]:
    expressions: dict[str, ir.Expr] = {}
    for module in MODULES:
        expressions.update(module.portable_expressions())
    return expressions
