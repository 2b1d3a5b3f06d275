# Two commands do everything on a fresh machine with Python 3.11:
#   make book   set up .venv, build the whole book (executing every chapter) into _build/html
#   make test   the same set-up, then unit tests, every notebook under nbval,
#               a strict site build and a headless-browser check of the site
# Both are idempotent: a step whose inputs did not change is skipped.

PYTHON   ?= python3.11
VENV     := .venv
BIN      := $(VENV)/bin
TORCH    := torch==2.13.0
MATHJAX  := _extra/mathjax/tex-mml-chtml.js
# Where `make serve` listens (loopback only).
PORT     ?= 8000

.PHONY: book test serve unit notebooks strict browser setup mathjax clean

book: setup mathjax
	$(BIN)/jupyter-book build . --path-output . --keep-going
	@echo
	@echo "The book is at $(CURDIR)/_build/html/index.html  (make serve: http://127.0.0.1:$(PORT))"

test: setup mathjax unit notebooks strict browser

setup: $(VENV)/.installed

# torch is pinned here, in the same pip command as the project, so that the
# project's own range (pyproject.toml) is already satisfied and pip pulls no
# CUDA packages. Without an NVIDIA GPU, and without a local copy of the pinned
# wheel, torch's CPU-only index is added.
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
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

unit: setup
	$(BIN)/pytest tests -q

notebooks: setup
	$(BIN)/pytest book -q

# Every page afresh (no execution cache, no incremental build): any cell
# error, warning or broken reference fails.
strict: setup mathjax
	rm -rf _build/html _build/.doctrees _build/jupyter_execute
	$(BIN)/jupyter-book build . --path-output . --all -W -n --keep-going

browser: setup
	$(BIN)/python -m tests.browser_check _build/html

serve:
	@test -f _build/html/index.html || { echo "No site yet: run 'make book' first"; exit 1; }
	$(BIN)/python -m http.server $(PORT) --bind 127.0.0.1 --directory _build/html

clean:
	rm -rf _build _extra node_modules
