"""The measurements of `journeylens bench`, each run in a fresh process of its own.

``python -m journeylens.bench_worker TASK JSON`` runs one task with the keyword arguments in JSON
and prints its result as one JSON object on the last line of stdout, after ``RESULT_MARK``. A
fresh process is what makes "cold" mean cold: imports, the DuckDB connection and its buffers and
Streamlit's caches all start empty. Only the standard library is imported up front, because the
time to import Journeylens is measured (``import_s``) apart from what the task then costs.
"""

from __future__ import annotations

import ast
import json
import math
import re
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

RESULT_MARK = "@@journeylens-bench "
ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "app.py"
# A cold page at a million customers can take minutes on a loaded machine; AppTest's default is 3 s.
PAGE_TIMEOUT_S = 1800
_BUILT = re.compile(r"built (\w+): ([\d,]+) rows in ([\d.]+) s")


def peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux.
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def timed(run: Callable[[], object]) -> tuple[object, float, float]:
    """The value, wall seconds and CPU seconds (all threads) of one call.

    On a machine shared with other work, wall time grows with the load and CPU time much less:
    both are recorded so a reader can tell a slow metric from a busy machine.
    """
    wall, cpu = time.perf_counter(), time.process_time()
    value = run()
    return value, time.perf_counter() - wall, time.process_time() - cpu


def median_seconds(run: Callable[[], object], *, repeat: int) -> tuple[object, float, float]:
    """The last value and the median wall and CPU seconds of ``repeat`` calls."""
    walls, cpus, value = [], [], None
    for _ in range(max(1, repeat)):
        value, wall, cpu = timed(run)
        walls.append(wall)
        cpus.append(cpu)
    return value, statistics.median(walls), statistics.median(cpus)


def _imports(*modules: str) -> float:
    import importlib

    started = time.perf_counter()
    for module in modules:
        importlib.import_module(module)
    return time.perf_counter() - started


