#!/bin/bash
# service-lifecycle: the pods and their cgroup limits outlive `systemctl restart` and stop+start
# of coracled (KillMode=process; the pods live in the delegated coracle-pods.scope); the watchdog restarts a daemon frozen with SIGSTOP within WatchdogSec while
# the pods keep running; `install.sh --uninstall` stops every pod and leaves no process, mount,
# cgroup, network device, iptables rule or route of Coracle behind.
source /opt/coracle-board/lib.sh

wait_daemon 180 || fatal daemon-ready "coracled not active: $(journalctl -b -u coracled -n 5 --no-pager | tr '\n' ' ')"
pass daemon-ready
out=$(load_image 2>&1) && pass image-load || fatal image-load "$out"
out=$(apply_sleepers life 2 2>&1) && pass apply || fatal apply "$out"
wait_until 300 pods_ready_equal life 2 && pass pods-ready ||
  fatal pods-ready "$(pods_report life)"

before=$(container_processes)
count=$(grep -c . <<<"$before")
[ "$count" -ge 2 ] && pass containers-in-service-cgroups "$count processes under $(daemon_cgroup) and $(pods_cgroup)" ||
  fatal containers-in-service-cgroups "found '$before' under $(daemon_cgroup) and '$(pods_cgroup)'"

# Every limit file of the pods' cgroups with its value: the same after restart and stop+start.
limits_snapshot() {
  find "$(pods_cgroup)" -path '*/pods/*' \( -name memory.max -o -name cpu.max -o -name cpu.weight -o -name pids.max \) \
    -exec grep -H . {} + 2>/dev/null | sort
}
limits=$(limits_snapshot)
grep -q 'pids.max:[0-9]' <<<"$limits" && pass pod-limits "$(grep -c . <<<"$limits") limit files" ||
  fatal pod-limits "no pod pids.max under '$(pods_cgroup)': $(echo $limits | cut -c1-200)"

# restart
old=$(daemon_pid)
systemctl restart coracled
wait_daemon 180 && pass restart-active || fail restart-active "$(journal_tail 8)"
new=$(daemon_pid)
lost=$(gone_processes "$before")
if [ -z "$lost" ] && [ "$new" != "$old" ] && [ "$new" != 0 ]; then
  pass restart-keeps-pods "daemon $old -> $new, $count container processes kept"
else
  fail restart-keeps-pods "daemon $old -> $new; gone: $(echo $lost)"
fi
[ "$(limits_snapshot)" = "$limits" ] && pass restart-keeps-limits ||
  fail restart-keeps-limits "$(diff <(echo "$limits") <(limits_snapshot) | tr '\n' ' ' | cut -c1-300)"
wait_until 60 pods_ready_equal life 2 && pass pods-ready-after-restart ||
  fail pods-ready-after-restart "$(coracle get pods -l app=life 2>&1 | tr '\n' ' ')"

# stop, then start
systemctl stop coracled
state=$(systemctl is-active coracled)
lost=$(gone_processes "$before")
[ -z "$lost" ] && pass stop-leaves-pods "unit $state, containers running" ||
  fail stop-leaves-pods "gone after stop: $(echo $lost)"
systemctl start coracled
wait_daemon 180 && pass start-active || fail start-active "$(journal_tail 8)"
lost=$(gone_processes "$before")
[ -z "$lost" ] && pass stop-start-keeps-pods || fail stop-start-keeps-pods "gone: $(echo $lost)"
[ "$(limits_snapshot)" = "$limits" ] && pass stop-start-keeps-limits ||
  fail stop-start-keeps-limits "$(diff <(echo "$limits") <(limits_snapshot) | tr '\n' ' ' | cut -c1-300)"
wait_until 60 pods_ready_equal life 2 && pass pods-ready-after-start ||
  fail pods-ready-after-start "$(coracle get pods -l app=life 2>&1 | tr '\n' ' ')"

# watchdog: freeze the daemon; systemd must kill it within WatchdogSec and start a new one.
watchdog=$(timespan_seconds "$(systemctl show -p WatchdogUSec --value coracled)")
old=$(daemon_pid)
if [ "${old:-0}" = 0 ]; then
  # kill -STOP 0 would freeze this script's own process group.
  fail watchdog-kill "no coracled running to freeze ($(journal_tail 3))"
