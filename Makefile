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

.PHONY: install engine test-engine-pure prometheus-tools chromium vendor dev demo test test-unit lint format bench bench-env clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==0.13.9

$(SYNCED): $(UV) pyproject.toml uv.lock
	$(UV) sync --locked --python $(PYTHON)
	@touch $@

install: $(SYNCED) engine

# The SLA engine compiled by mypyc (tools/build_native.py), rebuilt whenever an engine source
# changes; `make ... NATIVE=0` removes it and runs the pure-Python engine (same sources).
NATIVE ?= 1
EXT_SUFFIX := $(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
NATIVE_BUILT := shared/engine/machine$(EXT_SUFFIX)
ifeq ($(NATIVE),0)
engine: $(SYNCED)
	$(VENV)/bin/python tools/build_native.py --clean
else
engine: $(NATIVE_BUILT)
endif
$(NATIVE_BUILT): $(SYNCED) $(wildcard shared/engine/*.py) tools/build_native.py
	$(VENV)/bin/python tools/build_native.py

# Debian's Prometheus server and promtool: the real-scrape test and the rule unit tests need
# them; .ci/promtool.sh installs them with apt-get when missing (and runs the rule checks).
prometheus-tools:
	@command -v prometheus >/dev/null && command -v promtool >/dev/null || bash .ci/promtool.sh

# Debian's chromium for the console's browser tests (.ci/chromium.sh apt-get installs it).
chromium:
	@test -x /usr/bin/chromium || bash .ci/chromium.sh

# The console's front-end libraries, from the npm registry at the versions pinned in
# tools/vendor.sh, into services/console/static/vendor/ (committed; nothing from a CDN).
vendor:
	bash tools/vendor.sh

dev: install
	$(VENV)/bin/slawatch dev

demo: install
	$(VENV)/bin/slawatch demo

test: install prometheus-tools chromium
	$(VENV)/bin/pytest -p no:cacheprovider $(PYTEST_ARGS)
	@$(MAKE) --no-print-directory test-engine-pure

# The engine's own tests once more on the pure-Python engine: a copy of the sources without
# the compiled modules (what runs where nothing was compiled, e.g. NATIVE=0).
PURE := .build/pure-engine
test-engine-pure: install
	@rm -rf $(PURE) && mkdir -p $(PURE)
	@cp -r shared services tests docs pyproject.toml examples $(PURE)/ && cp -a slawatch $(PURE)/
	@find $(PURE) -name '*$(EXT_SUFFIX)' -delete
	cd $(PURE) && $(CURDIR)/$(VENV)/bin/python -c 'import slawatch.shared.engine as e; assert not e.NATIVE, e.machine.__file__; print("pure-Python engine:", e.machine.__file__)'
	cd $(PURE) && $(CURDIR)/$(VENV)/bin/pytest -p no:cacheprovider -q tests/engine tests/test_events.py

test-unit: install
	$(VENV)/bin/pytest -p no:cacheprovider -m "not integration" $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy  # all of the project's code; configuration in pyproject.toml [tool.mypy]

format: install
	$(VENV)/bin/ruff format shared services tests bench

BENCH_OUT := bench/results
# Every bench/<name>.py that exists has a bench-<name> target; `make bench` runs them all.
BENCHES := $(filter-out report,$(basename $(notdir $(wildcard bench/*.py))))
bench: install
	@rm -rf $(BENCH_OUT) && mkdir -p $(BENCH_OUT)
	@set -e; for b in $(BENCHES); do $(MAKE) --no-print-directory bench-$$b; done
	$(VENV)/bin/python bench/report.py $(BENCH_OUT) bench/RESULTS.md

# The bench-only environment (the `bench` dependency group: Quix Streams, the peer in
# bench/monitor.py), apart from .venv because Quix pins older pydantic releases.
BENCH_VENV := .venv-bench
$(BENCH_VENV)/.synced: pyproject.toml uv.lock | $(UV)
	UV_PROJECT_ENVIRONMENT=$(BENCH_VENV) $(UV) sync --locked --no-default-groups --group bench --python $(PYTHON)
	@touch $@

bench-env: $(BENCH_VENV)/.synced

bench-monitor: bench-env

bench-%: install
	@mkdir -p $(BENCH_OUT)
	@test -f bench/$*.py || { echo "no benchmark bench/$*.py" >&2; exit 2; }
	$(VENV)/bin/python bench/$*.py --json $(BENCH_OUT)/$*.json

clean:
	rm -rf $(VENV) $(TOOLS) .build .pytest_cache .ruff_cache .hypothesis
	rm -f shared/engine/*$(EXT_SUFFIX) slawatch_engine__mypyc*$(EXT_SUFFIX)
