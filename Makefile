# Two-command quick start: `make demo` and `make test`. Both create .venv at the repo root when missing.
PY          ?= python3
VENV        := .venv
VPY         := $(VENV)/bin/python
STAMP       := $(VENV)/.installed
# Every version the suite is tested with, torch and torchvision included (docker/Dockerfile uses it too).
CONSTRAINTS := constraints.txt
# Local wheels on these machines; a CUDA build elsewhere, e.g. TORCH="torch torchvision --index-url
# https://download.pytorch.org/whl/cu130". The versions come from $(CONSTRAINTS).
TORCH       ?= torch torchvision
# One pytest worker per core (pytest-xdist; tests/conftest.py gives each one intra-op thread). The slow stage
# keeps each group of tests that share a process-wide resource (the Ray instance) on one worker. The 20 slowest
# tests are listed: the suite must stay under 6 minutes on 2 cores.
PYTEST      := $(VPY) -m pytest -q --durations=20 -n auto --maxprocesses=4

.PHONY: venv demo test test-fast test-slow bytecode lint bench constraints clean-demo

venv: $(STAMP)

# pip byte-compiles what it installs (about 40 s more on 2 cores): without the .pyc files every process the
# suite starts (pytest workers, torchrun ranks, each Ray worker) compiles torch, ray and deepspeed from source
# again when PYTHONDONTWRITEBYTECODE is set, and in parallel on first import otherwise. pip is not made quiet:
# a first install takes minutes, and its lines (each package, download bars) are the progress.
PIP         := $(VPY) -m pip install --progress-bar on -c $(CONSTRAINTS)

$(STAMP): pyproject.toml $(CONSTRAINTS)
	@echo "==> [1/4] $(VENV): a virtual environment of $$($(PY) --version 2>&1) ($(PY))"
	test -x $(VPY) || $(PY) -m venv $(VENV)
	@echo "==> [2/4] pip"
	$(VPY) -m pip install --progress-bar on --upgrade pip
	@echo "==> [3/4] $(TORCH) at the versions of $(CONSTRAINTS): the largest download"
	$(PIP) $(TORCH)
	@echo "==> [4/4] vasot_dist (editable, with the dev tools) and its dependencies at the versions of $(CONSTRAINTS)"
	$(PIP) -e '.[dev]'
	touch $(STAMP)
	@echo "==> $(VENV) is ready; it is reused until pyproject.toml or $(CONSTRAINTS) change"

demo: $(STAMP)
	bash launchers/demo.sh

# Two stages, both part of `make test` (and so of CI): the unit and component tests first (quick feedback),
# then the multi-process and end-to-end runs marked `slow` (torchrun, DeepSpeed, Ray sweeps, resumes).
test: test-fast test-slow

test-fast: bytecode
	$(PYTEST) -m "not slow"

test-slow: bytecode
	$(PYTEST) -m slow --dist loadgroup

# The project's own .pyc (under a second), for the same reason as pip's.
bytecode: $(STAMP)
	$(VPY) -m compileall -q vasot_dist pipelines launchers tests

lint: $(STAMP)
	$(VENV)/bin/ruff check vasot_dist pipelines launchers tests benchmarks

bench: $(STAMP)
	$(VPY) benchmarks/bench_ot.py --quick
	$(VPY) benchmarks/bench_data.py --quick

# Rewrite $(CONSTRAINTS) from the working venv: what it has installed now, minus this project and the CUDA
# runtime packages each torch build pins for itself.
constraints: $(STAMP)
	{ sed -n '1,3p' $(CONSTRAINTS); $(VPY) -m pip freeze --exclude-editable \
	    | grep -viE '^(vasot|nvidia-|cuda-|triton==|#|-e )'; } > $(CONSTRAINTS).new
	mv $(CONSTRAINTS).new $(CONSTRAINTS)

clean-demo:
	rm -rf data/synthetic runs/demo
