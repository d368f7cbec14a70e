"""The journey pages' own options: widgets bound to the URL, so every view is a shareable link."""

from __future__ import annotations

import streamlit as st

from data_access.schema import EVENT_TYPES, NON_TOUCH_EVENT_TYPES
from metrics import attribution as am
from metrics import flows
from metrics import journeys as jm

TOUCH_TYPES = tuple(t for t in EVENT_TYPES if t not in NON_TOUCH_EVENT_TYPES)
DIRECTIONS = {"forward": "Forward", "backward": "Backward"}
PATH_SORT_LABELS = {"journeys": "Journeys", "conversions": "Conversions",
                    "conversion_rate": "Conversion rate", "revenue": "Revenue"}
BASIS_LABELS = {"first": "First touch", "most_frequent": "Most frequent touch"}
CONVERT_BY_LABELS = {"conversion_channel": "Purchase channel", "first_channel": "First-touch channel"}
VALUE_LABELS = {"conversions": "Conversions", "revenue": "Revenue", "share": "Share"}
REPLICATES = (0, 100, 200, 500)
ANY = ""


def _segmented(label: str, labels: dict[str, str], *, key: str, default: str, help_text: str) -> str:
    return st.segmented_control(label, tuple(labels), default=default, required=True, format_func=labels.get,
                                key=key, bind="query-params", help=help_text)


def _start_label(start: str) -> str:
    if start == jm.JOURNEY_START:
        return "Journey start"
    kind, _, value = start.partition(":")
    return f"first {value} touch" if kind == "channel" else f"first {value.replace('_', ' ')}"


def collapse_option(*, key: str = "collapse", default: bool = False) -> bool:
    return st.toggle("Collapse repeats", value=default, key=key, bind="query-params",
                     help="Count a run of touches in one channel (web, web, web) as one step.")


def journey_map_options(channels: tuple[str, ...]) -> tuple[dict[str, object], dict[str, int]]:
    """Draw the option rows; return the view (which journeys, which steps: the keyword options every
    journey-map metric takes) and the layout (steps, max_nodes: the Sankey's own)."""
    first = st.columns([1.1, 1.4, 1.5, 1.3])
    with first[0]:
        direction = _segmented("Direction", DIRECTIONS, key="direction", default="forward",
                               help_text="Forward: the first N steps of each journey from its start (or "
                               "from the touch chosen in “Start at”). Backward: the last N steps before a "
                               "purchase.")
    with first[1]:
        steps = st.slider("Steps", jm.MIN_STEPS, jm.MAX_STEPS, jm.DEFAULT_STEPS, key="steps",
                          bind="query-params", help="How many steps the map shows.")
    starts = (jm.JOURNEY_START, *[jm.anchor("channel", c) for c in channels],
              *[jm.anchor("event", t) for t in TOUCH_TYPES])
    with first[2]:
        start = st.selectbox("Start at", starts, format_func=_start_label, key="start", bind="query-params",
                             disabled=direction == "backward",
                             help="Forward only: begin each journey at its first touch in this channel or of "
                             "this type (journeys without one are left out).")
    with first[3]:
        purchase_channel = st.selectbox("Purchase in", (ANY, *channels), key="buy_in", bind="query-params",
                                        format_func=lambda c: "Any channel or none" if c == ANY else c,
                                        help="Only journeys that ended in a purchase in this channel.")
    second = st.columns([1.2, 1.3, 3])
    with second[0]:
        collapse = collapse_option(default=True)
    with second[1]:
        max_nodes = st.slider("Channels per step", 2, 8, jm.DEFAULT_MAX_NODES, key="nodes",
                              bind="query-params",
                              help="Less frequent channels of a step are grouped into “other”.")
    view = {"direction": direction, "start": start if direction == "forward" else jm.JOURNEY_START,
            "purchase_channel": purchase_channel, "collapse": collapse}
    return view, {"steps": steps, "max_nodes": max_nodes}


def path_table_options() -> dict[str, object]:
    columns = st.columns([1.2, 1, 3])
    with columns[0]:
        sort_by = st.selectbox("Top paths by", tuple(PATH_SORT_LABELS), format_func=PATH_SORT_LABELS.get,
                               key="sort", bind="query-params")
    with columns[1]:
        top = st.selectbox("Paths", (10, 20, 50, 100), index=1, key="top", bind="query-params")
    return {"sort_by": sort_by, "top": top}


def path_picker(paths: list[str]) -> str | None:
    if not paths:
        return None
    return st.selectbox("Customers behind the path", paths, key="path", bind="query-params",
                        format_func=lambda p: p.replace(">", " → ") or "(no touch)")


def flow_options() -> dict[str, object]:
    columns = st.columns([1.2, 1.6, 3])
    with columns[0]:
        collapse = collapse_option(key="flow_collapse", default=True)
    with columns[1]:
        values = _segmented("Cells show", {"probability": "Row %", "count": "Counts"}, key="cells",
                            default="probability",
                            help_text="Row %: the chance of each next state from a row.")
    return {"collapse": collapse, "values": values}


def basis_option() -> str:
    return _segmented("Journey channel", BASIS_LABELS, key="basis", default="first",
                      help_text="Characterise each journey by the channel of its first touch or of its most "
                      "frequent touch (ties go to the channel touched last).")


def research_options(channels: tuple[str, ...]) -> dict[str, object]:
    columns = st.columns([1, 1, 1, 2.2])
    purchase = columns[0].selectbox("Purchases in", channels, index=_index(channels, "store"),
                                    key="research_in", bind="query-params")
    touch = columns[1].selectbox("Preceded by a touch in", channels, index=_index(channels, "web"),
                                 key="research_on", bind="query-params")
    days = columns[2].number_input("Within days", min_value=1, max_value=90, value=7, step=1,
                                   key="research_days", bind="query-params")
    types = columns[3].multiselect("Of type", TOUCH_TYPES, key="research_types", bind="query-params",
                                   placeholder="Any touch", format_func=lambda t: t.replace("_", " "))
    return {"purchase_channel": purchase, "touch_channel": touch, "within_days": int(days),
            "event_types": tuple(types)}


def _index(options: tuple[str, ...], wanted: str) -> int:
    return options.index(wanted) if wanted in options else 0


def convert_by_option() -> str:
    return _segmented("Time to convert by", CONVERT_BY_LABELS, key="convert_by", default="conversion_channel",
                      help_text="Group converting journeys by the purchase channel or the first-touch "
                      "channel.")


def attribution_options() -> dict[str, object]:
    columns = st.columns([2.4, 1.2, 2.4])
    with columns[0]:
        value = _segmented("Credit in", VALUE_LABELS, key="credit", default="conversions",
                           help_text="Credited conversions, credited revenue, or each channel's share of "
                           "them.")
    with columns[1]:
        replicates = st.selectbox("Resamples", REPLICATES, index=REPLICATES.index(am.DEFAULT_BOOTSTRAP),
                                  key="resamples", bind="query-params",
                                  help="95% intervals for Markov and Shapley from resampling journeys; "
                                  "0 skips them.")
    return {"value": value, "bootstrap_replicates": replicates}


BUCKETS = [label for label, _ in flows.TIME_BUCKETS]
