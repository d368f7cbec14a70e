"""Segments: build a rule from condition rows and groups, see who matches, save and export; compare two segments."""

import streamlit as st

from data_access.cached import compute, compute_shared, settings
from metrics import segment_comparison, segments
from metrics.catalog import catalog
from metrics.clv_models import DEFAULT_HORIZON_MONTHS
from metrics.retention import DEFINITIONS as RETENTION_DEFINITIONS
from metrics.retention import describe as describe_retention
from views.formatting import format_value
from views.render import chart, table
from views.retention_charts import retention_curves_figure
from views.segment_charts import clv_comparison_figure, segment_colors
from views.segment_widgets import (KEEP, channel_usage_figure, compare_pickers, comparison_cards, load_saved,
                                   members_downloads, rule_builder, save_controls, saved_segments, summary_cards)
from views.sidebar import page_filters

filters = page_filters()
currency, min_sample = settings().currency, settings().min_sample
store_catalog = compute(catalog)

st.title("Segments")
st.caption("Membership uses each customer's lifetime facts over all customers; the sidebar's date range and "
           "filters do not change it. Save a segment to use it as the sidebar's “Saved segment” filter on every page.")
if notice := st.session_state.pop("segment_notice", None):
    st.success(notice, icon=":material/check_circle:")

build, compare = st.tabs(("Build a segment", "Compare segments"), key="segments_tab", bind="query-params")


def _build() -> None:
    st.selectbox("Edit a saved segment", [s.name for s in saved_segments()], index=None, key="edit_segment",
                 placeholder="Start from scratch", persist_state=KEEP,
                 on_change=lambda: load_saved(st.session_state.get("edit_segment")))
    with st.expander("How the conditions are defined", icon=":material/info:"):
        st.markdown(segments.definitions(lambda amount: format_value(amount, "currency", currency=currency)))

    try:
        rule = segments.canonical(rule_builder(store_catalog))
    except ValueError as error:
        st.error(f"This rule cannot run: {error}", icon=":material/error:")
        return

    result = compute(segments.summary, rule=rule)
    summary_cards(result, currency=currency)

    if result["customers"][0] == 0:
        st.info("No customer matches these conditions. Loosen a condition or switch to “any condition”.")
    else:
        mix = compute(segments.channel_mix, rule=rule)
        chart(channel_usage_figure(mix), mix, name="segment channel usage",
              definition="Share of the segment's customers (solid) and of all customers (faded) with at least one "
              "event in each channel over their lifetime. A customer counts in every channel they used.",
              filters_text=f"segment rule: {rule}", query=segments.channel_mix_expr(rule))

    st.subheader("Save")
    save_controls(rule)

    st.subheader("Export members")
    columns = st.multiselect("Facts to include besides customer_id", segments.EXPORT_COLUMNS,
                             default=["region", "orders", "net_revenue", "last_purchase_at", "rfm_segment"])
    members = compute_shared(segments.members, rule=rule, columns=tuple(columns))
    members_downloads(members, name=(st.session_state.get("editing") or {}).get("name", "segment"))
    st.caption(f"{len(members):,} members × {len(members.columns)} columns. Personal identifiers are not exported.")
    table(members.head(200))


def _compare() -> None:
    st.caption("Two saved segments (or all customers) side by side, over each customer's whole history.")
    pair = compare_pickers(saved_segments())
    if pair is None:
        return
    colors = segment_colors([label for label, _ in pair])
    scope = " vs ".join(f"{label}: {rule}" for label, rule in pair)
    comparison_cards(compute(segment_comparison.kpis, pair=pair), currency=currency)

    curves = compute(segment_comparison.retention_curves, pair=pair, min_sample=min_sample)
    if curves.filter("shown").is_empty():
        st.info(f"Too few customers for a retention curve: each point needs at least {min_sample} customers in "
                "complete monthly cohorts of first purchases.", icon=":material/info:")
    else:
        options = segment_comparison.RETENTION_OPTIONS
        chart(retention_curves_figure(curves, period=options["period"], title="Purchase retention by segment",
                                      colors=colors), curves,
              name="segment comparison retention", filters_text=scope,
              definition=f"{describe_retention(**options)} "
              f"{RETENTION_DEFINITIONS['curves'].format(period=options['period'], min_sample=min_sample)}",
              query=segment_comparison.retention_counts_expr(pair))

    distribution = compute(segment_comparison.clv_distribution, pair=pair)
    if distribution.is_empty():
        st.info("No predicted CLTV in this store: the models could not be fitted when it was built (too few repeat "
                "buyers), so there is no distribution to compare.", icon=":material/info:")
        return
    upper = float(distribution["bin_end"].max())
    chart(clv_comparison_figure(distribution, currency=currency, horizon_months=DEFAULT_HORIZON_MONTHS,
                                colors=colors), distribution,
          name="segment comparison predicted cltv", filters_text=scope,
          definition=f"Members with a predicted CLTV (buyers) per {currency} range, in % of each segment's scored "
          f"members. Ranges are equal widths up to {format_value(upper, 'currency', currency=currency)}, the 99th "
          "percentile of all scored customers; the last range holds everyone above it.",
          query=segment_comparison.clv_histogram_expr(pair, upper=upper, bins=segment_comparison.DEFAULT_BINS))


if build.open:
    with build:
        _build()
if compare.open:
    with compare:
        _compare()
