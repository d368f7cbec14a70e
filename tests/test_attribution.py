"""Attribution models against credit computed by hand, brute force and full enumeration."""

from __future__ import annotations

import itertools
from datetime import date
from math import factorial

import numpy as np
import polars as pl
import pytest

from data_access.store import Store
from metrics import attribution as am
from metrics.filters import Filters
from tests.journey_factories import DEMO_CHANNEL_SELECTIONS, attribution_store

EVERYTHING = Filters()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return attribution_store(tmp_path_factory.mktemp("attribution") / "attribution.duckdb")


@pytest.fixture(scope="module")
def result(store):
    return am.attribution(store, EVERYTHING, bootstrap_replicates=0)


def _credit(result: pl.DataFrame, model: str, column: str = "conversions") -> dict[str, float]:
    rows = result.filter(pl.col("model") == model)
    return dict(zip(rows["channel"], rows[column], strict=True))


def _approx(expected: dict[str, float]):
    return pytest.approx(expected, abs=1e-9)


# Journeys (tests/journey_factories.attribution_store):
#   A: web (10 days before), email (3 days) → store 100;  B: app (1 day) → app 50;
#   C: web (14 days), web (7 days), store visit (0 days) → store 60;  D: email → drop-off.


def test_first_and_last_touch(result):
    assert _credit(result, "first") == _approx({"app": 1, "email": 0, "store": 0, "web": 2})  # B; A, C
    assert _credit(result, "first", "revenue") == _approx({"app": 50, "email": 0, "store": 0, "web": 160})
    assert _credit(result, "last") == _approx({"app": 1, "email": 1, "store": 1, "web": 0})  # B, A, C


def test_linear_counts_repeats(result):
    # A: web ½, email ½; B: app 1; C: web ⅓ + ⅓, store ⅓.
    assert _credit(result, "linear") == _approx({"app": 1, "email": 0.5, "store": 1 / 3, "web": 0.5 + 2 / 3})
    assert _credit(result, "linear", "revenue") == _approx({"app": 50, "email": 50, "store": 20, "web": 90})


def test_position_based(result):
    # Two touches 50/50 (A); one touch 100% (B); three: 40% first, 20% middle, 40% last (C).
    assert _credit(result, "position") == _approx({"app": 1, "email": 0.5, "store": 0.4, "web": 0.5 + 0.6})
    assert _credit(result, "position", "revenue") == _approx({"app": 50, "email": 50, "store": 24, "web": 86})


def test_time_decay(result):
    # A: 2^(−10/7) vs 2^(−3/7): seven days apart, so web gets a third. C: ¼, ½, 1 → web 3/7, store 4/7.
    a_web = 2 ** (-10 / 7) / (2 ** (-10 / 7) + 2 ** (-3 / 7))
    assert a_web == pytest.approx(1 / 3)
    expected = {"app": 1, "email": 1 - a_web, "store": 4 / 7, "web": a_web + 3 / 7}
    assert _credit(result, "time-decay") == _approx(expected)
    assert _credit(result, "time-decay", "revenue") == _approx(
        {"app": 50, "email": 100 * (1 - a_web), "store": 60 * 4 / 7, "web": 100 * a_web + 60 * 3 / 7})


def test_markov_on_the_store(result):
    # Collapsed: A web>email conv, B app conv, C web>store conv, D email null.
    # P(conv) = ½(½·½ + ½·1) + ¼·1 + ¼·½ = ¾. Without web ⅜ (effect ½); without email, app or
    # store ½ (effect ⅓ each). Three conversions split 0.5 : ⅓ : ⅓ : ⅓.
    assert _credit(result, "markov", "removal_effect") == _approx({"app": 1 / 3, "email": 1 / 3, "store": 1 / 3,
                                                                   "web": 0.5})
    assert _credit(result, "markov") == _approx({"app": 2 / 3, "email": 2 / 3, "store": 2 / 3, "web": 1})
    assert sum(_credit(result, "markov", "revenue").values()) == pytest.approx(210.0)


def test_shapley_on_the_store(result):
    # Sets {web, email}, {app}, {web, store}: each journey's conversion split equally.
    assert _credit(result, "shapley") == _approx({"app": 1, "email": 0.5, "store": 0.5, "web": 1})
    assert _credit(result, "shapley", "revenue") == _approx({"app": 50, "email": 50, "store": 30, "web": 80})


def test_every_model_splits_the_same_total(result):
    totals = result.group_by("model").agg(pl.col("conversions").sum(), pl.col("revenue").sum(),
                                          pl.col("share").sum())
    assert totals["conversions"].to_list() == pytest.approx([3.0] * 7)
    assert totals["revenue"].to_list() == pytest.approx([210.0] * 7)
    assert totals["share"].to_list() == pytest.approx([100.0] * 7)
    assert result["model"].unique(maintain_order=True).to_list() == list(am.MODELS)


