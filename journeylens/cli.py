"""The ``journeylens`` command line: demo data, loading, building, serving and reports.

Every command takes ``--db PATH`` (default: the ``JOURNEYLENS_STORE_PATH`` setting). Mistakes in
the call or in the settings are one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from datetime import date
from pathlib import Path
from typing import NoReturn

import polars as pl
import polars.selectors as cs

from data_access.derived import missing_derived_tables
from data_access.segment_store import SavedSegment, SegmentError, SegmentStore
from data_access.settings import Settings, SettingsError, load_settings
from data_access.store import Store, StoreMissing, pin_utc, writable_store
from journeylens import bench
from journeylens.reports import REPORTS
from metrics.catalog import catalog, channel_bits
from metrics.clv_models import InsufficientData
from metrics import segments as segment_metrics
from metrics.filters import Filters, default_period

APP_FILE = Path(__file__).resolve().parent.parent / "app.py"


class UsageError(Exception):
    """A mistake in how the command was called; shown as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-03-31") from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} must be greater than 0")
    return value


def _open_for_reading(db: Path) -> Store:
    try:
        store = Store(db)
    except StoreMissing:
        raise UsageError(f"no store at {db}: create one with `journeylens demo --db {db}` or `journeylens load`") from None
    if not store.has_data():
        raise UsageError(f"the store {db} holds no events yet: `journeylens demo --db {db}` or `journeylens load`")
    if missing := missing_derived_tables(store):
        raise UsageError(f"the store {db} has missing or out-of-date derived tables ({', '.join(missing)}), "
                         "built by an older version: "
                         f"run `journeylens build --db {db}`")
    return store


def _build(store: Store, settings: Settings) -> list[str]:
    """Rebuild the derived tables, then check the contract and keep the outcome for the Data page."""
    from data_access.derived import build_derived_tables
    from data_access.schema import record_contract_check
    from metrics.clv import store_scores

    build_derived_tables(store.backend, progress=_say, lookback_days=settings.lookback_days,
                         score_clv=store_scores)
    problems = record_contract_check(store.backend, channels=settings.channels)
    for problem in problems:
        _say(f"contract: {problem}")
    return problems


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from data_access.demo import generate_demo

    started = time.perf_counter()
    with writable_store(args.db, fresh=True, threads=settings.engine_threads) as store:
        summary = generate_demo(
            store, customers=args.customers, seed=args.seed, months=args.months,
            channels=settings.channels, progress=_say,
        )
        _refuse_broken(_build(store, settings))
    _say(
        f"demo store {args.db}: {summary.customers:,} customers, {summary.events:,} events, "
        f"{summary.identities:,} identities in {time.perf_counter() - started:.1f} s"
    )
    return 0


def _refuse_broken(problems: list[str]) -> None:
    # Raised inside writable_store: the copy is discarded and the store stays as it was.
    if problems:
        raise UsageError(f"the store breaks the data contract in {len(problems)} ways (listed above)")


def cmd_build(args: argparse.Namespace, settings: Settings) -> int:
    if not Path(args.db).exists():
        raise UsageError(f"no store at {args.db}: create one with `journeylens demo --db {args.db}`")
    with writable_store(args.db, threads=settings.engine_threads) as store:
        _refuse_broken(_build(store, settings))
    return 0


def _print_load_reports(reports) -> bool:
    reconciled = True
    for report in reports:
        _say(
            f"{report.source_file}: read {report.rows_read:,} rows = loaded {report.rows_loaded:,}"
            f" + already present {report.rows_already_present:,} + quarantined {report.rows_quarantined:,}"
        )
        for problem in report.problems:
            _say(f"  {problem}")
        reconciled = reconciled and report.reconciles()
    return reconciled


def _run_load(args: argparse.Namespace, settings: Settings, load) -> int:
    from data_access.ingest import LoadError

    try:
        with writable_store(args.db, threads=settings.engine_threads) as store:
            reports = load(store)
            if store.row_count("events") == 0:
                raise UsageError("nothing was loaded: every row was quarantined (see the lines above)")
            _build(store, settings)
    except LoadError as exc:
        raise UsageError(str(exc)) from None
    if not _print_load_reports(reports):
        _say("counts do not reconcile: please report this as a bug")
        return 1
    return 0


def cmd_load(args: argparse.Namespace, settings: Settings) -> int:
    from data_access.ingest import load_contract_files

    def load(store: Store):
        return load_contract_files(
            store, events=args.events, customers=args.customers, identities=args.identities,
            channels=settings.channels,
        )

    return _run_load(args, settings, load)


