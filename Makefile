# Every target does its own set-up: a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench readme clean install

$(STAMP): pyproject.toml scripts/system-deps.sh
	bash scripts/system-deps.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# llama-cpp-python compiles from source the first time (~8 min on 2 cores); pip caches the wheel.
	$(BIN)/python -m pip install --quiet -e '.[local,dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	bash scripts/demo.sh

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/mypy

test: lint
	bash scripts/system-deps.sh --browser
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/llm_layer.py
	$(BIN)/python benchmarks/evaluate_latency.py
	$(BIN)/python benchmarks/embedded_scoring.py
	$(BIN)/python benchmarks/tsp_baselines.py

# The README's CLI reference, regenerated from --help (tests/test_readme.py keeps it in sync).
readme: $(STAMP)
	$(BIN)/python scripts/cli_reference.py --write

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