def test_model_selection_and_side_by_side(store, result):
    only = am.attribution(store, EVERYTHING, models=("markov",), bootstrap_replicates=0)
    assert set(only["model"]) == {"markov"}
    wide = am.side_by_side(result, value="share")
    assert wide.columns == ["channel", *am.MODELS]
    both = am.side_by_side(result)
    assert both.columns[:3] == ["channel", "first", "first %"]
    assert both.filter(pl.col("channel") == "web")["first %"].item() == pytest.approx(200 / 3)
    with pytest.raises(ValueError):
        am.attribution(store, EVERYTHING, models=("u-shaped",))


def test_bootstrap_intervals(store):
    result = am.attribution(store, EVERYTHING, models=("markov", "shapley"), bootstrap_replicates=300, seed=3)
    assert (result["conversions_low"] <= result["conversions"] + 1e-9).all()
    assert (result["conversions"] <= result["conversions_high"] + 1e-9).all()
    assert (result["share_low"] <= result["share_high"]).all()
    again = am.attribution(store, EVERYTHING, models=("markov", "shapley"), bootstrap_replicates=300, seed=3)
    assert result.equals(again)  # seeded


@pytest.mark.parametrize(("channels", "expected_first"), [
    (("store",), {"web": 2.0}),  # A and C converted in store: their first touches, web both
    (("email",), {"web": 1.0}),  # A only (D touched email but did not convert)
    (("app", "web"), {"app": 1.0, "web": 2.0}),  # A, B and C
])
def test_channel_filter_selects_whole_journeys(store, channels, expected_first):
    # The credit rows' channel masks pick the journeys that touched or converted in a channel;
    # their credit stays with every channel they touched.
    result = am.attribution(store, Filters(channels=channels), models=("first",), bootstrap_replicates=0)
    credited = {channel: credit for channel, credit in _credit(result, "first").items() if credit}
    assert credited == expected_first


@pytest.mark.parametrize("filters", DEMO_CHANNEL_SELECTIONS)
def test_results_narrowed_from_every_channel_equal_the_selections_own_queries(demo_store, filters):
    # The credits, paths and totals are queried once over every channel, per journey channel mask,
    # and narrowed to the selection: the same as querying the selection's journeys.
    demo = Store(demo_store)
    result = am.attribution(demo, filters, bootstrap_replicates=0)
    own = demo.to_polars(am.heuristic_expr(filters))
    for model in am.HEURISTICS:
        key = model.replace("-", "_")
        assert _credit(result, model) == pytest.approx(dict(zip(own["channel"], own[f"{key}__conversions"],
                                                                strict=True)))
    cells = am.path_cells(demo.to_polars(am.paths_expr(filters)))
    assert cells.journeys.sum() > 50
    _, markov_conversions = am.markov(cells)
    assert _credit(result, "markov") == pytest.approx(dict(zip(cells.channels, markov_conversions, strict=True)))
    own_totals = demo.to_polars(am.totals_expr(filters)).drop("journey_channels").sum()
    assert am.totals(demo, filters).row(0) == pytest.approx(own_totals.row(0))


def test_totals(store):
    assert am.totals(store, EVERYTHING).row(0, named=True) == {
        "journeys": 4, "conversions": 3, "conversions_without_touch": 0, "revenue": 210.0}


# ---------------------------------------------------------------------------------------------
# Markov: the exact solution against a textbook example and brute force


def _cells(paths: dict[str, tuple[int, int]]) -> am.PathCells:
    """Cells from {path: (journeys, conversions)}."""
    return am.path_cells(pl.DataFrame({
        "path": list(paths),
        "journeys": [j for j, _ in paths.values()],
        "conversions": [c for _, c in paths.values()],
        "revenue": [10.0 * c for _, c in paths.values()],
    }))


def test_markov_textbook_example():
    # c1 > c2 > c3 > conversion, c1 > null, c2 > c3 > null. P(conv) = ⅔·½·1·½ + ⅓·1·½ = ⅓.
    # Removing c1 leaves ⅓·½ = ⅙ (effect ½); removing c2 or c3 leaves 0 (effect 1).
    # One conversion split ½ : 1 : 1 → 0.2, 0.4, 0.4.
    cells = _cells({"c1>c2>c3": (1, 1), "c1": (1, 0), "c2>c3": (1, 0)})
    effects, credit = am.markov(cells)
    assert cells.channels == ("c1", "c2", "c3")
    assert effects == pytest.approx([0.5, 1.0, 1.0])
    assert credit == pytest.approx([0.2, 0.4, 0.4])