def cmd_load_transactions(args: argparse.Namespace, settings: Settings) -> int:
    from data_access.ingest import load_transactions

    def load(store: Store):
        return [
            load_transactions(
                store, args.file, customer_col=args.customer_col, date_col=args.date_col,
                amount_col=args.amount_col, channel=args.channel, date_format=args.date_format,
                channels=settings.channels,
            )
        ]

    return _run_load(args, settings, load)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> NoReturn:
    if not Path(args.db).exists():
        _say(f"no store at {args.db} yet: the app will say how to create one")
    env = {**os.environ, "JOURNEYLENS_STORE_PATH": str(Path(args.db).resolve())}
    _say(f"Journeylens on http://localhost:{args.port} (store {args.db}); Ctrl+C stops it")
    command = [
        sys.executable, "-m", "streamlit", "run", str(APP_FILE),
        "--server.port", str(args.port), "--server.headless", "true",
        "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
    ]
    # Become the server (no child process): a stop signal reaches Streamlit itself, so no
    # orphaned server keeps the port and the store open after its parent was terminated.
    sys.stdout.flush()
    os.chdir(APP_FILE.parent)
    os.execve(sys.executable, command, env)


def _filters(args: argparse.Namespace, store: Store) -> Filters:
    start, end = args.date_from, args.date_to
    if start is None or end is None:
        last_day = catalog(store).last_day
        default_start, default_end = default_period(last_day)
        start, end = start or default_start, end or default_end
    try:
        saved = _saved_segment(args.db, args.segment_name) if args.segment_name else None
        return Filters(start=start, end=end, channels=tuple(args.channel or ()),
                       regions=tuple(args.region or ()), segments=tuple(args.segment or ()),
                       segment_name=saved and saved.name, segment_rule=saved and saved.definition,
                       channel_bits=channel_bits(store))
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _rounded(value: object) -> object:
    """Floats of a JSON report to six decimals, for the same stability as frames."""
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    return value


def _fields(value: dict, prefix: str = "") -> list[tuple[str, str]]:
    """A nested dict as (dotted field, value) rows, for table and CSV output."""
    rows: list[tuple[str, str]] = []
    for key, item in value.items():
        rows += _fields(item, f"{prefix}{key}.") if isinstance(item, dict) else [(f"{prefix}{key}", str(item))]
    return rows


def _write(result: pl.DataFrame | dict, fmt: str, output: Path | None) -> None:
    if isinstance(result, dict) and fmt == "json":
        text, what = json.dumps(_rounded(result), indent=2) + "\n", "one JSON object"
    else:
        if isinstance(result, dict):
            result = pl.DataFrame(_fields(_rounded(result)), schema=["field", "value"], orient="row")
        # Parallel float sums differ in the last bits from run to run; six decimals keep output stable.
        frame = result.with_columns(cs.float().round(6))
        what = f"{len(frame):,} rows"
        if fmt == "csv":
            text = frame.write_csv()
        elif fmt == "json":
            buffer = io.StringIO()
            frame.write_json(buffer)
            text = buffer.getvalue() + "\n"
        else:
            with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_width_chars=200, fmt_str_lengths=60,
                           float_precision=2, tbl_hide_dataframe_shape=True):
                text = f"{frame}\n"
    if output is None:
        sys.stdout.write(text)
    else:
        Path(output).write_text(text)
        _say(f"wrote {what} to {output}")


def _saved_segment(db: Path, name: str) -> SavedSegment:
    saved = SegmentStore.beside(db).get(name)
    if saved is None:
        known = ", ".join(SegmentStore.beside(db).names()) or "none saved yet"
        raise UsageError(f"no saved segment named {name!r} for {db} (saved: {known})")
    return saved


def cmd_segment(args: argparse.Namespace, settings: Settings) -> int:
    try:
        saved_segments = SegmentStore.beside(args.db).list()
    except SegmentError as exc:
        raise UsageError(str(exc)) from None
    if args.action == "list":
        _write(pl.DataFrame([{"name": s.name, "version": s.version, "created_at": s.created_at,
                              "updated_at": s.updated_at, "definition": s.definition} for s in saved_segments],
                            schema=["name", "version", "created_at", "updated_at", "definition"]),
               "table" if args.format == "parquet" else args.format, args.output)
        return 0
    if not args.name:
        raise UsageError(f"journeylens segment {args.action}: give the segment's NAME")
    saved = _saved_segment(args.db, args.name)
    if args.action == "show":
        sys.stdout.write(json.dumps({"name": saved.name, "version": saved.version, "created_at": saved.created_at,
                                     "updated_at": saved.updated_at, "definition": json.loads(saved.definition)},
                                    indent=2) + "\n")
        return 0
    members = segment_metrics.members(_open_for_reading(args.db), rule=saved.definition)
    if args.format == "parquet":
        if args.output is None:
            raise UsageError("--format parquet needs --output FILE")
        members.write_parquet(args.output)
        _say(f"wrote {len(members):,} members to {args.output}")
    else:
        _write(members, args.format, args.output)
    return 0


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    report = REPORTS[args.metric]
    store = _open_for_reading(args.db)
    filters = _filters(args, store)
    unknown = set(filters.channels) - set(settings.channels)
    if unknown:
        raise UsageError(f"unknown channel {', '.join(sorted(unknown))}; choose from {', '.join(settings.channels)}")
    _say(f"{report.name}: {filters.describe()}")
    try:
        result = report.run(store, filters, args)
    except InsufficientData as exc:
        raise UsageError(str(exc)) from None
    _write(result, args.format, args.output)
    return 0


