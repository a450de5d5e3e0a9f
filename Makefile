# Two commands on a fresh machine: `make demo` (install + main job) and `make test` (install + tests).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
WEARPRUNE_DATA ?= $(abspath ../shared/data)
export WEARPRUNE_DATA

.PHONY: install demo test lint clean

$(BIN)/wearprune: pyproject.toml
	$(PY) -m venv $(VENV)
	# torch first, pinned: the CPU build; an unpinned resolve would pull a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(BIN)/wearprune

install: $(BIN)/wearprune

demo: install
	$(BIN)/wearprune demo

test: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/pytest -q

lint: install
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache
