"""Reports of the command line: one entry per metric, each a frame of the same numbers the pages show."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from journeylens import clv_reports, journey_reports
from journeylens import retention_reports
from metrics.engine import Engine
from metrics.filters import Filters
from metrics.kpis import kpis


@dataclass(frozen=True)
class Report:
    name: str
    help: str
    # A frame, or a dict for a report that is one JSON object (printed as such).
    run: Callable[[Engine, Filters, argparse.Namespace], pl.DataFrame | dict]
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
        Report("retention", "Cohort retention: per breakdown value, cohort and period index",
               retention_reports.retention_report, retention_reports.add_retention_options),
        Report("lifecycle", "New, returning, resurrecting and dormant customers per period",
               retention_reports.lifecycle_report, retention_reports.add_retention_options),
        Report("csat", "CSAT per period and channel with answers and 95% Wilson bounds",
               retention_reports.csat_report, retention_reports.add_retention_options),
        Report("nps", "NPS per period with promoters, passives and detractors",
               retention_reports.nps_report, retention_reports.add_retention_options),
        Report("clv", "Per customer: frequency, recency, T, spend, P(alive), expected purchases, predicted CLTV",
               clv_reports.clv_report, clv_reports.add_clv_options),
        Report("clv-model", "Fitted BG/NBD and Gamma-Gamma parameters", clv_reports.clv_model_report,
               clv_reports.add_clv_options),
        Report("clv-holdout", "Predicted vs actual repeat purchases after a calibration date",
               clv_reports.clv_holdout_report, clv_reports.add_clv_options),
        Report("uplift", "1 vs 2 vs 3+ channel customers: CLTV, repeat rate, retention, CSAT with 95% intervals",
               clv_reports.uplift_report, clv_reports.add_clv_options),
        Report("journeys", "Journey map: Sankey links of the first (or last) N steps, counted in journeys",
               journey_reports.journeys_report, journey_reports.add_journey_options),
        Report("paths", "Top journey paths: journeys, conversions, rate, time to convert, revenue",
               journey_reports.paths_report, journey_reports.add_journey_options),
        Report("transitions", "Channel-to-channel transitions (start, channels, purchase, drop-off)",
               journey_reports.transitions_report, journey_reports.add_journey_options),
        Report("cross-channel", "Journey channel × purchase channel: conversions, revenue, shares",
               journey_reports.cross_channel_report, journey_reports.add_journey_options),
        Report("attribution", "Credit per channel by model: first, last, linear, position, time-decay, markov, "
               "shapley", journey_reports.attribution_report, journey_reports.add_journey_options),
    )
}
