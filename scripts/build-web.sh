#!/usr/bin/env bash
# Builds the web UI into gateway/web/dist/, which dispatch-gateway embeds.
# Installs the locked npm dependencies (npm ci) when they are missing or the
# lockfile changed, and rebuilds only when a source changed: a second run
# with nothing changed does nothing (and so does not make cargo rebuild the
# gateway). Text files are then compressed once (scripts/compress-web.mjs):
# the gateway embeds the .br and .gz copies and serves them by Accept-Encoding.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
web=gateway/web

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  apt_install nodejs npm
fi

install_stamp=$web/node_modules/.dispatch-installed
if [ ! -f "$install_stamp" ] || [ "$web/package-lock.json" -nt "$install_stamp" ] || [ "$web/package.json" -nt "$install_stamp" ]; then
  log "installing the web UI's npm dependencies (npm ci)"
  (cd "$web" && npm ci --no-audit --no-fund --loglevel=error)
  touch "$install_stamp"
fi

# Everything the bundle is made from, hashed.
inputs_hash=$( (cd "$web" && find src public index.html build.mjs package-lock.json tsconfig.json -type f -print0 \
  | sort -z | xargs -0 sha256sum; sha256sum ../../scripts/build-web.sh ../../scripts/compress-web.mjs) \
  | sha256sum | cut -d' ' -f1)
build_stamp=$web/node_modules/.dispatch-built
if [ -f "$web/dist/index.html" ] && compgen -G "$web/dist/assets/app-*.js" >/dev/null \
  && [ "$(cat "$build_stamp" 2>/dev/null)" = "$inputs_hash" ]; then
  log "web UI up to date"
  exit 0
fi
log "building the web UI"
(cd "$web" && node build.mjs)
# Brotli and gzip copies beside each text file, served by Accept-Encoding.
node scripts/compress-web.mjs "$web/dist"
echo "$inputs_hash" >"$build_stamp"
