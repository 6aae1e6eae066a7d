# The two commands a newcomer needs: `make demo` runs the whole pipeline, `make test` the suite.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export RUNTIME__DLTHUB_TELEMETRY ?= false
export DBT_SEND_ANONYMOUS_USAGE_STATS ?= false

.PHONY: install install-all demo test lint bench up down clean vendor-js

$(BIN)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required (set PYTHON=...)"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[local,dev]'
	@touch $@

install: $(BIN)/.installed

# The optional extras (orchestrator, web console, browser tests) on top: the suite needs them,
# `make demo` does not, so a demo stays fast.
$(BIN)/.installed-all: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet -e '.[local,dev,orchestrate,console]'
	@touch $@

install-all: $(BIN)/.installed-all

# Local stack (Postgres + SQS emulator, started only where nothing answers), a demo recovery
# key (public passphrase, printed), 500 synthetic messages, then load + dbt build + summary.
demo: install
	$(BIN)/logins up
	$(BIN)/logins pii keygen --demo
	$(BIN)/logins seed --count 500
	$(BIN)/logins run
	@echo
	@echo "The web console (needs the console extra: make install-all):"
	@echo "  $(BIN)/logins docs      # once: the dbt docs site it serves under /docs"
	@echo "  $(BIN)/logins console   # then open http://127.0.0.1:8080"
	@echo "  sign in as the demo's own Postgres user (PGUSER / PGPASSWORD: postgres / postgres by"
	@echo "  default, an admin: every page), or give a role a password first, e.g."
	@echo "  psql -c \"alter role logins_analyst login password '...'\" (analyst, operator, pii_admin)"

# Tests wait on SQS and dbt more than they compute: 2 workers halve the suite's time on
# 2 cores (18 -> 10 minutes here). TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2
test: install-all
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal

lint: install
	$(BIN)/ruff check .
	$(BIN)/sqlfluff lint dbt_project

# The performance benchmark (docs/performance.md): native LocalStack (needs Python 3.13) and a
# fresh Postgres database; BENCH_ARGS="--million" adds the 1M-message run.
bench: install
	$(BIN)/python -m bench $(BENCH_ARGS)

up: install
	$(BIN)/logins up

down: install
	$(BIN)/logins down

# The console's browser libraries (loader/console/js/package.json, pinned exactly): npm ci,
# then their dist files and licenses copied into loader/console/static/vendor/ (committed).
vendor-js:
	loader/console/js/vendor.sh

clean:
	rm -rf target logs dbt_packages .pytest_cache .ruff_cache
