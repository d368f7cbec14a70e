"""Loaders: every row ends up loaded, already present or quarantined with a readable reason."""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path

import polars as pl
import pytest

from data_access.ingest import LoadError, LoadReport, load_contract_files, load_transactions
from data_access.settings import DEFAULT_CHANNELS
from data_access.store import writable_store

CHANNELS = DEFAULT_CHANNELS
EVENT_HEADER = "event_id,customer_id,occurred_at,channel,event_type,order_id,revenue,csat_score,nps_score"
GOOD_ROW = "e0,c0,2024-01-01T09:00:00,web,page_view,,,,"


@pytest.fixture
def store(tmp_path):
    with writable_store(tmp_path / "x.duckdb", fresh=True) as opened:
        yield opened


def write(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def rows(store, sql: str, params=None) -> list[tuple]:
    return store.connection.execute(sql, params or []).fetchall()


def snapshot(store) -> dict[str, list[tuple]]:
    return {
        "events": rows(store, "SELECT * FROM events ORDER BY event_id"),
        "customers": rows(store, "SELECT * FROM customers ORDER BY customer_id"),
        "identities": rows(store, "SELECT * FROM identities ORDER BY ALL"),
    }


def assert_recorded(store, report: LoadReport) -> None:
    """The report reconciles and is what the loads table says."""
    assert report.reconciles(), report
    (logged,) = rows(
        store,
        "SELECT kind, source_file, rows_read, rows_loaded, rows_already_present, rows_quarantined "
        "FROM loads WHERE load_id = ?",
        [report.load_id],
    )
    assert logged == (
        report.kind,
        report.source_file,
        report.rows_read,
        report.rows_loaded,
        report.rows_already_present,
        report.rows_quarantined,
    )
    (quarantined,) = rows(store, "SELECT count(*) FROM quarantine WHERE load_id = ?", [report.load_id])[0]
    assert quarantined == report.rows_quarantined


def load_events(store, path: Path, **kwargs) -> LoadReport:
    (report,) = load_contract_files(store, events=path, channels=CHANNELS, **kwargs)
    assert_recorded(store, report)
    return report


# --- events: one rule at a time -------------------------------------------------------------

RULES = [
    # (the bad data row, column named in the message, words in the reason)
    (",c1,2024-01-02,web,page_view,,,,", "event_id", "required value is empty"),
    ("e1,,2024-01-02,web,page_view,,,,", "customer_id", "required value is empty"),
    ("e1,c1,,web,page_view,,,,", "occurred_at", "required value is empty"),
    ("e1,c1,02/01/2024,web,page_view,,,,", "occurred_at", "'02/01/2024' is not an ISO 8601 timestamp"),
    ("e1,c1,2024-02-30,web,page_view,,,,", "occurred_at", "is not an ISO 8601 timestamp"),
    ("e1,c1,2024-01-02,tv,page_view,,,,", "channel", "'tv' is not one of the configured channels"),
    ("e1,c1,2024-01-02,web,click,,,,", "event_type", "'click' is not an event type"),
    ("e1,c1,2024-01-02,web,page_view,,ten,,", "revenue", "'ten' is not a number"),
    ("e1,c1,2024-01-02,web,survey_response,,,7,", "csat_score", "7 is outside 1–5"),
    ("e1,c1,2024-01-02,web,survey_response,,,0,", "csat_score", "0 is outside 1–5"),
    ("e1,c1,2024-01-02,web,survey_response,,,4.5,", "csat_score", "'4.5' is not a whole number"),
    ("e1,c1,2024-01-02,web,survey_response,,,good,", "csat_score", "'good' is not a number"),
    ("e1,c1,2024-01-02,web,survey_response,,,,11", "nps_score", "11 is outside 0–10"),
    ("e1,c1,2024-01-02,web,survey_response,,,,-1", "nps_score", "-1 is outside 0–10"),
    ("e1,c1,2024-01-02,web,purchase,o1,-5,,", "revenue", "a purchase needs a revenue > 0; got -5"),
    ("e1,c1,2024-01-02,web,purchase,o1,0,,", "revenue", "a purchase needs a revenue > 0; got 0"),
    ("e1,c1,2024-01-02,web,purchase,o1,,,", "revenue", "a purchase needs a revenue > 0; it is empty"),
    ("e1,c1,2024-01-02,web,refund,o1,5,,", "revenue", "a refund needs a revenue < 0; got 5"),
    ("e1,c1,2024-01-02,web,purchase,o1,nan,,", "revenue", "'nan' is not a number"),
]


@pytest.mark.parametrize(("bad_row", "column", "reason"), RULES)
def test_each_rule_quarantines_the_bad_row_and_names_file_row_column(
    store, tmp_path, bad_row, column, reason
):
    path = write(tmp_path / "events.csv", EVENT_HEADER, GOOD_ROW, bad_row, GOOD_ROW.replace("e0", "e9"))

    report = load_events(store, path)

    assert (report.rows_read, report.rows_loaded, report.rows_quarantined) == (3, 2, 1)
    assert any(
        line.startswith(f"events.csv row 2, column {column}: ") and reason in line for line in report.problems
    ), report.problems
    ((source, row_number, column_name, why, raw),) = rows(
        store, "SELECT source_file, row_number, column_name, reason, raw FROM quarantine"
    )
    assert (source, row_number, column_name) == ("events.csv", 2, column)
    assert reason in why
    assert raw.startswith('{"event_id":')  # the row as the user wrote it, keyed by their header
    assert rows(store, "SELECT event_id FROM events ORDER BY event_id") == [("e0",), ("e9",)]


def test_message_matches_the_documented_example(store, tmp_path):
    lines = [EVENT_HEADER] + [f"e{i},c1,2024-01-02,web,page_view,,,," for i in range(16)]
    lines.append("e99,c1,2024-01-02,web,survey_response,,,7,")
    report = load_events(store, write(tmp_path / "events.csv", *lines))
    assert "events.csv row 17, column csat_score: 7 is outside 1–5" in report.problems


def test_duplicate_event_id_keeps_the_first_and_quarantines_the_others(store, tmp_path):
    path = write(
        tmp_path / "events.csv",
        EVENT_HEADER,
        "e1,c1,2024-01-01,web,page_view,,,,",
        "e2,c1,2024-01-02,web,page_view,,,,",
        "e1,c1,2024-01-03,app,page_view,,,,",
        "e1,c1,2024-01-04,app,page_view,,,,",
    )
    report = load_events(store, path)
    assert (report.rows_loaded, report.rows_quarantined) == (2, 2)
    assert rows(store, "SELECT occurred_at FROM events WHERE event_id = 'e1'") == [(dt.datetime(2024, 1, 1),)]
    assert rows(store, "SELECT row_number, column_name, reason FROM quarantine ORDER BY row_number") == [
        (3, "event_id", "duplicate event_id within file (first in row 1)"),
        (4, "event_id", "duplicate event_id within file (first in row 1)"),
    ]


def test_a_broken_first_copy_does_not_block_a_good_later_one(store, tmp_path):
    path = write(
        tmp_path / "events.csv",
        EVENT_HEADER,
        "e1,c1,not a time,web,page_view,,,,",
        "e1,c1,2024-01-03,web,page_view,,,,",
    )
    report = load_events(store, path)
    assert (report.rows_loaded, report.rows_quarantined) == (1, 1)
    assert rows(store, "SELECT row_number, column_name FROM quarantine") == [(1, "occurred_at")]


def test_every_problem_row_is_quarantined_and_counts_reconcile(store, tmp_path):
    lines = [EVENT_HEADER, GOOD_ROW] + [row for row, _, _ in RULES]
    # RULES share event_id e1, so make them distinct to see each rule, not the duplicate check.
    lines = [lines[0], lines[1]] + [row.replace("e1,", f"x{i},", 1) for i, row in enumerate(lines[2:])]
    report = load_events(store, write(tmp_path / "events.csv", *lines))
    assert report.rows_read == len(RULES) + 1
    assert (report.rows_loaded, report.rows_already_present) == (1, 0)
    assert report.rows_quarantined == len(RULES)
    assert len(report.problems) == 5 + 1  # first five rows, then "and N more"
    assert report.problems[-1].startswith(f"events.csv: and {len(RULES) - 5} more quarantined rows")


def test_enumerations_and_spaces_are_read_leniently(store, tmp_path):
    path = write(
        tmp_path / "events.csv",
        " Event_ID ,CUSTOMER_ID,occurred_at,Channel,event_type,revenue",
        " e1 , c1 ,2024-01-01 ,  Web ,PURCHASE, 12.50 ",
    )
    report = load_events(store, path)
    assert report.rows_loaded == 1
    assert rows(store, "SELECT event_id, customer_id, channel, event_type, revenue FROM events") == [
        ("e1", "c1", "web", "purchase", 12.5)
    ]


def test_extra_columns_are_ignored_with_a_note_and_lineage_defaults_to_the_file(store, tmp_path):
    path = write(
        tmp_path / "events.csv",
        "event_id,customer_id,occurred_at,channel,event_type,colour",
        "e1,c1,2024-01-01,web,page_view,blue",
    )
    report = load_events(store, path)
    assert report.problems == ("events.csv: ignored extra columns: colour",)
    assert rows(store, "SELECT source_system FROM events") == [("file:events.csv",)]


def test_values_are_data_never_sql(store, tmp_path):
    nasty = "x'); DROP TABLE events; --"
    path = write(tmp_path / "events.csv", EVENT_HEADER, f'"{nasty}",c1,2024-01-01,web,page_view,,,,')
    assert load_events(store, path).rows_loaded == 1
    assert rows(store, "SELECT event_id FROM events") == [(nasty,)]


# --- timestamps --------------------------------------------------------------------------------


def test_a_timezone_offset_is_converted_to_utc(store, tmp_path):
    path = write(
        tmp_path / "events.csv",
        EVENT_HEADER,
        "e1,c1,2024-03-10T23:30:00-05:00,web,page_view,,,,",
        "e2,c1,2024-03-11T06:30:00+02:00,web,page_view,,,,",
        "e3,c1,2024-03-11T04:30:00Z,web,page_view,,,,",
        "e4,c1,2024-03-11 04:30:00,web,page_view,,,,",
    )
    load_events(store, path)
    assert rows(store, "SELECT DISTINCT occurred_at FROM events") == [(dt.datetime(2024, 3, 11, 4, 30),)]


# --- re-loading ----------------------------------------------------------------------------------


def test_reloading_the_same_file_changes_nothing(store, tmp_path):
    path = write(
        tmp_path / "events.csv",
        EVENT_HEADER,
        "e1,c1,2024-01-01,web,page_view,,,,",
        "e2,c1,2024-01-02,store,purchase,o1,30,,",
        "e3,c2,2024-01-03,app,page_view,,,,",
        "e4,c2,2024-01-03,app,refund,o2,10,,",
    )
    first = load_events(store, path)
    before = snapshot(store)
    second = load_events(store, path)

    assert snapshot(store) == before
    assert (first.rows_loaded, first.rows_already_present, first.rows_quarantined) == (3, 0, 1)
    assert (second.rows_loaded, second.rows_already_present, second.rows_quarantined) == (0, 3, 1)
    assert rows(store, "SELECT count(*) FROM loads") == [(2,)]


# --- customers ------------------------------------------------------------------------------------


def test_customers_are_derived_from_events(store, tmp_path):
    path = write(
        tmp_path / "events.csv",
        EVENT_HEADER,
        "e5,c1,2024-01-05,store,purchase,o1,20,,",
        "e3,c1,2024-01-01T10:00:00,email,email_open,,,,",
        "e2,c1,2024-01-01T10:00:00,social,social_engagement,,,,",  # same time, smaller event_id
        "e9,c2,2024-02-01,app,page_view,,,,",
    )
    load_events(store, path)
    assert rows(store, "SELECT * FROM customers ORDER BY customer_id") == [
        ("c1", dt.datetime(2024, 1, 1, 10), "social", "unknown", None),
        ("c2", dt.datetime(2024, 2, 1), "app", "unknown", None),
    ]


def test_an_earlier_event_moves_a_stored_customers_first_touch_back(store, tmp_path):
    load_events(store, write(tmp_path / "a.csv", EVENT_HEADER, "e2,c1,2024-03-01,store,store_visit,,,,"))
    load_events(
        store,
        write(
            tmp_path / "b.csv",
            EVENT_HEADER,
            "e1,c1,2024-02-01,web,page_view,,,,",
            "e3,c1,2024-04-01,app,page_view,,,,",
        ),
    )
    assert rows(store, "SELECT customer_id, first_seen_at, acquisition_channel FROM customers") == [
        ("c1", dt.datetime(2024, 2, 1), "web")
    ]


def test_with_a_customers_file_unknown_customers_are_quarantined(store, tmp_path):
    customers = write(
        tmp_path / "customers.csv",
        "customer_id,first_seen_at,acquisition_channel,region,segment",
        "c1,2024-01-01,web,north,gold",
        "c2,2024-01-02,fax,north,",
        "c1,2024-01-03,app,south,",
        "c3,2024-01-04,app,,",
    )
    events = write(
        tmp_path / "events.csv",
        EVENT_HEADER,
        "e1,c1,2024-01-05,web,page_view,,,,",
        "e2,c2,2024-01-05,web,page_view,,,,",
        "e3,c3,2024-01-05,web,page_view,,,,",
        "e4,c404,2024-01-05,web,page_view,,,,",
    )
    customer_report, event_report = load_contract_files(
        store, events=events, customers=customers, channels=CHANNELS
    )
    for report in (customer_report, event_report):
        assert_recorded(store, report)
    assert (customer_report.kind, customer_report.rows_loaded, customer_report.rows_quarantined) == (
        "customers",
        2,
        2,
    )
    assert (
        "customers.csv row 2, column acquisition_channel: 'fax' is not one of the configured channels"
        in (customer_report.problems[0])
    )
    assert "customers.csv row 3, column customer_id: duplicate customer_id within file (first in row 1)" in (
        customer_report.problems
    )
    assert rows(store, "SELECT * FROM customers ORDER BY customer_id") == [
        ("c1", dt.datetime(2024, 1, 1), "web", "north", "gold"),
        ("c3", dt.datetime(2024, 1, 4), "app", "unknown", None),
    ]
    assert (event_report.rows_loaded, event_report.rows_quarantined) == (2, 2)
    assert event_report.problems == (
        "events.csv row 2, column customer_id: 'c2' is in neither customers.csv nor the store",
        "events.csv row 4, column customer_id: 'c404' is in neither customers.csv nor the store",
    )


def test_customers_already_in_the_store_are_kept(store, tmp_path):
    header = "customer_id,first_seen_at,acquisition_channel,region"
    events = write(tmp_path / "events.csv", EVENT_HEADER, "e1,c1,2024-01-05,web,page_view,,,,")
    load_contract_files(
        store,
        events=events,
        customers=write(tmp_path / "c1.csv", header, "c1,2024-01-01,web,north"),
        channels=CHANNELS,
    )
    customer_report, _ = load_contract_files(
        store,
        events=events,
        customers=write(tmp_path / "c2.csv", header, "c1,2023-01-01,app,south"),
        channels=CHANNELS,
    )
    assert (customer_report.rows_loaded, customer_report.rows_already_present) == (0, 1)
    assert rows(store, "SELECT region, acquisition_channel FROM customers") == [("north", "web")]


# --- identities -----------------------------------------------------------------------------------


def test_identities_are_validated_and_deduplicated(store, tmp_path):
    events = write(tmp_path / "events.csv", EVENT_HEADER, "e1,c1,2024-01-05,web,page_view,,,,")
    identities = write(
        tmp_path / "identities.csv",
        "customer_id,identifier_type,identifier_value,source_system",
        "c1,email,h:abc,crm",
        "c1,email,h:abc,crm",
        "c1,EMAIL,h:abc,web",
        "c1,fingerprint,xyz,web",
        "c1,phone,,crm",
    )
    _, report = load_contract_files(store, events=events, identities=identities, channels=CHANNELS)
    assert_recorded(store, report)
    assert (report.rows_loaded, report.rows_already_present, report.rows_quarantined) == (2, 1, 2)
    assert report.problems[0].startswith(
        "identities.csv row 4, column identifier_type: 'fingerprint' is not an identifier type"
    )
    assert report.problems[1] == "identities.csv row 5, column identifier_value: required value is empty"

    _, again = load_contract_files(store, events=events, identities=identities, channels=CHANNELS)
    assert (again.rows_loaded, again.rows_already_present) == (0, 3)
    assert rows(store, "SELECT count(*) FROM identities") == [(2,)]


# --- whole-file problems ------------------------------------------------------------------------


def test_a_missing_column_is_a_load_error_naming_it(store, tmp_path):
    path = write(tmp_path / "events.csv", "event_id,customer_id,channel,event_type", "e1,c1,web,page_view")
    with pytest.raises(LoadError) as caught:
        load_contract_files(store, events=path, channels=CHANNELS)
    message = str(caught.value)
    assert "\n" not in message
    assert str(path) in message
    assert "missing required column occurred_at" in message
    assert "expected event_id, customer_id, occurred_at, channel, event_type" in message
    assert rows(store, "SELECT count(*) FROM loads") == [(0,)]


def test_a_bad_second_file_loads_nothing_at_all(store, tmp_path):
    events = write(tmp_path / "events.csv", EVENT_HEADER, GOOD_ROW)
    identities = write(tmp_path / "identities.csv", "customer_id,identifier_value", "c0,abc")
    with pytest.raises(LoadError, match="identities.csv: missing required column identifier_type"):
        load_contract_files(store, events=events, identities=identities, channels=CHANNELS)
    assert snapshot(store) == {"events": [], "customers": [], "identities": []}


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("events.xlsx", "x", r"unknown file type '\.xlsx'; expected one of \.csv, \.csv\.gz, \.parquet"),
        ("events.csv", None, "file not found"),
        ("events.csv", "", "the file is empty"),
        ("events.parquet", "not parquet", "cannot be read as Parquet"),
    ],
)
def test_whole_file_problems_are_one_readable_line(store, tmp_path, name, content, expected):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(LoadError, match=expected) as caught:
        load_contract_files(store, events=path, channels=CHANNELS)
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith(str(path))


