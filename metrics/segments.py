"""Segment rules: a small JSON tree of AND/OR groups of conditions over per-customer lifetime facts.

A rule is ``{"op": "and" | "or", "rules": [condition or group, ...]}`` where a condition is
``{"field": ..., "operator": ..., "value": ...}``. Fields come from :data:`FIELDS` only (the
allow-list) and every value becomes an Ibis literal, so nothing typed in the UI reaches SQL text.
Rules travel as canonical JSON strings (:func:`canonical`): hashable, so they can sit in the
frozen Filters and in cache keys.

Membership is over lifetime facts (``customer_facts``), not the sidebar's date range. "Days since
last purchase" counts from the store's last day with an event, not from today, so an old demo
store still has recent customers; customers who never bought have no value and match no
recency condition.

RFM segment, fixed thresholds checked in this order (R = days since last purchase, F = orders):
champions R ≤ 30 and F ≥ 4; loyal R ≤ 90 and F ≥ 3; new: first purchase ≤ 30 days ago;
at risk F ≥ 2 and R > 90; hibernating F ≥ 1 and R > 180; others: everyone else (including
customers who never bought). Fixed thresholds rather than quintiles keep a customer's label
stable when other customers change and are checkable by hand; monetary value is shown next to
the segment but not used to label it.

RFM score = R + F + M, each 1–5 by the fixed thresholds :data:`R_DAYS`, :data:`F_ORDERS` and
:data:`M_REVENUE` (a customer who never bought scores 1 + 1 + 1 = 3), for the same reasons.

The other conditions (:func:`definitions` states them for the page): an abandoned cart is an
add_to_cart with no purchase after it; "bought in store after browsing online" is a store
purchase whose conversion journey (DESIGN.md §3) has a web or app touch; CLTV tier and P(alive)
come from the scores the build stores (``customer_clv_scores``), and customers without a score
match no condition on them, "not in" included.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import ibis
import ibis.expr.types as ir
import polars as pl

from data_access.derived import derived
from data_access.derived_clv import CLV_SCORES
from metrics.clv_models import DEFAULT_HORIZON_MONTHS, DEFAULT_MONTHLY_DISCOUNT, TIERS
from metrics.engine import Engine

RFM_SEGMENTS = ("champions", "loyal", "new", "at risk", "hibernating", "others")
RFM_RULE = ("champions: last purchase ≤ 30 days ago and 4+ orders · loyal: ≤ 90 days and 3+ orders · "
            "new: first purchase ≤ 30 days ago · at risk: 2+ orders, last > 90 days ago · "
            "hibernating: 1+ order, last > 180 days ago · others: everyone else (incl. never bought). "
            "Days count back from the store's last day.")
# Score 5, 4, 3, 2 from the first threshold a customer meets; 1 below the last (or never bought).
R_DAYS = (30, 90, 180, 365)  # at most this many days since the last purchase
F_ORDERS = (10, 5, 3, 2)  # at least this many orders
M_REVENUE = (1000, 500, 250, 100)  # at least this much net revenue
CSAT_BANDS = {"1-2": (1, 2), "3": (3, 3), "4-5": (4, 5)}
# (band, upper bound, exclusive); the last band has none.
P_ALIVE_BANDS = (("below 30%", 0.3), ("30-70%", 0.7), ("70% or more", None))
ONLINE_CHANNELS = ("web", "app")


@dataclass(frozen=True)
class Field:
    label: str
    kind: str  # category | number | date | choice | flag | channels | within (days back from the last day)
    operators: tuple[str, ...]
    choices: tuple[str, ...] = ()
    column: str | None = None  # the facts column, when it is not the field's name
    scored: bool = False  # a model score: customers without one match no condition on it


_NUMBER_OPS = (">=", "<=", "=", "between")
_DATE_OPS = ("on or after", "on or before", "between")
FIELDS: dict[str, Field] = {
    "acquisition_channel": Field("Acquisition channel", "category", ("in", "not in")),
    "region": Field("Region", "category", ("in", "not in")),
    "segment": Field("Business segment", "category", ("in", "not in")),
    "channels_used": Field("Number of channels used", "number", _NUMBER_OPS),
    "orders": Field("Orders", "number", _NUMBER_OPS),
    "net_revenue": Field("Net revenue", "number", _NUMBER_OPS),
    "days_since_last_purchase": Field("Days since last purchase", "number", _NUMBER_OPS),
    "first_event_at": Field("First event", "date", _DATE_OPS),
    "last_event_at": Field("Last event", "date", _DATE_OPS),
    "latest_csat_band": Field("Latest CSAT", "choice", ("in", "not in"), tuple(CSAT_BANDS)),
    "contacted_support": Field("Contacted support", "flag", ("is",)),
    "channel": Field("Channel used", "channels", ("any of", "all of")),
    "rfm_segment": Field("RFM segment", "choice", ("in", "not in"), RFM_SEGMENTS),
    "rfm_score": Field("RFM score (3-15)", "number", _NUMBER_OPS),
    "abandoned_cart": Field("Abandoned a cart", "within", ("in the last",), column="days_since_abandoned_cart"),
    "store_after_online": Field("Bought in store after browsing online", "flag", ("is",)),
    "clv_tier": Field("CLTV tier", "choice", ("in", "not in"), tuple(name for name, _ in TIERS), scored=True),
    "p_alive_band": Field("P(alive)", "choice", ("in", "not in"), tuple(name for name, _ in P_ALIVE_BANDS),
                          scored=True),
}
# Facts a member export may include (besides customer_id).
EXPORT_COLUMNS = ("acquisition_channel", "region", "segment", "first_event_at", "last_event_at",
                  "last_purchase_at", "orders", "net_revenue", "channels_used", "support_contacts",
                  "latest_csat", "days_since_last_purchase", "rfm_segment", "r_score", "f_score", "m_score",
                  "rfm_score", "days_since_abandoned_cart", "predicted_clv", "clv_tier", "p_alive")
EMPTY_RULE = {"op": "and", "rules": []}


def _steps(bounds: tuple[int, ...], sign: str, money: Callable[[float], str] = str) -> str:
    return ", ".join(f"{5 - i} for {sign} {money(bound)}" for i, bound in enumerate(bounds))


def definitions(money: Callable[[float], str]) -> str:
    """How each computed condition is defined, as Markdown for the page; ``money`` formats an amount."""
    bands = ", ".join(name for name, _ in P_ALIVE_BANDS)
    return "\n".join((
        f"- **RFM segment**: {RFM_RULE}",
        (f"- **RFM score** = R + F + M, from 3 to 15. R, days since the last purchase: {_steps(R_DAYS, '≤')}; "
         f"F, orders: {_steps(F_ORDERS, '≥')}; M, net revenue: {_steps(M_REVENUE, '≥', money)}; each 1 otherwise "
         "(so a customer who never bought scores 3)."),
        ("- **Abandoned a cart in the last N days**: an add-to-cart, on one of the last N days with data, with no "
         "purchase (in any channel) after it."),
        ("- **Bought in store after browsing online**: a store purchase whose conversion journey (the touches since "
         f"the previous purchase, within the journey lookback window) includes a {' or '.join(ONLINE_CHANNELS)} "
         "touch."),
        (f"- **CLTV tier** and **P(alive)**: scored by `journeylens build` with BG/NBD × Gamma-Gamma on every buyer's "
         f"purchase days up to the last day with data; predicted CLTV over the next {DEFAULT_HORIZON_MONTHS} months, "
         f"discounted {DEFAULT_MONTHLY_DISCOUNT:.0%} a month. Tiers rank buyers by it: "
         f"{', '.join(name for name, _ in TIERS)}. P(alive) bands: {bands}. Customers without a score (never bought, "
         "or too few repeat buyers to fit the models) match neither “in” nor “not in”."),
    ))


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _validate(node: object, path: str = "rule") -> dict:
    _check(isinstance(node, dict), f"{path}: expected an object, got {type(node).__name__}")
    if "rules" in node:
        op = node.get("op", "and")
        _check(op in ("and", "or"), f"{path}: unknown combinator {op!r}; use 'and' or 'or'")
        _check(isinstance(node["rules"], list), f"{path}.rules: expected a list")
        return {"op": op, "rules": [_validate(child, f"{path}.rules[{i}]") for i, child in enumerate(node["rules"])]}
    name = node.get("field")
    _check(name in FIELDS, f"{path}: unknown field {name!r}; choose from {', '.join(FIELDS)}")
    spec, operator, value = FIELDS[name], node.get("operator"), node.get("value")
    _check(operator in spec.operators,
           f"{path}: unknown operator {operator!r} for {name}; choose from {', '.join(spec.operators)}")
    if spec.kind in ("category", "choice", "channels"):
        _check(isinstance(value, list) and value and all(isinstance(v, str) for v in value),
               f"{path}: {name} {operator} needs a non-empty list of names")
        if spec.choices:
            unknown = sorted(set(value) - set(spec.choices))
            _check(not unknown, f"{path}: unknown {name} value {', '.join(unknown)}; choose from {', '.join(spec.choices)}")
        value = sorted(set(value))
    elif spec.kind == "flag":
        _check(isinstance(value, bool), f"{path}: {name} is needs true or false")
    elif spec.kind == "within":
        whole = (isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
                 and value == int(value) and value >= 1)
        _check(whole, f"{path}: {name} {operator} needs a whole number of days, at least 1; got {value!r}")
        value = int(value)
    else:
        parse = float if spec.kind == "number" else date.fromisoformat
        count = 2 if operator == "between" else 1
        values = value if isinstance(value, list) else [value]
        _check(len(values) == count, f"{path}: {name} {operator} needs {count} value(s)")
        try:
            parsed = [parse(v) for v in values]
        except (TypeError, ValueError):
            raise ValueError(f"{path}: {name} needs {'numbers' if spec.kind == 'number' else 'ISO dates'}, "
                             f"got {value!r}") from None
        _check(parsed == sorted(parsed), f"{path}: {name} between needs the lower bound first")
        if spec.kind == "number":
            values = parsed
        value = values if operator == "between" else values[0]
    return {"field": name, "operator": operator, "value": value}


def canonical(rule: dict | str) -> str:
    """The validated rule as compact, key-sorted JSON: equal rules give equal strings."""
    tree = json.loads(rule) if isinstance(rule, str) else rule
    return json.dumps(_validate(tree), sort_keys=True, separators=(",", ":"))


def parse(rule: str) -> dict:
    return json.loads(canonical(rule))


EVERYONE = canonical(EMPTY_RULE)


def _score(value: ir.NumericValue, bounds: tuple[int, ...], *, at_most: bool) -> ir.IntegerValue:
    steps = [((value <= bound) if at_most else (value >= bound), 5 - i) for i, bound in enumerate(bounds)]
    return ibis.cases(*steps, else_=1).cast("int64")


def _p_alive_band(p_alive: ir.FloatingValue) -> ir.StringValue:
    # Float literals: Spark SQL would read 0.3 as a decimal.
    steps = [(p_alive < ibis.literal(upper, "float64"), band) for band, upper in P_ALIVE_BANDS if upper is not None]
    return ibis.cases(*steps, (p_alive.notnull(), P_ALIVE_BANDS[-1][0]), else_=ibis.null("string"))


def facts_expr() -> ir.Table:
    """customer_facts with the stored CLV scores and the computed fields rules may use (recency, RFM,
    abandoned cart, P(alive) band)."""
    facts, scores = derived("customer_facts"), derived(CLV_SCORES)
    f = facts.left_join(scores, "customer_id").select(*facts.columns, *scores.drop("customer_id").columns)
    # The store's last day with any event; a window keeps it one expression on every engine.
    last_day = f.last_event_at.max().over(ibis.window()).date()
    abandoned = f.last_cart_at.notnull() & (f.last_purchase_at.isnull() | (f.last_purchase_at < f.last_cart_at))
    f = f.mutate(
        days_since_last_purchase=last_day.delta(f.last_purchase_at.date(), unit="day"),
        days_since_first_purchase=last_day.delta(f.first_purchase_at.date(), unit="day"),
        days_since_abandoned_cart=ibis.ifelse(abandoned, last_day.delta(f.last_cart_at.date(), unit="day"),
                                              ibis.null("int64")),
        p_alive_band=_p_alive_band(f.p_alive),
    )
    r, orders = f.days_since_last_purchase, f.orders
    f = f.mutate(
        rfm_segment=ibis.cases(
            ((r <= 30) & (orders >= 4), "champions"),
            ((r <= 90) & (orders >= 3), "loyal"),
            (f.days_since_first_purchase <= 30, "new"),
            ((orders >= 2) & (r > 90), "at risk"),
            ((orders >= 1) & (r > 180), "hibernating"),
            else_="others",
        ),
        r_score=_score(r, R_DAYS, at_most=True),
        f_score=_score(orders, F_ORDERS, at_most=False),
        m_score=_score(f.net_revenue, M_REVENUE, at_most=False),
    )
    return f.mutate(rfm_score=f.r_score + f.f_score + f.m_score)


def _number(column: ir.NumericValue, operator: str, value) -> ir.BooleanValue:
    if operator == "between":
        return column.between(ibis.literal(float(value[0])), ibis.literal(float(value[1])))
    bound = ibis.literal(float(value))
    return {">=": column >= bound, "<=": column <= bound, "=": column == bound}[operator]


def _date(column: ir.TimestampValue, operator: str, value) -> ir.BooleanValue:
    day = column.date()
    if operator == "between":
        return day.between(ibis.literal(date.fromisoformat(value[0])), ibis.literal(date.fromisoformat(value[1])))
    bound = ibis.literal(date.fromisoformat(value))
    return day >= bound if operator == "on or after" else day <= bound


def _channels(facts: ir.Table, operator: str, channels: list[str]) -> ir.BooleanValue:
    used = derived("customer_channels")
    used = used.filter(used.channel.isin(channels))
    if operator == "all of":
        # One row per customer and channel, so a plain count is the number of listed channels used.
        used = used.group_by("customer_id").agg(n=ibis._.count())
        used = used.filter(used.n == len(channels))
    return facts.customer_id.isin(used.customer_id)


def _store_after_online_expr() -> ir.Table:
    """Customers with a store purchase whose conversion journey has a web or app touch."""
    journeys, touches = derived("journeys"), derived("journey_touches")
    in_store = journeys.filter(journeys.converted & (journeys.conversion_channel == "store"))
    online = touches.filter(touches.converted & touches.channel.isin(ONLINE_CHANNELS))
    return in_store.semi_join(online, "journey_id").select("customer_id")


def _flag(facts: ir.Table, name: str) -> ir.BooleanValue:
    if name == "contacted_support":
        return facts.support_contacts > 0
    return facts.customer_id.isin(_store_after_online_expr().customer_id)


def _condition(facts: ir.Table, node: dict) -> ir.BooleanValue:
    name, operator, value = node["field"], node["operator"], node["value"]
    spec = FIELDS[name]
    if spec.kind == "channels":
        return _channels(facts, operator, value)
    if spec.kind == "flag":
        return _flag(facts, name) == ibis.literal(value)
    if name == "latest_csat_band":
        matched = ibis.or_(*[facts.latest_csat.between(*CSAT_BANDS[band]) for band in value])
    else:
        column = facts[spec.column or name]
        if spec.kind == "within":
            # Day 0 is the store's last day, so "the last N days" are days 0 to N - 1.
            return (column < ibis.literal(value)).fill_null(False)
        if spec.kind == "number":
            return _number(column, operator, value).fill_null(False)
        if spec.kind == "date":
            return _date(column, operator, value).fill_null(False)
        matched = column.isin(value)
    matched = matched.fill_null(False)
    matched = ~matched if operator == "not in" else matched
    return matched & facts[name].notnull() if spec.scored else matched


def _predicate(facts: ir.Table, node: dict) -> ir.BooleanValue:
    if "rules" not in node:
        return _condition(facts, node)
    parts = [_predicate(facts, child) for child in node["rules"]]
    if not parts:
        return ibis.literal(True)  # an empty group restricts nothing
    return ibis.and_(*parts) if node["op"] == "and" else ibis.or_(*parts)


def members_expr(rule: str) -> ir.Table:
    """The facts rows of the customers who match ``rule`` (canonical JSON)."""
    facts = facts_expr()
    return facts.filter(_predicate(facts, parse(rule)))


def member_ids_expr(rule: str) -> ir.Table:
    """Just the matching customer ids, for a semi-join from any table (the global filter)."""
    return members_expr(rule).select("customer_id")


def group_totals_expr(rule: str, group: str) -> ir.Table:
    """One row for the members of ``rule``, labelled ``group``: size, revenue, buyers, omnichannel
    customers, and the customers with a predicted CLTV and its sum."""
    table = members_expr(rule)
    return table.agg(
        group=ibis.literal(group),
        customers=table.count(),
        net_revenue=table.net_revenue.sum().fill_null(0).cast("float64"),
        buyers=(table.orders > 0).cast("int64").sum(),
        omnichannel=(table.channels_used >= 2).cast("int64").sum(),
        scored=table.predicted_clv.notnull().cast("int64").sum(),
        predicted_clv=table.predicted_clv.sum().cast("float64"),
    )


def per_customer(totals: pl.DataFrame) -> pl.DataFrame:
    """Group totals (:func:`group_totals_expr` rows) as the cards show them: customers, net revenue,
    its average, buyer and omnichannel share, and the average predicted CLTV of the scored members."""
    def per(column: str, base: str = "customers") -> pl.Expr:
        return pl.when(pl.col(base) > 0).then(pl.col(column) / pl.col(base))

    return totals.select(
        "group", "customers",
        net_revenue="net_revenue",
        avg_net_revenue=per("net_revenue"),
        buyer_share=per("buyers"),
        omnichannel_share=per("omnichannel"),
        avg_predicted_clv=per("predicted_clv", "scored"),
    )


def summary_expr(rule: str) -> ir.Table:
    """One row each for the segment and for all customers."""
    return group_totals_expr(rule, "segment").union(group_totals_expr(EVERYONE, "all customers"))


def summary(engine: Engine, *, rule: str) -> pl.DataFrame:
    """Segment vs all customers: customers, share of all, net revenue, average, buyer and omnichannel
    share, average predicted CLTV (:func:`per_customer`)."""
    frame = per_customer(engine.to_polars(summary_expr(rule)))
    total = frame.filter(pl.col("group") == "all customers")["customers"].sum()
    order = pl.col("group").replace_strict({"segment": 0, "all customers": 1})
    return frame.sort(order).with_columns(
        share_of_customers=pl.col("customers") / total if total else pl.lit(None, pl.Float64))


def channel_mix_expr(rule: str) -> ir.Table:
    """Customers per channel used, in the segment and among all customers, with each group's size."""
    used = derived("customer_channels")
    in_segment = used.customer_id.isin(member_ids_expr(rule).customer_id)
    mix = used.group_by("channel").agg(
        segment=in_segment.cast("int64").sum(),
        all_customers=ibis._.count(),
    )
    sizes = member_ids_expr(rule).agg(segment_size=ibis._.count()).cross_join(
        member_ids_expr(EVERYONE).agg(all_customers_size=ibis._.count()))
    return mix.cross_join(sizes)


