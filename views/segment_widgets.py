"""Segment widgets: the saved-segment global filter, the condition-row rule builder, the comparison chart."""

from __future__ import annotations

import json
from datetime import date

import plotly.graph_objects as go
import polars as pl
import streamlit as st

from data_access import cached
from data_access.segment_store import SavedSegment, SegmentError, SegmentStore
from metrics.catalog import Catalog
from metrics.segments import EMPTY_RULE, FIELDS
from views.charts import base_layout
from views.render import _csv_bytes, _parquet_bytes, _slug  # the same encoders as every chart's downloads
from views.theme import channel_color

MAX_ROWS = 8
_NONE = "—"


def segment_store() -> SegmentStore:
    return SegmentStore.beside(cached.settings().store_path)


def saved_segments() -> list[SavedSegment]:
    """The saved segments, or none (with a notice) when the sidecar cannot be read."""
    try:
        return segment_store().list()
    except SegmentError as error:
        st.warning(str(error), icon=":material/warning:")
        return []


def saved_segment_filter() -> SavedSegment | None:
    """The sidebar's "Saved segment" selectbox, bound to the URL; unknown names fall back to none."""
    segments = {segment.name: segment for segment in saved_segments()}
    asked = st.query_params.get("saved_segment")
    if asked and asked not in segments:
        st.info(f"Saved segment “{asked}” no longer exists; showing all customers.", icon=":material/info:")
    name = st.selectbox("Saved segment", list(segments), index=None, key="saved_segment", bind="query-params",
                        placeholder="All customers",
                        help="Restrict every page to the members of a segment saved on the Segments page.")
    return segments.get(name) if name else None


# --- the rule builder: one AND/OR group of condition rows, kept in session state ----------------------


def _key(i: int, part: str) -> str:
    return f"cond_{i}_{part}"


def load_rule(rule: dict) -> bool:
    """Put a saved rule into the widgets; False when it is nested deeper than the rows can show."""
    if any("rules" in node for node in rule["rules"]) or len(rule["rules"]) > MAX_ROWS:
        return False
    for i in range(MAX_ROWS):
        for part in ("field", "op", "list", "num", "num2", "date", "date2", "flag"):
            st.session_state.pop(_key(i, part), None)
    st.session_state["rule_op"] = "any" if rule["op"] == "or" else "all"
    st.session_state["rule_rows"] = max(len(rule["rules"]), 1)
    for i, node in enumerate(rule["rules"]):
        kind, value = FIELDS[node["field"]].kind, node["value"]
        st.session_state[_key(i, "field")] = node["field"]
        st.session_state[_key(i, "op")] = node["operator"]
        pair = value if isinstance(value, list) else [value, value]
        if kind in ("category", "choice", "channels"):
            st.session_state[_key(i, "list")] = value
        elif kind == "flag":
            st.session_state[_key(i, "flag")] = value
        elif kind == "number":
            st.session_state[_key(i, "num")], st.session_state[_key(i, "num2")] = float(pair[0]), float(pair[-1])
        else:
            st.session_state[_key(i, "date")] = date.fromisoformat(pair[0])
            st.session_state[_key(i, "date2")] = date.fromisoformat(pair[-1])
    return True


def _options(name: str, catalog: Catalog) -> tuple[str, ...]:
    spec = FIELDS[name]
    return spec.choices or {"acquisition_channel": catalog.channels, "channel": catalog.channels,
                            "region": catalog.regions, "segment": catalog.segments}[name]


def _value(i: int, name: str, operator: str, catalog: Catalog) -> object:
    kind = FIELDS[name].kind
    if kind in ("category", "choice", "channels"):
        chosen = st.multiselect("Values", _options(name, catalog), key=_key(i, "list"), label_visibility="collapsed",
                                placeholder="Choose values")
        return chosen or None
    if kind == "flag":
        st.session_state.setdefault(_key(i, "flag"), True)
        return st.toggle("Yes", key=_key(i, "flag"))
    first, second = st.columns(2) if operator == "between" else (st.container(), None)
    # Defaults go into session state (not value=) so a loaded segment's values never clash with them.
    if kind == "number":
        st.session_state.setdefault(_key(i, "num"), 1.0)
        st.session_state.setdefault(_key(i, "num2"), st.session_state[_key(i, "num")])
        low = first.number_input("Value", step=1.0, key=_key(i, "num"), label_visibility="collapsed")
        high = second.number_input("and", step=1.0, key=_key(i, "num2"),
                                   label_visibility="collapsed") if second else None
        return [low, high] if second else low
    st.session_state.setdefault(_key(i, "date"), catalog.first_day)
    st.session_state.setdefault(_key(i, "date2"), catalog.last_day)
    bounds = {"min_value": catalog.first_day, "max_value": catalog.last_day}
    low = first.date_input("Date", key=_key(i, "date"), label_visibility="collapsed", **bounds)
    high = second.date_input("and", key=_key(i, "date2"), label_visibility="collapsed", **bounds) if second else None
    return [low.isoformat(), high.isoformat()] if second else low.isoformat()


