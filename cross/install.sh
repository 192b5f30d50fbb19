#!/bin/sh
# Installs Coracle (coracled, coracle, systemd units, default config, directories) on this
# machine, or offline into a mounted image with --root. Running it again is harmless.
#
#   ./install.sh                    install, enable and (re)start coracled
#   ./install.sh --root /mnt/img    install into an image: no systemctl, enabled by symlink
#   ./install.sh --uninstall        remove it all except config, manifests and data
#   ./install.sh --uninstall --purge   remove /etc/coracle and /var/lib/coracle too
#
# Layout: binaries in /usr/local/bin (one file under two names when the tarball's
# bin/coracle is a link to its bin/coracled, the multi-call binary), units in /usr/local/lib/systemd/system, sysusers.d and
# tmpfiles.d entries in /usr/local/lib, config in /etc/coracle, data in /var/lib/coracle.
set -eu

usage() {
  cat <<'USAGE'
usage: install.sh [--root DIR] [--bin-dir DIR] [--no-start] [--uninstall [--purge]]
  --root DIR     install into the filesystem mounted at DIR (offline: no systemctl calls)
  --bin-dir DIR  take coracled and coracle from DIR (default: bin/ beside this script)
  --no-start     enable coracled but do not start or restart it
  --uninstall    stop (the unit, or a daemon started outside systemd), disable and remove
                 binaries and units; keep config and data
  --purge        with --uninstall: also remove /etc/coracle and /var/lib/coracle
USAGE
}

die() {
  echo "install.sh: $*" >&2
  exit 1
}

say() {
  echo "install.sh: $*"
}

here=$(cd "$(dirname "$0")" && pwd)
root=""
bin_dir=""
action=install
purge=no
start=yes

while [ $# -gt 0 ]; do
  case "$1" in
    --root) [ $# -ge 2 ] || die "--root needs a directory"; root=$2; shift 2 ;;
    --root=*) root=${1#--root=}; shift ;;
    --bin-dir) [ $# -ge 2 ] || die "--bin-dir needs a directory"; bin_dir=$2; shift 2 ;;
    --bin-dir=*) bin_dir=${1#--bin-dir=}; shift ;;
    --no-start) start=no; shift ;;
    --uninstall) action=uninstall; shift ;;
    --purge) purge=yes; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done

[ "$purge" = no ] || [ "$action" = uninstall ] || die "--purge only goes with --uninstall"
if [ -n "$root" ]; then
  [ -d "$root" ] || die "--root $root: no such directory"
  root=$(cd "$root" && pwd)
  [ "$root" != / ] || root=""
fi

# Paths as the running system sees them; every file operation prefixes $root.
BIN=/usr/local/bin
UNIT_DIR=/usr/local/lib/systemd/system
SYSUSERS=/usr/local/lib/sysusers.d/coracle.conf
TMPFILES=/usr/local/lib/tmpfiles.d/coracle.conf
# Shell completions and the man page, beneath share/ in the tarball (not in a checkout).
SHARE=/usr/local/share
DOCS="bash-completion/completions/coracle zsh/site-functions/_coracle fish/vendor_completions.d/coracle.fish man/man1/coracle.1"
WANTS=/etc/systemd/system/multi-user.target.wants/coracled.service
CONF_DIR=/etc/coracle
DATA_DIR=/var/lib/coracle
RUN_DIR=/run/coracle
UNIT=coracled.service
# On cgroup v2 under systemd, coracled keeps its pods in this delegated scope (it outlives
# daemon restarts; see runtime/src/cgroups/pod_scope.rs).
POD_SCOPE=coracle-pods.scope
# What the daemon's default network settings create on the host (config.yaml may change them).
BRIDGE=coracle0
SERVICE_CIDR=10.96.0.0/16
CNI_NETWORK=coracle

# Tarball layout: systemd/ beside this script; repository layout: ../systemd.
if [ -f "$here/systemd/$UNIT" ]; then
  units_src=$here/systemd
