# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.auditor-installed
TEST_STAMP := $(VENV)/.auditor-installed-test
# pytest-xdist, one worker per core; --dist loadfile keeps each test module on one worker, so a module's
# costly shared fixture (the report tests' quickstart run) is built once, not once per worker.
# Override for one run: make test PYTEST_ARGS="-n0 -x tests/test_cli.py".
PYTEST_ARGS ?= -n auto --dist loadfile

.PHONY: install install-test demo test test-fast lint format bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(STAMP)

install: $(STAMP)

install-test: $(TEST_STAMP)

demo: install
	@$(BIN)/auditor run examples/quickstart/audit.yaml; code=$$?; \
	echo ""; echo "demo finished (exit code $$code: the quickstart has problems planted on purpose)"; \
	echo "reports: examples/quickstart/reports/"; ls examples/quickstart/reports/

test: install-test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Your own loop: everything not marked slow.
test-fast: install-test
	$(BIN)/python -m pytest $(PYTEST_ARGS) -m "not slow"

# CI runs this before the tests: the tree is formatted and lint-clean with the pinned ruff.
lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install-test
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install-test
	$(BIN)/python benchmarks/labels.py

clean:
	rm -rf build dist *.egg-info examples/quickstart/reports examples/quickstart/.auditor-cache
