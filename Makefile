# Attention Workbench developer commands.
#
#   make app     install (if needed), then serve the dashboard on http://127.0.0.1:8050
#   make test    install with browser-test deps, lint, then run the whole test suite
#   make lint    ruff lint + format check        make format   ruff format + autofix
#   make bench   benchmarks/load_and_cache.py (JSON to stdout and benchmarks/results/)
#
# Everything runs offline (HF_HUB_OFFLINE=1): the zoo models need no network.

VENV := .venv
PY := $(VENV)/bin/python
RUFF := $(VENV)/bin/ruff

.PHONY: install install-test app test lint format bench

install:
	bash scripts/install.sh

install-test:
	bash scripts/install.sh --test

app: install
	HF_HUB_OFFLINE=1 $(VENV)/bin/workbench app

test: install-test
	$(RUFF) check .
	$(RUFF) format --check .
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q

lint: install
	$(RUFF) check .
	$(RUFF) format --check .
	$(RUFF) format --check .

format: install
	$(RUFF) format .
	$(RUFF) check --fix .

bench: install
	HF_HUB_OFFLINE=1 $(PY) benchmarks/load_and_cache.py
	HF_HUB_OFFLINE=1 $(PY) benchmarks/attention_stats.py
	HF_HUB_OFFLINE=1 $(PY) benchmarks/attention_stats_model.py
	OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 $(PY) benchmarks/dashboard.py
	OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 $(PY) benchmarks/circuits.py
	OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 $(PY) benchmarks/circuits_planted.py
	@if $(PY) -c "import ray" 2>/dev/null; then HF_HUB_OFFLINE=1 $(PY) benchmarks/scale_out.py && \
	OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 $(PY) benchmarks/scale_out_analyses.py; \
	else echo "bench: skipping benchmarks/scale_out*.py (needs the ray extra)"; fi
