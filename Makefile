# fact — make help lists the targets. Everything installs into .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DATA   ?= $(abspath ../shared/data)

.PHONY: help install run test test-slow bench bench-env bench-uci bench-launchers gpu-check lint clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev,parquet,bench]"
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install fact with its test tools

run: $(STAMP) ## The main job: FACT-RFM learns which 3 of 16 features carry the label (runs/fit_rfm/<time>/; ARGS=threads=1 …)
	$(BIN)/fact fit-rfm dataset=signal_in_noise method=fact $(ARGS)

test: $(STAMP) ## The test suite (tests needing ../shared/data skip without it; FACT_DATA points elsewhere)
	$(BIN)/python -m pytest -q

test-slow: $(STAMP) ## The slow tests alone (long training runs, many property examples; CI runs them after make test)
	$(BIN)/python -m pytest -q -m slow

bench-env: $(STAMP) ## A separate environment with the xrfm package, for the side-by-side benchmark
	test -x benchmarks/.xrfm-venv/bin/python || $(PYTHON) -m venv benchmarks/.xrfm-venv
	echo "torch==2.13.0" > benchmarks/.xrfm-venv/constraints.txt
	benchmarks/.xrfm-venv/bin/pip install --quiet torch==2.13.0 xrfm -c benchmarks/.xrfm-venv/constraints.txt

bench: $(STAMP) bench-env ## Engine, xrfm, scalable-path and real-table benchmarks (hours; rerun resumes) → benchmarks/results/
	cd benchmarks && ../$(BIN)/python bench_engine.py
	cd benchmarks && ../$(BIN)/python bench_xrfm.py
	cd benchmarks && FACT_DATA=$(DATA) ../$(BIN)/python bench_routes.py
	cd benchmarks && FACT_DATA=$(DATA) ../$(BIN)/python bench_scalable.py all
	cd benchmarks && FACT_DATA=$(DATA) ../$(BIN)/python bench_tables.py
	cd benchmarks && FACT_DATA=$(DATA) ../$(BIN)/python bench_grid.py --final
	cd benchmarks && ../$(BIN)/python bench_l1.py
	cd benchmarks && FACT_DATA=$(DATA) ../$(BIN)/python bench_cli.py
	cd benchmarks && ../$(BIN)/python bench_estimate.py

bench-uci: $(STAMP) ## The 96-dataset UCI benchmark (hours; rerun to resume) → runs/uci-benchmark/
	FACT_DATA=$(DATA) $(BIN)/fact fit-rfm benchmark=uci hydra.run.dir=runs/uci-benchmark

bench-launchers: $(STAMP) ## The same 8-job sweep with the basic and the joblib launcher → benchmarks/results/launchers.json
	cd benchmarks && ../$(BIN)/python bench_launchers.py

gpu-check: $(STAMP) ## Every subcommand on CUDA against the CPU, engine against Cholesky (DEVICE=cuda REFERENCE=cpu)
	benchmarks/gpu_check.sh $(or $(DEVICE),cuda) $(or $(REFERENCE),cpu)

lint: $(STAMP) ## ruff
	$(BIN)/ruff check factcli tests benchmarks
	$(BIN)/ruff format --check factcli tests benchmarks

clean: ## Remove the environment and caches (runs/ stays)
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
