"""Reports of the command line: one entry per metric, each a frame of the same numbers the pages show."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from metrics.engine import Engine
from metrics.filters import Filters
from metrics.kpis import kpis


@dataclass(frozen=True)
class Report:
    name: str
    help: str
    run: Callable[[Engine, Filters, argparse.Namespace], pl.DataFrame]
    add_options: Callable[[argparse.ArgumentParser], None] = lambda parser: None


def _kpis(engine: Engine, filters: Filters, _: argparse.Namespace) -> pl.DataFrame:
    previous = filters.previous_period()
    return kpis(engine, filters).drop("definition").with_columns(
        period_start=pl.lit(filters.start), period_end=pl.lit(filters.end),
        previous_start=pl.lit(previous.start), previous_end=pl.lit(previous.end),
    )


REPORTS: dict[str, Report] = {
    report.name: report
    for report in (
        Report("kpis", "Overview KPIs with the change against the previous period", _kpis),
    )
}
