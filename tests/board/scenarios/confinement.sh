#!/bin/bash
# confinement on pure cgroup v2, where the device whitelist is a BPF_PROG_TYPE_CGROUP_DEVICE
# program on each container's cgroup (the hybrid CI host exercises v1's devices controller): a
# confined pod may mknod a block node but not open it, opens /dev/null, runs under seccomp
# (Seccomp: 2, unshare refused) and sees its own cgroup as / (a cgroup namespace); a privileged
# pod opens the node and unshares.
source /opt/coracle-board/lib.sh

wait_daemon 180 || fatal daemon-ready "coracled not active: $(journalctl -b -u coracled -n 5 --no-pager | tr '\n' ' ')"
pass daemon-ready
out=$(load_image 2>&1) || fatal image-load "$out"
pass image-load

PROBE='grep Seccomp: /proc/self/status; cat /proc/self/cgroup;
busybox mknod /tmp/blk b 7 0 && echo mknod-ok;
busybox head -c 1 /tmp/blk >/dev/null 2>/tmp/err && echo blk-opened || cat /tmp/err;
busybox head -c 0 /dev/null && echo null-ok;
busybox unshare -m true 2>&1 || echo unshare-refused; echo probe-done'

# Runs the probe in pod $1 (privileged: $2) and prints its log once it has finished.
run_probe() {
  coracle apply -f - <<YAML >/dev/null || return 1
apiVersion: v1
kind: Pod
metadata: {name: $1}
spec:
  restartPolicy: Never
  containers:
  - name: probe
    image: busybox:board
    imagePullPolicy: Never
    securityContext: {privileged: $2}
    command: ["sh", "-c", $(printf '%s' "$PROBE" | jq -Rs .)]
YAML
  wait_until 180 bash -c "coracle get pod $1 -o json | jq -e '.status.phase == \"Succeeded\"'" || return 1
  coracle logs "$1"
}

status() {
  coracle get pod "$1" -o json 2>&1 | jq -c .status 2>&1 | cut -c1-400
}
log=$(run_probe confined false 2>&1) || fatal confined-ran "$log $(status confined)"
note "confined: $(echo "$log" | tr '\n' '|')"
echo "$log" | grep -q 'probe-done' && pass confined-ran || fatal confined-ran "$log"
echo "$log" | grep -q 'mknod-ok' && echo "$log" | grep -q '/tmp/blk: Operation not permitted' &&
  ! echo "$log" | grep -q blk-opened && pass device-whitelist "mknod allowed, open refused by the device program" ||
  fail device-whitelist "$(echo "$log" | tr '\n' ' ')"
echo "$log" | grep -q 'null-ok' && pass dev-null-opens || fail dev-null-opens "$(echo "$log" | tr '\n' ' ')"
echo "$log" | grep -q 'Seccomp:[[:space:]]*2' && echo "$log" | grep -q 'unshare-refused' &&
  pass seccomp-default "Seccomp: 2, unshare refused" || fail seccomp-default "$(echo "$log" | tr '\n' ' ')"
[ "$(echo "$log" | grep -c '^0::')" = 1 ] && echo "$log" | grep -qx '0::/' &&
  pass cgroup-namespace "/proc/self/cgroup is 0::/" || fail cgroup-namespace "$(echo "$log" | grep '^0::')"

log=$(run_probe privileged true 2>&1) || fatal privileged-ran "$log $(status privileged)"
note "privileged: $(echo "$log" | tr '\n' '|')"
! echo "$log" | grep -q 'Operation not permitted' && ! echo "$log" | grep -q unshare-refused &&
  echo "$log" | grep -q 'Seccomp:[[:space:]]*0' && pass privileged-lifts "every device, no seccomp" ||
  fail privileged-lifts "$(echo "$log" | tr '\n' ' ')"

coracle delete pod confined privileged >/dev/null 2>&1
finish
