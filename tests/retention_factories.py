"""Tiny hand-written stores for the retention and satisfaction tests (the docstrings say who does what)."""

from __future__ import annotations

from pathlib import Path

from data_access.store import Store
from tests.factories import build_store, customer, event


def five_customers_store(path: Path) -> Store:
    """Five customers, January to 15 April 2026 (a Wednesday: April and its week are not over).

    - A (web, North, gold): browses on Saturday 31 January (the last day of the month, week of
      26 January), buys in store on Monday 2 February (next month and next week), buys on the web on
      Friday 10 April (week of 6 April).
    - B (store, South): buys in store 5 January, opens an email 20 January, buys in store 3 March.
    - C (app, North, silver): browses and buys in the app on 10/11 February, never again.
    - D (web, South): browses on the web 15 January and again 20 March (back after a gap).
    - E (web, North): browses on the web on 15 April, the last day with data.
    """
    customers = [
        customer("A", "2026-01-31 10:00", "web", "North", "gold"),
        customer("B", "2026-01-05 12:00", "store", "South"),
        customer("C", "2026-02-10 09:00", "app", "North", "silver"),
        customer("D", "2026-01-15 18:00", "web", "South"),
        customer("E", "2026-04-15 20:00", "web", "North"),
    ]
    events = [
        event("a1", "A", "2026-01-31 10:00", "web", "page_view"),
        event("a2", "A", "2026-02-02 11:00", "store", "purchase", revenue=50.0, order_id="oa1"),
        event("a3", "A", "2026-04-10 19:00", "web", "purchase", revenue=30.0, order_id="oa2"),
        event("b1", "B", "2026-01-05 12:00", "store", "purchase", revenue=80.0, order_id="ob1"),
        event("b2", "B", "2026-01-20 07:00", "email", "email_open"),
        event("b3", "B", "2026-03-03 12:00", "store", "purchase", revenue=40.0, order_id="ob2"),
        event("c1", "C", "2026-02-10 09:00", "app", "page_view"),
        event("c2", "C", "2026-02-11 09:00", "app", "purchase", revenue=25.0, order_id="oc1"),
        event("d1", "D", "2026-01-15 18:00", "web", "page_view"),
        event("d2", "D", "2026-03-20 18:00", "web", "page_view"),
        event("e1", "E", "2026-04-15 20:00", "web", "page_view"),
    ]
    return build_store(path, customers=customers, events=events)


# Survey answers of the satisfaction store: (customer, day, channel, csat, nps).
SURVEYS = [
    *[
        (f"S{i}", f"2026-03-{i:02d}", "support", csat, nps)
        for i, (csat, nps) in enumerate(
            [(5, 10), (5, 9), (4, 9), (4, 8), (4, 7), (3, 6), (2, 3), (1, 0), (5, 10), (4, 8)], start=1
        )
    ],
    ("P1", "2026-03-15", "app", 5, 10),
    ("P2", "2026-03-16", "app", 3, 5),
    *[
        (f"Q{i}", f"2026-04-{i:02d}", "support", csat, nps)
        for i, (csat, nps) in enumerate([(4, 9), (4, 7), (3, 6), (3, 6), (5, 10)], start=1)
    ],
    ("S5", "2026-04-20", "support", 2, 4),
]


def satisfaction_store(path: Path) -> Store:
    """Survey answers in March and April 2026; data ends 30 June 2026 (X browses that day).

    - S1..S10 answer on support on 1..10 March (CSAT 5 5 4 4 4 3 2 1 5 4, NPS 10 9 9 8 7 6 3 0 10 8);
      S1..S4 also had a support contact on 1 March. S5 answers again on 20 April: CSAT 2, NPS 4.
    - P1, P2 answer in the app in March (CSAT 5 and 3, NPS 10 and 5): a tiny sample.
    - Q1..Q5 answer on support on 1..5 April (CSAT 4 4 3 3 5, NPS 9 7 6 6 10).
    - Later activity: S1 buys 100 on 20 June, S2 buys 60 on 10 June, S7 browses 5 June, Q1 browses
      15 June. Everybody else is silent after their answers.
    - X (no answer) browses on 30 June, the last day with data.
    """
    ids = sorted({row[0] for row in SURVEYS}) + ["X"]
    customers = [customer(cid, "2026-02-01 09:00", "web", "North" if cid < "R" else "South") for cid in ids]
    events = [
        event(f"sv{n}", cid, f"{day} 12:00", channel, "survey_response", csat=csat, nps=nps)
        for n, (cid, day, channel, csat, nps) in enumerate(SURVEYS)
    ]
    events += [
        event(f"sc{i}", f"S{i}", "2026-03-01 09:00", "support", "support_contact") for i in range(1, 5)
    ]
    events += [
        event("s1p", "S1", "2026-06-20 10:00", "web", "purchase", revenue=100.0, order_id="os1"),
        event("s2p", "S2", "2026-06-10 10:00", "store", "purchase", revenue=60.0, order_id="os2"),
        event("s7v", "S7", "2026-06-05 10:00", "web", "page_view"),
        event("q1v", "Q1", "2026-06-15 10:00", "web", "page_view"),
        event("xv", "X", "2026-06-30 10:00", "web", "page_view"),
    ]
    return build_store(path, customers=customers, events=events)
