"""The demo generator: deterministic, inside the contract, realistic, and its planted effects recoverable.

One mid-sized store is generated per module; the planted effects are checked on it with plain
DuckDB queries, the way an analyst would find them, against the constants in data_access.demo.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import pytest
from scipy import stats

from data_access import demo
from data_access.schema import EVENT_TYPES, check_contract
from data_access.settings import DEFAULT_CHANNELS
from data_access.store import Store, writable_store

# Large enough that the rarest planted effect (churn after a poor survey, a few hundred
# responses) is measured within a usable interval, small enough to build in a few seconds.
CUSTOMERS = 20_000
END = demo.DEMO_END


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    with writable_store(path, fresh=True) as writable:
        summary = demo.generate_demo(writable, customers=CUSTOMERS, seed=11, progress=lambda _: None)
    opened = Store(path)
    opened.summary = summary
    yield opened
    opened.close()


def rows(store: Store, sql: str, params: list | None = None) -> list[tuple]:
    return store.connection.execute(sql, params or []).fetchall()


def one(store: Store, sql: str, params: list | None = None):
    return rows(store, sql, params)[0][0]


# --- determinism ------------------------------------------------------------------------------

ORDERED = {
    "customers": "customer_id",
    "events": "event_id",
    "identities": "customer_id, identifier_type, identifier_value",
    "demo_truth": "customer_id",
}


def _generate(path, **options) -> Store:
    with writable_store(path, fresh=True) as writable:
        demo.generate_demo(writable, progress=lambda _: None, **options)
    return Store(path)


def test_same_seed_gives_identical_tables_and_another_seed_does_not(tmp_path):
    # Small batches so the per-batch seeding and the batch boundaries are exercised too.
    options = {"customers": 700, "seed": 3, "batch_customers": 300}
    first = _generate(tmp_path / "a.duckdb", **options)
    second = _generate(tmp_path / "b.duckdb", **options)
    other = _generate(tmp_path / "c.duckdb", **{**options, "seed": 4})
    try:
        for table, order in ORDERED.items():
            query = f"SELECT * FROM {table} ORDER BY {order}"
            a = first.connection.execute(query).fetchall()
            assert a == second.connection.execute(query).fetchall(), table
            assert len(a) > 0
        events = "SELECT * FROM events ORDER BY event_id"
        assert first.connection.execute(events).fetchall() != other.connection.execute(events).fetchall()
    finally:
        for s in (first, second, other):
            s.close()


# --- contract ---------------------------------------------------------------------------------


def test_store_honours_the_contract(store):
    assert check_contract(store.backend, channels=DEFAULT_CHANNELS) == []


def test_summary_counts_match_the_tables(store):
    s = store.summary
    assert (s.customers, s.events, s.identities) == (
        CUSTOMERS,
        store.row_count("events"),
        store.row_count("identities"),
    )
    assert one(store, "SELECT count(*) FROM demo_truth") == CUSTOMERS


def test_first_seen_is_the_first_event_on_the_acquisition_channel(store):
    bad = one(store, """
        WITH firsts AS (
            SELECT customer_id, min(occurred_at) AS first_at, count(*) AS n FROM events GROUP BY 1
        ), at_first AS (
            SELECT e.customer_id, count(*) AS tied, any_value(e.channel) AS channel
            FROM events e JOIN firsts f ON e.customer_id = f.customer_id AND e.occurred_at = f.first_at
            GROUP BY 1
        )
        SELECT count(*) FROM customers c
        LEFT JOIN firsts f USING (customer_id) LEFT JOIN at_first a USING (customer_id)
        WHERE f.first_at IS DISTINCT FROM c.first_seen_at OR a.tied != 1
           OR a.channel != c.acquisition_channel""")
    assert bad == 0


def test_nothing_happens_outside_the_window(store):
    first, last = rows(store, "SELECT min(occurred_at), max(occurred_at) FROM events")[0]
    assert last < datetime.combine(END + timedelta(days=1), datetime.min.time())
    assert first >= datetime(2024, 11, 1)


def test_field_rules_per_event_type(store):
    violations = rows(store, """
        SELECT event_type, count(*) FROM events WHERE
            (revenue IS NOT NULL) != (event_type IN ('purchase', 'refund'))
            OR (order_id IS NOT NULL) != (event_type IN ('purchase', 'refund'))
            OR (event_type = 'purchase' AND revenue <= 0)
            OR (event_type = 'refund' AND revenue >= 0)
            OR (csat_score IS NOT NULL) != (event_type = 'survey_response')
            OR (nps_score IS NOT NULL) != (event_type = 'survey_response')
            OR (campaign IS NOT NULL AND channel NOT IN ('email', 'sms', 'social'))
        GROUP BY 1""")
    assert violations == []
    assert {r[0] for r in rows(store, "SELECT DISTINCT event_type FROM events")} == set(EVENT_TYPES)


def test_ids_follow_their_patterns(store):
    malformed = "SELECT count(*) FROM customers WHERE NOT regexp_full_match(customer_id, 'C[0-9]{7}')"
    assert one(store, malformed) == 0
    assert one(store, "SELECT min(customer_id) FROM customers") == "C0000001"
    assert one(store, """SELECT count(*) FROM events
                         WHERE NOT regexp_full_match(event_id, 'E[0-9]{7}-[0-9]{6}')
                            OR substr(event_id, 2, 7) != substr(customer_id, 2, 7)""") == 0
    assert one(store, """SELECT count(*) FROM (SELECT order_id FROM events WHERE event_type = 'purchase'
                         GROUP BY 1 HAVING count(*) > 1)""") == 0


def test_refunds_follow_their_order(store):
    refunds, orphan, early, too_big = rows(store, """
        SELECT count(*), count(*) FILTER (WHERE p.order_id IS NULL),
               count(*) FILTER (WHERE r.occurred_at <= p.occurred_at),
               count(*) FILTER (WHERE -r.revenue > p.revenue + 1e-9)
        FROM events r LEFT JOIN events p ON p.order_id = r.order_id AND p.event_type = 'purchase'
                                         AND p.customer_id = r.customer_id
        WHERE r.event_type = 'refund'""")[0]
    orders = one(store, "SELECT count(*) FROM events WHERE event_type = 'purchase'")
    assert (orphan, early, too_big) == (0, 0, 0)
    assert 0.02 <= refunds / orders <= 0.08  # "a few %"


def test_surveys_follow_support_contacts_and_scores_agree(store):
    unprompted = one(store, """
        SELECT count(*) FROM events s WHERE s.event_type = 'survey_response' AND NOT EXISTS (
            SELECT 1 FROM events c WHERE c.customer_id = s.customer_id AND c.event_type = 'support_contact'
              AND c.occurred_at < s.occurred_at AND c.occurred_at >= s.occurred_at - INTERVAL 2 DAYS)""")
    assert unprompted == 0
    corr, channels = rows(store, """SELECT corr(csat_score, nps_score), list(DISTINCT channel)
                                    FROM events WHERE event_type = 'survey_response'""")[0]
    assert corr > 0.7
    assert channels == ["support"]


def test_identities_are_one_to_four_per_customer_and_personal_data_is_hashed(store):
    low, high, customers = rows(store, """
        SELECT min(n), max(n), count(*)
        FROM (SELECT customer_id, count(*) AS n FROM identities GROUP BY 1)""")[0]
    assert (low, high, customers) == (1, 4, CUSTOMERS)
    unhashed = one(store, """
        SELECT count(*) FROM identities WHERE identifier_type IN ('email', 'phone', 'pos_card')
        AND NOT regexp_full_match(identifier_value, '[0-9a-f]{64}')""")
    assert unhashed == 0
    shared = one(store, """SELECT count(*) FROM (SELECT identifier_type, identifier_value FROM identities
                           GROUP BY ALL HAVING count(DISTINCT customer_id) > 1)""")
    assert shared == 0  # one person per identifier: stitching would otherwise merge customers
    sources = {r[0] for r in rows(store, "SELECT DISTINCT source_system FROM identities")}
    assert {"shopify_web", "mobile_app", "pos", "crm"} <= sources


def test_restricted_channel_list_is_respected(tmp_path):
    channels = ("web", "store", "email")
    s = _generate(tmp_path / "few.duckdb", customers=400, seed=5, channels=channels)
    try:
        assert check_contract(s.backend, channels=channels) == []
        used = {r[0] for r in s.connection.execute("SELECT DISTINCT channel FROM events").fetchall()}
        assert used <= set(channels) and {"web", "store"} <= used
    finally:
        s.close()


def test_needs_a_channel_to_buy_on(tmp_path):
    with writable_store(tmp_path / "none.duckdb", fresh=True) as writable:
        with pytest.raises(ValueError, match="web, app, store"):
            demo.generate_demo(writable, customers=10, channels=("email", "social"), progress=lambda _: None)


# --- realistic shapes -------------------------------------------------------------------------


def test_volumes_look_like_a_retailer(store):
    per_customer = store.summary.events / CUSTOMERS
    assert 35 <= per_customer <= 65
    buyers = one(store, "SELECT count(DISTINCT customer_id) FROM events WHERE event_type = 'purchase'")
    buying = buyers / CUSTOMERS
    assert 0.55 <= buying <= 0.85
    aov = one(store, "SELECT avg(revenue) FROM events WHERE event_type = 'purchase'")
    assert 50 <= aov <= 120
    carts, orders_online = rows(store, """
        SELECT count(*) FILTER (WHERE event_type = 'add_to_cart'),
               count(*) FILTER (WHERE event_type = 'purchase' AND channel IN ('web', 'app'))
        FROM events""")[0]
    assert carts > 1.3 * orders_online  # many carts are abandoned
    sms_share = one(store, "SELECT avg((channel = 'sms')::INT) FROM events")
    assert 0 < sms_share < 0.02


def test_store_peaks_at_the_weekend_and_the_year_in_december(store):
    weekend, weekday = rows(store, """
        SELECT count(*) FILTER (WHERE isodow(occurred_at) >= 6) / 2.0,
               count(*) FILTER (WHERE isodow(occurred_at) <= 5) / 5.0
        FROM events WHERE channel = 'store' AND event_type = 'purchase'""")[0]
    assert weekend > 1.25 * weekday
    # Per active customer, so the growing customer base does not hide the season.
    by_month = dict(rows(store, """
        SELECT month(occurred_at), count(*) / count(DISTINCT customer_id) FROM events
        WHERE event_type = 'purchase' AND occurred_at >= DATE '2025-09-01' AND occurred_at < DATE '2026-01-01'
        GROUP BY 1"""))
    assert by_month[12] > by_month[9] and by_month[12] > by_month[10]


def test_campaign_sends_cause_spikes(store):
    # Black Friday 2025: orders that day against the same weekday one and two weeks before.
    day = demo._black_friday(2025)
    counts = [
        one(store, "SELECT count(*) FROM events WHERE event_type = 'purchase' AND occurred_at::DATE = ?",
            [day - timedelta(days=lag)])
        for lag in (0, 7, 14)
    ]
    assert counts[0] > 1.5 * max(counts[1:])
    clicks = one(store, """SELECT count(*) FROM events WHERE event_type = 'email_click'
                           AND campaign = 'black_friday_2025'""")
    assert clicks > 0


# --- planted effects --------------------------------------------------------------------------


def test_omnichannel_share(store):
    observed, agrees = rows(store, """
        SELECT avg((n >= 2)::INT), bool_and((n >= 2) = t.is_omnichannel)
        FROM (SELECT customer_id, count(DISTINCT channel) AS n FROM events GROUP BY 1)
        JOIN demo_truth t USING (customer_id)""")[0]
    assert agrees
    assert observed == pytest.approx(demo.OMNICHANNEL_SHARE, abs=0.02)


def test_omnichannel_customers_buy_more_often(store):
    # BG/NBD has no dropout between the first and the second purchase, so the time to the second
    # purchase scales exactly with 1/rate: the ratio of medians is the rate multiplier. Only
    # customers followed for 26 weeks count, and a gap beyond that is censored there.
    follow = 26 * 7 * 86_400
    medians = dict(rows(store, f"""
        WITH p AS (
            SELECT customer_id, occurred_at,
                   row_number() OVER (PARTITION BY customer_id ORDER BY occurred_at, event_id) AS k
            FROM events WHERE event_type = 'purchase'
        ), gaps AS (
            SELECT customer_id, max(occurred_at) FILTER (WHERE k = 1) AS first_at,
                   max(occurred_at) FILTER (WHERE k = 2) AS second_at
            FROM p GROUP BY 1
        ), channels AS (SELECT customer_id, count(DISTINCT channel) >= 2 AS omni FROM events GROUP BY 1)
        SELECT omni, median(least(coalesce(epoch(second_at - first_at), {follow}), {follow}))
        FROM gaps JOIN channels USING (customer_id)
        WHERE first_at <= TIMESTAMP '{END + timedelta(days=1)}' - INTERVAL 26 WEEKS
        GROUP BY 1"""))
    assert max(medians.values()) < follow  # both medians observed, not censored
    assert medians[False] / medians[True] == pytest.approx(demo.OMNICHANNEL_RATE_MULTIPLIER, rel=0.15)


def test_web_browse_before_store_purchase_share(store):
    share = one(store, f"""
        SELECT avg(EXISTS (
            SELECT 1 FROM events w
            WHERE w.customer_id = s.customer_id AND w.channel = 'web'
              AND w.event_type IN ('page_view', 'product_view')
              AND w.occurred_at < s.occurred_at
              AND w.occurred_at >= s.occurred_at - INTERVAL {demo.WEB_BEFORE_STORE_DAYS} DAYS)::INT)
        FROM events s WHERE s.channel = 'store' AND s.event_type = 'purchase'""")
    assert share == pytest.approx(demo.WEB_BEFORE_STORE_SHARE, abs=0.03)


def test_poor_support_experience_multiplies_churn(store):
    # A survey is "followed by churn" when the customer never buys again and the truth says they
    # dropped out (rather than still being alive at the end of the window).
    groups = dict((g, (n, churned)) for g, n, churned in rows(store, """
        WITH last_order AS (
            SELECT customer_id, max(occurred_at) AS last_at
            FROM events WHERE event_type = 'purchase' GROUP BY 1
        )
        SELECT CASE WHEN s.csat_score <= 2 THEN 'poor' ELSE 'good' END, count(*),
               count(*) FILTER (WHERE t.churned_at IS NOT NULL AND l.last_at < s.occurred_at)
        FROM events s JOIN last_order l USING (customer_id) JOIN demo_truth t USING (customer_id)
        WHERE s.event_type = 'survey_response' AND (s.csat_score <= 2 OR s.csat_score >= 4)
        GROUP BY 1"""))
    (n_poor, c_poor), (n_good, c_good) = groups["poor"], groups["good"]
    ratio = (c_poor / n_poor) / (c_good / n_good)
    # The multiplied dropout probability is capped at 1, so the expected ratio is a bit lower. The
    # measurement itself reads a few % low (at 1M customers: 2.35 for 2.46): when a later order
    # comes before a survey, that order's dropout is credited to the survey in both groups.
    dropout = stats.beta(demo.DROPOUT_A, demo.DROPOUT_B)
    m = demo.LOW_CSAT_CHURN_MULTIPLIER
    expected = dropout.expect(lambda p: min(1.0, m * p)) / dropout.mean()
    # Tolerance from the binomial error of the two rates (delta method on the log ratio).
    se = math.sqrt((1 - c_poor / n_poor) / c_poor + (1 - c_good / n_good) / c_good)
    assert n_poor >= 200
    assert abs(math.log(ratio / expected)) <= 3 * se
    assert ratio > 1.6  # and whatever the noise, poor service clearly drives churn


def test_truth_table_matches_the_latent_population(store):
    mean_rate, mean_dropout, omni = rows(store, """
        SELECT avg(purchase_rate_per_week / CASE WHEN is_omnichannel THEN ? ELSE 1 END),
               avg(dropout_probability), avg(is_omnichannel::INT) FROM demo_truth""",
                                         [demo.OMNICHANNEL_RATE_MULTIPLIER])[0]
    assert mean_rate == pytest.approx(demo.PURCHASE_RATE_SHAPE / demo.PURCHASE_RATE_SCALE, rel=0.05)
    assert mean_dropout == pytest.approx(demo.DROPOUT_A / (demo.DROPOUT_A + demo.DROPOUT_B), rel=0.05)
    # Churned customers really stop: nothing after churned_at.
    after = one(store, """SELECT count(*) FROM events e JOIN demo_truth t USING (customer_id)
                          WHERE e.occurred_at > t.churned_at""")
    assert after == 0