def build_parser(settings: Settings) -> argparse.ArgumentParser:
    parser = _Parser(prog="journeylens", description="Omnichannel customer analytics on a unified store.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")

    def command(name: str, handler, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--db", type=Path, default=settings.store_path,
                         help=f"DuckDB store (default {settings.store_path})")
        sub.set_defaults(handler=handler)
        return sub

    demo = command("demo", cmd_demo, "generate a realistic demo store (replaces the file)")
    demo.add_argument("--customers", type=_positive_int, default=20_000)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--months", type=_positive_int, default=24)

    command("build", cmd_build, "check the contract and rebuild the derived tables")

    serve = command("serve", cmd_serve, "run the dashboard on this store")
    serve.add_argument("--port", type=_positive_int, default=8501)

    load = command("load", cmd_load, "load files already in the contract's shape (CSV or Parquet)")
    load.add_argument("--events", type=Path, required=True)
    load.add_argument("--customers", type=Path)
    load.add_argument("--identities", type=Path)

    transactions = command("load-transactions", cmd_load_transactions,
                           "load a plain transactions export: one row per purchase")
    transactions.add_argument("file", type=Path)
    transactions.add_argument("--customer-col", required=True)
    transactions.add_argument("--date-col", required=True)
    transactions.add_argument("--amount-col", required=True)
    transactions.add_argument("--channel", default="store")
    transactions.add_argument("--date-format", help="strptime format, e.g. %%Y%%m%%d (default: ISO dates)")

    report = command("report", cmd_report, "print a metric as a table, CSV or JSON")
    report.add_argument("metric", choices=sorted(REPORTS), metavar="METRIC",
                        help=f"one of: {', '.join(sorted(REPORTS))}")
    report.add_argument("--from", dest="date_from", type=_iso_date, help="first day (default: 90 days before --to)")
    report.add_argument("--to", dest="date_to", type=_iso_date, help="last day (default: last day with data)")
    report.add_argument("--channel", action="append", help="repeat to select several")
    report.add_argument("--region", action="append")
    report.add_argument("--segment", action="append")
    report.add_argument("--segment-name", help="restrict to the members of this saved segment")
    report.add_argument("--format", choices=("table", "csv", "json"), default="table")
    report.add_argument("--output", type=Path, help="write to this file instead of standard output")
    for entry in REPORTS.values():
        entry.add_options(report)

    segment = command("segment", cmd_segment, "list saved segments, show one's rule, or export its members")
    segment.add_argument("action", choices=("list", "show", "export"))
    segment.add_argument("name", nargs="?", metavar="NAME")
    segment.add_argument("--format", choices=("table", "csv", "json", "parquet"), default="csv",
                         help="member export format (default csv)")
    segment.add_argument("--output", type=Path, help="write to this file instead of standard output")

    # The benchmark keeps its own stores (by size and seed), so it takes no --db.
    bench_parser = commands.add_parser("bench", help=bench.HELP, description=bench.HELP)
    bench.add_arguments(bench_parser).set_defaults(handler=bench.command)
    return parser


def main(argv: list[str] | None = None) -> int:
    pin_utc()
    try:
        settings = load_settings()
        args = build_parser(settings).parse_args(argv)
        return args.handler(args, settings)
    except (UsageError, SettingsError) as exc:
        _say(str(exc))
        return 2
    except KeyboardInterrupt:
        _say("interrupted")
        return 130
    except Exception as exc:  # the last line of defence: a bug, reported as one line
        if os.environ.get("JOURNEYLENS_DEBUG"):
            raise
        _say(f"journeylens: internal error: {type(exc).__name__}: {exc} "
             "(set JOURNEYLENS_DEBUG=1 for the traceback and please report it)")
        return 1
