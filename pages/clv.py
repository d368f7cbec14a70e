"""Customer value: predictive and historical CLTV, payback, omnichannel uplift and the models' holdout check."""

import streamlit as st

from data_access.cached import compute, compute_shared, settings
from metrics import clv, uplift
from metrics.catalog import catalog
from views import clv_charts as charts
from views import clv_widgets as widgets
from views.render import chart, data_table, table
from views.sidebar import page_filters

filters = page_filters()
currency, min_sample = settings().currency, settings().min_sample

st.title("Customer value")
options = widgets.value_options(filters, compute(catalog))
as_of, horizon = options["as_of"], options["horizon_months"]
scope = f"{filters.describe()}; CLV as of {as_of}"
st.caption(f"As of **{as_of}**: the end of the date range unless you pick a day. CLV uses each customer's whole "
           "purchase history up to that day (the start of the date range is not used); purchases count in the "
           f"selected channels, for customers in the selected regions and segments. Amounts in {currency}.")

scored = compute_shared(clv.scored_customers, filters, with_views=True, **options)
fit, scores, views = scored.fit, scored.scores, scored.views
if scores is None:
    st.warning(f"No predictive CLTV for this selection. {fit.problem}", icon=":material/warning:")
    st.stop()
if not (fit.bgnbd.converged and fit.gamma_gamma.converged):
    st.warning("A model fit did not converge: predictions are uncertain. See Model check.", icon=":material/warning:")
widgets.value_cards(views.headline, currency=currency)
predicted_definition = (
    f"Predicted CLTV = expected purchase days in each of the next {horizon} months (BG/NBD on repeat purchase days) "
    f"× expected spend per purchase day (Gamma-Gamma), discounted {options['monthly_discount']:.1%} a month; "
    "gross purchases, refunds are not modelled. P(alive) = probability the customer has not lapsed.")

predictive, historical, omnichannel, check = widgets.value_tabs()
if predictive.open:
    with predictive:
        tiers, bins = views.tiers, views.bins
        chart(charts.clv_distribution_figure(bins, tiers, currency=currency, horizon_months=horizon), bins,
              name="predicted cltv distribution", filters_text=scope,
              definition=f"{predicted_definition} Bars: customers per {currency} range, up to the 99th "
              "percentile; the last bar holds everyone above it.")
        chart(charts.tier_share_figure(tiers), tiers, name="cltv tiers", filters_text=scope,
              definition="Customers ranked by predicted CLTV: the top 10%, the next 40% and the rest, with "
              "their share of customers and of the total predicted value.")
        sample = views.sample
        chart(charts.alive_scatter_figure(sample, currency=currency, customers=len(scores)), sample,
              name="p alive vs predicted cltv", filters_text=scope,
              definition="Each dot is a customer. Top left: valuable customers at risk of lapsing, worth a "
              "win-back; bottom right: likely active but buying little. One-time buyers sit at P(alive) = 1: "
              "BG/NBD lets a customer drop out only after a repeat purchase, so their risk shows as low value.")
        st.subheader("Top customers")
        top = views.top.head(widgets.top_size_option())
        data_table(top, name="top customers by predicted cltv", column_config=widgets.customer_columns(currency))
        st.caption(f"{predicted_definition} Recency and age T in weeks since the first purchase.")
        st.subheader("By acquisition channel, region and segment")
        by = widgets.dimension_option()
        groups = clv.by_dimension(scores, by=by)
        chart(charts.dimension_figure(groups, currency=currency, label=clv.DIMENSIONS[by][1], horizon_months=horizon),
              groups, name=f"cltv by {by}", filters_text=scope,
              definition="Mean historical CLTV (net revenue to date) and mean predicted CLTV per customer; whiskers "
              "are 95% intervals of the mean. The data adds totals, shares of predicted value and mean P(alive).")

if historical.open:
    with historical:
        breakdown = widgets.breakdown_option()
        curves = compute(clv.historical_curves, filters, as_of=as_of, breakdown=breakdown, min_customers=min_sample)
        curve_definition = (
            "Cumulative net revenue (purchases minus refunds) per acquired customer, by whole months (30.4 days) "
            "since acquisition (the first touch on any channel). The point at month N averages the customers "
            f"acquired at least N months before {as_of}; points with fewer than {min_sample} customers are left out.")
        if curves.is_empty():
            st.info("No customer was acquired long enough before the as-of date for a full month.",
                    icon=":material/info:")
        else:
            chart(charts.cumulative_revenue_figure(
                curves, currency=currency, sequential=breakdown == "cohort",
                title=f"Historical CLTV by {clv.CURVE_BREAKDOWNS[breakdown].lower()}"), curves,
                name=f"historical cltv by {breakdown}", definition=curve_definition, filters_text=scope)
        st.subheader("Payback by acquisition channel")
        by_channel = curves if breakdown == "acquisition-channel" else compute(
            clv.historical_curves, filters, as_of=as_of, breakdown="acquisition-channel", min_customers=min_sample)
        if not by_channel.is_empty():
            costs = widgets.acquisition_costs(by_channel, currency=currency)
            payback = clv.payback(by_channel, costs=costs)
            chart(charts.cumulative_revenue_figure(by_channel, currency=currency, costs=dict(costs),
                                                   title="Payback: revenue per customer against acquisition cost"),
                  payback, name="payback by acquisition channel", filters_text=scope,
                  definition=f"{curve_definition} Dashed lines: the acquisition cost per customer of each channel; "
                  "a star marks the month its customers have paid it back in revenue.")
            for line in charts.payback_sentences(payback, currency=currency):
                st.markdown(f"- {line}")

if omnichannel.open:
    with omnichannel:
        comparison = uplift.compare(scores, as_of=as_of, min_customers=min_sample)
        st.info(uplift.OBSERVATIONAL_NOTE, icon=":material/visibility:")
        chart(charts.uplift_figure(comparison, currency=currency), comparison, name="omnichannel uplift",
              filters_text=scope,
              definition="Customers with a purchase up to the as-of date, by the number of selected channels with "
              "any of their events (support counts, as in the Overview's omnichannel share). Historical and "
              f"predicted CLTV per customer ({currency}); repeat rate: % with a second purchase day; retention: % "
              f"buying in the last {uplift.RETENTION_DAYS} days among those first buying earlier; CSAT: % of 4-5 "
              f"answers. Whiskers: 95% intervals with the customer as the unit; groups under {min_sample} "
              "customers get no figure.")
        for line in charts.uplift_sentences(comparison, currency=currency):
            st.markdown(f"- {line}")

if check.open:
    with check:
        table(fit.diagnostics())
        st.caption(f"Maximum-likelihood fits on {fit.customers:,} customers, {fit.repeat_buyers:,} of them repeat "
                   "buyers; time in weeks. Gamma-Gamma assumes spend does not depend on purchase frequency: their "
                   f"correlation among repeat buyers is {fit.spend_frequency_correlation or 0:+.2f}.")
        weeks = widgets.holdout_option()
        holdout = compute(clv.holdout, filters, as_of=as_of, weeks=weeks)
        if holdout.problem:
            st.warning(holdout.problem, icon=":material/warning:")
        else:
            chart(charts.holdout_figure(holdout.table, weeks=weeks), holdout.table, name="holdout check",
                  filters_text=scope,
                  definition=f"BG/NBD fitted on the purchases up to {holdout.calibration_end}; customers who had "
                  "bought by then, grouped by their repeat purchase days until then. Bars: purchase days per customer "
                  f"after {holdout.calibration_end} up to {as_of}, actual and as the model expected.")
            st.markdown(charts.holdout_sentence(holdout.table, weeks=weeks))
