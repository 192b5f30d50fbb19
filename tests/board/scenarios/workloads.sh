#!/bin/bash
# workloads on cgroup v2 under Delegate=yes: image load; a 3-replica busybox web Deployment turns
# Ready with its pods' cgroups beneath the service's delegated cgroup and limits from the pod
# spec; a pod over its memory limit shows OOMKilled; pids.max holds a fork bomb; the Service
# answers on its ClusterIP and NodePort; a rolling update under bounded load fails no request.
source /opt/coracle-board/lib.sh

MEMORY_LIMIT=33554432 # 32Mi
CPU_LIMIT_MILLIS=500
CPU_REQUEST_MILLIS=200
NODE_PORT=30080

wait_daemon 180 || fatal daemon-ready "coracled not active: $(journalctl -b -u coracled -n 5 --no-pager | tr '\n' ' ')"
pass daemon-ready

out=$(load_image 2>&1) || fatal image-load "$out"
coracle image ls 2>&1 | grep -q 'busybox' && pass image-load "$(echo "$out" | head -n 1)" ||
  fatal image-load "image ls does not list busybox:board: $(coracle image ls 2>&1 | tr '\n' ' ')"

# web: the given VERSION is what the pods serve, so a rolling update is visible in the answers.
apply_web() {
  coracle apply -f - <<YAML
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxUnavailable: 0, maxSurge: 1}
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
      - name: web
        image: busybox:board
        imagePullPolicy: Never
        env: [{name: VERSION, value: "$1"}]
        command: ["sh", "-c", "echo \$VERSION > /tmp/index.html && exec httpd -f -p 8080 -h /tmp"]
        ports: [{containerPort: 8080}]
        resources:
          requests: {cpu: ${CPU_REQUEST_MILLIS}m, memory: 16Mi}
          limits: {cpu: ${CPU_LIMIT_MILLIS}m, memory: 32Mi}
        readinessProbe:
          httpGet: {path: /index.html, port: 8080}
          periodSeconds: 2
YAML
}
t0=$(now_ms)
out=$(apply_web v1 2>&1) || fatal apply-web "$out"
if wait_until 600 pods_ready_equal web 3; then
  figure deployment_ready_ms $(($(now_ms) - t0))
  pass deployment-ready "3 web pods Running and ready"
else
  fatal deployment-ready "$(ready_pods web) of 3 ready: $(pods_report web)"
fi

# Each pod's cgroups: beneath the delegated pods' scope coracled registered beside its unit (a
# unit that keeps pods beneath its own cgroup cannot be restarted on systemd 252), limits from
# the spec.
service_cg=$(pods_cgroup)
if [ -n "$service_cg" ] && [ "$(systemctl show -p Delegate --value coracled)" = yes ] &&
  [ "$(systemctl show -p Delegate --value "$POD_SCOPE")" = yes ]; then
  pass delegated "coracled.service and $POD_SCOPE ($service_cg) are delegated"
else
  fatal delegated "Delegate: coracled=$(systemctl show -p Delegate --value coracled) $POD_SCOPE=$(systemctl show -p Delegate --value "$POD_SCOPE") cgroup='$service_cg'"
fi
weight=$((1 + ((CPU_REQUEST_MILLIS * 1024 / 1000 - 2) * 9999) / 262142))
quota=$((CPU_LIMIT_MILLIS * 100))
bad=()
uids=$(coracle get pods -l app=web -o json | jq -r '.items[].metadata.uid')
for uid in $uids; do
  pod_cg=$(find "$service_cg" -type d -path "*/pods/$uid" | head -n 1)
  container_cg=$(find "$service_cg" -type d -path "*/pods/$uid/web" | head -n 1)
  if [ -z "$pod_cg" ] || [ -z "$container_cg" ]; then
    bad+=("pod $uid: no pods/$uid/web under $service_cg")
    continue
  fi
  # The runtime may keep the process in a leaf below the container's cgroup; limits there apply.
  [ -n "$(find "$container_cg" -name cgroup.procs -exec cat {} + 2>/dev/null)" ] ||
    bad+=("no process in $container_cg or below")
  got=$(cat "$container_cg/memory.max")
  [ "$got" = "$MEMORY_LIMIT" ] || bad+=("$container_cg/memory.max=$got want $MEMORY_LIMIT")
  got=$(cat "$container_cg/cpu.max")
  [ "$got" = "$quota 100000" ] || bad+=("$container_cg/cpu.max='$got' want '$quota 100000'")
  got=$(cat "$container_cg/cpu.weight")
  [ "$got" = "$weight" ] || bad+=("$container_cg/cpu.weight=$got want $weight")
  got=$(cat "$pod_cg/pids.max")
  [[ "$got" =~ ^[0-9]+$ ]] || bad+=("$pod_cg/pids.max=$got want a number")