def channel_mix(engine: Engine, *, rule: str) -> pl.DataFrame:
    """Share of each group's customers who used each channel (a customer counts in every channel used)."""
    wide = engine.to_polars(channel_mix_expr(rule))
    long = pl.concat([
        wide.select("channel", group=pl.lit(group), customers=pl.col(column), size=pl.col(f"{column}_size"))
        for group, column in (("segment", "segment"), ("all customers", "all_customers"))
    ])
    return long.select(
        "channel", "group", "customers", share=pl.col("customers") / pl.col("size").cast(pl.Float64),
    ).sort("group", "channel", descending=[True, False])


def members(engine: Engine, *, rule: str, columns: tuple[str, ...] = EXPORT_COLUMNS) -> pl.DataFrame:
    """customer_id plus the chosen facts (from :data:`EXPORT_COLUMNS`) of every member."""
    unknown = sorted(set(columns) - set(EXPORT_COLUMNS))
    _check(not unknown, f"unknown export column {', '.join(unknown)}; choose from {', '.join(EXPORT_COLUMNS)}")
    expr = members_expr(rule)
    return engine.to_polars(expr.select("customer_id", *columns).order_by("customer_id"))


def rfm_counts_expr() -> ir.Table:
    facts = facts_expr()
    return facts.group_by("rfm_segment").agg(customers=ibis._.count())


def _example_rule() -> str:
    """A rule touching every field, so the portability test compiles every branch."""
    values = {"category": ["x"], "choice": None, "number": [1, 2], "date": ["2026-01-01", "2026-02-01"],
              "flag": True, "channels": ["web", "store"], "within": 7}
    rules = []
    for name, spec in FIELDS.items():
        value = list(spec.choices[:1]) if spec.kind == "choice" else values[spec.kind]
        operator = "between" if "between" in spec.operators else spec.operators[-1]
        rules.append({"field": name, "operator": operator, "value": value})
    return canonical({"op": "or", "rules": [{"op": "and", "rules": rules[:7]}, {"op": "and", "rules": rules[7:]}]})


def portable_expressions() -> dict[str, ir.Expr]:
    rule = _example_rule()
    return {
        "segments.members": members_expr(rule),
        "segments.summary": summary_expr(rule),
        "segments.channel_mix": channel_mix_expr(rule),
        "segments.rfm_counts": rfm_counts_expr(),
    }
