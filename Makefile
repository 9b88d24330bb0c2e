# `make demo` and `make test` work on a fresh machine: each creates .venv and installs
# what it needs the first time (and again whenever pyproject.toml changes).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint emulator clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11+ is needed; run: make PYTHON=python3.12 ...")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

# The live flow on a fresh SQLite file, then bulk import and export through the client.
demo: $(STAMP)
	rm -f example_project/demo.sqlite3
	cd example_project && DATABASE_URL=sqlite:///demo.sqlite3 $(abspath $(BIN))/python manage.py demo
	$(BIN)/python example_project/client_demo.py

# Two passes: the unit tests on SQLite, then everything (integration tests included: real
# Celery workers over Redis) on PostgreSQL. The second needs PostgreSQL and Redis on 127.0.0.1
# (.ci/run starts them when they are down). JUNIT_DIR=dir writes one JUnit file per pass.
# The database name ends in the process id of the shell, so that pytest-django's test database
# (test_test_<pid>) is this run's alone: two runs on one machine never drop each other's.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test_$$$$
test: $(STAMP) lint
	$(BIN)/python -m pytest -m "not integration" $(if $(JUNIT_DIR),--junitxml=$(JUNIT_DIR)/junit-sqlite.xml) $(PYTEST_ARGS)
	DATABASE_URL=$(TEST_DATABASE_URL) $(BIN)/python -m pytest $(if $(JUNIT_DIR),--junitxml=$(JUNIT_DIR)/junit-postgres.xml) $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

emulator: $(STAMP)
	$(BIN)/python -m django_voucherify_orders.emulator

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
