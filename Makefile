# cnt-deploy: every entry point an operator or CI needs.
# `make help` lists them. Each target sets up what it needs (the toolchain in .venv/,
# the test host images) so it works from a fresh clone.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

# Molecule scenarios, in two lanes that run side by side (lanes separated by `|`, each
# lane in order). Most of a scenario's time is spent waiting (boots, apt, health gates,
# rolling drains), so two lanes keep CI within its budget on two cores. One lane:
#   make molecule LANES="config docker stack bootstrap fleet"
LANES ?= stack bootstrap docker | config fleet
# One platform of a scenario only (the GitHub workflow's Debian 12 / 13 jobs), e.g.
#   make molecule LANES=docker PLATFORM=docker-debian13
PLATFORM ?=
SCENARIOS := $(subst |,,$(LANES))
# Test host images the scenarios boot (see tests/images/).
TEST_IMAGES := debian12 debian13 app-base

# The stamp's name carries the hash of the pins, so a changed pin re-runs the install
# and an unchanged one costs nothing.
REQ_FILES := requirements.txt requirements.yml examples/backend/requirements.in
REQ_HASH := $(shell cat $(REQ_FILES) | sha256sum | cut -c1-12)
SETUP_STAMP := $(VENV)/.setup-$(REQ_HASH)

.PHONY: help setup lint lint-yaml lint-ansible lint-python lint-ci unit images wheels lock molecule test clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

setup: $(SETUP_STAMP) ## Install the pinned toolchain into .venv/ (PyPI only)

$(SETUP_STAMP): $(REQ_FILES)
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	rm -f $(VENV)/.setup-*
	touch $@

# Each part of `make lint` is a target of its own: .pre-commit-config.yaml runs these very
# targets, so a commit is checked as CI checks it.
lint: lint-yaml lint-ansible lint-python lint-ci ## yamllint, ansible-lint (production profile), ruff, CI files

lint-yaml: setup ## yamllint --strict
	yamllint --strict .

lint-ansible: setup ## ansible-lint, production profile
	ansible-lint

# Python scripts without a .py suffix (installed as commands) are named here.
PY_SCRIPTS := roles/cnt_pull/files/cnt-scale-in
lint-python: setup ## ruff check and ruff format --check
	ruff check . $(PY_SCRIPTS)
	ruff format --check . $(PY_SCRIPTS)

lint-ci: setup ## The GitHub workflow against its schema (bundled, offline); the pre-commit configuration
	check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	pre-commit validate-config .pre-commit-config.yaml

# PYTEST_ARGS narrows it (make test: -m "not disk" beside the lanes, -m disk after them).
PYTEST_ARGS ?=
unit: setup ## pytest: unit tests (plugins/, filters, docs), playbooks against emulators (tests/playbooks), integration on a TLS Redis
	pytest $(PYTEST_ARGS) tests/unit tests/playbooks tests/integration

images: ## Build the test host and app base images (cached; rebuilt when their recipe changes)
	@for image in $(TEST_IMAGES); do tests/images/build-host-image.sh $$image; done

# The instance toolchain and the application images install from these hash-locked
# files (pip --require-hashes). Re-lock after changing a requirements.in; the wheels and
# images follow on their next build.
LOCK_DIRS := bootstrap examples/backend examples/voice_agent
lock: setup ## Re-pin requirements.txt (with hashes) from requirements.in: instance toolchain, app images
	@for dir in $(LOCK_DIRS); do \
	  echo "locking $$dir/requirements.txt"; \
	  (cd $$dir && CUSTOM_COMPILE_COMMAND="make lock" pip-compile --quiet --generate-hashes --allow-unsafe \
	    --strip-extras --no-emit-index-url --no-emit-find-links --output-file requirements.txt requirements.in); \
	done

