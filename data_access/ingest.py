"""Loaders: files into the contract tables, every row validated, nothing silently dropped.

Two entry points, both called by the CLI inside ``with writable_store(path) as store:``:

- :func:`load_contract_files` for files already in the contract shape (DESIGN.md §1);
- :func:`load_transactions` for a plain transactions export (customer, date, amount).

How a file travels: it is copied into a temporary DuckDB table with every column as text and
positional names ``c0..cN`` (the file's own header never becomes SQL text), one query then types
and checks every row in the engine, and the rows that fail go to ``quarantine`` with the first
reason found. So a 10M-row file never passes through Python. Values reach SQL only as bound
parameters; identifiers are the contract's own names.

Counting rules, one :class:`LoadReport` per file, also appended to ``loads``:
``rows_read == rows_loaded + rows_already_present + rows_quarantined``, checked before commit.
``quarantine`` and ``loads`` are per-load logs: loading the same file twice leaves ``events``,
``customers`` and ``identities`` unchanged but records the second load (and its rejected rows)
under its own ``load_id``.

Customer rule: ``customers.first_seen_at`` is the first touch known to the store. When newly
loaded events of a stored customer are earlier than it, ``first_seen_at`` moves back to the
earliest one and ``acquisition_channel`` follows it (ties broken by ``event_id``); nothing else
about a stored customer is changed by a later load.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import itertools
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from data_access.schema import EVENT_TYPES, EVENTS, IDENTIFIER_TYPES
from data_access.store import Store

__all__ = ["LoadError", "LoadReport", "load_contract_files", "load_transactions"]

# Enough for a person to see what is wrong; the rest is in the quarantine table.
MAX_PROBLEM_LINES = 5
# Long cell values would drown the message; the full row is kept in quarantine.raw.
_MAX_VALUE_CHARS = 60

_CSV_SUFFIXES = (".csv", ".csv.gz")
_PARQUET_SUFFIXES = (".parquet", ".pq")

EVENT_REQUIRED = ("event_id", "customer_id", "occurred_at", "channel", "event_type")
EVENT_OPTIONAL = (
    "order_id",
    "revenue",
    "csat_score",
    "nps_score",
    "campaign",
    "product_category",
    "source_system",
)
CUSTOMER_REQUIRED = ("customer_id", "first_seen_at", "acquisition_channel")
CUSTOMER_OPTIONAL = ("region", "segment")
IDENTITY_REQUIRED = ("customer_id", "identifier_type", "identifier_value")
IDENTITY_OPTIONAL = ("source_system",)
EVENT_COLUMNS = tuple(EVENTS.names)

# Whether a checked event row (alias c) is in the store already: the de-duplication key.
_EVENT_PRESENT = "EXISTS (SELECT 1 FROM events e WHERE e.event_id = c.event_id)"

# Tried in this order when no date_format is given; the one that reads most of the file's
# distinct values wins for the whole file, so a file is never read half month-first and half
# day-first. Month-first comes before day-first because the common public exports (UCI Online
# Retail) are US-style; ambiguous files should pass date_format.
_DATE_FORMATS = (
    "%Y%m%d",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d",
    "%d-%m-%Y",
    "%Y%m%d%H%M%S",
)
# Distinct values of this many evenly spaced rows decide a file's date format.
_DATE_SAMPLE_ROWS = 20_000

# A text timestamp with an offset becomes TIMESTAMPTZ; one without is read as UTC (the session
# zone is pinned to UTC below). Taking the epoch back to a plain TIMESTAMP gives the UTC wall
# time without a per-row time-zone lookup, which AT TIME ZONE costs.
_ISO_TIMESTAMP = "make_timestamp(epoch_us(TRY_CAST({x} AS TIMESTAMPTZ)))"


def _strptime_sql(value_sql: str, format_sql: str, *, zoned: bool) -> str:
    parsed = f"try_strptime({value_sql}, {format_sql})"
    # strptime only yields TIMESTAMPTZ for formats with a zone directive.
    return f"make_timestamp(epoch_us({parsed}))" if zoned else parsed


def _has_zone(date_format: str) -> bool:
    return "%z" in date_format or "%Z" in date_format


@dataclass(frozen=True)
class LoadReport:
    """What happened to one input file."""

    source_file: str
    kind: str  # 'events' | 'customers' | 'identities' | 'transactions'
    rows_read: int
    rows_loaded: int
    rows_already_present: int
    rows_quarantined: int
    problems: tuple[str, ...] = ()
    load_id: str = field(default="", compare=False)

    def reconciles(self) -> bool:
        return self.rows_read == self.rows_loaded + self.rows_already_present + self.rows_quarantined


class LoadError(ValueError):
    """The whole file cannot be loaded; the message is one line naming the file."""


# ---------------------------------------------------------------------------------------------
# Public loaders


def load_contract_files(
    store: Store,
    *,
    events: Path,
    customers: Path | None = None,
    identities: Path | None = None,
    channels: tuple[str, ...],
) -> list[LoadReport]:
    """Load contract-shaped files; return one report per file (customers, events, identities).

    Without a customers file, customers are derived from the events. With one, an event whose
    customer is in neither the file nor the store is quarantined. Identity rows are
    de-duplicated on all four columns: a repeat (in the file or already stored) counts as
    already present.
    """
    allowed = _channel_list(channels)
    cur = _cursor(store)
    try:
        # Every file is opened and its columns checked before anything is written, so a
        # whole-file problem in the last file does not leave the first one half-recorded.
        staged_events = _stage(cur, Path(events), "_jl_stage_events")
        event_cols = _match_columns(staged_events, EVENT_REQUIRED, EVENT_OPTIONAL)
        staged_customers = customer_cols = staged_identities = identity_cols = None
        if customers is not None:
            staged_customers = _stage(cur, Path(customers), "_jl_stage_customers")
            customer_cols = _match_columns(staged_customers, CUSTOMER_REQUIRED, CUSTOMER_OPTIONAL)
        if identities is not None:
            staged_identities = _stage(cur, Path(identities), "_jl_stage_identities")
            identity_cols = _match_columns(staged_identities, IDENTITY_REQUIRED, IDENTITY_OPTIONAL)

        reports = []
        with _transaction(cur):
            if staged_customers is not None:
                reports.append(_load_customers(cur, staged_customers, customer_cols, allowed))
            reports.append(
                _load_events(
                    cur,
                    staged_events,
                    event_cols,
                    allowed,
                    customers_file=staged_customers.name if staged_customers else None,
                )
            )
            if staged_identities is not None:
                reports.append(_load_identities(cur, staged_identities, identity_cols))
        return reports
    finally:
        _drop_temp_tables(cur)
        cur.close()


def load_transactions(
    store: Store,
    path: Path,
    *,
    customer_col: str,
    date_col: str,
    amount_col: str,
    channel: str = "store",
    date_format: str | None = None,
    channels: tuple[str, ...],
) -> LoadReport:
    """Load a transactions export: one row is one purchase (or, with a negative amount, refund).

    ``event_id`` is a hash of customer, timestamp, amount and the row's occurrence number among
    identical rows of the file, so the same file loaded twice adds nothing while two identical
    rows in one file stay two events. Leaving the source file out of the hash is deliberate:
    the same export renamed or re-exported is still recognised as already present.
    """
    path = Path(path)
    allowed = _channel_list(channels)
    channel = channel.strip().lower()
    if channel not in allowed:
        raise LoadError(
            f"{path}: channel {channel!r} is not one of the configured channels ({', '.join(allowed)})"
        )
    cur = _cursor(store)
    try:
        staged = _stage(cur, path, "_jl_stage_transactions")
        cols = _match_named_columns(
            staged, {"customer_col": customer_col, "date_col": date_col, "amount_col": amount_col}
        )
        date_expr, date_params, date_note, expected = _transaction_date_parser(
            cur, staged, cols["date_col"], date_format
        )
        with _transaction(cur):
            return _load_transaction_rows(
                cur, staged, cols, channel, date_expr, date_params, date_note, expected
            )
    finally:
        _drop_temp_tables(cur)
        cur.close()


# ---------------------------------------------------------------------------------------------
# Reading a file into a text-only staging table


@dataclass(frozen=True)
class _Staged:
    path: Path
    table: str
    header: tuple[str, ...]
    rows: int

    @property
    def name(self) -> str:
        return self.path.name

    def raw_json_sql(self, alias: str) -> tuple[str, dict[str, object]]:
        """The row as a JSON object keyed by the file's own header (names bound, not inlined)."""
        parts, params = [], {}
        for i, column in enumerate(self.header):
            params[f"hdr{i}"] = column
            parts.append(f"$hdr{i}, {alias}.c{i}")
        return f"json_object({', '.join(parts)})", params


