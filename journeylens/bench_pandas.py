"""What a user would otherwise write: the three heaviest metrics in plain pandas, for `journeylens bench`.

Each function takes the raw ``events`` in a pandas frame (the way an analyst holds an export) and
follows the common tutorial recipe: ``to_period`` + ``groupby().transform("min")`` + ``nunique`` +
``pivot_table`` for cohorts, ``sort_values`` + ``groupby().shift()`` for transitions, one
``groupby().agg()`` per level for RFM. Where our definitions are more precise than the tutorials
(DESIGN.md §3: journeys with a lookback window, purchase *days*, weeks from whole days), the same
pandas idioms implement our definition, so the benchmark compares like with like and the run can
check that the numbers agree. Named, vectorised aggregations throughout: the per-group ``lambda``
many tutorials use would only make pandas slower, and the comparison is meant to be fair to it.

Dev only: pandas is in the ``bench`` extra, never imported by the app.
"""

from __future__ import annotations

from datetime import date, timedelta
from operator import attrgetter

import pandas as pd

from data_access.derived_journeys import DEFAULT_LOOKBACK_DAYS
from data_access.schema import NON_TOUCH_EVENT_TYPES

START, PURCHASE, DROP_OFF = "start", "purchase", "drop-off"

# The columns each peer reads from the events table (loading is timed apart from the peer).
RETENTION_COLUMNS = ("customer_id", "occurred_at")
TRANSITION_COLUMNS = ("customer_id", "event_id", "occurred_at", "channel", "event_type")
RFM_COLUMNS = ("customer_id", "occurred_at", "event_type", "revenue")
RFM_EVENT_TYPES = ("purchase", "refund")
TRANSITION_SKIPPED_TYPES = tuple(t for t in NON_TOUCH_EVENT_TYPES if t != "purchase")


def retention_cohorts(events: pd.DataFrame) -> pd.DataFrame:
    """Monthly first-time cohorts: % of each cohort active exactly N months later (the tutorial pivot).

    Rows: cohort month; columns: months since the cohort month; values: % of the cohort's size.
    ``cohort_size`` and the counts are in the frame's ``attrs`` for checking.
    """
    df = events[["customer_id", "occurred_at"]].copy()
    df["order_month"] = df["occurred_at"].dt.to_period("M")
    df["cohort"] = df.groupby("customer_id")["order_month"].transform("min")
    cohorts = df.groupby(["cohort", "order_month"]).agg(n_customers=("customer_id", "nunique")).reset_index()
    cohorts["period_number"] = (cohorts["order_month"] - cohorts["cohort"]).apply(attrgetter("n"))
    counts = cohorts.pivot_table(index="cohort", columns="period_number", values="n_customers")
    sizes = counts.iloc[:, 0]
    matrix = counts.divide(sizes, axis=0) * 100
    matrix.attrs["counts"] = counts
    matrix.attrs["cohort_size"] = sizes
    return matrix


def retention_long(matrix: pd.DataFrame) -> pd.DataFrame:
    """The pivot back as rows: cohort (first day), period_index, cohort_size, retained, retention_pct."""
    # pandas 3's stack() keeps the pivot's empty cells; a cell where nobody came back is no row.
    counts = matrix.attrs["counts"].stack().dropna().rename("retained").reset_index()
    pct = matrix.stack().dropna().rename("retention_pct").reset_index()
    rows = counts.merge(pct, on=["cohort", "period_number"])
    rows["cohort_size"] = rows["cohort"].map(matrix.attrs["cohort_size"])
    rows["cohort"] = rows["cohort"].dt.start_time.dt.date
    return rows.rename(columns={"period_number": "period_index"})[
        ["cohort", "period_index", "cohort_size", "retained", "retention_pct"]
    ]


