#!/usr/bin/env bash
# Tests the web UI: type-checks and runs the unit tests (protocol, acks,
# reconnection), then the end-to-end tests in Debian's headless Chromium
# against a real dispatch-gateway with its broker child. Screenshots go to
# artifacts/web/.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
web=gateway/web

scripts/build-web.sh

log "web UI: type check and unit tests"
(cd "$web" && npx --no-install tsc --noEmit -p . && npm test --silent)

apt_install chromium
log "building dispatch-gateway and dispatch-broker"
cargo build --locked -p dispatch-gateway -p dispatch-broker

log "web UI: end-to-end tests in Chromium"
mkdir -p artifacts/web
(cd "$web" && npm run e2e --silent)