@pytest.mark.parametrize("bad_at", [2, 3000])
def test_a_ragged_row_is_named_whether_early_or_late(store, tmp_path, bad_at):
    lines = [f"e{i},c1,2024-01-01,web,page_view,,,," for i in range(4000)]
    lines[bad_at - 1] += ",surplus"
    path = write(tmp_path / "events.csv", EVENT_HEADER, *lines)
    with pytest.raises(LoadError) as caught:
        load_contract_files(store, events=path, channels=CHANNELS)
    assert str(caught.value) == (
        f"{path}: cannot be read as CSV: data row {bad_at} has 10 fields where the header has 9"
    )


def test_a_file_that_is_not_utf8_is_a_load_error(store, tmp_path):
    path = tmp_path / "events.csv"
    path.write_bytes(f"{EVENT_HEADER}\n{GOOD_ROW}\ne1,c\xe9,2024-01-01,web,page_view,,,,\n".encode("latin-1"))
    with pytest.raises(LoadError, match="cannot be read as CSV: .*not utf-8 encoded") as caught:
        load_contract_files(store, events=path, channels=CHANNELS)
    assert "\n" not in str(caught.value)


# --- other formats ---------------------------------------------------------------------------------


def test_parquet_works_with_typed_columns(store, tmp_path):
    path = tmp_path / "events.parquet"
    pl.DataFrame(
        {
            "event_id": ["e1", "e2", "e3"],
            "customer_id": ["c1", "c1", "c2"],
            "occurred_at": [dt.datetime(2024, 1, 1, 9), dt.datetime(2024, 1, 2), dt.datetime(2024, 1, 3)],
            "channel": ["web", "store", "app"],
            "event_type": ["page_view", "purchase", "survey_response"],
            "revenue": [None, 42.0, None],
            "csat_score": [None, None, 9],
        }
    ).write_parquet(path)
    report = load_events(store, path)
    assert (report.rows_loaded, report.rows_quarantined) == (2, 1)
    assert report.problems == ("events.parquet row 3, column csat_score: 9 is outside 1–5",)
    assert rows(store, "SELECT event_id, occurred_at, revenue FROM events ORDER BY event_id") == [
        ("e1", dt.datetime(2024, 1, 1, 9), None),
        ("e2", dt.datetime(2024, 1, 2), 42.0),
    ]


