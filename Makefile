# kerasweep: `make sweep SPACE=cnn` runs a sweep, `make test` runs the tests.
# The first target that needs it creates .venv and installs the locked stack (skipped when up to date).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

SPACE   ?= cnn
ENGINE  ?= optuna
STORE   ?= $(or $(KERASWEEP_STORE),runs)
PORT    ?= 5000
TRIALS  ?=
EPOCHS  ?=
MINUTES ?=
NAME    ?=
JOBS    ?= 2
WORKERS ?=
SAMPLER ?=
SWEEP   ?=
CONFIG  ?=
SERVICE_DIR ?= $(or $(KERASWEEP_SERVICE_DIR),service)

SWEEP_FLAGS = --engine $(ENGINE) --store $(STORE) \
	$(if $(TRIALS),--trials $(TRIALS)) $(if $(EPOCHS),--epochs $(EPOCHS)) $(if $(MINUTES),--minutes $(MINUTES)) \
	$(if $(NAME),--name $(NAME)) $(if $(WORKERS),--workers $(WORKERS)) $(if $(SAMPLER),--sampler $(SAMPLER))

.DEFAULT_GOAL := help
.PHONY: help install lock sweep status export train ui tensorboard dashboard cluster-local service-up service-down bench bench-quick bench-gpu docs test test-slow test-jax test-strict test-torch test-gpu clean

help: ## List the targets with one line each
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-14s %s\n", $$1, $$2}'
	@echo "  variables: SPACE=$(SPACE) ENGINE=$(ENGINE) STORE=$(STORE) TRIALS EPOCHS MINUTES NAME WORKERS SAMPLER SWEEP CONFIG PORT JOBS INSTALLER=$(INSTALLER)"

# uv (installed into .venv by pip first, so nothing is needed beforehand) installs the same locked set about
# twice as fast as pip (docs/benchmarks.md, table 5); INSTALLER=pip uses pip alone, and pip takes over if uv
# fails (an index only pip is configured for, say). Both compile bytecode at install, as pip always has.
INSTALLER ?= uv
PIP_INSTALL = $(BIN)/python -m pip install -q --disable-pip-version-check

