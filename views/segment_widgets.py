"""Segment widgets: the saved-segment global filter, the rule builder, saving, exports and the comparison."""

from __future__ import annotations

import json
import re
from datetime import date

import plotly.graph_objects as go
import polars as pl
import streamlit as st

from data_access import cached
from data_access.segment_store import SavedSegment, SegmentError, SegmentStore
from metrics.catalog import Catalog
from metrics.clv_models import DEFAULT_HORIZON_MONTHS
from metrics.segment_comparison import ALL_CUSTOMERS
from metrics.segments import EMPTY_RULE, EVERYONE, FIELDS, canonical
from views.charts import base_layout
from views.formatting import format_value
from views.render import _csv_bytes, _parquet_bytes, _slug  # the same encoders as every chart's downloads
from views.segment_charts import SEGMENT_TONES
from views.theme import channel_color

MAX_ROWS = 8
_NONE = "—"
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|~:<>$])")


def _literal(text: str) -> str:
    """A user's text (a segment's name) for st.markdown: shown as typed, never as formatting."""
    return _MARKDOWN.sub(r"\\\1", text)


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


# --- the rule builder: condition rows at the top level and in sub-groups, kept in session state -----
#
# Widget keys never depend on drawing order: top-level rows are ``cond_<row>_<part>`` and the rows of
# a group are ``rule_g<group>_<row>_<part>``, where a group keeps its number until it is removed.

MAX_GROUPS = 3
TOP = "cond"
# Kept while the widgets are not drawn, so the rule survives a visit to the page's Compare tab.
KEEP = "page"
_MATCH = {"all": "and", "any": "or"}


def _key(scope: str, i: int, part: str) -> str:
    return f"{scope}_{i}_{part}"


def _group_scope(group: int) -> str:
    return f"rule_g{group}"


def _op_key(scope: str) -> str:
    return "rule_op" if scope == TOP else f"{scope}_op"


def _rows_key(scope: str) -> str:
    return "rule_rows" if scope == TOP else f"{scope}_rows"


def _forget(prefixes: tuple[str, ...]) -> None:
    for key in [key for key in st.session_state if str(key).startswith(prefixes)]:
        del st.session_state[key]


def _fits(rule: dict) -> bool:
    groups = [node for node in rule["rules"] if "rules" in node]
    return (len(rule["rules"]) - len(groups) <= MAX_ROWS and len(groups) <= MAX_GROUPS
            and all(len(group["rules"]) <= MAX_ROWS and not any("rules" in node for node in group["rules"])
                    for group in groups))


def _load_rows(scope: str, op: str, conditions: list[dict]) -> None:
    st.session_state[_op_key(scope)] = "any" if op == "or" else "all"
    st.session_state[_rows_key(scope)] = max(len(conditions), 1)
    for i, node in enumerate(conditions):
        kind, value = FIELDS[node["field"]].kind, node["value"]
        st.session_state[_key(scope, i, "field")] = node["field"]
        st.session_state[_key(scope, i, "op")] = node["operator"]
        pair = value if isinstance(value, list) else [value, value]
        if kind in ("category", "choice", "channels"):
            st.session_state[_key(scope, i, "list")] = value
        elif kind == "flag":
            st.session_state[_key(scope, i, "flag")] = value
        elif kind == "within":
            st.session_state[_key(scope, i, "days")] = value
        elif kind == "number":
            st.session_state[_key(scope, i, "num")] = float(pair[0])
            st.session_state[_key(scope, i, "num2")] = float(pair[-1])
        else:
            st.session_state[_key(scope, i, "date")] = date.fromisoformat(pair[0])
            st.session_state[_key(scope, i, "date2")] = date.fromisoformat(pair[-1])


def load_rule(rule: dict) -> bool:
    """Put a saved rule into the widgets; False when it has groups within groups or more rows or
    groups than the builder shows. The top level's conditions come first, then its groups."""
    if not _fits(rule):
        return False
    _forget((f"{TOP}_", "rule_"))
    groups = [node for node in rule["rules"] if "rules" in node]
    _load_rows(TOP, rule["op"], [node for node in rule["rules"] if "rules" not in node])
    st.session_state["rule_groups"] = list(range(len(groups)))
    for number, group in enumerate(groups):
        _load_rows(_group_scope(number), group["op"], group["rules"])
    return True


def _options(name: str, catalog: Catalog) -> tuple[str, ...]:
    spec = FIELDS[name]
    return spec.choices or {"acquisition_channel": catalog.channels, "channel": catalog.channels,
                            "region": catalog.regions, "segment": catalog.segments}[name]