def test_gzipped_csv_works(store, tmp_path):
    path = tmp_path / "events.csv.gz"
    with gzip.open(path, "wt") as out:
        out.write(f"{EVENT_HEADER}\n{GOOD_ROW}\n")
    assert load_events(store, path).rows_loaded == 1


# --- transactions ------------------------------------------------------------------------------------

TX_HEADER = "CustomerID,InvoiceDate,Amount,Country"


def load_tx(store, path: Path, **kwargs) -> LoadReport:
    options = {
        "customer_col": "CustomerID",
        "date_col": "InvoiceDate",
        "amount_col": "Amount",
        "channels": CHANNELS,
    }
    report = load_transactions(store, path, **(options | kwargs))
    assert_recorded(store, report)
    return report


def test_identical_transaction_rows_stay_two_events_and_reload_adds_nothing(store, tmp_path):
    path = write(
        tmp_path / "retail.csv",
        TX_HEADER,
        "17850,2010-12-01 08:26,15.30,UK",
        "17850,2010-12-01 08:26,15.30,UK",
        "17850,2010-12-01 08:26,-15.30,UK",
    )
    first = load_tx(store, path)
    events = rows(store, "SELECT event_id, event_type, revenue, channel, order_id, source_system FROM events")
    second = load_tx(store, path)

    assert (first.rows_read, first.rows_loaded) == (3, 3)
    assert (second.rows_loaded, second.rows_already_present) == (0, 3)
    assert len({e[0] for e in events}) == 3
    assert sorted((e[1], e[2]) for e in events) == [("purchase", 15.3), ("purchase", 15.3), ("refund", -15.3)]
    assert {(e[3], e[5]) for e in events} == {("store", "transactions:retail.csv")}
    assert all(e[4] for e in events)  # an order id for every purchase and refund
    assert rows(store, "SELECT * FROM customers") == [
        ("17850", dt.datetime(2010, 12, 1, 8, 26), "store", "unknown", None)
    ]


