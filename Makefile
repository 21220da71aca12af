# Two commands do all the set-up: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run resource-server test lint format bench bench-quick clean

# Development: DEBUG on, SQLite (whatever DATABASE_URL the shell has).
DEV := DEBUG=1 DATABASE_URL=

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

## Serve the API on http://localhost:8000 (SQLite, DEBUG on, demo data), and beside it the
## worker that pushes session events to resource servers; Ctrl-C stops both.
run: $(STAMP)
	$(DEV) $(BIN)/python manage.py migrate --noinput
	$(DEV) $(BIN)/python manage.py seed_demo
	@echo "Session events: a Celery worker (with its beat) runs beside the API; \`make resource-server\` in another terminal runs a service that receives them."
	@trap 'kill $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT INT TERM; \
	$(DEV) $(BIN)/celery -A project --quiet worker --beat --pool threads --concurrency 4 \
		--loglevel warning --without-mingle --without-gossip & worker=$$!; \
	$(DEV) $(BIN)/python manage.py runserver --nostatic 127.0.0.1:8000

## With `make run` going, in another terminal: the reference resource server on
## http://127.0.0.1:8001, registered with the API as `reference` (a new secret each start).
resource-server: $(STAMP)
	$(DEV) $(BIN)/python manage.py migrate --noinput
	@umask 077; $(DEV) $(BIN)/python manage.py add_resource_server reference --replace \
		--push-url http://127.0.0.1:8001/events > .resource-server.json
	RS_CREDENTIALS_FILE=.resource-server.json $(BIN)/python examples/resource_server/server.py

## Run the whole suite (SQLite by default, PostgreSQL when DATABASE_URL is set).
test: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## Benchmark against stock SimpleJWT and a floor on PostgreSQL (~18 min); writes BENCHMARKS.md.
bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

## The same measures at small volumes (~1 min), for CI; writes bench/results/.
bench-quick: $(STAMP)
	$(BIN)/python -m bench --quick $(BENCH_ARGS)

clean:
	rm -rf $(VENV) db.sqlite3 test-db.sqlite3 .pytest_cache .celery .resource-server.json
