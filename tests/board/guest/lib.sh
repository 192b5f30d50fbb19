# shellcheck shell=bash
# Helpers every scenario sources: result lines in the format the harness parses, figures, waits.
#   SCENARIO NAME: PASS step [— detail]
#   SCENARIO NAME: FAIL step [— detail]
#   FIGURE name=value
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
SCENARIO_FAILED=0

# Every ctl call has a deadline: a hung API fails the step instead of hanging the board.
coracle() {
  timeout --signal=KILL "${CORACLE_CALL_TIMEOUT:-60}" /usr/local/bin/coracle "$@"
}
export -f coracle

SCENARIO_CHECKS=0

pass() {
  SCENARIO_CHECKS=$((SCENARIO_CHECKS + 1))
  echo "SCENARIO $SCENARIO_NAME: PASS $1${2:+ — $2}"
}

fail() {
  SCENARIO_CHECKS=$((SCENARIO_CHECKS + 1))
  SCENARIO_FAILED=1
  echo "SCENARIO $SCENARIO_NAME: FAIL $1${2:+ — $2}"
}

# A failure later steps cannot do without: report it and end the scenario.
fatal() {
  fail "$@"
  echo "  --- last lines of coracled's journal ---"
  journalctl -b -u coracled -n 25 --no-pager -o short-monotonic 2>&1 | cut -c1-300 | sed 's/^/  /'
  finish
}

figure() {
  echo "FIGURE $1=$2"
}

note() {
  echo "  $SCENARIO_NAME: $*"
}

# Runs the command in "${@:2}"; PASS step $1 when it succeeds, FAIL with the end of its output.
check() {
  local step=$1 out
  shift
  if out=$("$@" 2>&1); then
    pass "$step"
  else
    fail "$step" "$(echo "$out" | tail -n 3 | tr '\n' ' ' | cut -c1-300)"
  fi
}

# Polls the command in "${@:2}" every half second until it succeeds or $1 seconds pass.
wait_until() {
  local limit=$1 deadline
  shift
  deadline=$(($(date +%s) + limit))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.5
  done
}

# Milliseconds of CLOCK_MONOTONIC (the clock systemd's *Monotonic timestamps use).
now_ms() {
  local up
  read -r up _ </proc/uptime
  echo $((${up%.*} * 1000 + 10#${up#*.} * 10))
}

finish() {
  if [ "$SCENARIO_CHECKS" -eq 0 ]; then
    echo "SCENARIO $SCENARIO_NAME: FAIL no-checks — the scenario checked nothing"
    exit 1
  fi
  exit "$SCENARIO_FAILED"
}

# The last $1 lines of coracled's journal on one line: the detail of a failed daemon step.
journal_tail() {
  echo "state $(systemctl is-active coracled), $(systemctl show -p Result --value coracled); journal: $(journalctl -b -u coracled -n "${1:-6}" --no-pager -o cat 2>&1 | tr '\n' ' ' | cut -c1-700)"
}

# The daemon's main pid as systemd knows it (0 when not running).
daemon_pid() {
  systemctl show -p MainPID --value coracled
}

# The coracled unit's cgroup directory in the cgroup2 tree.
daemon_cgroup() {
  echo "/sys/fs/cgroup$(systemctl show -p ControlGroup --value coracled)"
}

# The pods' delegated scope (coracled registers it on cgroup v2 so that its own unit can be
# restarted; see runtime/src/cgroups/pod_scope.rs): its cgroup directory, empty when not running.
POD_SCOPE=coracle-pods.scope
pods_cgroup() {
  local cg
  cg=$(systemctl show -p ControlGroup --value "$POD_SCOPE")
  [ -n "$cg" ] && echo "/sys/fs/cgroup$cg"
}

# One HTTP/1.0 GET of path $3 from $1:$2 through bash's /dev/tcp; prints the body of a 200
# answer, else fails saying why. Not busybox-static's wget: on Debian 12 it is linked against
# static glibc and segfaults (exit 139) resolving even an IP literal, which once looked like a
# Service that did not answer.
http_get_once() {
  local response status
  exec 3<>"/dev/tcp/$1/$2" || return 1
  printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$3" "$1" >&3
  response=$(tr -d '\r' <&3)
  exec 3<&-
  status=$(head -n 1 <<<"$response")
  case "$status" in
    "HTTP/1."?" 200"*) sed '1,/^$/d' <<<"$response" ;;
    *) echo "answer: '${status:-nothing}'"; return 1 ;;
  esac
}
export -f http_get_once