def channel_transitions(events: pd.DataFrame, *, start: date | None, end: date | None,
                        lookback_days: int = DEFAULT_LOOKBACK_DAYS, collapse: bool = True) -> pd.DataFrame:
    """The transition matrix of journeys ending in [start, end]: from_state, to_state, transitions, row_probability.

    Journeys as ``data_access.derived_journeys`` defines them: per customer, events in (time,
    event_id) order; a purchase closes the touches since the previous purchase that lie within the
    lookback window before it; other touches form drop-off journeys, split by silences longer
    than the window.
    """
    e = events[~events["event_type"].isin(TRANSITION_SKIPPED_TYPES)]
    e = e.sort_values(["customer_id", "occurred_at", "event_id"]).reset_index(drop=True)
    customer = e.groupby("customer_id", sort=False)
    is_purchase = e["event_type"] == "purchase"
    e["segment"] = is_purchase.astype("int64").groupby(e["customer_id"]).cumsum() - is_purchase
    e["next_purchase_at"] = e["occurred_at"].where(is_purchase).groupby(e["customer_id"]).bfill()
    e["previous_at"] = customer["occurred_at"].shift()
    e["previous_type"] = customer["event_type"].shift()
    e["previous_channel"] = customer["channel"].shift()
    purchases = e[is_purchase]
    t = e[~is_purchase].copy()

    window = pd.Timedelta(days=lookback_days)
    opens = t["next_purchase_at"] - window
    converted = t["next_purchase_at"].notna() & (t["occurred_at"] >= opens)
    previous_converted = t["next_purchase_at"].notna() & (t["previous_at"] >= opens)
    first_in_segment = t["previous_at"].isna() | (t["previous_type"] == "purchase")
    starts = (first_in_segment | (converted & ~previous_converted)
              | (~converted & (t["occurred_at"] > t["previous_at"] + window)))
    t["converted"] = converted
    t["run"] = starts.astype("int64").groupby([t["customer_id"], t["segment"]]).cumsum()
    journey = ["customer_id", "segment", "run"]
    t["next_channel"] = t.groupby(journey, sort=False)["channel"].shift(-1)

    touched = t.groupby(journey, sort=False).agg(
        converted=("converted", "any"), first_channel=("channel", "first"), last_channel=("channel", "last"),
        last_touch_at=("occurred_at", "max"),
    ).reset_index()
    # A converting journey ends on its purchase's day, a drop-off on its last touch's.
    converting = purchases[["customer_id", "segment", "occurred_at"]].merge(
        touched[touched["converted"]], on=["customer_id", "segment"], how="left")
    converting["day"] = converting["occurred_at"].dt.normalize()
    dropped = touched[~touched["converted"]].copy()
    dropped["day"] = dropped["last_touch_at"].dt.normalize()

    def in_range(frame: pd.DataFrame) -> pd.DataFrame:
        keep = pd.Series(True, index=frame.index)
        if start is not None:
            keep &= frame["day"] >= pd.Timestamp(start)
        if end is not None:
            keep &= frame["day"] <= pd.Timestamp(end)
        return frame[keep]

    converting, dropped = in_range(converting), in_range(dropped)
    shown = pd.concat([converting[journey].dropna(), dropped[journey]]).astype({"run": "int64"})

    firsts = pd.concat([converting["first_channel"].fillna(PURCHASE), dropped["first_channel"]])
    moves = t.merge(shown, on=journey)
    moves = moves[moves["next_channel"].notna()]
    if collapse:
        moves = moves[moves["next_channel"] != moves["channel"]]
    touched_converting = converting[converting["first_channel"].notna()]
    pairs = pd.concat([
        pd.DataFrame({"from_state": START, "to_state": firsts}),
        pd.DataFrame({"from_state": moves["channel"], "to_state": moves["next_channel"]}),
        pd.DataFrame({"from_state": touched_converting["last_channel"], "to_state": PURCHASE}),
        pd.DataFrame({"from_state": dropped["last_channel"], "to_state": DROP_OFF}),
    ])
    matrix = pd.crosstab(pairs["from_state"], pairs["to_state"])
    counts = matrix.stack().rename("transitions").reset_index()
    counts = counts[counts["transitions"] > 0]
    counts["row_probability"] = counts["transitions"] / counts.groupby("from_state")["transitions"].transform("sum") * 100
    return counts.reset_index(drop=True)


def rfm_summary(events: pd.DataFrame, *, as_of: date) -> pd.DataFrame:
    """Per buyer up to ``as_of``: first/last purchase day, frequency (purchase days − 1), recency and
    T in weeks, monetary_value (mean repeat purchase-day spend) and historical_revenue (net).

    ``events`` may hold every event or only the purchases and refunds (a transactions export).
    """
    tx = events[events["event_type"].isin(RFM_EVENT_TYPES)
                & (events["occurred_at"] < pd.Timestamp(as_of + timedelta(days=1)))].copy()
    tx["day"] = tx["occurred_at"].dt.normalize()
    tx["is_purchase"] = tx["event_type"] == "purchase"
    tx["spend"] = tx["revenue"].where(tx["is_purchase"], 0.0)
    daily = tx.groupby(["customer_id", "day"]).agg(
        orders=("is_purchase", "sum"), spend=("spend", "sum"), net=("revenue", "sum")).reset_index()
    bought = daily[daily["orders"] > 0].sort_values(["customer_id", "day"])
    rfm = bought.groupby("customer_id").agg(
        first_purchase=("day", "min"), last_purchase=("day", "max"), purchase_days=("day", "count"),
        spend=("spend", "sum"), first_spend=("spend", "first"))
    rfm["historical_revenue"] = daily.groupby("customer_id")["net"].sum()
    rfm["frequency"] = rfm["purchase_days"] - 1
    rfm["recency"] = (rfm["last_purchase"] - rfm["first_purchase"]).dt.days / 7
    rfm["T"] = (pd.Timestamp(as_of) - rfm["first_purchase"]).dt.days / 7
    repeats = rfm["frequency"].where(rfm["frequency"] > 0)
    rfm["monetary_value"] = (rfm["spend"] - rfm["first_spend"]) / repeats
    return rfm.reset_index()[["customer_id", "first_purchase", "last_purchase", "frequency", "recency", "T",
                              "monetary_value", "historical_revenue"]]
