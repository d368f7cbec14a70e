"""Realistic, deterministic demo data: an omnichannel retailer whose ground truth is known.

:func:`generate_demo` fills the contract tables (``customers``, ``events``, ``identities``) of a
writable :class:`~data_access.store.Store` and adds ``demo_truth``, one row per customer with the
latent values the simulation used, so model tests can compare an estimate with the truth.

How a customer lives
--------------------
* **Signup** (first touch, ``first_seen_at``) is spread over the ``months`` before ``end`` with
  business growth (``SIGNUP_GROWTH_PER_YEAR``), a November/December peak and campaign bursts. The
  first touch is on the acquisition channel (web, app, social or store); nothing happens before it.
* **Attributes**: a region (four physical regions plus ``Online``, which has no store nearby), a
  loyalty tier (``bronze``/``silver``/``gold``, null for non-members, correlated with the purchase
  rate), channel preferences (Dirichlet) and product-category affinities (Dirichlet).
* **Repeat buying is BG/NBD**: a share ``BUYER_SHARE`` of customers ever convert; their first
  purchase follows signup (often in the same visit for store sign-ups). Repeat purchases arrive as
  a Poisson process with rate ``purchase_rate_per_week`` ~ Gamma(shape ``PURCHASE_RATE_SHAPE``,
  rate ``PURCHASE_RATE_SCALE`` per week), multiplied by ``OMNICHANNEL_RATE_MULTIPLIER`` for
  omnichannel customers. After every *repeat* purchase the customer drops out with probability
  ``dropout_probability`` ~ Beta(``DROPOUT_A``, ``DROPOUT_B``), as in BG/NBD. Time runs in
  "operational weeks": calendar time warped by weekly and yearly seasonality and campaign days, so
  the purchase counts are exactly BG/NBD while the calendar shows realistic peaks.
* **Spend** per order is log-normal by product category times a per-customer
  ``spend_multiplier`` ~ Gamma(``SPEND_SHAPE``, mean 1) (the Gamma-Gamma latent).
* **Journeys**: online orders are a session (page_view, product_views, add_to_cart, checkout,
  purchase) preceded by a few touches drawn from the customer's channel preferences (browsing on
  web/app, email clicks of the latest campaign, social engagement, sms links, store visits); orders
  right after a promotion often start with a click on that promotion's email. Store orders are a
  store visit then a purchase. Outside purchases customers browse (with abandoned carts), visit
  stores, engage on social and open/click campaign emails and sms (a small opted-in minority).
* **After an order**: a refund (negative revenue, same order_id, 2-30 days later) for a few % of
  orders, by category; a support contact for ``SUPPORT_CONTACT_RATE`` of orders
  (``SUPPORT_CONTACT_RATE_REFUNDED`` of refunded ones) of omnichannel customers, answered by a
  survey_response (channel support) with probability ``SURVEY_RESPONSE_RATE``; CSAT 1-5 and NPS
  0-10 are correlated.
* **Churn**: a buyer churns at the repeat purchase where the dropout draw says so; a customer who
  never converts lapses after an exponential dormancy. ``demo_truth.churned_at`` is the time of the
  churned customer's last event (null while the customer is still alive at ``end``).

Planted effects (the tests recover each one from the generated tables)
----------------------------------------------------------------------
``OMNICHANNEL_SHARE``
    Share of customers whose events span 2+ channels. Single-channel customers live entirely on
    their acquisition channel (web, app or store); omnichannel customers get a second-channel
    touch within a week of signup, so the observed share equals ``demo_truth.is_omnichannel``.
``OMNICHANNEL_RATE_MULTIPLIER``
    Omnichannel customers' Poisson purchase rate is this many times the single-channel one. Since
    no dropout can happen between the first and the second purchase (BG/NBD), the time from first
    to second purchase of an omnichannel customer is the single-channel one divided by this factor;
    e.g. the ratio of the medians recovers it.
``WEB_BEFORE_STORE_SHARE``
    Share of store purchases preceded by a web browse (page_view/product_view on channel web) of
    the same customer within ``WEB_BEFORE_STORE_DAYS`` days. Incidental browsing already covers
    some; each batch tops up "research online, buy offline" browses of omnichannel customers until
    the expected share is the constant (a planted browse occasionally also precedes the customer's
    next store order, so the measured share lands up to about half a point above it).
``LOW_CSAT_CHURN_MULTIPLIER``
    A poor support experience (latent CSAT <= ``POOR_CSAT``) multiplies the dropout probability at
    the purchase the contact was about (capped at 1). Responses are missing at random, so among
    survey responses the churn rate after CSAT <= 2 is this multiple of the rate after CSAT >= 4
    (slightly less, because of the cap).

Determinism: the same ``seed`` (and the same ``batch_customers``, ``customers`` etc.) gives
byte-identical tables. Every batch draws from its own child of ``SeedSequence(seed)``.
Timestamps are UTC (the retailer's local time is taken to be UTC) with millisecond precision.
"""

from __future__ import annotations

import calendar
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pyarrow as pa
from scipy import special, stats

from data_access.schema import EVENT_TYPES
from data_access.settings import DEFAULT_CHANNELS
from data_access.store import Store

__all__ = [
    "DEMO_END",
    "DemoSummary",
    "generate_demo",
    "OMNICHANNEL_SHARE",
    "OMNICHANNEL_RATE_MULTIPLIER",
    "WEB_BEFORE_STORE_SHARE",
    "WEB_BEFORE_STORE_DAYS",
    "LOW_CSAT_CHURN_MULTIPLIER",
    "POOR_CSAT",
]

DEMO_END = date(2026, 10, 31)

# --- planted effects --------------------------------------------------------------------------
OMNICHANNEL_SHARE = 0.45
OMNICHANNEL_RATE_MULTIPLIER = 1.8
WEB_BEFORE_STORE_SHARE = 0.35
WEB_BEFORE_STORE_DAYS = 7
LOW_CSAT_CHURN_MULTIPLIER = 2.5
POOR_CSAT = 2

# --- latent population ------------------------------------------------------------------------
PURCHASE_RATE_SHAPE = 1.2  # BG/NBD r
PURCHASE_RATE_SCALE = 15.0  # BG/NBD alpha, in weeks (mean single-channel rate r/alpha = 0.08/week)
MAX_PURCHASE_RATE = 3.0  # per week; trims the far Gamma tail (a handful of customers per million)
DROPOUT_A, DROPOUT_B = 1.0, 7.0  # BG/NBD a, b (mean dropout 0.125 per repeat purchase)
BUYER_SHARE = 0.72
SPEND_SHAPE = 6.0
SIGNUP_GROWTH_PER_YEAR = 0.45
NON_BUYER_DORMANCY_DAYS = 70.0
SUPPORT_CONTACT_RATE = 0.12
SUPPORT_CONTACT_RATE_REFUNDED = 0.5
SURVEY_RESPONSE_RATE = 0.5

# --- vocabulary -------------------------------------------------------------------------------
_CHANNELS = ("web", "app", "email", "social", "sms", "store", "support")
WEB, APP, EMAIL, SOCIAL, SMS, STORE, SUPPORT = range(7)
_TOUCH = np.array([WEB, APP, EMAIL, SOCIAL, SMS, STORE])  # channels a customer chooses to use
_PURCHASE = np.array([WEB, APP, STORE])
_SESSION = np.array([WEB, APP, SOCIAL, STORE])  # self-initiated visits outside campaigns

