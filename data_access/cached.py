"""The only module that caches: the store connection, metric results and query results.

Results are cached by the metric's name, the store file's version, the filters and the options,
so a new load (which swaps in a new file) invalidates everything without a restart. Figures are
never cached, only data.

A metric run through :func:`compute` gets the store wrapped in :class:`KeptQueries`, which keeps
small query results by their SQL text. Metrics ask for per-channel figures over every channel and
narrow them to the selection (``Filters.every_channel``), so when only the channels change, those
queries are not run again.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import TypeVar

import ibis
import ibis.expr.operations as ops
import ibis.expr.types as ir
import polars as pl
import streamlit as st

from data_access.settings import Settings, SettingsError, load_settings
from data_access.store import Store, StoreMissing, pin_utc

T = TypeVar("T")


def _ttl_seconds() -> int:
    try:
        return load_settings().cache_ttl_seconds
    except SettingsError:
        return Settings.model_fields["cache_ttl_seconds"].default  # app.py reports the bad value


@st.cache_resource(show_spinner=False)
def settings() -> Settings:
    return load_settings()


# The connection opened last for each store path.
_latest: dict[str, Store] = {}


@st.cache_resource(show_spinner=False, max_entries=2)
def _open_store(path: str, version: int) -> Store:
    # ``version`` is only part of the key: a swapped-in file opens a new connection. DuckDB gives
    # every connection to one path in a process the database already open there, so while the
    # previous version's connection lives a new one would still read the replaced file: close it.
    del version
    if (previous := _latest.pop(path, None)) is not None:
        previous.close()
    pin_utc()
    _latest[path] = Store(path, threads=settings().engine_threads)
    return _latest[path]


def current_store() -> Store | None:
    """The configured store, or None when there is no file there yet."""
    path = settings().store_path
    try:
        return _open_store(str(path), path.stat().st_mtime_ns)
    except (FileNotFoundError, StoreMissing):
        return None


class _QueryResults:
    """Query results by (store path, version, SQL text), least recently used first out.

    Bounded by their estimated size: a result larger than ``largest`` bytes is not kept (a row per
    customer is the metric's own result to cache), and the oldest go once all pass ``budget``.
    """

    def __init__(self, *, budget: int, largest: int) -> None:
        self._budget, self._largest = budget, largest
        self._results: OrderedDict[tuple, tuple[pl.DataFrame, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: tuple) -> pl.DataFrame | None:
        with self._lock:
            if (kept := self._results.get(key)) is None:
                return None
            self._results.move_to_end(key)
            return kept[0]

    def put(self, key: tuple, frame: pl.DataFrame) -> None:
        size = frame.estimated_size()
        if size > self._largest:
            return
        with self._lock:
            if (previous := self._results.pop(key, None)) is not None:
                self._bytes -= previous[1]
            self._results[key] = (frame, size)
            self._bytes += size
            while self._bytes > self._budget:
                self._bytes -= self._results.popitem(last=False)[1][1]

    def clear(self) -> None:
        with self._lock:
            self._results.clear()
            self._bytes = 0


_query_results = _QueryResults(budget=256 * 2**20, largest=16 * 2**20)


class KeptQueries:
    """The engine :func:`compute` hands a metric: the store, whose small query results are kept
    and shared by every metric, session and rerun that runs the same SQL on the same store file.

    Every other attribute is the store's.
    """

    def __init__(self, store: Store) -> None:
        self._store = store

    def to_polars(self, expr: ir.Expr) -> pl.DataFrame:
        sql = query_text(expr)
        key = (str(self._store.path), self._store.version, sql)
        if (result := _query_results.get(key)) is None:
            result = self._store.to_polars(expr, sql=sql)
            _query_results.put(key, result)
        return result

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)


@st.cache_data(ttl=_ttl_seconds(), show_spinner=False, max_entries=512)
def _compute(name: str, path: str, version: int, args: tuple, options: tuple, _metric: Callable) -> object:
    del name  # part of the cache key only
    return _metric(KeptQueries(_open_store(path, version)), *args, **dict(options))


def compute(metric: Callable[..., T], *args: object, **options: object) -> T:
    """Run ``metric(store, *args, **options)``, cached per store version and arguments.

    Arguments must be hashable values (filters, strings, numbers, tuples).
    """
    store = current_store()
    if store is None:
        raise StoreMissing(f"no store at {settings().store_path}")
    name = f"{metric.__module__}.{metric.__qualname__}"
    return _compute(name, str(store.path), store.version, args, tuple(sorted(options.items())), _metric=metric)


@st.cache_resource(ttl=_ttl_seconds(), show_spinner=False, max_entries=16)
def _compute_shared(name: str, path: str, version: int, args: tuple, options: tuple, _metric: Callable) -> object:
    del name  # part of the cache key only
    return _metric(KeptQueries(_open_store(path, version)), *args, **dict(options))


def compute_shared(metric: Callable[..., T], *args: object, **options: object) -> T:
    """:func:`compute` for large results (a row per customer): every rerun and session gets the
    same object instead of a copy.

    The data cache copies a result on each hit (pickling it: 0.8 s for the 700k-row CLV scores of
    a 1M-customer store); this one does not, so callers must treat the result as read-only, which
    Polars' API is by default.
    """
    store = current_store()
    if store is None:
        raise StoreMissing(f"no store at {settings().store_path}")
    name = f"{metric.__module__}.{metric.__qualname__}"
    return _compute_shared(name, str(store.path), store.version, args, tuple(sorted(options.items())),
                           _metric=metric)


def query_text(expr: ir.Expr) -> str:
    """The DuckDB SQL of an expression, compiled once per distinct expression.

    A rerun builds the same queries again; their operation trees hash and compare by structure,
    so the text comes back without recompiling: compiling the queries shown under a page's
    charts took a quarter of a warm rerun.
    """
    return _compiled(expr.op())


@functools.lru_cache(maxsize=256)
def _compiled(node: ops.Node) -> str:
    # Keyed by the operation: an expression's == builds a comparison instead of answering.
    return ibis.to_sql(node.to_expr(), dialect="duckdb")


def clear() -> None:
    st.cache_data.clear()
    _query_results.clear()
    st.cache_resource.clear()
