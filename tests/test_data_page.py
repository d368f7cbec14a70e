"""The Data page and the loaders as a user meets them: load a file with a bad row, see it quarantined."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from journeylens.cli import main

APP = str(Path(__file__).resolve().parent.parent / "app.py")

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
    monkeypatch.setenv("JOURNEYLENS_STORE_PATH", str(loaded_store))
    at = AppTest.from_file(APP, default_timeout=60).run()
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


def test_data_page_shows_the_problems_the_last_check_recorded(loaded_store, tmp_path, monkeypatch):
    import shutil

    import duckdb

    broken = tmp_path / "broken.duckdb"
    shutil.copyfile(loaded_store, broken)
    with duckdb.connect(str(broken)) as con:
        con.execute("UPDATE contract_checks SET problem = 'events: 3 rows have an unknown channel'")
    monkeypatch.setenv("JOURNEYLENS_STORE_PATH", str(broken))
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("pages/data.py").run()
    assert not at.exception
    assert "events: 3 rows have an unknown channel" in at.error[0].value


def test_store_from_an_older_version_asks_for_a_build(loaded_store, tmp_path, monkeypatch):
    import shutil

    import duckdb

    old = tmp_path / "old.duckdb"
    shutil.copyfile(loaded_store, old)
    with duckdb.connect(str(old)) as con:
        con.execute("DROP TABLE customer_facts")
    monkeypatch.setenv("JOURNEYLENS_STORE_PATH", str(old))
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert f"journeylens build --db {old}" in at.warning[0].value