def _progress(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Store


def _build(store, settings) -> dict:
    """Build the derived tables with the timings the build reports per table."""
    from data_access.derived import build_derived_tables
    from data_access.schema import record_contract_check
    from metrics.clv import store_scores

    tables: dict[str, dict] = {}

    def progress(message: str) -> None:
        _progress(message)
        if match := _BUILT.match(message):
            tables[match[1]] = {"rows": int(match[2].replace(",", "")), "s": float(match[3])}

    _, build_s, build_cpu_s = timed(lambda: build_derived_tables(store.backend, progress=progress,
                                                                 lookback_days=settings.lookback_days,
                                                                 score_clv=store_scores))
    # As `journeylens build` does: the Data page reads this outcome instead of scanning the store.
    problems, check_s, check_cpu_s = timed(lambda: record_contract_check(store.backend, channels=settings.channels))
    tables["contract_checks"] = {"rows": 1, "s": check_s}
    return {"build_s": build_s + check_s, "build_cpu_s": build_cpu_s + check_cpu_s, "build_tables": tables,
            "contract_problems": problems}


def generate(*, path: str, customers: int, seed: int, months: int) -> dict:
    """Generate the demo store and build its derived tables, timing each part."""
    import_s = _imports("data_access.demo", "data_access.derived", "data_access.schema", "data_access.store")
    from data_access.demo import generate_demo
    from data_access.settings import load_settings
    from data_access.store import pin_utc, writable_store

    pin_utc()
    settings = load_settings()
    started = time.perf_counter()
    with writable_store(path, fresh=True, threads=settings.engine_threads) as store:
        summary, generate_s, generate_cpu_s = timed(lambda: generate_demo(
            store, customers=customers, seed=seed, months=months, channels=settings.channels, progress=_progress))
        built = _build(store, settings)
    return {
        "customers": summary.customers, "events": summary.events, "identities": summary.identities,
        "import_s": import_s, "generate_s": generate_s, "generate_cpu_s": generate_cpu_s, **built,
        "total_s": time.perf_counter() - started,
        "size_mb": round(Path(path).stat().st_size / 2**20, 1), "peak_rss_mb": peak_rss_mb(),
    }


def build(*, path: str) -> dict:
    """Rebuild the derived tables of an existing store (what `journeylens build` does)."""
    from data_access.settings import load_settings
    from data_access.store import pin_utc, writable_store

    pin_utc()
    settings = load_settings()
    with writable_store(path, threads=settings.engine_threads) as store:
        built = _build(store, settings)
    return {**built, "size_mb": round(Path(path).stat().st_size / 2**20, 1), "peak_rss_mb": peak_rss_mb()}


# ---------------------------------------------------------------------------------------------
# The floor: how fast this machine scans the events


def floor(*, path: str, repeat: int) -> dict:
    """A bare engine aggregate over every event: count and revenue per channel and day."""
    import_s = _imports("ibis", "data_access.store", "data_access.schema")
    from data_access.schema import unified
    from data_access.settings import load_settings
    from data_access.store import Store, pin_utc

    pin_utc()
    store, connect_s, _ = timed(lambda: Store(path, threads=load_settings().engine_threads))
    e = unified("events")
    expr = e.group_by([e.channel, e.occurred_at.date().name("day")]).agg(
        events=e.count(), revenue=e.revenue.sum())
    frame, cold_s, cold_cpu_s = timed(lambda: store.to_polars(expr))
    _, warm_s, warm_cpu_s = median_seconds(lambda: store.to_polars(expr), repeat=repeat)
    return {"import_s": import_s, "connect_s": connect_s, "cold_s": cold_s, "cold_cpu_s": cold_cpu_s,
            "warm_s": warm_s, "warm_cpu_s": warm_cpu_s,
            "rows": len(frame), "events": int(frame["events"].sum()), "peak_rss_mb": peak_rss_mb()}


# ---------------------------------------------------------------------------------------------
# `journeylens report`


def report(*, path: str, name: str) -> dict:
    """``journeylens report NAME`` twice in this process: the first call cold, the second warm.

    ``*_s`` is the whole command after imports (settings, connection, default filters, the
    metric, writing JSON); ``*_metric_s`` is the report's own run.
    """
    import_s = _imports("journeylens.cli")
    import dataclasses

    from data_access.store import Store, pin_utc
    from journeylens import cli
    from journeylens.reports import REPORTS

    metric_s: list[float] = []
    original = REPORTS[name]

    def run(*args: object) -> object:
        started = time.perf_counter()
        try:
            return original.run(*args)
        finally:
            metric_s.append(time.perf_counter() - started)

    REPORTS[name] = dataclasses.replace(original, run=run)
    pin_utc()
    # DuckDB gives connections to one file in one process the same database and buffer pool, so
    # holding a connection (opened as the command opens it) keeps the second call as warm as a
    # long-running process would be; without it each call would start from a closed database.
    keep = Store(path)
    calls: list[tuple[float, float]] = []
    code = 0
    with tempfile.TemporaryDirectory() as scratch:
        argv = ["report", name, "--db", path, "--format", "json", "--output", str(Path(scratch) / "out.json")]
        for _ in range(2):
            code, wall, cpu = timed(lambda: cli.main(argv))
            if code != 0:
                break
            calls.append((wall, cpu))
    keep.close()
    result = {"import_s": import_s, "exit_code": code, "peak_rss_mb": peak_rss_mb()}
    if code == 0:
        (cold_s, cold_cpu_s), (warm_s, warm_cpu_s) = calls
        result.update(cold_s=cold_s, cold_cpu_s=cold_cpu_s, warm_s=warm_s, warm_cpu_s=warm_cpu_s,
                      cold_metric_s=metric_s[0], warm_metric_s=metric_s[1])
    return result


# ---------------------------------------------------------------------------------------------
# Pages through AppTest


def _script_imports(*scripts: Path) -> list[str]:
    """Modules the scripts import, so their import time is measured before the first render."""
    modules: list[str] = []
    for script in scripts:
        for node in ast.walk(ast.parse(script.read_text())):
            if isinstance(node, ast.Import):
                modules += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                modules.append(node.module)
    return list(dict.fromkeys(modules))


def _problems(at) -> list[str]:
    return [str(element.value)[:300] for element in (*at.exception, *at.error)]


def _channel_filter(at):
    """The sidebar's channel filter (None on a page that stopped before drawing it)."""
    try:
        return at.multiselect(key="channel")
    except KeyError:
        return None


def _without_one_channel(at, index: int) -> tuple[str | None, float | None, float | None]:
    """Remove one channel from the global filter and rerun: the channel, wall and CPU seconds."""
    widget = _channel_filter(at)
    if widget is None or not widget.options:
        return None, None, None
    options = list(widget.options)
    removed = options[index % len(options)]
    _, wall, cpu = timed(lambda: widget.set_value([c for c in options if c != removed]).run())
    return removed, wall, cpu


def page(*, path: str, page: str, channel_index: int) -> dict:
    """Render one page cold (first run in this process), warm (a rerun) and after a filter change."""
    import_s = _imports("streamlit.testing.v1", *_script_imports(APP, ROOT / page))
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=PAGE_TIMEOUT_S)
    at.switch_page(page)
    _, cold_s, cold_cpu_s = timed(at.run)
    problems = _problems(at)
    title = at.title[0].value if len(at.title) else None
    _, warm_s, warm_cpu_s = timed(at.run)
    removed, filter_s, filter_cpu_s = _without_one_channel(at, channel_index)
    return {"title": title, "import_s": import_s, "cold_s": cold_s, "cold_cpu_s": cold_cpu_s, "warm_s": warm_s,
            "warm_cpu_s": warm_cpu_s, "filter_s": filter_s, "filter_cpu_s": filter_cpu_s,
            "removed_channel": removed, "problems": problems + _problems(at), "peak_rss_mb": peak_rss_mb()}


