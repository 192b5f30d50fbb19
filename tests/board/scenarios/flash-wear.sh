#!/bin/bash
# flash-wear: with 20 pods running and nothing changing, how many bytes coracled writes in a
# window (/proc/PID/io write_bytes; target 0) and how many the whole board writes to its disk
# (/sys/block/vda/stat). Window: coracle_board.wear_seconds (BOARD_WEAR_SECONDS on the host).
source /opt/coracle-board/lib.sh

window=$(sed -n 's/.*coracle_board\.wear_seconds=\([0-9]*\).*/\1/p' /proc/cmdline)
window=${window:-120}
pods=20

wait_daemon 180 || fatal daemon-ready "coracled not active: $(journalctl -b -u coracled -n 5 --no-pager | tr '\n' ' ')"
pass daemon-ready
out=$(load_image 2>&1) && pass image-load || fatal image-load "$out"
out=$(apply_sleepers wear $pods 2>&1) && pass apply || fatal apply "$out"
if wait_until 900 pods_ready_equal wear $pods; then
  pass pods-ready "$pods pods Running and ready"
else
  fatal pods-ready "$(ready_pods wear) of $pods ready: $(pods_report wear)"
fi
# Let the start-up's status writes and the page cache's writeback settle before measuring.
sleep 30
sync

# Field 7 of /sys/block/vda/stat: sectors written, in 512-byte units whatever the device's block size.
disk_sectors() {
  awk '{print $7}' /sys/block/vda/stat
}
daemon_writes() {
  awk '/^write_bytes:/ {print $2}' "/proc/$1/io"
}

pid=$(daemon_pid)
d0=$(daemon_writes "$pid")
s0=$(disk_sectors)
note "measuring ${window}s with $pods pods (coracled pid $pid)"
sleep "$window"
# What the window dirtied reaches the disk now, inside the count.
sync
d1=$(daemon_writes "$pid")
s1=$(disk_sectors)

[ "$(daemon_pid)" = "$pid" ] && pass daemon-steady "same daemon throughout" ||
  fail daemon-steady "coracled restarted during the window ($pid -> $(daemon_pid))"
[ "$(ready_pods wear)" = "$pods" ] && pass pods-steady || fail pods-steady "$(ready_pods wear) of $pods ready at the end"
daemon_bytes=$((d1 - d0))
disk_bytes=$(((s1 - s0) * 512))
figure window_seconds "$window"
figure coracled_write_bytes "$daemon_bytes"
figure disk_write_bytes "$disk_bytes"
[ "$daemon_bytes" -eq 0 ] && pass coracled-writes-nothing ||
  fail coracled-writes-nothing "coracled wrote $daemon_bytes bytes in ${window}s with nothing changing (target 0)"
finish
