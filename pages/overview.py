"""Overview: the executive KPIs with their change, the trends behind them and the channel mix."""

import polars as pl
import streamlit as st

from data_access.cached import compute, settings
from metrics import kpis as kpi_metrics
from views import charts
from views.render import chart, kpi_cards, table
from views.sidebar import page_filters

filters = page_filters()
currency = settings().currency
grain = kpi_metrics.grain_for(filters)

st.title("Overview")
st.caption(f"{filters.describe()} · compared with the previous {filters.days} days")

kpis = compute(kpi_metrics.kpis, filters)
kpi_cards(kpis, currency=currency, comparison=f"the previous {filters.days} days")
with st.expander("KPI definitions and values", icon=":material/info:"):
    table(kpis)

trend = compute(kpi_metrics.trend, filters, grain=grain)
if trend.is_empty():
    st.info("No activity in this period with these filters. Widen the date range or clear a filter.")
    st.stop()

left, right = st.columns(2)
with left:
    chart(
        charts.revenue_trend_figure(trend.filter(pl.col("channel") != "all"), currency=currency, grain=grain),
        trend.filter(pl.col("channel") != "all").select("period", "channel", "revenue", "orders"),
        name="revenue by channel",
        definition=f"Net revenue (purchases minus refunds, {currency}) per {grain}, stacked by the channel "
        "of the purchase or refund. Refunds in a period can make a bar negative.",
        filters_text=filters.describe(),
        query=kpi_metrics.trend_expr(filters, grain=grain),
    )
with right:
    chart(
        charts.active_customers_figure(trend, grain=grain),
        trend.select("period", "channel", "active_customers"),
        name="active customers",
        definition=f"Distinct customers with any event per {grain}. The bold line counts each customer once "
        "across channels, so it is less than the sum of the channel lines.",
        filters_text=filters.describe(),
        query=kpi_metrics.active_total_expr(filters, grain=grain),
    )

mix = compute(kpi_metrics.channel_mix, filters)
chart(
    charts.channel_mix_figure(mix),
    mix,
    name="channel mix",
    definition="Each channel's share of net revenue and of touches (events other than purchases, refunds "
    "and survey responses). A channel with many touches but little revenue assists rather than closes.",
    filters_text=filters.describe(),
    query=kpi_metrics.channel_mix_expr(filters),
)
