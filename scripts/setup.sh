#!/usr/bin/env bash
# Installs what building dispatch needs and builds the web UI and binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

command -v cargo >/dev/null || { log "cargo is required (https://rustup.rs)"; exit 1; }
rustup component add rustfmt clippy >/dev/null 2>&1 || true
command -v cargo-nextest >/dev/null || cargo install --locked cargo-nextest
# The real Claude Code CLI for end-to-end tests, kept in a cache outside the
# repository (tests look there when `claude` is not on PATH).
claude_cache="${DISPATCH_TEST_CACHE:-$HOME/.cache/dispatch-test}/claude"
if ! command -v claude >/dev/null && [ ! -x "$claude_cache/node_modules/.bin/claude" ]; then
  if command -v npm >/dev/null; then
    mkdir -p "$claude_cache"
    npm install --no-audit --no-fund --prefix "$claude_cache" @anthropic-ai/claude-code
  else
    log "npm not found: the end-to-end tests with the claude CLI need it"
  fi
fi
scripts/build-web.sh
cargo build --workspace --all-targets --locked
