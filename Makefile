# dbpulse: the two commands a new machine needs are `make demo` and `make test`;
# both install what they need first (scripts/setup.sh).
PG_DSN ?= postgresql://postgres@127.0.0.1:5432/postgres
LISTEN ?= 127.0.0.1:19630
PYTEST_ARGS ?=
# test files run in 3 worker processes (pytest-xdist), each file whole in one worker with its own throwaway servers:
# most of the suite waits on servers and polls, so 3 workers on 2 cores take a third of the serial time
PYTEST_WORKERS ?= 3
PYTHON ?= python3
# `make install`: where the virtualenv and the command go (your home: no root needed)
DBPULSE_HOME ?= $(HOME)/.local/share/dbpulse
BINDIR ?= $(HOME)/.local/bin

.PHONY: setup install run demo test lint unit bench clean

setup:
	bash scripts/setup.sh

## a light install for users: dbpulse and only what `dbpulse run` needs, in a virtualenv under your home, no root
## and no system packages (`pipx install .` does the same); then: dbpulse run --postgres postgresql://...
install:
	$(PYTHON) -m venv "$(DBPULSE_HOME)/venv"
	"$(DBPULSE_HOME)/venv/bin/python" -m pip install -q --disable-pip-version-check .
	mkdir -p "$(BINDIR)"
	ln -sf "$(DBPULSE_HOME)/venv/bin/dbpulse" "$(BINDIR)/dbpulse"
	@echo "install: $(BINDIR)/dbpulse ($$("$(BINDIR)/dbpulse" --version)); put $(BINDIR) on your PATH if it is not"

## run the service against the PostgreSQL on localhost (override PG_DSN=...)
run: setup
	.venv/bin/dbpulse run --postgres "$(PG_DSN)" --listen "$(LISTEN)"

## the whole job in a minute: throwaway PostgreSQL + Redis + demo app + load, watched by dbpulse (Ctrl-C stops it)
demo: setup
	.venv/bin/python -m demo

## lint, type-check and run the whole test suite against throwaway servers
test: setup lint
	@# the tests marked `alone` (they assert that nothing was late under their own load) run after the others, by
	@# themselves; both runs always run, and either failing fails the target (5: a selection left one run empty)
	.venv/bin/python -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile -m "not alone" $(PYTEST_ARGS); \
	shared=$$?; .venv/bin/python -m pytest -q -m alone $(PYTEST_ARGS); alone=$$?; \
	for rc in $$shared $$alone; do [ $$rc -eq 0 ] || [ $$rc -eq 5 ] || exit 1; done

## ruff, mypy (strict) and the layer contract (import-linter; see docs/design.md)
lint: setup
	.venv/bin/ruff check .
	.venv/bin/mypy
	.venv/bin/lint-imports

## every benchmark, side by side with the peers (about 45 minutes; results in bench/results/, docs/benchmarks.md)
bench: setup
	.venv/bin/python -m bench.pg_scrape
	.venv/bin/python -m bench.pg_dbtime
	.venv/bin/python -m bench.redis_keys
	.venv/bin/python -m bench.memory
	.venv/bin/python -m bench.memory --no-advisor
	.venv/bin/python -m bench.advisor_large
	.venv/bin/python bench/advisor_bench.py
	.venv/bin/python -m bench.advisor_tpch
	.venv/bin/python -m bench.ui_render
	.venv/bin/python -m bench.light_install
	.venv/bin/python -m bench.wait_sampler

clean:
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache .hypothesis
