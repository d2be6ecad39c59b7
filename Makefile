# The two commands a new user runs: `make demo` and `make test`.
# Both install what is missing on a fresh Debian machine (as root, or with sudo):
# Debian's mosquitto and influxdb packages, and a virtualenv with the project.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEMO_SECONDS ?= 90
PYTEST_ARGS ?=

.PHONY: test demo deps venv lint clean

deps:
	@if ! command -v mosquitto >/dev/null && [ ! -x /usr/sbin/mosquitto ] || \
	    ! command -v influxd >/dev/null || ! command -v mosquitto_pub >/dev/null || \
	    ! command -v influx >/dev/null || \
	    [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ] || ! command -v ss >/dev/null; then \
	  echo "installing Debian packages: mosquitto mosquitto-clients influxdb influxdb-client chromium chromium-driver iproute2"; \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends \
	    mosquitto mosquitto-clients influxdb influxdb-client chromium chromium-driver iproute2; \
	fi
	@# The regional hub's database: PostgreSQL with PostGIS (the tests start private clusters)
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
	    ! ls /usr/share/postgresql/*/extension/postgis.control >/dev/null 2>&1; then \
	  echo "installing Debian packages: postgresql postgresql-postgis"; \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends \
	    postgresql postgresql-postgis; \
	fi
	@# WeasyPrint (the report's --pdf) lays text out with Pango and needs a font
	@if ! /sbin/ldconfig -p | grep -q libpangoft2-1.0 || [ ! -d /usr/share/fonts/truetype/dejavu ]; then \
	  echo "installing Debian packages: libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core"; \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends \
	    libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core; \
	fi

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed

# Lint first: CI runs exactly this, so a ruff or mypy --strict finding is a red build.
# Two workers (pytest-xdist), each with its own private broker, influxd and PostgreSQL: the
# suite waits on real services far more than it computes. PYTEST_ARGS="-n 0" runs it in one.
test: deps venv lint
	$(PY) -m pytest -n 2 $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

demo: deps venv
	DEMO_SECONDS=$(DEMO_SECONDS) $(PY) -m gateway.demo

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
