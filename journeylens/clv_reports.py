"""The CLV reports of the command line: clv, clv-model, clv-holdout and uplift.

``--as-of`` defaults to the end of the date range (``--to``, else the last day with data), as on
the CLV page.
"""

from __future__ import annotations

import argparse
import math

import polars as pl

from metrics import clv, uplift
from metrics.engine import Engine
from metrics.filters import Filters

CLV_COLUMNS = ("customer_id", "frequency", "recency", "T", "monetary_value", "p_alive", "expected_purchases",
               "predicted_clv", "historical_revenue", "tier")


def _monthly_rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a rate like 0.01 (1% a month)") from None
    if not (math.isfinite(value) and -1.0 < value < 1.0):
        raise argparse.ArgumentTypeError(f"{value} is not a monthly rate between -1 and 1, e.g. 0.01 for 1% a month")
    return value


def add_clv_options(parser: argparse.ArgumentParser) -> None:
    """The options the four CLV reports share; added once however many reports ask for them."""
    # Imported here: the command line module imports the reports, so a top-level import would be circular.
    from journeylens.cli import _iso_date, _positive_int

    try:
        parser.add_argument("--as-of", dest="as_of", type=_iso_date,
                            help="CLV reports: the date the history ends (default: --to)")
    except argparse.ArgumentError:  # another CLV report added them already
        return
    parser.add_argument("--horizon-months", type=_positive_int, default=clv.DEFAULT_HORIZON_MONTHS,
                        help=f"CLV reports: months of predicted CLTV (default {clv.DEFAULT_HORIZON_MONTHS})")
    parser.add_argument("--discount", type=_monthly_rate, default=clv.DEFAULT_MONTHLY_DISCOUNT,
                        help=f"CLV reports: monthly discount rate (default {clv.DEFAULT_MONTHLY_DISCOUNT})")
    parser.add_argument("--holdout-weeks", type=_positive_int, default=clv.DEFAULT_HOLDOUT_WEEKS,
                        help=f"clv-holdout: weeks after the calibration date (default {clv.DEFAULT_HOLDOUT_WEEKS})")


def _scores(engine: Engine, filters: Filters, args: argparse.Namespace) -> pl.DataFrame:
    return clv.customer_scores(engine, filters, as_of=args.as_of, horizon_months=args.horizon_months,
                               monthly_discount=args.discount)


def clv_report(engine: Engine, filters: Filters, args: argparse.Namespace) -> pl.DataFrame:
    return _scores(engine, filters, args).select(CLV_COLUMNS)


def clv_model_report(engine: Engine, filters: Filters, args: argparse.Namespace) -> dict:
    return clv.fit_models(engine, filters, as_of=args.as_of).parameters()


def clv_holdout_report(engine: Engine, filters: Filters, args: argparse.Namespace) -> pl.DataFrame:
    check = clv.holdout(engine, filters, as_of=args.as_of, weeks=args.holdout_weeks)
    if check.problem:
        raise clv.InsufficientData(check.problem)
    return check.table.with_columns(calibration_end=pl.lit(check.calibration_end), as_of=pl.lit(check.as_of))


def uplift_report(engine: Engine, filters: Filters, args: argparse.Namespace) -> pl.DataFrame:
    as_of = clv.resolve_as_of(engine, filters, args.as_of)
    return uplift.compare(_scores(engine, filters, args), as_of=as_of)
