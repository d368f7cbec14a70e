"""Retention: cohort heatmap, average retention curves, lifecycle and churn by acquisition channel."""

import streamlit as st

from data_access.cached import compute, settings
from metrics import retention as ret
from metrics.catalog import catalog
from views import retention_charts as charts
from views.render import chart
from views.retention_options import group_picker, retention_options, threshold_option
from views.sidebar import page_filters

filters = page_filters()
min_sample = settings().min_sample
about = filters.describe()

st.title("Retention")
st.caption(
    f"{about} · cohorts: the periods that overlap the date range, followed up to the last day with data"
)

options = retention_options(filters.channels or compute(catalog).channels)
period = options["period"]
cells = compute(ret.retention, filters, **options)
if cells.is_empty():
    st.info(
        "No customer has qualifying activity in these cohorts. Widen the date range, choose “Any event”, "
        "or clear a filter.",
        icon=":material/info:",
    )
    st.stop()

group = group_picker(cells, breakdown=options["breakdown"])
chart(
    charts.cohort_heatmap_figure(
        cells,
        period=period,
        group=group,
        title=f"Retention by {period} cohort{f': {group}' if group else ''}",
    ),
    cells,
    name="retention cohorts",
    definition=f"{ret.describe(**options)} {ret.DEFINITIONS['heatmap'].format(period=period)}",
    filters_text=about,
    query=ret.retention_counts_expr(filters, **options),
)

curves = ret.average_curves(cells, min_sample=min_sample)
chart(
    charts.retention_curves_figure(
        curves,
        period=period,
        title="Average retention curve" + ("" if group is None else " by group"),
        colors={ret.ALL_CUSTOMERS: "#333333"},
    ),
    curves,
    name="retention curves",
    definition=ret.DEFINITIONS["curves"].format(period=period, min_sample=min_sample),
    filters_text=about,
)

activity = {"activity": options["activity"], "channel": options["channel"]}
lifecycle = compute(ret.lifecycle, filters, period=period, **activity)
chart(
    charts.lifecycle_figure(lifecycle, period=period),
    lifecycle,
    name="lifecycle",
    definition=ret.DEFINITIONS["lifecycle"].format(period=period),
    filters_text=about,
)

st.subheader("Churn by acquisition channel")
threshold = threshold_option(key="inactive")
churn = compute(ret.churn_by_channel, filters, threshold_days=threshold, **activity)
if churn.is_empty():
    st.info(
        f"Nobody had qualifying activity in the date range at least {threshold} days before the last day "
        "with data. Move the start of the date range back or choose a shorter inactivity threshold.",
        icon=":material/info:",
    )
else:
    chart(
        charts.churn_figure(churn, threshold_days=threshold, min_sample=min_sample),
        churn,
        name="churn by acquisition channel",
        definition=ret.DEFINITIONS["churn"].format(days=threshold, min_sample=min_sample),
        filters_text=about,
    )
