"""The embedded DuckDB store: one connection per process, one Ibis backend per thread.

DuckDB refuses (rather than queues) a second concurrent call on one connection, and Streamlit
runs every session and rerun on its own thread, so each thread gets its own cursor wrapped in its
own Ibis backend. A DuckDB file is open either by one writer or by many readers; writers therefore
work on a copy that replaces the file atomically when they finish (:func:`writable_store`), and a
reader notices the new file by its changed modification time (:attr:`Store.version`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

# Ibis loads its DuckDB backend, and Polars pyarrow, only on first use: 0.3 s of the first query of
# every process, landing in a user's page instead of the server's start.
import duckdb
import ibis
import ibis.backends.duckdb
import ibis.expr.types as ir
import polars as pl
import pyarrow  # noqa: F401
import sqlglot

from data_access.schema import BASE_TABLES


def pin_utc() -> None:
    """Make the process clock UTC so timestamps never shift with the host's zone."""
    os.environ["TZ"] = "UTC"
    if hasattr(time, "tzset"):
        time.tzset()


class StoreMissing(FileNotFoundError):
    """There is no store at the configured path yet."""


class Store:
    """A DuckDB file opened once, queried through per-thread Ibis backends."""

    def __init__(self, path: Path | str, *, read_only: bool = True, threads: int = 0) -> None:
        self.path = Path(path)
        if read_only and not self.path.exists():
            raise StoreMissing(f"no store at {self.path}")
        config = {"threads": threads} if threads else {}
        self.connection = duckdb.connect(str(self.path), read_only=read_only, config=config)
        self.connection.execute("SET TimeZone = 'UTC'")
        self.read_only = read_only
        self._local = threading.local()

    @property
    def version(self) -> int:
        """Changes whenever a writer swaps in a new file."""
        return self.path.stat().st_mtime_ns

    @property
    def backend(self) -> ibis.BaseBackend:
        """This thread's Ibis backend, over its own DuckDB cursor."""
        backend = getattr(self._local, "backend", None)
        if backend is None:
            backend = ibis.duckdb.from_connection(self.connection.cursor())
            self._local.backend = backend
        return backend

    def to_polars(self, expr: ir.Expr, *, sql: str | None = None) -> pl.DataFrame:
        """Run an expression in the engine and bring the (small) result back as Polars.

        The compiled SQL runs on this thread's cursor directly: Ibis' own result conversion
        imports pandas, 0.65 s of every fresh process's first query, for nothing a Polars result
        needs. That path also registers in-memory tables (``ibis.memtable``) first; no metric
        uses one, and one would fail here as an unknown table. ``sql`` is the expression's DuckDB
        SQL when the caller has compiled it already (compiling the value page's query takes 0.05 s).
        """
        backend = self.backend
        result = backend.con.sql(sql or backend.compile(expr.as_table())).to_arrow_table()
        return expr.__polars_result__(pl.from_arrow(result))

    def table_names(self) -> set[str]:
        return set(self.backend.list_tables())

    def row_count(self, name: str) -> int:
        if name not in self.table_names():
            return 0
        return int(self.to_polars(self.backend.table(name).count()))

    def has_data(self) -> bool:
        """True when the store has the contract's tables and at least one event."""
        return set(BASE_TABLES) <= self.table_names() and self.row_count("events") > 0

    def close(self) -> None:
        self.connection.close()


def create_base_tables(store: Store) -> None:
    """Create any missing contract table, empty, with the contract's types."""
    existing = store.table_names()
    for name, schema in BASE_TABLES.items():
        if name not in existing:
            store.backend.create_table(name, schema=schema)


@contextlib.contextmanager
def writable_store(path: Path | str, *, fresh: bool = False, threads: int = 0) -> Iterator[Store]:
    """Open a private copy of the store for writing and swap it in only if the block succeeds.

    Readers (a running app) keep the old file until they reopen; a failed load leaves the store
    exactly as it was. ``fresh=True`` starts from an empty store instead of a copy.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = target.with_name(f".{target.name}.{os.getpid()}.writing")
    scratch.unlink(missing_ok=True)
    if target.exists() and not fresh:
        shutil.copyfile(target, scratch)
    store = Store(scratch, read_only=False, threads=threads)
    compact = scratch.with_name(f"{scratch.name}.compact")
    try:
        create_base_tables(store)
        yield store
        store.connection.execute("CHECKPOINT")
        free_share = _free_share(store)
        store.close()
        if free_share > COMPACT_ABOVE_FREE_SHARE:
            _copy_compacted(scratch, compact)
            os.replace(compact, scratch)
        os.replace(scratch, target)
    except BaseException:
        store.close()
        for leftover in (scratch, Path(f"{scratch}.wal"), compact, Path(f"{compact}.wal")):
            leftover.unlink(missing_ok=True)
        raise


# A file with more than this share of free blocks is rewritten before it is swapped in.
COMPACT_ABOVE_FREE_SHARE = 0.25


def _free_share(store: Store) -> float:
    free, total = store.connection.execute("SELECT free_blocks, total_blocks FROM pragma_database_size()").fetchone()
    return free / total if total else 0.0


def _copy_compacted(source: Path, target: Path) -> None:
    """Copy every table, view and sequence of ``source`` into a new file at ``target``.

    DuckDB reuses a file's freed blocks but never gives them back; a store rebuilt in place by an
    older version kept its old derived tables' blocks and doubled in size (3.7 GB to 7.5 GB at 1M).
    """
    target.unlink(missing_ok=True)
    connection = duckdb.connect()
    try:
        # ATTACH takes no bound parameters: the paths go in as string literals that SQLGlot quotes.
        connection.execute(f"ATTACH {_string_literal(source)} AS source (READ_ONLY)")
        connection.execute(f"ATTACH {_string_literal(target)} AS target")
        connection.execute("COPY FROM DATABASE source TO target")
    finally:
        connection.close()


def _string_literal(path: Path) -> str:
    return sqlglot.exp.Literal.string(str(path)).sql(dialect="duckdb")
