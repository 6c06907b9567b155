#!/usr/bin/env bash
# Runs dispatch locally, without Docker: installs what is missing, builds the
# web UI and the release binaries, then starts dispatch-gateway, which starts
# and supervises its own dispatch-broker on a private Unix socket.
#
#   scripts/run.sh                       # http://127.0.0.1:3000, generated key
#   TERMINAL_KEY=... PORT=8080 scripts/run.sh
#
# Every variable of the README's configuration table applies.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

if ! command -v cargo >/dev/null; then
  log "cargo is required: install Rust from https://rustup.rs, then run this again"
  exit 1
fi
apt_install gcc libc6-dev
if [ -x scripts/build-web.sh ]; then
  scripts/build-web.sh
else
  log "scripts/build-web.sh not found: the gateway will serve a placeholder page"
fi
log "building dispatch-gateway and dispatch-broker (release)"
cargo build --release --locked -p dispatch-gateway -p dispatch-broker

if [ -z "${TERMINAL_KEY:-}" ]; then
  TERMINAL_KEY=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
  export TERMINAL_KEY
  key_note="generated for this run (set TERMINAL_KEY to choose your own)"
else
  key_note="from TERMINAL_KEY"
fi
host=${HOST:-127.0.0.1}
port=${PORT:-3000}
shown_host=$host
[ "$host" = 0.0.0.0 ] && shown_host=127.0.0.1
echo
echo "  dispatch:  http://$shown_host:$port"
echo "  key:       $TERMINAL_KEY   ($key_note)"
echo
exec target/release/dispatch-gateway
