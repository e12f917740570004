# airflow-mlsecops: the two commands of the README are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.mlsecops-installed

.PHONY: venv demo test test-fast lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv

# uv resolves and installs the whole stack (Airflow, MLflow, GX, Evidently) in seconds.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/uv pip install --python $(BIN)/python --quiet -e '.[dev]'
	@touch $@

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/mlsecops demo

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The suites that need no Airflow task run, no server and no fresh interpreter: engines, evidence, policy, CLI.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not airflow and not postgres and not mlflow_server and not s3 and not slow" $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src dags tests benchmarks
	$(BIN)/ruff format --check src dags tests benchmarks
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf .mlsecops build dist *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
