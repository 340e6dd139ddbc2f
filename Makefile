# lossless: set-up, tests and the book, in two commands (`make test`, `make book`).
#
# The virtual environment lives OUTSIDE the repository (a venv under the repo root
# would be picked up by the Jupyter Book build); override with `make VENV=/path`.
SHELL := /bin/bash
.ONESHELL:
.SHELLFLAGS := -eu -o pipefail -c

VENV ?= $(HOME)/.venvs/lossless
PYTHON_BOOT ?= python3
PY := $(VENV)/bin/python
# One stamp per checkout: `make` in another clone re-installs `-e .` from that clone,
# so the venv never silently imports a different copy of the package.
STAMP := $(VENV)/.lossless-requirements-$(shell printf '%s' "$(CURDIR)" | md5sum | cut -c1-12).stamp
APT_PACKAGES := dataset-fashion-mnist chromium chromium-driver fonts-dejavu-core libgomp1
NBVAL_FLAGS := --nbval --nbval-current-env --nbval-sanitize-with .ci/nbval_sanitize.cfg
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: help install apt assets test unit unit-single-thread nbval book execute lab browser-test lab-test pdf clean

help:
	@echo "make test          install everything, run unit tests and nbval over every chapter"
	@echo "make book          install everything, execute the chapters, write _build/html"
	@echo "make browser-test  serve _build/html locally and check every page in headless Chromium"
	@echo "make pdf           the whole book as one PDF, _build/pdf/lossless.pdf, printed by Chromium and checked"
	@echo "make lab-test      open every chapter in JupyterLab (headless Chromium): no raw MyST; run those with widgets, move each"
	@echo "make lab           open the chapters in JupyterLab"
	@echo "make execute NB=book/01_gaussian_mixture.ipynb   re-execute one chapter in place"
	@echo "make assets        copy the offline JavaScript (MathJax, widget manager, vega) under _build/assets"

# System packages (Debian): Fashion-MNIST data, Chromium for the browser test, fonts.
apt:
	@missing=""
	for pkg in $(APT_PACKAGES); do
	  dpkg -s "$$pkg" >/dev/null 2>&1 || missing="$$missing $$pkg"
	done
	if [ -n "$$missing" ]; then
	  if [ "$$(id -u)" != 0 ]; then
	    echo "missing Debian packages:$$missing; run: sudo apt-get install -y$$missing" >&2; exit 1
	  fi
	  echo "installing Debian packages:$$missing"
	  apt-get update -qq
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null
	fi

$(STAMP): requirements.txt pyproject.toml
	[ -x "$(PY)" ] || $(PYTHON_BOOT) -m venv "$(VENV)"
	"$(PY)" -m pip install -q --upgrade pip
	"$(PY)" -m pip install -q -r requirements.txt
	rm -f "$(VENV)"/.lossless-requirements-*.stamp
	touch "$(STAMP)"

install: apt $(STAMP)

unit: install
	MPLBACKEND=Agg "$(PY)" -m pytest -q -p no:cacheprovider tests

# The unit tests again on one BLAS/OpenMP thread: another summation order than the
# default run's, so that an assertion that depends on it fails here (CI runs both).
SINGLE_THREAD := OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \
  VECLIB_MAXIMUM_THREADS=1 NUMEXPR_NUM_THREADS=1
unit-single-thread: install
	$(SINGLE_THREAD) MPLBACKEND=Agg "$(PY)" -m pytest -q -p no:cacheprovider tests

nbval: install
	"$(PY)" -m pytest -q $(NBVAL_FLAGS) -p no:cacheprovider book

# The README's test command: unit tests, then every chapter notebook under nbval.
test: install
	MPLBACKEND=Agg "$(PY)" -m pytest -q -p no:cacheprovider tests
	"$(PY)" -m pytest -q $(NBVAL_FLAGS) -p no:cacheprovider book

# Executes the chapters (cached) and writes _build/html; any warning or cell error fails.
book: install assets
	"$(VENV)/bin/jupyter-book" build . -W -n --keep-going
	@echo "book written to $(CURDIR)/_build/html/index.html"

# Offline assets: MathJax 3, require.js and the ipywidgets HTML manager (saved widget
# views), vega, vega-lite and vega-embed (the client-side explorers of lossless.explore;
# vega-lite 6.4.1 is the schema of Altair 6.3.0 in requirements.txt), pinned in
# .ci/assets/package-lock.json and installed from the npm registry with `npm ci`, plus
# .ci/assets/widgets-setup.js, are copied to _build/assets/_static/offline/;
# `html_extra_path` (_config.yml) puts them in _build/html/_static/offline/, so the pages
# load nothing from a CDN.
NPM_DIR := .ci/assets
NPM_STAMP := $(NPM_DIR)/node_modules/.lossless-npm.stamp
ASSETS_DIR := _build/assets/_static/offline

