# shellcheck shell=bash
# Host packages the harness needs: installs what is missing (as root, through apt) or names it.

# Installs the Debian packages in "$@" that are not installed yet; dies naming them when it can't.
ensure_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    die "host setup: missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})"
  fi
  say "host setup: installing ${missing[*]}"
  apt-get update -qq || die "host setup: apt-get update failed; missing packages: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
    die "host setup: could not install ${missing[*]} (apt-get install failed)"
}

# Installs everything a board run of architecture $1 uses on the host.
ensure_host_tools() {
  local packages=(debootstrap e2fsprogs "$QEMU_PACKAGE" coreutils tar gzip)
  if [ "$1" = aarch64 ] && [ "$(uname -m)" != aarch64 ]; then
    # debootstrap's second stage runs the arm64 root's programs under qemu-user.
    packages+=(qemu-user-static binfmt-support)
  fi
  ensure_packages "${packages[@]}"
  command -v "$QEMU_BIN" >/dev/null || die "host setup: $QEMU_BIN not found after installing $QEMU_PACKAGE"
  [ "$(id -u)" = 0 ] || die "host setup: building the board's root needs root (debootstrap, device nodes, owners)"
}
