"""`journeylens bench`: how fast every report and page is, against the engine's floor and the peers.

One demo store per size and seed is generated once and kept (``data/bench/``); a change to the
demo generator or to the derived tables' code regenerates or rebuilds it. Every measurement runs
in a fresh worker process (:mod:`journeylens.bench_worker`), so "cold" includes the connection and
empty DuckDB buffers and Streamlit caches; the operating system's file cache stays warm (dropping
it needs root and slows every other process on a shared machine). Imports are timed apart.

Speed is measured here and written down in docs/BENCHMARKS.md, never asserted in timed tests.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from journeylens.bench_worker import APP, RESULT_MARK, ROOT

HELP = "measure every report and page (cold, warm, filter change) against the engine floor, pandas and lifetimes"
DEFAULT_DIR = Path("data/bench")
DEMO_MONTHS = 24
SECTIONS = ("reports", "pages", "peers")
# Which peers need which package of the bench extra.
PEER_PACKAGES = {"pandas-retention": ("pandas",), "pandas-transitions": ("pandas",), "pandas-rfm": ("pandas",),
                 "lifetimes-clv": ("pandas", "lifetimes")}
# The derived tables each of our metrics reads, for the ratio that charges ours their build time too.
PEER_TABLES = {
    "pandas-retention": ("customer_months", "daily_activity"),
    "pandas-transitions": ("journey_touches", "journeys"),
    "pandas-rfm": ("customer_purchase_days", "customer_purchase_days_all_channels"),
    "lifetimes-clv": ("customer_purchase_days", "customer_purchase_days_all_channels"),
}
PEER_LABELS = {
    "pandas-retention": "pandas: retention cohort table",
    "pandas-transitions": "pandas: channel transition matrix",
    "pandas-rfm": "pandas: per-customer RFM summary",
    "lifetimes-clv": "lifetimes: summary + BG/NBD + GG + CLV",
}
# The targets (set for 1M customers on this 2-core machine): (key, text, limit, kind).
TARGETS = (
    ("page_cold", "every page: cold render <= 2 s", 2.0, "max"),
    ("page_warm", "every page: warm render <= 0.3 s", 0.3, "max"),
    ("page_filter", "every page: filter change <= 1 s", 1.0, "max"),
    ("app_rss", "app process peak RSS <= 6 GB", 6144.0, "max"),
    ("generation", "store generation (demo + build) <= 5 min", 300.0, "max"),
    ("pandas_ratio", "pandas / ours >= 10x on each metric", 10.0, "min"),
    ("lifetimes_ratio", "lifetimes / ours >= 20x on the CLV pipeline", 20.0, "min"),
)
# The code a generated store comes from: a change to it makes a cached store stale.
_DEMO_SOURCES = ("data_access/demo.py", "data_access/schema.py")
_BUILD_SOURCES = "data_access/derived*.py"


class BenchError(Exception):
    """The benchmark cannot go on; one line for the user."""


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    # Imported here: the command line module imports this one.
    from journeylens.cli import _positive_int

    parser.add_argument("--customers", type=_positive_int, default=100_000, help="store size (default 100000)")
    parser.add_argument("--seed", type=int, default=0, help="demo seed (default 0)")
    parser.add_argument("--repeat", type=_positive_int, default=3,
                        help="fresh processes per report and page, calls per in-process timing; medians (default 3)")
    parser.add_argument("--peer-repeat", type=_positive_int, default=1,
                        help="runs of each pandas / lifetimes peer (default 1: they take minutes at 1M)")
    parser.add_argument("--peer-memory-gb", type=float, default=12.0,
                        help="stop a peer whose process passes this RSS (default 12; pandas needs many times "
                             "the data)")
    parser.add_argument("--peers-together", action="store_true",
                        help="run the peers in one process: quicker to start, but each peer's RSS then "
                             "includes the peers before it")
    parser.add_argument("--json", dest="json_path", type=Path, help="also write every figure to this JSON file")
    parser.add_argument("--dir", dest="directory", type=Path, default=DEFAULT_DIR,
                        help=f"where generated stores are kept (default {DEFAULT_DIR})")
    parser.add_argument("--regenerate", action="store_true", help="generate the store again even if cached")
    parser.add_argument("--report", dest="reports", action="append", metavar="METRIC",
                        help="only this report (repeat for several; default every report)")
    parser.add_argument("--page", dest="pages", action="append", metavar="PAGE",
                        help="only this page, e.g. pages/overview.py (repeat; default every page)")
    parser.add_argument("--skip", action="append", choices=SECTIONS, default=[], help="leave a section out")
    return parser


def command(args: argparse.Namespace, settings: object) -> int:
    from journeylens.cli import UsageError

    del settings  # workers read the settings themselves, from the same environment
    try:
        result = run(customers=args.customers, seed=args.seed, repeat=args.repeat, peer_repeat=args.peer_repeat,
                     peer_memory_gb=args.peer_memory_gb, peers_together=args.peers_together,
                     directory=args.directory, regenerate=args.regenerate, reports=args.reports,
                     pages=args.pages, skip=tuple(args.skip))
    except BenchError as exc:
        raise UsageError(f"bench: {exc}") from None
    sys.stdout.write(format_result(result))
    if args.json_path is not None:
        args.json_path.parent.mkdir(parents=True, exist_ok=True)
        args.json_path.write_text(json.dumps(result, indent=2, default=str) + "\n")
        _say(f"bench: wrote {args.json_path}")
    return 0 if result["ok"] else 1


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Workers


def _work(task: str, *, store: Path, show_progress: bool = False, **params: object) -> dict:
    """Run one worker task in a fresh process; its result, with the process's wall time and the load."""
    env = {**os.environ, "JOURNEYLENS_STORE_PATH": str(store)}
    load_1m = os.getloadavg()[0]
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "journeylens.bench_worker", task, json.dumps({"path": str(store), **params})],
        env=env, stdout=subprocess.PIPE, stderr=None if show_progress else subprocess.PIPE, text=True,
    )
    process_s = time.perf_counter() - started
    results = [line for line in done.stdout.splitlines() if line.startswith(RESULT_MARK)]
    result = json.loads(results[-1][len(RESULT_MARK):]) if results else {}
    if result.get("exit_code") or (done.returncode != 0 and "status" not in result):
        result["error"] = _last_line(done.stderr) or f"worker exited with {done.returncode}"
    return {**result, "process_s": process_s, "load_1m": load_1m}


