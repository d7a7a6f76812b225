# Every target installs what it needs first: uv (via pip when missing), then the locked workspace.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
export PATH := $(HOME)/.local/bin:$(PATH)

# Locally a stale lock is refreshed; in CI .ci/run has checked and synced it already, so install exactly that.
SYNC_FLAGS := $(if $(CI),--frozen,)
# make test TIERS="not kafka and not postgres" selects tiers by marker; PYTEST_ARGS adds anything else.
TIERS ?=
PYTEST_ARGS ?=
MYPY_TARGETS := contracts $(wildcard libs/*) $(wildcard services/*) infra
# make bench BENCH=bus runs one benchmark; without it, all of them.
BENCH ?=
BENCHES := $(if $(BENCH),bench/$(BENCH).py,$(wildcard bench/*.py))

.PHONY: help uv sync run test lint check contracts bench kafka kafka-stop postgres postgres-stop up down

help:
	@echo "make run       the whole platform in one process on http://127.0.0.1:8000"
	@echo "make test      the whole test suite (TIERS='not kafka' to select; CITYBLOCKS_REQUIRE_INFRA=1 forbids skips)"
	@echo "make lint      ruff, mypy, import contracts, contract schema drift and compatibility"
	@echo "make check     lint, then test (what CI runs)"
	@echo "make contracts regenerate contracts/schemas and contracts/asyncapi.yaml from the event classes"
	@echo "make bench     every bench/*.py (BENCH=bus for one), JSON results into bench/results/"
	@echo "make kafka | postgres | up | down    the real infrastructure and the distributed run"

uv:
	@command -v uv >/dev/null 2>&1 || python3 -m pip install --user --quiet uv \
		|| python3 -m pip install --user --quiet --break-system-packages uv
	@command -v uv >/dev/null 2>&1 || { echo "uv could not be installed" >&2; exit 1; }

sync: uv
	uv sync --all-packages $(SYNC_FLAGS)

run: sync
	uv run cityblocks run

test: sync
	uv run pytest $(if $(TIERS),-m "$(TIERS)",) $(PYTEST_ARGS)

lint: sync
	@# Every check runs, so one pass reports all problems; the target fails if any check did.
	@# One mypy run per project: test folders of different projects share module names such as conftest.
	@status=0; \
	run() { echo "+ $$*"; "$$@" || { status=1; echo "FAILED: $$*" >&2; }; }; \
	run uv run ruff check .; \
	run uv run ruff format --check .; \
	for target in $(MYPY_TARGETS) conftest.py; do run uv run mypy "$$target"; done; \
	run uv run lint-imports; \
	if uv run python -c 'import contracts.tools' 2>/dev/null; then run uv run python -m contracts.tools check; \
	else echo "contracts.tools not present yet: schema check skipped"; fi; \
	exit $$status

check: lint test

contracts: sync
	uv run python -m contracts.tools generate

bench: sync
	mkdir -p bench/results
	for script in $(BENCHES); do \
		name=$$(basename "$$script" .py); \
		echo "bench $$name -> bench/results/$$name.json"; \
		uv run --group bench python "$$script" | tee "bench/results/$$name.json"; \
	done

kafka: sync
	uv run cityblocks kafka start

kafka-stop: sync
	uv run cityblocks kafka stop

postgres: sync
	uv run cityblocks postgres start

postgres-stop: sync
	uv run cityblocks postgres stop

up: sync
	uv run cityblocks up

down: sync
	uv run cityblocks down