# http_get_once with a deadline of HTTP_DEADLINE seconds (default 15: an emulated board under a
# loaded host can take seconds to answer; a connection that hangs fails the request).
http_get() {
  local deadline=${HTTP_DEADLINE:-15} rc
  timeout --signal=KILL "$deadline" bash -c 'http_get_once "$@"' http_get "$@" 2>&1
  rc=$?
  case "$rc" in
    124 | 137) echo "no answer within ${deadline}s" ;;
  esac
  return "$rc"
}

# Loads the board's busybox image into coracled (busybox:board).
load_image() {
  coracle image load -i /opt/coracle-board/busybox.tar
}

# Pods of label app=$1 that are Running, not terminating, with every container ready: the count.
ready_pods() {
  coracle get pods -l "app=$1" -o json | jq '[.items[]
    | select(.metadata.deletionTimestamp == null and .status.phase == "Running"
      and ((.status.containerStatuses // []) | length > 0 and all(.ready)))] | length'
}

# Succeeds when exactly $2 pods of label app=$1 are ready (for wait_until).
pods_ready_equal() {
  [ "$(ready_pods "$1")" = "$2" ]
}

# Waits (up to $1 s) for coracled to be active and answering `coracle version`.
wait_daemon() {
  wait_until "$1" bash -c '[ "$(systemctl is-active coracled)" = active ] && coracle version'
}

# Applies $2 bare Pods $1-1..$1-$2 of busybox sleeping forever, label app=$1. Bare pods need only
# the node, not the controllers (workloads covers Deployments).
apply_sleepers() {
  local i
  for i in $(seq 1 "$2"); do
    apply_sleeper "$1" "$1-$i" || return 1
  done
}

# Applies one sleeping busybox Pod $2 with label app=$1.
apply_sleeper() {
  coracle apply -f - <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: $2
  labels: {app: $1}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: sleeper
    image: busybox:board
    imagePullPolicy: Never
    command: ["sleep", "1000000"]
YAML
}

# Every process in the coracled unit's and the pods' scope's cgroup subtrees except the daemon
# itself (containers, shims, the scope's keeper), as "pid:starttime" lines (start time tells a
# pid reused by a new process apart).
container_processes() {
  local main pid dirs
  main=$(daemon_pid)
  dirs=("$(daemon_cgroup)")
  [ -z "$(pods_cgroup)" ] || dirs+=("$(pods_cgroup)")
  find "${dirs[@]}" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -un | while read -r pid; do
    [ "$pid" = "$main" ] && continue
    [ -r "/proc/$pid/stat" ] || continue
    # The daemon's own children (its shim launcher, a probe or CNI plugin in flight) end
    # with it; containers and their shims are not its children.
    [ "$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f2)" = "$main" ] && continue
    echo "$pid:$(process_start "$pid")"
  done
}

# The start time (clock ticks since boot) of process $1: field 22 of /proc/PID/stat.
process_start() {
  sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f20
}

# Lines of $1 (pid:start list) whose process no longer runs with that start time.
gone_processes() {
  local entry pid
  while read -r entry; do
    [ -n "$entry" ] || continue
    pid=${entry%%:*}
    [ "$pid:$(process_start "$pid")" = "$entry" ] || echo "$entry"
  done <<<"$1"
}

# Seconds in a systemd timespan such as "30s", "1min 30s" or "500ms" (rounded up).
timespan_seconds() {
  local total_ms=0 part num
  for part in $1; do
    num=${part%%[a-z]*}
    case "$part" in
      *ms) total_ms=$((total_ms + num)) ;;
      *us) total_ms=$((total_ms + num / 1000)) ;;
      *min) total_ms=$((total_ms + num * 60000)) ;;
      *h) total_ms=$((total_ms + num * 3600000)) ;;
      *s) total_ms=$((total_ms + num * 1000)) ;;
    esac
  done
  echo $(((total_ms + 999) / 1000))
}

# One line on the pods of label app=$1 (phase, container state, reason) and the latest events:
# the detail a failed readiness step prints.
pods_report() {
  coracle get pods -l "app=$1" -o json 2>&1 | jq -r '.items[] | "\(.metadata.name) \(.status.phase)
    \(.status.containerStatuses // [] | map(.state | tostring) | join(","))
    \(.status.conditions // [] | map(select(.status != "True")) | map("\(.type):\(.reason // "")") | join(","))"' 2>&1 |
    tr '\n' ' ' | cut -c1-500
  echo -n " | events: "
  coracle get events 2>&1 | tail -n 4 | tr '\n' ' ' | cut -c1-400
}
