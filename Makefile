# nu_keras — `make report` trains and publishes; `make test` runs the test suite.
# Both create .venv and install what they need on a fresh machine.
# Pass settings through: make report SEED=3 EPOCHS=8 (also BATCH_SIZE, EXAMPLES, OUT, DATA, FORCE=1,
# BACKEND=jax for Keras's JAX backend, which installs the [jax] extra first; DATASET=fashion-mnist; your own
# model and data: MODEL=my.keras LAYER=NAME DATA=my.npz, PIXELS=raw).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
ARGS   := $(if $(SEED),--seed $(SEED)) $(if $(EPOCHS),--epochs $(EPOCHS)) \
          $(if $(BATCH_SIZE),--batch-size $(BATCH_SIZE)) $(if $(EXAMPLES),--examples $(EXAMPLES)) \
          $(if $(OUT),--out $(OUT)) $(if $(DATA),--data $(DATA)) $(if $(FORCE),--force) \
          $(if $(BACKEND),--backend $(BACKEND)) $(if $(DATASET),--dataset $(DATASET)) \
          $(if $(MODEL),--model $(MODEL)) $(if $(LAYER),--layer $(LAYER)) $(if $(PIXELS),--pixels $(PIXELS)) \
          $(if $(FIGURE_FORMAT),--figure-format $(FIGURE_FORMAT))

.PHONY: report publish sweep bench bench-convnet test test-fast serve lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# One stamp per install flavour: re-installs when pyproject.toml changes.
$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-jax: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[jax]"
	touch $@ $(VENV)/.installed-run

$(VENV)/.installed-dask: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dask]"
	touch $@ $(VENV)/.installed-run

# The tests run the model, activation, ablation and sweep parity tests on both backends, and the sweep
# on a local Dask cluster: they need both extras.
$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test,jax,dask]"
	touch $@ $(VENV)/.installed-run $(VENV)/.installed-jax $(VENV)/.installed-dask

report: $(VENV)/.installed-run $(if $(filter jax,$(BACKEND)),$(VENV)/.installed-jax)
	$(BIN)/nu-keras report $(ARGS)

# The built site to a branch of a git repository (GitHub Pages): make publish REPO=URL [BRANCH=gh-pages],
# or into a folder: make publish FOLDER=/var/www/report (README: Publishing the site).
publish: $(VENV)/.installed-run
	$(BIN)/nu-keras publish $(if $(REPO),--repo $(REPO)) $(if $(FOLDER),--folder $(FOLDER)) \
	  $(if $(BRANCH),--branch $(BRANCH))

# The full width sweep (10 seeds at widths 5, 10, 20, 50), then the site again with its Robustness page.
SEEDS  ?= 10
WIDTHS ?= 5,10,20,50
# SCHEDULER=tcp://HOST:8786 (a running Dask scheduler) or SCHEDULER=local:2 trains the seed blocks on Dask.
sweep: $(VENV)/.installed-run $(if $(filter jax,$(BACKEND)),$(VENV)/.installed-jax) \
       $(if $(SCHEDULER),$(VENV)/.installed-dask)
	$(BIN)/nu-keras sweep --seeds $(SEEDS) --widths $(WIDTHS) $(ARGS) $(if $(SCHEDULER),--scheduler $(SCHEDULER))
	$(BIN)/nu-keras render $(ARGS)
	$(BIN)/nu-keras build $(ARGS)

# Timing targets live here, not in tests: writes bench/results.json and prints a table.
# Times the working tree against a baseline revision (default: the one before the 10-seed default) in
# one run, alternating, and the working tree on both backends: BASELINE=REV to choose another revision.
bench: $(VENV)/.installed-jax
	$(BIN)/python -m nu_keras.bench $(if $(BASELINE),--baseline $(BASELINE))

# Keras's "Simple MNIST convnet" reported with --layer conv2d_1: its collect (read-out + ablation, and the conv
# extras apart) and whole report against the revision before the in-graph ablation (BASELINE=REV for another),
# beside the ablation's arithmetic estimate; REPEATS=N rounds (default 2). Writes bench/convnet.json.
bench-convnet: $(VENV)/.installed-jax
	$(BIN)/python -m nu_keras.bench --convnet $(if $(BASELINE),--baseline $(BASELINE)) \
	  $(if $(REPEATS),--repeats $(REPEATS))

# What the browser suite (tests/test_browser.py) needs, installed only when missing, so a second run
# costs a second: Debian's Chromium (apt-get, as root; never `playwright install`), axe-core from npm
# into the venv, Playwright (test extras) and LinkChecker into the venv; Node.js runs the Explore page's
# JavaScript in tests/test_explore.py.
AXE_JS := $(VENV)/node/node_modules/axe-core/axe.min.js
APT     = $(if $(filter 0,$(shell id -u)),,sudo) env DEBIAN_FRONTEND=noninteractive apt-get
.PHONY: browser-deps
browser-deps: $(VENV)/.installed-test
	@test -x /usr/bin/chromium || { $(APT) update && $(APT) install -y chromium; }
	@test -f $(AXE_JS) || command -v npm >/dev/null || { $(APT) update && $(APT) install -y npm; }
	@test -f $(AXE_JS) || npm install --prefix $(VENV)/node --no-audit --no-fund --silent axe-core@4
	@command -v node >/dev/null || { $(APT) update && $(APT) install -y nodejs; }

# Fashion-MNIST offline: Debian's dataset-fashion-mnist ships the original IDX files (about 31 MB).
.PHONY: data-deps
data-deps:
	@test -d /usr/share/datasets/fashion-mnist || { $(APT) update && $(APT) install -y dataset-fashion-mnist; }

# The suite on one pytest-xdist worker per core (WORKERS=0: all in this process): each worker runs whole files
# (module fixtures are built once), the longest first (tests/conftest.py), and the real MNIST report is
# built once for every worker (a session fixture behind a file lock).
WORKERS ?= auto
XDIST    = -n $(WORKERS) --dist loadfile --no-loadscope-reorder

test: $(VENV)/.installed-test browser-deps data-deps
	$(BIN)/python -m pytest -q $(XDIST)

test-fast: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q $(XDIST) -m "not e2e and not browser"

serve: $(VENV)/.installed-run
	$(BIN)/mkdocs serve --dev-addr 127.0.0.1:8000

lint: $(VENV)/.installed-test
	$(BIN)/ruff check nu_keras tests
	$(BIN)/ruff format --check nu_keras tests

clean:
	rm -rf artifacts docs/generated docs/.generated.* site .site.* site-screenshots .pytest_cache