def test_event_ids_do_not_depend_on_the_file_name_or_row_position(store, tmp_path):
    a = write(tmp_path / "a.csv", TX_HEADER, "1,2011-01-01,5,UK", "2,2011-01-02,6,UK")
    b = write(tmp_path / "b.csv", TX_HEADER, "2,2011-01-02,6,UK", "1,2011-01-01,5,UK")
    load_tx(store, a)
    assert load_tx(store, b).rows_already_present == 2


def test_bad_transaction_rows_are_quarantined_under_the_files_column_names(store, tmp_path):
    path = write(
        tmp_path / "retail.csv",
        TX_HEADER,
        "1,2011-01-01,5,UK",
        ",2011-01-01,5,UK",
        "2,someday,5,UK",
        "2,2011-01-01,five,UK",
        "2,2011-01-01,0,UK",
        "2,2011-01-01,,UK",
    )
    report = load_tx(store, path)
    assert (report.rows_loaded, report.rows_quarantined) == (1, 5)
    assert report.problems == (
        "retail.csv row 2, column CustomerID: customer id is empty",
        "retail.csv row 3, column InvoiceDate: 'someday' is not an ISO 8601 date or timestamp",
        "retail.csv row 4, column Amount: 'five' is not a number",
        "retail.csv row 5, column Amount: amount is zero: neither a purchase nor a refund",
        "retail.csv row 6, column Amount: amount is empty",
    )


