# Developer entry points. Everything runs from a local virtualenv (.venv).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install packages test test-tools unit harness node opensearch sandbox bench bench-quick e2e lint clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(BIN)/python  ## install the operator and the test tools into .venv
	$(BIN)/pip install -q -e '.[test]' -e ./emulator

harness: install  ## build (or reuse) the kube-apiserver, kstatus and the other Go tools of devtools/go
	$(BIN)/python -m devtools.harness.build

packages:  ## the Debian packages the suite needs (installed when root; else listed): .ci/packages
	bash .ci/packages

opensearch: install  ## build (or reuse) the real OpenSearch node (Java 17 + Maven; devtools/harness/opensearch_build.py)
	$(BIN)/python -m devtools.harness.build opensearch

# Everything the suite needs, as CI builds it: the packages, the Go tools, the single-node cluster's
# binary and images (root only: they need containerd/buildah), the OpenSearch node.
test-tools: packages install
	$(BIN)/python -m devtools.harness.build
	if [ "$$(id -u)" = 0 ]; then $(BIN)/python -m devtools.harness.build node images; fi
	$(BIN)/python -m devtools.harness.build opensearch

test: test-tools  ## the whole suite, as CI runs it: set-up above, then unit, emulator, integration, real OpenSearch node, e2e
	$(BIN)/python -m pytest -rA  # -rA: every test is named in the log with its outcome

CORE := */rollup_operator/job/*
unit: install  ## the fast tests only (no API server); the job package's line coverage from tests/unit alone (>= 90%)
	$(BIN)/python -m coverage run -m pytest tests/unit
	$(BIN)/python -m coverage report --include='$(CORE)' --fail-under=90
	$(BIN)/python -m pytest tests/emulator

lint: install  ## ruff over the operator, the emulator, the unit tests and devtools/; mypy strict on all runtime code
	$(BIN)/ruff check operator/rollup_operator emulator tests/unit tests/component tests/support tests/devtools devtools tests/faults/test_status_race.py
	$(BIN)/mypy

MODE ?= process
sandbox: harness  ## API server + emulator + operator (MODE=process, default; MODE=pod: as a Pod in a single-node cluster, root)
	$(BIN)/python -m devtools.sandbox --mode $(MODE)

node: install  ## build (or reuse) the single-node cluster's binaries and images (devtools/harness/node.py)
	$(BIN)/python -m devtools.harness.build node images

bench: harness  ## the scale benchmark (J=1000 jobs over N=10 endpoints by default)
	$(BIN)/python -m devtools.bench

bench-quick: harness  ## a small, fast run of the benchmark (what CI runs)
	$(BIN)/python -m devtools.bench --quick

e2e:  ## kind end-to-end suite (needs Docker and kind)
	bash tests/e2e/run.sh

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
