# dropout-book. `make book` builds the site from the committed results; `make test` runs
# every test. Both create .venv on first use. See README.md and book/rerun.md.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
PAPER ?= hinton2012
PROFILE ?= cpu

.PHONY: install book test reproduce bench clean

install: $(INSTALLED)

$(INSTALLED): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e .
	touch $@

# Executes every chapter at its defaults, which read the committed cpu results.
# REPLIB_NO_TRAIN turns a missing or stale result into an error instead of a training run;
# --all: every page is rebuilt from the current code, never reused from an earlier build;
# -W -n --keep-going: any Sphinx warning (a failed cell, output on stderr) fails the build.
book: $(INSTALLED)
	REPLIB_NO_TRAIN=1 $(BIN)/jupyter-book build . --all --warningiserror --nitpick --keep-going

test: $(INSTALLED)
	$(BIN)/python -m pytest

reproduce: $(INSTALLED)
	$(BIN)/python -m replib reproduce $(PAPER) --profile $(PROFILE)

bench: $(INSTALLED)
	cd benchmarks && ../$(BIN)/python bench_dropout.py && ../$(BIN)/python bench_train_loop.py && ../$(BIN)/python bench_dropconnect.py \
		&& ../$(BIN)/python bench_depth_dropout.py \
		&& ../$(BIN)/python bench_ensemble.py && ../$(BIN)/python bench_drop_path.py && ../$(BIN)/python bench_fast_cifar.py \
		&& ../$(BIN)/python bench_isa.py && ../$(BIN)/python bench_regression.py

clean:
	rm -rf _build
