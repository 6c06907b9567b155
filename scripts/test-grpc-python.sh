#!/usr/bin/env bash
# Cross-language gRPC test: a Python grpcio client that knows dispatch only
# through server reflection calls a real dispatch-broker (Sessions and
# Admin). Installs Python's venv support if missing and grpcio,
# grpcio-reflection and protobuf into a venv under target/ (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

venv=target/grpc-python-venv
if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
  apt_install python3-venv
fi
if [ ! -x "$venv/bin/python" ]; then
  log "creating a Python venv in $venv"
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check grpcio grpcio-reflection protobuf

cargo build -p dispatch-broker --locked
work=$(mktemp -d)
broker_pid=""
cleanup() {
  [ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null && wait "$broker_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

secret() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
export BROKER_TOKEN BROKER_ADMIN_TOKEN
BROKER_TOKEN=$(secret)
BROKER_ADMIN_TOKEN=$(secret)
mkdir -p "$work/home"
BROKER_LISTEN=127.0.0.1:0 PTY_ROOT="$work/sessions" HOME="$work/home" RUST_LOG=warn \
  target/debug/dispatch-broker >"$work/broker.out" 2>"$work/broker.err" &
broker_pid=$!

address=""
for _ in $(seq 300); do
  address=$(sed -n 's/^dispatch-broker listening on //p' "$work/broker.out")
  [ -n "$address" ] && break
  kill -0 "$broker_pid" 2>/dev/null || { cat "$work/broker.err" >&2; exit 1; }
  sleep 0.1
done
[ -n "$address" ] || { log "the broker did not start"; cat "$work/broker.err" >&2; exit 1; }
log "broker on $address"

"$venv/bin/python" scripts/grpc-admin-client.py "$address"
