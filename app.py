"""Journeylens entry point: page config, settings, global filters bound to the URL, navigation."""

from __future__ import annotations

import streamlit as st

from data_access import cached
from data_access.settings import SettingsError
from metrics.catalog import catalog
from views.render import empty_store_notice
from views.sidebar import global_filters

st.set_page_config(page_title="Journeylens", page_icon=":material/insights:", layout="wide")

PAGES = {
    "Executive": [
        st.Page("pages/overview.py", title="Overview", icon=":material/dashboard:", default=True),
    ],
}

try:
    settings = cached.settings()
except SettingsError as error:
    st.error(f"Journeylens cannot start: {error}", icon=":material/error:")
    st.stop()

navigation = st.navigation(PAGES)
store = cached.current_store()
if store is None or not store.has_data():
    empty_store_notice(str(settings.store_path))
    st.stop()

global_filters(cached.compute(catalog))
navigation.run()