def test_common_date_formats_are_detected_and_date_format_is_honoured(store, tmp_path):
    us = write(tmp_path / "us.csv", TX_HEADER, "1,12/1/2010 8:26,5,UK", "1,12/13/2010 9:05,5,UK")
    report = load_tx(store, us)
    assert report.problems == (
        "us.csv: dates read with the format %m/%d/%Y %H:%M (pass date_format to choose another)",
    )
    cdnow = write(
        tmp_path / "cdnow.csv", "id,date,qty,amount", "00001,19970101,1,11.77", "00002,19971301,1,1"
    )
    report = load_transactions(
        store,
        cdnow,
        customer_col="id",
        date_col="date",
        amount_col="amount",
        date_format="%Y%m%d",
        channels=CHANNELS,
    )
    assert report.problems == ("cdnow.csv row 2, column date: '19971301' is not a date in the format %Y%m%d",)
    assert rows(store, "SELECT occurred_at FROM events WHERE customer_id = '00001'") == [
        (dt.datetime(1997, 1, 1),)
    ]
    assert rows(store, "SELECT occurred_at FROM events WHERE customer_id = '1' ORDER BY 1") == [
        (dt.datetime(2010, 12, 1, 8, 26),),
        (dt.datetime(2010, 12, 13, 9, 5),),
    ]