def tour(*, path: str, pages: list[str]) -> dict:
    """One app process that serves every page in turn (first visit, rerun, filter change, filter
    cleared): its peak RSS is what one Streamlit server needs for a user going through the app."""
    _imports("streamlit.testing.v1", *_script_imports(APP, *(ROOT / p for p in pages)))
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=PAGE_TIMEOUT_S)
    visits = []
    for index, name in enumerate(pages):
        at.switch_page(name)
        _, first_s, _ = timed(at.run)
        _, warm_s, _ = timed(at.run)
        _, filter_s, _ = _without_one_channel(at, index)
        if (widget := _channel_filter(at)) is not None:
            widget.set_value([]).run()
        visits.append({"page": name, "first_s": first_s, "warm_s": warm_s, "filter_s": filter_s,
                       "problems": _problems(at), "rss_mb_after": _current_rss_mb()})
    return {"visits": visits, "peak_rss_mb": peak_rss_mb()}


def _current_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return math.nan


# ---------------------------------------------------------------------------------------------
# Peers: pandas and lifetimes against ours, on the same data, with a check that the numbers agree


def frames_agree(ours, theirs, *, on: list[str], exact: tuple[str, ...] = (), close: tuple[str, ...] = (),
                 tolerance: float = 1e-9) -> dict:
    """Compare two Polars frames on the keys ``on``: the same keys on both sides, equal ``exact``
    columns, and ``close`` columns within ``tolerance`` of each other relative to max(1, |ours|)."""
    import polars as pl

    only_ours = len(ours.join(theirs, on=on, how="anti", nulls_equal=True))
    only_peer = len(theirs.join(ours, on=on, how="anti", nulls_equal=True))
    both = ours.join(theirs, on=on, how="inner", suffix="_peer", nulls_equal=True)
    mismatched, worst = 0, 0.0
    for column in (*exact, *close):
        a, b = both[column], both[f"{column}_peer"]
        mismatched += int((a.is_null() != b.is_null()).sum())
        if column in exact:
            mismatched += int((a != b).fill_null(False).sum())
            continue
        a, b = a.cast(pl.Float64), b.cast(pl.Float64)
        diff = ((a - b).abs() / a.abs().clip(lower_bound=1.0)).drop_nulls()
        worst = max(worst, float(diff.max())) if len(diff) else worst
    ok = only_ours == 0 and only_peer == 0 and mismatched == 0 and worst <= tolerance
    return {"ok": ok, "rows": len(ours), "only_ours": only_ours, "only_peer": only_peer,
            "mismatched": mismatched, "max_rel_diff": worst, "tolerance": tolerance}


