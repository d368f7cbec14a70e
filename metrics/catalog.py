"""What the store holds: the date range with data and the values each global filter can take."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import ibis.expr.types as ir

from data_access.derived import derived
from data_access.schema import unified
from metrics.engine import Engine


@dataclass(frozen=True)
class Catalog:
    first_day: date | None
    last_day: date | None
    channels: tuple[str, ...]
    channel_bits: tuple[tuple[str, int], ...]
    regions: tuple[str, ...]
    segments: tuple[str, ...]
    customers: int
    events: int


def bounds_expr() -> ir.Table:
    """first_day, last_day and events of the whole store, stored at build (one row)."""
    return derived("store_bounds")


def distinct_expr(table: ir.Table, column: str) -> ir.Table:
    return table.select(value=table[column]).filter(table[column].notnull()).distinct().order_by("value")


def catalog(engine: Engine) -> Catalog:
    """Date bounds, filter values and sizes of the store, in a few small queries."""
    bounds = engine.to_polars(bounds_expr()).row(0, named=True)
    customers = unified("customers")

    def values(table: ir.Table, column: str) -> tuple[str, ...]:
        return tuple(engine.to_polars(distinct_expr(table, column))["value"].to_list())

    # The events' channels, from the few rows of their bit table rather than every day's rows.
    bits = channel_bits(engine)
    return Catalog(
        first_day=bounds["first_day"],
        last_day=bounds["last_day"],
        channels=tuple(channel for channel, _ in bits),
        channel_bits=bits,
        regions=values(customers, "region"),
        segments=values(customers, "segment"),
        customers=int(engine.to_polars(customers.agg(n=customers.count()))["n"][0]),
        events=int(bounds["events"] or 0),
    )


def channel_bits(engine: Engine) -> tuple[tuple[str, int], ...]:
    """(channel, bit) of every channel in the events, by channel: its bit in the roll-ups' channel
    masks, for :class:`metrics.filters.Filters`."""
    bits = engine.to_polars(derived("channel_bits").order_by("channel"))
    return tuple(zip(bits["channel"].to_list(), bits["bit"].to_list(), strict=True))


def portable_expressions() -> dict[str, ir.Expr]:
    return {
        "catalog.bounds": bounds_expr(),
        "catalog.regions": distinct_expr(unified("customers"), "region"),
        "catalog.channel_bits": derived("channel_bits").order_by("channel"),
    }
