"""The app through Streamlit's AppTest, as every page test runs it."""

from __future__ import annotations

import json
from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "app.py")


def app(store_path: Path, monkeypatch, *, timeout: float = 120) -> AppTest:
    """The app on the store at ``store_path``, not run yet (set query params first)."""
    monkeypatch.setenv("JOURNEYLENS_STORE_PATH", str(store_path))
    return AppTest.from_file(APP, default_timeout=timeout)


def open_page(store_path: Path, page: str, monkeypatch, **query: str) -> AppTest:
    """The app run once with ``query`` in the URL, then switched to ``page`` (e.g. pages/clv.py)."""
    at = app(store_path, monkeypatch)
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    return at.switch_page(page).run()


def figures(at: AppTest) -> list[dict]:
    """Every Plotly figure on the page, as its JSON spec."""
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
