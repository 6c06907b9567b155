#!/usr/bin/env bash
# Runs every test of dispatch on a fresh machine: installs what is missing,
# builds the web UI and the workspace, then runs lint, the Rust test suites,
# the browser tests, the cross-language gRPC test and the container test.
#
#   scripts/test.sh            # everything
#   STAGES="rust web" scripts/test.sh   # a subset (names below)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

# A test run builds everything once: incremental caches would only add
# gigabytes to the target folder.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
# What a full run uses on disk (target/ and Docker's images and build cache).
NEEDED_GB=20
free_gb=$(df -Pk . | awk 'NR == 2 { print int($4 / 1048576) }')
if [ "$free_gb" -lt "$NEEDED_GB" ]; then
  log "warning: ${free_gb} GB free here; a full run may need about ${NEEDED_GB} GB"
fi

ALL_STAGES="setup lint rust web grpc tunnel docker"
STAGES=${STAGES:-$ALL_STAGES}

stage_setup()  { scripts/setup.sh; }
stage_lint()   {
  # Chained: `set -e` does not apply inside a function called by `if`.
  scripts/check-docs.sh &&
    cargo fmt --all -- --check &&
    cargo clippy --workspace --all-targets --locked -- -D warnings
}
stage_rust()   { cargo nextest run --workspace --locked --no-fail-fast -E 'not binary_id(dispatch-gateway::tunnel)'; }
stage_web()    { scripts/test-web.sh; }
stage_grpc()   { scripts/test-grpc-python.sh; }
stage_tunnel() { scripts/test-tunnel.sh; }
stage_docker() { scripts/test-docker.sh; }

passed=0 failed=0 failed_names=()
for stage in $STAGES; do
  log "stage: $stage"
  start=$SECONDS
  if "stage_$stage"; then
    passed=$((passed + 1)); log "stage $stage passed in $((SECONDS - start))s"
  else
    failed=$((failed + 1)); failed_names+=("$stage"); log "stage $stage FAILED after $((SECONDS - start))s"
    # Later stages depend on setup and the build.
    if [ "$stage" = setup ]; then break; fi
  fi
done

echo
[ "$failed" -eq 0 ] || echo "failed stages: ${failed_names[*]}"
echo "stages: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
