# Two-command quick start: `make demo` and `make test`. Both create .venv at the repo root when missing.
PY      ?= python3
VENV    := .venv
VPY     := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
# Local wheels on these machines; CUDA builds elsewhere. pyproject.toml admits both.
TORCH   ?= torch==2.14.1 torchvision==0.29.1

.PHONY: venv demo test lint bench clean-demo

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(VPY) || $(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q $(TORCH)
	$(VPY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	bash launchers/demo.sh

test: $(STAMP)
	$(VPY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check vasot_dist pipelines launchers tests benchmarks

bench: $(STAMP)
	$(VPY) benchmarks/bench_ot.py --quick
	$(VPY) benchmarks/bench_data.py --quick

clean-demo:
	rm -rf data/synthetic runs/demo
