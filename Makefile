# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean deep-check

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,postgres,server]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m nhd_bridge.demo

test: $(STAMP)
	$(BIN)/ruff check nhd_bridge tests benchmarks
	$(BIN)/pytest -q

# A long exploration of the engine model (tens of thousands of examples): how many ran, how long.
deep-check: $(STAMP)
	@start=$$(date +%s); \
	NHD_MODEL_PROFILE=deep $(BIN)/pytest -q -p no:cacheprovider --hypothesis-show-statistics \
		tests/test_engine_model.py; status=$$?; \
	echo "deep-check: $$(( $$(date +%s) - start )) s wall clock (examples: see the statistics above)"; \
	exit $$status

bench: $(STAMP)
	$(BIN)/python benchmarks/engine.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