def _value(scope: str, i: int, name: str, operator: str, catalog: Catalog) -> object:
    kind = FIELDS[name].kind
    key = lambda part: _key(scope, i, part)  # noqa: E731
    if kind in ("category", "choice", "channels"):
        chosen = st.multiselect("Values", _options(name, catalog), key=key("list"), label_visibility="collapsed",
                                placeholder="Choose values", persist_state=KEEP)
        return chosen or None
    if kind == "flag":
        st.session_state.setdefault(key("flag"), True)
        return st.toggle("Yes", key=key("flag"), persist_state=KEEP)
    # Defaults go into session state (not value=) so a loaded segment's values never clash with them.
    if kind == "within":
        st.session_state.setdefault(key("days"), 30)
        number, unit = st.columns((2, 1), vertical_alignment="center")
        unit.markdown("days")
        return number.number_input("Days", min_value=1, step=1, key=key("days"), label_visibility="collapsed",
                                   persist_state=KEEP)
    first, second = st.columns(2) if operator == "between" else (st.container(), None)
    if kind == "number":
        st.session_state.setdefault(key("num"), 1.0)
        st.session_state.setdefault(key("num2"), st.session_state[key("num")])
        low = first.number_input("Value", step=1.0, key=key("num"), label_visibility="collapsed", persist_state=KEEP)
        high = second.number_input("and", step=1.0, key=key("num2"), label_visibility="collapsed",
                                   persist_state=KEEP) if second else None
        return [low, high] if second else low
    st.session_state.setdefault(key("date"), catalog.first_day)
    st.session_state.setdefault(key("date2"), catalog.last_day)
    bounds = {"min_value": catalog.first_day, "max_value": catalog.last_day}
    low = first.date_input("Date", key=key("date"), label_visibility="collapsed", persist_state=KEEP, **bounds)
    high = second.date_input("and", key=key("date2"), label_visibility="collapsed", persist_state=KEEP,
                             **bounds) if second else None
    return [low.isoformat(), high.isoformat()] if second else low.isoformat()


def _resize(scope: str, change: int) -> None:
    rows = st.session_state[_rows_key(scope)] = st.session_state[_rows_key(scope)] + change
    if change < 0:  # a row added later starts empty, not with the removed row's kept values
        _forget((f"{scope}_{rows}_",))


def _add_group() -> None:
    groups = st.session_state["rule_groups"]
    groups.append(max(groups, default=-1) + 1)
    st.session_state[_rows_key(_group_scope(groups[-1]))] = 1


def _remove_group(group: int) -> None:
    st.session_state["rule_groups"].remove(group)
    _forget((f"{_group_scope(group)}_",))


def _rows(scope: str, catalog: Catalog, *, noun: str) -> dict:
    """The AND/OR choice and the condition rows of one level; returns its group of filled-in rows.

    Rows without a field or a value are left out, so a half-built row never empties the result.
    """
    rows = st.session_state.setdefault(_rows_key(scope), 1 if scope != TOP else 2)
    st.session_state.setdefault(_op_key(scope), "all")
    st.radio(f"{noun} who match", ("all", "any"), key=_op_key(scope), horizontal=True, persist_state=KEEP,
             format_func=lambda op: {"all": "all conditions (AND)", "any": "any condition (OR)"}[op])
    conditions = []
    for i in range(rows):
        field_col, op_col, value_col = st.columns((3, 2, 5), vertical_alignment="center")
        name = field_col.selectbox("Field", (_NONE, *FIELDS), key=_key(scope, i, "field"),
                                   label_visibility="collapsed", persist_state=KEEP,
                                   format_func=lambda n: "Choose a field" if n == _NONE else FIELDS[n].label)
        if name == _NONE:
            continue
        operators = FIELDS[name].operators
        if st.session_state.get(_key(scope, i, "op")) not in operators:
            st.session_state[_key(scope, i, "op")] = operators[0]
        operator = op_col.selectbox("Operator", operators, key=_key(scope, i, "op"), label_visibility="collapsed",
                                    persist_state=KEEP)
        with value_col:
            value = _value(scope, i, name, operator, catalog)
        if value is not None:
            conditions.append({"field": name, "operator": operator, "value": value})
    add, remove, _ = st.columns((1, 1, 2))
    add.button("Add condition", icon=":material/add:", disabled=rows >= MAX_ROWS, key=f"{scope}_add",
               on_click=_resize, args=(scope, 1))
    remove.button("Remove last", icon=":material/remove:", disabled=rows <= 1, key=f"{scope}_remove",
                  on_click=_resize, args=(scope, -1))
    return {"op": _MATCH[st.session_state[_op_key(scope)]], "rules": conditions}


def rule_builder(catalog: Catalog) -> dict:
    """Condition rows under one AND/OR choice, plus sub-groups with their own AND/OR over their own
    rows (one level deep); returns the rule tree. Groups without a filled-in row are left out."""
    top = _rows(TOP, catalog, noun="Customers")
    for group in st.session_state.setdefault("rule_groups", []):
        with st.container(border=True):
            top["rules"].append(_rows(_group_scope(group), catalog, noun="Group: customers"))
            st.button("Remove group", icon=":material/delete:", key=f"{_group_scope(group)}_drop",
                      on_click=_remove_group, args=(group,))
    st.button("Add group", icon=":material/add_box:", disabled=len(st.session_state["rule_groups"]) >= MAX_GROUPS,
              key="rule_add_group", on_click=_add_group,
              help="A group is matched as one condition of the rows above, with its own AND/OR.")
    top["rules"] = [node for node in top["rules"] if "rules" not in node or node["rules"]]
    return top if top["rules"] else dict(EMPTY_RULE)


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
        st.session_state["segment_notice"] = (f"“{saved.name}” has groups within groups, or more rows than the "
                                              "builder shows; it still works as a filter and from the command line.")


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


# --- comparing two segments -------------------------------------------------------------------------


def compare_pickers(saved: list[SavedSegment]) -> tuple[tuple[str, str], tuple[str, str]] | None:
    """Segment A and B (saved segments or all customers) as (label, rule) pairs; None, with a
    notice, when both sides are the same or a saved rule no longer validates."""
    rules = {ALL_CUSTOMERS: EVERYONE} | {segment.name: segment.definition for segment in saved
                                        if segment.name != ALL_CUSTOMERS}
    names = list(rules)
    first, second = st.columns(2)
    a = first.selectbox("Segment A", names, index=min(1, len(names) - 1), key="compare_a", bind="query-params")
    b = second.selectbox("Segment B", names, index=0, key="compare_b", bind="query-params")
    if a == b:
        st.info("Pick two different segments to compare. Save segments in the Build tab first.",
                icon=":material/info:")
        return None
    try:
        return (a, canonical(rules[a])), (b, canonical(rules[b]))
    except ValueError as error:
        st.error(f"A saved segment cannot run: {error}", icon=":material/error:")
        return None


# (label, column, unit, scale to the unit, help)
_CARDS = (
    ("Members", "customers", "count", 1.0, "Customers in the segment."),
    ("Net revenue", "net_revenue", "currency", 1.0, "Lifetime purchases minus refunds of the members."),
    ("Avg net revenue", "avg_net_revenue", "currency", 1.0, "Net revenue per member."),
    ("Avg predicted CLTV", "avg_predicted_clv", "currency", 1.0,
     f"Mean predicted CLTV over the next {DEFAULT_HORIZON_MONTHS} months of the members with a score (buyers), "
     "from the models fitted by `journeylens build`; – when they could not be fitted."),
    ("Omnichannel share", "omnichannel_share", "percent", 100.0, "Members who used two or more channels."),
)


def _shown(row: dict, key: str, unit: str, scale: float, currency: str) -> str:
    return format_value(row[key] * scale if row[key] is not None else None, unit, currency=currency)


def summary_cards(summary: pl.DataFrame, *, currency: str) -> None:
    """The live result (:func:`metrics.segments.summary`): each card shows all customers' value beside it."""
    segment, everyone = summary.row(0, named=True), summary.row(1, named=True)
    columns = st.columns(len(_CARDS) + 1)
    columns[1].metric("Share of customers", format_value(100 * (segment["share_of_customers"] or 0), "percent"))
    for column, (label, key, unit, scale, help_text) in zip((columns[0], *columns[2:]), _CARDS, strict=True):
        # The delta is the all-customer value, for comparison, not a change: no colour, no arrow.
        column.metric(label, _shown(segment, key, unit, scale, currency),
                      f"all: {_shown(everyone, key, unit, scale, currency)}", delta_color="off", delta_arrow="off",
                      help=help_text)


def comparison_cards(kpis: pl.DataFrame, *, currency: str) -> None:
    """One bordered column of cards per segment (rows of :func:`metrics.segment_comparison.kpis`),
    marked with the segment's colour in the charts below."""
    rows = kpis.iter_rows(named=True)
    for column, row, tone in zip(st.columns(len(kpis)), rows, SEGMENT_TONES, strict=False):
        with column.container(border=True):
            st.markdown(f":{tone}[●] **{_literal(row['group'])}**")
            for label, key, unit, scale, help_text in _CARDS:
                st.metric(label, _shown(row, key, unit, scale, currency), help=help_text)