def _last_line(text: str | None) -> str:
    """The last line of a worker's stderr that is not a library's log chatter."""
    lines = [line.strip() for line in (text or "").splitlines()
             if line.strip() and " WARNING " not in line and "Warning" not in line]
    return lines[-1][:300] if lines else ""


def _medians(runs: list[dict]) -> dict:
    """Median of every timing across the runs; the largest peak RSS; errors kept."""
    good = [r for r in runs if "error" not in r]
    merged: dict = {"runs": len(runs)}
    if errors := [r["error"] for r in runs if "error" in r]:
        merged["error"] = errors[0]
    if not good:
        return merged
    for key in good[0]:
        values = [r[key] for r in good if isinstance(r.get(key), (int, float)) and not isinstance(r.get(key), bool)]
        if key == "peak_rss_mb" and values:
            merged[key] = max(values)
        elif values and len(values) == len(good):
            merged[key] = statistics.median(values)
        elif key not in merged:
            merged[key] = good[0][key]
    return merged


# ---------------------------------------------------------------------------------------------
# The store


def _fingerprint(paths: tuple[str, ...] | str) -> str:
    files = sorted(ROOT.glob(paths)) if isinstance(paths, str) else [ROOT / path for path in paths]
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def bench_store(*, customers: int, seed: int, directory: Path, regenerate: bool = False) -> tuple[Path, dict]:
    """The cached store of this size and seed, generated (or rebuilt) first when needed."""
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"journeylens-{customers}c-seed{seed}.duckdb"
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text()) if meta_path.exists() and path.exists() and not regenerate else {}
    demo, build = _fingerprint(_DEMO_SOURCES), _fingerprint(_BUILD_SOURCES)
    if meta.get("demo_fingerprint") == demo and meta.get("build_fingerprint") == build and "error" not in meta:
        return path, {**meta, "cached": True}
    if meta.get("demo_fingerprint") == demo:
        _say(f"bench: the derived tables' code changed since {path.name} was built: rebuilding them")
        rebuilt = _work("build", store=path, show_progress=True)
        if "error" in rebuilt:
            raise BenchError(f"rebuilding {path} failed: {rebuilt['error']}")
        meta = {**meta, **{k: rebuilt[k] for k in ("build_s", "build_cpu_s", "build_tables")},
                "total_s": meta["generate_s"] + rebuilt["build_s"], "build_fingerprint": build,
                "rebuilt_at": _now(), "size_mb": rebuilt["size_mb"], "build_peak_rss_mb": rebuilt["peak_rss_mb"]}
    else:
        _say(f"bench: generating {customers:,} customers (seed {seed}) into {path}")
        generated = _work("generate", store=path, show_progress=True, customers=customers, seed=seed,
                          months=DEMO_MONTHS)
        if "error" in generated:
            raise BenchError(f"generating the store failed: {generated['error']}")
        meta = {**generated, "demo_fingerprint": demo, "build_fingerprint": build, "generated_at": _now(),
                "seed": seed, "months": DEMO_MONTHS}
    meta_path.write_text(json.dumps(meta, indent=2, default=str) + "\n")
    return path, {**meta, "cached": False}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# ---------------------------------------------------------------------------------------------
