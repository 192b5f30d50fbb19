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
# Straight off after the sync: a clean shutdown waits DefaultTimeoutStopSec (90 s) for the pods'
# PID-1 processes, which ignore SIGTERM; nothing on this disk is read after the scenario ends.
systemctl poweroff --force --force
