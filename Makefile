# Two commands for a new user: `make demo` and `make test`. Each builds .venv from the committed
# lock (requirements.lock) on first use, with uv pinned below.
PYTHON ?= python3
UV_VERSION := 0.13.8
TOOLS := .uv
UV := $(TOOLS)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
SYNCED := $(VENV)/.synced

.PHONY: demo test bench lock clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv==$(UV_VERSION)

$(SYNCED): requirements.lock pyproject.toml | $(UV)
	$(UV) venv --quiet --allow-existing --python $(PYTHON) $(VENV)
	$(UV) pip sync --quiet --python $(PY) requirements.lock
	$(UV) pip install --quiet --python $(PY) --no-deps --no-build-isolation --editable .
	touch $@

demo: $(SYNCED)
	$(PY) -m demo

# the system tests also start PostgreSQL and Redis from Debian's packages (installed if missing)
test: $(SYNCED)
	scripts/install-system-services
	$(PY) -m pytest

bench: $(SYNCED)
	$(PY) -m bench

# Re-resolve the lock after changing dependencies in pyproject.toml.
lock: | $(UV)
	$(UV) pip compile pyproject.toml --extra test --python-version 3.11 \
		--python-platform x86_64-unknown-linux-gnu --generate-hashes --quiet -o requirements.lock

clean:
	rm -rf $(VENV) $(TOOLS) .demo
