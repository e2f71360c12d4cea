# Two commands set everything up on a fresh machine: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install system-deps bench-deps bench-smoke bench-quality clean-db

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# torch first, pinned: 2.13.0 is a CPU build on this machine's disk; anything else may pull GBs of CUDA.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# Browser tests drive Debian's Chromium; CJK fonts make Chinese readable in screenshots.
system-deps:
	@if [ ! -x /usr/bin/chromium ] || ! fc-list 2>/dev/null | grep -qi "noto.*cjk"; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; \
	  else echo "browser tests need: sudo apt-get install chromium fonts-noto-cjk"; fi; \
	fi

# The quality benchmark reads real text that nobody on the team wrote: Debian's Chinese and English man pages.
bench-deps:
	@if ! dpkg -s manpages-zh manpages manpages-dev >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq manpages-zh manpages manpages-dev >/dev/null; \
	  else echo "the quality benchmark needs: sudo apt-get install manpages-zh manpages manpages-dev"; exit 1; fi; \
	fi

# Full retrieval-quality benchmark (tens of minutes on 2 cores): reproduces the table in bench/RESULTS.md.
bench-quality: $(STAMP) bench-deps
	HF_HUB_OFFLINE=1 $(BIN)/python bench/quality.py $(ARGS)

# The benchmarks' smoke runs: they check that each path works end to end, not the numbers (CI runs them).
# quality.py runs one language here (both take 4 minutes on 2 cores; the English path is the same code).
bench-smoke: $(STAMP) bench-deps
	HF_HUB_OFFLINE=1 $(BIN)/python bench/train_throughput.py --smoke
	HF_HUB_OFFLINE=1 $(BIN)/python bench/encode_throughput.py --smoke
	HF_HUB_OFFLINE=1 $(BIN)/python bench/quality.py --smoke --lang zh
	HF_HUB_OFFLINE=1 $(BIN)/python bench/annotate_store.py --smoke
	HF_HUB_OFFLINE=1 $(BIN)/python bench/queue_strategies.py --smoke
	HF_HUB_OFFLINE=1 $(BIN)/python bench/query_count.py --smoke
	HF_HUB_OFFLINE=1 $(BIN)/python bench/recipe_serve.py --smoke
	HF_HUB_OFFLINE=1 $(BIN)/python bench/label_quality.py --smoke

run: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python studio.py

test: $(STAMP) system-deps bench-deps
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q
	$(MAKE) --no-print-directory bench-smoke

clean-db:
	rm -f annotations.db annotations.db-wal annotations.db-shm
