# ferroscore — the one front door. `make help` lists the targets.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export VIRTUAL_ENV := $(abspath $(VENV))
export PATH := $(VIRTUAL_ENV)/bin:$(PATH)

RUST_SOURCES := $(shell find rust -name '*.rs' -o -name Cargo.toml) Cargo.toml $(wildcard Cargo.lock)
BUILT := $(VENV)/.built-release
#: What serving needs, and no more: the service and the embedded PostgreSQL (make serve).
SERVING := $(VENV)/.built-serving

.DEFAULT_GOAL := help
.PHONY: help install build-dev build-prod lint docs docs-serve test test-rust test-python serve serve-prod system-packages demo-model bench bench-locust bench-kernel bench-parse bench-engines bench-explain bench-ingest bench-offline bench-hooks bench-auth bench-ab bench-core bench-quick clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip 'maturin>=1.9,<2'

$(BUILT): $(PY) $(RUST_SOURCES) pyproject.toml
	maturin develop --release --extras dev,embedded,bench,offline
	@touch $@ $(SERVING)

$(SERVING): $(PY) $(RUST_SOURCES) pyproject.toml
	maturin develop --release --extras embedded
	@touch $@

install: $(BUILT) ## create .venv, install the dependencies, build the extension (release)

build-dev: $(PY) ## build the extension in debug mode, for quick Rust iterations
	maturin develop --extras dev,embedded,bench,offline
	@rm -f $(BUILT) $(SERVING)

build-prod: $(BUILT) ## build the extension in release mode (fat LTO)

