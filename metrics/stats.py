"""Intervals and tests for the rates and means the pages show, as Polars expressions.

Every function works on small result frames (one row per cell), never on raw events.
"""

from __future__ import annotations

import polars as pl
from scipy import special

Z95 = 1.959963984540054  # two-sided 95% normal quantile


def _column(value: str | pl.Expr) -> pl.Expr:
    return pl.col(value) if isinstance(value, str) else value


def wilson_bounds(
    successes: str | pl.Expr, trials: str | pl.Expr, *, z: float = Z95
) -> tuple[pl.Expr, pl.Expr]:
    """Lower and upper Wilson score bounds of ``successes / trials``, in % (null when trials is 0).

    Wilson rather than the textbook p ± z·se: it stays inside 0–100% and is honest for small
    samples and rates near 0 or 100%.

    >>> frame = pl.DataFrame({"x": [8], "n": [10]})
    >>> low, high = wilson_bounds("x", "n")
    >>> [round(v, 2) for v in frame.select(low.alias("low"), high.alias("high")).row(0)]
    [49.02, 94.33]
    """
    x, n = _column(successes).cast(pl.Float64), _column(trials).cast(pl.Float64)
    p = x / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * (p * (1 - p) / n + z2 / (4 * n * n)).sqrt() / (1 + z2 / n)
    valid = n > 0
    return (
        pl.when(valid).then((centre - half) * 100).otherwise(None),
        pl.when(valid).then((centre + half) * 100).otherwise(None),
    )


def with_wilson(frame: pl.DataFrame, *, successes: str, trials: str, prefix: str) -> pl.DataFrame:
    """Add ``{prefix}_pct``, ``{prefix}_low`` and ``{prefix}_high`` (all in %) to ``frame``."""
    low, high = wilson_bounds(successes, trials)
    n = pl.col(trials).cast(pl.Float64)
    return frame.with_columns(
        pl.when(n > 0).then(pl.col(successes) / n * 100).otherwise(None).alias(f"{prefix}_pct"),
        low.alias(f"{prefix}_low"),
        high.alias(f"{prefix}_high"),
    )


def normal_two_sided_p(z: pl.Expr) -> pl.Expr:
    """Two-sided p-value of a standard normal statistic."""
    return z.abs().map_batches(
        lambda s: pl.Series(2 * special.ndtr(-s.to_numpy()), dtype=pl.Float64), return_dtype=pl.Float64
    )


def compare_proportions(
    frame: pl.DataFrame, *, x1: str, n1: str, x2: str, n2: str, alpha: float = 0.05
) -> pl.DataFrame:
    """Difference of two proportions (group 1 − group 2) in percentage points, per row.

    Adds ``diff_pp`` with its 95% interval (``diff_low_pp``, ``diff_high_pp``, unpooled normal
    approximation), ``p_value`` of the pooled two-proportion z-test and ``significant``
    (p < ``alpha``). Rows where either group is empty get nulls.

    >>> frame = pl.DataFrame({"a": [30], "n": [100], "b": [15], "m": [100]})
    >>> row = compare_proportions(frame, x1="a", n1="n", x2="b", n2="m").row(0, named=True)
    >>> round(row["diff_pp"], 1), round(row["p_value"], 4), row["significant"]
    (15.0, 0.0111, True)
    """
    a, na = pl.col(x1).cast(pl.Float64), pl.col(n1).cast(pl.Float64)
    b, nb = pl.col(x2).cast(pl.Float64), pl.col(n2).cast(pl.Float64)
    valid = (na > 0) & (nb > 0)
    pa, pb = a / na, b / nb
    se = (pa * (1 - pa) / na + pb * (1 - pb) / nb).sqrt()
    pooled = (a + b) / (na + nb)
    se_pooled = (pooled * (1 - pooled) * (1 / na + 1 / nb)).sqrt()
    z = pl.when(se_pooled > 0).then((pa - pb) / se_pooled).otherwise(0.0)
    out = frame.with_columns(
        diff_pp=pl.when(valid).then((pa - pb) * 100).otherwise(None),
        diff_low_pp=pl.when(valid).then((pa - pb - Z95 * se) * 100).otherwise(None),
        diff_high_pp=pl.when(valid).then((pa - pb + Z95 * se) * 100).otherwise(None),
        p_value=pl.when(valid).then(normal_two_sided_p(z)).otherwise(None),
    )
    return out.with_columns(significant=pl.col("p_value") < alpha)


def mean_bounds(mean: str, std: str, count: str, *, z: float = Z95) -> tuple[pl.Expr, pl.Expr]:
    """Normal-approximation 95% interval of a mean from its standard deviation and count."""
    half = z * pl.col(std).fill_null(0) / pl.col(count).cast(pl.Float64).sqrt()
    valid = pl.col(count) > 1
    return (
        pl.when(valid).then(pl.col(mean) - half).otherwise(None),
        pl.when(valid).then(pl.col(mean) + half).otherwise(None),
    )
