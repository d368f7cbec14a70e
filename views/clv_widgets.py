"""The customer value page's own options (widgets bound to the URL), tabs and headline cards."""

from __future__ import annotations

from datetime import date

import polars as pl
import streamlit as st

from metrics import clv
from metrics.catalog import Catalog
from metrics.filters import Filters
from views.formatting import CURRENCY_SYMBOLS, format_value

HORIZONS = (3, 6, 12, 24, 36)
HOLDOUT_WEEKS = (8, 13, 26, 39, 52)
TABS = ("Predictive CLTV", "Historical CLTV", "Omnichannel uplift", "Model check")
DEFAULT_ACQUISITION_COST = 100.0


def value_options(filters: Filters, catalog: Catalog) -> dict[str, object]:
    """As-of date, horizon and discount: the keyword options of :func:`metrics.clv.scored_customers`.

    An empty as-of date means the end of the date range, so the page follows the sidebar until
    the user picks a date of their own.
    """
    columns = st.columns(3)
    chosen = columns[0].date_input(
        "As of (empty: end of the date range)", value=None, min_value=catalog.first_day,
        max_value=catalog.last_day, key="clv_as_of", bind="query-params",
        help="History up to and including this day is used; predictions start the day after.",
    )
    horizon = columns[1].selectbox(
        "Horizon", HORIZONS, index=HORIZONS.index(clv.DEFAULT_HORIZON_MONTHS),
        format_func=lambda months: f"{months} months", key="clv_horizon", bind="query-params",
        help="Months of future purchases that predicted CLTV adds up.",
    )
    discount = columns[2].number_input(
        "Discount rate (% per month)", min_value=0.0, max_value=10.0, value=clv.DEFAULT_MONTHLY_DISCOUNT * 100,
        step=0.1, format="%.1f", key="clv_discount", bind="query-params",
        help="Each future month's value is divided by (1 + rate)^month. 1% a month is about 12.7% a year.",
    )
    as_of: date = chosen or filters.end or catalog.last_day
    return {"as_of": as_of, "horizon_months": int(horizon), "monthly_discount": round(float(discount) / 100, 6)}


def value_tabs():
    """The page's tabs; only the open one runs (its label is in the URL)."""
    return st.tabs(TABS, key="clv_tab", bind="query-params")


def value_cards(headline: pl.DataFrame, *, currency: str, per_row: int = 3) -> None:
    """One bordered card per headline row (label, unit, value, help), ``per_row`` to a row: six in
    one row cut the numbers to "1,…" and "$2…" at 1,200 px."""
    rows = headline.to_dicts()
    for start in range(0, len(rows), per_row):
        for column, row in zip(st.columns(per_row), rows[start : start + per_row], strict=False):
            column.metric(row["label"], format_value(row["value"], row["unit"], currency=currency),
                          help=row["help"], border=True)


def breakdown_option() -> str:
    return st.segmented_control(
        "Lines per", tuple(clv.CURVE_BREAKDOWNS), default="cohort", required=True,
        format_func=clv.CURVE_BREAKDOWNS.get, key="clv_by", bind="query-params",
        help="Acquisition quarter: customers first seen in the same calendar quarter.",
    )


def dimension_option() -> str:
    return st.segmented_control(
        "By", tuple(clv.DIMENSIONS), default="acquisition-channel", required=True,
        format_func=lambda key: clv.DIMENSIONS[key][1], key="clv_dim", bind="query-params",
    )


def holdout_option() -> int:
    return st.selectbox(
        "Holdout period", HOLDOUT_WEEKS, index=HOLDOUT_WEEKS.index(clv.DEFAULT_HOLDOUT_WEEKS),
        format_func=lambda weeks: f"last {weeks} weeks", key="clv_holdout", bind="query-params",
        help="The model is fitted on the history before this period and predicts the purchases in it.",
    )


def acquisition_costs(curves: pl.DataFrame, *, currency: str) -> tuple[tuple[str, float], ...]:
    """One cost per acquisition channel in ``curves`` (per acquired customer), in a popover."""
    channels = sorted(curves["group"].unique().to_list())
    with st.popover(f"Acquisition cost per channel ({currency})", icon=":material/paid:"):
        st.caption(f"What acquiring one customer costs on each channel, in {currency}. The default "
                   f"{format_value(DEFAULT_ACQUISITION_COST, 'currency', currency=currency)} is a placeholder: "
                   "enter your own; the values stay in the URL.")
        return tuple(
            (channel, float(st.number_input(channel, min_value=0.0, value=DEFAULT_ACQUISITION_COST, step=5.0,
                                            key=f"clv_cac_{channel}", bind="query-params")))
            for channel in channels
        )


TOP_SIZES = (100, 1000, clv.TOP_CUSTOMERS_KEPT)


def top_size_option() -> int:
    return st.selectbox("Customers in the table", TOP_SIZES, key="clv_top", bind="query-params",
                        format_func=lambda n: f"top {n:,}")


def customer_columns(currency: str) -> dict:
    """Column formats of the top-customers table: every number with its unit."""
    symbol = CURRENCY_SYMBOLS.get(currency)
    money = f"{symbol}%.2f" if symbol else f"%.2f {currency}"
    amounts = {"predicted_clv": "predicted CLTV", "expected_avg_spend": "expected spend per purchase day",
               "historical_revenue": "historical CLTV", "monetary_value": "mean repeat spend"}
    columns = {name: st.column_config.NumberColumn(label, format=money) for name, label in amounts.items()}
    columns |= {
        "p_alive": st.column_config.ProgressColumn("P(alive)", min_value=0.0, max_value=1.0, format="percent"),
        "expected_purchases": st.column_config.NumberColumn("expected purchase days", format="%.2f"),
        "frequency": st.column_config.NumberColumn("repeat purchase days", format="%d"),
        "recency": st.column_config.NumberColumn("recency (weeks)", format="%.1f"),
        "T": st.column_config.NumberColumn("age T (weeks)", format="%.1f"),
        "channels_used": st.column_config.NumberColumn("channels used", format="%d"),
    }
    return columns
