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
STAMP := $(VENV)/.lossless-requirements.stamp
APT_PACKAGES := dataset-fashion-mnist chromium chromium-driver fonts-dejavu-core
NBVAL_FLAGS := --nbval --nbval-current-env --nbval-sanitize-with .ci/nbval_sanitize.cfg
export MPLBACKEND := Agg
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: help install apt test unit nbval book execute lab browser-test clean

help:
	@echo "make test          install everything, run unit tests and nbval over every chapter"
	@echo "make book          install everything, execute the chapters, write _build/html"
	@echo "make browser-test  serve _build/html locally and check every page in headless Chromium"
	@echo "make lab           open the chapters in JupyterLab"
	@echo "make execute NB=book/01_gaussian_mixture.ipynb   re-execute one chapter in place"

# System packages (Debian): Fashion-MNIST data, Chromium for the browser test, fonts.
apt:
	missing=""
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
	touch "$(STAMP)"

install: apt $(STAMP)

unit: install
	"$(PY)" -m pytest -q tests

nbval: install
	"$(PY)" -m pytest -q $(NBVAL_FLAGS) book

# The README's test command: unit tests, then every chapter notebook under nbval.
test: install
	"$(PY)" -m pytest -q tests
	"$(PY)" -m pytest -q $(NBVAL_FLAGS) -p no:cacheprovider book

# Executes the chapters (cached) and writes _build/html; any warning or cell error fails.
book: install
	"$(VENV)/bin/jupyter-book" build . -W -n --keep-going
	@echo "book written to $(CURDIR)/_build/html/index.html"

execute: install
	@[ -n "$(NB)" ] || { echo "usage: make execute NB=book/NN_name.ipynb" >&2; exit 2; }
	"$(VENV)/bin/jupyter" nbconvert --to notebook --execute --inplace \
	  --ExecutePreprocessor.timeout=600 "$(NB)"

lab: install
	"$(VENV)/bin/jupyter" lab book/

clean:
	rm -rf _build .pytest_cache
