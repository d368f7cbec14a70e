"""Shared fixtures: a UTC process, empty Streamlit caches per test, and a small demo store."""

from __future__ import annotations

import pytest

from data_access.store import pin_utc

pin_utc()


@pytest.fixture(autouse=True)
def _fresh_streamlit_caches():
    # Caches outlive AppTest instances within one process; a stale store would leak between tests.
    from data_access import cached

    cached.clear()
    yield


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory):
    """A 2,000-customer demo store (seed 7), built once per test session; tests only read it."""
    from data_access.demo import generate_demo
    from data_access.derived import build_derived_tables
    from data_access.store import writable_store
    from metrics.clv import store_scores

    path = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    with writable_store(path, fresh=True) as store:
        generate_demo(store, customers=2_000, seed=7, progress=lambda _: None)
        build_derived_tables(store.backend, progress=lambda _: None, score_clv=store_scores)
    return path
