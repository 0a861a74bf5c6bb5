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
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy
	$(BIN)/pytest -q

# A long exploration of the engine model (tens of thousands of examples): how many ran, how long.
# NHD_MODEL_EXAMPLES overrides the count; the log stays in .venv/deep-check.log.
deep-check: $(STAMP)
	@start=$$(date +%s); \
	{ NHD_MODEL_PROFILE=deep $(BIN)/pytest -q -p no:cacheprovider --hypothesis-show-statistics \
		tests/test_engine_model.py; echo $$? > $(VENV)/deep-check.rc; } 2>&1 | tee $(VENV)/deep-check.log; \
	examples=$$(awk '/ passing, /{n += $$2 + $$4} END {print n + 0}' $(VENV)/deep-check.log); \
	echo "deep-check: $$examples examples in $$(( $$(date +%s) - start )) s"; \
	exit $$(cat $(VENV)/deep-check.rc)

bench: $(STAMP)
	$(BIN)/python benchmarks/engine.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
