"""Data: what the store holds, where it came from, what was rejected and whether the contract holds."""

import streamlit as st

from data_access.cached import compute, settings
from metrics import data_health
from views.render import data_table
from views.sidebar import page_filters

page_filters()
st.title("Data")
st.caption(f"Store: `{settings().store_path}`. Every loaded row is either in the unified tables or in "
           "the quarantine with its reason; the counts of each load reconcile exactly.")

recorded = compute(data_health.recorded_contract_check)
if recorded is None or st.session_state.get("check_contract_now"):
    problems = compute(data_health.contract_problems, channels=settings().channels)
    checked = "Checked just now on the live store."
else:
    checked_at, problems = recorded
    checked = f"Checked after the last load or build, {checked_at:%Y-%m-%d %H:%M} UTC."
if problems:
    st.error("The store breaks the data contract:\n\n" + "\n".join(f"- {p}" for p in problems),
             icon=":material/rule:")
else:
    st.success("The store honours the data contract: unique keys, no empty required values, known "
               "channels and event types, CSAT 1–5 and NPS 0–10, every event's customer exists.",
               icon=":material/verified:")
st.caption(checked)
if recorded is not None:
    st.button("Check again now", key="check_contract_now", icon=":material/rule:",
              help="Scans every table again (about a second per million events).")

st.subheader("Tables")
data_table(compute(data_health.table_sizes), name="tables",
           column_config={"rows": st.column_config.NumberColumn("rows", format="localized")})

st.subheader("Loads")
loads = compute(data_health.load_history)
if loads.is_empty():
    st.caption("No files were loaded into this store with `journeylens load` or `load-transactions` "
               "(a demo store is generated, not loaded).")
else:
    data_table(loads, name="loads")

st.subheader("Quarantine")
reasons = compute(data_health.quarantine_reasons)
if reasons.is_empty():
    st.caption("No rejected rows.")
else:
    st.caption(f"{int(reasons['rows'].sum()):,} rejected rows. Fix them in the source file and load it "
               "again: rows already loaded are recognised and not added twice.")
    data_table(reasons, name="quarantine reasons")
    with st.expander("Latest rejected rows with their raw input", icon=":material/table_rows:"):
        data_table(compute(data_health.quarantine_rows), name="quarantined rows")
