# Two commands for a new user: `make demo` and `make test`. Each builds .venv from the committed
# lock (requirements.lock) on first use, with uv pinned below. `make test` also builds .venv-lowest
# from requirements-lowest.lock: every direct dependency at the lowest version pyproject.toml admits.
PYTHON ?= python3
UV_VERSION := 0.13.8
TOOLS := .uv
UV := $(TOOLS)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
LOWEST_VENV := .venv-lowest
LOWEST_PY := $(LOWEST_VENV)/bin/python
AIRFLOW_OLDEST := $(shell sed -n 's/^ *"apache-airflow>=\([0-9.]*\),.*/\1/p' pyproject.toml)
COMPILE := $(UV) pip compile pyproject.toml --extra test --python-version 3.11 \
	--python-platform x86_64-unknown-linux-gnu --generate-hashes --quiet

.PHONY: demo test docs bench lock clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv==$(UV_VERSION)

# a virtual environment $(1) holding exactly lock file $(2), and this checkout (editable)
define sync
	$(UV) venv --quiet --allow-existing --python $(PYTHON) $(1)
	$(UV) pip sync --quiet --python $(1)/bin/python $(2)
	$(UV) pip install --quiet --python $(1)/bin/python --no-deps --no-build-isolation --editable .
	touch $(1)/.synced
endef

$(VENV)/.synced: requirements.lock pyproject.toml | $(UV)
	$(call sync,$(VENV),requirements.lock)

$(LOWEST_VENV)/.synced: requirements-lowest.lock pyproject.toml | $(UV)
	$(call sync,$(LOWEST_VENV),requirements-lowest.lock)

demo: $(VENV)/.synced
	$(PY) -m demo

# Everything on the tested Airflow; the system tests also start PostgreSQL and Redis from Debian's
# packages (installed if missing). Then again with every direct dependency at its floor (Airflow
# at the oldest supported): the dag.test() part and the system tests on the local deployment.
test: $(VENV)/.synced $(LOWEST_VENV)/.synced docs
	scripts/install-system-services
	$(PY) -m pytest
	@echo "== again with every direct dependency at its floor (Airflow $(AIRFLOW_OLDEST)): dag.test() and the local deployment"
	ORDO_HOOKS_SYSTEM_DEPLOYMENTS=local $(LOWEST_PY) -m pytest --ignore tests/system/test_system_catches_what_dag_test_cannot.py

# The docs site, strictly: a warning (a broken link or cross-reference, a docstring that is not
# valid reST, a setting the reference cannot render) fails the build. `make test` builds it first.
docs: $(VENV)/.synced
	$(PY) -m sphinx -W --keep-going -n -q -b html docs docs/_build/html

bench: $(VENV)/.synced
	$(PY) -m bench

# Re-resolve both locks after changing dependencies in pyproject.toml.
lock: | $(UV)
	$(COMPILE) -o requirements.lock
	$(COMPILE) --resolution lowest-direct -o requirements-lowest.lock

clean:
	rm -rf $(VENV) $(LOWEST_VENV) .venv-oldest $(TOOLS) .demo docs/_build