def _reader_sql(path: Path) -> str:
    lowered = path.name.lower()
    if lowered.endswith(_CSV_SUFFIXES):
        # all_varchar: typing is the validator's job, so a bad cell becomes a quarantined row
        # instead of a reader error for the whole file.
        return "read_csv($path, all_varchar = true, header = true)"
    if lowered.endswith(_PARQUET_SUFFIXES):
        return "read_parquet($path)"
    suffix = "".join(path.suffixes) or "(none)"
    raise LoadError(
        f"{path}: unknown file type {suffix!r}; expected one of "
        f"{', '.join(_CSV_SUFFIXES + _PARQUET_SUFFIXES)}"
    )


def _stage(cur: duckdb.DuckDBPyConnection, path: Path, table: str) -> _Staged:
    # The staging table's name is written into the SQL of every later step: only the loader's own.
    if table not in _TEMP_TABLES:
        raise ValueError(f"{table!r} is not one of the loader's staging tables")
    reader = _reader_sql(path)
    if not path.exists():
        raise LoadError(f"{path}: file not found")
    if not path.is_file():
        raise LoadError(f"{path}: is not a file")
    if path.stat().st_size == 0:
        raise LoadError(f"{path}: the file is empty")
    kind = "CSV" if "read_csv" in reader else "Parquet"
    params = {"path": str(path)}
    try:
        described = cur.execute(f"DESCRIBE SELECT * FROM {reader}", params).fetchall()
        header = tuple(str(row[0]) for row in described)
        # Positional references keep the file's header out of the SQL text; the staging table
        # preserves the file's order (DuckDB keeps insertion order), so rowid + 1 is the data
        # row number a user sees.
        select = ", ".join(f"CAST(#{i + 1} AS VARCHAR) AS c{i}" for i in range(len(header)))
        cur.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT {select} FROM {reader}", params)
        rows = cur.table(table).count("*").fetchone()[0]
    except duckdb.Error as exc:
        reason = (_csv_field_count_problem(path) if kind == "CSV" else None) or _engine_message(exc)
        raise LoadError(f"{path}: cannot be read as {kind}: {reason}") from None
    return _Staged(path=path, table=table, header=header, rows=int(rows))


