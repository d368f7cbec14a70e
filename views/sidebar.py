"""The global filters: sidebar widgets bound to the URL, turned into one frozen Filters value."""

from __future__ import annotations

import threading
from datetime import date
from urllib.parse import urlencode

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from data_access import cached
from data_access.derived import store_readiness
from data_access.settings import SettingsError
from metrics.catalog import Catalog, catalog
from metrics.filters import Filters, default_period
from views.render import empty_store_notice, outdated_store_notice
from views.segment_widgets import saved_segment_filter

# app.py hands the Filters it built to the page it runs next, on the same thread.
_handoff = threading.local()


def _date_range(catalog: Catalog, notices: list[str]) -> tuple[date, date]:
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
        if chosen[0] > chosen[1]:  # only a hand-edited link gets here: the picker orders the days
            notices.append(f"The link's date range runs backwards ({chosen[0]} to {chosen[1]}); "
                           "showing the default range.")
            return default
        return chosen
    if isinstance(chosen, tuple) and len(chosen) == 1:
        st.caption("Pick the last day of the range too; showing the default range until then.")
    return default


def _unknown_in_link(key: str, known: tuple[str, ...], label: str) -> list[str]:
    """A notice for the link's values of ``key`` this store does not have (the widget drops them)."""
    unknown = [value for value in st.query_params.get_all(key) if value not in known]
    if not unknown:
        return []
    return [f"The link asks for {label} {', '.join(unknown)}, which this store does not have; ignored."]


def global_filters(catalog: Catalog) -> Filters:
    """Render the sidebar filters and return them as Filters (empty selection = all).

    Values of a shared link that no longer fit the store (an unknown channel, a date range that
    runs backwards) fall back to the defaults with a short notice above the page.
    """
    notices = [*_unknown_in_link("channel", catalog.channels, "channel"),
               *_unknown_in_link("region", catalog.regions, "region"),
               *_unknown_in_link("segment", catalog.segments, "segment")]
    with st.sidebar:
        st.subheader("Filters")
        start, end = _date_range(catalog, notices)
        channels = st.multiselect("Channels", catalog.channels, key="channel", bind="query-params",
                                  placeholder="All channels")
        regions = st.multiselect("Regions", catalog.regions, key="region", bind="query-params",
                                 placeholder="All regions")
        segments = st.multiselect("Segments", catalog.segments, key="segment", bind="query-params",
                                  placeholder="All segments")
        saved = saved_segment_filter()
        st.caption(f"{catalog.customers:,} customers · {catalog.events:,} events · "
                   f"{catalog.first_day} to {catalog.last_day}")
    for notice in notices:
        st.info(notice, icon=":material/link_off:")
    return Filters(start=start, end=end, channels=tuple(channels), regions=tuple(regions),
                   segments=tuple(segments), segment_name=saved and saved.name,
                   segment_rule=saved and saved.definition, channel_bits=catalog.channel_bits)


def frame() -> Filters | None:
    """The part of every page that app.py draws: the store check and the global filters.

    Returns None (after saying what is wrong) when a setting is invalid or the store is empty.
    """
    try:
        cached.settings()
    except SettingsError as error:
        st.error(f"Journeylens cannot start: {error}", icon=":material/error:")
        return None
    store = cached.current_store()
    has_data, missing = cached.compute(store_readiness) if store is not None else (False, ())
    if not has_data:
        empty_store_notice(str(cached.settings().store_path))
        return None
    if missing:
        outdated_store_notice(str(store.path), list(missing))
        return None
    filters = global_filters(cached.compute(catalog))
    _handoff.filters = filters
    return filters


def _leave_pages_directory_mode() -> None:
    """Run app.py (sections, wide layout, shared frame) even when a page URL came first.

    Streamlit treats an app with a ``pages/`` folder as an old-style multipage app, running page
    files on their own, until app.py has called ``st.navigation`` once in the process. A server
    whose first visitor opens a shared link to a page would stay in that mode for everyone.

    Only a fresh session is rerun at once: a rerun would drop a click (a button's trigger) that
    came with this run. Otherwise the page draws the frame itself this once.
    """
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        if not st.session_state:
            st.rerun()


def page_filters() -> Filters:
    """The filters for this page run; stops the page when there is no data to show.

    A page normally runs right after app.py drew the frame. Run on its own (as AppTest runs file
    pages), it draws the frame itself, so every page works either way.
    """
    filters = getattr(_handoff, "filters", None)
    _handoff.filters = None
    if filters is None:
        _leave_pages_directory_mode()
        filters = frame()
    if filters is None:
        st.stop()
    return filters


# The sidebar's own keys: global_filters and the saved-segment picker explain their dropped values.
_FILTER_KEYS = frozenset({"dates", "channel", "region", "segment", "saved_segment"})


def opened_link() -> dict[str, list[str]] | None:
    """The query string the session was opened with (first run only, later runs return None).

    Later runs change the URL on purpose (a widget bound to it changed); only the first run shows
    what the shared link asked for.
    """
    if st.session_state.get("_link_checked"):
        return None
    st.session_state["_link_checked"] = True
    return {key: st.query_params.get_all(key) for key in st.query_params}


def explain_dropped_options(opened: dict[str, list[str]] | None) -> None:
    """After the page ran: a toast naming the link's page options its widgets could not use.

    A widget bound to the URL silently drops a value it does not offer (text where a number
    belongs, an option that no longer exists) and uses its default; the user should know.
    """
    if not opened:
        return
    dropped = sorted(key for key, values in opened.items()
                     if key not in _FILTER_KEYS and st.query_params.get_all(key) != values
                     and not _is_current_value(key, values))
    if dropped:
        st.toast(f"The link's {', '.join(dropped)} did not fit this page; showing the default instead.",
                 icon=":material/link_off:")


def _is_current_value(key: str, values: list[str]) -> bool:
    # Streamlit also takes a value out of the URL when it is the widget's default ("Week" for a
    # period that defaults to week): that value was used, not dropped.
    current = st.session_state.get(key)
    current = current if isinstance(current, (list, tuple)) else [current]
    return [str(v).strip().lower() for v in values] == [str(v).strip().lower() for v in current]


def share_link() -> None:
    """"Share this view" in the sidebar: the page's URL with every filter and option it carries.

    Drawn after the page has run, so the page's own options are already in the query string.
    Without a browser (AppTest, bare mode) there is no URL to share and nothing is drawn.
    """
    base = st.context.url
    if not base:
        return
    query = urlencode({key: st.query_params.get_all(key) for key in st.query_params}, doseq=True)
    with st.sidebar.popover("Share this view", icon=":material/link:", width="stretch"):
        st.caption("Opens this page with the same filters, saved segment and options. "
                   "Copy it with the button at the right of the link.")
        st.code(f"{base}?{query}" if query else base, language=None, wrap_lines=True)