done
[ -n "$uids" ] && [ ${#bad[@]} -eq 0 ] && pass pod-cgroups "memory.max=$MEMORY_LIMIT cpu.max=$quota/100000 cpu.weight=$weight pids.max set" ||
  fail pod-cgroups "${bad[*]:0:6}"

# A pod over its memory limit is OOMKilled.
coracle apply -f - >/dev/null <<'YAML' || fail oom-apply "apply of pod hog failed"
apiVersion: v1
kind: Pod
metadata: {name: hog}
spec:
  restartPolicy: Never
  containers:
  - name: hog
    image: busybox:board
    command: ["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=4"]
    resources: {limits: {memory: 16Mi}}
YAML
oom_reason() {
  coracle get pod hog -o json | jq -r '.status.containerStatuses[0] | (.state.terminated.reason // .lastState.terminated.reason // "none")'
}
wait_until 240 bash -c "[ \"\$(coracle get pod hog -o json | jq -r '.status.containerStatuses[0] | (.state.terminated.reason // .lastState.terminated.reason // \"\")')\" = OOMKilled ]"
reason=$(oom_reason)
[ "$reason" = OOMKilled ] && pass oom-killed "pod hog: $reason" || fail oom-killed "pod hog's container reason: $reason, phase $(coracle get pod hog -o json | jq -r .status.phase)"
coracle delete pod hog >/dev/null 2>&1

# A fork bomb (bounded: 4000 forks) is held at the pod's pids.max.
coracle apply -f - >/dev/null <<'YAML' || fail forkbomb-apply "apply of pod bomb failed"
apiVersion: v1
kind: Pod
metadata: {name: bomb}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: bomb
    image: busybox:board
    # busybox sh exits when a fork fails, and the container with it: the bomb runs in a child
    # shell, and the container's init then becomes a sleep without forking, so the pod stays
    # Running at its limit.
    command: ["sh", "-c", "sh -c 'i=0; while [ $i -lt 4000 ]; do sleep 600 & i=$((i+1)); done'; exec sleep 600"]
YAML
bomb_cg() {
  local uid
  uid=$(coracle get pod bomb -o json | jq -r .metadata.uid)
  find "$service_cg" -type d -path "*/pods/$uid" | head -n 1
}
# Forks refused by pids.max anywhere in the pod's cgroup: Linux 6.1 counts a refusal in the
# forking task's own cgroup (the container's), not in the pod's, whose limit was hit.
refused() {
  find "$1" -name pids.events -exec awk '$1 == "max" {n += $2} END {print n + 0}' {} +
}
held() {
  local cg
  cg=$(bomb_cg)
  [ -n "$cg" ] && [ "$(refused "$cg")" -gt 0 ]
}
if wait_until 400 held; then
  cg=$(bomb_cg)
  current=$(cat "$cg/pids.current")
  max=$(cat "$cg/pids.max")
  figure forkbomb_pids_current "$current"
  [ "$current" -le "$max" ] && coracle version >/dev/null &&
    pass forkbomb-held "pids.current=$current pids.max=$max, fork refused $(refused "$cg") times, board responsive" ||
    fail forkbomb-held "pids.current=$current pids.max=$max"
else
  cg=$(bomb_cg)
  fail forkbomb-held "no fork refused by pids.max: cgroup '${cg}' pids.current=$(cat "$cg/pids.current" 2>/dev/null) pids.max=$(cat "$cg/pids.max" 2>/dev/null); pod: $(coracle get pod bomb -o json | jq -c '.status.containerStatuses[0].state' 2>&1 | cut -c1-200)"
fi
coracle delete pod bomb >/dev/null 2>&1

# The Service: ClusterIP and NodePort.
coracle apply -f - >/dev/null <<YAML || fail service-apply "apply of service web failed"
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080, nodePort: $NODE_PORT}]
YAML
cluster_ip=$(coracle get service web -o json | jq -r .spec.clusterIP)
endpoints() {
  coracle get endpoints web -o json | jq '[.subsets[]?.addresses[]?] | length'
}
wait_until 120 bash -c "[ \"\$(coracle get endpoints web -o json | jq '[.subsets[]?.addresses[]?] | length')\" = 3 ]" &&
  pass endpoints "3 ready addresses" || fail endpoints "$(endpoints) addresses: $(coracle get endpoints web 2>&1 | tr '\n' ' ')"
