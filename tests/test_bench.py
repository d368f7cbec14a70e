"""The benchmark harness on a tiny store: its JSON has every section and the peers agree with ours.

No timing is asserted here: speed is measured by `journeylens bench` and written down in
docs/BENCHMARKS.md. One report and one page keep this to a handful of worker processes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from journeylens import bench
from journeylens.cli import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bench_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bench")


@pytest.fixture(scope="module")
def result(bench_dir) -> dict:
    output = bench_dir / "bench.json"
    code = main(["bench", "--customers", "300", "--repeat", "1", "--dir", str(bench_dir), "--json", str(output),
                 "--report", "kpis", "--page", "pages/overview.py", "--peers-together"])
    data = json.loads(output.read_text())
    assert code == 0, data
    return data


def test_json_has_every_section(result):
    store = result["store"]
    assert store["customers"] == 300 and store["events"] > 0
    assert {"generate_s", "build_s", "total_s", "build_tables"} <= set(store)
    assert result["floor"]["events"] == store["events"]
    assert {"cold_s", "warm_s"} <= set(result["floor"])
    [report] = result["reports"]
    assert report["name"] == "kpis"
    assert {"import_s", "cold_s", "warm_s", "cold_metric_s", "warm_metric_s", "x_floor", "peak_rss_mb"} <= set(report)
    [page] = result["pages"]
    assert page["title"] == "Overview" and page["problems"] == []
    assert {"import_s", "cold_s", "warm_s", "filter_s", "peak_rss_mb"} <= set(page)
    assert [visit["page"] for visit in result["app"]["visits"]] == ["pages/overview.py"]
    assert [target["target"] for target in result["targets"]] == [key for key, *_ in bench.TARGETS]
    assert result["ok"] is True


def test_peers_give_the_same_numbers_as_ours(result):
    peers = result["peers"]["results"]
    assert set(peers) == set(bench.PEER_PACKAGES)
    missing = set(bench.missing_extras())
    for name, peer in peers.items():
        if set(bench.PEER_PACKAGES[name]) & missing:
            assert peer["status"] == "skipped"
            continue
        assert peer["status"] == "ok", peer
        assert peer["ok"], peer["checks"]
        assert peer["ratio"] > 0 and peer["load_s"] >= 0


def test_a_second_run_reuses_the_store(result, bench_dir):
    path, meta = bench.bench_store(customers=300, seed=0, directory=bench_dir)
    assert meta["cached"] is True
    assert path.name == "journeylens-300c-seed0.duckdb"
    assert meta["events"] == result["store"]["events"]


def test_without_the_bench_extra_peers_are_skipped_with_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(bench, "missing_extras", lambda: ["lifetimes", "pandas"])
    peers = bench._peers(tmp_path / "unused.duckdb", {}, repeat=1, peer_repeat=1, say=bench._say)
    assert {peer["status"] for peer in peers["results"].values()} == {"skipped"}
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "pip install -e '.[bench]'" in line


def test_unknown_report_or_page_is_one_line(capsys):
    assert main(["bench", "--customers", "300", "--report", "nonsense"]) == 2
    assert capsys.readouterr().err.strip().startswith("bench: unknown report or page nonsense")


def test_every_page_file_is_measured():
    assert sorted(bench.app_pages()) == sorted(f"pages/{p.name}" for p in (ROOT / "pages").glob("*.py"))


def test_runs_go_in_rounds_that_measure_every_name_once():
    # Round by round, so a slow minute of the host touches one run of several pages rather than
    # every run of one; each name still gets its runs in round order.
    calls = []
    result = bench._in_rounds(["a", "b"], 3, lambda name, k: calls.append((name, k)) or {"s": k},
                              say=lambda _: None, kind="page")
    assert calls == [("a", 0), ("b", 0), ("a", 1), ("b", 1), ("a", 2), ("b", 2)]
    assert result == [("a", [{"s": 0}, {"s": 1}, {"s": 2}]), ("b", [{"s": 0}, {"s": 1}, {"s": 2}])]