$(NPM_STAMP): $(NPM_DIR)/package.json $(NPM_DIR)/package-lock.json
	if ! command -v npm >/dev/null; then  # Debian's npm (with its nodejs)
	  if [ "$$(id -u)" != 0 ]; then echo "npm is needed for the book's offline assets: sudo apt-get install -y npm" >&2; exit 1; fi
	  apt-get update -qq
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null
	fi
	npm ci --prefix "$(NPM_DIR)" --ignore-scripts --no-audit --no-fund --loglevel=error
	touch "$(NPM_STAMP)"

assets: $(NPM_STAMP)
	modules="$(NPM_DIR)/node_modules"
	rm -rf "$(ASSETS_DIR)"
	mkdir -p "$(ASSETS_DIR)"/{mathjax,requirejs,html-manager,vega}
	cp -R "$$modules/mathjax/es5/." "$(ASSETS_DIR)/mathjax/"
	cp "$$modules/mathjax/LICENSE" "$(ASSETS_DIR)/mathjax/"
	cp "$$modules/requirejs/require.js" "$(ASSETS_DIR)/requirejs/"
	# embed-amd.js plus the Font Awesome files it loads relative to itself
	find "$$modules/@jupyter-widgets/html-manager/dist" -maxdepth 1 -type f \
	  \( -name embed-amd.js -o -name '*.woff2' -o -name '*.woff' -o -name '*.ttf' -o -name '*.eot' -o -name '*.svg' \) \
	  -exec cp {} "$(ASSETS_DIR)/html-manager/" \;
	for pkg in mathjax requirejs @jupyter-widgets/html-manager; do  # name, version, licence
	  cp "$$modules/$$pkg/package.json" "$(ASSETS_DIR)/$${pkg#@jupyter-widgets/}/package.json"
	done
	# the explorers' libraries (UMD bundles, loaded in this order by lossless.explore)
	for pkg in vega vega-lite vega-embed; do
	  cp "$$modules/$$pkg/build/$$pkg.min.js" "$(ASSETS_DIR)/vega/"
	  cp "$$modules/$$pkg/package.json" "$(ASSETS_DIR)/vega/$$pkg.package.json"
	  cp "$$modules/$$pkg/LICENSE" "$(ASSETS_DIR)/vega/$$pkg.LICENSE"
	done
	cp "$(NPM_DIR)/widgets-setup.js" "$(ASSETS_DIR)/"
	# Sphinx copies html_extra_path only when it writes a page: refresh an existing build too
	if [ -d _build/html/_static ]; then
	  rm -rf _build/html/_static/offline
	  cp -R "$(ASSETS_DIR)" _build/html/_static/offline
	fi
	echo "offline assets: $$(find "$(ASSETS_DIR)" -type f | wc -l) files in $(ASSETS_DIR)"

# Serves _build/html on 127.0.0.1 and checks every page in headless Chromium (Debian's);
# screenshots go to _build/screenshots/. Run after `make book`.
BROWSER_STAMP := $(VENV)/.lossless-browser-requirements.stamp

$(BROWSER_STAMP): requirements-browser.txt $(STAMP)
	"$(PY)" -m pip install -q -r requirements-browser.txt
	touch "$(BROWSER_STAMP)"

browser-test: install $(BROWSER_STAMP)
	@[ -f _build/html/index.html ] || { echo "no _build/html/index.html: run make book first" >&2; exit 2; }
	"$(PY)" .ci/browser_test.py --html _build/html --screenshots _build/screenshots

# Opens every chapter in JupyterLab (a temporary copy of book/: the notebooks are never
# modified) in headless Chromium and fails on MyST left raw in its rendered markdown
# (jupyterlab-myst renders it); runs the chapters with live ipywidgets, moves one control
# of each widget and checks that its output redraws without error; screenshots go to
# _build/lab-screenshots/. Only the markdown: make lab-test LAB_TEST_FLAGS=--markdown-only
# One chapter: make lab-test CHAPTERS=01_gaussian_mixture.ipynb
lab-test: install $(BROWSER_STAMP)
	"$(PY)" .ci/lab_test.py --book book --screenshots _build/lab-screenshots $(LAB_TEST_FLAGS) $(CHAPTERS)

# The PDF edition: the whole book as one page (Jupyter Book's singlehtml builder, same
# sources and configuration, make book's execution cache), printed to A4 by Debian's
# Chromium with .ci/pdf/print.css, then checked (every chapter of _toc.yml, math typeset,
# fonts embedded, no tofu, images, internal links, equation numbers, explorers' notes);
# a failed check exits non-zero. Independent of make book (either may run first).
pdf: install assets $(BROWSER_STAMP)
	"$(PY)" .ci/make_pdf.py --out _build/pdf/lossless.pdf

execute: install
	@[ -n "$(NB)" ] || { echo "usage: make execute NB=book/NN_name.ipynb" >&2; exit 2; }
	"$(VENV)/bin/jupyter" nbconvert --to notebook --execute --inplace \
	  --ExecutePreprocessor.timeout=600 "$(NB)"

lab: install
	"$(VENV)/bin/jupyter" lab book/

clean:
	rm -rf _build .pytest_cache
