# Two commands matter: `make demo` and `make test`. Both set up .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR := demo-data
DEMO_DB := $(DEMO_DIR)/index.sqlite

.PHONY: demo test lint typecheck pytest bench bench-convert clean

$(STAMP): pyproject.toml setup.py src/dicomsieve/scan/_native.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# The end-to-end browser tests drive Debian's chromium (never a downloaded browser).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

/usr/bin/chromium:
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium

demo: $(STAMP)
	rm -rf $(DEMO_DIR)
	$(BIN)/python -m dicomsieve.synthetic demo $(DEMO_DIR)/dicom
	$(BIN)/dicomsieve scan $(DEMO_DIR)/dicom --db $(DEMO_DB)
	$(BIN)/dicomsieve ls --db $(DEMO_DB)
	$(BIN)/dicomsieve examine --db $(DEMO_DB)
	$(BIN)/dicomsieve convert --db $(DEMO_DB) -o $(DEMO_DIR)/nifti
	@echo "Serving the example; open the URL below (Ctrl-C stops the server)."
	$(BIN)/dicomsieve serve --db $(DEMO_DB)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench tools
	$(BIN)/ruff format --check src tests bench tools

typecheck: $(STAMP)
	$(BIN)/mypy --strict src

pytest: $(STAMP) /usr/bin/chromium
	$(BIN)/python -m pytest

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python bench/scan.py

bench-convert: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python bench/convert.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) .mypy_cache .ruff_cache .pytest_cache
