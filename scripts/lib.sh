# Shared helpers for the project's scripts (sourced, not run).

log() { printf '\033[1m[dispatch]\033[0m %s\n' "$*" >&2; }

# apt_install PKG...: installs Debian packages that are missing.
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if [ -z "${DISPATCH_APT_UPDATED:-}" ]; then
    $sudo apt-get update -qq
    export DISPATCH_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