def _load(store, columns: tuple[str, ...], *, event_types: tuple[str, ...] | None = None):
    """The events a peer reads, as the pandas frame an analyst would hold in memory."""
    events = store.backend.table("events")
    if event_types is not None:
        events = events.filter(events.event_type.isin(event_types))
    return events.select(*columns).to_pandas()


# What a peer task has measured so far, for the memory watchdog to report if it has to stop the peer.
_SO_FAR: dict = {}


def _measure(ours: Callable[[], object], load: Callable[[], object], peer: Callable[[object], object], *,
             repeat: int, peer_repeat: int) -> tuple[object, object, dict]:
    """Ours first (once to warm the connection, then the median of ``repeat`` calls), then the peer on
    data loaded into memory beforehand (loading is timed apart: the peer gets its best case)."""
    our_value, first_s, _ = timed(ours)
    _, ours_s, ours_cpu_s = median_seconds(ours, repeat=repeat)
    _SO_FAR.update(ours_first_s=first_s, ours_s=ours_s, ours_cpu_s=ours_cpu_s)
    data, load_s, _ = timed(load)
    _SO_FAR.update(load_s=load_s, peer_started=time.perf_counter())
    peer_value, peer_s, peer_cpu_s = median_seconds(lambda: peer(data), repeat=peer_repeat)
    del data
    return our_value, peer_value, {"ours_first_s": first_s, "ours_s": ours_s, "ours_cpu_s": ours_cpu_s,
                                   "load_s": load_s, "peer_s": peer_s, "peer_cpu_s": peer_cpu_s}


def _memory_watchdog(limit_mb: float) -> None:
    """Stop this process, with a result that says so, once its RSS passes ``limit_mb``.

    pandas needs several times the data's size; on a shared machine the kernel's OOM killer would
    otherwise pick a victim, possibly someone else's process. The result keeps what was measured
    (ours) and how long the peer had run, which bounds the ratio from below.
    """
    import os
    import threading

    def watch() -> None:
        while (rss := _current_rss_mb()) <= limit_mb:
            time.sleep(0.2)
        ran_s = time.perf_counter() - _SO_FAR["peer_started"] if "peer_started" in _SO_FAR else None
        result = {**{k: v for k, v in _SO_FAR.items() if k != "peer_started"}, "status": "out of memory",
                  "peer_ran_s": ran_s, "peak_rss_mb": rss,
                  "note": f"stopped at {rss / 1024:.1f} GB RSS (budget {limit_mb / 1024:.1f} GB)"
                          + (f" after {ran_s:.0f} s of the peer" if ran_s is not None else "")}
        print(RESULT_MARK + json.dumps(result, default=str), flush=True)
        os._exit(3)

    threading.Thread(target=watch, daemon=True, name="bench-memory-watchdog").start()


def _pandas_retention(store, everything, *, repeat: int, peer_repeat: int) -> dict:
    import polars as pl

    from journeylens import bench_pandas
    from metrics import retention

    cells, matrix, times = _measure(
        lambda: retention.retention(store, everything),
        lambda: _load(store, bench_pandas.RETENTION_COLUMNS),
        bench_pandas.retention_cohorts, repeat=repeat, peer_repeat=peer_repeat)
    # The pivot has no cell where nobody came back; ours has every cell, with a 0 there.
    ours = cells.filter(pl.col("retained") > 0).select(
        "cohort", "period_index", "cohort_size", "retained", "retention_pct")
    theirs = pl.from_pandas(bench_pandas.retention_long(matrix)).cast(dict(ours.schema))
    check = frames_agree(ours, theirs, on=["cohort", "period_index"], exact=("cohort_size", "retained"),
                         close=("retention_pct",))
    return {"what": "monthly first-time retention cohorts, whole history", **times, "checks": {"cells": check}}