def _engine_message(exc: Exception) -> str:
    """The informative part of a DuckDB error, on one line (its hints assume a SQL user)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    keep = []
    for line in lines:
        if line.startswith(("Possible", "file =", "delimiter =", "quote =", "escape =", "LINE ")):
            break
        # The offending line may hold personal data and is in the file anyway.
        if not line.startswith("Original Line"):
            keep.append(line.rstrip(".;"))
    keep = keep[:2] or [str(exc).strip()]
    keep[0] = re.sub(r"^[A-Za-z ]+ Error: ", "", keep[0])
    return "; ".join(keep)


def _csv_field_count_problem(path: Path) -> str | None:
    """Name the first data row whose field count differs from the header's, if there is one.

    Only called after DuckDB gave up on a file: its messages for ragged rows speak of sniffer
    dialects, while the user needs the row to fix.
    """
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8", newline="") as text:
            first_line = text.readline()
            delimiter = max(",;\t|", key=first_line.count)
            reader = csv.reader(itertools.chain([first_line], text), delimiter=delimiter)
            header = next(reader, [])
            row_number = 0
            for row in reader:
                if not row:  # blank lines are not data rows, for DuckDB either
                    continue
                row_number += 1
                if len(row) != len(header):
                    return f"data row {row_number} has {len(row)} fields where the header has {len(header)}"
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    return None


def _normalise(name: str) -> str:
    return name.strip().lower()


def _match_columns(
    staged: _Staged, required: Sequence[str], optional: Sequence[str]
) -> dict[str, int | None]:
    """Map contract column names to positions in the file (case and surrounding spaces ignored)."""
    positions: dict[str, int] = {}
    for i, column in enumerate(staged.header):
        positions.setdefault(_normalise(column), i)
    missing = [c for c in required if c not in positions]
    if missing:
        hint = ""
        if len(staged.header) == 1 and any(d in staged.header[0] for d in ",;\t|"):
            # DuckDB falls back to one column when early rows are ragged; say which row is.
            if problem := _csv_field_count_problem(staged.path):
                raise LoadError(f"{staged.path}: cannot be read as CSV: {problem}")
            hint = " (only one column was recognised: do the rows have different numbers of fields?)"
        raise LoadError(
            f"{staged.path}: missing required column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)}; expected {', '.join(required)} "
            f"(optional: {', '.join(optional)}); found {', '.join(staged.header)}{hint}"
        )
    return {c: positions.get(c) for c in (*required, *optional)}


def _match_named_columns(staged: _Staged, wanted: dict[str, str]) -> dict[str, int]:
    """Find user-named columns: exact name first, then ignoring case and surrounding spaces."""
    exact = {column: i for i, column in reversed(list(enumerate(staged.header)))}
    loose = {_normalise(column): i for i, column in reversed(list(enumerate(staged.header)))}
    found, missing = {}, []
    for option, column in wanted.items():
        position = exact.get(column, loose.get(_normalise(column)))
        if position is None:
            missing.append(f"{column} ({option})")
        else:
            found[option] = position
    if missing:
        raise LoadError(
            f"{staged.path}: missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}; "
            f"found {', '.join(staged.header)}"
        )
    return found


# ---------------------------------------------------------------------------------------------
# Checking rows in the engine


@dataclass(frozen=True)
class _Check:
    """A row fails when ``condition`` holds.

    ``column`` and ``reason`` are SQL text expressions: the column is a contract name written as
    a literal, or a bound parameter when it is the file's own header.
    """

    column: str
    condition: str
    reason: str


def _on(column: str, condition: str, reason: str) -> _Check:
    """A check on a contract column (a name from the schema, safe to write as a literal)."""
    return _Check(f"'{column}'", condition, reason)


def _text(position: int | None) -> str:
    """A trimmed cell as SQL, with an empty cell (or an absent optional column) as NULL."""
    if position is None:
        return "CAST(NULL AS VARCHAR)"
    return f"nullif(trim(s.c{position}), '')"


def _shown(raw_sql: str) -> str:
    return f"left({raw_sql}, {_MAX_VALUE_CHARS})"


def _quoted(raw_sql: str) -> str:
    return f"'''' || {_shown(raw_sql)} || ''''"


def _required(column: str, value: str | None = None) -> _Check:
    """An empty cell in a column the contract needs; ``value`` is the SQL holding the text."""
    return _on(column, f"{value or column} IS NULL", "'required value is empty'")


def _whole_number_checks(column: str, low: int, high: int) -> list[_Check]:
    raw, num = f"{column}_raw", f"{column}_num"
    return [
        _on(column, f"{raw} IS NOT NULL AND {num} IS NULL", f"{_quoted(raw)} || ' is not a number'"),
        _on(
            column,
            f"{num} IS NOT NULL AND NOT ({num} BETWEEN {low} AND {high})",
            f"{_shown(raw)} || ' is outside {low}–{high}'",
        ),
        _on(
            column,
            f"{num} IS NOT NULL AND {num} <> floor({num})",
            f"{_quoted(raw)} || ' is not a whole number'",
        ),
    ]


def _number_sql(raw_sql: str) -> str:
    """A finite double or NULL: 'nan' and 'inf' parse as doubles but are no amounts."""
    return f"(CASE WHEN isfinite(TRY_CAST({raw_sql} AS DOUBLE)) THEN TRY_CAST({raw_sql} AS DOUBLE) END)"


def _check_rows(
    cur: duckdb.DuckDBPyConnection,
    typed_select: str,
    checks: Sequence[_Check],
    params: dict[str, object],
    *,
    unique_key: str | None = None,
) -> None:
    """Build ``_jl_checked``: the typed rows plus bad_column/bad_reason (NULL when the row is fine).

    ``typed_select`` reads the staging table and yields ``rn`` (the 1-based data row) and the
    columns the checks use. The first failing check names the row's problem. ``unique_key``
    makes every later valid row with the same key a duplicate of the first valid one, so a
    broken first copy does not block a good later one.
    """
    column_case = " ".join(f"WHEN {c.condition} THEN {c.column}" for c in checks)
    reason_case = " ".join(f"WHEN {c.condition} THEN {c.reason}" for c in checks)
    flagged = (
        f"SELECT v.*, CASE {column_case} END AS bad_column, CASE {reason_case} END AS bad_reason "
        f"FROM ({typed_select}) v"
    )
    if unique_key is None:
        sql = f"CREATE OR REPLACE TEMP TABLE _jl_checked AS {flagged}"
    else:
        duplicate = "(f.bad_reason IS NULL AND row_number() OVER w > 1)"
        sql = (
            "CREATE OR REPLACE TEMP TABLE _jl_checked AS "
            "SELECT f.* EXCLUDE (bad_column, bad_reason), "
            f"CASE WHEN {duplicate} THEN '{unique_key}' ELSE f.bad_column END AS bad_column, "
            f"CASE WHEN {duplicate} THEN 'duplicate {unique_key} within file (first in row ' "
            "|| min(f.rn) OVER w || ')' ELSE f.bad_reason END AS bad_reason "
            f"FROM ({flagged}) f "
            f"WINDOW w AS (PARTITION BY f.{unique_key}, f.bad_reason IS NULL ORDER BY f.rn)"
        )
    _execute(cur, sql, params)


def _quarantine(cur: duckdb.DuckDBPyConnection, staged: _Staged, load_id: str, now: dt.datetime) -> int:
    raw_json, params = staged.raw_json_sql("s")
    sql = (
        "INSERT INTO quarantine "
        "(load_id, source_file, row_number, column_name, reason, raw, quarantined_at) "
        f"SELECT $load_id, $source_file, c.rn, c.bad_column, c.bad_reason, {raw_json}, $now "
        f"FROM _jl_checked c JOIN {staged.table} s ON s.rowid + 1 = c.rn "
        "WHERE c.bad_reason IS NOT NULL ORDER BY c.rn"
    )
    params |= {"load_id": load_id, "source_file": staged.name, "now": now}
    return int(_execute(cur, sql, params).fetchone()[0])


def _finish(
    cur: duckdb.DuckDBPyConnection,
    staged: _Staged,
    kind: str,
    load_id: str,
    now: dt.datetime,
    *,
    loaded: int,
    already_present: int,
    quarantined: int,
    notes: Iterable[str] = (),
) -> LoadReport:
    rows = cur.execute(
        "SELECT row_number, column_name, reason FROM quarantine WHERE load_id = $1 "
        "ORDER BY row_number LIMIT $2",
        [load_id, MAX_PROBLEM_LINES],
    ).fetchall()
    problems = [f"{staged.name}: {note}" for note in notes]
    problems += [f"{staged.name} row {rn}, column {column}: {reason}" for rn, column, reason in rows]
    if quarantined > len(rows):
        problems.append(
            f"{staged.name}: and {quarantined - len(rows)} more quarantined "
            f"row{'s' if quarantined - len(rows) > 1 else ''} "
            f"(quarantine table, load_id {load_id})"
        )
    report = LoadReport(
        source_file=staged.name,
        kind=kind,
        rows_read=staged.rows,
        rows_loaded=loaded,
        rows_already_present=already_present,
        rows_quarantined=quarantined,
        problems=tuple(problems),
        load_id=load_id,
    )
    if not report.reconciles():
        # A bug, never a data problem: failing here rolls the whole load back rather than
        # recording counts that hide a lost row.
        raise RuntimeError(f"{staged.name}: counts do not reconcile: {report}")
    cur.execute(
        "INSERT INTO loads (load_id, kind, source_file, rows_read, rows_loaded, "
        "rows_already_present, rows_quarantined, loaded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        [load_id, kind, staged.name, staged.rows, loaded, already_present, quarantined, now],
    )
    return report


# ---------------------------------------------------------------------------------------------
# The three contract files


def _load_customers(
    cur: duckdb.DuckDBPyConnection, staged: _Staged, cols: dict[str, int | None], channels: list[str]
) -> LoadReport:
    load_id, now = _new_load()
    typed = (
        "SELECT s.rowid + 1 AS rn, "
        f"{_text(cols['customer_id'])} AS customer_id, "
        f"{_text(cols['first_seen_at'])} AS first_seen_at_raw, "
        f"{_ISO_TIMESTAMP.format(x=_text(cols['first_seen_at']))} AS first_seen_at, "
        f"lower({_text(cols['acquisition_channel'])}) AS acquisition_channel, "
        f"coalesce({_text(cols['region'])}, 'unknown') AS region, "
        f"{_text(cols['segment'])} AS segment "
        f"FROM {staged.table} s"
    )
    checks = [
        _required("customer_id"),
        _required("first_seen_at", "first_seen_at_raw"),
        _on(
            "first_seen_at",
            "first_seen_at IS NULL",
            f"{_quoted('first_seen_at_raw')} || ' is not an ISO 8601 timestamp'",
        ),
        _required("acquisition_channel"),
        _on(
            "acquisition_channel",
            "NOT list_contains($channels, acquisition_channel)",
            f"{_quoted('acquisition_channel')} || ' is not one of the configured channels (' "
            "|| $channels_text || ')'",
        ),
    ]
    _check_rows(cur, typed, checks, _channel_params(channels), unique_key="customer_id")
    quarantined = _quarantine(cur, staged, load_id, now)
    cur.execute(
        "CREATE OR REPLACE TEMP TABLE _jl_valid AS "
        "SELECT rn, customer_id, first_seen_at, acquisition_channel, region, segment, "
        "EXISTS (SELECT 1 FROM customers k WHERE k.customer_id = c.customer_id) AS present "
        "FROM _jl_checked c WHERE bad_reason IS NULL"
    )
    already_present = _count(cur, "SELECT count(*) FILTER (WHERE present) FROM _jl_valid")
    loaded = _count(
        cur,
        "INSERT INTO customers (customer_id, first_seen_at, acquisition_channel, region, segment) "
        "SELECT customer_id, first_seen_at, acquisition_channel, region, segment FROM _jl_valid "
        "WHERE NOT present ORDER BY rn",
    )
    notes = _extra_column_notes(staged, cols)
    if cols["region"] is None:
        notes.append("no region column: customers get region 'unknown'")
    return _finish(
        cur,
        staged,
        "customers",
        load_id,
        now,
        loaded=loaded,
        already_present=already_present,
        quarantined=quarantined,
        notes=notes,
    )


def _load_events(
    cur: duckdb.DuckDBPyConnection,
    staged: _Staged,
    cols: dict[str, int | None],
    channels: list[str],
    *,
    customers_file: str | None,
) -> LoadReport:
    load_id, now = _new_load()
    t = {name: _text(position) for name, position in cols.items()}
    typed = (
        "SELECT s.rowid + 1 AS rn, "
        f"{t['event_id']} AS event_id, "
        f"{t['customer_id']} AS customer_id, "
        f"{t['occurred_at']} AS occurred_at_raw, "
        f"{_ISO_TIMESTAMP.format(x=t['occurred_at'])} AS occurred_at, "
        f"lower({t['channel']}) AS channel, "
        f"lower({t['event_type']}) AS event_type, "
        f"{t['order_id']} AS order_id, "
        f"{t['revenue']} AS revenue_raw, {_number_sql(t['revenue'])} AS revenue, "
        f"{t['csat_score']} AS csat_score_raw, {_number_sql(t['csat_score'])} AS csat_score_num, "
        f"{t['nps_score']} AS nps_score_raw, {_number_sql(t['nps_score'])} AS nps_score_num, "
        f"{t['campaign']} AS campaign, "
        f"{t['product_category']} AS product_category, "
        # Lineage must never be empty: a file without it is its own source system.
        f"coalesce({t['source_system']}, 'file:' || $file_name) AS source_system "
        f"FROM {staged.table} s"
    )
    checks = [
        _required("event_id"),
        _required("customer_id"),
        _required("occurred_at", "occurred_at_raw"),
        _on(
            "occurred_at",
            "occurred_at IS NULL",
            f"{_quoted('occurred_at_raw')} || ' is not an ISO 8601 timestamp'",
        ),
        _required("channel"),
        _on(
            "channel",
            "NOT list_contains($channels, channel)",
            f"{_quoted('channel')} || ' is not one of the configured channels (' || $channels_text || ')'",
        ),
        _required("event_type"),
        _on(
            "event_type",
            "NOT list_contains($event_types, event_type)",
            f"{_quoted('event_type')} || ' is not an event type (' || $event_types_text || ')'",
        ),
        _on(
            "revenue",
            "revenue_raw IS NOT NULL AND revenue IS NULL",
            f"{_quoted('revenue_raw')} || ' is not a number'",
        ),
        *_whole_number_checks("csat_score", 1, 5),
        *_whole_number_checks("nps_score", 0, 10),
        _on(
            "revenue",
            "event_type = 'purchase' AND revenue IS NULL",
            "'a purchase needs a revenue > 0; it is empty'",
        ),
        _on(
            "revenue",
            "event_type = 'purchase' AND revenue <= 0",
            f"'a purchase needs a revenue > 0; got ' || {_shown('revenue_raw')}",
        ),
        _on(
            "revenue",
            "event_type = 'refund' AND revenue IS NULL",
            "'a refund needs a revenue < 0; it is empty'",
        ),
        _on(
            "revenue",
            "event_type = 'refund' AND revenue >= 0",
            f"'a refund needs a revenue < 0; got ' || {_shown('revenue_raw')}",
        ),
    ]
    params = _channel_params(channels) | {
        "event_types": list(EVENT_TYPES),
        "event_types_text": ", ".join(EVENT_TYPES),
        "file_name": staged.name,
    }
    if customers_file is not None:
        # The customers file was loaded just before, so "in the file or the store" is the store.
        checks.append(
            _on(
                "customer_id",
                "customer_id NOT IN (SELECT customer_id FROM customers)",
                f"{_quoted('customer_id')} || ' is in neither ' || $customers_file || ' nor the store'",
            )
        )
        params["customers_file"] = customers_file
    _check_rows(cur, typed, checks, params, unique_key="event_id")
    quarantined = _quarantine(cur, staged, load_id, now)
    cur.execute(
        "CREATE OR REPLACE TEMP TABLE _jl_valid AS "
        "SELECT event_id, customer_id, occurred_at, channel, event_type, order_id, revenue, "
        "CAST(csat_score_num AS TINYINT) AS csat_score, CAST(nps_score_num AS TINYINT) AS nps_score, "
        f"campaign, product_category, source_system, {_EVENT_PRESENT} AS present "
        "FROM _jl_checked c WHERE bad_reason IS NULL"
    )
    loaded, already_present = _insert_new_events(cur, derive_customers=customers_file is None)
    return _finish(
        cur,
        staged,
        "events",
        load_id,
        now,
        loaded=loaded,
        already_present=already_present,
        quarantined=quarantined,
        notes=_extra_column_notes(staged, cols),
    )


def _load_identities(
    cur: duckdb.DuckDBPyConnection, staged: _Staged, cols: dict[str, int | None]
) -> LoadReport:
    load_id, now = _new_load()
    t = {name: _text(position) for name, position in cols.items()}
    typed = (
        "SELECT s.rowid + 1 AS rn, "
        f"{t['customer_id']} AS customer_id, "
        f"lower({t['identifier_type']}) AS identifier_type, "
        f"{t['identifier_value']} AS identifier_value, "
        f"coalesce({t['source_system']}, 'file:' || $file_name) AS source_system "
        f"FROM {staged.table} s"
    )
    checks = [
        _required("customer_id"),
        _required("identifier_type"),
        _on(
            "identifier_type",
            "NOT list_contains($identifier_types, identifier_type)",
            f"{_quoted('identifier_type')} || ' is not an identifier type (' "
            "|| $identifier_types_text || ')'",
        ),
        _required("identifier_value"),
    ]
    params = {
        "identifier_types": list(IDENTIFIER_TYPES),
        "identifier_types_text": ", ".join(IDENTIFIER_TYPES),
        "file_name": staged.name,
    }
    _check_rows(cur, typed, checks, params)
    quarantined = _quarantine(cur, staged, load_id, now)
    # A repeated identity is a fact seen twice, not an error: the first copy is stored and the
    # others count as already present.
    cur.execute(
        "CREATE OR REPLACE TEMP TABLE _jl_valid AS "
        "SELECT rn, customer_id, identifier_type, identifier_value, source_system, "
        "row_number() OVER (PARTITION BY customer_id, identifier_type, identifier_value, "
        "source_system ORDER BY rn) > 1 OR EXISTS (SELECT 1 FROM identities i WHERE "
        "i.customer_id = c.customer_id AND i.identifier_type = c.identifier_type "
        "AND i.identifier_value = c.identifier_value AND i.source_system = c.source_system) AS present "
        "FROM _jl_checked c WHERE bad_reason IS NULL"
    )
    already_present = _count(cur, "SELECT count(*) FILTER (WHERE present) FROM _jl_valid")
    loaded = _count(
        cur,
        "INSERT INTO identities (customer_id, identifier_type, identifier_value, source_system) "
        "SELECT customer_id, identifier_type, identifier_value, source_system FROM _jl_valid "
        "WHERE NOT present ORDER BY rn",
    )
    return _finish(
        cur,
        staged,
        "identities",
        load_id,
        now,
        loaded=loaded,
        already_present=already_present,
        quarantined=quarantined,
        notes=_extra_column_notes(staged, cols),
    )


def _insert_new_events(cur: duckdb.DuckDBPyConnection, *, derive_customers: bool) -> tuple[int, int]:
    """Insert the new rows of ``_jl_valid`` into events and keep customers consistent with them.

    Returns (loaded, already present), each counted on its own so that the caller's
    reconciliation is a real check and not arithmetic.
    """
    already_present = _count(cur, "SELECT count(*) FILTER (WHERE present) FROM _jl_valid")
    new_rows = cur.table("_jl_valid").filter("NOT present")
    # By position, in the contract's column order: no column list is written into SQL text.
    new_rows.select(*EVENT_COLUMNS).insert_into("events")
    loaded = new_rows.count("*").fetchone()[0]
    # Each new customer's first touch, grouped once for the update and the insert below.
    cur.execute(
        "CREATE OR REPLACE TEMP TABLE _jl_first_touch AS "
        "SELECT customer_id, min(occurred_at) AS first_at, "
        "first(channel ORDER BY occurred_at, event_id) AS first_channel "
        "FROM _jl_valid WHERE NOT present GROUP BY customer_id"
    )
    cur.execute(
        "UPDATE customers SET first_seen_at = n.first_at, acquisition_channel = n.first_channel "
        "FROM _jl_first_touch n "
        "WHERE customers.customer_id = n.customer_id AND n.first_at < customers.first_seen_at"
    )
    if derive_customers:
        cur.execute(
            "INSERT INTO customers (customer_id, first_seen_at, acquisition_channel, region, segment) "
            "SELECT customer_id, first_at, first_channel, 'unknown', NULL FROM _jl_first_touch n "
            "WHERE NOT EXISTS (SELECT 1 FROM customers k WHERE k.customer_id = n.customer_id) "
            "ORDER BY customer_id"
        )
    return int(loaded), already_present


def _extra_column_notes(staged: _Staged, cols: dict[str, int | None]) -> list[str]:
    used = {position for position in cols.values() if position is not None}
    extra = [column for i, column in enumerate(staged.header) if i not in used]
    return [f"ignored extra columns: {', '.join(extra)}"] if extra else []


# ---------------------------------------------------------------------------------------------
# Transactions exports


def _transaction_date_parser(
    cur: duckdb.DuckDBPyConnection, staged: _Staged, position: int, date_format: str | None
) -> tuple[str, dict[str, object], str | None, str]:
    """Choose how the file's dates are read: (SQL over ``date_raw``, params, note, expectation)."""
    if date_format is not None:
        zoned = _has_zone(date_format)
        try:
            cur.execute(
                f"SELECT {_strptime_sql('$sample', '$date_format', zoned=zoned)}",
                {"sample": "2000-01-01", "date_format": date_format},
            ).fetchall()
        except duckdb.Error as exc:
            raise LoadError(
                f"{staged.path}: date_format {date_format!r} is not a strptime format: {_engine_message(exc)}"
            ) from None
        expr = _strptime_sql("date_raw", "$date_format", zoned=zoned)
        return expr, {"date_format": date_format}, None, f"a date in the format {date_format}"

    # A failed strptime is slow (microseconds), so the formats are scored on the distinct values
    # of an evenly spaced sample of rows. It is chosen by row position, not at random, so loading
    # the same file again picks the same format and so the same event ids.
    step = max(1, staged.rows // _DATE_SAMPLE_ROWS)
    candidates = [_ISO_TIMESTAMP.format(x="x")]
    candidates += [_strptime_sql("x", _format_literal(fmt), zoned=False) for fmt in _DATE_FORMATS]
    scores = ", ".join(f"count(*) FILTER (WHERE {c} IS NOT NULL)" for c in candidates)
    counts = cur.execute(
        f"SELECT {scores} FROM (SELECT DISTINCT {_text(position)} AS x "
        f"FROM {staged.table} s WHERE s.rowid % $step = 0)",
        {"step": step},
    ).fetchone()
    best = max(range(len(candidates)), key=lambda i: (counts[i], -i))
    if best == 0 or counts[best] == 0:
        # Nothing readable at all: every row is quarantined, and the message lists what was tried.
        expected = "an ISO 8601 date or timestamp"
        if counts[best] == 0:
            expected = f"a date in a known format (ISO 8601, {', '.join(_DATE_FORMATS)}); pass date_format"
        return _ISO_TIMESTAMP.format(x="date_raw"), {}, None, expected
    fmt = _DATE_FORMATS[best - 1]
    note = f"dates read with the format {fmt} (pass date_format to choose another)"
    expr = _strptime_sql("date_raw", _format_literal(fmt), zoned=False)
    return expr, {}, note, f"a date in the format {fmt}"


def _format_literal(fmt: str) -> str:
    """One of this module's own formats as a SQL literal.

    Only constants from _DATE_FORMATS get here (a user's date_format is always bound): DuckDB
    parses a constant format once instead of once per row.
    """
    if fmt not in _DATE_FORMATS or "'" in fmt:
        raise ValueError(f"not a built-in date format: {fmt!r}")
    return f"'{fmt}'"


def _load_transaction_rows(
    cur: duckdb.DuckDBPyConnection,
    staged: _Staged,
    cols: dict[str, int],
    channel: str,
    date_expr: str,
    date_params: dict[str, object],
    date_note: str | None,
    expected_date: str,
) -> LoadReport:
    load_id, now = _new_load()
    customer_name = staged.header[cols["customer_col"]]
    date_name = staged.header[cols["date_col"]]
    amount_name = staged.header[cols["amount_col"]]
    typed = (
        "SELECT *, "
        f"CASE WHEN amount > 0 THEN 'purchase' ELSE 'refund' END AS event_type, "
        f"{date_expr} AS occurred_at "
        "FROM (SELECT s.rowid + 1 AS rn, "
        f"{_text(cols['customer_col'])} AS customer_id, "
        f"{_text(cols['date_col'])} AS date_raw, "
        f"{_text(cols['amount_col'])} AS amount_raw, "
        f"{_number_sql(_text(cols['amount_col']))} AS amount "
        f"FROM {staged.table} s)"
    )
    checks = [
        _Check("$customer_name", "customer_id IS NULL", "'customer id is empty'"),
        _Check("$date_name", "date_raw IS NULL", "'date is empty'"),
        _Check(
            "$date_name",
            "occurred_at IS NULL",
            f"{_quoted('date_raw')} || ' is not ' || $expected_date",
        ),
        _Check("$amount_name", "amount_raw IS NULL", "'amount is empty'"),
        _Check("$amount_name", "amount IS NULL", f"{_quoted('amount_raw')} || ' is not a number'"),
        _Check("$amount_name", "amount = 0", "'amount is zero: neither a purchase nor a refund'"),
    ]
    params = {
        "customer_name": customer_name,
        "date_name": date_name,
        "amount_name": amount_name,
        "expected_date": expected_date,
    } | date_params
    _check_rows(cur, typed, checks, params)
    quarantined = _quarantine(cur, staged, load_id, now)
    # Identical rows are numbered 1, 2, ... in file order so each keeps its own stable id.
    keyed = (
        "SELECT rn, customer_id, occurred_at, event_type, amount, "
        "'tx-' || md5(concat_ws('|', customer_id, strftime(occurred_at, '%Y-%m-%dT%H:%M:%S.%f'), "
        "CAST(amount AS VARCHAR), CAST(row_number() OVER (PARTITION BY customer_id, occurred_at, "
        "amount ORDER BY rn) AS VARCHAR))) AS event_id "
        "FROM _jl_checked WHERE bad_reason IS NULL"
    )
    cur.execute(
        "CREATE OR REPLACE TEMP TABLE _jl_valid AS "
        "SELECT event_id, customer_id, occurred_at, CAST($channel AS VARCHAR) AS channel, event_type, "
        "event_id AS order_id, amount AS revenue, CAST(NULL AS TINYINT) AS csat_score, "
        "CAST(NULL AS TINYINT) AS nps_score, CAST(NULL AS VARCHAR) AS campaign, "
        "CAST(NULL AS VARCHAR) AS product_category, "
        f"CAST($source_system AS VARCHAR) AS source_system, {_EVENT_PRESENT} AS present "
        f"FROM ({keyed}) c",
        {"channel": channel, "source_system": f"transactions:{staged.name}"},
    )
    loaded, already_present = _insert_new_events(cur, derive_customers=True)
    return _finish(
        cur,
        staged,
        "transactions",
        load_id,
        now,
        loaded=loaded,
        already_present=already_present,
        quarantined=quarantined,
        notes=[date_note] if date_note else [],
    )


# ---------------------------------------------------------------------------------------------
# Small helpers


def _cursor(store: Store) -> duckdb.DuckDBPyConnection:
    if store.read_only:
        raise ValueError("loading needs a writable store: use writable_store()")
    cur = store.connection.cursor()
    # A cursor is its own session: pin its zone so offset-free timestamps are read as UTC.
    cur.execute("SET TimeZone = 'UTC'")
    return cur


class _transaction:
    """BEGIN/COMMIT around a load so a failure inside it leaves the store as it was."""

    def __init__(self, cur: duckdb.DuckDBPyConnection) -> None:
        self.cur = cur

    def __enter__(self) -> None:
        self.cur.execute("BEGIN TRANSACTION")

    def __exit__(self, exc_type, exc, tb) -> None:
        self.cur.execute("ROLLBACK" if exc_type else "COMMIT")


_TEMP_TABLES = (
    "_jl_stage_events",
    "_jl_stage_customers",
    "_jl_stage_identities",
    "_jl_stage_transactions",
    "_jl_checked",
    "_jl_valid",
    "_jl_first_touch",
)


def _drop_temp_tables(cur: duckdb.DuckDBPyConnection) -> None:
    for name in _TEMP_TABLES:
        cur.execute(f"DROP TABLE IF EXISTS temp.{name}")


_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


def _execute(cur: duckdb.DuckDBPyConnection, sql: str, params: dict[str, object]):
    """Execute with only the named parameters the SQL uses (DuckDB rejects unused ones)."""
    used = set(_PARAM.findall(sql))
    return cur.execute(sql, {k: v for k, v in params.items() if k in used})


def _count(cur: duckdb.DuckDBPyConnection, sql: str, params: dict[str, object] | None = None) -> int:
    return int(_execute(cur, sql, params or {}).fetchone()[0])


def _new_load() -> tuple[str, dt.datetime]:
    return uuid.uuid4().hex, dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _channel_list(channels: Sequence[str]) -> list[str]:
    cleaned = [c.strip().lower() for c in channels if c and c.strip()]
    if not cleaned:
        raise ValueError("channels must name at least one channel")
    return cleaned


def _channel_params(channels: list[str]) -> dict[str, object]:
    return {"channels": channels, "channels_text": ", ".join(channels)}
