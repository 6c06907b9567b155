#!/usr/bin/env bash
# Installs what building dispatch needs and builds the web UI and binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

command -v cargo >/dev/null || { log "cargo is required (https://rustup.rs)"; exit 1; }
rustup component add rustfmt clippy >/dev/null 2>&1 || true
command -v cargo-nextest >/dev/null || cargo install --locked cargo-nextest
scripts/build-web.sh
cargo build --workspace --all-targets --locked
