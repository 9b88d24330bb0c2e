# `make demo` and `make test` work on a fresh machine: each creates .venv and installs
# what it needs the first time (and again whenever pyproject.toml changes).
# PYTHON picks the interpreter and DJANGO, optionally, the Django release; each pair wants a
# venv of its own. CI runs both supported pairs (see .ci/run), e.g. the second one as:
#   make test PYTHON=~/.pyenv/versions/3.13.0/bin/python3 DJANGO='django>=6,<7' VENV=.venv-django6
PYTHON ?= python3
DJANGO ?=
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-random install lint emulator clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11+ is needed; run: make PYTHON=python3.12 ...")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,oscar]' $(if $(DJANGO),'$(DJANGO)')
	@touch $@

# The live flow on a fresh SQLite file, then bulk import and export through the client.
demo: $(STAMP)
	rm -f example_project/demo.sqlite3
	cd example_project && DATABASE_URL=sqlite:///demo.sqlite3 $(abspath $(BIN))/python manage.py demo
	$(BIN)/python example_project/client_demo.py

# Lint and type checks, then two passes: the unit tests on SQLite, then everything
# (integration tests included: real Celery workers over Redis) on PostgreSQL, each followed
# by the django-oscar tests (tests/oscar) on the same database. The PostgreSQL passes need
# PostgreSQL and Redis on 127.0.0.1 (.ci/run starts them when they are down).
# JUNIT_DIR=dir writes one JUnit file per pass there. COVERAGE=1 measures both passes and
# ends with coverage's report (and coverage.xml in JUNIT_DIR); CI does so on one leg.
# The database name ends in the process id of the shell, so that pytest-django's test database
# (test_test_<pid>) is this run's alone: two runs on one machine never drop each other's.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test_$$$$
COVERAGE ?=
COVERAGE_DATA := --data-file=$(VENV)/.coverage
PYTEST := $(BIN)/python -m $(if $(COVERAGE),coverage run $(COVERAGE_DATA) -m) pytest
# contrib.oscar against the real django-oscar, in a project with Oscar's apps: a pass of
# its own on each database (the other passes leave tests/oscar out; see tests/conftest.py).
OSCAR_TESTS := tests/oscar --ds=tests.oscar.settings
test: $(STAMP) lint
	$(if $(COVERAGE),$(BIN)/python -m coverage erase $(COVERAGE_DATA))
	$(PYTEST) -m "not integration" $(if $(JUNIT_DIR),--junitxml=$(JUNIT_DIR)/junit-sqlite.xml) $(PYTEST_ARGS)
	$(PYTEST) $(OSCAR_TESTS) $(if $(JUNIT_DIR),--junitxml=$(JUNIT_DIR)/junit-oscar-sqlite.xml) $(PYTEST_ARGS)
	DATABASE_URL=$(TEST_DATABASE_URL) $(PYTEST) $(if $(JUNIT_DIR),--junitxml=$(JUNIT_DIR)/junit-postgres.xml) $(PYTEST_ARGS)
	DATABASE_URL=$(TEST_DATABASE_URL) $(PYTEST) $(OSCAR_TESTS) $(if $(JUNIT_DIR),--junitxml=$(JUNIT_DIR)/junit-oscar-postgres.xml) $(PYTEST_ARGS)
	$(if $(COVERAGE),$(BIN)/python -m coverage combine --quiet $(COVERAGE_DATA))
	$(if $(COVERAGE),$(BIN)/python -m coverage report $(COVERAGE_DATA))
	$(if $(and $(COVERAGE),$(JUNIT_DIR)),$(BIN)/python -m coverage xml --quiet $(COVERAGE_DATA) -o $(JUNIT_DIR)/coverage.xml)
	@$(BIN)/python -c 'import sys, django; print(f"Tested on Python {sys.version.split()[0]} with Django {django.get_version()}")'

# The unit tests once in a random order (pytest-randomly; the seed is printed, and
# PYTEST_ARGS=--randomly-seed=N replays it), to find order-dependent tests.
test-random: $(STAMP)
	$(BIN)/python -m pytest -m "not integration" -p randomly $(PYTEST_ARGS)

# Creates the venv and installs the package with its test tools (make test does it too).
install: $(STAMP)

# ruff, and mypy with django-stubs. (A model change without its migration fails a test:
# tests/test_migrations_and_checks.py.)
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --cache-dir $(VENV)/.mypy_cache django_voucherify_orders

emulator: $(STAMP)
	$(BIN)/python -m django_voucherify_orders.emulator

clean:
	rm -rf $(VENV) .venv-*/ .pytest_cache .ruff_cache .mypy_cache *.egg-info
