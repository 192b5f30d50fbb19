# shellcheck shell=bash
# Composing the board's disk (cached root + Coracle installed offline + scenarios) and booting it
# under qemu (TCG, no network device), with the serial console streamed and logged.

# Builds the run's root in $run/root from the cached root $1: Coracle from tarball $2 installed with
# its own install.sh --root, the busybox image archive $3, and the scenario unit and scripts.
compose_root() {
  local cached=$1 tarball=$2 image=$3 board_dir=$4 rootdir unpacked
  rootdir=$RUN_DIR/root
  rm -rf "$rootdir" "$RUN_DIR/dist"
  cp -a "$cached" "$rootdir" || die "compose: copying the cached root"
  rm -f "$rootdir/.board-root-complete"

  echo '/dev/vda / ext4 defaults 0 1' >"$rootdir/etc/fstab"
  echo board >"$rootdir/etc/hostname"
  # The console carries the scenarios' output: no login prompt on it. Timers that would write to
  # the disk or burn CPU at random moments would blur the flash-wear and timing figures.
  local unit
  for unit in "serial-getty@$CONSOLE.service" getty@tty1.service apt-daily.timer apt-daily-upgrade.timer \
    dpkg-db-backup.timer e2scrub_all.timer fstrim.timer systemd-tmpfiles-clean.timer; do
    ln -sfn /dev/null "$rootdir/etc/systemd/system/$unit"
  done

  mkdir -p "$RUN_DIR/dist"
  tar -xzf "$tarball" -C "$RUN_DIR/dist" || die "compose: unpacking $tarball"
  unpacked=$(find "$RUN_DIR/dist" -mindepth 1 -maxdepth 1 -type d | head -n 1)
  [ -x "$unpacked/install.sh" ] || die "compose: $tarball has no install.sh at its top"
  "$unpacked/install.sh" --root "$rootdir" >"$RUN_DIR/install.log" 2>&1 ||
    die "install: install.sh --root failed: $(tr '\n' ' ' <"$RUN_DIR/install.log")"
  [ -x "$rootdir/usr/local/bin/coracled" ] || die "install: install.sh --root installed no /usr/local/bin/coracled"
  [ -L "$rootdir/etc/systemd/system/multi-user.target.wants/coracled.service" ] ||
    die "install: install.sh --root did not enable coracled.service"
  # The release stays on the board for `install.sh --uninstall` (service-lifecycle).
  mkdir -p "$rootdir/opt"
  cp -a "$unpacked" "$rootdir/opt/coracle-release"

  mkdir -p "$rootdir/opt/coracle-board/scenarios"
  install -m 0755 "$board_dir/guest/runner.sh" "$rootdir/opt/coracle-board/runner.sh"
  install -m 0644 "$board_dir/guest/lib.sh" "$rootdir/opt/coracle-board/lib.sh"
  install -m 0755 "$board_dir"/scenarios/*.sh "$rootdir/opt/coracle-board/scenarios/"
  install -m 0644 "$image" "$rootdir/opt/coracle-board/busybox.tar"
  sed "s|@CONSOLE@|$CONSOLE|" "$board_dir/guest/coracle-board.service" \
    >"$rootdir/etc/systemd/system/coracle-board.service"
  ln -sfn /etc/systemd/system/coracle-board.service \
    "$rootdir/etc/systemd/system/multi-user.target.wants/coracle-board.service"

  # Local experiments (a unit drop-in, a config.yaml): BOARD_OVERLAY=DIR is copied over the root.
  if [ -n "${BOARD_OVERLAY:-}" ]; then
    [ -d "$BOARD_OVERLAY" ] || die "compose: BOARD_OVERLAY=$BOARD_OVERLAY is not a directory"
    say "compose: overlaying $BOARD_OVERLAY (a local experiment, not the product as shipped)"
    cp -a "$BOARD_OVERLAY/." "$rootdir/"
  fi

  KERNEL=$(ls "$rootdir"/boot/vmlinuz-* | sort -V | tail -n 1)
  INITRD=$(ls "$rootdir"/boot/initrd.img-* | sort -V | tail -n 1)
  cp "$KERNEL" "$RUN_DIR/vmlinuz" && cp "$INITRD" "$RUN_DIR/initrd.img" || die "compose: copying kernel and initrd"
}

# Makes a fresh ext4 disk image $1 from the run's root (no loop mount: mkfs.ext4 -d).
make_disk() {
  local disk=$1
  rm -f "$disk"
  truncate -s "${BOARD_DISK_SIZE:-4G}" "$disk"
  mkfs.ext4 -q -F -L board -d "$RUN_DIR/root" "$disk" 2>"$disk.mkfs.log" ||
    die "disk: mkfs.ext4 -d failed: $(tr '\n' ' ' <"$disk.mkfs.log")"
}

# Starts the board on disk $1 in the background, its serial console written to $2; kernel
# arguments $3 are added. Sets BOARD_PID and STREAM_PID.
start_board() {
  local disk=$1 log=$2 extra=$3
  : >"$log"
  "$QEMU_BIN" "${QEMU_MACHINE[@]}" -accel tcg -m "${BOARD_MEMORY:-2048}" -smp "${BOARD_CPUS:-2}" \
    -display none -monitor none -no-reboot -nic none \
    -serial "file:$log" \
    -kernel "$RUN_DIR/vmlinuz" -initrd "$RUN_DIR/initrd.img" \
    -drive "file=$disk,if=virtio,format=raw" \
    -append "console=$CONSOLE root=/dev/vda rw quiet loglevel=3 systemd.show_status=false $extra" \
    </dev/null >"$log.qemu" 2>&1 &
  BOARD_PID=$!
  BOARD_LOG=$log
  # The board's serial output, live, indented under the harness's own lines.
  tail -n +1 -F --pid="$BOARD_PID" "$log" 2>/dev/null | sed -u 's/\r$//; s/^/  | /' >&2 &
  STREAM_PID=$!
}

# Waits for the board started by start_board to power off, at most $1 seconds; a board still
# running then is killed and the wait fails. Returns qemu's status. Sets POWEROFF_SECONDS to
# the time from the scenario's END line on the console to qemu's exit (empty when not seen).
wait_board() {
  local limit=$1 waited=0 rc end_at=""
  POWEROFF_SECONDS=""
  while kill -0 "$BOARD_PID" 2>/dev/null; do
    if [ "$waited" -ge "$limit" ]; then
      kill -9 "$BOARD_PID" 2>/dev/null
      wait "$BOARD_PID" 2>/dev/null
      wait "$STREAM_PID" 2>/dev/null
      return 124
    fi
    if [ -z "$end_at" ] && grep -q 'BOARD SCENARIO END' "$BOARD_LOG" 2>/dev/null; then
      end_at=$SECONDS
    fi
    sleep 1
    waited=$((waited + 1))
  done
  [ -z "$end_at" ] || POWEROFF_SECONDS=$((SECONDS - end_at))
  wait "$BOARD_PID"
  rc=$?
  wait "$STREAM_PID" 2>/dev/null
  return "$rc"
}

# Kills the board at once (a power cut): SIGKILL to qemu.
cut_power() {
  kill -9 "$BOARD_PID" 2>/dev/null
  wait "$BOARD_PID" 2>/dev/null
  wait "$STREAM_PID" 2>/dev/null
}
