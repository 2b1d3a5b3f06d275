# Two commands do everything on a fresh machine with Python 3.11:
#   make book   set up .venv, build the whole book (executing every chapter) into _build/html
#   make test   the same set-up, then unit tests, every notebook under nbval
#               (alone, outside the repository, lstmlib from a wheel, at
#               another seed base than the site), a strict site build and a
#               headless-browser check of the site
# Both are idempotent: a step whose inputs did not change is skipped.

PYTHON   ?= python3.11
VENV     := .venv
BIN      := $(VENV)/bin
TORCH    := torch==2.13.0
MATHJAX  := _extra/mathjax/tex-mml-chtml.js
# Where `make serve` listens (loopback only).
PORT     ?= 8000
# Seed bases (lstmlib.seeds): the site is built at SEED (LSTMLIB_SEED from
# the environment, else 0) and the notebooks run under nbval at NBVAL_SEED,
# another base, so that every check must hold for two random streams.
# `LSTMLIB_SEED=2000 make -B test` tries two more.
SEED       ?= $(if $(LSTMLIB_SEED),$(LSTMLIB_SEED),0)
NBVAL_SEED ?= $(shell echo $$(( $(SEED) + 1000 )))

# What the site is built from, and what the tests read besides.
# (the committed results the chapters read are in lstmlib/results/)
BOOK_SOURCES := $(shell find book lstmlib -type f -not -path '*/__pycache__/*' \
                  -not -path '*/.ipynb_checkpoints/*') _config.yml _toc.yml
TEST_SOURCES := $(BOOK_SOURCES) $(shell find tests colab -type f -not -path '*/__pycache__/*') \
                conftest.py pyproject.toml environment.yml
SITE         := _build/html/.built
TESTED       := _build/.tested

.PHONY: book test serve lab setup mathjax unit notebooks checks site browser clean \
        bench bench-compiled notebook-times test-compiled

book: $(SITE)
	@echo
	@echo "The book is at $(CURDIR)/_build/html/index.html"
	@echo "(make serve shows it at http://127.0.0.1:$(PORT))"

# The whole test suite, skipped when nothing it reads changed since it last
# passed (force a rerun with `make -B test`).
test: $(TESTED)

# The site build and the tests execute the chapters at two seed bases; they
# run side by side, one core each (each chapter uses one thread), then the
# browser checks the site.
$(TESTED): $(VENV)/.installed $(MATHJAX) $(BOOK_SOURCES) $(TEST_SOURCES)
	$(MAKE) -j2 site checks
	$(MAKE) browser
	touch $@

# The unit tests, then every chapter under nbval: one after the other.
checks: setup
	$(MAKE) -j1 unit notebooks

setup: $(VENV)/.installed

# torch is pinned here, in the same pip command as the project, so that the
# project's own range (pyproject.toml) is already satisfied and pip pulls no
# CUDA packages. Without an NVIDIA GPU, and without a local copy of the pinned
# wheel, torch's CPU-only index is added.
$(VENV)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "make: this project \
	needs $(PYTHON) (Python 3.11) to create $(VENV); it was not found on \
	PATH. Install it, or name another with make PYTHON=/path/to/python3.11" \
	>&2; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
	  || { echo "make: expected Python 3.11 for $(VENV), but $(PYTHON) is \
	$$($(PYTHON) -V 2>&1); name one with make PYTHON=/path/to/python3.11" \
	>&2; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@extra=""; \
	if ! command -v nvidia-smi >/dev/null 2>&1 && \
	   ! $(BIN)/pip install --dry-run --no-index --no-deps -q "$(TORCH)" >/dev/null 2>&1; then \
	  extra="--extra-index-url https://download.pytorch.org/whl/cpu"; \
	fi; \
	echo "$(BIN)/pip install $$extra \"$(TORCH)\" -e \".[book,test]\""; \
	$(BIN)/pip install -q $$extra "$(TORCH)" -e ".[book,test]"
	touch $@

# MathJax 3, pinned in package-lock.json, copied into a build-only folder so
# that equations render without a network connection.
mathjax: $(MATHJAX)

$(MATHJAX): package.json package-lock.json
	npm ci --silent --no-audit --no-fund
	rm -rf _extra/mathjax && mkdir -p _extra/mathjax
	cd node_modules/mathjax/es5 && cp -r tex-mml-chtml.js startup.js input output ui a11y adaptors ../../../_extra/mathjax/
	touch $@

# The site, built strictly and afresh: every chapter is executed (no cache,
# no incremental build, so a change in lstmlib reaches every page), and any
# cell error, warning or broken reference fails the build.
site: $(SITE)

$(SITE): $(VENV)/.installed $(MATHJAX) $(BOOK_SOURCES)
	rm -rf _build/html _build/.doctrees _build/jupyter_execute
	LSTMLIB_SEED=$(SEED) $(BIN)/jupyter-book build . --path-output . --all \
	  -W -n --keep-going
	touch $@

unit: setup
	$(BIN)/pytest tests -q -m "not compiled"
	$(BIN)/pytest --doctest-modules lstmlib -q      # the docstrings' examples

# Every chapter as Colab runs it: each alone in an empty folder outside the
# repository, lstmlib installed from a wheel of this checkout (tests/
# chapters_outside.py), under nbval at another seed base than the site.
notebooks: setup
	LSTMLIB_SEED=$(NBVAL_SEED) $(BIN)/python -m tests.chapters_outside

browser: $(SITE)
	$(BIN)/python -m tests.browser_check _build/html

# Jupyter in the venv, with the venv registered as a kernel named
# "deriving-the-lstm", opened on the chapters (http://127.0.0.1:$(PORT)).
lab: $(VENV)/.lab
	$(BIN)/jupyter lab --ip 127.0.0.1 --port $(PORT) --notebook-dir book \
	  $(if $(filter 0,$(shell id -u)),--allow-root)

$(VENV)/.lab: $(VENV)/.installed
	$(BIN)/pip install -q "jupyterlab>=4,<5"
	$(BIN)/python -m ipykernel install --user --name deriving-the-lstm \
	  --display-name "Deriving the LSTM (.venv)"
	touch $@

serve: $(SITE)
	$(BIN)/python -m http.server $(PORT) --bind 127.0.0.1 --directory _build/html

# Benchmarks (not tests; see benchmarks/README.md). `make bench` times
# lstmlib's recurrent layers against nn.LSTM, nn.GRU and nn.RNN and writes
# lstmlib/results/benchmarks/cpu.json and .md; `make notebook-times`
# executes every notebook and writes
# lstmlib/results/benchmarks/notebook_times.json, which the book's status
# page shows. The results live inside the package (package data), where the
# chapters read them with lstmlib.load_result.
bench: setup
	$(BIN)/python benchmarks/recurrent.py --plain --others \
	  --out lstmlib/results/benchmarks/cpu.json
	$(BIN)/python benchmarks/seeds.py \
	  --out lstmlib/results/benchmarks/seeds_cpu.json
	$(BIN)/python benchmarks/ensembles.py \
	  --out lstmlib/results/benchmarks/ensembles_cpu.json

# The test that compiles a C++ step (a C++ compiler and ninja; about 30 s).
test-compiled: setup
	$(BIN)/pytest tests -q -m compiled

bench-compiled: setup                    # needs a C++ compiler
	$(BIN)/python benchmarks/compiled_step.py \
	  --out lstmlib/results/benchmarks/compiled_step_cpu.json

notebook-times: setup
	$(BIN)/python benchmarks/notebook_times.py \
	  --out lstmlib/results/benchmarks/notebook_times.json

clean:
	rm -rf _build _extra node_modules
