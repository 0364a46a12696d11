# qmac — top-level entry points.  Every target does its own set-up: a .venv from the
# pinned requirements.txt, and the Debian tools it needs when they are missing.
#
#   make sim        the main job (see README.md)
#   make test       the whole regression (golden model + every cocotb testbench)
#   make help       everything else
#
# Variables: SEED=n (reproduce a random run), TEST=name, WAVES=1, IMAGES=n, JOBS=n.

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

# The seed reaches pytest, cocotb and the tools through the environment.
export QMAC_SEED := $(SEED)
export QMAC_WAVES := $(WAVES)
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help setup tools-sim tools-lint tools-synth test sim bench lint synth synth-cells regs accuracy clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 14

$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -m venv $(VENV) || { echo "qmac: '$(PYTHON) -m venv' failed; install it with: sudo apt-get install python3-venv" >&2; exit 1; }
	@echo "qmac: installing Python dependencies into $(VENV) (pinned in requirements.txt)"
	@$(VENV)/bin/pip install --quiet --upgrade pip
	@$(VENV)/bin/pip install --quiet -r requirements.txt
	@PYTHONWARNINGS=ignore $(VENV)/bin/pip install --quiet --no-deps -e .
	@touch $@

setup: $(STAMP) tools-sim ## create .venv and install Icarus Verilog if missing

tools-sim:
	@scripts/ensure-tools.sh iverilog:iverilog,vvp

tools-lint:
	@scripts/ensure-tools.sh verilator:verilator

tools-synth:
	@scripts/ensure-tools.sh yosys:yosys nextpnr-ice40:nextpnr-ice40

# pytest-xdist gives the parallelism; one BLAS thread per worker avoids oversubscription.
test: setup ## run the whole regression (SEED=n reproduces a run)
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 $(PY) -m pytest -n $(JOBS) $(if $(TEST),-k "$(TEST)")

sim: setup ## the main job: the demo network end to end (IMAGES=n, WAVES=1, TEST=name)
	@$(PY) -m tb.run $(if $(TEST),--test $(TEST)) $(if $(IMAGES),--images $(IMAGES)) $(if $(filter 1,$(WAVES)),--waves)

bench: setup ## benchmarks, each beside a baseline measured in the same run
	$(PY) -m bench

lint: $(STAMP) tools-lint ## verilator --lint-only -Wall over rtl/
	@scripts/lint.sh

synth: $(STAMP) tools-synth ## ECP5 + iCE40 place and route of the blocks and the AXI top -> docs/synthesis.md
	@$(PY) synth/fpga.py $(if $(TEST),--runs $(TEST))

synth-cells: $(STAMP) tools-synth ## Yosys generic / iCE40 cell counts of single RTL blocks
	@scripts/synth.sh

regs: $(STAMP) ## regenerate docs/registers.md, rtl/qmac_regs.vh, tb/qmac_regs.py from rtl/regs.yaml
	@$(PY) scripts/gen_regs.py

accuracy: $(STAMP) ## accuracy study -> docs/accuracy.md and plots
	$(PY) -m pymodel report --out docs

clean: ## remove build products (keeps .venv)
	rm -rf sim/build sim/waves sim/out .pytest_cache .hypothesis
	find . -name __pycache__ -prune -exec rm -rf {} +
