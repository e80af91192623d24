# slawatch: a fresh machine needs only Python 3.11; everything else is installed here.
#   make dev   - install, then run broker + database + every service locally (Ctrl-C stops all)
#   make test  - install, then run the whole test suite against a real broker and database
PYTHON ?= python3
TOOLS  := .tools
UV     := $(TOOLS)/bin/uv
VENV   := .venv
SYNCED := $(VENV)/.synced
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: install dev demo test test-unit lint format bench bench-ingest bench-engine bench-monitor bench-notifier clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==0.13.9

$(SYNCED): $(UV) pyproject.toml uv.lock
	$(UV) sync --locked --python $(PYTHON)
	@touch $@

install: $(SYNCED)

dev: install
	$(VENV)/bin/slawatch dev

demo: install
	$(VENV)/bin/slawatch demo

test: install
	$(VENV)/bin/pytest -p no:cacheprovider $(PYTEST_ARGS)

test-unit: install
	$(VENV)/bin/pytest -p no:cacheprovider -m "not integration" $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .

format: install
	$(VENV)/bin/ruff format shared services tests bench

BENCH_OUT := bench/results
bench: bench-ingest bench-engine bench-monitor bench-notifier
	$(VENV)/bin/python bench/report.py $(BENCH_OUT) bench/RESULTS.md

bench-ingest: install
	@mkdir -p $(BENCH_OUT)
	$(VENV)/bin/python bench/ingest.py --json $(BENCH_OUT)/ingest.json

bench-engine: install
	@mkdir -p $(BENCH_OUT)
	$(VENV)/bin/python bench/engine.py --json $(BENCH_OUT)/engine.json

bench-monitor: install
	@mkdir -p $(BENCH_OUT)
	$(VENV)/bin/python bench/monitor.py --json $(BENCH_OUT)/monitor.json

bench-notifier: install
	@mkdir -p $(BENCH_OUT)
	$(VENV)/bin/python bench/notifier.py --json $(BENCH_OUT)/notifier.json

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .ruff_cache .hypothesis
