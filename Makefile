# Two commands do all the set-up: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STORE ?= data/journeylens.duckdb
PORT ?= 8501

.PHONY: run test demo bench clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/activate
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@ $(VENV)/.installed

$(STORE): | $(VENV)/.installed
	$(BIN)/journeylens demo --db $(STORE)

run: $(VENV)/.installed $(STORE)
	$(BIN)/journeylens serve --db $(STORE) --port $(PORT)

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest

demo: $(VENV)/.installed
	$(BIN)/journeylens demo --db $(STORE)

# docs/BENCHMARKS.md: `make bench BENCH_CUSTOMERS=1000000` gives its 1M table.
BENCH_CUSTOMERS ?= 100000

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/activate
	$(BIN)/pip install --quiet -e ".[bench]"
	touch $@ $(VENV)/.installed

bench: $(VENV)/.installed-bench
	$(BIN)/journeylens bench --customers $(BENCH_CUSTOMERS) --json data/bench/bench-$(BENCH_CUSTOMERS).json

clean:
	rm -rf $(VENV) data/*.duckdb
