"""Small Streamlit panels of the journey pages: headline numbers with their definitions."""

from __future__ import annotations

import polars as pl
import streamlit as st

from metrics import attribution as am
from views.formatting import format_value


def _period_total(shares: pl.DataFrame) -> dict:
    total = shares.filter(pl.col("month").is_null())
    return total.row(0, named=True) if len(total) else {}


def cross_channel_cards(shares: pl.DataFrame) -> None:
    """The period's online → offline and offline → online shares as two cards."""
    total = _period_total(shares)
    left, right = st.columns(2)
    left.metric(
        "Online → offline", format_value(total.get("online_to_offline_share"), "percent"), border=True,
        help=f"{total.get('online_to_offline', 0):,} of {total.get('offline_purchases', 0):,} store "
        "purchases came from a journey whose channel (as chosen above) is online: research online, buy "
        "in store.",
    )
    right.metric(
        "Offline → online", format_value(total.get("offline_to_online_share"), "percent"), border=True,
        help=f"{total.get('offline_to_online', 0):,} of {total.get('online_purchases', 0):,} online "
        "purchases came from a journey whose channel is the store: see in store, buy online.",
    )


def research_card(result: pl.DataFrame, *, purchase_channel: str, touch_channel: str, within_days: int,
                  event_types: tuple[str, ...]) -> None:
    row = result.row(0, named=True) if len(result) else {"purchases": 0, "researched": 0, "share": None}
    kinds = ", ".join(t.replace("_", " ") for t in event_types) or "any"
    st.metric(
        f"{purchase_channel} purchases preceded by {touch_channel} ({kinds}) within {within_days} days",
        format_value(row["share"], "percent"), border=True,
        help=f"{row['researched']:,} of {row['purchases']:,} {purchase_channel} purchases in the period "
        f"had a {touch_channel} touch of the same customer in the {within_days} days up to the purchase, "
        "in that journey or an earlier one.",
    )


def attribution_caption(totals: pl.DataFrame, *, currency: str) -> None:
    t = totals.row(0, named=True)
    credited = t["conversions"] - t["conversions_without_touch"]
    note = (f" {t['conversions_without_touch']:,} purchases had no touch in their lookback window and are "
            "left out of every model." if t["conversions_without_touch"] else "")
    st.caption(f"{credited:,} conversions ({format_value(t['revenue'], 'currency', currency=currency)}) from "
               f"{t['journeys']:,} journeys are shared out by every model.{note}")


def model_assumptions() -> None:
    with st.expander("What each model assumes", icon=":material/info:", expanded=True):
        st.markdown("\n".join(f"- **{model}**: {am.ASSUMPTIONS[model]}" for model in am.MODELS))
