"""Attribution: seven models of each channel's credit for the conversions, side by side."""

import streamlit as st

from data_access.cached import compute, settings
from metrics import attribution as am
from views import journey_charts as charts
from views.journey_options import VALUE_LABELS, attribution_options
from views.journey_panels import attribution_caption, model_assumptions
from views.render import chart, data_table
from views.sidebar import page_filters

filters = page_filters()
currency = settings().currency

st.title("Attribution")
st.caption(f"{filters.describe()} · converting journeys ending in the period (see the Journey map for the "
           "definition); the touches of each journey share its conversion and its revenue")

options = attribution_options()
value = options["value"]
attribution_caption(compute(am.totals, filters), currency=currency)
result = compute(am.attribution, filters, bootstrap_replicates=options["bootstrap_replicates"])
if result.is_empty():
    st.info("No converting journey with a touch in this period. Widen the date range or clear a filter.",
            icon=":material/info:")
    st.stop()

chart(
    charts.attribution_figure(result, value=value,
                              title=f"{VALUE_LABELS[value]} credited to each channel by model"),
    result,
    name="attribution",
    definition="Every model splits the same conversions and revenue among the channels of the converting "
    "journeys. Markov shares revenue like conversions; Shapley values revenue as its own game. Whiskers on "
    "Markov and Shapley: 95% bootstrap intervals from resampling journeys (conversions and share). The query "
    "shown is the heuristic models'; Markov and Shapley are solved on journeys counted per distinct path.",
    filters_text=filters.describe(),
    query=am.heuristic_expr(filters),
)

st.subheader("All models side by side")
unit = {"conversions": "credited conversions", "revenue": f"credited revenue ({currency})",
        "share": "% of all conversions"}[value]
st.caption(f"Rows are channels; per model the {unit} and the channel's share of all conversions.")
data_table(am.side_by_side(result, value=value), name=f"attribution {value}",
           column_config={**{m: st.column_config.NumberColumn(m, format="%.1f") for m in am.MODELS},
                          **{f"{m} %": st.column_config.NumberColumn("%", format="%.1f%%")
                             for m in am.MODELS}})

model_assumptions()

if options["bootstrap_replicates"]:
    with st.expander("Markov removal effects and the 95% intervals", icon=":material/functions:"):
        st.caption(f"{options['bootstrap_replicates']} resamples of the journeys (with replacement). The "
                   "removal effect is the share of conversions lost if journeys reaching the channel dropped "
                   "off there.")
        data_table(am.intervals(result), name="attribution intervals",
                   column_config={c: st.column_config.NumberColumn(c, format="%.3f")
                                  for c in ("conversions", "conversions_low", "conversions_high", "share",
                                            "share_low", "share_high", "removal_effect")})
