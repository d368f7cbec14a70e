"""Channel flows: where each touch leads, where journeys convert, and how long it takes."""

import streamlit as st

from data_access.cached import compute
from metrics import flows
from metrics.catalog import catalog
from views import journey_charts as charts
from views.journey_options import (
    BASIS_LABELS, BUCKETS, basis_option, convert_by_option, flow_options, research_options,
)
from views.journey_panels import cross_channel_cards, research_card
from views.render import chart
from views.sidebar import page_filters

filters = page_filters()
channels = filters.channels or compute(catalog).channels

st.title("Channel flows")
st.caption(f"{filters.describe()} · journeys ending in the period (see the Journey map for the definition)")

options = flow_options()
matrix = compute(flows.transitions, filters, collapse=options["collapse"])
if matrix.is_empty():
    st.info("No journeys in this period with these filters. Widen the date range or clear a filter.",
            icon=":material/info:")
    st.stop()

chart(
    charts.transition_heatmap(matrix, values=options["values"]),
    matrix,
    name="channel transitions",
    definition="From “start” to each journey's first channel, from every touch to the next touch of the same "
    "journey, and from the last touch to purchase or drop-off. Row % is the probability of the next state "
    "given the row"
    + (", with repeats in one channel collapsed (no channel leads to itself)." if options["collapse"]
       else ", counting a channel followed by itself."),
    filters_text=filters.describe(),
    query=flows.transitions_expr(filters, collapse=options["collapse"]),
)

st.subheader("Cross-channel conversion")
basis = basis_option()
# One query for the matrix and the online/offline shares.
monthly = compute(flows.cross_channel_monthly, filters, basis=basis)
cross = flows.cross_channel_matrix(monthly)
if cross.is_empty():
    st.info("No converting journey with a touch in this period.", icon=":material/info:")
else:
    chart(
        charts.cross_channel_heatmap(cross, basis_label=BASIS_LABELS[basis]),
        cross,
        name="cross-channel conversion",
        definition="Converting journeys by the channel of their first touch (or most frequent touch) and the "
        "channel of the purchase; a row sums to 100%. Off the diagonal, customers researched in one channel "
        "and bought in another.",
        filters_text=filters.describe(),
        query=flows.cross_channel_expr(filters, basis=basis),
    )
    shares = flows.online_offline_shares(monthly)
    cross_channel_cards(shares)
    chart(
        charts.online_offline_figure(shares),
        shares,
        name="online offline trend",
        definition=f"Online channels: {', '.join(flows.ONLINE_CHANNELS)}; offline: "
        f"{', '.join(flows.OFFLINE_CHANNELS)}. Online → offline: share of store purchases whose journey "
        "channel is online. Offline → online: share of online purchases whose journey channel is the store. "
        "The row without a month in the data is the whole period.",
        filters_text=filters.describe(),
        query=flows.cross_channel_expr(filters, basis=basis),
    )

st.subheader("Research before purchase")
research = research_options(channels)
research_card(compute(flows.research_share, filters, **research), **research)
st.caption("Counts a touch of the same customer in the days up to the purchase, whether or not it belongs to "
           "the purchase's journey: the window, not the journey, defines it.")

st.subheader("Time between touches and to convert")
gaps = compute(flows.time_between_touches, filters, collapse=options["collapse"])
chart(
    charts.distribution_figure(gaps, title="Time from a touch to the next touch, by channel", buckets=BUCKETS,
                               unit="gaps"),
    gaps,
    name="time between touches",
    definition="For every touch followed by another touch of the same journey: the time until that next "
    "touch, grouped by the channel of the first of the two"
    + (" (only where the channel changes)." if options["collapse"] else "."),
    filters_text=filters.describe(),
    query=flows.time_between_expr(filters, collapse=options["collapse"]),
)
by = convert_by_option()
convert = compute(flows.time_to_convert, filters, by=by)
chart(
    charts.distribution_figure(convert, title="Time from the first touch to the purchase", buckets=BUCKETS,
                               unit="conversions"),
    convert,
    name="time to convert",
    definition="For every converting journey with a touch: the time from its first touch to the purchase, by "
    + ("the purchase channel." if by == "conversion_channel" else "the channel of the first touch."),
    filters_text=filters.describe(),
    query=flows.time_to_convert_expr(filters, by=by),
)