def test_transactions_from_parquet(store, tmp_path):
    path = tmp_path / "tx.pq"
    pl.DataFrame(
        {"cust": ["a", "a", None], "day": [dt.date(2020, 1, 1)] * 3, "total": [9.5, 9.5, 1.0]}
    ).write_parquet(path)
    report = load_tx(store, path, customer_col="cust", date_col="day", amount_col="total", channel="web")
    assert (report.rows_loaded, report.rows_quarantined) == (2, 1)
    assert rows(store, "SELECT DISTINCT channel, occurred_at FROM events") == [
        ("web", dt.datetime(2020, 1, 1))
    ]


def test_transactions_whole_file_problems(store, tmp_path):
    path = write(tmp_path / "retail.csv", TX_HEADER, "1,2011-01-01,5,UK")
    with pytest.raises(LoadError, match=r"retail.csv: missing column Total \(amount_col\); found CustomerID"):
        load_tx(store, path, amount_col="Total")
    with pytest.raises(LoadError, match="channel 'fax' is not one of the configured channels"):
        load_tx(store, path, channel="fax")
    with pytest.raises(LoadError, match="date_format '%Q' is not a strptime format"):
        load_tx(store, path, date_format="%Q")
    assert rows(store, "SELECT count(*) FROM loads") == [(0,)]


