"""Customer satisfaction: CSAT and NPS trends, score mix, and CSAT joined to retention, churn and value."""

import streamlit as st

from data_access.cached import compute, settings
from metrics import retention as ret
from metrics import satisfaction as sat
from views import satisfaction_charts as charts
from views.render import chart
from views.retention_charts import retention_curves_figure
from views.retention_options import period_option, threshold_option
from views.sidebar import page_filters

filters = page_filters()
min_sample, currency = settings().min_sample, settings().currency
about = filters.describe()

st.title("Customer satisfaction")
if not compute(sat.has_survey_data):
    st.info(
        "This store has no survey data: no CSAT or NPS answers were loaded (for example, it holds only a "
        "transactions export). CSAT and NPS need survey_response events with csat_score (1–5) or "
        "nps_score (0–10). Retention, lifecycle and the other pages work without them.",
        icon=":material/sentiment_neutral:",
    )
    st.stop()

st.caption(f"{about} · CSAT = share of 4–5 ratings on a 1–5 scale · NPS = % 9–10 minus % 0–6")
period = period_option(key="csat_period", default="month")
words = {"period": period, "min_sample": min_sample, "currency": currency}
trend = compute(sat.csat_trend, filters, period=period, min_sample=min_sample)
if trend.is_empty():
    st.info(
        "No survey answers in this date range with these filters. Widen the date range or clear a filter.",
        icon=":material/info:",
    )
    st.stop()

chart(
    charts.csat_trend_figure(trend, period=period, min_sample=min_sample),
    trend,
    name="csat trend",
    definition=sat.DEFINITIONS["csat"].format(**words),
    filters_text=about,
    query=sat.csat_counts_expr(filters, period=period),
)
if note := charts.hidden_note(trend, min_sample=min_sample):
    st.warning(note, icon=":material/visibility_off:")

left, right = st.columns(2)
with left:
    nps = compute(sat.nps_trend, filters, period=period, min_sample=min_sample)
    chart(
        charts.nps_trend_figure(nps, period=period),
        nps,
        name="nps trend",
        definition=sat.DEFINITIONS["nps"].format(**words),
        filters_text=about,
    )
with right:
    distribution = compute(sat.score_distribution, filters)
    chart(
        charts.score_distribution_figure(distribution),
        distribution,
        name="csat score distribution",
        definition=sat.DEFINITIONS["scores"],
        filters_text=about,
    )

st.subheader("Satisfaction, retention and value")
st.caption("A customer's CSAT band is the band of their latest answer: 1-2 (poor), 3, 4-5 (good).")

curves = ret.average_curves(compute(sat.band_retention, filters, period=period), min_sample=min_sample)
if curves.is_empty():
    st.info(
        "No survey respondent made a first purchase in these cohorts. Widen the date range.",
        icon=":material/info:",
    )
else:
    difference = sat.band_difference(curves)
    chart(
        retention_curves_figure(
            curves, period=period, title="Repeat purchase by CSAT band", colors=charts.BAND_COLORS
        ),
        difference,
        name="retention by csat band",
        definition=sat.DEFINITIONS["band_retention"].format(**words),
        filters_text=about,
    )
    headline = sat.HEADLINE_INDEX[period]
    sentence = charts.band_difference_sentence(
        difference, period=period, index=headline, min_sample=min_sample
    )
    st.markdown(sentence)

threshold = threshold_option(key="csat_inactive")
churn = compute(sat.churn_by_contact, filters, threshold_days=threshold)
if churn.is_empty():
    st.info(
        f"Nobody was active in the date range at least {threshold} days before the last day with data. "
        "Move the start of the date range back or choose a shorter inactivity threshold.",
        icon=":material/info:",
    )
else:
    chart(
        charts.churn_comparison_figure(churn, threshold_days=threshold, min_sample=min_sample),
        churn,
        name="churn after support contact",
        definition=sat.DEFINITIONS["churn"].format(days=threshold),
        filters_text=about,
    )
    for line in charts.churn_difference_sentences(sat.churn_differences(churn, min_sample=min_sample)):
        st.markdown(f"- {line}")

value = compute(sat.value_by_band, filters)
if not value.is_empty():
    chart(
        charts.value_by_band_figure(value, currency=currency, min_sample=min_sample),
        value,
        name="cltv by csat band",
        definition=sat.DEFINITIONS["value"].format(**words),
        filters_text=about,
    )
