#!/usr/bin/env bash
# Builds local stand-ins for the base images that Dockerfile.gateway and
# Dockerfile.broker start from, for machines that reach no image registry.
#
#   debian:bookworm-slim      an mmdebstrap (minbase) of Debian bookworm, from
#                             this machine's configured apt sources
#   rust:1.95-slim-bookworm   the same, plus gcc, libc6-dev, ca-certificates
#                             and this machine's Rust toolchain (no rustup)
#   node:20-bookworm-slim     the same, plus this machine's Node.js and npm
#
# The stand-ins trust the same extra certificate authorities as this machine
# (/usr/local/share/ca-certificates), as its own package clients do, so that
# builds inside them reach the package registries the way the machine does.
#
# A tag that already holds an image not made by this script (the real one,
# pulled from a registry) is left alone. A stand-in is rebuilt only when what
# it is made from changed (the toolchain or Node versions, the apt sources,
# the CAs, STAND_IN_FORMAT below), which a label on the image records.
#
#   scripts/docker-base-images.sh          # build what is missing or stale
#   FORCE=1 scripts/docker-base-images.sh  # rebuild every stand-in
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

RELEASE=bookworm
RUST_TAG=rust:1.95-slim-bookworm
NODE_TAG=node:20-bookworm-slim
SLIM_TAG=debian:$RELEASE-slim
LABEL=org.dispatch.stand-in
# Bump when the way the stand-ins are made changes.
STAND_IN_FORMAT=1

# The tags must be the ones the Dockerfiles use.
check_tags_match_dockerfiles() {
  local tag
  for tag in "$SLIM_TAG" "$RUST_TAG" "$NODE_TAG"; do
    grep -q "^FROM $tag\b" Dockerfile.gateway Dockerfile.broker \
      || { log "no Dockerfile starts from $tag: update $0"; exit 1; }
  done
}

host_toolchain_dir() {
  local rustc
  rustc=$(rustup which rustc 2>/dev/null || command -v rustc)
  dirname "$(dirname "$(readlink -f "$rustc")")"
}

apt_sources() {
  # The machine's configured Debian sources (deb822 and one-line files).
  local f
  for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -s "$f" ] && grep -qE '(^URIs:|^deb ).*debian' "$f" && echo "$f"
  done
  return 0
}