else
  units_src=$here/../systemd
fi
[ -n "$bin_dir" ] || bin_dir=$here/bin

# systemctl only for a live install on a machine whose PID 1 is systemd.
live_systemd() {
  [ -z "$root" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1
}

[ "$(id -u)" = 0 ] || [ -n "$root" ] || die "run as root (or use --root DIR for an image you may write)"

# Copies $1 to $root$2 with mode $3, replacing the file atomically so a running binary
# is never overwritten in place.
put() {
  [ -f "$1" ] || die "missing $1 (is this an unpacked release tarball, or was --bin-dir given?)"
  mkdir -p "$(dirname "$root$2")"
  cp "$1" "$root$2.new"
  chmod "$3" "$root$2.new"
  mv -f "$root$2.new" "$root$2"
}

# Makes $root$2 a hard link to $root$1, replacing it atomically like put.
link() {
  rm -f "$root$2.new"
  ln "$root$1" "$root$2.new"
  mv -f "$root$2.new" "$root$2"
}

install_all() {
  put "$bin_dir/coracled" "$BIN/coracled" 0755
  if [ "$bin_dir/coracle" -ef "$bin_dir/coracled" ]; then
    # The multi-call binary: coracle is coracled under another name.
    link "$BIN/coracled" "$BIN/coracle"
  else
    put "$bin_dir/coracle" "$BIN/coracle" 0755
  fi
  put "$units_src/$UNIT" "$UNIT_DIR/$UNIT" 0644
  put "$units_src/coracle.sysusers" "$SYSUSERS" 0644
  put "$units_src/coracle.tmpfiles" "$TMPFILES" 0644
  for doc in $DOCS; do
    [ ! -f "$here/share/$doc" ] || put "$here/share/$doc" "$SHARE/$doc" 0644
  done

  mkdir -p "$root$CONF_DIR/manifests" "$root$DATA_DIR"
  chmod 0755 "$root$CONF_DIR" "$root$CONF_DIR/manifests"
  chmod 0700 "$root$DATA_DIR"
  # The shipped defaults are always refreshed; the admin's config.yaml is never replaced.
  put "$here/config.yaml" "$CONF_DIR/config.yaml.default" 0644
  if [ ! -e "$root$CONF_DIR/config.yaml" ]; then
    put "$here/config.yaml" "$CONF_DIR/config.yaml" 0644
  fi

  # The socket group: systemd-sysusers works offline too (--root); without it the image's
  # systemd-sysusers.service creates the group at first boot.
  if command -v systemd-sysusers >/dev/null 2>&1; then
    if [ -n "$root" ]; then
      systemd-sysusers --root="$root" "$root$SYSUSERS"
    else
      systemd-sysusers "$SYSUSERS"
    fi
  fi

  if live_systemd; then
    systemd-tmpfiles --create "$TMPFILES"
    systemctl daemon-reload
    systemctl enable "$UNIT"
    if [ "$start" = yes ]; then
      # Pods keep running across the restart (KillMode=process); the new daemon re-adopts them.
      if systemctl is-active --quiet "$UNIT"; then
        systemctl restart "$UNIT"
      else
        systemctl start "$UNIT"
      fi
    fi
  else
    mkdir -p "$(dirname "$root$WANTS")"
    ln -sfn "$UNIT_DIR/$UNIT" "$root$WANTS"
    [ -n "$root" ] || say "systemd is not running here: enabled $UNIT by symlink, not started"
  fi
  say "installed coracled and coracle into ${root:-}$BIN; config in ${root:-}$CONF_DIR"
}

# Refuses to delete a tree that still has mounts beneath it (pod volumes, container rootfs):
# rm would follow them into the host's files.
ensure_unmounted() {
  while read -r _ mnt _; do
    case "$mnt" in
      "$1" | "$1"/*) die "$1 still has mounts ($mnt): stop the pods and unmount before --purge" ;;
    esac
  done </proc/self/mounts
}

# The value of top-level-or-nested key $1 in the admin's config.yaml, else $2.
configured() {
  value=$(sed -n "s/^[[:space:]]*$1:[[:space:]]*\([^#[:space:]]*\).*/\1/p" "$CONF_DIR/config.yaml" 2>/dev/null | head -n 1)
  echo "${value:-$2}"
}

# Sends every process in cgroup directory $1 and below SIGKILL until none is left, then
# removes the directories bottom-up.
empty_cgroup() {
  [ -d "$1" ] || return 0
  for _ in $(seq 1 100); do
    pids=$(find "$1" -name cgroup.procs -exec cat {} + 2>/dev/null)
    [ -n "$pids" ] || break
    # shellcheck disable=SC2086
    kill -9 $pids 2>/dev/null || true
    sleep 0.1
  done
  find "$1" -depth -type d -exec rmdir {} + 2>/dev/null || true
}

# Ends every pod and removes what they left on the host: their processes (the pods' scope
# is stopped: SIGTERM, then SIGKILL after its TimeoutStopSec), the shims KillMode=process
# left in the unit's cgroup, namespace pins and container mounts, the bridge and its veths,
# CNI's masquerade rules and the ClusterIP route. The daemon is stopped already.
teardown_pods() {
  for cgroup in "$@"; do
    [ -n "$cgroup" ] || continue
    # Every hierarchy: one cgroup2 tree, or the v1 controllers (and a cgroup2 beside them).
    awk '$3 == "cgroup" || $3 == "cgroup2" {print $2}' /proc/self/mounts | while read -r mount; do
      empty_cgroup "$mount$cgroup"
    done
  done
  # Deepest first, so no mount hides another; lazily, since a pin may still be open.
  for dir in "$RUN_DIR" "$(configured data_dir "$DATA_DIR")"; do
    awk -v d="$dir" '$2 == d || index($2, d "/") == 1 {print $2}' /proc/self/mounts | sort -r |
      while read -r mnt; do umount -l "$mnt" 2>/dev/null || true; done
  done
  if command -v ip >/dev/null 2>&1; then
    ip link del "$(configured bridge "$BRIDGE")" 2>/dev/null || true
    ip route del local "$(configured service_cidr "$SERVICE_CIDR")" dev lo table local 2>/dev/null || true
  fi
  if command -v iptables >/dev/null 2>&1; then
    # The bridge plugin's ipMasq: a POSTROUTING jump per pod into a chain of its own, both
    # commented `name: "coracle" id: "<pod>"`, which `iptables -S` prints with \" for each ".
    iptables -t nat -S POSTROUTING 2>/dev/null | grep -F "name: \\\"$CNI_NETWORK\\\" id:" | while read -r rule; do
      chain=$(echo "$rule" | sed -n 's/.* -j \([^ ]*\).*/\1/p')
      eval "iptables -t nat $(echo "$rule" | sed 's/^-A /-D /')" 2>/dev/null || true
      case "$chain" in
        CNI-*) { iptables -t nat -F "$chain" && iptables -t nat -X "$chain"; } 2>/dev/null || true ;;
      esac
    done
    # The daemon's own masquerade (net/src/masquerade.rs): one jump per bridge into
    # a chain named CORACLE-MASQ-<bridge>.
    iptables -t nat -S POSTROUTING 2>/dev/null | grep -E -- "-j CORACLE-MASQ-[^ ]+$" | while read -r rule; do
      eval "iptables -t nat $(echo "$rule" | sed 's/^-A /-D /')" 2>/dev/null || true
    done
    iptables -t nat -S 2>/dev/null | sed -n 's/^-N \(CORACLE-MASQ-[^ ]*\)$/\1/p' | while read -r chain; do
      { iptables -t nat -F "$chain" && iptables -t nat -X "$chain"; } 2>/dev/null || true
    done
  fi
}

