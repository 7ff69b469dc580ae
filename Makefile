# Two commands for a newcomer: `make run` and `make test`. Both create .venv
# (Python 3.10) if needed and install the locked dependencies into it.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)
# A working python3.10: from PATH, else from pyenv's versions folder.
PYTHON ?= $(shell for p in python3.10 $$HOME/.pyenv/versions/3.10*/bin/python3.10 /usr/bin/python3.10; do \
            $$p -c 'import sys; assert sys.version_info[:2] == (3, 10)' >/dev/null 2>&1 && { echo $$p; break; }; done)
ARGS ?=
# The optional Airflow extra lives in its own venv, so `make run` stays lean.
AIRFLOW_VENV := .venv-airflow
AIRFLOW_STAMP := $(AIRFLOW_VENV)/.installed-$(shell cat requirements.lock requirements-airflow.lock pyproject.toml | cksum | cut -d' ' -f1)

# The optional Azure ML extra (azure-ai-ml v2) builds and submits job files only: its own
# small venv with nothing of requirements.lock (its OpenTelemetry pins do not fit).
AZUREML_VENV := .venv-azureml
AZUREML_STAMP := $(AZUREML_VENV)/.installed-$(shell cat requirements-azureml.lock | cksum | cut -d' ' -f1)

.PHONY: install run test test-fast lint lock bench clean image airflow azureml

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@test -n "$(PYTHON)" || { echo "error: Python 3.10 not found (TFX 1.16 needs Python 3.10); set PYTHON=/path/to/python3.10" >&2; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip<27"
	# Every package is pinned in the lock file: --no-deps means nothing is resolved.
	$(BIN)/python -m pip install --quiet --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@rm -f $(VENV)/.installed-* && touch $@

# .venv-airflow: the same pins as .venv plus apache-airflow (requirements-airflow.lock,
# installed second: it moves werkzeug and rich down to what Airflow accepts).
airflow: $(AIRFLOW_STAMP)

$(AIRFLOW_STAMP): requirements.lock requirements-airflow.lock pyproject.toml
	@test -n "$(PYTHON)" || { echo "error: Python 3.10 not found (TFX 1.16 needs Python 3.10); set PYTHON=/path/to/python3.10" >&2; exit 1; }
	@test -x $(AIRFLOW_VENV)/bin/python || $(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/python -m pip install --quiet --upgrade "pip<27"
	$(AIRFLOW_VENV)/bin/python -m pip install --quiet --no-deps -r requirements.lock
	$(AIRFLOW_VENV)/bin/python -m pip install --quiet --no-deps -r requirements-airflow.lock
	$(AIRFLOW_VENV)/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@rm -f $(AIRFLOW_VENV)/.installed-* && touch $@

# .venv-azureml: azure-ai-ml and azure-identity, pinned in requirements-azureml.lock.
azureml: $(AZUREML_STAMP)

$(AZUREML_STAMP): requirements-azureml.lock
	@test -n "$(PYTHON)" || { echo "error: Python 3.10 not found; set PYTHON=/path/to/python3.10" >&2; exit 1; }
	@test -x $(AZUREML_VENV)/bin/python || $(PYTHON) -m venv $(AZUREML_VENV)
	$(AZUREML_VENV)/bin/python -m pip install --quiet --upgrade "pip<27"
	$(AZUREML_VENV)/bin/python -m pip install --quiet --no-deps -r requirements-azureml.lock
	@rm -f $(AZUREML_VENV)/.installed-* && touch $@

run: install
	$(BIN)/python local_runner.py $(ARGS)

# Three tiers of tests (markers in pyproject.toml):
#   e2e   whole pipelines (local, Kubeflow, Airflow, Luigi, Azure ML, bad data);
#   slow  Beam pipelines (ExampleGen, TFDV, tf.Transform), model training, processes
#         that import TensorFlow;
#   fast  the rest: layers, README, contract, config, preflight, parsing, unit tests.
# `make test` (CI, .ci/run) runs all three; `make test-fast` the fast tier only, about a
# minute. One tier: make test ARGS='-m slow' (or -m e2e, or -m "not e2e" for all but e2e).
test: install
	$(BIN)/python -m pytest $(ARGS)

test-fast: install
	$(BIN)/python -m pytest -m "not e2e and not slow" $(ARGS)

lint: install
	$(BIN)/ruff check .

# Regenerate requirements.lock from pyproject.toml (needs the package index).
lock: install
	$(BIN)/pip-compile --quiet --strip-extras --extra dev --allow-unsafe \
	    --no-emit-index-url --no-emit-find-links -o requirements.lock pyproject.toml

bench: install
	$(BIN)/python -m benchmarks $(ARGS)

# The Kubeflow / Vertex AI pipeline image (needs Docker): make image IMAGE=REGISTRY/IMAGE:TAG
IMAGE ?= chicago-taxi-pipeline:latest
image:
	@command -v docker >/dev/null || { echo "error: docker not found; build the image where Docker runs (or with Cloud Build: gcloud builds submit --tag $(IMAGE) .)" >&2; exit 1; }
	docker build -t $(IMAGE) .

clean:
	rm -rf outputs build .pytest_cache
