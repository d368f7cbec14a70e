"""Two segments side by side: headline numbers, purchase retention and the spread of predicted CLTV.

A segment here is a pair (label, canonical rule); "all customers" is the empty rule
(:data:`metrics.segments.EVERYONE`). Membership is over lifetime facts, as on the rest of the
Segments page, and each segment reaches the retention metric as a saved-segment filter.

- *Retention*: monthly cohorts of the customers' first purchase, every month with data; retained
  in month N = a purchase exactly N months after the cohort's month (:mod:`metrics.retention`),
  averaged over complete cohorts weighted by their size.
- *Predicted CLTV distribution*: the members with a stored score (``customer_clv_scores``) per
  range of predicted CLTV, as a share of the segment's scored members so that segments of
  different sizes compare. Both segments share the ranges: equal widths from 0 up to the 99th
  percentile of all scored customers; the last range also holds everyone above it.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir
import polars as pl

from data_access.derived import derived
from data_access.derived_clv import CLV_SCORES
from metrics import retention, segments
from metrics.engine import Engine
from metrics.filters import Filters

ALL_CUSTOMERS = "All customers"
RETENTION_OPTIONS = {"period": "month", "cohort_type": "first-time", "returning": "on", "activity": "purchase"}
DEFAULT_BINS = 20
UPPER_QUANTILE = 0.99

Segment = tuple[str, str]


def _check(pair: tuple[Segment, ...]) -> None:
    labels = [label for label, _ in pair]
    if len(set(labels)) != len(labels):
        raise ValueError(f"pick segments with different names to compare, not {' and '.join(labels)}")


def _order(pair: tuple[Segment, ...]) -> dict[str, int]:
    return {label: i for i, (label, _) in enumerate(pair)}


def segment_filters(label: str, rule: str) -> Filters:
    """The filters that restrict a metric to one segment's members."""
    return Filters(segment_name=label, segment_rule=rule)


def kpis_expr(pair: tuple[Segment, ...]) -> ir.Table:
    rows = [segments.group_totals_expr(rule, label) for label, rule in pair]
    return ibis.union(*rows) if len(rows) > 1 else rows[0]


def kpis(engine: Engine, *, pair: tuple[Segment, ...]) -> pl.DataFrame:
    """One row per segment, in the order given: customers, net revenue and its average, buyer and
    omnichannel share, average predicted CLTV (:func:`metrics.segments.per_customer`)."""
    _check(pair)
    frame = segments.per_customer(engine.to_polars(kpis_expr(pair)))
    return frame.sort(pl.col("group").replace_strict(_order(pair)))


def retention_counts_expr(pair: tuple[Segment, ...]) -> ir.Table:
    rows = [retention.retention_counts_expr(segment_filters(label, rule), **RETENTION_OPTIONS)
            .mutate(group=ibis.literal(label)) for label, rule in pair]
    return ibis.union(*rows) if len(rows) > 1 else rows[0]


def retention_curves(engine: Engine, *, pair: tuple[Segment, ...], min_sample: int = 1) -> pl.DataFrame:
    """Per segment (``group``) and month since the first purchase: the size-weighted retention over
    complete cohorts with its 95% interval (:func:`metrics.retention.average_curves`)."""
    _check(pair)
    counts = engine.to_polars(retention_counts_expr(pair))
    cells = retention.retention_table(counts, period=RETENTION_OPTIONS["period"],
                                      returning=RETENTION_OPTIONS["returning"],
                                      last_day=retention.last_day_with_data(engine))
    return retention.average_curves(cells, min_sample=min_sample)


def clv_upper_expr() -> ir.Table:
    scores = derived(CLV_SCORES)
    return scores.agg(upper=scores.predicted_clv.quantile(UPPER_QUANTILE))


def clv_histogram_expr(pair: tuple[Segment, ...], *, upper: float, bins: int) -> ir.Table:
    """Scored members per segment and range of predicted CLTV (``bin`` 0 to ``bins`` - 1)."""
    # A float literal: Spark SQL would read the width as a decimal.
    width = ibis.literal(upper / bins, "float64")
    rows = []
    for label, rule in pair:
        members = segments.members_expr(rule)
        members = members.filter(members.predicted_clv.notnull())
        position = (members.predicted_clv.clip(lower=0) / width).floor().clip(upper=bins - 1).cast("int64")
        rows.append(members.group_by(bin=position).agg(customers=ibis._.count()).mutate(group=ibis.literal(label)))
    return ibis.union(*rows) if len(rows) > 1 else rows[0]


_HISTOGRAM_SCHEMA = {"group": pl.String, "bin_start": pl.Float64, "bin_end": pl.Float64, "open_ended": pl.Boolean,
                     "customers": pl.Int64, "share_pct": pl.Float64}


def clv_distribution(engine: Engine, *, pair: tuple[Segment, ...], bins: int = DEFAULT_BINS) -> pl.DataFrame:
    """Per segment and range of predicted CLTV: bin_start, bin_end, open_ended (the last range),
    customers and their share of the segment's scored members in %. Empty when nobody has a score."""
    _check(pair)
    if bins < 1:
        raise ValueError("the distribution needs at least one range")
    upper = engine.to_polars(clv_upper_expr())["upper"][0]
    if upper is None:
        return pl.DataFrame(schema=_HISTOGRAM_SCHEMA)
    # Everyone predicted at zero still gets one visible range.
    upper = float(upper) if upper > 0 else 1.0
    counts = engine.to_polars(clv_histogram_expr(pair, upper=upper, bins=bins)).cast({"bin": pl.Int64,
                                                                                      "customers": pl.Int64})
    grid = pl.DataFrame({"group": [label for label, _ in pair]}).join(
        pl.DataFrame({"bin": list(range(bins))}, schema={"bin": pl.Int64}), how="cross")
    width = upper / bins
    frame = grid.join(counts, on=["group", "bin"], how="left").with_columns(pl.col("customers").fill_null(0))
    scored = pl.col("customers").sum().over("group")
    return frame.sort(pl.col("group").replace_strict(_order(pair)), "bin").select(
        "group",
        bin_start=pl.col("bin") * width,
        bin_end=(pl.col("bin") + 1) * width,
        open_ended=pl.col("bin") == bins - 1,
        customers="customers",
        share_pct=pl.when(scored > 0).then(pl.col("customers") / scored * 100),
    ).cast(_HISTOGRAM_SCHEMA)


def portable_expressions() -> dict[str, ir.Expr]:
    north = segments.canonical({"op": "and", "rules": [{"field": "region", "operator": "in", "value": ["North"]}]})
    pair = ((ALL_CUSTOMERS, segments.EVERYONE), ("North", north))
    return {
        "segment_comparison.kpis": kpis_expr(pair),
        "segment_comparison.retention": retention_counts_expr(pair),
        "segment_comparison.clv_upper": clv_upper_expr(),
        "segment_comparison.clv_histogram": clv_histogram_expr(pair, upper=500.0, bins=DEFAULT_BINS),
    }
