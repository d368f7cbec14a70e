"""Shared fixtures: a UTC process, empty Streamlit caches per test, and a small demo store."""

from __future__ import annotations

import pytest

from data_access.store import pin_utc

pin_utc()


@pytest.fixture(autouse=True)
def _fresh_streamlit_caches():
    # Caches outlive AppTest instances within one process; a stale store would leak between tests.
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()
    yield