# Whether the daemon that wrote lock file $1 (naming pid $2) still runs: it holds the lock
# for its life (daemon/src/board_claims.rs), and the kernel lets it go at its exit.
daemon_alive() {
  if command -v flock >/dev/null 2>&1; then
    ! flock -n "$1" true 2>/dev/null
  else
    # Without flock(1): the pid is a live coracled (not gone, not a zombie, not reused).
    [ "$(cat "/proc/$2/comm" 2>/dev/null)" = coracled ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$2/status" 2>/dev/null
  fi
}

# Stops the coracled that holds run dir $1 outside systemd (./setup starts one in the
# background where PID 1 is not systemd): SIGTERM, then SIGKILL after 30 s. Prints the
# daemon's pod cgroup (its own cgroup and cgroup_subpath) for teardown_pods.
stop_background_daemon() {
  lock=$1/coracled.lock
  [ -f "$lock" ] || return 0
  pid=$(sed -n 's/^pid=\([0-9][0-9]*\)$/\1/p' "$lock" | head -n 1)
  [ -n "$pid" ] && daemon_alive "$lock" "$pid" || return 0
  own=$(sed -n 's/^0::\(.*\)$/\1/p' "/proc/$pid/cgroup" 2>/dev/null | head -n 1)
  say "stopping coracled (pid $pid)" >&2
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 300); do
    daemon_alive "$lock" "$pid" || break
    sleep 0.1
  done
  if daemon_alive "$lock" "$pid"; then
    say "coracled (pid $pid) still runs 30 s after SIGTERM: killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  [ -z "$own" ] || echo "${own%/}/$(configured cgroup_subpath coracle)"
}