$(STAMP): pyproject.toml constraints.txt
	@case "$(INSTALLER)" in uv|pip) ;; *) echo "INSTALLER: expected uv or pip, got '$(INSTALLER)'" >&2; exit 2;; esac
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing kerasweep and its locked dependencies into $(VENV)/ with $(INSTALLER) (first time: about $(if $(filter pip,$(INSTALLER)),90 s,40 s)) ..."
	@if [ "$(INSTALLER)" = uv ] && $(PIP_INSTALL) -c constraints.txt uv \
	    && $(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python -c constraints.txt -e '.[test]'; then :; \
	else [ "$(INSTALLER)" = pip ] || echo "uv failed (above); installing with pip instead" >&2; \
	    $(PIP_INSTALL) --upgrade pip && $(PIP_INSTALL) -c constraints.txt -e '.[test]'; fi
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install the locked stack (pyproject.toml + constraints.txt)

lock: $(STAMP) ## Re-pin constraints.txt from the current .venv (after changing dependencies)
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^kerasweep' > constraints.txt

sweep: $(STAMP) ## Run or resume a sweep: make sweep SPACE=cnn [ENGINE TRIALS EPOCHS MINUTES NAME WORKERS SAMPLER STORE]
	$(BIN)/kerasweep sweep $(SPACE) $(SWEEP_FLAGS)

status: $(STAMP) ## Sweeps in the store with counts per state and best value [SWEEP=name]
	$(BIN)/kerasweep status $(SWEEP) --store $(STORE)

export: $(STAMP) ## Export the best trial of a sweep: make export SWEEP=cnn
	@test -n "$(SWEEP)" || { echo "usage: make export SWEEP=<sweep name>"; exit 2; }
	$(BIN)/kerasweep export $(SWEEP) --store $(STORE)

train: $(STAMP) ## Train an exported config: make train CONFIG=runs/exports/cnn.yaml
	@test -n "$(CONFIG)" || { echo "usage: make train CONFIG=<exported yaml>"; exit 2; }
	$(BIN)/kerasweep train $(CONFIG) --store $(STORE) $(if $(EPOCHS),--epochs $(EPOCHS))

ui: $(STAMP) ## Serve the MLflow UI over the store on http://127.0.0.1:5000 (PORT=...)
	$(BIN)/kerasweep ui --store $(STORE) --port $(PORT)

tensorboard: $(STAMP) ## Serve TensorBoard over a sweep's trial logs: make tensorboard SWEEP=cnn (port 6006)
	@test -n "$(SWEEP)" || { echo "usage: make tensorboard SWEEP=<sweep name>"; exit 2; }
	$(BIN)/kerasweep tensorboard $(SWEEP) --store $(STORE) --port $(or $(TB_PORT),6006)

dashboard: $(STAMP) ## Serve optuna-dashboard over a sweep's storage: make dashboard SWEEP=cnn (port 8080)
	@test -n "$(SWEEP)" || { echo "usage: make dashboard SWEEP=<sweep name>"; exit 2; }
	$(BIN)/kerasweep dashboard $(SWEEP) --store $(STORE) --port $(or $(DASH_PORT),8080)

cluster-local: $(STAMP) ## Start a 2-node Ray cluster on 127.0.0.1, sweep on it, show which node ran each trial, stop
	$(BIN)/python cluster/local_cluster.py

service-up: $(STAMP) ## Start the team service (PostgreSQL, MLflow with auth, Ray head) under SERVICE_DIR; writes client.env
	$(BIN)/kerasweep service up --dir $(SERVICE_DIR)

service-down: $(STAMP) ## Stop everything the team service under SERVICE_DIR started
	$(BIN)/kerasweep service down --dir $(SERVICE_DIR)

# the search-quality runners by cost (docs/benchmarks.md, table 6): the cheap ones get every seed and budget
SQ_MAIN := kerasweep,optuna-tpe-hyperband,random,keras-tuner-hyperband,dehb
SQ_MORE := kerasweep-median,kerasweep-successive-halving,kerasweep-random-hyperband,kerasweep-4-workers,smac3-hyperband
SQ_RAY := ray-asha-optuna,ray-asha-optuna-4-concurrent
SQ := $(BIN)/python benchmarks/bench_search_quality.py --store $(STORE)

bench: $(STAMP) ## All benchmarks, side by side with the peers (about 4 hours; tables, JSON and PNGs under STORE/bench)
	$(BIN)/python benchmarks/bench_overhead.py --store $(STORE) $(if $(TRIALS),--trials $(TRIALS)) $(if $(EPOCHS),--epochs $(EPOCHS))
	$(BIN)/python benchmarks/bench_time_to_target.py --store $(STORE) --seeds 5 --budget 120
	$(BIN)/python benchmarks/bench_bookkeeping.py --store $(STORE) --trials 1000
	$(BIN)/python benchmarks/bench_install.py --store $(STORE)
	$(SQ) --seeds 10 --budgets 10,30,100 --runners $(SQ_MAIN) --json $(STORE)/bench/sq-main.json
	$(SQ) --seeds 3 --budgets 10,30 --runners $(SQ_MORE) --json $(STORE)/bench/sq-more.json
	$(SQ) --seeds 3 --budgets 10 --runners $(SQ_RAY) --json $(STORE)/bench/sq-ray.json
	$(SQ) --merge $(STORE)/bench/sq-main.json,$(STORE)/bench/sq-more.json,$(STORE)/bench/sq-ray.json
	$(BIN)/python benchmarks/bench_tracking.py --store $(STORE) --epochs 200

bench-quick: $(STAMP) ## The same benchmarks, smaller: one seed, fewer trials (about 25 minutes)
	$(BIN)/python benchmarks/bench_overhead.py --store $(STORE) --trials 4 --epochs 2
	$(BIN)/python benchmarks/bench_time_to_target.py --store $(STORE) --seeds 1 --budget 40
	$(BIN)/python benchmarks/bench_bookkeeping.py --store $(STORE) --trials 150
	$(BIN)/python benchmarks/bench_install.py --store $(STORE) --trials 4 --epochs 3
	$(SQ) --tasks 3945,7593,167190 --seeds 3 --budgets 10,30 --runners $(SQ_MAIN),$(SQ_MORE) --json $(STORE)/bench/sq-quick.json
	$(SQ) --tasks 3945,7593,167190 --seeds 3 --budgets 10 --runners $(SQ_RAY) --json $(STORE)/bench/sq-quick-ray.json
	$(SQ) --merge $(STORE)/bench/sq-quick.json,$(STORE)/bench/sq-quick-ray.json
	$(BIN)/python benchmarks/bench_tracking.py --store $(STORE) --epochs 50

bench-gpu: $(STAMP) ## Trials packed per GPU (1, 4, 8) and the CPU cores, on a GPU machine (KERAS_BACKEND picks the backend)
	$(BIN)/python benchmarks/bench_gpu.py --store $(STORE) --space cnn --packings 1,4,8 --cpu
	$(BIN)/python benchmarks/bench_gpu.py --store $(STORE) --space benchmarks/gpu/images.yaml --packings 1,4,8 --cpu --target 0.9

PYTEST_JOBS = $(if $(filter-out 0 1,$(JOBS)),-n $(JOBS) --dist loadfile)
# slow checks spread test by test, except those that start Ray: one group, one process (tests/conftest.py)
PYTEST_SLOW_JOBS = $(if $(filter-out 0 1,$(JOBS)),-n $(JOBS) --dist loadgroup)

test: $(STAMP) ## Run the test suite (what CI runs), test files in JOBS=2 processes; JOBS=1: one process
	$(BIN)/python -m pytest $(PYTEST_JOBS)

test-slow: $(STAMP) ## Run the slow checks (full default sweeps) in JOBS=2 processes, Ray's one after another
	$(BIN)/python -m pytest -m slow $(PYTEST_SLOW_JOBS)

test-jax: $(STAMP) ## The engine contract (every engine) and the task contract with Keras on JAX (CPU)
	KERAS_BACKEND=jax $(BIN)/python -m pytest -m "slow or not slow" tests/test_engine_contract.py
	KERAS_BACKEND=jax $(BIN)/python -m pytest tests/test_task_contract.py

test-strict: $(STAMP) ## The engine contract with Deprecation/Future warnings from kerasweep's own calls as errors
	KERASWEEP_STRICT_WARNINGS=1 $(BIN)/python -m pytest $(PYTEST_SLOW_JOBS) -m "slow or not slow" tests/test_engine_contract.py

test-torch: $(STAMP) ## The same contracts with Keras on PyTorch (CPU); needs torch installed, so not in CI
	@$(BIN)/python -c "import torch" 2>/dev/null || { echo "test-torch: torch is not installed; $(BIN)/pip install torch (about 5 GB with its CUDA libraries)" >&2; exit 2; }
	KERAS_BACKEND=torch $(BIN)/python -m pytest -m "slow or not slow" tests/test_engine_contract.py
	KERAS_BACKEND=torch $(BIN)/python -m pytest tests/test_task_contract.py

test-gpu: $(STAMP) ## On a GPU machine: workers packed on the GPU, trials and production trained there (skips without one)
	$(BIN)/python -m pytest -m gpu tests/test_gpu.py -rs

docs: $(STAMP) ## Build the documentation offline into site/ (strict: a broken link or reference fails)
	$(BIN)/mkdocs build --strict --quiet

clean: ## Remove the store (runs/), caches and build files; keeps .venv
	rm -rf $(STORE) .pytest_cache build site *.egg-info
	find . -name __pycache__ -type d -not -path './$(VENV)/*' -exec rm -rf {} +
