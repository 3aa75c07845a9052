# One entry point per job. Every target bootstraps .venv from the lock files when it is missing,
# so a fresh machine with only python3 needs nothing else.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
UV_VERSION := 0.13.9
VENV := .venv
PY := $(VENV)/bin/python
NR := $(PY) -m pipeline
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench

OUT ?= out
SAMPLE := sample_data
CONVENTION ?= conventions/demo-flers.yaml
HOUSEHOLDS ?= 2000
SEED ?= 20261122
NOISE ?= 1.0

.PHONY: help venv match sample evaluate test lint clean \
        bench-pseudonymise bench-linkage bench-scale bench-scale-splink bench-leakage-1m \
        bench-bloom bench-attack-bloom bench-kanon-separation

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

$(STAMP): requirements.lock pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(VENV)/bin/pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	$(VENV)/bin/uv pip install -q -p $(PY) --compile-bytecode -r requirements.lock
	$(VENV)/bin/uv pip install -q -p $(PY) --no-deps -e .
	@touch $@

$(BENCH_STAMP): requirements-bench.lock $(STAMP)
	$(VENV)/bin/uv pip install -q -p $(PY) -r requirements-bench.lock
	@touch $@

venv: $(STAMP) ## create .venv with the pinned dependencies

match: $(STAMP) ## run the whole chain on sample_data/ into $(OUT)/
	$(NR) run --dataset $(SAMPLE) --out $(OUT) --convention $(CONVENTION) --remplacer

sample: $(STAMP) ## regenerate sample_data/ raw extracts and ground truth (fixed seed)
	$(NR) synth --households $(HOUSEHOLDS) --seed $(SEED) --noise $(NOISE) --out $(SAMPLE) --remplacer

evaluate: $(STAMP) ## fresh dataset (HOUSEHOLDS, SEED, NOISE), whole chain, evaluation.json
	$(NR) evaluate --households $(HOUSEHOLDS) --seed $(SEED) --noise $(NOISE) --out $(OUT)/evaluate --remplacer

test: $(STAMP) ## the test suite (a few minutes at most)
	$(PY) -m pytest

lint: $(STAMP) ## ruff
	$(VENV)/bin/ruff check pipeline tests bench

bench-pseudonymise: $(STAMP) ## 1,000,000 person records pseudonymised, records/s
	$(PY) bench/pseudonymise.py

bench-leakage-1m: $(STAMP) ## leakage attacks on every row of a 1,000,000-record export
	$(PY) bench/pseudonymise.py --leakage-full

bench-linkage: $(BENCH_STAMP) ## linkage quality: FEBRL4, FEBRL3, pseudopeople, synthetic (realistic noise) vs Splink 5
	$(PY) bench/linkage.py

bench-bloom: $(BENCH_STAMP) ## residue Bloom filters: separation and encoding speed, then the residue floor on the linkage cases vs Splink
	$(PY) bench/bloom_separation.py
	$(PY) bench/bloom_residue.py

ENGINE ?= duckdb
bench-scale: $(STAMP) ## 1M x 1M exports built by the agency code (cached in out/cache/scale), link time and memory, then with the Bloom residue (SCALE_RESIDUE=0: without); SCALE_10M=1 adds 10M x 10M; ENGINE=spark adds Spark
	ENGINE=$(ENGINE) $(PY) bench/scale.py

bench-scale-splink: $(BENCH_STAMP) ## Splink 5 on the plaintext of the same 1M x 1M rows, alternately with ours (SCALE_ROUNDS=3), time ratio, both F1, misses by cause
	$(PY) bench/scale_splink.py

clean: ## remove run outputs (not the venv)
	rm -rf $(OUT) .pytest_cache

bench-attack-bloom: $(STAMP) ## the attacks on the residue's Bloom filters (control vs hardened): sample residue, 20k synthetic, FEBRL4
	$(PY) bench/attack_bloom.py

bench-kanon-separation: $(STAMP) ## k-anonymity of each party's view under the separated protocol (masked household sums, run with the agencies' key and checked against the engine) next to today's joined view, on the sample; SEPARATION_1M=1 adds a 1 M timing
	$(PY) bench/kanon_separation.py
