# Two commands: `make demo` and `make test`. Both set up a local virtual environment first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA ?= .mera-data
DEMO_OUT ?= demo-output
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1

.PHONY: setup browser demo test lint bench clean

# torch is pinned and installed first: anything that pulls an unpinned torch gets a CUDA build.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

# The report's browser test drives Debian's chromium (Playwright cannot download browsers here).
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

demo: setup
	$(BIN)/mera-mm fixtures --out $(DATA)
	$(OFFLINE) MERA_DATA_DIR=$(abspath $(DATA)) $(BIN)/lm-eval --model mera-baseline \
		--model_args model=mera-baseline,seed=1234 \
		--include_path ./multimodal_tasks --tasks mera_multimodal \
		--log_samples --output_path $(DEMO_OUT)
	@echo "results and samples: $(DEMO_OUT)/mera-baseline/"
	$(OFFLINE) MERA_DATA_DIR=$(abspath $(DATA)) $(BIN)/mera-mm pack --outputs_dir $(DEMO_OUT) \
		--model_args model=mera-baseline,seed=1234 --dst_dir $(DEMO_OUT)/submission
	$(OFFLINE) MERA_DATA_DIR=$(abspath $(DATA)) $(BIN)/mera-mm report $(DEMO_OUT) -o $(DEMO_OUT)/report.html

test: setup browser
	$(OFFLINE) $(BIN)/python -m pytest -q -n auto

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: setup
	$(BIN)/python bench/bench_memory.py
	$(BIN)/python bench/bench_video.py
	$(BIN)/python bench/bench_api.py
	$(BIN)/python bench/bench_report.py
	$(BIN)/python bench/bench_resume.py

clean:
	rm -rf $(DATA) $(DEMO_OUT) .pytest_cache
