"""Segments: build a rule from condition rows, see who matches against all customers, save and export."""

import streamlit as st

from data_access.cached import compute, settings
from metrics import segments
from metrics.catalog import catalog
from views.formatting import format_value
from views.render import chart
from views.segment_widgets import (channel_usage_figure, load_saved, members_downloads, rule_builder, save_controls,
                                   saved_segments)
from views.sidebar import page_filters

filters = page_filters()
currency = settings().currency
store_catalog = compute(catalog)

st.title("Segments")
st.caption("Membership uses each customer's lifetime facts over all customers; the sidebar's date range and "
           "filters do not change it. Save a segment to use it as the sidebar's “Saved segment” filter on every page.")
if notice := st.session_state.pop("segment_notice", None):
    st.success(notice, icon=":material/check_circle:")

st.selectbox("Edit a saved segment", [s.name for s in saved_segments()], index=None, key="edit_segment",
             placeholder="Start from scratch", on_change=lambda: load_saved(st.session_state.get("edit_segment")))
with st.expander("RFM segment rule", icon=":material/info:"):
    st.markdown(segments.RFM_RULE)

try:
    rule = segments.canonical(rule_builder(store_catalog))
except ValueError as error:
    st.error(f"This rule cannot run: {error}", icon=":material/error:")
    st.stop()

result = compute(segments.summary, rule=rule)
members_row, all_row = result.row(0, named=True), result.row(1, named=True)


def _versus(key: str, unit: str, *, scale: float = 1.0) -> str:
    value = all_row[key] * scale if all_row[key] is not None else None
    return f"all: {format_value(value, unit, currency=currency)}"


# Deltas here are the all-customer values, for comparison, not changes: no colour, no arrow.
cards = st.columns(5)
cards[0].metric("Members", format_value(members_row["customers"], "count"), _versus("customers", "count"),
                delta_color="off", delta_arrow="off")
cards[1].metric("Share of customers", format_value(100 * (members_row["share_of_customers"] or 0), "percent"))
for card, label, key, unit, scale in (
    (cards[2], "Net revenue", "net_revenue", "currency", 1.0),
    (cards[3], "Avg net revenue", "avg_net_revenue", "currency", 1.0),
    (cards[4], "Omnichannel share", "omnichannel_share", "percent", 100.0),
):
    value = members_row[key] * scale if members_row[key] is not None else None
    card.metric(label, format_value(value, unit, currency=currency), _versus(key, unit, scale=scale),
                delta_color="off", delta_arrow="off")

if members_row["customers"] == 0:
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
members = compute(segments.members, rule=rule, columns=tuple(columns))
members_downloads(members, name=(st.session_state.get("editing") or {}).get("name", "segment"))
st.caption(f"{len(members):,} members × {len(members.columns)} columns. Personal identifiers are not exported.")
st.dataframe(members.head(200), hide_index=True, width="stretch")
