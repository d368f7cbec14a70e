"""The `lifetimes` package's CLV pipeline, as its documentation teaches it, for `journeylens bench`.

Transaction summary, BG/NBD and Gamma-Gamma fits, P(alive) and discounted CLV, on the same
purchases and with the same conventions as ``metrics.clv``: one purchase occasion per day, time in
weeks from whole days (``freq="D"`` with ``freq_multiplier=7``), a month of 4.345 weeks
(lifetimes' own factor for ``freq="W"``), Gamma-Gamma on repeat buyers only.

Dev only: lifetimes 0.11.3 is in the ``bench`` extra. Its summary and fitters run with current
numpy and pandas; its bundled dataset loader does not, and nothing here uses it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date

import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter
from lifetimes.utils import summary_data_from_transaction_data

PURCHASE_COLUMNS = ("customer_id", "occurred_at", "revenue")


@dataclass
class LifetimesRun:
    """The pipeline's results and how long each stage took (seconds)."""

    summary: pd.DataFrame
    bgnbd: dict[str, float]
    gamma_gamma: dict[str, float]
    seconds: dict[str, float] = field(default_factory=dict)


def clv_pipeline(purchases: pd.DataFrame, *, as_of: date, horizon_months: int,
                 monthly_discount: float) -> LifetimesRun:
    """``purchases``: one row per purchase event (customer_id, occurred_at, revenue)."""
    seconds: dict[str, float] = {}
    started = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal started
        now = time.perf_counter()
        seconds[stage] = now - started
        started = now

    summary = summary_data_from_transaction_data(
        purchases, "customer_id", "occurred_at", monetary_value_col="revenue",
        observation_period_end=pd.Timestamp(as_of), freq="D", freq_multiplier=7,
    )
    lap("summary")
    bgf = BetaGeoFitter(penalizer_coef=0.0)
    bgf.fit(summary["frequency"], summary["recency"], summary["T"])
    lap("bgnbd_fit")
    repeat = summary[summary["frequency"] > 0]
    ggf = GammaGammaFitter(penalizer_coef=0.0)
    ggf.fit(repeat["frequency"], repeat["monetary_value"])
    lap("gamma_gamma_fit")
    summary["p_alive"] = bgf.conditional_probability_alive(summary["frequency"], summary["recency"], summary["T"])
    summary["predicted_clv"] = ggf.customer_lifetime_value(
        bgf, summary["frequency"], summary["recency"], summary["T"], summary["monetary_value"],
        time=horizon_months, discount_rate=monthly_discount, freq="W",
    )
    lap("scores")
    return LifetimesRun(
        summary=summary.reset_index(),
        bgnbd={name: float(value) for name, value in bgf.params_.items()},
        gamma_gamma={"p": float(ggf.params_["p"]), "q": float(ggf.params_["q"]), "gamma": float(ggf.params_["v"])},
        seconds=seconds,
    )