def test_staging_takes_only_the_loaders_own_table_names(tmp_path):
    # A staging table's name goes into the SQL text of every later step, so it must be one of ours.
    import duckdb

    from data_access import ingest

    source = tmp_path / "events.csv"
    source.write_text("event_id\ne1\n")
    with pytest.raises(ValueError, match="staging tables"):
        ingest._stage(duckdb.connect(), source, "events; DROP TABLE events")


class _RecordingCursor:
    """A DuckDB cursor that keeps the text of every statement it runs."""

    def __init__(self, cursor, statements: list[str]) -> None:
        self._cursor, self._statements = cursor, statements

    def execute(self, sql, *args, **kwargs):
        self._statements.append(sql)
        return self._cursor.execute(sql, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._cursor, name)


def test_no_value_from_a_file_or_an_option_reaches_the_sql_text(store, tmp_path, monkeypatch):
    # The loader writes SQL around its own fragments; headers, cells, file names and options are
    # bound parameters. Every marker below must reach the store, and none the statements.
    from data_access import ingest

    statements: list[str] = []
    cursor = ingest._cursor
    monkeypatch.setattr(ingest, "_cursor", lambda s: _RecordingCursor(cursor(s), statements))
    events = write(
        tmp_path / "markerfile_events.csv",
        EVENT_HEADER + ",markerheader",
        "markerevent,markercustomer,2024-01-01,web,page_view,markerorder,1.5,,,markercell",
        "markerbad,markercustomer,markerdate,web,page_view,,,,,",
    )
    load_contract_files(store, events=events, channels=CHANNELS)
    transactions = write(tmp_path / "markertx.csv", "MarkerCustomer,MarkerDate,MarkerAmount",
                         "markerbuyer,07/01/2024,12.5")
    load_transactions(store, transactions, customer_col="MarkerCustomer", date_col="MarkerDate",
                      amount_col="MarkerAmount", date_format="%d/%m/%Y", channels=CHANNELS)
    assert rows(store, "SELECT count(*) FROM events WHERE customer_id IN ('markercustomer', 'markerbuyer')") == [(2,)]
    assert rows(store, "SELECT count(*) FROM quarantine WHERE raw LIKE '%markerdate%'") == [(1,)]
    assert len(statements) > 20
    leaked = [sql for sql in statements if "marker" in sql.lower() or "%d/%m" in sql]
    assert leaked == []