def _random_paths(rng: np.random.Generator, channels: str, n: int) -> dict[str, tuple[int, int]]:
    paths: dict[str, list[int]] = {}
    for _ in range(n):
        length = rng.integers(1, 6)
        path = [rng.choice(list(channels))]
        while len(path) < length:
            nxt = rng.choice(list(channels))
            if nxt != path[-1]:
                path.append(nxt)
        key = ">".join(path)
        journeys, conversions = paths.get(key, [0, 0])
        paths[key] = [journeys + 1, conversions + int(rng.random() < 0.2 + 0.1 * len(path))]
    return {k: (v[0], v[1]) for k, v in paths.items()}


def _transition_matrix(cells: am.PathCells) -> np.ndarray:
    counts = am._transition_counts(cells, cells.conversions[None], (cells.journeys - cells.conversions)[None])[0]
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


def _absorbed_by_iteration(p: np.ndarray, removed: int | None, conversion: int, null: int) -> float:
    """Probability mass reaching conversion after many steps of the chain (no linear solve)."""
    p = p.copy()
    p[conversion, :] = 0.0
    p[conversion, conversion] = 1.0
    p[null, :] = 0.0
    p[null, null] = 1.0
    if removed is not None:
        p[:, null] += p[:, removed]
        p[:, removed] = 0.0
    state = np.zeros(len(p))
    state[0] = 1.0
    for _ in range(5_000):
        state = state @ p
    return float(state[conversion])


def test_markov_exact_equals_iterative_absorption():
    cells = _cells(_random_paths(np.random.default_rng(11), "abcde", 400))
    p = _transition_matrix(cells)
    conversion, null = cells.conversion_state, cells.null_state
    full = _absorbed_by_iteration(p, None, conversion, null)
    counts = am._transition_counts(cells, cells.conversions[None], (cells.journeys - cells.conversions)[None])
    exact = am.markov_conversion_probabilities(counts)[0]
    assert exact[0] == pytest.approx(full, abs=1e-12)
    for i in range(len(cells.channels)):
        assert exact[1 + i] == pytest.approx(_absorbed_by_iteration(p, 1 + i, conversion, null), abs=1e-12)
    effects, credit = am.markov(cells)
    assert credit.sum() == pytest.approx(cells.conversions.sum())
    assert effects == pytest.approx([1 - exact[1 + i] / exact[0] for i in range(len(cells.channels))])


def test_markov_exact_agrees_with_simulation():
    cells = _cells(_random_paths(np.random.default_rng(5), "abc", 200))
    p = _transition_matrix(cells)
    rng = np.random.default_rng(1)
    walks, converted = 100_000, 0
    cumulative = np.cumsum(p, axis=1)
    for _ in range(walks):
        state = 0
        while state not in (cells.conversion_state, cells.null_state):
            state = int(np.searchsorted(cumulative[state], rng.random(), side="right"))
        converted += state == cells.conversion_state
    counts = am._transition_counts(cells, cells.conversions[None], (cells.journeys - cells.conversions)[None])
    exact = am.markov_conversion_probabilities(counts)[0, 0]
    standard_error = np.sqrt(exact * (1 - exact) / walks)
    assert converted / walks == pytest.approx(exact, abs=4 * standard_error)


def test_markov_absent_channel_has_no_effect():
    # State 3 ("c") is never entered or left: removing it changes nothing.
    cells = _cells({"a>b": (4, 2), "b": (3, 1)})
    counts = am._transition_counts(cells, cells.conversions[None], (cells.journeys - cells.conversions)[None])[0]
    s = counts.shape[0]
    padded = np.zeros((1, s + 1, s + 1))
    order = [0, 1, 2, 4, 5]  # start, a, b, (c inserted at 3), conversion, null
    padded[0][np.ix_(order, order)] = counts
    probabilities = am.markov_conversion_probabilities(padded)[0]
    assert probabilities[3] == pytest.approx(probabilities[0])
    effects, _ = am._markov_credit(probabilities[None], np.array([3.0]))
    assert effects[0, 2] == 0.0
    assert effects[0, :2].sum() > 0


def test_no_conversions_no_credit():
    effects, credit = am.markov(_cells({"a>b": (4, 0), "b": (3, 0)}))
    assert effects.tolist() == [0.0, 0.0] and credit.tolist() == [0.0, 0.0]


# ---------------------------------------------------------------------------------------------
# Shapley: against enumeration of every ordering of the channels