# What to measure


def app_pages() -> list[str]:
    """The page files app.py registers with st.Page, in the order the navigation lists them."""
    calls = [node for node in ast.walk(ast.parse(APP.read_text()))
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "Page"
             and node.args and isinstance(node.args[0], ast.Constant)]
    return [node.args[0].value for node in sorted(calls, key=lambda node: (node.lineno, node.col_offset))]


def missing_extras() -> list[str]:
    """Packages of the ``bench`` extra that are not installed."""
    return [name for name in ("pandas", "lifetimes") if importlib.util.find_spec(name) is None]


def machine() -> dict:
    info: dict = {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        info["cpu"] = next(line.split(":", 1)[1].strip() for line in cpuinfo.splitlines()
                           if line.startswith("model name"))
        meminfo = Path("/proc/meminfo").read_text()
        info["memory_gb"] = round(int(meminfo.split("MemTotal:")[1].split()[0]) / 2**20, 1)
    except (OSError, StopIteration, IndexError, ValueError):
        pass
    info["packages"] = {}
    for package in ("duckdb", "ibis-framework", "polars", "streamlit", "numpy", "scipy", "pandas", "lifetimes"):
        try:
            info["packages"][package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            info["packages"][package] = None
    return info


# ---------------------------------------------------------------------------------------------
# The run


def run(*, customers: int, seed: int = 0, repeat: int = 3, peer_repeat: int = 1, peer_memory_gb: float = 12.0,
        peers_together: bool = False, directory: Path = DEFAULT_DIR,
        regenerate: bool = False, reports: list[str] | None = None, pages: list[str] | None = None,
        skip: tuple[str, ...] = (), say: Callable[[str], None] = _say) -> dict:
    """Measure everything; the result is what ``--json`` writes (see docs/BENCHMARKS.md)."""
    from journeylens.reports import REPORTS

    started = time.perf_counter()
    all_pages = app_pages()
    unknown = sorted(set(reports or ()) - set(REPORTS)) + sorted(set(pages or ()) - set(all_pages))
    if unknown:
        raise BenchError(f"unknown report or page {', '.join(unknown)}; reports: {', '.join(sorted(REPORTS))}; "
                         f"pages: {', '.join(all_pages)}")
    result: dict = {
        "bench_format": 1, "started_at": _now(), "machine": {**machine(), "load_at_start": os.getloadavg()},
        "options": {"customers": customers, "seed": seed, "repeat": repeat, "peer_repeat": peer_repeat,
                    "peer_memory_gb": peer_memory_gb, "peers_together": peers_together, "skip": list(skip)},
    }
    store, result["store"] = bench_store(customers=customers, seed=seed, directory=directory, regenerate=regenerate)
    say(f"bench: store {store.name}: {result['store']['events']:,} events; measuring the floor")
    result["floor"] = _work("floor", store=store, repeat=repeat)
    floor_s = result["floor"].get("warm_s")

    if "reports" not in skip:
        result["reports"] = []
        names = reports or sorted(REPORTS)
        for name, runs in _in_rounds(names, repeat, lambda name, _: _work("report", store=store, name=name),
                                     say=say, kind="report"):
            measured = _medians(runs)
            if floor_s and "warm_metric_s" in measured:
                measured["x_floor"] = measured["warm_metric_s"] / floor_s
            result["reports"].append({"name": name, **measured})

    if "pages" not in skip:
        def page_run(page: str, round_number: int) -> dict:
            # Each round removes another channel in the filter change.
            return _work("page", store=store, page=page, channel_index=round_number)

        result["pages"] = [{"page": page, **_medians(runs)}
                           for page, runs in _in_rounds(pages or all_pages, repeat, page_run, say=say, kind="page")]
        say("bench: every page in one app process (peak RSS)")
        result["app"] = _work("tour", store=store, pages=pages or all_pages)

    if "peers" not in skip:
        result["peers"] = _peers(store, result["store"], repeat=repeat, peer_repeat=peer_repeat,
                                 memory_gb=peer_memory_gb, together=peers_together, say=say)

    result["machine"]["load_at_end"] = os.getloadavg()
    result["seconds"] = time.perf_counter() - started
    result["peak_rss_mb"] = max(
        [_harness_rss_mb()] + [m.get("peak_rss_mb", 0) for m in _measurements(result)])
    result["targets"] = evaluate_targets(result)
    result["ok"] = _all_ok(result)
    return result


def _in_rounds(names: list[str], repeat: int, measure: Callable[[str, int], dict], *, say: Callable[[str], None],
               kind: str) -> list[tuple[str, list[dict]]]:
    """``repeat`` fresh-process runs of each name, in rounds that measure every name once: the
    host's speed drifts (a run's floor took 0.333-0.471 s on one day), and a slow minute then
    touches one run of several names rather than every run of one, which the median drops."""
    runs: dict[str, list[dict]] = {name: [] for name in names}
    for k in range(repeat):
        for name in names:
            say(f"bench: {kind} {name} (round {k + 1} of {repeat}, a fresh process)")
            runs[name].append(measure(name, k))
    return list(runs.items())


def _harness_rss_mb() -> float:
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _measurements(result: dict) -> list[dict]:
    return [result.get("floor", {}), result.get("app", {}), *result.get("peers", {}).get("results", {}).values(),
            *result.get("reports", []), *result.get("pages", [])]


def _peers(store: Path, store_meta: dict, *, repeat: int, peer_repeat: int, memory_gb: float = 12.0,
           together: bool = False, say: Callable[[str], None] = _say) -> dict:
    """Each peer in a process of its own (unless ``together``): its peak RSS is its own, and one that
    runs out of memory stops alone."""
    missing = missing_extras()
    results: dict[str, dict] = {}
    for name, needs in PEER_PACKAGES.items():
        if lacking := sorted(set(needs) & set(missing)):
            results[name] = {"status": "skipped", "note": f"{', '.join(lacking)} not installed"}
    if missing:
        say(f"bench: the bench extra is not installed (missing {', '.join(missing)}): skipping "
            f"{', '.join(results)}; install it with: pip install -e '.[bench]'")
    names = [name for name in PEER_PACKAGES if name not in results]
    for group in ([names] if together and names else [[name] for name in names]):
        say(f"bench: {', '.join(group)} against ours, whole history")
        measured = _work("peers", store=store, names=group, repeat=repeat, peer_repeat=peer_repeat,
                         memory_limit_mb=memory_gb * 1024)
        # Without results the process stopped early (memory budget, crash) while on the peer it names.
        found = measured.pop("results", None) or {measured.get("name", group[0]): measured}
        for name in group:
            results[name] = _peer_result(name, found.get(name, {"status": "not run", "note": "its process stopped"}),
                                         store_meta)
    return {"memory_budget_gb": memory_gb, "together": together,
            "results": {name: results[name] for name in PEER_PACKAGES}}


def _peer_result(name: str, peer: dict, store_meta: dict) -> dict:
    if "error" in peer:
        return {**peer, "status": "error", "note": peer["error"]}
    if peer.get("status") == "ok":
        tables = store_meta.get("build_tables", {})
        build_s = sum(tables.get(table, {}).get("s", 0.0) for table in PEER_TABLES[name])
        return {**peer, "ours_with_build_s": peer["ours_s"] + build_s,
                "ratio_with_build": peer["peer_s"] / (peer["ours_s"] + build_s)}
    if peer.get("status") == "out of memory" and peer.get("peer_ran_s") and peer.get("ours_s"):
        # It had not finished: the time it ran bounds the ratio from below.
        return {**peer, "ratio_at_least": peer["peer_ran_s"] / peer["ours_s"]}
    return peer


def _worst(rows: list[dict], key: str, label: str) -> tuple[float | None, str]:
    values = [(row[key], row[label]) for row in rows if isinstance(row.get(key), (int, float))]
    return max(values) if values else (None, "")


def evaluate_targets(result: dict) -> list[dict]:
    """Each target with the measured value and whether it is met (None: not measured)."""
    pages = result.get("pages", [])
    peers = result.get("peers", {}).get("results", {})
    ratios = [(peer.get("ratio", peer.get("ratio_at_least")), name) for name, peer in peers.items()]
    pandas = [(ratio, name) for ratio, name in ratios if ratio is not None and name.startswith("pandas")]
    lifetimes = [(ratio, name) for ratio, name in ratios if ratio is not None and name.startswith("lifetimes")]
    rss = [(m["peak_rss_mb"], m.get("page", "app tour")) for m in (result.get("app", {}), *pages)
           if "peak_rss_mb" in m]
    store = result.get("store", {})
    measured = {
        "page_cold": _worst(pages, "cold_s", "page"),
        "page_warm": _worst(pages, "warm_s", "page"),
        "page_filter": _worst(pages, "filter_s", "page"),
        "app_rss": max(rss) if rss else (None, ""),
        "generation": (store.get("total_s"), "demo + build"),
        "pandas_ratio": min(pandas) if pandas else (None, ""),
        "lifetimes_ratio": min(lifetimes) if lifetimes else (None, ""),
    }
    targets = []
    for key, text, limit, kind in TARGETS:
        value, where = measured[key]
        met = None if value is None else (value <= limit if kind == "max" else value >= limit)
        targets.append({"target": key, "text": text, "limit": limit, "value": value, "where": where, "met": met})
    return targets


def _all_ok(result: dict) -> bool:
    """No measurement failed and every peer agrees with ours (missed targets are findings, not failures)."""
    failed = [m for m in _measurements(result) if "error" in m or m.get("problems")]
    peers = result.get("peers", {}).get("results", {}).values()
    return not failed and all(peer.get("ok", True) for peer in peers)


# ---------------------------------------------------------------------------------------------
# The printed table


def _s(value: object, digits: int = 2) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) else "–"


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = []
    for i, row in enumerate((header, *rows)):
        cells = [str(cell).ljust(width) if j == 0 else str(cell).rjust(width)
                 for j, (cell, width) in enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
        if i == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _store_origin(store: dict) -> str:
    origin = f"generated {store.get('generated_at')}"
    if store.get("rebuilt_at"):
        origin += f", derived tables rebuilt {store['rebuilt_at']}"
    return f"cached: {origin}" if store.get("cached") else f"now: {origin}"


def format_result(result: dict) -> str:
    """The run as the tables the command prints (seconds are wall-clock medians)."""
    store, floor = result["store"], result["floor"]
    load = result["machine"]
    out = [
        f"Journeylens bench: {store['customers']:,} customers, {store['events']:,} events (seed {store.get('seed')}),"
        f" median of {result['options']['repeat']}; {load.get('cpu', '?')}, {load.get('cores')} cores,"
        f" {load.get('memory_gb', '?')} GB; load {load['load_at_start'][0]:.1f} -> {load['load_at_end'][0]:.1f}",
        f"store: demo {_s(store.get('generate_s'), 1)} s + build {_s(store.get('build_s'), 1)} s = "
        f"{_s(store.get('total_s'), 1)} s, {_s(store.get('size_mb'), 0)} MB, peak RSS "
        f"{_s(store.get('peak_rss_mb'), 0)} MB ({_store_origin(store)})",
        f"floor: count and revenue by channel and day over every event: cold {_s(floor.get('cold_s'))} s,"
        f" warm {_s(floor.get('warm_s'), 3)} s (cpu {_s(floor.get('warm_cpu_s'), 3)} s)",
        "",
    ]
    rows = []
    for report in result.get("reports", []):
        rows.append((f"report {report['name']}", _s(report.get("import_s")), _s(report.get("cold_s")),
                     _s(report.get("cold_cpu_s")), _s(report.get("warm_s"), 3), _s(report.get("warm_cpu_s"), 3),
                     "", _s(report.get("warm_metric_s"), 3), _s(report.get("x_floor"), 1),
                     _s(report.get("peak_rss_mb"), 0), report.get("error", "")))
    for page in result.get("pages", []):
        problems = "; ".join(page.get("problems") or []) or page.get("error", "")
        rows.append((f"page {page.get('title') or page['page']}", _s(page.get("import_s")), _s(page.get("cold_s")),
                     _s(page.get("cold_cpu_s")), _s(page.get("warm_s"), 3), _s(page.get("warm_cpu_s"), 3),
                     f"{_s(page.get('filter_s'))} ({_s(page.get('filter_cpu_s'))})", "", "",
                     _s(page.get("peak_rss_mb"), 0), problems[:60]))
    if rows:
        out.append(_table(("metric", "import s", "cold s", "cpu", "warm s", "cpu", "filter s (cpu)", "metric s",
                           "x floor", "RSS MB", "note"), rows))
        out.append("cold: first call in a fresh process, after imports; warm: the second call (pages: a rerun, "
                   "served from Streamlit's cache); filter: a rerun with one channel removed; cpu: CPU seconds of "
                   "all threads (less inflated than wall time on a loaded machine); metric s: the report's own "
                   "warm run; x floor: metric s / floor warm s.")
    if app := result.get("app"):
        out.append(f"app process serving every page in turn: peak RSS {_s(app.get('peak_rss_mb'), 0)} MB"
                   + (f" ({app['error']})" if "error" in app else ""))
    peers = result.get("peers", {}).get("results", {})
    if peers:
        rows = []
        for name, peer in peers.items():
            if peer.get("status") == "out of memory":
                bound = f">{peer['ratio_at_least']:.1f}x" if "ratio_at_least" in peer else "–"
                rows.append((PEER_LABELS[name], "–", _s(peer.get("ours_s"), 3), bound, "", "", "", peer["note"]))
                continue
            if peer.get("status") != "ok":
                rows.append((PEER_LABELS[name], "", "", "", "", "", "", peer.get("note", "skipped")))
                continue
            worst = max(check["max_rel_diff"] for check in peer["checks"].values())
            rows.append((PEER_LABELS[name], _s(peer["peer_s"]), _s(peer["ours_s"], 3), f"{peer['ratio']:.1f}x",
                         f"{peer['cpu_ratio']:.1f}x", f"{peer['ratio_with_build']:.1f}x", _s(peer.get("peak_rss_mb"), 0),
                         ("PASS" if peer["ok"] else "FAIL") + f" (max diff {worst:.1e})"))
        out += ["", _table(("peer, whole history", "peer s", "ours s", "peer/ours", "cpu ratio", "incl. build",
                            "RSS MB", "same numbers"), rows)]
        out.append("peer s: pandas / lifetimes on data already in memory (loading apart); ours s: our metric on a "
                   "warm connection; cpu ratio: the same in CPU seconds; incl. build: ours plus building the "
                   "derived tables it reads; RSS: the peer's process.")
    out += ["", "targets (set for 1M customers):"]
    for target in result["targets"]:
        state = {True: "met", False: "MISSED", None: "not measured"}[target["met"]]
        value = "" if target["value"] is None else f": {target['value']:.2f} ({target['where']})"
        out.append(f"  {state:12} {target['text']}{value}")
    out.append(f"bench took {result['seconds']:.0f} s; peak RSS of any process {result['peak_rss_mb']:.0f} MB")
    return "\n".join(out) + "\n"
