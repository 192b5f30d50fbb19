# shellcheck shell=bash
# power-cut, driven from the host: boot, let applies stream and pods churn, SIGKILL qemu at a
# random moment, boot the same disk again and let the board check that every acknowledged object
# (the `ACK name` lines read back from the serial log) survived whole and all pods run again.

# Runs BOARD_POWER_CUTS cycles on one disk; fails when any cycle's check fails.
run_power_cut() {
  local cuts=${BOARD_POWER_CUTS:-3} disk=$RUN_DIR/disk-power-cut.img expect="" cycle log
  local survived=0 failed=0 acks target deadline seqs max delay boot_limit=${BOARD_BOOT_TIMEOUT:-600}
  [[ "$cuts" =~ ^[0-9]+$ ]] && [ "$cuts" -ge 1 ] || die "power-cut: BOARD_POWER_CUTS must be a positive number, not '$cuts'"
  make_disk "$disk"
  for cycle in $(seq 1 "$cuts"); do
    log=$RUN_DIR/power-cut-$cycle.log
    say "power-cut: cycle $cycle/$cuts (acknowledged so far: ${expect:-none})"
    start_board "$disk" "$log" "coracle_board.scenario=power-cut coracle_board.cycle=$cycle coracle_board.expect=$expect"
    # A random moment: after 3 to 25 acknowledged applies, plus up to 2 s.
    target=$((RANDOM % 23 + 3))
    deadline=$(($(date +%s) + boot_limit))
    while :; do
      acks=$(tr -d '\r' <"$log" | grep -c "^ACK pc-$cycle-")
      [ "$acks" -ge "$target" ] && break
      if ! kill -0 "$BOARD_PID" 2>/dev/null; then
        say "power-cut: cycle $cycle: the board stopped by itself after $acks acknowledged applies"
        break
      fi
      if [ "$(date +%s)" -ge "$deadline" ]; then
        say "power-cut: cycle $cycle: only $acks acknowledged applies after ${boot_limit}s"
        break
      fi
      sleep 0.2
    done
    delay=$((RANDOM % 2000))
    sleep "$((delay / 1000)).$(printf '%03d' $((delay % 1000)))"
    cut_power
    acks=$(tr -d '\r' <"$log" | grep -o "^ACK pc-$cycle-[0-9]*" | sed "s/^ACK pc-$cycle-//")
    max=$(sort -n <<<"$acks" | tail -n 1)
    say "power-cut: cycle $cycle: power cut after ${max:-0} acknowledged applies (+${delay} ms)"
    # Cycle 1's first boot has nothing to verify; later boots verify the previous cuts.
    if collect_cycle "$log" "$cycle" "$([ "$cycle" -gt 1 ] && echo verify)"; then
      [ "$cycle" -gt 1 ] && survived=$((survived + 1))
    else
      failed=1
    fi
    if [ -z "$max" ]; then
      record_failure power-cut "cycle-$cycle-stream — no apply was acknowledged before the cut (see $log)"
      failed=1
      break
    fi
    seqs=$(seq 1 "$max")
    [ "$(sort -n <<<"$acks")" = "$seqs" ] ||
      { record_failure power-cut "cycle-$cycle-acks — acknowledged sequence has gaps"; failed=1; }
    expect=${expect:+$expect,}$cycle:$max
  done
  # The last cut still needs its boot: verify only, then power off.
  if [ -z "$expect" ]; then
    echo "power-cut power_cuts_survived=0" >>"$RUN_DIR/figures"
    return 1
  fi
  log=$RUN_DIR/power-cut-final.log
  start_board "$disk" "$log" "coracle_board.scenario=power-cut coracle_board.cycle=$((cuts + 1)) coracle_board.final=1 coracle_board.expect=$expect"
  wait_board "$boot_limit" || say "power-cut: the final boot did not power off by itself"
  if collect_cycle "$log" final verify && grep -q "BOARD SCENARIO END power-cut rc=0" <(tr -d '\r' <"$log"); then
    survived=$((survived + 1))
  else
    failed=1
  fi
  echo "power-cut power_cuts=$cuts" >>"$RUN_DIR/figures"
  echo "power-cut power_cuts_survived=$survived" >>"$RUN_DIR/figures"
  say "power-cut: $survived of $cuts power cuts survived"
  return "$failed"
}

# Checks one boot's verdicts in log $1 (label $2): no FAIL line, and with $3=verify the
# board's "verify-done" after checking what the previous cuts left.
collect_cycle() {
  local log=$1 label=$2 need=${3:-} clean ok=0
  clean=$(tr -d '\r' <"$log")
  grep -o "SCENARIO power-cut: \(PASS\|FAIL\) .*" <<<"$clean" | sed "s/^/power-cut /" >>"$RUN_DIR/verdicts" || true
  grep -o 'FIGURE [A-Za-z0-9_.-]*=[^ ]*' <<<"$clean" | sed "s/^FIGURE /power-cut /" >>"$RUN_DIR/figures" || true
  while read -r line; do
    [ -n "$line" ] || continue
    record_failure power-cut "boot-$label ${line#*FAIL }"
    ok=1
  done < <(grep -o "SCENARIO power-cut: FAIL .*" <<<"$clean")
  if [ "$need" = verify ] && ! grep -q "SCENARIO power-cut: PASS verify-done" <<<"$clean"; then
    [ "$ok" = 1 ] || record_failure power-cut "boot-$label — the board did not finish verifying after the cut (see $log)"
    ok=1
  fi
  return "$ok"
}
