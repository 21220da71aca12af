# Two commands do all the set-up: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint format bench bench-quick clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

## Serve the API on http://localhost:8000 (SQLite, DEBUG on, demo data).
run: $(STAMP)
	DEBUG=1 DATABASE_URL= $(BIN)/python manage.py migrate --noinput
	DEBUG=1 DATABASE_URL= $(BIN)/python manage.py seed_demo
	DEBUG=1 DATABASE_URL= $(BIN)/python manage.py runserver --nostatic 127.0.0.1:8000

## Run the whole suite (SQLite by default, PostgreSQL when DATABASE_URL is set).
test: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## Benchmark against stock SimpleJWT and a floor on PostgreSQL (~10 min); writes BENCHMARKS.md.
bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

## The same measures at small volumes (~1 min), for CI; writes bench/results/.
bench-quick: $(STAMP)
	$(BIN)/python -m bench --quick $(BENCH_ARGS)

clean:
	rm -rf $(VENV) db.sqlite3 test-db.sqlite3 .pytest_cache
