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

.PHONY: install prometheus-tools dev demo test test-unit lint format bench clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==0.13.9

$(SYNCED): $(UV) pyproject.toml uv.lock
	$(UV) sync --locked --python $(PYTHON)
	@touch $@

install: $(SYNCED)

# Debian's Prometheus server and promtool: the real-scrape test and the rule unit tests need
# them; .ci/promtool.sh installs them with apt-get when missing (and runs the rule checks).
prometheus-tools:
	@command -v prometheus >/dev/null && command -v promtool >/dev/null || bash .ci/promtool.sh

dev: install
	$(VENV)/bin/slawatch dev

demo: install
	$(VENV)/bin/slawatch demo

test: install prometheus-tools
	$(VENV)/bin/pytest -p no:cacheprovider $(PYTEST_ARGS)

test-unit: install
	$(VENV)/bin/pytest -p no:cacheprovider -m "not integration" $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .

format: install
	$(VENV)/bin/ruff format shared services tests bench

BENCH_OUT := bench/results
# Every bench/<name>.py that exists has a bench-<name> target; `make bench` runs them all.
BENCHES := $(filter-out report,$(basename $(notdir $(wildcard bench/*.py))))
bench: install
	@rm -rf $(BENCH_OUT) && mkdir -p $(BENCH_OUT)
	@set -e; for b in $(BENCHES); do $(MAKE) --no-print-directory bench-$$b; done
	$(VENV)/bin/python bench/report.py $(BENCH_OUT) bench/RESULTS.md

bench-%: install
	@mkdir -p $(BENCH_OUT)
	@test -f bench/$*.py || { echo "no benchmark bench/$*.py" >&2; exit 2; }
	$(VENV)/bin/python bench/$*.py --json $(BENCH_OUT)/$*.json

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .ruff_cache .hypothesis
