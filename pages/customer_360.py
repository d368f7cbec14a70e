"""Customer 360: one customer's facts, every touch across channels, and the identities behind them."""

import streamlit as st

from data_access.cached import compute, settings
from data_access.identifiers import HASHED_TYPES, PLAIN_TYPES, masked
from metrics import customer360
from metrics.segments import RFM_RULE
from views.customer360_charts import SYMBOLS, timeline_figure
from views.formatting import format_value
from views.render import chart, table
from views.sidebar import page_filters

filters = page_filters()
currency = settings().currency

st.title("Customer 360")
st.caption("Lifetime view of one customer; the sidebar's filters do not apply here. Personal identifiers are "
           "stored hashed: what you type is hashed the same way and only the hashes are compared.")

query_col, type_col = st.columns((3, 1))
query = query_col.text_input("Find a customer", key="c360_query", bind="query-params",
                             placeholder="Unified id (C0000012), e-mail, phone, loyalty id, card, cookie or device id")
kind = type_col.selectbox("Identifier type", ("any", *HASHED_TYPES, *PLAIN_TYPES), key="c360_type",
                          bind="query-params")
if not query.strip():
    st.info("Type a unified customer id or an identifier to look a customer up.", icon=":material/person_search:")
    st.stop()

matches = compute(customer360.find, query=query.strip(), identifier_type=None if kind == "any" else kind)
if matches.is_empty():
    st.warning("No customer has this id or identifier. Check the type, or try another identifier.")
    st.stop()
labels = {row["customer_id"]: f"{row['customer_id']} (matched by {row['matched_by'].replace('_', ' ')})"
          for row in matches.iter_rows(named=True)}
customer_id = st.selectbox(f"{len(labels)} matching customers", list(labels), format_func=labels.get) \
    if len(labels) > 1 else next(iter(labels))

facts = compute(customer360.profile, customer_id=customer_id)
channels = compute(customer360.channels, customer_id=customer_id)
st.subheader(f"Customer {customer_id} · {facts['region']}" + (f" · {facts['segment']}" if facts["segment"] else ""))
cards = [*st.columns(4), *st.columns(4)]  # two rows: eight values do not fit one at 1440 px
cards[0].metric("First seen", f"{facts['first_seen_at']:%Y-%m-%d}")
cards[1].metric("Acquisition channel", facts["acquisition_channel"])
cards[2].metric("Orders", format_value(facts["orders"], "count"))
cards[3].metric("Net revenue", format_value(facts["net_revenue"], "currency", currency=currency))
cards[4].metric("Predicted CLTV", format_value(facts["predicted_clv"], "currency", currency=currency),
                help=f"Next 12 months, from the models fitted at the last build; tier: {facts['clv_tier'] or '–'}. "
                "Empty for customers who never bought.")
p_alive = facts["p_alive"]
cards[5].metric("P(alive)", format_value(None if p_alive is None else 100 * p_alive, "percent"),
                help="Probability the customer is still active (BG/NBD).")
cards[6].metric("Latest CSAT", f"{facts['latest_csat']}/5" if facts["latest_csat"] is not None else "–")
cards[7].metric("Channels used", facts["channels_used"], help=", ".join(channels["channel"].to_list()))
recency = facts["days_since_last_purchase"]
st.caption(f"RFM segment **{facts['rfm_segment']}** · last purchase "
           f"{'never' if recency is None else f'{recency} days before the last day of data'} · "
           f"{facts['support_contacts']} support contacts", help=RFM_RULE)

shown = st.multiselect("Channels on the timeline", channels["channel"].to_list(), key="c360_channels",
                       placeholder="All channels")
events = compute(customer360.timeline, customer_id=customer_id, channels=tuple(sorted(shown)))
journey = compute(customer360.last_journey, customer_id=customer_id)
cart = compute(customer360.open_cart, customer_id=customer_id)
if not cart.is_empty():
    items = ", ".join(sorted({category or "item" for category in cart["product_category"].to_list()}))
    st.warning(f"**Open cart:** {len(cart)} item{'s' if len(cart) != 1 else ''} added since the last purchase "
               f"({items}), the latest on {cart['occurred_at'].max():%Y-%m-%d} via {cart['channel'][-1]}.",
               icon=":material/shopping_cart:")
if journey is not None:
    st.caption(f"Last journey: {journey['path'].replace('>', ' → ') or '(no touch)'} → "
               + (f"purchase in {journey['conversion_channel']}" if journey["converted"] else "no purchase yet")
               + f", {journey['started_at']:%Y-%m-%d} to {journey['ended_at']:%Y-%m-%d} (shaded on the timeline).")
chart(timeline_figure(events, currency=currency, last_journey=journey, open_cart=cart), events,
      name=f"timeline {customer_id}",
      definition="Each marker is one event; colour is the channel, shape the event type ("
      + ", ".join(f"{symbol.replace('-', ' ')} = {etype.replace('_', ' ')}" for etype, symbol in SYMBOLS.items())
      + ", open circle = other touches), size grows with the order value. Shaded: the last journey; red "
      "rings: items still in the cart. Hover for values and survey scores.",
      filters_text=f"customer {customer_id}; channels: {', '.join(shown) or 'all'}",
      query=customer360.timeline_expr(customer_id, channels=tuple(sorted(shown))))

left, right = st.columns(2)
with left:
    st.markdown("**Channels**")
    table(channels.drop("customer_id"))
with right:
    st.markdown("**Stitched identities** (personal ones shown as a hash prefix)")
    identities = compute(customer360.identities, customer_id=customer_id)
    table(identities.with_columns(identities["identifier_value"].map_elements(masked, return_dtype=str)))
