# Two commands do everything: `make demo` (the main job, on embedded data) and `make test`.
# Both create or update .venv from requirements.lock first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL ?= 3

.PHONY: venv lint browser test test-slow test-gpu demo clean

$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

venv: $(STAMP)

# ruff's rules live in pyproject.toml ([tool.ruff]); `make test` lints first, then runs the suite
lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

# the `alexnet serve` browser test drives Debian's chromium through chromedriver; installed when absent
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null; }

# the default suite runs in TEST_WORKERS processes (pytest-xdist), each test module whole in one
# of them so its module fixtures are built once: much of it waits on subprocesses starting a
# framework, which leaves a core idle when run one test at a time. The slow tests run one at a time.
TEST_WORKERS ?= 2

test: lint browser
	$(PY) -m pytest tests -q -n $(TEST_WORKERS) --dist loadscope --durations=15

test-slow: $(STAMP)
	$(PY) -m pytest tests -q -m slow

test-gpu: $(STAMP)
	$(PY) -m pytest tests -q -m gpu

# --force: `make demo` again replaces the previous demo's run, report and held-out figures in
# runs/demo (and nothing else there); `alexnet demo` alone refuses to
demo: $(STAMP)
	$(PY) -m alexnet_lab demo --force

clean:
	rm -rf $(VENV) build src/*.egg-info
