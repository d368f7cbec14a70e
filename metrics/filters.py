"""The global filters every metric obeys: one frozen, hashable value built once per rerun."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

import ibis
import ibis.expr.types as ir
import polars as pl

from data_access.schema import unified
from metrics.segments import member_ids_expr

DEFAULT_PERIOD_DAYS = 90


@dataclass(frozen=True)
class Filters:
    """Date range (inclusive days, UTC) and customer/channel restrictions.

    An empty tuple means "no restriction". Region and segment restrict *customers*; channels
    restrict *events* (a customer who also shops elsewhere still counts, with only these touches).

    >>> f = Filters(start=date(2026, 1, 1), end=date(2026, 1, 31), channels=("web",))
    >>> f.previous_period()
    Filters(start=datetime.date(2025, 12, 1), end=datetime.date(2025, 12, 31), channels=('web',), regions=(), segments=(), segment_name=None)

    A saved segment restricts customers to its members: ``segment_rule`` is its canonical rule
    (metrics.segments), resolved from ``segment_name`` by whoever builds the Filters, so metrics
    stay pure and an edited segment is a new cache key.

    ``channel_bits`` are the store's (channel, bit) pairs (:func:`metrics.catalog.channel_bits`),
    resolved the same way: with them a channel filter tests the roll-ups' channel masks against a
    number the engine checks inside its scans, instead of a query it joins to every row.
    """

    start: date | None = None
    end: date | None = None
    channels: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    segments: tuple[str, ...] = ()
    segment_name: str | None = None
    segment_rule: str | None = field(default=None, repr=False)
    channel_bits: tuple[tuple[str, int], ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        if self.start and self.end and self.start > self.end:
            raise ValueError(f"the date range starts ({self.start}) after it ends ({self.end})")
        # Sorted tuples make equal selections equal cache keys whatever the click order.
        for name in ("channels", "regions", "segments"):
            object.__setattr__(self, name, tuple(sorted(set(getattr(self, name)))))

    @property
    def bits(self) -> dict[str, int] | None:
        """The channel bits by channel, None when not resolved."""
        return dict(self.channel_bits) or None

    @property
    def days(self) -> int | None:
        if self.start is None or self.end is None:
            return None
        return (self.end - self.start).days + 1

    def previous_period(self) -> Filters:
        """The same filters over the equally long period just before this one."""
        if self.days is None:
            raise ValueError("a previous period needs both a start and an end date")
        shift = timedelta(days=self.days)
        return dataclasses.replace(self, start=self.start - shift, end=self.end - shift)

    def every_channel(self) -> Filters:
        """These filters without the channel restriction.

        A per-channel figure (a channel's revenue, its active customers) does not depend on which
        other channels are selected: computed once over every channel and narrowed with
        :func:`keep_channels`, it needs no query when the user changes the channels.
        """
        return dataclasses.replace(self, channels=())

    def describe(self) -> str:
        """One line for captions and exports: what this view is restricted to."""
        parts = [f"{self.start or 'first day'} to {self.end or 'last day'}"]
        for label, values in (("channels", self.channels), ("regions", self.regions), ("segments", self.segments)):
            if values:
                parts.append(f"{label}: {', '.join(values)}")
        if self.segment_name:
            parts.append(f"saved segment: {self.segment_name}")
        return "; ".join(parts)


def default_period(last_day: date, *, days: int = DEFAULT_PERIOD_DAYS) -> tuple[date, date]:
    """The last ``days`` days of data, ending on the last day that has events."""
    return last_day - timedelta(days=days - 1), last_day


def restrict_days(table: ir.Table, filters: Filters, *, column: str = "day") -> ir.Table:
    """Keep rows whose ``column`` (a date) falls in the filter's date range."""
    if filters.start is not None:
        table = table.filter(table[column] >= ibis.literal(filters.start))
    if filters.end is not None:
        table = table.filter(table[column] <= ibis.literal(filters.end))
    return table


def restrict_times(table: ir.Table, filters: Filters, *, column: str = "occurred_at") -> ir.Table:
    """Keep rows whose timestamp ``column`` falls in the filter's days (end day included)."""
    if filters.start is not None:
        table = table.filter(table[column] >= ibis.literal(datetime.combine(filters.start, time.min)))
    if filters.end is not None:
        end_exclusive = datetime.combine(filters.end + timedelta(days=1), time.min)
        table = table.filter(table[column] < ibis.literal(end_exclusive))
    return table


def restrict_channels(table: ir.Table, filters: Filters, *, column: str = "channel") -> ir.Table:
    if filters.channels:
        table = table.filter(table[column].isin(filters.channels))
    return table


def restrict_customers(table: ir.Table, filters: Filters) -> ir.Table:
    """Keep rows of customers in the selected regions and segments and the saved segment (semi-joins)."""
    if filters.segment_rule:
        table = table.semi_join(member_ids_expr(filters.segment_rule), "customer_id")
    if not (filters.regions or filters.segments):
        return table
    customers = unified("customers")
    if filters.regions:
        customers = customers.filter(customers.region.isin(filters.regions))
    if filters.segments:
        customers = customers.filter(customers.segment.isin(filters.segments))
    return table.semi_join(customers.select("customer_id"), "customer_id")


def keep_channels(frame: pl.DataFrame, filters: Filters, *, column: str = "channel") -> pl.DataFrame:
    """The rows of a per-channel result in the selected channels.

    >>> mix = pl.DataFrame({"channel": ["web", "store"], "revenue": [10.0, 5.0]})
    >>> keep_channels(mix, Filters(channels=("store",)))["channel"].to_list()
    ['store']
    """
    if filters.channels:
        frame = frame.filter(pl.col(column).is_in(filters.channels))
    return frame


def apply_filters(table: ir.Table, filters: Filters, *, day_column: str | None = None,
                  time_column: str | None = None) -> ir.Table:
    """Apply every global filter to a table with ``customer_id`` and ``channel`` columns."""
    if day_column:
        table = restrict_days(table, filters, column=day_column)
    if time_column:
        table = restrict_times(table, filters, column=time_column)
    return restrict_customers(restrict_channels(table, filters), filters)
