#!/usr/bin/env sh
# Writes compose/broker.env: the BROKER_TOKEN that the gateway and the broker
# share (a random 256-bit hex string), readable only by its owner. Keeps an
# existing file unless called with --force.
#
#   compose/make-broker-env.sh [--force]
set -eu
file="$(dirname "$0")/broker.env"
if [ -e "$file" ] && [ "${1:-}" != "--force" ]; then
  echo "$file exists (use --force to make a new token)" >&2
  exit 0
fi
umask 077
token=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
printf 'BROKER_TOKEN=%s\n' "$token" > "$file"
echo "wrote $file" >&2
