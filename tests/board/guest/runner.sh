#!/bin/bash
# Runs one scenario inside the board, brackets its output for the harness, then powers off.
scenario=$(sed -n 's/.*coracle_board\.scenario=\([^ ]*\).*/\1/p' /proc/cmdline)
script=/opt/coracle-board/scenarios/$scenario.sh
echo "BOARD SCENARIO BEGIN $scenario"
if [ -z "$scenario" ] || [ ! -f "$script" ]; then
  echo "SCENARIO ${scenario:-none}: FAIL runner — no scenario script $script"
  rc=2
else
  SCENARIO_NAME=$scenario bash "$script"
  rc=$?
fi
echo "BOARD SCENARIO END $scenario rc=$rc"
sync
# A clean poweroff: coracled stops first, then the pods' scope (SIGTERM, SIGKILL after its
# TimeoutStopSec), so containers that ignore SIGTERM cannot hold it for 90 s. The harness
# measures the time from the END line to qemu's exit and fails a slow poweroff.
# What `systemctl poweroff` does once it finds no logind (the board has no D-Bus), without
# its "Failed to connect to bus" on the console.
systemctl start --no-block --job-mode=replace-irreversibly poweroff.target
