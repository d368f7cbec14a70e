"""Journeylens entry point: page config, navigation, and the frame every page shares."""

from __future__ import annotations

import gc

import streamlit as st

from views.sidebar import explain_dropped_options, frame, opened_link, share_link

# Streamlit and Ibis leave about 200,000 long-lived objects (modules, compiled rules) that every
# full garbage collection walks again: three of them, 0.15 s each, landed in a page's first run.
# Moving what exists now out of the collector's reach, once per process, leaves collections only
# the objects a rerun makes.
if not gc.get_freeze_count():
    gc.freeze()

st.set_page_config(page_title="Journeylens", page_icon=":material/insights:", layout="wide")

PAGES = {
    "Executive": [
        st.Page("pages/overview.py", title="Overview", icon=":material/dashboard:", default=True),
    ],
    "Customers": [
        st.Page("pages/retention.py", title="Retention", icon=":material/autorenew:"),
        st.Page("pages/satisfaction.py", title="Satisfaction", icon=":material/sentiment_satisfied:"),
    ],
    "Journeys": [
        st.Page("pages/journey_map.py", title="Journey map", icon=":material/route:"),
        st.Page("pages/channel_flows.py", title="Channel flows", icon=":material/swap_horiz:"),
        st.Page("pages/attribution.py", title="Attribution", icon=":material/pie_chart:"),
    ],
    "Value": [
        st.Page("pages/clv.py", title="Customer value", icon=":material/payments:"),
    ],
    "Marketing": [
        st.Page("pages/segments.py", title="Segments", icon=":material/group_work:"),
        st.Page("pages/customer_360.py", title="Customer 360", icon=":material/person_search:"),
    ],
    "Data": [
        st.Page("pages/data.py", title="Data", icon=":material/database:"),
    ],
}

navigation = st.navigation(PAGES)
opened = opened_link()
# The frame checks settings and store and draws the global filters (bound to the URL).
if frame() is not None:
    navigation.run()
    explain_dropped_options(opened)
    share_link()
