# Every target does its own set-up: a fresh clone needs only `make demo` or `make test`.
# The environment is installed from the lock (uv.lock: exact versions with hashes) by uv,
# itself installed by hash (scripts/uv-requirements.txt) into .tools: an upstream release
# can never change what make and CI test. `make lock` refreshes the lock on purpose;
# `make test-latest` tries the newest versions pyproject.toml allows, without the lock.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
UV     := .tools/bin/uv
# ray and litellm: the Ray sweep and the multi-server tests run in make test (CI) too.
EXTRAS := --extra local --extra dev --extra ray --extra litellm
export UV_PYTHON_DOWNLOADS := never

.PHONY: demo test check lint bench bench-objectives docs cli-reference clean install lock test-latest
.PHONY: bench-peers bench-peers-quick lock-peers

$(UV): scripts/uv-requirements.txt
	bash scripts/system-deps.sh
	test -x .tools/bin/python || $(PYTHON) -m venv .tools
	.tools/bin/python -m pip install --quiet --require-hashes -r scripts/uv-requirements.txt
	touch $(UV)

$(STAMP): pyproject.toml uv.lock scripts/system-deps.sh $(UV)
	bash scripts/system-deps.sh
	# llama-cpp-python compiles from source the first time (~8 min on 2 cores); uv caches the wheel.
	$(UV) sync --locked $(EXTRAS) --python $(PYTHON)
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	bash scripts/demo.sh

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/mypy

# Test lanes (tests/conftest.py): `make check` is the inner loop, every test that needs no
# embedded model, model server, docs build, browser, wheel build or Ray cluster, nor is a
# minutes-long soak (about 2 minutes); `make test` runs every test, as CI does. Both run in
# parallel workers (pytest-xdist; the embedded-model tests share one worker: two models on
# two cores would starve each other), each test under a time limit, the slowest listed.
WORKERS ?= 3
PYTEST_LANES = -n $(WORKERS) --dist loadgroup --timeout 900 --durations 25
CHECK_OUT := not (embedded or server or docs or browser or packaging or cluster or slow)

check: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/mypy --incremental
	$(BIN)/pytest $(PYTEST_LANES) -m "$(CHECK_OUT)"

test: lint
	bash scripts/system-deps.sh --browser
	$(BIN)/pytest $(PYTEST_LANES)

# Refresh uv.lock to the newest versions pyproject.toml allows (and uv itself), then run
# `make test` and commit both files: an upgrade is a deliberate, tested commit.
lock: $(UV)
	$(UV) lock --upgrade
	$(UV) pip compile --universal --generate-hashes --upgrade --quiet scripts/uv.in \
	    -o scripts/uv-requirements.txt

# Not in CI: the newest allowed versions of everything, ignoring the lock, in .venv-latest;
# finds an upstream release that breaks us before a user does.
test-latest: $(UV)
	bash scripts/system-deps.sh --browser
	rm -rf .venv-latest
	$(UV) venv --quiet --python $(PYTHON) .venv-latest
	$(UV) pip install --python .venv-latest/bin/python --upgrade -e '.[local,dev,ray,litellm]'
	$(UV) pip list --python .venv-latest/bin/python
	.venv-latest/bin/ruff check src tests benchmarks scripts
	.venv-latest/bin/mypy
	.venv-latest/bin/pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/startup.py
	$(BIN)/python benchmarks/llm_layer.py
	$(BIN)/python benchmarks/evaluate_latency.py
	$(BIN)/python benchmarks/transports.py
	$(BIN)/python benchmarks/embedded_scoring.py
	$(BIN)/python benchmarks/embedded_scoring.py --workload step
	$(BIN)/python benchmarks/tsp_baselines.py
	$(BIN)/python benchmarks/evaluate_load.py --repeats 3  # exits 1 when 1.3x is missed

# Not in `bench` (75 minutes on the shared 2-core machine): OPRO against random sampling on the
# three objectives of examples/objectives/, with the embedded model; writes
# docs/results/objectives.json and .md (`--from-json` rebuilds the page, `--quick` tries it).
bench-objectives: $(STAMP)
	$(BIN)/python benchmarks/objectives.py

# opro against the tools users would pick instead (issue #27, benchmarks/peers/): the peers
# live in their own environment, .venv-peers, installed from benchmarks/peers/uv.lock (with
# opro itself from this checkout, editable): never in opro's dependencies, lock or make
# test. bench-peers takes 5-6 hours on 2 cores (ARGS="--seeds 0 --tasks hyperbaton": 1.5),
# then about 1 more at the second budget, 850 scorer calls (two OPRO steps' worth; one
# seed, the tools below); bench-peers-quick, minutes (the harness, not the benchmark). ARGS
# go to run.py (e.g. ARGS="--tools opro dspy-copro").
PEERS_VENV  := .venv-peers
PEERS_AT_850 := opro opro-constrained opro-native promptolution-evoga promptolution-opro dspy-copro gepa dspy-mipro
PEERS_STAMP := $(PEERS_VENV)/.installed

$(PEERS_STAMP): benchmarks/peers/pyproject.toml benchmarks/peers/uv.lock pyproject.toml scripts/system-deps.sh $(UV)
	bash scripts/system-deps.sh
	UV_PROJECT_ENVIRONMENT=$(CURDIR)/$(PEERS_VENV) $(UV) sync --locked --project benchmarks/peers --python $(PYTHON) \
	    --reinstall-package opro  # its entry points: the metadata of this checkout
	touch $(PEERS_STAMP)

# run.py exits 3 when a tool's run ended in an error: a result (on the page), so make goes on.
bench-peers: $(PEERS_STAMP)
	$(PEERS_VENV)/bin/python benchmarks/peers/run.py $(ARGS) || test $$? -eq 3
	$(PEERS_VENV)/bin/python benchmarks/peers/run.py --budget 850 --tasks hyperbaton --seeds 0 \
	    --tools $(PEERS_AT_850) --out benchmarks/peers/results/full-b850.json || test $$? -eq 3
	$(PEERS_VENV)/bin/python benchmarks/peers/run.py --quick --kill-halfway
	$(PEERS_VENV)/bin/python benchmarks/peers/page.py

bench-peers-quick: $(PEERS_STAMP)
	$(PEERS_VENV)/bin/python benchmarks/peers/run.py --quick $(ARGS)
	$(PEERS_VENV)/bin/python benchmarks/peers/page.py --results benchmarks/peers/results/quick.json \
	    --out runs/peers-quick.md

# Refresh benchmarks/peers/uv.lock (also needed when opro's own dependencies change).
lock-peers: $(UV)
	$(UV) lock --upgrade --project benchmarks/peers --python $(PYTHON)

# The docs site at http://127.0.0.1:8000, rebuilt on every edit (tests/test_docs.py builds it
# strictly, runs the tutorials' code and renders pages in headless Chromium).
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

# The docs' CLI reference, regenerated from --help (tests/test_docs.py keeps it in sync).
cli-reference: $(STAMP)
	$(BIN)/python scripts/cli_reference.py --write

clean:
	rm -rf $(VENV) .venv-latest .venv-peers .tools .mypy_cache .pytest_cache .ruff_cache build dist
