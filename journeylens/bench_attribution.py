"""How long Markov and Shapley attribution take once the journey table exists.

``python -m journeylens.bench_attribution --journeys 1000000`` writes that many synthetic journeys
(the ``journeys`` derived table only: collapsed paths over seven channels, 1–8 steps, conversion
more likely on longer paths) into a scratch DuckDB file, then times each stage of
:func:`metrics.attribution.attribution` for the two models: the engine's aggregation to distinct
paths, parsing them, the exact Markov and Shapley solutions, and the bootstrap.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from data_access.derived import derived
from data_access.derived_journeys import PATH_SEPARATOR, SET_SEPARATOR
from data_access.store import Store, pin_utc, writable_store
from metrics import attribution as am
from metrics.filters import Filters

CHANNELS = ("web", "app", "email", "social", "sms", "store", "support")


def synthetic_journeys(n: int, *, seed: int = 0) -> pl.DataFrame:
    """``n`` journeys with the columns of the ``journeys`` table (only what attribution reads varies)."""
    rng = np.random.default_rng(seed)
    steps = np.minimum(rng.geometric(0.45, n), 8)
    owner = np.repeat(np.arange(n), steps)
    first = np.cumsum(steps) - steps
    # A collapsed path never repeats a channel: each step moves 1–6 places round the channel list.
    moves = rng.integers(1, len(CHANNELS), owner.size)
    moves[first] = rng.choice(len(CHANNELS), n, p=[0.35, 0.2, 0.15, 0.08, 0.02, 0.17, 0.03])
    shift = np.cumsum(moves)
    position = (shift - np.repeat(shift[first] - moves[first], steps)) % len(CHANNELS)
    names = np.array(CHANNELS)[position]
    touches = pl.DataFrame({"journey": owner, "channel": names})
    paths = touches.group_by("journey", maintain_order=True).agg(
        collapsed_path=pl.col("channel").str.join(PATH_SEPARATOR),
        channel_set=pl.col("channel").unique().sort().str.join(SET_SEPARATOR),
        first_channel=pl.col("channel").first(),
        last_channel=pl.col("channel").last(),
    )
    converted = rng.random(n) < 0.15 + 0.08 * np.minimum(steps, 5)
    end = datetime(2026, 10, 31)
    ended = [end - timedelta(minutes=int(m)) for m in rng.integers(0, 365 * 24 * 60, n)]
    return pl.DataFrame({
        "journey_id": [f"J{i}" for i in range(n)],
        "customer_id": [f"C{i // 3}" for i in range(n)],
        "converted": converted,
        "ended_at": ended,
        "conversion_channel": rng.choice(["web", "app", "store"], n),
        "revenue": np.where(converted, rng.gamma(2.0, 40.0, n), 0.0),
        "touches": steps,
    }).with_columns(
        paths.select("collapsed_path", "channel_set", "first_channel", "last_channel"),
        conversion_channel=pl.when(pl.col("converted")).then(pl.col("conversion_channel")),
        started_at=pl.col("ended_at"),
        steps=pl.col("touches"),
        path=paths["collapsed_path"],
        order_id=pl.lit(None, pl.String),
        first_event_type=pl.lit("page_view"),
        day=pl.col("ended_at").dt.date(),
        days_to_convert=pl.when(pl.col("converted")).then(pl.lit(1.0)),
        lookback_days=pl.lit(30, pl.Int64),
    )


def write_store(path: Path, journeys: pl.DataFrame) -> None:
    schema = derived("journeys").schema()
    with writable_store(path, fresh=True) as store:
        frame = journeys.select(schema.names).cast(dict(schema.to_polars()))
        store.backend.create_table("journeys", frame.to_arrow(), overwrite=True)


def measure(store: Store, *, replicates: int) -> dict[str, tuple[float, float]]:
    """Seconds per stage: (wall clock, CPU of this process). On a shared machine the CPU time is
    the steadier number; the engine's own threads count towards it too."""
    seconds: dict[str, tuple[float, float]] = {}
    filters = Filters(start=date(2025, 1, 1), end=date(2026, 12, 31))

    def timed(name: str, run):
        wall, cpu = time.perf_counter(), time.process_time()
        result = run()
        seconds[name] = (time.perf_counter() - wall, time.process_time() - cpu)
        return result

    paths = timed("aggregate to distinct paths (engine)", lambda: store.to_polars(am.paths_expr(filters)))
    cells = timed("parse paths", lambda: am.path_cells(paths))
    timed("markov exact", lambda: am.markov(cells))
    timed("shapley exact", lambda: am.shapley(cells))
    point = tuple(sum(values) for values in zip(*seconds.values(), strict=True))
    timed(f"bootstrap x{replicates} (both)", lambda: am.bootstrap(cells, replicates=replicates))
    seconds["point estimates (all above)"] = point
    timed("attribution() end to end", lambda: am.attribution(store, filters, models=("markov", "shapley"),
                                                             bootstrap_replicates=replicates))
    print(f"{len(paths):,} distinct collapsed paths")
    return seconds


def main(argv: list[str] | None = None) -> int:
    pin_utc()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--journeys", type=int, default=1_000_000)
    parser.add_argument("--replicates", type=int, default=am.DEFAULT_BOOTSTRAP)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "journeys.duckdb"
        started = time.perf_counter()
        write_store(path, synthetic_journeys(args.journeys))
        print(f"wrote {args.journeys:,} synthetic journeys in {time.perf_counter() - started:.1f} s")
        store = Store(path)
        for name, (wall, cpu) in measure(store, replicates=args.replicates).items():
            print(f"{name:>40}: {wall:6.2f} s wall, {cpu:6.2f} s CPU")
        store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
