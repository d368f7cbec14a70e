"""The global filters: sidebar widgets bound to the URL, turned into one frozen Filters value."""

from __future__ import annotations

from datetime import date

import streamlit as st

from metrics.catalog import Catalog
from metrics.filters import Filters, default_period

FILTERS_STATE_KEY = "journeylens_filters"


def _date_range(catalog: Catalog) -> tuple[date, date]:
    default = default_period(catalog.last_day)
    default = (max(default[0], catalog.first_day), default[1])
    chosen = st.date_input(
        "Date range",
        value=default,
        min_value=catalog.first_day,
        max_value=catalog.last_day,
        key="dates",
        bind="query-params",
        help="Inclusive days (UTC). KPIs compare with the equally long period just before.",
    )
    # While the user is picking, the widget holds only the first day of the range.
    if isinstance(chosen, tuple) and len(chosen) == 2:
        return chosen
    if isinstance(chosen, tuple) and len(chosen) == 1:
        st.caption("Pick the last day of the range too; showing the default range until then.")
    return default


def global_filters(catalog: Catalog) -> Filters:
    """Render the sidebar filters and return them as Filters (empty selection = all)."""
    with st.sidebar:
        st.subheader("Filters")
        start, end = _date_range(catalog)
        channels = st.multiselect("Channels", catalog.channels, key="channel", bind="query-params",
                                  placeholder="All channels")
        regions = st.multiselect("Regions", catalog.regions, key="region", bind="query-params",
                                 placeholder="All regions")
        segments = st.multiselect("Segments", catalog.segments, key="segment", bind="query-params",
                                  placeholder="All segments")
        st.caption(f"{catalog.customers:,} customers · {catalog.events:,} events · "
                   f"{catalog.first_day} to {catalog.last_day}")
    filters = Filters(start=start, end=end, channels=tuple(channels), regions=tuple(regions),
                      segments=tuple(segments))
    st.session_state[FILTERS_STATE_KEY] = filters
    return filters


def current_filters() -> Filters:
    """The Filters built by app.py for this rerun (pages read, never rebuild, them)."""
    return st.session_state[FILTERS_STATE_KEY]
