#!/usr/bin/env bash
# The container test: builds both images with the real Dockerfiles, brings
# the compose stack up under a compose project of its own and checks it end
# to end (scripts/test-docker.py), then tears everything down, also when a
# check fails.
#
# Installs Debian's docker.io and docker-compose when missing and starts
# dockerd when it is not running. Where no image registry is reachable, the
# base images are local stand-ins (scripts/docker-base-images.sh). Images
# and stand-ins are reused between runs when nothing changed.
#
#   scripts/test-docker.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

COMPOSE_FILE=compose/docker-compose.yml
WORK=$(mktemp -d)
PROJECT="dispatch-e2e-$$"
export DISPATCH_IMAGE_PREFIX=dispatch-e2e DISPATCH_IMAGE_TAG=latest
export COMPOSE_PROJECT_NAME=$PROJECT

ensure_engine() {
  apt_install docker.io docker-compose python3-venv
  if docker info >/dev/null 2>&1; then return 0; fi
  local logfile=/var/log/dispatch-dockerd.log
  log "starting dockerd (log: $logfile)"
  [ "$(id -u)" -eq 0 ] || { log "dockerd is not running and starting it needs root"; return 1; }
  setsid nohup dockerd >"$logfile" 2>&1 </dev/null &
  local deadline=$((SECONDS + 60))
  until docker info >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || { log "dockerd did not start:"; tail -20 "$logfile" >&2; return 1; }
    sleep 1
  done
}

# compose: Compose v2 when the docker CLI has it, else docker-compose 1.29.
choose_compose() {
  if docker compose version >/dev/null 2>&1; then
    COMPOSE=(docker compose)
  else
    COMPOSE=(docker-compose)
    log "Compose v2 (docker compose) is not installed (Debian bookworm does not package it): using $(docker-compose version --short 2>/dev/null || echo docker-compose)"
  fi
}

compose() { "${COMPOSE[@]}" -p "$PROJECT" -f "$COMPOSE_FILE" "$@"; }

teardown() {
  local rc=$?
  log "tearing down $PROJECT"
  if [ "$rc" -ne 0 ] && [ -n "${COMPOSE[*]:-}" ]; then
    compose logs --no-color --tail=60 >&2 2>/dev/null || true
  fi
  docker rm -f "$PROJECT-listener" >/dev/null 2>&1 || true
  [ -n "${COMPOSE[*]:-}" ] && compose down --volumes --remove-orphans --timeout 5 >/dev/null 2>&1 || true
  rm -rf "$WORK"
  exit "$rc"
}

wait_healthy() {  # CONTAINER DEADLINE_S
  local deadline=$((SECONDS + $2)) status
  while :; do
    status=$(docker inspect -f '{{.State.Health.Status}}' "$1" 2>/dev/null || echo missing)
    [ "$status" = healthy ] && return 0
    [ $SECONDS -lt $deadline ] || { log "$1 is $status after $2s"; return 1; }
    sleep 1
  done
}

image_size() {
  docker image inspect -f '{{.Size}}' "$DISPATCH_IMAGE_PREFIX-$1:$DISPATCH_IMAGE_TAG" | numfmt --to=iec
}

python_env() {
  local venv=target/docker-e2e-venv
  if ! "$venv/bin/python" -c 'import websockets' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet 'websockets>=14,<18'
  fi
  PYTHON=$venv/bin/python
}

main() {
  ensure_engine
  choose_compose
  trap teardown EXIT
  scripts/docker-base-images.sh
  python_env

  # The stack's secrets, made as the README says, in a directory of the test's own.
  export BROKER_ENV_FILE=$WORK/broker.env TERMINAL_KEY
  cp compose/make-broker-env.sh "$WORK/" && "$WORK/make-broker-env.sh" 2>/dev/null
  TERMINAL_KEY=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')

  log "a missing TERMINAL_KEY stops the stack before it starts"
  if env -u TERMINAL_KEY "${COMPOSE[@]}" -p "$PROJECT" -f "$COMPOSE_FILE" config >/dev/null 2>"$WORK/err"; then
    log "compose accepted a configuration without TERMINAL_KEY"; return 1
  fi
  grep -q TERMINAL_KEY "$WORK/err" || { cat "$WORK/err" >&2; return 1; }

  # Both Dockerfiles carry the same build stages, so that the workspace is
  # compiled once for the two images.
  shared_stages() { sed -n '/^FROM node:.* AS web$/,/cp target\/release/p' "$1"; }
  if ! diff <(shared_stages Dockerfile.gateway) <(shared_stages Dockerfile.broker) >&2; then
    log "the build stages of Dockerfile.gateway and Dockerfile.broker differ"; return 1
  fi

  local start=$SECONDS
  log "building the images with Dockerfile.broker and Dockerfile.gateway"
  compose build >"$WORK/build.log" 2>&1 || { tail -60 "$WORK/build.log" >&2; return 1; }
  log "images built in $((SECONDS - start))s: gateway $(image_size gateway), broker $(image_size broker)"

  # A free loopback port for the gateway.
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  export PORT
  start=$SECONDS
  compose up -d
  GATEWAY=$(compose ps -q gateway) BROKER=$(compose ps -q broker)
  wait_healthy "$BROKER" 120 && wait_healthy "$GATEWAY" 120
  log "stack healthy in $((SECONDS - start))s on 127.0.0.1:$PORT"

  # A listener of the test's own on the edge network, which the broker must
  # not reach.
  EDGE_NET=${PROJECT}_edge BROKER_IMAGE=$DISPATCH_IMAGE_PREFIX-broker:$DISPATCH_IMAGE_TAG
  LISTENER_PORT=8080
  docker run -d --name "$PROJECT-listener" --network "$EDGE_NET" --read-only --cap-drop ALL \
    --entrypoint perl "$BROKER_IMAGE" -MIO::Socket::INET -e \
    'my $s = IO::Socket::INET->new(LocalPort => 8080, Listen => 5, ReuseAddr => 1) or die "listen: $!";
     while (my $c = $s->accept) { print $c "hello\n"; close $c }' >/dev/null
  LISTENER_IP=$(docker inspect -f "{{ (index .NetworkSettings.Networks \"$EDGE_NET\").IPAddress }}" "$PROJECT-listener")
  export GATEWAY BROKER EDGE_NET BROKER_IMAGE LISTENER_IP LISTENER_PORT PROJECT

  # A host ~/.claude for compose/host-claude.yml: owned by another uid, mode 0700.
  FAKE_HOME=$WORK/home FAKE_UID=12345
  mkdir -p "$FAKE_HOME/.claude/projects/demo"
  echo '{"type":"user","message":"host-transcript"}' >"$FAKE_HOME/.claude/projects/demo/session.jsonl"
  chown -R "$FAKE_UID:$FAKE_UID" "$FAKE_HOME/.claude" && chmod 0700 "$FAKE_HOME/.claude"
  COMPOSE_CMD="${COMPOSE[*]}"
  export FAKE_HOME FAKE_UID COMPOSE_COMMAND=$COMPOSE_CMD

  "$PYTHON" scripts/test-docker.py
}

main "$@"
