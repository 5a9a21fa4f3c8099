# Every target creates .venv on first use and installs the project into it.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test lint format bench bench-short faults faults-short clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/dispatcher up

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Every figure against its floor (bench/results/*.json); DATABASE_URL set: on PostgreSQL.
bench: $(STAMP)
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done
	$(BIN)/python -m bench.chart

# The short form CI runs: fails only when a benchmark breaks, never on a figure.
bench-short: $(STAMP)
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b --quick || exit 1; done

faults: $(STAMP)
	$(BIN)/python -m bench.faults --jobs $${N:-1000}

faults-short: $(STAMP)
	$(BIN)/python -m bench.faults --jobs $${N:-60} --short

clean:
	rm -rf $(VENV) instance .pytest_cache