uninstall_all() {
  if live_systemd; then
    unit_cgroup=$(systemctl show -p ControlGroup --value "$UNIT" 2>/dev/null || true)
    scope_cgroup=$(systemctl show -p ControlGroup --value "$POD_SCOPE" 2>/dev/null || true)
    systemctl disable --now "$UNIT" 2>/dev/null || true
    systemctl stop "$POD_SCOPE" 2>/dev/null || true
    teardown_pods "$unit_cgroup" "$scope_cgroup"
  elif [ -z "$root" ]; then
    # No systemd: the daemon ./setup started in the background, and its pods.
    pod_cgroup=$(stop_background_daemon "$(configured run_dir "$RUN_DIR")")
    [ -z "$pod_cgroup" ] || teardown_pods "$pod_cgroup"
  else
    # An image: a daemon runs from it only when started by hand on its run dir; its pods
    # are left alone (the host's cgroup tree is not the image's).
    stop_background_daemon "$root$RUN_DIR" >/dev/null
  fi
  rm -f "$root$WANTS" "$root$BIN/coracled" "$root$BIN/coracle" "$root$UNIT_DIR/$UNIT" \
    "$root$SYSUSERS" "$root$TMPFILES"
  for doc in $DOCS; do rm -f "$root$SHARE/$doc"; done
  if live_systemd; then
    systemctl daemon-reload
  fi

  default=$root$CONF_DIR/config.yaml.default
  if [ -f "$default" ] && [ -f "$root$CONF_DIR/config.yaml" ] && cmp -s "$default" "$root$CONF_DIR/config.yaml"; then
    rm -f "$root$CONF_DIR/config.yaml"
  fi
  rm -f "$default"

  if [ "$purge" = yes ]; then
    for dir in "$root$DATA_DIR" "$root$CONF_DIR" "$root$RUN_DIR"; do
      [ -e "$dir" ] || continue
      ensure_unmounted "$dir"
      rm -rf --one-file-system "$dir"
    done
    say "removed Coracle with its config and data"
  else
    # An untouched tree goes; anything the admin put there stays.
    rmdir "$root$CONF_DIR/manifests" "$root$CONF_DIR" "$root$DATA_DIR" 2>/dev/null || true
    say "removed Coracle; kept ${root:-}$CONF_DIR and ${root:-}$DATA_DIR (use --purge to remove them)"
  fi
  # The group stays: files on the board may still be owned by it.
}

case "$action" in
  install) install_all ;;
  uninstall) uninstall_all ;;
esac
