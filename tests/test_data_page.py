"""The Data page and the loaders as a user meets them: load a file with a bad row, see it quarantined."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest
from streamlit.testing.v1 import AppTest

from journeylens.cli import main
from tests.apptest import app


TRANSACTIONS = """customer,date,amount
c1,2026-01-05,20.00
c1,2026-01-05,20.00
c2,2026-01-06,35.50
c2,2026-02-10,-5.50
c3,not a date,12.00
c3,2026-02-11,abc
"""


@pytest.fixture(scope="module")
def loaded_store(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("data_page")
    (folder / "orders.csv").write_text(TRANSACTIONS)
    store = folder / "orders.duckdb"
    argv = ["load-transactions", str(folder / "orders.csv"), "--customer-col", "customer",
            "--date-col", "date", "--amount-col", "amount", "--db", str(store)]
    assert main(argv) == 0
    return store


def test_cli_load_reconciles_and_reloading_adds_nothing(loaded_store, tmp_path, capsys):
    csv = loaded_store.parent / "orders.csv"
    argv = ["load-transactions", str(csv), "--customer-col", "customer", "--date-col", "date",
            "--amount-col", "amount", "--db", str(loaded_store)]
    assert main(argv) == 0
    err = capsys.readouterr().err
    # c1's two identical rows stay two events; c3's rows are bad (date, amount)
    assert "read 6 rows = loaded 0 + already present 4 + quarantined 2" in err
    assert "row 5, column date" in err


def test_cli_load_of_a_file_missing_a_column_is_one_line(tmp_path, capsys):
    (tmp_path / "bad.csv").write_text("customer,when,amount\nc1,2026-01-01,3\n")
    argv = ["load-transactions", str(tmp_path / "bad.csv"), "--customer-col", "customer",
            "--date-col", "date", "--amount-col", "amount", "--db", str(tmp_path / "x.duckdb")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "bad.csv" in err and "date" in err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "x.duckdb").exists()  # a failed load leaves no half-written store


def test_data_page_shows_loads_and_quarantine(loaded_store, monkeypatch):
    at = app(loaded_store, monkeypatch).run()
    at.switch_page("pages/data.py").run()
    assert not at.exception
    assert "honours the data contract" in at.success[0].value
    tables, loads, reasons = (frame.value for frame in at.dataframe[:3])
    assert dict(zip(tables["table"], tables["rows"], strict=True))["events"] == 4
    # Each load of the file (another test may have re-loaded it) quarantined c3's two rows.
    assert set(loads["rows_quarantined"]) == {2}
    assert loads["reconciles"].all()
    assert reasons["rows"].sum() == 2 * len(loads)
    # The load checked the contract; the page shows that outcome without scanning the store.
    assert any(caption.value.startswith("Checked after the last load or build") for caption in at.caption)
    at.button(key="check_contract_now").click().run()
    assert "honours the data contract" in at.success[0].value
    assert any(caption.value == "Checked just now on the live store." for caption in at.caption)


def _app_on_altered_copy(loaded_store: Path, tmp_path: Path, monkeypatch, sql: str) -> tuple[AppTest, Path]:
    """The app on a copy of the loaded store after running ``sql`` on it."""
    copy = tmp_path / "altered.duckdb"
    shutil.copyfile(loaded_store, copy)
    with duckdb.connect(str(copy)) as con:
        con.execute(sql)
    return app(copy, monkeypatch).run(), copy


def test_data_page_shows_the_problems_the_last_check_recorded(loaded_store, tmp_path, monkeypatch):
    at, _ = _app_on_altered_copy(
        loaded_store, tmp_path, monkeypatch,
        "UPDATE contract_checks SET problem = 'events: 3 rows have an unknown channel'")
    at.switch_page("pages/data.py").run()
    assert not at.exception
    assert "events: 3 rows have an unknown channel" in at.error[0].value


def test_store_from_an_older_version_asks_for_a_build(loaded_store, tmp_path, monkeypatch):
    at, old = _app_on_altered_copy(loaded_store, tmp_path, monkeypatch, "DROP TABLE customer_facts")
    assert not at.exception
    assert f"journeylens build --db {old}" in at.warning[0].value