elif [ "${watchdog:-0}" -gt 0 ]; then
  figure watchdog_sec "$watchdog"
  t0=$(now_ms)
  kill -STOP "$old"
  # Gone: the pid no longer exists, or is a zombie waiting for systemd.
  # One observation decides: looking again while systemd's SIGABRT is being handled (state
  # changes as the threads die) once read a dying daemon as still alive.
  gone=0
  wait_until $((watchdog + 60)) bash -c "! [ -d /proc/$old ] || grep -q '^State:.*Z' /proc/$old/status" && gone=1
  t1=$(now_ms)
  killed_ms=$((t1 - t0))
  figure watchdog_kill_ms "$killed_ms"
  # The kill comes at most WatchdogSec after the last ping, which preceded SIGSTOP; the slack
  # covers the abort itself and the emulated board's scheduling.
  if [ "$gone" = 0 ]; then
    kill -CONT "$old"
    fail watchdog-kill "daemon $old still alive ${killed_ms} ms after SIGSTOP (WatchdogSec=${watchdog}s)"
  elif [ "$killed_ms" -le $(((watchdog + 5) * 1000)) ]; then
    pass watchdog-kill "killed ${killed_ms} ms after SIGSTOP (WatchdogSec=${watchdog}s)"
  else
    fail watchdog-kill "killed only ${killed_ms} ms after SIGSTOP (WatchdogSec=${watchdog}s)"
  fi
  [ "$gone" = 0 ] || wait_until 180 bash -c "[ \"\$(systemctl show -p MainPID --value coracled)\" != $old ] && [ \"\$(systemctl is-active coracled)\" = active ] && coracle version"
  new=$(daemon_pid)
  figure watchdog_recovered_ms $(($(now_ms) - t0))
  if [ "$new" != "$old" ] && [ "$new" != 0 ] && [ "$(systemctl is-active coracled)" = active ]; then
    pass watchdog-restart "new daemon $new"
  else
    fail watchdog-restart "MainPID=$new state=$(systemctl is-active coracled)"
  fi
  note "$(journalctl -b -u coracled --no-pager | grep -i -m 2 'watchdog' | tr '\n' ' ')"
  lost=$(gone_processes "$before")
  [ -z "$lost" ] && pass watchdog-keeps-pods || fail watchdog-keeps-pods "gone: $(echo $lost)"
  wait_until 60 pods_ready_equal life 2 && pass pods-ready-after-watchdog ||
    fail pods-ready-after-watchdog "$(coracle get pods -l app=life 2>&1 | tr '\n' ' ')"
else
  fail watchdog-configured "WatchdogUSec=$(systemctl show -p WatchdogUSec --value coracled)"
fi

# uninstall on the running board
cg=$(daemon_cgroup)
pods_cg=$(pods_cgroup)
before=$(container_processes)
out=$(/opt/coracle-release/install.sh --uninstall 2>&1) && pass uninstall-runs ||
  fail uninstall-runs "$(echo "$out" | tail -n 3 | tr '\n' ' ')"
sleep 2
left=$( (gone_processes "$before"; echo "$before") | sort | uniq -u)
daemons=$(pgrep -x coracled)
[ -z "$left" ] && [ -z "$daemons" ] && pass uninstall-no-process ||
  fail uninstall-no-process "still running: containers '$(echo $left)' daemon '$(echo $daemons)'"
mounts=$(grep -E ' (/var/lib/coracle|/run/coracle|/run/netns)[/ ]|^overlay ' /proc/self/mounts | cut -d' ' -f2)
[ -z "$mounts" ] && pass uninstall-no-mount || fail uninstall-no-mount "$(echo $mounts | cut -c1-300)"
cgroups=$(
  [ -d "$cg" ] && echo "$cg"
  [ -n "$pods_cg" ] && [ -d "$pods_cg" ] && echo "$pods_cg"
  find /sys/fs/cgroup -name '*coracle*' ! -name 'coracle-board.service' 2>/dev/null
)
[ -z "$cgroups" ] && pass uninstall-no-cgroup || fail uninstall-no-cgroup "$(echo $cgroups | cut -c1-300)"
links=$(ip -o link show | awk -F': ' '{print $2}' | grep -vx lo)
[ -z "$links" ] && pass uninstall-no-netdev || fail uninstall-no-netdev "$(echo $links)"
# CNI's masquerade rules and chains, and the route that makes ClusterIPs (the default
# network.service_cidr) local.
SERVICE_CIDR=10.96.0.0/16
rules=$(iptables -t nat -S 2>&1 | grep -E 'name: \\"coracle\\"|^-N CNI-')
routes=$(ip route show table local | grep -F "$SERVICE_CIDR")
[ -z "$rules" ] && [ -z "$routes" ] && pass uninstall-no-iptables ||
  fail uninstall-no-iptables "$(echo $rules $routes | cut -c1-300)"
netns=$(ls /run/netns 2>/dev/null)
[ -z "$netns" ] && pass uninstall-no-netns || fail uninstall-no-netns "$(echo $netns)"

finish
