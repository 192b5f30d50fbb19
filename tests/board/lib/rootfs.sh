# shellcheck shell=bash
# The board's Debian root filesystem: debootstrap output, cached under tests/board/cache/ and
# keyed by a hash of its inputs, so it is rebuilt only when the package list or recipe changes.

# Bump when the way the root is built changes in a way the package list does not show.
ROOT_RECIPE_VERSION=1
ROOT_SUITE=bookworm

# What the board runs beyond minbase: systemd as PID 1 on cgroup v2, the kernel, the tools the
# scenarios use (iproute2, iptables, procps), the CNI plugins Coracle's pod network calls, and
# busybox-static, whose binary (of the board's architecture) becomes the test image, and jq to
# read the API's JSON in the scenarios.
root_packages() {
  echo systemd-sysv systemd udev kmod iproute2 iptables procps containernetworking-plugins \
    busybox-static jq "$KERNEL_PACKAGE"
}

# The cache key: architecture, suite, recipe version and package list.
root_key() {
  printf '%s\n' "$1" "$ROOT_SUITE" "$ROOT_RECIPE_VERSION" "$(root_packages | tr ' ' '\n' | sort)" |
    sha256sum | cut -c1-16
}

# Lets debootstrap's second stage run foreign-architecture programs through qemu-user.
enable_foreign_exec() {
  local qemu_arch=$1
  if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc ||
      die "root build: cannot mount binfmt_misc (needed to run $qemu_arch programs under qemu-user)"
  fi
  update-binfmts --enable "qemu-$qemu_arch" >/dev/null 2>&1 || true
  [ -e "/proc/sys/fs/binfmt_misc/qemu-$qemu_arch" ] ||
    die "root build: binfmt handler qemu-$qemu_arch is not registered (install qemu-user-static and binfmt-support)"
}

# Prints the path of the cached root for architecture $1, building it first when missing.
ensure_root() {
  local arch=$1 cache=$2 key root tmp log
  key=$(root_key "$arch")
  root=$cache/root-$arch-$key
  if [ -f "$root/.board-root-complete" ]; then
    say "root: cached $root"
    echo "$root"
    return 0
  fi
  mkdir -p "$cache"
  # Roots of this architecture built from other inputs are stale. An interrupted debootstrap may
  # have left /proc or /sys mounted inside its target: unmount before deleting.
  local stale mnt
  for stale in "$cache/root-$arch-"*; do
    [ -e "$stale" ] || continue
    stale=$(cd "$stale" && pwd)
    while read -r _ mnt _; do
      case "$mnt" in "$stale"/*) umount -l "$mnt" 2>/dev/null ;; esac
    done < <(tac /proc/mounts)
    rm -rf --one-file-system "$stale"
  done
  tmp=$root.tmp
  log=$cache/debootstrap-$arch.log
  local args=(--variant=minbase --include="$(root_packages | tr ' ' ',')")
  if [ "$DEB_ARCH" != "$(dpkg --print-architecture)" ]; then
    enable_foreign_exec "$arch"
    args+=(--arch="$DEB_ARCH")
  fi
  # No mirror argument: debootstrap's default mirror.
  say "root: building $ROOT_SUITE $DEB_ARCH with debootstrap (log: $log); takes 1 to 5 minutes"
  nice debootstrap "${args[@]}" "$ROOT_SUITE" "$tmp" >"$log" 2>&1 ||
    die "root build: debootstrap failed (last lines of $log: $(tail -n 5 "$log" | tr '\n' ' '))"
  ls "$tmp"/boot/vmlinuz-* >/dev/null 2>&1 || die "root build: no kernel in $tmp/boot"
  ls "$tmp"/boot/initrd.img-* >/dev/null 2>&1 || die "root build: no initrd in $tmp/boot"
  [ -x "$tmp/bin/busybox" ] || die "root build: busybox-static did not install /bin/busybox"
  # Package caches only cost disk image space.
  rm -rf "$tmp"/var/cache/apt/archives/*.deb "$tmp"/var/lib/apt/lists/*_Packages
  touch "$tmp/.board-root-complete"
  mv "$tmp" "$root"
  say "root: built $root ($(du -sh "$root" | cut -f1))"
  echo "$root"
}
