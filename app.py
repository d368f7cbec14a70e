"""Journeylens entry point: page config, navigation, and the frame every page shares."""

from __future__ import annotations

import streamlit as st

from views.sidebar import frame

st.set_page_config(page_title="Journeylens", page_icon=":material/insights:", layout="wide")

PAGES = {
    "Executive": [
        st.Page("pages/overview.py", title="Overview", icon=":material/dashboard:", default=True),
    ],
}

navigation = st.navigation(PAGES)
# The frame checks settings and store and draws the global filters (bound to the URL).
if frame() is not None:
    navigation.run()