_ET = {name: np.int8(i) for i, name in enumerate(EVENT_TYPES)}
PAGE_VIEW, PRODUCT_VIEW, ADD_TO_CART, CHECKOUT = (
    _ET[k] for k in ("page_view", "product_view", "add_to_cart", "checkout")
)
PURCHASE_ET, REFUND_ET = _ET["purchase"], _ET["refund"]
EMAIL_OPEN, EMAIL_CLICK, SOCIAL_ENG = _ET["email_open"], _ET["email_click"], _ET["social_engagement"]
STORE_VISIT, SUPPORT_CONTACT, SURVEY = _ET["store_visit"], _ET["support_contact"], _ET["survey_response"]
# The contract has no sms-specific event type: an sms touch is the page view of the sms link.
# Per channel (web, app, email, social, sms, store, support): a touch, and the first contact after signup.
_TOUCH_ET = np.array(
    [PAGE_VIEW, PAGE_VIEW, EMAIL_CLICK, SOCIAL_ENG, PAGE_VIEW, STORE_VISIT, SUPPORT_CONTACT], np.int8
)
_WELCOME_ET = np.array(
    [PAGE_VIEW, PAGE_VIEW, EMAIL_OPEN, SOCIAL_ENG, PAGE_VIEW, STORE_VISIT, SUPPORT_CONTACT], np.int8
)

_SOURCES = ("shopify_web", "mobile_app", "esp_email", "social_ads", "sms_gateway", "pos", "zendesk", "crm")
_SOURCE_OF_CHANNEL = np.array([0, 1, 2, 3, 4, 5, 6], np.int8)

REGIONS = ("North", "South", "East", "West", "Online")
_REGION_WEIGHTS = np.array([0.23, 0.22, 0.20, 0.19, 0.16])
_ONLINE_REGION = 4
_STORE_AFFINITY_BY_REGION = np.array([1.25, 1.1, 1.0, 0.9, 0.0])
SEGMENTS = ("bronze", "silver", "gold")

CATEGORIES = ("apparel", "footwear", "beauty", "home", "electronics", "accessories", "kids")
_CATEGORY_POPULARITY = np.array([0.26, 0.12, 0.14, 0.14, 0.08, 0.14, 0.12])
_BASKET_MEDIAN = np.array([55.0, 85.0, 30.0, 65.0, 190.0, 38.0, 42.0])
_BASKET_SIGMA = np.array([0.55, 0.40, 0.50, 0.65, 0.70, 0.55, 0.50])
_REFUND_RATE = np.array([0.08, 0.07, 0.02, 0.04, 0.05, 0.03, 0.04])

# Dirichlet concentration of channel preferences (support is reactive, never preferred).
_PREF_ALPHA = np.array([2.0, 1.1, 1.4, 0.7, 0.12, 1.6, 0.0])
_ACQUISITION_PREF_BOOST = 1.5
_OMNI_FIRST_TOUCH_WEIGHTS = np.array([0.40, 0.14, 0.0, 0.18, 0.0, 0.28, 0.0])
_SINGLE_FIRST_TOUCH_WEIGHTS = np.array([0.45, 0.15, 0.0, 0.0, 0.0, 0.40, 0.0])
_IMMEDIATE_FIRST_PURCHASE = np.array([0.18, 0.15, 0.0, 0.0, 0.0, 0.55, 0.0])
_PRE_TOUCH_MEAN_OMNI, _PRE_TOUCH_MEAN_SINGLE = 1.8, 0.8
_SESSION_RATE_BASE, _SESSION_RATE_PER_PURCHASE_RATE = 0.15, 2.6  # sessions per operational week
_CSAT_PROBS = np.array([0.10, 0.10, 0.18, 0.30, 0.32])
_CSAT_PROBS_REFUNDED = np.array([0.24, 0.20, 0.20, 0.20, 0.16])

_MONTH_ACTIVITY = np.array([0.85, 0.85, 0.95, 0.97, 1.0, 1.0, 0.98, 0.95, 0.95, 1.0, 1.25, 1.45])
_WEEKDAY_ACTIVITY = np.array([0.93, 0.93, 0.95, 1.0, 1.07, 1.15, 1.02])  # Monday first
_STORE_WEEKDAY = np.array([0.8, 0.8, 0.85, 0.95, 1.1, 1.75, 1.4])

# Hour-of-day profiles (local = UTC): evenings online, opening hours in store.
_HOURS = {
    WEB: [2, 1, 1, 1, 1, 1, 2, 3, 4, 5, 5, 6, 6, 6, 5, 5, 6, 7, 8, 9, 10, 9, 7, 4],
    APP: [3, 2, 1, 1, 1, 1, 2, 4, 5, 4, 4, 5, 6, 5, 4, 4, 5, 6, 8, 10, 11, 11, 9, 6],
    SOCIAL: [3, 2, 1, 1, 1, 1, 2, 3, 4, 4, 4, 5, 6, 5, 4, 4, 5, 6, 7, 8, 9, 9, 7, 5],
    STORE: [0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 6, 8, 9, 9, 9, 9, 8, 8, 6, 4, 2, 0, 0, 0],
    SUPPORT: [0, 0, 0, 0, 0, 0, 0, 1, 4, 7, 8, 8, 7, 7, 7, 7, 6, 5, 4, 3, 2, 1, 0, 0],
}
_HOUR_CDF = {ch: np.cumsum(w) / np.sum(w) for ch, w in _HOURS.items()}

# (name, month, day, activity boost on send day, also sent by sms); Black Friday moves.
_PROMOTIONS = (
    ("valentines", 2, 5, 0.35, False),
    ("spring_sale", 3, 19, 0.5, True),
    ("mothers_day", 5, 1, 0.35, False),
    ("summer_sale", 6, 25, 0.6, True),
    ("back_to_school", 8, 13, 0.35, False),
    ("loyalty_double_points", 9, 17, 0.4, False),
    ("black_friday", 11, 0, 1.2, True),
    ("cyber_monday", 11, 3, 0.8, True),
    ("holiday_gift_guide", 12, 3, 0.5, False),
    ("last_minute_gifts", 12, 17, 0.5, True),
    ("winter_clearance", 12, 27, 0.5, True),
)
_FIXED_CAMPAIGNS = ("weekly_newsletter", "welcome_series", "always_on_prospecting", "retargeting")
NEWSLETTER, WELCOME, PROSPECTING, RETARGETING = range(4)

_DAY = 86_400.0
_HOUR = 3_600.0
_FIRST_NAMES = (
    "Anna", "Ben", "Chloe", "David", "Emma", "Felix", "Grace", "Hugo", "Isla", "Jack", "Kara", "Liam",
    "Maya", "Noah", "Olivia", "Paul", "Quinn", "Rosa", "Sam", "Tara", "Umar", "Vera", "Will", "Yara", "Zoe",
)
_LAST_NAMES = (
    "Adams", "Baker", "Clark", "Diaz", "Evans", "Fischer", "Garcia", "Hughes", "Ito", "Jones", "Khan",
    "Lopez", "Martin", "Nguyen", "Olsen", "Patel", "Rossi", "Smith", "Taylor", "Weber", "Young",
)
_DOMAINS = ("Gmail.com", "Outlook.com", "Yahoo.com", "iCloud.com", "Proton.me", "GMX.net")
_ID_TYPES = ("email", "loyalty_id", "device_id", "cookie_id", "pos_card", "phone", "crm_id")
_MAX_IDENTITIES = 4
_SEQ_DIGITS, _ORDER_DIGITS = 6, 4


@dataclass(frozen=True)
class DemoSummary:
    customers: int
    events: int
    identities: int
    seconds: float


