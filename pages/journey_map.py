"""Journey map: how journeys unfold step by step, the most common paths and the customers behind them."""

import streamlit as st

from data_access.cached import compute, settings
from metrics import journeys as jm
from metrics.catalog import catalog
from views import journey_charts as charts
from views.journey_options import journey_map_options, path_picker, path_table_options
from views.render import chart, data_table
from views.sidebar import page_filters

filters = page_filters()
lookback = settings().lookback_days
currency = settings().currency

st.title("Journey map")
st.caption(
    f"{filters.describe()} · journeys ending in the period. A journey is a customer's touches since their "
    f"previous purchase and at most {lookback} days before a purchase; touches not followed by a purchase "
    f"within {lookback} days end in a drop-off. With channels selected, journeys touching them are shown "
    "whole."
)

view, layout = journey_map_options(filters.channels or compute(catalog).channels)
links = compute(jm.journey_flows, filters, **view, **layout)
if links.is_empty():
    st.info("No journeys match these options. Widen the date range, pick another start or purchase channel, "
            "or clear a filter.", icon=":material/info:")
    st.stop()

backward = view["direction"] == "backward"
chart(
    charts.sankey_figure(
        links,
        title=(f"The last {layout['steps']} steps before a purchase" if backward
               else f"The first {layout['steps']} steps of each journey"),
    ),
    links,
    name="journey map",
    definition=(
        "Each band is a number of journeys (exact counts, shown after each node). Nodes are "
        + ("steps counted back from the purchase (“−1 · store” is the last touch)"
           if backward else "steps from the start (“2 · store” is the second step)")
        + ("; a step is a run of touches in one channel" if view["collapse"] else "; a step is one touch")
        + ". Longer journeys pass through “⋯ more touches” (or come from “⋯ earlier touches”); channels "
        "beyond the busiest of a step are grouped into “other”. Outcomes: purchase (its channel) or drop-off."
    ),
    filters_text=filters.describe(),
    query=jm.flows_expr(filters, **view, steps=layout["steps"]),
)

st.subheader("Top paths")
paths = compute(jm.top_paths, filters, **view, **path_table_options())
st.caption("Whole journeys (from their first touch) of the journeys in the map above. Time to convert runs "
           "from the first touch to the purchase; revenue is the purchases' revenue. Click a header to sort.")
data_table(
    paths,
    name="top paths",
    column_config={
        "path": st.column_config.TextColumn("path", width="large"),
        "journeys": st.column_config.NumberColumn("journeys", format="localized"),
        "conversions": st.column_config.NumberColumn("conversions", format="localized"),
        "conversion_rate": st.column_config.NumberColumn("conversion rate", format="%.1f%%"),
        "median_days_to_convert": st.column_config.NumberColumn("median days to convert", format="%.1f"),
        "p90_days_to_convert": st.column_config.NumberColumn("90th percentile days", format="%.1f"),
        "revenue": st.column_config.NumberColumn(f"revenue ({currency})", format="localized"),
    },
)

path = path_picker(paths["path"].to_list())
if path is not None:
    customers = compute(jm.path_customers, filters, path=path, **view)
    shown = path.replace(">", " → ") or "(no touch)"
    st.caption(f"{len(customers):,} journeys followed {shown}, latest first.")
    data_table(customers, name="path customers")
