# The two commands of the README: `make demo` and `make test`. Both build .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# `make demo SERVER_PORT=8201 DJANGO_PORT=8001 FLASK_PORT=5001` (or the same as env variables)
SERVER_PORT ?= 8200
DJANGO_PORT ?= 8000
FLASK_PORT ?= 5000

# The browser tests drive Debian's Chromium and its matching driver (no browser download).
CHROMIUM ?= /usr/bin/chromium
CHROMEDRIVER ?= /usr/bin/chromedriver
BROWSER_PACKAGES := chromium chromium-driver
export FLAGKIT_E2E_CHROMIUM = $(CHROMIUM)
export FLAGKIT_E2E_CHROMEDRIVER = $(CHROMEDRIVER)

.PHONY: demo test lint typecheck pytest pytest-django-shop e2e browser bench clean test-matrix test-oldest package-check

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,django,flask,e2e]"
	touch $(STAMP)

# Local FlagKit server (flags.json) + Django shop + Flask shop in the foreground; Ctrl-C stops all.
demo: $(STAMP)
	$(BIN)/python example_projects/run_demo.py \
		--server-port $(SERVER_PORT) --django-port $(DJANGO_PORT) --flask-port $(FLASK_PORT)

test: $(STAMP) browser lint typecheck pytest package-check test-oldest

# The oldest supported Django and Flask lines (.venv has the newest); make test-matrix runs all.
test-oldest: $(STAMP)
	$(BIN)/nox -s "django(version='4.2')" "flask(version='3.0')"

# Every supported Django and Flask line, each in its own venv under .nox/ (noxfile.py).
test-matrix: $(STAMP)
	$(BIN)/nox

# Build the sdist and wheel, twine-check them, import the wheel in a fresh venv.
package-check: $(STAMP)
	$(BIN)/python tools/check_dist.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# Everything but the Django shop (which needs its own settings module, hence its own process).
pytest: $(STAMP) browser pytest-django-shop
	$(BIN)/python -m pytest

pytest-django-shop: $(STAMP)
	cd example_projects/django_shop && ../../$(BIN)/python -m pytest

# The browser tests alone (make test runs them too).
e2e: $(STAMP) browser
	$(BIN)/python -m pytest tests/e2e

# Install Debian's chromium + chromium-driver when missing (as root, or with sudo).
browser:
	@if [ -x "$(CHROMIUM)" ] && [ -x "$(CHROMEDRIVER)" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null 2>&1; then SUDO=sudo; \
	else echo "The browser tests need $(BROWSER_PACKAGES); install them as root: apt-get install -y $(BROWSER_PACKAGES)" >&2; exit 1; fi; \
	echo "Installing $(BROWSER_PACKAGES) with apt-get (for the browser tests)..."; \
	mkdir -p .e2e; \
	if $$SUDO apt-get update -q >.e2e/apt.log 2>&1 && \
	   $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(BROWSER_PACKAGES) >>.e2e/apt.log 2>&1; then \
		if [ -x "$(CHROMIUM)" ] && [ -x "$(CHROMEDRIVER)" ]; then \
			echo "Installed: $$($(CHROMIUM) --version 2>/dev/null)"; \
		else \
			echo "apt-get installed $(BROWSER_PACKAGES), but $(CHROMIUM) or $(CHROMEDRIVER) is still missing; point CHROMIUM=... CHROMEDRIVER=... at them" >&2; \
			exit 1; \
		fi; \
	else \
		tail -n 20 .e2e/apt.log >&2; \
		echo "Could not install $(BROWSER_PACKAGES) (log: .e2e/apt.log). Install them yourself: sudo apt-get install -y $(BROWSER_PACKAGES)" >&2; \
		exit 1; \
	fi

# Benchmarks run in their own venv, so django-waffle (the Django baseline) never enters .venv.
BENCH_VENV := .venv-bench
$(BENCH_VENV)/.installed: pyproject.toml benchmarks/requirements-bench.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet -e ".[dev,django,flask]" -r benchmarks/requirements-bench.txt
	touch $@

bench: $(BENCH_VENV)/.installed
	for f in benchmarks/bench_*.py; do $(BENCH_VENV)/bin/python $$f || exit 1; done

clean:
	rm -rf $(VENV) $(BENCH_VENV) .nox build dist *.egg-info .e2e