def generate_demo(
    store: Store,
    *,
    customers: int = 20_000,
    seed: int = 0,
    months: int = 24,
    end: date = DEMO_END,
    channels: tuple[str, ...] = DEFAULT_CHANNELS,
    batch_customers: int = 50_000,
    progress: Callable[[str], None] = print,
) -> DemoSummary:
    """Fill the empty contract tables of a writable ``store`` with a simulated retailer.

    Channels not in ``channels`` get no events (names the simulation does not know stay empty);
    at least one of web, app and store must be present so customers can buy.
    """
    started = time.perf_counter()
    if customers < 1 or months < 1 or batch_customers < 1:
        raise ValueError("customers, months and batch_customers must be at least 1")
    enabled = np.array([c in channels for c in _CHANNELS])
    if not enabled[_PURCHASE].any():
        raise ValueError("demo data needs at least one of the channels web, app, store")
    con = store.connection
    for table in ("customers", "events", "identities"):
        if con.table(table).limit(1).fetchone() is not None:
            raise ValueError(f"demo data goes into an empty store, but {table} already has rows")

    cal = _Calendar(end, months)
    width = max(7, len(str(customers)))
    root = np.random.SeedSequence(seed)
    n_batches = math.ceil(customers / batch_customers)
    signup_seed, *batch_seeds = root.spawn(n_batches + 1)
    # Signup days are drawn for everyone at once and sorted, so customer ids follow signup order.
    signup_days = np.sort(cal.signup_days(np.random.default_rng(signup_seed), customers))

    con.execute(_TRUTH_DDL).fetchall()
    totals = {"customers": 0, "events": 0, "identities": 0}

    def written(counts: dict[str, int], b: int) -> None:
        for key, value in counts.items():
            totals[key] += value
        progress(
            f"demo batch {b + 1}/{n_batches}: {totals['customers']:,} customers, "
            f"{totals['events']:,} events ({time.perf_counter() - started:.1f} s)"
        )

    # DuckDB releases the GIL while it stores a batch, so one writer thread stores batch b while
    # numpy simulates batch b+1: at most two batches are in memory. The writer gets one DuckDB
    # thread because the other core is simulating; on this 2-core machine a second DuckDB thread
    # doubled the CPU spent storing and made a 100k load twice as slow.
    threads = int(con.execute("SELECT current_setting('threads')").fetchall()[0][0])
    con.execute("SET threads = 1")
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="demo-writer") as writer:
            pending = None
            for b in range(n_batches):
                lo, hi = b * batch_customers, min(customers, (b + 1) * batch_customers)
                rng = np.random.default_rng(batch_seeds[b])
                batch = _simulate_batch(rng, cal, enabled, signup_days[lo:hi])
                if pending is not None:
                    written(pending.result(), b - 1)
                pending = writer.submit(
                    _insert_batch, con, batch, first_ordinal=lo + 1, width=width, start_us=cal.start_us,
                    campaigns=cal.campaign_names,
                )
                del batch
            written(pending.result(), n_batches - 1)
    finally:
        con.execute(f"SET threads = {threads}")
    summary = DemoSummary(seconds=round(time.perf_counter() - started, 2), **totals)
    progress(
        f"demo data: {summary.customers:,} customers, {summary.events:,} events, "
        f"{summary.identities:,} identities in {summary.seconds:.1f} s"
    )
    return summary


_TRUTH_DDL = """
CREATE OR REPLACE TABLE demo_truth (
    customer_id VARCHAR NOT NULL,
    purchase_rate_per_week DOUBLE NOT NULL,
    dropout_probability DOUBLE NOT NULL,
    churned_at TIMESTAMP,
    is_omnichannel BOOLEAN NOT NULL,
    converts BOOLEAN NOT NULL,
    spend_multiplier DOUBLE NOT NULL,
    email_open_rate DOUBLE
)
"""


# --- calendar ---------------------------------------------------------------------------------


def _months_before(day: date, months: int) -> date:
    y, m = divmod(day.year * 12 + day.month - 1 - months, 12)
    return date(y, m + 1, min(day.day, calendar.monthrange(y, m + 1)[1]))


def _black_friday(year: int) -> date:
    first = date(year, 11, 1)
    first_thursday = first + timedelta(days=(3 - first.weekday()) % 7)
    return first_thursday + timedelta(days=22)