def _enumerated_shapley(sets: dict[frozenset[str], float], channels: tuple[str, ...]) -> dict[str, float]:
    def worth(coalition: set[str]) -> float:
        return sum(value for members, value in sets.items() if members <= coalition)

    credit = dict.fromkeys(channels, 0.0)
    for order in itertools.permutations(channels):
        coalition: set[str] = set()
        for channel in order:
            before = worth(coalition)
            coalition.add(channel)
            credit[channel] += worth(coalition) - before
    return {c: v / factorial(len(channels)) for c, v in credit.items()}


def test_shapley_equals_full_enumeration():
    paths = {"a": (5, 3), "a>b": (4, 2), "b>c>a": (6, 4), "d>c": (3, 1), "c": (2, 2), "d": (7, 0),
             "b>d>b": (2, 1)}
    cells = _cells(paths)
    conversions, revenue = am.shapley(cells)
    sets: dict[frozenset[str], float] = {}
    for path, (_, converted) in paths.items():
        key = frozenset(path.split(">"))
        sets[key] = sets.get(key, 0.0) + converted
    expected = _enumerated_shapley(sets, cells.channels)
    assert conversions == pytest.approx([expected[c] for c in cells.channels])
    assert conversions.sum() == pytest.approx(13.0)
    assert revenue == pytest.approx(conversions * 10)  # revenue is 10 per conversion here
    # The closed form of this game: each journey's conversion split equally among its channels.
    equal_split = {c: sum(v / len(k) for k, v in sets.items() if c in k) for c in cells.channels}
    assert conversions == pytest.approx([equal_split[c] for c in cells.channels])


def test_bootstrap_resamples_journeys():
    cells = _cells({"a": (50, 30), "a>b": (40, 20), "b": (30, 5)})
    draws = am.bootstrap(cells, replicates=400, seed=0)
    markov = draws["markov"]["conversions"]
    # Every replicate resamples 120 journeys, so its credit sums to its own conversions, which
    # scatter around the observed 55.
    totals = markov.sum(axis=1)
    assert 45 < totals.mean() < 65 and totals.std() > 1
    assert draws["shapley"]["share"].sum(axis=1) == pytest.approx(np.full(400, 100.0))


def test_bootstrap_is_reproducible_from_its_seed():
    # Blocks of resamples run on two threads, each from its own generator spawned from the seed:
    # the same seed gives the same draws whichever thread finishes first; another seed others.
    cells = _cells({"a": (50, 30), "a>b": (40, 20), "b": (30, 5), "b>a>c": (9, 3), "c": (4, 1)})
    first, again = am.bootstrap(cells, replicates=50, seed=3), am.bootstrap(cells, replicates=50, seed=3)
    for model in ("markov", "shapley"):
        np.testing.assert_array_equal(first[model]["conversions"], again[model]["conversions"])
        assert first[model]["conversions"].shape == (50, 3)
    other = am.bootstrap(cells, replicates=50, seed=4)
    assert not np.array_equal(first["markov"]["conversions"], other["markov"]["conversions"])


def test_nothing_to_attribute(store):
    empty = am.attribution(store, Filters(start=date(2025, 1, 1), end=date(2025, 1, 31)), bootstrap_replicates=50)
    assert empty.is_empty()
    assert am.side_by_side(empty).columns == ["channel"]


def test_pooled_resampling_is_a_multinomial():
    # Cells under RARE_CELL journeys are drawn from a pool; the counts must still have the
    # multinomial's means n·p and variances n·p·(1 − p), and always sum to n.
    counts = np.array([500, 120, 40, 3, 1, 1, 2, 7, 0, 30])
    draws = am.resample_counts(counts, replicates=20_000, rng=np.random.default_rng(2))
    n, p = counts.sum(), counts / counts.sum()
    assert (draws.sum(axis=1) == n).all()
    standard_error = np.sqrt(n * p * (1 - p) / len(draws))
    assert (np.abs(draws.mean(axis=0) - n * p) <= 4 * standard_error + 1e-12).all()
    assert draws.var(axis=0) == pytest.approx(n * p * (1 - p), rel=0.05, abs=0.05)
    assert draws[:, 8].max() == 0


def test_resampling_nothing_gives_zero_rows_of_the_right_width():
    # No journeys at all: every replicate is all zeros; no replicates: an empty block, still
    # as wide as the counts, so the callers' column arithmetic holds.
    rng = np.random.default_rng(0)
    result = am.resample_counts(np.zeros(4, dtype=np.int64), replicates=3, rng=rng)
    np.testing.assert_array_equal(result, np.zeros((3, 4)))
    assert am.resample_counts(np.array([1, 50, 3, 0]), replicates=0, rng=rng).shape == (0, 4)