local_cas() { ls /usr/local/share/ca-certificates/*.crt 2>/dev/null || true; }

# fingerprint: what the stand-ins are made from.
fingerprint() {
  {
    echo "$STAND_IN_FORMAT $RELEASE $SLIM_TAG $RUST_TAG $NODE_TAG"
    rustc --version
    node --version
    npm --version
    for f in $(apt_sources); do cat "$f"; done
    cat $(local_cas) /dev/null
  } | sha256sum | cut -c1-16
}

is_current() {  # TAG FINGERPRINT: 0 when TAG needs no (re)build
  local have
  docker image inspect "$1" >/dev/null 2>&1 || return 1
  have=$(docker image inspect -f "{{ index .Config.Labels \"$LABEL\" }}" "$1" 2>/dev/null || true)
  if [ -z "$have" ] || [ "$have" = "<no value>" ]; then
    log "$1: using the existing image (not a stand-in)"
    return 0
  fi
  [ -z "${FORCE:-}" ] && [ "$have" = "$2" ]
}

# bootstrap TAG FINGERPRINT [ENV...] -- [MMDEBSTRAP OPTIONS...]:
# debootstraps Debian into a tarball and imports it under TAG.
bootstrap() {
  local tag=$1 fp=$2; shift 2
  local changes=(--change "LABEL $LABEL=$fp" --change 'CMD ["bash"]')
  while [ "$1" != -- ]; do changes+=(--change "ENV $1"); shift; done
  shift
  local cas=() ca
  for ca in $(local_cas); do cas+=("$ca"); done
  if [ ${#cas[@]} -gt 0 ]; then
    # The machine's extra CAs: picked up by update-ca-certificates wherever
    # ca-certificates is installed, and given to Node.js.
    changes+=(--change "ENV NODE_EXTRA_CA_CERTS=/etc/ssl/machine-local-cas.pem")
    set -- "$@" \
      --customize-hook="mkdir -p \"\$1/usr/local/share/ca-certificates\" && cp ${cas[*]} \"\$1/usr/local/share/ca-certificates/\"" \
      --customize-hook="mkdir -p \"\$1/etc/ssl\" && cat ${cas[*]} > \"\$1/etc/ssl/machine-local-cas.pem\"" \
      --customize-hook="if [ -x \"\$1/usr/sbin/update-ca-certificates\" ]; then chroot \"\$1\" update-ca-certificates >/dev/null 2>&1; fi"
  fi
  local sources=() f
  for f in $(apt_sources); do sources+=("$f"); done
  [ ${#sources[@]} -gt 0 ] || { log "no Debian apt source configured on this machine"; exit 1; }
  local tar
  tar=$(mktemp --suffix=.tar)
  log "stand-in $tag: mmdebstrap of Debian $RELEASE from this machine's apt sources${cas:+, trusting its ${#cas[@]} extra CAs}"
  mmdebstrap --variant=minbase --quiet \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    "$@" "$RELEASE" "$tar" "${sources[@]}"
  docker import "${changes[@]}" "$tar" "$tag" >/dev/null
  rm -f "$tar"
  log "stand-in $tag: built ($(docker image inspect -f '{{.Size}}' "$tag" | numfmt --to=iec))"
}

build_slim() {
  is_current "$SLIM_TAG" "$1" && return 0
  bootstrap "$SLIM_TAG" "$1" --
}

build_rust() {
  is_current "$RUST_TAG" "$1" && return 0
  local toolchain version
  toolchain=$(host_toolchain_dir)
  version=$(rustc --version | awk '{print $2}')
  log "stand-in $RUST_TAG: this machine's Rust toolchain $version from $toolchain"
  # The toolchain goes where the official image keeps it; cargo and rustc are
  # called directly (the stand-in has no rustup).
  local dest=/usr/local/rustup/toolchains/$version-x86_64-unknown-linux-gnu
  bootstrap "$RUST_TAG" "$1" \
    RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    RUST_VERSION="$version" -- \
    --include=ca-certificates,gcc,libc6-dev \
    --customize-hook="mkdir -p \"\$1$dest\" \"\$1/usr/local/cargo/bin\"" \
    --customize-hook="tar -C '$toolchain' --exclude=./share/doc -cf - . | tar -C \"\$1$dest\" -xf -" \
    --customize-hook="for b in cargo rustc rustdoc; do ln -s $dest/bin/\$b \"\$1/usr/local/cargo/bin/\$b\"; done"
}

build_node() {
  is_current "$NODE_TAG" "$1" && return 0
  local node npm_dir version
  node=$(readlink -f "$(command -v node)")
  npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
  version=$(node --version)
  log "stand-in $NODE_TAG: this machine's Node.js $version ($node) and npm ($npm_dir)"
  bootstrap "$NODE_TAG" "$1" NODE_VERSION="${version#v}" -- \
    --customize-hook="install -D -m 0755 '$node' \"\$1/usr/local/bin/node\"" \
    --customize-hook="mkdir -p \"\$1/usr/local/lib/node_modules\" && cp -a '$npm_dir' \"\$1/usr/local/lib/node_modules/npm\"" \
    --customize-hook="ln -s ../lib/node_modules/npm/bin/npm-cli.js \"\$1/usr/local/bin/npm\" && ln -s ../lib/node_modules/npm/bin/npx-cli.js \"\$1/usr/local/bin/npx\""
}

main() {
  command -v docker >/dev/null || { log "docker is required"; exit 1; }
  check_tags_match_dockerfiles
  local fp
  fp=$(fingerprint)
  if is_current "$SLIM_TAG" "$fp" && is_current "$RUST_TAG" "$fp" && is_current "$NODE_TAG" "$fp"; then
    local tag stand_ins=()
    for tag in "$SLIM_TAG" "$RUST_TAG" "$NODE_TAG"; do
      [ "$(docker image inspect -f "{{ index .Config.Labels \"$LABEL\" }}" "$tag")" = "$fp" ] && stand_ins+=("$tag")
    done
    local note=""
    [ ${#stand_ins[@]} -eq 0 ] || note=" (local stand-ins made from this machine's packages and toolchains, no registry used: ${stand_ins[*]})"
    log "base images ready: $SLIM_TAG $RUST_TAG $NODE_TAG$note"
    return 0
  fi
  apt_install mmdebstrap
  log "no image registry is used: building local stand-ins for the base images"
  build_slim "$fp"
  build_rust "$fp"
  build_node "$fp"
}

main "$@"
