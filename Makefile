# nu_keras — `make report` trains and publishes; `make test` runs the test suite.
# Both create .venv and install what they need on a fresh machine.
# Pass settings through: make report SEED=3 EPOCHS=8 (also BATCH_SIZE, EXAMPLES, OUT, DATA, FORCE=1).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
ARGS   := $(if $(SEED),--seed $(SEED)) $(if $(EPOCHS),--epochs $(EPOCHS)) \
          $(if $(BATCH_SIZE),--batch-size $(BATCH_SIZE)) $(if $(EXAMPLES),--examples $(EXAMPLES)) \
          $(if $(OUT),--out $(OUT)) $(if $(DATA),--data $(DATA)) $(if $(FORCE),--force)

.PHONY: report sweep test test-fast serve lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# One stamp per install flavour: re-installs when pyproject.toml changes.
$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@ $(VENV)/.installed-run

report: $(VENV)/.installed-run
	$(BIN)/nu-keras report $(ARGS)

# The full width sweep (10 seeds at widths 5, 10, 20, 50), then the site again with its Robustness page.
SEEDS  ?= 10
WIDTHS ?= 5,10,20,50
sweep: $(VENV)/.installed-run
	$(BIN)/nu-keras sweep --seeds $(SEEDS) --widths $(WIDTHS) $(ARGS)
	$(BIN)/nu-keras render $(ARGS)
	$(BIN)/nu-keras build $(ARGS)

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q

test-fast: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q -m "not e2e"

serve: $(VENV)/.installed-run
	$(BIN)/mkdocs serve --dev-addr 127.0.0.1:8000

lint: $(VENV)/.installed-test
	$(BIN)/ruff check nu_keras tests
	$(BIN)/ruff format --check nu_keras tests

clean:
	rm -rf artifacts docs/generated site .site.* site-screenshots .pytest_cache
