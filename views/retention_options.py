"""The retention page's own options: widgets bound to the URL, so every view is a shareable link."""

from __future__ import annotations

import polars as pl
import streamlit as st

from metrics import retention as ret

PERIOD_LABELS = {"week": "Week", "month": "Month"}
COHORT_LABELS = {"first-time": "First-time", "recurring": "Recurring"}
RETURNING_LABELS = {"on": "On period N", "on-or-after": "On or after N"}
ACTIVITY_LABELS = {"any": "Any event", "purchase": "Purchases only"}
ALL_CHANNELS = "all"


def _segmented(label: str, labels: dict[str, str], *, key: str, default: str, help_text: str) -> str:
    return st.segmented_control(
        label,
        tuple(labels),
        default=default,
        required=True,
        format_func=labels.get,
        key=key,
        bind="query-params",
        help=help_text,
    )


def period_option(*, key: str = "period", default: str = "week") -> str:
    return _segmented(
        "Period",
        PERIOD_LABELS,
        key=key,
        default=default,
        help_text="Calendar periods: ISO weeks starting on Monday, or calendar months.",
    )


def retention_options(channels: tuple[str, ...]) -> dict[str, object]:
    """Draw the option row and return the keyword options of :func:`metrics.retention.retention`.

    ``channels`` are the channels the activity may be limited to (those the global filter allows).
    """
    columns = st.columns([0.8, 1.1, 1.3, 1.3])
    with columns[0]:
        period = period_option()
    with columns[1]:
        cohort_type = _segmented(
            "Cohort",
            COHORT_LABELS,
            key="cohort",
            default="first-time",
            help_text="First-time: the period of each customer's first qualifying activity. Recurring: every "
            "period with a qualifying activity starts a cohort.",
        )
    with columns[2]:
        returning = _segmented(
            "Returning",
            RETURNING_LABELS,
            key="returning",
            default="on",
            help_text="Counted as retained in period N if active exactly in period N, "
            "or in N or any later period.",
        )
    with columns[3]:
        activity = _segmented(
            "Activity",
            ACTIVITY_LABELS,
            key="activity",
            default="any",
            help_text="What counts as activity: any event, or purchases only.",
        )
    columns = st.columns([1, 1, 2])
    with columns[0]:
        channel = st.selectbox(
            "Activity channel",
            (ALL_CHANNELS, *channels),
            key="via",
            bind="query-params",
            format_func=lambda c: "All channels" if c == ALL_CHANNELS else c,
            help="Count only activity in this channel (within the channels of the sidebar filter).",
        )
    with columns[1]:
        breakdown = st.selectbox(
            "Breakdown",
            tuple(ret.BREAKDOWNS),
            format_func=ret.BREAKDOWNS.get,
            key="breakdown",
            bind="query-params",
            help="Split cohorts and curves by a customer attribute.",
        )
    return {
        "period": period,
        "cohort_type": cohort_type,
        "returning": returning,
        "activity": activity,
        "channel": None if channel == ALL_CHANNELS else channel,
        "breakdown": breakdown,
    }


def group_picker(cells: pl.DataFrame, *, breakdown: str) -> str | None:
    """With a breakdown, a choice of which group's cohorts the heatmap shows (largest first)."""
    if breakdown == "none" or cells.is_empty():
        return None
    sizes = cells.filter(pl.col("period_index") == 0).group_by("group").agg(pl.col("cohort_size").sum())
    groups = sizes.sort(["cohort_size", "group"], descending=[True, False])["group"].to_list()
    with st.columns([1, 3])[0]:
        return st.selectbox(
            f"Heatmap for {ret.BREAKDOWNS[breakdown].lower()}", groups, key="group", bind="query-params"
        )


def threshold_option(*, key: str, default: int = 30) -> int:
    with st.columns([1, 3])[0]:
        return st.selectbox(
            "Inactive for at least",
            ret.CHURN_THRESHOLDS,
            index=ret.CHURN_THRESHOLDS.index(default),
            format_func=lambda days: f"{days} days",
            key=key,
            bind="query-params",
            help="A customer with no qualifying activity in this many days up to the last day "
            "with data has churned.",
        )