wait_until 60 http_get "$cluster_ip" 80 /index.html
answer=$(http_get "$cluster_ip" 80 /index.html)
[ "$answer" = v1 ] && pass cluster-ip "http://$cluster_ip/ answered v1" || fail cluster-ip "http://$cluster_ip/: '$answer'"
answer=$(http_get 127.0.0.1 "$NODE_PORT" /index.html)
[ "$answer" = v1 ] && pass node-port "127.0.0.1:$NODE_PORT answered v1" || fail node-port "127.0.0.1:$NODE_PORT: '$answer'"

# Rolling update under a bounded client load: at most 3000 requests or 600 s.
results=/run/board-rollout.results
stop=/run/board-rollout.stop
rm -f "$results" "$stop"
(
  n=0
  end=$(($(date +%s) + 600))
  while [ ! -e "$stop" ] && [ "$n" -lt 3000 ] && [ "$(date +%s)" -lt "$end" ]; do
    t=$(now_ms)
    if a=$(http_get "$cluster_ip" 80 /index.html); then
      echo "ok $a $(($(now_ms) - t))"
    else
      echo "fail $(($(now_ms) - t)) ms: $(echo "$a" | tr '\n' ' ')"
    fi
    n=$((n + 1))
    sleep 0.1
  done >"$results"
) &
client=$!
sleep 3
out=$(apply_web v2 2>&1) || fail rollout-apply "$out"
rolled() {
  coracle get deployment web -o json | jq -e '.status.observedGeneration >= .metadata.generation
    and .status.updatedReplicas == 3 and .status.readyReplicas == 3 and .status.replicas == 3
    and (.status.availableReplicas // 0) == 3' >/dev/null &&
    [ "$(coracle get pods -l app=web --no-headers | wc -l)" = 3 ]
}
if wait_until 600 rolled; then
  pass rollout-complete "$(coracle get deployment web --no-headers 2>&1)"
else
  fail rollout-complete "$(coracle get deployment web -o json | jq -c .status)"
fi
sleep 3
touch "$stop"
wait "$client"
total=$(grep -c . "$results")
failed=$(grep -c '^fail' "$results")
v2=$(grep -c '^ok v2' "$results")
figure rollout_requests "$total"
figure rollout_failed_requests "$failed"
figure rollout_slowest_answer_ms "$(awk '$1 == "ok" {if ($3 > m) m = $3} END {print m + 0}' "$results")"
if [ "$total" -gt 0 ] && [ "$failed" -eq 0 ] && [ "$v2" -gt 0 ] && [ "$(tail -n 1 "$results" | cut -d" " -f1-2)" = "ok v2" ]; then
  pass rollout-zero-failed "$total requests, 0 failed, $v2 answered v2"
else
  fail rollout-zero-failed "$total requests, $failed failed ($(grep -m 2 '^fail' "$results" | tr '\n' ' ')), $v2 answered v2"
fi

finish