def rule_builder(catalog: Catalog) -> dict:
    """Condition rows (field, operator, value) under one AND/OR choice; returns the rule tree.

    Rows without a field or a value are left out, so a half-built row never empties the result.
    """
    rows = st.session_state.setdefault("rule_rows", 2)
    st.session_state.setdefault("rule_op", "all")
    st.radio("Customers who match", ("all", "any"), key="rule_op", horizontal=True,
             format_func=lambda op: {"all": "all conditions (AND)", "any": "any condition (OR)"}[op])
    conditions = []
    for i in range(rows):
        field_col, op_col, value_col = st.columns((3, 2, 5), vertical_alignment="center")
        name = field_col.selectbox("Field", (_NONE, *FIELDS), key=_key(i, "field"), label_visibility="collapsed",
                                   format_func=lambda n: "Choose a field" if n == _NONE else FIELDS[n].label)
        if name == _NONE:
            continue
        operators = FIELDS[name].operators
        if st.session_state.get(_key(i, "op")) not in operators:
            st.session_state[_key(i, "op")] = operators[0]
        operator = op_col.selectbox("Operator", operators, key=_key(i, "op"), label_visibility="collapsed")
        with value_col:
            value = _value(i, name, operator, catalog)
        if value is not None:
            conditions.append({"field": name, "operator": operator, "value": value})
    add, remove, _ = st.columns((1, 1, 2))
    if add.button("Add condition", icon=":material/add:", disabled=rows >= MAX_ROWS):
        st.session_state["rule_rows"] = rows + 1
        st.rerun()
    if remove.button("Remove last", icon=":material/remove:", disabled=rows <= 1):
        st.session_state["rule_rows"] = rows - 1
        st.rerun()
    if not conditions:
        return dict(EMPTY_RULE)
    return {"op": "or" if st.session_state.get("rule_op") == "any" else "and", "rules": conditions}


def channel_usage_figure(mix: pl.DataFrame) -> go.Figure:
    """Share of the segment's customers vs all customers who used each channel (in %)."""
    fig = go.Figure()
    channels = mix.filter(pl.col("group") == "all customers").sort("share")["channel"].to_list()
    for group, opacity in (("all customers", 0.35), ("segment", 1.0)):
        rows = mix.filter(pl.col("group") == group).join(pl.DataFrame({"channel": channels}), on="channel", how="right")
        shares = [100 * (v or 0) for v in rows["share"].to_list()]
        fig.add_trace(go.Bar(
            y=rows["channel"].to_list(), x=shares, orientation="h", name=group, opacity=opacity,
            marker_color=[channel_color(c, position=i) for i, c in enumerate(rows["channel"].to_list())],
            text=[f"{v:.0f}%" for v in shares], textposition="outside", cliponaxis=False,
            hovertemplate=f"%{{y}}: %{{x:.1f}}% of {group}<extra></extra>",
        ))
    fig = base_layout(fig, title="Channels used: segment (solid) vs all customers (faded)", y_title="",
                      height=110 + 44 * max(len(channels), 1))
    fig.update_layout(barmode="group", hovermode="closest", showlegend=False)
    fig.update_xaxes(ticksuffix="%", range=[0, 118], gridcolor="#f0f0f0")
    return fig


# --- saving: every change names the version it started from ------------------------------------------


def _done(message: str, *, editing: SavedSegment | None) -> None:
    st.session_state["segment_notice"] = message
    st.session_state["editing"] = editing and {"name": editing.name, "version": editing.version}
    st.rerun()  # the sidebar's list of saved segments was drawn before this change


def load_saved(name: str | None) -> None:
    """Callback of the "Edit a saved segment" picker: fill the rows from the saved rule."""
    saved = segment_store().get(name) if name else None
    if saved is None:
        st.session_state["editing"] = None
        return
    st.session_state["editing"] = {"name": saved.name, "version": saved.version}
    if not load_rule(json.loads(saved.definition)):
        st.session_state["segment_notice"] = (f"“{saved.name}” has nested groups the rows cannot show; "
                                              "it still works as a filter and from the command line.")


def save_controls(definition: str) -> None:
    """Save as new, update, rename and delete, refusing changes made over someone else's newer save."""
    store, editing = segment_store(), st.session_state.get("editing")
    new_col, edit_col = st.columns(2)
    with new_col.form("save_new", border=True):
        name = st.text_input("Name", placeholder="e.g. Lapsed store buyers", max_chars=80, key="segment_new_name")
        if st.form_submit_button("Save as new segment", icon=":material/save:"):
            try:
                saved = store.save(name, definition)
                _done(f"Saved “{saved.name}”.", editing=saved)
            except SegmentError as error:
                st.error(str(error))
    with edit_col.container(border=True):
        if not editing:
            st.caption("Pick a saved segment above to update, rename or delete it.")
            return
        st.markdown(f"Editing **{editing['name']}** (version {editing['version']})")
        new_name = st.text_input("New name", value=editing["name"], max_chars=80, key="rename_to")
        update, rename, delete = st.columns(3)
        try:
            if update.button("Update", icon=":material/save:"):
                saved = store.save(editing["name"], definition, expected_version=editing["version"])
                _done(f"Updated “{saved.name}” (version {saved.version}).", editing=saved)
            if rename.button("Rename", icon=":material/edit:"):
                saved = store.rename(editing["name"], new_name, expected_version=editing["version"])
                _done(f"Renamed to “{saved.name}”.", editing=saved)
            if delete.button("Delete", icon=":material/delete:", type="primary"):
                store.delete(editing["name"], expected_version=editing["version"])
                _done(f"Deleted “{editing['name']}”.", editing=None)
        except SegmentError as error:
            st.error(str(error), icon=":material/error:")


def members_downloads(members: pl.DataFrame, *, name: str) -> None:
    """CSV and Parquet of the member list, built on click."""
    slug = f"{_slug(name) or 'segment'}-members"
    csv_col, parquet_col, _ = st.columns((1, 1, 3))
    csv_col.download_button("CSV", data=lambda: _csv_bytes(members), file_name=f"{slug}.csv", mime="text/csv",
                            on_click="ignore", icon=":material/download:", disabled=members.is_empty())
    parquet_col.download_button("Parquet", data=lambda: _parquet_bytes(members), file_name=f"{slug}.parquet",
                                mime="application/vnd.apache.parquet", on_click="ignore",
                                icon=":material/download:", disabled=members.is_empty())
