# scratchbird.cluster — developer entry points. Two commands matter:
#   make demo   set up everything, bring up the lab and bootstrap a cluster on it
#   make test   every quality gate (lint, sanity, units, integration, Molecule)
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
ROOT := $(CURDIR)
export PATH := $(ROOT)/.venv/bin:$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(ROOT)/.cache/collections
export ANSIBLE_CONFIG := $(ROOT)/ansible.cfg
COLLECTION := build/ansible_collections/scratchbird/cluster
PYTHON_VERSION := 3.11
LAB_LAYOUT ?= inventories/lab/layout.yml
MOLECULE_JOBS ?= 2

.PHONY: setup demo demo-down test lint sanity units integration molecule engine build collection-tree clean

setup: .cache/setup.stamp
.cache/setup.stamp: .ci/setup requirements.txt requirements-dev.txt lab/labctl
	bash .ci/setup

# The lab's hosts, its stand-ins (engine artifacts, GPS receiver, Tansu as the external
# Kafka), then the main job; it ends with the health summary and the report's path.
# With mitogen's linear strategy (requirements-dev.txt): a third faster here, see
# benchmarks/bootstrap_lab.py. MITOGEN=0 runs stock Ansible.
DEMO_INVENTORY = -i "$$(lab/labctl inventory-path --layout $(LAB_LAYOUT))" -i inventories/lab/cluster.yml
MITOGEN ?= 1
DEMO_ENV = $(if $(filter 1,$(MITOGEN)),ANSIBLE_STRATEGY=mitogen_linear ANSIBLE_HOST_KEY_CHECKING=False \
  ANSIBLE_STRATEGY_PLUGINS="$$(python -c 'import ansible_mitogen as m; import os.path as p; print(p.dirname(m.__file__))')/plugins/strategy")
demo: setup
	lab/labctl up --layout $(LAB_LAYOUT)
	$(DEMO_ENV) ansible-playbook $(DEMO_INVENTORY) lab/prepare.yml
	$(DEMO_ENV) ansible-playbook $(DEMO_INVENTORY) bootstrap-cluster.yml

demo-down:
	lab/labctl down --layout $(LAB_LAYOUT)

# The lab-bound suites (pytest and Molecule) mostly wait on their hosts: they run side by
# side, each on labs of its own names and subnets.
test: setup lint sanity units
	$(MAKE) --no-print-directory -j2 --output-sync=target integration molecule
	@echo "make test: all gates passed"

lint: setup
	ansible-lint --profile production
	antsibull-changelog lint

# ansible-test runs on the collection as it ships: the built tarball, unpacked under
# ansible_collections/<ns>/<name> (dev-only folders are left out by build_ignore).
collection-tree: build
	rm -rf $(COLLECTION) && mkdir -p $(COLLECTION)
	tar -xzf build/scratchbird-cluster-$$(sed -n 's/^version: //p' galaxy.yml).tar.gz -C $(COLLECTION)
	cd $(COLLECTION) && git init -q && echo /tests/output/ > .git/info/exclude && git add -A  # ansible-test lists files through git

sanity: setup collection-tree
	cd $(COLLECTION) && ansible-test sanity --venv --python $(PYTHON_VERSION) --color no

units: setup collection-tree
	cd $(COLLECTION) && ansible-test units --venv --python $(PYTHON_VERSION) --color no

# pytest: the lab and the stand-in engine (dev-only, lab/tests) and the collection's
# integration tests against real servers (tests/integration).
integration: setup
	pytest -q lab/tests $$(ls tests/integration/test_*.py 2>/dev/null)

# The longest scenarios start first, so the two job slots finish together.
MOLECULE_FIRST := cluster vault_consul engines clock_software
molecule: setup
	{ printf '%s\n' $(MOLECULE_FIRST); ls -d molecule/*/molecule.yml | cut -d/ -f2 | grep -vxF -e "$$(printf '%s\n' $(MOLECULE_FIRST))"; } \
	  | xargs -P $(MOLECULE_JOBS) -I{} \
	  sh -c 'molecule test -s {} > .cache/molecule-{}.log 2>&1 && echo "molecule {}: passed" || { tail -80 .cache/molecule-{}.log; echo "molecule {}: FAILED"; exit 1; }'

# The stand-in engine artifacts the roles install in the lab: two good versions (upgrade,
# rollback) and one that fails its health check.
ENGINE_DIR := .cache/engine
engine: setup
	python lab/engine/build.py --version 1.0.0 --out $(ENGINE_DIR)
	python lab/engine/build.py --version 1.1.0 --out $(ENGINE_DIR)
	python lab/engine/build.py --version 1.2.0 --fault unhealthy --out $(ENGINE_DIR)

build: setup
	ansible-galaxy collection build --force --output-path build/

clean:
	rm -rf build tests/output .pytest_cache