def _pandas_transitions(store, everything, *, repeat: int, peer_repeat: int) -> dict:
    import polars as pl

    from data_access.settings import load_settings
    from journeylens import bench_pandas
    from metrics import flows

    lookback_days = load_settings().lookback_days
    ours, counts, times = _measure(
        lambda: flows.transitions(store, everything),
        lambda: _load(store, bench_pandas.TRANSITION_COLUMNS),
        lambda events: bench_pandas.channel_transitions(events, start=everything.start, end=everything.end,
                                                        lookback_days=lookback_days),
        repeat=repeat, peer_repeat=peer_repeat)
    theirs = pl.from_pandas(counts).cast(dict(ours.schema))
    check = frames_agree(ours, theirs, on=["from_state", "to_state"], exact=("transitions",),
                         close=("row_probability",))
    return {"what": "channel transition matrix of journeys (collapsed), whole history", **times,
            "checks": {"matrix": check}}


def _pandas_rfm(store, everything, *, repeat: int, peer_repeat: int) -> dict:
    import polars as pl

    from journeylens import bench_pandas
    from metrics import clv

    def peer(events):
        return bench_pandas.rfm_summary(events, as_of=everything.end)

    ours, rfm, times = _measure(lambda: clv.summary(store, everything, as_of=everything.end),
                                lambda: _load(store, bench_pandas.RFM_COLUMNS), peer,
                                repeat=repeat, peer_repeat=peer_repeat)
    theirs = pl.from_pandas(rfm).cast(dict(ours.schema))
    check = frames_agree(ours, theirs, on=["customer_id"], exact=("first_purchase", "last_purchase", "frequency"),
                         close=("recency", "T", "monetary_value", "historical_revenue"))
    # pandas' best case too: a transactions export that holds only purchases and refunds.
    transactions = _load(store, bench_pandas.RFM_COLUMNS, event_types=bench_pandas.RFM_EVENT_TYPES)
    _, transactions_s, transactions_cpu_s = median_seconds(lambda: peer(transactions), repeat=peer_repeat)
    return {"what": "per-customer RFM summary (purchase days, weeks), whole history", **times,
            "peer_on_transactions_s": transactions_s, "peer_on_transactions_cpu_s": transactions_cpu_s,
            "checks": {"summary": check}}


# lifetimes' optimiser and ours stop at slightly different points of the same likelihood maximum.
PARAMETER_TOLERANCE = 1e-3


def _lifetimes_clv(store, everything, *, repeat: int, peer_repeat: int) -> dict:
    import polars as pl

    from journeylens import bench_lifetimes
    from metrics import clv

    as_of = everything.end

    def ours_pipeline():
        # What lifetimes does, no more: one summary, both fits, P(alive) and CLV per customer (the
        # page's scores add attributes, channels and CSAT per customer, which lifetimes has no part of).
        summary = clv.summary(store, everything, as_of=as_of)
        fit = clv.fit_summary(summary, as_of=as_of)
        return fit, clv.score_customers(summary, bgnbd=fit.bgnbd, gamma_gamma=fit.gamma_gamma)

    (fit, scores), run, times = _measure(
        ours_pipeline,
        lambda: _load(store, bench_lifetimes.PURCHASE_COLUMNS, event_types=("purchase",)),
        lambda purchases: bench_lifetimes.clv_pipeline(
            purchases, as_of=as_of, horizon_months=clv.DEFAULT_HORIZON_MONTHS,
            monthly_discount=clv.DEFAULT_MONTHLY_DISCOUNT),
        repeat=repeat, peer_repeat=peer_repeat)
    theirs = pl.from_pandas(run.summary).with_columns(
        pl.col("frequency").cast(pl.Int64),
        # lifetimes reports 0 spend for one-time buyers, ours none.
        monetary_value=pl.when(pl.col("frequency") > 0).then(pl.col("monetary_value")))
    parameters = fit.parameters()
    ours_parameters = {key: value for key, value in {**parameters["bgnbd"], **parameters["gamma_gamma"]}.items()
                       if key != "log_likelihood"}
    peer_parameters = {**run.bgnbd, **run.gamma_gamma}

    def parameter_frame(values: dict) -> pl.DataFrame:
        return pl.DataFrame({"parameter": list(values), "value": [float(v) for v in values.values()]})

    summary_columns = ["customer_id", "frequency", "recency", "T", "monetary_value"]
    score_columns = ["customer_id", "p_alive", "predicted_clv"]
    checks = {
        "summary": frames_agree(scores.select(summary_columns), theirs.select(summary_columns), on=["customer_id"],
                                exact=("frequency",), close=("recency", "T", "monetary_value")),
        "parameters": frames_agree(parameter_frame(ours_parameters), parameter_frame(peer_parameters),
                                   on=["parameter"], close=("value",), tolerance=PARAMETER_TOLERANCE),
        "scores": frames_agree(scores.select(score_columns), theirs.select(score_columns), on=["customer_id"],
                               close=("p_alive", "predicted_clv"), tolerance=PARAMETER_TOLERANCE),
    }
    return {"what": "transaction summary, BG/NBD and Gamma-Gamma fits, P(alive) and 12-month CLV per customer",
            **times, "peer_stages_s": run.seconds, "checks": checks,
            "parameters": {"ours": ours_parameters, "peer": peer_parameters}}


