# Developer entry points. Everything runs from a local virtualenv (.venv).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install test unit harness node sandbox bench bench-quick e2e lint clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(BIN)/python  ## install the operator and the test tools into .venv
	$(BIN)/pip install -q -e '.[test]'

harness: install  ## build (or reuse) the kube-apiserver and kstatus helpers from Go modules
	$(BIN)/python -m tests.harness.build

test: harness  ## the whole suite: unit, emulator, integration on a real kube-apiserver
	$(BIN)/python -m pytest

unit: install  ## the fast tests only (no API server)
	$(BIN)/python -m pytest tests/unit tests/emulator

MODE ?= process
sandbox: harness  ## API server + emulator + operator (MODE=process, default; MODE=pod: as a Pod in a single-node cluster, root)
	$(BIN)/python -m tests.sandbox --mode $(MODE)

node: install  ## build (or reuse) the single-node cluster's binaries and images (tests/harness/node.py)
	$(BIN)/python -m tests.harness.build node images

bench: harness  ## the scale benchmark (J=1000 jobs over N=10 endpoints by default)
	$(BIN)/python -m tests.bench

bench-quick: harness  ## a small, fast run of the benchmark (what CI runs)
	$(BIN)/python -m tests.bench --quick

e2e:  ## kind end-to-end suite (needs Docker and kind)
	bash tests/e2e/run.sh

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