# Offline image builds install the applications' pinned wheels from here, for the
# app base image's Python (Debian 12's 3.11.2: the patch level decides some markers);
# the Molecule bootstrap scenario's instances install the toolchain from bootstrap/wheels.
WHEEL_DIRS := examples/backend examples/voice_agent bootstrap
WHEEL_PYTHON := 3.11.2
wheels: setup ## Download the applications' wheels for offline image builds
	@for app in $(WHEEL_DIRS); do \
	  stamp=$$app/wheels/.stamp-$$( (cat $$app/requirements.txt; echo $(WHEEL_PYTHON)) | sha256sum | cut -c1-12); \
	  [ -f $$stamp ] && continue; \
	  rm -f $$app/wheels/*.whl $$app/wheels/.stamp-*; \
	  pip download --quiet --disable-pip-version-check --only-binary=:all: \
	    --python-version $(WHEEL_PYTHON) --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 \
	    -d $$app/wheels -r $$app/requirements.txt; \
	  touch $$stamp; \
	done

molecule: setup images wheels ## Every Molecule scenario (two lanes side by side; logs in reports/molecule/)
	@mkdir -p reports/molecule; pids=(); names=(); \
	IFS='|' read -ra lanes <<< "$(LANES)"; \
	for lane in "$${lanes[@]}"; do \
	  name=$$(echo $$lane | tr ' ' '-'); \
	  echo "=== lane $$name: molecule test -s $$(echo $$lane | sed 's/ / then /g') (log: reports/molecule/$$name.log)"; \
	  ( for scenario in $$lane; do \
	      echo "=== molecule test -s $$scenario"; \
	      molecule test -s $$scenario $(if $(PLATFORM),--platform-name $(PLATFORM)) || { echo "molecule scenario $$scenario FAILED"; exit 1; }; \
	    done ) > reports/molecule/$$name.log 2>&1 & \
	  pids+=($$!); names+=($$name); \
	done; \
	failed=0; failures=(); \
	for i in "$${!pids[@]}"; do \
	  if wait $${pids[$$i]}; then status=passed; else status=FAILED; failed=1; fi; \
	  echo "=== lane $${names[$$i]} $$status; its log:"; cat reports/molecule/$${names[$$i]}.log; \
	  [ $$status = passed ] || failures+=(reports/molecule/$${names[$$i]}.log); \
	done; \
	for log in "$${failures[@]}"; do \
	  echo "=== what failed in $$log (pytest's summary; the whole log is above)"; \
	  grep -a -A40 "short test summary info" $$log | cut -c1-400 | head -60; \
	  echo "=== the first assertion lines (pytest's E lines) in $$log"; \
	  grep -a -E '(^|│.{0,8}) E  ' $$log | cut -c1-300 | head -40; \
	done; \
	exit $$failed

# lint and unit run beside the Molecule lanes (their log printed after the lanes'):
# the scenarios spend most of their time waiting, and CI's budget is wall-clock time.
# The tests that measure free disk (marker disk) run after the lanes, alone.
test: setup images wheels ## Every check: lint and unit tests beside every Molecule scenario
	@mkdir -p reports; \
	( $(MAKE) --no-print-directory lint unit PYTEST_ARGS='-m "not disk"' > reports/lint-unit.log 2>&1 ) & checks=$$!; \
	molecule=0; $(MAKE) --no-print-directory molecule || molecule=1; \
	if wait $$checks; then checks=0; echo "=== lint and unit passed; their log:"; \
	else checks=1; echo "=== lint or unit FAILED; their log:"; fi; \
	cat reports/lint-unit.log; \
	echo "=== the tests that measure free disk, alone"; \
	disk=0; $(MAKE) --no-print-directory unit PYTEST_ARGS='-m disk' || disk=1; \
	[ $$checks = 0 ] && [ $$molecule = 0 ] && [ $$disk = 0 ]

clean: ## Remove the toolchain and Molecule's leftovers
	-for scenario in $(SCENARIOS); do molecule destroy -s $$scenario; done
	rm -rf $(VENV) .pytest_cache .ruff_cache

.PHONY: docs
docs: setup ## Rewrite the tables in docs/ that mirror code (the inventory contract, from cnt_host's argument specs)
	python tools/docs.py

.PHONY: validate
INVENTORY ?= inventories/local
validate: setup ## Validate an inventory without contacting its hosts: make validate INVENTORY=... [RENDER_DIR=...]
	ansible-playbook playbooks/validate.yml -i $(INVENTORY) $(if $(RENDER_DIR),-e render_dir=$(abspath $(RENDER_DIR)))

.PHONY: build status logs
build: setup ## Build a version's images once, push them to the registry, record their digests: make build VERSION=... [FORCE=1]
	@test -n "$(VERSION)" || { echo "VERSION is required: make build VERSION=v1.2.3 INVENTORY=..."; exit 2; }
	ansible-playbook playbooks/build.yml -i $(INVENTORY) -e "$$(python3 -c 'import json, os; print(json.dumps({ \
	  "cnt_registry_build_versions": [os.environ["VERSION"]], "cnt_registry_build_force": os.environ.get("FORCE", "") == "1"}))')"

status: setup ## The fleet at a glance, every mismatch flagged, non-zero when any (a cron check): make status INVENTORY=...
	ansible-playbook playbooks/status.yml -i $(INVENTORY)

# SERVICE, SINCE, GREP and LINES reach the playbook as one JSON extra var (a GREP may
# hold spaces and quotes).
logs: setup ## One service's logs from every host, in time order: make logs SERVICE=backend SINCE=10m [GREP=...] [LINES=200]
	ansible-playbook playbooks/logs.yml -i $(INVENTORY) -e "$$(python3 -c 'import json, os; print(json.dumps({ \
	  "cnt_logs_service": os.environ.get("SERVICE", ""), "cnt_logs_since": os.environ.get("SINCE", "10m"), \
	  "cnt_logs_grep": os.environ.get("GREP", ""), "cnt_logs_lines": int(os.environ.get("LINES", "200"))}))')"

.PHONY: demo demo-down bench
# make bench also times the no-op on a fleet of this many application hosts (2 = not).
BENCH_HOSTS ?= 4
demo: setup images wheels ## Run the stack on a local fleet (2 hosts, Redis TLS+AUTH, HAProxy), deploy, verify
	@echo "NOTE: the demo runs the LiveKit TEST DOUBLE (no registry serves livekit/livekit-server here):"
	@echo "      LiveKit's multi-node check is reported as not checked. CNT_REAL_LIVEKIT=1 uses the real image."
	ansible-playbook -i inventories/local demo/up.yml
	ansible-playbook -i inventories/local playbooks/deploy.yml
	@echo "Backend through HAProxy: http://127.0.0.1:8080/health   Report: reports/verify.json   Remove: make demo-down"

demo-down: setup ## Remove everything make demo created
	ansible-playbook -i inventories/local demo/down.yml

bench: setup images wheels ## Measure on the demo fleet: no-op and change deploys, a 4-host no-op, rolling under load, Socket.IO, bootstrap (reports/bench.json)
	@echo "NOTE: the demo fleet runs the LiveKit TEST DOUBLE; numbers are for these 2-core machines."
	CNT_DEMO_VERSIONS=demo-1,demo-2 ansible-playbook -i inventories/local demo/up.yml
	ansible-playbook -i inventories/local playbooks/deploy.yml -e cnt_app_version=demo-1
	python bench/bench.py --hosts $(BENCH_HOSTS) $(BENCH_ARGS)