PEERS: dict[str, tuple[str, Callable[..., dict]]] = {
    "pandas-retention": ("pandas", _pandas_retention),
    "pandas-transitions": ("pandas", _pandas_transitions),
    "pandas-rfm": ("pandas", _pandas_rfm),
    "lifetimes-clv": ("lifetimes", _lifetimes_clv),
}


def _run_peer(store, everything, name: str, *, repeat: int, peer_repeat: int) -> dict:
    package, run = PEERS[name]
    _SO_FAR.clear()
    _SO_FAR["name"] = name
    try:
        import_s = _imports(f"journeylens.bench_{package}")
    except ImportError as exc:  # lifetimes can be missing, or broken by a newer numpy or pandas
        return {"status": "skipped", "note": f"{package} unavailable: {exc}"}
    _progress(f"peer {name}")
    result = run(store, everything, repeat=repeat, peer_repeat=peer_repeat)
    return {**result, "status": "ok", "ok": all(check["ok"] for check in result["checks"].values()),
            "ratio": result["peer_s"] / result["ours_s"], "cpu_ratio": result["peer_cpu_s"] / result["ours_cpu_s"],
            "filters": everything.describe(), "import_s": import_s, "peak_rss_mb": peak_rss_mb()}


def _whole_history(path: str):
    _imports("polars", "data_access.store", "metrics.catalog", "metrics.filters")
    from data_access.store import Store, pin_utc
    from metrics.catalog import catalog
    from metrics.filters import Filters

    pin_utc()
    store = Store(path)
    bounds = catalog(store)
    return store, Filters(start=bounds.first_day, end=bounds.last_day)


def peers(*, path: str, names: list[str], repeat: int, peer_repeat: int, memory_limit_mb: float) -> dict:
    """Peers on the whole history (the tutorials' table), ours in the same process for each ratio.

    Given one name, the peak RSS is that peer's own; given several, each includes the peers before.
    """
    _memory_watchdog(memory_limit_mb)
    store, everything = _whole_history(path)
    return {"results": {name: _run_peer(store, everything, name, repeat=repeat, peer_repeat=peer_repeat)
                        for name in names}}


def peer(*, path: str, name: str, repeat: int, peer_repeat: int, memory_limit_mb: float) -> dict:
    """One peer (the task before :func:`peers` took a list; kept for harnesses already running)."""
    _memory_watchdog(memory_limit_mb)
    store, everything = _whole_history(path)
    return _run_peer(store, everything, name, repeat=repeat, peer_repeat=peer_repeat)


TASKS: dict[str, Callable[..., dict]] = {
    "generate": generate, "build": build, "floor": floor, "report": report, "page": page, "tour": tour,
    "peer": peer, "peers": peers,
}


def main(argv: list[str]) -> int:
    task, params = argv[0], json.loads(argv[1])
    result = TASKS[task](**params)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["process_cpu_s"] = usage.ru_utime + usage.ru_stime
    print(RESULT_MARK + json.dumps(result, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