lint: $(BUILT) ## ruff, mypy, stubtest on _core.pyi, cargo fmt --check, clippy -D warnings, hadolint, kubernetes-validate, compose schema, the docs site (strict)
	ruff check python tests scripts bench examples
	ruff format --check python tests scripts bench examples
	mypy
	for d in examples/hooks examples/card-fraud examples/credit; do mypy --strict $$d || exit 1; done
	$(PY) -m mypy.stubtest ferroscore._core
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	hadolint Dockerfile deploy/nginx/Dockerfile
	kubernetes-validate --kubernetes-version $(KUBERNETES_VERSION) --strict --quiet deploy/k8s/*.yaml
	check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml
	$(MAKE) docs

#: Material's notice about its successor is not a problem of ours.
export NO_MKDOCS_2_WARNING := 1

docs: $(BUILT) ## the docs site into site/: MkDocs + Material, strict (a broken link or a missing page fails), nothing from a CDN
	mkdocs build --strict

docs-serve: $(BUILT) ## preview the docs site on http://127.0.0.1:8002, rebuilt on each change
	mkdocs serve --strict -a 127.0.0.1:8002

test-rust: ## Rust unit tests of the core
	cargo test --workspace --locked

test-python: $(BUILT) ## pytest: the extension's API, the database, the real server end to end
	@test -x /usr/sbin/nginx -a -x /usr/sbin/pgbouncer || $(MAKE) system-packages
	$(PY) -m pytest

test: lint test-rust test-python bench-quick ## everything CI runs

serve: $(SERVING) ## install what serving needs, then serve on 127.0.0.1:8000 with the embedded PostgreSQL (or DATABASE_URL)
	@echo "the CLI: $(VENV)/bin/ferroscore (or: source $(VENV)/bin/activate, then ferroscore --help)"
	$(VENV)/bin/ferroscore serve

serve-prod: $(SERVING) ## nginx (deploy/nginx) on 127.0.0.1:8000 in front of the supervised service on :8001
	@test -x /usr/sbin/nginx || $(MAKE) system-packages
	$(PY) scripts/serve_prod.py

system-packages: ## install Debian's nginx and pgbouncer (as root: apt-get), which serve-prod and tests run
	@if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq nginx-light pgbouncer; \
	else echo "missing: sudo apt-get install nginx-light pgbouncer" >&2; exit 1; fi

SCENARIO ?= single
#: The Kubernetes version the manifests in deploy/k8s are validated against.
KUBERNETES_VERSION ?= 1.33.0

bench: $(BUILT) ## HTTP peak comparison vs FastAPI, Litestar, Robyn (wrk): bench/results/latest.md + .png; sustained batch load on the decision log: bench/results/sustained.md + .png; PostgreSQL's cost per logged row: bench/results/ingest.md
	cd bench && ../$(PY) peak.py
	cd bench && ../$(PY) sustained.py
	cd bench && ../$(PY) ingest.py

bench-ingest: $(BUILT) ## what PostgreSQL spends per decision row it ingests, by row format and index: bench/results/ingest.md
	cd bench && ../$(PY) ingest.py

bench-locust: $(BUILT) ## Locust scenario SCENARIO=single|batch|mixed (BENCH_RATE=n: fixed rate): CSV + HTML in bench/results/
	cd bench && ../$(PY) locust_run.py --scenario $(SCENARIO)

bench-kernel: $(BUILT) ## scoring kernels vs xgboost, one thread: bench/results/kernel.md
	$(PY) bench/kernel.py

bench-parse: $(BUILT) ## parse + validate vs orjson+msgspec and Pydantic v2: bench/results/parse.md
	$(PY) bench/parsing.py

bench-explain: $(BUILT) ## reason codes (TreeSHAP) vs xgboost pred_contribs, LightGBM, shap: bench/results/explain.md
	maturin develop --release --extras dev,embedded,bench,offline,explain
	$(PY) bench/explain.py

bench-offline: $(BUILT) ## offline scoring: CLI, Dask, Ray, Spark vs LightGBM's predict: bench/results/offline.md
	$(PY) bench/offline.py

bench-hooks: $(BUILT) ## what hooks cost a scoring request, in process: bench/results/hooks.md
	$(PY) bench/hooks.py

bench-auth: $(BUILT) ## what authentication and rate limits cost a request, in process: bench/results/auth.md
	$(PY) bench/auth.py

bench-ab: $(BUILT) ## A/B of the HTTP path: BEFORE=<other checkout's venv python> (e.g. a git worktree's .venv/bin/python)
	cd bench && ../$(PY) ab.py before=$(BEFORE) after=$(abspath $(PY)) --rounds 5

bench-engines: $(BUILT) ## tree engines side by side (onnxruntime, tl2cgen, lleaves, ...): bench/results/engines.md
	maturin develop --release --extras dev,embedded,bench,offline,engines
	$(PY) bench/engines.py

bench-quick: $(BUILT) ## smoke-run every Python benchmark (reports come out; no speed is asserted)
	$(PY) bench/kernel.py --quick > /dev/null
	$(PY) bench/parsing.py --quick > /dev/null
	$(PY) bench/offline.py --quick > /dev/null
	$(PY) bench/hooks.py --quick > /dev/null
	$(PY) bench/auth.py --quick > /dev/null
	cd bench && ../$(PY) peak.py --quick > /dev/null
	cd bench && ../$(PY) sustained.py --quick > /dev/null
	cd bench && ../$(PY) ingest.py --quick > /dev/null
	@test -s bench/results/kernel.md && test -s bench/results/parse.md && test -s bench/results/offline.md && test -s bench/results/hooks.md && test -s bench/results/auth.md
	@grep -q '^| ferroscore |' bench/results/latest.md && test -s bench/results/latest.png
	@grep -q 'Every acknowledged row reached PostgreSQL' bench/results/sustained.md && test -s bench/results/sustained.png
	@grep -q 'into the migrated `decisions`' bench/results/ingest.md

bench-core: ## criterion benches of the Rust core alone (parse, score, whole endpoint)
	cargo bench -p ferroscore-core --bench request

demo-model: $(BUILT) ## retrain the bundled demo model and its schema
	$(PY) scripts/train_demo_model.py

clean: ## remove build outputs and the virtualenv (keeps the local database)
	cargo clean
	rm -rf $(VENV) python/ferroscore/*.so
