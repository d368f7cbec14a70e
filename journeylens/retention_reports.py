"""The retention reports of the command line: retention, lifecycle, csat and nps.

They take the Retention and Satisfaction pages' options (``--period``, ``--cohort-type``,
``--returning``, ``--activity``, ``--activity-channel``, ``--breakdown``, ``--min-sample``) with the
same defaults, so a report prints the numbers behind the page with the same settings.
"""

from __future__ import annotations

import argparse
import sys

import polars as pl

from data_access.settings import load_settings
from metrics import retention as ret
from metrics import satisfaction as sat
from metrics.engine import Engine
from metrics.filters import Filters


def add_retention_options(parser: argparse.ArgumentParser) -> None:
    """The options the four reports share; added once however many reports ask for them."""
    # Imported here: the command line module imports the reports, so a top-level import would be circular.
    from journeylens.cli import _positive_int

    try:
        parser.add_argument(
            "--period",
            choices=ret.PERIODS,
            default="week",
            help="retention, lifecycle, csat, nps: calendar weeks (Monday) or months (default week)",
        )
    except argparse.ArgumentError:  # another of these reports added them already
        return
    parser.add_argument(
        "--cohort-type",
        choices=ret.COHORT_TYPES,
        default="first-time",
        help="retention: first-time (first qualifying period) or recurring (every active period)",
    )
    parser.add_argument(
        "--returning",
        choices=ret.RETURNING,
        default="on",
        help="retention: retained in period N if active on N exactly, or on N or later",
    )
    parser.add_argument(
        "--activity",
        choices=ret.ACTIVITIES,
        default="any",
        help="retention, lifecycle: what counts as activity (default any event)",
    )
    parser.add_argument(
        "--activity-channel",
        choices=load_settings().channels,
        help="retention, lifecycle: count only activity in this channel",
    )
    parser.add_argument(
        "--breakdown",
        choices=tuple(ret.BREAKDOWNS),
        default="none",
        help="retention: split by a customer attribute (default none)",
    )
    parser.add_argument(
        "--min-sample",
        type=_positive_int,
        help="csat, nps: fewest answers for a rate (default: the min_sample setting)",
    )


def retention_report(engine: Engine, filters: Filters, args: argparse.Namespace) -> pl.DataFrame:
    """One row per (breakdown value, cohort, period index): cohort size, retained, rate, complete."""
    cells = ret.retention(
        engine,
        filters,
        period=args.period,
        cohort_type=args.cohort_type,
        returning=args.returning,
        activity=args.activity,
        channel=args.activity_channel,
        breakdown=args.breakdown,
    )
    return cells.rename({"group": "breakdown_value"}).select(
        pl.lit(args.breakdown).alias("breakdown"), pl.all()
    )


def lifecycle_report(engine: Engine, filters: Filters, args: argparse.Namespace) -> pl.DataFrame:
    return ret.lifecycle(
        engine, filters, period=args.period, activity=args.activity, channel=args.activity_channel
    )


def _min_sample(args: argparse.Namespace) -> int:
    return args.min_sample or load_settings().min_sample


def _say_when_no_surveys(engine: Engine) -> None:
    if not sat.has_survey_data(engine):
        print("this store has no survey data (no CSAT or NPS answers): nothing to report", file=sys.stderr)


def csat_report(engine: Engine, filters: Filters, args: argparse.Namespace) -> pl.DataFrame:
    """CSAT per period and channel (and "all"): answers, 4-5 answers, rate and Wilson bounds."""
    _say_when_no_surveys(engine)
    return sat.csat_trend(engine, filters, period=args.period, min_sample=_min_sample(args))


def nps_report(engine: Engine, filters: Filters, args: argparse.Namespace) -> pl.DataFrame:
    """NPS per period with promoter, passive and detractor counts."""
    _say_when_no_surveys(engine)
    return sat.nps_trend(engine, filters, period=args.period, min_sample=_min_sample(args))
