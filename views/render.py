"""Thin Streamlit render helpers shared by the pages: KPI cards, charts with their data, notices."""

from __future__ import annotations

import io
import os
import re
import shutil

import ibis.expr.types as ir
import plotly.graph_objects as go
import polars as pl
import streamlit as st

from data_access.cached import query_text
from views.formatting import format_change, format_value, is_unchanged

# Rates where a fall is good would use "inverse"; none of the Overview KPIs is such a rate.
DELTA_COLOR = {"percent": "normal", "points": "normal", "currency": "normal", "count": "normal"}


def kpi_cards(kpis: pl.DataFrame, *, currency: str, comparison: str, per_row: int = 4) -> None:
    """One bordered card per KPI row (kpi, label, unit, value, change, change_pct, definition).

    ``comparison`` names the previous period in each card's help; the page states it once above
    the cards, because four cards to a row leave no room for it next to the change at 1,200 px
    (five cut labels such as "Active customers" short at 1,280 px).
    """
    rows = kpis.to_dicts()
    for start in range(0, len(rows), per_row):
        for column, row in zip(st.columns(per_row), rows[start : start + per_row], strict=False):
            with column:
                delta = format_change(row["change"], row["change_pct"], row["unit"], currency=currency)
                # No arrow and no colour for a change too small to show.
                flat = is_unchanged(delta)
                st.metric(
                    row["label"],
                    format_value(row["value"], row["unit"], currency=currency),
                    delta=delta,
                    delta_color="off" if flat else DELTA_COLOR[row["unit"]],
                    delta_arrow="off" if flat else "auto",
                    help=f"{row['definition']} In {comparison}: "
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


def _chromium() -> str | None:
    """The browser Plotly's static export drives (Debian's chromium here)."""
    return os.environ.get("BROWSER_PATH") or shutil.which("chromium") or shutil.which("google-chrome")


def _png_bytes(fig: go.Figure) -> bytes:
    os.environ.setdefault("BROWSER_PATH", _chromium() or "")
    # The static renderer does not grow margins for tick labels as the browser does.
    export = go.Figure(fig).update_layout(margin={"l": 90, "r": 40, "t": 80, "b": 70})
    return export.to_image(format="png", width=1400, height=max(int(fig.layout.height or 450), 450), scale=2)


def _excel_bytes(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_excel(buffer, worksheet="data", autofit=True)
    return buffer.getvalue()


def chart(fig: go.Figure, data: pl.DataFrame, *, name: str, definition: str, filters_text: str,
          query: ir.Expr | None = None) -> None:
    """A chart with its definition, a download row and an "About this chart" expander.

    Downloads: the chart as PNG (rendered on click, it takes a few seconds) and interactive HTML;
    the exact data behind it as CSV, Parquet and Excel. ``query`` is the engine expression the
    data came from; its SQL is shown so an analyst can rerun it.
    """
    slug = _slug(name)
    st.plotly_chart(fig, width="stretch", key=f"chart-{slug}", config={"displaylogo": False})
    st.caption(definition)
    downloads = (
        ("PNG", lambda: _png_bytes(fig), "png", "image/png"),
        ("HTML", lambda: fig.to_html(include_plotlyjs="cdn").encode(), "html", "text/html"),
        ("CSV", lambda: _csv_bytes(data), "csv", "text/csv"),
        ("Parquet", lambda: _parquet_bytes(data), "parquet", "application/vnd.apache.parquet"),
        ("Excel", lambda: _excel_bytes(data), "xlsx",
         "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    )
    # A wrapping row: in a half-width chart column the buttons move to a second line instead of
    # cutting their labels short.
    row = st.container(horizontal=True, wrap=True, gap="small")
    for label, build, extension, mime in downloads:
        png_unavailable = extension == "png" and _chromium() is None
        row.download_button(
            label, data=build, file_name=f"{slug}.{extension}", mime=mime, on_click="ignore",
            key=f"{extension}-{slug}", icon=":material/download:", disabled=png_unavailable,
            help="Needs Chromium on the server" if png_unavailable else f"{label} of {'the chart' if extension in ('png', 'html') else 'the data behind the chart'}",
        )
    with st.expander("About this chart", icon=":material/info:"):
        st.markdown(f"**Definition.** {definition}\n\n**Filters in effect.** {filters_text}\n\n"
                    f"**Data.** {len(data):,} rows × {len(data.columns)} columns: {', '.join(data.columns)}.")
        if query is not None:
            st.markdown("**Query the engine ran** (DuckDB SQL generated from the metric's Ibis expression):")
            st.code(query_text(query), language="sql")


def outdated_store_notice(store_path: str, missing: list[str]) -> None:
    st.title("Journeylens")
    st.warning(
        f"The store at `{store_path}` was built by an older version of Journeylens: these derived tables "
        f"are missing or out of date: {', '.join(missing)}. Rebuild them (your data stays as it is):\n\n"
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


def table(frame: pl.DataFrame, *, column_config: dict | None = None) -> None:
    """A full-width table without the index.

    Handed over as Arrow: Streamlit sends Arrow as it is, but converts a Polars frame through pandas,
    whose import alone costs a fresh server process half a second.
    """
    st.dataframe(frame.to_arrow(), hide_index=True, width="stretch", column_config=column_config)


def data_table(frame: pl.DataFrame, *, name: str, column_config: dict | None = None) -> None:
    """A table with its CSV download, for frames users want to take away as they are."""
    table(frame, column_config=column_config)
    st.download_button(
        "CSV", data=lambda: _csv_bytes(frame), file_name=f"{_slug(name)}.csv", mime="text/csv",
        on_click="ignore", key=f"table-csv-{_slug(name)}", icon=":material/download:",
    )
