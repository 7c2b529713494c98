# The two commands a newcomer needs: `make demo` and `make test`. Each sets up what is missing
# on a fresh Debian machine first, then runs cargo.

CARGO ?= cargo
JOBS ?= 2
# wgpu (Vulkan on lavapipe, for the kernel tests) wants a runtime directory.
export XDG_RUNTIME_DIR ?= /tmp/tailor-xdg-runtime
$(shell mkdir -p $(XDG_RUNTIME_DIR) && chmod 700 $(XDG_RUNTIME_DIR))

.PHONY: setup test-setup demo test bench bench-compare bench-haystack fuzz lint

# Tools the build needs: the wasm target for plugins (DESIGN.md §1; rustup's automatic
# installs may be off, so add it explicitly), and LLVM 22 + Mesa's lavapipe for the CubeCL
# kernels (DESIGN.md §4; scripts/setup-kernels.sh). Model weights are fetched by the code itself
# on first use (`tailor models pull` does it ahead of time).
setup:
	@command -v cargo >/dev/null || { echo "cargo is missing: install Rust with rustup (https://rustup.rs)"; exit 1; }
	@rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
	@bash scripts/setup-kernels.sh

# Test-only tools: Mermaid's own parser (Node.js) checks `tailor graph --format mermaid`; a
# Python venv takes the official `openai` client, which the daemon's chat endpoint is tested with;
# headless Chromium opens `tailor eval pipeline --report`'s page.
test-setup: setup
	@python3 -c "import ensurepip, venv" >/dev/null 2>&1 && python3 -m pip --version >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq python3-venv python3-pip; }
	@command -v npm >/dev/null || { apt-get update -qq && apt-get install -y -qq nodejs npm; }
	@[ -d tests/mermaid/node_modules/mermaid ] || npm ci --prefix tests/mermaid --no-audit --no-fund --loglevel=error
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium; }

# The main job: ingest the sample users and run every example pipeline for each of them on the
# embedded defaults (SQLite in a temporary directory, MiniLM, SmolLM2; weights fetched on first use).
demo: setup
	@command -v python3 >/dev/null && python3 -m pip --version >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq python3-pip; }
	$(CARGO) run -j$(JOBS) -q --bin tailor -- demo

# Every test of the workspace, in the dev profile.
test: test-setup
	$(CARGO) fmt --all -- --check
	cd plugins && $(CARGO) fmt --all -- --check
	$(CARGO) test -j$(JOBS) --workspace
	cd plugins && $(CARGO) test -j$(JOBS) --workspace
	cd plugins && $(CARGO) test -j$(JOBS) -p tailor-pii --features runtime-regex

bench: setup
	$(CARGO) bench -j$(JOBS) --bench check
	$(CARGO) bench -j$(JOBS) --bench plugin_call

# Retrieval speed against sentence-transformers, numpy, faiss-cpu and bm25s, same run, same machine.
bench-compare: setup
	bash benches/compare/run.sh

# Per-request overhead against Haystack 2.x: the daemon bench's six-stage pipeline in process, same
# items, same messages, same machine.
bench-haystack: setup
	bash benches/haystack/run.sh

# Coverage-guided fuzzing of the grammar and checker (needs nightly and cargo-fuzz).
fuzz:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz
	$(CARGO) +nightly fuzz run check -- -max_total_time=$${FUZZ_SECONDS:-120}
	$(CARGO) +nightly fuzz run expression -- -max_total_time=$${FUZZ_SECONDS:-120}

lint: setup
	$(CARGO) clippy -j$(JOBS) --workspace --all-targets -- -D warnings