class _Calendar:
    """The simulated window in seconds since its first midnight, with seasonality and campaigns.

    "Operational time" is calendar time stretched by the daily activity intensity (mean 1, in
    weeks): a homogeneous Poisson process there becomes a seasonal one on the calendar.
    """

    def __init__(self, end: date, months: int) -> None:
        self.start = _months_before(end + timedelta(days=1), months)
        self.n_days = (end - self.start).days + 1
        self.end_s = self.n_days * _DAY
        self.start_us = (self.start - date(1970, 1, 1)).days * 86_400 * 1_000_000
        dates = [self.start + timedelta(days=d) for d in range(self.n_days)]
        weekday = np.array([d.weekday() for d in dates])
        month = np.array([d.month for d in dates])
        index = {d: i for i, d in enumerate(dates)}

        activity = _MONTH_ACTIVITY[month - 1] * _WEEKDAY_ACTIVITY[weekday]
        store_day = _STORE_WEEKDAY[weekday].astype(float)
        for d, i in index.items():
            if d.month == 12 and d.day in (24, 25, 26):
                activity[i] *= {24: 0.7, 25: 0.3, 26: 1.25}[d.day]
                if d.day == 25:
                    store_day[i] = 0.02  # stores are closed; only single-channel shoppers slip in

        names = list(_FIXED_CAMPAIGNS)
        sends: list[tuple[float, int, bool, bool]] = []  # (send second, name, promo, sms)
        for i, d in enumerate(dates):
            if d.weekday() == 3:
                sends.append((i * _DAY + 8 * _HOUR, NEWSLETTER, False, False))
        for year in range(self.start.year, end.year + 1):
            for key, mon, day, boost, by_sms in _PROMOTIONS:
                if key in ("black_friday", "cyber_monday"):
                    when = _black_friday(year) + timedelta(days=day)
                else:
                    when = date(year, mon, day)
                if when not in index:
                    continue
                names.append(f"{key}_{year}")
                i = index[when]
                sends.append((i * _DAY + 7 * _HOUR, len(names) - 1, True, by_sms))
                for lag, share in ((0, 1.0), (1, 0.5), (2, 0.25)):
                    if i + lag < self.n_days:
                        activity[i + lag] *= 1.0 + boost * share
        sends.sort()
        self.campaign_names = tuple(names)
        self.send_s = np.array([s[0] for s in sends])
        self.send_name = np.array([s[1] for s in sends], np.int16)
        self.send_promo = np.array([s[2] for s in sends], bool)
        self.send_sms = np.array([s[3] for s in sends], bool)

        activity /= activity.mean()
        self.edges_s = np.arange(self.n_days + 1) * _DAY
        self.op_edges = np.concatenate([[0.0], np.cumsum(activity)]) / 7.0
        self.op_end = self.op_edges[-1]
        self.channel_day = np.ones((len(_CHANNELS), self.n_days))
        self.channel_day[STORE] = store_day
        growth = np.exp(np.log1p(SIGNUP_GROWTH_PER_YEAR) * np.arange(self.n_days) / 365.25)
        signup = growth * activity
        self._signup_cdf = np.cumsum(signup) / signup.sum()

    def signup_days(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.minimum(np.searchsorted(self._signup_cdf, rng.random(n), side="right"), self.n_days - 1)

    def to_op(self, t: np.ndarray) -> np.ndarray:
        return np.interp(t, self.edges_s, self.op_edges)

    def from_op(self, u: np.ndarray) -> np.ndarray:
        return np.interp(u, self.op_edges, self.edges_s)

    def day_of(self, t: np.ndarray) -> np.ndarray:
        return np.clip((t // _DAY).astype(np.int64), 0, self.n_days - 1)

    def latest_send(self, t: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """Campaign name of the latest send (among ``mask``) before each time; the newsletter if none."""
        send_s = self.send_s if mask is None else self.send_s[mask]
        names = self.send_name if mask is None else self.send_name[mask]
        i = np.searchsorted(send_s, t, side="right") - 1
        out = np.full(len(t), NEWSLETTER, np.int16)
        ok = i >= 0
        out[ok] = names[i[ok]]
        return out


# --- small vectorised helpers -----------------------------------------------------------------


def _ragged(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For groups of the given sizes laid end to end: each row's group and position in it."""
    counts = np.asarray(counts, np.int64)
    owner = np.repeat(np.arange(counts.size), counts)
    starts = np.cumsum(counts) - counts
    return owner, np.arange(owner.size) - starts[owner]


def _group_cumsum(values: np.ndarray, owner: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Running sum of ``values`` within each group (rows of a group are contiguous)."""
    cs = np.cumsum(values)
    first = np.flatnonzero(pos == 0)
    base = (cs[first] - values[first])[np.cumsum(pos == 0) - 1]
    return cs - base


def _choose_rows(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    """One categorical draw per row of non-negative weights (each row must have a positive one).

    Walks the few columns instead of a row-wise cumsum, which numpy does slowly for narrow arrays.
    """
    u = rng.random(len(weights)) * weights.sum(axis=1)
    choice = np.zeros(len(weights), np.int64)
    running = np.zeros(len(weights))
    for j in range(weights.shape[1] - 1):
        running += weights[:, j]
        choice += running <= u
    return choice


def _time_of_day(rng: np.random.Generator, t: np.ndarray, channel: np.ndarray) -> np.ndarray:
    """Keep each time's day but redraw the hour from its channel's profile."""
    out = t.copy()
    midnight = np.floor(t / _DAY) * _DAY
    for ch, cdf in _HOUR_CDF.items():
        sel = np.flatnonzero(channel == ch)
        if sel.size:
            hour = np.searchsorted(cdf, rng.random(sel.size), side="right")
            out[sel] = midnight[sel] + (hour + rng.random(sel.size)) * _HOUR
    return out


def _in_day_between(rng, t: np.ndarray, channel: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Give ``t`` a realistic hour for its channel unless that would leave [lo, hi)."""
    moved = _time_of_day(rng, t, channel)
    return np.where((moved >= lo) & (moved < hi), moved, np.clip(t, lo, np.nextafter(hi, lo)))


def _squeeze(offset: np.ndarray, room: np.ndarray) -> np.ndarray:
    """Shrink offsets before an anchor so they fit in ``room`` seconds, keeping their order.

    o -> o * room / (o + room) is increasing in o, always below ``room`` and close to o when o is
    small compared with the room, so a journey never reaches back before the customer's signup.
    """
    return offset * room / (offset + room)


class _Parts:
    """Event columns collected piece by piece and concatenated once per batch."""

    def __init__(self) -> None:
        self.parts: list[dict[str, np.ndarray]] = []

    def add(self, cust, t, channel, etype, *, order=None, revenue=None, csat=None, nps=None,
            campaign=None, category=None) -> None:
        n = len(cust)
        if n == 0:
            return

        def col(value, dtype, fill):
            if value is None:
                return np.full(n, fill, dtype)
            return np.broadcast_to(np.asarray(value, dtype), (n,))

        self.parts.append({
            "cust": np.asarray(cust, np.int64),
            "t": np.asarray(t, np.float64),
            "channel": col(channel, np.int8, 0),
            "etype": col(etype, np.int8, 0),
            "order": col(order, np.int32, 0),
            "revenue": col(revenue, np.float64, np.nan),
            "csat": col(csat, np.int8, 0),
            "nps": col(nps, np.int8, -1),
            "campaign": col(campaign, np.int16, -1),
            "category": col(category, np.int8, -1),
        })

    def concat(self) -> dict[str, np.ndarray]:
        return {k: np.concatenate([p[k] for p in self.parts]) for k in self.parts[0]}


# --- one batch of customers -------------------------------------------------------------------


@dataclass
class _Batch:
    customers: dict[str, np.ndarray]
    events: dict[str, np.ndarray]
    identities: dict[str, np.ndarray]
    truth: dict[str, np.ndarray]


def _simulate_batch(
    rng: np.random.Generator, cal: _Calendar, enabled: np.ndarray, days: np.ndarray
) -> _Batch:
    """Everything about the customers who signed up on ``days`` (one batch), as numpy columns."""
    n = len(days)
    end_s = cal.end_s

    # Who they are ------------------------------------------------------------------------------
    region_w = _REGION_WEIGHTS.copy()
    if not enabled[[WEB, APP]].any():
        region_w[_ONLINE_REGION] = 0.0  # an online-only customer could not buy anything
    region = rng.choice(len(REGIONS), size=n, p=region_w / region_w.sum())
    allowed = np.broadcast_to(enabled, (n, len(_CHANNELS))).copy()
    allowed[region == _ONLINE_REGION, STORE] = False
    allowed[:, SUPPORT] = False  # reactive: contacts follow orders, they are not a preference

    touch_allowed = allowed[:, _TOUCH].sum(axis=1)
    omni = (rng.random(n) < OMNICHANNEL_SHARE) & (touch_allowed >= 2)

    growth_frac = days / max(cal.n_days - 1, 1)
    w = np.where(omni[:, None], _OMNI_FIRST_TOUCH_WEIGHTS, _SINGLE_FIRST_TOUCH_WEIGHTS) * allowed
    w[:, APP] *= 1.0 + 0.8 * growth_frac  # app and social acquisition grow over the window
    w[:, SOCIAL] *= 1.0 + 0.5 * growth_frac
    w *= cal.channel_day[:, days].T
    acq = _choose_rows(rng, w).astype(np.int8)
    t0 = _time_of_day(rng, days * _DAY, acq)
    t0 = np.minimum(t0, end_s - 2 * _HOUR)  # leaves room for the omnichannel second touch

    alpha = np.broadcast_to(_PREF_ALPHA, (n, len(_CHANNELS))).copy()
    alpha[np.arange(n), acq] += _ACQUISITION_PREF_BOOST
    alpha[:, STORE] *= _STORE_AFFINITY_BY_REGION[region]
    alpha[~allowed] = 0.0
    pref = np.where(alpha > 0, rng.gamma(np.maximum(alpha, 1e-9)), 0.0)
    pref[~omni] = 0.0
    pref[~omni, acq[~omni]] = 1.0
    pref /= pref.sum(axis=1, keepdims=True)

    lam_base = rng.gamma(PURCHASE_RATE_SHAPE, 1.0 / PURCHASE_RATE_SCALE, n)
    lam = np.minimum(lam_base * np.where(omni, OMNICHANNEL_RATE_MULTIPLIER, 1.0), MAX_PURCHASE_RATE)
    dropout = rng.beta(DROPOUT_A, DROPOUT_B, n)
    spend = rng.gamma(SPEND_SHAPE, 1.0 / SPEND_SHAPE, n)
    converts = rng.random(n) < BUYER_SHARE
    cat_pref = rng.gamma(np.broadcast_to(_CATEGORY_POPULARITY * 4.0, (n, len(CATEGORIES))))

    # Loyalty tier follows the (noisy) purchase rate: gold members really do buy more often.
    log_mean = special.digamma(PURCHASE_RATE_SHAPE) - np.log(PURCHASE_RATE_SCALE)
    log_sd = math.sqrt(special.polygamma(1, PURCHASE_RATE_SHAPE))
    z = 0.75 * (np.log(lam_base) - log_mean) / log_sd + 0.66 * rng.standard_normal(n)
    segment = np.full(n, -1, np.int8)
    segment[z > stats.norm.ppf(0.45)] = 0
    segment[z > stats.norm.ppf(0.78)] = 1
    segment[z > stats.norm.ppf(0.93)] = 2

    # Second channel within a week of signup: what makes a customer omnichannel from day one.
    other = pref.copy()
    other[np.arange(n), acq] = 0.0
    omni &= other.sum(axis=1) > 0
    om = np.flatnonzero(omni)
    welcome_ch = _choose_rows(rng, other[om]).astype(np.int8)
    room = np.minimum(7 * _DAY, end_s - 1 - t0[om] - 60)
    raw = t0[om] + 60 + rng.random(om.size) * room
    welcome_t = _in_day_between(rng, raw, welcome_ch, t0[om] + 60, t0[om] + 60 + room)

    # Purchases (BG/NBD in operational time) -------------------------------------------------
    immediate = converts & (rng.random(n) < _IMMEDIATE_FIRST_PURCHASE[acq])
    delay = rng.lognormal(np.log(9.0), 1.1, n) * _DAY
    t1 = np.where(immediate, t0 + rng.uniform(240, 2400, n), t0 + delay)
    buyer = converts & (t1 < end_s - 60)
    b = np.flatnonzero(buyer)
    u1 = cal.to_op(t1[b])
    span = np.maximum(cal.op_end - u1, 0.0)
    n_rep = rng.poisson(lam[b] * span)
    u_rep = np.repeat(u1, n_rep) + np.repeat(span, n_rep) * rng.random(int(n_rep.sum()))
    p_cust = np.concatenate([b, np.repeat(b, n_rep)])
    p_t = np.concatenate([t1[b], cal.from_op(u_rep)])
    p_imm = np.concatenate([immediate[b], np.zeros(u_rep.size, bool)])

    p_day = cal.day_of(p_t)
    p_ch = _PURCHASE[_choose_rows(rng, pref[:, _PURCHASE][p_cust] * cal.channel_day[_PURCHASE][:, p_day].T)]
    p_ch = np.where(p_imm, acq[p_cust], p_ch).astype(np.int8)
    placed = _in_day_between(rng, p_t, p_ch, t0[p_cust] + 60, np.full(p_t.size, end_s - 1))
    p_t = np.where(p_imm, p_t, placed)
    order = np.lexsort((p_t, p_cust))
    p_cust, p_t, p_imm, p_ch = p_cust[order], p_t[order], p_imm[order], p_ch[order]
    p_counts = np.bincount(p_cust, minlength=n)
    _, p_k = _ragged(p_counts)

    p_cat = _choose_rows(rng, cat_pref[p_cust]).astype(np.int8)
    basket = np.exp(np.log(_BASKET_MEDIAN[p_cat]) + _BASKET_SIGMA[p_cat] * rng.standard_normal(p_t.size))
    p_rev = np.maximum(np.round(basket * spend[p_cust], 2), 1.0)

    refunded = rng.random(p_t.size) < _REFUND_RATE[p_cat]
    refund_delay = rng.uniform(2, 30, p_t.size) * _DAY
    partial = rng.random(p_t.size) < 0.3
    refund_amount = -np.where(partial, np.round(p_rev * rng.uniform(0.3, 0.9, p_t.size), 2), p_rev)

    can_contact = enabled[SUPPORT] & omni[p_cust]
    contacted = can_contact & (
        rng.random(p_t.size) < np.where(refunded, SUPPORT_CONTACT_RATE_REFUNDED, SUPPORT_CONTACT_RATE)
    )
    # A return is discussed before the refund goes through; other questions come within days.
    contact_raw = p_t + np.where(
        refunded, rng.random(p_t.size) * refund_delay, rng.exponential(3 * _DAY, p_t.size)
    )
    support = np.full(p_t.size, SUPPORT, np.int8)
    contact_t = _in_day_between(rng, contact_raw, support, p_t + 600, contact_raw + 3 * _DAY)
    csat = np.where(
        refunded,
        rng.choice(5, size=p_t.size, p=_CSAT_PROBS_REFUNDED),
        rng.choice(5, size=p_t.size, p=_CSAT_PROBS),
    ).astype(np.int8) + 1
    responded = contacted & (rng.random(p_t.size) < SURVEY_RESPONSE_RATE)
    survey_t = contact_t + rng.uniform(0.5, 48, p_t.size) * _HOUR
    nps = np.clip(np.round(1.9 * csat - 0.2 + 1.3 * rng.standard_normal(p_t.size)), 0, 10).astype(np.int8)

    # Dropout after repeat purchases only (BG/NBD); a poor contact about that order pushes harder.
    poor = contacted & (csat <= POOR_CSAT)
    q = np.minimum(1.0, dropout[p_cust] * np.where(poor, LOW_CSAT_CHURN_MULTIPLIER, 1.0))
    die = (p_k >= 1) & (rng.random(p_t.size) < q)
    owner, pos = _ragged(p_counts)
    keep = (_group_cumsum(die.astype(np.int64), owner, pos) - die) == 0
    death = np.full(n, np.inf)
    dying = keep & die
    death[p_cust[dying]] = p_t[dying]
    lapse = t0 + rng.exponential(NON_BUYER_DORMANCY_DAYS * _DAY, n)
    death = np.where(converts, death, lapse)
    alive_until = np.minimum(death, end_s)

    (p_cust, p_t, p_imm, p_ch, p_k, p_cat, p_rev, refunded, refund_delay, refund_amount, contacted,
     contact_t, csat, responded, survey_t, nps) = (
        a[keep] for a in (p_cust, p_t, p_imm, p_ch, p_k, p_cat, p_rev, refunded, refund_delay, refund_amount,
                          contacted, contact_t, csat, responded, survey_t, nps)
    )
    order_no = (p_k + 1).astype(np.int32)

    ev = _Parts()
    acq_et = _TOUCH_ET[acq]
    ev.add(np.arange(n), t0, acq, acq_et, campaign=np.where(acq == SOCIAL, PROSPECTING, -1))
    ev.add(om, welcome_t, welcome_ch, _WELCOME_ET[welcome_ch],
           campaign=np.where(np.isin(welcome_ch, [EMAIL, SMS]), WELCOME, -1))

    subscribed = omni & enabled[EMAIL] & (pref[:, EMAIL] >= 0.05)
    _purchase_journeys(rng, cal, ev, pref, omni, t0, subscribed, p_cust, p_t, p_ch, p_imm, p_cat, cat_pref)
    ev.add(p_cust, p_t, p_ch, PURCHASE_ET, order=order_no, revenue=p_rev, category=p_cat)

    # Aftermath of orders: refunds (some online orders come back to a store), contacts, surveys.
    r = np.flatnonzero(refunded)
    back_to_store = (
        np.isin(p_ch[r], [WEB, APP]) & omni[p_cust[r]] & allowed[p_cust[r], STORE]
        & (rng.random(r.size) < 0.15)
    )
    ev.add(p_cust[r], p_t[r] + refund_delay[r], np.where(back_to_store, STORE, p_ch[r]), REFUND_ET,
           order=order_no[r], revenue=refund_amount[r], category=p_cat[r])
    c = np.flatnonzero(contacted)
    ev.add(p_cust[c], contact_t[c], SUPPORT, SUPPORT_CONTACT)
    s = np.flatnonzero(responded)
    ev.add(p_cust[s], survey_t[s], SUPPORT, SURVEY, csat=csat[s], nps=nps[s])

    _background_sessions(rng, cal, ev, pref, omni, allowed, lam, t0, alive_until, cat_pref)
    open_rate = _campaign_touches(rng, cal, ev, pref, omni, allowed, subscribed, t0, alive_until, cat_pref)

    events = ev.concat()
    ev.parts = [events]
    _top_up_web_before_store(rng, ev, events, omni, allowed, t0, p_cust, p_t, p_ch, p_cat)
    events = ev.concat() if len(ev.parts) > 1 else events

    # Contract guards: strictly after the first touch (which stays first), nothing after `end`.
    first_touch = np.zeros(events["t"].size, bool)
    first_touch[:n] = True
    events["t"] = np.where(first_touch, events["t"], np.maximum(events["t"], t0[events["cust"]] + 1.0))
    inside = events["t"] < end_s
    events = {k: v[inside] for k, v in events.items()}
    events["t_ms"] = np.round(events.pop("t") * 1000.0).astype(np.int64)
    order = np.argsort((events["cust"] << 40) | events["t_ms"], kind="stable")
    events = {k: v[order] for k, v in events.items()}
    ev_counts = np.bincount(events["cust"], minlength=n)
    _, seq = _ragged(ev_counts)
    events["seq"] = (seq + 1).astype(np.int32)
    if ev_counts.max(initial=0) >= 10**_SEQ_DIGITS or order_no.max(initial=0) >= 10**_ORDER_DIGITS:
        raise RuntimeError("a demo customer has more events or orders than its ids can number")

    last_ms = events["t_ms"][np.cumsum(ev_counts) - 1]
    churned = death < end_s
    truth = {
        "lam": lam,
        "dropout": dropout,
        "churned_ms": np.where(churned, last_ms, -1),
        "omni": omni,
        "converts": converts,
        "spend": spend,
        "open_rate": open_rate,
    }
    customers = {"t0_ms": events["t_ms"][np.cumsum(ev_counts) - ev_counts], "acq": acq, "region": region,
                 "segment": segment}
    identities = _identities(rng, events, n, segment, p_cust, p_t, p_ch, end_s)
    return _Batch(customers, events, identities, truth)


def _purchase_journeys(
    rng, cal, ev, pref, omni, t0, subscribed, p_cust, p_t, p_ch, p_imm, p_cat, cat_pref
) -> None:
    """The session that ends in each order and the touches in the days before it."""
    m = p_t.size
    room = p_t - t0[p_cust] - 1.0
    online = np.isin(p_ch, [WEB, APP])

    # Online checkout session, built backwards from the order: checkout, cart, product views,
    # landing page (an order in the signup visit already has its landing page: the first touch).
    n_pv = np.where(online, 1 + rng.poisson(1.2, m), 0)
    n_sess = np.where(online, n_pv + 2 + (~p_imm), (~p_imm).astype(np.int64))
    owner, pos = _ragged(n_sess)
    s_ch = p_ch[owner]
    is_online = online[owner]
    last = pos == n_sess[owner] - 1
    s_et = np.where(pos == 0, CHECKOUT, np.where(pos == 1, ADD_TO_CART, PRODUCT_VIEW)).astype(np.int8)
    s_et = np.where(is_online & last & ~p_imm[owner], PAGE_VIEW, s_et)
    s_et = np.where(is_online, s_et, STORE_VISIT).astype(np.int8)
    gap = np.select(
        [~is_online, s_et == CHECKOUT, s_et == ADD_TO_CART, s_et == PRODUCT_VIEW],
        [rng.uniform(300, 2700, owner.size), rng.uniform(40, 300, owner.size),
         rng.uniform(60, 600, owner.size), rng.uniform(30, 400, owner.size)],
        rng.uniform(10, 120, owner.size),
    )
    offset = _group_cumsum(gap, owner, pos)
    session_len = np.zeros(m)
    session_len[owner[last]] = offset[last]
    ev.add(p_cust[owner], p_t[owner] - _squeeze(offset, room[owner]), s_ch, s_et,
           category=np.where(np.isin(s_et, [PAGE_VIEW, STORE_VISIT]), -1, p_cat[owner]))

    # Touches in the days before the session, on the channels this customer likes.
    mean_pre = np.where(omni[p_cust], _PRE_TOUCH_MEAN_OMNI, _PRE_TOUCH_MEAN_SINGLE)
    n_pre = np.where(p_imm, 0, rng.poisson(mean_pre))
    owner, _ = _ragged(n_pre)
    cust = p_cust[owner]
    ch = _TOUCH[_choose_rows(rng, pref[:, _TOUCH][cust])].astype(np.int8)
    offset = session_len[owner] + 1200 + rng.exponential(2.5 * _DAY, owner.size)
    t = p_t[owner] - _squeeze(offset, room[owner])
    et = _TOUCH_ET[ch].copy()
    browse = np.isin(ch, [WEB, APP])
    product = browse & (rng.random(owner.size) < 0.6)
    et[product] = PRODUCT_VIEW
    campaign = np.full(owner.size, -1, np.int16)
    is_email, is_sms = ch == EMAIL, ch == SMS
    campaign[is_email] = cal.latest_send(t[is_email])
    campaign[is_sms] = cal.latest_send(t[is_sms], cal.send_sms)
    social = ch == SOCIAL
    campaign[social] = np.where(rng.random(int(social.sum())) < 0.5, RETARGETING, -1)
    category = np.where(product, _choose_rows(rng, cat_pref[cust]), -1)
    ev.add(cust, t, ch, et, campaign=campaign, category=category)

    # A promotion in the last three days often is what brought the subscriber back.
    promo_i = np.searchsorted(cal.send_s[cal.send_promo], p_t, side="right") - 1
    promo_send = np.where(promo_i >= 0, cal.send_s[cal.send_promo][np.maximum(promo_i, 0)], -np.inf)
    driven = (
        subscribed[p_cust] & ~p_imm & (p_t - promo_send < 3 * _DAY) & (promo_send > t0[p_cust])
        & (rng.random(m) < 0.6)
    )
    d = np.flatnonzero(driven)
    offset = session_len[d] + rng.uniform(60, 3 * _HOUR, d.size)
    t = np.maximum(p_t[d] - _squeeze(offset, room[d]), promo_send[d] + 60)
    t = np.minimum(t, p_t[d] - 1.0)
    ev.add(p_cust[d], t, EMAIL, EMAIL_CLICK, campaign=cal.send_name[cal.send_promo][promo_i[d]])


def _browse_sessions(rng, ev, cust, start, channel, cat_pref, *, cart_p) -> None:
    """Web/app visits: a landing page, product views and sometimes a cart that is then abandoned."""
    k = cust.size
    n_pv = rng.poisson(1.3, k)
    cart = rng.random(k) < cart_p
    checkout = cart & (rng.random(k) < 0.35)
    n_ev = 1 + n_pv + cart + checkout
    owner, pos = _ragged(n_ev)
    o_pv = n_pv[owner]
    et = np.select(
        [pos == 0, pos <= o_pv, pos == o_pv + 1], [PAGE_VIEW, PRODUCT_VIEW, ADD_TO_CART], CHECKOUT
    )
    gap = np.where(pos == 0, 0.0, rng.uniform(20, 300, owner.size))
    t = start[owner] + _group_cumsum(gap, owner, pos)
    browsing_cat = _choose_rows(rng, cat_pref[cust])
    ev.add(cust[owner], t, channel[owner], et.astype(np.int8),
           category=np.where(et == PAGE_VIEW, -1, browsing_cat[owner]))


def _background_sessions(rng, cal, ev, pref, omni, allowed, lam, t0, alive_until, cat_pref) -> None:
    """Visits that do not end in an order, more often for customers who buy more often."""
    rate = _SESSION_RATE_BASE + _SESSION_RATE_PER_PURCHASE_RATE * lam
    lo = t0 + 60
    span = np.maximum(cal.to_op(alive_until) - cal.to_op(lo), 0.0)
    n_s = rng.poisson(rate * span)
    n_s[pref[:, _SESSION].sum(axis=1) == 0] = 0  # e.g. only email and a shop channel enabled
    owner, _ = _ragged(n_s)
    t = cal.from_op(cal.to_op(lo[owner]) + rng.random(owner.size) * span[owner])
    weights = pref[:, _SESSION][owner] * cal.channel_day[_SESSION][:, cal.day_of(t)].T
    ch = _SESSION[_choose_rows(rng, weights)].astype(np.int8)
    t = _in_day_between(rng, t, ch, lo[owner], alive_until[owner])

    web = np.isin(ch, [WEB, APP])
    _browse_sessions(rng, ev, owner[web], t[web], ch[web], cat_pref, cart_p=0.22)
    st = ch == STORE
    ev.add(owner[st], t[st], STORE, STORE_VISIT)

    so = np.flatnonzero(ch == SOCIAL)
    cust = owner[so]
    promo_i = np.searchsorted(cal.send_s[cal.send_promo], t[so], side="right") - 1
    recent_promo = (promo_i >= 0) & (t[so] - cal.send_s[cal.send_promo][np.maximum(promo_i, 0)] < 10 * _DAY)
    paid = rng.random(so.size) < 0.45
    campaign = np.where(rng.random(so.size) < 0.5, PROSPECTING, RETARGETING).astype(np.int16)
    campaign = np.where(recent_promo, cal.send_name[cal.send_promo][np.maximum(promo_i, 0)], campaign)
    ev.add(cust, t[so], SOCIAL, SOCIAL_ENG, campaign=np.where(paid, campaign, -1))
    # Some social posts are clicked through to the web shop.
    through = allowed[cust, WEB] & omni[cust] & (rng.random(so.size) < 0.2)
    _browse_sessions(rng, ev, cust[through], t[so][through] + rng.uniform(5, 60, int(through.sum())),
                     np.full(int(through.sum()), WEB, np.int8), cat_pref, cart_p=0.1)


def _campaign_touches(rng, cal, ev, pref, omni, allowed, subscribed, t0, alive_until, cat_pref) -> np.ndarray:
    """Email opens/clicks of every send while subscribed and alive; sms link visits of opted-in customers."""
    n = t0.size
    open_rate = np.full(n, np.nan)
    sub = np.flatnonzero(subscribed)
    base = rng.beta(2.0, 5.0, sub.size) * (0.5 + 3.0 * pref[sub, EMAIL])
    open_rate[sub] = np.clip(base, 0.02, 0.85)
    if sub.size:
        send = cal.send_s
        in_span = (send[None, :] > t0[sub, None]) & (send[None, :] < alive_until[sub, None])
        p_open = open_rate[sub, None] * np.where(cal.send_promo, 1.3, 1.0)[None, :]
        i, j = np.nonzero(in_span & (rng.random(in_span.shape, dtype=np.float32) < p_open))
        cust = sub[i]
        opened = send[j] + np.minimum(rng.lognormal(np.log(2.5 * _HOUR), 1.3, i.size), 10 * _DAY)
        ev.add(cust, opened, EMAIL, EMAIL_OPEN, campaign=cal.send_name[j])
        click = rng.random(i.size) < np.where(cal.send_promo[j], 0.30, 0.15)
        clicked = opened[click] + rng.uniform(5, 180, int(click.sum()))
        ev.add(cust[click], clicked, EMAIL, EMAIL_CLICK, campaign=cal.send_name[j][click])
        _land(rng, ev, pref, allowed, cust[click], clicked, cat_pref)

    opted = np.flatnonzero(omni & allowed[:, SMS] & (pref[:, SMS] >= 0.04))
    if opted.size:
        send = cal.send_s[cal.send_sms]
        in_span = (send[None, :] > t0[opted, None]) & (send[None, :] < alive_until[opted, None])
        i, j = np.nonzero(in_span & (rng.random(in_span.shape, dtype=np.float32) < 0.15))
        t = send[j] + rng.lognormal(np.log(15 * 60.0), 1.0, i.size)
        ev.add(opted[i], t, SMS, PAGE_VIEW, campaign=cal.send_name[cal.send_sms][j])
    return open_rate


def _land(rng, ev, pref, allowed, cust, clicked, cat_pref) -> None:
    """A click in a message opens the shop, in the app when the customer prefers it."""
    w = (pref[:, [WEB, APP]] * allowed[:, [WEB, APP]])[cust]
    has = w.sum(axis=1) > 0
    ch = np.array([WEB, APP], np.int8)[_choose_rows(rng, w[has])] if has.any() else np.zeros(0, np.int8)
    start = clicked[has] + rng.uniform(5, 60, int(has.sum()))
    _browse_sessions(rng, ev, cust[has], start, ch, cat_pref, cart_p=0.15)


def _top_up_web_before_store(rng, ev, events, omni, allowed, t0, p_cust, p_t, p_ch, p_cat) -> None:
    """Add "research online, buy offline" browses until WEB_BEFORE_STORE_SHARE of store orders have one."""
    store = np.flatnonzero(p_ch == STORE)
    if store.size == 0:
        return
    browse = (events["channel"] == WEB) & np.isin(events["etype"], [PAGE_VIEW, PRODUCT_VIEW])
    keys = np.sort(_key(events["cust"][browse], events["t"][browse]))
    target = _key(p_cust[store], p_t[store])
    i = np.searchsorted(keys, target, side="left") - 1
    prev = keys[np.maximum(i, 0)]
    window_ms = int(WEB_BEFORE_STORE_DAYS * _DAY * 1000)
    preceded = (i >= 0) & ((prev >> 40) == p_cust[store]) & (target - prev <= window_ms)
    cust = p_cust[store]
    eligible = ~preceded & omni[cust] & allowed[cust, WEB]
    wanted = WEB_BEFORE_STORE_SHARE * store.size - preceded.sum()
    share = float(np.clip(wanted / max(eligible.sum(), 1), 0.0, 1.0))
    pick = store[eligible & (rng.random(store.size) < share)]
    if pick.size == 0:
        return
    room = p_t[pick] - t0[p_cust[pick]] - 1.0
    look = rng.uniform(2 * _HOUR, 6.5 * _DAY, pick.size)
    viewed = look - rng.uniform(30, 300, pick.size)
    cust = p_cust[pick]
    ev.add(cust, p_t[pick] - _squeeze(look, room), WEB, PAGE_VIEW)
    ev.add(cust, p_t[pick] - _squeeze(viewed, room), WEB, PRODUCT_VIEW, category=p_cat[pick])


def _key(cust: np.ndarray, t: np.ndarray) -> np.ndarray:
    """One sortable int64 per (customer, millisecond) so per-customer lookups are one searchsorted."""
    return (cust.astype(np.int64) << 40) | np.round(t * 1000.0).astype(np.int64)


def _identities(rng, events, n, segment, p_cust, p_t, p_ch, end_s) -> dict[str, np.ndarray]:
    """1-4 identifiers per customer, from the systems where the customer actually showed up."""
    used = np.bincount(events["cust"] * len(_CHANNELS) + events["channel"], minlength=n * len(_CHANNELS))
    used = used.reshape(n, len(_CHANNELS)) > 0
    bought = p_t < end_s
    store_buyer = np.bincount(p_cust[bought & (p_ch == STORE)], minlength=n) > 0
    online_buyer = np.bincount(p_cust[bought & (p_ch != STORE)], minlength=n) > 0
    member = segment >= 0

    has = np.zeros((n, len(_ID_TYPES)), bool)
    has[:, 0] = online_buyer | used[:, EMAIL] | member
    has[:, 1] = member
    has[:, 2] = used[:, APP]
    has[:, 3] = used[:, WEB] | used[:, SOCIAL] | used[:, SMS]
    has[:, 4] = store_buyer
    has[:, 5] = used[:, SMS] | used[:, SUPPORT]
    has[:, 6] = ~has[:, :6].any(axis=1)
    has &= np.cumsum(has, axis=1) <= _MAX_IDENTITIES
    cust, kind = np.nonzero(has)

    source = np.select(
        [kind == 0, kind == 1, kind == 2, kind == 3, kind == 4, kind == 5],
        [
            np.select([used[cust, WEB], used[cust, APP], used[cust, EMAIL]], [0, 1, 2], 7),
            np.full(cust.size, 7),
            np.full(cust.size, 1),
            np.select([used[cust, WEB], used[cust, SOCIAL]], [0, 3], 4),
            np.full(cust.size, 5),
            np.where(used[cust, SMS], 4, 6),
        ],
        7,
    ).astype(np.int8)
    token = rng.integers(0, np.iinfo(np.uint64).max, cust.size, dtype=np.uint64, endpoint=True)
    return {
        "cust": cust,
        "kind": kind.astype(np.int8),
        "source": source,
        "first": rng.integers(0, len(_FIRST_NAMES), cust.size).astype(np.int8),
        "last": rng.integers(0, len(_LAST_NAMES), cust.size).astype(np.int8),
        "domain": rng.integers(0, len(_DOMAINS), cust.size).astype(np.int8),
        "token": token,
    }


# --- writing ----------------------------------------------------------------------------------


def _dict(codes: np.ndarray, names) -> pa.DictionaryArray:
    codes = np.asarray(codes)
    mask = codes < 0
    indices = pa.array(np.where(mask, 0, codes).astype(np.int32), mask=mask if mask.any() else None)
    dictionary = names if isinstance(names, pa.Array) else pa.array(names, pa.string())
    return pa.DictionaryArray.from_arrays(indices, dictionary)


def _ts(ms: np.ndarray, start_us: int) -> pa.Array:
    mask = ms < 0
    return pa.array(start_us + ms * 1000, type=pa.timestamp("us"), mask=mask if mask.any() else None)


def _ids(prefix: str, first: np.ndarray, width: int, second: np.ndarray | None = None, second_width: int = 0,
         valid: np.ndarray | None = None) -> pa.StringArray:
    """Fixed-width ids like ``E0000042-000007`` written digit by digit into one byte buffer.

    Formatting millions of ids in SQL or Python dominated the load time; numpy digit arithmetic
    and an Arrow array over the same buffer cost a fraction of it. Rows where ``valid`` is false
    are null and take no bytes.
    """
    if valid is not None:
        first = first[valid]
        second = None if second is None else second[valid]
    size = 1 + width + (1 + second_width if second is not None else 0)
    buf = np.empty((first.size, size), np.uint8)
    buf[:, 0] = ord(prefix)
    _digits(buf[:, 1 : 1 + width], first)
    if second is not None:
        buf[:, 1 + width] = ord("-")
        _digits(buf[:, 2 + width :], second)
    if valid is None:
        offsets = np.arange(first.size + 1, dtype=np.int64) * size
        return pa.LargeStringArray.from_buffers(first.size, pa.py_buffer(offsets), pa.py_buffer(buf))
    offsets = np.concatenate([[0], np.cumsum(valid * size)]).astype(np.int64)
    bitmap = pa.array(valid).buffers()[1]
    return pa.LargeStringArray.from_buffers(
        valid.size, pa.py_buffer(offsets), pa.py_buffer(buf), bitmap, int(valid.size - first.size)
    )


def _digits(out: np.ndarray, values: np.ndarray) -> None:
    v = values.astype(np.int64)
    for i in range(out.shape[1] - 1, -1, -1):
        out[:, i] = 48 + v % 10
        v = v // 10


def _insert(con, name: str, table: pa.Table, sql: str) -> int:
    view = f"_demo_{name}"
    con.register(view, table)
    try:
        con.execute(sql.format(view=view)).fetchall()
    finally:
        con.unregister(view)
    return table.num_rows


def _insert_batch(
    con, batch: _Batch, *, first_ordinal: int, width: int, start_us: int, campaigns: tuple[str, ...]
) -> dict[str, int]:
    c = batch.customers
    n = c["acq"].size
    ordinals = np.arange(first_ordinal, first_ordinal + n, dtype=np.int64)
    customer_ids = _ids("C", ordinals, width)
    counts = {}
    counts["customers"] = _insert(con, "customers", pa.table({
        "customer_id": customer_ids,
        "first_seen_at": _ts(c["t0_ms"], start_us),
        "acquisition_channel": _dict(c["acq"], _CHANNELS),
        "region": _dict(c["region"], REGIONS),
        "segment": _dict(c["segment"], SEGMENTS),
    }), """INSERT INTO customers (customer_id, first_seen_at, acquisition_channel, region, segment)
           SELECT customer_id, first_seen_at, acquisition_channel, region, segment FROM {view}""")

    e = batch.events
    ord_of_event = ordinals[e["cust"]]
    counts["events"] = _insert(con, "events", pa.table({
        "event_id": _ids("E", ord_of_event, width, e["seq"], _SEQ_DIGITS),
        "customer_id": _dict(e["cust"], customer_ids),
        "occurred_at": _ts(e["t_ms"], start_us),
        "channel": _dict(e["channel"], _CHANNELS),
        "event_type": _dict(e["etype"], EVENT_TYPES),
        "order_id": _ids("O", ord_of_event, width, e["order"], _ORDER_DIGITS, valid=e["order"] > 0),
        "revenue": pa.array(e["revenue"], mask=np.isnan(e["revenue"])),
        "csat_score": pa.array(e["csat"], mask=e["csat"] == 0),
        "nps_score": pa.array(e["nps"], mask=e["nps"] < 0),
        "campaign": _dict(e["campaign"], campaigns),
        "product_category": _dict(e["category"], CATEGORIES),
        "source_system": _dict(_SOURCE_OF_CHANNEL[e["channel"]], _SOURCES),
    }), """INSERT INTO events (event_id, customer_id, occurred_at, channel, event_type, order_id, revenue,
                               csat_score, nps_score, campaign, product_category, source_system)
           SELECT event_id, customer_id, occurred_at, channel, event_type, order_id, revenue,
                  csat_score, nps_score, campaign, product_category, source_system FROM {view}""")

    i = batch.identities
    counts["identities"] = _insert(con, "identities", pa.table({
        "customer_id": _dict(i["cust"], customer_ids),
        "ord": ordinals[i["cust"]],
        "identifier_type": _dict(i["kind"], _ID_TYPES),
        "source_system": _dict(i["source"], _SOURCES),
        "first_name": _dict(i["first"], _FIRST_NAMES),
        "last_name": _dict(i["last"], _LAST_NAMES),
        "domain": _dict(i["domain"], _DOMAINS),
        "token": i["token"],
    }), f"""INSERT INTO identities (customer_id, identifier_type, identifier_value, source_system)
            SELECT customer_id, identifier_type,
                   CASE identifier_type
                     WHEN 'email' THEN sha256(lower(trim(first_name || '.' || last_name || ord::VARCHAR
                                                         || '@' || domain)))
                     WHEN 'phone' THEN sha256('+1' || (2000000000 + (ord * 97) % 8000000000)::VARCHAR)
                     WHEN 'loyalty_id' THEN 'LY' || lpad(((ord * 7919) % 10000000000)::VARCHAR, 10, '0')
                     WHEN 'cookie_id' THEN 'ck_' || printf('%016x', token)
                     WHEN 'device_id' THEN 'dev_' || printf('%016x', token)
                     WHEN 'pos_card' THEN sha256('card_' || printf('%016x', token))
                     ELSE 'CRM' || lpad(ord::VARCHAR, {width}, '0')
                   END,
                   source_system
            FROM {{view}}""")

    t = batch.truth
    _insert(con, "truth", pa.table({
        "customer_id": customer_ids,
        "purchase_rate_per_week": t["lam"],
        "dropout_probability": t["dropout"],
        "churned_at": _ts(t["churned_ms"], start_us),
        "is_omnichannel": t["omni"],
        "converts": t["converts"],
        "spend_multiplier": t["spend"],
        "email_open_rate": pa.array(t["open_rate"], mask=np.isnan(t["open_rate"])),
    }), """INSERT INTO demo_truth SELECT customer_id, purchase_rate_per_week, dropout_probability, churned_at,
           is_omnichannel, converts, spend_multiplier, email_open_rate FROM {view}""")
    return counts
