"""Thin Streamlit render helpers shared by the pages: KPI cards, charts with their data, notices."""

from __future__ import annotations

import io
import re

import plotly.graph_objects as go
import polars as pl
import streamlit as st

from views.formatting import format_change, format_value

# Rates where a fall is good would use "inverse"; none of the Overview KPIs is such a rate.
DELTA_COLOR = {"percent": "normal", "points": "normal", "currency": "normal", "count": "normal"}


def kpi_cards(kpis: pl.DataFrame, *, currency: str, comparison: str, per_row: int = 4) -> None:
    """One bordered card per KPI row (kpi, label, unit, value, change, change_pct, definition)."""
    rows = kpis.to_dicts()
    for start in range(0, len(rows), per_row):
        for column, row in zip(st.columns(per_row), rows[start : start + per_row], strict=False):
            with column:
                st.metric(
                    row["label"],
                    format_value(row["value"], row["unit"], currency=currency),
                    delta=format_change(row["change"], row["change_pct"], row["unit"], currency=currency),
                    delta_color=DELTA_COLOR[row["unit"]],
                    delta_description=comparison,
                    help=f"{row['definition']} Previous period: "
                    f"{format_value(row['previous'], row['unit'], currency=currency)}.",
                    border=True,
                )


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _csv_bytes(frame: pl.DataFrame) -> bytes:
    return frame.write_csv().encode()


def _parquet_bytes(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    return buffer.getvalue()


def chart(fig: go.Figure, data: pl.DataFrame, *, name: str, definition: str, filters_text: str) -> None:
    """A chart, its definition, and downloads of the chart (HTML) and of the exact data behind it."""
    slug = _slug(name)
    st.plotly_chart(fig, width="stretch", key=f"chart-{slug}", config={"displaylogo": False})
    st.caption(definition)
    columns = st.columns(3)
    columns[0].download_button(
        "CSV", data=lambda: _csv_bytes(data), file_name=f"{slug}.csv", mime="text/csv",
        on_click="ignore", key=f"csv-{slug}", icon=":material/download:", help="The exact data behind the chart",
    )
    columns[1].download_button(
        "Parquet", data=lambda: _parquet_bytes(data), file_name=f"{slug}.parquet",
        mime="application/vnd.apache.parquet", on_click="ignore", key=f"parquet-{slug}",
        icon=":material/download:",
    )
    columns[2].download_button(
        "HTML chart", data=lambda: fig.to_html(include_plotlyjs="cdn").encode(), file_name=f"{slug}.html",
        mime="text/html", on_click="ignore", key=f"html-{slug}", icon=":material/download:",
    )
    st.caption(f"Data behind the chart as CSV or Parquet; the chart as interactive HTML. Filters: {filters_text}")


def outdated_store_notice(store_path: str, missing: list[str]) -> None:
    st.title("Journeylens")
    st.warning(
        f"The store at `{store_path}` was built by an older version of Journeylens and lacks "
        f"{', '.join(missing)}. Rebuild its derived tables (your data stays as it is):\n\n"
        f"```\njourneylens build --db {store_path}\n```\n\nthen reload this page.",
        icon=":material/update:",
    )


def empty_store_notice(store_path: str) -> None:
    st.title("Journeylens")
    st.info(
        f"There is no customer data in the store at `{store_path}` yet.\n\n"
        "Create a demo store with realistic omnichannel data (about a minute):\n\n"
        f"```\njourneylens demo --db {store_path}\n```\n\n"
        "or load your own exports:\n\n"
        f"```\njourneylens load --events events.csv --db {store_path}\n"
        f"journeylens load-transactions orders.csv --customer-col customer --date-col date "
        f"--amount-col amount --db {store_path}\n```\n\nthen reload this page.",
        icon=":material/database:",
    )


def data_table(frame: pl.DataFrame, *, name: str, column_config: dict | None = None) -> None:
    """A table with its CSV download, for frames users want to take away as they are."""
    st.dataframe(frame, hide_index=True, width="stretch", column_config=column_config)
    st.download_button(
        "CSV", data=lambda: _csv_bytes(frame), file_name=f"{_slug(name)}.csv", mime="text/csv",
        on_click="ignore", key=f"table-csv-{_slug(name)}", icon=":material/download:",
    )
