# shellcheck shell=bash
# Reading the board's serial log: scenario verdicts and figures, and the summary at the end.

# Records scenario $1's verdict lines and figures from serial log $2 (figures tagged with $3,
# default the scenario); prints the failing steps. Fails when the scenario did not pass.
collect_results() {
  local scenario=$1 log=$2 tag=${3:-$1} clean fails passes end rc
  clean=$(tr -d '\r' <"$log")
  grep -o "SCENARIO $scenario: \(PASS\|FAIL\) .*" <<<"$clean" | sed "s/^/$tag /" >>"$RUN_DIR/verdicts" || true
  grep -o 'FIGURE [A-Za-z0-9_.-]*=[^ ]*' <<<"$clean" | sed "s/^FIGURE /$tag /" >>"$RUN_DIR/figures" || true
  fails=$(grep -c "SCENARIO $scenario: FAIL " <<<"$clean")
  passes=$(grep -c "SCENARIO $scenario: PASS " <<<"$clean")
  if ! grep -q "BOARD SCENARIO BEGIN $scenario" <<<"$clean"; then
    record_failure "$tag" "board-start — the board never ran the scenario unit (see $log and $log.qemu)"
    return 1
  fi
  if [ "$fails" -gt 0 ]; then
    while read -r line; do
      record_failure "$tag" "${line#*FAIL }"
    done < <(grep -o "SCENARIO $scenario: FAIL .*" <<<"$clean")
    return 1
  fi
  end=$(grep -o "BOARD SCENARIO END $scenario rc=[0-9]*" <<<"$clean" | tail -n 1)
  if [ -z "$end" ]; then
    record_failure "$tag" "scenario-end — the scenario did not finish (board hung, crashed or timed out)"
    return 1
  fi
  rc=${end##*rc=}
  if [ "$rc" != 0 ] || [ "$passes" -eq 0 ]; then
    record_failure "$tag" "scenario-exit — script exited $rc after $passes passing checks"
    return 1
  fi
  return 0
}

# Notes a failed step for the summary and prints it at once.
record_failure() {
  echo "$1 $2" >>"$RUN_DIR/failures"
  say "FAIL $1: $2"
}

# The closing table: every figure, then the verdict per scenario.
print_summary() {
  local total=$1 failed=$2
  echo
  echo "== board $ARCH: figures =="
  if [ -s "$RUN_DIR/figures" ]; then
    printf '%-18s %-34s %s\n' SCENARIO FIGURE VALUE
    sed 's/=/ /' "$RUN_DIR/figures" | while read -r tag name value; do
      printf '%-18s %-34s %s\n' "$tag" "$name" "$value"
    done
  else
    echo "(none)"
  fi
  echo "== board $ARCH: results =="
  if [ -s "$RUN_DIR/failures" ]; then
    sed 's/^/FAIL /' "$RUN_DIR/failures"
  fi
  echo "board: $((total - failed)) passed, $failed failed; wall time ${SECONDS}s"
}
