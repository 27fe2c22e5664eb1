# routerapp: `make run` (the whole demo) and `make test` (the whole suite) do all the set-up.
PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench bench-gateway replay env chromium clean

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

env: $(STAMP)

# Browser tests drive Debian's Chromium; never a browser download.
chromium:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; fi; }

run: $(STAMP)
	$(BIN)/python -m routerapp.devstack run

# The checks first (fast), then the suite.
test: lint chromium
	$(BIN)/python -m routerapp.devstack test -q -p no:cacheprovider $(PYTEST_ARGS)

# mypy's Django plugin imports the settings, which need DEBUG (or a SECRET_KEY) to load;
# what it checks and how strictly is [tool.mypy] in pyproject.toml.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	DEBUG=true $(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/engine.py

# routerapp against the LiteLLM proxy, side by side (LiteLLM installs once into var/bench/);
# e.g. make bench-gateway BENCH_ARGS="--quick --profile". Results: var/bench/gateway.json.
bench-gateway: $(STAMP)
	$(BIN)/python bench/gateway.py $(BENCH_ARGS)

replay: $(STAMP)
	$(BIN)/python -m routerapp.replay --data ../shared/data/routebench/dev.csv \
	  --objective cost_at_quality --quality-target 0.95 --context subject

clean:
	rm -rf $(VENV) var staticfiles test-artifacts
