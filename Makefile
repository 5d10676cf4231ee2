# Lethe. `make run` starts the local stack with demo data; `make test` runs the suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# checkov pins packages that conflict with the SAM CLI's and boto3's, so it lives in its own venv.
CHECKOV_VENV := .venv-checkov
CHECKOV_VERSION := 3.3.30
# The SAM CLI too: its pins are its own.
SAM_VENV := .venv-sam
SAM_VERSION := 1.170.0
SAM := SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam
# uv installs the layers' dependencies for arm64 in seconds where pip takes about a minute (layers/deps.mk).
UV_VERSION := 0.9.5
PORT ?= 3000
LETHE_AWS_PORT ?= 4566
FN ?=
EVENT ?=

.PHONY: venv run test faults unit integration e2e bench check lint format types cfn-lint security checkov bandit pip-audit invoke clean sam-validate sam-build sam-deploy

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: venv
	PORT=$(PORT) LETHE_AWS_PORT=$(LETHE_AWS_PORT) $(BIN)/python -m lethe_local

# Python writes its bytecode caches (gitignored) even where the environment says not to: the suite starts
# dozens of processes (local stacks, the CLI, the fuzzer), and each would compile Lethe's modules anew.
unexport PYTHONDONTWRITEBYTECODE

# One worker per core; a file's tests stay on one worker, so its module fixtures are built once.
test: venv
	$(BIN)/python -m pytest tests --ignore=tests/benchmarks -n auto --dist loadfile

# The fault-injection tests at full scale: 200 requests of every type, a sweep of 10,000 items.
faults: venv
	LETHE_FAULT_REQUESTS=200 LETHE_FAULT_SWEEP_ITEMS=10000 $(BIN)/python -m pytest -s \
		tests/integration/test_fault_injection.py tests/integration/test_retention_faults.py

unit: venv
	$(BIN)/python -m pytest tests/unit

integration: venv
	$(BIN)/python -m pytest tests/integration

e2e: venv
	$(BIN)/python -m pytest tests/e2e

bench: venv
	$(BIN)/python -m pytest tests/benchmarks -m benchmark -s

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

types: venv
	$(BIN)/mypy

cfn-lint: venv
	$(BIN)/cfn-lint template.yaml

# Security gates: checkov on the template (skips carry a written reason in its Metadata),
# bandit on the code (no medium-or-worse finding), pip-audit on the pinned runtime dependencies.
security: checkov bandit pip-audit

checkov: $(CHECKOV_VENV)/bin/checkov
	$(CHECKOV_VENV)/bin/checkov -f template.yaml --framework cloudformation --compact --quiet --skip-download

$(CHECKOV_VENV)/bin/checkov:
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet checkov==$(CHECKOV_VERSION)

bandit: venv
	$(BIN)/bandit --quiet --recursive --severity-level medium layers/lethe/lethe functions local/lethe_local cli/lethe_cli

pip-audit: venv
	$(BIN)/pip-audit --requirement layers/lethe/requirements.txt --progress-spinner off

check: lint types cfn-lint security test

# Runs one function on the running local stack: make invoke FN=DeadlineFunction EVENT=events/deadline.json
# The stack is found through the .local/stack.json it writes; PORT=<port>, when given, names one instead.
invoke: venv
	@test -n "$(FN)" || { echo "usage: make invoke FN=<LogicalId> EVENT=<file.json>"; exit 2; }
	@test -f "$(EVENT)" || { echo "make invoke: event file '$(EVENT)' not found"; exit 2; }
	@$(if $(filter-out file,$(origin PORT)),PORT=$(PORT)) $(BIN)/python -m lethe_local.invoke "$(FN)" "$(EVENT)"

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) $(SAM_VENV) .local .pytest_cache .mypy_cache .ruff_cache .aws-sam

# AWS: samconfig.toml holds the region and the stack's defaults. The layers are built by
# layers/lethe/Makefile and layers/parquet/Makefile (with layers/deps.mk), each from its directory alone.
$(SAM_VENV)/bin/sam:
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet aws-sam-cli==$(SAM_VERSION)

$(SAM_VENV)/bin/uv: $(SAM_VENV)/bin/sam
	$(SAM_VENV)/bin/python -m pip install --quiet uv==$(UV_VERSION)

sam-validate: $(SAM_VENV)/bin/sam
	$(SAM) validate --lint

# The venv too: the layer's build validates the inventory with the lethe package.
sam-build: venv $(SAM_VENV)/bin/uv
	UV=$(CURDIR)/$(SAM_VENV)/bin/uv $(SAM) build

sam-deploy: sam-build
	$(SAM) deploy --guided
